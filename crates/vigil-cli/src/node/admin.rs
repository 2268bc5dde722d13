//! The operator's operations over the relay, and their line-delimited JSON
//! form on the admin socket.
//!
//! One request per line, one response per line:
//!
//! ```text
//! {"op":"status"}                        -> {"ok":{"pid":..,"listen":..,"code":..,"mailboxes":{..},..}}
//! {"op":"alerts"}                        -> {"ok":[{"id":"3fa2c19b04de",..},..]}
//! {"op":"ack","id":"3fa2"}               -> {"ok":{"already":false,"alert":{..}}}
//! {"op":"residents","all":false}         -> {"ok":[{"label":..,..},..]}
//! {"op":"residents_add","label":"Ana","period_end_ms":..}
//!                                        -> {"ok":{"id":..,"secret":..,"label":..,..}}
//! {"op":"residents_revoke","id":"3fa2"}  -> {"ok":{"already":false,"resident":{..}}}
//! {"op":"sweep","grace_ms":0}            -> {"ok":{"mailboxes":0,..}}
//! anything that fails                    -> {"error":"one line"}
//! ```
//!
//! The same [`execute`] runs behind the socket (node serving) and directly on
//! the store (node stopped), so both paths answer alike.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use vigil_net::EnrolmentCode;
use vigil_node::{
    GrantRecord, InboxEntry, Relay, SweepReport, TicketError, TicketRecord, TicketState,
};

use crate::common::time::format_secs as rfc3339;

/// Hex digits in an alert's id.
pub(crate) const ALERT_ID_LEN: usize = 12;
/// Fewest hex digits accepted as an id prefix.
pub(crate) const MIN_ID_PREFIX: usize = 4;

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Request {
    /// Is a node serving, and where.
    Status,
    /// The whole inbox, oldest first.
    Alerts,
    /// Acknowledge the alert with this id (or unique prefix).
    Ack {
        /// Id or prefix.
        id: String,
        /// Who acknowledges (checked by the node too).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// Their note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Residents (tickets and their grants): active ones, or all.
    Residents {
        /// Include revoked tickets, ended periods and ended monitoring.
        all: bool,
    },
    /// Register a resident: a new enrolment ticket.
    ResidentsAdd {
        /// The label staff typed (normalised by the node).
        label: String,
        /// The period's end, ms.
        period_end_ms: i64,
    },
    /// Revoke the ticket with this id (or unique prefix).
    ResidentsRevoke {
        /// Id or prefix.
        id: String,
    },
    /// Sweep now.
    Sweep {
        /// Grace after a period's end, ms.
        grace_ms: i64,
    },
}

/// A response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Response {
    /// Success, with the operation's result.
    Ok(serde_json::Value),
    /// Failure, one line.
    Error(String),
}

/// A serving node, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Status {
    /// Its process id.
    pub(crate) pid: u32,
    /// The address it bound.
    pub(crate) listen: SocketAddr,
    /// The address it puts in enrolment codes, if set.
    pub(crate) advertise: Option<SocketAddr>,
    /// When it started, ms.
    pub(crate) started_ms: i64,
    /// Its version.
    pub(crate) version: String,
}

/// A serving node's own facts beside its relay, shared by its admin socket,
/// its sweeper and its dashboard: what `status` answers.
#[derive(Debug, Clone)]
pub(crate) struct Serving {
    /// Where and since when it serves.
    pub(crate) status: Status,
    /// Its enrolment code, or why it has none (no address devices can
    /// reach).
    pub(crate) code: Result<EnrolmentCode, String>,
    /// SHA-256 of its TLS certificate (in every code, pinned by devices).
    pub(crate) fingerprint: [u8; 32],
    /// The last sweep since it started: the sweeper's or `vigil-node
    /// sweep`'s. In memory: the store keeps no history of sweeps.
    pub(crate) last_sweep: Arc<Mutex<Option<LastSweepView>>>,
}

impl Serving {
    /// A node serving with `status`, code `code` and certificate
    /// `fingerprint`, not yet swept.
    pub(crate) fn new(
        status: Status,
        code: Result<EnrolmentCode, String>,
        fingerprint: [u8; 32],
    ) -> Self {
        Serving {
            status,
            code,
            fingerprint,
            last_sweep: Arc::default(),
        }
    }

