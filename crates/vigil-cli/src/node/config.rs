//! The optional TOML config file and how it combines with the flags
//! (flags win, then the file, then the defaults).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vigil_net::ServerConfig;
use vigil_node::RelayConfig;

use super::cli::duration as parse_duration;
use super::cli::{Cli, LogFormat};
use crate::common::Error;
use crate::common::time::ms;

/// The default listen address.
pub(crate) const DEFAULT_LISTEN: &str = "0.0.0.0:4433";
/// The default sweep interval.
pub(crate) const DEFAULT_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// A duration in the file: `"90s"` or a number of seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Seconds(u64),
    Text(String),
}

impl DurationValue {
    fn get(&self, key: &str) -> Result<Duration, String> {
        match self {
            DurationValue::Seconds(s) => Ok(Duration::from_secs(*s)),
            DurationValue::Text(t) => parse_duration(t).map_err(|e| format!("{key}: {e}")),
        }
    }
}

/// The file's contents. Unknown keys are errors, so a typo is not ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    data: Option<PathBuf>,
    listen: Option<String>,
    advertise: Option<String>,
    log_level: Option<String>,
    log_format: Option<LogFormat>,
    sweep_every: Option<DurationValue>,
    grace: Option<DurationValue>,
    #[serde(default)]
    limits: Limits,
    metrics: Option<String>,
    http: Option<String>,
    #[serde(default)]
    webhooks: WebhooksFile,
}

/// `[webhooks]`: where alerts are POSTed, and the secret they are signed
/// with (else the data directory's `webhook-secret`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhooksFile {
    #[serde(default)]
    urls: Vec<String>,
    secret: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    max_bytes_per_vault: Option<u64>,
    max_blobs_per_vault: Option<u64>,
    pairing_ttl: Option<DurationValue>,
    max_pull_bytes: Option<u32>,
    max_pull_bundles: Option<u32>,
    max_vaults: Option<u64>,
    max_grant_keys: Option<u64>,
    max_pairing_slots: Option<u64>,
    max_store_bytes: Option<u64>,
    max_period: Option<DurationValue>,
    max_devices_per_vault: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    retry_from: Option<usize>,
    max_concurrent_streams: Option<u32>,
    pre_auth_max_frame: Option<usize>,
    pre_auth_bytes: Option<usize>,
    pre_auth_requests: Option<usize>,
    pre_auth_streams: Option<u32>,
    idle_timeout: Option<DurationValue>,
    max_tickets: Option<u64>,
}

/// Everything a command may need, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The data directory, if any was given.
    pub(crate) data: Option<PathBuf>,
    /// Where `serve` listens.
    pub(crate) listen: SocketAddr,
    /// The address for enrolment codes, if it differs.
    pub(crate) advertise: Option<SocketAddr>,
    /// Explicit log filter (flag, else file); RUST_LOG sits between them.
    pub(crate) log_flag: Option<String>,
    /// The file's log level.
    pub(crate) log_file: Option<String>,
    /// Log format.
    pub(crate) log_format: LogFormat,
    /// Sweep interval.
    pub(crate) sweep_every: Duration,
    /// Grace after a period's end.
    pub(crate) grace: Duration,
    /// Relay limits.
    pub(crate) relay: RelayConfig,
    /// Endpoint settings.
    pub(crate) server: ServerConfig,
    /// Where each new alert is POSTed (`--webhook`, else the file's).
    pub(crate) webhooks: Vec<String>,
    /// The file's webhook secret, if it sets one.
    pub(crate) webhook_secret: Option<String>,
    /// Where `serve` answers GET /metrics, if anywhere.
    pub(crate) metrics: Option<SocketAddr>,
    /// Where `serve` serves the staff dashboard (`--http`, else the
    /// file's `http`), if anywhere.
    pub(crate) http: Option<SocketAddr>,
}

impl Settings {
    /// The data directory, or the error that says how to give one.
    pub(crate) fn data_dir(&self) -> Result<&Path, Error> {
        self.data.as_deref().ok_or_else(|| {
            Error::usage("no data directory: pass --data DIR (or set `data` in the --config file)")
        })
    }
}

fn addr(key: &str, s: &str) -> Result<SocketAddr, String> {
    resolve_addr(s).map_err(|e| format!("{key}: {e}"))
}

