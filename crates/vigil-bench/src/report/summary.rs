//! The report's summary: each headline figure against the target the
//! steps set for it.

use super::Figures;

/// One row of the summary: a figure, its target and whether it is met.
pub(super) struct Row {
    pub(super) what: &'static str,
    pub(super) measured: String,
    pub(super) target: &'static str,
    pub(super) met: Option<bool>,
    /// The program that measured it (a benchmark target, `vigil-sim` or
    /// `callgrind`), whose user CPU time the report shows beside it.
    pub(super) source: &'static str,
}

/// What a summary figure should be.
enum Goal {
    /// At least this, as the target column says.
    AtLeast(f64, &'static str),
    /// At most this, as the target column says.
    AtMost(f64, &'static str),
    /// Reported, with no target.
    None,
}

impl Goal {
    fn text(&self) -> &'static str {
        match self {
            Goal::AtLeast(_, t) | Goal::AtMost(_, t) => t,
            Goal::None => "—",
        }
    }

    fn met(&self, v: f64) -> bool {
        match *self {
            Goal::AtLeast(min, _) => v >= min,
            Goal::AtMost(max, _) => v <= max,
            Goal::None => true,
        }
    }
}

/// A row of the summary: where its figure comes from (name and column of
/// the last `figure:` line), how it is shown, and its goal.
struct Target {
    what: &'static str,
    figure: (&'static str, usize),
    /// Shows the whole `figure:` line (the compared value and its parts).
    show: fn(&[f64]) -> String,
    goal: Goal,
    source: &'static str,
}

/// The `i`th value of a figure line (0 if the line is short: a figure's
/// producer and this table are changed together, and a test pins both).
fn at(v: &[f64], i: usize) -> f64 {
    v.get(i).copied().unwrap_or(0.0)
}

/// Callgrind's instruction count for `vigil-sim --seeds 0..5 --scenario
/// week --threads 1` before issue 19 (the baseline of its ≤ 37 % target).
pub(super) const SIM_INSTRUCTIONS_BEFORE: f64 = 1.60e9;

/// The summary's rows, in order: issue 19's ratio targets first (each
/// against a reference measured in the same run), then the earlier ones.
const TARGETS: &[Target] = &[
    Target {
        what: "bytes a device uploads per reading (band day, synced hourly) / Automerge save() bytes per reading",
        figure: ("upload_ratio", 0),
        show: |v| format!("{:.2}× ({:.1} / {:.1} B)", at(v, 0), at(v, 1), at(v, 2)),
        goal: Goal::AtMost(2.0, "≤ 2×"),
        source: "volume",
    },
    Target {
        what: "a week's offline backlog: bytes pushed / the week's sealed snapshot",
        figure: ("backlog_ratio", 0),
        show: |v| format!("{:.2}× ({:.0} / {:.0} B)", at(v, 0), at(v, 1), at(v, 2)),
        goal: Goal::AtMost(1.2, "≤ 1.2×"),
        source: "volume",
    },
    Target {
        what: "node disk per resident after a week (before the sweep) / the week's sealed snapshot",
        figure: ("node_disk_ratio", 0),
        show: |v| format!("{:.2}× ({:.0} / {:.0} B)", at(v, 0), at(v, 1), at(v, 2)),
        goal: Goal::AtMost(1.5, "≤ 1.5×"),
        source: "volume",
    },
    Target {
        what: "simulation cost: instructions under callgrind (`vigil-sim --seeds 0..5 --scenario week --threads 1`) / 1.60 G",
        figure: ("sim_instructions_pct", 0),
        show: |v| format!("{:.1} % ({:.0} M instructions)", at(v, 0), at(v, 1) / 1e6),
        goal: Goal::AtMost(37.0, "≤ 37 %"),
        source: "callgrind",
    },
    Target {
        what: "durable record rate / sled insert+flush of the same bytes, same run",
        figure: ("record_vs_sled", 0),
        show: |v| {
            format!(
                "{:.1} % ({:.0} / {:.0} per s)",
                at(v, 0),
                at(v, 1),
                at(v, 2)
            )
        },
        goal: Goal::AtLeast(80.0, "≥ 80 %"),
        source: "reference",
    },
    Target {
        what: "open the week's vault (closed with `close()`) / Automerge load of the same document, same run",
        figure: ("open_vs_load", 0),
        show: |v| format!("{:.2}× ({:.1} / {:.1} ms)", at(v, 0), at(v, 1), at(v, 2)),
        goal: Goal::AtMost(1.2, "≤ 1.2×"),
        source: "reference",
    },
    Target {
        what: "the same, as a kill leaves the vault (fold chunks after its snapshot)",
        figure: ("open_after_kill_vs_load", 0),
        show: |v| format!("{:.2}× ({:.1} / {:.1} ms)", at(v, 0), at(v, 1), at(v, 2)),
        goal: Goal::None,
        source: "reference",
    },
    Target {
        what: "week sync time, E2EE / plaintext Automerge (same QUIC connection)",
        figure: ("week_sync_time_ratio", 0),
        show: |v| format!("{:.2}×", at(v, 0)),
        goal: Goal::AtMost(1.0, "≤ 1.0×"),
        source: "sync",
    },
    Target {
        what: "week sync bytes, E2EE / plaintext Automerge",
        figure: ("week_sync_bytes_ratio", 0),
        show: |v| format!("{:.2}×", at(v, 0)),
        goal: Goal::AtMost(1.1, "≤ 1.1×"),
        source: "sync",
    },
    Target {
        what: "envelope seal, 64 KiB, vs raw XChaCha20-Poly1305",
        figure: ("envelope_65536", 0),
        show: |v| format!("{:.0} %", at(v, 0)),
        goal: Goal::AtLeast(80.0, "≥ 80 %"),
        source: "envelope",
    },
    Target {
        what: "envelope open, 64 KiB, vs raw XChaCha20-Poly1305",
        figure: ("envelope_65536", 1),
        show: |v| format!("{:.0} %", at(v, 1)),
        goal: Goal::AtLeast(80.0, "≥ 80 %"),
        source: "envelope",
    },
    Target {
        what: "bytes on disk / Automerge save()",
        figure: ("disk_ratio", 0),
        show: |v| format!("{:.2}×", at(v, 0)),
        goal: Goal::AtMost(3.0, "≤ 3×"),
        source: "week",
    },
    Target {
        what: "durable record rate (sled), absolute",
        figure: ("record_per_s", 0),
        show: |v| format!("{:.0}/s", at(v, 0)),
        goal: Goal::None,
        source: "week",
    },
    Target {
        what: "durable record p99 (absolute)",
        figure: ("record_p99_ms", 0),
        show: |v| format!("{:.3} ms", at(v, 0)),
        goal: Goal::AtMost(1.0, "≤ 1 ms"),
        source: "week",
    },
    Target {
        what: "open the week's vault, absolute",
        figure: ("week_open_ms", 0),
        show: |v| format!("{:.1} ms", at(v, 0)),
        goal: Goal::None,
        source: "week",
    },
    Target {
        what: "reading → node inbox alert latency p50 (absolute)",
        figure: ("alert_p50_ms", 0),
        show: |v| format!("{:.2} ms", at(v, 0)),
        goal: Goal::AtMost(5.0, "≤ 5 ms"),
        source: "alerts",
    },
    Target {
        what: "reading → node inbox alert latency p99",
        figure: ("alert_p99_ms", 0),
        show: |v| format!("{:.2} ms", at(v, 0)),
        goal: Goal::None,
        source: "alerts",
    },
    Target {
        what: "shred the week's vault (absolute)",
        figure: ("shred_ms", 0),
        show: |v| format!("{:.1} ms", at(v, 0)),
        goal: Goal::AtMost(50.0, "≤ 50 ms"),
        source: "week",
    },
    Target {
        what: "simulation seeds/s (3 devices, a week, one core), absolute",
        figure: ("sim_seeds_per_s", 0),
        show: |v| format!("{:.1}/s", at(v, 0)),
        goal: Goal::None,
        source: "vigil-sim",
    },
    Target {
        what: "QUIC handshakes (loopback)",
        figure: ("handshakes_per_s", 0),
        show: |v| format!("{:.0}/s", at(v, 0)),
        goal: Goal::None,
        source: "sync",
    },
    Target {
        what: "durable bundle pushes (loopback)",
        figure: ("pushes_per_s", 0),
        show: |v| format!("{:.0}/s", at(v, 0)),
        goal: Goal::None,
        source: "sync",
    },
    Target {
        what: "node sweep of expired vaults",
        figure: ("sweep_vaults_per_s", 0),
        show: |v| format!("{:.0} vaults/s", at(v, 0)),
        goal: Goal::None,
        source: "sweep",
    },
];

fn last<'a>(f: &'a Figures, name: &str, i: usize) -> Option<&'a [f64]> {
    let line = f.get(name)?.last()?;
    line.get(i)?;
    Some(line)
}

/// The summary's rows for the figures measured.
pub(super) fn summary(f: &Figures) -> Vec<Row> {
    // The callgrind count as a share of the baseline.
    let mut derived;
    let f = match f.get("sim_instructions").and_then(|l| l.last()) {
        Some(line) => {
            let n = at(line, 0);
            derived = f.clone();
            derived.insert(
                "sim_instructions_pct".into(),
                vec![vec![n / SIM_INSTRUCTIONS_BEFORE * 100.0, n]],
            );
            &derived
        }
        None => f,
    };
    TARGETS
        .iter()
        .map(|t| {
            let line = last(f, t.figure.0, t.figure.1);
            Row {
                what: t.what,
                measured: line.map_or("not measured".into(), t.show),
                target: t.goal.text(),
                met: line.map(|l| t.goal.met(at(l, t.figure.1))),
                source: t.source,
            }
        })
        .collect()
}
