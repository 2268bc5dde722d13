//! Byte-string fields (`#[serde(with = "crate::blob")]`): serialised as
//! serde bytes rather than as a sequence of `u8`. Postcard writes both the
//! same way (a varint length, then the bytes), so nothing changes on the
//! wire or at rest; a sequence costs a call per byte, which made sealed
//! blobs the bulk of encoding and decoding frames.

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    d.deserialize_byte_buf(Bytes)
}

struct Bytes;

impl<'de> Visitor<'de> for Bytes {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    /// Formats without a byte string (JSON: an array of numbers). The
    /// length hint is not trusted beyond a small first allocation.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    use crate::messages::{BundleItem, SnapshotItem};

    /// What a bundle was before its blob became serde bytes.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct PlainBundle {
        device: [u8; 16],
        seq: u64,
        blob: Vec<u8>,
    }

    proptest! {
        /// The same bytes on the wire as a sequence of `u8` (postcard writes
        /// both as a varint length and the bytes), and each side reads the
        /// other's: old and new peers and stores stay compatible.
        #[test]
        fn bytes_are_the_same_on_the_wire_as_a_sequence(
            device in any::<[u8; 16]>(),
            seq in any::<u64>(),
            blob in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let new = BundleItem { device, seq, blob: blob.clone() };
            let old = PlainBundle { device, seq, blob };
            let wire = postcard::to_stdvec(&new).expect("plain data serialises");
            prop_assert_eq!(&wire, &postcard::to_stdvec(&old).expect("plain data serialises"));
            prop_assert_eq!(postcard::from_bytes::<BundleItem>(&wire).expect("reads back"), new);
            prop_assert_eq!(postcard::from_bytes::<PlainBundle>(&wire).expect("reads back"), old);
        }

        /// A blob cut short or claiming more bytes than follow is refused.
        #[test]
        fn a_truncated_blob_is_refused(blob in proptest::collection::vec(any::<u8>(), 1..300), cut in any::<prop::sample::Index>()) {
            let item = SnapshotItem { covers: Vec::new(), blob };
            let wire = postcard::to_stdvec(&item).expect("plain data serialises");
            let cut = cut.index(wire.len());
            prop_assert!(postcard::from_bytes::<SnapshotItem>(&wire[..cut]).is_err());
        }
    }

    /// A format that hands bytes over as a sequence (JSON: an array of
    /// numbers) still reads: the visitor takes a sequence too.
    #[test]
    fn a_sequence_of_numbers_reads_as_bytes() {
        use serde::de::value::{Error, SeqDeserializer};
        let seq = SeqDeserializer::<_, Error>::new([1u8, 2, 255].into_iter());
        assert_eq!(super::deserialize(seq), Ok(vec![1, 2, 255]));
    }
}
