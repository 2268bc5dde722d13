//! Commands that talk to the community node: enrol, sync, pair, shred.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use serde_json::json;
use vigil_crypto::{KeySchedule, X25519Identity, X25519PublicKey};
use vigil_device::{KeyStore, SledStorage, Vault, pairing_slot};
use vigil_log::FeverRule;
use vigil_net::{DeviceConnection, EnrolmentCode};
use vigil_proto::{Exchange, ProtoError, Request, Response, decode_response, encode_request};

use super::cli::{EnrolArgs, PairAction, ShredArgs, SyncArgs};
use super::context::{Ctx, JOINER_FILE, connect, parse_node_code, rng, write_private};
use super::error::{CliError, exit, one_line};
use super::time::{format_duration, format_time};

const JOIN_PREFIX: &str = "vigil-join1/";

/// `vigil enrol`.
pub(crate) fn enrol(ctx: &mut Ctx, args: &EnrolArgs) -> Result<(), CliError> {
    let label = args.label.trim();
    if label.is_empty() {
        return Err(CliError::usage(
            "the label is empty: say what the node may show with your alerts",
        ));
    }
    if label.chars().count() > 200 {
        return Err(CliError::usage(format!(
            "the label has {} characters; at most 200",
            label.chars().count()
        )));
    }
    if !(35.0..=42.0).contains(&args.threshold) {
        return Err(CliError::usage(format!(
            "threshold {} °C is outside 35–42 °C",
            args.threshold
        )));
    }
    if !(1..=20).contains(&args.confirm_count) {
        return Err(CliError::usage(format!(
            "--confirm-count {} is outside 1–20",
            args.confirm_count
        )));
    }
    if args.confirm_window <= 0 {
        return Err(CliError::usage("--confirm-window must be longer than zero"));
    }
    let rule = FeverRule {
        threshold_c: args.threshold,
        confirm_count: args.confirm_count,
        confirm_window_ms: args.confirm_window,
        recovery_ms: args.recovery,
    };
    let code = parse_node_code(&args.code)?;
    let mut vault = ctx.open()?;
    let mut conn = connect(&code)?;
    let grant = vault
        .enrol(&mut conn, &code.node_public, label, rule, ctx.now_ms)
        .map_err(|e| CliError::from(e).context("enrolment failed"))?;
    // Alerts already due (a fever before enrolling) go out now.
    let sent = vault.send_alerts(&mut conn, &code.node_public, ctx.now_ms);
    conn.close();
    let mut state = ctx.state();
    let previous = state.node.replace(code.to_string());
    ctx.save_state(&state)?;
    let p = vault.period();
    let delivered = sent.as_ref().map_or(0, |r| r.delivered);
    if ctx.json {
        return ctx.print_json(&json!({
            "node": code.addr.to_string(),
            "grant": hex::encode(grant.grant_id),
            "label": label,
            "valid_from": format_time(p.start_ms),
            "valid_until": format_time(p.end_ms),
            "threshold_c": rule.threshold_c,
            "confirm_count": rule.confirm_count,
            "confirm_window_ms": rule.confirm_window_ms,
            "recovery_ms": rule.recovery_ms,
            "alerts_delivered": delivered,
        }));
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

/// `vigil sync`.
pub(crate) fn sync(ctx: &mut Ctx, args: &SyncArgs) -> Result<(), CliError> {
    let mut vault = ctx.open()?;
    let code = ctx.node_code(args.node.as_deref())?;
    let mut conn = connect(&code)?;
    let report = vault
        .sync(&mut conn)
        .map_err(|e| CliError::from(e).context("sync failed"))?;
    let enrolled = vault.grants()?.iter().any(|g| g.node == code.node_public);
    let alerts = if enrolled {
        Some(
            vault
                .send_alerts(&mut conn, &code.node_public, ctx.now_ms)
                .map_err(|e| CliError::from(e).context("synced, but sending alerts failed"))?,
        )
    } else {
        None
    };
    conn.close();
    let pending = vault.pending_alerts()?;
    let mut state = ctx.state();
    state.last_sync_ms = Some(ctx.now_ms);
    if state.node.is_none() {
        state.node = Some(code.to_string());
    }
    ctx.save_state(&state)?;
    let delivered = alerts.as_ref().map_or(0, |a| a.delivered);
    if ctx.json {
        return ctx.print_json(&json!({
            "node": code.addr.to_string(),
            "time": format_time(ctx.now_ms),
            "pushed": report.pushed,
            "received": report.received,
            "received_snapshot": report.received_snapshot,
            "uploaded_snapshot": report.uploaded_snapshot,
            "rejected": report.rejected,
            "alerts_delivered": delivered,
            "alerts_pending": pending.len(),
            "enrolled": enrolled,
        }));
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
    } else if !pending.is_empty() {
        writeln!(
            ctx.out,
            "{} fever alert(s) wait for another node this device enrolled with.",
            pending.len()
        )?;
    }
    Ok(())
}

/// `vigil pair show` and `vigil pair join`.
pub(crate) fn pair(ctx: &mut Ctx, action: &PairAction) -> Result<(), CliError> {
    match action {
        PairAction::Show { joiner, node } => pair_show(ctx, joiner, node.as_deref()),
        PairAction::Join {
            code,
            timeout,
            poll,
            qr,
        } => pair_join(ctx, code, *timeout, *poll, *qr),
    }
}

fn parse_joiner(s: &str) -> Result<X25519PublicKey, CliError> {
    let s = s.trim();
    let bad = || {
        CliError::usage(format!(
            "invalid joiner code {s:?}: expected {JOIN_PREFIX}<64 hex digits>, as `vigil pair join` prints it"
        ))
    };
    let h = s.strip_prefix(JOIN_PREFIX).ok_or_else(bad)?;
    let mut k = [0u8; 32];
    if h.len() != 64 {
        return Err(bad());
    }
    hex::decode_to_slice(h.to_ascii_lowercase(), &mut k).map_err(|_| bad())?;
    Ok(X25519PublicKey::from_bytes(k))
}

fn joiner_code(k: &X25519PublicKey) -> String {
    format!("{JOIN_PREFIX}{}", hex::encode(k.as_bytes()))
}

fn pair_show(ctx: &mut Ctx, joiner: &str, node: Option<&str>) -> Result<(), CliError> {
    let joiner = parse_joiner(joiner)?;
    let mut vault = ctx.open()?;
    let code = ctx.node_code(node)?;
    let mut conn = connect(&code)?;
    let sas = vault
        .offer_pairing(&mut conn, &joiner, ctx.now_ms)
        .map_err(|e| CliError::from(e).context("pairing failed"))?;
    conn.close();
    let mut state = ctx.state();
    state.last_sync_ms = Some(ctx.now_ms);
    if state.node.is_none() {
        state.node = Some(code.to_string());
    }
    ctx.save_state(&state)?;
    if ctx.json {
        return ctx.print_json(&json!({
            "pairing_code": sas.to_string(),
            "node": code.addr.to_string(),
        }));
    }
    writeln!(
        ctx.out,
        "Pairing code: {sas}\nThe new device shows its code once it has fetched the offer (it waits at the node for 15 minutes).\nCheck that both codes are the same. If they differ, do not use the new device: the joiner code may have been swapped."
    )?;
    Ok(())
}

/// The joining device's pairing identity, created on the first `pair join`
/// and kept (mode 0600) until the join completes.
fn joiner_identity(ctx: &Ctx) -> Result<X25519Identity, CliError> {
    let path = ctx.dir.join(JOINER_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut lines = text.lines();
            let ok = lines.next() == Some("vigil-joiner 1");
            let mut k = [0u8; 32];
            match lines.next() {
                Some(h) if ok && hex::decode_to_slice(h.trim(), &mut k).is_ok() => {
                    Ok(X25519Identity::from_bytes(k))
                }
                _ => Err(CliError::failed(format!(
                    "{} is damaged: remove it and run `vigil pair join` again",
                    path.display()
                ))),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&ctx.dir)?;
            let id = X25519Identity::generate(&mut rng());
            let text = format!("vigil-joiner 1\n{}\n", hex::encode(id.expose_secret()));
            write_private(&path, text.as_bytes(), false)?;
            Ok(id)
        }
        Err(e) => Err(CliError::failed(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn remove_joiner(ctx: &Ctx) {
    let path = ctx.dir.join(JOINER_FILE);
    if let Ok(len) = std::fs::metadata(&path).map(|m| m.len()) {
        let _ = std::fs::write(&path, vec![0u8; usize::try_from(len).unwrap_or(0)]);
        let _ = std::fs::remove_file(&path);
    }
}

/// Whether the node holds an offer for `joiner` (without taking it).
fn offer_waiting(conn: &mut DeviceConnection, joiner: &X25519PublicKey) -> Result<bool, CliError> {
    let mut call = |req: &Request| -> Result<Response, CliError> {
        let frame = conn
            .exchange(&encode_request(req))
            .map_err(|e| CliError::failed(format!("node: {}", one_line(&e.to_string()))))?;
        decode_response(&frame).map_err(|e| CliError::failed(format!("node: {e}")))
    };
    call(&Request::Hello {
        version: vigil_proto::PROTOCOL_VERSION,
    })?;
    match call(&Request::PairFetch {
        slot: pairing_slot(joiner),
    })? {
        Response::PairOffer { .. } => Ok(true),
        Response::Error(ProtoError::NotFound) => Ok(false),
        r => Err(CliError::failed(format!(
            "node answered {r:?} to a pairing fetch"
        ))),
    }
}

fn pair_join(
    ctx: &mut Ctx,
    code: &str,
    timeout_ms: i64,
    poll_ms: i64,
    qr: bool,
) -> Result<(), CliError> {
    let code = parse_node_code(code)?;
    if let Some(t) = ctx.tombstone() {
        return Err(CliError::new(
            exit::SHREDDED,
            format!(
                "{} holds the tombstone of a vault shredded at {}: pass --vault DIR with a new directory",
                ctx.dir.display(),
                format_time(t.shredded_at_ms)
            ),
        ));
    }
    if ctx.joiner_pending() {
        // A join that created the vault (its key file is written first) but
        // stopped before it finished.
        if ctx.holds_vault() && ctx.key_file.exists() {
            return finish_interrupted_join(ctx, &code);
        }
    } else if ctx.holds_vault() {
        return Err(CliError::usage(format!(
            "{} already holds a vault: pass --vault DIR with a new directory for the joining device",
            ctx.dir.display()
        )));
    }
    if ctx.key_file.exists() {
        return Err(CliError::usage(format!(
            "the key file {} already exists (another vault's key?): pass --key-file FILE",
            ctx.key_file.display()
        )));
    }
    let identity = joiner_identity(ctx)?;
    let public = identity.public_key();
    let jc = joiner_code(&public);
    if ctx.json {
        let line = json!({"status": "waiting", "joiner_code": jc, "node": code.addr.to_string()});
        writeln!(ctx.out, "{line}")?;
    } else {
        writeln!(
            ctx.out,
            "Joiner code: {jc}\nOn the device that already has the vault, run:\n  vigil pair show {jc}"
        )?;
        if qr {
            writeln!(ctx.out, "{}", qr_text(&jc)?)?;
        }
        if timeout_ms > 0 {
            writeln!(
                ctx.out,
                "Waiting up to {} for the offer at node {}...",
                format_duration(timeout_ms),
                code.addr
            )?;
        }
    }
    ctx.out.flush()?;

    let deadline = Instant::now() + Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
    let poll = Duration::from_millis(u64::try_from(poll_ms.max(100)).unwrap_or(2000));
    let mut conn = Some(connect(&code)?);
    let mut last_err: Option<CliError> = None;
    let mut conn = loop {
        if let Some(c) = conn.as_mut() {
            match offer_waiting(c, &public) {
                Ok(true) => break conn.take(),
                Ok(false) => last_err = None,
                Err(e) => {
                    last_err = Some(e);
                    if let Some(c) = conn.take() {
                        c.close();
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            if let Some(e) = last_err {
                return Err(e);
            }
            return Err(CliError::new(
                exit::WAITING,
                format!(
                    "no pairing offer yet: run `vigil pair show {jc}` on the other device, then run this command again"
                ),
            ));
        }
        std::thread::sleep(poll.min(deadline.saturating_duration_since(Instant::now())).max(Duration::from_millis(50)));
        if conn.is_none() {
            match connect(&code) {
                Ok(c) => conn = Some(c),
                Err(e) => last_err = Some(e),
            }
        }
    }
    .ok_or_else(|| CliError::failed("lost the connection to the node"))?;

    let storage = SledStorage::open(&ctx.dir)?;
    let (vault, sas) = Vault::join(
        Box::new(storage),
        Box::new(ctx.key_store()),
        &identity,
        &mut conn,
        &mut rng(),
    )
    .map_err(|e| CliError::from(e).context("joining failed"))?;
    conn.close();
    joined(ctx, &code, &vault, &sas.to_string())
}

/// After the vault is created: remember the node, forget the pairing key,
/// show the code.
fn joined(ctx: &mut Ctx, code: &EnrolmentCode, vault: &Vault, sas: &str) -> Result<(), CliError> {
    let mut state = ctx.state();
    state.node = Some(code.to_string());
    state.last_sync_ms = Some(ctx.now_ms);
    ctx.save_state(&state)?;
    remove_joiner(ctx);
    let p = vault.period();
    if ctx.json {
        let line = json!({
            "status": "paired",
            "pairing_code": sas,
            "vault": vault.vault_id().to_string(),
            "readings": vault.log().len(),
            "period": {"start": format_time(p.start_ms), "end": format_time(p.end_ms)},
        });
        writeln!(ctx.out, "{line}")?;
        return Ok(());
    }
    writeln!(
        ctx.out,
        "Pairing code: {sas}\nCheck that the other device shows the same code. If it does not, run `vigil shred --yes --offline` here and pair again.\nJoined vault {} ({} readings; period ends {}). Key file: {}.\nTo send fever alerts from this device too, run `vigil enrol <node code> --label ...` here.",
        vault.vault_id(),
        vault.log().len(),
        format_time(p.end_ms),
        ctx.key_file.display()
    )?;
    Ok(())
}

/// A join that created the vault but stopped before it finished (a crash,
/// or a failed first sync): recompute the code from the key file, then sync.
fn finish_interrupted_join(ctx: &mut Ctx, code: &EnrolmentCode) -> Result<(), CliError> {
    let identity = joiner_identity(ctx)?;
    let root = ctx
        .key_store()
        .load()
        .map_err(|e| CliError::new(exit::NO_VAULT, one_line(&e.to_string())))?
        .ok_or_else(|| CliError::new(exit::NO_VAULT, "the joined vault has no key file"))?;
    let sas = KeySchedule::new(root).pairing_code(&identity.public_key());
    let mut vault = ctx.open()?;
    let mut conn = connect(code)?;
    vault
        .sync(&mut conn)
        .map_err(|e| CliError::from(e).context("first sync failed"))?;
    conn.close();
    joined(ctx, code, &vault, &sas.to_string())
}

fn qr_text(s: &str) -> Result<String, CliError> {
    let code =
        qrcode::QrCode::new(s.as_bytes()).map_err(|e| CliError::failed(format!("QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build())
}

/// `vigil shred`.
pub(crate) fn shred(ctx: &mut Ctx, args: &ShredArgs) -> Result<(), CliError> {
    if let Some(t) = ctx.tombstone() {
        return already_shredded(ctx, t.shredded_at_ms);
    }
    let vault = match ctx.open() {
        Ok(v) => v,
        Err(e) if e.code == exit::SHREDDED => {
            let at = ctx.tombstone().map_or(ctx.now_ms, |t| t.shredded_at_ms);
            return already_shredded(ctx, at);
        }
        Err(e) => return Err(e),
    };
    let node = if args.offline {
        None
    } else {
        match (&args.node, ctx.state().node) {
            (Some(c), _) => Some(parse_node_code(c)?),
            (None, Some(c)) => parse_node_code(&c).ok(),
            (None, None) => None,
        }
    };
    if !args.yes {
        let mut err = std::io::stderr();
        write!(
            err,
            "Shred vault {} now? Its key is destroyed and every reading on every device becomes unreadable, forever.\nType `yes` to shred: ",
            vault.vault_id()
        )?;
        err.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "yes" | "y") {
            return Err(CliError::failed("not confirmed: nothing was shredded"));
        }
    }
    let vault_id = vault.vault_id();
    let key_store = ctx.key_store();
    let mut node_note =
        String::from("no node contacted (it deletes the mailbox itself when the period ends)");
    let tombstone = match &node {
        Some(code) => match connect(code) {
            Ok(mut conn) => {
                node_note = "the node did not confirm the deletion; it deletes the mailbox itself when the period ends".into();
                let t = vault.shred_with_node(&mut conn, &key_store, ctx.now_ms);
                conn.close();
                t
            }
            Err(e) => {
                node_note = format!("{}; the node deletes the mailbox itself when the period ends", e.message);
                vault.shred_now(&key_store, ctx.now_ms)
            }
        },
        None => vault.shred_now(&key_store, ctx.now_ms),
    }
    .map_err(|e| {
        CliError::failed(format!(
            "shredding did not complete ({}); the vault no longer opens, and the next command finishes the job",
            one_line(&e.to_string())
        ))
    })?;
    let receipt = match (&node, &tombstone.receipt) {
        (Some(code), Some(r)) => Some(vigil_proto::receipt::verify_receipt(&code.receipt_key, r)),
        _ => None,
    };
    if ctx.json {
        let r = match &receipt {
            Some(Ok(b)) => json!({
                "verified": true,
                "deleted_at": format_time(b.deleted_at_ms),
                "blobs": b.blobs, "bytes": b.bytes, "grants": b.grants, "alerts": b.alerts,
            }),
            Some(Err(_)) => json!({"verified": false}),
            None => serde_json::Value::Null,
        };
        return ctx.print_json(&json!({
            "vault": vault_id.to_string(),
            "shredded_at": format_time(tombstone.shredded_at_ms),
            "receipt": r,
        }));
    }
    writeln!(
        ctx.out,
        "Vault {vault_id} shredded at {}: the key file is destroyed and the store deleted; only a tombstone remains in {}.",
        format_time(tombstone.shredded_at_ms),
        ctx.dir.display()
    )?;
    match receipt {
        Some(Ok(b)) => writeln!(
            ctx.out,
            "The node's signed receipt (verified): at {} it deleted {} blob(s) ({} bytes), {} grant(s) and {} alert(s).",
            format_time(b.deleted_at_ms),
            b.blobs,
            b.bytes,
            b.grants,
            b.alerts
        )?,
        Some(Err(_)) => writeln!(
            ctx.out,
            "Warning: the node's receipt does not verify against its code; it is kept in the tombstone."
        )?,
        None => writeln!(ctx.out, "Node: {node_note}.")?,
    }
    Ok(())
}

fn already_shredded(ctx: &mut Ctx, at_ms: i64) -> Result<(), CliError> {
    if ctx.json {
        return ctx
            .print_json(&json!({"already_shredded": true, "shredded_at": format_time(at_ms)}));
    }
    writeln!(
        ctx.out,
        "The vault in {} was already shredded at {}; only its tombstone remains.",
        ctx.dir.display(),
        format_time(at_ms)
    )?;
    Ok(())
}
