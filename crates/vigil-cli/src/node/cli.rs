//! The command line (clap).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::common::time::parse_duration;

const ABOUT: &str = "The Vigil community node: relays residents' encrypted sync traffic it \
cannot read, keeps the fever alerts residents granted it, and deletes everything when each \
monitoring period ends.";

const EXAMPLES: &str = "\
Examples:
  vigil-node serve --data /var/lib/vigil-node --listen 0.0.0.0:4433 --advertise 203.0.113.7:4433
  vigil-node code --data /var/lib/vigil-node
  vigil-node alerts --data /var/lib/vigil-node
  vigil-node alerts ack 3fa2c19b04de --by \"Mei Lin\" --note \"called, she is fine\" --data /var/lib/vigil-node
  vigil-node residents add --label \"Ana, flat 12B\" --period-end 14d --data /var/lib/vigil-node
  vigil-node residents --data /var/lib/vigil-node --json
  vigil-node residents revoke 3fa2c19b04de --data /var/lib/vigil-node
  vigil-node sweep --data /var/lib/vigil-node
  vigil-node webhook secret --data /var/lib/vigil-node
  vigil-node staff add Mei --data /var/lib/vigil-node
  vigil-node serve --data /var/lib/vigil-node --http 127.0.0.1:8080   # the staff dashboard

While `serve` runs, the other commands talk to it over DATA/admin.sock; when no node is \
serving they open the store directly. Exit codes: 0 success, 1 failure, 2 bad input.";

/// `vigil-node`'s arguments.
#[derive(Debug, Parser)]
#[command(name = "vigil-node", version, about = ABOUT, after_help = EXAMPLES)]
pub(crate) struct Cli {
    /// The node's data directory: identity, store, grant keys, admin socket
    /// (or `data` in the config file).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,
    /// A TOML config file; flags override what it sets.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Log level or filter (error, warn, info, debug, trace, or a RUST_LOG
    /// filter such as `vigil_node=debug`); overrides RUST_LOG. Default: info
    /// for `serve`, warn otherwise.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub(crate) log_level: Option<String>,
    /// Log format on stderr [default: text].
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub(crate) log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the node: the QUIC relay, the alert inbox, the periodic sweeper and
    /// the admin socket; prints the bound address and the enrolment code.
    /// SIGINT or SIGTERM stops it gracefully.
    #[command(after_help = "\
Example:
  vigil-node serve --data /var/lib/vigil-node --listen 0.0.0.0:4433 --advertise 203.0.113.7:4433
  vigil-node serve --config /etc/vigil-node.toml
  vigil-node serve --data /var/lib/vigil-node --http localhost:8080   # with the staff dashboard

Config file (TOML; every key optional, flags win):
  data = \"/var/lib/vigil-node\"      # relative to the config file
  listen = \"0.0.0.0:4433\"
  advertise = \"203.0.113.7:4433\"    # the address put in enrolment codes
  log_level = \"info\"
  log_format = \"json\"               # or \"text\"
  sweep_every = \"60s\"               # 90s, 15m, 2h, 1d
  grace = \"0s\"                      # keep expired data this long
  [limits]
  max_bytes_per_vault = 67108864
  max_blobs_per_vault = 100000
  pairing_ttl = \"15m\"
  max_pull_bytes = 4194304
  max_connections = 20000
  idle_timeout = \"30s\"
  max_tickets = 10000                # unused enrolment tickets at once
  metrics = \"127.0.0.1:9464\"        # GET /metrics (top-level key, before [limits])
  http = \"127.0.0.1:8080\"           # the staff dashboard (top-level key, before [limits])
  [webhooks]
  urls = [\"https://example.org/vigil-hook\"]   # each new alert is POSTed here
  secret = \"...\"                    # else DATA/webhook-secret (see `webhook secret`)")]
    Serve(ServeArgs),
    /// Print the enrolment code residents' devices need to reach and pin this
    /// node, as text and as a QR code.
    #[command(after_help = "\
Example:
  vigil-node code --data /var/lib/vigil-node
  vigil-node code --data /var/lib/vigil-node --addr 203.0.113.7:4433 --json

The address is --addr, else the node's `advertise` address, else the address it last bound.")]
    Code(CodeArgs),
    /// List the fever alerts in the inbox, or acknowledge one (`alerts ack ID`).
    #[command(after_help = "\
Example:
  vigil-node alerts --data /var/lib/vigil-node
  vigil-node alerts --data /var/lib/vigil-node --unacked --json
  vigil-node alerts ack 3fa2c19b04de --by \"Mei Lin\" --note \"called, she is fine\" --data /var/lib/vigil-node")]
    Alerts(AlertsArgs),
    /// Register residents (`residents add`: a one-time enrolment ticket),
    /// list them with their tickets' state, or revoke one (`residents revoke ID`).
    #[command(after_help = "\
