//! `vigil pair show` and `vigil pair join`: a second device for the vault.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use serde::Serialize;
use vigil_crypto::{
    JOINER_CODE_PREFIX, JoinerCodeError, KeySchedule, X25519Identity, X25519PublicKey, joiner_code,
    parse_joiner_code,
};
use vigil_device::{KeyStore, PendingJoin, SledStorage, SyncFailure, Vault};
use vigil_net::{DeviceConnection, EnrolmentCode};
use vigil_proto::{ProtoError, SyncError};

use crate::common::time::format_duration;
use crate::common::{Error, exit, one_line};
use crate::resident::cli::*;
use crate::resident::context::{
    CONNECT_TIMEOUT, Ctx, JOINER_FILE, connect, connect_within, parse_node_code, rng, write_private,
};
use crate::resident::error::shredded_elsewhere;
use crate::resident::fmt::PeriodJson;

/// `vigil pair show` and `vigil pair join`.
pub(crate) fn run(ctx: &mut Ctx, action: &PairAction) -> Result<(), Error> {
    match action {
        PairAction::Show { joiner, node } => pair_show(ctx, joiner, node.as_deref()),
        PairAction::Join {
            code,
            timeout,
            poll,
            qr,
            yes,
        } => pair_join(ctx, code, *timeout, *poll, *qr, *yes),
    }
}

/// The joiner code, as the shared codec reads it, with the CLI's messages.
fn parse_joiner(s: &str) -> Result<X25519PublicKey, Error> {
    let s = s.trim();
    parse_joiner_code(s).map_err(|e| match e {
        // Wrapping the root to a mistyped key would send it to a key nobody
        // holds (or, worse, someone's): refused before anything is sent.
        JoinerCodeError::Checksum => Error::usage(format!(
            "joiner code {s:?} fails its checksum (a typo?): copy it again from the new device"
        )),
        _ => Error::usage(format!(
            "invalid joiner code {s:?}: expected {JOINER_CODE_PREFIX}<72 hex digits>, as `vigil pair join` prints it"
        )),
    })
}

fn pair_show(ctx: &mut Ctx, joiner: &str, node: Option<&str>) -> Result<(), Error> {
    let joiner = parse_joiner(joiner)?;
    let mut vault = ctx.open()?;
    let code = ctx.node_code(node)?;
    let mut conn = connect(&code)?;
    let sas = vault
        .offer_pairing(&mut conn, &joiner, ctx.now_ms)
        .map_err(|e| match e {
            SyncFailure::Protocol(SyncError::Refused(ProtoError::SlotTaken)) => Error::failed(
                "pairing failed: an offer for that joiner code is already waiting at the node. \
                 If you did not send it, someone else may have seen the joiner code: on the new \
                 device answer no when asked about the code, then run `vigil pair join` again for \
                 a new joiner code",
            ),
            e => Error::from(e).context("pairing failed"),
        })?;
    conn.close();
    ctx.synced_with(&code)?;
    if ctx.json {
        return ctx.print_json(&Offered {
            node: code.addr.to_string(),
            pairing_code: sas.to_string(),
        });
    }
    writeln!(
        ctx.out,
        "Pairing code: {sas}\nThe new device shows its code once it has fetched the offer (it waits at the node for 15 minutes) and asks whether both screens show the same code.\nAnswer yes there only if they do; if they differ, answer no: the new device then keeps nothing."
    )?;
    Ok(())
}

