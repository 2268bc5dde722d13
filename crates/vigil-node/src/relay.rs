//! The blind relay: request handling, sans-I/O (docs/spec.md §11). The
//! driver hands it frames and the time; it answers frames.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use vigil_proto::{
    FrameHandler, PROTOCOL_VERSION, ProtoError, Request, Response, VaultIdBytes, decode_request,
    encode_response,
};

use vigil_crypto::{
    AlertKey, MailboxKey, MailboxVerifier, SigningIdentity, VaultId, WrappedKey, unwrap,
};
use vigil_proto::alert::{grant_id, open_alert};
use vigil_proto::receipt::{ReceiptBody, sign_receipt};
use vigil_proto::{
    AlertState, AlertStatusQuery, AlertWire, BundleItem, GrantDeletion, GrantWire, SnapshotItem,
    VersionVector,
};

use crate::alerts::{GrantRecord, InboxEntry, validate_grant};
use crate::grant_keys::GrantKeys;
use crate::limits::{self, Limits, VaultLock, release, reserve};
use crate::metrics::{Metrics, request_kind};
use crate::store::{MailboxInfo, MailboxStore, ShredMarker, StoreError};
use crate::sweep::SweepReport;
use crate::tickets::{Permit, TicketRecord};
use crate::webhook::Webhooks;

/// Relay limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// Most bytes of blobs one vault may hold (default 64 MiB).
    pub max_bytes_per_vault: u64,
    /// Most blobs one vault may hold (default 100,000).
    pub max_blobs_per_vault: u64,
    /// How long a wrapped root waits at a pairing slot, ms (default 15 minutes).
    pub pairing_ttl_ms: i64,
    /// Largest pull reply the relay builds, bytes (default 4 MiB).
    pub max_pull_bytes: u32,
    /// Most bundles in one pull reply (default 1,000).
    pub max_pull_bundles: u32,
    /// Most mailboxes the node holds (default 20,000).
    pub max_vaults: u64,
    /// Most one-time grant key files the node keeps (default 21,000).
    pub max_grant_keys: u64,
    /// Most pairing offers waiting at once, node-wide (default 1,000).
    pub max_pairing_slots: u64,
    /// Most bytes of blobs the node stores, all vaults together
    /// (default 32 GiB).
    pub max_store_bytes: u64,
    /// Furthest ahead a `Register` may put its period's end, ms
    /// (default 365 days).
    pub max_period_ms: i64,
    /// Most devices one vault's pushes may name, and so the longest `have`
    /// or `covers` list accepted (default 256).
    pub max_devices_per_vault: u64,
    /// Most enrolment tickets unused at once (default 10,000): staff
    /// cannot fill the disk with tickets by mistake or by a script.
    pub max_tickets: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            max_bytes_per_vault: 64 * 1024 * 1024,
            max_blobs_per_vault: 100_000,
            pairing_ttl_ms: 15 * 60_000,
            max_pull_bytes: 4 * 1024 * 1024,
            max_pull_bundles: 1_000,
            max_vaults: 20_000,
            max_grant_keys: 21_000,
            max_pairing_slots: 1_000,
            max_store_bytes: 32 * 1024 * 1024 * 1024,
            max_period_ms: 365 * 86_400_000,
            max_devices_per_vault: 256,
            max_tickets: 10_000,
        }
    }
}

/// How far a resident's last contact must move before it is written again,
/// ms: "last contact" is read in minutes and hours, not per request.
pub const CONTACT_EVERY_MS: i64 = 60_000;

/// (grant, kind, onset) of an alert the forgetful-dedup bug remembers.
#[cfg(feature = "fault-injection")]
type SeenAlert = ([u8; 16], u8, i64);

/// The relay: the store and its limits, shared by every connection.
#[derive(Debug, Clone)]
pub struct Relay {
    store: MailboxStore,
    config: RelayConfig,
    // Per-vault locks and the node-wide counters (limits.rs): no request
    // waits for another vault's.
    limits: Arc<Limits>,
    // Serialises ticket state changes and their count (taken after the
    // vault or grant lock when both are held).
    tickets_lock: Arc<Mutex<()>>,
    // The alert role: the node's X25519 identity and unwrapped grant keys.
    alerts: Option<Arc<AlertRole>>,
    // Signs deletion receipts.
    signer: Option<Arc<SigningIdentity>>,
    // Counters bumped per request (atomics: cheap, shared).
    metrics: Arc<Metrics>,
    // Queues each new alert for the webhooks, if any.
    webhooks: Option<Webhooks>,
    // The last contact written per vault: a sync is a contact, but a disk
    // write per request is not worth it, so it is written only once it
    // moved by more than CONTACT_EVERY_MS.
    contacts: Arc<Mutex<HashMap<VaultIdBytes, i64>>>,
    // Injected bug: alert deduplication kept in memory only (lost with
    // this `Relay` value, that is, on a node restart).
    #[cfg(feature = "fault-injection")]
    forgetful_dedup: Option<Arc<Mutex<Vec<SeenAlert>>>>,
}

struct AlertRole {
    grant_keys: GrantKeys,
    keys: Mutex<HashMap<[u8; 16], AlertKey>>,
}

impl std::fmt::Debug for AlertRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertRole")
            .field("grant_keys", &self.grant_keys)
            .finish_non_exhaustive()
    }
}

impl AlertRole {
    /// Unwraps a grant's alert key with its one-time key, if that still exists.
    fn unwrap_grant(&self, grant_key: &[u8; 32], wrapped: &[u8]) -> Option<AlertKey> {
        let id = self.grant_keys.load(grant_key)?;
        let wk = WrappedKey::from_slice(wrapped).ok()?;
        unwrap::<AlertKey>(&id, &wk).ok()
    }

    /// Whether `proof` shows that the sender holds grant `g`'s alert key,
    /// for `vault` (docs/spec.md §13). The key comes from the cache or is
    /// unwrapped again from the stored grant; without it, nothing proves.
    fn proves_deletion(&self, g: &GrantRecord, vault: &VaultId, proof: &[u8; 32]) -> bool {
        let id = g.grant.grant_id;
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = keys.get(&id) {
            return k.verify_shred_proof(vault, &id, proof);
        }
        drop(keys);
        self.unwrap_grant(&g.grant.grant_key, &g.grant.wrapped_key)
            .is_some_and(|k| grant_id(&k) == id && k.verify_shred_proof(vault, &id, proof))
    }