Example:
  vigil-node residents add --label \"Ana, flat 12B\" --period-end 2026-12-10T00:00:00Z --data /var/lib/vigil-node
  vigil-node residents --data /var/lib/vigil-node
  vigil-node residents --data /var/lib/vigil-node --all --json
  vigil-node residents revoke 3fa2c19b04de --data /var/lib/vigil-node

Only a resident staff registered can enrol: hand them the ticket `residents add` prints (text and
QR code) with their wristband; their device enrols with `vigil enrol <ticket>`. Staff see the
resident's alerts under the label typed here, never one a device sends.")]
    Residents(ResidentsArgs),
    /// Delete now every vault, grant and alert whose monitoring period has
    /// ended (the running node also does this periodically).
    #[command(after_help = "\
Example:
  vigil-node sweep --data /var/lib/vigil-node
  vigil-node sweep --data /var/lib/vigil-node --grace 1h --json")]
    Sweep(SweepArgs),
    /// Staff accounts for the dashboard (`serve --http`): add, list, remove.
    #[command(after_help = "\
Example:
  vigil-node staff add Mei --data /var/lib/vigil-node
  printf '%s\\n' \"$PASSWORD\" | vigil-node staff add Mei --password-stdin --data /var/lib/vigil-node
  vigil-node staff list --data /var/lib/vigil-node
  vigil-node staff remove Mei --data /var/lib/vigil-node

Accounts live in DATA/staff.json (mode 0600, argon2id hashes); changes apply to a serving node at once.")]
    Staff(StaffArgs),
    /// Webhooks: print the secret their bodies are signed with.
    #[command(after_help = "\
Example:
  vigil-node webhook secret --data /var/lib/vigil-node

Webhooks themselves are `serve --webhook URL` (repeatable) or `[webhooks] urls` in the config file.")]
    Webhook(WebhookArgs),
}

/// A duration on the command line or in the config file: `90s`, `15m`,
/// `1h30m`, `1d`, or a bare number of seconds; at most a year.
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    const YEAR: Duration = Duration::from_secs(365 * 86_400);
    match parse_duration(s) {
        None => Err(format!("`{s}` is not a duration (e.g. 90s, 15m, 2h, 1d)")),
        Some(d) if d > YEAR => Err(format!("`{s}` is longer than a year")),
        Some(d) => Ok(d),
    }
}

/// A polling interval: a duration above zero.
fn poll_duration(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err(format!("`{s}`: give a duration above zero")),
        d => Ok(d),
    }
}

/// An address on the command line: `IP:PORT`, `[IPv6]:PORT` or
/// `HOST:PORT` (resolved now, see [`super::config::resolve_addr`]).
pub(crate) fn host_addr(s: &str) -> Result<SocketAddr, String> {
    super::config::resolve_addr(s)
}

/// `serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// UDP address to listen on, e.g. 0.0.0.0:4433 or localhost:4433 (port
    /// 0 picks a free port on the first start and keeps it after)
    /// [default: 0.0.0.0:4433].
    #[arg(long, value_name = "ADDR", value_parser = host_addr)]
    pub(crate) listen: Option<SocketAddr>,
    /// The address devices reach the node at, put in enrolment codes (when it
    /// differs from --listen, e.g. behind NAT or with 0.0.0.0).
    #[arg(long, value_name = "ADDR", value_parser = host_addr)]
    pub(crate) advertise: Option<SocketAddr>,
    /// How often to sweep expired data, e.g. 60s, 15m [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) sweep_every: Option<Duration>,
    /// Keep data this long after its period ends before sweeping it
    /// [default: 0s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) grace: Option<Duration>,
    /// Serve the staff dashboard on this TCP address, e.g. 127.0.0.1:8080
    /// or localhost:8080 (or `http` in the config file) [default: off].
    /// Staff log in with accounts from `vigil-node staff add`.
    #[arg(long, value_name = "ADDR", value_parser = host_addr)]
    pub(crate) http: Option<SocketAddr>,
    /// Mark the dashboard's cookies Secure: set this when a TLS proxy fronts
    /// the dashboard (browsers then send them over HTTPS only).
    #[arg(long)]
    pub(crate) http_secure_cookies: bool,
    /// How often the dashboard re-reads the inbox for its live pages, e.g.
    /// 1s, 1m [default: 1s]. New alerts reach them at once regardless; the
    /// poll catches changes made elsewhere (`alerts ack` in a terminal).
    #[arg(long, value_name = "DURATION", value_parser = poll_duration)]
    pub(crate) http_poll: Option<Duration>,
    /// POST each new fever alert to this URL (http:// or https://; repeat
    /// for several). Replaces the config file's `[webhooks] urls`.
    #[arg(long = "webhook", value_name = "URL")]
    pub(crate) webhooks: Vec<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics, e.g.
    /// 127.0.0.1:9464 [default: off].
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics: Option<SocketAddr>,
}

/// `staff`.
#[derive(Debug, Args)]
pub(crate) struct StaffArgs {
    /// Print JSON.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) action: StaffAction,
}

