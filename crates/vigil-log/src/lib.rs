//! Vigil's health log: one Automerge document per monitoring period, with a
//! typed, validated API and the queries the resident and the fever rule need.
//!
//! Pure: no I/O and no clock; every time is a parameter. The schema is in
//! docs/spec.md §6, the fever rule in §7.
//!
//! ```
//! use vigil_log::{DeviceId, HealthLog, Metric, Unit};
//! let mut log = HealthLog::new(DeviceId([1; 16]));
//! let t = 1_790_000_000_000;
//! log.record(Metric::BodyTemperature, 36.8, Unit::Celsius, t).unwrap();
//! assert!(log.record(Metric::BodyTemperature, f64::NAN, Unit::Celsius, t).is_err());
//! assert_eq!(log.readings(Some(Metric::BodyTemperature), 0, i64::MAX, false).len(), 1);
//! ```
#![forbid(unsafe_code)]

mod fever;
pub mod fhir;
pub mod gatt;
mod log;
mod model;

pub use automerge::ChangeHash;
pub use fever::{FeverEpisode, FeverRule, MAX_LABEL_CHARS, RuleError};
pub use log::{Conflict, DailySummary, HealthLog, LogView, Retraction, SCHEMA_VERSION};
pub use model::{
    Day, DeviceId, LogError, MAX_TEXT_CHARS, Metric, READING_LEN, Reading, ReadingId, Severity,
    Symptom, Unit,
};
