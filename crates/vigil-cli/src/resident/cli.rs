//! Command-line arguments of `vigil` (clap derive).

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};
use vigil_log::{Metric, Severity, Symptom};

use crate::common::time::{parse_duration as duration, parse_rfc3339};

const ABOUT: &str =
    "Vigil: your health log for the monitoring period, encrypted on your own devices";

const LONG_ABOUT: &str = "\
Vigil keeps the health log of your monitoring period (body temperature, heart rate, SpO2, \
respiratory rate, steps; never location or audio) encrypted on your own devices. The community \
node relays ciphertext it cannot read and learns one thing only: a fever alert, under the grant \
you give it with `vigil enrol`. When the period ends, the vault's key is destroyed and nothing \
readable remains.

Files: the vault is the directory given by --vault (env VIGIL_VAULT, default $HOME/.vigil). Its \
key lives in a separate file, by default beside the directory with `.key` appended \
($HOME/.vigil.key); change it with --key-file (env VIGIL_KEY_FILE). Keep the key file out of \
backups: without it the vault cannot be read.

Times are RFC 3339 (2026-11-27T08:10:00Z, or with an offset such as +08:00) or `now`. They are \
shown in the system's time zone (TZ, else /etc/localtime; UTC if it cannot be determined), and \
--day names a day in that zone; --utc shows UTC and takes UTC days. --json always writes UTC. \
Metrics: temperature (°C), heart-rate (bpm), spo2 (%), respiratory-rate (/min), \
steps (count).";

const AFTER_HELP: &str = "\
Examples:
  vigil init --days 7
  vigil record temperature 37.9
  vigil log --metric temperature --day 2026-11-27
  vigil enrol vigil-ticket1/203.0.113.5:4433/...
  vigil sync

Exit codes: 0 success; 1 the operation failed (network, storage, refused, not confirmed);
2 bad input; 3 no usable vault (none there, or missing or wrong key file); 4 the vault was
shredded; 5 pairing offer not at the node yet (run `vigil pair join` again).

