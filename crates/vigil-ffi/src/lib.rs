//! Vigil for resident apps: UniFFI bindings (Kotlin, Swift, Python) over the
//! [`vigil`] facade (issue 16).
//!
//! Every call blocks (the app calls it off its main thread), so a Kotlin app
//! needs nothing but JNA. Errors are typed enums that map one to one to the
//! library's ([`OpenError`], [`WriteError`], [`KeyStoreError`]); a panic never
//! crosses the boundary (UniFFI catches it and raises its internal error).
//! The root key lives where the app puts it: [`KeyStore`] is a trait the app
//! implements in its own language (Android Keystore, iOS Keychain).
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

uniffi::setup_scaffolding!();

mod error;
mod keystore;
mod local;
pub mod net;
pub mod net_error;
mod schedule;

pub use error::{OpenError, QueryError, ReadError, ShredError, WriteError};
pub use keystore::{KeyStore, KeyStoreError};
pub use local::{
    AlertKind, Conflict, DailySummary, DeliveredAlert, Disclosure, FeverEpisode, FeverRule, Grant,
    PendingAlert, ReadingDetail, Retraction, Severity, SeverityChoice, Symptom, SymptomCheckIn,
    SymptomSeverity, TextChoice, Tombstone,
};
pub use schedule::SyncSchedule;

/// The health metrics Vigil records, each in its one fixed unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Metric {
    /// Body temperature, °C, 30.0–45.0.
    BodyTemperature,
    /// Heart rate, bpm, 20–250.
    HeartRate,
    /// Oxygen saturation, %, 50–100.
    SpO2,
    /// Respiratory rate, breaths/min, 4–60.
    RespiratoryRate,
    /// Steps counted over an interval, 0–100,000.
    Steps,
}

impl From<Metric> for vigil::Metric {
    fn from(m: Metric) -> Self {
        match m {
            Metric::BodyTemperature => vigil::Metric::BodyTemperature,
            Metric::HeartRate => vigil::Metric::HeartRate,
            Metric::SpO2 => vigil::Metric::SpO2,
            Metric::RespiratoryRate => vigil::Metric::RespiratoryRate,
            Metric::Steps => vigil::Metric::Steps,
        }
    }
}

impl From<vigil::Metric> for Metric {
    fn from(m: vigil::Metric) -> Self {
        // `vigil::Metric` is a closed set (docs/spec.md); its `ALL` lists it.
        match m {
            vigil::Metric::BodyTemperature => Metric::BodyTemperature,
            vigil::Metric::HeartRate => Metric::HeartRate,
            vigil::Metric::SpO2 => Metric::SpO2,
            vigil::Metric::RespiratoryRate => Metric::RespiratoryRate,
            vigil::Metric::Steps => Metric::Steps,
        }
    }
}

/// One reading in the log.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Reading {
    /// Its id, `<device hex>-<seq>` (what annotate and retract take).
    pub id: String,
    /// When it was measured, ms since the Unix epoch, UTC.
    pub time_ms: i64,
    /// What was measured.
    pub metric: Metric,
    /// The value, in the metric's unit.
    pub value: f64,
}

impl From<vigil::Reading> for Reading {
    fn from(r: vigil::Reading) -> Self {
        Reading {
            id: r.id.to_string(),
            time_ms: r.time_ms,
            metric: r.metric.into(),
            value: r.value,
        }
    }
}

/// What the vault is: its ids, its period and how much it holds.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VaultStatus {
    /// The vault's id (hex).
    pub vault_id: String,
    /// This device's id (hex).
    pub device_id: String,
    /// The monitoring period's start, ms.
    pub period_start_ms: i64,
    /// The monitoring period's end, ms: the vault is shredded then.
    pub period_end_ms: i64,
    /// Readings in the log (retracted ones included).
    pub readings: u64,
    /// Change chunks stored since the last snapshot.
    pub pending_chunks: u64,
}

/// One resident device's vault. Safe to share between the app's threads:
/// calls are serialised by a lock, and each blocks until it is durable.
/// Once shredded through this object, every later call is refused with a
/// `Shredded` error.
#[derive(Debug, uniffi::Object)]
pub struct Vault {
    // `None` once shredded: the library's vault is consumed by the shred.
    inner: Mutex<Option<vigil::Vault>>,
}

/// The vault behind a [`Vault`] was shredded through it; converted into
/// each error enum's `Shredded` variant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gone;

