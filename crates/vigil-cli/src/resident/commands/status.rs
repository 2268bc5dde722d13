//! `vigil status`: the vault at a glance.

use std::io::Write;

use serde::Serialize;
use vigil_device::{DeliveredAlert, Grant, PendingAlert, Period};
use vigil_log::{FeverEpisode, Metric};
use vigil_net::EnrolmentCode;

use super::alerts::{DeliveredJson, EpisodeJson, PendingJson, alert_kind_text, rules};
use crate::common::Error;
use crate::common::time::{Zone, format_duration, format_time, format_time_in};
use crate::resident::context::Ctx;
use crate::resident::fmt::{Num, node_hex};

/// `vigil status`.
pub(crate) fn run(ctx: &mut Ctx) -> Result<(), Error> {
    let status = Status::gather(ctx)?;
    if ctx.json {
        return ctx.print_json(&StatusJson::of(&status));
    }
    ctx.out.write_all(status.text(&ctx.zone).as_bytes())?;
    Ok(())
}

/// What `vigil status` reports, read once from the vault and the device's
/// state, then printed as text or as `--json`.
#[derive(Debug)]
struct Status {
    vault: String,
    device: String,
    now: i64,
    period: Period,
    /// Readings shown (not retracted), and retracted.
    readings: usize,
    retracted: usize,
    last_reading: Option<i64>,
    last_temperature: Option<f64>,
    last_sync: Option<i64>,
    /// The node in the device's state, if its code parses, and whether
    /// this device holds a grant for it.
    node: Option<EnrolmentCode>,
    enrolled: bool,
    grants: Vec<Grant>,
    pending: Vec<PendingAlert>,
    /// Alerts the node received, with staff's acknowledgement (issue 18).
    delivered: Vec<DeliveredAlert>,
    overdue: usize,
    conflicts: usize,
    fever: Option<FeverEpisode>,
}

impl Status {
    /// Opens the vault and reads the facts, as of `ctx.now_ms`.
    fn gather(ctx: &Ctx) -> Result<Status, Error> {
        let vault = ctx.open()?;
        let state = ctx.state();
        let now = ctx.now_ms;
        let log = vault.log();
        let all = log.readings(None, i64::MIN, i64::MAX, true);
        let visible = log.readings(None, i64::MIN, i64::MAX, false);
        let pending = vault.pending_alerts()?;
        let grants = vault.grants()?;
        let node = state
            .node
            .as_deref()
            .and_then(|c| c.parse::<EnrolmentCode>().ok());
        let enrolled = node
            .as_ref()
            .is_some_and(|n| grants.iter().any(|g| g.node == n.node_public));
        let temps = log.readings(Some(Metric::BodyTemperature), i64::MIN, i64::MAX, false);
        Ok(Status {
            vault: vault.vault_id().to_string(),
            device: vault.device_id().to_string(),
            now,
            period: vault.period(),
            readings: visible.len(),
            retracted: all.len() - visible.len(),
            last_reading: visible.iter().map(|r| r.time_ms).max(),
            last_temperature: temps.last().map(|r| r.value),
            last_sync: state.last_sync_ms,
            node,
            enrolled,
            overdue: pending.iter().filter(|p| p.overdue(now)).count(),
            pending,
            delivered: vault.delivered_alerts()?,
            conflicts: log.conflicts().len(),
            fever: rules(&grants).iter().find_map(|r| log.current_fever(r)),
            grants,
        })
    }

