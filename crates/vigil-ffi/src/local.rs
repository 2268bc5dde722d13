//! The resident's local flow on a [`Vault`]: notes, retractions, check-ins,
//! conflicts and their resolution, queries, the alerts waiting for a node,
//! what left the device, the exports and the shred. Each call does what the
//! matching `vigil` command does (crates/vigil-cli/src/resident/commands),
//! with the library's types as records and enums.
//!
//! Every input is checked before the library is called, and a refusal is
//! an `Invalid` error whose `code` an app can branch on: the library's own
//! (`negative-time`, `invalid-reading-id`, `unknown-reading`,
//! `text-too-long`, `invalid-day`, `unknown-symptom`, `unknown-severity`,
//! ...) and the binding's: `time-out-of-range` (after 9999),
//! `empty-text`, `empty-check-in`, `duplicate-symptom`,
//! `day-outside-period`, `day-in-future`, `invalid-range`,
//! `invalid-conflict-key`, `no-such-conflict`, `no-such-choice`.

use std::sync::Arc;

use crate::error::{Invalid, QueryError, ReadError, ShredError, WriteError};
use crate::{KeyStore, Metric, Reading, Vault, keystore};

/// The symptoms a daily check-in asks about ([`vigil::Symptom`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Symptom {
    /// Cough.
    Cough,
    /// Sore throat.
    SoreThroat,
    /// Fatigue.
    Fatigue,
    /// Headache.
    Headache,
    /// Shortness of breath.
    ShortnessOfBreath,
    /// Loss of taste or smell.
    LossOfTasteOrSmell,
    /// Muscle ache.
    MuscleAche,
    /// Chills or feeling feverish.
    Chills,
    /// Fever (felt, besides the thermometer's readings).
    Fever,
    /// Any other symptom.
    Other,
}

impl From<Symptom> for vigil::Symptom {
    fn from(s: Symptom) -> Self {
        match s {
            Symptom::Cough => vigil::Symptom::Cough,
            Symptom::SoreThroat => vigil::Symptom::SoreThroat,
            Symptom::Fatigue => vigil::Symptom::Fatigue,
            Symptom::Headache => vigil::Symptom::Headache,
            Symptom::ShortnessOfBreath => vigil::Symptom::ShortnessOfBreath,
            Symptom::LossOfTasteOrSmell => vigil::Symptom::LossOfTasteOrSmell,
            Symptom::MuscleAche => vigil::Symptom::MuscleAche,
            Symptom::Chills => vigil::Symptom::Chills,
            Symptom::Fever => vigil::Symptom::Fever,
            Symptom::Other => vigil::Symptom::Other,
        }
    }
}

impl From<vigil::Symptom> for Symptom {
    fn from(s: vigil::Symptom) -> Self {
        // A closed set (docs/spec.md §6): `vigil::Symptom::ALL` lists it.
        match s {
            vigil::Symptom::Cough => Symptom::Cough,
            vigil::Symptom::SoreThroat => Symptom::SoreThroat,
            vigil::Symptom::Fatigue => Symptom::Fatigue,
            vigil::Symptom::Headache => Symptom::Headache,
            vigil::Symptom::ShortnessOfBreath => Symptom::ShortnessOfBreath,
            vigil::Symptom::LossOfTasteOrSmell => Symptom::LossOfTasteOrSmell,
            vigil::Symptom::MuscleAche => Symptom::MuscleAche,
            vigil::Symptom::Chills => Symptom::Chills,
            vigil::Symptom::Fever => Symptom::Fever,
            vigil::Symptom::Other => Symptom::Other,
        }
    }
}

/// How strongly a symptom is felt ([`vigil::Severity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Severity {
    /// Not present.
    None,
    /// Mild.
    Mild,
    /// Moderate.
    Moderate,
    /// Severe.
    Severe,
}

impl From<Severity> for vigil::Severity {
    fn from(s: Severity) -> Self {
        match s {
            Severity::None => vigil::Severity::None,
            Severity::Mild => vigil::Severity::Mild,
            Severity::Moderate => vigil::Severity::Moderate,
            Severity::Severe => vigil::Severity::Severe,
        }
    }
}

