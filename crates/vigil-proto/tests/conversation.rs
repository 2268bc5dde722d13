//! The device ↔ node conversations, driven against a scripted node: the
//! requests each sends, the events it reports, and how it ends on a refusal
//! or a reply out of turn.

use vigil_crypto::{NodeId, X25519PublicKey};
use vigil_proto::{
    AlertEvent, AlertWire, Conversation, DeliverAlerts, DriveError, Exchange, ExchangeError,
    FetchPairing, GiveGrant, GrantAuth, GrantDeletion, GrantWire, OfferPairing, OutgoingAlert,
    PROTOCOL_VERSION, PairingFetched, ProtoError, Registration, Request, RequestShred, Response,
    SyncError, decode_request, drive, encode_response,
};

/// A node that answers each request with the next scripted reply, and
/// remembers what it was asked.
struct Scripted {
    replies: Vec<Response>,
    asked: Vec<Request>,
}

impl Scripted {
    fn new(replies: Vec<Response>) -> Self {
        Scripted {
            replies: replies.into_iter().rev().collect(),
            asked: Vec::new(),
        }
    }

    fn names(&self) -> Vec<&'static str> {
        self.asked
            .iter()
            .map(|r| match r {
                Request::Hello { .. } => "Hello",
                Request::Register { .. } => "Register",
                Request::Auth { .. } => "Auth",
                Request::PairOffer { .. } => "PairOffer",
                Request::PairFetch { .. } => "PairFetch",
                Request::GrantKey => "GrantKey",
                Request::Grant(_) => "Grant",
                Request::Alert(_) => "Alert",
                Request::Shred { .. } => "Shred",
                Request::Enrol { .. } => "Enrol",
                _ => "other",
            })
            .collect()
    }
}

impl Exchange for Scripted {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        self.asked
            .push(decode_request(request).expect("the device sends valid frames"));
        let reply = self
            .replies
            .pop()
            .expect("the device asked more than scripted");
        Ok(encode_response(&reply))
    }

    fn node(&self) -> NodeId {
        scripted_node()
    }
}

/// The scripted node's identity (the machines here never look at it).
fn scripted_node() -> NodeId {
    NodeId::new(X25519PublicKey::from_bytes([0x11; 32]), [0x22; 32])
}

fn hello_ok() -> Response {
    Response::HelloOk {
        version: PROTOCOL_VERSION,
    }
}

fn alert(grant: u8, episode: u8, sent_before: bool) -> OutgoingAlert {
    OutgoingAlert {
        wire: AlertWire {
            grant_id: [grant; 16],
            episode: [episode; 16],
            kind: 1,
            blob: vec![episode; 40],
        },
        sent_before,
    }
}

fn wire(grant: u8, key: [u8; 32]) -> GrantWire {
    GrantWire {
        grant_id: [grant; 16],
        grant_key: key,
        wrapped_key: vec![0; 82],
        threshold_c: 37.3,
        confirm_count: 2,
        confirm_window_ms: 600_000,
        recovery_ms: 3_600_000,
        valid_from_ms: 0,
        valid_until_ms: 1,
        label: "Ana".into(),
    }
}

/// Runs `conv`, collecting its events; the grant wire is handed back on
/// `GrantKey` by `on_key`.
fn run<C: Conversation<Event = AlertEvent>>(
    conv: &mut C,
    node: &mut Scripted,
    mut on_key: impl FnMut(&mut C, [u8; 16], [u8; 32]),
) -> (Result<(), DriveError>, Vec<AlertEvent>) {
    let mut events = Vec::new();
    let r = drive(conv, node, |c| -> Result<(), DriveError> {
        while let Some(ev) = c.poll_event() {
            if let AlertEvent::GrantKey { grant_id, public } = &ev {
                on_key(c, *grant_id, *public);
            }
            events.push(ev);
        }
        Ok(())
    });
    (r, events)
}

