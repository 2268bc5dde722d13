//! A small load run against an in-process node: 20 residents, a short day.

use std::time::{Duration, Instant};

use vigil_bench::load::{DayProfile, LoadConfig, NodeChoice, run};

#[test]
fn twenty_residents_through_a_short_day() {
    let started = Instant::now();
    let config = LoadConfig {
        residents: 20,
        node: NodeChoice::InProcess,
        concurrency: 8,
        day_seconds: 2.0,
        // A quarter of the residents run a fever, so some certainly do.
        profile: DayProfile {
            fever_percent: 25.0,
            ..DayProfile::default()
        },
        connect_timeout: Duration::from_secs(5),
        ..LoadConfig::default()
    };
    let report = run(&config).unwrap();
    println!("{}", report.markdown());
    assert_eq!(report.connect.ok, 20, "{:?}", report.errors);
    assert_eq!(report.enrol.ok, 20, "{:?}", report.errors);
    assert_eq!(report.day.syncs_ok, 20 * 24, "{:?}", report.errors);
    assert!(report.day.bundles_acked >= 20 * 24);
    assert_eq!(report.day.readings, 20 * 408);
    assert_eq!(report.day.readings_unsynced, 0);
    assert!(report.alerts.fever_residents > 0);
    assert_eq!(report.alerts.start_delivered, report.alerts.fever_residents);
    assert_eq!(report.alerts.end_delivered, report.alerts.fever_residents);
    assert_eq!(
        report.alerts.latency.count as u64,
        report.alerts.fever_residents
    );
    assert!(report.node.died.is_none());
    let d = &report.durability;
    assert!(d.passed, "{d:?}");
    assert_eq!(d.by_pull.acked, report.day.bundles_acked);
    assert_eq!(
        d.by_pull.present + d.by_pull.covered_by_snapshot,
        d.by_pull.acked
    );
    let store = d.in_store.as_ref().unwrap();
    assert_eq!(store.acked, d.by_pull.acked);
    assert_eq!(d.inbox_alerts, Some(d.alerts_acked_stored));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.passed());
    // The JSON form carries the same numbers.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["day"]["bundles_acked"], report.day.bundles_acked);
    println!("took {:?}", started.elapsed());
}

#[test]
fn a_full_node_refuses_and_nothing_acknowledged_is_lost() {
    // The node lets 6 of 10 residents in: the others are refused at every
    // attempt (counted, with backoff), and the run goes on.
    let config = LoadConfig {
        residents: 10,
        node: NodeChoice::InProcess,
        node_max_connections: Some(6),
        concurrency: 10,
        day_seconds: 1.0,
        connect_attempts: 2,
        profile: DayProfile {
            syncs: 6,
            fever_percent: 0.0,
            ..DayProfile::default()
        },
        connect_timeout: Duration::from_secs(5),
        ..LoadConfig::default()
    };
    let report = run(&config).unwrap();
    println!("{}", report.markdown());
    assert_eq!(report.connect.ok, 6);
    assert_eq!(report.connect.failed, 4);
    assert!(report.errors["connect: refused (node busy)"] >= 8);
    assert_eq!(report.errors["gave up: connect"] % 4, 0);
    assert_eq!(report.day.syncs_ok, 6 * 6);
    assert_eq!(report.day.syncs_failed, 4 * 6);
    assert!(report.node.died.is_none());
    assert!(report.durability.passed, "{:?}", report.durability);
    assert_eq!(report.durability.by_pull.acked, 6 * 6);
}
