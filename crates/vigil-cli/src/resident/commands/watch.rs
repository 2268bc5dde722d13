//! `vigil watch`: a long-running driver over [`SyncSchedule`].
//!
//! The schedule (in vigil-device, sans-I/O) decides when to sync; this file
//! only reads the clock, waits, and does what is due. The main thread does
//! every vault operation, one at a time, opening the vault for each and
//! closing it after, so other `vigil` commands on the same vault run while
//! this one waits. Two helper threads feed it events over one channel: a
//! tokio runtime waiting for SIGINT/SIGTERM, and (with `--gatt`) a reader of
//! standard input, one packet a line. A signal is handled only after the
//! lines already read have been recorded, so a packet whose line was read is
//! durable before the process exits.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use vigil_device::{SyncFailure, SyncSchedule};
use vigil_log::gatt;
use vigil_net::{DeviceConnection, EnrolmentCode};

use crate::common::text::printable;
use crate::common::time::{format_duration, format_time, now_ms};
use crate::common::{Error, exit, one_line};
use crate::resident::cli::WatchArgs;
use crate::resident::context::Ctx;
use crate::resident::error::shredded_elsewhere;
use crate::resident::fmt::{mname, short_id, unit_label, validate_value, value_with_unit};

/// The longest line taken from the wristband source: a GATT value is at
/// most a few dozen bytes, so anything longer is refused, not buffered.
const MAX_LINE: usize = 1024;
/// On a signal, how long to wait for the stdin reader to hand over the
/// lines it has read already.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// What the helper threads tell the main loop.
enum Event {
    /// Line `n` (1-based) of standard input.
    Line(u64, Result<String, String>),
    /// Standard input ended (or failed).
    InputClosed(Option<String>),
    /// SIGINT or SIGTERM.
    Stop(&'static str),
}

/// `vigil watch`.
pub(crate) fn run(ctx: &mut Ctx, args: &WatchArgs) -> Result<(), Error> {
    if let Some(c) = args.gatt {
        // Refused before anything starts, as `record-gatt` would.
        gatt::decode(c, &[]).err().map_or(Ok(()), |e| match e {
            gatt::GattError::UnknownCharacteristic(_) => Err(Error::usage(format!(
                "invalid characteristic {c:04X}: {e} (use 2A1C, 2A37 or 2A5F)"
            ))),
            _ => Ok(()),
        })?;
    }
    // "Now" follows the clock from the (possibly overridden) start time.
    let offset = ctx.now_ms - now_ms();
    let clock = move || now_ms() + offset;
    let code = ctx.node_code(args.node.as_deref())?;
    let enrolled = {
        let vault = ctx.open()?;
        vault.grants()?.iter().any(|g| g.node == code.node_public)
    };

    let (tx, rx) = mpsc::channel();
    let _signals = spawn_signal_thread(tx.clone())?;
    let idle = Arc::new(AtomicBool::new(true));
    if args.gatt.is_some() {
        spawn_stdin_reader(tx.clone(), idle.clone())?;
    }
    let mut w = Watcher {
        ctx,
        code,
        enrolled,
        gatt: args.gatt,
        connect_timeout: Duration::from_millis(u64::try_from(args.connect_timeout).unwrap_or(0)),
        clock: Box::new(clock),
        seen: fingerprint(&PathBuf::new()),
    };
    let now = w.now();
    let mut schedule = SyncSchedule::new(args.every, now).with_backoff(args.retry, args.max_retry);
    w.event(
        "started",
        json!({
            "enrolled": enrolled,
            "every_ms": args.every,
            "gatt": args.gatt.map(|c| format!("{c:04X}")),
            "node": w.code.addr.to_string(),
            "vault": w.ctx.dir.display().to_string(),
        }),
        format!(
            "watching {}: syncing with node {} every {}{}{}",
            w.ctx.dir.display(),
            w.code.addr,
            format_duration(args.every),
            args.gatt.map_or(String::new(), |c| format!(
                ", recording GATT {c:04X} from stdin"
            )),
            if enrolled {
                ""
            } else {
                " (this device is not enrolled: alerts go out through your enrolled device)"
            }
        ),
    )?;
    w.seen = fingerprint(&w.ctx.dir);
    let poll = Duration::from_millis(u64::try_from(args.poll).unwrap_or(1));
    // Held so that the channel never disconnects while the loop waits.
    let _tx = tx;
    loop {
        // Events first, so that a line read or a signal never waits behind
        // a sync that is due (a sync may take a connect timeout).
        let now = w.now();
        let wait = if schedule.is_due(now) {
            Duration::ZERO
        } else {
            let ms = u64::try_from(schedule.next_due(now) - now).unwrap_or(0);
            Duration::from_millis(ms).min(poll)
        };
        match rx.recv_timeout(wait) {
            Ok(Event::Line(n, line)) => w.line(n, line, &mut schedule)?,
            Ok(Event::InputClosed(why)) => w.input_closed(why)?,
            Ok(Event::Stop(signal)) => {
                w.drain(&rx, &idle, &mut schedule)?;
                return w.event(
                    "stopped",
                    json!({ "signal": signal }),
                    format!("stopped ({signal})"),
                );
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = w.now();
                if schedule.is_due(now) {
                    w.sync(&mut schedule)?;
                } else {
                    w.look_for_alerts(&mut schedule)?;
                }
            }
            // Unreachable while `_tx` lives; waiting again is harmless.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
        }
    }
}

/// The loop's state between events.
struct Watcher<'a> {
    ctx: &'a mut Ctx,
    code: EnrolmentCode,
    enrolled: bool,
    gatt: Option<u16>,
    connect_timeout: Duration,
    clock: Box<dyn Fn() -> i64>,
    /// The vault directory as last seen (to notice other commands' writes).
    seen: Fingerprint,
}

