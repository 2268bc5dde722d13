//! Write your own scenario and invariant in a few lines and run them over
//! many seeds: `cargo run --release -p vigil-sim --example custom_scenario`.
//!
//! The scenario: on day 2 the wristband (device 1) loses the network for
//! half a day while it measures a fever, and the phone (device 0) crashes
//! in the middle of it. The invariant: after the heal, every running device
//! holds the same readings, and the fever reached the node.

use vigil_log::Metric;
use vigil_sim::{Scenario, SimConfig, World, run};

const HOUR: i64 = 3_600_000;

/// Runs at every step before the scenario's random operation.
fn wristband_offline_with_fever(w: &mut World, step: usize) -> bool {
    let hour_of_period = (w.now_ms() - w.period_start_ms()) / HOUR;
    match hour_of_period {
        // Day 2, 08:00-20:00: the wristband is offline and feverish.
        32..=44 => {
            w.set_online(1, false);
            if step.is_multiple_of(3) {
                let _ = w.record(1, Metric::BodyTemperature, 38.4, 0);
                let _ = w.record(1, Metric::BodyTemperature, 38.5, 5 * 60_000);
            }
            if hour_of_period == 38 {
                w.crash(0);
            }
            true
        }
        45 => {
            w.set_online(1, true);
            let _ = w.sync(1);
            true
        }
        _ => false,
    }
}

/// After the heal: equal reading counts, and an alert in the inbox.
fn converged_and_alerted(w: &World) -> Result<(), String> {
    let counts: Vec<usize> = (0..w.device_count())
        .filter_map(|i| w.vault(i).map(|v| v.log().len()))
        .collect();
    if counts.windows(2).any(|p| p[0] != p[1]) {
        return Err(format!("reading counts differ: {counts:?}"));
    }
    let inbox = w.relay().inbox().map_err(|e| e.to_string())?;
    if inbox.is_empty() {
        return Err("the fever never reached the node".into());
    }
    Ok(())
}

fn main() {
    let mut failed = 0;
    for seed in 0..50 {
        let config = SimConfig {
            seed,
            devices: 3,
            scenario: Scenario::Week,
            workload: Some(wristband_offline_with_fever),
            ..SimConfig::default()
        };
        let report = run(&config, &[converged_and_alerted]);
        if !report.failures.is_empty() {
            failed += 1;
            println!("seed {seed}: {:?}", report.failures);
        }
    }
    println!("50 seeds of the custom scenario, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
