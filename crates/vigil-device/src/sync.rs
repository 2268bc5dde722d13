//! Device sync through the blind relay, and pairing (docs/spec.md §10).
//!
//! The vault drives the sans-I/O [`DeviceSync`] machine over any
//! [`Exchange`] (QUIC in production, a direct call in the simulation) and
//! does the device's part: seal outgoing bundles into an outbox before
//! pushing them, open and store incoming ones, keep the version vector.

use sha2::{Digest, Sha256};
use vigil_crypto::{
    Context, KeySchedule, Kind, RootKey, ShortAuthCode, VaultId, WrappedKey, X25519Identity,
    X25519PublicKey, open, seal, unwrap, wrap,
};
use vigil_log::{ChangeHash, DeviceId};
use vigil_proto::{
    BundleItem, DeviceSync, Exchange, ExchangeError, ProtoError, Registration, Request, Response,
    SnapshotItem, SyncConfig, SyncError, SyncEvent, VersionVector, decode_response, encode_request,
};

use crate::keystore::KeyStore;
use crate::storage::{Batch, Storage, StorageError};
use crate::vault::{OpenError, P_RECEIVED, Period, Vault, WriteError};

const P_OUTBOX: &[u8] = b"o/";
const P_VV: &[u8] = b"m/vv/";
const K_BUNDLED: &[u8] = b"m/bundled";
const K_NEXT_BUNDLE: &[u8] = b"m/next-bundle";
const K_SINCE_SNAPSHOT: &[u8] = b"m/since-relay-snapshot";
/// A relay snapshot as received: be64(n) || n × (device (16) || be64(seq)) || sealed blob.
pub(crate) const K_RELAY_SNAPSHOT: &[u8] = b"r/snapshot";

/// Upload a relay snapshot after this many bundles since the last one.
pub const AUTO_SNAPSHOT_EVERY: u64 = 32;

/// When to upload a sealed snapshot of the whole log to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotPolicy {
    /// After [`AUTO_SNAPSHOT_EVERY`] bundles have reached the relay since the last one.
    #[default]
    Auto,
    /// At the end of this sync.
    Always,
    /// Not in this sync.
    Never,
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Own bundles the node acknowledged.
    pub pushed: usize,
    /// Bundles received and applied.
    pub received: usize,
    /// Whether a relay snapshot was received and applied.
    pub received_snapshot: bool,
    /// Blobs that did not open (tampered, moved, or not ours) and were ignored.
    pub rejected: usize,
    /// Whether this device uploaded a snapshot.
    pub uploaded_snapshot: bool,
}

/// Why a sync or pairing failed. Nothing acknowledged or stored is lost: a
/// later sync resumes where this one stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncFailure {
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] ExchangeError),
    /// The protocol failed (refusal, bad reply).
    #[error(transparent)]
    Protocol(#[from] SyncError),
    /// The device's store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A local write failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Creating the joining vault failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Pairing: nothing waits for this device at the node (yet).
    #[error("no pairing offer for this device at the node (has the first device sent it?)")]
    NoOffer,
    /// Pairing: the offer does not open with this device's pairing key.
    #[error("the pairing offer does not open with this device's key")]
    BadOffer,
}

pub(crate) fn bundle_ctx(vault: VaultId, device: DeviceId, seq: u64) -> Context {
    Context::new("vigil/v1/bundle")
        .bytes(vault.as_bytes())
        .bytes(&device.0)
        .u64(seq)
}

fn encode_vv(vv: &VersionVector) -> Vec<u8> {
    let mut v = Vec::with_capacity(vv.len() * 24);
    for (d, s) in vv {
        v.extend_from_slice(d);
        v.extend_from_slice(&s.to_be_bytes());
    }
    v
}

fn relay_snapshot_ctx(vault: VaultId, covers: &VersionVector) -> Context {
    Context::new("vigil/v1/relay-snapshot")
        .bytes(vault.as_bytes())
        .bytes(&encode_vv(covers))
}

fn pair_info_ctx(vault: VaultId, joiner: &X25519PublicKey) -> Context {
    Context::new("vigil/v1/pair-info")
        .bytes(vault.as_bytes())
        .bytes(joiner.as_bytes())
}

