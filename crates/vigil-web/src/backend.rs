//! What the dashboard asks of the node. The node program implements
//! [`Backend`] with the same operations `vigil-node alerts`, `alerts ack`,
//! `residents` (`add`, `revoke`) and `status` run (its admin requests), so
//! the pages and the commands answer alike.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// One alert, as `vigil-node alerts --json` lists it (fields the pages use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Its id (12 hex digits).
    pub id: String,
    /// 1 started, 2 ended.
    pub kind: u8,
    /// The label staff gave the resident.
    pub label: String,
    /// Onset, rounded to 10 minutes, ms.
    pub onset_ms: i64,
    /// Level band 1–3.
    pub level: u8,
    /// When the node stored it, ms.
    pub received_ms: i64,
    /// When staff acknowledged it.
    pub acked_ms: Option<i64>,
    /// When the resident ended monitoring, if they did.
    #[serde(default)]
    pub monitoring_ended_ms: Option<i64>,
    /// Who acknowledged it, as the node records it (`alerts ack --by`, or
    /// the staff member logged in here).
    #[serde(default)]
    pub acked_by: Option<String>,
}

/// One resident, as `vigil-node residents --all --json` lists them (fields
/// the pages use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resident {
    /// Short id (12 hex digits), as the CLI shows it.
    pub id: String,
    /// The whole ticket id (32 hex digits); none for a resident enrolled
    /// before tickets (no sheet, no revoke from here).
    #[serde(default)]
    pub ticket: Option<String>,
    /// The label staff typed.
    pub label: String,
    /// "unused", "enrolled", "revoked", "period over", "ended monitoring"
    /// or "ended early" (the node's words; the pages translate them).
    pub status: String,
    /// The period's end, ms.
    pub period_end_ms: i64,
    /// When the node last heard from the resident's devices.
    #[serde(default)]
    pub last_contact_ms: Option<i64>,
    /// Alerts in the inbox under this resident, and how many are new.
    #[serde(default)]
    pub alerts: usize,
    /// Unacknowledged.
    #[serde(default)]
    pub unacked: usize,
}

/// A ticket just issued: the only time its secret exists outside the
/// resident's hands (the node keeps a hash). `Debug` leaves it out.
#[derive(Clone)]
pub struct IssuedTicket {
    /// The whole ticket id (32 hex digits).
    pub id: String,
    /// The label as the node stored it (normalised).
    pub label: String,
    /// The period's end, ms.
    pub period_end_ms: i64,
    /// The ticket as `vigil enrol` takes it (`vigil-ticket1/...`): the
    /// sheet's text and its QR code's payload.
    pub ticket: Zeroizing<String>,
}

impl std::fmt::Debug for IssuedTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTicket")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("period_end_ms", &self.period_end_ms)
            .finish_non_exhaustive()
    }
}

/// Something used against its cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// In use now.
    pub used: u64,
    /// The cap.
    pub max: u64,
}

/// What the last sweep deleted, and when it ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSweep {
    /// When it ran, ms.
    pub at_ms: i64,
    /// Mailboxes (vaults) deleted.
    pub mailboxes: u64,
    /// Bundles and snapshots deleted.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Grants deleted.
    pub grants: u64,
    /// Alerts deleted.
    pub alerts: u64,
    /// Enrolment tickets deleted.
    #[serde(default)]
    pub tickets: u64,
}

