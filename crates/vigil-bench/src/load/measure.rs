//! Measuring: latency summaries, process memory and CPU from `/proc`, disk
//! use of a directory, and error classification.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use vigil_device::SyncFailure;
use vigil_net::NetError;
use vigil_proto::{ExchangeError, ProtoError, SyncError};

/// A latency distribution, milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile (nearest rank).
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    /// Summarises `samples` (in any order).
    pub fn of(samples: &[Duration]) -> Latency {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        Latency {
            count: ms.len(),
            p50_ms: percentile(&ms, 0.50),
            p99_ms: percentile(&ms, 0.99),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Samples collected from many threads.
#[derive(Debug, Default)]
pub(crate) struct Samples(Mutex<Vec<Duration>>);

impl Samples {
    pub(crate) fn push(&self, d: Duration) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(d);
    }

    pub(crate) fn summary(&self) -> Latency {
        Latency::of(&self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Counts by kind, from many threads.
#[derive(Debug, Default)]
pub(crate) struct Counts(Mutex<BTreeMap<String, u64>>);

impl Counts {
    pub(crate) fn add(&self, kind: impl Into<String>, n: u64) {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind.into())
            .or_default() += n;
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One process's memory and CPU, from `/proc/PID/status` and `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProcSample {
    /// Resident set size now, bytes (VmRSS).
    pub rss_bytes: u64,
    /// Peak resident set size so far, bytes (VmHWM).
    pub peak_rss_bytes: u64,
    /// Threads.
    pub threads: u64,
    /// User + system CPU time so far, milliseconds (at 100 ticks/s, Linux's
    /// usual USER_HZ).
    pub cpu_ms: u64,
}

/// Reads `/proc/<pid>` (`self` for this process); `None` if the process is
/// gone or this is not Linux.
pub fn proc_sample(pid: Option<u32>) -> Option<ProcSample> {
    let base = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_owned(),
    };
    let status = std::fs::read_to_string(format!("{base}/status")).ok()?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("{base}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some(ProcSample {
        rss_bytes: field("VmRSS:") * 1024,
        peak_rss_bytes: field("VmHWM:") * 1024,
        threads: field("Threads:"),
        cpu_ms: (ticks(11) + ticks(12)) * 10,
    })
}

/// UDP datagrams this machine dropped because a socket's receive buffer was
/// full (`RcvbufErrors` in `/proc/net/snmp`), all sockets together.
pub fn udp_receive_drops() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let i = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// UDP datagrams dropped so far by the sockets bound to local `port` (the
/// `drops` column of `/proc/net/udp` and `/proc/net/udp6`): receive buffer
/// full, mostly.
pub fn udp_port_drops(port: u16) -> Option<u64> {
    let want = format!(":{port:04X}");
    let mut found = None;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(1).is_some_and(|local| local.ends_with(&want))
                && let Some(d) = f.last().and_then(|d| d.parse::<u64>().ok())
            {
                *found.get_or_insert(0) += d;
            }
        }
    }
    found
}

/// Disk use of everything under a directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DiskUse {
    /// Allocated bytes (what `du` reports: 512-byte blocks).
    pub allocated_bytes: u64,
    /// Sum of file lengths.
    pub apparent_bytes: u64,
    /// Files.
    pub files: u64,
}

/// Walks `dir` (not following symlinks); missing entries count as nothing.
pub fn disk_use(dir: &Path) -> DiskUse {
    use std::os::unix::fs::MetadataExt;
    let mut total = DiskUse::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total.allocated_bytes += m.blocks() * 512;
                total.apparent_bytes += m.len();
                total.files += 1;
            }
        }
    }
    total
}

/// A short, stable name for a refused request (the protocol error's variant).
pub(crate) fn proto_kind(e: &ProtoError) -> String {
    let debug = format!("{e:?}");
    let name = debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("Unknown");
    match e {
        ProtoError::QuotaExceeded { what, .. } => format!("refused: QuotaExceeded({what})"),
        _ => format!("refused: {name}"),
    }
}

