//! The resident CLI (`vigil`): commands over a local vault.
//!
//! [`run`] parses the arguments, runs one command and turns every failure
//! into a one-line `error: ...` on stderr and a documented exit code (see
//! `vigil --help`). The vault's library (`vigil-device`) does the work; this
//! module reads the clock, finds the files and prints.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
pub(crate) mod context;
mod error;
mod fmt;

use crate::common::text::printable;
use crate::common::time::{Zone, now_ms};
use crate::common::{Error as CliError, exit, one_line};
use cli::Cli;
use context::{Ctx, default_key_file, default_vault_dir};

/// Runs `vigil` with these arguments (the first is the program name) and
/// returns the process's exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    install_panic_hook();
    if std::env::var_os("VIGIL_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("VIGIL_LOG"))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => return clap_error(&e),
    };
    let stdout = std::io::stdout();
    let result = context(&cli, Box::new(stdout.lock())).and_then(|mut ctx| {
        let r = commands::run(&mut ctx, &cli.command);
        let flushed = ctx.out.flush().map_err(CliError::from);
        match r.and(flushed) {
            // Output cut short by a closed pipe (`vigil log | head`) is not a failure.
            Err(e) if e.is_broken_pipe() => Ok(()),
            r => r,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Messages may carry a node's words or a path: escaped, so
            // they cannot drive the terminal.
            eprintln!("error: {}", printable(&one_line(&e.message)));
            ExitCode::from(e.code)
        }
    }
}

fn context(cli: &Cli, out: Box<dyn Write>) -> Result<Ctx, CliError> {
    let dir = match &cli.vault {
        Some(d) if !d.as_os_str().is_empty() => d.clone(),
        _ => default_vault_dir()?,
    };
    let key_file = match &cli.key_file {
        Some(k) if !k.as_os_str().is_empty() => k.clone(),
        _ => default_key_file(&dir),
    };
    let real = now_ms();
    // The display zone, once for the whole command; library code never
    // reads it.
    let zone = if cli.utc {
        Zone::utc()
    } else {
        let (zone, note) = Zone::system();
        if let Some(note) = note {
            eprintln!("{}", printable(&note));
        }
        zone
    };
    Ok(Ctx {
        dir,
        key_file,
        now_ms: cli.now.map_or(real, |t| t.resolve(real)),
        json: cli.json,
        zone,
        out,
    })
}

/// Clap's own errors, on one line; help and version go to stdout as usual.
fn clap_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(exit::USAGE);
        }
        _ => {}
    }
    let text = e.render().to_string();
    let first: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let msg = first.join(" ");
    let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
    eprintln!("error: {msg} (see --help)");
    ExitCode::from(exit::USAGE)
}

/// A bug must still end with one line, not a backtrace.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error ({}{at}); please report it",
            one_line(&msg)
        );
    }));
}