    /// Whether `proof` shows that the sender holds grant `g`'s alert key,
    /// for asking the state of its alerts (docs/spec.md §12).
    fn proves_status(&self, g: &GrantRecord, proof: &[u8; 32]) -> bool {
        let id = g.grant.grant_id;
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = keys.get(&id) {
            return k.verify_status_proof(&id, proof);
        }
        drop(keys);
        self.unwrap_grant(&g.grant.grant_key, &g.grant.wrapped_key)
            .is_some_and(|k| grant_id(&k) == id && k.verify_status_proof(&id, proof))
    }
}

/// What one connection has established.
#[derive(Debug, Default, Clone)]
pub struct Session {
    pub(crate) hello: bool,
    pub(crate) vault: Option<VaultIdBytes>,
    // A grant stored or an alert verified on this connection: it holds a
    // key the node checked, though no mailbox key.
    privileged: bool,
}

impl Session {
    /// Whether the connection has proved it belongs: a mailbox key
    /// accepted, or a grant or alert verified. Until then the transport
    /// keeps it to the pre-authentication budget.
    pub fn authenticated(&self) -> bool {
        self.vault.is_some() || self.privileged
    }
}

/// Whether `key` opens mailbox `m`: vigil-crypto's verifier, compared in
/// constant time (one definition of the derivation, docs/spec.md §1).
fn opens(m: &MailboxInfo, key: [u8; 32]) -> bool {
    MailboxVerifier::from_bytes(m.verifier).verify(&MailboxKey::from_bytes(key))
}

fn internal(e: StoreError) -> Response {
    tracing::error!(error = %e, "store failure");
    Response::Error(ProtoError::Internal("storage failure".into()))
}

impl Relay {
    /// A relay over `store`.
    pub fn new(store: MailboxStore, config: RelayConfig) -> Self {
        Relay {
            store,
            config,
            limits: Arc::default(),
            tickets_lock: Arc::new(Mutex::new(())),
            alerts: None,
            signer: None,
            metrics: Arc::default(),
            webhooks: None,
            contacts: Arc::default(),
            #[cfg(feature = "fault-injection")]
            forgetful_dedup: None,
        }
    }

    /// Injected bug for the simulation harness: deduplicates alerts only
    /// against those this `Relay` value stored (forgotten on restart), and
    /// stores every other one as a new inbox entry.
    #[cfg(feature = "fault-injection")]
    pub fn with_forgetful_alert_dedup(mut self) -> Self {
        self.forgetful_dedup = Some(Arc::default());
        self
    }

    /// Queues each new alert for these webhooks (spec: "Webhook
    /// notifications").
    pub fn with_webhooks(mut self, webhooks: Webhooks) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    /// The node's metrics (shared by every clone of this relay).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The metrics in Prometheus text format, with the gauges (inbox,
    /// usage, store size, webhook queue) read from the store now.
    pub fn encode_metrics(&self) -> Result<String, StoreError> {
        let m = &self.metrics;
        let inbox = self.store.inbox()?;
        let unacked = inbox.iter().filter(|e| e.acked_ms.is_none()).count();
        Metrics::set(&m.alerts_in_inbox, inbox.len() as u64);
        Metrics::set(&m.alerts_unacknowledged, unacked as u64);
        let u = self.usage()?;
        Metrics::set(&m.vaults, u.vaults);
        Metrics::set(&m.blob_bytes, u.bytes);
        Metrics::set(&m.store_size, self.store.size_on_disk());
        let queued = match &self.webhooks {
            Some(w) => w.queue().len()? as u64,
            None => 0,
        };
        Metrics::set(&m.webhook_queue, queued);
        Ok(m.encode())
    }