/// A short, stable name for a transport failure.
pub(crate) fn transport_kind(e: &ExchangeError) -> String {
    use std::io::ErrorKind;
    use vigil_proto::CloseReason::{HandlerFailed, ShuttingDown};
    let kind = match e {
        ExchangeError::TimedOut(_) => "timeout (no response)",
        ExchangeError::Closed(ShuttingDown) | ExchangeError::Refused(ShuttingDown) => {
            "node shutting down"
        }
        ExchangeError::Closed(HandlerFailed) | ExchangeError::Refused(HandlerFailed) => {
            "node handler failed"
        }
        ExchangeError::Refused(_) => "stream refused",
        ExchangeError::ConnectionLost(io) if io.kind() == ErrorKind::TimedOut => {
            "connection idle timeout"
        }
        ExchangeError::ConnectionLost(io) if io.kind() == ErrorKind::ConnectionReset => {
            "connection reset"
        }
        ExchangeError::ConnectionLost(_) | ExchangeError::Closed(_) => "connection lost",
        ExchangeError::Io { source, .. } if source.kind() == ErrorKind::NotConnected => {
            "connection lost"
        }
        ExchangeError::NotConnected => "not connected",
        _ => "other",
    };
    format!("transport: {kind}")
}

/// A short, stable name for a failed connection attempt.
pub(crate) fn connect_kind(e: &NetError) -> String {
    let kind = match e {
        NetError::Timeout(_) => "timeout".to_owned(),
        NetError::FingerprintMismatch => "fingerprint mismatch".to_owned(),
        NetError::Connect { source, .. } => {
            // quinn says how in text only (a refusal is a transport close code).
            let m = source.to_string();
            if m.contains("refused") {
                "refused (node busy)".to_owned()
            } else if m.contains("timed out") {
                "timeout".to_owned()
            } else if m.contains("closed") {
                "closed by node".to_owned()
            } else {
                "failed".to_owned()
            }
        }
        NetError::ConnectSetup { .. } => "failed".to_owned(),
        NetError::Io { .. } | NetError::Randomness(_) | NetError::RuntimeStopped => {
            "local I/O".to_owned()
        }
        other => format!("{other}"),
    };
    format!("connect: {kind}")
}

/// A short, stable name for a failed sync, enrolment or alert send.
pub(crate) fn failure_kind(e: &SyncFailure) -> String {
    match e {
        SyncFailure::Transport(t) => transport_kind(t),
        SyncFailure::Protocol(SyncError::Refused(p)) => proto_kind(p),
        SyncFailure::Protocol(SyncError::Codec(_)) => "protocol: bad reply".to_owned(),
        SyncFailure::Protocol(SyncError::Unexpected(_)) => "protocol: unexpected reply".to_owned(),
        SyncFailure::Storage(_) | SyncFailure::Write(_) | SyncFailure::Open(_) => {
            "device: local store".to_owned()
        }
        _ => "other".to_owned(),
    }
}

/// Whether the failure means the connection is unusable (reconnect).
pub(crate) fn needs_reconnect(e: &SyncFailure) -> bool {
    matches!(e, SyncFailure::Transport(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = Latency::of(&d);
        assert_eq!(l.count, 100);
        assert_eq!(l.p50_ms, 50.0);
        assert_eq!(l.p99_ms, 99.0);
        assert_eq!(l.max_ms, 100.0);
        assert_eq!(Latency::of(&[]).p99_ms, 0.0);
        assert_eq!(Latency::of(&[Duration::from_millis(7)]).p50_ms, 7.0);
    }

    #[test]
    fn kinds_are_short_names() {
        assert_eq!(
            proto_kind(&ProtoError::Internal("x".into())),
            "refused: Internal"
        );
        assert_eq!(
            proto_kind(&ProtoError::OutOfOrder {
                expected: 1,
                got: 3
            }),
            "refused: OutOfOrder"
        );
        assert_eq!(
            transport_kind(&ExchangeError::TimedOut(std::time::Duration::from_secs(30))),
            "transport: timeout (no response)"
        );
    }

    #[test]
    fn this_process_is_measurable() {
        let s = proc_sample(None).unwrap();
        assert!(s.rss_bytes > 0 && s.peak_rss_bytes >= s.rss_bytes / 2);
        assert!(s.threads >= 1);
        assert!(udp_receive_drops().is_some());
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        assert_eq!(udp_port_drops(port), Some(0));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 5000]).unwrap();
        let u = disk_use(dir.path());
        assert_eq!((u.apparent_bytes, u.files), (5000, 1));
    }
}