Output: add --json for machine-readable output: one JSON document on stdout (`pair join`:
one JSON line per step). With --json a failure is {\"error\": {\"code\", \"message\"}} on stdout,
code one of failed, usage, no_vault, shredded, waiting (exit codes 1-5); absent values are null.";

/// `vigil`: the resident's CLI.
#[derive(Debug, Parser)]
#[command(
    name = "vigil",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub(crate) struct Cli {
    /// The vault directory [default: $HOME/.vigil]
    #[arg(long, global = true, env = "VIGIL_VAULT", value_name = "DIR")]
    pub(crate) vault: Option<PathBuf>,

    /// The vault's key file [default: the vault directory's path + ".key"]
    #[arg(long, global = true, env = "VIGIL_KEY_FILE", value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,

    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// Show times in UTC and take --day as a UTC day, whatever the time zone.
    #[arg(long, global = true)]
    pub(crate) utc: bool,

    /// Use this time as "now" instead of the clock (tests and demos).
    #[arg(long, global = true, hide = true, env = "VIGIL_NOW", value_parser = parse_time_arg, value_name = "TIME")]
    pub(crate) now: Option<TimeArg>,

    /// The command.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a new vault for a monitoring period on this device.
    #[command(
        long_about = "Create a new vault for a monitoring period: a fresh random key (written to \
the key file) and an empty encrypted log. The period starts now (or at --start) and lasts --days \
days; when it ends, the vault is shredded. To add a second device to an existing vault, use \
`vigil pair join` on that device instead.",
        after_help = "Example:\n  vigil init --days 7\n  vigil --vault /media/usb/vigil init --start 2026-11-24T00:00:00Z"
    )]
    Init(InitArgs),

    /// Record a reading.
    #[command(
        long_about = "Record a reading in the log. The value is in the metric's fixed unit: \
temperature in °C (30–45), heart-rate in bpm (20–250), spo2 in % (50–100), respiratory-rate in \
breaths/min (4–60), steps as a whole count (0–100000). It must be a time within the monitoring \
period and not in the future.",
        after_help = "Examples:\n  vigil record temperature 37.9\n  vigil record heart-rate 72 --at 2026-11-27T08:10:00Z\n  vigil record steps 4200 --at 2026-11-27T18:00:00+01:00"
    )]
    Record(RecordArgs),

    /// Record what a wristband sent over Bluetooth (a raw GATT value, in hex).
    #[command(
        name = "record-gatt",
        long_about = "Record the raw value of a Bluetooth GATT characteristic, as a wristband \
sends it: 2A1C Temperature Measurement (°C or °F, converted to °C), 2A37 Heart Rate Measurement, \
2A5F PLX Continuous Measurement (SpO2 and pulse rate, recorded together). The reading's time is \
the packet's own time stamp (read as UTC) when it has one, else --at (default now); it must be \
within the monitoring period and not in the future. A malformed packet or an IEEE-11073 special \
value (NaN, NRes, ±INF) records nothing and exits with code 2.",
        after_help = "Examples:\n  vigil record-gatt 2A1C 06B00E00FEDC070C050B321B04\n  vigil record-gatt 2A37 \"00 48\" --at 2026-11-27T08:10:00Z\n  vigil record-gatt 0x2A5F 00 62 00 48 00 --json"
    )]
    RecordGatt(RecordGattArgs),

    /// Show readings as a table (filter by metric and day).
    #[command(
        long_about = "Show readings, oldest first, as a table with their ids (the short form \
works with `annotate` and `retract`). Retracted readings are hidden unless --all.",
        after_help = "Examples:\n  vigil log\n  vigil log --metric temperature --day 2026-11-27\n  vigil log --from 2026-11-27T06:00:00Z --to 2026-11-27T12:00:00Z --json"
    )]
    Log(LogArgs),

    /// Per-day minimum, maximum and mean of each metric.
    #[command(
        long_about = "Per day (in the local time zone, or UTC with --utc) and metric: the number of readings, minimum, maximum and mean, \
over readings that are not retracted.",
        after_help = "Examples:\n  vigil summary\n  vigil summary --metric temperature --json"
    )]
    Summary(SummaryArgs),

    /// Attach a note to a reading.
    #[command(
        after_help = "Example:\n  vigil annotate 3fa2c1d0-4 \"after a hot shower\"\n\nThe id is the one `vigil log` shows (short or full form)."
    )]
    Annotate(AnnotateArgs),

    /// Retract a wrong reading (it leaves views, statistics and alerts).
    #[command(
        long_about = "Retract a wrong reading with a reason. It stays in the log's history \
(marked retracted, shown by `vigil log --all`) but leaves views, summaries, exports and the \
fever rule.",
        after_help = "Example:\n  vigil retract 3fa2c1d0-4 --reason \"sensor was off the wrist\""
    )]
    Retract(RetractArgs),

    /// Take back a retraction (the reading counts again).
    #[command(
        long_about = "Take back the retraction of a reading: it counts again in views, \
summaries, exports and the fever rule (a fever it completes is alerted). The retraction \
stays in the log's history.",
        after_help = "Example:\n  vigil unretract 3fa2c1d0-4"
    )]
    Unretract(UnretractArgs),

    /// Daily symptom check-in (set symptoms, or show a day's check-in).
    #[command(
        name = "check-in",
        visible_alias = "checkin",
        long_about = "Set how you feel today (or on --day): SYMPTOM=SEVERITY pairs. Symptoms: \
cough, sore-throat, fatigue, headache, shortness-of-breath, loss-of-taste-or-smell, muscle-ache, \
chills, fever, other (any other symptom). Each symptom once. Severities: none, mild, moderate, severe. Without pairs, shows the day's check-in.",
        after_help = "Examples:\n  vigil check-in cough=mild fatigue=none\n  vigil check-in --day 2026-11-27 headache=moderate\n  vigil check-in --day 2026-11-27"
    )]
    CheckIn(CheckInArgs),

    /// Show values your devices set differently, and resolve them.
    #[command(
        long_about = "When two of your devices set the same check-in or annotation while apart, \
both values are kept and shown here until you pick one. `vigil conflicts` lists them with their \
keys; `vigil conflicts resolve KEY VALUE` (or `--pick N`) settles one on every device at the \
next sync.",
        after_help = "Examples:\n  vigil conflicts\n  vigil conflicts resolve 2026-11-27/cough mild\n  vigil conflicts resolve 3fa2c1d0-4 --pick 2"
    )]
    Conflicts(ConflictsArgs),

    /// Enrol with a community node using the ticket staff gave you.
    #[command(
        long_about = "Enrol with a community node, using the one-time ticket staff gave you \
(`vigil-node residents add` prints it, as text and a QR code). The node then keeps this vault's \
encrypted mailbox and may receive fever alerts (the episode's onset to the nearest 10 minutes, \
and its level) for this period, and nothing else. Staff see your alerts under the label they \
typed when they registered you; this command shows it, and `vigil disclosures` records it. The \
node's code (not the ticket) is remembered in the vault directory, so `sync`, `status` and \
`shred` use this node. Your other devices may enrol with the same ticket; another vault cannot.",
        after_help = "Example:\n  vigil enrol vigil-ticket1/203.0.113.5:4433/<key>/<fingerprint>/<receipt key>/<ticket id>/<secret>\n  vigil enrol - < ticket.txt"
    )]
    Enrol(EnrolArgs),

    /// Sync the log with your other devices through the node, and send due alerts.
    #[command(
        long_about = "Push this device's new entries (encrypted) to the node, pull your other \
devices' entries, then evaluate the fever rule and send any alert that is due. Reports what it \
did.",
        after_help = "Examples:\n  vigil sync\n  vigil sync --json"
    )]
    Sync(SyncArgs),

    /// Keep this device in sync in the background (and record a wristband's packets).
    #[command(
        long_about = "Run until stopped (Ctrl-C, SIGINT or SIGTERM): sync with the node now and \
then every --every, and at once when a fever alert is queued (by a reading recorded here or by \
another `vigil` command on this vault), so the community hears of a fever without anyone typing \
`vigil sync`. While the node cannot be reached, retry after --retry, doubling the wait after \
each failure up to --max-retry. With --gatt UUID, read a wristband's packets of that GATT \
characteristic from standard input, one packet a line in hex as `vigil record-gatt` takes them, \
and record each (a bad line is reported and skipped). Prints one line per event (recorded, \
synced, node away, alert sent, stopped); with --json one JSON object per line, its `event` one \
of started, recorded, refused, error, alert_queued, synced, alert_sent, node_away, sync_failed, \
input_closed, stopped, and `time`. On a signal it records every line already read, then exits 0. A device that is not enrolled syncs only: its \
readings reach your enrolled device, which sends the alerts.",
        after_help = "Examples:\n  vigil watch\n  vigil watch --every 5m --json\n  wristband-reader | vigil watch --gatt 2A1C"
    )]
    Watch(WatchArgs),

    /// Pair another device with this vault (short authentication code).
    #[command(
        long_about = "Pairing a second device, through the node:\n\n  1. on the NEW device: \
`vigil pair join <node code>` prints a joiner code and waits (up to --timeout) for the offer;\n  \
2. on the EXISTING device: `vigil pair show <joiner code>` sends the vault's key, wrapped to the \
new device, and prints a 6-digit code;\n  3. the new device fetches it and prints its 6-digit \
code: check that both codes are the same.\n\nIn scripts, run `vigil pair join <node code> \
--timeout 0` first (prints the joiner code, exits with 5 while the offer is not there), then \
`pair show` on the other device, then the same `pair join` again.",
        after_help = "Examples:\n  vigil --vault ~/.vigil-tablet pair join vigil1/203.0.113.5:4433/...\n  vigil pair show vigil-join1/5d1c...e0"
    )]
    Pair(PairArgs),

    /// Everything that ever left this device, and when.
    #[command(
        long_about = "The disclosure log: every fact that left this device in plaintext to \
someone else (grants to nodes, alerts sent and acknowledged, pairings). Your log itself only \
ever leaves encrypted.",
        after_help = "Examples:\n  vigil disclosures\n  vigil disclosures --json"
    )]
    Disclosures,

    /// Fever alerts waiting for the node, and fever episodes in the log.
    #[command(after_help = "Examples:\n  vigil alerts\n  vigil alerts --json")]
    Alerts,

    /// Period countdown, last sync, node, pending alerts.
    #[command(after_help = "Examples:\n  vigil status\n  vigil status --json")]
    Status,

    /// Export the log: HL7 FHIR R4 (JSON) or Automerge.
    #[command(
        long_about = "Export the log for your own use. --fhir writes an HL7 FHIR R4 Bundle (type \
collection) of Observation resources (LOINC codes, UCUM units) to stdout or --out; retracted \
readings are left out unless --include-retracted, which includes them with status \
entered-in-error. --automerge FILE writes the plaintext log as an Automerge document. Exports \
are plaintext and are NOT shredded at the end of the period: keep them safe.",
        after_help = "Examples:\n  vigil export --fhir --out week.fhir.json\n  vigil export --fhir --metric temperature > temps.json\n  vigil export --automerge week.automerge",
        group(ArgGroup::new("format").required(true).args(["fhir", "automerge"]))
    )]
    Export(ExportArgs),

    /// Destroy the vault now: key, log and store (asks first).
    #[command(
        long_about = "Crypto-shred the vault now, before its period ends: tell the node to delete \
the mailbox and grants (its signed receipt is kept), destroy the key file, delete the store. \
Only a tombstone remains in the vault directory. This cannot be undone. Asks for confirmation \
unless --yes.",
        after_help = "Examples:\n  vigil shred\n  vigil shred --yes --offline"
    )]
    Shred(ShredArgs),

    /// Rebuild a damaged vault from the node (asks first).
    #[command(
        long_about = "When the vault's store is damaged (a command says so) but its key file is \
intact, rebuild it from the node: the damaged files are moved to a vigil-damaged-N directory \
inside the vault directory (shredding the vault deletes them too), a fresh store is made for the \
same vault, and everything the node holds is synced back. Readings this device never synced, \
and fever-alert grants, are not recovered: enrol again afterwards. The node is the one \
remembered by `enrol`, `sync` or `pair join`, or --node. The period is read from the vault \
directory; if that is damaged too, give --start and --days as at `vigil init`. Asks for \
confirmation unless --yes.",
        after_help = "Examples:\n  vigil recover\n  vigil recover --yes --node vigil1/203.0.113.5:4433/...\n  vigil recover --start 2026-11-24T00:00:00Z --days 7"
    )]
    Recover(RecoverArgs),
}

