//! The monitoring-week benchmark (step 2).
//!
//! `cargo bench -p vigil-device --bench week` runs a deterministic week —
//! body temperature and heart rate every minute, SpO2 and respiratory rate
//! every 5 minutes, steps every 15 (24,864 readings), daily check-ins, a
//! fever on day 3 — and prints:
//!
//! 1. the representation comparison that chose encoded byte values over
//!    4-field maps (append rate, `save()` size, load time);
//! 2. durable `record` rate and latency percentiles on sled;
//! 3. the time to open the vault holding the week;
//! 4. bytes on disk against Automerge's own `save()` of the same log.
//!
//! Without `--bench` it runs one day, as a smoke test.

use std::path::Path;
use std::time::Instant;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT};
use vigil_device::{Period, Vault};
use vigil_log::{Day, Metric, Severity, Symptom};

const START: i64 = 1_790_035_200_000;
const MIN: i64 = 60_000;

/// The week's readings, in time order: (metric, value, time).
fn workload(days: i64) -> Vec<(Metric, f64, i64)> {
    let mut out = Vec::new();
    for m in 0..days * 1440 {
        let t = START + m * MIN;
        for (metric, value) in vigil_testkit::wristband_readings(m, 5, 15) {
            out.push((metric, value, t));
        }
    }
    out
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        dir_size(&p)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn representations(week: &[(Metric, f64, i64)]) {
    println!(
        "## Representation (Automerge alone, {} readings)\n",
        week.len()
    );
    println!("| representation | append/s | save() bytes | load ms |");
    println!("|---|---:|---:|---:|");
    // 4-field maps in a list.
    let mut doc = AutoCommit::new();
    let list = doc.put_object(ROOT, "readings", ObjType::List).unwrap();
    let t = Instant::now();
    for (i, (m, v, time)) in week.iter().enumerate() {
        let obj = doc.insert_object(&list, i, ObjType::Map).unwrap();
        doc.put(&obj, "t", *time).unwrap();
        doc.put(&obj, "m", *m as u64).unwrap();
        doc.put(&obj, "v", *v).unwrap();
        doc.put(&obj, "d", 1u64).unwrap();
        doc.commit();
    }
    let rate = week.len() as f64 / t.elapsed().as_secs_f64();
    let bytes = doc.save();
    let t = Instant::now();
    let _ = AutoCommit::load(&bytes).unwrap();
    println!(
        "| 4-field maps | {rate:.0} | {} | {:.1} |",
        bytes.len(),
        ms(t.elapsed())
    );
    // Encoded 42-byte values (what vigil-log uses).
    let mut log = vigil_log::HealthLog::new(vigil_log::DeviceId([1; 16]));
    let t = Instant::now();
    for (m, v, time) in week {
        log.record(*m, *v, m.unit(), *time).unwrap();
    }
    let rate = week.len() as f64 / t.elapsed().as_secs_f64();
    let bytes = log.save();
    let t = Instant::now();
    let _ = vigil_log::HealthLog::load(&bytes, vigil_log::DeviceId([1; 16])).unwrap();
    println!(
        "| encoded bytes (chosen) | {rate:.0} | {} | {:.1} |\n",
        bytes.len(),
        ms(t.elapsed())
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let days = if full { 7 } else { 1 };
    let week = workload(days);
    representations(&week);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let (mut vault, keys) = vigil_testkit::disk_vault(&dir, Period::days(START, 7), 1);
    let mut lat = Vec::with_capacity(week.len());
    let t0 = Instant::now();
    let mut day_done = -1;
    for (m, v, time) in &week {
        let t = Instant::now();
        vault.record(*m, *v, m.unit(), *time).unwrap();
        lat.push(t.elapsed());
        let d = (time - START) / 86_400_000;
        if d != day_done {
            day_done = d;
            vault
                .check_in(Day::of(*time), Symptom::Fatigue, Severity::Mild)
                .unwrap();
        }
    }
    let total = t0.elapsed();
    lat.sort();
    let pct = |p: f64| ms(lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)]);
    let rate = week.len() as f64 / total.as_secs_f64();
    let episodes = vault.log().fever_episodes(&Default::default()).len();
    drop(vault);

    let mut opens = vec![];
    for _ in 0..3 {
        let t = Instant::now();
        let v = Vault::open_at(&dir, &keys, START).unwrap();
        opens.push(t.elapsed());
        assert_eq!(v.log().len(), week.len());
    }
    opens.sort();
    let mut v = Vault::open_at(&dir, &keys, START).unwrap();
    let t = Instant::now();
    let automerge_save = v.export_automerge();
    let save_ms = ms(t.elapsed());
    let t = Instant::now();
    let _ = vigil_log::HealthLog::load(&automerge_save, v.device_id()).unwrap();
    let load_ms = ms(t.elapsed());
    drop(v);
    let disk = dir_size(&dir);
    if std::env::var_os("VIGIL_BENCH_FILES").is_some() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            println!(
                "{:>10} {}",
                dir_size(&e.path()).max(e.metadata().unwrap().len()),
                e.path().display()
            );
        }
    }

    println!(
        "## Vault on sled ({days} days, {} readings, {episodes} fever episode(s))\n",
        week.len()
    );
    println!("| figure | value | target |");
    println!("|---|---:|---:|");
    println!("| durable record rate | {rate:.0}/s | ≥ 5,000/s |");
    println!(
        "| record p50 / p99 / max | {:.3} / {:.3} / {:.1} ms | p99 ≤ 1 ms |",
        pct(0.5),
        pct(0.99),
        ms(*lat.last().unwrap())
    );
    println!(
        "| open the vault (median of 3) | {:.1} ms | ≤ 100 ms |",
        ms(opens[1])
    );
    println!(
        "| bytes on disk / Automerge save() | {disk} / {} = {:.2}× | ≤ 3× |",
        automerge_save.len(),
        disk as f64 / automerge_save.len() as f64
    );
    println!("| Automerge alone: save() / load | {save_ms:.1} ms / {load_ms:.1} ms | |");
    // Machine-readable, for `vigil-bench report`.
    println!("figure: record_per_s {rate:.0}");
    println!("figure: record_p99_ms {:.3}", pct(0.99));
    println!("figure: week_open_ms {:.1}", ms(opens[1]));
    println!(
        "figure: disk_ratio {:.2}",
        disk as f64 / automerge_save.len() as f64
    );

    // Shred the week's vault: tombstone, key destruction, store deletion.
    let v = Vault::open_at(&dir, &keys, START).unwrap();
    let t = Instant::now();
    v.shred_now(&keys, START + 7 * 86_400_000).unwrap();
    let shred = t.elapsed();
    println!(
        "| shred the week's vault (open vault → tombstone only) | {:.1} ms | ≤ 50 ms |",
        ms(shred)
    );
    println!("figure: shred_ms {:.2}", ms(shred));
}
