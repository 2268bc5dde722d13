//! The community node program (`vigil-node`): serve, code, alerts, residents, sweep.
//!
//! [`run`] parses the arguments, runs one command and turns every failure
//! into a one-line `error: ...` on stderr and an exit code (0 success, 1
//! failure, 2 bad input). The relay itself lives in `vigil-node` and the
//! transport in `vigil-net`; this module wires them into a long-running
//! service and gives operators commands over its store:
//!
//! - `serve` runs the QUIC endpoint, an admin socket (`DATA/admin.sock`), a
//!   periodic sweeper, and stops gracefully on SIGINT/SIGTERM;
//! - `alerts`, `alerts ack`, `residents`, `sweep` ask the serving node over
//!   the admin socket, or open the store directly when no node is serving
//!   (sled allows one process per store);
//! - `code` prints the enrolment code (text and QR) from the identity and the
//!   address `serve` recorded in `DATA/node.json`.

mod admin;
mod channel;
mod cli;
mod code;
mod commands;
mod config;
mod hooks;
mod serve;
mod util;
mod web;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use tracing_subscriber::EnvFilter;

use crate::common::Error;
use cli::{AlertsAction, Cli, Command, LogFormat, ResidentsAction, StaffAction, WebhookAction};
use config::Settings;

/// Runs `vigil-node` with these arguments (the first is the program name).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => return clap_error(&e),
    };
    match execute(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.one_line());
            ExitCode::from(e.exit_code())
        }
    }
}

/// Help and version as clap prints them; argument errors on one line.
fn clap_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
        }
        _ => {
            // clap's message is several lines (usage, tips): keep the part
            // before the usage, on one line.
            let text = e.to_string();
            let msg: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim_start().starts_with("Usage:"))
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect();
            let msg = msg.join(" ");
            let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
            eprintln!("error: {msg} (see `vigil-node --help`)");
            ExitCode::from(2)
        }
    }
}

/// Logs to stderr: the --log-level flag, else RUST_LOG, else the config
/// file's `log_level`, else `default`.
fn init_logging(s: &Settings, default: &str) -> Result<(), Error> {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (filter, source) = match (&s.log_flag, from_env, &s.log_file) {
        (Some(f), _, _) => (f.clone(), "--log-level"),
        (None, Some(f), _) => (f, "RUST_LOG"),
        (None, None, Some(f)) => (f.clone(), "log_level in the config file"),
        (None, None, None) => (default.to_owned(), "default"),
    };
    let filter = EnvFilter::try_new(&filter)
        .map_err(|e| Error::usage(format!("bad {source} `{filter}`: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let done = match s.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    // Already set (only when run twice in one process, as in tests): keep it.
    let _ = done;
    Ok(())
}

fn execute(cli: &Cli) -> Result<(), Error> {
    let serve_args = match &cli.command {
        Command::Serve(a) => Some(a),
        _ => None,
    };
    let sweep_grace = match &cli.command {
        Command::Sweep(a) => a.grace,
        _ => None,
    };
    let mut settings = config::resolve(
        cli,
        serve_args.and_then(|a| a.listen),
        serve_args.and_then(|a| a.advertise),
        serve_args.and_then(|a| a.sweep_every),
        serve_args.and_then(|a| a.grace).or(sweep_grace),
    )?;
    if let Some(a) = serve_args {
        if !a.webhooks.is_empty() {
            for u in &a.webhooks {
                hooks::check_url(u).map_err(Error::usage)?;
            }
            settings.webhooks = a.webhooks.clone();
        }
        settings.metrics = a.metrics.or(settings.metrics);
    }
    init_logging(
        &settings,
        if serve_args.is_some() { "info" } else { "warn" },
    )?;
    match &cli.command {
        Command::Serve(a) => {
            // Checked here, not by clap: the address may come from the file.
            if (a.http_secure_cookies || a.http_poll.is_some()) && settings.http.is_none() {
                return Err(Error::usage(
                    "--http-secure-cookies and --http-poll need the dashboard: give --http ADDR (or `http` in the config file)",
                ));
            }
            serve::run(
                &settings,
                settings.http.map(|addr| serve::Dashboard {
                    addr,
                    secure_cookies: a.http_secure_cookies,
                    poll_every: a.http_poll,
                }),
            )
        }
        Command::Code(a) => code::run(settings.data_dir()?, a),
        Command::Alerts(a) => match &a.action {
            None => commands::alerts(settings.data_dir()?, a.unacked, a.json),
            Some(AlertsAction::Ack { id, by, note }) => {
                commands::ack(settings.data_dir()?, id, by, note.as_deref(), a.json)
            }
        },
        Command::Residents(a) => match &a.action {
            None => commands::residents(settings.data_dir()?, a.all, a.json),
            Some(ResidentsAction::Add {
                label,
                period_end,
                addr,
                no_qr,
            }) => commands::add_resident(
                &settings,
                &commands::NewResident {
                    label,
                    period_end: period_end.as_deref(),
                    addr: *addr,
                    no_qr: *no_qr,
                    json: a.json,
                },
            ),
            Some(ResidentsAction::Revoke { id }) => {
                commands::revoke_resident(settings.data_dir()?, id, a.json)
            }
        },
        Command::Sweep(a) => commands::sweep(settings.data_dir()?, settings.grace, a.json),
        Command::Staff(a) => match &a.action {
            StaffAction::Add {
                name,
                password_stdin,
            } => commands::staff_add(settings.data_dir()?, name, *password_stdin),
            StaffAction::List => commands::staff_list(settings.data_dir()?, a.json),
            StaffAction::Remove { name } => commands::staff_remove(settings.data_dir()?, name),
        },
        Command::Webhook(a) => match a.action {
            WebhookAction::Secret => commands::webhook_secret(&settings),
        },
    }
}