    /// Signs deletion receipts with this key (the one in the enrolment code).
    pub fn with_receipts(mut self, signer: SigningIdentity) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }

    /// The lock shard of a grant (what a `Grant`, an `Alert` or a shred
    /// naming it takes).
    pub(crate) fn lock_grant(&self, grant: &[u8; 16]) -> crate::limits::VaultLock<'_> {
        self.limits.lock(&[&grant[..]])
    }

    pub(crate) fn lock_tickets(&self) -> std::sync::MutexGuard<'_, ()> {
        self.tickets_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The relay's limits.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Deletes every vault whose period ended at least `grace_ms` before
    /// `now_ms` (mailbox, bundles, snapshot), every grant whose window did
    /// (with its alerts and key), and expired pairing offers. Idempotent and
    /// restart-safe: each deletion is one durable batch; run it at start and
    /// periodically.
    pub fn sweep(&self, now_ms: i64, grace_ms: i64) -> Result<SweepReport, StoreError> {
        let r = self.sweep_inner(now_ms, grace_ms);
        self.metrics.sweep(r.as_ref().ok());
        r
    }

    fn sweep_inner(&self, now_ms: i64, grace_ms: i64) -> Result<SweepReport, StoreError> {
        // Each deletion takes its vault's (or grant's) lock only, and gives
        // its places back under the caps as it goes.
        let counters = self.limits.counters(&self.store)?;
        let mut r = SweepReport::default();
        for (vault, info) in self.store.vaults()? {
            if info.expires_ms.saturating_add(grace_ms) <= now_ms {
                let _lock = self.limits.lock(&[&vault]);
                let d = self.store.delete_vault(&vault)?;
                counters.release_deleted(&d);
                r += d;
            }
        }
        // A shred marker outlives the mailbox only until the period's end:
        // from then on `PeriodOver` refuses the vault's devices anyway.
        for (vault, m) in self.store.shred_markers()? {
            if m.expires_ms.saturating_add(grace_ms) <= now_ms {
                let _lock = self.limits.lock(&[&vault]);
                self.store.remove_shred_marker(&vault)?;
                r.shred_markers += 1;
            }
        }
        let grants = self.store.grants()?;
        for g in &grants {
            if g.grant.valid_until_ms.saturating_add(grace_ms) <= now_ms {
                let _lock = self.limits.lock(&[&g.grant.grant_id]);
                r += self.store.delete_grant(&g.grant.grant_id)?;
                self.forget_grant_key(&g.grant.grant_id, Some(g.grant.grant_key));
            }
        }
        if let Some(role) = &self.alerts {
            // Keys issued for grants that never came, after a day.
            let used = grants.iter().map(|g| g.grant.grant_key).collect();
            match role
                .grant_keys
                .sweep_unused(&used, now_ms.saturating_sub(86_400_000))
            {
                Ok(n) => r.grant_keys += n,
                Err(e) => tracing::error!(error = %e, "could not sweep unused grant keys"),
            }
        }
        r.alerts += self.store.sweep_ended_alerts(now_ms, grace_ms)?;
        r.tickets += {
            let _tickets = self.lock_tickets();
            self.store.sweep_tickets(now_ms, grace_ms)?
        };
        let pairings = self.store.sweep_pairings(now_ms)?;
        release(&counters.pairings, pairings);
        r.pairings += pairings;
        if r != SweepReport::default() {
            tracing::info!(?r, "swept expired data");
        }
        Ok(r)
    }

    /// Forgets a grant's keys: the cached alert key (zeroized on drop) and
    /// the one-time key file (overwritten, removed).
    pub(crate) fn forget_grant_key(&self, grant: &[u8; 16], grant_key: Option<[u8; 32]>) {
        if let Some(role) = &self.alerts {
            role.keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(grant);
            if let Some(pk) = grant_key
                && let Err(e) = role.grant_keys.destroy(&pk)
            {
                tracing::error!(error = %e, "could not destroy a grant key");
            }
        }
    }

    fn shred(
        &self,
        vault: [u8; 16],
        key: [u8; 32],
        grants: Vec<GrantDeletion>,
        notice: Vec<u8>,
        now_ms: i64,
    ) -> Result<Response, StoreError> {
        let Some(signer) = &self.signer else {
            return Ok(Response::Error(ProtoError::NoReceipts));
        };
        let mut r = SweepReport::default();
        // Counted before the deletion: the devices the marker's notice is for.
        let mut devices: Vec<[u8; 16]> = self
            .store
            .holdings(&vault)?
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        devices.sort_unstable();
        match self.store.mailbox(&vault)? {
            Some(m) if !opens(&m, key) => {
                tracing::warn!(vault = %hex8(&vault), "shred refused: wrong mailbox key");
                return Ok(Response::Error(ProtoError::Unauthorized));
            }
            // The marker keeps a paired device's next `Register` from
            // recreating the mailbox until the period's end (spec §13).
            Some(m) => {
                let marker = ShredMarker {
                    verifier: m.verifier,
                    expires_ms: m.expires_ms,
                    notice,
                };
                r += self.store.delete_vault_marking(&vault, Some(&marker))?
            }
            // Already swept: nothing to authenticate against; the grants are
            // named by ids only the vault's devices and this node know.
            None => {}
        }
        let mut kept = 0;
        let vault_id = VaultId::from_bytes(vault);
        for d in &grants {
            let g = &d.grant_id;
            // Grant ids are public (staff's alert list, the resident's
            // enrolment output): only the holder of the grant's alert key
            // may delete it, whatever the vault or mailbox key (spec §13).
            let Some(rec) = self.store.grant(g)? else {
                continue;
            };
            let proved = self
                .alerts
                .as_ref()
                .is_some_and(|role| role.proves_deletion(&rec, &vault_id, &d.proof));
            if !proved {
                tracing::warn!(
                    vault = %hex8(&vault),
                    grant = %hex8(g),
                    "grant not deleted: no valid proof"
                );
                continue;
            }
            // A fever staff have not seen was already disclosed and may need
            // acting on: it stays, marked, until they see it (spec §13).
            let (deleted, k) = self.store.end_grant(g, now_ms)?;
            r += deleted;
            kept += k;
            self.forget_grant_key(g, Some(rec.grant.grant_key));
        }
        self.limits.counters(&self.store)?.release_deleted(&r);
        tracing::info!(vault = %hex8(&vault), ?r, kept, "vault shredded on request");
        let body = ReceiptBody {
            vault,
            deleted_at_ms: now_ms,
            blobs: r.blobs,
            bytes: r.bytes,
            grants: r.grants,
            alerts: r.alerts,
            kept_unseen_alerts: kept,
            devices,
            node: *signer.verify_key().as_bytes(),
        };
        Ok(Response::Receipt(sign_receipt(signer, &body)))
    }

    /// Takes on the alert role: grants wrap their alert keys to one-time
    /// keys issued from `grant_keys` and destroyed when the grant ends.
    pub fn with_alerts(mut self, grant_keys: GrantKeys) -> Self {
        self.alerts = Some(Arc::new(AlertRole {
            grant_keys,
            keys: Mutex::new(HashMap::new()),
        }));
        self
    }

    /// The alert inbox, oldest first.
    pub fn inbox(&self) -> Result<Vec<InboxEntry>, StoreError> {
        self.store.inbox()
    }

    /// Staff acknowledge an alert; false if there is no such alert.
    pub fn ack_alert(
        &self,
        grant: &[u8; 16],
        episode: &[u8; 16],
        kind: u8,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.store.ack_alert(grant, episode, kind, now_ms)
    }

    /// Staff acknowledge an alert with their name and note; false if there
    /// is no such alert.
    pub fn ack_alert_by(
        &self,
        grant: &[u8; 16],
        episode: &[u8; 16],
        kind: u8,
        now_ms: i64,
        note: crate::alerts::AckNote,
    ) -> Result<bool, StoreError> {
        self.store
            .ack_alert_by(grant, episode, kind, now_ms, Some(note))
    }

    /// Every grant (active, expired or revoked).
    pub fn grants(&self) -> Result<Vec<GrantRecord>, StoreError> {
        self.store.grants()
    }

    /// Revokes a grant: its alerts are refused from now on.
    pub fn revoke_grant(&self, id: &[u8; 16]) -> Result<bool, StoreError> {
        let _lock = self.limits.lock(&[id]);
        let Some(mut g) = self.store.grant(id)? else {
            return Ok(false);
        };
        g.revoked = true;
        self.store.put_grant(&g)?;
        if let Some(role) = &self.alerts {
            role.keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
        }
        Ok(true)
    }

    fn grant(
        &self,
        role: &AlertRole,
        mut w: GrantWire,
        ticket: TicketRecord,
        now_ms: i64,
    ) -> Result<Response, StoreError> {
        // One ticket, one grant: another grant id (another alert key) from
        // the same vault would be a second resident under the same label.
        if ticket.grant().is_some_and(|g| g != w.grant_id) {
            tracing::warn!(grant = %hex8(&w.grant_id), "grant refused: the ticket has another grant");
            return Ok(Response::Error(ProtoError::TicketUsed));
        }
        if let Err(why) = validate_grant(&w) {
            tracing::warn!(%why, "grant refused");
            return Ok(Response::Error(ProtoError::Malformed(why)));
        }
        let key = role.unwrap_grant(&w.grant_key, &w.wrapped_key);
        let Some(key) = key.filter(|k| grant_id(k) == w.grant_id) else {
            tracing::warn!("grant refused: key does not unwrap or match its id");
            return Ok(Response::Error(ProtoError::BadGrant));
        };
        let id = w.grant_id;
        // Staff see the label they typed, never one a device sends, and the
        // grant ends with the period staff set at the latest.
        w.label = ticket.label.clone();
        w.valid_until_ms = w.valid_until_ms.min(ticket.period_end_ms);
        if w.valid_until_ms <= w.valid_from_ms {
            return Ok(Response::Error(ProtoError::Malformed(
                "the grant's window starts after the ticket's period end".into(),
            )));
        }
        self.bind_grant(&ticket, id)?;
        // Another device of the vault enrolling replaces the record (same
        // grant id, its own one-time key): the replaced key is destroyed,
        // or a copy of the earlier grant frame would still unwrap the alert
        // key after the receipts said the grant was deleted.
        let replaced = self
            .store
            .grant(&id)?
            .map(|old| old.grant.grant_key)
            .filter(|old| *old != w.grant_key);
        self.store.put_grant(&GrantRecord::from_wire(w, now_ms))?;
        if let Some(old) = replaced
            && let Err(e) = role.grant_keys.destroy(&old)
        {
            // The unused-key sweep retries it.
            tracing::error!(error = %e, "could not destroy a replaced grant key");
        }
        role.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, key);
        tracing::info!(grant = %hex8(&id), "grant stored");
        Ok(Response::Ok)
    }

    fn alert(&self, role: &AlertRole, w: AlertWire, now_ms: i64) -> Result<Response, StoreError> {
        let err = |e: ProtoError, why: &str| {
            tracing::warn!(grant = %hex8(&w.grant_id), why, "alert refused");
            Ok(Response::Error(e))
        };
        let Some(mut g) = self.store.grant(&w.grant_id)? else {
            return err(ProtoError::UnknownGrant, "unknown grant");
        };
        if g.revoked {
            return err(ProtoError::GrantRevoked, "grant revoked");
        }
        let mut keys = role.keys.lock().unwrap_or_else(|p| p.into_inner());
        let key = match keys.entry(w.grant_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                // After a restart: unwrap again from the stored grant.
                match role.unwrap_grant(&g.grant.grant_key, &g.grant.wrapped_key) {
                    Some(k) => e.insert(k),
                    None => return err(ProtoError::BadGrant, "stored grant key does not unwrap"),
                }
            }
        };
        let Ok(payload) = open_alert(key, &w.grant_id, &w.episode, w.kind, &w.blob) else {
            return err(ProtoError::ForgedAlert, "does not verify");
        };
        drop(keys);
        if !g.in_window(payload.onset_ms, now_ms) {
            return err(ProtoError::OutsideWindow, "outside the validity window");
        }
        // Devices that merged different parts of the log may place one
        // episode's onset differently (and so derive another episode id).
        // Two episodes' onsets are at least the recovery time apart, so an
        // alert of the same kind closer than that to a stored one is the
        // same episode: acknowledged, not stored again.
        let close = |kind: u8, onset_ms: i64| {
            // Onsets are the devices' (any i64): their distance, unsigned,
            // cannot overflow; recovery_ms is validated non-negative.
            kind == w.kind
                && onset_ms.abs_diff(payload.onset_ms) < g.grant.recovery_ms.max(1).unsigned_abs()
        };
        let same_episode = self
            .store
            .inbox_of(&w.grant_id)?
            .iter()
            .any(|e| close(e.kind, e.onset_ms));
        #[cfg(feature = "fault-injection")]
        if let Some(seen) = &self.forgetful_dedup {
            let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            let dup = seen
                .iter()
                .any(|(id, kind, onset)| *id == w.grant_id && close(*kind, *onset));
            if !dup {
                seen.push((w.grant_id, w.kind, payload.onset_ms));
                let n = seen.len() as u64;
                self.store
                    .put_alert_unchecked(&w, &payload, &g.grant.label, now_ms, n)?;
            }
            return Ok(Response::AlertAck { stored: !dup });
        }
        let stored = !same_episode && self.store.put_alert(&w, &payload, &g.grant.label, now_ms)?;
        g.last_contact_ms = now_ms;
        self.store.put_grant(&g)?;
        if stored {
            // The label is the staff's, but quoted and escaped (Debug) so
            // no character of it can forge or hide a log line.
            tracing::info!(
                alert = %crate::alerts::alert_id(&w.grant_id, &w.episode, w.kind),
                what = crate::alerts::describe_kind(w.kind),
                label = ?g.grant.label,
                grant = %hex8(&w.grant_id),
                "alert stored"
            );
            self.metrics.alert_stored();
            if let Some(hooks) = &self.webhooks {
                let entry = InboxEntry {
                    grant_id: w.grant_id,
                    label: g.grant.label.clone(),
                    episode: w.episode,
                    kind: w.kind,
                    onset_ms: payload.onset_ms,
                    level: payload.level,
                    received_ms: now_ms,
                    acked_ms: None,
                    monitoring_ended: None,
                    ack: None,
                };
                // The alert is stored and acknowledged to the device either
                // way; a queue failure is the operator's to see, not a
                // reason for the device to resend what is already stored.
                if let Err(e) = hooks.alert_stored(&entry, now_ms) {
                    tracing::error!(error = %e, "could not queue the alert for the webhooks");
                }
            }
        }
        Ok(Response::AlertAck { stored })
    }

    /// The acknowledgement state of a grant's alerts, for the device that
    /// proves it holds the grant's alert key (docs/spec.md §12). Every
    /// refusal reads as an unknown grant, so a stranger holding a grant id
    /// learns nothing, not even that the grant exists. Who acknowledged is
    /// never sent: the resident learns when, not which staff member.
    fn alert_status(&self, role: &AlertRole, q: AlertStatusQuery) -> Result<Response, StoreError> {
        let refuse = |why: &str| {
            tracing::warn!(grant = %hex8(&q.grant_id), why, "alert status refused");
            Ok(Response::Error(ProtoError::UnknownGrant))
        };
        let Some(g) = self.store.grant(&q.grant_id)? else {
            return refuse("unknown grant");
        };
        if !role.proves_status(&g, &q.proof) {
            return refuse("proof does not verify");
        }
        let inbox = self.store.inbox_of(&q.grant_id)?;
        let states = q
            .alerts
            .iter()
            .map(|&(episode, kind)| {
                let e = inbox
                    .iter()
                    .find(|e| e.episode == episode && e.kind == kind);
                AlertState {
                    episode,
                    kind,
                    stored: e.is_some(),
                    acked_ms: e.and_then(|e| e.acked_ms),
                }
            })
            .collect();
        Ok(Response::AlertStatus(states))
    }

    /// What the node holds against its node-wide caps.
    pub fn usage(&self) -> Result<Usage, StoreError> {
        use std::sync::atomic::Ordering::Acquire;
        let c = self.limits.counters(&self.store)?;
        Ok(Usage {
            vaults: c.vaults.load(Acquire),
            bytes: c.bytes.load(Acquire),
            pairing_slots: c.pairings.load(Acquire),
            grant_keys: self.alerts.as_ref().map_or(0, |r| r.grant_keys.count()),
        })
    }

    /// Whether two vaults' requests are serialised by one lock (their ids
    /// fall in the same of the relay's lock shards).
    pub fn share_a_lock(&self, a: &VaultIdBytes, b: &VaultIdBytes) -> bool {
        self.limits.same_shard(a, b)
    }

    /// Holds `vault`'s lock until the guard is dropped: none of its
    /// requests is served meanwhile, other vaults' are (for maintenance
    /// and tests).
    pub fn lock_vault(&self, vault: &VaultIdBytes) -> VaultLock<'_> {
        self.limits.lock(&[vault])
    }

    /// The store (for the operator and the sweeper).
    pub fn store(&self) -> &MailboxStore {
        &self.store
    }

    /// A frame handler for one new connection.
    pub fn session(&self) -> RelaySession {
        self.metrics.connection_opened();
        RelaySession {
            relay: self.clone(),
            session: Session::default(),
        }
    }

    /// Handles one decoded request.
    pub fn handle(&self, s: &mut Session, req: Request, now_ms: i64) -> Response {
        let proves = matches!(req, Request::Grant(_) | Request::Alert(_));
        let kind = request_kind(&req);
        let pushed = match &req {
            Request::Push(b) => Some((true, b.blob.len())),
            Request::PushSnapshot(snap) => Some((false, snap.blob.len())),
            _ => None,
        };
        let resp = {
            let _lock = self.limits.lock(&limits::lock_ids(&req, s));
            match self.admit(s, req, now_ms) {
                Ok(r) => r,
                Err(e) => internal(e),
            }
        };
        self.metrics.request(kind, &resp);
        if let (Some((bundle, bytes)), Response::Ack { .. }) = (pushed, &resp) {
            self.metrics.stored(bundle, bytes);
        }
        if proves && matches!(resp, Response::Ok | Response::AlertAck { .. }) {
            s.privileged = true;
        }
        // Every request a vault's device made after proving its mailbox key
        // is a contact; the vault lock is released first, as the grant's
        // lock may be the same shard.
        if let Some(vault) = s.vault
            && !matches!(resp, Response::Error(_))
            && let Err(e) = self.touch(&vault, now_ms)
        {
            tracing::error!(error = %e, "could not record a resident's last contact");
        }
        resp
    }

    /// Records a contact from `vault`'s devices at `now_ms` on the grant
    /// its ticket gave, if it moved by more than [`CONTACT_EVERY_MS`] since
    /// the last one written (so at most one write a minute per vault).
    fn touch(&self, vault: &VaultIdBytes, now_ms: i64) -> Result<(), StoreError> {
        {
            let mut seen = self.contacts.lock().unwrap_or_else(|p| p.into_inner());
            if seen
                .get(vault)
                .is_some_and(|t| now_ms.saturating_sub(*t) < CONTACT_EVERY_MS)
            {
                return Ok(());
            }
            // Bounded: vaults come and go with periods; forgetting costs
            // only one extra check each.
            if seen.len() as u64 >= self.config.max_vaults.saturating_mul(2) {
                seen.clear();
            }
            seen.insert(*vault, now_ms);
        }
        let Some(grant) = self.store.ticket_of_vault(vault)?.and_then(|t| t.grant()) else {
            return Ok(());
        };
        // The grant's lock, as a Grant, an Alert or a revocation take it:
        // this read-modify-write must not undo theirs.
        let _lock = self.lock_grant(&grant);
        let Some(mut g) = self.store.grant(&grant)? else {
            return Ok(());
        };
        if now_ms.saturating_sub(g.last_contact_ms) >= CONTACT_EVERY_MS {
            g.last_contact_ms = now_ms;
            self.store.put_grant(&g)?;
        }
        Ok(())
    }

    /// The node-wide caps a request meets before it is handled: the bound
    /// on a period's end, list lengths, the grant-key and vault caps.
    fn admit(&self, s: &mut Session, req: Request, now_ms: i64) -> Result<Response, StoreError> {
        let c = self.limits.counters(&self.store)?;
        if !s.hello {
            return self.handle_inner(s, req, now_ms);
        }
        let cfg = &self.config;
        if let Some(e) = limits::refuse_early(&req, cfg.max_devices_per_vault) {
            tracing::warn!(error = %e, "request refused");
            return Ok(Response::Error(e));
        }
        // `GrantKey` requests share one lock (limits::lock_ids), so this
        // check and the issue that follows are one step.
        if matches!(req, Request::GrantKey)
            && let Some(role) = &self.alerts
            && role.grant_keys.count() >= cfg.max_grant_keys
        {
            return Ok(Response::Error(limits::full(
                "grant keys",
                cfg.max_grant_keys,
            )));
        }
        let new_vault = limits::new_vault(&req, &self.store)?;
        // Only a new mailbox is bounded: a vault already here keeps
        // confirming its period even if the operator lowers the bound.
        if let (Some(_), Request::Enrol { expires_ms, .. }) = (new_vault, &req) {
            let latest_ms = now_ms.saturating_add(cfg.max_period_ms);
            if *expires_ms > latest_ms {
                tracing::warn!(latest_ms, "register refused: period ends too far ahead");
                return Ok(Response::Error(ProtoError::ExpiryTooFar { latest_ms }));
            }
        }
        if new_vault.is_some() && !reserve(&c.vaults, 1, cfg.max_vaults) {
            return Ok(Response::Error(limits::full("vaults", cfg.max_vaults)));
        }
        let resp = self.handle_inner(s, req, now_ms);
        if let Some(v) = new_vault
            && !matches!(self.store.mailbox(&v), Ok(Some(_)))
        {
            // Refused (or failed): its place goes back.
            release(&c.vaults, 1);
        }
        resp
    }

    fn handle_inner(
        &self,
        s: &mut Session,
        req: Request,
        now_ms: i64,
    ) -> Result<Response, StoreError> {
        let err = |e| Ok(Response::Error(e));
        if let Request::Hello { version } = req {
            if version != PROTOCOL_VERSION {
                return err(ProtoError::UnsupportedVersion {
                    supported: PROTOCOL_VERSION,
                });
            }
            s.hello = true;
            return Ok(Response::HelloOk {
                version: PROTOCOL_VERSION,
            });
        }
        if !s.hello {
            return err(ProtoError::HelloFirst);
        }
        match req {
            Request::Hello { .. } => unreachable!("handled above"),
            // A device whose period is over must not recreate what the
            // sweeper deleted.
            Request::Register { expires_ms, .. } if expires_ms <= now_ms => {
                err(ProtoError::PeriodOver)
            }
            Request::Register {
                vault, verifier, ..
            } => match self.store.shred_marker(&vault)? {
                Some(m) => self.refuse_shredded(&m, |m| {
                    MailboxVerifier::from_bytes(m.verifier) == MailboxVerifier::from_bytes(verifier)
                }),
                None => self.register(vault, verifier),
            },
            Request::Auth { vault, key } => match self.store.shred_marker(&vault)? {
                Some(m) => self.refuse_shredded(&m, |m| {
                    MailboxVerifier::from_bytes(m.verifier).verify(&MailboxKey::from_bytes(key))
                }),
                None => self.auth(s, vault, key),
            },
            Request::Enrol {
                ticket,
                secret,
                vault,
                verifier,
                expires_ms,
            } => self.enrol(ticket, secret, vault, verifier, expires_ms, now_ms),
            Request::Grant(w) => match (&self.alerts, self.grant_permit(s.vault, now_ms)?) {
                (None, _) => err(ProtoError::UnknownGrant),
                (Some(_), Permit::Refused(e)) => err(e),
                (Some(role), Permit::Granted(t)) => self.grant(role, w, t, now_ms),
            },
            Request::Alert(w) => match &self.alerts {
                Some(role) => self.alert(role, w, now_ms),
                None => err(ProtoError::UnknownGrant),
            },
            Request::AlertStatus(q) => match &self.alerts {
                Some(role) => self.alert_status(role, q),
                None => err(ProtoError::UnknownGrant),
            },
            Request::Shred {
                vault,
                key,
                grants,
                notice,
            } => self.shred(vault, key, grants, notice, now_ms),
            Request::GrantKey => match &self.alerts {
                // A key file per request: only an enrolled vault may ask.
                Some(_) if let Permit::Refused(e) = self.grant_permit(s.vault, now_ms)? => err(e),
                Some(role) => match role.grant_keys.issue(now_ms) {
                    Ok(public) => Ok(Response::GrantKey { public }),
                    Err(e) => {
                        tracing::error!(error = %e, "could not issue a grant key");
                        err(ProtoError::Internal("could not issue a grant key".into()))
                    }
                },
                None => err(ProtoError::UnknownGrant),
            },
            // Fetching takes the offer: it waits at the node only until used.
            Request::PairFetch { slot } => {
                let (removed, offer) = self.store.take_pairing_counted(&slot, now_ms)?;
                if removed {
                    release(&self.limits.counters(&self.store)?.pairings, 1);
                }
                match offer {
                    Some(wrapped) => Ok(Response::PairOffer { wrapped }),
                    None => err(ProtoError::NotFound),
                }
            }
            other => {
                let Some(vault) = s.vault else {
                    return err(ProtoError::NotAuthenticated);
                };
                let Some(info) = self.store.mailbox(&vault)? else {
                    // Shredded since this session authenticated: it proved
                    // the mailbox key, so it is told like at `Auth`.
                    return match self.store.shred_marker(&vault)? {
                        Some(m) => self.refuse_shredded(&m, |_| true),
                        None => err(ProtoError::UnknownVault),
                    };
                };
                if info.expires_ms <= now_ms {
                    return err(ProtoError::PeriodOver);
                }
                self.authed(vault, info, other, now_ms)
            }
        }
    }

    /// Refuses a shredded vault: `VaultShredded` to its own devices (`ours`
    /// holds), `Unauthorized` to anyone else, who learns nothing from it.
    fn refuse_shredded(
        &self,
        m: &ShredMarker,
        ours: impl Fn(&ShredMarker) -> bool,
    ) -> Result<Response, StoreError> {
        Ok(Response::Error(if ours(m) {
            ProtoError::VaultShredded {
                notice: m.notice.clone(),
            }
        } else {
            ProtoError::Unauthorized
        }))
    }

    /// Confirms a mailbox with the same verifier (a new one needs `Enrol`).
    fn register(&self, vault: VaultIdBytes, verifier: [u8; 32]) -> Result<Response, StoreError> {
        match self.store.mailbox(&vault)? {
            Some(m)
                if MailboxVerifier::from_bytes(m.verifier)
                    == MailboxVerifier::from_bytes(verifier) =>
            {
                Ok(Response::Ok)
            }
            Some(_) => Ok(Response::Error(ProtoError::AlreadyRegistered)),
            // A new mailbox only with a ticket (`Enrol`, spec §15).
            None => {
                tracing::warn!(vault = %hex8(&vault), "register refused: no ticket");
                Ok(Response::Error(ProtoError::TicketRequired))
            }
        }
    }

    /// Binds the session to `vault` if `key` opens its mailbox.
    fn auth(
        &self,
        s: &mut Session,
        vault: VaultIdBytes,
        key: [u8; 32],
    ) -> Result<Response, StoreError> {
        match self.store.mailbox(&vault)? {
            None => Ok(Response::Error(ProtoError::UnknownVault)),
            Some(m) if opens(&m, key) => {
                s.vault = Some(vault);
                Ok(Response::Ok)
            }
            Some(_) => {
                tracing::warn!(vault = %hex8(&vault), "mailbox key refused");
                Ok(Response::Error(ProtoError::Unauthorized))
            }
        }
    }

    /// The quota `add_bytes` and `add_blobs` more would exceed, if any. The
    /// counters come from a stored record and the sizes from the wire: a
    /// sum past `u64::MAX` exceeds every quota (it never wraps or panics).
    fn quota(&self, info: &MailboxInfo, add_bytes: u64, add_blobs: u64) -> Option<ProtoError> {
        let over = |used: u64, add: u64, max: u64| used.checked_add(add).is_none_or(|n| n > max);
        if over(info.bytes, add_bytes, self.config.max_bytes_per_vault) {
            return Some(ProtoError::QuotaExceeded {
                what: "bytes".into(),
                limit: self.config.max_bytes_per_vault,
            });
        }
        if over(info.blobs, add_blobs, self.config.max_blobs_per_vault) {
            return Some(ProtoError::QuotaExceeded {
                what: "blobs".into(),
                limit: self.config.max_blobs_per_vault,
            });
        }
        None
    }

    /// One request of an authenticated session, for `vault` (whose mailbox
    /// is `info`, not expired).
    fn authed(
        &self,
        vault: VaultIdBytes,
        info: MailboxInfo,
        req: Request,
        now_ms: i64,
    ) -> Result<Response, StoreError> {
        match req {
            Request::Push(b) => self.push(vault, info, b),
            Request::Pull { have, max_bytes } => self.pull(vault, &have, max_bytes),
            Request::PushSnapshot(snap) => self.push_snapshot(vault, info, &snap),
            Request::PairOffer { slot, wrapped } => {
                if wrapped.len() > 4096 {
                    return Ok(Response::Error(ProtoError::Malformed(
                        "pairing offer too large".into(),
                    )));
                }
                // A place under the node-wide cap is reserved first, and
                // kept only if the offer took a slot that was empty.
                let pairings = &self.limits.counters(&self.store)?.pairings;
                if !reserve(pairings, 1, self.config.max_pairing_slots) {
                    let max = self.config.max_pairing_slots;
                    return Ok(Response::Error(limits::full("pairing slots", max)));
                }
                let stored = self.store.put_pairing_counted(
                    &slot,
                    &wrapped,
                    now_ms,
                    now_ms.saturating_add(self.config.pairing_ttl_ms),
                );
                if !matches!(stored, Ok(Some(true))) {
                    release(pairings, 1);
                }
                Ok(if stored?.is_some() {
                    Response::Ok
                } else {
                    Response::Error(ProtoError::SlotTaken)
                })
            }
            Request::Hello { .. }
            | Request::Register { .. }
            | Request::Auth { .. }
            | Request::PairFetch { .. }
            | Request::Grant(_)
            | Request::Alert(_)
            | Request::AlertStatus(_)
            | Request::GrantKey
            | Request::Enrol { .. }
            | Request::Shred { .. } => unreachable!("handled before authentication"),
        }
    }

    /// Stores the next bundle of a device, or acknowledges a retry.
    fn push(
        &self,
        vault: VaultIdBytes,
        mut info: MailboxInfo,
        b: BundleItem,
    ) -> Result<Response, StoreError> {
        let err = |e| Ok(Response::Error(e));
        let highest = self.store.highest(&vault, &b.device)?;
        // `highest` is a stored counter: at u64::MAX every seq is a retry.
        let next = highest.saturating_add(1);
        if b.seq == 0 || b.seq > next {
            return err(ProtoError::OutOfOrder {
                expected: next,
                got: b.seq,
            });
        }
        if b.seq <= highest {
            // A retry after a lost ack: the same bytes are acknowledged
            // again; a bundle already folded into a snapshot, too.
            return match self.store.bundle(&vault, &b.device, b.seq)? {
                Some(stored) if stored != b.blob => err(ProtoError::Conflict),
                _ => Ok(Response::Ack {
                    device: b.device,
                    seq: b.seq,
                }),
            };
        }
        let max_devices = self.config.max_devices_per_vault;
        if highest == 0 && self.store.holdings(&vault)?.len() as u64 >= max_devices {
            tracing::warn!(vault = %hex8(&vault), "device quota exceeded");
            return err(ProtoError::QuotaExceeded {
                what: "devices".into(),
                limit: max_devices,
            });
        }
        if let Some(e) = self.quota(&info, b.blob.len() as u64, 1) {
            tracing::warn!(vault = %hex8(&vault), "quota exceeded");
            return err(e);
        }
        let len = b.blob.len() as u64;
        let disk = &self.limits.counters(&self.store)?.bytes;
        if !reserve(disk, len, self.config.max_store_bytes) {
            return err(limits::full("disk bytes", self.config.max_store_bytes));
        }
        info.bytes = info.bytes.saturating_add(len);
        info.blobs = info.blobs.saturating_add(1);
        if let Err(e) = self.store.append(&vault, &b, &info) {
            release(disk, len);
            return Err(e);
        }
        Ok(Response::Ack {
            device: b.device,
            seq: b.seq,
        })
    }

    /// What `have` lacks: the snapshot if it covers more, then the bundles
    /// past it, within the reply budget.
    fn pull(
        &self,
        vault: VaultIdBytes,
        have: &VersionVector,
        max_bytes: u32,
    ) -> Result<Response, StoreError> {
        // Maps, not scans: both lists are the device's to choose (bounded
        // by `max_devices_per_vault`, but not to be walked per entry).
        let mut floor: HashMap<[u8; 16], u64> = HashMap::with_capacity(have.len());
        for (d, seq) in have {
            let e = floor.entry(*d).or_insert(0);
            *e = (*e).max(*seq);
        }
        let had = |d: &[u8; 16]| floor.get(d).copied().unwrap_or(0);
        let snap = self
            .store
            .snapshot(&vault)?
            .filter(|s| s.covers.iter().any(|(d, seq)| had(d) < *seq));
        if let Some(s) = &snap {
            for (d, seq) in &s.covers {
                let e = floor.entry(*d).or_insert(0);
                *e = (*e).max(*seq);
            }
        }
        let max_items = self.config.max_pull_bundles.max(1) as usize;
        let budget = max_bytes.min(self.config.max_pull_bytes) as usize;
        let mut used = snap.as_ref().map_or(0, |s| s.blob.len());
        let mut bundles = Vec::new();
        let mut more = false;
        for b in self.store.bundles_after(&vault, &floor)? {
            let b = b?;
            if (!bundles.is_empty() || snap.is_some())
                && (used.saturating_add(b.blob.len()) > budget || bundles.len() >= max_items)
            {
                more = true;
                break;
            }
            used = used.saturating_add(b.blob.len());
            bundles.push(b);
        }
        if snap.is_none() && bundles.is_empty() {
            return Ok(Response::UpToDate);
        }
        Ok(Response::Bundles {
            snapshot: snap,
            bundles,
            more,
        })
    }

    /// Keeps a snapshot that covers at least the one kept, and drops the
    /// bundles it covers.
    fn push_snapshot(
        &self,
        vault: VaultIdBytes,
        mut info: MailboxInfo,
        snap: &SnapshotItem,
    ) -> Result<Response, StoreError> {
        let snapshot_ack = Response::Ack {
            device: [0; 16],
            seq: 0,
        };
        let holdings: HashMap<_, _> = self.store.holdings(&vault)?.into_iter().collect();
        let covers: HashMap<_, _> = snap.covers.iter().copied().collect();
        for (d, seq) in &snap.covers {
            let h = holdings.get(d).copied().unwrap_or(0);
            if *seq > h {
                return Ok(Response::Error(ProtoError::Malformed(
                    "snapshot covers bundles the relay never received".into(),
                )));
            }
        }
        if let Some(old) = self.store.snapshot(&vault)? {
            // Never replace a snapshot with one that covers less.
            let covers_old = old
                .covers
                .iter()
                .all(|(d, seq)| covers.get(d).copied().unwrap_or(0) >= *seq);
            if !covers_old {
                return Ok(snapshot_ack);
            }
        }
        // The quota applies to usage after the covered bundles are gone;
        // growth of the node's total is reserved under its cap first.
        let disk = &self.limits.counters(&self.store)?.bytes;
        let before = info.bytes;
        let (reserved, disk_full) = (Cell::new(0), Cell::new(false));
        let fits = |after: &MailboxInfo| {
            if after.bytes > self.config.max_bytes_per_vault
                || after.blobs > self.config.max_blobs_per_vault
            {
                return false;
            }
            let grow = after.bytes.saturating_sub(before);
            if !reserve(disk, grow, self.config.max_store_bytes) {
                disk_full.set(true);
                return false;
            }
            reserved.set(grow);
            true
        };
        let stored = match self.store.put_snapshot(&vault, snap, &mut info, fits) {
            Ok(stored) => stored,
            Err(e) => {
                release(disk, reserved.get());
                return Err(e);
            }
        };
        if stored {
            release(disk, before.saturating_sub(info.bytes));
        } else if disk_full.get() {
            let max = self.config.max_store_bytes;
            return Ok(Response::Error(limits::full("disk bytes", max)));
        }
        if !stored {
            let probe = MailboxInfo {
                bytes: 0,
                blobs: 0,
                ..info
            };
            return Ok(Response::Error(
                self.quota(&probe, snap.blob.len() as u64, 1).unwrap_or(
                    ProtoError::QuotaExceeded {
                        what: "bytes".into(),
                        limit: self.config.max_bytes_per_vault,
                    },
                ),
            ));
        }
        Ok(snapshot_ack)
    }
}