/// A metric name on the command line.
pub(crate) fn parse_metric(s: &str) -> Result<Metric, String> {
    s.parse::<Metric>().map_err(|_| {
        format!("unknown metric {s:?} (use one of: temperature, heart-rate, spo2, respiratory-rate, steps)")
    })
}

/// The CLI's name for a metric.
pub(crate) fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::BodyTemperature => "temperature",
        Metric::HeartRate => "heart-rate",
        Metric::SpO2 => "spo2",
        Metric::RespiratoryRate => "respiratory-rate",
        Metric::Steps => "steps",
    }
}

fn parse_day(s: &str) -> Result<vigil_log::Day, String> {
    s.parse()
        .map_err(|_| format!("invalid day {s:?}: expected YYYY-MM-DD"))
}

fn parse_days(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(d) if (1..=90).contains(&d) => Ok(d),
        _ => Err(format!(
            "invalid period length {s:?}: a whole number of days, 1–90"
        )),
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("invalid value {s:?}: expected a number such as 37.2"))
}

/// A `SYMPTOM=SEVERITY` pair.
pub(crate) fn parse_checkin(s: &str) -> Result<(Symptom, Severity), String> {
    let (sym, sev) = s.split_once('=').ok_or_else(|| {
        format!("invalid check-in {s:?}: expected SYMPTOM=SEVERITY, e.g. cough=mild")
    })?;
    let symptom = sym.parse::<Symptom>().map_err(|_| {
        format!(
            "unknown symptom {sym:?} (use one of: {})",
            Symptom::ALL
                .iter()
                .map(|s| s.name().replace('_', "-"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let severity = sev.parse::<Severity>().map_err(|_| {
        format!("unknown severity {sev:?} (use one of: none, mild, moderate, severe)")
    })?;
    Ok((symptom, severity))
}

/// `vigil init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Length of the monitoring period, in days.
    #[arg(long, default_value = "7", value_parser = parse_days)]
    pub(crate) days: u32,
    /// When the period starts (default: now).
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub(crate) start: Option<TimeArg>,
}

/// `vigil record`.
#[derive(Debug, Args)]
pub(crate) struct RecordArgs {
    /// temperature, heart-rate, spo2, respiratory-rate or steps.
    #[arg(value_parser = parse_metric)]
    pub(crate) metric: Metric,
    /// The value, in the metric's unit.
    #[arg(allow_negative_numbers = true, value_parser = parse_value)]
    pub(crate) value: f64,
    /// When it was measured (default: now).
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub(crate) at: Option<TimeArg>,
}

/// `vigil record-gatt`.
#[derive(Debug, Args)]
pub(crate) struct RecordGattArgs {
    /// The characteristic's 16-bit UUID in hex: 2A1C, 2A37 or 2A5F.
    #[arg(value_parser = parse_characteristic)]
    pub(crate) characteristic: u16,
    /// The value's bytes in hex, in one or more arguments (spaces allowed).
    #[arg(required = true, num_args = 1.., value_name = "HEX")]
    pub(crate) bytes: Vec<String>,
    /// When the packet arrived (default: now); used when it carries no time stamp.
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub(crate) at: Option<TimeArg>,
}

fn parse_characteristic(s: &str) -> Result<u16, String> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    u16::from_str_radix(t, 16).map_err(|_| {
        format!("invalid characteristic {s:?}: expected a 16-bit UUID in hex such as 2A1C")
    })
}

/// `vigil log`.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// Only this metric.
    #[arg(long, value_parser = parse_metric)]
    pub(crate) metric: Option<Metric>,
    /// Only this day (YYYY-MM-DD), local time unless --utc.
    #[arg(long, value_parser = parse_day, conflicts_with_all = ["from", "to"])]
    pub(crate) day: Option<vigil_log::Day>,
    /// Only readings at or after this time.
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub(crate) from: Option<TimeArg>,
    /// Only readings before this time.
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub(crate) to: Option<TimeArg>,
    /// Include retracted readings (marked).
    #[arg(long)]
    pub(crate) all: bool,
}

/// `vigil summary`.
#[derive(Debug, Args)]
pub(crate) struct SummaryArgs {
    /// Only this metric.
    #[arg(long, value_parser = parse_metric)]
    pub(crate) metric: Option<Metric>,
    /// Only this day (YYYY-MM-DD), local time unless --utc.
    #[arg(long, value_parser = parse_day)]
    pub(crate) day: Option<vigil_log::Day>,
}

/// `vigil annotate`.
#[derive(Debug, Args)]
pub(crate) struct AnnotateArgs {
    /// The reading's id, as `vigil log` shows it.
    pub(crate) id: String,
    /// The note (at most 2000 characters); `-` reads it from standard input,
    /// which keeps it out of the shell's history.
    pub(crate) text: String,
}

/// `vigil retract`.
#[derive(Debug, Args)]
pub(crate) struct RetractArgs {
    /// The reading's id, as `vigil log` shows it.
    pub(crate) id: String,
    /// Why it is wrong; `-` reads it from standard input.
    #[arg(long)]
    pub(crate) reason: String,
}

/// `vigil unretract`.
#[derive(Debug, Args)]
pub(crate) struct UnretractArgs {
    /// The reading's id, as `vigil log --all` shows it.
    pub(crate) id: String,
}

/// `vigil check-in`.
#[derive(Debug, Args)]
pub(crate) struct CheckInArgs {
    /// The day (default: today), local time unless --utc.
    #[arg(long, value_parser = parse_day)]
    pub(crate) day: Option<vigil_log::Day>,
    /// SYMPTOM=SEVERITY pairs, e.g. cough=mild.
    #[arg(value_parser = parse_checkin, value_name = "SYMPTOM=SEVERITY")]
    pub(crate) set: Vec<(Symptom, Severity)>,
}

/// `vigil conflicts`.
#[derive(Debug, Args)]
pub(crate) struct ConflictsArgs {
    /// Resolve a conflict instead of listing them.
    #[command(subcommand)]
    pub(crate) action: Option<ConflictsAction>,
}

/// `vigil conflicts resolve`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConflictsAction {
    /// Settle one conflict: set the value every device will show.
    #[command(
        group(ArgGroup::new("choice").required(true).args(["value", "pick"])),
        after_help = "Examples:\n  vigil conflicts resolve 2026-11-27/cough mild\n  vigil conflicts resolve 3fa2c1d0-4 \"after a hot shower\"\n  vigil conflicts resolve 2026-11-27/cough --pick 2"
    )]
    Resolve {
        /// The conflict's key, as listed: DAY/SYMPTOM for a check-in, a reading id for an annotation.
        key: String,
        /// The value to keep (a severity, or an annotation's text).
        value: Option<String>,
        /// Keep the N-th value listed (1 = the one shown now).
        #[arg(long, value_name = "N")]
        pick: Option<usize>,
    },
}

