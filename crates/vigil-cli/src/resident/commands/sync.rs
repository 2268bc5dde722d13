//! `vigil sync`: the log through the node, and alerts due.

use std::io::Write;

use serde::Serialize;

use crate::common::Error;
use crate::common::time::format_time;
use crate::resident::cli::*;
use crate::resident::context::{Ctx, connect};
use crate::resident::error::shredded_elsewhere;
use vigil_device::SyncFailure;

/// `vigil sync`.
pub(crate) fn run(ctx: &mut Ctx, args: &SyncArgs) -> Result<(), Error> {
    let mut vault = ctx.open()?;
    let code = ctx.node_code(args.node.as_deref())?;
    let mut conn = connect(&code)?;
    let report = match vault.sync(&mut conn) {
        Ok(r) => r,
        Err(SyncFailure::ShreddedElsewhere(t)) => {
            return Err(shredded_elsewhere(vault, &ctx.key_store(), &t, &ctx.zone));
        }
        Err(e) => return Err(Error::from(e).context("sync failed")),
    };
    let enrolled = vault.grants()?.iter().any(|g| g.node == code.node_public);
    let alerts = if enrolled {
        Some(
            vault
                .send_alerts(&mut conn, &code.node_public, ctx.now_ms)
                .map_err(|e| Error::from(e).context("synced, but sending alerts failed"))?,
        )
    } else {
        None
    };
    // Then whether staff acknowledged the alerts delivered (issue 18). An
    // older node, or one refusing, leaves it unknown inside the call; only
    // a lost connection comes back here, and it fails nothing either: the
    // log and the alerts are through.
    let staff_status = if enrolled {
        vault
            .refresh_alert_status(&mut conn, &code.node_public)
            .map_err(|e| {
                tracing::info!(error = %e, "staff acknowledgement not refreshed");
                Error::from(e).message
            })
            .err()
    } else {
        None
    };
    conn.close();
    let pending = vault.pending_alerts()?;
    let delivered_alerts = vault.delivered_alerts()?;
    let acknowledged = delivered_alerts
        .iter()
        .filter(|a| a.staff_acked_ms.is_some())
        .count();
    ctx.synced_with(&code)?;
    let delivered = alerts.as_ref().map_or(0, |a| a.delivered);
    if ctx.json {
        return ctx.print_json(&Synced {
            alerts_acknowledged_by_staff: acknowledged,
            alerts_delivered: delivered,
            alerts_pending: pending.len(),
            enrolled,
            node: code.addr.to_string(),
            pushed: report.pushed,
            received: report.received,
            received_snapshot: report.received_snapshot,
            rejected: report.rejected,
            time: format_time(ctx.now_ms),
            uploaded_snapshot: report.uploaded_snapshot,
        });
    }
    writeln!(
        ctx.out,
        "Synced with node {}: sent {} bundle(s) of changes, received {}{}.",
        code.addr,
        report.pushed,
        report.received,
        if report.received_snapshot {
            " and a snapshot"
        } else {
            ""
        }
    )?;
    if report.rejected > 0 {
        writeln!(
            ctx.out,
            "Warning: {} blob(s) from the node did not decrypt and were ignored (tampered or not ours).",
            report.rejected
        )?;
    }
    if enrolled {
        writeln!(
            ctx.out,
            "Fever alerts: {delivered} delivered, {} waiting.",
            pending.len()
        )?;
        if !delivered_alerts.is_empty() {
            writeln!(
                ctx.out,
                "Staff acknowledged {acknowledged} of the {} alert(s) the node received (`vigil alerts` shows which).",
                delivered_alerts.len()
            )?;
        }
        if let Some(e) = staff_status {
            writeln!(
                ctx.out,
                "Could not ask the node whether staff saw your alerts ({e}); the next sync asks again."
            )?;
        }
    } else if !pending.is_empty() {
        writeln!(
            ctx.out,
            "{} fever alert(s) wait for another node this device enrolled with.",
            pending.len()
        )?;
    }
    Ok(())
}

/// `vigil sync --json`.
#[derive(Debug, Serialize)]
struct Synced {
    /// Delivered alerts staff are known to have acknowledged (all of this
    /// device's, not only this sync's).
    alerts_acknowledged_by_staff: usize,
    alerts_delivered: usize,
    alerts_pending: usize,
    enrolled: bool,
    node: String,
    pushed: usize,
    received: usize,
    received_snapshot: bool,
    rejected: usize,
    time: String,
    uploaded_snapshot: bool,
}
