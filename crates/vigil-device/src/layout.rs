//! The device store's layout, in one place (docs/spec.md §8, §10, §12, §13):
//! every key and prefix, every AEAD [`Context`], every at-rest record and the
//! one codec they are written with (postcard, size-limited, no trailing
//! bytes). Components ask this module for keys, seal and open through
//! [`VaultCrypto`], and never build a key or a context themselves.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use vigil_crypto::rand_core::CryptoRng;
use vigil_crypto::{
    Context, IndexKey, KeySchedule, Kind, LogKey, MailboxKey, MailboxVerifier, NodeId, SealError,
    StoreKey, VaultId, X25519PublicKey, Zeroizing, open, seal,
};
use vigil_log::DeviceId;
use vigil_proto::VersionVector;

use crate::period::Period;

/// The store format version this build writes and the highest it reads.
/// Format 4 added the reading journal (`j/`): a format-3 build must refuse
/// such a store rather than ignore readings that are only there. A format-3
/// store (no journal) is read, and marked 4 when opened.
pub const STORE_FORMAT: u32 = 4;
/// The oldest store format this build opens (format 3 differs only by
/// having no journal).
pub(crate) const OLDEST_READ_FORMAT: u32 = 3;

// ---- keys -----------------------------------------------------------------

/// `be32(format)`: read first, so a newer format is refused before anything else.
pub(crate) const K_FORMAT: &[u8] = b"m/format";
/// [`MetaRecord`]: vault id, device id, period (plaintext, not sensitive).
pub(crate) const K_META: &[u8] = b"m/vault";
/// [`SyncRecord`]: version vector and bundle counters.
pub(crate) const K_SYNC: &[u8] = b"m/sync";
/// `c/ || be64(seq)` → sealed chunk of own changes not yet in the snapshot.
pub(crate) const P_CHUNK: &[u8] = b"c/";
/// `j/ || be64(n)` → sealed [`JournalRecord`]: readings durable but not yet
/// folded into a chunk (docs/spec.md §8, Writes).
pub(crate) const P_JOURNAL: &[u8] = b"j/";
/// `r/ || device || be64(seq)` → a bundle received from another device, as received.
pub(crate) const P_RECEIVED: &[u8] = b"r/";
/// [`RelaySnapshotRecord`]: the relay snapshot last received, as received.
pub(crate) const K_RELAY_SNAPSHOT: &[u8] = b"R/snapshot";
/// [`SyncVolumeRecord`]: what this device knows of the node's bytes for the vault.
pub(crate) const K_SYNC_VOLUME: &[u8] = b"m/sync-volume";
/// `o/ || be64(seq)` → a sealed bundle of own changes not yet acknowledged by the node.
pub(crate) const P_SYNC_OUTBOX: &[u8] = b"o/";
/// `g/ || grant id` → sealed [`crate::Grant`].
pub(crate) const P_GRANT: &[u8] = b"g/";
/// `a/ || tag(slot)` → sealed [`OutboxRecord`] (the alert outbox). The tag
/// is a keyed hash ([`AlertSlot::outbox_key`]), so the key says nothing.
pub(crate) const P_ALERT_OUTBOX: &[u8] = b"a/";
/// `A/ || tag(slot)` → sealed `be64(queued)`: never queue an alert twice.
pub(crate) const P_ALERTED: &[u8] = b"A/";
/// `d/ || be64(n)` → sealed [`crate::Disclosure`].
pub(crate) const P_DISCLOSURE: &[u8] = b"d/";
/// The local snapshot's blob name ([`SnapshotRecord`]).
pub(crate) const SNAPSHOT_BLOB: &str = "snapshot";
/// `s/ || tag(slot)` → sealed [`DeliveredRecord`]: an alert the node
/// confirmed, and when staff acknowledged it if the node said so (issue 18).
/// Keyed by a keyed hash like `a/`, unlinked from it.
pub(crate) const P_ALERT_DELIVERED: &[u8] = b"s/";
/// Most delivered-alert records kept: past it, the oldest delivered goes.
/// An episode is at most two alerts per grant, and episodes are at least
/// the recovery time apart, so a period never comes near it; it only bounds
/// what a runaway rule could write.
pub(crate) const MAX_DELIVERED_ALERTS: usize = 512;

fn join(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// The key of own chunk `seq`.
pub(crate) fn chunk_key(seq: u64) -> Vec<u8> {
    join(P_CHUNK, &[&seq.to_be_bytes()])
}

/// The seq in a chunk key.
pub(crate) fn parse_chunk_key(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(
        k.strip_prefix(P_CHUNK)?.try_into().ok()?,
    ))
}

/// The key of journal entry `n` (from 1).
pub(crate) fn journal_key(n: u64) -> Vec<u8> {
    join(P_JOURNAL, &[&n.to_be_bytes()])
}

/// The n in a journal key.
pub(crate) fn parse_journal_key(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(
        k.strip_prefix(P_JOURNAL)?.try_into().ok()?,
    ))
}

/// The key of a received bundle.
pub(crate) fn received_key(device: DeviceId, seq: u64) -> Vec<u8> {
    join(P_RECEIVED, &[&device.0, &seq.to_be_bytes()])
}

/// The author and seq in a received-bundle key.
pub(crate) fn parse_received_key(k: &[u8]) -> Option<(DeviceId, u64)> {
    let rest = k.strip_prefix(P_RECEIVED)?;
    if rest.len() != 24 {
        return None;
    }
    Some((
        DeviceId(rest[..16].try_into().ok()?),
        u64::from_be_bytes(rest[16..].try_into().ok()?),
    ))
}

/// The key of own outgoing bundle `seq`.
pub(crate) fn sync_outbox_key(seq: u64) -> Vec<u8> {
    join(P_SYNC_OUTBOX, &[&seq.to_be_bytes()])
}

/// The seq in an outgoing-bundle key.
pub(crate) fn parse_sync_outbox_key(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(
        k.strip_prefix(P_SYNC_OUTBOX)?.try_into().ok()?,
    ))
}

/// The key of a grant.
pub(crate) fn grant_key(id: &[u8; 16]) -> Vec<u8> {
    join(P_GRANT, &[id])
}

/// The grant id in a grant key.
pub(crate) fn parse_grant_key(k: &[u8]) -> Option<[u8; 16]> {
    k.strip_prefix(P_GRANT)?.try_into().ok()
}

/// An alert's slot: which grant, which episode, which kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AlertSlot {
    pub(crate) grant: [u8; 16],
    pub(crate) episode: [u8; 16],
    pub(crate) kind: u8,
}

impl AlertSlot {
    /// `prefix || tag`: a keyed hash of the slot, one domain per prefix, so
    /// neither key links to the other or to the grant and episode.
    fn key(&self, index: &IndexKey, domain: &str, prefix: &[u8]) -> Vec<u8> {
        let mut input = [0u8; 33];
        input[..16].copy_from_slice(&self.grant);
        input[16..32].copy_from_slice(&self.episode);
        input[32] = self.kind;
        join(prefix, &[&index.tag(domain.as_bytes(), &input)])
    }

    /// Its key in the alert outbox.
    pub(crate) fn outbox_key(&self, index: &IndexKey) -> Vec<u8> {
        self.key(index, "vigil/v1/index/alert-outbox", P_ALERT_OUTBOX)
    }

    /// Its "already queued" marker's key.
    pub(crate) fn marker_key(&self, index: &IndexKey) -> Vec<u8> {
        self.key(index, "vigil/v1/index/alerted", P_ALERTED)
    }

    /// Its delivered-alert record's key.
    pub(crate) fn delivered_key(&self, index: &IndexKey) -> Vec<u8> {
        self.key(index, "vigil/v1/index/alert-delivered", P_ALERT_DELIVERED)
    }
}

/// The key of disclosure `n` (from 1).
pub(crate) fn disclosure_key(n: u64) -> Vec<u8> {
    join(P_DISCLOSURE, &[&n.to_be_bytes()])
}

/// The n in a disclosure key.
pub(crate) fn parse_disclosure_key(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(
        k.strip_prefix(P_DISCLOSURE)?.try_into().ok()?,
    ))
}

// ---- records ----------------------------------------------------------------

/// Why a stored record could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Longer than its limit.
    #[error("record larger than its limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Not a record of this type.
    #[error("malformed record: {0}")]
    Malformed(#[source] postcard::Error),
    /// Bytes after the record.
    #[error("trailing bytes after a record")]
    Trailing,
}

/// Encodes a record (postcard).
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // postcard only fails on types it cannot represent; ours are all plain.
    postcard::to_stdvec(value).unwrap_or_default()
}

/// Decodes a record of at most `limit` bytes, refusing trailing bytes.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, RecordError> {
    if bytes.len() > limit {
        return Err(RecordError::TooLarge { limit });
    }
    let (v, rest) = postcard::take_from_bytes(bytes).map_err(RecordError::Malformed)?;
    if !rest.is_empty() {
        return Err(RecordError::Trailing);
    }
    Ok(v)
}

/// Limit of the small fixed records.
pub(crate) const SMALL_RECORD: usize = 4096;
/// Limit of records that carry a sealed log (snapshots).
pub(crate) const LOG_RECORD: usize = vigil_crypto::MAX_SEALED_LEN + 4096;