    /// Records a sweep at `at_ms`.
    pub(crate) fn swept(&self, at_ms: i64, r: &SweepReport) {
        let v = LastSweepView {
            at_ms,
            mailboxes: r.mailboxes,
            blobs: r.blobs,
            bytes: r.bytes,
            grants: r.grants,
            alerts: r.alerts,
            pairings: r.pairings,
            grant_keys: r.grant_keys,
            tickets: r.tickets,
        };
        // A poisoned lock holds a plain value: keep using it.
        *self
            .last_sweep
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(v);
    }

    fn last_sweep(&self) -> Option<LastSweepView> {
        *self
            .last_sweep
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A sweep: when, and what it deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LastSweepView {
    /// When it ran, ms.
    pub(crate) at_ms: i64,
    /// Mailboxes (vaults), bundles and snapshots and their bytes.
    pub(crate) mailboxes: u64,
    pub(crate) blobs: u64,
    pub(crate) bytes: u64,
    /// Grants and alerts.
    pub(crate) grants: u64,
    pub(crate) alerts: u64,
    /// Expired pairing offers, unused grant keys, ended tickets.
    pub(crate) pairings: u64,
    pub(crate) grant_keys: u64,
    pub(crate) tickets: u64,
}

/// Something in use against its cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QuotaView {
    pub(crate) used: u64,
    pub(crate) max: u64,
}

/// `status`'s answer: [`Status`] (what `vigil-node code` reads), and the
/// node's code, storage against its caps, last sweep and receipts (what
/// the dashboard's Node page shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StatusView {
    #[serde(flatten)]
    pub(crate) status: Status,
    /// The enrolment code, if the node has an address devices can reach.
    pub(crate) code: Option<String>,
    /// Why it has none.
    pub(crate) no_code: Option<String>,
    /// SHA-256 of its certificate, hex.
    pub(crate) fingerprint: String,
    /// Mailboxes against `limits.max_vaults`.
    pub(crate) mailboxes: QuotaView,
    /// Ciphertext bytes against `limits.max_store_bytes`.
    pub(crate) blob_bytes: QuotaView,
    /// Unused tickets against `limits.max_tickets`.
    pub(crate) unused_tickets: QuotaView,
    /// Pairing offers against `limits.max_pairing_slots`.
    pub(crate) pairing_slots: QuotaView,
    /// One-time grant keys against `limits.max_grant_keys`.
    pub(crate) grant_keys: QuotaView,
    /// `limits.max_bytes_per_vault`.
    pub(crate) max_bytes_per_vault: u64,
    /// The store's size on disk.
    pub(crate) store_bytes: u64,
    /// The last sweep since the node started.
    pub(crate) last_sweep: Option<LastSweepView>,
    /// Deletion receipts signed since the node started.
    pub(crate) receipts: u64,
}

/// A counter's value in the relay's metrics (OpenMetrics text): the
/// relay counts receipts (shred requests answered `ok`) only there, and
/// its text form is the interface it promises operators. 0 when never
/// counted (a counter with labels appears at its first increment).
fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// The metric series of deletion receipts signed: a shred answered with
/// one (an `ok` shred is a receipt; a node without a signing key refuses).
const RECEIPTS_SERIES: &str = r#"vigil_node_requests_total{kind="shred",result="ok"} "#;

fn status_view(relay: &Relay, s: &Serving) -> Result<StatusView, String> {
    let store = |e: vigil_node::StoreError| e.to_string();
    let u = relay.usage().map_err(store)?;
    let c = relay.config();
    let q = |used, max| QuotaView { used, max };
    Ok(StatusView {
        status: s.status.clone(),
        code: s.code.as_ref().ok().map(ToString::to_string),
        no_code: s.code.as_ref().err().cloned(),
        fingerprint: hex::encode(s.fingerprint),
        mailboxes: q(u.vaults, c.max_vaults),
        blob_bytes: q(u.bytes, c.max_store_bytes),
        unused_tickets: q(
            relay.store().unused_tickets().map_err(store)?,
            c.max_tickets,
        ),
        pairing_slots: q(u.pairing_slots, c.max_pairing_slots),
        grant_keys: q(u.grant_keys, c.max_grant_keys),
        max_bytes_per_vault: c.max_bytes_per_vault,
        store_bytes: relay.store().size_on_disk(),
        last_sweep: s.last_sweep(),
        receipts: counter(&relay.metrics().encode(), RECEIPTS_SERIES),
    })
}

