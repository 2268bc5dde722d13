//! The staff audit log: every acknowledgement and ticket action, with the
//! staff member's name, append-only in the store (the web dashboard writes
//! it; nothing in the node deletes it).

use serde::{Deserialize, Serialize};

use crate::store::{MailboxStore, StoreError};

/// The audit log's key prefix in the store.
const PREFIX: u8 = b'u';

/// One staff action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When, ms.
    pub at_ms: i64,
    /// The staff member's name.
    pub staff: String,
    /// What they did, e.g. `ack`, `ticket-issue`, `ticket-revoke`, `login`.
    pub action: String,
    /// On what: an alert id, a ticket id.
    pub subject: String,
}

impl MailboxStore {
    /// Appends `r` (durable). `nonce` tells apart two records of the same
    /// millisecond; a repeated (time, nonce) is refused, never overwritten.
    pub fn append_audit(&self, r: &AuditRecord, nonce: [u8; 8]) -> Result<(), StoreError> {
        let mut key = vec![PREFIX];
        // Sign bit flipped: keys sort as times do, negative ones included.
        key.extend_from_slice(&((r.at_ms as u64) ^ (1 << 63)).to_be_bytes());
        key.extend_from_slice(&nonce);
        let v = postcard::to_stdvec(r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if !self.db().insert_if_absent(key, v)? {
            return Err(StoreError::Corrupt("audit record key reused".into()));
        }
        self.db().flush()
    }

    /// The audit log, oldest first.
    pub fn audit_log(&self) -> Result<Vec<AuditRecord>, StoreError> {
        self.db()
            .scan_prefix(&[PREFIX])?
            .into_iter()
            .map(|(_, v)| postcard::from_bytes(&v).map_err(|_| StoreError::Corrupt("audit".into())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_in_time_order_and_never_overwrites() {
        let s = MailboxStore::in_memory();
        let rec = |t, who: &str| AuditRecord {
            at_ms: t,
            staff: who.into(),
            action: "ack".into(),
            subject: "3fa2".into(),
        };
        s.append_audit(&rec(20, "b"), [1; 8]).unwrap();
        s.append_audit(&rec(10, "a"), [1; 8]).unwrap();
        assert!(s.append_audit(&rec(10, "evil"), [1; 8]).is_err());
        let log = s.audit_log().unwrap();
        assert_eq!(log, vec![rec(10, "a"), rec(20, "b")]);
    }
}