/// `m/vault`: which vault and device this store is, and the period.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct MetaRecord {
    pub(crate) vault: [u8; 16],
    pub(crate) device: [u8; 16],
    pub(crate) period: Period,
}

/// The local snapshot blob: the last chunk seq it covers and the sealed log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SnapshotRecord {
    pub(crate) covered: u64,
    #[serde(with = "bytes")]
    pub(crate) sealed: Vec<u8>,
}

/// `j/`: the readings of one durable write (one, or two for a GATT packet
/// with SpO2 and pulse), each in the log's own 42-byte encoding
/// ([`vigil_log::Reading::encode`]), so a replay gives the same ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JournalRecord {
    pub(crate) readings: Vec<Vec<u8>>,
}

/// `m/sync`: what sync must remember between sessions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SyncRecord {
    /// Highest bundle seq held contiguously, per device (own: acknowledged).
    pub(crate) vv: VersionVector,
    /// The log heads already sealed into an outgoing bundle.
    pub(crate) bundled: Vec<[u8; 32]>,
    /// The seq of the next outgoing bundle.
    pub(crate) next_bundle: u64,
    /// Bundles acknowledged since this device last uploaded a relay snapshot,
    /// as stores before format 02 payloads counted them. No longer kept up
    /// to date (the policy is bytes, `m/sync-volume`, which counts bundles
    /// too); written back as read so the record's encoding stays the same.
    pub(crate) since_relay_snapshot: u64,
}

/// `m/sync-volume`: the bytes behind the relay snapshot policy (docs/spec.md
/// §10). A separate record beside `m/sync`, so stores written before it
/// keep their `m/sync` as it is; absent, everything is zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SyncVolumeRecord {
    /// The size of the relay snapshot the node holds, as far as this device
    /// knows (the one it uploaded or received last; 0 for none).
    pub(crate) node_snapshot: u64,
    /// Bytes of bundles the node took since then: own acknowledged ones and
    /// those received from other devices.
    pub(crate) since: u64,
    /// The log's `save()` sealed uncompressed, when last measured.
    pub(crate) doc: u64,
}

/// `R/snapshot`: a relay snapshot as received, with the vector it covers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RelaySnapshotRecord {
    pub(crate) covers: VersionVector,
    pub(crate) sealed: Vec<u8>,
}

/// A fever rule as stored (`#[serde(with = "layout::rule")]`).
pub(crate) mod rule {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use vigil_log::FeverRule;

    #[derive(Serialize, Deserialize)]
    struct Rule {
        threshold_c: f64,
        confirm_count: u64,
        confirm_window_ms: i64,
        recovery_ms: i64,
    }

    pub(crate) fn serialize<S: Serializer>(r: &FeverRule, s: S) -> Result<S::Ok, S::Error> {
        Rule {
            threshold_c: r.threshold_c,
            confirm_count: r.confirm_count as u64,
            confirm_window_ms: r.confirm_window_ms,
            recovery_ms: r.recovery_ms,
        }
        .serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<FeverRule, D::Error> {
        let r = Rule::deserialize(d)?;
        Ok(FeverRule {
            threshold_c: r.threshold_c,
            confirm_count: usize::try_from(r.confirm_count).unwrap_or(usize::MAX),
            confirm_window_ms: r.confirm_window_ms,
            recovery_ms: r.recovery_ms,
        })
    }
}

/// A byte string as stored, in the encoding postcard gives a `Vec<u8>`
/// (its length, then its bytes), read in one copy (`#[serde(with =
/// "layout::bytes")]`). Read as a sequence, byte by byte, the week's
/// snapshot (~170 KB) took ~0.6 ms of every open.
pub(crate) mod bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

/// An X25519 public key as stored: its 32 bytes (`#[serde(with = "layout::x25519")]`).
pub(crate) mod x25519 {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use vigil_crypto::X25519PublicKey;

    pub(crate) fn serialize<S: Serializer>(k: &X25519PublicKey, s: S) -> Result<S::Ok, S::Error> {
        k.as_bytes().serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<X25519PublicKey, D::Error> {
        Ok(X25519PublicKey::from_bytes(<[u8; 32]>::deserialize(d)?))
    }
}

/// `a/`: an alert waiting for its node's acknowledgement (sealed: its
/// slot, onset and level are health facts).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutboxRecord {
    pub(crate) grant: [u8; 16],
    pub(crate) episode: [u8; 16],
    pub(crate) kind: u8,
    pub(crate) queued_ms: i64,
    pub(crate) first_sent_ms: Option<i64>,
    pub(crate) onset_ms: i64,
    pub(crate) level: u8,
    /// The sealed alert, as sent.
    pub(crate) blob: Vec<u8>,
}

/// `s/`: an alert its node confirmed, kept so the device can ask whether
/// staff acknowledged it (sealed: slot, onset, level and the staff's
/// acknowledgement are health facts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeliveredRecord {
    pub(crate) grant: [u8; 16],
    pub(crate) episode: [u8; 16],
    pub(crate) kind: u8,
    pub(crate) onset_ms: i64,
    pub(crate) level: u8,
    /// When the node confirmed it (device clock).
    pub(crate) delivered_ms: i64,
    /// When staff acknowledged it, as the node last said (node clock).
    pub(crate) staff_acked_ms: Option<i64>,
}

/// The tombstone file: what remains of a shredded vault. The node's receipt
/// is kept only as its SHA-256: the receipt counts the alerts deleted, and
/// a count above zero says there was a fever.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TombstoneRecord {
    pub(crate) vault: [u8; 16],
    pub(crate) period: Period,
    pub(crate) shredded_at_ms: i64,
    pub(crate) receipt_sha256: Option<[u8; 32]>,
}

/// The format-2 tombstone, which kept the receipt itself: still read, so a
/// shred interrupted under the old build completes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TombstoneRecordV2 {
    pub(crate) vault: [u8; 16],
    pub(crate) period: Period,
    pub(crate) shredded_at_ms: i64,
    pub(crate) receipt: Option<Vec<u8>>,
}

/// The tombstone file starts with this, so a stray file is never taken for one.
pub(crate) const TOMBSTONE_MAGIC: &[u8; 8] = b"VGTOMB\x00\x03";
/// The format-2 tombstone's magic.
pub(crate) const TOMBSTONE_MAGIC_V2: &[u8; 8] = b"VGTOMB\x00\x02";

// ---- log payloads ---------------------------------------------------------------

/// Automerge's chunk magic. A log payload (bundle or relay snapshot
/// plaintext) starting with it is Automerge bytes as they are: the only
/// format before payloads were compressed, and still what is written when
/// compression would not make it smaller (docs/spec.md §10).
const AUTOMERGE_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Automerge compresses a document's column when it holds at least this
/// many bytes (its `DEFLATE_MIN_SIZE`): [`compress_columns`] at it gives
/// Automerge's `save()` (pinned by a test).
#[cfg(test)]
const AUTOMERGE_DEFLATE_MIN: usize = 256;
/// First byte of a compressed log payload: raw DEFLATE (RFC 1951) of the
/// Automerge bytes follows. No zlib header or checksum: the envelope
/// authenticates the bytes already.
const PAYLOAD_DEFLATE: u8 = 0x01;
/// First byte of a log payload compressed after a stride filter: a stride
/// byte (1 to 255) follows, then raw DEFLATE of the Automerge bytes with
/// every byte from the stride-th on replaced by its difference (mod 256)
/// from the byte `stride` before it.
const PAYLOAD_STRIDE_DEFLATE: u8 = 0x02;
/// The stride written: an encoded reading's length. Automerge keeps a
/// change's values back to back in one column, so in a bundle of readings
/// each field recurs every 42 bytes and the filter turns a device id, a
/// counter, a clock and a slowly moving value into runs of zeros and small
/// numbers that DEFLATE codes in a few bits. An hour of band readings
/// compresses to ~830 bytes instead of ~1,190 with DEFLATE alone.
const READING_STRIDE: u8 = {
    assert!(vigil_log::READING_LEN > 0 && vigil_log::READING_LEN < 256);
    vigil_log::READING_LEN as u8
};
/// The largest Automerge bytes a payload may inflate to: the envelope's
/// plaintext limit, so a compressed payload never yields more than an
/// uncompressed one could carry.
pub(crate) const PAYLOAD_LIMIT: usize = vigil_crypto::MAX_PLAINTEXT_LEN;

/// Why an opened log payload could not be read: treated like a blob that
/// does not open (the sync rejects it and goes on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PayloadError {
    /// It inflates past [`PAYLOAD_LIMIT`] (a decompression bomb).
    #[error("log payload inflates past {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Not a complete DEFLATE stream of Automerge bytes, or bytes after it.
    #[error("malformed compressed log payload")]
    Malformed,
    /// A first byte that is no format this build knows.
    #[error("unknown log payload format {0:#04x}")]
    UnknownFormat(u8),
}