/// The node as the Node page shows it (the admin `status` answer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The enrolment code devices pin (none when the node has no address
    /// devices can reach: listening on 0.0.0.0 without `--advertise`).
    #[serde(default)]
    pub code: Option<String>,
    /// SHA-256 of the node's TLS certificate, hex.
    pub fingerprint: String,
    /// The address it listens on.
    pub listen: String,
    /// Its version.
    pub version: String,
    /// When it started, ms.
    pub started_ms: i64,
    /// Mailboxes held against `limits.max_vaults`.
    pub mailboxes: Quota,
    /// Bytes of ciphertext held against `limits.max_store_bytes`.
    pub blob_bytes: Quota,
    /// Unused tickets against `limits.max_tickets`.
    pub unused_tickets: Quota,
    /// Pairing offers waiting against `limits.max_pairing_slots`.
    pub pairing_slots: Quota,
    /// One-time grant keys against `limits.max_grant_keys`.
    pub grant_keys: Quota,
    /// Most bytes one resident's vault may hold.
    pub max_bytes_per_vault: u64,
    /// The store's size on disk, bytes.
    pub store_bytes: u64,
    /// The last sweep since the node started, if one ran.
    #[serde(default)]
    pub last_sweep: Option<LastSweep>,
    /// Deletion receipts signed since the node started.
    pub receipts: u64,
}

/// The node's operations the dashboard uses. Calls block (they read the
/// store): the app runs them on the blocking pool.
pub trait Backend: Send + Sync + 'static {
    /// The inbox, oldest first.
    fn alerts(&self, now_ms: i64) -> Result<Vec<Alert>, String>;
    /// Acknowledges the alert `id` in the name of staff member `by`;
    /// returns it and whether it already was.
    fn ack(&self, id: &str, by: &str, now_ms: i64) -> Result<(Alert, bool), String>;
    /// Residents: active ones, or `all` (revoked, period over too).
    fn residents(&self, all: bool, now_ms: i64) -> Result<Vec<Resident>, String>;
    /// One page of every resident (revoked, period over too) as the
    /// Residents page shows them: searched, ordered, windowed by
    /// [`ResidentPage::select`]. A backend that can read the store more
    /// cheaply for one page may do so; it must read it once, not per row.
    fn resident_page(&self, query: &ResidentQuery, now_ms: i64) -> Result<ResidentPage, String> {
        Ok(ResidentPage::select(
            self.residents(true, now_ms)?,
            query,
            now_ms,
        ))
    }
    /// Issues an enrolment ticket for `label` whose period ends `period_ms`
    /// from `now_ms`.
    fn issue_ticket(
        &self,
        label: &str,
        period_ms: i64,
        now_ms: i64,
    ) -> Result<IssuedTicket, String>;
    /// Revokes the ticket `id` (its whole id); returns the resident and
    /// whether it already was revoked.
    fn revoke(&self, id: &str, now_ms: i64) -> Result<(Resident, bool), String>;
    /// The node: code, fingerprint, storage against quotas, last sweep,
    /// receipts.
    fn node_info(&self, now_ms: i64) -> Result<NodeInfo, String>;
}

/// What one view of the Residents page asks for: a search and a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResidentQuery {
    /// Matches a label (case-insensitive substring) or an id (prefix of the
    /// short or the whole ticket id); empty matches everyone.
    pub q: String,
    /// Rows to skip (the page's first row, 0-based).
    pub offset: usize,
    /// Rows wanted (the page size).
    pub limit: usize,
}

/// One window of the residents, in the page's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResidentPage {
    /// The rows shown.
    pub rows: Vec<Resident>,
    /// The first row's place among those matching (0-based): the query's
    /// offset, moved back to the last page when it was past the end.
    pub offset: usize,
    /// Residents matching the search.
    pub matching: usize,
    /// Residents in all.
    pub total: usize,
}

/// Whether `r` matches the search `q_lower` (already lowercased, not empty).
fn matches(r: &Resident, q_lower: &str) -> bool {
    r.id.starts_with(q_lower)
        || r.ticket.as_deref().is_some_and(|t| t.starts_with(q_lower))
        || if r.label.is_ascii() && q_lower.is_ascii() {
            // The common case without an allocation per row.
            r.label
                .as_bytes()
                .windows(q_lower.len())
                .any(|w| w.eq_ignore_ascii_case(q_lower.as_bytes()))
        } else {
            r.label.to_lowercase().contains(q_lower)
        }
}

