//! The relay's admission rules (docs/spec.md §11): per-vault locks instead
//! of one relay-wide lock, and the node-wide counters behind its caps.
//!
//! Requests of one vault (or one grant) are serialised by a lock chosen
//! among [`SHARDS`] by a keyed hash of its id: one vault's work never waits
//! for another's (save a shared shard), and an attacker who picks vault ids
//! cannot aim them at a resident's shard without knowing the key. The caps
//! are atomic counters, seeded from the store at first use and reserved
//! before each write, so concurrent vaults cannot together overshoot them.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use vigil_proto::{ProtoError, Request, VaultIdBytes};

use crate::relay::Session;
use crate::store::{MailboxStore, StoreError};
use crate::sweep::SweepReport;

/// Number of lock shards.
pub(crate) const SHARDS: usize = 64;

/// The lock every `GrantKey` request takes, so that the grant-key cap's
/// check and the issue that follows are one step.
const GRANT_KEY_LOCK: &[u8] = b"vigil/grant-key";

/// Holds the locks of one request (or of a caller of [`crate::Relay::lock_vault`])
/// until dropped.
#[derive(Debug)]
pub struct VaultLock<'a> {
    _guards: Vec<MutexGuard<'a, ()>>,
}

/// The sharded locks and the node-wide counters, shared by every clone of
/// a relay.
#[derive(Debug)]
pub(crate) struct Limits {
    shards: Vec<Mutex<()>>,
    hasher: RandomState,
    counters: OnceLock<Counters>,
    seeding: Mutex<()>,
}

/// What the node holds, counted against its caps.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) vaults: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) pairings: AtomicU64,
}

/// Adds `n` to `c` if the sum stays within `max`; whether it did.
pub(crate) fn reserve(c: &AtomicU64, n: u64, max: u64) -> bool {
    c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
        v.checked_add(n).filter(|t| *t <= max)
    })
    .is_ok()
}

/// Takes `n` from `c`, never below zero.
pub(crate) fn release(c: &AtomicU64, n: u64) {
    // The closure always returns Some, so this cannot fail.
    let _ = c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
        Some(v.saturating_sub(n))
    });
}

impl Counters {
    /// Gives back what a sweep or shred deleted.
    pub(crate) fn release_deleted(&self, r: &SweepReport) {
        release(&self.vaults, r.mailboxes);
        release(&self.bytes, r.bytes);
        release(&self.pairings, r.pairings);
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            shards: (0..SHARDS).map(|_| Mutex::new(())).collect(),
            hasher: RandomState::new(),
            counters: OnceLock::new(),
            seeding: Mutex::new(()),
        }
    }
}

impl Limits {
    fn shard(&self, id: &[u8]) -> usize {
        // The modulo of a 64-bit hash by 64 keeps its low bits: uniform.
        (self.hasher.hash_one(id) % SHARDS as u64) as usize
    }

    /// Whether `a` and `b` map to the same lock.
    pub(crate) fn same_shard(&self, a: &[u8], b: &[u8]) -> bool {
        self.shard(a) == self.shard(b)
    }

    /// Locks the shards of every id, in ascending shard order (so two
    /// requests that need several never wait for each other in a cycle).
    pub(crate) fn lock<'a>(&'a self, ids: &[&[u8]]) -> VaultLock<'a> {
        let mut idx: Vec<usize> = ids.iter().map(|id| self.shard(id)).collect();
        idx.sort_unstable();
        idx.dedup();
        VaultLock {
            _guards: idx
                .into_iter()
                .map(|i| self.shards[i].lock().unwrap_or_else(|p| p.into_inner()))
                .collect(),
        }
    }

    /// The counters, counted from the store on first use (after a restart,
    /// what the store holds is what counts).
    pub(crate) fn counters(&self, store: &MailboxStore) -> Result<&Counters, StoreError> {
        if let Some(c) = self.counters.get() {
            return Ok(c);
        }
        let _seeding = self.seeding.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = self.counters.get() {
            return Ok(c);
        }
        let vaults = store.vaults()?;
        let seeded = Counters {
            vaults: AtomicU64::new(vaults.len() as u64),
            bytes: AtomicU64::new(vaults.iter().map(|(_, i)| i.bytes).sum()),
            pairings: AtomicU64::new(store.pairing_count()?),
        };
        Ok(self.counters.get_or_init(|| seeded))
    }
}

/// The ids whose locks a request takes: its vault (the session's, or the
/// one it names), or its grant; a shred takes its vault's and its grants'.
/// `GrantKey` takes one of its own; `Hello` and `PairFetch` take none (a
/// fetch is an atomic take).
pub(crate) fn lock_ids<'a>(req: &'a Request, s: &'a Session) -> Vec<&'a [u8]> {
    match req {
        Request::Hello { .. } | Request::PairFetch { .. } => vec![],
        Request::GrantKey => vec![GRANT_KEY_LOCK],
        Request::Register { vault, .. }
        | Request::Auth { vault, .. }
        | Request::Enrol { vault, .. } => vec![vault],
        Request::Shred { vault, grants, .. } => std::iter::once(&vault[..])
            .chain(grants.iter().map(|g| &g.grant_id[..]))
            .collect(),
        Request::Grant(w) => vec![&w.grant_id],
        Request::Alert(w) => vec![&w.grant_id],
        Request::AlertStatus(q) => vec![&q.grant_id],
        Request::Push(_)
        | Request::Pull { .. }
        | Request::PushSnapshot(_)
        | Request::PairOffer { .. } => s.vault.as_ref().map(|v| &v[..]).into_iter().collect(),
    }
}

/// Most grants one `Shred` may name: a shred locks each one's shard, and a
/// vault has one grant per node it enrolled with (its devices share it).
pub(crate) const MAX_SHRED_GRANTS: u64 = 16;

/// Refusals that need only the request: the length of `have`, `covers`
/// and a shred's `grants` lists. `None` lets it through.
pub(crate) fn refuse_early(req: &Request, max_list: u64) -> Option<ProtoError> {
    let too_long = |what: &str, n: usize, limit: u64| {
        (n as u64 > limit).then(|| ProtoError::TooManyEntries {
            what: what.into(),
            limit,
        })
    };
    match req {
        Request::Pull { have, .. } => too_long("have", have.len(), max_list),
        Request::PushSnapshot(s) => too_long("covers", s.covers.len(), max_list),
        Request::Shred { grants, .. } => too_long("grants", grants.len(), MAX_SHRED_GRANTS),
        Request::AlertStatus(q) => too_long(
            "alerts",
            q.alerts.len(),
            vigil_proto::MAX_ALERT_STATUS as u64,
        ),
        _ => None,
    }
}

/// The refusal of a node-wide cap.
pub(crate) fn full(what: &str, limit: u64) -> ProtoError {
    tracing::warn!(what, limit, "node-wide limit reached; request refused");
    ProtoError::NodeFull {
        what: what.into(),
        limit,
    }
}

/// The vault an `Enrol` would create, if it is new (no mailbox, no shred
/// marker): it needs a place under the vault cap. (`Register` creates no
/// mailbox: docs/spec.md §15.)
pub(crate) fn new_vault(
    req: &Request,
    store: &MailboxStore,
) -> Result<Option<VaultIdBytes>, StoreError> {
    let Request::Enrol { vault, .. } = req else {
        return Ok(None);
    };
    if store.mailbox(vault)?.is_some() || store.shred_marker(vault)?.is_some() {
        return Ok(None);
    }
    Ok(Some(*vault))
}