impl From<vigil::Severity> for Severity {
    fn from(s: vigil::Severity) -> Self {
        match s {
            vigil::Severity::None => Severity::None,
            vigil::Severity::Mild => Severity::Mild,
            vigil::Severity::Moderate => Severity::Moderate,
            vigil::Severity::Severe => Severity::Severe,
        }
    }
}

/// One answer of a check-in: a symptom and how strongly it is felt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct SymptomSeverity {
    /// The symptom.
    pub symptom: Symptom,
    /// Its severity.
    pub severity: Severity,
}

/// A symptom of one day's check-in as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SymptomCheckIn {
    /// The symptom.
    pub symptom: Symptom,
    /// Empty if not answered; else the value shown first, then any other
    /// value a device set concurrently (a conflict, see `conflicts`).
    pub severities: Vec<Severity>,
}

/// A severity one device set in a check-in conflict.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SeverityChoice {
    /// The severity.
    pub severity: Severity,
    /// The device that set it (hex), if the log knows.
    pub device_id: Option<String>,
}

/// A note one device set in an annotation conflict.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TextChoice {
    /// The note.
    pub text: String,
    /// The device that set it (hex), if the log knows.
    pub device_id: Option<String>,
}

/// A value the resident's devices set differently ([`vigil::Conflict`]):
/// every value stays visible, the first shown meanwhile, until one is
/// picked with `resolve_conflict` (by its `key`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Conflict {
    /// Two or more severities for one symptom on one day.
    CheckIn {
        /// What `resolve_conflict` takes: `DAY/symptom`, as `vigil
        /// conflicts` shows it (`2026-11-27/sore-throat`).
        key: String,
        /// The day, `YYYY-MM-DD`.
        day: String,
        /// The symptom.
        symptom: Symptom,
        /// Every value, the one shown meanwhile first.
        values: Vec<SeverityChoice>,
    },
    /// Two or more notes on one reading.
    Annotation {
        /// What `resolve_conflict` takes: the reading's id.
        key: String,
        /// The reading's id.
        reading_id: String,
        /// Every note, the one shown meanwhile first.
        values: Vec<TextChoice>,
    },
}

/// A retraction: the reading stays in history but leaves every view.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Retraction {
    /// The device that retracted it (hex).
    pub device_id: String,
    /// When, ms.
    pub at_ms: i64,
    /// Why, as the resident wrote it.
    pub reason: String,
}

/// A reading with what the resident said of it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ReadingDetail {
    /// The reading.
    pub reading: Reading,
    /// Its note: empty if none, several if devices set it concurrently
    /// (the first is shown).
    pub annotations: Vec<String>,
    /// Its retraction, if it was retracted.
    pub retraction: Option<Retraction>,
}

/// One metric's statistics over one UTC day, retracted readings left out
/// ([`vigil::DailySummary`]).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DailySummary {
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// The metric.
    pub metric: Metric,
    /// Lowest value.
    pub min: f64,
    /// Highest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Number of readings.
    pub count: u64,
}

/// When body temperature counts as a fever episode ([`vigil::FeverRule`]).
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct FeverRule {
    /// Threshold, °C: a reading at or above it counts.
    pub threshold_c: f64,
    /// How many such readings confirm an episode.
    pub confirm_count: u32,
    /// Within how long those readings must fall, ms.
    pub confirm_window_ms: i64,
    /// How long readings must stay below the threshold to end it, ms.
    pub recovery_ms: i64,
}

impl From<vigil::FeverRule> for FeverRule {
    fn from(r: vigil::FeverRule) -> Self {
        FeverRule {
            threshold_c: r.threshold_c,
            confirm_count: u32::try_from(r.confirm_count).unwrap_or(u32::MAX),
            confirm_window_ms: r.confirm_window_ms,
            recovery_ms: r.recovery_ms,
        }
    }
}

/// One fever episode ([`vigil::FeverEpisode`]).
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct FeverEpisode {
    /// The first high reading among those that confirmed it, ms.
    pub onset_ms: i64,
    /// The first reading of the recovery that ended it, ms; none while it lasts.
    pub end_ms: Option<i64>,
    /// Highest temperature during the episode, °C.
    pub peak_c: f64,
}

impl From<vigil::FeverEpisode> for FeverEpisode {
    fn from(e: vigil::FeverEpisode) -> Self {
        FeverEpisode {
            onset_ms: e.onset_ms,
            end_ms: e.end_ms,
            peak_c: e.peak_c,
        }
    }
}

