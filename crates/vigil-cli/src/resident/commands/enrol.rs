//! `vigil enrol`: the fever-alert grant to a community node.

use std::io::Write;

use serde::Serialize;
use vigil_crypto::Zeroizing;
use vigil_log::{FeverRule, RuleError};
use vigil_net::TicketCode;

use crate::common::input::text_arg;
use crate::common::text::printable;
use crate::common::time::{format_duration, format_time};
use crate::common::{Error, one_line};
use crate::resident::cli::*;
use crate::resident::context::{Ctx, connect};

/// `vigil enrol`.
pub(crate) fn run(ctx: &mut Ctx, args: &EnrolArgs) -> Result<(), Error> {
    // Staff name the resident: a label of the device's choosing is what
    // let anyone pose as anyone (docs/spec.md §15).
    if args.label.is_some() {
        return Err(Error::usage(
            "--label is no longer taken: staff set the label in your ticket (`vigil-node residents add --label ...`); ask them if it is wrong",
        ));
    }
    let text = Zeroizing::new(text_arg(&args.ticket, "ticket")?);
    let ticket: TicketCode = text.parse().map_err(|e: vigil_net::NetError| match e {
        vigil_net::NetError::BadEnrolmentCode(m) => Error::usage(format!("bad ticket: {m}")),
        e => Error::from(e),
    })?;
    let rule = FeverRule {
        threshold_c: args.threshold,
        confirm_count: args.confirm_count,
        confirm_window_ms: args.confirm_window,
        recovery_ms: args.recovery,
    };
    rule.validate().map_err(|e| match e {
        RuleError::ConfirmCount(n) => Error::usage(format!("--confirm-count {n} is outside 1–20")),
        e => Error::usage(e.to_string()),
    })?;
    // A zero window could never confirm two readings: refused here, where
    // the resident can fix it (the node accepts any non-negative one).
    if args.confirm_window <= 0 {
        return Err(Error::usage("--confirm-window must be longer than zero"));
    }
    let code = &ticket.node;
    let mut vault = ctx.open()?;
    let mut conn = connect(code)?;
    let grant = vault
        .enrol(
            &mut conn,
            &code.node_public,
            &ticket.ticket,
            rule,
            ctx.now_ms,
        )
        .map_err(|e| Error::from(e).context("enrolment failed"))?;
    let label = grant.label.as_str();
    // Alerts already due (a fever before enrolling) go out now.
    let sent = vault.send_alerts(&mut conn, &code.node_public, ctx.now_ms);
    conn.close();
    let mut state = ctx.state();
    let previous = state.node.replace(code.to_string());
    ctx.save_state(&state)?;
    let p = vault.period();
    let delivered = sent.as_ref().map_or(0, |r| r.delivered);
    if ctx.json {
        return ctx.print_json(&Enrolled {
            alerts_delivered: delivered,
            confirm_count: rule.confirm_count,
            confirm_window_ms: rule.confirm_window_ms,
            grant: hex::encode(grant.grant_id),
            label,
            node: code.addr.to_string(),
            recovery_ms: rule.recovery_ms,
            threshold_c: rule.threshold_c,
            ticket: hex::encode(ticket.ticket.id),
            valid_from: format_time(grant.valid_from_ms),
            valid_until: format_time(grant.valid_until_ms),
        });
    }
    writeln!(
        ctx.out,
        "Enrolled with node {}.\nStaff see your alerts as \"{}\" (the label they set in your ticket; a label from the node is shown escaped).\nUntil {} the node may receive fever alerts (episode onset to 10 minutes, level), and nothing else of your log.\nRule: at least {} reading(s) ≥ {} °C within {}; an episode ends after {} below.\nThis grant is recorded in `vigil disclosures`; `vigil sync` now uses this node.",
        code.addr,
        printable(label),
        ctx.time(grant.valid_until_ms),
        rule.confirm_count,
        rule.threshold_c,
        format_duration(rule.confirm_window_ms),
        format_duration(rule.recovery_ms),
    )?;
    if grant.valid_until_ms < p.end_ms {
        writeln!(
            ctx.out,
            "(Staff set the period to end at {}, before this vault's end at {}: the node keeps your mailbox and alerts until then.)",
            ctx.time(grant.valid_until_ms),
            ctx.time(p.end_ms)
        )?;
    }
    if previous.is_some_and(|p| p != code.to_string()) {
        writeln!(
            ctx.out,
            "(This replaces the node this vault synced with before.)"
        )?;
    }
    match sent {
        Ok(r) if r.delivered > 0 => writeln!(
            ctx.out,
            "{} fever alert(s) already due were delivered.",
            r.delivered
        )?,
        Err(e) => writeln!(
            ctx.out,
            "Alerts already due could not be sent yet ({}); `vigil sync` retries.",
            printable(&one_line(&e.to_string()))
        )?,
        Ok(_) => {}
    }
    Ok(())
}

/// `vigil enrol --json`.
#[derive(Debug, Serialize)]
struct Enrolled<'a> {
    alerts_delivered: usize,
    confirm_count: usize,
    confirm_window_ms: i64,
    grant: String,
    label: &'a str,
    node: String,
    recovery_ms: i64,
    threshold_c: f64,
    ticket: String,
    valid_from: String,
    valid_until: String,
}