/// The outcome of one sync attempt that did not end the watch.
enum Attempt {
    Synced {
        bytes_sent: u64,
        bytes_received: u64,
        pushed: usize,
        received: usize,
        delivered: usize,
        pending: usize,
    },
    /// The node could not be reached (or dropped the connection).
    Away(String),
    /// The node answered, but the sync failed.
    Failed(String),
}

impl Watcher<'_> {
    fn now(&mut self) -> i64 {
        let now = (self.clock)();
        // Commands reuse `ctx.now_ms` as "now" (the period check on open,
        // the last sync time).
        self.ctx.now_ms = now;
        now
    }

    /// Prints one event: a JSON object on one line, or the time and `text`.
    fn event(&mut self, name: &str, fields: Value, text: String) -> Result<(), Error> {
        let at = (self.clock)();
        if self.ctx.json {
            // JSON keeps UTC, as every command's JSON does.
            let time = format_time(at);
            let mut obj = match fields {
                Value::Object(m) => m,
                _ => serde_json::Map::new(),
            };
            obj.insert("event".into(), name.into());
            obj.insert("time".into(), time.into());
            let line = serde_json::to_string(&obj).map_err(|e| Error::failed(e.to_string()))?;
            writeln!(self.ctx.out, "{line}")?;
        } else {
            let time = self.ctx.time(at);
            writeln!(self.ctx.out, "{time}  {}", printable(&one_line(&text)))?;
        }
        self.ctx.out.flush()?;
        Ok(())
    }

    /// Syncs now and tells the schedule how it went.
    fn sync(&mut self, schedule: &mut SyncSchedule) -> Result<(), Error> {
        self.now();
        let attempt = self.attempt()?;
        self.seen = fingerprint(&self.ctx.dir);
        // The timetable counts from the end of the attempt: a connect that
        // timed out must not eat the wait before the retry.
        let now = self.now();
        match attempt {
            Attempt::Synced {
                bytes_sent,
                bytes_received,
                pushed,
                received,
                delivered,
                pending,
            } => {
                schedule.on_sync_ok(now);
                let next = schedule.next_due(now);
                self.event(
                    "synced",
                    json!({
                        "bytes_received": bytes_received,
                        "bytes_sent": bytes_sent,
                        "next_sync": format_time(next),
                        "pushed": pushed,
                        "received": received,
                    }),
                    format!(
                        "synced with node {}: sent {bytes_sent} bytes ({pushed} bundle(s)), received {bytes_received} bytes ({received} bundle(s)); next sync at {}",
                        self.code.addr,
                        self.ctx.time(next)
                    ),
                )?;
                if delivered > 0 {
                    self.event(
                        "alert_sent",
                        json!({ "delivered": delivered, "pending": pending }),
                        format!("alert sent: {delivered} delivered to the node, {pending} waiting"),
                    )?;
                }
                Ok(())
            }
            Attempt::Away(why) => {
                let wait = schedule.on_sync_failed(now);
                self.event(
                    "node_away",
                    json!({ "error": why, "retry_in_ms": wait }),
                    format!("node away ({why}): retry in {}", format_duration(wait)),
                )
            }
            Attempt::Failed(why) => {
                let wait = schedule.on_sync_failed(now);
                self.event(
                    "sync_failed",
                    json!({ "error": why, "retry_in_ms": wait }),
                    format!("sync failed ({why}): retry in {}", format_duration(wait)),
                )
            }
        }
    }

    /// One sync, as `vigil sync` does it: the log, then alerts if this
    /// device is enrolled with the node. An error ends the watch (the vault
    /// is gone or unusable); everything else is an [`Attempt`].
    fn attempt(&mut self) -> Result<Attempt, Error> {
        let mut vault = match self.ctx.open() {
            Ok(v) => v,
            // Busy (another command held it too long) or a passing storage
            // failure: try again later rather than stop watching.
            Err(e) if e.code == exit::FAILED => return Ok(Attempt::Failed(e.message)),
            Err(e) => return Err(e),
        };
        let mut conn = match DeviceConnection::connect(&self.code, self.connect_timeout) {
            Ok(c) => c,
            Err(e) => return Ok(Attempt::Away(Error::from(e).message)),
        };
        let report = match vault.sync(&mut conn) {
            Ok(r) => r,
            Err(SyncFailure::ShreddedElsewhere(t)) => {
                return Err(shredded_elsewhere(
                    vault,
                    &self.ctx.key_store(),
                    &t,
                    &self.ctx.zone,
                ));
            }
            Err(e @ SyncFailure::Transport(_)) => return Ok(Attempt::Away(e.to_string())),
            Err(e) => return Ok(Attempt::Failed(Error::from(e).message)),
        };
        self.enrolled = vault
            .grants()?
            .iter()
            .any(|g| g.node == self.code.node_public);
        let mut delivered = 0;
        if self.enrolled {
            match vault.send_alerts(&mut conn, &self.code.node_public, self.ctx.now_ms) {
                Ok(a) => {
                    delivered = a.delivered;
                    // Whether staff saw the alerts: learnt when the node
                    // tells, never a reason to call the sync failed.
                    if let Err(e) = vault.refresh_alert_status(&mut conn, &self.code.node_public) {
                        tracing::info!(error = %e, "staff acknowledgement not refreshed");
                    }
                }
                Err(e @ SyncFailure::Transport(_)) => return Ok(Attempt::Away(e.to_string())),
                Err(e) => {
                    return Ok(Attempt::Failed(format!(
                        "synced, but sending alerts failed: {}",
                        Error::from(e).message
                    )));
                }
            }
        }
        let (bytes_sent, bytes_received) = (conn.bytes_sent(), conn.bytes_received());
        conn.close();
        let pending = if self.enrolled {
            vault.pending_alerts()?.len()
        } else {
            0
        };
        drop(vault);
        self.ctx.synced_with(&self.code)?;
        Ok(Attempt::Synced {
            bytes_sent,
            bytes_received,
            pushed: report.pushed,
            received: report.received,
            delivered,
            pending,
        })
    }

    /// Records line `n` of the wristband source; a bad line is reported
    /// and skipped, a vault that is gone ends the watch.
    fn line(
        &mut self,
        n: u64,
        line: Result<String, String>,
        schedule: &mut SyncSchedule,
    ) -> Result<(), Error> {
        let Some(c) = self.gatt else { return Ok(()) };
        self.now();
        let result = line
            .map_err(Error::usage)
            .and_then(|text| self.record_packet(c, &text));
        self.seen = fingerprint(&self.ctx.dir);
        match result {
            Ok(queued) => {
                if queued > 0 {
                    schedule.on_alert_queued();
                    self.event(
                        "alert_queued",
                        json!({ "queued": queued }),
                        "fever alert queued: syncing now".into(),
                    )?;
                }
                Ok(())
            }
            Err(e) if e.code == exit::USAGE || e.code == exit::FAILED => self.event(
                if e.code == exit::USAGE {
                    "refused"
                } else {
                    "error"
                },
                json!({ "line": n, "error": e.message }),
                format!("line {n} not recorded: {}", e.message),
            ),
            Err(e) => Err(e),
        }
    }

    /// Decodes and records one packet (as `vigil record-gatt` does);
    /// returns how many alerts it queued.
    fn record_packet(&mut self, c: u16, text: &str) -> Result<usize, Error> {
        let hex_text: String = text.chars().filter(|ch| !ch.is_whitespace()).collect();
        let bytes = hex::decode(&hex_text).map_err(|e| {
            Error::usage(format!(
                "invalid bytes {hex_text:?}: {e} (expected hex such as 06B00E00FE)"
            ))
        })?;
        let packet = gatt::decode(c, &bytes)
            .map_err(|e| Error::usage(format!("GATT packet {c:04X} {hex_text} refused: {e}")))?;
        for (metric, value) in packet.values() {
            validate_value(metric, value)?;
        }
        let received = self.ctx.now_ms;
        let at = packet.time_ms(received);
        let mut vault = super::record::open_for_reading_at(self.ctx, at)?;
        let before = vault.pending_alerts()?.len();
        let readings = vault.record_gatt(c, &bytes, received)?;
        let queued = vault.pending_alerts()?.len().saturating_sub(before);
        drop(vault);
        for r in &readings {
            self.event(
                "recorded",
                json!({
                    "characteristic": format!("{c:04X}"),
                    "id": r.id.to_string(),
                    "metric": mname(r.metric),
                    "reading_time": format_time(r.time_ms),
                    "unit": unit_label(r.metric),
                    "value": r.value,
                }),
                format!(
                    "recorded {} {} at {} (id {}) from GATT {c:04X}",
                    mname(r.metric),
                    value_with_unit(r.metric, r.value),
                    self.ctx.time(r.time_ms),
                    short_id(r.id)
                ),
            )?;
        }
        Ok(queued)
    }

    fn input_closed(&mut self, why: Option<String>) -> Result<(), Error> {
        self.now();
        let text = match &why {
            Some(e) => format!("standard input failed ({e}): syncing on"),
            None => "standard input closed: syncing on".into(),
        };
        self.event("input_closed", json!({ "error": why }), text)
    }

    /// Another command wrote to the vault: if it queued an alert not sent
    /// yet (a `vigil record` confirming a fever), sync at once.
    fn look_for_alerts(&mut self, schedule: &mut SyncSchedule) -> Result<(), Error> {
        let now_seen = fingerprint(&self.ctx.dir);
        if now_seen == self.seen {
            return Ok(());
        }
        self.now();
        let vault = match self.ctx.open() {
            Ok(v) => v,
            // Busy: look again at the next poll (`seen` is left as it was).
            Err(e) if e.code == exit::FAILED => return Ok(()),
            Err(e) => return Err(e),
        };
        let fresh = vault
            .pending_alerts()?
            .iter()
            .filter(|p| p.first_sent_ms.is_none())
            .count();
        drop(vault);
        // Opening may itself touch the files: look again afterwards.
        self.seen = fingerprint(&self.ctx.dir);
        if fresh > 0 && self.enrolled {
            schedule.on_alert_queued();
            self.event(
                "alert_queued",
                json!({ "queued": fresh }),
                "fever alert queued by another command: syncing now".into(),
            )?;
        }
        Ok(())
    }

    /// After a signal: records the lines the reader has read already, until
    /// it waits on an empty pipe (or [`DRAIN_WAIT`] has passed).
    fn drain(
        &mut self,
        rx: &Receiver<Event>,
        idle: &AtomicBool,
        schedule: &mut SyncSchedule,
    ) -> Result<(), Error> {
        if self.gatt.is_none() {
            return Ok(());
        }
        let deadline = Instant::now() + DRAIN_WAIT;
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(Event::Line(n, line)) => self.line(n, line, schedule)?,
                Ok(_) => {}
                Err(_) if idle.load(Ordering::SeqCst) || Instant::now() >= deadline => {
                    return Ok(());
                }
                Err(_) => {}
            }
        }
    }
}

