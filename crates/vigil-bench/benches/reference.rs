//! Vault figures against their references, measured in the same run
//! (issue 19: absolute figures move 2–3× between machines, ratios hold).
//!
//! `cargo bench -p vigil-bench --bench reference` records the monitoring
//! week (24,864 readings) into a vault on sled and measures:
//!
//! 1. **Durable record rate / sled's own insert+flush rate.** The reference
//!    is sled, opened as the vault opens it, inserting per record one value
//!    as large as everything the vault writes per record (keys and values,
//!    read through a [`Storage`] wrapper over a first pass in memory), then
//!    flushing. The two run interleaved, in blocks of 1,000, so that a busy
//!    machine slows both alike.
//! 2. **Open the week's vault / Automerge's `load` of the same document**
//!    (the vault's `export_automerge()`), interleaved, median of 5.
//!
//! Without `--bench` it records one day, as a smoke test.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use automerge::AutoCommit;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use vigil_crypto::VaultId;
use vigil_device::{
    Batch, Entries, MemStorage, MemoryKeyStore, Period, Storage, StorageError, Vault,
};
use vigil_log::Metric;

const START: i64 = 1_790_035_200_000;
const MIN: i64 = 60_000;
/// Readings per interleaved block.
const BLOCK: usize = 1000;

/// What a vault wrote through its storage.
#[derive(Debug, Default)]
struct Writes {
    /// Bytes of keys and values put by `apply`.
    put_bytes: u64,
    /// `apply` calls.
    applies: u64,
    /// Bytes of named blobs (log snapshots).
    blob_bytes: u64,
}

/// A [`Storage`] that counts what goes through it.
struct Measured {
    inner: MemStorage,
    writes: Arc<Mutex<Writes>>,
}

impl Storage for Measured {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StorageError> {
        self.inner.scan_prefix(prefix)
    }

    fn apply(&mut self, batch: Batch) -> Result<(), StorageError> {
        {
            let mut w = self.writes.lock().expect("not poisoned");
            w.applies += 1;
            for (k, v) in batch.ops() {
                w.put_bytes += (k.len() + v.as_ref().map_or(0, Vec::len)) as u64;
            }
        }
        self.inner.apply(batch)
    }

    fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get_blob(name)
    }

    fn put_blob(&mut self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        self.writes.lock().expect("not poisoned").blob_bytes += value.len() as u64;
        self.inner.put_blob(name, value)
    }

    fn tombstone(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.tombstone()
    }

    fn put_tombstone(&mut self, value: &[u8]) -> Result<(), StorageError> {
        self.inner.put_tombstone(value)
    }

    fn destroy(self: Box<Self>) -> Result<(), StorageError> {
        Box::new(self.inner).destroy()
    }

    fn mark(&mut self, vault: VaultId, period: Period) -> Result<(), StorageError> {
        self.inner.mark(vault, period)
    }
}

