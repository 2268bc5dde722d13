//! `vigil unretract`: take back a retraction.

use std::io::Write;

use serde::Serialize;

use crate::common::Error;
use crate::common::time::format_time;
use crate::resident::cli::*;
use crate::resident::context::Ctx;
use crate::resident::fmt::*;

/// `vigil unretract`.
pub(crate) fn run(ctx: &mut Ctx, args: &UnretractArgs) -> Result<(), Error> {
    let mut vault = ctx.open()?;
    let r = find_reading(vault.log(), &args.id)?;
    if vault.log().retraction(r.id).is_none() {
        return Err(Error::usage(format!(
            "reading {} is not retracted (nothing was changed)",
            reading_line(&r, &ctx.zone)
        )));
    }
    let before = vault.pending_alerts()?.len();
    let taken_back = vault.unretract(r.id, ctx.now_ms)?;
    let queued = vault.pending_alerts()?.len().saturating_sub(before);
    if ctx.json {
        return ctx.print_json(&Unretracted {
            alerts_queued: queued,
            id: r.id.to_string(),
            reason: &taken_back.reason,
            retracted: false,
            retracted_at: format_time(taken_back.time_ms),
        });
    }
    writeln!(
        ctx.out,
        "Unretracted {}: it counts again in views, summaries, exports and alerts (it was retracted at {}: {:?})",
        reading_line(&r, &ctx.zone),
        ctx.time(taken_back.time_ms),
        taken_back.reason
    )?;
    if queued > 0 {
        writeln!(
            ctx.out,
            "A fever alert is queued for the community node; it is sent at the next `vigil sync`."
        )?;
    }
    Ok(())
}

/// `vigil unretract --json`.
#[derive(Debug, Serialize)]
struct Unretracted<'a> {
    alerts_queued: usize,
    id: String,
    reason: &'a str,
    retracted: bool,
    retracted_at: String,
}
