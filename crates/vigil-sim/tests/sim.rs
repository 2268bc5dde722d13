//! The harness itself: runs pass, replays are exact, invariants bite.

use vigil_sim::{Bug, Scenario, SimConfig, World, run};

fn config(seed: u64, scenario: Scenario) -> SimConfig {
    SimConfig {
        seed,
        devices: 3,
        scenario,
        steps: 150,
        bug: Bug::None,
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

fn more_devices_than_three(w: &World) -> Result<(), String> {
    if w.device_count() > 3 {
        Ok(())
    } else {
        Err(format!("only {} devices", w.device_count()))
    }
}

#[test]
fn a_user_invariant_is_checked_and_reported() {
    let r = run(&config(3, Scenario::Week), &[more_devices_than_three]);
    assert_eq!(r.failures, vec!["only 3 devices".to_owned()]);
    let r = run(
        &SimConfig {
            devices: 4,
            ..config(3, Scenario::Week)
        },
        &[more_devices_than_three],
    );
    assert!(r.failures.is_empty(), "{:?}", r.failures);
}

/// The harness must catch real bugs: each injected one is found within a
/// bounded number of seeds.
#[test]
fn the_harness_catches_injected_bugs() {
    for (bug, scenario) in [
        (Bug::RelayDropsAckedBundles, Scenario::Week),
        (Bug::VectorAheadOfReceivedAfterRestart, Scenario::Conflicts),
        (Bug::NodeForgetsInboxOnRestart, Scenario::FeverWhileOffline),
    ] {
        let caught = (0..40).find(|&seed| {
            let c = SimConfig {
                bug,
                steps: 300,
                ..config(seed, scenario)
            };
            !run(&c, &[]).failures.is_empty()
        });
        assert!(caught.is_some(), "{bug:?} went unnoticed for 40 seeds");
        eprintln!("{bug:?}: caught at seed {}", caught.unwrap_or_default());
    }
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
