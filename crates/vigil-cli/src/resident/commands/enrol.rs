//! `vigil enrol`: the fever-alert grant to a community node.

use std::io::Write;

use serde::Serialize;
use vigil_log::{FeverRule, MAX_LABEL_CHARS, RuleError};

use crate::common::input::text_arg;
use crate::common::time::{format_duration, format_time};
use crate::common::{Error, one_line};
use crate::resident::cli::*;
use crate::resident::context::{Ctx, connect, parse_node_code};

/// `vigil enrol`.
pub(crate) fn run(ctx: &mut Ctx, args: &EnrolArgs) -> Result<(), Error> {
    let label = text_arg(&args.label, "label")?;
    let label = label.trim();
    if label.is_empty() {
        return Err(Error::usage(
            "the label is empty: say what the node may show with your alerts",
        ));
    }
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(Error::usage(format!(
            "the label has {} characters; at most {MAX_LABEL_CHARS}",
            label.chars().count()
        )));
    }
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
    let code = parse_node_code(&args.code)?;
    let mut vault = ctx.open()?;
    let mut conn = connect(&code)?;
    let grant = vault
        .enrol(&mut conn, &code.node_public, label, rule, ctx.now_ms)
        .map_err(|e| Error::from(e).context("enrolment failed"))?;
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
            valid_from: format_time(p.start_ms),
            valid_until: format_time(p.end_ms),
        });
    }
    writeln!(
        ctx.out,
        "Enrolled with node {}.\nUntil {} it may receive fever alerts (episode onset to 10 minutes, level) labelled {label:?}, and nothing else of your log.\nRule: at least {} reading(s) ≥ {} °C within {}; an episode ends after {} below.\nThis grant is recorded in `vigil disclosures`; `vigil sync` now uses this node.",
        code.addr,
        format_time(p.end_ms),
        rule.confirm_count,
        rule.threshold_c,
        format_duration(rule.confirm_window_ms),
        format_duration(rule.recovery_ms),
    )?;
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
            one_line(&e.to_string())
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
    valid_from: String,
    valid_until: String,
}
