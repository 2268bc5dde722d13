//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not an
//! API). Each feeds arbitrary bytes to one decoder of stored bytes, which
//! must answer with an error, never a panic (docs/spec.md §8).

use crate::layout::{self, LOG_RECORD, SMALL_RECORD};

/// The tombstone file.
pub fn tombstone(bytes: &[u8]) {
    let _ = crate::Tombstone::decode(bytes);
}

/// An alert-outbox record, as it is once its envelope is opened.
pub fn outbox_record(bytes: &[u8]) {
    let _ = layout::decode::<layout::OutboxRecord>(bytes, SMALL_RECORD);
}

/// The key file.
pub fn key_file(bytes: &[u8]) {
    let _ = crate::keystore::parse_key_file(bytes);
}

/// Every other record of the store, and the store's keys.
pub fn store_records(bytes: &[u8]) {
    let _ = layout::decode::<layout::MetaRecord>(bytes, SMALL_RECORD);
    let _ = layout::decode::<layout::SnapshotRecord>(bytes, LOG_RECORD);
    let _ = layout::decode::<layout::SyncRecord>(bytes, SMALL_RECORD);
    let _ = layout::decode::<layout::RelaySnapshotRecord>(bytes, LOG_RECORD);
    let _ = layout::parse_chunk_key(bytes);
    let _ = layout::parse_received_key(bytes);
    let _ = layout::parse_sync_outbox_key(bytes);
    let _ = layout::parse_grant_key(bytes);
    let _ = layout::parse_disclosure_key(bytes);
    let _ = layout::unpack_log(bytes);
}
