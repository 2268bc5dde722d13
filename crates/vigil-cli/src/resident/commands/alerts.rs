//! `vigil alerts`: alerts waiting for the node, fever episodes.

use std::io::Write;

use serde::Serialize;
use vigil_device::{DeliveredAlert, Grant, PendingAlert};
use vigil_log::{FeverEpisode, FeverRule};

use crate::common::Error;
use crate::common::time::format_time;
use crate::resident::context::Ctx;
use crate::resident::fmt::{alert_kind, rule_text, table};

/// An alert waiting for the node's acknowledgement, in `--json` output.
#[derive(Debug, Serialize)]
pub(crate) struct PendingJson {
    episode: String,
    first_sent: Option<String>,
    grant: String,
    kind: &'static str,
    overdue: bool,
    queued: String,
}

impl PendingJson {
    /// `p` as of `now_ms`.
    pub(crate) fn of(p: &PendingAlert, now_ms: i64) -> Self {
        PendingJson {
            episode: hex::encode(p.episode),
            first_sent: p.first_sent_ms.map(format_time),
            grant: hex::encode(p.grant_id),
            kind: alert_kind(p.kind),
            overdue: p.overdue(now_ms),
            queued: format_time(p.queued_ms),
        }
    }
}

/// An alert the node confirmed, in `--json` output, with staff's
/// acknowledgement as the node last reported it (never who).
#[derive(Debug, Serialize)]
pub(crate) struct DeliveredJson {
    /// When staff acknowledged it (RFC 3339, UTC), or null: not
    /// acknowledged, or the node has not said.
    acknowledged_by_staff: Option<String>,
    delivered: String,
    episode: String,
    grant: String,
    kind: &'static str,
    level: u8,
    onset: String,
}

impl DeliveredJson {
    /// The delivered alert `d`.
    pub(crate) fn of(d: &DeliveredAlert) -> Self {
        DeliveredJson {
            acknowledged_by_staff: d.staff_acked_ms.map(format_time),
            delivered: format_time(d.delivered_ms),
            episode: hex::encode(d.episode),
            grant: hex::encode(d.grant_id),
            kind: alert_kind(d.kind),
            level: d.level,
            onset: format_time(d.onset_ms),
        }
    }
}

/// What the resident reads about staff and a delivered alert, in `zone`.
pub(crate) fn staff_text(d: &DeliveredAlert, ctx: &Ctx) -> String {
    d.staff_acked_ms.map_or("not yet acknowledged".into(), |t| {
        format!("acknowledged by staff at {}", ctx.time(t))
    })
}

/// `vigil alerts --json`.
#[derive(Debug, Serialize)]
struct AlertsJson {
    /// Alerts the node received, oldest onset first (issue 18).
    delivered_alerts: Vec<DeliveredJson>,
    enrolled: bool,
    episodes: Vec<EpisodeJson>,
    /// Named as in `vigil status --json` (it was `pending` before issue 18).
    pending_alerts: Vec<PendingJson>,
}

/// A fever episode in `--json` output (`alerts` lists them, `status` shows
/// the current one): `end` is null while it lasts.
#[derive(Debug, Serialize)]
pub(crate) struct EpisodeJson {
    end: Option<String>,
    onset: String,
    peak_c: f64,
}

impl EpisodeJson {
    /// The episode `e`.
    pub(crate) fn of(e: &FeverEpisode) -> Self {
        EpisodeJson {
            end: e.end_ms.map(format_time),
            onset: format_time(e.onset_ms),
            peak_c: e.peak_c,
        }
    }
}

/// The rules the device evaluates: each grant's, or the default if none.
pub(crate) fn rules(grants: &[Grant]) -> Vec<FeverRule> {
    let mut r: Vec<FeverRule> = grants.iter().map(|g| g.rule).collect();
    if r.is_empty() {
        r.push(FeverRule::default());
    }
    r.dedup();
    r
}

