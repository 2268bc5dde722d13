//! The node's metrics in Prometheus text format (OpenMetrics), with the
//! prometheus-client crate.
//!
//! Counters are atomics bumped where the relay handles a request; gauges
//! (inbox, usage, store size, queue) are read from the store when scraped
//! ([`crate::Relay::encode_metrics`]). No label names a resident, a vault,
//! a grant or an address: the label values are fixed sets (request kinds,
//! results, error codes), so a scrape tells an operator how the node is
//! doing, never who did what.

use std::fmt;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use vigil_proto::{ProtoError, Request, Response};

use crate::sweep::SweepReport;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WhatLabels {
    what: &'static str,
}

/// The node's counters and gauges. Shared by every connection (the relay
/// holds it in an `Arc`); updating one is an atomic add.
pub struct Metrics {
    registry: Registry,
    connections: Counter,
    connections_open: Gauge,
    requests: Family<RequestLabels, Counter>,
    refusals: Family<ReasonLabels, Counter>,
    bundles_stored: Counter,
    bytes_stored: Counter,
    alerts_stored: Counter,
    sweeps: Family<ResultLabels, Counter>,
    swept: Family<WhatLabels, Counter>,
    webhook_deliveries: Family<ResultLabels, Counter>,
    pub(crate) alerts_in_inbox: Gauge,
    pub(crate) alerts_unacknowledged: Gauge,
    pub(crate) vaults: Gauge,
    pub(crate) blob_bytes: Gauge,
    pub(crate) store_size: Gauge,
    pub(crate) webhook_queue: Gauge,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The request's kind, as a label value.
pub(crate) fn request_kind(r: &Request) -> &'static str {
    match r {
        Request::Hello { .. } => "hello",
        Request::Register { .. } => "register",
        Request::Auth { .. } => "auth",
        Request::Push(_) => "push",
        Request::Pull { .. } => "pull",
        Request::PushSnapshot(_) => "push_snapshot",
        Request::PairOffer { .. } => "pair_offer",
        Request::PairFetch { .. } => "pair_fetch",
        Request::Grant(_) => "grant",
        Request::Alert(_) => "alert",
        Request::GrantKey => "grant_key",
        Request::Shred { .. } => "shred",
        Request::Enrol { .. } => "enrol",
        Request::AlertStatus(_) => "alert_status",
        #[allow(unreachable_patterns)] // the enum may grow
        _ => "other",
    }
}