/// The Residents page's order: residents who need attention first (enrolled
/// but silent for [`crate::pages::NO_CONTACT_MS`]), then the rest; by label,
/// then id, within each group, so a page shows the same rows on reload.
fn order(a: &(bool, Resident), b: &(bool, Resident)) -> std::cmp::Ordering {
    (!a.0, &a.1.label, &a.1.id).cmp(&(!b.0, &b.1.label, &b.1.id))
}

impl ResidentPage {
    /// The window `query` asks for out of `all`, at `now_ms`. Filtering is
    /// one pass; only the rows shown are sorted (two selections put them in
    /// place first), so a page of 100 out of 10,000 costs a linear pass, not
    /// a sort of everyone.
    pub fn select(all: Vec<Resident>, query: &ResidentQuery, now_ms: i64) -> ResidentPage {
        let total = all.len();
        let q = query.q.trim().to_lowercase();
        let mut hits: Vec<(bool, Resident)> = all
            .into_iter()
            .filter(|r| q.is_empty() || matches(r, &q))
            .map(|r| (crate::pages::silent(&r, now_ms), r))
            .collect();
        let matching = hits.len();
        let limit = query.limit.max(1);
        // Past the end: the last page (a stale link after revocations).
        let last = matching.saturating_sub(1) / limit * limit;
        let offset = query.offset.min(last);
        let end = offset.saturating_add(limit).min(matching);
        if end < matching {
            hits.select_nth_unstable_by(end, order);
            hits.truncate(end);
        }
        if offset > 0 && offset < hits.len() {
            hits.select_nth_unstable_by(offset, order);
        }
        let mut rows: Vec<(bool, Resident)> = hits.split_off(offset.min(hits.len()));
        rows.sort_unstable_by(order);
        ResidentPage {
            rows: rows.into_iter().map(|(_, r)| r).collect(),
            offset,
            matching,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(i: u64, label: &str, last_contact_ms: i64) -> Resident {
        Resident {
            id: format!("{i:012x}"),
            ticket: Some(format!("{i:012x}{}", "0".repeat(20))),
            label: label.to_owned(),
            status: "enrolled".into(),
            period_end_ms: 0,
            last_contact_ms: Some(last_contact_ms),
            alerts: 0,
            unacked: 0,
        }
    }

    /// Every window the selections give equals that window of the whole
    /// list sorted: silent first, then label, then id (labels repeat, so
    /// the id decides), including windows that straddle the two groups.
    #[test]
    fn each_window_is_the_window_of_the_full_order() {
        let now = 10 * crate::pages::NO_CONTACT_MS;
        // A scrambled list: every 7th resident silent, labels repeating.
        let all: Vec<Resident> = (0..537u64)
            .map(|i| {
                let j = (i * 389) % 537;
                let last = if j % 7 == 0 { 0 } else { now };
                r(j, &format!("L{}", j % 23), last)
            })
            .collect();
        let mut want: Vec<(bool, Resident)> = all
            .iter()
            .map(|x| (crate::pages::silent(x, now), x.clone()))
            .collect();
        want.sort_by(order);
        let want: Vec<String> = want.into_iter().map(|(_, x)| x.id).collect();
        for limit in [1, 10, 77, 100, 537, 1000] {
            for offset in (0..600).step_by(limit.min(53)) {
                let q = ResidentQuery {
                    q: String::new(),
                    offset,
                    limit,
                };
                let p = ResidentPage::select(all.clone(), &q, now);
                let start = offset.min((537 - 1) / limit * limit);
                let got: Vec<String> = p.rows.into_iter().map(|x| x.id).collect();
                assert_eq!(p.offset, start);
                assert_eq!(
                    got,
                    want[start..(start + limit).min(537)],
                    "{offset} {limit}"
                );
                assert_eq!((p.matching, p.total), (537, 537));
            }
        }
    }
}