#[test]
fn a_grant_is_sent_with_the_key_the_node_issued() {
    let mut node = Scripted::new(vec![
        hello_ok(),
        Response::Ok,
        Response::GrantKey { public: [9; 32] },
        Response::Ok,
    ]);
    let mut conv = GiveGrant::new([1; 16], GrantAuth::mailbox([4; 16], &[5; 32]));
    let (r, events) = run(&mut conv, &mut node, |c, g, public| {
        assert_eq!(g, [1; 16]);
        c.grant(wire(1, public));
    });
    r.unwrap();
    assert!(conv.is_done());
    assert_eq!(node.names(), ["Hello", "Auth", "GrantKey", "Grant"]);
    assert_eq!(
        node.asked[1],
        Request::Auth {
            vault: [4; 16],
            key: [5; 32]
        }
    );
    let Request::Grant(sent) = &node.asked[3] else {
        unreachable!()
    };
    assert_eq!(sent.grant_key, [9; 32], "wrapped to the issued key");
    assert_eq!(
        events.last(),
        Some(&AlertEvent::Granted { grant_id: [1; 16] })
    );
}

#[test]
fn a_first_enrolment_redeems_the_ticket_and_learns_the_staff_label_first() {
    let mut node = Scripted::new(vec![
        hello_ok(),
        Response::Enrolled {
            label: "Ana, flat 12B".into(),
            period_end_ms: 99,
        },
        Response::Ok,
        Response::GrantKey { public: [9; 32] },
        Response::Ok,
    ]);
    let ticket = vigil_proto::Ticket {
        id: [2; 16],
        secret: vigil_proto::TicketSecret::from_bytes([3; 32]),
    };
    let register = Registration {
        verifier: [6; 32],
        expires_ms: 500,
    };
    let auth = GrantAuth::ticket([4; 16], &[5; 32], &ticket, register);
    assert!(
        !format!("{auth:?}").contains("3, 3, 3"),
        "the secret is not printed"
    );
    let mut conv = GiveGrant::new([1; 16], auth);
    let (r, events) = run(&mut conv, &mut node, |c, _, public| {
        c.grant(wire(1, public))
    });
    r.unwrap();
    assert_eq!(
        node.names(),
        ["Hello", "Enrol", "Auth", "GrantKey", "Grant"]
    );
    assert_eq!(
        node.asked[1],
        Request::Enrol {
            ticket: [2; 16],
            secret: [3; 32],
            vault: [4; 16],
            verifier: [6; 32],
            expires_ms: 500
        }
    );
    // The caller records the staff label before the grant key arrives.
    assert_eq!(
        events[0],
        AlertEvent::Enrolled {
            label: "Ana, flat 12B".into(),
            period_end_ms: 99
        }
    );
    assert!(matches!(events[1], AlertEvent::GrantKey { .. }));
}

#[test]
fn a_refused_grant_ends_the_conversation_with_the_refusal() {
    let mut node = Scripted::new(vec![
        hello_ok(),
        Response::Ok,
        Response::Error(ProtoError::BadGrant),
    ]);
    let mut conv = GiveGrant::new([1; 16], GrantAuth::mailbox([4; 16], &[5; 32]));
    let (r, _) = run(&mut conv, &mut node, |_, _, _| unreachable!());
    assert!(matches!(
        r,
        Err(DriveError::Protocol(SyncError::Refused(
            ProtoError::BadGrant
        )))
    ));
    assert!(!conv.is_done());
    assert!(conv.poll_request().is_none(), "nothing more is sent");
}

#[test]
fn alerts_say_before_they_leave_and_are_regranted_once_per_grant() {
    // Alert 0 (never sent) is acked; alert 1 (sent before) meets a node that
    // lost the grant: the grant goes again, then the alert; alert 2, same
    // grant, is refused UnknownGrant again and stays pending, no second grant.
    let mut node = Scripted::new(vec![
        hello_ok(),
        Response::AlertAck { stored: true },
        Response::Error(ProtoError::UnknownGrant),
        Response::Ok,
        Response::GrantKey { public: [7; 32] },
        Response::Ok,
        Response::AlertAck { stored: true },
        Response::Error(ProtoError::UnknownGrant),
    ]);
    let mut conv = DeliverAlerts::new(
        vec![alert(1, 1, false), alert(1, 2, true), alert(1, 3, false)],
        [4; 16],
        &[5; 32],
    );
    let (r, events) = run(&mut conv, &mut node, |c, g, public| {
        c.grant(wire(g[0], public))
    });
    r.unwrap();
    assert_eq!(
        node.names(),
        [
            "Hello", "Alert", "Alert", "Auth", "GrantKey", "Grant", "Alert", "Alert"
        ]
    );
    assert_eq!(
        events[0],
        AlertEvent::Sending(0),
        "disclosed before anything is sent"
    );
    assert!(events.contains(&AlertEvent::Delivered(0)));
    assert!(
        !events.contains(&AlertEvent::Sending(1)),
        "alert 1 left in an earlier sync"
    );
    assert!(events.contains(&AlertEvent::Delivered(1)));
    let sending_2 = events
        .iter()
        .position(|e| *e == AlertEvent::Sending(2))
        .unwrap();
    let delivered_1 = events
        .iter()
        .position(|e| *e == AlertEvent::Delivered(1))
        .unwrap();
    assert!(sending_2 > delivered_1, "announced only when it is next");
    assert!(events.contains(&AlertEvent::Refused(2, ProtoError::UnknownGrant)));
}

