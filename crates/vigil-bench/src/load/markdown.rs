//! The load report as Markdown: the setup as a list, the figures as one
//! table (a few rows per phase), then every refusal and problem found.
//!
//! The text is compared across runs and machines, so its wording and number
//! formats stay as they are (the tests pin them).

use std::fmt::Write as _;

use super::{Latency, LoadReport, Tally};

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn lat(l: &Latency) -> String {
    if l.count == 0 {
        return "–".into();
    }
    format!(
        "{:.1} / {:.1} ms (max {:.1}, n={})",
        l.p50_ms, l.p99_ms, l.max_ms, l.count
    )
}

/// `0.8 s (50% of one core)`: CPU seconds against the day's wall clock.
fn cpu_share(cpu_s: f64, elapsed_s: f64) -> String {
    format!(
        "{cpu_s:.1} s ({:.0}% of one core)",
        100.0 * cpu_s / elapsed_s.max(1e-9)
    )
}

/// ` (227.6 KiB per connection)`, or nothing when not measured.
fn kib_per(bytes: Option<u64>, what: &str) -> String {
    bytes
        .map(|b| format!(" ({:.1} KiB per {what})", b as f64 / 1024.0))
        .unwrap_or_default()
}

fn verdict(passed: bool) -> &'static str {
    if passed { "pass" } else { "**FAIL**" }
}

/// The `| metric | value |` table, row by row.
struct Table<'a>(&'a mut String);

impl Table<'_> {
    fn start(o: &mut String) -> Table<'_> {
        let _ = writeln!(o, "| metric | value |\n|---|---|");
        Table(o)
    }

    fn row(&mut self, k: &str, v: String) {
        let _ = writeln!(self.0, "| {k} | {v} |");
    }
}

impl LoadReport {
    /// The report as a Markdown table, with the setup above and the
    /// refusals below.
    pub fn markdown(&self) -> String {
        let mut o = String::new();
        self.write_setup(&mut o);
        let mut t = Table::start(&mut o);
        self.connect_rows(&mut t);
        self.enrol_rows(&mut t);
        self.day_rows(&mut t);
        self.alert_rows(&mut t);
        self.node_rows(&mut t);
        self.generator_row(&mut t);
        self.node_exit_row(&mut t);
        self.durability_rows(&mut t);
        let _ = writeln!(o);
        self.write_problems(&mut o);
        o
    }

    fn write_setup(&self, o: &mut String) {
        let s = &self.setup;
        let _ = writeln!(
            o,
            "### Load: {} residents, concurrency {}, day {} s\n",
            s.residents, s.concurrency, s.day_seconds
        );
        let _ = writeln!(o, "- node: {}", s.node);
        for note in &s.node_notes {
            let _ = writeln!(o, "- note: {note}");
        }
        let _ = writeln!(
            o,
            "- residents: {}; {}; {} readings and {} syncs each, {} scripted fevers; seed {}",
            s.resident_storage,
            s.endpoint,
            s.readings_per_resident,
            s.profile.syncs,
            s.fever_residents,
            s.seed
        );
        let _ = writeln!(
            o,
            "- machine: {} CPUs; vaults made in {:.1} s\n",
            s.cpus, s.setup_s
        );
    }

    fn connect_rows(&self, t: &mut Table<'_>) {
        let (c, s) = (&self.connect, &self.setup);
        t.row(
            "handshakes/s (connect phase)",
            format!(
                "{:.0} ({} of {} connected in {:.1} s, {} at once)",
                c.per_s, c.ok, s.residents, c.elapsed_s, s.connect_concurrency
            ),
        );
        t.row("handshake latency p50 / p99", lat(&c.latency));
        if let Some(d) = c.udp_drops.describe() {
            t.row("UDP datagrams dropped, connect phase", d);
        }
    }

    fn enrol_rows(&self, t: &mut Table<'_>) {
        let e = &self.enrol;
        t.row(
            "enrolments/s",
            format!(
                "{:.0} ({} of {} in {:.1} s)",
                e.per_s, e.ok, self.setup.residents, e.elapsed_s
            ),
        );
    }

    fn day_rows(&self, t: &mut Table<'_>) {
        let d = &self.day;
        t.row(
            "bundles/s (day phase)",
            format!(
                "{:.0} acked{} ({} bundles in {:.1} s)",
                d.bundles_per_s,
                d.offered_bundles_per_s
                    .map(|x| format!(", {x:.0} offered"))
                    .unwrap_or_default(),
                d.bundles_acked,
                d.elapsed_s
            ),
        );
        t.row(
            "requests/s (day phase)",
            format!("{:.0} ({} requests)", d.requests_per_s, d.requests),
        );
        t.row(
            "syncs ok / failed",
            format!("{} / {}", d.syncs_ok, d.syncs_failed),
        );
        t.row("sync latency p50 / p99", lat(&d.sync_latency));
        t.row("schedule lag p50 / p99", lat(&d.schedule_lag));
        if let Some(x) = d.udp_drops.describe() {
            t.row("UDP datagrams dropped, day phase", x);
        }
        if let Some(cpu) = d.generator_cpu_s {
            t.row("generator CPU during the day", cpu_share(cpu, d.elapsed_s));
        }
    }

