//! `vigil shred`: destroy the vault now.

use std::io::{BufRead, Write};

use serde::Serialize;

use crate::common::time::format_time;
use crate::common::{Error, exit, one_line};
use crate::resident::cli::*;
use crate::resident::context::{Ctx, connect, parse_node_code};

/// `vigil shred`.
pub(crate) fn run(ctx: &mut Ctx, args: &ShredArgs) -> Result<(), Error> {
    if let Some(t) = ctx.tombstone() {
        return already_shredded(ctx, t.shredded_at_ms, Some(t.vault_id.to_string()));
    }
    let vault = match ctx.open() {
        Ok(v) => v,
        Err(e) if e.code == exit::SHREDDED => {
            let t = ctx.tombstone();
            let at = t.as_ref().map_or(ctx.now_ms, |t| t.shredded_at_ms);
            return already_shredded(ctx, at, t.map(|t| t.vault_id.to_string()));
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
            "Shred vault {} now? Its key is destroyed and every reading on every device becomes unreadable, forever.\n{UNSEEN_NOTE}\nType `yes` to shred: ",
            vault.vault_id()
        )?;
        err.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "yes" | "y") {
            return Err(Error::failed("not confirmed: nothing was shredded"));
        }
    }
    let vault_id = vault.vault_id();
    let this_device = vault.device_id().0;
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
        Error::failed(format!(
            "shredding did not complete ({}); the vault no longer opens, and the next command finishes the job",
            one_line(&e.to_string())
        ))
    })?;
    let receipt = match (&node, &tombstone.receipt) {
        (Some(code), Some(r)) => Some(vigil_proto::receipt::verify_receipt(&code.receipt_key, r)),
        _ => None,
    };
    if ctx.json {
        let receipt = receipt.as_ref().map(|r| match r {
            Ok(b) => ReceiptJson {
                alerts: Some(b.alerts),
                blobs: Some(b.blobs),
                bytes: Some(b.bytes),
                deleted_at: Some(format_time(b.deleted_at_ms)),
                grants: Some(b.grants),
                kept_unseen_alerts: Some(b.kept_unseen_alerts),
                devices: Some(b.devices.iter().map(hex::encode).collect()),
                verified: true,
            },
            Err(_) => ReceiptJson {
                verified: false,
                ..Default::default()
            },
        });
        return ctx.print_json(&Shredded {
            already_shredded: false,
            receipt,
            shredded_at: format_time(tombstone.shredded_at_ms),
            vault: Some(vault_id.to_string()),
        });
    }
    writeln!(
        ctx.out,
        "Vault {vault_id} shredded at {}: the key file is destroyed and the store deleted; only a tombstone remains in {}.",
        ctx.time(tombstone.shredded_at_ms),
        ctx.dir.display()
    )?;
    match receipt {
        Some(Ok(b)) => {
            writeln!(
                ctx.out,
                "The node's signed receipt (verified): at {} it deleted {} blob(s) ({} bytes), {} grant(s) and {} alert(s).",
                ctx.time(b.deleted_at_ms),
                b.blobs,
                b.bytes,
                b.grants,
                b.alerts
            )?;
            let others: Vec<String> = b
                .devices
                .iter()
                .filter(|d| **d != this_device)
                .map(hex::encode)
                .collect();
            if !others.is_empty() {
                writeln!(
                    ctx.out,
                    "The node will tell the other device(s) that had synced with it, at their next sync before the period ends, and each shreds its copy: {}.",
                    others.join(", ")
                )?;
            }
            if b.kept_unseen_alerts > 0 {
                writeln!(
                    ctx.out,
                    "{} fever alert(s) the community has not yet seen stay at the node until staff read them or the period ends; nothing else left this device.",
                    b.kept_unseen_alerts
                )?;
            }
        }
        Some(Err(_)) => writeln!(
            ctx.out,
            "Warning: the node's receipt does not verify against its code; the tombstone keeps only its SHA-256."
        )?,
        None => writeln!(ctx.out, "Node: {node_note}.")?,
    }
    Ok(())
}

/// Said before a shred: the community's duty to act on a fever it was told
/// of outlasts the resident's erasure of everything else (SECURITY.md).
const UNSEEN_NOTE: &str = "A fever alert the community has not yet seen stays at the node until staff read it or the period ends.";

fn already_shredded(ctx: &mut Ctx, at_ms: i64, vault: Option<String>) -> Result<(), Error> {
    if ctx.json {
        return ctx.print_json(&Shredded {
            already_shredded: true,
            receipt: None,
            shredded_at: format_time(at_ms),
            vault,
        });
    }
    writeln!(
        ctx.out,
        "The vault in {} was already shredded at {}; only its tombstone remains.",
        ctx.dir.display(),
        ctx.time(at_ms)
    )?;
    Ok(())
}

/// `vigil shred --json`.
#[derive(Debug, Serialize)]
struct Shredded {
    /// Whether it was shredded before this command (then `receipt` is null).
    already_shredded: bool,
    receipt: Option<ReceiptJson>,
    shredded_at: String,
    /// The vault's id; null if its tombstone cannot be read.
    vault: Option<String>,
}

/// The node's deletion receipt; all null but `verified` when it does not verify.
#[derive(Debug, Default, Serialize)]
struct ReceiptJson {
    alerts: Option<u64>,
    blobs: Option<u64>,
    bytes: Option<u64>,
    deleted_at: Option<String>,
    grants: Option<u64>,
    kept_unseen_alerts: Option<u64>,
    /// Device ids (hex) the node will tell, as `vigil status` shows them.
    devices: Option<Vec<String>>,
    verified: bool,
}
