//! The resident CLI (`vigil`): commands over a local vault.
//!
//! [`run`] parses the arguments, runs one command and turns every failure
//! into a one-line `error: ...` on stderr and a documented exit code (see
//! `vigil --help`); with `--json`, into `{"error": {"code", "message"}}` on
//! stdout instead, with the same exit code (README, "JSON output"). The vault's library (`vigil-device`) does the work; this
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
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // Clap's refusals come before there is a `Cli` to ask: a script that
    // passed --json must get JSON for those too.
    let json = wants_json(&args);
    // A panic from here on reports in the form the caller asked for.
    PANIC_AS_JSON.store(json, std::sync::atomic::Ordering::Relaxed);
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => return clap_error(&e, json),
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
        Err(e) => fail(e.code, &one_line(&e.message), cli.json),
    }
}

/// Whether `--json` is among the arguments (before a `--`, after which
/// every argument is a value).
fn wants_json(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// `--json`'s error object.
#[derive(serde::Serialize)]
struct ErrorJson<'a> {
    error: ErrorBody<'a>,
}

/// Its fields: the exit code's stable name and the one-line message.
#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    code: &'static str,
    message: &'a str,
}

/// Reports a failure (`message` on one line, without `error: `) and
/// returns its exit code: as JSON on stdout with `--json`, else on stderr.
fn fail(code: u8, message: &str, json: bool) -> ExitCode {
    let doc = ErrorJson {
        error: ErrorBody {
            code: exit::name(code),
            message,
        },
    };
    // On one line, so it is also the last line of `pair join`'s JSON lines.
    // Two strings always serialize; were it to fail, the text still goes out.
    if let Some(s) = json.then(|| serde_json::to_string(&doc).ok()).flatten() {
        let mut out = std::io::stdout().lock();
        // A closed stdout leaves only the exit code to tell.
        let _ = writeln!(out, "{s}").and_then(|()| out.flush());
        return ExitCode::from(code);
    }
    // Messages may carry a node's words or a path: escaped on a terminal,
    // so they cannot drive it (JSON has its own escaping).
    eprintln!("error: {}", printable(message));
    ExitCode::from(code)
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

/// Clap's own errors, on one line with its suggestions; help and version
/// go to stdout as usual.
fn clap_error(e: &clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand if !json => {
            let _ = e.print();
            return ExitCode::from(exit::USAGE);
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            return fail(exit::USAGE, "a subcommand is required (see --help)", json);
        }
        _ => {}
    }
    let mut msg = clap_message(&e.render().to_string(), suggestion(e).is_some());
    if let Some(s) = suggestion(e) {
        msg = format!("{msg}; {s}");
    }
    fail(exit::USAGE, &format!("{msg} (see --help)"), json)
}

/// Clap's rendered error on one line: its first paragraph (the error) and
/// its `tip:` lines, not the usage; without the "similar" tips when
/// [`suggestion`] words them instead.
fn clap_message(text: &str, skip_similar: bool) -> String {
    let mut paragraphs = text.split("\n\n").map(str::trim);
    let first = one_line(paragraphs.next().unwrap_or_default());
    let mut parts = vec![first.strip_prefix("error: ").unwrap_or(&first).to_owned()];
    parts.extend(
        paragraphs
            .flat_map(str::lines)
            .map(str::trim)
            .filter(|l| l.starts_with("tip: ") && !(skip_similar && l.contains(" similar ")))
            .map(one_line),
    );
    parts.join("; ")
}

/// Clap's typo suggestions (`recrod` → `record`, `--vualt` → `--vault`),
/// best first: clap lists them best last, which reads backwards on one line.
fn suggestion(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    [
        ContextKind::SuggestedSubcommand,
        ContextKind::SuggestedArg,
        ContextKind::SuggestedValue,
    ]
    .into_iter()
    .find_map(|kind| {
        let names: Vec<String> = match e.get(kind)? {
            ContextValue::String(s) => vec![format!("'{s}'")],
            ContextValue::Strings(v) => v.iter().rev().map(|s| format!("'{s}'")).collect(),
            _ => return None,
        };
        let (best, rest) = names.split_first()?;
        Some(if rest.is_empty() {
            format!("did you mean {best}?")
        } else {
            format!("did you mean {best}? (or {})", rest.join(", "))
        })
    })
}

/// A bug must still end with one line, not a backtrace.
/// Whether a panic is reported as `--json`'s error object on stdout.
static PANIC_AS_JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The exit code of a panic (Rust's own, documented in the README as the
/// `internal` error): a bug, never an expected failure.
pub(crate) const PANIC_EXIT: u8 = 101;

/// How a panic with `message` is reported: the JSON error object (code
/// `internal`) for stdout, or the `error: ...` line for stderr.
fn panic_report(message: &str, json: bool) -> String {
    let text = format!("internal error ({}); please report it", one_line(message));
    if json {
        let doc = ErrorJson {
            error: ErrorBody {
                code: exit::name(PANIC_EXIT),
                message: &text,
            },
        };
        if let Ok(s) = serde_json::to_string(&doc) {
            return s;
        }
    }
    format!("error: {}", printable(&text))
}

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
        let json = PANIC_AS_JSON.load(std::sync::atomic::Ordering::Relaxed);
        let report = panic_report(&format!("{msg}{at}"), json);
        if json {
            // Stdout, as every `--json` error: a script reads one object
            // there and nothing on stderr. The exit code is the panic's.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{report}").and_then(|()| out.flush());
        } else {
            eprintln!("{report}");
        }
    }));
}

#[cfg(test)]
mod panic_tests {
    use super::*;

    #[test]
    fn a_panic_under_json_is_the_internal_error_object() {
        let r = panic_report("index out of bounds\nat x.rs:3", true);
        let v: serde_json::Value = serde_json::from_str(&r).expect("one JSON object");
        assert_eq!(v["error"]["code"], "internal");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.starts_with("internal error (index out of bounds"), "{m}");
        assert!(!r.contains('\n'), "one line: {r}");
        let t = panic_report("boom", false);
        assert_eq!(t, "error: internal error (boom); please report it");
    }
}