/// `vigil enrol`.
#[derive(Debug, Args)]
pub(crate) struct EnrolArgs {
    /// The enrolment ticket staff gave you (vigil-ticket1/...); `-` reads it
    /// from standard input, so it stays out of the shell's history.
    pub(crate) ticket: String,
    /// No longer taken: staff set the label in your ticket.
    #[arg(long, hide = true)]
    pub(crate) label: Option<String>,
    /// Fever threshold, °C (35–42).
    #[arg(long, default_value = "37.3", value_parser = parse_value)]
    pub(crate) threshold: f64,
    /// Readings at or above the threshold that confirm an episode (1–20).
    #[arg(long, default_value = "2")]
    pub(crate) confirm_count: usize,
    /// Within how long those readings must fall.
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) confirm_window: i64,
    /// How long below the threshold ends an episode.
    #[arg(long, default_value = "60m", value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) recovery: i64,
}

/// `vigil sync`.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// Use this node code instead of the one remembered by `enrol` or `pair join`.
    #[arg(long, value_name = "CODE")]
    pub(crate) node: Option<String>,
}

/// `vigil watch`.
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// How often to sync when nothing happens.
    #[arg(long, default_value = "15m", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub(crate) every: i64,
    /// The first wait after a failed sync; it doubles with each failure.
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub(crate) retry: i64,
    /// The longest wait between retries.
    #[arg(long, default_value = "15m", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub(crate) max_retry: i64,
    /// Read packets of this GATT characteristic (2A1C, 2A37 or 2A5F) from
    /// standard input, one a line in hex, and record them.
    #[arg(long, value_parser = parse_characteristic, value_name = "UUID")]
    pub(crate) gatt: Option<u16>,
    /// Use this node code instead of the one remembered by `enrol` or `pair join`.
    #[arg(long, value_name = "CODE")]
    pub(crate) node: Option<String>,
    /// How often to look whether another command queued an alert.
    #[arg(long, default_value = "2s", value_parser = parse_positive_duration, value_name = "DURATION", hide = true)]
    pub(crate) poll: i64,
    /// How long to wait for the node to answer a connection.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration, value_name = "DURATION", hide = true)]
    pub(crate) connect_timeout: i64,
}