/// A tokio runtime on its own thread, waiting for SIGINT or SIGTERM. The
/// handlers are installed before this returns, so a signal sent once the
/// watch has said "started" is never missed.
fn spawn_signal_thread(tx: Sender<Event>) -> Result<std::thread::JoinHandle<()>, Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the signal handler: {e}")))?;
    let (mut int, mut term) = {
        let _guard = rt.enter();
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        match (int, term) {
            (Ok(i), Ok(t)) => (i, t),
            (Err(e), _) | (_, Err(e)) => {
                return Err(Error::failed(format!("cannot handle signals: {e}")));
            }
        }
    };
    Ok(std::thread::spawn(move || {
        let name = rt.block_on(async {
            tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            }
        });
        let _ = tx.send(Event::Stop(name));
    }))
}

/// Reads standard input line by line on its own thread. `idle` is true
/// while it waits on the pipe with no whole line left in its buffer: then
/// every line it has read has been sent.
fn spawn_stdin_reader(tx: Sender<Event>, idle: Arc<AtomicBool>) -> Result<(), Error> {
    use std::os::fd::AsFd;
    // Our own handle on fd 0, so that its buffer can be inspected.
    let fd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::failed(format!("cannot read standard input: {e}")))?;
    let mut input = BufReader::new(fs::File::from(fd));
    std::thread::spawn(move || {
        let mut n = 0u64;
        loop {
            if !input.buffer().contains(&b'\n') {
                idle.store(true, Ordering::SeqCst);
            }
            let mut buf = Vec::new();
            let read =
                std::io::Read::take(&mut input, MAX_LINE as u64 + 1).read_until(b'\n', &mut buf);
            idle.store(false, Ordering::SeqCst);
            let event = match read {
                Ok(0) => Event::InputClosed(None),
                Ok(_) => {
                    n += 1;
                    if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
                        // Skip the rest of the overlong line.
                        let mut rest = Vec::new();
                        let _ = input.read_until(b'\n', &mut rest);
                        Event::Line(n, Err(format!("line longer than {MAX_LINE} bytes")))
                    } else {
                        Event::Line(
                            n,
                            String::from_utf8(buf)
                                .map(|s| s.trim().to_owned())
                                .map_err(|_| "line is not UTF-8 text".to_owned()),
                        )
                    }
                }
                Err(e) => Event::InputClosed(Some(e.to_string())),
            };
            let closed = matches!(event, Event::InputClosed(_));
            // Blank lines are no packets.
            if matches!(&event, Event::Line(_, Ok(s)) if s.is_empty()) {
                continue;
            }
            if tx.send(event).is_err() || closed {
                idle.store(true, Ordering::SeqCst);
                return;
            }
        }
    });
    Ok(())
}

/// The vault directory's files (two levels deep) with their sizes and
/// modification times: it changes when any command writes the vault.
type Fingerprint = BTreeMap<PathBuf, (u64, Option<SystemTime>)>;

fn fingerprint(dir: &Path) -> Fingerprint {
    let mut out = BTreeMap::new();
    collect(dir, 2, &mut out);
    out
}

fn collect(dir: &Path, depth: u32, out: &mut Fingerprint) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            if depth > 0 {
                collect(&e.path(), depth - 1, out);
            }
        } else {
            out.insert(e.path(), (meta.len(), meta.modified().ok()));
        }
    }
}