/// The payload for Automerge bytes `automerge`: the smallest of DEFLATE
/// after the stride filter (bundles of readings), DEFLATE alone (a whole
/// document: Automerge compresses its columns already, and the filter
/// only adds noise there) and the bytes themselves.
///
/// DEFLATE (flate2, the zlib-rs build automerge already links) was chosen
/// by measuring a week's payloads: within 2 % of zstd -3 on raw changes
/// (1,315,618 vs 1,297,123 bytes from 3,688,451) and better on `save()`
/// (115,815 vs 117,954 from 168,785), with no new dependency. The stride
/// filter then took an hour of band readings from 1,192 to ~830 bytes.
pub(crate) fn pack_log(automerge: &[u8]) -> Zeroizing<Vec<u8>> {
    // On a tie the older format wins: more builds read it.
    let plain = deflate(&[PAYLOAD_DEFLATE], automerge);
    if automerge.len() < STRIDE_MIN {
        return smallest(automerge, [plain]);
    }
    let filtered = stride_delta(automerge, READING_STRIDE);
    // Readings 42 bytes apart leave the filter's output mostly zeros (a
    // fold of band readings: 57 % at 12 readings, where the stride format
    // first wins by 2 bytes; 74 % at an hour's 148). Mixed changes leave
    // few (the simulation's bundles past STRIDE_MIN: 5-56 %, and the
    // stride format never won): below half, DEFLATE alone is the only
    // candidate tried, sparing a compression and its 128 KiB table reset.
    if stride_zeros(&filtered) * 2 < filtered.len() {
        return smallest(automerge, [plain]);
    }
    smallest(
        automerge,
        [
            plain,
            deflate(&[PAYLOAD_STRIDE_DEFLATE, READING_STRIDE], &filtered),
        ],
    )
}

/// Below this many Automerge bytes [`pack_log`] does not try the stride
/// filter. A fold of band readings first compresses better with it at 12
/// readings (612 bytes: 258 against 260 with DEFLATE alone); below that
/// DEFLATE alone wins (pinned by a test), and a sync's bundle of a few
/// mixed changes (in the simulation, 321 bytes at the median) never went
/// as the stride format. Each DEFLATE costs a compressor reset (zeroing a
/// 128 KiB table), more than compressing such a bundle.
const STRIDE_MIN: usize = 512;

/// The payload for a whole document (Automerge `save()`): DEFLATE alone,
/// or the bytes themselves if that is not smaller. Automerge compresses a
/// document's columns already, and the readings' values sit in columns,
/// not 42 bytes apart: the stride filter only adds noise there, and trying
/// it cost a second compression of the whole log at every relay snapshot
/// and every backlog measured against the log (12 % of the simulation's
/// instructions went to DEFLATE). A receiver reads either format the same.
pub(crate) fn pack_document(automerge: &[u8]) -> Zeroizing<Vec<u8>> {
    smallest(automerge, [deflate(&[PAYLOAD_DEFLATE], automerge)])
}

/// The log's document for the local snapshot and relay snapshots, from
/// Automerge's `save_nocompress()` `plain`: [`compress_columns`] of the
/// columns of at least [`COLUMN_DEFLATE_MIN`] bytes. A document Automerge
/// loads as it loads its own `save()` (a column's deflate flag says how
/// it is stored).
pub(crate) fn compress_document(plain: &[u8]) -> Option<Vec<u8>> {
    compress_columns(plain, COLUMN_DEFLATE_MIN)
}

/// The columns [`compress_document`] compresses: 4 KiB and more.
/// Compressing a column costs a compressor reset (zlib-rs zeroes its
/// 128 KiB hash table: ~160 K instructions under callgrind) and the
/// compression, to save what is at most the column's size; a column left
/// as it is costs an open only the checksum of its extra bytes (and spares
/// it an inflate), and a relay snapshot nothing (its DEFLATE of the whole
/// document takes it). In the simulation (vigil-sim week, 5 seeds) 86 of
/// the 166 columns Automerge compressed were under 1 KiB, 136 under 4 KiB,
/// none 8 KiB or more: instructions 925.2 M at Automerge's 256 bytes,
/// 897.7 M at 1 KiB, 877.3 M at 4 KiB, 862.2 M at 16 KiB (no column
/// compressed). A week's document keeps its readings' column (about 1 MB
/// uncompressed) compressed: storing it as it is made the open slower
/// (its checksum is SHA-256 over the stored bytes).
const COLUMN_DEFLATE_MIN: usize = 4096;

/// Automerge's `save()` made from its `save_nocompress()` `plain`, with
/// each column of at least `min` bytes compressed (and flagged so), the
/// document chunk's checksum computed again, and what follows the chunk
/// (changes still waiting for their dependencies) kept. At `min` =
/// [`AUTOMERGE_DEFLATE_MIN`] the bytes are Automerge's own, by
/// construction and pinned by a test: the same raw DEFLATE at the default
/// level and window ([`deflate`], the stream flate2 gives) of the same
/// columns. What differs is the cost: Automerge sets up a fresh compressor
/// for each such column (zlib-rs zeroing its ~300 KiB of tables, 445 K
/// instructions under callgrind), where [`deflate`]'s kept one is only
/// reset. `None` if `plain` is not one document chunk as Automerge writes
/// it (the caller lets Automerge save).
fn compress_columns(plain: &[u8], min: usize) -> Option<Vec<u8>> {
    use sha2::Digest;
    /// Automerge's chunk type of a document.
    const DOCUMENT: u8 = 0;
    /// A column's spec flag: its data is DEFLATE-compressed.
    const DEFLATED: u64 = 0b1000;
    // The chunk's header: magic, checksum (4), type, data length.
    let rest = plain.strip_prefix(&AUTOMERGE_MAGIC)?;
    let (&kind, rest) = rest.get(4..)?.split_first()?;
    if kind != DOCUMENT {
        return None;
    }
    let mut at = 0;
    let len = usize::try_from(uleb(rest, &mut at)?).ok()?;
    let data = rest.get(at..at.checked_add(len)?)?;
    let after = &rest[at + len..];
    // The data: the actors and the heads, then the change columns' and the
    // op columns' metadata (spec, length), then their data, then the heads'
    // indexes.
    let mut at = 0;
    for _ in 0..uleb(data, &mut at)? {
        let n = usize::try_from(uleb(data, &mut at)?).ok()?;
        at = at.checked_add(n)?;
    }
    let heads = usize::try_from(uleb(data, &mut at)?).ok()?;
    at = at.checked_add(heads.checked_mul(32)?)?;
    let prefix = data.get(..at)?;
    let mut groups = [Vec::new(), Vec::new()];
    for columns in &mut groups {
        for _ in 0..uleb(data, &mut at)? {
            let spec = uleb(data, &mut at)?;
            let n = usize::try_from(uleb(data, &mut at)?).ok()?;
            columns.push((spec, n));
        }
    }
    // No column to compress: `plain` is the document, checksum and all
    // (most of the simulation's documents; hashing one again cost 10 M).
    let mut rest_at = at;
    if groups.iter().flatten().all(|&(spec, n)| {
        let keep = n < min || spec & DEFLATED != 0;
        rest_at = rest_at.saturating_add(n);
        keep
    }) {
        return (rest_at <= data.len()).then(|| plain.to_vec());
    }
    // Not zeroized, like the document returned and Automerge's own
    // buffers: the same plaintext is in both (zeroizing it cost a week's
    // compaction ~0.9 % of its instructions).
    let mut column_data = Vec::with_capacity(data.len() - at);
    let mut meta = Vec::new();
    for columns in &groups {
        write_uleb(&mut meta, columns.len() as u64);
        for &(spec, n) in columns {
            let bytes = data.get(at..at.checked_add(n)?)?;
            at += n;
            let (spec, n) = if n < min || spec & DEFLATED != 0 {
                column_data.extend_from_slice(bytes);
                (spec, n)
            } else {
                let start = column_data.len();
                deflate_into(&mut column_data, bytes)?;
                (spec | DEFLATED, column_data.len() - start)
            };
            write_uleb(&mut meta, spec);
            write_uleb(&mut meta, n as u64);
        }
    }
    let suffix = &data[at..];
    let parts = [prefix, &meta, &column_data, suffix];
    // The checksum: the first 4 bytes of SHA-256 over the type, the
    // length and the data (hashed in its parts, not copied together).
    let mut len_bytes = Vec::with_capacity(10);
    write_uleb(&mut len_bytes, parts.iter().map(|p| p.len() as u64).sum());
    let mut hasher = sha2::Sha256::new();
    hasher.update([DOCUMENT]);
    hasher.update(&len_bytes);
    for p in parts {
        hasher.update(p);
    }
    let hash = hasher.finalize();
    let total = 4 + 4 + 1 + len_bytes.len() + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut doc = Vec::with_capacity(total + after.len());
    doc.extend_from_slice(&AUTOMERGE_MAGIC);
    doc.extend_from_slice(&hash[..4]);
    doc.push(DOCUMENT);
    doc.extend_from_slice(&len_bytes);
    for p in parts {
        doc.extend_from_slice(p);
    }
    doc.extend_from_slice(after);
    Some(doc)
}

