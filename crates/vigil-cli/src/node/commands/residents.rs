//! `vigil-node residents`: staff register residents (`add`: a one-time
//! enrolment ticket), list them with their tickets' state, and revoke them.

use std::net::SocketAddr;
use std::path::Path;

use serde::Serialize;
use vigil_crypto::Zeroizing;

use super::{json, request, request_with};
use crate::common::Error;
use crate::common::time::{now_ms, parse_rfc3339, relative, short_utc};
use crate::node::admin::{IssuedView, Request, ResidentView, RevokeView};
use crate::node::code::{current_code, qr_text, ticket_code};
use crate::node::config::Settings;
use crate::node::util::{LABEL_COLUMN, cut, out, printable, table};

/// How long a ticket's period lasts when staff do not say: two weeks, so a
/// seven-day period started within a week of registering fits.
const DEFAULT_PERIOD: &str = "14d";

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
    let when = |t: Option<i64>| {
        t.map_or("-".to_owned(), |t| {
            format!("{} ({})", short_utc(t), relative(t, now))
        })
    };
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.status.clone(),
                cut(&r.label, LABEL_COLUMN),
                when(Some(r.period_end_ms)),
                when(r.last_contact_ms),
                format!("{} ({} new)", r.alerts, r.unacked),
            ]
        })
        .collect();
    out(&table(
        &[
            "ID",
            "STATUS",
            "RESIDENT",
            "PERIOD END (UTC)",
            "LAST CONTACT (UTC)",
            "ALERTS",
        ],
        &rows,
    ))
}

/// What staff asked for with `residents add`.
#[derive(Debug)]
pub(crate) struct NewResident<'a> {
    /// The label they typed.
    pub(crate) label: &'a str,
    /// `--period-end`: an RFC 3339 time or a duration from now.
    pub(crate) period_end: Option<&'a str>,
    /// `--addr`.
    pub(crate) addr: Option<SocketAddr>,
    /// `--no-qr`.
    pub(crate) no_qr: bool,
    /// `--json`.
    pub(crate) json: bool,
}

/// `--period-end`: a time, or a duration from `now_ms`.
fn period_end(s: &str, now_ms: i64) -> Result<i64, Error> {
    if let Some(t) = parse_rfc3339(s) {
        return Ok(t);
    }
    let d = crate::node::cli::duration(s).map_err(|_| {
        Error::usage(format!(
            "--period-end `{s}` is neither an RFC 3339 time (2026-12-10T00:00:00Z) nor a duration (14d, at most a year)"
        ))
    })?;
    Ok(now_ms.saturating_add(crate::common::time::ms(d)))
}

/// `vigil-node residents add --json`.
#[derive(Serialize)]
struct Added<'a> {
    id: &'a str,
    label: &'a str,
    period_end_ms: i64,
    period_end: &'a str,
    ticket: &'a str,
    qr: String,
}

/// `vigil-node residents add`.
pub(crate) fn add_resident(settings: &Settings, r: &NewResident<'_>) -> Result<(), Error> {
    let data = settings.data_dir()?;
    let now = now_ms();
    // Checked here too, so bad input is exit 2 before anything is asked.
    vigil_node::normalize_label(r.label).map_err(|e| Error::usage(e.to_string()))?;
    let end = period_end(r.period_end.unwrap_or(DEFAULT_PERIOD), now)?;
    if end <= now {
        return Err(Error::usage(format!(
            "--period-end {} is not in the future",
            short_utc(end)
        )));
    }
    // The code first: no ticket is issued that could not be printed.
    let (code, _) = current_code(data, r.addr)?;
    let mut issued: IssuedView = request_with(
        data,
        settings.relay,
        &Request::ResidentsAdd {
            label: r.label.to_owned(),
            period_end_ms: end,
        },
    )?;
    let ticket = ticket_code(&code, &issued).map_err(Error::failed);
    // The answer's copy of the secret is wiped when this returns.
    let _secret = Zeroizing::new(std::mem::take(&mut issued.secret));
    let text = Zeroizing::new(ticket?.to_string());
    let qr = qr_text(&text).map_err(Error::failed)?;
    if r.json {
        return json(&Added {
            id: &issued.id,
            label: &issued.label,
            period_end_ms: issued.period_end_ms,
            period_end: &issued.period_end,
            ticket: &text,
            qr,
        });
    }
    if !r.no_qr {
        out(&qr)?;
    }
    out(&format!(
        "registered {} until {} UTC (ticket {})\nenrolment ticket: {}\n\
         Hand this to the resident (their device: `vigil enrol <ticket>`). It enrols one vault, once; \
         it is shown only now: the node keeps a hash of it.",
        printable(&issued.label),
        short_utc(issued.period_end_ms),
        &issued.id[..12],
        text.as_str()
    ))
}

/// `vigil-node residents revoke ID`.
pub(crate) fn revoke_resident(data: &Path, id: &str, as_json: bool) -> Result<(), Error> {
    let id = crate::node::admin::check_ticket_id(id).map_err(Error::usage)?;
    let v: RevokeView = request(data, &Request::ResidentsRevoke { id })?;
    if as_json {
        return json(&v);
    }
    let who = format!("{} ({})", v.resident.id, printable(&v.resident.label));
    if v.already {
        return out(&format!("already revoked: {who}"));
    }
    if v.grants_ended == 0 {
        return out(&format!(
            "revoked {who}: the ticket can no longer enrol anyone"
        ));
    }
    out(&format!(
        "revoked {who}: their grant ended (its key destroyed, their alerts refused from now on); \
         {} acknowledged alert(s) deleted, {} not yet acknowledged kept until staff do",
        v.alerts_deleted, v.alerts_kept
    ))
}
