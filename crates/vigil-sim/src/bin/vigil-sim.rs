//! Runs many seeds of the simulation across cores and prints a summary.
//!
//! ```text
//! vigil-sim --seeds 0..200 [--scenario week|conflicts|fever-offline|shred-partitioned|all]
//!           [--devices 2..6] [--steps N] [--threads N] [--bug NAME]
//! ```
//!
//! Every failing seed is printed with the one command that replays it. The
//! first seed of each scenario is run once more after the others as a
//! determinism check (the same event-log hash both times).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use vigil_sim::{Bug, Scenario, SimConfig, run};

struct Args {
    seeds: std::ops::Range<u64>,
    scenarios: Vec<Scenario>,
    devices: usize,
    steps: usize,
    threads: usize,
    bug: Bug,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        seeds: 0..100,
        scenarios: Scenario::ALL.to_vec(),
        devices: 3,
        steps: 300,
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        bug: Bug::None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--seeds" => {
                let v = value()?;
                let (x, y) = v
                    .split_once("..")
                    .ok_or("--seeds takes A..B, e.g. 0..1000")?;
                let x: u64 = x.parse().map_err(|_| format!("bad seed {x:?}"))?;
                let y: u64 = y.parse().map_err(|_| format!("bad seed {y:?}"))?;
                if y <= x {
                    return Err("--seeds A..B needs A < B".into());
                }
                a.seeds = x..y;
            }
            "--scenario" => {
                let v = value()?;
                a.scenarios = if v == "all" {
                    Scenario::ALL.to_vec()
                } else {
                    vec![Scenario::parse(&v).ok_or(format!(
                        "unknown scenario {v:?} (week, conflicts, fever-offline, shred-partitioned, all)"
                    ))?]
                };
            }
            "--devices" => {
                a.devices = value()?.parse().map_err(|_| "--devices takes 2..6")?;
                if !(2..=6).contains(&a.devices) {
                    return Err("--devices takes 2..6".into());
                }
            }
            "--steps" => a.steps = value()?.parse().map_err(|_| "--steps takes a number")?,
            "--threads" => {
                a.threads = value()?
                    .parse::<usize>()
                    .map_err(|_| "--threads takes a number")?
                    .max(1)
            }
            "--bug" => {
                let v = value()?;
                a.bug = Bug::parse(&v).ok_or_else(|| {
                    let names: Vec<_> = Bug::ALL.iter().map(|b| b.name()).collect();
                    format!("unknown bug {v:?} ({})", names.join(", "))
                })?;
            }
            "-h" | "--help" => {
                println!(
                    "vigil-sim --seeds A..B [--scenario NAME|all] [--devices 2..6] [--steps N] [--threads N] [--bug NAME]\n\
                     --bug injects a deliberately wrong variant, to watch the harness catch it\n\
                          example: vigil-sim --seeds 0..1000 --scenario conflicts --devices 4"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other:?} (try --help)")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vigil-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for scenario in &args.scenarios {
        let config = |seed| SimConfig {
            seed,
            devices: args.devices,
            scenario: *scenario,
            steps: args.steps,
            bug: args.bug,
            workload: None,
        };
        let next = Arc::new(AtomicU64::new(args.seeds.start));
        let failures = Arc::new(Mutex::new(Vec::new()));
        // The first seed's event-log hash, from its run in the pool.
        let first = Mutex::new(None);
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..args.threads {
                s.spawn(|| {
                    loop {
                        let seed = next.fetch_add(1, Ordering::Relaxed);
                        if seed >= args.seeds.end {
                            break;
                        }
                        let r = run(&config(seed), &[]);
                        if seed == args.seeds.start {
                            *first.lock().unwrap_or_else(|p| p.into_inner()) = Some(r.hash);
                        }
                        if !r.failures.is_empty() {
                            failures.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                        }
                    }
                });
            }
        });
        let n = args.seeds.end - args.seeds.start;
        let secs = started.elapsed().as_secs_f64();
        // Determinism: the first seed once more, the same event-log hash as
        // its run in the pool (run there like every seed, its failures
        // reported with theirs; running it twice before the pool as well
        // cost a whole extra run).
        let again = run(&config(args.seeds.start), &[]);
        if *first.lock().unwrap_or_else(|p| p.into_inner()) != Some(again.hash) {
            eprintln!(
                "{}: seed {} is not deterministic",
                scenario.name(),
                again.seed
            );
            failed = true;
        }
        let mut failures = failures.lock().unwrap_or_else(|p| p.into_inner()).clone();
        failures.sort_by_key(|r| r.seed);
        println!(
            "{}: {n} seeds, {} failed, {:.1} seeds/s ({} devices, {} steps, {} threads)",
            scenario.name(),
            failures.len(),
            n as f64 / secs,
            args.devices,
            args.steps,
            args.threads
        );
        for r in &failures {
            failed = true;
            println!("  seed {}: {}", r.seed, r.failures.join("; "));
            println!(
                "    replay: cargo run --release -p vigil-sim -- --seeds {}..{} --scenario {} --devices {} --steps {}{}",
                r.seed,
                r.seed + 1,
                scenario.name(),
                args.devices,
                args.steps,
                if args.bug == Bug::None {
                    String::new()
                } else {
                    format!(" --bug {}", args.bug.name())
                }
            );
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