/// A duration greater than zero, in ms.
fn parse_positive_duration(s: &str) -> Result<i64, String> {
    match parse_duration(s)? {
        0 => Err(format!("invalid duration {s:?}: must be more than zero")),
        d => Ok(d),
    }
}

/// `vigil pair`.
#[derive(Debug, Args)]
pub(crate) struct PairArgs {
    /// Join or show.
    #[command(subcommand)]
    pub(crate) action: PairAction,
}

/// `vigil pair show|join`.
#[derive(Debug, Subcommand)]
pub(crate) enum PairAction {
    /// On the EXISTING device: send the vault to a joining device and show the code to compare.
    #[command(
        after_help = "Example:\n  vigil pair show vigil-join1/5d1c0e...e0\n\nThen check that the new device shows the same 6-digit code. A mistyped joiner code fails its checksum and is refused (exit 2)."
    )]
    Show {
        /// The joiner code the new device printed (vigil-join1/...).
        joiner: String,
        /// Use this node code instead of the remembered one.
        #[arg(long, value_name = "CODE")]
        node: Option<String>,
    },
    /// On the NEW device: wait for the vault from an existing device, show the code, ask whether both screens show it, then join.
    #[command(
        after_help = "Examples:\n  vigil --vault ~/.vigil-tablet pair join vigil1/203.0.113.5:4433/...\n  vigil pair join vigil1/... --timeout 0    # scripts: print the joiner code, exit 5 until the offer is there\n\nThe offer is taken from the node and kept unused until you answer yes to \"Do both screens show the same code? [y/N]\" (read from stdin; with --json a {\"status\":\"confirm\",\"pairing_code\":...} line comes first). Anything else stores nothing and forgets the joiner code. --yes joins without asking."
    )]
    Join {
        /// The node's code (vigil1/...): the same node the existing device uses.
        code: String,
        /// How long to wait for the offer (0: check once).
        #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
        timeout: i64,
        /// How often to ask the node while waiting.
        #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION", hide = true)]
        poll: i64,
        /// Also draw the joiner code as a QR code.
        #[arg(long)]
        qr: bool,
        /// Join without asking whether both screens show the same pairing
        /// code (for scripts that compare the codes themselves).
        #[arg(long)]
        yes: bool,
    },
}

