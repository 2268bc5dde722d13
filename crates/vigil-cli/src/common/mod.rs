//! The layer both programs stand on: one error type that carries its exit
//! code, times and durations (jiff), text tables (comfy-table), text made
//! safe for a terminal, atomic file writes (vigil-fs) and JSON output.

pub(crate) mod error;
pub(crate) mod input;
pub(crate) mod table;
pub(crate) mod text;
pub(crate) mod time;

pub(crate) use error::{Error, exit, one_line};

/// Pretty JSON of an output type, as every `--json` prints it.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String, Error> {
    serde_json::to_string_pretty(v).map_err(|e| Error::failed(e.to_string()))
}
