//! Commands that work on this device's vault alone.

use std::io::Write;

use serde_json::{Value, json};
use vigil_device::{Disclosure, Grant, PendingAlert, Period, Vault};
use vigil_log::{Conflict, Day, FeverRule, HealthLog, Metric, Severity, Symptom};

use super::cli::{
    AnnotateArgs, CheckInArgs, ConflictsAction, ConflictsArgs, InitArgs, LogArgs, RecordArgs,
    RetractArgs, SummaryArgs,
};
use super::context::{Ctx, rng};
use super::error::{CliError, exit, open_error};
use super::fmt::{
    find_reading, fmt_value, json_value, mname, short_id, table, unit_label, validate_value,
    value_with_unit,
};
use super::time::{format_duration, format_time};

const DAY_MS: i64 = 86_400_000;

/// Readings may carry a time this far past "now" (clock skew between devices).
const FUTURE_SLACK_MS: i64 = 60_000;

/// `vigil init`.
pub(crate) fn init(ctx: &mut Ctx, args: &InitArgs) -> Result<(), CliError> {
    if let Some(t) = ctx.tombstone() {
        return Err(CliError::new(
            exit::SHREDDED,
            format!(
                "{} holds the tombstone of a vault shredded at {}: choose another --vault directory",
                ctx.dir.display(),
                format_time(t.shredded_at_ms)
            ),
        ));
    }
    if ctx.holds_vault() {
        return Err(CliError::usage(format!(
            "{} already holds a vault (see `vigil status`)",
            ctx.dir.display()
        )));
    }
    if ctx.joiner_pending() {
        return Err(CliError::usage(format!(
            "{} is waiting to join a vault (`vigil pair join`); use another --vault directory",
            ctx.dir.display()
        )));
    }
    if ctx.key_file.exists() {
        return Err(CliError::usage(format!(
            "the key file {} already exists (another vault's key?): pass --key-file FILE",
            ctx.key_file.display()
        )));
    }
    let start = args.start.map_or(ctx.now_ms, |t| t.resolve(ctx.now_ms));
    let period = Period::days(start, args.days);
    if period.end_ms <= ctx.now_ms {
        return Err(CliError::usage(format!(
            "that period ({} to {}) is already over",
            format_time(period.start_ms),
            format_time(period.end_ms)
        )));
    }
    if let Some(parent) = ctx.key_file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::create_dir_all(&ctx.dir)?;
    let vault = Vault::create(&ctx.dir, period, Box::new(ctx.key_store()), &mut rng())
        .map_err(|e| open_error(e, &ctx.dir, &ctx.key_file, ctx.now_ms))?;
    if ctx.json {
        let v = json!({
            "vault": vault.vault_id().to_string(),
            "device": vault.device_id().to_string(),
            "period": {"start": format_time(period.start_ms), "end": format_time(period.end_ms)},
            "vault_dir": ctx.dir.display().to_string(),
            "key_file": ctx.key_file.display().to_string(),
        });
        return ctx.print_json(&v);
    }
    writeln!(
        ctx.out,
        "Created vault {} in {}\nPeriod: {} to {} ({} days); then the vault is shredded.\nKey file: {} (keep it out of backups; without it the vault cannot be read).\nNext: `vigil enrol <node code> --label ...` to allow fever alerts, `vigil record temperature 36.8`.",
        vault.vault_id(),
        ctx.dir.display(),
        format_time(period.start_ms),
        format_time(period.end_ms),
        args.days,
        ctx.key_file.display()
    )?;
    Ok(())
}