fn received_key(device: DeviceId, seq: u64) -> Vec<u8> {
    let mut k = P_RECEIVED.to_vec();
    k.extend_from_slice(&device.0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Opens a stored relay snapshot (see [`K_RELAY_SNAPSHOT`]).
pub(crate) fn open_relay_snapshot(
    log_key: &vigil_crypto::LogKey,
    vault: VaultId,
    stored: &[u8],
) -> Option<vigil_crypto::Zeroizing<Vec<u8>>> {
    let n = usize::try_from(u64::from_be_bytes(stored.get(..8)?.try_into().ok()?)).ok()?;
    let end = 8usize.checked_add(n.checked_mul(24)?)?;
    let covers: VersionVector = stored
        .get(8..end)?
        .chunks_exact(24)
        .map(|c| {
            let mut d = [0u8; 16];
            d.copy_from_slice(&c[..16]);
            let mut s = [0u8; 8];
            s.copy_from_slice(&c[16..]);
            (d, u64::from_be_bytes(s))
        })
        .collect();
    open(
        log_key,
        Kind::LogSnapshot,
        &relay_snapshot_ctx(vault, &covers),
        &stored[end..],
    )
    .ok()
}

pub(crate) fn parse_received_key(k: &[u8]) -> Option<(DeviceId, u64)> {
    let rest = k.strip_prefix(P_RECEIVED)?;
    if rest.len() != 24 {
        return None;
    }
    Some((
        DeviceId(rest[..16].try_into().ok()?),
        u64::from_be_bytes(rest[16..].try_into().ok()?),
    ))
}

fn be64(v: Option<Vec<u8>>) -> u64 {
    v.and_then(|b| b.as_slice().try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0)
}

/// The node-side slot where a joiner's wrapped root waits:
/// `SHA-256("vigil/v1/pair-slot" || joiner public key)`.
pub fn pairing_slot(joiner: &X25519PublicKey) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"vigil/v1/pair-slot");
    h.update(joiner.as_bytes());
    h.finalize().into()
}

/// One request/response outside a sync session (pairing).
fn call(conn: &mut dyn Exchange, req: &Request) -> Result<Response, SyncFailure> {
    let frame = conn.exchange(&encode_request(req))?;
    match decode_response(&frame).map_err(SyncError::from)? {
        Response::Error(e) => Err(SyncFailure::Protocol(SyncError::Refused(e))),
        r => Ok(r),
    }
}

/// Opens (or re-opens) a session on `conn`.
pub(crate) fn hello(conn: &mut dyn Exchange) -> Result<(), SyncFailure> {
    match call(
        conn,
        &Request::Hello {
            version: vigil_proto::PROTOCOL_VERSION,
        },
    )? {
        Response::HelloOk { .. } => Ok(()),
        r => Err(SyncError::Unexpected(format!("{r:?} to hello")).into()),
    }
}

impl Vault {
    fn version_vector(&self) -> Result<VersionVector, StorageError> {
        let mut vv = Vec::new();
        for (k, v) in self.storage.scan_prefix(P_VV)? {
            if let Some(d) = k
                .strip_prefix(P_VV)
                .and_then(|d| <[u8; 16]>::try_from(d).ok())
            {
                vv.push((d, be64(Some(v))));
            }
        }
        Ok(vv)
    }

    fn vv_key(device: &[u8; 16]) -> Vec<u8> {
        let mut k = P_VV.to_vec();
        k.extend_from_slice(device);
        k
    }

