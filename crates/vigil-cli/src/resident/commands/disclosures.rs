//! `vigil disclosures`: everything that left this device.

use std::io::Write;

use serde_json::{Value, json};
use vigil_device::Disclosure;

use crate::common::Error;
use crate::common::time::format_time;
use crate::resident::context::Ctx;
use crate::resident::fmt::*;

/// `vigil disclosures`.
pub(crate) fn run(ctx: &mut Ctx) -> Result<(), Error> {
    let vault = ctx.open()?;
    let all = vault.disclosures()?;
    if ctx.json {
        let v: Vec<Value> = all
            .iter()
            .map(|d| match d {
                Disclosure::Grant {
                    at_ms,
                    node,
                    rule,
                    label,
                } => json!({
                    "time": format_time(*at_ms),
                    "kind": "grant",
                    "node": node_hex(node),
                    "label": label,
                    "threshold_c": rule.threshold_c,
                    "confirm_count": rule.confirm_count,
                    "confirm_window_ms": rule.confirm_window_ms,
                    "recovery_ms": rule.recovery_ms,
                }),
                Disclosure::AlertSent {
                    at_ms,
                    onset_ms,
                    kind,
                    level,
                } => json!({
                    "time": format_time(*at_ms),
                    "kind": "alert-sent",
                    "episode": alert_kind(*kind),
                    "onset": format_time(*onset_ms),
                    "level": level,
                }),
                Disclosure::AlertAcknowledged {
                    at_ms,
                    onset_ms,
                    kind,
                } => json!({
                    "time": format_time(*at_ms),
                    "kind": "alert-acknowledged",
                    "episode": alert_kind(*kind),
                    "onset": format_time(*onset_ms),
                }),
                Disclosure::Pairing { at_ms, joiner } => json!({
                    "time": format_time(*at_ms),
                    "kind": "pairing",
                    "device": node_hex(joiner),
                }),
            })
            .collect();
        return ctx.print_json(&Value::Array(v));
    }
    if all.is_empty() {
        writeln!(
            ctx.out,
            "Nothing has left this device except your encrypted log."
        )?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|d| match d {
            Disclosure::Grant {
                at_ms,
                node,
                rule,
                label,
            } => vec![
                format_time(*at_ms),
                "grant".into(),
                format!(
                    "fever-alert grant to node {}…: label {label:?}, rule {}",
                    &node_hex(node)[..16],
                    rule_text(rule)
                ),
            ],
            Disclosure::AlertSent {
                at_ms,
                onset_ms,
                kind,
                level,
            } => vec![
                format_time(*at_ms),
                "alert sent".into(),
                format!(
                    "fever episode {}, onset {} (10-minute slot), level {level}",
                    alert_kind(*kind),
                    format_time(*onset_ms)
                ),
            ],
            Disclosure::AlertAcknowledged {
                at_ms,
                onset_ms,
                kind,
            } => vec![
                format_time(*at_ms),
                "alert received".into(),
                format!(
                    "the node acknowledged the alert (episode {}, onset {})",
                    alert_kind(*kind),
                    format_time(*onset_ms)
                ),
            ],
            Disclosure::Pairing { at_ms, joiner } => vec![
                format_time(*at_ms),
                "pairing".into(),
                format!(
                    "the vault's key, wrapped to new device {}…",
                    &node_hex(joiner)[..16]
                ),
            ],
        })
        .collect();
    ctx.out
        .write_all(table(&["TIME", "WHAT", "DETAIL"], &rows, &[]).as_bytes())?;
    writeln!(
        ctx.out,
        "Besides these, only your log left this device, encrypted: the node cannot read it."
    )?;
    Ok(())
}
