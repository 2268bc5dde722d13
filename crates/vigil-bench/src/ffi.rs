//! `vigil-bench ffi`: what the app boundary costs (issue 16, "Measured").
//!
//! 1. GATT decoding in Rust (`vigil_log::gatt::decode`, what
//!    `Vault::record_gatt` runs first) on a wristband's realistic mix of
//!    packets, beside two references timed in the same run on the same
//!    bytes: a copy of each packet, and a trivial parse (flags byte and the
//!    first 16-bit field). Target ≥ 1 M packets/s.
//! 2. The full `Vault::record_gatt` (decode + durable record on sled)
//!    against `Vault::record` of the same readings, in the same run.
//! 3. `Vault.record` through the Python binding (a child process running
//!    `crates/vigil-ffi/python/bench_record.py`) against the Rust
//!    `Vault::record` on the same kind of vault (sled, durable per record),
//!    in alternating rounds. Target ≤ 1.5× the Rust time per call.
//!
//! Every figure is printed with the user CPU seconds it took; the header
//! gives the CPU model and core count. Rates on another machine differ: the
//! ratios to the same-run references are what compare.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_device::{MemoryKeyStore, Period, Vault};
use vigil_log::{Metric, gatt};

/// Arguments of `vigil-bench ffi`.
#[derive(Debug, Clone, clap::Args)]
pub struct FfiArgs {
    /// The Python interpreter that imports `vigil_ffi` (a venv with the
    /// release wheel installed).
    #[arg(long, value_name = "PATH", default_value = "python3")]
    pub python: PathBuf,
    /// The Python side of the comparison [default: the workspace's
    /// crates/vigil-ffi/python/bench_record.py].
    #[arg(long, value_name = "PATH")]
    pub script: Option<PathBuf>,
    /// Durable records timed per round, on each side.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub records: u32,
    /// Rounds of the Rust / Python comparison (alternating; medians reported).
    #[arg(long, value_name = "N", default_value_t = 15)]
    pub rounds: u32,
    /// Also write the Markdown report here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Smoke sizes: checks the command works in seconds; the figures are not
    /// comparable with the targets.
    #[arg(long)]
    pub quick: bool,
}

/// Start of the benchmark vaults' period (readings fall inside it).
const START: i64 = 1_790_035_200_000;

/// One minute of a wristband's notifications: heart rate every second (the
/// three shapes of 0x2A37 a band sends), pulse oximetry every 5 s, one
/// temperature. Values vary so that no branch is always taken.
pub fn wristband_minute() -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    for s in 0u8..60 {
        let bpm = 58 + (s * 7) % 60;
        let hr = match s % 3 {
            // 8-bit value, no extras.
            0 => vec![0x00, bpm],
            // 8-bit value, sensor contact, one RR interval.
            1 => vec![0x16, bpm, 0x00, 0x04],
            // 16-bit value, energy expended, two RR intervals.
            _ => vec![0x19, bpm, 0x00, 0x10, 0x00, 0xF0, 0x03, 0x10, 0x04],
        };
        out.push((0x2A37, hr));
        if s % 5 == 0 {
            // SFLOAT SpO2 and pulse rate (exponent 0), no optional fields.
            let spo2 = 94 + s % 6;
            out.push((0x2A5F, vec![0x00, spo2, 0x00, bpm, 0x00]));
        }
    }
    // Temperature, °C, FLOAT (mantissa 36.5–38.0 in tenths), with its type.
    let tenths: u32 = 365 + 7;
    let m = tenths.to_le_bytes();
    out.push((0x2A1C, vec![0x04, m[0], m[1], m[2], 0xFF, 0x02]));
    out
}

/// User CPU seconds of this process so far (`/proc/self/stat`, 10 ms ticks).
fn user_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name: utime is field 14.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(11))
        .and_then(|t| t.parse::<f64>().ok())
        .map_or(0.0, |t| t / 100.0)
}