/// `IP:PORT`, `[IPv6]:PORT`, or `HOST:PORT` with the host name resolved
/// now (the system's resolver: /etc/hosts, then DNS); of a name's
/// addresses, the first IPv4 one, else the first. Codes and the socket
/// hold an address, never a name.
pub(crate) fn resolve_addr(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    let example = "like 0.0.0.0:4433, [::]:4433 or localhost:4433";
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!(
            "`{s}` is not an address (no port): give HOST:PORT, {example}"
        ));
    };
    let port: u16 = port.parse().map_err(|_| {
        format!("`{s}`: `{port}` is not a port (0–65535); give an address {example}")
    })?;
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !name_ok {
        return Err(format!("`{s}` is not an address {example}"));
    }
    let all: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("`{host}` does not resolve to an address ({e}); give an IP address or a name this machine resolves"))?
        .collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| format!("`{host}` does not resolve to an address; give an IP address"))
}

/// Line and column (1-based) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

fn load_file(path: &Path) -> Result<File, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("config file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e: toml::de::Error| {
        let at = e
            .span()
            .map(|s| {
                let (l, c) = line_col(&text, s.start);
                format!(" at line {l}, column {c}")
            })
            .unwrap_or_default();
        Error::usage(format!(
            "config file {}{at}: {}",
            path.display(),
            e.message().trim()
        ))
    })
}

/// The flag if given, else the file's value (read and checked), else `None`.
fn merge<T, F>(
    flag: Option<T>,
    file: Option<F>,
    read: impl FnOnce(F) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match flag {
        Some(v) => Ok(Some(v)),
        None => file.map(read).transpose(),
    }
}