    /// The alerts, then what the residents recorded but never got
    /// acknowledged (the day's loose ends, read next to the alerts).
    fn alert_rows(&self, t: &mut Table<'_>) {
        let a = &self.alerts;
        t.row(
            "alert latency p50 / p99 (record → AlertAck)",
            lat(&a.latency),
        );
        t.row(
            "fever alerts stored (start / end of episode)",
            format!(
                "{} / {} of {} fever residents; {} pending at end",
                a.start_delivered, a.end_delivered, a.fever_residents, a.pending_at_end
            ),
        );
        t.row(
            "readings recorded / not acked at end",
            format!("{} / {}", self.day.readings, self.day.readings_unsynced),
        );
    }

    /// The node's memory, CPU and disk.
    fn node_rows(&self, t: &mut Table<'_>) {
        let nd = &self.node;
        if let Some(p) = nd.peak_rss_bytes {
            t.row("node peak RSS (VmHWM)", mib(p));
        }
        if let (Some(i), Some(c)) = (nd.idle, nd.connected) {
            t.row(
                "node RSS idle → all connected",
                format!(
                    "{} → {}{}",
                    mib(i.rss_bytes),
                    mib(c.rss_bytes),
                    kib_per(nd.rss_per_connection_bytes, "connection")
                ),
            );
        }
        if let Some(a) = nd.after_day {
            t.row(
                "node RSS after the day / threads",
                format!("{} / {}", mib(a.rss_bytes), a.threads),
            );
        }
        if let Some(cpu) = nd.day_cpu_s {
            t.row(
                "node CPU during the day",
                cpu_share(cpu, self.day.elapsed_s),
            );
        }
        if let Some(disk) = nd.disk {
            t.row(
                "node disk (du / apparent)",
                format!(
                    "{} / {} in {} files{}",
                    mib(disk.allocated_bytes),
                    mib(disk.apparent_bytes),
                    disk.files,
                    kib_per(nd.disk_per_resident_bytes, "resident")
                ),
            );
        }
    }

    fn generator_row(&self, t: &mut Table<'_>) {
        if let Some(g) = self.generator {
            t.row(
                "generator peak RSS",
                format!("{} ({} threads)", mib(g.peak_rss_bytes), g.threads),
            );
        }
    }

    fn node_exit_row(&self, t: &mut Table<'_>) {
        let nd = &self.node;
        t.row(
            "node stayed up",
            match &nd.died {
                None => format!("yes; stopped: {}", nd.exit.how),
                Some(why) => format!("**NO**: {why}"),
            },
        );
    }

    fn durability_rows(&self, t: &mut Table<'_>) {
        let du = &self.durability;
        let p = &du.by_pull;
        t.row(
            "durability: pulled back over fresh connections",
            format!("{}, {} unreadable", tally_counts(p), p.unreadable),
        );
        let in_store = match (&du.in_store, &du.store_error) {
            (Some(t), _) => format!(
                "{}; inbox {} alerts for {} acked as stored",
                tally_counts(t),
                du.inbox_alerts.map_or("?".into(), |i| i.to_string()),
                du.alerts_acked_stored
            ),
            (None, Some(e)) => format!("**not read**: {e}"),
            (None, None) => "not local".into(),
        };
        t.row("durability: node store after stop", in_store);
    }

    /// Errors by kind, durability problems, the node's log problems.
    fn write_problems(&self, o: &mut String) {
        if self.errors.is_empty() {
            let _ = writeln!(o, "Refusals and errors: none.");
        } else {
            let _ = writeln!(o, "Refusals and errors by kind:\n");
            for (k, v) in &self.errors {
                let _ = writeln!(o, "- {k}: {v}");
            }
        }
        let du = &self.durability;
        let in_store = du.in_store.iter().flat_map(|t| t.examples.iter());
        for ex in du.by_pull.examples.iter().chain(in_store) {
            let _ = writeln!(o, "- durability problem: {ex}");
        }
        for l in &self.node.log_problems {
            let _ = writeln!(o, "- node log: {l}");
        }
    }
}

/// `pass: 240 acked, 230 present, 10 in a snapshot, 0 missing, 0 altered`.
fn tally_counts(t: &Tally) -> String {
    format!(
        "{}: {} acked, {} present, {} in a snapshot, {} missing, {} altered",
        verdict(t.passed()),
        t.acked,
        t.present,
        t.covered_by_snapshot,
        t.missing,
        t.altered
    )
}
