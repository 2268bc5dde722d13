//! The fever-alert capability on the device: grants, local evaluation of the
//! rule, the alert outbox, the delivery watch, and the disclosure log
//! (docs/spec.md §12).

use vigil_crypto::{AlertKey, Context, Kind, StoreKey, VaultId, X25519PublicKey, open, seal, wrap};
use vigil_log::FeverRule;
use vigil_proto::alert::{
    ALERT_END, ALERT_START, AlertPayload, episode_id, grant_id, level_for, round_onset, seal_alert,
};
use vigil_proto::{
    AlertWire, Exchange, GrantWire, ProtoError, Request, Response, SyncError, decode_response,
    encode_request,
};

use crate::storage::{Batch, StorageError};
use crate::sync::{SyncFailure, hello};
use crate::vault::{Vault, WriteError};

const P_GRANT: &[u8] = b"g/";
const P_OUTBOX: &[u8] = b"a/";
const P_ALERTED: &[u8] = b"A/";
const P_DISCLOSURE: &[u8] = b"d/";

/// An alert unacknowledged for longer than this is surfaced to the resident.
pub const DELIVERY_DEADLINE_MS: i64 = 15 * 60_000;

/// A grant this device made.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// Its id (derived from the alert key).
    pub grant_id: [u8; 16],
    /// The node it was made to.
    pub node: X25519PublicKey,
    /// The rule.
    pub rule: FeverRule,
    /// What the resident shares.
    pub label: String,
    /// Validity: the period.
    pub valid_from_ms: i64,
    /// End of validity.
    pub valid_until_ms: i64,
}

impl Grant {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(100 + self.label.len());
        v.extend_from_slice(&self.grant_id);
        v.extend_from_slice(self.node.as_bytes());
        v.extend_from_slice(&self.rule.threshold_c.to_be_bytes());
        v.extend_from_slice(&(self.rule.confirm_count as u64).to_be_bytes());
        v.extend_from_slice(&self.rule.confirm_window_ms.to_be_bytes());
        v.extend_from_slice(&self.rule.recovery_ms.to_be_bytes());
        v.extend_from_slice(&self.valid_from_ms.to_be_bytes());
        v.extend_from_slice(&self.valid_until_ms.to_be_bytes());
        v.extend_from_slice(self.label.as_bytes());
        v
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let b8 = |i: usize| -> Option<[u8; 8]> { b.get(i..i + 8)?.try_into().ok() };
        Some(Grant {
            grant_id: b.get(..16)?.try_into().ok()?,
            node: X25519PublicKey::from_bytes(b.get(16..48)?.try_into().ok()?),
            rule: FeverRule {
                threshold_c: f64::from_be_bytes(b8(48)?),
                confirm_count: usize::try_from(u64::from_be_bytes(b8(56)?)).ok()?,
                confirm_window_ms: i64::from_be_bytes(b8(64)?),
                recovery_ms: i64::from_be_bytes(b8(72)?),
            },
            valid_from_ms: i64::from_be_bytes(b8(80)?),
            valid_until_ms: i64::from_be_bytes(b8(88)?),
            label: String::from_utf8(b.get(96..)?.to_vec()).ok()?,
        })
    }
}

/// One fact that left this device.
#[derive(Debug, Clone, PartialEq)]
pub enum Disclosure {
    /// A fever-alert grant was given to a node.
    Grant {
        /// When, ms.
        at_ms: i64,
        /// To which node.
        node: X25519PublicKey,
        /// Under which rule.
        rule: FeverRule,
        /// With which label.
        label: String,
    },
    /// An alert was sent to a node for the first time.
    AlertSent {
        /// When, ms.
        at_ms: i64,
        /// The episode's (rounded) onset, ms.
        onset_ms: i64,
        /// Started (1) or ended (2).
        kind: u8,
        /// Level band.
        level: u8,
    },
    /// The node acknowledged an alert.
    AlertAcknowledged {
        /// When, ms.
        at_ms: i64,
        /// The episode's (rounded) onset, ms.
        onset_ms: i64,
        /// Started (1) or ended (2).
        kind: u8,
    },
    /// The vault's root was wrapped to another device.
    Pairing {
        /// When, ms.
        at_ms: i64,
        /// The joining device's key.
        joiner: X25519PublicKey,
    },
}