/// Reads an unsigned LEB128 number at `*at`, moving past it.
fn uleb(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Appends `value` as unsigned LEB128.
fn write_uleb(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let b = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// The log's `save()`, its columns compressed by [`compress_document`]
/// (the same bytes, without Automerge's compressor set-ups).
pub(crate) fn save_log(log: &mut vigil_log::HealthLog) -> Vec<u8> {
    log.save_compressing_with(compress_document)
}

/// The smallest of `candidates` (the first on a tie) and `automerge` as it
/// is, which wins ties.
fn smallest<const N: usize>(
    automerge: &[u8],
    candidates: [Option<Zeroizing<Vec<u8>>>; N],
) -> Zeroizing<Vec<u8>> {
    let mut best: Option<Zeroizing<Vec<u8>>> = None;
    for c in candidates.into_iter().flatten() {
        if c.len() < best.as_ref().map_or(automerge.len(), |b| b.len()) {
            best = Some(c);
        }
    }
    best.unwrap_or_else(|| Zeroizing::new(automerge.to_vec()))
}

/// The zero bytes of a [`stride_delta`] output.
fn stride_zeros(filtered: &[u8]) -> usize {
    filtered.iter().filter(|b| **b == 0).count()
}

/// Each byte from the `stride`-th on minus the byte `stride` before it.
fn stride_delta(bytes: &[u8], stride: u8) -> Zeroizing<Vec<u8>> {
    let s = usize::from(stride);
    let mut out = Zeroizing::new(bytes.to_vec());
    for i in s..out.len() {
        out[i] = bytes[i].wrapping_sub(bytes[i - s]);
    }
    out
}

/// Undoes [`stride_delta`] in place.
fn undo_stride_delta(bytes: &mut [u8], stride: u8) {
    let s = usize::from(stride);
    for i in s..bytes.len() {
        bytes[i] = bytes[i].wrapping_add(bytes[i - s]);
    }
}

/// Raw DEFLATE of `input` at the default level and window (32 KiB), the
/// stream every payload has had (pinned by a test). `prefix` comes first in
/// the output. `None` if the compressor fails (it does not, into a Vec;
/// another candidate is taken then).
///
/// Compressors are kept per thread and reset between payloads: zlib zeroes
/// its 128 KiB hash table and its window when it sets up, and again the
/// table when it resets, which for the few-KiB payloads of a sync was most
/// of the cost of compressing them. It also zeroes its symbol buffer (3
/// bytes a symbol) at every reset and block: 48 KiB at the default memory
/// level, so inputs short enough never to fill a smaller one go to a
/// compressor with a 2,048-symbol buffer. A block ends only when that
/// buffer fills (at the default level), so the stream is the same. What a
/// kept window still holds is the last payload's plaintext, as the freed
/// memory of a fresh compressor held it.
fn deflate(prefix: &[u8], input: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(prefix.len() + input.len() / 2 + 64));
    out.extend_from_slice(prefix);
    deflate_into(&mut out, input)?;
    Some(out)
}

/// [`deflate`] of `input` appended to `out` (which may be left with part
/// of the stream when it fails).
fn deflate_into(out: &mut Vec<u8>, input: &[u8]) -> Option<()> {
    use zlib_rs::{Deflate, DeflateConfig};
    /// Memory level 5: `1 << (5 + 6)` symbols.
    const SMALL_MEM_LEVEL: i32 = 5;
    /// Every input of at most this many bytes (one symbol a byte at most)
    /// fits the small compressor's symbol buffer with room to spare.
    const SMALL_INPUT: usize = (1 << (SMALL_MEM_LEVEL + 6)) - 8;
    thread_local! {
        static DEFLATERS: std::cell::RefCell<[Option<Deflate>; 2]> =
            const { std::cell::RefCell::new([None, None]) };
    }
    let small = input.len() <= SMALL_INPUT;
    #[cfg(test)]
    tests::DEFLATES.with(|n| n.set(n.get() + 1));
    DEFLATERS.with(|cell| {
        let slot = usize::from(!small);
        // Taken out while in use: a panic mid-way drops it instead of
        // leaving a half-used one for the next payload.
        let kept = cell.borrow_mut()[slot].take();
        let mut c = kept.unwrap_or_else(|| {
            Deflate::new_with_config(DeflateConfig {
                level: 6,
                window_bits: -15,
                mem_level: if small { SMALL_MEM_LEVEL } else { 8 },
                ..DeflateConfig::default()
            })
        });
        let done = deflate_with(&mut c, out, input);
        c.reset();
        cell.borrow_mut()[slot] = Some(c);
        done
    })
}

/// [`deflate`] with the compressor `c`, fresh or reset.
fn deflate_with(c: &mut zlib_rs::Deflate, out: &mut Vec<u8>, input: &[u8]) -> Option<()> {
    use zlib_rs::{DeflateFlush, Status};
    loop {
        let consumed = usize::try_from(c.total_in()).ok()?;
        let before = c.total_out();
        let start = out.len();
        if out.capacity() - start < 64 {
            let more = out.capacity().max(64);
            out.reserve(more);
        }
        let room = out.capacity();
        out.resize(room, 0);
        let status = c.compress(
            input.get(consumed..)?,
            &mut out[start..],
            DeflateFlush::Finish,
        );
        let written = usize::try_from(c.total_out() - before).ok()?;
        out.truncate(start + written);
        match status.ok()? {
            Status::StreamEnd => return Some(()),
            // Out of room: more room (above), and go on.
            Status::Ok | Status::BufError => {}
        }
    }
}

/// The Automerge bytes of an opened log payload, inflating at most
/// [`PAYLOAD_LIMIT`] bytes: a bomb costs the receiver the limit, never more.
pub(crate) fn unpack_log(plain: &[u8]) -> Result<Zeroizing<Vec<u8>>, PayloadError> {
    let out = match plain.first() {
        Some(_) if plain.starts_with(&AUTOMERGE_MAGIC) => {
            return Ok(Zeroizing::new(plain.to_vec()));
        }
        Some(&PAYLOAD_DEFLATE) => inflate(&plain[1..], PAYLOAD_LIMIT)?,
        Some(&PAYLOAD_STRIDE_DEFLATE) => match plain.get(1) {
            Some(&stride) if stride > 0 => {
                let mut out = inflate(&plain[2..], PAYLOAD_LIMIT)?;
                undo_stride_delta(&mut out, stride);
                out
            }
            _ => return Err(PayloadError::Malformed),
        },
        Some(&b) => return Err(PayloadError::UnknownFormat(b)),
        None => return Err(PayloadError::Malformed),
    };
    if !out.starts_with(&AUTOMERGE_MAGIC) {
        return Err(PayloadError::Malformed);
    }
    Ok(out)
}

/// Inflates one complete raw DEFLATE stream that is all of `input`, into at
/// most `limit` bytes.
///
/// The decompressor is kept per thread and reset between payloads (setting
/// one up was 16 K instructions, 40 % of inflating a sync's bundle); what
/// its window still holds is the last payload's plaintext, as a kept
/// compressor's does (see [`deflate`]).
fn inflate(input: &[u8], limit: usize) -> Result<Zeroizing<Vec<u8>>, PayloadError> {
    use flate2::Decompress;
    thread_local! {
        static INFLATER: std::cell::RefCell<Option<Decompress>> =
            const { std::cell::RefCell::new(None) };
    }
    INFLATER.with(|cell| {
        // Taken out while in use: a panic mid-way drops it.
        let kept = cell.borrow_mut().take();
        let mut d = kept.unwrap_or_else(|| Decompress::new(false));
        let out = inflate_with(&mut d, input, limit);
        d.reset(false);
        *cell.borrow_mut() = Some(d);
        out
    })
}

/// [`inflate`] with the decompressor `d`, fresh or reset.
fn inflate_with(
    d: &mut flate2::Decompress,
    input: &[u8],
    limit: usize,
) -> Result<Zeroizing<Vec<u8>>, PayloadError> {
    use flate2::{FlushDecompress, Status};
    // Room for one byte past the limit: that byte tells a bomb from a
    // payload of exactly the limit.
    let room = limit.saturating_add(1);
    let mut out = Zeroizing::new(Vec::with_capacity(input.len().saturating_mul(4).min(room)));
    loop {
        if out.len() > limit {
            return Err(PayloadError::TooLarge { limit });
        }
        if out.len() == out.capacity() {
            // Grow by copying into a new zeroizing buffer, so no
            // reallocation leaves plaintext behind unwiped.
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                out.capacity().saturating_mul(2).max(4096).min(room),
            ));
            bigger.extend_from_slice(&out);
            out = bigger;
        }
        let consumed = usize::try_from(d.total_in()).map_err(|_| PayloadError::Malformed)?;
        let rest = input.get(consumed..).ok_or(PayloadError::Malformed)?;
        let (in_before, out_before) = (d.total_in(), out.len());
        let status = d
            .decompress_vec(rest, &mut out, FlushDecompress::None)
            .map_err(|_| PayloadError::Malformed)?;
        match status {
            Status::StreamEnd => break,
            // No progress with room to write: the input ended mid-stream.
            _ if d.total_in() == in_before
                && out.len() == out_before
                && out.len() < out.capacity() =>
            {
                return Err(PayloadError::Malformed);
            }
            _ => {}
        }
    }
    if out.len() > limit {
        return Err(PayloadError::TooLarge { limit });
    }
    let consumed = usize::try_from(d.total_in()).map_err(|_| PayloadError::Malformed)?;
    if consumed != input.len() {
        return Err(PayloadError::Malformed);
    }
    Ok(out)
}

// ---- sealing ------------------------------------------------------------------

