//! The node's alert role: grants, verification, the inbox (docs/spec.md §12).

use serde::{Deserialize, Serialize};
use vigil_proto::alert::{ALERT_END, ALERT_START, AlertPayload, ONSET_ROUNDING_MS};
use vigil_proto::{AlertWire, GrantWire};

use crate::store::{MailboxStore, StoreError};

pub use vigil_log::MAX_LABEL_CHARS;

/// A grant as the node keeps it: the grant as received, plus the node's
/// own bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// The grant as the device sent it.
    pub grant: GrantWire,
    /// Revoked by the operator.
    pub revoked: bool,
    /// When the node last heard from this grant's devices, ms.
    pub last_contact_ms: i64,
}

impl GrantRecord {
    pub(crate) fn from_wire(grant: GrantWire, now_ms: i64) -> Self {
        GrantRecord {
            grant,
            revoked: false,
            last_contact_ms: now_ms,
        }
    }

    /// Whether an alert with this onset, received at `now_ms`, is in the window.
    pub fn in_window(&self, onset_ms: i64, now_ms: i64) -> bool {
        // Onsets are rounded down, so the first slot may start before the
        // period. The window is the device's (any i64): saturate, never wrap.
        let g = &self.grant;
        onset_ms >= g.valid_from_ms.saturating_sub(ONSET_ROUNDING_MS)
            && onset_ms < g.valid_until_ms
            && now_ms < g.valid_until_ms
    }
}

/// Checks a grant's plaintext fields.
pub(crate) fn validate_grant(w: &GrantWire) -> Result<(), String> {
    if w.label.chars().count() > MAX_LABEL_CHARS {
        return Err(format!("label longer than {MAX_LABEL_CHARS} characters"));
    }
    if w.valid_until_ms <= w.valid_from_ms {
        return Err("empty validity window".into());
    }
    let rule = vigil_log::FeverRule {
        threshold_c: w.threshold_c,
        confirm_count: usize::try_from(w.confirm_count).unwrap_or(usize::MAX),
        confirm_window_ms: w.confirm_window_ms,
        recovery_ms: w.recovery_ms,
    };
    rule.validate().map_err(|e| match e {
        vigil_log::RuleError::Threshold(_) => "threshold outside 35–42 °C".to_owned(),
        _ => "implausible debounce".to_owned(),
    })
}

/// One alert in the inbox, as community staff see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// The grant it came under.
    pub grant_id: [u8; 16],
    /// The label the resident shared.
    pub label: String,
    /// The episode.
    pub episode: [u8; 16],
    /// Started or ended.
    pub kind: u8,
    /// Onset, rounded to 10 minutes, ms.
    pub onset_ms: i64,
    /// Level band (1–3).
    pub level: u8,
    /// When the node stored it, ms.
    pub received_ms: i64,
    /// When staff acknowledged it, if they did.
    pub acked_ms: Option<i64>,
    /// Set when the resident shredded before staff saw this alert: the
    /// alert was already disclosed, so it waits for staff (docs/spec.md §13).
    /// Postcard is not self-describing, so this field is read from records
    /// written with it only (spec §12).
    pub monitoring_ended: Option<MonitoringEnded>,
}

/// "Resident ended monitoring": when, and until when the alert may stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitoringEnded {
    /// When the resident's shred reached the node, ms.
    pub at_ms: i64,
    /// The grant's period end: the sweeper deletes the alert at this plus
    /// its grace, if staff have not acknowledged it by then.
    pub period_end_ms: i64,
}

impl InboxEntry {
    /// "fever started" or "fever ended".
    pub fn describe(&self) -> &'static str {
        match self.kind {
            ALERT_START => "fever started",
            ALERT_END => "fever ended",
            _ => "unknown",
        }
    }
}

fn alert_key(grant: &[u8; 16], episode: &[u8; 16], kind: u8) -> Vec<u8> {
    let mut k = vec![b'a'];
    k.extend_from_slice(grant);
    k.extend_from_slice(episode);
    k.push(kind);
    k
}

fn grant_key(grant: &[u8; 16]) -> Vec<u8> {
    let mut k = vec![b'g'];
    k.extend_from_slice(grant);
    k
}

