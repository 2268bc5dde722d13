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
    /// Who acknowledged it, and their note. Records written before this
    /// field existed are read as without it ([`decode_entry`]).
    pub ack: Option<AckNote>,
}

/// Staff's name and note on an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckNote {
    /// Who acknowledged (at most [`MAX_ACK_BY_CHARS`] characters, no
    /// control characters).
    pub by: String,
    /// What they did or found (at most [`MAX_ACK_NOTE_CHARS`]).
    pub note: Option<String>,
}

/// Most characters in the name on an acknowledgement.
pub const MAX_ACK_BY_CHARS: usize = 64;
/// Most characters in an acknowledgement's note.
pub const MAX_ACK_NOTE_CHARS: usize = 500;

impl AckNote {
    /// Checks and trims a name and a note: not empty, bounded, no control
    /// characters (they could rewrite an operator's terminal or a log
    /// line), so what is stored is what every view can show.
    pub fn new(by: &str, note: Option<&str>) -> Result<AckNote, String> {
        fn check(what: &str, s: &str, max: usize) -> Result<String, String> {
            let s = s.trim();
            if s.chars().count() > max {
                return Err(format!("{what} is at most {max} characters"));
            }
            if s.chars().any(char::is_control) {
                return Err(format!(
                    "{what} contains control characters (line breaks, escapes); use plain text"
                ));
            }
            Ok(s.to_owned())
        }
        let by = check("the name (--by)", by, MAX_ACK_BY_CHARS)?;
        if by.is_empty() {
            return Err("the name (--by) is empty: say who acknowledges".into());
        }
        let note = note
            .map(|n| check("the note (--note)", n, MAX_ACK_NOTE_CHARS))
            .transpose()?
            .filter(|n| !n.is_empty());
        Ok(AckNote { by, note })
    }
}

/// The inbox record as written before acknowledgements had a name.
#[derive(Deserialize)]
struct InboxEntryV1 {
    grant_id: [u8; 16],
    label: String,
    episode: [u8; 16],
    kind: u8,
    onset_ms: i64,
    level: u8,
    received_ms: i64,
    acked_ms: Option<i64>,
    monitoring_ended: Option<MonitoringEnded>,
}

/// Reads a stored inbox record, current or written before [`AckNote`]
/// (a shorter record: the current layout fails on it at its end, so the
/// two cannot be confused). Nothing is rewritten: an old record gains the
/// field when it is next written (acknowledged).
pub(crate) fn decode_entry(v: &[u8]) -> Result<InboxEntry, StoreError> {
    if let Ok(e) = postcard::from_bytes::<InboxEntry>(v) {
        return Ok(e);
    }
    let o: InboxEntryV1 =
        postcard::from_bytes(v).map_err(|_| StoreError::Corrupt("alert".into()))?;
    Ok(InboxEntry {
        grant_id: o.grant_id,
        label: o.label,
        episode: o.episode,
        kind: o.kind,
        onset_ms: o.onset_ms,
        level: o.level,
        received_ms: o.received_ms,
        acked_ms: o.acked_ms,
        monitoring_ended: o.monitoring_ended,
        ack: None,
    })
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

/// Hex digits in an alert's short id.
pub const ALERT_ID_LEN: usize = 12;

/// The short id staff see for an alert (`vigil-node alerts`, the serve
/// log): the first 12 hex digits of
/// `SHA-256("vigil-node/alert-id" || grant || episode || kind)`, stable
/// across restarts.
pub fn alert_id(grant: &[u8; 16], episode: &[u8; 16], kind: u8) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"vigil-node/alert-id");
    h.update(grant);
    h.update(episode);
    h.update([kind]);
    hex::encode(&h.finalize()[..ALERT_ID_LEN / 2])
}

/// An alert kind in words.
pub fn describe_kind(kind: u8) -> &'static str {
    match kind {
        ALERT_START => "fever started",
        ALERT_END => "fever ended",
        _ => "unknown",
    }
}

impl InboxEntry {
    /// "fever started" or "fever ended".
    pub fn describe(&self) -> &'static str {
        describe_kind(self.kind)
    }

    /// Its short id (see [`alert_id`]).
    pub fn id(&self) -> String {
        alert_id(&self.grant_id, &self.episode, self.kind)
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
        ack: None,
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
            .map(|(_, v)| decode_entry(&v))
            .collect()
    }

    /// The inbox, oldest first.
    pub fn inbox(&self) -> Result<Vec<InboxEntry>, StoreError> {
        let mut all: Vec<InboxEntry> = self
            .db()
            .scan_prefix(b"a")?
            .into_iter()
            .map(|(_, v)| decode_entry(&v))
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
        self.ack_alert_by(grant, episode, kind, now_ms, None)
    }

    /// Marks an alert as seen by staff, with who and their note (kept only
    /// on the first acknowledgement); false if there is no such alert.
    pub fn ack_alert_by(
        &self,
        grant: &[u8; 16],
        episode: &[u8; 16],
        kind: u8,
        now_ms: i64,
        note: Option<AckNote>,
    ) -> Result<bool, StoreError> {
        let key = alert_key(grant, episode, kind);
        let Some(v) = self.db().get(&key)? else {
            return Ok(false);
        };
        let mut e = decode_entry(&v)?;
        if e.monitoring_ended.is_some() {
            // Kept only until staff saw it: now they have, so it goes.
            self.db().remove(&key)?;
            self.db().flush()?;
            return Ok(true);
        }
        if e.acked_ms.is_none() {
            e.acked_ms = Some(now_ms);
            e.ack = note;
        }
        let v = postcard::to_stdvec(&e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.db().insert(key, v)?;
        self.db().flush()?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout before `ack`, as an older node wrote it.
    #[derive(Serialize)]
    struct Old {
        grant_id: [u8; 16],
        label: String,
        episode: [u8; 16],
        kind: u8,
        onset_ms: i64,
        level: u8,
        received_ms: i64,
        acked_ms: Option<i64>,
        monitoring_ended: Option<MonitoringEnded>,
    }

    #[test]
    fn inbox_entries_written_before_ack_notes_are_still_read() {
        let old = Old {
            grant_id: [1; 16],
            label: "Ana".into(),
            episode: [2; 16],
            kind: ALERT_START,
            onset_ms: 600_000,
            level: 2,
            received_ms: 700_000,
            acked_ms: Some(800_000),
            monitoring_ended: None,
        };
        let e = decode_entry(&postcard::to_stdvec(&old).unwrap()).unwrap();
        assert_eq!(
            (e.label.as_str(), e.acked_ms, e.ack),
            ("Ana", Some(800_000), None)
        );
        // And the current layout round-trips with its note.
        let new = InboxEntry {
            ack: Some(AckNote::new("Mei", Some("called")).unwrap()),
            ..e
        };
        assert_eq!(
            decode_entry(&postcard::to_stdvec(&new).unwrap()).unwrap(),
            new
        );
        // Damage is still an error, not an empty entry.
        assert!(decode_entry(&[1, 2, 3]).is_err());
    }

    #[test]
    fn ack_notes_are_bounded_plain_text() {
        assert!(AckNote::new(" ", None).is_err());
        assert!(AckNote::new("Mei\nLin", None).is_err());
        assert!(AckNote::new(&"m".repeat(MAX_ACK_BY_CHARS + 1), None).is_err());
        assert!(AckNote::new("Mei", Some(&"n".repeat(MAX_ACK_NOTE_CHARS + 1))).is_err());
        let n = AckNote::new(" Mei ", Some("  ")).unwrap();
        assert_eq!((n.by.as_str(), n.note), ("Mei", None));
    }
}