/// What a device without a grant says about alerts, given the node it
/// remembers (its state's enrolment code, if any).
///
/// A node keeps a vault's mailbox only once a device of the vault enrolled
/// there with a staff ticket (docs/spec.md §15: `Register` without one is
/// refused), and `vigil enrol` gives the grant in the same step. So a device
/// that knows a node (it synced or paired through it) without a grant of
/// its own is a paired device of an enrolled vault: its readings reach the
/// enrolled device at their syncs, which evaluates the merged log and sends
/// the alert. Only a device that knows no node sends nothing, ever.
pub(crate) fn not_enrolled(node: Option<&str>) -> String {
    match node.and_then(|c| c.parse::<vigil_net::EnrolmentCode>().ok()) {
        Some(code) => format!(
            "This device is not enrolled, so it sends no alert itself: fever alerts go out through \
your enrolled device (enrolled with node {}), once it has synced after this one \
(`vigil sync` or `vigil watch` on both).",
            code.addr
        ),
        None => {
            "Not enrolled with a node: no alert is ever sent (`vigil enrol` to allow them).".into()
        }
    }
}

/// `vigil alerts`.
pub(crate) fn run(ctx: &mut Ctx) -> Result<(), Error> {
    let vault = ctx.open()?;
    let pending = vault.pending_alerts()?;
    let delivered = vault.delivered_alerts()?;
    let grants = vault.grants()?;
    let rule = rules(&grants)[0];
    let episodes = vault.log().fever_episodes(&rule);
    if ctx.json {
        return ctx.print_json(&AlertsJson {
            delivered_alerts: delivered.iter().map(DeliveredJson::of).collect(),
            enrolled: !grants.is_empty(),
            episodes: episodes.iter().map(EpisodeJson::of).collect(),
            pending_alerts: pending
                .iter()
                .map(|p| PendingJson::of(p, ctx.now_ms))
                .collect(),
        });
    }
    if grants.is_empty() {
        let text = not_enrolled(ctx.state().node.as_deref());
        writeln!(ctx.out, "{text}")?;
    }
    if pending.is_empty() {
        writeln!(ctx.out, "No alert waiting for the node.")?;
    } else {
        let rows: Vec<Vec<String>> = pending
            .iter()
            .map(|p| {
                vec![
                    alert_kind(p.kind).into(),
                    ctx.time(p.queued_ms),
                    p.first_sent_ms.map_or("not yet".into(), |t| ctx.time(t)),
                    if p.overdue(ctx.now_ms) {
                        "OVERDUE: the community has not received it".into()
                    } else {
                        "waiting".into()
                    },
                ]
            })
            .collect();
        writeln!(ctx.out, "Alerts waiting for the node's acknowledgement:")?;
        ctx.out.write_all(
            table(&["EPISODE", "QUEUED", "FIRST SENT", "STATE"], &rows, &[]).as_bytes(),
        )?;
    }
    if !delivered.is_empty() {
        let rows: Vec<Vec<String>> = delivered
            .iter()
            .map(|d| {
                vec![
                    alert_kind(d.kind).into(),
                    ctx.time(d.onset_ms),
                    ctx.time(d.delivered_ms),
                    staff_text(d, ctx),
                ]
            })
            .collect();
        writeln!(ctx.out, "Alerts the node received:")?;
        ctx.out
            .write_all(table(&["EPISODE", "ONSET", "DELIVERED", "STAFF"], &rows, &[]).as_bytes())?;
    }
    if episodes.is_empty() {
        writeln!(
            ctx.out,
            "No fever episode in the log ({}).",
            rule_text(&rule)
        )?;
    } else {
        writeln!(ctx.out, "Fever episodes ({}):", rule_text(&rule))?;
        for e in &episodes {
            writeln!(
                ctx.out,
                "  onset {}, {}, peak {} °C",
                ctx.time(e.onset_ms),
                e.end_ms
                    .map_or("ongoing".to_owned(), |t| format!("ended {}", ctx.time(t))),
                e.peak_c
            )?;
        }
    }
    Ok(())
}

/// An alert's kind as a phrase ("fever started").
pub(crate) fn alert_kind_text(kind: u8) -> String {
    format!("fever {}", alert_kind(kind))
}