/// Whether an alert tells of an episode's start or its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AlertKind {
    /// A fever episode started.
    Started,
    /// A fever episode ended.
    Ended,
    /// A kind newer than this binding.
    Unknown {
        /// Its code.
        code: u8,
    },
}

impl From<u8> for AlertKind {
    fn from(k: u8) -> Self {
        match k {
            vigil::ALERT_START => AlertKind::Started,
            vigil::ALERT_END => AlertKind::Ended,
            code => AlertKind::Unknown { code },
        }
    }
}

/// An alert waiting for its node's acknowledgement ([`vigil::PendingAlert`]).
/// Sending it is the network's part.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PendingAlert {
    /// The grant it goes under (hex).
    pub grant_id: String,
    /// The episode (hex).
    pub episode: String,
    /// Start or end of the episode.
    pub kind: AlertKind,
    /// When it was queued, ms.
    pub queued_ms: i64,
    /// When it was first sent, if it was.
    pub first_sent_ms: Option<i64>,
    /// Unacknowledged for longer than the delivery deadline (15 minutes)
    /// at the time asked about: tell the resident the community has not
    /// received it.
    pub overdue: bool,
}

/// An alert its node confirmed receiving ([`vigil::DeliveredAlert`]), with
/// when staff acknowledged it once the node said so (`refresh_alert_status`).
/// Who acknowledged is never sent to the device.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeliveredAlert {
    /// The grant it went under (hex).
    pub grant_id: String,
    /// The episode (hex).
    pub episode: String,
    /// Start or end of the episode.
    pub kind: AlertKind,
    /// The episode's onset as the alert told it (rounded to 10 minutes), ms.
    pub onset_ms: i64,
    /// The level band sent (1–3).
    pub level: u8,
    /// When the node confirmed it, ms (this device's clock).
    pub delivered_ms: i64,
    /// When staff acknowledged it, ms (the node's clock): none while not
    /// acknowledged, or while the node has not said (an older node).
    pub staff_acked_ms: Option<i64>,
}

impl From<vigil::DeliveredAlert> for DeliveredAlert {
    fn from(d: vigil::DeliveredAlert) -> Self {
        DeliveredAlert {
            grant_id: hex(&d.grant_id),
            episode: hex(&d.episode),
            kind: d.kind.into(),
            onset_ms: d.onset_ms,
            level: d.level,
            delivered_ms: d.delivered_ms,
            staff_acked_ms: d.staff_acked_ms,
        }
    }
}

/// A fever-alert grant this device made to a node ([`vigil::Grant`]).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Grant {
    /// Its id (hex).
    pub grant_id: String,
    /// The node's X25519 public key (hex).
    pub node: String,
    /// The label staff set in the ticket: what the node shows with the alerts.
    pub label: String,
    /// Valid from, ms.
    pub valid_from_ms: i64,
    /// Valid until, ms (the ticket's period end at the latest).
    pub valid_until_ms: i64,
    /// The rule the device evaluates for it.
    pub rule: FeverRule,
}

impl From<vigil::Grant> for Grant {
    fn from(g: vigil::Grant) -> Self {
        Grant {
            grant_id: hex(&g.grant_id),
            node: hex(g.node.as_bytes()),
            label: g.label,
            valid_from_ms: g.valid_from_ms,
            valid_until_ms: g.valid_until_ms,
            rule: g.rule.into(),
        }
    }
}

/// One fact that left this device: what the community was told
/// ([`vigil::Disclosure`]). Besides these only the encrypted log left it.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Disclosure {
    /// A fever-alert grant was given to a node.
    Grant {
        /// When, ms.
        at_ms: i64,
        /// The node's X25519 public key (hex).
        node: String,
        /// Under which rule.
        rule: FeverRule,
        /// With which label.
        label: String,
    },
    /// An alert was sent to a node for the first time.
    AlertSent {
        /// When, ms.
        at_ms: i64,
        /// The episode's onset, rounded to its 10-minute slot, ms.
        onset_ms: i64,
        /// Start or end.
        kind: AlertKind,
        /// The temperature band told.
        level: u8,
    },
    /// The node acknowledged an alert.
    AlertAcknowledged {
        /// When, ms.
        at_ms: i64,
        /// The episode's rounded onset, ms.
        onset_ms: i64,
        /// Start or end.
        kind: AlertKind,
    },
    /// The vault's key was wrapped to a new device of the resident's.
    Pairing {
        /// When, ms.
        at_ms: i64,
        /// The new device's X25519 public key (hex).
        joiner: String,
    },
}

