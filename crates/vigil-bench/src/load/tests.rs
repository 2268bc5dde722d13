//! The report's text is an interface (people diff it, scripts read the JSON):
//! these pin it byte for byte on a report with every branch taken and on an
//! empty one.

use super::*;

fn lat(count: usize, p50_ms: f64) -> Latency {
    Latency {
        count,
        p50_ms,
        p99_ms: p50_ms * 3.0,
        max_ms: p50_ms * 7.0,
    }
}

fn sample(rss: u64) -> ProcSample {
    ProcSample {
        rss_bytes: rss,
        peak_rss_bytes: rss * 2,
        threads: 9,
        cpu_ms: rss / 1000,
    }
}

fn tally(missing: u64) -> Tally {
    Tally {
        residents: 10,
        unreadable: 0,
        acked: 240,
        present: 230,
        covered_by_snapshot: 10 - missing,
        missing,
        altered: 0,
        examples: (0..missing)
            .map(|i| format!("resident {i}: gone"))
            .collect(),
    }
}

fn full() -> LoadReport {
    let drops = UdpDrops {
        machine: Some(12),
        node_socket: Some(3),
    };
    LoadReport {
        setup: Setup {
            residents: 10,
            concurrency: 4,
            connect_concurrency: 2,
            day_seconds: 1.5,
            profile: DayProfile::default(),
            readings_per_resident: 408,
            fever_residents: 1,
            node: "vigil-node (pid 7)".into(),
            node_code: "vigil1/127.0.0.1:1/x".into(),
            node_notes: vec!["environment: MALLOC_X=1 (inherited by a node started here)".into()],
            endpoint: "one shared client endpoint".into(),
            resident_storage: "vaults in memory".into(),
            seed: 3,
            cpus: 2,
            setup_s: 0.25,
        },
        connect: Phase {
            ok: 9,
            failed: 1,
            elapsed_s: 0.5,
            per_s: 18.0,
            latency: lat(9, 1.25),
            udp_drops: drops,
        },
        enrol: Phase {
            ok: 9,
            failed: 1,
            elapsed_s: 0.75,
            per_s: 12.0,
            latency: lat(9, 2.0),
            udp_drops: UdpDrops {
                machine: Some(1),
                node_socket: None,
            },
        },
        day: DayResult {
            elapsed_s: 1.6,
            syncs_ok: 230,
            syncs_failed: 10,
            bundles_acked: 240,
            bundles_per_s: 150.0,
            offered_bundles_per_s: Some(160.0),
            snapshots_acked: 2,
            requests: 1200,
            requests_per_s: 750.0,
            readings: 4080,
            readings_unsynced: 17,
            reconnects: 1,
            sync_latency: lat(240, 4.5),
            schedule_lag: lat(240, 0.5),
            udp_drops: drops,
            generator_cpu_s: Some(0.8),
        },
        alerts: AlertResult {
            fever_residents: 1,
            start_delivered: 1,
            end_delivered: 0,
            pending_at_end: 1,
            latency: lat(1, 3.0),
        },
        node: NodeResult {
            description: "vigil-node (pid 7)".into(),
            idle: Some(sample(10 << 20)),
            connected: Some(sample(12 << 20)),
            after_day: Some(sample(20 << 20)),
            peak_rss_bytes: Some(40 << 20),
            rss_per_connection_bytes: Some(233_016),
            day_cpu_s: Some(1.2),
            disk_idle: Some(DiskUse {
                allocated_bytes: 1 << 20,
                apparent_bytes: 1 << 19,
                files: 3,
            }),
            disk: Some(DiskUse {
                allocated_bytes: 5 << 20,
                apparent_bytes: 4 << 20,
                files: 8,
            }),
            disk_per_resident_bytes: Some(419_430),
            exit: NodeExit {
                how: "graceful".into(),
                status: Some("exit status: 0".into()),
            },
            died: None,
            log_problems: vec!["ERROR something".into()],
            log: Some("/tmp/node.log".into()),
        },
        generator: Some(sample(30 << 20)),
        errors: [
            ("connect: timed out".to_string(), 4),
            ("refused: busy".to_string(), 1),
        ]
        .into_iter()
        .collect(),
        durability: Durability {
            by_pull: tally(0),
            in_store: Some(tally(2)),
            store_error: None,
            alerts_acked_stored: 1,
            inbox_alerts: Some(1),
            passed: false,
        },
    }
}

fn empty() -> LoadReport {
    let mut r = full();
    r.setup.node_notes.clear();
    r.connect = Phase::default();
    r.enrol = Phase::default();
    r.day = DayResult::default();
    r.alerts = AlertResult::default();
    r.node = NodeResult {
        died: Some("exited by itself: signal 9".into()),
        ..NodeResult::default()
    };
    r.generator = None;
    r.errors.clear();
    r.durability = Durability {
        store_error: Some("locked".into()),
        ..Durability::default()
    };
    r
}

fn both() -> [(LoadReport, &'static str, &'static str); 2] {
    [
        (
            full(),
            include_str!("testdata/full.md"),
            include_str!("testdata/full.json"),
        ),
        (
            empty(),
            include_str!("testdata/empty.md"),
            include_str!("testdata/empty.json"),
        ),
    ]
}

#[test]
fn markdown_is_unchanged() {
    for (report, md, _) in both() {
        assert_eq!(report.markdown(), md);
    }
}

#[test]
fn json_is_unchanged() {
    for (report, _, json) in both() {
        assert_eq!(serde_json::to_string_pretty(&report).unwrap() + "\n", json);
    }
}

#[test]
fn a_report_passes_only_if_the_node_lived_and_lost_nothing() {
    let mut r = full();
    assert!(!r.passed());
    r.durability.passed = true;
    assert!(r.passed());
    r.node.died = Some("gone".into());
    assert!(!r.passed());
}
