//! `vigil annotate`: a note on a reading.

use std::io::Write;

use serde::Serialize;

use crate::common::Error;
use crate::common::input::text_arg;
use crate::resident::cli::*;
use crate::resident::context::Ctx;
use crate::resident::fmt::*;

/// `vigil annotate`.
pub(crate) fn run(ctx: &mut Ctx, args: &AnnotateArgs) -> Result<(), Error> {
    let text = text_arg(&args.text, "note")?;
    if text.trim().is_empty() {
        return Err(Error::usage(
            "the note is empty: write what to note about the reading (nothing was changed)",
        ));
    }
    let mut vault = ctx.open()?;
    let r = find_reading(vault.log(), &args.id)?;
    vault.annotate(r.id, &text)?;
    if ctx.json {
        return ctx.print_json(&Annotated {
            annotation: &text,
            id: r.id.to_string(),
        });
    }
    writeln!(ctx.out, "Annotated {}", reading_line(&r, &ctx.zone))?;
    Ok(())
}

/// `vigil annotate --json`.
#[derive(Debug, Serialize)]
struct Annotated<'a> {
    annotation: &'a str,
    id: String,
}