/// A new (unacknowledged) inbox entry for an alert, encoded for the store.
fn encode_entry(
    w: &AlertWire,
    p: &AlertPayload,
    label: &str,
    now_ms: i64,
) -> Result<Vec<u8>, StoreError> {
    let entry = InboxEntry {
        grant_id: w.grant_id,
        label: label.to_owned(),
        episode: w.episode,
        kind: w.kind,
        onset_ms: p.onset_ms,
        level: p.level,
        received_ms: now_ms,
        acked_ms: None,
        monitoring_ended: None,
    };
    postcard::to_stdvec(&entry).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl MailboxStore {
    /// A grant by id.
    pub fn grant(&self, id: &[u8; 16]) -> Result<Option<GrantRecord>, StoreError> {
        match self.db().get(&grant_key(id))? {
            None => Ok(None),
            Some(v) => postcard::from_bytes(&v)
                .map(Some)
                .map_err(|_| StoreError::Corrupt("grant".into())),
        }
    }

    /// Stores a grant (durable).
    pub fn put_grant(&self, g: &GrantRecord) -> Result<(), StoreError> {
        let v = postcard::to_stdvec(g).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.db().insert(grant_key(&g.grant.grant_id), v)?;
        self.db().flush()?;
        Ok(())
    }

    /// Every grant.
    pub fn grants(&self) -> Result<Vec<GrantRecord>, StoreError> {
        self.db()
            .scan_prefix(b"g")?
            .into_iter()
            .map(|(_, v)| postcard::from_bytes(&v).map_err(|_| StoreError::Corrupt("grant".into())))
            .collect()
    }

    /// Stores an alert unless one is already stored for (grant, episode,
    /// kind); returns whether it was added (durable).
    pub(crate) fn put_alert(
        &self,
        w: &AlertWire,
        p: &AlertPayload,
        label: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let key = alert_key(&w.grant_id, &w.episode, w.kind);
        let v = encode_entry(w, p, label, now_ms)?;
        // Compare-and-swap: two devices sending one episode store it once.
        let added = self.db().insert_if_absent(key, v)?;
        self.db().flush()?;
        Ok(added)
    }

    /// The forgetful-dedup bug's store: always a new entry (fault injection).
    #[cfg(feature = "fault-injection")]
    pub(crate) fn put_alert_unchecked(
        &self,
        w: &AlertWire,
        p: &AlertPayload,
        label: &str,
        now_ms: i64,
        n: u64,
    ) -> Result<(), StoreError> {
        let mut key = alert_key(&w.grant_id, &w.episode, w.kind);
        key.extend_from_slice(&now_ms.to_be_bytes());
        key.extend_from_slice(&n.to_be_bytes());
        self.db().insert(key, encode_entry(w, p, label, now_ms)?)?;
        self.db().flush()
    }

    /// The alerts stored under one grant.
    pub fn inbox_of(&self, grant: &[u8; 16]) -> Result<Vec<InboxEntry>, StoreError> {
        let mut p = vec![b'a'];
        p.extend_from_slice(grant);
        self.db()
            .scan_prefix(&p)?
            .into_iter()
            .map(|(_, v)| postcard::from_bytes(&v).map_err(|_| StoreError::Corrupt("alert".into())))
            .collect()
    }

    /// The inbox, oldest first.
    pub fn inbox(&self) -> Result<Vec<InboxEntry>, StoreError> {
        let mut all: Vec<InboxEntry> = self
            .db()
            .scan_prefix(b"a")?
            .into_iter()
            .map(|(_, v)| postcard::from_bytes(&v).map_err(|_| StoreError::Corrupt("alert".into())))
            .collect::<Result<_, _>>()?;
        all.sort_by_key(|e| (e.received_ms, e.onset_ms, e.episode, e.kind));
        Ok(all)
    }

    /// Removes one alert from the inbox (an operator's purge). Durable.
    pub fn forget_alert(
        &self,
        grant: &[u8; 16],
        episode: &[u8; 16],
        kind: u8,
    ) -> Result<(), StoreError> {
        self.db().remove(&alert_key(grant, episode, kind))?;
        self.db().flush()?;
        Ok(())
    }

    /// Marks an alert as seen by staff; false if there is no such alert.
    pub fn ack_alert(
        &self,
        grant: &[u8; 16],
        episode: &[u8; 16],
        kind: u8,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let key = alert_key(grant, episode, kind);
        let Some(v) = self.db().get(&key)? else {
            return Ok(false);
        };
        let mut e: InboxEntry =
            postcard::from_bytes(&v).map_err(|_| StoreError::Corrupt("alert".into()))?;
        if e.monitoring_ended.is_some() {
            // Kept only until staff saw it: now they have, so it goes.
            self.db().remove(&key)?;
            self.db().flush()?;
            return Ok(true);
        }
        e.acked_ms.get_or_insert(now_ms);
        let v = postcard::to_stdvec(&e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.db().insert(key, v)?;
        self.db().flush()?;
        Ok(true)
    }
}
