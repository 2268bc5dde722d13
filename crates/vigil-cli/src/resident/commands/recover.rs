//! `vigil recover`: rebuild a damaged vault from the node.

use std::io::{BufRead, Write};

use serde::Serialize;
use vigil_device::{Period, RecoverError, Vault};

use crate::common::{Error, exit, one_line};
use crate::resident::cli::*;
use crate::resident::context::{Ctx, connect};
use crate::resident::error::open_error;

/// `vigil recover`.
pub(crate) fn run(ctx: &mut Ctx, args: &RecoverArgs) -> Result<(), Error> {
    if ctx.tombstone().is_some() {
        return Err(Error::new(
            exit::SHREDDED,
            format!(
                "the vault in {} was shredded: there is nothing to recover",
                ctx.dir.display()
            ),
        ));
    }
    if !ctx.holds_vault() && !ctx.dir.join(vigil_device::MARKER_FILE).exists() {
        return Err(Error::new(
            exit::NO_VAULT,
            format!(
                "no vault in {}: nothing to recover (pass --vault DIR)",
                ctx.dir.display()
            ),
        ));
    }
    let code = ctx.node_code(args.node.as_deref())?;
    let period = args
        .start
        .map(|s| Period::days(s.resolve(ctx.now_ms), args.days.unwrap_or(7)));
    if !args.yes {
        let mut err = std::io::stderr();
        write!(
            err,
            "Rebuild the vault in {} from node {}? The damaged store is moved aside (kept in the vault directory); readings the node never received, and fever-alert grants, are not recovered.\nType `yes` to rebuild: ",
            ctx.dir.display(),
            code.addr
        )?;
        err.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "yes" | "y") {
            return Err(Error::failed("not confirmed: nothing was changed"));
        }
    }
    let mut conn = connect(&code)?;
    let (vault, report) = Vault::recover(&ctx.dir, &ctx.key_store(), &mut conn, period)
        .map_err(|e| recover_error(ctx, e))?;
    conn.close();
    ctx.synced_with(&code)?;
    let damaged_dir = report.damaged_dir.display().to_string();
    if ctx.json {
        return ctx.print_json(&Recovered {
            damaged_dir,
            device: vault.device_id().to_string(),
            grants_lost: report.grants_lost,
            node: code.addr.to_string(),
            readings: report.readings,
            received: report.sync.received,
            received_snapshot: report.sync.received_snapshot,
            rejected: report.sync.rejected,
            vault: vault.vault_id().to_string(),
        });
    }
    writeln!(
        ctx.out,
        "Rebuilt vault {} from node {}: {} reading(s) recovered ({} bundle(s) received{}).\nThe damaged files are kept in {damaged_dir}; shredding the vault deletes them too.\nReadings this device recorded but never synced were not at the node and are not recovered.",
        vault.vault_id(),
        code.addr,
        report.readings,
        report.sync.received,
        if report.sync.received_snapshot {
            " and a snapshot"
        } else {
            ""
        }
    )?;
    if report.grants_lost {
        writeln!(
            ctx.out,
            "Fever-alert grants were kept only in the damaged store: if you had enrolled, run `vigil enrol <node code> --label ...` again."
        )?;
    }
    if report.sync.rejected > 0 {
        writeln!(
            ctx.out,
            "Warning: {} blob(s) from the node did not decrypt and were ignored (tampered or not ours).",
            report.sync.rejected
        )?;
    }
    Ok(())
}

fn recover_error(ctx: &Ctx, e: RecoverError) -> Error {
    match e {
        RecoverError::Open(e) => open_error(e, &ctx.dir, &ctx.key_file, ctx.now_ms, &ctx.zone),
        RecoverError::PeriodUnknown => Error::usage(format!(
            "the vault's period is not recorded in {} (its marker file is missing or damaged): pass --start TIME and --days N as given to `vigil init`",
            ctx.dir.display()
        )),
        RecoverError::NotDamaged(_) => Error::usage(format!(
            "the vault in {} opens normally: there is nothing to recover",
            ctx.dir.display()
        )),
        RecoverError::Sync(e) => Error::failed(format!(
            "the vault was rebuilt, but not yet synced from the node ({}): run `vigil sync`",
            one_line(&e.to_string())
        )),
        e => Error::failed(one_line(&e.to_string())),
    }
}

/// `vigil recover --json`.
#[derive(Debug, Serialize)]
struct Recovered {
    damaged_dir: String,
    device: String,
    grants_lost: bool,
    node: String,
    readings: usize,
    received: usize,
    received_snapshot: bool,
    rejected: usize,
    vault: String,
}