/// The joining device's pairing identity, created on the first `pair join`
/// and kept (mode 0600) until the join completes.
fn joiner_identity(ctx: &Ctx) -> Result<X25519Identity, Error> {
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
                _ => Err(Error::failed(format!(
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
        Err(e) => Err(Error::failed(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn remove_joiner(ctx: &Ctx) {
    let path = ctx.dir.join(JOINER_FILE);
    let _ = vigil_fs::erase(&path);
}

/// Takes the offer for `identity` from the node, if one is there; the
/// root stays unused (a [`PendingJoin`]) until the resident confirms.
fn fetch_offer(
    conn: &mut DeviceConnection,
    identity: &X25519Identity,
) -> Result<Option<PendingJoin>, Error> {
    match Vault::fetch_join(conn, identity) {
        Ok(p) => Ok(Some(p)),
        Err(SyncFailure::NoOffer) => Ok(None),
        Err(SyncFailure::Transport(e)) => {
            Err(Error::failed(format!("node: {}", one_line(&e.to_string()))))
        }
        Err(SyncFailure::Protocol(SyncError::Codec(e))) => Err(Error::failed(format!("node: {e}"))),
        Err(SyncFailure::Protocol(SyncError::Refused(e))) => Err(Error::failed(format!(
            "node answered {:?} to a pairing fetch",
            vigil_proto::Response::Error(e)
        ))),
        Err(SyncFailure::Protocol(SyncError::Unexpected(m))) => {
            Err(Error::failed(format!("node answered {m}")))
        }
        Err(e) => Err(Error::from(e).context("joining failed")),
    }
}

fn pair_join(
    ctx: &mut Ctx,
    code: &str,
    timeout_ms: i64,
    poll_ms: i64,
    qr: bool,
    yes: bool,
) -> Result<(), Error> {
    let code = parse_node_code(code)?;
    if interrupted_join(ctx)? {
        return finish_interrupted_join(ctx, &code);
    }
    let identity = joiner_identity(ctx)?;
    let public = identity.public_key();
    let jc = joiner_code(&public);
    announce_wait(ctx, &jc, &code, qr, timeout_ms)?;
    let (mut conn, pending) = wait_for_offer(&code, &identity, &jc, timeout_ms, poll_ms)?;
    let sas = pending.code().to_string();
    if !confirmed(ctx, &sas, yes)? {
        // The offer is used up and the joiner key was seen by whoever wrote
        // the slot: forget both, so the next attempt starts afresh.
        pending.reject();
        conn.close();
        remove_joiner(ctx);
        return Err(Error::failed(
            "not confirmed: nothing was stored. Run `vigil pair join` again for a new joiner code",
        ));
    }
    // Only now is the root written (with the key file) and used to sync.
    let storage = SledStorage::open(&ctx.dir)?;
    let vault = pending
        .confirm(
            Box::new(storage),
            Box::new(ctx.key_store()),
            &mut conn,
            &mut rng(),
        )
        .map_err(|e| Error::from(e).context("joining failed"))?;
    conn.close();
    joined(ctx, &code, &vault, &sas)
}

/// Shows the pairing code and asks whether the other device shows the same
/// (on stderr, the answer from stdin; anything but yes is no). `--yes`
/// skips the question, for scripts that compare the codes themselves.
fn confirmed(ctx: &mut Ctx, sas: &str, yes: bool) -> Result<bool, Error> {
    if ctx.json {
        let line = Confirm {
            pairing_code: sas,
            status: "confirm",
        };
        writeln!(ctx.out, "{}", json_line(&line)?)?;
    } else {
        writeln!(ctx.out, "Pairing code: {sas}")?;
    }
    ctx.out.flush()?;
    if yes {
        return Ok(true);
    }
    let mut err = std::io::stderr();
    write!(err, "Do both screens show the same code? [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Refuses a directory or key file that is not free for a new device;
/// `true` when a join that created the vault (its key file is written
/// first) stopped before it finished, so it only needs finishing.
fn interrupted_join(ctx: &Ctx) -> Result<bool, Error> {
    if let Some(t) = ctx.tombstone() {
        return Err(Error::new(
            exit::SHREDDED,
            format!(
                "{} holds the tombstone of a vault shredded at {}: pass --vault DIR with a new directory",
                ctx.dir.display(),
                ctx.time(t.shredded_at_ms)
            ),
        ));
    }
    if ctx.joiner_pending() {
        if ctx.holds_vault() && ctx.key_file.exists() {
            return Ok(true);
        }
    } else if ctx.holds_vault() {
        return Err(Error::usage(format!(
            "{} already holds a vault: pass --vault DIR with a new directory for the joining device",
            ctx.dir.display()
        )));
    }
    if ctx.key_file.exists() {
        return Err(Error::usage(format!(
            "the key file {} already exists (another vault's key?): pass --key-file FILE",
            ctx.key_file.display()
        )));
    }
    Ok(false)
}

/// Shows the joiner code to type on the other device, and what happens now.
fn announce_wait(
    ctx: &mut Ctx,
    jc: &str,
    code: &EnrolmentCode,
    qr: bool,
    timeout_ms: i64,
) -> Result<(), Error> {
    if ctx.json {
        let line = Waiting {
            joiner_code: jc,
            node: code.addr.to_string(),
            status: "waiting",
        };
        writeln!(ctx.out, "{}", json_line(&line)?)?;
    } else {
        writeln!(
            ctx.out,
            "Joiner code: {jc}\nOn the device that already has the vault, run:\n  vigil pair show {jc}"
        )?;
        if qr {
            writeln!(ctx.out, "{}", qr_text(jc)?)?;
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
    Ok(ctx.out.flush()?)
}

/// Polls the node until the offer for `identity` is there and takes it
/// (returned with the connection it came on), or the timeout passes. A node
/// that cannot be reached is tried again at each poll; the last failure is
/// the error.
fn wait_for_offer(
    code: &EnrolmentCode,
    identity: &X25519Identity,
    jc: &str,
    timeout_ms: i64,
    poll_ms: i64,
) -> Result<(DeviceConnection, PendingJoin), Error> {
    let deadline = Instant::now() + Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
    let poll = Duration::from_millis(u64::try_from(poll_ms.max(100)).unwrap_or(2000));
    // `--timeout` covers connecting too: a down node must not hold the
    // command for the full connect timeout past it (0 means "ask once",
    // which still gets the usual connect timeout).
    let connect_timeout = |first: bool| {
        let left = deadline.saturating_duration_since(Instant::now());
        if first && timeout_ms <= 0 {
            CONNECT_TIMEOUT
        } else {
            left.clamp(Duration::from_millis(200), CONNECT_TIMEOUT)
        }
    };
    let mut conn = Some(connect_within(code, connect_timeout(true))?);
    let mut last_err: Option<Error> = None;
    loop {
        if let Some(c) = conn.as_mut() {
            match fetch_offer(c, identity) {
                Ok(Some(pending)) => {
                    let c = conn.ok_or_else(|| Error::failed("lost the connection to the node"))?;
                    return Ok((c, pending));
                }
                Ok(None) => last_err = None,
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
            return Err(Error::new(
                exit::WAITING,
                format!(
                    "no pairing offer yet: run `vigil pair show {jc}` on the other device, then run this command again"
                ),
            ));
        }
        std::thread::sleep(
            poll.min(deadline.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(50)),
        );
        if conn.is_none() {
            match connect_within(code, connect_timeout(false)) {
                Ok(c) => conn = Some(c),
                Err(e) => last_err = Some(e),
            }
        }
    }
}

/// After the vault is created: remember the node, forget the pairing key,
/// show the code.
fn joined(ctx: &mut Ctx, code: &EnrolmentCode, vault: &Vault, sas: &str) -> Result<(), Error> {
    let mut state = ctx.state();
    state.node = Some(code.to_string());
    state.last_sync_ms = Some(ctx.now_ms);
    ctx.save_state(&state)?;
    remove_joiner(ctx);
    let p = vault.period();
    if ctx.json {
        let line = Paired {
            pairing_code: sas,
            period: PeriodJson::of(p),
            readings: vault.log().len(),
            status: "paired",
            vault: vault.vault_id().to_string(),
        };
        writeln!(ctx.out, "{}", json_line(&line)?)?;
        return Ok(());
    }
    writeln!(
        ctx.out,
        "Joined vault {} ({} readings; period ends {}). Key file: {}.\nTo send fever alerts from this device too, run `vigil enrol <node code> --label ...` here.",
        vault.vault_id(),
        vault.log().len(),
        ctx.time(p.end_ms),
        ctx.key_file.display()
    )?;
    Ok(())
}

/// A join that created the vault but stopped before it finished (a crash,
/// or a failed first sync): recompute the code from the key file, then sync.
fn finish_interrupted_join(ctx: &mut Ctx, code: &EnrolmentCode) -> Result<(), Error> {
    let identity = joiner_identity(ctx)?;
    let root = ctx
        .key_store()
        .load()
        .map_err(|e| Error::new(exit::NO_VAULT, one_line(&e.to_string())))?
        .ok_or_else(|| Error::new(exit::NO_VAULT, "the joined vault has no key file"))?;
    let sas = KeySchedule::new(root).pairing_code(&identity.public_key());
    let mut vault = ctx.open()?;
    let mut conn = connect(code)?;
    match vault.sync(&mut conn) {
        Ok(_) => {}
        // Shredded on the other device before this one finished joining:
        // destroy the key now, as `vigil sync` does.
        Err(SyncFailure::ShreddedElsewhere(t)) => {
            remove_joiner(ctx);
            return Err(shredded_elsewhere(vault, &ctx.key_store(), &t, &ctx.zone));
        }
        Err(e) => return Err(Error::from(e).context("first sync failed")),
    }
    conn.close();
    joined(ctx, code, &vault, &sas.to_string())
}

fn qr_text(s: &str) -> Result<String, Error> {
    let code =
        qrcode::QrCode::new(s.as_bytes()).map_err(|e| Error::failed(format!("QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build())
}

/// `pair join --json` prints one line per step (see `vigil --help`).
fn json_line<T: Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::failed(e.to_string()))
}

/// `vigil pair show --json`.
#[derive(Debug, Serialize)]
struct Offered {
    node: String,
    pairing_code: String,
}

/// `vigil pair join --json`, first line.
#[derive(Debug, Serialize)]
struct Waiting<'a> {
    joiner_code: &'a str,
    node: String,
    status: &'static str,
}

/// `vigil pair join --json`: the code to compare, before joining.
#[derive(Debug, Serialize)]
struct Confirm<'a> {
    pairing_code: &'a str,
    status: &'static str,
}

/// `vigil pair join --json`, last line.
#[derive(Debug, Serialize)]
struct Paired<'a> {
    pairing_code: &'a str,
    period: PeriodJson,
    readings: usize,
    status: &'static str,
    vault: String,
}