/// One alert as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AlertView {
    /// Short id for `alerts ack`.
    pub(crate) id: String,
    /// "fever started" / "fever ended".
    pub(crate) what: String,
    /// 1 started, 2 ended.
    pub(crate) kind: u8,
    /// The label the resident shared.
    pub(crate) label: String,
    /// Rounded onset, ms and RFC 3339.
    pub(crate) onset_ms: i64,
    pub(crate) onset: String,
    /// Level band 1–3.
    pub(crate) level: u8,
    /// When the node stored it.
    pub(crate) received_ms: i64,
    pub(crate) received: String,
    /// When staff acknowledged it.
    pub(crate) acked_ms: Option<i64>,
    pub(crate) acked: Option<String>,
    /// Who acknowledged it, and their note.
    #[serde(default)]
    pub(crate) acked_by: Option<String>,
    #[serde(default)]
    pub(crate) ack_note: Option<String>,
    /// The grant (hex) and episode (hex).
    pub(crate) grant_id: String,
    pub(crate) episode: String,
    /// When the resident ended monitoring (shredded) before staff saw it:
    /// the alert stays until acknowledged, then goes.
    pub(crate) monitoring_ended_ms: Option<i64>,
    pub(crate) monitoring_ended: Option<String>,
    /// Staff revoked the resident (their grant ended then, not by a shred).
    #[serde(default)]
    pub(crate) resident_revoked: bool,
}

/// The result of `ack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AckView {
    /// It had been acknowledged before (the first time stands).
    pub(crate) already: bool,
    /// The alert, acknowledged.
    pub(crate) alert: AlertView,
}

/// One resident: their ticket and, once they enrolled, their grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ResidentView {
    /// Short ticket id (12 hex digits), for `residents revoke`; a grant's
    /// for a resident enrolled before tickets.
    pub(crate) id: String,
    /// The whole ticket id, hex (none for a resident without a ticket).
    pub(crate) ticket: Option<String>,
    /// The label staff typed.
    pub(crate) label: String,
    /// "unused", "enrolled", "revoked", "period over", "ended monitoring"
    /// (shredded early, with alerts staff have not read) or "ended early".
    pub(crate) status: String,
    /// The period (the grant's validity), ms and RFC 3339; the start is
    /// gone with the grant of a resident who ended monitoring.
    pub(crate) period_start_ms: Option<i64>,
    pub(crate) period_start: Option<String>,
    pub(crate) period_end_ms: i64,
    pub(crate) period_end: String,
    /// When the node last heard from the resident's devices (none before
    /// they enrolled).
    pub(crate) last_contact_ms: Option<i64>,
    pub(crate) last_contact: Option<String>,
    /// Alerts in the inbox under this grant, and how many are unacknowledged.
    pub(crate) alerts: usize,
    pub(crate) unacked: usize,
    /// The fever threshold the resident set, °C (gone with the grant of a
    /// resident who ended monitoring).
    pub(crate) threshold_c: Option<f64>,
    /// The whole grant id, hex, once given.
    pub(crate) grant_id: Option<String>,
}

/// A ticket just issued: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IssuedView {
    /// The ticket id, hex (32 digits).
    pub(crate) id: String,
    /// The ticket secret, hex (64 digits).
    pub(crate) secret: String,
    /// The label as stored (normalised).
    pub(crate) label: String,
    /// The period end, ms and RFC 3339.
    pub(crate) period_end_ms: i64,
    pub(crate) period_end: String,
}

/// The result of `residents_revoke`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RevokeView {
    /// It had been revoked before.
    pub(crate) already: bool,
    /// Grants ended (0 or 1) and alerts deleted with them.
    pub(crate) grants_ended: u64,
    pub(crate) alerts_deleted: u64,
    /// Unacknowledged alerts kept for staff.
    pub(crate) alerts_kept: u64,
    /// The resident, revoked.
    pub(crate) resident: ResidentView,
}