/// Seconds per pass of `f`, calibrated to about `budget`, median of `runs`.
fn per_pass(runs: usize, budget: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget / 10 {
        f();
        n += 1;
    }
    let iters = (n * 10).max(1);
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() / iters as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// A rate and the user CPU it took.
#[derive(Debug, Clone, Copy)]
struct Rate {
    per_s: f64,
    user_s: f64,
}

struct DecodeFigures {
    packets: usize,
    runs: usize,
    decode: Rate,
    copy: Rate,
    parse: Rate,
}

fn decode_rates(quick: bool) -> Result<DecodeFigures, String> {
    let mix = wristband_minute();
    for (c, b) in &mix {
        gatt::decode(*c, b).map_err(|e| format!("the mix's {c:#06x} packet: {e}"))?;
    }
    let (runs, budget) = if quick {
        (1, Duration::from_millis(20))
    } else {
        (5, Duration::from_millis(400))
    };
    let n = mix.len() as f64;
    let timed = |f: &mut dyn FnMut()| {
        let u = user_s();
        let s = per_pass(runs, budget, f);
        Rate {
            per_s: n / s,
            user_s: user_s() - u,
        }
    };
    let decode = timed(&mut || {
        for (c, b) in &mix {
            black_box(gatt::decode(black_box(*c), black_box(b)).ok());
        }
    });
    let copy = timed(&mut || {
        let mut buf = [0u8; 32];
        for (_, b) in &mix {
            let b = black_box(b.as_slice());
            buf[..b.len()].copy_from_slice(b);
            black_box(&buf);
        }
    });
    let parse = timed(&mut || {
        for (c, b) in &mix {
            let b = black_box(b.as_slice());
            let flags = b.first().copied().unwrap_or(0);
            let first = b.get(1..3).map_or(0, |v| u16::from_le_bytes([v[0], v[1]]));
            black_box((*c, flags, first));
        }
    });
    Ok(DecodeFigures {
        packets: mix.len(),
        runs,
        decode,
        copy,
        parse,
    })
}

fn sled_vault(dir: &Path) -> Result<Vault, String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| e.to_string())?;
    Vault::create(
        dir,
        Period::days(START, 7),
        Box::new(MemoryKeyStore::new()),
        &mut ChaCha20Rng::from_seed(seed),
    )
    .map_err(|e| format!("create a vault in {}: {e}", dir.display()))
}

struct DurableGatt {
    packets: usize,
    readings: usize,
    gatt: Rate,
    record: Rate,
}

/// `record_gatt` of `packets` packets of the mix against `record` of the
/// same readings, each on a fresh sled vault.
fn durable_gatt(tmp: &Path, packets: usize) -> Result<DurableGatt, String> {
    let mix = wristband_minute();
    let stream: Vec<&(u16, Vec<u8>)> = mix.iter().cycle().take(packets).collect();
    let mut vault = sled_vault(&tmp.join("gatt"))?;
    let mut readings = Vec::new();
    let (u, t) = (user_s(), Instant::now());
    for (i, (c, b)) in stream.iter().enumerate() {
        let at = START + 1_000 * i as i64;
        for r in vault.record_gatt(*c, b, at).map_err(|e| e.to_string())? {
            readings.push((r.metric, r.value, r.time_ms));
        }
    }
    let gatt = Rate {
        per_s: packets as f64 / t.elapsed().as_secs_f64(),
        user_s: user_s() - u,
    };
    drop(vault);
    let mut vault = sled_vault(&tmp.join("record"))?;
    let (u, t) = (user_s(), Instant::now());
    for &(m, v, at) in &readings {
        vault
            .record(m, v, m.unit(), at)
            .map_err(|e| e.to_string())?;
    }
    let record = Rate {
        per_s: readings.len() as f64 / t.elapsed().as_secs_f64(),
        user_s: user_s() - u,
    };
    Ok(DurableGatt {
        packets,
        readings: readings.len(),
        gatt,
        record,
    })
}

/// The Rust side of the binding comparison: exactly what the Python script
/// does, from Rust.
fn rust_records(dir: &Path, records: u32) -> Result<Rate, String> {
    let mut vault = sled_vault(dir)?;
    let at = |i: u32| START + 1_000 * i64::from(i);
    let value = |i: u32| 60.0 + f64::from(i % 50);
    // Warm-up, as the script does: sled's first writes allocate its segments.
    for i in 0..100 {
        vault
            .record(Metric::HeartRate, value(i), Metric::HeartRate.unit(), at(i))
            .map_err(|e| e.to_string())?;
    }
    let (u, t) = (user_s(), Instant::now());
    for i in 100..100 + records {
        vault
            .record(Metric::HeartRate, value(i), Metric::HeartRate.unit(), at(i))
            .map_err(|e| e.to_string())?;
    }
    Ok(Rate {
        per_s: f64::from(records) / t.elapsed().as_secs_f64(),
        user_s: user_s() - u,
    })
}