/// What a sealed local record is, and so its context.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LocalRecord<'a> {
    /// A grant, by id.
    Grant(&'a [u8; 16]),
    /// Disclosure `n`.
    Disclosure(u64),
    /// An "already queued" marker, by its key.
    Alerted(&'a [u8]),
    /// An alert-outbox entry, by its key.
    AlertOutbox(&'a [u8]),
    /// A delivered-alert record, by its key.
    AlertDelivered(&'a [u8]),
    /// Journal entry `n`.
    Journal(u64),
}

impl LocalRecord<'_> {
    fn context(&self, vault: VaultId) -> Context {
        match self {
            LocalRecord::Grant(id) => Context::new("vigil/v1/grant")
                .bytes(vault.as_bytes())
                .bytes(&id[..]),
            LocalRecord::Disclosure(n) => Context::new("vigil/v1/disclosure")
                .bytes(vault.as_bytes())
                .u64(*n),
            LocalRecord::Alerted(key) => Context::new("vigil/v1/alerted")
                .bytes(vault.as_bytes())
                .bytes(key),
            LocalRecord::AlertOutbox(key) => Context::new("vigil/v1/alert-outbox")
                .bytes(vault.as_bytes())
                .bytes(key),
            LocalRecord::AlertDelivered(key) => Context::new("vigil/v1/alert-delivered")
                .bytes(vault.as_bytes())
                .bytes(key),
            LocalRecord::Journal(n) => Context::new("vigil/v1/journal")
                .bytes(vault.as_bytes())
                .u64(*n),
        }
    }
}

fn vv_bytes(vv: &VersionVector) -> Vec<u8> {
    let mut v = Vec::with_capacity(vv.len() * 24);
    for (d, s) in vv {
        v.extend_from_slice(d);
        v.extend_from_slice(&s.to_be_bytes());
    }
    v
}

fn chunk_ctx(vault: VaultId, device: DeviceId, seq: u64) -> Context {
    Context::new("vigil/v1/chunk")
        .bytes(vault.as_bytes())
        .bytes(&device.0)
        .u64(seq)
}

fn snapshot_ctx(vault: VaultId, device: DeviceId, covered: u64) -> Context {
    Context::new("vigil/v1/snapshot")
        .bytes(vault.as_bytes())
        .bytes(&device.0)
        .u64(covered)
}

fn bundle_ctx(vault: VaultId, device: DeviceId, seq: u64) -> Context {
    Context::new("vigil/v1/bundle")
        .bytes(vault.as_bytes())
        .bytes(&device.0)
        .u64(seq)
}

fn relay_snapshot_ctx(vault: VaultId, covers: &VersionVector) -> Context {
    Context::new("vigil/v1/relay-snapshot")
        .bytes(vault.as_bytes())
        .bytes(&vv_bytes(covers))
}

fn pair_info_ctx(vault: VaultId, joiner: &X25519PublicKey) -> Context {
    Context::new("vigil/v1/pair-info")
        .bytes(vault.as_bytes())
        .bytes(joiner.as_bytes())
}

fn shred_notice_ctx(vault: VaultId) -> Context {
    Context::new("vigil/v1/shred-notice").bytes(vault.as_bytes())
}

/// The vault's keys, ids and randomness: every seal and open of the device
/// goes through here, so each blob gets the context the spec gives it.
pub(crate) struct VaultCrypto {
    keys: KeySchedule,
    log_key: LogKey,
    store_key: StoreKey,
    index_key: IndexKey,
    device: DeviceId,
    rng: ChaCha20Rng,
    /// The last node's mailbox key and verifier (see [`VaultCrypto::mailbox`]).
    mailbox: Option<(NodeId, MailboxKey, MailboxVerifier)>,
}

impl std::fmt::Debug for VaultCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultCrypto")
            .field("vault", &self.keys.vault_id())
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl VaultCrypto {
    /// Keys for `device`, with an RNG seeded from `rng`.
    pub(crate) fn new<R: CryptoRng + ?Sized>(
        keys: KeySchedule,
        device: DeviceId,
        rng: &mut R,
    ) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        VaultCrypto {
            log_key: keys.log_key(),
            store_key: keys.store_key(),
            index_key: keys.index_key(),
            keys,
            device,
            rng: ChaCha20Rng::from_seed(seed),
            mailbox: None,
        }
    }

    /// The key schedule (mailbox, alert and pairing keys are derived on use).
    pub(crate) fn keys(&self) -> &KeySchedule {
        &self.keys
    }

    /// The mailbox key for `node` and its verifier, derived once for the
    /// node last asked for: every sync needs them (an HKDF and a SHA-256,
    /// 24 K instructions), and a vault syncs with one node or a few in
    /// turn. The key is no more exposed kept than the key schedule it
    /// comes from, beside it, and is zeroized on drop like it.
    pub(crate) fn mailbox(&mut self, node: &NodeId) -> (&MailboxKey, MailboxVerifier) {
        if self.mailbox.as_ref().is_none_or(|(n, _, _)| n != node) {
            let key = self.keys.mailbox_key(node);
            let verifier = key.verifier();
            self.mailbox = Some((*node, key, verifier));
        }
        let (_, key, verifier) = self.mailbox.as_ref().expect("set just above");
        (key, *verifier)
    }

    /// The key that names records by keyed hash ([`AlertSlot`]'s keys).
    pub(crate) fn index_key(&self) -> &IndexKey {
        &self.index_key
    }

    /// The vault id.
    pub(crate) fn vault_id(&self) -> VaultId {
        self.keys.vault_id()
    }

    /// This device.
    pub(crate) fn device(&self) -> DeviceId {
        self.device
    }

    /// The vault's RNG.
    pub(crate) fn rng(&mut self) -> &mut ChaCha20Rng {
        &mut self.rng
    }

    /// The root, wrapped to a joining device's key.
    pub(crate) fn wrap_root(
        &mut self,
        to: &X25519PublicKey,
    ) -> Result<vigil_crypto::WrappedKey, vigil_crypto::WrapError> {
        vigil_crypto::wrap(to, self.keys.root(), &mut self.rng)
    }

    fn seal_log(&mut self, kind: Kind, ctx: &Context, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        seal(&self.log_key, kind, ctx, plain, &mut self.rng)
    }

    fn open_log(&self, kind: Kind, ctx: &Context, blob: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        open(&self.log_key, kind, ctx, blob).ok()
    }

    /// Seals own chunk `seq`.
    pub(crate) fn seal_chunk(&mut self, seq: u64, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let ctx = chunk_ctx(self.vault_id(), self.device, seq);
        self.seal_log(Kind::LogBundle, &ctx, plain)
    }

    /// Opens own chunk `seq`.
    pub(crate) fn open_chunk(&self, seq: u64, blob: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let ctx = chunk_ctx(self.vault_id(), self.device, seq);
        self.open_log(Kind::LogBundle, &ctx, blob)
    }

    /// Seals the local snapshot covering chunks up to `covered`.
    pub(crate) fn seal_snapshot(&mut self, covered: u64, doc: &[u8]) -> Result<Vec<u8>, SealError> {
        let ctx = snapshot_ctx(self.vault_id(), self.device, covered);
        self.seal_log(Kind::LogSnapshot, &ctx, doc)
    }

    /// Opens the local snapshot.
    pub(crate) fn open_snapshot(&self, covered: u64, blob: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let ctx = snapshot_ctx(self.vault_id(), self.device, covered);
        self.open_log(Kind::LogSnapshot, &ctx, blob)
    }

    /// Seals own bundle `seq` for the relay.
    pub(crate) fn seal_bundle(&mut self, seq: u64, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let ctx = bundle_ctx(self.vault_id(), self.device, seq);
        self.seal_log(Kind::LogBundle, &ctx, plain)
    }

    /// Opens `author`'s bundle `seq`.
    pub(crate) fn open_bundle(
        &self,
        author: DeviceId,
        seq: u64,
        blob: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let ctx = bundle_ctx(self.vault_id(), author, seq);
        self.open_log(Kind::LogBundle, &ctx, blob)
    }

    /// Seals a relay snapshot covering `covers`.
    pub(crate) fn seal_relay_snapshot(
        &mut self,
        covers: &VersionVector,
        doc: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let ctx = relay_snapshot_ctx(self.vault_id(), covers);
        self.seal_log(Kind::LogSnapshot, &ctx, doc)
    }

    /// Opens a relay snapshot claimed to cover `covers`.
    pub(crate) fn open_relay_snapshot(
        &self,
        covers: &VersionVector,
        blob: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let ctx = relay_snapshot_ctx(self.vault_id(), covers);
        self.open_log(Kind::LogSnapshot, &ctx, blob)
    }

    /// Seals the pairing info (the period) for `joiner`.
    pub(crate) fn seal_pair_info(
        &mut self,
        joiner: &X25519PublicKey,
        period: Period,
    ) -> Result<Vec<u8>, SealError> {
        let ctx = pair_info_ctx(self.vault_id(), joiner);
        self.seal_log(Kind::PairingInfo, &ctx, &encode(&period))
    }

    /// Seals the notice that this device shredded the vault at `at_ms`.
    pub(crate) fn seal_shred_notice(&mut self, at_ms: i64) -> Result<Vec<u8>, SealError> {
        let ctx = shred_notice_ctx(self.vault_id());
        self.seal_log(Kind::ShredNotice, &ctx, &encode(&at_ms))
    }

    /// Opens a shred notice: `None` unless a device of this vault sealed it
    /// for this vault (a node cannot forge one or replay another vault's).
    pub(crate) fn open_shred_notice(&self, blob: &[u8]) -> Option<i64> {
        let ctx = shred_notice_ctx(self.vault_id());
        let plain = self.open_log(Kind::ShredNotice, &ctx, blob)?;
        decode(&plain, SMALL_RECORD).ok()
    }

    /// Opens pairing info with a received root's keys, before a vault exists.
    pub(crate) fn open_pair_info(
        keys: &KeySchedule,
        joiner: &X25519PublicKey,
        blob: &[u8],
    ) -> Option<Period> {
        let ctx = pair_info_ctx(keys.vault_id(), joiner);
        let plain = open(&keys.log_key(), Kind::PairingInfo, &ctx, blob).ok()?;
        decode(&plain, SMALL_RECORD).ok()
    }

    /// Seals a local record with the store key.
    pub(crate) fn seal_record<T: Serialize>(
        &mut self,
        what: LocalRecord<'_>,
        value: &T,
    ) -> Result<Vec<u8>, SealError> {
        let plain = Zeroizing::new(encode(value));
        seal(
            &self.store_key,
            Kind::LocalRecord,
            &what.context(self.vault_id()),
            &plain,
            &mut self.rng,
        )
    }

    /// Opens a local record; `None` if it does not open or decode.
    pub(crate) fn open_record<T: DeserializeOwned>(
        &self,
        what: LocalRecord<'_>,
        blob: &[u8],
    ) -> Option<T> {
        let plain = open(
            &self.store_key,
            Kind::LocalRecord,
            &what.context(self.vault_id()),
            blob,
        )
        .ok()?;
        decode(&plain, SMALL_RECORD).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// DEFLATE streams compressed on this thread (each one costs a
        /// compressor reset).
        pub(super) static DEFLATES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// The local snapshot's record keeps its stored encoding: a store
    /// written before (its sealed log a plain `Vec<u8>`, read as a
    /// sequence) reads the same, and what is written now is byte for byte
    /// what was written then, for every length class of the varint prefix.
    #[test]
    fn snapshot_record_encoding_is_unchanged() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Plain {
            covered: u64,
            sealed: Vec<u8>,
        }
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 200_000] {
            let sealed: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let plain = encode(&Plain {
                covered: len as u64 * 3,
                sealed: sealed.clone(),
            });
            let now = encode(&SnapshotRecord {
                covered: len as u64 * 3,
                sealed: sealed.clone(),
            });
            assert_eq!(now, plain, "length {len}");
            let back: SnapshotRecord = decode(&plain, LOG_RECORD).expect("an old record reads");
            assert_eq!((back.covered, back.sealed), (len as u64 * 3, sealed));
            // Cut short: an error, never a shorter log.
            assert!(decode::<SnapshotRecord>(&plain[..plain.len() - 1], LOG_RECORD).is_err());
        }
    }

    #[test]
    fn records_refuse_trailing_bytes_oversize_and_garbage() {
        let rec = OutboxRecord {
            grant: [5; 16],
            episode: [6; 16],
            kind: 1,
            queued_ms: 1,
            first_sent_ms: None,
            onset_ms: 2,
            level: 3,
            blob: vec![4; 10],
        };
        let bytes = encode(&rec);
        let back: OutboxRecord = decode(&bytes, SMALL_RECORD).unwrap();
        assert_eq!((back.queued_ms, back.level, back.blob), (1, 3, vec![4; 10]));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode::<OutboxRecord>(&longer, SMALL_RECORD),
            Err(RecordError::Trailing)
        ));
        assert!(matches!(
            decode::<OutboxRecord>(&bytes, bytes.len() - 1),
            Err(RecordError::TooLarge { .. })
        ));
        assert!(matches!(
            decode::<OutboxRecord>(&bytes[..bytes.len() - 1], SMALL_RECORD),
            Err(RecordError::Malformed(_))
        ));
    }

    /// The payload as DEFLATE with zlib's default 32 KiB window, as it was
    /// first written: the bytes every payload must keep.
    fn deflate_default_window(input: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(input).expect("into a Vec");
        let deflated = enc.finish().expect("into a Vec");
        [&[PAYLOAD_DEFLATE][..], &deflated].concat()
    }

    /// Real logs (saves and change chunks of 0 to 3,000 readings, with
    /// annotations) and synthetic inputs of every length around each
    /// window size a payload could be given (repetitive, so matches reach
    /// back as far as they can; and noisy): `deflate` gives exactly the
    /// bytes of the default window, whatever it allocates (both formats
    /// that compress go through it).
    #[test]
    fn log_payloads_are_the_default_window_deflate() {
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        let mut log = vigil_log::HealthLog::new(vigil_log::DeviceId([7; 16]));
        let mut heads = log.heads();
        for i in 0..3000i64 {
            log.stage(
                vigil_log::Metric::HeartRate,
                50.0 + (i % 70) as f64,
                vigil_log::Unit::BeatsPerMinute,
                1_790_000_000_000 + i * 60_000,
            )
            .expect("a valid reading");
            if i % 97 == 0 || i % 1000 == 999 {
                log.fold().expect("a fold");
                let id = log.readings(None, i64::MIN, i64::MAX, true)[0].id;
                log.annotate(id, &format!("note {i}")).expect("known");
                inputs.push(log.save());
                inputs.push(log.own_changes_since(&heads).0);
                heads = log.heads();
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for bits in 9..=16u32 {
            for delta in [-300i64, -263, -262, -261, -1, 0, 1, 300] {
                let len = usize::try_from((1i64 << bits) + delta).expect("positive");
                let repetitive: Vec<u8> = (0..len)
                    .map(|i| (i % 251) as u8 ^ (i / 977) as u8)
                    .collect();
                let noisy: Vec<u8> = (0..len)
                    .map(|i| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        if x.is_multiple_of(4) {
                            (x >> 32) as u8
                        } else {
                            (i % 13) as u8
                        }
                    })
                    .collect();
                inputs.push(repetitive);
                inputs.push(noisy);
            }
        }
        for (i, input) in inputs.iter().enumerate() {
            assert_eq!(
                *deflate(&[PAYLOAD_DEFLATE], input).expect("into a Vec"),
                deflate_default_window(input),
                "input {i} of {} bytes",
                input.len()
            );
        }
    }

    #[test]
    fn log_payloads_round_trip_and_refuse_bombs_garbage_and_unknown_formats() {
        let mut automerge = AUTOMERGE_MAGIC.to_vec();
        automerge.extend((0..5000u32).map(|i| (i % 7) as u8));
        let packed = pack_log(&automerge);
        assert!(matches!(
            packed[0],
            PAYLOAD_DEFLATE | PAYLOAD_STRIDE_DEFLATE
        ));
        assert!(packed.len() < automerge.len() / 4);
        assert_eq!(*unpack_log(&packed).unwrap(), automerge);
        // DEFLATE alone (format 01) reads back too.
        let deflated = deflate(&[PAYLOAD_DEFLATE], &automerge).unwrap();
        assert_eq!(*unpack_log(&deflated).unwrap(), automerge);
        let packed = deflated;
        // What does not shrink goes as it is, and the old format opens.
        let tiny = AUTOMERGE_MAGIC.to_vec();
        assert_eq!(*pack_log(&tiny), tiny);
        assert_eq!(*unpack_log(&automerge).unwrap(), automerge);
        // Truncated, extended, or inflating to something else: malformed.
        let cut = &packed[..packed.len() - 3];
        assert_eq!(unpack_log(cut), Err(PayloadError::Malformed));
        let mut longer = packed.to_vec();
        longer.push(0);
        assert_eq!(unpack_log(&longer), Err(PayloadError::Malformed));
        for format in [PAYLOAD_DEFLATE, PAYLOAD_STRIDE_DEFLATE] {
            let mut p = deflate(&[format], &[7u8; 5000]).unwrap().to_vec();
            if format == PAYLOAD_STRIDE_DEFLATE {
                p = deflate(&[format, READING_STRIDE], &stride_delta(&[7u8; 5000], 42))
                    .unwrap()
                    .to_vec();
            }
            assert_eq!(unpack_log(&p), Err(PayloadError::Malformed));
        }
        let mut not_automerge = pack_log(&[7u8; 5000]).to_vec();
        not_automerge[0] = 0x7f;
        assert_eq!(
            unpack_log(&not_automerge),
            Err(PayloadError::UnknownFormat(0x7f))
        );
        assert_eq!(unpack_log(&[]), Err(PayloadError::Malformed));
        // A bomb stops at the limit; exactly the limit still opens.
        let mut big = vec![0u8; 4096];
        big[..4].copy_from_slice(&AUTOMERGE_MAGIC);
        let packed = deflate(&[PAYLOAD_DEFLATE], &big).unwrap();
        assert_eq!(
            inflate(&packed[1..], 4095),
            Err(PayloadError::TooLarge { limit: 4095 })
        );
        assert_eq!(*inflate(&packed[1..], 4096).unwrap(), big);
    }

    /// Bytes like a bundle of readings: Automerge's value column holds
    /// them back to back, 42 bytes each (docs/spec.md §6), so the same
    /// field recurs every 42 bytes.
    fn readings_like(n: u64) -> Vec<u8> {
        let mut out = AUTOMERGE_MAGIC.to_vec();
        out.extend_from_slice(&[0x11; 60]);
        for i in 0..n {
            out.push(1);
            out.extend_from_slice(&[0xd7; 16]);
            out.extend_from_slice(&(1000 + i).to_be_bytes());
            out.extend_from_slice(&(1_790_035_200_000 + i * 30_000).to_be_bytes());
            out.push(1 + (i % 2) as u8);
            let value = if i % 2 == 0 {
                36.5 + (i % 7) as f64 * 0.05
            } else {
                60.0 + (i % 40) as f64
            };
            out.extend_from_slice(&value.to_be_bytes());
        }
        out
    }

    /// The `i`th reading of a band: heart rate and body temperature in turn.
    fn band_reading(i: i64) -> (vigil_log::Metric, f64, vigil_log::Unit) {
        if i % 2 == 0 {
            (
                vigil_log::Metric::HeartRate,
                55.0 + (i % 41) as f64,
                vigil_log::Unit::BeatsPerMinute,
            )
        } else {
            (
                vigil_log::Metric::BodyTemperature,
                36.4 + (i % 7) as f64 * 0.1,
                vigil_log::Unit::Celsius,
            )
        }
    }

    /// A bundle of band readings (one fold of 1 to 60 readings, heart rate
    /// and temperature alternating every 30 s, as a device bundles them)
    /// packs to the smallest of the Automerge bytes as they are, DEFLATE
    /// alone and DEFLATE after the stride filter: whichever candidates
    /// `pack_log` leaves untried, it never costs a byte.
    #[test]
    fn bundles_of_readings_pack_to_the_smallest_candidate() {
        for n in 1..=60i64 {
            let mut log = vigil_log::HealthLog::new(vigil_log::DeviceId([9; 16]));
            let heads = log.heads();
            for i in 0..n {
                let (metric, value, unit) = band_reading(i);
                log.stage(metric, value, unit, 1_790_000_000_000 + i * 30_000)
                    .expect("a valid reading");
            }
            log.fold().expect("a fold");
            let changes = log.own_changes_since(&heads).0;
            let best = [
                changes.len(),
                deflate(&[PAYLOAD_DEFLATE], &changes)
                    .expect("into a Vec")
                    .len(),
                deflate(
                    &[PAYLOAD_STRIDE_DEFLATE, READING_STRIDE],
                    &stride_delta(&changes, READING_STRIDE),
                )
                .expect("into a Vec")
                .len(),
            ]
            .into_iter()
            .min();
            assert_eq!(
                Some(pack_log(&changes).len()),
                best,
                "{n} readings, {} bytes",
                changes.len()
            );
        }
    }

    /// A sync's bundle of a few mixed changes (readings recorded one by
    /// one, a note, check-ins: the simulation's bundles), past
    /// [`STRIDE_MIN`]: the stride filter leaves under half its bytes zero
    /// and would lose to DEFLATE alone, so `pack_log` compresses it once,
    /// DEFLATE alone (each compression resets a 128 KiB table), at no cost
    /// in bytes.
    #[test]
    fn mixed_bundles_compress_once() {
        let mut log = vigil_log::HealthLog::new(vigil_log::DeviceId([9; 16]));
        let heads = log.heads();
        let mut sizes = Vec::new();
        for i in 0..12i64 {
            let (metric, value, unit) = band_reading(i * 7);
            let id = log
                .record(metric, value, unit, 1_790_000_000_000 + i * 3_600_000)
                .expect("a valid reading");
            if i % 3 == 0 {
                log.annotate(id, &format!("felt warm {i}")).expect("known");
            }
            if i % 4 == 1 {
                log.check_in(
                    vigil_log::Day::of(1_790_000_000_000 + i * 3_600_000),
                    vigil_log::Symptom::ALL[(i % 3) as usize],
                    vigil_log::Severity::Mild,
                )
                .expect("initialised");
            }
            let changes = log.own_changes_since(&heads).0;
            if changes.len() < STRIDE_MIN {
                continue;
            }
            let filtered = stride_delta(&changes, READING_STRIDE);
            let zeros = filtered.iter().filter(|b| **b == 0).count();
            assert!(zeros * 2 < changes.len(), "{zeros} of {}", changes.len());
            let plain = deflate(&[PAYLOAD_DEFLATE], &changes).expect("into a Vec");
            let stride =
                deflate(&[PAYLOAD_STRIDE_DEFLATE, READING_STRIDE], &filtered).expect("into a Vec");
            assert!(stride.len() >= plain.len(), "the stride format would win");
            DEFLATES.with(|n| n.set(0));
            let packed = pack_log(&changes);
            assert_eq!(DEFLATES.with(|n| n.get()), 1, "{} bytes", changes.len());
            assert_eq!(packed.len(), plain.len().min(changes.len()));
            sizes.push(changes.len());
        }
        assert!(sizes.len() > 5, "only {sizes:?} past STRIDE_MIN");
    }

    /// A whole document goes as DEFLATE alone (format 01, which every
    /// build reads), never the stride format, and round-trips; on a day of
    /// band readings (every 30 s, with notes) the stride candidate it no
    /// longer tries would have saved no byte.
    #[test]
    fn documents_pack_as_deflate_alone() {
        let mut log = vigil_log::HealthLog::new(vigil_log::DeviceId([9; 16]));
        for i in 0..2880i64 {
            let (metric, value, unit) = band_reading(i);
            log.stage(metric, value, unit, 1_790_000_000_000 + i * 30_000)
                .expect("a valid reading");
            if i % 120 == 119 {
                log.fold().expect("a fold");
                let id = log.readings(None, i64::MIN, i64::MAX, true)[0].id;
                log.annotate(id, &format!("note {i}")).expect("known");
            }
        }
        let doc = log.save();
        let packed = pack_document(&doc);
        assert_eq!(packed[0], PAYLOAD_DEFLATE);
        assert_eq!(*unpack_log(&packed).expect("reads"), doc);
        assert!(
            packed.len() <= pack_log(&doc).len(),
            "{} bytes as a document, {} with the stride candidate",
            packed.len(),
            pack_log(&doc).len()
        );
        // Too small to compress: as it is.
        let tiny = [AUTOMERGE_MAGIC.as_slice(), &[1, 2, 3]].concat();
        assert_eq!(*pack_document(&tiny), tiny);
    }

    /// Logs of every size from empty to 3,000 readings, with annotations,
    /// another device's changes, and changes waiting for a dependency
    /// (which `save()` keeps after the document): `compress_columns` of the
    /// uncompressed save at Automerge's threshold gives exactly Automerge's
    /// `save()`, and `compress_document`'s form loads to the same document.
    #[test]
    fn compress_document_gives_automerges_save() {
        let mut other = vigil_log::HealthLog::new(vigil_log::DeviceId([8; 16]));
        let mut log = vigil_log::HealthLog::new(vigil_log::DeviceId([7; 16]));
        let mut checked = 0;
        let mut check = |log: &mut vigil_log::HealthLog| {
            let want = log.save();
            let plain = log.save_uncompressed();
            let got = compress_columns(&plain, AUTOMERGE_DEFLATE_MIN).expect("a document");
            assert_eq!(got, want, "after {checked} checks");
            // The snapshot's form: the same document.
            let doc = compress_document(&plain).expect("a document");
            let mut loaded =
                vigil_log::HealthLog::load(&doc, vigil_log::DeviceId([6; 16])).expect("loads");
            assert_eq!(loaded.save(), want, "after {checked} checks");
            checked += 1;
        };
        check(&mut log);
        let other_heads = other.heads();
        let mut waiting = Vec::new();
        for i in 0..3000i64 {
            let (metric, value, unit) = band_reading(i);
            log.stage(metric, value, unit, 1_790_000_000_000 + i * 30_000)
                .expect("a valid reading");
            other
                .stage(
                    metric,
                    value + 1.0,
                    unit,
                    1_790_000_000_000 + i * 30_000 + 7,
                )
                .expect("a valid reading");
            if i % 97 == 0 || i % 1000 == 999 {
                log.fold().expect("a fold");
                let id = log.readings(None, i64::MIN, i64::MAX, true)[0].id;
                log.annotate(id, &format!("note {i}")).expect("known");
                check(&mut log);
            }
            if i == 500 {
                other.fold().expect("a fold");
                let first = other.own_changes_since(&other_heads).0;
                let mid = other.heads();
                other.fold().expect("a fold");
                let id = other.readings(None, i64::MIN, i64::MAX, true)[0].id;
                other.annotate(id, "later").expect("known");
                waiting = other.own_changes_since(&mid).0;
                // The later changes first: they wait for the earlier.
                log.apply(&waiting).expect("applies");
                check(&mut log);
                log.apply(&first).expect("applies");
                check(&mut log);
            }
        }
        assert!(!waiting.is_empty());
        assert!(checked > 30);
        // Not a document chunk: Automerge saves it.
        assert_eq!(compress_document(b"not automerge"), None);
        let plain = log.save_uncompressed();
        assert_eq!(compress_document(&plain[..plain.len() / 2]), None);
    }

    /// Columns under 4 KiB are left as they are (compressing one costs a
    /// compressor reset, ~160 K instructions under callgrind, to save a
    /// few hundred bytes that the relay snapshot's DEFLATE of the whole
    /// document takes anyway): 80 band readings (3,360 bytes of values,
    /// which Automerge compresses) are stored as they are.
    #[test]
    fn small_columns_are_left_uncompressed() {
        let mut log = vigil_log::HealthLog::new(vigil_log::DeviceId([7; 16]));
        for i in 0..80i64 {
            let (metric, value, unit) = band_reading(i);
            log.stage(metric, value, unit, 1_790_000_000_000 + i * 30_000)
                .expect("a valid reading");
            if i % 40 == 39 {
                log.fold().expect("a fold");
            }
        }
        let plain = log.save_uncompressed();
        assert!(log.save() != plain, "Automerge compresses some column");
        let doc = compress_document(&plain).expect("a document");
        assert!(
            doc == plain,
            "{} bytes, uncompressed {}, Automerge's {}",
            doc.len(),
            plain.len(),
            log.save().len()
        );
    }

    /// The monitoring week's first day of wristband readings, folded
    /// hourly (149 KB uncompressed), has no column between Automerge's
    /// 256 bytes and 4 KiB: its snapshot is exactly Automerge's `save()`,
    /// so the week's open checksums and inflates what it did before
    /// (measured: the reference bench's preload, 84.6 M instructions an
    /// open before, 84.6-84.8 M after, as threads race).
    #[test]
    fn large_documents_are_automerges_save() {
        let mut log = vigil_log::HealthLog::new(vigil_log::DeviceId([7; 16]));
        for m in 0..1440i64 {
            for (metric, v) in vigil_testkit::wristband_readings(m, 5, 15) {
                log.stage(metric, v, metric.unit(), 1_790_000_000_000 + m * 60_000)
                    .expect("a valid reading");
            }
            if m % 60 == 59 {
                log.fold().expect("a fold");
            }
        }
        let plain = log.save_uncompressed();
        assert!(plain.len() >= 128 * 1024, "{}", plain.len());
        let doc = compress_document(&plain).expect("a document");
        assert!(
            doc == log.save(),
            "{} bytes, Automerge's {}",
            doc.len(),
            log.save().len()
        );
    }

    #[test]
    fn readings_compress_with_the_stride_filter_and_round_trip() {
        let automerge = readings_like(148);
        let packed = pack_log(&automerge);
        // Format 02, stride 42 (docs/spec.md §10).
        assert_eq!(packed[..2], [0x02, 42]);
        // Smaller than DEFLATE alone by a fifth at least.
        let mut plain = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut plain, &automerge).unwrap();
        let plain = plain.finish().unwrap();
        assert!(
            packed.len() * 5 < plain.len() * 4,
            "{} vs {}",
            packed.len(),
            plain.len()
        );
        assert_eq!(*unpack_log(&packed).unwrap(), automerge);
        // Stride 0 is malformed, and so is a payload without a stream.
        let mut other = packed.to_vec();
        other[1] = 0;
        assert_eq!(unpack_log(&other), Err(PayloadError::Malformed));
        assert_eq!(unpack_log(&packed[..1]), Err(PayloadError::Malformed));
        // A bomb stops at the limit under this format too.
        let mut bomb = vec![0x02, 42];
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &vec![0u8; PAYLOAD_LIMIT + 1]).unwrap();
        bomb.extend_from_slice(&e.finish().unwrap());
        assert_eq!(
            unpack_log(&bomb),
            Err(PayloadError::TooLarge {
                limit: PAYLOAD_LIMIT
            })
        );
    }

    /// Payloads opened one after another on one thread each read as they
    /// would alone, whatever the one before did: a bomb stopped at the
    /// limit, a stream cut short, bytes after a stream, a valid payload.
    #[test]
    fn payloads_unpack_alike_in_any_order() {
        let valid = pack_log(&readings_like(148));
        let doc = pack_document(&readings_like(30));
        let mut bomb = vec![PAYLOAD_DEFLATE];
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &vec![0u8; PAYLOAD_LIMIT + 1]).unwrap();
        bomb.extend_from_slice(&e.finish().unwrap());
        let cut = doc[..doc.len() / 2].to_vec();
        let mut trailing = doc.to_vec();
        trailing.push(0);
        let all: [&[u8]; 5] = [&valid, &doc, &bomb, &cut, &trailing];
        let alone: Vec<_> = all.iter().map(|p| unpack_log(p)).collect();
        assert!(alone[0].is_ok() && alone[1].is_ok());
        assert!(alone[2..].iter().all(Result::is_err));
        for (i, first) in all.iter().enumerate() {
            for (j, then) in all.iter().enumerate() {
                assert_eq!(unpack_log(first), alone[i], "payload {i} before {j}");
                assert_eq!(unpack_log(then), alone[j], "payload {j} after {i}");
            }
        }
    }

    /// The mailbox key and verifier a sync uses for a node are the key
    /// schedule's for that node, whichever node the vault synced with
    /// before (several nodes in turn, back and forth).
    #[test]
    fn mailbox_keys_are_the_schedules_per_node() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let keys = KeySchedule::new(vigil_crypto::RootKey::generate(&mut rng));
        let schedule = KeySchedule::new(vigil_crypto::RootKey::from_bytes(
            *keys.root().expose_secret(),
        ));
        let mut crypto = VaultCrypto::new(keys, DeviceId([1; 16]), &mut rng);
        let nodes: Vec<vigil_crypto::NodeId> = (0..3u8)
            .map(|i| {
                let id = vigil_crypto::X25519Identity::generate(&mut rng);
                vigil_crypto::NodeId::new(id.public_key(), [i; 32])
            })
            .collect();
        for i in [0usize, 0, 1, 0, 2, 2, 1] {
            let want = schedule.mailbox_key(&nodes[i]);
            let (key, verifier) = crypto.mailbox(&nodes[i]);
            assert_eq!(key.expose_secret(), want.expose_secret(), "node {i}");
            assert_eq!(verifier.to_bytes(), want.verifier().to_bytes(), "node {i}");
        }
    }

    #[test]
    fn keys_round_trip_and_sort_by_number() {
        assert_eq!(parse_chunk_key(&chunk_key(258)), Some(258));
        assert!(chunk_key(2) < chunk_key(256), "big-endian seqs sort");
        let d = DeviceId([7; 16]);
        assert_eq!(parse_received_key(&received_key(d, 9)), Some((d, 9)));
        assert_eq!(parse_received_key(K_RELAY_SNAPSHOT), None);
        let slot = AlertSlot {
            grant: [1; 16],
            episode: [2; 16],
            kind: 2,
        };
        // Opaque: a fixed length, neither id in the key, and the two keys unlinked.
        let index = IndexKey::from_bytes([9; 32]);
        let (o, m) = (slot.outbox_key(&index), slot.marker_key(&index));
        assert_eq!((o.len(), m.len()), (18, 18));
        assert!(o.starts_with(P_ALERT_OUTBOX) && m.starts_with(P_ALERTED));
        assert_ne!(o[2..], m[2..]);
        assert!(!o.windows(16).any(|w| w == slot.grant || w == slot.episode));
        let s = slot.delivered_key(&index);
        assert!(s.len() == 18 && s.starts_with(P_ALERT_DELIVERED));
        assert!(
            s[2..] != o[2..] && s[2..] != m[2..],
            "unlinked from the outbox and marker"
        );
        let other = AlertSlot { kind: 1, ..slot };
        assert_ne!(other.outbox_key(&index), o);
        assert_ne!(slot.outbox_key(&IndexKey::from_bytes([8; 32])), o);
        assert_eq!(parse_disclosure_key(&disclosure_key(5)), Some(5));
        assert_eq!(parse_journal_key(&journal_key(300)), Some(300));
        assert!(journal_key(2) < journal_key(256), "replayed in order");
    }
}