impl Disclosure {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        match self {
            Disclosure::Grant {
                at_ms,
                node,
                rule,
                label,
            } => {
                v.push(1);
                v.extend_from_slice(&at_ms.to_be_bytes());
                let g = Grant {
                    grant_id: [0; 16],
                    node: *node,
                    rule: *rule,
                    label: label.clone(),
                    valid_from_ms: 0,
                    valid_until_ms: 0,
                };
                v.extend_from_slice(&g.encode());
            }
            Disclosure::AlertSent {
                at_ms,
                onset_ms,
                kind,
                level,
            } => {
                v.push(2);
                v.extend_from_slice(&at_ms.to_be_bytes());
                v.extend_from_slice(&onset_ms.to_be_bytes());
                v.extend_from_slice(&[*kind, *level]);
            }
            Disclosure::AlertAcknowledged {
                at_ms,
                onset_ms,
                kind,
            } => {
                v.push(3);
                v.extend_from_slice(&at_ms.to_be_bytes());
                v.extend_from_slice(&onset_ms.to_be_bytes());
                v.push(*kind);
            }
            Disclosure::Pairing { at_ms, joiner } => {
                v.push(4);
                v.extend_from_slice(&at_ms.to_be_bytes());
                v.extend_from_slice(joiner.as_bytes());
            }
        }
        v
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let at_ms = i64::from_be_bytes(b.get(1..9)?.try_into().ok()?);
        let i8at = |i: usize| -> Option<i64> {
            Some(i64::from_be_bytes(b.get(i..i + 8)?.try_into().ok()?))
        };
        Some(match b.first()? {
            1 => {
                let g = Grant::decode(b.get(9..)?)?;
                Disclosure::Grant {
                    at_ms,
                    node: g.node,
                    rule: g.rule,
                    label: g.label,
                }
            }
            2 => Disclosure::AlertSent {
                at_ms,
                onset_ms: i8at(9)?,
                kind: *b.get(17)?,
                level: *b.get(18)?,
            },
            3 => Disclosure::AlertAcknowledged {
                at_ms,
                onset_ms: i8at(9)?,
                kind: *b.get(17)?,
            },
            4 => Disclosure::Pairing {
                at_ms,
                joiner: X25519PublicKey::from_bytes(b.get(9..41)?.try_into().ok()?),
            },
            _ => return None,
        })
    }
}

/// An alert waiting for the node's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAlert {
    /// The grant.
    pub grant_id: [u8; 16],
    /// The episode.
    pub episode: [u8; 16],
    /// Started (1) or ended (2).
    pub kind: u8,
    /// When it was queued, ms.
    pub queued_ms: i64,
    /// When it was first sent, if it was.
    pub first_sent_ms: Option<i64>,
}

impl PendingAlert {
    /// Whether the resident should be told the community has not received it.
    pub fn overdue(&self, now_ms: i64) -> bool {
        now_ms - self.queued_ms > DELIVERY_DEADLINE_MS
    }
}

/// What [`Vault::send_alerts`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertReport {
    /// Alerts the node acknowledged in this call.
    pub delivered: usize,
    /// Alerts still waiting.
    pub pending: usize,
}

fn grant_ctx(vault: VaultId, id: &[u8; 16]) -> Context {
    Context::new("vigil/v1/grant")
        .bytes(vault.as_bytes())
        .bytes(id)
}

fn disclosure_ctx(vault: VaultId, seq: u64) -> Context {
    Context::new("vigil/v1/disclosure")
        .bytes(vault.as_bytes())
        .u64(seq)
}

fn alerted_ctx(vault: VaultId, key: &[u8]) -> Context {
    Context::new("vigil/v1/alerted")
        .bytes(vault.as_bytes())
        .bytes(key)
}

fn slot_key(prefix: &[u8], grant: &[u8; 16], episode: &[u8; 16], kind: u8) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(grant);
    k.extend_from_slice(episode);
    k.push(kind);
    k
}

fn be64(b: &[u8]) -> i64 {
    b.get(..8)
        .and_then(|x| x.try_into().ok())
        .map(i64::from_be_bytes)
        .unwrap_or(0)
}

