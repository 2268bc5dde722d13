//! The fever-alert capability on the device (docs/spec.md §12): grants,
//! local evaluation of the rule, the alert outbox and the delivery watch.
//! [`Alerts`] owns the grants (cached from the store) and whether an episode
//! is open; the conversations with the node are [`GiveGrant`] and
//! [`DeliverAlerts`].

use serde::{Deserialize, Serialize};
use vigil_crypto::{AlertKey, X25519PublicKey, wrap};
use vigil_log::{FeverRule, HealthLog};
use vigil_proto::alert::{
    ALERT_END, ALERT_START, AlertPayload, episode_id, grant_id, level_for, round_onset, seal_alert,
};
use vigil_proto::{
    AlertEvent, AlertStatusEvent, AlertStatusQuery, AlertWire, Conversation, DeliverAlerts,
    Exchange, GiveGrant, GrantAuth, GrantWire, MAX_ALERT_STATUS, OutgoingAlert, ProtoError,
    QueryAlertStatus, Registration, Ticket, drive,
};

use crate::disclosure::{Disclosure, disclose};
use crate::error::{SyncFailure, WriteError};
use crate::layout::{
    self, AlertSlot, DeliveredRecord, LocalRecord, MAX_DELIVERED_ALERTS, OutboxRecord,
    P_ALERT_DELIVERED, P_ALERT_OUTBOX, P_GRANT, VaultCrypto, grant_key, parse_grant_key,
};
use crate::period::Period;
use crate::storage::{Batch, Storage, StorageError};

/// An alert unacknowledged for longer than this is surfaced to the resident.
pub const DELIVERY_DEADLINE_MS: i64 = 15 * 60_000;

/// A grant this device made (stored as it is, sealed: docs/spec.md §12).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// Its id (derived from the alert key).
    pub grant_id: [u8; 16],
    /// The node it was made to.
    #[serde(with = "layout::x25519")]
    pub node: X25519PublicKey,
    /// The rule.
    #[serde(with = "layout::rule")]
    pub rule: FeverRule,
    /// The label staff set in the enrolment ticket: what the node shows
    /// with this resident's alerts.
    pub label: String,
    /// Validity: the period.
    pub valid_from_ms: i64,
    /// End of validity.
    pub valid_until_ms: i64,
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
        now_ms.saturating_sub(self.queued_ms) > DELIVERY_DEADLINE_MS
    }
}

/// What [`crate::Vault::send_alerts`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertReport {
    /// Alerts the node acknowledged in this call.
    pub delivered: usize,
    /// Alerts still waiting.
    pub pending: usize,
}

/// An alert its node confirmed receiving, and whether staff acknowledged it
/// (docs/spec.md §12): the device keeps these so it can ask the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredAlert {
    /// The grant.
    pub grant_id: [u8; 16],
    /// The episode.
    pub episode: [u8; 16],
    /// Started (1) or ended (2).
    pub kind: u8,
    /// The episode's onset as the alert told it (rounded to 10 minutes), ms.
    pub onset_ms: i64,
    /// The level band sent (1–3).
    pub level: u8,
    /// When the node confirmed it, ms (this device's clock).
    pub delivered_ms: i64,
    /// When staff acknowledged it, ms (the node's clock), once the node
    /// said so; `None` while not acknowledged or not known. Who
    /// acknowledged is never sent to the device.
    pub staff_acked_ms: Option<i64>,
}

/// What [`crate::Vault::refresh_alert_status`] learnt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertStatusReport {
    /// Delivered alerts asked about (those not yet known acknowledged).
    pub asked: usize,
    /// Alerts newly known acknowledged by staff.
    pub acknowledged: usize,
    /// Alerts whose state the node did not tell: an older node, or one that
    /// refused the question. Their state stays unknown; nothing failed.
    pub unknown: usize,
}

/// The delivered-alert records: each one's store key and its record, opened.
fn delivered(
    storage: &dyn Storage,
    crypto: &VaultCrypto,
) -> Result<Vec<(Vec<u8>, DeliveredRecord)>, StorageError> {
    let mut out = Vec::new();
    for (k, v) in storage.scan_prefix(P_ALERT_DELIVERED)? {
        let rec: DeliveredRecord = crypto
            .open_record(LocalRecord::AlertDelivered(&k), &v)
            .ok_or_else(|| StorageError::Corrupt("delivered alert record does not open".into()))?;
        out.push((k, rec));
    }
    // Opaque keys: order by the episode's time, its start before its end.
    out.sort_by_key(|(_, r)| (r.onset_ms, r.grant, r.episode, r.kind));
    Ok(out)
}