/// What a sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SweepView {
    /// Mailboxes (vaults).
    pub(crate) mailboxes: u64,
    /// Bundles and snapshots.
    pub(crate) blobs: u64,
    /// Their bytes.
    pub(crate) bytes: u64,
    /// Grants.
    pub(crate) grants: u64,
    /// Alerts.
    pub(crate) alerts: u64,
    /// Expired pairing offers.
    pub(crate) pairings: u64,
    /// One-time grant keys never used.
    pub(crate) grant_keys: u64,
}

impl From<SweepReport> for SweepView {
    fn from(r: SweepReport) -> Self {
        SweepView {
            mailboxes: r.mailboxes,
            blobs: r.blobs,
            bytes: r.bytes,
            grants: r.grants,
            alerts: r.alerts,
            pairings: r.pairings,
            grant_keys: r.grant_keys,
        }
    }
}

/// The short id of an alert: the first 12 hex digits of
/// `SHA-256("vigil-node/alert-id" || grant || episode || kind)`. Stable
/// across restarts and the same on both paths.
pub(crate) fn alert_id(e: &InboxEntry) -> String {
    e.id()
}

fn alert_view(e: &InboxEntry) -> AlertView {
    AlertView {
        id: alert_id(e),
        what: e.describe().to_owned(),
        kind: e.kind,
        label: e.label.clone(),
        onset_ms: e.onset_ms,
        onset: rfc3339(e.onset_ms),
        level: e.level,
        received_ms: e.received_ms,
        received: rfc3339(e.received_ms),
        acked_ms: e.acked_ms,
        acked: e.acked_ms.map(rfc3339),
        acked_by: e.ack.as_ref().map(|a| a.by.clone()),
        ack_note: e.ack.as_ref().and_then(|a| a.note.clone()),
        grant_id: hex::encode(e.grant_id),
        episode: hex::encode(e.episode),
        monitoring_ended_ms: e.monitoring_ended.map(|m| m.at_ms),
        monitoring_ended: e.monitoring_ended.map(|m| rfc3339(m.at_ms)),
        resident_revoked: false,
    }
}

/// The grants whose ticket staff revoked.
fn revoked_grants(relay: &Relay) -> Result<Vec<[u8; 16]>, String> {
    Ok(relay
        .tickets()
        .map_err(|e| e.to_string())?
        .iter()
        .filter(|t| matches!(t.state, TicketState::Revoked { .. }))
        .filter_map(TicketRecord::grant)
        .collect())
}

/// A resident enrolled before tickets (a grant no ticket names).
fn grant_view(g: &GrantRecord, index: &Index<'_>, now_ms: i64) -> ResidentView {
    let w = &g.grant;
    let status = if g.revoked {
        "revoked"
    } else if w.valid_until_ms <= now_ms {
        "period over"
    } else {
        "enrolled"
    };
    let InboxFacts {
        alerts, unacked, ..
    } = index.facts(&w.grant_id);
    ResidentView {
        id: hex::encode(&w.grant_id[..6]),
        ticket: None,
        label: w.label.clone(),
        status: status.to_owned(),
        period_start_ms: Some(w.valid_from_ms),
        period_start: Some(rfc3339(w.valid_from_ms)),
        period_end_ms: w.valid_until_ms,
        period_end: rfc3339(w.valid_until_ms),
        last_contact_ms: Some(g.last_contact_ms),
        last_contact: Some(rfc3339(g.last_contact_ms)),
        alerts,
        unacked,
        threshold_c: Some(w.threshold_c),
        grant_id: Some(hex::encode(w.grant_id)),
    }
}

/// What the inbox says of one grant.
#[derive(Debug, Default, Clone, Copy)]
struct InboxFacts {
    alerts: usize,
    unacked: usize,
    /// When the resident ended monitoring, from the first alert that says so.
    ended_at_ms: Option<i64>,
}