    /// Seals this device's changes not yet bundled into the next outbox
    /// bundle, durably, before anything is sent.
    fn make_bundle(&mut self) -> Result<(), SyncFailure> {
        if !self.log.is_initialised() {
            return Ok(());
        }
        let bundled: Vec<ChangeHash> = self
            .storage
            .get(K_BUNDLED)?
            .unwrap_or_default()
            .chunks_exact(32)
            .filter_map(|c| c.try_into().ok().map(ChangeHash))
            .collect();
        let (changes, n) = self.log.own_changes_since(&bundled);
        if n == 0 {
            return Ok(());
        }
        #[allow(unused_mut)]
        let mut seq = be64(self.storage.get(K_NEXT_BUNDLE)?).max(1);
        #[cfg(feature = "fault-injection")]
        if self.has_fault(crate::DeviceFault::OwnSeqStuckAfterRestart) {
            seq = be64(self.storage.get(&Self::vv_key(&self.device.0))?).max(1);
        }
        let sealed = seal(
            &self.log_key,
            Kind::LogBundle,
            &bundle_ctx(self.keys.vault_id(), self.device, seq),
            &changes,
            &mut self.rng,
        )
        .map_err(|e| WriteError::TooLarge(e.to_string()))?;
        let heads: Vec<u8> = self.log.heads().iter().flat_map(|h| h.0).collect();
        let mut batch = Batch::default();
        let mut k = P_OUTBOX.to_vec();
        k.extend_from_slice(&seq.to_be_bytes());
        batch.put(k, sealed);
        batch.put(K_BUNDLED, heads);
        batch.put(K_NEXT_BUNDLE, (seq + 1).to_be_bytes().to_vec());
        self.storage.apply(batch)?;
        Ok(())
    }

    /// Syncs with the node: pushes this device's new changes as one sealed
    /// bundle and pulls what the version vector lacks.
    pub fn sync(&mut self, conn: &mut dyn Exchange) -> Result<SyncReport, SyncFailure> {
        self.sync_with(conn, SnapshotPolicy::Auto)
    }

    /// [`Vault::sync`] with a choice of when to upload a relay snapshot.
    pub fn sync_with(
        &mut self,
        conn: &mut dyn Exchange,
        policy: SnapshotPolicy,
    ) -> Result<SyncReport, SyncFailure> {
        self.persist()?;
        self.make_bundle()?;
        let outgoing: Vec<BundleItem> = self
            .storage
            .scan_prefix(P_OUTBOX)?
            .into_iter()
            .filter_map(|(k, blob)| {
                let seq = u64::from_be_bytes(k.strip_prefix(P_OUTBOX)?.try_into().ok()?);
                Some(BundleItem {
                    device: self.device.0,
                    seq,
                    blob,
                })
            })
            .collect();
        let mailbox = self.keys.mailbox_key();
        let config = SyncConfig {
            vault: *self.keys.vault_id().as_bytes(),
            mailbox_key: *mailbox.expose_secret(),
            register: Some(Registration {
                verifier: mailbox.verifier().to_bytes(),
                expires_ms: self.period.end_ms,
            }),
            pull_max_bytes: 4 * 1024 * 1024,
        };
        let mut sync = DeviceSync::new(config, self.version_vector()?, outgoing);
        let mut report = SyncReport::default();
        let mut since_snapshot = be64(self.storage.get(K_SINCE_SNAPSHOT)?);
        while let Some(req) = sync.poll_request() {
            let resp = conn.exchange(&req)?;
            sync.handle_response(&resp)?;
            let mut received: Vec<(BundleItem, Vec<u8>)> = Vec::new();
            while let Some(ev) = sync.poll_event() {
                match ev {
                    SyncEvent::Acked { seq } => {
                        let mut batch = Batch::default();
                        let mut k = P_OUTBOX.to_vec();
                        k.extend_from_slice(&seq.to_be_bytes());
                        batch.remove(k);
                        batch.put(Self::vv_key(&self.device.0), seq.to_be_bytes().to_vec());
                        since_snapshot += 1;
                        batch.put(K_SINCE_SNAPSHOT, since_snapshot.to_be_bytes().to_vec());
                        self.storage.apply(batch)?;
                        report.pushed += 1;
                    }
                    SyncEvent::Snapshot(s) => {
                        let vault = self.keys.vault_id();
                        match open(
                            &self.log_key,
                            Kind::LogSnapshot,
                            &relay_snapshot_ctx(vault, &s.covers),
                            &s.blob,
                        ) {
                            Ok(doc) => {
                                self.log.apply(&doc).map_err(WriteError::from)?;
                                // Stored as received (sealed), with the vector
                                // it covers, in one durable batch; the next
                                // compaction folds it into the local snapshot.
                                let mut batch = Batch::default();
                                let mut v = encode_vv(&s.covers);
                                v.splice(0..0, (s.covers.len() as u64).to_be_bytes());
                                v.extend_from_slice(&s.blob);
                                batch.put(K_RELAY_SNAPSHOT, v);
                                for (d, seq) in &s.covers {
                                    batch.put(Self::vv_key(d), seq.to_be_bytes().to_vec());
                                }
                                self.storage.apply(batch)?;
                                self.log.mark_all_saved();
                                report.received_snapshot = true;
                            }
                            Err(_) => {
                                tracing::warn!("relay snapshot does not open; ignored");
                                for (d, _) in &s.covers {
                                    sync.reject(*d, 1);
                                }
                                report.rejected += 1;
                            }
                        }
                    }
                    SyncEvent::Bundle(b) => {
                        let ctx = bundle_ctx(self.keys.vault_id(), DeviceId(b.device), b.seq);
                        match open(&self.log_key, Kind::LogBundle, &ctx, &b.blob) {
                            Ok(chunk) => received.push((b, chunk.to_vec())),
                            Err(_) => {
                                tracing::warn!(seq = b.seq, "bundle does not open; ignored");
                                sync.reject(b.device, b.seq);
                                report.rejected += 1;
                            }
                        }
                    }
                    SyncEvent::PullDone => {
                        let have = sync.have();
                        self.store_received(&mut received, &mut report)?;
                        let upload = match policy {
                            SnapshotPolicy::Always => true,
                            SnapshotPolicy::Never => false,
                            SnapshotPolicy::Auto => since_snapshot >= AUTO_SNAPSHOT_EVERY,
                        };
                        if upload && self.log.is_initialised() {
                            let doc = self.log.save();
                            let blob = seal(
                                &self.log_key,
                                Kind::LogSnapshot,
                                &relay_snapshot_ctx(self.keys.vault_id(), &have),
                                &doc,
                                &mut self.rng,
                            )
                            .map_err(|e| WriteError::TooLarge(e.to_string()))?;
                            sync.offer_snapshot(SnapshotItem { covers: have, blob });
                        }
                    }
                    SyncEvent::SnapshotAcked => {
                        report.uploaded_snapshot = true;
                        since_snapshot = 0;
                        let mut batch = Batch::default();
                        batch.put(K_SINCE_SNAPSHOT, 0u64.to_be_bytes().to_vec());
                        self.storage.apply(batch)?;
                    }
                }
            }
            self.store_received(&mut received, &mut report)?;
        }
        Ok(report)
    }

