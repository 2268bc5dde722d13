//! `vigil retract`: take a wrong reading out of every view.

use std::io::Write;

use serde::Serialize;

use crate::common::Error;
use crate::common::input::text_arg;
use crate::resident::cli::*;
use crate::resident::context::Ctx;
use crate::resident::fmt::*;

/// `vigil retract`.
pub(crate) fn run(ctx: &mut Ctx, args: &RetractArgs) -> Result<(), Error> {
    let reason = text_arg(&args.reason, "reason")?;
    let mut vault = ctx.open()?;
    let r = find_reading(vault.log(), &args.id)?;
    // Retracting again would silently replace the first reason.
    if let Some(x) = vault.log().retraction(r.id) {
        return Err(Error::usage(format!(
            "reading {} is already retracted (at {}, reason {:?}); nothing was changed. To count it again: `vigil unretract {}`",
            reading_line(&r, &ctx.zone),
            ctx.time(x.time_ms),
            x.reason,
            short_id(r.id)
        )));
    }
    vault.retract(r.id, &reason, ctx.now_ms)?;
    if ctx.json {
        return ctx.print_json(&Retracted {
            id: r.id.to_string(),
            reason: &reason,
            retracted: true,
        });
    }
    writeln!(
        ctx.out,
        "Retracted {}: it no longer counts in views, summaries, exports or alerts",
        reading_line(&r, &ctx.zone)
    )?;
    Ok(())
}

/// `vigil retract --json`.
#[derive(Debug, Serialize)]
struct Retracted<'a> {
    id: String,
    reason: &'a str,
    retracted: bool,
}