impl From<vigil::Disclosure> for Disclosure {
    fn from(d: vigil::Disclosure) -> Self {
        match d {
            vigil::Disclosure::Grant {
                at_ms,
                node,
                rule,
                label,
            } => Disclosure::Grant {
                at_ms,
                node: hex(node.as_bytes()),
                rule: rule.into(),
                label,
            },
            vigil::Disclosure::AlertSent {
                at_ms,
                onset_ms,
                kind,
                level,
            } => Disclosure::AlertSent {
                at_ms,
                onset_ms,
                kind: kind.into(),
                level,
            },
            vigil::Disclosure::AlertAcknowledged {
                at_ms,
                onset_ms,
                kind,
            } => Disclosure::AlertAcknowledged {
                at_ms,
                onset_ms,
                kind: kind.into(),
            },
            vigil::Disclosure::Pairing { at_ms, joiner } => Disclosure::Pairing {
                at_ms,
                joiner: hex(joiner.as_bytes()),
            },
        }
    }
}

/// What remains of a shredded vault: nothing sensitive ([`vigil::Tombstone`]).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Tombstone {
    /// The vault that was (hex).
    pub vault_id: String,
    /// Its period's start, ms.
    pub period_start_ms: i64,
    /// Its period's end, ms.
    pub period_end_ms: i64,
    /// When the shred began, ms.
    pub shredded_at_ms: i64,
    /// The node's signed deletion receipt, when a node was asked to delete
    /// (never kept on disk: save it now if it matters).
    pub receipt: Option<Vec<u8>>,
    /// SHA-256 of that receipt (hex): what the tombstone file keeps of it.
    pub receipt_sha256: Option<String>,
}

impl From<vigil::Tombstone> for Tombstone {
    fn from(t: vigil::Tombstone) -> Self {
        Tombstone {
            vault_id: t.vault_id.to_string(),
            period_start_ms: t.period.start_ms,
            period_end_ms: t.period.end_ms,
            shredded_at_ms: t.shredded_at_ms,
            receipt_sha256: t.receipt_sha256.as_ref().map(|d| hex(d)),
            receipt: t.receipt,
        }
    }
}

/// Lowercase hex, as Vigil prints ids (the one helper of the binding).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The latest time the binding takes: 9999-12-31T23:59:59.999Z, the last
/// instant RFC 3339 (and so a FHIR `dateTime`) can write.
pub(crate) const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// The longest reading id: 32 hex digits, `-`, a u64 in decimal.
const MAX_ID_LEN: usize = 32 + 1 + 20;
/// A day is `YYYY-MM-DD`.
const DAY_LEN: usize = 10;
/// The longest conflict key: a day, `/`, a symptom's name (well under
/// this), or a reading id.
const MAX_KEY_LEN: usize = 64;
/// The longest severity's name, with room for the case-insensitive forms.
const MAX_SEVERITY_LEN: usize = 16;
/// How much of a refused string an error repeats: an app that passes a
/// megabyte gets a short message back, not its megabyte.
const PREVIEW_CHARS: usize = 40;