#[test]
fn no_alert_means_no_request() {
    let mut node = Scripted::new(vec![]);
    let mut conv = DeliverAlerts::new(vec![], [4; 16], &[5; 32]);
    let (r, events) = run(&mut conv, &mut node, |_, _, _| unreachable!());
    r.unwrap();
    assert!(node.asked.is_empty() && events.is_empty());
}

#[test]
fn a_reply_out_of_turn_is_an_error_not_a_delivery() {
    let mut node = Scripted::new(vec![hello_ok(), Response::UpToDate]);
    let mut conv = DeliverAlerts::new(vec![alert(1, 1, true)], [4; 16], &[5; 32]);
    let (r, events) = run(&mut conv, &mut node, |_, _, _| unreachable!());
    assert!(matches!(
        r,
        Err(DriveError::Protocol(SyncError::Unexpected(_)))
    ));
    assert!(!events.iter().any(|e| matches!(e, AlertEvent::Delivered(_))));
}

#[test]
fn a_pairing_fetch_tells_an_empty_slot_from_an_offer() {
    let slot = vigil_proto::pairing_slot(&[3; 32]);
    for (reply, want) in [
        (
            Response::PairOffer {
                wrapped: vec![5; 90],
            },
            PairingFetched::Offer(vec![5; 90]),
        ),
        (
            Response::Error(ProtoError::NotFound),
            PairingFetched::NoOffer,
        ),
    ] {
        let mut node = Scripted::new(vec![hello_ok(), reply]);
        let mut conv = FetchPairing::new(slot);
        let mut got = Vec::new();
        drive(&mut conv, &mut node, |c| -> Result<(), DriveError> {
            got.extend(std::iter::from_fn(|| c.poll_event()));
            Ok(())
        })
        .unwrap();
        assert_eq!(got, [want]);
        assert!(matches!(node.asked[1], Request::PairFetch { slot: s } if s == slot));
    }
    // Any other refusal is an error, not "no offer".
    let mut node = Scripted::new(vec![hello_ok(), Response::Error(ProtoError::HelloFirst)]);
    let r = drive(&mut FetchPairing::new(slot), &mut node, |_| {
        Ok::<(), DriveError>(())
    });
    assert!(matches!(
        r,
        Err(DriveError::Protocol(SyncError::Refused(
            ProtoError::HelloFirst
        )))
    ));
}

/// The same offer, whichever node answers it.
fn offer() -> OfferPairing {
    OfferPairing::new(
        [1; 16],
        &[2; 32],
        Registration {
            verifier: [3; 32],
            expires_ms: 10,
        },
        [4; 32],
        vec![5; 100],
    )
}

#[test]
fn a_pairing_offer_registers_authenticates_then_offers() {
    let mut node = Scripted::new(vec![hello_ok(), Response::Ok, Response::Ok, Response::Ok]);
    let mut conv = offer();
    drive(&mut conv, &mut node, |_| Ok::<(), DriveError>(())).unwrap();
    assert!(conv.is_done());
    assert_eq!(node.names(), ["Hello", "Register", "Auth", "PairOffer"]);
    // A node that refuses the mailbox key gets no offer.
    let mut node = Scripted::new(vec![
        hello_ok(),
        Response::Ok,
        Response::Error(ProtoError::Unauthorized),
    ]);
    let mut conv = offer();
    assert!(drive(&mut conv, &mut node, |_| Ok::<(), DriveError>(())).is_err());
    assert!(!conv.is_done());
    assert_eq!(node.names(), ["Hello", "Register", "Auth"]);
}

