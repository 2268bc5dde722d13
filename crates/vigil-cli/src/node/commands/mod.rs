//! The operator commands over the store, one file each: `alerts` (and
//! `alerts ack`), `residents`, `sweep`, `staff`. Each runs one admin request
//! (through the serving node or directly) and prints text or JSON.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::admin::Request;
use super::channel;
use super::util::out;
use crate::common::{Error, to_json};

mod alerts;
mod residents;
mod staff;
mod sweep;
mod webhook;

pub(crate) use alerts::{ack, alerts};
pub(crate) use residents::{NewResident, add_resident, residents, revoke_resident};
pub(crate) use staff::{staff_add, staff_list, staff_remove};
pub(crate) use sweep::sweep;
pub(crate) use webhook::webhook_secret;

/// Runs `req` and reads its answer as `T`.
pub(crate) fn request<T: DeserializeOwned>(data: &Path, req: &Request) -> Result<T, Error> {
    let (v, _) = channel::run(data, req)?;
    serde_json::from_value(v).map_err(|e| Error::failed(format!("unexpected answer: {e}")))
}

/// Runs `req` with the relay limits `config` when the store is opened
/// directly (the serving node has its own), and reads its answer as `T`.
pub(crate) fn request_with<T: DeserializeOwned>(
    data: &Path,
    config: vigil_node::RelayConfig,
    req: &Request,
) -> Result<T, Error> {
    let (v, _) = channel::run_with(data, config, req)?;
    serde_json::from_value(v).map_err(|e| Error::failed(format!("unexpected answer: {e}")))
}

/// Prints an answer as `--json` does.
pub(crate) fn json<T: serde::Serialize>(v: &T) -> Result<(), Error> {
    out(&to_json(v)?)
}

/// An alert's level band in words.
pub(crate) fn level(l: u8) -> &'static str {
    match l {
        1 => "1 (fever)",
        2 => "2 (≥38.0°C)",
        3 => "3 (≥39.0°C)",
        _ => "?",
    }
}