/// `vigil record`.
pub(crate) fn record(ctx: &mut Ctx, args: &RecordArgs) -> Result<(), CliError> {
    validate_value(args.metric, args.value)?;
    let at = args.at.map_or(ctx.now_ms, |t| t.resolve(ctx.now_ms));
    if at > ctx.now_ms + FUTURE_SLACK_MS {
        return Err(CliError::usage(format!(
            "{} is in the future (now is {})",
            format_time(at),
            format_time(ctx.now_ms)
        )));
    }
    let mut vault = ctx.open()?;
    let p = vault.period();
    if at < p.start_ms || at >= p.end_ms {
        return Err(CliError::usage(format!(
            "{} is outside the monitoring period ({} to {})",
            format_time(at),
            format_time(p.start_ms),
            format_time(p.end_ms)
        )));
    }
    let before = vault.pending_alerts()?.len();
    let id = vault.record(args.metric, args.value, args.metric.unit(), at)?;
    let queued = vault.pending_alerts()?.len().saturating_sub(before);
    if ctx.json {
        let v = json!({
            "id": id.to_string(),
            "metric": mname(args.metric),
            "value": json_value(args.value),
            "unit": unit_label(args.metric),
            "time": format_time(at),
            "alerts_queued": queued,
        });
        return ctx.print_json(&v);
    }
    writeln!(
        ctx.out,
        "Recorded {} {} at {} (id {})",
        mname(args.metric),
        value_with_unit(args.metric, args.value),
        format_time(at),
        short_id(id)
    )?;
    if queued > 0 {
        writeln!(
            ctx.out,
            "A fever alert is queued for the community node; it is sent at the next `vigil sync`."
        )?;
    }
    Ok(())
}

fn reading_json(log: &HealthLog, r: &vigil_log::Reading) -> Value {
    let mut v = json!({
        "id": r.id.to_string(),
        "time": format_time(r.time_ms),
        "metric": mname(r.metric),
        "value": json_value(r.value),
        "unit": unit_label(r.metric),
    });
    let notes = log.annotation(r.id);
    if !notes.is_empty() {
        v["annotation"] = json!(notes[0]);
        if notes.len() > 1 {
            v["annotation_conflict"] = json!(notes);
        }
    }
    if let Some(x) = log.retraction(r.id) {
        v["retracted"] = json!({"time": format_time(x.time_ms), "reason": x.reason});
    }
    v
}