/// Adds to `batch` the record that the node confirmed `rec`'s alert, keeping
/// what the device already knew of it, and, at the bound, removing the
/// record delivered longest ago.
fn record_delivered(
    storage: &dyn Storage,
    crypto: &mut VaultCrypto,
    batch: &mut Batch,
    slot: &AlertSlot,
    rec: &OutboxRecord,
    now_ms: i64,
) -> Result<(), WriteError> {
    let key = slot.delivered_key(crypto.index_key());
    let existing = delivered(storage, crypto)?;
    let known = existing.iter().find(|(k, _)| *k == key).map(|(_, r)| r);
    if known.is_none()
        && existing.len() >= MAX_DELIVERED_ALERTS
        && let Some((oldest, _)) = existing
            .iter()
            .min_by_key(|(k, r)| (r.delivered_ms, k.clone()))
    {
        batch.remove(oldest.clone());
    }
    let record = DeliveredRecord {
        grant: slot.grant,
        episode: slot.episode,
        kind: slot.kind,
        onset_ms: rec.onset_ms,
        level: rec.level,
        delivered_ms: known.map_or(now_ms, |r| r.delivered_ms),
        staff_acked_ms: known.and_then(|r| r.staff_acked_ms),
    };
    let sealed = crypto.seal_record(LocalRecord::AlertDelivered(&key), &record)?;
    batch.put(key, sealed);
    Ok(())
}

/// The alert component: the grants this device made, and whether an
/// evaluation saw a fever episode still open (so every temperature reading,
/// high or not, may end it).
#[derive(Debug)]
pub(crate) struct Alerts {
    /// Grants are valid for the period.
    period: Period,
    grants: Vec<Grant>,
    episode_open: bool,
}

/// The outbox: each entry's store key and its record, opened.
fn outbox(
    storage: &dyn Storage,
    crypto: &VaultCrypto,
) -> Result<Vec<(Vec<u8>, AlertSlot, OutboxRecord)>, StorageError> {
    let mut out = Vec::new();
    for (k, v) in storage.scan_prefix(P_ALERT_OUTBOX)? {
        let rec: OutboxRecord = crypto
            .open_record(LocalRecord::AlertOutbox(&k), &v)
            .ok_or_else(|| StorageError::Corrupt("alert outbox entry does not open".into()))?;
        let slot = AlertSlot {
            grant: rec.grant,
            episode: rec.episode,
            kind: rec.kind,
        };
        out.push((k, slot, rec));
    }
    // Keys are opaque now: restore the old order (by grant, episode, kind),
    // so an episode's start is still sent before its end.
    out.sort_by_key(|(_, s, _)| (s.grant, s.episode, s.kind));
    Ok(out)
}

impl Alerts {
    /// A new vault's: no grant.
    pub(crate) fn new(period: Period) -> Self {
        Alerts {
            period,
            grants: Vec::new(),
            // Nothing to end yet.
            episode_open: false,
        }
    }

    /// Loads the grants.
    pub(crate) fn load(
        storage: &dyn Storage,
        crypto: &VaultCrypto,
        period: Period,
    ) -> Result<Self, StorageError> {
        let mut grants = Vec::new();
        for (k, v) in storage.scan_prefix(P_GRANT)? {
            let id =
                parse_grant_key(&k).ok_or_else(|| StorageError::Corrupt("grant key".into()))?;
            let grant: Grant = crypto
                .open_record(LocalRecord::Grant(&id), &v)
                .ok_or_else(|| StorageError::Corrupt("grant does not open".into()))?;
            grants.push(grant);
        }
        Ok(Alerts {
            period,
            grants,
            // Unknown until the first evaluation: assume open, so the next
            // temperature reading evaluates.
            episode_open: true,
        })
    }

