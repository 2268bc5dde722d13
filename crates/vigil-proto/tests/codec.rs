//! The codec: round trips, and every malformed frame is a typed error.

use proptest::prelude::*;
use vigil_proto::{
    AlertState, AlertStatusQuery, BundleItem, CodecError, MAX_FRAME, PROTOCOL_VERSION, ProtoError,
    Request, Response, SnapshotItem, decode_request, decode_response, encode_request,
    encode_response,
};

fn arb_request() -> impl Strategy<Value = Request> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        any::<u16>().prop_map(|version| Request::Hello { version }),
        (any::<[u8; 16]>(), any::<[u8; 32]>(), any::<i64>()).prop_map(
            |(vault, verifier, expires_ms)| {
                Request::Register {
                    vault,
                    verifier,
                    expires_ms,
                }
            }
        ),
        (any::<[u8; 16]>(), any::<[u8; 32]>())
            .prop_map(|(vault, key)| Request::Auth { vault, key }),
        (any::<[u8; 16]>(), any::<u64>(), bytes.clone())
            .prop_map(|(device, seq, blob)| Request::Push(BundleItem { device, seq, blob })),
        (
            proptest::collection::vec((any::<[u8; 16]>(), any::<u64>()), 0..5),
            any::<u32>()
        )
            .prop_map(|(have, max_bytes)| Request::Pull { have, max_bytes }),
        (
            proptest::collection::vec((any::<[u8; 16]>(), any::<u64>()), 0..5),
            bytes.clone()
        )
            .prop_map(|(covers, blob)| Request::PushSnapshot(SnapshotItem { covers, blob })),
        (any::<[u8; 32]>(), bytes).prop_map(|(slot, wrapped)| Request::PairOffer { slot, wrapped }),
        any::<[u8; 32]>().prop_map(|slot| Request::PairFetch { slot }),
        (
            any::<[u8; 16]>(),
            any::<[u8; 32]>(),
            proptest::collection::vec((any::<[u8; 16]>(), any::<u8>()), 0..5)
        )
            .prop_map(
                |(grant_id, proof, alerts)| Request::AlertStatus(AlertStatusQuery {
                    grant_id,
                    proof,
                    alerts
                })
            ),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip_and_reject_trailing_bytes(req in arb_request(), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let frame = encode_request(&req);
        prop_assert_eq!(decode_request(&frame), Ok(req));
        let mut longer = frame.clone();
        longer.extend_from_slice(&extra);
        prop_assert_eq!(decode_request(&longer), Err(CodecError::TrailingBytes(extra.len())));
    }

    #[test]
    fn truncated_frames_never_decode(req in arb_request(), cut in 1usize..16) {
        let frame = encode_request(&req);
        let cut = cut.min(frame.len());
        prop_assert!(decode_request(&frame[..frame.len() - cut]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
    }
}

#[test]
fn responses_round_trip() {
    for r in [
        Response::HelloOk {
            version: PROTOCOL_VERSION,
        },
        Response::Ok,
        Response::UpToDate,
        Response::Ack {
            device: [1; 16],
            seq: 9,
        },
        Response::Error(ProtoError::QuotaExceeded {
            what: "bytes".into(),
            limit: 5,
        }),
        Response::Bundles {
            snapshot: Some(SnapshotItem {
                covers: vec![([2; 16], 3)],
                blob: vec![1, 2, 3],
            }),
            bundles: vec![BundleItem {
                device: [3; 16],
                seq: 4,
                blob: vec![9; 40],
            }],
            more: true,
        },
        Response::AlertStatus(vec![
            AlertState {
                episode: [5; 16],
                kind: 1,
                stored: true,
                acked_ms: Some(1_700_000_000_000),
            },
            AlertState {
                episode: [6; 16],
                kind: 2,
                stored: false,
                acked_ms: None,
            },
        ]),
    ] {
        assert_eq!(decode_response(&encode_response(&r)), Ok(r));
    }
}

#[test]
fn alert_status_answers_reject_trailing_bytes() {
    let r = Response::AlertStatus(vec![AlertState {
        episode: [5; 16],
        kind: 1,
        stored: true,
        acked_ms: None,
    }]);
    let mut frame = encode_response(&r);
    frame.push(0);
    assert_eq!(decode_response(&frame), Err(CodecError::TrailingBytes(1)));
}

#[test]
fn other_version_oversize_and_garbage_are_typed_errors() {
    let mut frame = encode_request(&Request::Hello { version: 1 });
    frame[0] = 2; // the version varint
    assert_eq!(
        decode_request(&frame),
        Err(CodecError::Version {
            found: 2,
            supported: PROTOCOL_VERSION
        })
    );
    let big = vec![0u8; MAX_FRAME + 1];
    assert!(matches!(
        decode_request(&big),
        Err(CodecError::TooLarge { .. })
    ));
    assert!(matches!(decode_request(&[]), Err(CodecError::Malformed(_))));
    assert!(matches!(
        decode_request(&[1, 200]),
        Err(CodecError::Malformed(_))
    ));
}

#[test]
fn admission_errors_have_the_wire_numbers_of_the_spec() {
    // Frame: version 1, response 6 (Error), then the ProtoError variant (§9).
    for (e, number) in [
        (
            ProtoError::NodeFull {
                what: "vaults".into(),
                limit: 2,
            },
            21u8,
        ),
        (ProtoError::ExpiryTooFar { latest_ms: 5 }, 22),
        (
            ProtoError::TooManyEntries {
                what: "have".into(),
                limit: 3,
            },
            23,
        ),
    ] {
        let r = Response::Error(e);
        let frame = encode_response(&r);
        assert_eq!(frame[..3], [1, 6, number], "{r:?}");
        assert_eq!(decode_response(&frame), Ok(r));
    }
}

/// A resident turned attacker sends `Pull` with a million-entry `have` list
/// (16 MiB, inside the authenticated frame limit): the codec refuses it from
/// its length prefix, before building the list, so the node never holds a
/// million entries in memory. Lists up to the bound still decode.
#[test]
fn version_vectors_are_bounded_when_decoded() {
    let vv = |n: usize| -> Vec<([u8; 16], u64)> {
        (0..n)
            .map(|i| {
                let mut d = [0u8; 16];
                d[..8].copy_from_slice(&(i as u64).to_be_bytes());
                (d, 1)
            })
            .collect()
    };
    let max = vigil_proto::MAX_VERSION_VECTOR;
    let ok = encode_request(&Request::Pull {
        have: vv(max),
        max_bytes: 1 << 20,
    });
    assert!(decode_request(&ok).is_ok());
    for req in [
        Request::Pull {
            have: vv(max + 1),
            max_bytes: 1 << 20,
        },
        Request::PushSnapshot(vigil_proto::SnapshotItem {
            covers: vv(max + 1),
            blob: vec![1, 2, 3],
        }),
    ] {
        let Err(err) = decode_request(&encode_request(&req)) else {
            panic!("a version vector over the bound decoded");
        };
        // postcard keeps no custom message: a malformed frame (the relay's
        // own, lower cap answers TooManyEntries below this bound).
        assert!(matches!(err, CodecError::Malformed(_)), "{err}");
    }
    // A length prefix claiming a million entries with nothing behind it.
    let mut claim = encode_request(&Request::Pull {
        have: vec![],
        max_bytes: 0,
    });
    let at = claim.len() - 2; // the empty list's length (0), then max_bytes (0)
    claim.splice(at..at + 1, [0xC0, 0x84, 0x3D]); // varint 1,000,000
    assert!(decode_request(&claim).is_err());
}