    /// The text output: one line per fact, the name in a 12-column field,
    /// times in `zone`.
    fn text(&self, zone: &Zone) -> String {
        let Status {
            now,
            period: p,
            overdue,
            conflicts,
            ..
        } = *self;
        let mut s = String::new();
        let mut line = |k: &str, v: String| s.push_str(&format!("{k:<12}{v}\n"));
        line(
            "Vault",
            format!("{} (this device {})", self.vault, &self.device[..8]),
        );
        line(
            "Period",
            format!(
                "{} to {}: {}",
                format_time_in(p.start_ms, zone),
                format_time_in(p.end_ms, zone),
                if now < p.start_ms {
                    format!("starts in {}", format_duration(p.start_ms - now))
                } else {
                    format!(
                        "ends in {}, then the vault is shredded",
                        format_duration(p.end_ms - now)
                    )
                }
            ),
        );
        line(
            "Readings",
            format!(
                "{}{}{}",
                self.readings,
                if self.retracted > 0 {
                    format!(" ({} retracted)", self.retracted)
                } else {
                    String::new()
                },
                self.last_reading.map_or(String::new(), |t| format!(
                    ", last at {}",
                    format_time_in(t, zone)
                ))
            ),
        );
        line(
            "Node",
            match (&self.node, self.enrolled) {
                (Some(n), true) => format!("{} (fever alerts allowed)", n.addr),
                (Some(n), false) => format!(
                    "{} (sync only: this device is not enrolled; fever alerts go out through your enrolled device)",
                    n.addr
                ),
                (None, _) => "none (run `vigil enrol <node code> --label ...`)".into(),
            },
        );
        line(
            "Last sync",
            self.last_sync.map_or("never".into(), |t| {
                format!(
                    "{} ({} ago)",
                    format_time_in(t, zone),
                    format_duration(now - t)
                )
            }),
        );
        line(
            "Alerts",
            if self.pending.is_empty() {
                "none waiting".into()
            } else if overdue > 0 {
                format!(
                    "{} waiting, {overdue} overdue: the community has not received your fever alert (run `vigil sync`)",
                    self.pending.len()
                )
            } else {
                format!(
                    "{} waiting (sent at the next `vigil sync`)",
                    self.pending.len()
                )
            },
        );
        for (i, d) in self.delivered.iter().enumerate() {
            line(
                if i == 0 { "Delivered" } else { "" },
                format!(
                    "{} (onset {}): {}",
                    alert_kind_text(d.kind),
                    format_time_in(d.onset_ms, zone),
                    d.staff_acked_ms.map_or("not yet acknowledged".into(), |t| {
                        format!("acknowledged by staff at {}", format_time_in(t, zone))
                    })
                ),
            );
        }
        line(
            "Conflicts",
            if conflicts == 0 {
                "none".into()
            } else {
                format!("{conflicts} (see `vigil conflicts`)")
            },
        );
        line(
            "Fever",
            self.fever.as_ref().map_or("none now".into(), |e| {
                format!(
                    "since {} (peak {} °C)",
                    format_time_in(e.onset_ms, zone),
                    e.peak_c
                )
            }),
        );
        s
    }
}

impl StatusJson {
    /// `status` in the `--json` shape.
    fn of(status: &Status) -> StatusJson {
        let Status { now, period: p, .. } = *status;
        StatusJson {
            conflicts: status.conflicts,
            delivered_alerts: status.delivered.iter().map(DeliveredJson::of).collect(),
            device: status.device.clone(),
            enrolled: status.enrolled,
            fever: status.fever.as_ref().map(EpisodeJson::of),
            grants: status
                .grants
                .iter()
                .map(|g| GrantJson {
                    label: g.label.clone(),
                    node_key: node_hex(&g.node),
                    valid_until: format_time(g.valid_until_ms),
                })
                .collect(),
            last_reading: status.last_reading.map(format_time),
            last_sync: status.last_sync.map(format_time),
            last_temperature: status.last_temperature.map(Num),
            node: status.node.as_ref().map(|n| n.addr.to_string()),
            now: format_time(now),
            alerts_overdue: status.overdue,
            pending_alerts: status
                .pending
                .iter()
                .map(|p| PendingJson::of(p, now))
                .collect(),
            period: PeriodLeft {
                end: format_time(p.end_ms),
                remaining_ms: (p.end_ms - now).max(0),
                start: format_time(p.start_ms),
            },
            readings: status.readings,
            retracted: status.retracted,
            vault: status.vault.clone(),
        }
    }
}

/// `vigil status --json`.
#[derive(Debug, Serialize)]
struct StatusJson {
    /// Counts read `alerts_<state>`, as in `sync` and `record` (it was
    /// `overdue_alerts` before issue 18).
    alerts_overdue: usize,
    conflicts: usize,
    /// Alerts the node received, shaped as in `vigil alerts --json`.
    delivered_alerts: Vec<DeliveredJson>,
    device: String,
    enrolled: bool,
    /// The current episode, shaped as `vigil alerts --json` lists them.
    fever: Option<EpisodeJson>,
    grants: Vec<GrantJson>,
    last_reading: Option<String>,
    last_sync: Option<String>,
    last_temperature: Option<Num>,
    node: Option<String>,
    now: String,
    pending_alerts: Vec<PendingJson>,
    period: PeriodLeft,
    readings: usize,
    retracted: usize,
    vault: String,
}

#[derive(Debug, Serialize)]
struct GrantJson {
    label: String,
    /// The node's public key, hex (`node` is its address: README, "JSON output").
    node_key: String,
    valid_until: String,
}

#[derive(Debug, Serialize)]
struct PeriodLeft {
    end: String,
    remaining_ms: i64,
    start: String,
}
