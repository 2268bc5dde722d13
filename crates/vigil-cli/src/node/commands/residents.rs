//! `vigil-node residents`: who granted this node their fever alerts.

use std::path::Path;

use super::{json, request};
use crate::common::Error;
use crate::common::time::{now_ms, relative, short_utc};
use crate::node::admin::{Request, ResidentView};
use crate::node::util::{out, printable, table};

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
