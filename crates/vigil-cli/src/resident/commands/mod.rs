//! One file per `vigil` subcommand; [`run`] picks the one to run.
//!
//! Each command's `--json` output is a `#[derive(Serialize)]` type in its
//! file. Their fields are declared in alphabetical order: that is the order
//! the output has always had (serde_json sorts a `json!` map), and scripts
//! may compare it byte for byte.

use super::cli::Command;
use super::context::Ctx;
use crate::common::Error;

mod alerts;
mod annotate;
mod check_in;
mod conflicts;
mod disclosures;
mod enrol;
mod export;
mod init;
mod log;
mod pair;
mod record;
mod record_gatt;
mod recover;
mod retract;
mod shred;
mod status;
mod summary;
mod sync;
mod unretract;
mod watch;

/// Runs one command.
pub(crate) fn run(ctx: &mut Ctx, command: &Command) -> Result<(), Error> {
    match command {
        Command::Init(a) => init::run(ctx, a),
        Command::Record(a) => record::run(ctx, a),
        Command::RecordGatt(a) => record_gatt::run(ctx, a),
        Command::Log(a) => log::run(ctx, a),
        Command::Summary(a) => summary::run(ctx, a),
        Command::Annotate(a) => annotate::run(ctx, a),
        Command::Retract(a) => retract::run(ctx, a),
        Command::Unretract(a) => unretract::run(ctx, a),
        Command::CheckIn(a) => check_in::run(ctx, a),
        Command::Conflicts(a) => conflicts::run(ctx, a),
        Command::Disclosures => disclosures::run(ctx),
        Command::Alerts => alerts::run(ctx),
        Command::Status => status::run(ctx),
        Command::Enrol(a) => enrol::run(ctx, a),
        Command::Sync(a) => sync::run(ctx, a),
        Command::Watch(a) => watch::run(ctx, a),
        Command::Pair(a) => pair::run(ctx, &a.action),
        Command::Export(a) => export::run(ctx, a),
        Command::Shred(a) => shred::run(ctx, a),
        Command::Recover(a) => recover::run(ctx, a),
    }
}