#[test]
fn a_shred_request_returns_the_receipt_or_fails() {
    let mut node = Scripted::new(vec![hello_ok(), Response::Receipt(vec![8; 64])]);
    let mut conv = RequestShred::new(
        [1; 16],
        &[2; 32],
        vec![GrantDeletion {
            grant_id: [3; 16],
            proof: [5; 32],
        }],
        vec![4],
    );
    drive(&mut conv, &mut node, |_| Ok::<(), DriveError>(())).unwrap();
    assert_eq!(conv.into_receipt(), Some(vec![8; 64]));
    let mut node = Scripted::new(vec![hello_ok(), Response::Error(ProtoError::NoReceipts)]);
    let mut conv = RequestShred::new([1; 16], &[2; 32], vec![], vec![]);
    assert!(drive(&mut conv, &mut node, |_| Ok::<(), DriveError>(())).is_err());
    assert_eq!(conv.into_receipt(), None);
}

#[test]
fn a_transport_failure_stops_the_drive() {
    struct Down;
    impl Exchange for Down {
        fn exchange(&mut self, _: &[u8]) -> Result<Vec<u8>, ExchangeError> {
            Err(ExchangeError::NotConnected)
        }

        fn node(&self) -> NodeId {
            scripted_node()
        }
    }
    let r = drive(
        &mut GiveGrant::new([1; 16], GrantAuth::mailbox([4; 16], &[5; 32])),
        &mut Down,
        |_| Ok::<(), DriveError>(()),
    );
    assert!(matches!(r, Err(DriveError::Transport(_))));
}

fn status_question(grant: u8, n: u8) -> vigil_proto::AlertStatusQuery {
    vigil_proto::AlertStatusQuery {
        grant_id: [grant; 16],
        proof: [grant ^ 0xff; 32],
        alerts: (0..n).map(|e| ([e; 16], 1)).collect(),
    }
}

/// Staff acknowledgement (issue 18): one `AlertStatus` per question after
/// `Hello`; a refusal (an older node's `Malformed`, `UnknownGrant`) is an
/// event and the next question is still asked; a reply of another kind
/// ends the conversation as an error, never as an answer.
#[test]
fn alert_status_questions_go_on_past_a_refusal_and_stop_at_a_wrong_reply() {
    use vigil_proto::{AlertState, AlertStatusEvent, QueryAlertStatus};
    let state = AlertState {
        episode: [0; 16],
        kind: 1,
        stored: true,
        acked_ms: Some(7),
    };
    let mut node = Scripted::new(vec![
        hello_ok(),
        Response::Error(ProtoError::Malformed("unknown variant".into())),
        Response::AlertStatus(vec![state]),
    ]);
    let mut conv = QueryAlertStatus::new(vec![status_question(1, 2), status_question(2, 1)]);
    let mut events = Vec::new();
    drive(&mut conv, &mut node, |c| {
        while let Some(e) = c.poll_event() {
            events.push(e);
        }
        Ok::<(), DriveError>(())
    })
    .unwrap();
    assert_eq!(node.names(), vec!["Hello", "other", "other"]);
    assert!(matches!(&node.asked[2], Request::AlertStatus(q) if q.grant_id == [2; 16]));
    assert_eq!(
        events,
        vec![
            AlertStatusEvent::Refused(0, ProtoError::Malformed("unknown variant".into())),
            AlertStatusEvent::Answered(1, vec![state]),
        ]
    );

    // A reply of another kind: an error, no answer reported.
    let mut node = Scripted::new(vec![hello_ok(), Response::Ok]);
    let mut conv = QueryAlertStatus::new(vec![status_question(1, 1), status_question(2, 1)]);
    let r = drive(&mut conv, &mut node, |c| {
        assert!(c.poll_event().is_none());
        Ok::<(), DriveError>(())
    });
    assert!(
        matches!(r, Err(DriveError::Protocol(SyncError::Unexpected(_)))),
        "{r:?}"
    );
    assert_eq!(node.asked.len(), 2, "nothing asked after the wrong reply");

    // Nothing to ask: no request at all, not even Hello.
    let mut node = Scripted::new(vec![]);
    drive(&mut QueryAlertStatus::new(vec![]), &mut node, |_| {
        Ok::<(), DriveError>(())
    })
    .unwrap();
    assert!(node.asked.is_empty());
}
