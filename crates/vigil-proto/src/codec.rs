//! The one codec for wire frames (docs/spec.md §9): postcard, with a version
//! field, a maximum size, and rejection of trailing bytes.

use serde::{Deserialize, Serialize};

use crate::messages::{Request, Response};

/// Protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// Largest frame either side accepts (a 16 MiB envelope plus framing).
pub const MAX_FRAME: usize = 17 * 1024 * 1024;
/// Most entries a version vector (`have`, `covers`) may hold on the wire: far
/// above any vault's devices (the node's own cap is lower, a config value),
/// and checked from the list's length prefix before the list is built.
pub const MAX_VERSION_VECTOR: usize = 4096;

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// Longer than [`MAX_FRAME`].
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// Not a valid encoding of a message.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// Bytes left over after the message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// Another protocol version.
    #[error("frame has protocol version {found}; this build speaks {supported}")]
    Version {
        /// Version found.
        found: u16,
        /// Version spoken here.
        supported: u16,
    },
}

#[derive(Serialize)]
struct OutFrame<'a, T> {
    version: u16,
    body: &'a T,
}

#[derive(Deserialize)]
struct InFrame<T> {
    version: u16,
    body: T,
}

fn encode<T: Serialize>(body: &T) -> Vec<u8> {
    postcard::to_stdvec(&OutFrame {
        version: PROTOCOL_VERSION,
        body,
    })
    // Serialising our own in-memory types into a Vec cannot fail.
    .expect("postcard serialises plain data into a Vec")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_FRAME {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            max: MAX_FRAME,
        });
    }
    // Read the version alone first, so a future version's body is reported
    // as a version mismatch rather than as garbage.
    let (version, _) = postcard::take_from_bytes::<u16>(bytes)
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if version != PROTOCOL_VERSION {
        return Err(CodecError::Version {
            found: version,
            supported: PROTOCOL_VERSION,
        });
    }
    let (frame, rest) = postcard::take_from_bytes::<InFrame<T>>(bytes)
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(rest.len()));
    }
    debug_assert_eq!(frame.version, version);
    Ok(frame.body)
}

/// Most bytes a request that is not a push may take: a `Pull` with a
/// version vector at [`MAX_VERSION_VECTOR`] needs about 110 KB.
pub const MAX_SMALL_REQUEST: usize = 128 * 1024;

/// The bytes a transport needs to tell a request's kind
/// ([`request_limit`]): the version and variant varints.
pub const REQUEST_HEAD: usize = 8;

/// How many bytes the request whose frame starts with `head` (its first
/// [`REQUEST_HEAD`] bytes, or all of a shorter frame) may take: only bundle
/// and snapshot pushes carry large blobs, so every other kind is held to
/// [`MAX_SMALL_REQUEST`]. A transport reads no further, so a large frame of
/// another kind is refused after its first part, unread.
pub fn request_limit(head: &[u8]) -> usize {
    // The variant indices of the two push kinds, found once by encoding
    // them (so they follow the enum's order), not on every request.
    static PUSHES: std::sync::OnceLock<[Option<u32>; 2]> = std::sync::OnceLock::new();
    let pushes = PUSHES.get_or_init(|| {
        [
            variant_index(&encode_request(&Request::Push(crate::BundleItem {
                device: [0; 16],
                seq: 0,
                blob: Vec::new(),
            }))),
            variant_index(&encode_request(&Request::PushSnapshot(
                crate::SnapshotItem {
                    covers: Vec::new(),
                    blob: Vec::new(),
                },
            ))),
        ]
    });
    match variant_index(head) {
        Some(i) if pushes.contains(&Some(i)) => MAX_FRAME,
        _ => MAX_SMALL_REQUEST,
    }
}

/// The enum variant index after a frame's version (both postcard varints).
fn variant_index(frame: &[u8]) -> Option<u32> {
    let (_, rest) = postcard::take_from_bytes::<u16>(frame).ok()?;
    let (i, _) = postcard::take_from_bytes::<u32>(rest).ok()?;
    Some(i)
}

/// Encodes a request frame.
pub fn encode_request(r: &Request) -> Vec<u8> {
    encode(r)
}

/// Decodes a request frame.
pub fn decode_request(bytes: &[u8]) -> Result<Request, CodecError> {
    decode(bytes)
}

/// Encodes a response frame.
pub fn encode_response(r: &Response) -> Vec<u8> {
    encode(r)
}

/// Decodes a response frame.
pub fn decode_response(bytes: &[u8]) -> Result<Response, CodecError> {
    decode(bytes)
}
