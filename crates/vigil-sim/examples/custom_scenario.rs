//! Write your own invariant in a few lines and run it over many seeds:
//! `cargo run --release -p vigil-sim --example custom_invariant`.

use vigil_sim::{Scenario, SimConfig, World, run};

/// After the heal, every running device holds the same number of readings,
/// and no device holds more than 2,000 of them.
fn bounded_and_equal(w: &World) -> Result<(), String> {
    let counts: Vec<usize> = (0..w.device_count())
        .filter_map(|i| w.vault(i).map(|v| v.log().len()))
        .collect();
    if counts.windows(2).any(|p| p[0] != p[1]) {
        return Err(format!("reading counts differ: {counts:?}"));
    }
    match counts.iter().max() {
        Some(&n) if n > 2_000 => Err(format!("{n} readings")),
        _ => Ok(()),
    }
}

fn main() {
    let mut failed = 0;
    for seed in 0..50 {
        let config = SimConfig {
            seed,
            devices: 4,
            scenario: Scenario::Conflicts,
            steps: 200,
            bug: vigil_sim::Bug::None,
        };
        let report = run(&config, &[bounded_and_equal]);
        if !report.failures.is_empty() {
            failed += 1;
            println!("seed {seed}: {:?}", report.failures);
        }
    }
    println!("50 seeds, {failed} failed");
}
