//! Crash safety: a child process records readings as fast as it can and is
//! killed with SIGKILL at a random moment; every reading whose `record`
//! returned Ok (reported on a pipe) must be in the vault when it reopens —
//! whether it was still in the journal, inside a fold, or folded.
//!
//! The child is this same test binary, re-run with `VIGIL_CRASH_CHILD` set.

use std::path::Path;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use vigil_device::{FileKeyStore, Period, Vault};
use vigil_log::{Metric, Unit};
use vigil_testkit::{TestChild, seed_from_env};

const START: i64 = 1_790_035_200_000;
const ROUNDS: u64 = 20;

/// The child: opens (or creates) the vault and records until killed,
/// printing `ok <device>-<seq>` after each durable record.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("VIGIL_CRASH_CHILD") else {
        return; // Only meaningful when spawned by `records_survive_sigkill`.
    };
    let dir = Path::new(&dir);
    let keys = FileKeyStore::new(dir.join("root.key"));
    let store = dir.join("vault");
    let mut vault = match Vault::open_at(&store, &keys, START) {
        Ok(v) => v,
        Err(_) => {
            let mut rng = ChaCha20Rng::seed_from_u64(7);
            Vault::create(&store, Period::days(START, 7), Box::new(keys), &mut rng).unwrap()
        }
    };
    // Small, so kills also land inside folds (the journal's readings
    // committed as one change, its entries removed) and compactions.
    vault.set_fold_every(13);
    vault.set_compact_every(7);
    let mut out = std::io::stdout().lock();
    let mut i = vault.log().len() as i64;
    loop {
        let id = vault
            .record(
                Metric::HeartRate,
                60.0 + (i % 100) as f64,
                Unit::BeatsPerMinute,
                START + i * 1000,
            )
            .unwrap();
        use std::io::Write;
        writeln!(out, "ok {id}").unwrap();
        out.flush().unwrap();
        i += 1;
    }
}

#[test]
fn records_survive_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let seed = seed_from_env("VIGIL_CRASH_SEED", "crash test");
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut acked = Vec::new();
    for round in 0..ROUNDS {
        let mut child = TestChild::spawn("crash_child", "VIGIL_CRASH_CHILD", tmp.path());
        // Wait for the first acknowledged record so every round kills a writer,
        // then let it run a random while longer.
        let first = child
            .wait_for_line(|l| l.starts_with("ok "))
            .unwrap_or_else(|| {
                panic!("round {round} (seed {seed}): child exited before recording")
            });
        let wait = 1 + rng.next_u64() % 150;
        std::thread::sleep(Duration::from_millis(wait));
        let rest = child.kill();
        let before = acked.len();
        acked.push(first.trim_end()["ok ".len()..].to_owned());
        // Only newline-terminated lines were acknowledged in full; the last
        // segment is empty or torn by the kill.
        let mut segments: Vec<&str> = rest.split('\n').collect();
        segments.pop();
        for l in segments {
            if let Some(id) = l.strip_prefix("ok ") {
                acked.push(id.to_owned());
            }
        }
        let vault = Vault::open_at(
            &tmp.path().join("vault"),
            &FileKeyStore::new(tmp.path().join("root.key")),
            START,
        )
        .unwrap_or_else(|e| panic!("round {round} (seed {seed}): vault does not open: {e}"));
        let present: std::collections::HashSet<String> = vault
            .log()
            .readings(None, i64::MIN, i64::MAX, true)
            .iter()
            .map(|r| r.id.to_string())
            .collect();
        for id in &acked {
            assert!(
                present.contains(id),
                "round {round} (seed {seed}): acknowledged reading {id} lost"
            );
        }
        eprintln!(
            "round {round}: killed after {wait} ms, {} acknowledged this round, {} stored",
            acked.len() - before,
            present.len()
        );
    }
    assert!(
        acked.len() as u64 >= ROUNDS,
        "every round acknowledged at least one record"
    );
}