/// The grants and the inbox indexed by grant id, read once per listing:
/// building 10,000 residents' rows is then linear, where a scan of every
/// grant and every alert per ticket was tickets × (grants + alerts).
struct Index<'a> {
    grants: HashMap<[u8; 16], &'a GrantRecord>,
    inbox: HashMap<[u8; 16], InboxFacts>,
}

impl<'a> Index<'a> {
    fn new(grants: &'a [GrantRecord], inbox: &[InboxEntry]) -> Self {
        let mut facts: HashMap<[u8; 16], InboxFacts> = HashMap::new();
        for e in inbox {
            let f = facts.entry(e.grant_id).or_default();
            f.alerts += 1;
            f.unacked += usize::from(e.acked_ms.is_none());
            if f.ended_at_ms.is_none() {
                f.ended_at_ms = e.monitoring_ended.map(|m| m.at_ms);
            }
        }
        Index {
            grants: grants.iter().map(|g| (g.grant.grant_id, g)).collect(),
            inbox: facts,
        }
    }

    fn facts(&self, grant: &[u8; 16]) -> InboxFacts {
        self.inbox.get(grant).copied().unwrap_or_default()
    }
}

/// A resident as their ticket and grant say.
fn ticket_view(t: &TicketRecord, index: &Index<'_>, now_ms: i64) -> ResidentView {
    let grant = t.grant().and_then(|id| index.grants.get(&id).copied());
    let facts = t.grant().map(|g| index.facts(&g)).unwrap_or_default();
    let (alerts, unacked) = (facts.alerts, facts.unacked);
    let mut status = t.status(now_ms).to_owned();
    // Enrolled, but the grant is gone: the resident shredded early.
    if status == "enrolled" && t.grant().is_some() && grant.is_none() {
        status = if unacked > 0 {
            "ended monitoring"
        } else {
            "ended early"
        }
        .to_owned();
    }
    let last_contact_ms = grant.map(|g| g.last_contact_ms).or(facts.ended_at_ms);
    ResidentView {
        id: hex::encode(&t.id[..6]),
        ticket: Some(hex::encode(t.id)),
        label: t.label.clone(),
        status,
        period_start_ms: grant.map(|g| g.grant.valid_from_ms),
        period_start: grant.map(|g| rfc3339(g.grant.valid_from_ms)),
        period_end_ms: t.period_end_ms,
        period_end: rfc3339(t.period_end_ms),
        last_contact_ms,
        last_contact: last_contact_ms.map(rfc3339),
        alerts,
        unacked,
        threshold_c: grant.map(|g| g.grant.threshold_c),
        grant_id: t.grant().map(hex::encode),
    }
}

/// Residents without a ticket who shredded while staff had not seen a
/// fever: their grant is gone, but the kept alerts name them until read
/// (docs/spec.md §13).
fn ended_views(inbox: &[InboxEntry], named: &HashSet<[u8; 16]>) -> Vec<ResidentView> {
    let mut by_grant: std::collections::BTreeMap<[u8; 16], Vec<&InboxEntry>> = Default::default();
    for e in inbox.iter().filter(|e| e.monitoring_ended.is_some()) {
        if !named.contains(&e.grant_id) {
            by_grant.entry(e.grant_id).or_default().push(e);
        }
    }
    by_grant
        .into_iter()
        .filter_map(|(grant_id, mine)| {
            let first = mine.first()?;
            let ended = first.monitoring_ended?;
            Some(ResidentView {
                id: hex::encode(&grant_id[..6]),
                ticket: None,
                label: first.label.clone(),
                status: "ended monitoring".to_owned(),
                period_start_ms: None,
                period_start: None,
                period_end_ms: ended.period_end_ms,
                period_end: rfc3339(ended.period_end_ms),
                // The shred was the node's last word from the resident.
                last_contact_ms: Some(ended.at_ms),
                last_contact: Some(rfc3339(ended.at_ms)),
                alerts: mine.len(),
                unacked: mine.iter().filter(|e| e.acked_ms.is_none()).count(),
                threshold_c: None,
                grant_id: Some(hex::encode(grant_id)),
            })
        })
        .collect()
}