/// The start of `s`, for an error message.
fn preview(s: &str) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(PREVIEW_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// A reading id from the app.
fn reading_id(s: &str) -> Result<vigil::ReadingId, Invalid> {
    if s.len() > MAX_ID_LEN {
        return Err(vigil::LogError::InvalidReadingId(preview(s)).into());
    }
    Ok(s.parse::<vigil::ReadingId>()?)
}

/// A day from the app, `YYYY-MM-DD`.
fn day(s: &str) -> Result<vigil::Day, Invalid> {
    if s.len() > DAY_LEN {
        return Err(vigil::LogError::InvalidDay(preview(s)).into());
    }
    Ok(s.parse::<vigil::Day>()?)
}

/// A time from the app, ms since the Unix epoch: from 1970 to the end of
/// 9999. The library refuses negative times of readings only; a
/// retraction's time, a query's bounds and "now" are checked here, so
/// that no time the exports cannot write gets in.
fn time(ms: i64) -> Result<i64, Invalid> {
    if ms < 0 {
        return Err(vigil::LogError::NegativeTime(ms).into());
    }
    if ms > MAX_TIME_MS {
        return Err(Invalid::new(
            "time-out-of-range",
            format!("time {ms} ms is after 9999-12-31T23:59:59.999Z"),
        ));
    }
    Ok(ms)
}

/// A note or a reason from the app: something must be said (the library
/// bounds the length).
fn text(s: &str) -> Result<&str, Invalid> {
    if s.trim().is_empty() {
        return Err(Invalid::new(
            "empty-text",
            "the text is empty: a note or a reason must say something",
        ));
    }
    Ok(s)
}

/// A severity's name from the app.
fn severity(s: &str) -> Result<vigil::Severity, Invalid> {
    if s.len() > MAX_SEVERITY_LEN {
        return Err(vigil::LogError::UnknownSeverity(preview(s)).into());
    }
    Ok(s.parse::<vigil::Severity>()?)
}

/// The rules this device evaluates: each grant's, or the default if it
/// made none (as `vigil alerts` and `vigil status` do).
fn rules(grants: &[vigil::Grant]) -> Vec<vigil::FeverRule> {
    let mut r: Vec<vigil::FeverRule> = grants.iter().map(|g| g.rule).collect();
    if r.is_empty() {
        r.push(vigil::FeverRule::default());
    }
    r.dedup();
    r
}

/// `DAY/symptom`, the key `vigil conflicts` shows for a check-in conflict.
fn checkin_key(day: vigil::Day, symptom: vigil::Symptom) -> String {
    format!("{day}/{}", symptom.name().replace('_', "-"))
}

/// What a conflict key names: where the value that resolves it is set.
enum Target {
    /// A check-in conflict.
    CheckIn(vigil::Day, vigil::Symptom),
    /// An annotation conflict.
    Annotation(vigil::ReadingId),
}

/// The unresolved conflict `key` names, and its values as text (a
/// severity's name, or a note), the one shown now first.
fn find_conflict(log: &vigil::HealthLog, key: &str) -> Result<(Target, Vec<String>), Invalid> {
    if key.len() > MAX_KEY_LEN {
        return Err(Invalid::new(
            "invalid-conflict-key",
            format!(
                "invalid conflict key {:?}: expected DAY/SYMPTOM or a reading id",
                preview(key)
            ),
        ));
    }
    let all = log.conflicts();
    let found = if let Some((d, s)) = key.split_once('/') {
        let d = day(d)?;
        let s: vigil::Symptom = s.parse()?;
        all.into_iter().find_map(|c| match c {
            vigil::Conflict::CheckIn {
                day,
                symptom,
                values,
            } if day == d && symptom == s => Some((
                Target::CheckIn(d, s),
                values.iter().map(|v| v.name().to_owned()).collect(),
            )),
            _ => None,
        })
    } else {
        let id = reading_id(key)?;
        all.into_iter().find_map(|c| match c {
            vigil::Conflict::Annotation { reading, values } if reading == id => {
                Some((Target::Annotation(id), values))
            }
            _ => None,
        })
    };
    found.ok_or_else(|| {
        Invalid::new(
            "no-such-conflict",
            format!("no unresolved conflict {key} (see conflicts)"),
        )
    })
}

fn resolve(v: &mut vigil::Vault, target: Target, value: &str) -> Result<(), WriteError> {
    match target {
        Target::CheckIn(day, symptom) => {
            v.check_in(day, symptom, severity(value)?)?;
        }
        Target::Annotation(id) => v.annotate(id, text(value)?)?,
    }
    Ok(())
}

#[uniffi::export]
impl Vault {
    /// Sets this device's note on a reading (`vigil annotate`); a note
    /// another device set concurrently stays visible as a conflict.
    /// Durable when this returns.
    pub fn annotate(&self, reading_id: String, text: String) -> Result<(), WriteError> {
        let id = self::reading_id(&reading_id)?;
        let text = self::text(&text)?;
        self.with(|v| Ok(v.annotate(id, text)?))
    }

    /// Retracts a wrong reading with a reason, at `at_ms` (`vigil
    /// retract`): it stays in history but leaves views, summaries, exports
    /// and alerts. Durable when this returns.
    pub fn retract(
        &self,
        reading_id: String,
        reason: String,
        at_ms: i64,
    ) -> Result<(), WriteError> {
        let id = self::reading_id(&reading_id)?;
        let reason = text(&reason)?;
        let at_ms = time(at_ms)?;
        self.with(|v| Ok(v.retract(id, reason, at_ms)?))
    }

    /// Answers the check-in of `day` (`YYYY-MM-DD`, UTC) at `now_ms`
    /// (`vigil check-in --set`): a day of the period, not in the future,
    /// and each symptom at most once. Every answer is checked before any
    /// is written; each is durable when this returns. Setting a symptom in
    /// conflict resolves the conflict.
    pub fn check_in(
        &self,
        day: String,
        answers: Vec<SymptomSeverity>,
        now_ms: i64,
    ) -> Result<(), WriteError> {
        let day = self::day(&day)?;
        let now_ms = time(now_ms)?;
        if answers.is_empty() {
            return Err(Invalid::new("empty-check-in", "the check-in has no answer").into());
        }
        for (i, a) in answers.iter().enumerate() {
            if answers[..i].iter().any(|b| b.symptom == a.symptom) {
                let name = vigil::Symptom::from(a.symptom).name();
                return Err(Invalid::new(
                    "duplicate-symptom",
                    format!("{name} is answered twice in one check-in"),
                )
                .into());
            }
        }
        self.with(|v| {
            // As `vigil check-in`: a day of the period, not yet to come.
            let p = v.period();
            if day < vigil::Day::of(p.start_ms) || day > vigil::Day::of(p.end_ms - 1) {
                return Err(Invalid::new(
                    "day-outside-period",
                    format!("{day} is outside the monitoring period"),
                )
                .into());
            }
            if day > vigil::Day::of(now_ms) {
                return Err(
                    Invalid::new("day-in-future", format!("{day} is in the future")).into(),
                );
            }
            for a in &answers {
                v.check_in(day, a.symptom.into(), a.severity.into())?;
            }
            Ok(())
        })
    }

    /// The check-in of `day` (`YYYY-MM-DD`): every symptom, answered or not.
    pub fn check_in_of(&self, day: String) -> Result<Vec<SymptomCheckIn>, QueryError> {
        let day = self::day(&day)?;
        self.with(|v| {
            let answered = v.log().checkin(day);
            Ok(vigil::Symptom::ALL
                .iter()
                .map(|s| SymptomCheckIn {
                    symptom: (*s).into(),
                    severities: answered
                        .get(s)
                        .map(|vals| vals.iter().map(|x| (*x).into()).collect())
                        .unwrap_or_default(),
                })
                .collect())
        })
    }

    /// Every unresolved conflict, check-ins first (`vigil conflicts`), with
    /// the device that set each value.
    pub fn conflicts(&self) -> Result<Vec<Conflict>, ReadError> {
        self.with(|v| {
            let log = v.log();
            Ok(log
                .conflicts()
                .into_iter()
                .map(|c| {
                    let by = log.conflict_devices(&c);
                    let by = |i: usize| by.get(i).copied().flatten().map(|d| d.to_string());
                    match c {
                        vigil::Conflict::CheckIn {
                            day,
                            symptom,
                            values,
                        } => Conflict::CheckIn {
                            key: checkin_key(day, symptom),
                            day: day.to_string(),
                            symptom: symptom.into(),
                            values: values
                                .into_iter()
                                .enumerate()
                                .map(|(i, s)| SeverityChoice {
                                    severity: s.into(),
                                    device_id: by(i),
                                })
                                .collect(),
                        },
                        vigil::Conflict::Annotation { reading, values } => Conflict::Annotation {
                            key: reading.to_string(),
                            reading_id: reading.to_string(),
                            values: values
                                .into_iter()
                                .enumerate()
                                .map(|(i, text)| TextChoice {
                                    text,
                                    device_id: by(i),
                                })
                                .collect(),
                        },
                    }
                })
                .collect())
        })
    }

    /// Resolves the conflict `key` names by setting `value` on this device
    /// (`vigil conflicts resolve KEY VALUE`): a severity's name (`none`,
    /// `mild`, `moderate`, `severe`) for a check-in, a note for an
    /// annotation. The other devices take it at their next sync.
    pub fn resolve_conflict(&self, key: String, value: String) -> Result<(), WriteError> {
        self.with(|v| {
            let (target, _) = find_conflict(v.log(), &key)?;
            resolve(v, target, &value)
        })
    }

    /// Resolves the conflict `key` names by keeping its value number
    /// `index` (0 is the one shown now; `vigil conflicts resolve KEY
    /// --pick N` counts from 1). Returns the value kept, as text.
    pub fn resolve_conflict_with(&self, key: String, index: u32) -> Result<String, WriteError> {
        self.with(|v| {
            let (target, values) = find_conflict(v.log(), &key)?;
            let value = usize::try_from(index)
                .ok()
                .and_then(|i| values.get(i))
                .cloned()
                .ok_or_else(|| {
                    Invalid::new(
                        "no-such-choice",
                        format!(
                            "conflict {key} has values 0 to {}, not {index}",
                            values.len().saturating_sub(1)
                        ),
                    )
                })?;
            resolve(v, target, &value)?;
            Ok(value)
        })
    }

    /// Readings of `metric` (all if none) with `from_ms <= time < to_ms`
    /// (unbounded where none), by time, with their notes and retractions;
    /// retracted ones only if `include_retracted` (`vigil log`).
    pub fn readings(
        &self,
        metric: Option<Metric>,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        include_retracted: bool,
    ) -> Result<Vec<ReadingDetail>, QueryError> {
        let from = from_ms.map(time).transpose()?.unwrap_or(i64::MIN);
        let to = to_ms.map(time).transpose()?.unwrap_or(i64::MAX);
        if from > to {
            return Err(Invalid::new(
                "invalid-range",
                format!("the range ends ({to} ms) before it starts ({from} ms)"),
            )
            .into());
        }
        let metric = metric.map(vigil::Metric::from);
        self.with(|v| {
            let log = v.log();
            Ok(log
                .readings(metric, from, to, include_retracted)
                .into_iter()
                .map(|r| ReadingDetail {
                    annotations: log.annotation(r.id),
                    retraction: log.retraction(r.id).map(|x| Retraction {
                        device_id: x.by.to_string(),
                        at_ms: x.time_ms,
                        reason: x.reason,
                    }),
                    reading: r.into(),
                })
                .collect())
        })
    }

    /// Per-day statistics of `metric` (every metric if none), of `day`
    /// only (`YYYY-MM-DD`) or of every day (`vigil summary`), by day then
    /// metric; retracted readings left out.
    pub fn daily_summaries(
        &self,
        metric: Option<Metric>,
        day: Option<String>,
    ) -> Result<Vec<DailySummary>, QueryError> {
        let day = day.as_deref().map(self::day).transpose()?;
        let metric = metric.map(vigil::Metric::from);
        self.with(|v| {
            Ok(v.log()
                .daily_summaries(metric)
                .into_iter()
                .filter(|s| day.is_none_or(|d| s.day == d))
                .map(|s| DailySummary {
                    day: s.day.to_string(),
                    metric: s.metric.into(),
                    min: s.min,
                    max: s.max,
                    mean: s.mean,
                    count: u64::try_from(s.count).unwrap_or(u64::MAX),
                })
                .collect())
        })
    }

    /// Fever episodes in the merged log under this device's rule (its
    /// first grant's, or the default 37.3 °C rule if it made none), as
    /// `vigil alerts` lists them.
    pub fn fever_episodes(&self) -> Result<Vec<FeverEpisode>, QueryError> {
        self.with(|v| {
            let rule = rules(&v.grants()?)[0];
            Ok(v.log()
                .fever_episodes(&rule)
                .into_iter()
                .map(FeverEpisode::from)
                .collect())
        })
    }

    /// The fever episode in progress under any of this device's rules, if
    /// one is (as `vigil status` shows it).
    pub fn current_fever(&self) -> Result<Option<FeverEpisode>, QueryError> {
        self.with(|v| {
            Ok(rules(&v.grants()?)
                .iter()
                .find_map(|r| v.log().current_fever(r))
                .map(FeverEpisode::from))
        })
    }

    /// Evaluates every grant's rule over the merged log at `now_ms` and
    /// queues an alert for each episode start (and end) not alerted yet;
    /// returns how many were queued. Sending them is the network's part.
    pub fn evaluate_alerts(&self, now_ms: i64) -> Result<u64, WriteError> {
        let now_ms = time(now_ms)?;
        self.with(|v| {
            let n = v.evaluate_alerts(now_ms)?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
    }

    /// Alerts not yet acknowledged by their node, each `overdue` as of
    /// `now_ms` (`vigil alerts`).
    pub fn pending_alerts(&self, now_ms: i64) -> Result<Vec<PendingAlert>, QueryError> {
        let now_ms = time(now_ms)?;
        self.with(|v| {
            Ok(v.pending_alerts()?
                .into_iter()
                .map(|p| PendingAlert {
                    grant_id: hex(&p.grant_id),
                    episode: hex(&p.episode),
                    kind: p.kind.into(),
                    overdue: p.overdue(now_ms),
                    queued_ms: p.queued_ms,
                    first_sent_ms: p.first_sent_ms,
                })
                .collect())
        })
    }

    /// Alerts their node confirmed, by onset, each with when staff
    /// acknowledged it as far as the device knows (`vigil alerts`): show
    /// "acknowledged by staff at ..." or "not yet acknowledged".
    pub fn delivered_alerts(&self) -> Result<Vec<DeliveredAlert>, QueryError> {
        self.with(|v| {
            Ok(v.delivered_alerts()?
                .into_iter()
                .map(DeliveredAlert::from)
                .collect())
        })
    }

    /// The fever-alert grants this device made.
    pub fn grants(&self) -> Result<Vec<Grant>, QueryError> {
        self.with(|v| Ok(v.grants()?.into_iter().map(Grant::from).collect()))
    }

    /// Everything that ever left this device besides the encrypted log,
    /// oldest first (`vigil disclosures`): what the community was told.
    pub fn disclosures(&self) -> Result<Vec<Disclosure>, QueryError> {
        self.with(|v| Ok(v.disclosures()?.into_iter().map(Disclosure::from).collect()))
    }

    /// Whether the period is over at `now_ms`: the app's timer calls this,
    /// then `shred_now`.
    pub fn is_due(&self, now_ms: i64) -> Result<bool, QueryError> {
        let now_ms = time(now_ms)?;
        self.with(|v| Ok(v.is_due(now_ms)))
    }

    /// The log as an HL7 FHIR R4 Bundle (JSON text, `vigil export
    /// --fhir`): one Observation per reading of `metric` (all if none),
    /// retracted ones only if `include_retracted` (as `entered-in-error`),
    /// stamped `now_ms`. Plaintext: the app decides where it goes.
    pub fn export_fhir(
        &self,
        metric: Option<Metric>,
        include_retracted: bool,
        now_ms: i64,
    ) -> Result<String, QueryError> {
        let now_ms = time(now_ms)?;
        let metric = metric.map(vigil::Metric::from);
        self.with(|v| {
            Ok(vigil::fhir::bundle_json(
                v.log(),
                metric,
                include_retracted,
                now_ms,
            ))
        })
    }

    /// The plaintext log as a compact Automerge document (`vigil export
    /// --automerge`).
    pub fn export_automerge(&self) -> Result<Vec<u8>, ReadError> {
        self.with(|v| Ok(v.export_automerge()))
    }

    /// Shreds the vault now, at `now_ms` (the period's end, or early at the
    /// resident's request): the tombstone is written, the root key
    /// destroyed in `key_store` (only if it is this vault's) and the store
    /// deleted; no node is told (`vigil shred --offline`). Whatever the
    /// outcome past input checks, this object is closed: every later call
    /// raises `Shredded`, and opening the directory again raises
    /// `OpenError::Shredded` (or finishes a shred that failed).
    pub fn shred_now(
        &self,
        key_store: Arc<dyn KeyStore>,
        now_ms: i64,
    ) -> Result<Tombstone, ShredError> {
        let now_ms = time(now_ms)?;
        let vault = self.take()?;
        Ok(vault
            .shred_now(&keystore::Adapter(key_store), now_ms)?
            .into())
    }
}
