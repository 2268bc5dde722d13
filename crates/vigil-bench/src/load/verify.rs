//! The durability check: every bundle the node acknowledged is read back and
//! compared, byte for byte (by SHA-256), with what was acknowledged.
//!
//! Two ways: over the protocol, pulling each vault from a fresh connection
//! with an empty version vector (as a new device of the resident would), and
//! after the node stops, from its store on disk.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use vigil_crypto::KeySchedule;
use vigil_node::MailboxStore;
use vigil_proto::{DeviceSync, Exchange, SyncConfig, SyncEvent, VersionVector};

use super::resident::Resident;

/// What one check found, summed over residents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Residents checked.
    pub residents: u64,
    /// Residents that could not be checked (no connection, refused pull,
    /// store error).
    pub unreadable: u64,
    /// Bundles the node acknowledged.
    pub acked: u64,
    /// Read back with the acknowledged bytes.
    pub present: u64,
    /// Dropped by the node because a snapshot the resident uploaded covers
    /// them (allowed by the protocol).
    pub covered_by_snapshot: u64,
    /// Acknowledged but not there.
    pub missing: u64,
    /// There, but with other bytes.
    pub altered: u64,
    /// The first few problems, for a reproduction.
    pub examples: Vec<String>,
}

impl Tally {
    /// Whether every acknowledged bundle was found and every resident read.
    pub fn passed(&self) -> bool {
        self.unreadable == 0 && self.missing == 0 && self.altered == 0
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        self.residents += other.residents;
        self.unreadable += other.unreadable;
        self.acked += other.acked;
        self.present += other.present;
        self.covered_by_snapshot += other.covered_by_snapshot;
        self.missing += other.missing;
        self.altered += other.altered;
        for e in other.examples {
            if self.examples.len() < 10 {
                self.examples.push(e);
            }
        }
    }

    fn problem(&mut self, e: String) {
        if self.examples.len() < 10 {
            self.examples.push(e);
        }
    }

    /// Compares one resident's acknowledged bundles with what was found.
    fn compare(
        &mut self,
        who: usize,
        acked: &BTreeMap<u64, [u8; 32]>,
        found: impl Fn(u64) -> Option<[u8; 32]>,
        snapshot_covers: u64,
    ) {
        self.residents += 1;
        for (seq, hash) in acked {
            self.acked += 1;
            match found(*seq) {
                Some(h) if h == *hash => self.present += 1,
                Some(_) => {
                    self.altered += 1;
                    self.problem(format!("resident {who}: bundle {seq} has other bytes"));
                }
                None if *seq <= snapshot_covers => self.covered_by_snapshot += 1,
                None => {
                    self.missing += 1;
                    self.problem(format!(
                        "resident {who}: acknowledged bundle {seq} is missing"
                    ));
                }
            }
        }
    }
}

fn covers_of(covers: &VersionVector, device: &[u8; 16]) -> u64 {
    covers
        .iter()
        .find(|(d, _)| d == device)
        .map_or(0, |(_, s)| *s)
}

/// Pulls `resident`'s whole mailbox over `conn` (an empty version vector, no
/// registration, no pushes) and compares it with what was acknowledged.
pub(crate) fn check_by_pull(resident: &Resident, conn: &mut dyn Exchange) -> Tally {
    let mut t = Tally::default();
    let who = resident.index;
    if resident.link.acked.is_empty() {
        // Nothing acknowledged, nothing to find (a resident the node never
        // let in has no mailbox to pull).
        t.residents += 1;
        return t;
    }
    let Ok(Some(root)) = vigil_device::KeyStore::load(&resident.keys) else {
        t.unreadable += 1;
        t.problem(format!("resident {who}: key store empty"));
        return t;
    };
    let keys = KeySchedule::new(root);
    let config = SyncConfig {
        vault: *keys.vault_id().as_bytes(),
        mailbox_key: *keys.mailbox_key(&conn.node()).expose_secret(),
        register: None,
        pull_max_bytes: 4 * 1024 * 1024,
    };
    let device = resident.vault.device_id().0;
    let mut sync = DeviceSync::new(config, Vec::new(), Vec::new());
    let mut bundles: BTreeMap<u64, [u8; 32]> = BTreeMap::new();
    let mut covers = 0;
    while let Some(req) = sync.poll_request() {
        let resp = match conn.exchange(&req) {
            Ok(r) => r,
            Err(e) => {
                t.unreadable += 1;
                t.problem(format!("resident {who}: pull failed: {e}"));
                return t;
            }
        };
        if let Err(e) = sync.handle_response(&resp) {
            t.unreadable += 1;
            t.problem(format!("resident {who}: pull refused: {e}"));
            return t;
        }
        while let Some(ev) = sync.poll_event() {
            match ev {
                SyncEvent::Snapshot(s) => covers = covers_of(&s.covers, &device),
                SyncEvent::Bundle(b) if b.device == device => {
                    bundles.insert(b.seq, Sha256::digest(&b.blob).into());
                }
                _ => {}
            }
        }
    }
    t.compare(
        who,
        &resident.link.acked,
        |seq| bundles.get(&seq).copied(),
        covers,
    );
    t
}

/// Reads `resident`'s acknowledged bundles from the stopped node's store.
pub(crate) fn check_in_store(resident: &Resident, store: &MailboxStore) -> Tally {
    let mut t = Tally::default();
    let who = resident.index;
    let vault = *resident.vault.vault_id().as_bytes();
    let device = resident.vault.device_id().0;
    let covers = match store.snapshot(&vault) {
        Ok(s) => s.map_or(0, |s| covers_of(&s.covers, &device)),
        Err(e) => {
            t.unreadable += 1;
            t.problem(format!("resident {who}: store: {e}"));
            return t;
        }
    };
    let found = |seq: u64| {
        store
            .bundle(&vault, &device, seq)
            .ok()
            .flatten()
            .map(|b| <[u8; 32]>::from(Sha256::digest(&b)))
    };
    t.compare(who, &resident.link.acked, found, covers);
    t
}

/// The whole durability verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Durability {
    /// Pulled back over fresh connections while the node ran.
    pub by_pull: Tally,
    /// Read from the node's store after it stopped (a local node only).
    pub in_store: Option<Tally>,
    /// Why the store could not be read, if so.
    pub store_error: Option<String>,
    /// Alerts the node acknowledged as newly stored.
    pub alerts_acked_stored: u64,
    /// Alerts in the node's inbox after it stopped (a local node only).
    pub inbox_alerts: Option<u64>,
    /// Every check passed.
    pub passed: bool,
}