/// `staff ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum StaffAction {
    /// Add a staff member who can log in to the dashboard; asks for the
    /// password twice on the terminal (or reads one line with
    /// --password-stdin). At least 10 characters; stored as an argon2id hash.
    Add {
        /// Their name, as the audit log will show it.
        name: String,
        /// Read the password from standard input (one line) instead of
        /// asking on the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the staff members.
    List,
    /// Remove a staff member: they can no longer log in, and their open
    /// dashboard sessions end.
    Remove {
        /// Their name.
        name: String,
    },
}

/// `webhook`.
#[derive(Debug, Args)]
pub(crate) struct WebhookArgs {
    #[command(subcommand)]
    pub(crate) action: WebhookAction,
}

/// `webhook ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum WebhookAction {
    /// Print the secret webhook bodies are signed with (HMAC-SHA256), to
    /// give to the receivers; created in the data directory at first use.
    #[command(after_help = "\
Example:
  vigil-node webhook secret --data /var/lib/vigil-node

The secret is the config file's `[webhooks] secret` if it sets one, else DATA/webhook-secret
(owner-only). Anyone holding it can forge deliveries: keep it with the receiver's settings only.")]
    Secret,
}

/// `code`.
#[derive(Debug, Args)]
pub(crate) struct CodeArgs {
    /// Put this address in the code instead (e.g. the public address).
    #[arg(long, value_name = "ADDR", value_parser = host_addr)]
    pub(crate) addr: Option<SocketAddr>,
    /// Print the code only, without the QR code.
    #[arg(long)]
    pub(crate) no_qr: bool,
    /// Print JSON: the code, its parts and the QR code's text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `alerts`.
#[derive(Debug, Args)]
pub(crate) struct AlertsArgs {
    /// Only alerts no one has acknowledged yet.
    #[arg(long)]
    pub(crate) unacked: bool,
    /// Print JSON.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) action: Option<AlertsAction>,
}

/// `alerts ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AlertsAction {
    /// Acknowledge an alert: staff have seen it and act on it.
    #[command(after_help = "\
Example:
  vigil-node alerts ack 3fa2c19b04de --by \"Mei Lin\" --note \"called, she is fine\" --data /var/lib/vigil-node

ID is the alert's id from `vigil-node alerts`, or a unique prefix of it (at least 4 hex digits).")]
    Ack {
        /// The alert's id (or a unique prefix of at least 4 hex digits).
        id: String,
        /// Who acknowledges (at most 64 characters), stored with the alert.
        #[arg(long, value_name = "NAME")]
        by: String,
        /// What was done or found (at most 500 characters).
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
}

/// `residents`.
#[derive(Debug, Args)]
pub(crate) struct ResidentsArgs {
    /// Include revoked residents, ended periods and residents who ended
    /// monitoring (with their status).
    #[arg(long)]
    pub(crate) all: bool,
    /// Print JSON.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) action: Option<ResidentsAction>,
}

/// `residents ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ResidentsAction {
    /// Register a resident: prints a one-time enrolment ticket (the node's
    /// code, a ticket id and its secret) as text and as a QR code. The node
    /// keeps only a hash of the secret: the ticket is shown this once.
    #[command(after_help = "\
Example:
  vigil-node residents add --label \"Ana, flat 12B\" --data /var/lib/vigil-node
  vigil-node residents add --label \"Ana, flat 12B\" --period-end 2026-12-10T00:00:00Z --addr 203.0.113.7:4433

The label is what the inbox shows with this resident's alerts: invisible and control characters
are removed, at most 80 characters. An unused ticket expires at the period end; the resident's
mailbox and alerts end then at the latest.")]
    Add {
        /// How staff will see this resident (name, flat), at most 80 characters.
        #[arg(long)]
        label: String,
        /// End of the resident's period: an RFC 3339 time, or a duration from
        /// now such as 14d [default: 14d].
        #[arg(long, value_name = "TIME|DURATION")]
        period_end: Option<String>,
        /// Put this address in the ticket instead (as for `vigil-node code`).
        #[arg(long, value_name = "ADDR", value_parser = host_addr)]
        addr: Option<SocketAddr>,
        /// Print the ticket only, without the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// Revoke a ticket: unused, it can no longer enrol anyone; used, the
    /// resident's grant ends (its key is destroyed, their alerts are refused;
    /// alerts staff have not acknowledged stay until they do).
    #[command(after_help = "\
Example:
  vigil-node residents revoke 3fa2c19b04de --data /var/lib/vigil-node

ID is the ticket's id from `vigil-node residents`, or a unique prefix of it (at least 4 hex digits).")]
    Revoke {
        /// The ticket's id (or a unique prefix of at least 4 hex digits).
        id: String,
    },
}

/// `sweep`.
#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    /// Keep data this long after its period ends, e.g. 1h [default: the
    /// config file's `grace`, else 0s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) grace: Option<Duration>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_are_at_most_a_year() {
        assert_eq!(duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(duration("365d").is_ok());
        assert!(duration("400d").unwrap_err().contains("longer than a year"));
        assert!(duration("3 weeks").unwrap_err().contains("not a duration"));
    }
}