/// Every resident: tickets (with their grants), then grants no ticket
/// names, then residents without a ticket who ended monitoring.
fn resident_views(relay: &Relay, now_ms: i64) -> Result<Vec<ResidentView>, String> {
    let store = |e: vigil_node::StoreError| e.to_string();
    let inbox = relay.inbox().map_err(store)?;
    let grants = relay.grants().map_err(store)?;
    let mut tickets = relay.tickets().map_err(store)?;
    tickets.sort_by(|a, b| (a.issued_ms, &a.label).cmp(&(b.issued_ms, &b.label)));
    let named: HashSet<[u8; 16]> = tickets.iter().filter_map(TicketRecord::grant).collect();
    let index = Index::new(&grants, &inbox);
    let mut views: Vec<ResidentView> = tickets
        .iter()
        .map(|t| ticket_view(t, &index, now_ms))
        .collect();
    let mut legacy: Vec<&GrantRecord> = grants
        .iter()
        .filter(|g| !named.contains(&g.grant.grant_id))
        .collect();
    legacy.sort_by(|a, b| {
        (a.grant.valid_until_ms, &a.grant.label).cmp(&(b.grant.valid_until_ms, &b.grant.label))
    });
    views.extend(legacy.iter().map(|g| grant_view(g, &index, now_ms)));
    views.extend(ended_views(&inbox, &named));
    Ok(views)
}

/// The residents `vigil-node residents [--all]` lists: active ones, or all.
/// The dashboard calls it directly (no JSON round trip for 10,000 rows).
pub(crate) fn residents(
    relay: &Relay,
    all: bool,
    now_ms: i64,
) -> Result<Vec<ResidentView>, String> {
    Ok(resident_views(relay, now_ms)?
        .into_iter()
        // A resident who ended monitoring early stays in view until the
        // period staff set is over: staff must see she stopped.
        .filter(|v| {
            all || matches!(v.status.as_str(), "unused" | "enrolled")
                || (matches!(v.status.as_str(), "ended early" | "ended monitoring")
                    && v.period_end_ms > now_ms)
        })
        .collect())
}

/// Checks a ticket id the operator typed: 4–32 hex digits.
pub(crate) fn check_ticket_id(id: &str) -> Result<String, String> {
    let id = id.trim().to_ascii_lowercase();
    if !(MIN_ID_PREFIX..=32).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "`{id}` is not a ticket id: expected {MIN_ID_PREFIX} to 32 hex digits as shown by \
             `vigil-node residents`"
        ));
    }
    Ok(id)
}

/// Checks an id the operator typed: 4–12 hex digits.
pub(crate) fn check_id(id: &str) -> Result<String, String> {
    let id = id.trim().to_ascii_lowercase();
    if !(MIN_ID_PREFIX..=ALERT_ID_LEN).contains(&id.len())
        || !id.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(format!(
            "`{id}` is not an alert id: expected {MIN_ID_PREFIX} to {ALERT_ID_LEN} hex digits \
             as shown by `vigil-node alerts`"
        ));
    }
    Ok(id)
}

