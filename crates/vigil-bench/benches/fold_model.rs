//! What the log's data model costs in Automerge: a week of band readings
//! stored one list element per reading (the log's schema today) against
//! one bytes value per fold (a candidate schema: a reading never changes
//! once recorded, so a fold's readings could be one value). Measured side
//! by side in one run, on Automerge alone, with the log's own encoding of
//! a reading; the candidate is not implemented in the log.
//!
//! `cargo bench -p vigil-bench --bench fold_model` prints a Markdown table
//! (median of 5 runs of a week: 168 hourly folds of 148 readings). For an
//! instruction count, run its binary under callgrind with `--bench` and
//! `VIGIL_FOLD_MODEL=each` or `=fold` to take one side. Without `--bench`
//! (under `cargo test`) it does one small pass so the harness stays tested.

use std::time::{Duration, Instant};

use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue, transaction::Transactable};
use vigil_bench::report::{cpu_model, self_user_s};
use vigil_log::{DeviceId, Metric, READING_LEN, Reading, ReadingId};

/// What one side measured, for one week.
struct Side {
    build: Duration,
    save: Duration,
    load: Duration,
    bytes: usize,
}

fn reading(n: u64) -> [u8; READING_LEN] {
    Reading {
        id: ReadingId {
            device: DeviceId([7; 16]),
            seq: n + 1,
        },
        time_ms: 1_790_000_000_000 + (n as i64) * 24_324,
        metric: if n.is_multiple_of(2) {
            Metric::BodyTemperature
        } else {
            Metric::HeartRate
        },
        value: if n.is_multiple_of(2) {
            36.4 + (n % 11) as f64 * 0.05
        } else {
            64.0 + (n % 13) as f64
        },
    }
    .encode()
}

/// Builds the week one way, then saves and loads it.
fn week(per_value: bool, folds: u64, per_fold: u64) -> Side {
    let mut doc = AutoCommit::new();
    let list = doc
        .put_object(ROOT, "readings", ObjType::List)
        .expect("a new document takes a list");
    let start = Instant::now();
    let mut len = 0;
    for f in 0..folds {
        let first = f * per_fold;
        if per_value {
            let mut block = Vec::with_capacity(per_fold as usize * READING_LEN);
            for n in first..first + per_fold {
                block.extend_from_slice(&reading(n));
            }
            doc.insert(&list, len, block).expect("in range");
            len += 1;
        } else {
            let values = (first..first + per_fold).map(|n| ScalarValue::Bytes(reading(n).to_vec()));
            doc.splice(&list, len, 0, values).expect("in range");
            len += per_fold as usize;
        }
        doc.commit();
    }
    let build = start.elapsed();
    let start = Instant::now();
    let saved = doc.save();
    let save = start.elapsed();
    let start = Instant::now();
    let loaded = AutoCommit::load(&saved).expect("its own save loads");
    let load = start.elapsed();
    assert_eq!(loaded.length(&list), len, "every element is back");
    Side {
        build,
        save,
        load,
        bytes: saved.len(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (runs, folds, per_fold) = if full { (5, 168, 148) } else { (1, 4, 16) };
    let only = std::env::var("VIGIL_FOLD_MODEL").ok();
    let sides: Vec<(&str, bool)> = [
        ("one element per reading", false),
        ("one value per fold", true),
    ]
    .into_iter()
    .filter(|(_, v)| match only.as_deref() {
        Some("each") => !v,
        Some("fold") => *v,
        _ => true,
    })
    .collect();
    let cpu = Instant::now();
    let mut rows = Vec::new();
    for (name, per_value) in &sides {
        let all: Vec<Side> = (0..runs)
            .map(|_| week(*per_value, folds, per_fold))
            .collect();
        let bytes = all[0].bytes;
        rows.push((
            *name,
            median(all.iter().map(|s| s.build).collect()),
            median(all.iter().map(|s| s.save).collect()),
            median(all.iter().map(|s| s.load).collect()),
            bytes,
        ));
    }
    println!(
        "## The log's data model in Automerge: {} readings in {folds} folds of {per_fold}, median of {runs}\n",
        folds * per_fold
    );
    println!("| model | build (folds) | save() | load | save() bytes |");
    println!("|---|---:|---:|---:|---:|");
    for (name, build, save, load, bytes) in &rows {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms | {bytes} |",
            ms(*build),
            ms(*save),
            ms(*load)
        );
    }
    if let [(_, b0, s0, l0, _), (_, b1, s1, l1, _)] = rows.as_slice() {
        let r = |a: &Duration, b: &Duration| b.as_secs_f64() / a.as_secs_f64();
        println!(
            "\nper fold / per reading: build {:.3}×, save {:.3}×, load {:.3}×",
            r(b0, b1),
            r(s0, s1),
            r(l0, l1)
        );
        println!("figure: fold_model_load {:.3}", r(l0, l1));
    }
    println!(
        "\n{} ({} cores); this program: {:.1} s wall, {} user",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu.elapsed().as_secs_f64(),
        self_user_s().map_or_else(|| "unknown".into(), |u| format!("{u:.1} s"))
    );
}