fn hex8(v: &[u8]) -> String {
    hex::encode(&v[..v.len().min(4)])
}

/// One connection's handler: decodes frames, keeps the session, encodes replies.
#[derive(Debug)]
pub struct RelaySession {
    relay: Relay,
    session: Session,
}

impl FrameHandler for RelaySession {
    fn handle(&mut self, request: &[u8], now_ms: i64) -> Vec<u8> {
        let resp = match decode_request(request) {
            Ok(req) => self.relay.handle(&mut self.session, req, now_ms),
            Err(e) => {
                tracing::warn!(error = %e, "malformed frame");
                let resp = Response::Error(ProtoError::Malformed(e.to_string()));
                self.relay.metrics.request("malformed", &resp);
                resp
            }
        };
        encode_response(&resp)
    }

    fn authenticated(&self) -> bool {
        self.session.authenticated()
    }
}

impl Drop for RelaySession {
    fn drop(&mut self) {
        self.relay.metrics.connection_closed();
    }
}

/// What a node holds against its node-wide caps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Mailboxes.
    pub vaults: u64,
    /// Bytes of blobs, all vaults together.
    pub bytes: u64,
    /// Pairing offers waiting.
    pub pairing_slots: u64,
    /// One-time grant key files.
    pub grant_keys: u64,
}
