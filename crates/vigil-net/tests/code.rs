//! Enrolment code string form.

use std::net::SocketAddr;

use vigil_crypto::{VerifyKey, X25519PublicKey};
use vigil_net::{EnrolmentCode, NetError};

fn code(addr: &str) -> EnrolmentCode {
    EnrolmentCode {
        addr: addr.parse().unwrap(),
        node_public: X25519PublicKey::from_bytes([0xab; 32]),
        fingerprint: core::array::from_fn(|i| i as u8),
        receipt_key: VerifyKey::from_bytes([0xef; 32]),
    }
}

#[test]
fn display_and_parse_round_trip() {
    for addr in ["127.0.0.1:4433", "[::1]:9", "[2001:db8::7]:65535"] {
        let c = code(addr);
        let s = c.to_string();
        assert_eq!(s.parse::<EnrolmentCode>().unwrap(), c, "{s}");
    }
    let s = code("[::1]:9").to_string();
    assert_eq!(
        s,
        format!(
            "vigil1/[::1]:9/{}/000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f/{}",
            "ab".repeat(32),
            "ef".repeat(32)
        )
    );
    // Pasted with surrounding whitespace.
    assert_eq!(
        format!("  {s}\n")
            .parse::<EnrolmentCode>()
            .unwrap()
            .to_string(),
        s
    );
}

#[test]
fn malformed_codes_are_rejected_with_a_reason() {
    let good = code("127.0.0.1:4433").to_string();
    let key = "ab".repeat(32);
    let fp = "cd".repeat(32);
    let rk = "ef".repeat(32);
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "5 '/'-separated fields"),
        ("vigil1".into(), "5 '/'-separated fields"),
        (format!("{good}/extra"), "5 '/'-separated fields"),
        (good.replacen("vigil1", "vigil2", 1), "prefix"),
        (
            format!("vigil1/localhost:1/{key}/{fp}/{rk}"),
            "not a socket address",
        ),
        (
            format!("vigil1/127.0.0.1/{key}/{fp}/{rk}"),
            "not a socket address",
        ),
        (
            format!("vigil1/::1:80/{key}/{fp}/{rk}"),
            "not a socket address",
        ),
        (format!("vigil1/127.0.0.1:0/{key}/{fp}/{rk}"), "port 0"),
        (
            format!("vigil1/0.0.0.0:80/{key}/{fp}/{rk}"),
            "not a reachable address",
        ),
        (
            format!("vigil1/[::]:80/{key}/{fp}/{rk}"),
            "not a reachable address",
        ),
        (
            format!("vigil1/127.0.0.1:80/{}/{fp}/{rk}", &key[1..]),
            "64 hex digits",
        ),
        (
            format!("vigil1/127.0.0.1:80/{key}/{fp}00/{rk}"),
            "64 hex digits",
        ),
        (
            format!("vigil1/127.0.0.1:80/{}/{fp}/{rk}", key.to_uppercase()),
            "lowercase hex",
        ),
        (
            format!("vigil1/127.0.0.1:80/{key}/{}g/{rk}", &fp[1..]),
            "lowercase hex",
        ),
        (
            format!("vigil1/127.0.0.1:80/{key}/{}é/{rk}", &fp[2..]),
            "lowercase hex",
        ),
    ];
    for (input, reason) in cases {
        match input.parse::<EnrolmentCode>() {
            Err(NetError::BadEnrolmentCode(msg)) => {
                assert!(msg.contains(reason), "{input:?}: {msg:?} lacks {reason:?}")
            }
            other => panic!("{input:?} gave {other:?}"),
        }
    }
}

#[test]
fn enrolment_code_carries_identity() {
    let dir = tempfile::tempdir().unwrap();
    let id = vigil_net::NodeIdentity::load_or_create(dir.path()).unwrap();
    let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    let c = id.enrolment_code(addr);
    assert_eq!(c.addr, addr);
    assert_eq!(c.fingerprint, id.fingerprint());
    assert_eq!(c.node_public, id.x25519().public_key());
    assert_eq!(c.receipt_key, id.signing().verify_key());
}
