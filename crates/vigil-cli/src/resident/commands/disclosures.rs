//! `vigil disclosures`: everything that left this device.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use vigil_device::Disclosure;

use crate::common::Error;
use crate::common::text::printable;
use crate::common::time::format_time;
use crate::resident::context::Ctx;
use crate::resident::fmt::{alert_kind, node_hex, rule_text, table};

/// `vigil disclosures`.
pub(crate) fn run(ctx: &mut Ctx) -> Result<(), Error> {
    let vault = ctx.open()?;
    let all = vault.disclosures()?;
    let ends = episode_ends(&vault)?;
    // An "ended" alert names its episode by the onset; the row shows when
    // the episode ended, which is what the alert told the node.
    let ended = |kind: u8, onset_ms: i64| {
        (kind == vigil_proto::alert::ALERT_END)
            .then(|| ends.get(&onset_ms).copied())
            .flatten()
    };
    if ctx.json {
        let v: Vec<DisclosureJson> = all.iter().map(|d| DisclosureJson::of(d, &ended)).collect();
        return ctx.print_json(&v);
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
                ctx.time(*at_ms),
                "grant".into(),
                format!(
                    "fever-alert grant to node {}…: label \"{}\", rule {}",
                    &node_hex(node)[..16],
                    printable(label),
                    rule_text(rule)
                ),
            ],
            Disclosure::AlertSent {
                at_ms,
                onset_ms,
                kind,
                level,
            } => vec![
                ctx.time(*at_ms),
                "alert sent".into(),
                match ended(*kind, *onset_ms) {
                    Some(end) => format!(
                        "fever episode ended at {} (onset {}, 10-minute slot), level {level}",
                        ctx.time(end),
                        ctx.time(*onset_ms)
                    ),
                    None => format!(
                        "fever episode {}, onset {} (10-minute slot), level {level}",
                        alert_kind(*kind),
                        ctx.time(*onset_ms)
                    ),
                },
            ],
            Disclosure::AlertAcknowledged {
                at_ms,
                onset_ms,
                kind,
            } => vec![
                ctx.time(*at_ms),
                "alert received".into(),
                match ended(*kind, *onset_ms) {
                    Some(end) => format!(
                        "the node acknowledged the alert (episode ended at {}, onset {})",
                        ctx.time(end),
                        ctx.time(*onset_ms)
                    ),
                    None => format!(
                        "the node acknowledged the alert (episode {}, onset {})",
                        alert_kind(*kind),
                        ctx.time(*onset_ms)
                    ),
                },
            ],
            Disclosure::Pairing { at_ms, joiner } => vec![
                ctx.time(*at_ms),
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

/// One disclosure in `vigil disclosures --json`: `time` and `kind`, and the
/// fields of that kind; the other kinds' fields are null.
#[derive(Debug, Default, Serialize)]
struct DisclosureJson {
    confirm_count: Option<usize>,
    confirm_window_ms: Option<i64>,
    /// The joining device's pairing key, hex (`node` names an address elsewhere).
    device_key: Option<String>,
    ended: Option<String>,
    episode: Option<&'static str>,
    kind: &'static str,
    label: Option<String>,
    level: Option<u8>,
    /// The node's public key, hex.
    node_key: Option<String>,
    onset: Option<String>,
    recovery_ms: Option<i64>,
    threshold_c: Option<f64>,
    time: String,
}

impl DisclosureJson {
    fn of(d: &Disclosure, ended: &dyn Fn(u8, i64) -> Option<i64>) -> Self {
        match d {
            Disclosure::Grant {
                at_ms,
                node,
                rule,
                label,
            } => DisclosureJson {
                confirm_count: Some(rule.confirm_count),
                confirm_window_ms: Some(rule.confirm_window_ms),
                kind: "grant",
                label: Some(label.clone()),
                node_key: Some(node_hex(node)),
                recovery_ms: Some(rule.recovery_ms),
                threshold_c: Some(rule.threshold_c),
                time: format_time(*at_ms),
                ..Default::default()
            },
            Disclosure::AlertSent {
                at_ms,
                onset_ms,
                kind,
                level,
            } => DisclosureJson {
                ended: ended(*kind, *onset_ms).map(format_time),
                episode: Some(alert_kind(*kind)),
                kind: "alert-sent",
                level: Some(*level),
                onset: Some(format_time(*onset_ms)),
                time: format_time(*at_ms),
                ..Default::default()
            },
            Disclosure::AlertAcknowledged {
                at_ms,
                onset_ms,
                kind,
            } => DisclosureJson {
                ended: ended(*kind, *onset_ms).map(format_time),
                episode: Some(alert_kind(*kind)),
                kind: "alert-acknowledged",
                onset: Some(format_time(*onset_ms)),
                time: format_time(*at_ms),
                ..Default::default()
            },
            Disclosure::Pairing { at_ms, joiner } => DisclosureJson {
                device_key: Some(node_hex(joiner)),
                kind: "pairing",
                time: format_time(*at_ms),
                ..Default::default()
            },
        }
    }
}

/// When each ended fever episode of the log ended, by its rounded onset
/// (how alerts name an episode), under every rule this vault granted.
fn episode_ends(vault: &vigil_device::Vault) -> Result<BTreeMap<i64, i64>, Error> {
    let mut ends = BTreeMap::new();
    for rule in super::alerts::rules(&vault.grants()?) {
        for e in vault.log().fever_episodes_including_retracted(&rule) {
            if let Some(end) = e.end_ms {
                ends.entry(vigil_proto::alert::round_onset(e.onset_ms))
                    .or_insert(end);
            }
        }
    }
    Ok(ends)
}
