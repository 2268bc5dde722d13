//! The operator commands over the store: `alerts`, `alerts ack`,
//! `residents`, `sweep`. Each runs one admin request (through the serving
//! node or directly) and prints text or JSON.

use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::admin::{self, AckView, AlertView, Request, ResidentView, SweepView};
use super::channel;
use super::error::Error;
use super::util::{bytes, ms, now_ms, out, printable, relative, short_utc, table};

fn request<T: DeserializeOwned>(data: &Path, req: &Request) -> Result<T, Error> {
    let (v, _) = channel::run(data, req)?;
    serde_json::from_value(v).map_err(|e| Error::failed(format!("unexpected answer: {e}")))
}

fn json<T: serde::Serialize>(v: &T) -> Result<(), Error> {
    out(&serde_json::to_string_pretty(v).map_err(|e| Error::failed(e.to_string()))?)
}

fn level(l: u8) -> &'static str {
    match l {
        1 => "1 (fever)",
        2 => "2 (≥38.0°C)",
        3 => "3 (≥39.0°C)",
        _ => "?",
    }
}

/// `vigil-node alerts`.
pub(crate) fn alerts(data: &Path, unacked: bool, as_json: bool) -> Result<(), Error> {
    let mut list: Vec<AlertView> = request(data, &Request::Alerts)?;
    if unacked {
        list.retain(|a| a.acked_ms.is_none());
    }
    if as_json {
        return json(&list);
    }
    if list.is_empty() {
        return out(if unacked {
            "no unacknowledged alerts"
        } else {
            "no alerts"
        });
    }
    let now = now_ms();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                match a.acked_ms {
                    None => "NEW".into(),
                    Some(t) => format!("acked {}", short_utc(t)),
                },
                a.what.clone(),
                short_utc(a.onset_ms),
                level(a.level).into(),
                format!(
                    "{} ({})",
                    short_utc(a.received_ms),
                    relative(a.received_ms, now)
                ),
                printable(&a.label),
            ]
        })
        .collect();
    let new = list.iter().filter(|a| a.acked_ms.is_none()).count();
    out(&table(
        &[
            "ID",
            "STATUS",
            "ALERT",
            "ONSET (UTC)",
            "LEVEL",
            "RECEIVED (UTC)",
            "RESIDENT",
        ],
        &rows,
    ))?;
    out(&format!(
        "{} alert{}, {new} not acknowledged{}",
        list.len(),
        if list.len() == 1 { "" } else { "s" },
        if new > 0 {
            " (vigil-node alerts ack ID)"
        } else {
            ""
        }
    ))
}

/// `vigil-node alerts ack ID`.
pub(crate) fn ack(data: &Path, id: &str, as_json: bool) -> Result<(), Error> {
    let id = admin::check_id(id).map_err(Error::usage)?;
    let v: AckView = request(data, &Request::Ack { id })?;
    if as_json {
        return json(&v);
    }
    let a = &v.alert;
    let when = a.acked_ms.map(short_utc).unwrap_or_default();
    let what = format!(
        "{} ({}, {}, onset {} UTC)",
        a.id,
        a.what,
        printable(&a.label),
        short_utc(a.onset_ms)
    );
    if v.already {
        out(&format!("already acknowledged at {when} UTC: {what}"))
    } else {
        out(&format!("acknowledged {what}"))
    }
}

/// `vigil-node residents`.
pub(crate) fn residents(data: &Path, all: bool, as_json: bool) -> Result<(), Error> {
    let list: Vec<ResidentView> = request(data, &Request::Residents { all })?;
    if as_json {
        return json(&list);
    }
    if list.is_empty() {
        return out(if all {
            "no residents"
        } else {
            "no active residents"
        });
    }
    let now = now_ms();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            let mut row = vec![
                r.id.clone(),
                printable(&r.label),
                format!(
                    "{} ({})",
                    short_utc(r.period_end_ms),
                    relative(r.period_end_ms, now)
                ),
                format!(
                    "{} ({})",
                    short_utc(r.last_contact_ms),
                    relative(r.last_contact_ms, now)
                ),
                format!("{} ({} new)", r.alerts, r.unacked),
            ];
            if all {
                row.insert(1, r.status.clone());
            }
            row
        })
        .collect();
    let mut header = vec![
        "ID",
        "RESIDENT",
        "PERIOD END (UTC)",
        "LAST CONTACT (UTC)",
        "ALERTS",
    ];
    if all {
        header.insert(1, "STATUS");
    }
    out(&table(&header, &rows))
}

/// `vigil-node sweep`.
pub(crate) fn sweep(data: &Path, grace: Duration, as_json: bool) -> Result<(), Error> {
    let r: SweepView = request(
        data,
        &Request::Sweep {
            grace_ms: ms(grace),
        },
    )?;
    if as_json {
        return json(&r);
    }
    if r == SweepView::default() {
        return out("nothing to sweep");
    }
    let n = |count: u64, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    out(&format!(
        "swept {} ({}, {}), {}, {}, {}, {}",
        n(r.mailboxes, "vault", "vaults"),
        n(r.blobs, "blob", "blobs"),
        bytes(r.bytes),
        n(r.grants, "grant", "grants"),
        n(r.alerts, "alert", "alerts"),
        n(r.pairings, "pairing offer", "pairing offers"),
        n(r.grant_keys, "unused grant key", "unused grant keys"),
    ))
}