impl Vault {
    fn new(vault: vigil::Vault) -> Arc<Self> {
        Arc::new(Vault {
            inner: Mutex::new(Some(vault)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Option<vigil::Vault>> {
        // A panic inside a call (a bug, caught at the boundary) leaves the
        // lock poisoned; the vault's stored state is only changed by whole
        // durable writes, so later calls may go on.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the open vault, or refuses once it was shredded.
    pub(crate) fn with<T, E: From<Gone>>(
        &self,
        f: impl FnOnce(&mut vigil::Vault) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut guard = self.lock();
        let vault = guard.as_mut().ok_or(Gone)?;
        f(vault)
    }

    /// Takes the vault out (for a shred, which consumes it); later calls
    /// are refused with `Shredded`.
    pub(crate) fn take(&self) -> Result<vigil::Vault, Gone> {
        self.lock().take().ok_or(Gone)
    }
}

/// An app releasing its vault object (Kotlin's `close()`, Swift's deinit,
/// Python's last reference) is an orderly close, not a crash: the journal
/// is folded and the chunks since the last snapshot compacted
/// ([`vigil::Vault::close`]), so the next open loads one document. A
/// failure loses nothing (the next open reads the store as it is) and is
/// only logged, since a release has no caller to tell.
impl Drop for Vault {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(vault) = inner.take()
            && let Err(e) = vault.close()
        {
            tracing::warn!(error = %e, "closing the vault: left as it was, nothing lost");
        }
    }
}

#[uniffi::export]
impl Vault {
    /// Creates a vault in `dir` (a new or empty directory) for a period of
    /// `days` days from `period_start_ms`; its new root key goes to `key_store`.
    #[uniffi::constructor]
    pub fn create(
        dir: String,
        period_start_ms: i64,
        days: u32,
        key_store: Arc<dyn KeyStore>,
    ) -> Result<Arc<Self>, OpenError> {
        let period = vigil::Period::days(period_start_ms, days);
        let vault = vigil::Vault::create(
            Path::new(&dir),
            period,
            Box::new(keystore::Adapter(key_store)),
            &mut vigil::os_rng(),
        )?;
        Ok(Vault::new(vault))
    }

    /// Opens the vault in `dir` with the root key in `key_store`. A vault
    /// whose period is over (by the system clock) is shredded instead:
    /// [`OpenError::Shredded`].
    #[uniffi::constructor]
    pub fn open(dir: String, key_store: Arc<dyn KeyStore>) -> Result<Arc<Self>, OpenError> {
        let vault = vigil::Vault::open(Path::new(&dir), &keystore::Adapter(key_store))?;
        Ok(Vault::new(vault))
    }

    /// Records a reading measured at `at_ms`, in the metric's unit; durable
    /// when this returns. Returns the reading's id. A fever alert it
    /// completes is queued as of now (the system clock: when the reading
    /// was entered), like the CLI's `vigil record`, so a reading entered
    /// late does not show its alert as overdue at once.
    pub fn record(&self, metric: Metric, value: f64, at_ms: i64) -> Result<String, WriteError> {
        let metric = vigil::Metric::from(metric);
        let entered_ms = system_now_ms();
        self.with(|v| {
            Ok(
                v.record_received(metric, value, metric.unit(), at_ms, entered_ms)?
                    .to_string(),
            )
        })
    }

    /// Records the raw value of a wristband's GATT characteristic
    /// (0x2A1C temperature, 0x2A37 heart rate, 0x2A5F pulse oximetry);
    /// returns what was recorded. A malformed packet or a special value
    /// records nothing.
    pub fn record_gatt(
        &self,
        characteristic: u16,
        bytes: Vec<u8>,
        received_at_ms: i64,
    ) -> Result<Vec<Reading>, WriteError> {
        self.with(|v| {
            let readings = v.record_gatt(characteristic, &bytes, received_at_ms)?;
            Ok(readings.into_iter().map(Reading::from).collect())
        })
    }

    /// Every reading not retracted, by time.
    pub fn log(&self) -> Result<Vec<Reading>, ReadError> {
        self.with(|v| {
            Ok(v.log()
                .readings(None, i64::MIN, i64::MAX, false)
                .into_iter()
                .map(Reading::from)
                .collect())
        })
    }

    /// The vault's ids, period and size.
    pub fn status(&self) -> Result<VaultStatus, ReadError> {
        self.with(|v| {
            let period = v.period();
            Ok(VaultStatus {
                vault_id: v.vault_id().to_string(),
                device_id: v.device_id().to_string(),
                period_start_ms: period.start_ms,
                period_end_ms: period.end_ms,
                readings: u64::try_from(v.log().len()).unwrap_or(u64::MAX),
                pending_chunks: v.pending_chunks(),
            })
        })
    }
}

/// Now by the system clock, ms: the binding is the app's driver, the one
/// place that reads the clock for calls that take no time.
fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