impl Vault {
    fn store_key_(&self) -> StoreKey {
        self.keys.store_key()
    }

    /// Appends a disclosure entry to `batch` (sealed with the store key).
    pub(crate) fn disclose(
        &mut self,
        batch: &mut Batch,
        d: &Disclosure,
    ) -> Result<(), StorageError> {
        let seq = self.storage.scan_prefix(P_DISCLOSURE)?.len() as u64
            + batch
                .ops()
                .iter()
                .filter(|(k, _)| k.starts_with(P_DISCLOSURE))
                .count() as u64
            + 1;
        let sealed = seal(
            &self.store_key_(),
            Kind::LocalRecord,
            &disclosure_ctx(self.keys.vault_id(), seq),
            &d.encode(),
            &mut self.rng,
        )
        .map_err(|e| StorageError::Io(e.to_string()))?;
        let mut k = P_DISCLOSURE.to_vec();
        k.extend_from_slice(&seq.to_be_bytes());
        batch.put(k, sealed);
        Ok(())
    }

    /// Everything that ever left this device, oldest first.
    pub fn disclosures(&self) -> Result<Vec<Disclosure>, StorageError> {
        let key = self.store_key_();
        let mut out = Vec::new();
        for (k, v) in self.storage.scan_prefix(P_DISCLOSURE)? {
            let seq = be64(&k[P_DISCLOSURE.len()..]) as u64;
            let plain = open(
                &key,
                Kind::LocalRecord,
                &disclosure_ctx(self.keys.vault_id(), seq),
                &v,
            )
            .map_err(|_| StorageError::Corrupt(format!("disclosure {seq} does not open")))?;
            out.push(
                Disclosure::decode(&plain)
                    .ok_or_else(|| StorageError::Corrupt(format!("disclosure {seq} malformed")))?,
            );
        }
        Ok(out)
    }

    /// The grants this device made.
    pub fn grants(&self) -> Result<Vec<Grant>, StorageError> {
        let key = self.store_key_();
        let mut out = Vec::new();
        for (k, v) in self.storage.scan_prefix(P_GRANT)? {
            let id: [u8; 16] = k[P_GRANT.len()..]
                .try_into()
                .map_err(|_| StorageError::Corrupt("grant key".into()))?;
            let plain = open(
                &key,
                Kind::LocalRecord,
                &grant_ctx(self.keys.vault_id(), &id),
                &v,
            )
            .map_err(|_| StorageError::Corrupt("grant does not open".into()))?;
            out.push(
                Grant::decode(&plain)
                    .ok_or_else(|| StorageError::Corrupt("grant malformed".into()))?,
            );
        }
        Ok(out)
    }

    fn grant_wire(&mut self, g: &Grant, grant_key: [u8; 32]) -> Result<GrantWire, SyncFailure> {
        let key = self.keys.alert_key(&g.node);
        let wrapped = wrap(&X25519PublicKey::from_bytes(grant_key), &key, &mut self.rng)
            .map_err(|_| SyncFailure::BadOffer)?;
        Ok(GrantWire {
            grant_id: g.grant_id,
            grant_key,
            wrapped_key: wrapped.as_bytes().to_vec(),
            threshold_c: g.rule.threshold_c,
            confirm_count: g.rule.confirm_count as u32,
            confirm_window_ms: g.rule.confirm_window_ms,
            recovery_ms: g.rule.recovery_ms,
            valid_from_ms: g.valid_from_ms,
            valid_until_ms: g.valid_until_ms,
            label: g.label.clone(),
        })
    }