/// Runs one request against `relay` at `now_ms`. `serving` is the serving
/// node's, `None` when the store was opened directly.
pub(crate) fn execute(
    relay: &Relay,
    req: &Request,
    now_ms: i64,
    serving: Option<&Serving>,
) -> Result<serde_json::Value, String> {
    let store = |e: vigil_node::StoreError| e.to_string();
    let json = |v: Result<serde_json::Value, serde_json::Error>| v.map_err(|e| e.to_string());
    match req {
        Request::Status => match serving {
            Some(s) => json(serde_json::to_value(status_view(relay, s)?)),
            None => Err("no node is serving".into()),
        },
        Request::Alerts => {
            let inbox = relay.inbox().map_err(store)?;
            json(serde_json::to_value({
                let revoked = revoked_grants(relay)?;
                inbox
                    .iter()
                    .map(|e| AlertView {
                        resident_revoked: revoked.contains(&e.grant_id),
                        ..alert_view(e)
                    })
                    .collect::<Vec<_>>()
            }))
        }
        Request::Ack { id, by, note } => {
            let id = check_id(id)?;
            let note = by
                .as_deref()
                .map(|b| vigil_node::AckNote::new(b, note.as_deref()))
                .transpose()?;
            let inbox = relay.inbox().map_err(store)?;
            let matches: Vec<&InboxEntry> = inbox
                .iter()
                .filter(|e| alert_id(e).starts_with(&id))
                .collect();
            let e = match matches[..] {
                [e] => e,
                [] => {
                    return Err(format!(
                        "no alert with id {id} (see `vigil-node alerts`; alerts of ended periods are swept)"
                    ));
                }
                _ => {
                    return Err(format!(
                        "{} alerts have ids starting with {id}; give more digits",
                        matches.len()
                    ));
                }
            };
            let done = match note.clone() {
                Some(n) => relay.ack_alert_by(&e.grant_id, &e.episode, e.kind, now_ms, n),
                None => relay.ack_alert(&e.grant_id, &e.episode, e.kind, now_ms),
            };
            if !done.map_err(store)? {
                return Err(format!("alert {id} was swept just now"));
            }
            let found = relay
                .store()
                .inbox_of(&e.grant_id)
                .map_err(store)?
                .into_iter()
                .find(|x| x.episode == e.episode && x.kind == e.kind);
            let acked = match found {
                Some(x) => x,
                // Kept past the resident's shred only until seen: the ack
                // deleted it; report it as acknowledged now.
                None if e.monitoring_ended.is_some() => InboxEntry {
                    acked_ms: Some(now_ms),
                    ack: note,
                    ..e.clone()
                },
                None => return Err(format!("alert {id} was swept just now")),
            };
            json(serde_json::to_value(AckView {
                already: e.acked_ms.is_some(),
                alert: alert_view(&acked),
            }))
        }
        Request::Residents { all } => json(serde_json::to_value(residents(relay, *all, now_ms)?)),
        Request::ResidentsAdd {
            label,
            period_end_ms,
        } => {
            let mut rng = vigil_crypto::rand_core::UnwrapErr(getrandom::SysRng);
            let t = relay
                .issue_ticket(label, *period_end_ms, now_ms, &mut rng)
                .map_err(|e| match e {
                    TicketError::PeriodOver => format!(
                        "the period end {} is not in the future",
                        rfc3339(*period_end_ms)
                    ),
                    e => e.to_string(),
                })?;
            json(serde_json::to_value(IssuedView {
                id: hex::encode(t.ticket.id),
                secret: hex::encode(t.ticket.secret.expose_secret()),
                label: t.label,
                period_end_ms: t.period_end_ms,
                period_end: rfc3339(t.period_end_ms),
            }))
        }
        Request::ResidentsRevoke { id } => {
            let id = check_ticket_id(id)?;
            let tickets = relay.tickets().map_err(store)?;
            let matches: Vec<&TicketRecord> = tickets
                .iter()
                .filter(|t| hex::encode(t.id).starts_with(&id))
                .collect();
            let t = match matches[..] {
                [t] => t,
                [] => {
                    return Err(format!(
                        "no ticket with id {id} (see `vigil-node residents --all`; tickets of ended periods are swept)"
                    ));
                }
                _ => {
                    return Err(format!(
                        "{} tickets have ids starting with {id}; give more digits",
                        matches.len()
                    ));
                }
            };
            let Some(r) = relay.revoke_ticket(&t.id, now_ms).map_err(store)? else {
                return Err(format!("ticket {id} was swept just now"));
            };
            let inbox = relay.inbox().map_err(store)?;
            let grants = relay.grants().map_err(store)?;
            json(serde_json::to_value(RevokeView {
                already: r.already,
                grants_ended: r.deleted.grants,
                alerts_deleted: r.deleted.alerts,
                alerts_kept: r.kept_alerts,
                resident: ticket_view(&r.ticket, &Index::new(&grants, &inbox), now_ms),
            }))
        }
        Request::Sweep { grace_ms } => {
            let r = relay.sweep(now_ms, *grace_ms).map_err(store)?;
            if let Some(s) = serving {
                s.swept(now_ms, &r);
            }
            json(serde_json::to_value(SweepView::from(r)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_json_form() {
        let cases = [
            (Request::Status, r#"{"op":"status"}"#),
            (Request::Alerts, r#"{"op":"alerts"}"#),
            (
                Request::Ack {
                    id: "3fa2".into(),
                    by: None,
                    note: None,
                },
                r#"{"op":"ack","id":"3fa2"}"#,
            ),
            (
                Request::Residents { all: true },
                r#"{"op":"residents","all":true}"#,
            ),
            (
                Request::Sweep { grace_ms: 5 },
                r#"{"op":"sweep","grace_ms":5}"#,
            ),
        ];
        for (req, text) in cases {
            assert_eq!(serde_json::to_string(&req).unwrap(), text);
            assert_eq!(serde_json::from_str::<Request>(text).unwrap(), req);
        }
        assert!(serde_json::from_str::<Request>(r#"{"op":"rm -rf"}"#).is_err());
        let r = Response::Error("no".into());
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"error":"no"}"#);
    }

    #[test]
    fn ids_are_checked() {
        assert_eq!(check_id(" 3FA2 ").unwrap(), "3fa2");
        for bad in ["", "3fa", "3fa2c19b04de0", "zzzz", "3fa2-1"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_reports_storage_sweeps_and_what_code_reads() {
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::new(
            vigil_node::MailboxStore::open(dir.path()).unwrap(),
            vigil_node::RelayConfig::default(),
        );
        let status = Status {
            pid: 7,
            listen: "127.0.0.1:4433".parse().unwrap(),
            advertise: None,
            started_ms: 1,
            version: "0.1.0".into(),
        };
        let serving = Serving::new(status.clone(), Err("no address".into()), [0xf1; 32]);
        let v = execute(&relay, &Request::Status, 5, Some(&serving)).unwrap();
        // `vigil-node code` reads the same answer as a Status.
        assert_eq!(serde_json::from_value::<Status>(v.clone()).unwrap(), status);
        let view: StatusView = serde_json::from_value(v).unwrap();
        assert_eq!(view.fingerprint, "f1".repeat(32));
        assert_eq!(
            (view.code, view.no_code.as_deref()),
            (None, Some("no address"))
        );
        assert_eq!(
            view.mailboxes.max,
            vigil_node::RelayConfig::default().max_vaults
        );
        assert_eq!((view.last_sweep, view.receipts), (None, 0));
        execute(&relay, &Request::Sweep { grace_ms: 0 }, 9, Some(&serving)).unwrap();
        let view: StatusView =
            serde_json::from_value(execute(&relay, &Request::Status, 10, Some(&serving)).unwrap())
                .unwrap();
        assert_eq!(view.last_sweep.unwrap().at_ms, 9);
    }

    #[test]
    fn counters_are_read_from_the_metrics_text() {
        let text = "# TYPE vigil_node_requests counter\n\
                    vigil_node_requests_total{kind=\"push\",result=\"ok\"} 4\n\
                    vigil_node_requests_total{kind=\"shred\",result=\"ok\"} 3\n";
        assert_eq!(counter(text, RECEIPTS_SERIES), 3);
        assert_eq!(counter("# EOF\n", RECEIPTS_SERIES), 0);
        // The series name as the relay writes it.
        let relay = Relay::new(
            vigil_node::MailboxStore::in_memory(),
            vigil_node::RelayConfig::default(),
        );
        relay.sweep(0, 0).unwrap();
        let m = relay.metrics().encode();
        assert_eq!(
            counter(&m, r#"vigil_node_sweeps_total{result="ok"} "#),
            1,
            "{m}"
        );
    }

    #[test]
    fn operations_on_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::new(
            vigil_node::MailboxStore::open(dir.path()).unwrap(),
            vigil_node::RelayConfig::default(),
        );
        assert_eq!(
            execute(&relay, &Request::Alerts, 0, None).unwrap(),
            serde_json::json!([])
        );
        assert!(execute(&relay, &Request::Status, 0, None).is_err());
        let e = execute(
            &relay,
            &Request::Ack {
                id: "abcd".into(),
                by: None,
                note: None,
            },
            0,
            None,
        )
        .unwrap_err();
        assert!(e.contains("no alert with id abcd"), "{e}");
        let s: SweepView = serde_json::from_value(
            execute(&relay, &Request::Sweep { grace_ms: 0 }, 0, None).unwrap(),
        )
        .unwrap();
        assert_eq!(s, SweepView::default());
    }
}
