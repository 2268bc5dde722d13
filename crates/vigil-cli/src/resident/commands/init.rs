//! `vigil init`: a new vault for a monitoring period.

use std::io::Write;

use serde::Serialize;
use vigil_device::{Period, Vault};

use crate::common::Error;
use crate::common::exit;
use crate::common::time::format_duration;
use crate::resident::cli::*;
use crate::resident::context::{Ctx, rng};
use crate::resident::error::open_error;
use crate::resident::fmt::PeriodJson;

const DAY_MS: i64 = 86_400_000;
/// How far ahead a period may start.
const MAX_START_AHEAD_MS: i64 = 30 * DAY_MS;

/// `vigil init`.
pub(crate) fn run(ctx: &mut Ctx, args: &InitArgs) -> Result<(), Error> {
    if ctx.dir_is_not_a_directory() {
        return Err(Error::usage(format!(
            "{} is a file, not a vault directory: pass --vault with a new or empty directory (nothing was changed)",
            ctx.dir.display()
        )));
    }
    if let Some(t) = ctx.tombstone() {
        return Err(Error::new(
            exit::SHREDDED,
            format!(
                "{} holds the tombstone of a vault shredded at {}: choose another --vault directory",
                ctx.dir.display(),
                ctx.time(t.shredded_at_ms)
            ),
        ));
    }
    if ctx.holds_vault() {
        return Err(Error::usage(format!(
            "{} already holds a vault (see `vigil status`)",
            ctx.dir.display()
        )));
    }
    if ctx.joiner_pending() {
        return Err(Error::usage(format!(
            "{} is waiting to join a vault (`vigil pair join`); use another --vault directory",
            ctx.dir.display()
        )));
    }
    if ctx.key_file.exists() {
        return Err(Error::usage(format!(
            "the key file {} already exists (another vault's key?): pass --key-file FILE",
            ctx.key_file.display()
        )));
    }
    let start = args.start.map_or(ctx.now_ms, |t| t.resolve(ctx.now_ms));
    // A start years ahead is a typo far more often than a plan: the vault
    // would sit unused, and its period's end with it.
    if start > ctx.now_ms + MAX_START_AHEAD_MS {
        return Err(Error::usage(format!(
            "the period would start at {}, {} in the future: a period may start at most {} days from now (nothing was created)",
            ctx.time(start),
            format_duration(start - ctx.now_ms),
            MAX_START_AHEAD_MS / DAY_MS
        )));
    }
    let period = Period::days(start, args.days);
    if period.end_ms <= ctx.now_ms {
        return Err(Error::usage(format!(
            "that period ({} to {}) is already over",
            ctx.time(period.start_ms),
            ctx.time(period.end_ms)
        )));
    }
    if let Some(parent) = ctx.key_file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::create_dir_all(&ctx.dir)?;
    let vault = Vault::create(&ctx.dir, period, Box::new(ctx.key_store()), &mut rng())
        .map_err(|e| open_error(e, &ctx.dir, &ctx.key_file, ctx.now_ms, &ctx.zone))?;
    if ctx.json {
        return ctx.print_json(&Created {
            device: vault.device_id().to_string(),
            key_file: ctx.key_file.display().to_string(),
            period: PeriodJson::of(period),
            vault: vault.vault_id().to_string(),
            vault_dir: ctx.dir.display().to_string(),
        });
    }
    let starts = if start > ctx.now_ms {
        format!(
            "; it starts in {}, and readings before then are refused",
            format_duration(start - ctx.now_ms)
        )
    } else {
        String::new()
    };
    writeln!(
        ctx.out,
        "Created vault {} in {}\nPeriod: {} to {} ({} day{}){starts}; then the vault is shredded.\nKey file: {} (keep it out of backups; without it the vault cannot be read).\nNext: `vigil enrol <ticket>` with the ticket staff gave you (for sync and fever alerts), `vigil record temperature 36.8`.",
        vault.vault_id(),
        ctx.dir.display(),
        ctx.time(period.start_ms),
        ctx.time(period.end_ms),
        args.days,
        if args.days == 1 { "" } else { "s" },
        ctx.key_file.display()
    )?;
    Ok(())
}

/// `vigil init --json`.
#[derive(Debug, Serialize)]
struct Created {
    device: String,
    key_file: String,
    period: PeriodJson,
    vault: String,
    vault_dir: String,
}