/// `vigil export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// An HL7 FHIR R4 Bundle of Observations (JSON).
    #[arg(long)]
    pub(crate) fhir: bool,
    /// The plaintext log as an Automerge document, written to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) automerge: Option<PathBuf>,
    /// FHIR: write to FILE instead of stdout.
    #[arg(long, value_name = "FILE", requires = "fhir")]
    pub(crate) out: Option<PathBuf>,
    /// FHIR: only this metric.
    #[arg(long, value_parser = parse_metric, requires = "fhir")]
    pub(crate) metric: Option<Metric>,
    /// FHIR: include retracted readings, with status entered-in-error.
    #[arg(long, requires = "fhir")]
    pub(crate) include_retracted: bool,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub(crate) force: bool,
}

/// `vigil shred`.
#[derive(Debug, Args)]
pub(crate) struct ShredArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub(crate) yes: bool,
    /// Do not contact the node (it deletes the mailbox itself when the period ends).
    #[arg(long)]
    pub(crate) offline: bool,
    /// Use this node code instead of the remembered one.
    #[arg(long, value_name = "CODE")]
    pub(crate) node: Option<String>,
}

/// `vigil recover`.
#[derive(Debug, Args)]
pub(crate) struct RecoverArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub(crate) yes: bool,
    /// Use this node code instead of the remembered one.
    #[arg(long, value_name = "CODE")]
    pub(crate) node: Option<String>,
    /// The period's start, if the vault directory no longer records it.
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub(crate) start: Option<TimeArg>,
    /// The period's length in days, with --start [default: 7].
    #[arg(long, value_parser = parse_days, requires = "start")]
    pub(crate) days: Option<u32>,
}