    /// The grants this device made.
    pub(crate) fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// Records a new grant to `node` and its disclosure, durably, before it
    /// is sent. `label` and `period_end_ms` are what staff set in the ticket.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_grant(
        &mut self,
        storage: &mut dyn Storage,
        crypto: &mut VaultCrypto,
        node: &X25519PublicKey,
        label: &str,
        period_end_ms: i64,
        rule: FeverRule,
        now_ms: i64,
    ) -> Result<Grant, WriteError> {
        let period = self.period;
        let key = crypto.keys().alert_key(node);
        let grant = Grant {
            grant_id: grant_id(&key),
            node: *node,
            rule,
            label: label.to_owned(),
            valid_from_ms: period.start_ms,
            valid_until_ms: period.end_ms.min(period_end_ms),
        };
        let sealed = crypto.seal_record(LocalRecord::Grant(&grant.grant_id), &grant)?;
        let mut batch = Batch::default();
        batch.put(grant_key(&grant.grant_id), sealed);
        disclose(
            storage,
            crypto,
            &mut batch,
            &Disclosure::Grant {
                at_ms: now_ms,
                node: *node,
                rule,
                label: label.to_owned(),
            },
        )?;
        storage.apply(batch)?;
        self.grants.retain(|g| g.grant_id != grant.grant_id);
        self.grants.push(grant.clone());
        self.grants.sort_by_key(|g| g.grant_id);
        Ok(grant)
    }

    /// The grant as the node receives it: the alert key wrapped to the
    /// one-time key the node issued.
    fn grant_wire(
        crypto: &mut VaultCrypto,
        g: &Grant,
        grant_key: [u8; 32],
    ) -> Result<GrantWire, SyncFailure> {
        let key = crypto.keys().alert_key(&g.node);
        let wrapped = wrap(&X25519PublicKey::from_bytes(grant_key), &key, crypto.rng())
            .map_err(|_| SyncFailure::BadOffer)?;
        Ok(GrantWire {
            grant_id: g.grant_id,
            grant_key,
            wrapped_key: wrapped.as_bytes().to_vec(),
            threshold_c: g.rule.threshold_c,
            confirm_count: u32::try_from(g.rule.confirm_count).unwrap_or(u32::MAX),
            confirm_window_ms: g.rule.confirm_window_ms,
            recovery_ms: g.rule.recovery_ms,
            valid_from_ms: g.valid_from_ms,
            valid_until_ms: g.valid_until_ms,
            label: g.label.clone(),
        })
    }

    /// Enrols with `node` using a staff ticket (docs/spec.md §15): the
    /// ticket registers the mailbox; the node answers with the label and
    /// period end staff set, which the grant and its disclosure record
    /// durably before the grant leaves; then the grant is given.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn enrol(
        &mut self,
        storage: &mut dyn Storage,
        crypto: &mut VaultCrypto,
        conn: &mut dyn Exchange,
        node: &X25519PublicKey,
        ticket: &Ticket,
        rule: FeverRule,
        now_ms: i64,
    ) -> Result<Grant, SyncFailure> {
        let id = grant_id(&crypto.keys().alert_key(node));
        let mailbox = crypto.keys().mailbox_key(&conn.node());
        let auth = GrantAuth::ticket(
            *crypto.vault_id().as_bytes(),
            mailbox.expose_secret(),
            ticket,
            Registration {
                verifier: mailbox.verifier().to_bytes(),
                expires_ms: self.period.end_ms,
            },
        );
        let mut conv = GiveGrant::new(id, auth);
        let mut grant = None;
        drive(&mut conv, conn, |conv| -> Result<(), SyncFailure> {
            while let Some(ev) = conv.poll_event() {
                match ev {
                    AlertEvent::Enrolled {
                        label,
                        period_end_ms,
                    } => {
                        grant = Some(self.add_grant(
                            storage,
                            crypto,
                            node,
                            &label,
                            period_end_ms,
                            rule,
                            now_ms,
                        )?);
                    }
                    AlertEvent::GrantKey { public, .. } => {
                        let Some(g) = &grant else {
                            return Err(SyncFailure::Protocol(vigil_proto::SyncError::Unexpected(
                                "grant key before enrolment".into(),
                            )));
                        };
                        conv.grant(Self::grant_wire(crypto, g, public)?);
                    }
                    _ => {}
                }
            }
            Ok(())
        })?;
        grant.ok_or_else(|| {
            SyncFailure::Protocol(vigil_proto::SyncError::Unexpected(
                "enrolment ended without the node's answer".into(),
            ))
        })
    }

    /// Evaluates every grant's rule over the merged log and queues an alert
    /// for each episode start (and end) not alerted yet.
    pub(crate) fn evaluate(
        &mut self,
        storage: &mut dyn Storage,
        crypto: &mut VaultCrypto,
        log: &HealthLog,
        now_ms: i64,
    ) -> Result<usize, WriteError> {
        let mut queued = 0;
        for g in &self.grants {
            let key: AlertKey = crypto.keys().alert_key(&g.node);
            for ep in log.fever_episodes(&g.rule) {
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
                    let slot = AlertSlot {
                        grant: g.grant_id,
                        episode,
                        kind,
                    };
                    let marker = slot.marker_key(crypto.index_key());
                    if storage.get(&marker)?.is_some() {
                        continue;
                    }
                    let payload = AlertPayload {
                        onset_ms: onset,
                        level: level_for(ep.peak_c),
                        kind,
                    };
                    let blob = seal_alert(&key, &g.grant_id, &episode, &payload, crypto.rng())?;
                    let entry = OutboxRecord {
                        grant: slot.grant,
                        episode: slot.episode,
                        kind,
                        queued_ms: now_ms,
                        first_sent_ms: None,
                        onset_ms: onset,
                        level: payload.level,
                        blob,
                    };
                    let sealed_marker =
                        crypto.seal_record(LocalRecord::Alerted(&marker), &now_ms)?;
                    let key = slot.outbox_key(crypto.index_key());
                    let sealed_entry =
                        crypto.seal_record(LocalRecord::AlertOutbox(&key), &entry)?;
                    let mut batch = Batch::default();
                    batch.put(key, sealed_entry);
                    batch.put(marker, sealed_marker);
                    storage.apply(batch)?;
                    queued += 1;
                }
            }
        }
        Ok(queued)
    }

    /// After a temperature reading: evaluate grants when it could start or
    /// end an episode (a reading at or above some threshold, or any reading
    /// while an episode is open). Cheap when no grant exists.
    pub(crate) fn watch_fever(
        &mut self,
        storage: &mut dyn Storage,
        crypto: &mut VaultCrypto,
        log: &HealthLog,
        value: f64,
        now_ms: i64,
    ) -> Result<(), WriteError> {
        if self.grants.is_empty() {
            return Ok(());
        }
        let high = self.grants.iter().any(|g| value >= g.rule.threshold_c);
        if high || self.episode_open {
            self.evaluate(storage, crypto, log, now_ms)?;
            self.episode_open = self
                .grants
                .iter()
                .any(|g| log.current_fever(&g.rule).is_some());
        }
        Ok(())
    }

    /// Alerts not yet acknowledged by their node.
    pub(crate) fn pending(
        storage: &dyn Storage,
        crypto: &VaultCrypto,
    ) -> Result<Vec<PendingAlert>, StorageError> {
        Ok(outbox(storage, crypto)?
            .into_iter()
            .map(|(_, slot, rec)| PendingAlert {
                grant_id: slot.grant,
                episode: slot.episode,
                kind: slot.kind,
                queued_ms: rec.queued_ms,
                first_sent_ms: rec.first_sent_ms,
            })
            .collect())
    }

    /// Alerts their node confirmed, by onset, each with what the device
    /// knows of staff's acknowledgement.
    pub(crate) fn delivered(
        storage: &dyn Storage,
        crypto: &VaultCrypto,
    ) -> Result<Vec<DeliveredAlert>, StorageError> {
        Ok(delivered(storage, crypto)?
            .into_iter()
            .map(|(_, r)| DeliveredAlert {
                grant_id: r.grant,
                episode: r.episode,
                kind: r.kind,
                onset_ms: r.onset_ms,
                level: r.level,
                delivered_ms: r.delivered_ms,
                staff_acked_ms: r.staff_acked_ms,
            })
            .collect())
    }

    /// Asks `node` over `conn` which of this device's delivered alerts under
    /// its grant staff acknowledged (those not yet known acknowledged, at
    /// most [`MAX_ALERT_STATUS`] a question) and stores each answer durably.
    /// A refused question (an older node's `Malformed`, `UnknownGrant`)
    /// leaves its alerts unknown; only the transport or a garbled
    /// conversation fails. An answer is believed only for the alert asked
    /// in its place.
    pub(crate) fn refresh_status(
        &self,
        storage: &mut dyn Storage,
        crypto: &mut VaultCrypto,
        conn: &mut dyn Exchange,
        node: &X25519PublicKey,
    ) -> Result<AlertStatusReport, SyncFailure> {
        let mut report = AlertStatusReport::default();
        let records = delivered(storage, crypto)?;
        let mut questions = Vec::new();
        // Per question: the records it asks about, in its order.
        let mut asked: Vec<Vec<&(Vec<u8>, DeliveredRecord)>> = Vec::new();
        for g in self.grants.iter().filter(|g| g.node == *node) {
            let open: Vec<&(Vec<u8>, DeliveredRecord)> = records
                .iter()
                .filter(|(_, r)| r.grant == g.grant_id && r.staff_acked_ms.is_none())
                .collect();
            let proof = crypto.keys().alert_key(&g.node).status_proof(&g.grant_id);
            for chunk in open.chunks(MAX_ALERT_STATUS) {
                questions.push(AlertStatusQuery {
                    grant_id: g.grant_id,
                    proof,
                    alerts: chunk.iter().map(|(_, r)| (r.episode, r.kind)).collect(),
                });
                report.asked += chunk.len();
                asked.push(chunk.to_vec());
            }
        }
        if questions.is_empty() {
            return Ok(report);
        }
        let mut conv = QueryAlertStatus::new(questions);
        drive(&mut conv, conn, |conv| -> Result<(), SyncFailure> {
            while let Some(ev) = conv.poll_event() {
                match ev {
                    AlertStatusEvent::Answered(i, states) => {
                        let chunk = &asked[i];
                        if states.len() != chunk.len() {
                            tracing::warn!(
                                asked = chunk.len(),
                                answered = states.len(),
                                "the node answered another number of alerts than asked"
                            );
                        }
                        let mut batch = Batch::default();
                        for (j, (key, rec)) in chunk.iter().enumerate() {
                            let Some(s) = states
                                .get(j)
                                .filter(|s| s.episode == rec.episode && s.kind == rec.kind)
                            else {
                                report.unknown += 1;
                                continue;
                            };
                            if let Some(at) = s.acked_ms {
                                let mut r = rec.clone();
                                r.staff_acked_ms = Some(at);
                                let sealed =
                                    crypto.seal_record(LocalRecord::AlertDelivered(key), &r)?;
                                batch.put(key.clone(), sealed);
                                report.acknowledged += 1;
                            }
                        }
                        storage.apply(batch)?;
                    }
                    AlertStatusEvent::Refused(i, e) => {
                        match &e {
                            ProtoError::Malformed(_) => tracing::info!(
                                "the node does not answer alert status (an older node); staff acknowledgement unknown"
                            ),
                            ProtoError::UnknownGrant => tracing::info!(
                                "the node does not know this grant's alerts; staff acknowledgement unknown"
                            ),
                            e => {
                                tracing::warn!(error = %e, "node refused the alert status question; unknown")
                            }
                        }
                        report.unknown += asked[i].len();
                    }
                }
            }
            Ok(())
        })?;
        Ok(report)
    }

    /// Sends every pending alert for `node` over `conn` (the caller
    /// evaluated first), removing each from the outbox once the node
    /// acknowledges it. Each alert's first transmission and acknowledgement
    /// go into the disclosure log.
    pub(crate) fn deliver(
        &self,
        storage: &mut dyn Storage,
        crypto: &mut VaultCrypto,
        conn: &mut dyn Exchange,
        node: &X25519PublicKey,
        now_ms: i64,
    ) -> Result<AlertReport, SyncFailure> {
        let grants: Vec<&Grant> = self.grants.iter().filter(|g| g.node == *node).collect();
        let entries: Vec<(Vec<u8>, AlertSlot, OutboxRecord)> = outbox(storage, crypto)?
            .into_iter()
            .filter(|(_, slot, _)| grants.iter().any(|g| g.grant_id == slot.grant))
            .collect();
        let mailbox = crypto.keys().mailbox_key(&conn.node());
        let mut conv = DeliverAlerts::new(
            entries
                .iter()
                .map(|(_, slot, rec)| OutgoingAlert {
                    wire: AlertWire {
                        grant_id: slot.grant,
                        episode: slot.episode,
                        kind: slot.kind,
                        blob: rec.blob.clone(),
                    },
                    sent_before: rec.first_sent_ms.is_some(),
                })
                .collect(),
            *crypto.vault_id().as_bytes(),
            mailbox.expose_secret(),
        );
        let mut report = AlertReport::default();
        drive(&mut conv, conn, |conv| -> Result<(), SyncFailure> {
            while let Some(ev) = conv.poll_event() {
                match ev {
                    AlertEvent::Sending(i) => {
                        // The fact leaves the device now: say so first.
                        let (key, slot, rec) = &entries[i];
                        let mut batch = Batch::default();
                        let mut sent = rec.clone();
                        sent.first_sent_ms = Some(now_ms);
                        let sealed = crypto.seal_record(LocalRecord::AlertOutbox(key), &sent)?;
                        batch.put(key.clone(), sealed);
                        disclose(
                            storage,
                            crypto,
                            &mut batch,
                            &Disclosure::AlertSent {
                                at_ms: now_ms,
                                onset_ms: rec.onset_ms,
                                kind: slot.kind,
                                level: rec.level,
                            },
                        )?;
                        storage.apply(batch)?;
                    }
                    AlertEvent::Delivered(i) => {
                        let (key, slot, rec) = &entries[i];
                        let mut batch = Batch::default();
                        batch.remove(key.clone());
                        // The outbox forgets it; the delivered record, in
                        // the same durable batch, remembers it, so the
                        // device can ask whether staff saw it.
                        record_delivered(storage, crypto, &mut batch, slot, rec, now_ms)?;
                        disclose(
                            storage,
                            crypto,
                            &mut batch,
                            &Disclosure::AlertAcknowledged {
                                at_ms: now_ms,
                                onset_ms: rec.onset_ms,
                                kind: slot.kind,
                            },
                        )?;
                        storage.apply(batch)?;
                        report.delivered += 1;
                    }
                    AlertEvent::Refused(_, e) => {
                        tracing::warn!(error = %e, "node refused an alert; kept in the outbox");
                        report.pending += 1;
                    }
                    AlertEvent::GrantKey { grant_id, public } => {
                        if let Some(g) = grants.iter().find(|g| g.grant_id == grant_id) {
                            conv.grant(Self::grant_wire(crypto, g, public)?);
                        }
                    }
                    AlertEvent::Granted { .. } | AlertEvent::Enrolled { .. } => {}
                }
            }
            Ok(())
        })?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;
    use vigil_crypto::{KeySchedule, RootKey};
    use vigil_log::DeviceId;

    /// The record of delivered alerts stays bounded: past the bound, the
    /// alert delivered longest ago goes, in the same batch; a record
    /// written again keeps what the device knew of staff's acknowledgement.
    #[test]
    fn delivered_records_are_bounded_and_keep_the_acknowledgement() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let keys = KeySchedule::new(RootKey::generate(&mut rng));
        let mut crypto = VaultCrypto::new(keys, DeviceId([1; 16]), &mut rng);
        let mut storage = MemStorage::new();
        let slot = |i: usize| AlertSlot {
            grant: [7; 16],
            episode: u128::try_from(i).unwrap().to_be_bytes(),
            kind: 1,
        };
        let rec = OutboxRecord {
            grant: [7; 16],
            episode: [0; 16],
            kind: 1,
            queued_ms: 0,
            first_sent_ms: None,
            onset_ms: 5,
            level: 2,
            blob: Vec::new(),
        };
        for i in 0..=MAX_DELIVERED_ALERTS {
            let mut batch = Batch::default();
            let at = i64::try_from(i).unwrap();
            record_delivered(&storage, &mut crypto, &mut batch, &slot(i), &rec, at).unwrap();
            storage.apply(batch).unwrap();
        }
        let all = delivered(&storage, &crypto).unwrap();
        assert_eq!(all.len(), MAX_DELIVERED_ALERTS);
        assert!(
            all.iter().all(|(_, r)| r.episode != slot(0).episode),
            "the oldest went"
        );
        // Staff's acknowledgement, once known, survives the record being
        // written again (a retry after a crash), and nothing else goes.
        let (key, r) = all
            .iter()
            .find(|(_, r)| r.episode == slot(1).episode)
            .unwrap()
            .clone();
        let acked = DeliveredRecord {
            staff_acked_ms: Some(99),
            ..r
        };
        let sealed = crypto
            .seal_record(LocalRecord::AlertDelivered(&key), &acked)
            .unwrap();
        let mut batch = Batch::default();
        batch.put(key, sealed);
        storage.apply(batch).unwrap();
        let mut batch = Batch::default();
        record_delivered(&storage, &mut crypto, &mut batch, &slot(1), &rec, 1_000).unwrap();
        storage.apply(batch).unwrap();
        let all = delivered(&storage, &crypto).unwrap();
        assert_eq!(all.len(), MAX_DELIVERED_ALERTS);
        let again = all
            .iter()
            .find(|(_, r)| r.episode == slot(1).episode)
            .unwrap();
        assert_eq!(
            (again.1.staff_acked_ms, again.1.delivered_ms),
            (Some(99), 1)
        );
    }
}
