//! The report's summary: each headline figure against the target the
//! steps set for it.

use super::Figures;

/// One row of the summary: a figure, its target and whether it is met.
pub(super) struct Row {
    pub(super) what: &'static str,
    pub(super) measured: String,
    pub(super) target: &'static str,
    pub(super) met: Option<bool>,
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
    show: fn(f64) -> String,
    goal: Goal,
}

/// The summary's rows, in order.
const TARGETS: &[Target] = &[
    Target {
        what: "envelope seal, 64 KiB, vs raw XChaCha20-Poly1305",
        figure: ("envelope_65536", 0),
        show: |v| format!("{v:.0} %"),
        goal: Goal::AtLeast(80.0, "≥ 80 %"),
    },
    Target {
        what: "envelope open, 64 KiB, vs raw XChaCha20-Poly1305",
        figure: ("envelope_65536", 1),
        show: |v| format!("{v:.0} %"),
        goal: Goal::AtLeast(80.0, "≥ 80 %"),
    },
    Target {
        what: "durable record rate (sled)",
        figure: ("record_per_s", 0),
        show: |v| format!("{v:.0}/s"),
        goal: Goal::AtLeast(5000.0, "≥ 5,000/s"),
    },
    Target {
        what: "durable record p99",
        figure: ("record_p99_ms", 0),
        show: |v| format!("{v:.3} ms"),
        goal: Goal::AtMost(1.0, "≤ 1 ms"),
    },
    Target {
        what: "open the week's vault",
        figure: ("week_open_ms", 0),
        show: |v| format!("{v:.1} ms"),
        goal: Goal::AtMost(100.0, "≤ 100 ms"),
    },
    Target {
        what: "bytes on disk / Automerge save()",
        figure: ("disk_ratio", 0),
        show: |v| format!("{v:.2}×"),
        goal: Goal::AtMost(3.0, "≤ 3×"),
    },
    Target {
        what: "week sync time, E2EE / plaintext Automerge (same QUIC connection)",
        figure: ("week_sync_time_ratio", 0),
        show: |v| format!("{v:.2}×"),
        goal: Goal::AtMost(1.0, "≤ 1.0×"),
    },
    Target {
        what: "week sync bytes, E2EE / plaintext Automerge",
        figure: ("week_sync_bytes_ratio", 0),
        show: |v| format!("{v:.2}×"),
        goal: Goal::AtMost(1.1, "≤ 1.1×"),
    },
    Target {
        what: "reading → node inbox alert latency p50",
        figure: ("alert_p50_ms", 0),
        show: |v| format!("{v:.2} ms"),
        goal: Goal::AtMost(5.0, "≤ 5 ms"),
    },
    Target {
        what: "reading → node inbox alert latency p99",
        figure: ("alert_p99_ms", 0),
        show: |v| format!("{v:.2} ms"),
        goal: Goal::None,
    },
    Target {
        what: "shred the week's vault",
        figure: ("shred_ms", 0),
        show: |v| format!("{v:.1} ms"),
        goal: Goal::AtMost(50.0, "≤ 50 ms"),
    },
    Target {
        what: "simulation seeds/s (3 devices, a week, one core)",
        figure: ("sim_seeds_per_s", 0),
        show: |v| format!("{v:.1}/s"),
        goal: Goal::AtLeast(100.0, "≥ 100/s"),
    },
    Target {
        what: "QUIC handshakes (loopback)",
        figure: ("handshakes_per_s", 0),
        show: |v| format!("{v:.0}/s"),
        goal: Goal::None,
    },
    Target {
        what: "durable bundle pushes (loopback)",
        figure: ("pushes_per_s", 0),
        show: |v| format!("{v:.0}/s"),
        goal: Goal::None,
    },
    Target {
        what: "node sweep of expired vaults",
        figure: ("sweep_vaults_per_s", 0),
        show: |v| format!("{v:.0} vaults/s"),
        goal: Goal::None,
    },
];

fn first(f: &Figures, name: &str, i: usize) -> Option<f64> {
    f.get(name)?.last()?.get(i).copied()
}

/// The summary's rows for the figures measured.
pub(super) fn summary(f: &Figures) -> Vec<Row> {
    TARGETS
        .iter()
        .map(|t| {
            let v = first(f, t.figure.0, t.figure.1);
            Row {
                what: t.what,
                measured: v.map_or("not measured".into(), t.show),
                target: t.goal.text(),
                met: v.map(|v| t.goal.met(v)),
            }
        })
        .collect()
}
