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
//!    in alternating chunks. Target ≤ 1.5× the Rust time per call.
//!
//! Every figure is printed with the user CPU seconds it took; the header
//! gives the CPU model and core count. Rates on another machine differ: the
//! ratios to the same-run references are what compare.

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::{BufRead, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
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
    /// Durable records per chunk, on each side.
    #[arg(long, value_name = "N", default_value_t = 250)]
    pub records: u32,
    /// Chunks of the Rust / Python comparison (Rust and Python alternate).
    #[arg(long, value_name = "N", default_value_t = 40)]
    pub chunks: u32,
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
        // 58–117 bpm, in a scrambled order (s·7 mod 60 visits each step once).
        let bpm = 58 + u8::try_from(u32::from(s) * 7 % 60).unwrap_or(0);
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
/// does, from Rust, chunk by chunk.
struct RustSide {
    vault: Vault,
    next: u32,
}

fn at(i: u32) -> i64 {
    START + 1_000 * i64::from(i)
}

fn value(i: u32) -> f64 {
    60.0 + f64::from(i % 50)
}

impl RustSide {
    fn new(dir: &Path) -> Result<Self, String> {
        let mut side = RustSide {
            vault: sled_vault(dir)?,
            next: 0,
        };
        // Untimed, as the script does: sled's first writes allocate its segments.
        side.records(100)?;
        Ok(side)
    }

    fn records(&mut self, n: u32) -> Result<Timed, String> {
        let (u, t) = (user_s(), Instant::now());
        for i in self.next..self.next + n {
            self.vault
                .record(Metric::HeartRate, value(i), Metric::HeartRate.unit(), at(i))
                .map_err(|e| e.to_string())?;
        }
        self.next += n;
        Ok(Timed {
            wall_s: t.elapsed().as_secs_f64(),
            user_s: user_s() - u,
        })
    }
}

/// One chunk's wall-clock and user CPU seconds.
#[derive(Debug, Clone, Copy)]
struct Timed {
    wall_s: f64,
    user_s: f64,
}

/// The Python side: the script as a child process that records a chunk
/// whenever it is asked to (see its docstring).
struct PythonSide {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl PythonSide {
    fn start(args: &FfiArgs, script: &Path, dir: &Path) -> Result<Self, String> {
        let mut child = Command::new(&args.python)
            .arg(script)
            .arg("--dir")
            .arg(dir)
            .arg("--start-ms")
            .arg(START.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("run {}: {e}", args.python.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut side = PythonSide {
            child,
            stdin,
            stdout,
        };
        let line = side.line()?;
        if line.trim() != "ready" {
            return Err(format!("the script said {line:?}, not ready"));
        }
        Ok(side)
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the Python script ended early (its stderr is above)".into());
        }
        Ok(line)
    }

    fn records(&mut self, n: u32) -> Result<Timed, String> {
        writeln!(self.stdin, "{n}").map_err(|e| e.to_string())?;
        self.stdin.flush().map_err(|e| e.to_string())?;
        let line = self.line()?;
        let mut f = line.split_whitespace().map(str::parse::<f64>);
        match (f.next(), f.next()) {
            (Some(Ok(wall_s)), Some(Ok(user_s))) => Ok(Timed { wall_s, user_s }),
            _ => Err(format!("unexpected line from the script: {line:?}")),
        }
    }

    fn finish(self) -> Result<(), String> {
        let PythonSide {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let status = child.wait().map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("the Python script failed at the end: {status}"))
        }
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
        args.records = args.records.min(50);
        args.chunks = args.chunks.min(4);
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

    // Both sides record into their own vault chunk by chunk, alternately,
    // so that both see the same machine load (other work shares the disk
    // and the cores); the first side of each pair alternates too.
    let mut rust_side = RustSide::new(&tmp.path().join("rust"))?;
    let mut py_side = PythonSide::start(&args, &script, &tmp.path().join("python"))?;
    let mut rust = Vec::new();
    let mut python = Vec::new();
    for chunk in 0..args.chunks {
        if chunk % 2 == 0 {
            rust.push(rust_side.records(args.records)?);
            python.push(py_side.records(args.records)?);
        } else {
            python.push(py_side.records(args.records)?);
            rust.push(rust_side.records(args.records)?);
        }
    }
    py_side.finish()?;
    drop(rust_side);
    let total = |v: &[Timed]| v.iter().map(|t| t.wall_s).sum::<f64>();
    let total_user = |v: &[Timed]| v.iter().map(|t| t.user_s).sum::<f64>();
    let calls = f64::from(args.records) * f64::from(args.chunks);
    let (rust_s, py_s) = (total(&rust), total(&python));
    let ratio = py_s / rust_s;
    let chunk_ratio = median(
        rust.iter()
            .zip(&python)
            .map(|(r, p)| p.wall_s / r.wall_s)
            .collect(),
    );
    let (rust_user, py_user) = (total_user(&rust), total_user(&python));

    let load_after = load_average();
    let mut md = String::new();
    let _ = writeln!(md, "# FFI benchmark\n");
    let _ = writeln!(
        md,
        "Produced by (the Python binding a release build, as an app ships it):\n\n```text\n\
         python3 -m venv /tmp/venv-bench && /tmp/venv-bench/bin/pip install maturin\n\
         cd crates/vigil-ffi && /tmp/venv-bench/bin/maturin build --release --out ../../target/wheels && cd ../..\n\
         /tmp/venv-bench/bin/pip install --force-reinstall target/wheels/vigil_ffi-*.whl\n\
         cargo build --release -p vigil-bench\n\
         {}\n```\n",
        command_line()
    );
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
        "The same heart-rate records, each durable (flushed) when it returns, through \
         `vigil::Vault::record` in Rust and through the Python binding's `Vault.record` (a \
         child process, key store in Python), each into its own fresh sled vault on the same \
         file system, after 100 untimed: {} chunks of {} records, Rust and Python chunks \
         alternating so that both sides see the same machine load.\n",
        args.chunks, args.records
    );
    let _ = writeln!(
        md,
        "| side | records | records/s | µs per call | user CPU | user CPU per call |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
    for (name, wall, user) in [
        ("Rust `vigil::Vault::record`", rust_s, rust_user),
        ("Python `Vault.record`", py_s, py_user),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {calls:.0} | {:.0} | {:.1} | {user:.2} s | {:.1} µs |",
            calls / wall,
            wall * 1e6 / calls,
            user * 1e6 / calls
        );
    }
    let binding_ok = ratio <= 1.5;
    let _ = writeln!(
        md,
        "\nTarget ≤ 1.5× the Rust time per call at the durable record rate: {ratio:.2}× (total \
         time, Python / Rust), {}. Median of the {} chunk pairs' ratios: {chunk_ratio:.2}×. The \
         binding and the interpreter's loop cost about {:.0} µs of CPU per call (user CPU, \
         10 ms clock ticks: rough).",
        met(binding_ok),
        args.chunks,
        (py_user - rust_user) * 1e6 / calls
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