    /// Grants `node` the fever-alert capability for this period under `rule`,
    /// sharing `label`. The grant is recorded in the disclosure log before it
    /// is sent; alerts already due are queued.
    pub fn enrol(
        &mut self,
        conn: &mut dyn Exchange,
        node: &X25519PublicKey,
        label: &str,
        rule: FeverRule,
        now_ms: i64,
    ) -> Result<Grant, SyncFailure> {
        let key = self.keys.alert_key(node);
        let grant = Grant {
            grant_id: grant_id(&key),
            node: *node,
            rule,
            label: label.to_owned(),
            valid_from_ms: self.period.start_ms,
            valid_until_ms: self.period.end_ms,
        };
        let sealed = seal(
            &self.store_key_(),
            Kind::LocalRecord,
            &grant_ctx(self.keys.vault_id(), &grant.grant_id),
            &grant.encode(),
            &mut self.rng,
        )
        .map_err(|e| WriteError::TooLarge(e.to_string()))?;
        let mut batch = Batch::default();
        let mut k = P_GRANT.to_vec();
        k.extend_from_slice(&grant.grant_id);
        batch.put(k, sealed);
        self.disclose(
            &mut batch,
            &Disclosure::Grant {
                at_ms: now_ms,
                node: *node,
                rule,
                label: label.to_owned(),
            },
        )?;
        self.storage.apply(batch)?;
        self.send_grant(conn, &grant)?;
        self.evaluate_alerts(now_ms)?;
        Ok(grant)
    }

    fn send_grant(&mut self, conn: &mut dyn Exchange, g: &Grant) -> Result<(), SyncFailure> {
        hello(conn)?;
        // A one-time key from the node, destroyed when the grant ends.
        let grant_key = match call(conn, &Request::GrantKey)? {
            Response::GrantKey { public } => public,
            Response::Error(e) => return Err(SyncError::Refused(e).into()),
            r => return Err(SyncError::Unexpected(format!("{r:?} to grant key")).into()),
        };
        let wire = self.grant_wire(g, grant_key)?;
        match call(conn, &Request::Grant(wire))? {
            Response::Ok => Ok(()),
            Response::Error(e) => Err(SyncError::Refused(e).into()),
            r => Err(SyncError::Unexpected(format!("{r:?} to grant")).into()),
        }
    }

    /// Evaluates every grant's rule over the merged log and queues an alert
    /// for each episode start (and end) not alerted yet. Called on every
    /// body-temperature reading and before alerts are sent.
    pub fn evaluate_alerts(&mut self, now_ms: i64) -> Result<usize, WriteError> {
        let grants = self.grants()?;
        let mut queued = 0;
        let vault = self.keys.vault_id();
        for g in grants {
            let key: AlertKey = self.keys.alert_key(&g.node);
            for ep in self.log.fever_episodes(&g.rule) {
                if ep.onset_ms < g.valid_from_ms || ep.onset_ms >= g.valid_until_ms {
                    continue;
                }
                let onset = round_onset(ep.onset_ms);
                let episode = episode_id(&key, onset);
                let mut kinds = vec![ALERT_START];
                if ep.end_ms.is_some() {
                    kinds.push(ALERT_END);
                }
                for kind in kinds {
                    let marker = slot_key(P_ALERTED, &g.grant_id, &episode, kind);
                    if self.storage.get(&marker)?.is_some() {
                        continue;
                    }
                    let payload = AlertPayload {
                        onset_ms: onset,
                        level: level_for(ep.peak_c),
                        kind,
                    };
                    let blob = seal_alert(&key, &g.grant_id, &episode, &payload, &mut self.rng)
                        .map_err(|e| WriteError::TooLarge(e.to_string()))?;
                    let mut v = now_ms.to_be_bytes().to_vec();
                    v.extend_from_slice(&0i64.to_be_bytes()); // first sent: not yet
                    v.extend_from_slice(&onset.to_be_bytes());
                    v.push(payload.level);
                    v.extend_from_slice(&blob);
                    let sealed_marker = seal(
                        &self.store_key_(),
                        Kind::LocalRecord,
                        &alerted_ctx(vault, &marker),
                        &now_ms.to_be_bytes(),
                        &mut self.rng,
                    )
                    .map_err(|e| WriteError::TooLarge(e.to_string()))?;
                    let mut batch = Batch::default();
                    batch.put(slot_key(P_OUTBOX, &g.grant_id, &episode, kind), v);
                    batch.put(marker, sealed_marker);
                    self.storage.apply(batch)?;
                    queued += 1;
                }
            }
        }
        Ok(queued)
    }

    /// After a temperature reading: evaluate grants when it could start or
    /// end an episode (a reading at or above some threshold, or any reading
    /// while an episode is open). Cheap when no grant exists.
    pub(crate) fn watch_fever(&mut self, value: f64, now_ms: i64) -> Result<(), WriteError> {
        let grants = self.grants()?;
        if grants.is_empty() {
            return Ok(());
        }
        let high = grants.iter().any(|g| value >= g.rule.threshold_c);
        if high || self.episode_open {
            self.evaluate_alerts(now_ms)?;
            self.episode_open = grants
                .iter()
                .any(|g| self.log.current_fever(&g.rule).is_some());
        }
        Ok(())
    }