/// The error code's name, as a label value (docs/spec.md's error codes, in
/// snake case).
pub fn reason(e: &ProtoError) -> &'static str {
    match e {
        ProtoError::UnsupportedVersion { .. } => "unsupported_version",
        ProtoError::HelloFirst => "hello_first",
        ProtoError::NotAuthenticated => "not_authenticated",
        ProtoError::Unauthorized => "unauthorized",
        ProtoError::UnknownVault => "unknown_vault",
        ProtoError::AlreadyRegistered => "already_registered",
        ProtoError::QuotaExceeded { .. } => "quota_exceeded",
        ProtoError::Conflict => "conflict",
        ProtoError::OutOfOrder { .. } => "out_of_order",
        ProtoError::NotFound => "not_found",
        ProtoError::Malformed(_) => "malformed",
        ProtoError::Internal(_) => "internal",
        ProtoError::UnknownGrant => "unknown_grant",
        ProtoError::GrantRevoked => "grant_revoked",
        ProtoError::BadGrant => "bad_grant",
        ProtoError::ForgedAlert => "forged_alert",
        ProtoError::OutsideWindow => "outside_window",
        ProtoError::NoReceipts => "no_receipts",
        ProtoError::PeriodOver => "period_over",
        ProtoError::SlotTaken => "slot_taken",
        ProtoError::VaultShredded { .. } => "vault_shredded",
        ProtoError::NodeFull { .. } => "node_full",
        ProtoError::ExpiryTooFar { .. } => "expiry_too_far",
        ProtoError::TooManyEntries { .. } => "too_many_entries",
        ProtoError::TicketRequired => "ticket_required",
        ProtoError::TicketUnknown => "ticket_unknown",
        ProtoError::TicketUsed => "ticket_used",
        ProtoError::TicketExpired => "ticket_expired",
        ProtoError::TicketRevoked => "ticket_revoked",
        ProtoError::AlreadyEnrolled => "already_enrolled",
        _ => "other",
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    /// Every metric registered, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vigil_node");
        let m = Metrics {
            registry: Registry::default(),
            connections: Counter::default(),
            connections_open: Gauge::default(),
            requests: Family::default(),
            refusals: Family::default(),
            bundles_stored: Counter::default(),
            bytes_stored: Counter::default(),
            alerts_stored: Counter::default(),
            sweeps: Family::default(),
            swept: Family::default(),
            webhook_deliveries: Family::default(),
            alerts_in_inbox: Gauge::default(),
            alerts_unacknowledged: Gauge::default(),
            vaults: Gauge::default(),
            blob_bytes: Gauge::default(),
            store_size: Gauge::default(),
            webhook_queue: Gauge::default(),
        };
        let r = &mut registry;
        r.register("connections", "Connections opened", m.connections.clone());
        r.register(
            "connections_open",
            "Connections open now",
            m.connections_open.clone(),
        );
        r.register(
            "requests",
            "Requests handled, by kind and result (ok, refused, failed)",
            m.requests.clone(),
        );
        r.register(
            "refusals",
            "Requests refused, by the error code sent",
            m.refusals.clone(),
        );
        r.register(
            "bundles_stored",
            "Bundles acknowledged to pushes (a resend after a lost ack counts again)",
            m.bundles_stored.clone(),
        );
        r.register(
            "bytes_stored",
            "Bytes of bundles and snapshots acknowledged to pushes",
            m.bytes_stored.clone(),
        );
        r.register(
            "alerts_stored",
            "New alerts stored",
            m.alerts_stored.clone(),
        );
        r.register(
            "sweeps",
            "Sweeps run, by result (ok, failed)",
            m.sweeps.clone(),
        );
        r.register("swept", "Items deleted by sweeps, by what", m.swept.clone());
        r.register(
            "webhook_deliveries",
            "Webhook attempts, by result (delivered, retry, gave_up)",
            m.webhook_deliveries.clone(),
        );
        r.register(
            "alerts_in_inbox",
            "Alerts in the inbox",
            m.alerts_in_inbox.clone(),
        );
        r.register(
            "alerts_unacknowledged",
            "Alerts no staff member has acknowledged",
            m.alerts_unacknowledged.clone(),
        );
        r.register("vaults", "Mailboxes held", m.vaults.clone());
        r.register(
            "blob_bytes",
            "Bytes of blobs held, all vaults together",
            m.blob_bytes.clone(),
        );
        r.register(
            "store_size_bytes",
            "The store's size on disk",
            m.store_size.clone(),
        );
        r.register(
            "webhook_queue",
            "Webhook deliveries waiting",
            m.webhook_queue.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A connection opened.
    pub fn connection_opened(&self) {
        self.connections.inc();
        self.connections_open.inc();
    }

    /// A connection closed.
    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// A request of `kind` got `resp`.
    pub(crate) fn request(&self, kind: &'static str, resp: &Response) {
        let result = match resp {
            Response::Error(ProtoError::Internal(_)) => "failed",
            Response::Error(_) => "refused",
            _ => "ok",
        };
        self.requests
            .get_or_create(&RequestLabels { kind, result })
            .inc();
        if let Response::Error(e) = resp {
            self.refusals
                .get_or_create(&ReasonLabels { reason: reason(e) })
                .inc();
        }
    }

    /// A push stored `bytes` (a bundle when `bundle`, else a snapshot).
    pub(crate) fn stored(&self, bundle: bool, bytes: usize) {
        if bundle {
            self.bundles_stored.inc();
        }
        self.bytes_stored
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    /// A new alert was stored.
    pub(crate) fn alert_stored(&self) {
        self.alerts_stored.inc();
    }

    /// A sweep ended.
    pub(crate) fn sweep(&self, r: Option<&SweepReport>) {
        let result = if r.is_some() { "ok" } else { "failed" };
        self.sweeps.get_or_create(&ResultLabels { result }).inc();
        if let Some(r) = r {
            for (what, n) in [
                ("mailboxes", r.mailboxes),
                ("blobs", r.blobs),
                ("bytes", r.bytes),
                ("grants", r.grants),
                ("alerts", r.alerts),
                ("pairings", r.pairings),
                ("grant_keys", r.grant_keys),
                ("shred_markers", r.shred_markers),
                ("tickets", r.tickets),
            ] {
                self.swept.get_or_create(&WhatLabels { what }).inc_by(n);
            }
        }
    }

    /// A webhook attempt ended: `delivered`, `retry` or `gave_up`.
    pub fn webhook_attempt(&self, result: &'static str) {
        self.webhook_deliveries
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub(crate) fn set(g: &Gauge, n: u64) {
        g.set(gauge(n));
    }

    /// Everything in Prometheus text format (OpenMetrics 1.0, which
    /// Prometheus scrapes), ending in `# EOF`. Gauges are as last refreshed:
    /// [`crate::Relay::encode_metrics`] refreshes them first.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