    /// Applies received bundles and stores them as received, with the
    /// advanced version vector, in one durable batch.
    fn store_received(
        &mut self,
        received: &mut Vec<(BundleItem, Vec<u8>)>,
        report: &mut SyncReport,
    ) -> Result<(), SyncFailure> {
        if received.is_empty() {
            return Ok(());
        }
        let mut all = Vec::new();
        let mut batch = Batch::default();
        #[allow(unused_variables)]
        for (i, (b, chunk)) in received.drain(..).enumerate() {
            #[cfg(feature = "fault-injection")]
            if i > 0 && self.has_fault(crate::DeviceFault::SkipQueuedChanges) {
                batch.put(Self::vv_key(&b.device), b.seq.to_be_bytes().to_vec());
                report.received += 1;
                continue;
            }
            all.extend_from_slice(&chunk);
            // Our own bundles come back too; they are already in the log.
            if b.device != self.device.0 {
                batch.put(received_key(DeviceId(b.device), b.seq), b.blob);
            }
            batch.put(Self::vv_key(&b.device), b.seq.to_be_bytes().to_vec());
            report.received += 1;
        }
        self.log.apply(&all).map_err(WriteError::from)?;
        self.storage.apply(batch)?;
        // Everything applied is stored (as received bundles): nothing to re-save.
        self.log.mark_all_saved();
        Ok(())
    }