/// The Python side: runs the script, which prints `rate user_s` on its last
/// line.
fn python_records(args: &FfiArgs, script: &Path, dir: &Path) -> Result<Rate, String> {
    let out = Command::new(&args.python)
        .arg(script)
        .arg("--dir")
        .arg(dir)
        .arg("--records")
        .arg(args.records.to_string())
        .arg("--start-ms")
        .arg(START.to_string())
        .output()
        .map_err(|e| format!("run {}: {e}", args.python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed ({}): {}",
            args.python.display(),
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let mut f = last.split_whitespace().map(str::parse::<f64>);
    match (f.next(), f.next()) {
        (Some(Ok(per_s)), Some(Ok(user_s))) => Ok(Rate { per_s, user_s }),
        _ => Err(format!("unexpected output from the script: {stdout:?}")),
    }
}

/// The 1-minute load average, from `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn command_line() -> String {
    let mut args = std::env::args();
    let exe = args
        .next()
        .map(|a| {
            PathBuf::from(a)
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    std::iter::once(exe)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

/// Runs the benchmark and prints (and with `--out` writes) its report.
pub fn main(args: FfiArgs) -> Result<ExitCode, String> {
    let mut args = args;
    if args.quick {
        args.records = args.records.min(200);
        args.rounds = args.rounds.min(1);
    }
    let script = args.script.clone().unwrap_or_else(|| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vigil-ffi/python/bench_record.py");
        p.canonicalize().unwrap_or(p)
    });
    let machine = crate::report::machine();
    let load_before = load_average();
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;

    eprintln!("ffi: GATT decoding");
    let dec = decode_rates(args.quick)?;
    eprintln!("ffi: record_gatt against record on sled");
    let packets = if args.quick { 200 } else { 3000 };
    let dur = durable_gatt(tmp.path(), packets)?;

    let mut rust = Vec::new();
    let mut python = Vec::new();
    for round in 0..args.rounds {
        eprintln!("ffi: round {} of {}", round + 1, args.rounds);
        let rust_dir = tmp.path().join(format!("rust-{round}"));
        let py_dir = tmp.path().join(format!("py-{round}"));
        // Alternate which side goes first, so that neither always follows
        // the other's flushes.
        let (r, p) = if round % 2 == 0 {
            let r = rust_records(&rust_dir, args.records)?;
            (r, python_records(&args, &script, &py_dir)?)
        } else {
            let p = python_records(&args, &script, &py_dir)?;
            (rust_records(&rust_dir, args.records)?, p)
        };
        rust.push(r);
        python.push(p);
    }
    let rust_rate = median(rust.iter().map(|r| r.per_s).collect());
    let py_rate = median(python.iter().map(|r| r.per_s).collect());
    // Each round's two sides ran back to back under the same machine load
    // (other work shares the disk and cores): the median of the per-round
    // ratios is the headline, steadier than a ratio of medians.
    let ratio = median(
        rust.iter()
            .zip(&python)
            .map(|(r, p)| r.per_s / p.per_s)
            .collect(),
    );
    let per_call_us = |v: &[Rate]| {
        median(
            v.iter()
                .map(|r| r.user_s * 1e6 / f64::from(args.records))
                .collect(),
        )
    };
    let (rust_cpu_us, py_cpu_us) = (per_call_us(&rust), per_call_us(&python));

    let load_after = load_average();
    let mut md = String::new();
    let _ = writeln!(md, "# FFI benchmark\n");
    let _ = writeln!(md, "Produced by:\n\n```text\n{}\n```\n", command_line());
    let _ = writeln!(md, "- CPU: {machine}");
    let _ = writeln!(
        md,
        "- 1-minute load average before / after the run: {load_before} / {load_after} (above \
         the core count, other work shared the cores and the disk: wall-clock figures stretch)"
    );
    let _ = writeln!(
        md,
        "- Python side: `{}` running `{}`",
        args.python.display(),
        script.display()
    );
    if args.quick {
        let _ = writeln!(
            md,
            "\n**Quick run: smoke sizes. Figures are not comparable with the targets.**"
        );
    }
    let _ = writeln!(md, "\n## GATT decoding in Rust\n");
    let _ = writeln!(
        md,
        "A wristband's minute ({} packets: heart rate every second in its three shapes, \
         pulse oximetry every 5 s, one temperature), decoded over and over; median of {} timed \
         runs. The references handle the same bytes in the same run.\n",
        dec.packets, dec.runs
    );
    let _ = writeln!(
        md,
        "| what | M packets/s | time per packet / copy's | user CPU |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|");
    for (name, r) in [
        ("`gatt::decode` (0x2A1C / 0x2A37 / 0x2A5F)", dec.decode),
        ("reference: copy each packet into a buffer", dec.copy),
        ("reference: read flags and first 16-bit field", dec.parse),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {:.1} | {:.2}× | {:.2} s |",
            r.per_s / 1e6,
            dec.copy.per_s / r.per_s,
            r.user_s
        );
    }
    let decode_ok = dec.decode.per_s >= 1e6;
    let _ = writeln!(
        md,
        "\nTarget ≥ 1 M packets/s: {:.1} M/s, {} (on this machine that target is {:.3}× the \
         copy reference's rate; decoding runs at {:.3}× it).",
        dec.decode.per_s / 1e6,
        met(decode_ok),
        1e6 / dec.copy.per_s,
        dec.decode.per_s / dec.copy.per_s
    );

    let _ = writeln!(md, "\n## Durable `record_gatt` against `record` (sled)\n");
    let _ = writeln!(
        md,
        "{} packets of the same mix through `Vault::record_gatt` on a fresh sled vault, then \
         the {} readings they held through `Vault::record` on another; each call durable \
         (flushed) when it returns. A pulse-oximetry packet records two readings in one flush.\n",
        dur.packets, dur.readings
    );
    let _ = writeln!(md, "| call | calls/s | readings/s | user CPU |");
    let _ = writeln!(md, "|---|---:|---:|---:|");
    let _ = writeln!(
        md,
        "| `Vault::record_gatt` | {:.0} | {:.0} | {:.2} s |",
        dur.gatt.per_s,
        dur.gatt.per_s * dur.readings as f64 / dur.packets as f64,
        dur.gatt.user_s
    );
    let _ = writeln!(
        md,
        "| `Vault::record` (reference) | {:.0} | {:.0} | {:.2} s |",
        dur.record.per_s, dur.record.per_s, dur.record.user_s
    );
    let _ = writeln!(
        md,
        "\n`record_gatt` packets/s ÷ `record` calls/s: {:.2}×.",
        dur.gatt.per_s / dur.record.per_s
    );

    let _ = writeln!(
        md,
        "\n## `record` through the Python binding against Rust (sled, durable)\n"
    );
    let _ = writeln!(
        md,
        "Each round: {} heart-rate records (after 100 untimed) on a fresh sled vault in Rust \
         (`vigil::Vault::record`), then the same through the Python binding \
         (`Vault.record`, a child process, key store in Python) on the same file system. \
         {} rounds, the first side alternating; medians.\n",
        args.records, args.rounds
    );
    let _ = writeln!(
        md,
        "| round | Rust records/s | Rust user CPU | Python records/s | Python user CPU | time per call, Python / Rust |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|");
    for (i, (r, p)) in rust.iter().zip(&python).enumerate() {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.2} s | {:.0} | {:.2} s | {:.2}× |",
            i + 1,
            r.per_s,
            r.user_s,
            p.per_s,
            p.user_s,
            r.per_s / p.per_s
        );
    }
    let _ = writeln!(
        md,
        "| median | {rust_rate:.0} | {:.1} µs/call | {py_rate:.0} | {:.1} µs/call | {ratio:.2}× |",
        rust_cpu_us, py_cpu_us
    );
    let binding_ok = ratio <= 1.5;
    let _ = writeln!(
        md,
        "\nTarget ≤ 1.5× the Rust time per call at the durable record rate: {ratio:.2}× \
         (median of the rounds' ratios), {}. Medians: {:.1} µs per call through Python against \
         {:.1} µs in Rust; user CPU {:.1} against {:.1} µs per call, so the binding and the \
         interpreter's loop cost about {:.0} µs of CPU per call (10 ms clock ticks: rough).",
        met(binding_ok),
        1e6 / py_rate,
        1e6 / rust_rate,
        py_cpu_us,
        rust_cpu_us,
        py_cpu_us - rust_cpu_us
    );

    println!("{md}");
    if let Some(out) = &args.out {
        std::fs::write(out, &md).map_err(|e| format!("write {}: {e}", out.display()))?;
        eprintln!("ffi: wrote {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_decodes_and_holds_every_characteristic() {
        let mix = wristband_minute();
        for c in [0x2A1C, 0x2A37, 0x2A5F] {
            assert!(mix.iter().any(|(m, _)| *m == c), "{c:#06x}");
        }
        for (c, b) in &mix {
            let m = gatt::decode(*c, b).unwrap();
            assert!(m.values().count() >= 1, "{c:#06x} {b:02x?}");
        }
    }
}