    /// Alerts not yet acknowledged by their node (the delivery watch: see
    /// [`PendingAlert::overdue`]).
    pub fn pending_alerts(&self) -> Result<Vec<PendingAlert>, StorageError> {
        let mut out = Vec::new();
        for (k, v) in self.storage.scan_prefix(P_OUTBOX)? {
            let rest = &k[P_OUTBOX.len()..];
            if rest.len() != 33 {
                continue;
            }
            let sent = be64(&v[8..]);
            out.push(PendingAlert {
                grant_id: rest[..16].try_into().unwrap_or_default(),
                episode: rest[16..32].try_into().unwrap_or_default(),
                kind: rest[32],
                queued_ms: be64(&v),
                first_sent_ms: (sent != 0).then_some(sent),
            });
        }
        Ok(out)
    }

    /// Evaluates the rule, then sends every pending alert for `node` over
    /// `conn`, removing each from the outbox once the node acknowledges it.
    pub fn send_alerts(
        &mut self,
        conn: &mut dyn Exchange,
        node: &X25519PublicKey,
        now_ms: i64,
    ) -> Result<AlertReport, SyncFailure> {
        self.evaluate_alerts(now_ms)?;
        let grants: Vec<Grant> = self
            .grants()?
            .into_iter()
            .filter(|g| g.node == *node)
            .collect();
        let mut report = AlertReport::default();
        let outbox = self.storage.scan_prefix(P_OUTBOX)?;
        if !outbox.is_empty() {
            hello(conn)?;
        }
        for (k, v) in outbox {
            let rest = &k[P_OUTBOX.len()..];
            if rest.len() != 33 || v.len() < 25 {
                continue;
            }
            let grant_id: [u8; 16] = rest[..16].try_into().unwrap_or_default();
            let Some(g) = grants.iter().find(|g| g.grant_id == grant_id) else {
                continue;
            };
            let wire = AlertWire {
                grant_id,
                episode: rest[16..32].try_into().unwrap_or_default(),
                kind: rest[32],
                blob: v[25..].to_vec(),
            };
            let onset_ms = be64(&v[16..]);
            if be64(&v[8..]) == 0 {
                // First transmission: the fact leaves the device now.
                let mut batch = Batch::default();
                let mut nv = v.clone();
                nv[8..16].copy_from_slice(&now_ms.to_be_bytes());
                batch.put(k.clone(), nv);
                self.disclose(
                    &mut batch,
                    &Disclosure::AlertSent {
                        at_ms: now_ms,
                        onset_ms,
                        kind: wire.kind,
                        level: v[24],
                    },
                )?;
                self.storage.apply(batch)?;
            }
            let mut resp = call(conn, &Request::Alert(wire.clone()))?;
            if resp == Response::Error(ProtoError::UnknownGrant) {
                // The node lost or never got the grant: give it again, once.
                self.send_grant(conn, g)?;
                resp = call(conn, &Request::Alert(wire.clone()))?;
            }
            match resp {
                Response::AlertAck { .. } => {
                    let mut batch = Batch::default();
                    batch.remove(k.clone());
                    self.disclose(
                        &mut batch,
                        &Disclosure::AlertAcknowledged {
                            at_ms: now_ms,
                            onset_ms,
                            kind: wire.kind,
                        },
                    )?;
                    self.storage.apply(batch)?;
                    report.delivered += 1;
                }
                Response::Error(e) => {
                    tracing::warn!(error = %e, "node refused an alert; kept in the outbox");
                    report.pending += 1;
                }
                r => return Err(SyncError::Unexpected(format!("{r:?} to alert")).into()),
            }
        }
        Ok(report)
    }
}

fn call(conn: &mut dyn Exchange, req: &Request) -> Result<Response, SyncFailure> {
    let frame = conn.exchange(&encode_request(req))?;
    Ok(decode_response(&frame).map_err(SyncError::from)?)
}
