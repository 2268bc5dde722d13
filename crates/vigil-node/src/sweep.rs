//! Deletion at the end of a period: the expiry sweeper and shred requests
//! (docs/spec.md §13).

use crate::alerts::MonitoringEnded;
use crate::store::{MailboxStore, StoreError};

/// What a sweep or a shred deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Mailboxes deleted.
    pub mailboxes: u64,
    /// Bundles and snapshots deleted.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Grants deleted.
    pub grants: u64,
    /// Alerts deleted.
    pub alerts: u64,
    /// Expired pairing offers deleted.
    pub pairings: u64,
    /// One-time grant keys destroyed without a grant (issued, never used).
    pub grant_keys: u64,
    /// Shred markers deleted at their period's end.
    pub shred_markers: u64,
    /// Enrolment tickets deleted at their period's end.
    pub tickets: u64,
}

impl MailboxStore {
    /// Deletes a vault's mailbox, bundles, snapshot and counters in one
    /// durable batch. Idempotent.
    pub fn delete_vault(&self, vault: &[u8; 16]) -> Result<SweepReport, StoreError> {
        self.delete_vault_marking(vault, None)
    }

    /// Deletes a vault as [`MailboxStore::delete_vault`] and, in the same
    /// durable batch, leaves `marker` (an early shred, docs/spec.md §13).
    pub fn delete_vault_marking(
        &self,
        vault: &[u8; 16],
        marker: Option<&crate::store::ShredMarker>,
    ) -> Result<SweepReport, StoreError> {
        let mut r = SweepReport::default();
        let mut batch = crate::kv::KvBatch::default();
        if let Some(m) = marker {
            batch.insert(MailboxStore::marker_key(vault), m.encode());
        }
        if self.mailbox(vault)?.is_some() {
            r.mailboxes = 1;
        }
        // Bundles and the snapshot: their records now, their files once
        // the batch is durable (a kill in between leaves files the next
        // open removes).
        let blobs = self.vault_blobs(vault)?;
        r.blobs += blobs.blobs;
        r.bytes += blobs.bytes;
        for k in blobs.keys {
            batch.remove(k);
        }
        let files = blobs.files;
        for prefix in [b'v', b'h'] {
            let mut p = vec![prefix];
            p.extend_from_slice(vault);
            for (k, _) in self.db().scan_prefix(&p)? {
                batch.remove(k);
            }
        }
        self.db().apply(batch)?;
        self.db().flush()?;
        self.blobs().remove(&files);
        Ok(r)
    }

    /// Deletes a grant and every alert under it, durably. Idempotent.
    pub fn delete_grant(&self, grant: &[u8; 16]) -> Result<SweepReport, StoreError> {
        let mut r = SweepReport::default();
        let mut batch = crate::kv::KvBatch::default();
        let mut g = vec![b'g'];
        g.extend_from_slice(grant);
        if self.db().get(&g)?.is_some() {
            r.grants = 1;
            batch.remove(g);
        }
        let mut a = vec![b'a'];
        a.extend_from_slice(grant);
        for (k, _) in self.db().scan_prefix(&a)? {
            batch.remove(k);
            r.alerts += 1;
        }
        self.db().apply(batch)?;
        self.db().flush()?;
        Ok(r)
    }

    /// Ends a grant on the resident's shred: deletes the grant record and
    /// every alert staff acknowledged, and marks the others "resident ended
    /// monitoring" (kept until acknowledged or the period's end plus the
    /// sweep's grace). Returns what was deleted and how many alerts stay.
    /// Durable, one batch; idempotent.
    pub fn end_grant(
        &self,
        grant: &[u8; 16],
        now_ms: i64,
    ) -> Result<(SweepReport, u64), StoreError> {
        let mut r = SweepReport::default();
        let mut kept = 0;
        let mut batch = crate::kv::KvBatch::default();
        let mut g = vec![b'g'];
        g.extend_from_slice(grant);
        let mut period_end_ms = now_ms;
        if let Some(v) = self.db().get(&g)? {
            if let Ok(rec) = postcard::from_bytes::<crate::alerts::GrantRecord>(&v) {
                period_end_ms = rec.grant.valid_until_ms;
            }
            r.grants = 1;
            batch.remove(g);
        }
        let mut a = vec![b'a'];
        a.extend_from_slice(grant);
        for (k, v) in self.db().scan_prefix(&a)? {
            match crate::alerts::decode_entry(&v) {
                Ok(mut e) if e.acked_ms.is_none() => {
                    kept += 1;
                    if e.monitoring_ended.is_none() {
                        e.monitoring_ended = Some(MonitoringEnded {
                            at_ms: now_ms,
                            period_end_ms,
                        });
                        let v = postcard::to_stdvec(&e)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                        batch.insert(k, v);
                    }
                }
                // Seen by staff, or unreadable (no one could act on it).
                _ => {
                    batch.remove(k);
                    r.alerts += 1;
                }
            }
        }
        self.db().apply(batch)?;
        self.db().flush()?;
        Ok((r, kept))
    }

    /// Deletes alerts kept past a shred whose period ended at least
    /// `grace_ms` before `now_ms`, and any of them staff acknowledged.
    pub fn sweep_ended_alerts(&self, now_ms: i64, grace_ms: i64) -> Result<u64, StoreError> {
        let mut n = 0;
        for (k, v) in self.db().scan_prefix(b"a")? {
            let Ok(e) = crate::alerts::decode_entry(&v) else {
                continue;
            };
            let Some(m) = e.monitoring_ended else {
                continue;
            };
            if e.acked_ms.is_some() || m.period_end_ms.saturating_add(grace_ms) <= now_ms {
                self.db().remove(&k)?;
                n += 1;
            }
        }
        self.db().flush()?;
        Ok(n)
    }

    /// Deletes expired pairing offers.
    pub fn sweep_pairings(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut n = 0;
        for (k, v) in self.db().scan_prefix(b"p")? {
            let exp = v
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(i64::from_be_bytes)
                .unwrap_or(i64::MIN);
            if exp <= now_ms {
                self.db().remove(&k)?;
                n += 1;
            }
        }
        self.db().flush()?;
        Ok(n)
    }
}

impl std::ops::AddAssign for SweepReport {
    /// Saturating: the totals sum sizes read from stored records.
    fn add_assign(&mut self, o: Self) {
        self.mailboxes = self.mailboxes.saturating_add(o.mailboxes);
        self.blobs = self.blobs.saturating_add(o.blobs);
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.grants = self.grants.saturating_add(o.grants);
        self.alerts = self.alerts.saturating_add(o.alerts);
        self.pairings = self.pairings.saturating_add(o.pairings);
        self.grant_keys = self.grant_keys.saturating_add(o.grant_keys);
        self.shred_markers = self.shred_markers.saturating_add(o.shred_markers);
        self.tickets = self.tickets.saturating_add(o.tickets);
    }
}