/// Combines the flags and the config file: flags win, then the file, then
/// the defaults. `serve` flags are passed separately since only `serve`
/// has them.
pub(crate) fn resolve(
    cli: &Cli,
    listen: Option<SocketAddr>,
    advertise: Option<SocketAddr>,
    sweep_every: Option<Duration>,
    grace: Option<Duration>,
) -> Result<Settings, Error> {
    let file = match &cli.config {
        Some(p) => load_file(p)?,
        None => File::default(),
    };
    let config = cli.config.as_deref().unwrap_or(Path::new(""));
    let bad = |e: String| Error::usage(format!("config file {}: {e}", config.display()));
    // A relative `data` in the file is relative to the file.
    let base = config.parent().unwrap_or(Path::new(""));
    let data = cli.data.clone().or_else(|| file.data.map(|d| base.join(d)));
    let listen = merge(listen, file.listen, |s| addr("listen", &s))
        .map_err(bad)?
        .map_or_else(
            || DEFAULT_LISTEN.parse().map_err(|_| bad("default".into())),
            Ok,
        )?;
    let advertise = merge(advertise, file.advertise, |s| addr("advertise", &s)).map_err(bad)?;
    let sweep_every = merge(sweep_every, file.sweep_every, |v| v.get("sweep_every"))
        .map_err(bad)?
        .unwrap_or(DEFAULT_SWEEP_EVERY);
    if sweep_every < Duration::from_secs(1) {
        return Err(Error::usage("the sweep interval must be at least 1s"));
    }
    let grace = merge(grace, file.grace, |v| v.get("grace"))
        .map_err(bad)?
        .unwrap_or_default();
    let l = file.limits;
    let mut relay = RelayConfig::default();
    relay.max_bytes_per_vault = l.max_bytes_per_vault.unwrap_or(relay.max_bytes_per_vault);
    relay.max_blobs_per_vault = l.max_blobs_per_vault.unwrap_or(relay.max_blobs_per_vault);
    relay.max_pull_bytes = l.max_pull_bytes.unwrap_or(relay.max_pull_bytes);
    relay.max_tickets = l.max_tickets.unwrap_or(relay.max_tickets);
    relay.max_pull_bundles = l.max_pull_bundles.unwrap_or(relay.max_pull_bundles);
    relay.max_vaults = l.max_vaults.unwrap_or(relay.max_vaults);
    relay.max_grant_keys = l.max_grant_keys.unwrap_or(relay.max_grant_keys);
    relay.max_pairing_slots = l.max_pairing_slots.unwrap_or(relay.max_pairing_slots);
    relay.max_store_bytes = l.max_store_bytes.unwrap_or(relay.max_store_bytes);
    relay.max_devices_per_vault = l
        .max_devices_per_vault
        .unwrap_or(relay.max_devices_per_vault);
    if let Some(t) = merge(None, l.pairing_ttl, |v| v.get("limits.pairing_ttl")).map_err(bad)? {
        relay.pairing_ttl_ms = ms(t);
    }
    if let Some(t) = merge(None, l.max_period, |v| v.get("limits.max_period")).map_err(bad)? {
        relay.max_period_ms = ms(t);
    }
    if relay.max_pull_bundles == 0 || relay.max_devices_per_vault == 0 {
        return Err(bad(
            "limits.max_pull_bundles and limits.max_devices_per_vault must be at least 1".into(),
        ));
    }
    let mut server = ServerConfig::default();
    server.max_connections = l.max_connections.unwrap_or(server.max_connections);
    server.max_connections_per_address = l
        .max_connections_per_address
        .unwrap_or(server.max_connections_per_address);
    server.retry_from = l.retry_from.unwrap_or(server.retry_from);
    server.max_concurrent_streams = l
        .max_concurrent_streams
        .unwrap_or(server.max_concurrent_streams);
    server.pre_auth_max_frame = l.pre_auth_max_frame.unwrap_or(server.pre_auth_max_frame);
    server.pre_auth_bytes = l.pre_auth_bytes.unwrap_or(server.pre_auth_bytes);
    server.pre_auth_requests = l.pre_auth_requests.unwrap_or(server.pre_auth_requests);
    server.pre_auth_streams = l.pre_auth_streams.unwrap_or(server.pre_auth_streams);
    // A device must get Hello and Auth (or a ticket) through the budget.
    if server.pre_auth_max_frame < 1024
        || server.pre_auth_bytes < server.pre_auth_max_frame
        || server.pre_auth_requests < 4
        || server.pre_auth_streams == 0
        || server.max_concurrent_streams == 0
    {
        return Err(bad(
            "limits.pre_auth_* too small for a device to authenticate: \
             pre_auth_max_frame at least 1024, pre_auth_bytes at least pre_auth_max_frame, \
             pre_auth_requests at least 4, streams at least 1"
                .into(),
        ));
    }
    if let Some(t) = merge(None, l.idle_timeout, |v| v.get("limits.idle_timeout")).map_err(bad)? {
        server.idle_timeout = t;
    }
    if server.idle_timeout < Duration::from_secs(1) {
        return Err(bad("limits.idle_timeout must be at least 1s".into()));
    }
    let metrics = file
        .metrics
        .map(|s| addr("metrics", &s))
        .transpose()
        .map_err(bad)?;
    let http_flag = match &cli.command {
        super::cli::Command::Serve(a) => a.http,
        _ => None,
    };
    let http = merge(http_flag, file.http, |s| addr("http", &s)).map_err(bad)?;
    for u in &file.webhooks.urls {
        super::hooks::check_url(u).map_err(|e| bad(format!("webhooks.urls: {e}")))?;
    }
    if let Some(s) = &file.webhooks.secret {
        vigil_node::webhook::WebhookSecret::parse(s)
            .map_err(|e| bad(format!("webhooks.secret: {e}")))?;
    }
    Ok(Settings {
        data,
        listen,
        advertise,
        log_flag: cli.log_level.clone(),
        log_file: file.log_level,
        log_format: cli
            .log_format
            .or(file.log_format)
            .unwrap_or(LogFormat::Text),
        sweep_every,
        grace,
        relay,
        server,
        webhooks: file.webhooks.urls,
        webhook_secret: file.webhooks.secret,
        metrics,
        http,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str], file: &str) -> Result<Settings, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv = vec!["vigil-node", "--config", path.to_str().unwrap()];
        argv.extend_from_slice(args);
        let cli = Cli::parse_from(argv);
        let super::super::cli::Command::Serve(s) = &cli.command else {
            panic!("serve expected")
        };
        resolve(&cli, s.listen, s.advertise, s.sweep_every, s.grace)
    }

    #[test]
    fn flags_override_the_file_and_the_file_the_defaults() {
        let file = "data = \"d\"\nlisten = \"127.0.0.1:5000\"\nsweep_every = \"5m\"\n\
                    grace = 30\nlog_format = \"json\"\n[limits]\nmax_blobs_per_vault = 7\n\
                    idle_timeout = \"10s\"\n";
        let s = settings(&["serve"], file).unwrap();
        assert_eq!(s.listen, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(s.sweep_every, Duration::from_secs(300));
        assert_eq!(s.grace, Duration::from_secs(30));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.relay.max_blobs_per_vault, 7);
        assert_eq!(
            s.relay.max_bytes_per_vault,
            RelayConfig::default().max_bytes_per_vault
        );
        assert_eq!(s.server.idle_timeout, Duration::from_secs(10));
        assert!(s.data.unwrap().ends_with("d"), "relative to the file");
        let s = settings(
            &[
                "serve",
                "--listen",
                "127.0.0.1:6000",
                "--sweep-every",
                "1h",
                "--data",
                "/x",
            ],
            file,
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(s.sweep_every, Duration::from_secs(3600));
        assert_eq!(s.data.unwrap(), PathBuf::from("/x"));
        let s = settings(&["serve"], "").unwrap();
        assert_eq!(s.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(s.sweep_every, DEFAULT_SWEEP_EVERY);
        assert!(s.data.is_none());
    }

    #[test]
    fn the_dashboard_address_comes_from_the_flag_or_the_file_and_may_be_a_name() {
        assert_eq!(settings(&["serve"], "").unwrap().http, None);
        let file = "http = \"localhost:8080\"\n";
        let s = settings(&["serve"], file).unwrap();
        let a = s.http.unwrap();
        assert!(a.ip().is_loopback() && a.port() == 8080, "{a}");
        let s = settings(&["serve", "--http", "127.0.0.1:9000"], file).unwrap();
        assert_eq!(s.http, Some("127.0.0.1:9000".parse().unwrap()));
        let s = settings(&["serve", "--http", "localhost:9001"], "").unwrap();
        assert_eq!(s.http.map(|a| a.port()), Some(9001));
    }

    #[test]
    fn every_admission_limit_is_read_from_the_file() {
        let file = "[limits]\nmax_vaults = 5\nmax_grant_keys = 6\nmax_pairing_slots = 7\n\
                    max_store_bytes = 8000\nmax_period = \"30d\"\nmax_devices_per_vault = 9\n\
                    max_pull_bundles = 10\nmax_connections_per_address = 11\nretry_from = 0\n\
                    max_concurrent_streams = 12\npre_auth_max_frame = 2048\n\
                    pre_auth_bytes = 4096\npre_auth_requests = 13\npre_auth_streams = 1\n";
        let s = settings(&["serve"], file).unwrap();
        let r = s.relay;
        assert_eq!(
            (r.max_vaults, r.max_grant_keys, r.max_pairing_slots),
            (5, 6, 7)
        );
        assert_eq!((r.max_store_bytes, r.max_devices_per_vault), (8000, 9));
        assert_eq!((r.max_period_ms, r.max_pull_bundles), (30 * 86_400_000, 10));
        let v = &s.server;
        assert_eq!(
            (
                v.max_connections_per_address,
                v.retry_from,
                v.max_concurrent_streams
            ),
            (11, 0, 12)
        );
        assert_eq!(
            (
                v.pre_auth_max_frame,
                v.pre_auth_bytes,
                v.pre_auth_requests,
                v.pre_auth_streams
            ),
            (2048, 4096, 13, 1)
        );
        // Unset, they keep their defaults.
        let d = settings(&["serve"], "").unwrap();
        assert_eq!(d.relay, RelayConfig::default());
        assert_eq!(d.server.pre_auth_max_frame, 64 * 1024);
    }

    #[test]
    fn bad_files_are_one_line_errors() {
        for (file, needle) in [
            ("listen = ", "line 1"),
            ("lisen = \"1.2.3.4:5\"", "unknown field"),
            ("listen = \"nowhere\"", "no port"),
            ("listen = \"nowhere.invalid:4433\"", "does not resolve"),
            ("sweep_every = \"soon\"", "not a duration"),
            ("[limits]\nmax_blobs_per_vault = -1", "line 2"),
            ("sweep_every = \"0s\"", "at least 1s"),
            ("[limits]\npre_auth_bytes = 10", "too small"),
            ("[webhooks]\nurls = [\"ftp://x/\"]", "http:// or https://"),
            (
                "[webhooks]\nurls = [\"http://x/\"]\nsecret = \"short\"",
                "32 to 256",
            ),
            ("[webhooks]\nurl = \"http://x/\"", "unknown field"),
            ("metrics = \"9090\"", "not an address"),
            ("http = \"8080\"", "http: `8080` is not an address"),
            ("[limits]\nmax_pull_bundles = 0", "at least 1"),
        ] {
            let e = settings(&["serve"], file).unwrap_err();
            let msg = e.one_line();
            assert!(msg.contains(needle), "{file:?}: {msg}");
            assert_eq!(e.exit_code(), 2);
        }
    }
}