/// Every decoder of stored bytes answers garbage with an error, never a
/// panic: a damaged disk must not crash the app or the sweeper.
#[cfg(test)]
mod never_panic {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn records_decode_or_refuse(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<MetaRecord>(&bytes, SMALL_RECORD);
            let _ = decode::<SnapshotRecord>(&bytes, LOG_RECORD);
            let _ = decode::<SyncRecord>(&bytes, SMALL_RECORD);
            let _ = decode::<SyncVolumeRecord>(&bytes, SMALL_RECORD);
            let _ = decode::<RelaySnapshotRecord>(&bytes, LOG_RECORD);
            let _ = unpack_log(&bytes);
            let _ = decode::<OutboxRecord>(&bytes, SMALL_RECORD);
            let _ = decode::<DeliveredRecord>(&bytes, SMALL_RECORD);
            let _ = decode::<TombstoneRecord>(&bytes, SMALL_RECORD);
            let _ = decode::<TombstoneRecordV2>(&bytes, SMALL_RECORD);
            let _ = crate::shred::Tombstone::decode(&bytes);
            let mut magic = TOMBSTONE_MAGIC.to_vec();
            magic.extend_from_slice(&bytes);
            let _ = crate::shred::Tombstone::decode(&magic);
            let _ = parse_chunk_key(&bytes);
            let _ = parse_received_key(&bytes);
            let _ = parse_sync_outbox_key(&bytes);
            let _ = parse_grant_key(&bytes);
            let _ = parse_disclosure_key(&bytes);
            let _ = parse_journal_key(&bytes);
            let _ = decode::<JournalRecord>(&bytes, SMALL_RECORD);
        }

        #[test]
        fn key_files_load_or_refuse(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            use crate::keystore::{FileKeyStore, KeyStore};
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("k");
            std::fs::write(&path, &bytes).unwrap();
            let store = FileKeyStore::new(&path);
            let _ = store.load();
            let _ = store.destroy_if(vigil_crypto::VaultId::from_bytes([1; 16]));
        }
    }
}
