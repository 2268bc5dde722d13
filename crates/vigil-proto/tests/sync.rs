//! The device-side state machine, driven by hand with scripted replies.

use vigil_proto::{
    BundleItem, DeviceSync, ProtoError, Registration, Request, Response, SyncConfig, SyncError,
    SyncEvent, decode_request, encode_response,
};

fn config() -> SyncConfig {
    SyncConfig {
        vault: [1; 16],
        mailbox_key: [2; 32],
        register: Some(Registration {
            verifier: [3; 32],
            expires_ms: 9,
        }),
        pull_max_bytes: 1000,
    }
}

fn step(s: &mut DeviceSync, reply: Response) -> Request {
    let req = decode_request(&s.poll_request().expect("a request")).unwrap();
    s.handle_response(&encode_response(&reply)).unwrap();
    req
}

fn b(device: u8, seq: u64) -> BundleItem {
    BundleItem {
        device: [device; 16],
        seq,
        blob: vec![device; 10],
    }
}

#[test]
fn full_session_in_order() {
    let mut s = DeviceSync::new(config(), vec![([9; 16], 4)], vec![b(9, 5)]);
    assert!(matches!(
        step(&mut s, Response::HelloOk { version: 1 }),
        Request::Hello { .. }
    ));
    assert!(matches!(
        step(&mut s, Response::Ok),
        Request::Register { .. }
    ));
    assert!(matches!(step(&mut s, Response::Ok), Request::Auth { .. }));
    assert!(matches!(
        step(
            &mut s,
            Response::Ack {
                device: [9; 16],
                seq: 5
            }
        ),
        Request::Push(_)
    ));
    assert_eq!(s.poll_event(), Some(SyncEvent::Acked { seq: 5 }));
    // Bundles: A1 A2 A3, a replay of ours (9,3), a gap (B2 without B1), then C1.
    let req = step(
        &mut s,
        Response::Bundles {
            snapshot: None,
            bundles: vec![
                b(0xa, 1),
                b(0xa, 2),
                b(0xa, 3),
                b(9, 3),
                b(0xb, 2),
                b(0xc, 1),
            ],
            more: false,
        },
    );
    let Request::Pull { have, .. } = req else {
        panic!("{req:?}")
    };
    assert_eq!(have, vec![([9; 16], 5)]);
    assert_eq!(s.poll_event(), Some(SyncEvent::Bundle(b(0xa, 1))));
    // A1 does not open: A2 and A3 are dropped too, and the vector stays at 0.
    s.reject([0xa; 16], 1);
    assert_eq!(s.poll_event(), Some(SyncEvent::Bundle(b(0xc, 1))));
    assert_eq!(s.poll_event(), Some(SyncEvent::PullDone));
    assert_eq!(s.have(), vec![([9; 16], 5), ([0xa; 16], 0), ([0xc; 16], 1)]);
    assert_eq!(s.poll_event(), None);
    assert!(s.is_done());
    assert_eq!(s.poll_request(), None);
}

#[test]
fn refusals_and_out_of_turn_replies_end_the_session() {
    let mut s = DeviceSync::new(config(), vec![], vec![]);
    s.poll_request().unwrap();
    s.handle_response(&encode_response(&Response::HelloOk { version: 1 }))
        .unwrap();
    s.poll_request().unwrap();
    let err = s
        .handle_response(&encode_response(&Response::Error(
            ProtoError::AlreadyRegistered,
        )))
        .unwrap_err();
    assert_eq!(err, SyncError::Refused(ProtoError::AlreadyRegistered));
    assert_eq!(s.poll_request(), None);

    let mut s = DeviceSync::new(config(), vec![], vec![]);
    s.poll_request().unwrap();
    assert!(matches!(
        s.handle_response(&encode_response(&Response::UpToDate)),
        Err(SyncError::Unexpected(_))
    ));
    let mut s = DeviceSync::new(config(), vec![], vec![]);
    assert!(
        s.handle_response(&[1, 2, 3]).is_err(),
        "a reply with no request"
    );
    assert_eq!(s.poll_request(), None, "the session is over");
    let mut s = DeviceSync::new(config(), vec![], vec![]);
    s.poll_request().unwrap();
    assert!(matches!(
        s.handle_response(&[0xff, 0xff]),
        Err(SyncError::Codec(_))
    ));
}
