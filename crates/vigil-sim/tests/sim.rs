//! The harness itself: runs pass, replays are exact, invariants bite.

use vigil_sim::{Scenario, SimConfig, World, run};

fn config(seed: u64, scenario: Scenario) -> SimConfig {
    SimConfig {
        seed,
        devices: 3,
        scenario,
        steps: 150,
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
