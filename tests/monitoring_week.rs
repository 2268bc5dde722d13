//! Runs the README's week example (`examples/monitoring_week.rs`) with the
//! quick workload and checks its verification summary.
//!
//! The example is compiled into this test as a module rather than run as a
//! process: cargo gives integration tests the path of `[[bin]]` targets
//! only, and `cargo run` from a test would rebuild and contend for the
//! build lock. `main` and the command-line parsing are the only parts not
//! exercised here.

#[allow(dead_code)] // `main` and `Options::from_env` serve the binary only.
#[path = "../examples/monitoring_week.rs"]
mod example;

#[test]
fn the_monitoring_week_example_verifies_its_story() {
    let mut out = Vec::new();
    let summary = example::run(example::Options { quick: true }, &mut out)
        .unwrap_or_else(|e| panic!("the example failed: {e}"));
    let text = String::from_utf8(out).expect("the narration is UTF-8");
    print!("{text}");

    assert!(summary.passed(), "failed checks: {:?}", summary.checks);
    let checks: Vec<&str> = text.lines().filter(|l| l.starts_with("check: ")).collect();
    assert_eq!(checks.len(), summary.checks.len());
    assert!(checks.len() >= 10, "{checks:?}");
    assert!(checks.iter().all(|l| l.ends_with(" ... ok")), "{checks:?}");
    let verdict = format!("verification: all {} checks passed", checks.len());
    assert!(text.lines().any(|l| l == verdict), "no line {verdict:?}");

    // The claims the README makes for the example are among the checks.
    for claim in [
        "check: pairing: both screens showed the same 6-digit code",
        "check: devices converged: equal heads and equal views",
        "check: the partition's conflicts showed on both after the heal",
        "check: the fever reached the node's inbox once: fever started, fever ended",
        "check: the node holds only ciphertext",
        "check: what the node learned:",
        "check: deletion receipts verify",
        "check: after shred the phone's directory holds only its tombstone",
        "check: after shred the band's directory holds only its tombstone",
        "check: after shred and sweep the node holds no mailbox",
    ] {
        assert!(
            checks.iter().any(|l| l.starts_with(claim)),
            "missing {claim:?}"
        );
    }
    // The story is narrated: the pairing code, the conflict, the alert.
    assert!(text.contains(": match"), "pairing codes not shown");
    assert!(text.contains("conflict (on both) cough"));
    assert!(text.contains("node    inbox +1: fever started"));
    assert!(text.contains("acknowledged, not stored again"));
}