/// `vigil log`.
pub(crate) fn log(ctx: &mut Ctx, args: &LogArgs) -> Result<(), CliError> {
    let vault = ctx.open()?;
    let (from, to) = match args.day {
        Some(d) => (d.start_ms(), d.start_ms() + DAY_MS),
        None => (
            args.from.map_or(i64::MIN, |t| t.resolve(ctx.now_ms)),
            args.to.map_or(i64::MAX, |t| t.resolve(ctx.now_ms)),
        ),
    };
    let log = vault.log();
    let readings = log.readings(args.metric, from, to, args.all);
    if ctx.json {
        let v: Vec<Value> = readings.iter().map(|r| reading_json(log, r)).collect();
        return ctx.print_json(&Value::Array(v));
    }
    if readings.is_empty() {
        writeln!(ctx.out, "No readings.")?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = readings
        .iter()
        .map(|r| {
            let mut note = log.annotation(r.id);
            let mut n = note.first().cloned().unwrap_or_default();
            if note.len() > 1 {
                n.push_str(&format!(" [{} conflicting notes]", note.len()));
            }
            if let Some(x) = log.retraction(r.id) {
                note.clear();
                n = format!(
                    "RETRACTED ({}){}",
                    x.reason,
                    if n.is_empty() {
                        String::new()
                    } else {
                        format!(" {n}")
                    }
                );
            }
            vec![
                format_time(r.time_ms),
                mname(r.metric).to_owned(),
                fmt_value(r.value),
                unit_label(r.metric).to_owned(),
                short_id(r.id),
                n,
            ]
        })
        .collect();
    let t = table(
        &["TIME", "METRIC", "VALUE", "UNIT", "ID", "NOTE"],
        &rows,
        &[2],
    );
    ctx.out.write_all(t.as_bytes())?;
    Ok(())
}

/// `vigil summary`.
pub(crate) fn summary(ctx: &mut Ctx, args: &SummaryArgs) -> Result<(), CliError> {
    let vault = ctx.open()?;
    let sums: Vec<_> = vault
        .log()
        .daily_summaries(args.metric)
        .into_iter()
        .filter(|s| args.day.is_none_or(|d| s.day == d))
        .collect();
    if ctx.json {
        let v: Vec<Value> = sums
            .iter()
            .map(|s| {
                json!({
                    "day": s.day.to_string(),
                    "metric": mname(s.metric),
                    "unit": unit_label(s.metric),
                    "count": s.count,
                    "min": json_value(s.min),
                    "max": json_value(s.max),
                    "mean": s.mean,
                })
            })
            .collect();
        return ctx.print_json(&Value::Array(v));
    }
    if sums.is_empty() {
        writeln!(ctx.out, "No readings.")?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = sums
        .iter()
        .map(|s| {
            vec![
                s.day.to_string(),
                mname(s.metric).to_owned(),
                s.count.to_string(),
                fmt_value(s.min),
                fmt_value(s.max),
                format!("{:.2}", s.mean),
                unit_label(s.metric).to_owned(),
            ]
        })
        .collect();
    let t = table(
        &["DAY", "METRIC", "COUNT", "MIN", "MAX", "MEAN", "UNIT"],
        &rows,
        &[2, 3, 4, 5],
    );
    ctx.out.write_all(t.as_bytes())?;
    Ok(())
}

/// `vigil annotate`.
pub(crate) fn annotate(ctx: &mut Ctx, args: &AnnotateArgs) -> Result<(), CliError> {
    let mut vault = ctx.open()?;
    let r = find_reading(vault.log(), &args.id)?;
    vault.annotate(r.id, &args.text)?;
    if ctx.json {
        return ctx.print_json(&json!({"id": r.id.to_string(), "annotation": args.text}));
    }
    writeln!(
        ctx.out,
        "Annotated {} ({} {} at {})",
        short_id(r.id),
        mname(r.metric),
        value_with_unit(r.metric, r.value),
        format_time(r.time_ms)
    )?;
    Ok(())
}

/// `vigil retract`.
pub(crate) fn retract(ctx: &mut Ctx, args: &RetractArgs) -> Result<(), CliError> {
    let mut vault = ctx.open()?;
    let r = find_reading(vault.log(), &args.id)?;
    vault.retract(r.id, &args.reason, ctx.now_ms)?;
    if ctx.json {
        return ctx.print_json(
            &json!({"id": r.id.to_string(), "retracted": true, "reason": args.reason}),
        );
    }
    writeln!(
        ctx.out,
        "Retracted {} ({} {} at {}): it no longer counts in views, summaries, exports or alerts",
        short_id(r.id),
        mname(r.metric),
        value_with_unit(r.metric, r.value),
        format_time(r.time_ms)
    )?;
    Ok(())
}

fn symptom_name(s: Symptom) -> String {
    s.name().replace('_', "-")
}

/// `vigil check-in`.
pub(crate) fn check_in(ctx: &mut Ctx, args: &CheckInArgs) -> Result<(), CliError> {
    let mut vault = ctx.open()?;
    let day = args.day.unwrap_or(Day::of(ctx.now_ms));
    if !args.set.is_empty() {
        let p = vault.period();
        if day < Day::of(p.start_ms) || day > Day::of(p.end_ms - 1) {
            return Err(CliError::usage(format!(
                "{day} is outside the monitoring period ({} to {})",
                format_time(p.start_ms),
                format_time(p.end_ms)
            )));
        }
        if day > Day::of(ctx.now_ms) {
            return Err(CliError::usage(format!("{day} is in the future")));
        }
        for (symptom, severity) in &args.set {
            vault.check_in(day, *symptom, *severity)?;
        }
    }
    let checkin = vault.log().checkin(day);
    if ctx.json {
        let v: Vec<Value> = Symptom::ALL
            .iter()
            .map(|s| {
                let vals = checkin.get(s).cloned().unwrap_or_default();
                json!({
                    "symptom": symptom_name(*s),
                    "value": vals.first().map(|v| v.name()),
                    "conflicting": if vals.len() > 1 { json!(vals.iter().map(|v| v.name()).collect::<Vec<_>>()) } else { Value::Null },
                })
            })
            .collect();
        return ctx.print_json(&json!({"day": day.to_string(), "symptoms": v}));
    }
    if !args.set.is_empty() {
        writeln!(ctx.out, "Check-in saved for {day}.")?;
    }
    let rows: Vec<Vec<String>> = Symptom::ALL
        .iter()
        .map(|s| {
            let vals = checkin.get(s).cloned().unwrap_or_default();
            let shown = match vals.as_slice() {
                [] => "-".to_owned(),
                [v] => v.to_string(),
                [v, ..] => format!(
                    "{v} (conflict: {}; see `vigil conflicts`)",
                    vals.iter().map(|x| x.name()).collect::<Vec<_>>().join(", ")
                ),
            };
            vec![symptom_name(*s), shown]
        })
        .collect();
    writeln!(ctx.out, "Check-in for {day}:")?;
    ctx.out
        .write_all(table(&["SYMPTOM", "SEVERITY"], &rows, &[]).as_bytes())?;
    Ok(())
}

fn conflict_key(c: &Conflict) -> String {
    match c {
        Conflict::CheckIn { day, symptom, .. } => format!("{day}/{}", symptom_name(*symptom)),
        Conflict::Annotation { reading, .. } => short_id(*reading),
    }
}

/// `vigil conflicts` and `vigil conflicts resolve`.
pub(crate) fn conflicts(ctx: &mut Ctx, args: &ConflictsArgs) -> Result<(), CliError> {
    let mut vault = ctx.open()?;
    if let Some(ConflictsAction::Resolve { key, value, pick }) = &args.action {
        return resolve(ctx, &mut vault, key, value.as_deref(), *pick);
    }
    let all = vault.log().conflicts();
    if ctx.json {
        let v: Vec<Value> = all
            .iter()
            .map(|c| match c {
                Conflict::CheckIn {
                    day,
                    symptom,
                    values,
                } => json!({
                    "key": conflict_key(c),
                    "kind": "check-in",
                    "day": day.to_string(),
                    "symptom": symptom_name(*symptom),
                    "values": values.iter().map(|v| v.name()).collect::<Vec<_>>(),
                }),
                Conflict::Annotation { reading, values } => json!({
                    "key": conflict_key(c),
                    "kind": "annotation",
                    "reading": reading.to_string(),
                    "values": values,
                }),
            })
            .collect();
        return ctx.print_json(&Value::Array(v));
    }
    if all.is_empty() {
        writeln!(ctx.out, "No conflicts.")?;
        return Ok(());
    }
    for c in &all {
        let key = conflict_key(c);
        let (what, values): (String, Vec<String>) = match c {
            Conflict::CheckIn { values, .. } => (
                "check-in".into(),
                values.iter().map(|v| v.name().to_owned()).collect(),
            ),
            Conflict::Annotation { values, .. } => (
                "annotation".into(),
                values.iter().map(|v| format!("{v:?}")).collect(),
            ),
        };
        writeln!(ctx.out, "{key}  ({what}, set differently on your devices)")?;
        for (i, v) in values.iter().enumerate() {
            let shown = if i == 0 { "  (shown now)" } else { "" };
            writeln!(ctx.out, "  {}. {v}{shown}", i + 1)?;
        }
        writeln!(ctx.out, "  resolve: vigil conflicts resolve {key} --pick N")?;
    }
    Ok(())
}

fn resolve(
    ctx: &mut Ctx,
    vault: &mut Vault,
    key: &str,
    value: Option<&str>,
    pick: Option<usize>,
) -> Result<(), CliError> {
    let all = vault.log().conflicts();
    let chosen = |values: Vec<String>| -> Result<String, CliError> {
        match (value, pick) {
            (Some(v), _) => Ok(v.to_owned()),
            (None, Some(n)) => values.get(n.wrapping_sub(1)).cloned().ok_or_else(|| {
                CliError::usage(format!(
                    "--pick {n}: this conflict has values 1 to {}",
                    values.len()
                ))
            }),
            (None, None) => Err(CliError::usage("give the VALUE to keep, or --pick N")),
        }
    };
    let result = if let Some((d, s)) = key.split_once('/') {
        let day: Day = d.parse().map_err(|_| {
            CliError::usage(format!(
                "invalid conflict key {key:?}: expected DAY/SYMPTOM or a reading id"
            ))
        })?;
        let symptom: Symptom = s
            .parse()
            .map_err(|_| CliError::usage(format!("unknown symptom {s:?} in {key:?}")))?;
        let values = all
            .iter()
            .find_map(|c| match c {
                Conflict::CheckIn {
                    day: d2,
                    symptom: s2,
                    values,
                } if *d2 == day && *s2 == symptom => Some(
                    values
                        .iter()
                        .map(|v| v.name().to_owned())
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .ok_or_else(|| {
                CliError::usage(format!(
                    "no unresolved conflict {key} (see `vigil conflicts`)"
                ))
            })?;
        let v = chosen(values)?;
        let severity: Severity = v.parse().map_err(|_| {
            CliError::usage(format!(
                "unknown severity {v:?} (use one of: none, mild, moderate, severe)"
            ))
        })?;
        vault.check_in(day, symptom, severity)?;
        json!({"key": format!("{day}/{}", symptom_name(symptom)), "value": severity.name()})
    } else {
        let r = find_reading(vault.log(), key)?;
        let values = all
            .iter()
            .find_map(|c| match c {
                Conflict::Annotation { reading, values } if *reading == r.id => {
                    Some(values.clone())
                }
                _ => None,
            })
            .ok_or_else(|| {
                CliError::usage(format!(
                    "no unresolved conflict {key} (see `vigil conflicts`)"
                ))
            })?;
        let v = chosen(values)?;
        vault.annotate(r.id, &v)?;
        json!({"key": short_id(r.id), "reading": r.id.to_string(), "value": v})
    };
    if ctx.json {
        return ctx.print_json(&result);
    }
    writeln!(
        ctx.out,
        "Resolved {}: {} (your other devices take it at their next sync)",
        result["key"].as_str().unwrap_or(key),
        result["value"]
    )?;
    Ok(())
}

fn node_hex(k: &vigil_crypto::X25519PublicKey) -> String {
    hex::encode(k.as_bytes())
}

fn rule_text(r: &FeverRule) -> String {
    format!(
        "≥ {} °C in {} reading(s) within {}, ends after {} below",
        r.threshold_c,
        r.confirm_count,
        format_duration(r.confirm_window_ms),
        format_duration(r.recovery_ms)
    )
}

fn alert_kind(kind: u8) -> &'static str {
    match kind {
        1 => "started",
        2 => "ended",
        _ => "unknown",
    }
}

/// `vigil disclosures`.
pub(crate) fn disclosures(ctx: &mut Ctx) -> Result<(), CliError> {
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

fn pending_json(p: &PendingAlert, now_ms: i64) -> Value {
    json!({
        "grant": hex::encode(p.grant_id),
        "episode": hex::encode(p.episode),
        "kind": alert_kind(p.kind),
        "queued": format_time(p.queued_ms),
        "first_sent": p.first_sent_ms.map(format_time),
        "overdue": p.overdue(now_ms),
    })
}

/// The rules the device evaluates: each grant's, or the default if none.
fn rules(grants: &[Grant]) -> Vec<FeverRule> {
    let mut r: Vec<FeverRule> = grants.iter().map(|g| g.rule).collect();
    if r.is_empty() {
        r.push(FeverRule::default());
    }
    r.dedup();
    r
}

/// `vigil alerts`.
pub(crate) fn alerts(ctx: &mut Ctx) -> Result<(), CliError> {
    let vault = ctx.open()?;
    let pending = vault.pending_alerts()?;
    let grants = vault.grants()?;
    let rule = rules(&grants)[0];
    let episodes = vault.log().fever_episodes(&rule);
    if ctx.json {
        let v = json!({
            "pending": pending.iter().map(|p| pending_json(p, ctx.now_ms)).collect::<Vec<_>>(),
            "episodes": episodes.iter().map(|e| json!({
                "onset": format_time(e.onset_ms),
                "end": e.end_ms.map(format_time),
                "peak_c": e.peak_c,
            })).collect::<Vec<_>>(),
            "enrolled": !grants.is_empty(),
        });
        return ctx.print_json(&v);
    }
    if grants.is_empty() {
        writeln!(
            ctx.out,
            "Not enrolled with a node: no alert is ever sent (`vigil enrol` to allow them)."
        )?;
    }
    if pending.is_empty() {
        writeln!(ctx.out, "No alert waiting for the node.")?;
    } else {
        let rows: Vec<Vec<String>> = pending
            .iter()
            .map(|p| {
                vec![
                    alert_kind(p.kind).into(),
                    format_time(p.queued_ms),
                    p.first_sent_ms.map_or("not yet".into(), format_time),
                    if p.overdue(ctx.now_ms) {
                        "OVERDUE: the community has not received it".into()
                    } else {
                        "waiting".into()
                    },
                ]
            })
            .collect();
        writeln!(ctx.out, "Alerts waiting for the node's acknowledgement:")?;
        ctx.out.write_all(
            table(&["EPISODE", "QUEUED", "FIRST SENT", "STATE"], &rows, &[]).as_bytes(),
        )?;
    }
    if episodes.is_empty() {
        writeln!(
            ctx.out,
            "No fever episode in the log ({}).",
            rule_text(&rule)
        )?;
    } else {
        writeln!(ctx.out, "Fever episodes ({}):", rule_text(&rule))?;
        for e in &episodes {
            writeln!(
                ctx.out,
                "  onset {}, {}, peak {} °C",
                format_time(e.onset_ms),
                e.end_ms.map_or("ongoing".to_owned(), |t| format!(
                    "ended {}",
                    format_time(t)
                )),
                e.peak_c
            )?;
        }
    }
    Ok(())
}

/// `vigil status`.
pub(crate) fn status(ctx: &mut Ctx) -> Result<(), CliError> {
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
        let v = json!({
            "vault": vault.vault_id().to_string(),
            "device": vault.device_id().to_string(),
            "now": format_time(now),
            "period": {
                "start": format_time(p.start_ms),
                "end": format_time(p.end_ms),
                "remaining_ms": (p.end_ms - now).max(0),
            },
            "readings": visible.len(),
            "retracted": all.len() - visible.len(),
            "last_reading": last.map(format_time),
            "last_temperature": temps.last().map(|r| json_value(r.value)),
            "node": node.as_ref().map(|n| n.addr.to_string()),
            "enrolled": enrolled,
            "grants": grants.iter().map(|g| json!({
                "node": node_hex(&g.node),
                "label": g.label,
                "valid_until": format_time(g.valid_until_ms),
            })).collect::<Vec<_>>(),
            "last_sync": state.last_sync_ms.map(format_time),
            "pending_alerts": pending.iter().map(|p| pending_json(p, now)).collect::<Vec<_>>(),
            "overdue_alerts": overdue,
            "conflicts": conflicts,
            "fever": fever.map(|e| json!({"onset": format_time(e.onset_ms), "peak_c": e.peak_c})),
        });
        return ctx.print_json(&v);
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