/// The monitoring week's readings (step 2's workload), in time order.
fn workload(days: i64) -> Vec<(Metric, f64, i64)> {
    let mut out = Vec::new();
    for m in 0..days * 1440 {
        for (metric, value) in vigil_testkit::wristband_readings(m, 5, 15) {
            out.push((metric, value, START + m * MIN));
        }
    }
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    ms(sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)])
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Bytes the vault writes per record (keys and values), and blob bytes per
/// record, from recording `week` into a vault in memory.
fn bytes_per_record(week: &[(Metric, f64, i64)], rng: &mut ChaCha20Rng) -> (f64, f64, f64) {
    let writes = Arc::new(Mutex::new(Writes::default()));
    let storage = Measured {
        inner: MemStorage::new(),
        writes: writes.clone(),
    };
    let mut v = Vault::create_with(
        Box::new(storage),
        Period::days(START, 7),
        Box::new(MemoryKeyStore::new()),
        rng,
    )
    .expect("a vault in memory");
    let before = {
        let w = writes.lock().expect("not poisoned");
        (w.put_bytes, w.applies, w.blob_bytes)
    };
    for (m, value, t) in week {
        v.record(*m, *value, m.unit(), *t).expect("recorded");
    }
    let w = writes.lock().expect("not poisoned");
    let n = week.len() as f64;
    (
        (w.put_bytes - before.0) as f64 / n,
        (w.applies - before.1) as f64 / n,
        (w.blob_bytes - before.2) as f64 / n,
    )
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let days = if full { 7 } else { 1 };
    let week = workload(days);
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let (per_record, applies_per_record, blob_per_record) = bytes_per_record(&week, &mut rng);
    let value_len = (per_record.round() as usize).saturating_sub(16).max(1);

    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path().join("vault");
    let (mut vault, keys) = vigil_testkit::disk_vault(&dir, Period::days(START, 7), 1);
    // sled as SledStorage opens it.
    let db = sled::Config::new()
        .path(tmp.path().join("sled"))
        .mode(sled::Mode::LowSpace)
        .segment_size(16 * 1024)
        .open()
        .expect("sled opens");
    let mut value = vec![0u8; value_len];
    let (mut vault_lat, mut sled_lat) = (
        Vec::with_capacity(week.len()),
        Vec::with_capacity(week.len()),
    );
    let (mut vault_total, mut sled_total) = (Duration::ZERO, Duration::ZERO);
    let mut key_no: u64 = 0;
    for block in week.chunks(BLOCK) {
        let t0 = Instant::now();
        for (m, v, t) in block {
            let s = Instant::now();
            vault.record(*m, *v, m.unit(), *t).expect("recorded");
            vault_lat.push(s.elapsed());
        }
        vault_total += t0.elapsed();
        let t0 = Instant::now();
        for _ in block {
            // Sealed values are random bytes: sled gets the same.
            rng.fill_bytes(&mut value);
            key_no += 1;
            let mut key = [0u8; 16];
            key[8..].copy_from_slice(&key_no.to_be_bytes());
            let s = Instant::now();
            db.insert(key, value.as_slice()).expect("sled inserts");
            db.flush().expect("sled flushes");
            sled_lat.push(s.elapsed());
        }
        sled_total += t0.elapsed();
    }
    drop(vault);
    drop(db);
    vault_lat.sort();
    sled_lat.sort();
    let n = week.len() as f64;
    let vault_rate = n / vault_total.as_secs_f64();
    let sled_rate = n / sled_total.as_secs_f64();

    // Open against Automerge's load of the same document, interleaved:
    // first as a kill leaves the vault (the recording's vault was dropped:
    // fold chunks after its snapshot, which Automerge applies by walking
    // every reading), then after `Vault::close` (one document), the way an
    // app that closes its vault opens it next time. A drop writes nothing,
    // so each state stays as it is across its five opens.
    let doc = Vault::open_at(&dir, &keys, START)
        .expect("the vault opens")
        .export_automerge();
    let measure = |opens: &mut Vec<Duration>, loads: &mut Vec<Duration>| {
        for _ in 0..5 {
            let t = Instant::now();
            let v = Vault::open_at(&dir, &keys, START).expect("the vault opens");
            opens.push(t.elapsed());
            assert_eq!(v.log().len(), week.len());
            drop(v);
            let t = Instant::now();
            let d = AutoCommit::load(&doc).expect("Automerge loads it");
            loads.push(t.elapsed());
            drop(d);
        }
    };
    let (mut kill_opens, mut kill_loads) = (vec![], vec![]);
    measure(&mut kill_opens, &mut kill_loads);
    let (kill_open, kill_load) = (median(kill_opens), median(kill_loads));
    Vault::open_at(&dir, &keys, START)
        .expect("the vault opens")
        .close()
        .expect("the vault closes");
    let (mut opens, mut loads) = (vec![], vec![]);
    measure(&mut opens, &mut loads);
    let (open, load) = (median(opens), median(loads));

    println!(
        "## Vault against its references, same run ({days} day(s), {} readings)\n",
        week.len()
    );
    println!("| figure | Vigil | reference | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| durable record rate / sled insert+flush of {} B (what the vault writes per record: {per_record:.0} B in {applies_per_record:.2} batches, and {blob_per_record:.0} B of snapshot blobs) | {vault_rate:.0}/s | {sled_rate:.0}/s | {:.1} % |",
        value_len + 16,
        vault_rate / sled_rate * 100.0
    );
    println!(
        "| p50 / p99 latency | {:.3} / {:.3} ms | {:.3} / {:.3} ms | {:.2}× at p99 |",
        pct(&vault_lat, 0.5),
        pct(&vault_lat, 0.99),
        pct(&sled_lat, 0.5),
        pct(&sled_lat, 0.99),
        pct(&vault_lat, 0.99) / pct(&sled_lat, 0.99)
    );
    println!(
        "| open the vault after `close()` / Automerge load of its document ({} B), median of 5 | {:.1} ms | {:.1} ms | {:.2}× |",
        doc.len(),
        ms(open),
        ms(load),
        open.as_secs_f64() / load.as_secs_f64()
    );
    println!(
        "| open the vault as a kill left it (fold chunks after its snapshot) / the same load, median of 5 | {:.1} ms | {:.1} ms | {:.2}× |\n",
        ms(kill_open),
        ms(kill_load),
        kill_open.as_secs_f64() / kill_load.as_secs_f64()
    );
    println!(
        "figure: record_vs_sled {:.2} {vault_rate:.0} {sled_rate:.0}",
        vault_rate / sled_rate * 100.0
    );
    println!(
        "figure: open_after_kill_vs_load {:.3} {:.2} {:.2}",
        kill_open.as_secs_f64() / kill_load.as_secs_f64(),
        ms(kill_open),
        ms(kill_load)
    );
    println!(
        "figure: open_vs_load {:.3} {:.2} {:.2}",
        open.as_secs_f64() / load.as_secs_f64(),
        ms(open),
        ms(load)
    );
}
