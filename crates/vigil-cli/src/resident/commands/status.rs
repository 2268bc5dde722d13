//! `vigil status`: the vault at a glance.

use std::io::Write;

use serde::Serialize;
use vigil_log::Metric;

use super::alerts::{PendingJson, rules};
use crate::common::Error;
use crate::common::time::{format_duration, format_time};
use crate::resident::context::Ctx;
use crate::resident::fmt::{Num, node_hex};

/// `vigil status`.
pub(crate) fn run(ctx: &mut Ctx) -> Result<(), Error> {
    let vault = ctx.open()?;
    let state = ctx.state();
    let now = ctx.now_ms;
    let p = vault.period();
    let log = vault.log();
    let all = log.readings(None, i64::MIN, i64::MAX, true);
    let visible = log.readings(None, i64::MIN, i64::MAX, false);
    let last = visible.iter().map(|r| r.time_ms).max();
    let pending = vault.pending_alerts()?;
    let overdue = pending.iter().filter(|p| p.overdue(now)).count();
    let grants = vault.grants()?;
    let conflicts = log.conflicts().len();
    let fever = rules(&grants).iter().find_map(|r| log.current_fever(r));
    let node = state
        .node
        .as_deref()
        .and_then(|c| c.parse::<vigil_net::EnrolmentCode>().ok());
    let enrolled = node
        .as_ref()
        .is_some_and(|n| grants.iter().any(|g| g.node == n.node_public));
    let temps = log.readings(Some(Metric::BodyTemperature), i64::MIN, i64::MAX, false);
    if ctx.json {
        return ctx.print_json(&StatusJson {
            conflicts,
            device: vault.device_id().to_string(),
            enrolled,
            fever: fever.map(|e| FeverJson {
                onset: format_time(e.onset_ms),
                peak_c: e.peak_c,
            }),
            grants: grants
                .iter()
                .map(|g| GrantJson {
                    label: g.label.clone(),
                    node: node_hex(&g.node),
                    valid_until: format_time(g.valid_until_ms),
                })
                .collect(),
            last_reading: last.map(format_time),
            last_sync: state.last_sync_ms.map(format_time),
            last_temperature: temps.last().map(|r| Num(r.value)),
            node: node.as_ref().map(|n| n.addr.to_string()),
            now: format_time(now),
            overdue_alerts: overdue,
            pending_alerts: pending.iter().map(|p| PendingJson::of(p, now)).collect(),
            period: PeriodLeft {
                end: format_time(p.end_ms),
                remaining_ms: (p.end_ms - now).max(0),
                start: format_time(p.start_ms),
            },
            readings: visible.len(),
            retracted: all.len() - visible.len(),
            vault: vault.vault_id().to_string(),
        });
    }
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<12}{v}\n"));
    line(
        "Vault",
        format!(
            "{} (this device {})",
            vault.vault_id(),
            &vault.device_id().to_string()[..8]
        ),
    );
    line(
        "Period",
        format!(
            "{} to {}: {}",
            format_time(p.start_ms),
            format_time(p.end_ms),
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
            visible.len(),
            if all.len() > visible.len() {
                format!(" ({} retracted)", all.len() - visible.len())
            } else {
                String::new()
            },
            last.map_or(String::new(), |t| format!(", last at {}", format_time(t)))
        ),
    );
    line(
        "Node",
        match (&node, enrolled) {
            (Some(n), true) => format!("{} (fever alerts allowed)", n.addr),
            (Some(n), false) => format!("{} (sync only: not enrolled from this device)", n.addr),
            (None, _) => "none (run `vigil enrol <node code> --label ...`)".into(),
        },
    );
    line(
        "Last sync",
        state.last_sync_ms.map_or("never".into(), |t| {
            format!("{} ({} ago)", format_time(t), format_duration(now - t))
        }),
    );
    line(
        "Alerts",
        if pending.is_empty() {
            "none waiting".into()
        } else if overdue > 0 {
            format!(
                "{} waiting, {overdue} overdue: the community has not received your fever alert (run `vigil sync`)",
                pending.len()
            )
        } else {
            format!("{} waiting (sent at the next `vigil sync`)", pending.len())
        },
    );
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
        fever.map_or("none now".into(), |e| {
            format!("since {} (peak {} °C)", format_time(e.onset_ms), e.peak_c)
        }),
    );
    ctx.out.write_all(s.as_bytes())?;
    Ok(())
}

/// `vigil status --json`.
#[derive(Debug, Serialize)]
struct StatusJson {
    conflicts: usize,
    device: String,
    enrolled: bool,
    fever: Option<FeverJson>,
    grants: Vec<GrantJson>,
    last_reading: Option<String>,
    last_sync: Option<String>,
    last_temperature: Option<Num>,
    node: Option<String>,
    now: String,
    overdue_alerts: usize,
    pending_alerts: Vec<PendingJson>,
    period: PeriodLeft,
    readings: usize,
    retracted: usize,
    vault: String,
}

#[derive(Debug, Serialize)]
struct FeverJson {
    onset: String,
    peak_c: f64,
}

#[derive(Debug, Serialize)]
struct GrantJson {
    label: String,
    node: String,
    valid_until: String,
}

#[derive(Debug, Serialize)]
struct PeriodLeft {
    end: String,
    remaining_ms: i64,
    start: String,
}