    /// First device: syncs (uploading a snapshot, so the joiner needs one
    /// download), then leaves the period's root, wrapped to `joiner`, at the
    /// node, and returns the code the resident compares on both screens.
    pub fn offer_pairing(
        &mut self,
        conn: &mut dyn Exchange,
        joiner: &X25519PublicKey,
        now_ms: i64,
    ) -> Result<ShortAuthCode, SyncFailure> {
        self.sync_with(conn, SnapshotPolicy::Always)?;
        let mut batch = Batch::default();
        self.disclose(
            &mut batch,
            &crate::alerts::Disclosure::Pairing {
                at_ms: now_ms,
                joiner: *joiner,
            },
        )?;
        self.storage.apply(batch)?;
        let wrapped =
            wrap(joiner, self.keys.root(), &mut self.rng).map_err(|_| SyncFailure::BadOffer)?;
        let mut period = self.period.start_ms.to_be_bytes().to_vec();
        period.extend_from_slice(&self.period.end_ms.to_be_bytes());
        let info = seal(
            &self.log_key,
            Kind::PairingInfo,
            &pair_info_ctx(self.keys.vault_id(), joiner),
            &period,
            &mut self.rng,
        )
        .map_err(|e| WriteError::TooLarge(e.to_string()))?;
        let mut payload = wrapped.as_bytes().to_vec();
        payload.extend_from_slice(&info);
        let mailbox = self.keys.mailbox_key();
        hello(conn)?;
        call(
            conn,
            &Request::Register {
                vault: *self.keys.vault_id().as_bytes(),
                verifier: mailbox.verifier().to_bytes(),
                expires_ms: self.period.end_ms,
            },
        )?;
        call(
            conn,
            &Request::Auth {
                vault: *self.keys.vault_id().as_bytes(),
                key: *mailbox.expose_secret(),
            },
        )?;
        call(
            conn,
            &Request::PairOffer {
                slot: pairing_slot(joiner),
                wrapped: payload,
            },
        )?;
        Ok(self.keys.pairing_code(joiner))
    }

    /// Joining device: fetches the wrapped root left for `identity`, creates
    /// this device's vault in `storage` with it, and syncs the whole log.
    /// Returns the vault and the code to compare with the first device's.
    pub fn join<R: vigil_crypto::rand_core::CryptoRng + ?Sized>(
        storage: Box<dyn Storage>,
        key_store: Box<dyn KeyStore>,
        identity: &X25519Identity,
        conn: &mut dyn Exchange,
        rng: &mut R,
    ) -> Result<(Vault, ShortAuthCode), SyncFailure> {
        hello(conn)?;
        let joiner = identity.public_key();
        let payload = match call(
            conn,
            &Request::PairFetch {
                slot: pairing_slot(&joiner),
            },
        ) {
            Ok(Response::PairOffer { wrapped }) => wrapped,
            Err(SyncFailure::Protocol(SyncError::Refused(ProtoError::NotFound))) => {
                return Err(SyncFailure::NoOffer);
            }
            Ok(r) => return Err(SyncError::Unexpected(format!("{r:?} to pair fetch")).into()),
            Err(e) => return Err(e),
        };
        if payload.len() <= vigil_crypto::WRAPPED_LEN {
            return Err(SyncFailure::BadOffer);
        }
        let wrapped = WrappedKey::from_slice(&payload[..vigil_crypto::WRAPPED_LEN])
            .map_err(|_| SyncFailure::BadOffer)?;
        let root: RootKey = unwrap(identity, &wrapped).map_err(|_| SyncFailure::BadOffer)?;
        let keys = KeySchedule::new(RootKey::from_bytes(*root.expose_secret()));
        let info = open(
            &keys.log_key(),
            Kind::PairingInfo,
            &pair_info_ctx(keys.vault_id(), &joiner),
            &payload[vigil_crypto::WRAPPED_LEN..],
        )
        .map_err(|_| SyncFailure::BadOffer)?;
        if info.len() != 16 {
            return Err(SyncFailure::BadOffer);
        }
        let period = Period {
            start_ms: i64::from_be_bytes(info[..8].try_into().unwrap_or_default()),
            end_ms: i64::from_be_bytes(info[8..].try_into().unwrap_or_default()),
        };
        let code = keys.pairing_code(&joiner);
        drop(keys);
        let mut vault = Vault::create_with_root(storage, period, key_store, root, false, rng)?;
        vault.sync_with(conn, SnapshotPolicy::Never)?;
        Ok((vault, code))
    }
}
