//! GATT decoding speed: packets per second for each characteristic.
//!
//! `cargo bench -p vigil-log --bench gatt` prints a Markdown table of the
//! median rate over 5 runs of ~0.3 s each (issue 16 asks >= 1 M packets/s).
//! Without `--bench` (under `cargo test`) it does one quick pass so the
//! harness itself stays tested.

use std::hint::black_box;
use std::time::{Duration, Instant};

use vigil_log::gatt;

fn per_call(budget: Duration, mut f: impl FnMut()) -> f64 {
    // Calibrate, then time a fixed count so every run does equal work.
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget / 10 {
        f();
        n += 1;
    }
    let iters = (n * 10).max(1);
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_secs_f64() / iters as f64
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (runs, budget) = if full {
        (5, Duration::from_millis(300))
    } else {
        (1, Duration::from_millis(5))
    };
    let cases: [(&str, u16, &[u8]); 4] = [
        (
            "2A1C temperature, time stamp, type",
            0x2A1C,
            &[
                0x06, 0xB0, 0x0E, 0x00, 0xFE, 0xDC, 0x07, 0x0C, 0x05, 0x0B, 0x32, 0x1B, 0x04,
            ],
        ),
        ("2A37 heart rate, 8-bit", 0x2A37, &[0x00, 0x48]),
        (
            "2A37 heart rate, energy, 3 RR",
            0x2A37,
            &[0x1E, 0x48, 0x10, 0x00, 0x00, 0x04, 0xF0, 0x03, 0x10, 0x04],
        ),
        (
            "2A5F PLX, every field",
            0x2A5F,
            &[
                0x1F, 0x62, 0x00, 0x48, 0x00, 0x61, 0x00, 0x49, 0x00, 0x63, 0x00, 0x47, 0x00, 0x20,
                0x00, 0x00, 0x00, 0x00, 0x32, 0xF0,
            ],
        ),
    ];
    println!("| packet | M packets/s (median of {runs}) |");
    println!("|---|---|");
    for (name, c, bytes) in cases {
        assert!(gatt::decode(c, bytes).is_ok(), "{name}");
        let mut rates: Vec<f64> = (0..runs)
            .map(|_| {
                1.0 / per_call(budget, || {
                    black_box(gatt::decode(black_box(c), black_box(bytes)).ok());
                })
            })
            .collect();
        rates.sort_by(f64::total_cmp);
        println!("| {name} | {:.1} |", rates[runs / 2] / 1e6);
    }
}
