//! The harness itself: runs pass, replays are exact, invariants bite.

use vigil_sim::{Bug, Scenario, SimConfig, World, run};

fn config(seed: u64, scenario: Scenario) -> SimConfig {
    SimConfig {
        seed,
        devices: 3,
        scenario,
        steps: 150,
        bug: Bug::None,
        workload: None,
    }
}

#[test]
fn every_scenario_passes_a_few_seeds() {
    let mut alerts = 0;
    let mut readings = 0;
    for scenario in Scenario::ALL {
        for seed in 0..3 {
            let r = run(&config(seed, scenario), &[]);
            assert!(
                r.failures.is_empty(),
                "{} seed {seed} failed (replay: cargo run -p vigil-sim -- --seeds {seed}..{} --scenario {} --devices 3 --steps 150): {:?}",
                scenario.name(),
                seed + 1,
                scenario.name(),
                r.failures
            );
            alerts += r.alerts;
            readings += r.readings;
        }
    }
    assert!(readings > 100, "the runs did record ({readings} readings)");
    assert!(alerts > 0, "some fever reached the inbox");
}

#[test]
fn one_seed_replays_exactly_and_seeds_differ() {
    let a = run(&config(11, Scenario::Conflicts), &[]);
    let b = run(&config(11, Scenario::Conflicts), &[]);
    let c = run(&config(12, Scenario::Conflicts), &[]);
    assert_eq!(a, b, "same seed, same run");
    assert_ne!(a.hash, c.hash);
    assert!(a.events > 50);
}

fn at_most_two_devices(w: &World) -> Result<(), String> {
    match w.device_count() {
        n if n <= 2 => Ok(()),
        n => Err(format!("{n} devices, more than two")),
    }
}

fn at_least_three_devices(w: &World) -> Result<(), String> {
    match w.device_count() {
        n if n >= 3 => Ok(()),
        n => Err(format!("{n} devices, fewer than three")),
    }
}

/// A run starts with three devices and may pair more (devices are never
/// removed), so one of these invariants always holds and the other never
/// does, whatever the seed draws: exactly the broken one is reported.
#[test]
fn a_user_invariant_is_checked_and_reported() {
    let r = run(
        &config(3, Scenario::Week),
        &[at_least_three_devices, at_most_two_devices],
    );
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    assert!(
        r.failures[0].ends_with("devices, more than two"),
        "{:?}",
        r.failures
    );
    let r = run(&config(3, Scenario::Week), &[at_least_three_devices]);
    assert!(r.failures.is_empty(), "{:?}", r.failures);
}

/// The harness must catch real bugs: each injected one is found within a
/// bounded number of seeds, and the failure names what broke.
#[test]
fn the_harness_catches_injected_bugs() {
    for (bug, scenario, symptom) in [
        (Bug::RelayDropsAckedBundles, Scenario::Week, "out of order"),
        (
            Bug::VectorAheadOfReceivedAfterRestart,
            Scenario::Conflicts,
            // Its journal cannot be replayed into the log it lost.
            "does not reopen",
        ),
        (
            Bug::NodeForgetsInboxOnRestart,
            Scenario::Week,
            "never reached the inbox",
        ),
        (Bug::SkipQueuedChanges, Scenario::Week, "views differ"),
        (
            Bug::OwnSeqStuckAfterRestart,
            Scenario::Week,
            // The node acknowledges a reused seq whose bundle it has folded
            // into a relay snapshot (it keeps no copy to compare), so the
            // readings in the new bundle never leave the device.
            "is lost",
        ),
        (
            // Only the enrolled device sends alerts, so a duplicate needs a
            // lost reply and a node restart before the retry: the conflicts
            // scenario's faults make that likely enough.
            Bug::AlertDedupForgetsOnRestart,
            Scenario::Conflicts,
            "reached the inbox twice",
        ),
        (Bug::FoldRemovesJournalFirst, Scenario::Week, "is lost"),
    ] {
        // A duplicate alert needs a lost reply and a node restart before
        // the retry, which few seeds draw (`vigil-sim --seeds 0..300
        // --scenario conflicts --bug alert-dedup-forgets`: 6 seeds, the
        // first at 11, before pairings skipped needless relay snapshots;
        // 9, the first at 83, after). Any change to the traffic moves
        // which seeds those are, so this bug gets more seeds than the
        // others; stopping at the first catch, the bound costs nothing
        // while the harness catches it.
        let seeds = if bug == Bug::AlertDedupForgetsOnRestart {
            300
        } else {
            60
        };
        let caught = (0..seeds).find_map(|seed| {
            let c = SimConfig {
                bug,
                steps: 300,
                ..config(seed, scenario)
            };
            let f = run(&c, &[]).failures;
            (!f.is_empty()).then_some((seed, f))
        });
        let Some((seed, failures)) = caught else {
            panic!("{bug:?} went unnoticed for {seeds} seeds");
        };
        assert!(
            failures.iter().any(|f| f.contains(symptom)),
            "{bug:?} caught at seed {seed}, but not as {symptom:?}: {failures:?}"
        );
        eprintln!("{bug:?}: caught at seed {seed}: {}", failures[0]);
    }
    assert_eq!(Bug::ALL.len(), 7, "a new bug needs a row above");
}

/// The CI's bounded sweep: 64 seeds of every scenario (256 runs of a
/// simulated week). `vigil-sim --seeds 0..10000` runs the long version.
#[test]
fn a_few_hundred_seeds_pass() {
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for half in 0..2u64 {
            let failures = &failures;
            s.spawn(move || {
                for scenario in Scenario::ALL {
                    for seed in (half * 32)..(half * 32 + 32) {
                        let c = SimConfig { steps: 300, ..config(seed, scenario) };
                        let r = run(&c, &[]);
                        if !r.failures.is_empty() {
                            failures.lock().unwrap().push(format!(
                                "{} seed {seed}: {:?} (replay: cargo run --release -p vigil-sim -- --seeds {seed}..{} --scenario {} --devices 3 --steps 300)",
                                scenario.name(),
                                r.failures,
                                seed + 1,
                                scenario.name()
                            ));
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A user's workload runs inside the simulation and its effects are what
/// the user's invariant sees: a reading made by one device, offline at the
/// time, reaches every device after the heal.
#[test]
fn a_custom_workload_and_invariant_run() {
    fn workload(w: &mut vigil_sim::World, step: usize) -> bool {
        match step {
            10 => {
                w.restart_device(1); // in case it had crashed
                w.set_online(1, false);
                w.record(1, vigil_log::Metric::HeartRate, 199.0, 0).is_ok()
            }
            20 => {
                w.set_online(1, true);
                true
            }
            _ => false,
        }
    }
    fn everyone_has_the_199(w: &World) -> Result<(), String> {
        for i in 0..w.device_count() {
            let Some(v) = w.vault(i) else { continue };
            let found = v
                .log()
                .readings(Some(vigil_log::Metric::HeartRate), i64::MIN, i64::MAX, true)
                .iter()
                .any(|r| r.value == 199.0);
            if !found {
                return Err(format!("device {i} lacks the reading"));
            }
        }
        Ok(())
    }
    fn never(_: &World) -> Result<(), String> {
        Err("invariants do run".into())
    }
    for seed in 0..5 {
        let c = SimConfig {
            workload: Some(workload),
            ..config(seed, Scenario::Week)
        };
        let r = run(&c, &[everyone_has_the_199]);
        assert!(r.failures.is_empty(), "seed {seed}: {:?}", r.failures);
        // A failing invariant is reported.
        let r = run(&c, &[never]);
        assert_eq!(r.failures, vec!["invariants do run".to_string()]);
    }
}
