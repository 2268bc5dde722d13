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

#[test]
fn a_ticket_code_round_trips_and_refuses_a_node_code() {
    use vigil_net::TicketCode;
    let t = TicketCode {
        node: code("127.0.0.1:4433"),
        ticket: vigil_proto::Ticket {
            id: [0x11; 16],
            secret: vigil_proto::TicketSecret::from_bytes([0x22; 32]),
        },
    };
    let s = t.to_string();
    assert!(s.starts_with("vigil-ticket1/127.0.0.1:4433/"), "{s}");
    assert!(s.ends_with(&format!("/{}/{}", "11".repeat(16), "22".repeat(32))));
    assert_eq!(format!(" {s}\n").parse::<TicketCode>().unwrap(), t);
    assert!(
        !format!("{t:?}").contains(&"22".repeat(32)),
        "Debug hides the secret"
    );
    let e = code("127.0.0.1:4433")
        .to_string()
        .parse::<TicketCode>()
        .unwrap_err();
    assert!(e.to_string().contains("not a ticket"), "{e}");
    for (bad, needle) in [
        (
            s.replace(&"22".repeat(32), &"22".repeat(31)),
            "ticket secret",
        ),
        (s.replace(&"11".repeat(16), &"1".repeat(31)), "ticket id"),
        (s.replace(&"11".repeat(16), &"AB".repeat(16)), "ticket id"),
        (format!("{s}/x"), "7 '/'-separated fields"),
        (
            s.replace("127.0.0.1:4433", "nowhere"),
            "not a socket address",
        ),
    ] {
        let e = bad.parse::<TicketCode>().unwrap_err().to_string();
        assert!(e.contains(needle), "{bad}: {e}");
    }
}