/// A time given on the command line: `now`, or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeArg {
    /// The program's clock (or the `--now` override).
    Now,
    /// An instant, ms since the Unix epoch (UTC).
    At(i64),
}

impl TimeArg {
    /// The instant, given what "now" is.
    pub(crate) fn resolve(self, now_ms: i64) -> i64 {
        match self {
            TimeArg::Now => now_ms,
            TimeArg::At(t) => t,
        }
    }
}

/// `now` or an RFC 3339 time.
pub(crate) fn parse_time_arg(s: &str) -> Result<TimeArg, String> {
    if s.trim().eq_ignore_ascii_case("now") {
        return Ok(TimeArg::Now);
    }
    parse_rfc3339(s).map(TimeArg::At).ok_or_else(|| {
        let s = s.trim();
        if s.parse::<jiff::Timestamp>().is_ok() {
            format!("invalid time {s:?}: before 1970-01-01")
        } else {
            format!("invalid time {s:?}: expected RFC 3339, e.g. 2026-11-27T08:10:00Z")
        }
    })
}

/// A duration such as `90s`, `10m`, `1h30m`, `2d`, `500ms`, or a bare
/// number of seconds; in ms.
fn parse_duration(s: &str) -> Result<i64, String> {
    duration(s)
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .ok_or_else(|| format!("invalid duration {s:?}: expected e.g. 30s, 10m, 1h30m, 2d"))
}
