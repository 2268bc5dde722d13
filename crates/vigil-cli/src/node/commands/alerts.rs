//! `vigil-node alerts` and `vigil-node alerts ack ID`.

use std::path::Path;

use super::{json, level, request};
use crate::common::Error;
use crate::common::time::{now_ms, relative, short_utc};
use crate::node::admin::{self, AckView, AlertView, Request};
use crate::node::util::{LABEL_COLUMN, cut, out, printable, table};

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
                match (a.acked_ms, a.monitoring_ended_ms) {
                    (None, None) => "NEW".into(),
                    (None, Some(t)) if a.resident_revoked => {
                        format!("NEW, resident revoked {}", short_utc(t))
                    }
                    (None, Some(t)) => {
                        format!("NEW, resident ended monitoring {}", short_utc(t))
                    }
                    (Some(t), _) => match &a.acked_by {
                        Some(by) => format!("acked {} by {}", short_utc(t), cut(by, 20)),
                        None => format!("acked {}", short_utc(t)),
                    },
                },
                a.what.clone(),
                short_utc(a.onset_ms),
                level(a.level).into(),
                format!(
                    "{} ({})",
                    short_utc(a.received_ms),
                    relative(a.received_ms, now)
                ),
                cut(&a.label, LABEL_COLUMN),
            ]
        })
        .collect();
    let new = list.iter().filter(|a| a.acked_ms.is_none()).count();
    // Notes below the table, one line each, so the table keeps its width.
    let notes: Vec<String> = list
        .iter()
        .filter_map(|a| {
            let note = a.ack_note.as_deref()?;
            let by = a.acked_by.as_deref().unwrap_or("?");
            Some(format!("  {}  {}: {}", a.id, cut(by, 20), cut(note, 100)))
        })
        .collect();
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
    if !notes.is_empty() {
        out(&format!("notes:\n{}", notes.join("\n")))?;
    }
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

/// `vigil-node alerts ack ID --by NAME [--note TEXT]`.
pub(crate) fn ack(
    data: &Path,
    id: &str,
    by: &str,
    note: Option<&str>,
    as_json: bool,
) -> Result<(), Error> {
    let id = admin::check_id(id).map_err(Error::usage)?;
    // Checked here too, so bad input is exit 2 before anything is asked.
    let n = vigil_node::AckNote::new(by, note).map_err(Error::usage)?;
    let v: AckView = request(
        data,
        &Request::Ack {
            id,
            by: Some(n.by),
            note: n.note,
        },
    )?;
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
    let who = a
        .acked_by
        .as_deref()
        .map(|b| format!(" by {}", printable(b)))
        .unwrap_or_default();
    if v.already {
        out(&format!("already acknowledged at {when} UTC{who}: {what}"))
    } else {
        out(&format!("acknowledged {what}{who}"))?;
        if a.monitoring_ended_ms.is_some() {
            out("The resident had ended monitoring: the alert is now deleted from the node.")?;
        }
        Ok(())
    }
}
