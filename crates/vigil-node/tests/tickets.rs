//! Ticketed enrolment (docs/spec.md §15), played by the attacker: a
//! stranger without a ticket, a second vault with a used ticket, an expired
//! or revoked ticket, a device naming itself, a label built to mislead.

use vigil_crypto::rand_core::SeedableRng;
use vigil_crypto::{AlertKey, KeySchedule, RootKey, X25519PublicKey, wrap};
use vigil_node::{Node, NodeConfig, Relay, RelayConfig, TicketError, TicketState};
use vigil_proto::alert::{ALERT_START, AlertPayload, grant_id, seal_alert};
use vigil_proto::{
    AlertWire, FrameHandler, GrantWire, PROTOCOL_VERSION, ProtoError, Request, Response, Ticket,
    decode_response, encode_request,
};

const HOUR: i64 = 3_600_000;
const NOW: i64 = 1_000;
const END: i64 = 100 * HOUR;

/// The node the vaults here talk to (mailbox keys are per node).
fn this_node() -> vigil_crypto::NodeId {
    vigil_crypto::NodeId::new(X25519PublicKey::from_bytes([0x4e; 32]), [0xce; 32])
}

fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::seed_from_u64(seed)
}

struct Client {
    s: vigil_node::RelaySession,
    now: i64,
}

impl Client {
    fn new(relay: &Relay) -> Client {
        let mut c = Client {
            s: relay.session(),
            now: NOW,
        };
        c.hello();
        c
    }
    fn hello(&mut self) {
        assert_eq!(
            self.call(Request::Hello {
                version: PROTOCOL_VERSION
            }),
            Response::HelloOk {
                version: PROTOCOL_VERSION
            }
        );
    }
    fn call(&mut self, r: Request) -> Response {
        decode_response(&self.s.handle(&encode_request(&r), self.now)).unwrap()
    }
    fn enrol(&mut self, keys: &KeySchedule, t: &Ticket) -> Response {
        self.call(Request::Enrol {
            ticket: t.id,
            secret: *t.secret.expose_secret(),
            vault: *keys.vault_id().as_bytes(),
            verifier: keys.mailbox_key(&this_node()).verifier().to_bytes(),
            expires_ms: END,
        })
    }
    fn register(&mut self, keys: &KeySchedule) -> Response {
        self.call(Request::Register {
            vault: *keys.vault_id().as_bytes(),
            verifier: keys.mailbox_key(&this_node()).verifier().to_bytes(),
            expires_ms: END,
        })
    }
    fn auth(&mut self, keys: &KeySchedule) -> Response {
        self.call(Request::Auth {
            vault: *keys.vault_id().as_bytes(),
            key: *keys.mailbox_key(&this_node()).expose_secret(),
        })
    }
    /// `GrantKey` then `Grant` of `alert_key` with `label`; the last reply.
    fn grant(&mut self, alert_key: &AlertKey, label: &str) -> Response {
        let public = match self.call(Request::GrantKey) {
            Response::GrantKey { public } => public,
            other => return other,
        };
        self.call(Request::Grant(grant_wire(alert_key, public, label)))
    }
}

fn grant_wire(alert_key: &AlertKey, public: [u8; 32], label: &str) -> GrantWire {
    let wrapped = wrap(&X25519PublicKey::from_bytes(public), alert_key, &mut rng(1)).unwrap();
    GrantWire {
        grant_id: grant_id(alert_key),
        grant_key: public,
        wrapped_key: wrapped.as_bytes().to_vec(),
        threshold_c: 38.0,
        confirm_count: 2,
        confirm_window_ms: HOUR,
        recovery_ms: HOUR,
        valid_from_ms: 0,
        valid_until_ms: END,
        label: label.into(),
    }
}

fn alert(alert_key: &AlertKey, episode: u8, onset_ms: i64) -> Request {
    let grant = grant_id(alert_key);
    let payload = AlertPayload {
        onset_ms,
        level: 3,
        kind: ALERT_START,
    };
    Request::Alert(AlertWire {
        grant_id: grant,
        episode: [episode; 16],
        kind: ALERT_START,
        blob: seal_alert(alert_key, &grant, &[episode; 16], &payload, &mut rng(2)).unwrap(),
    })
}

fn node(dir: &std::path::Path, relay: RelayConfig) -> Node {
    let config = NodeConfig {
        relay,
        grant_key_seed: Some([6; 32]),
    };
    Node::open(dir, &config).unwrap()
}

fn keys(b: u8) -> KeySchedule {
    KeySchedule::new(RootKey::from_bytes([b; 32]))
}

fn key_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join(vigil_node::GRANT_KEYS_DIR))
        .unwrap()
        .count()
}

#[test]
fn a_stranger_without_a_ticket_can_register_no_vault_and_give_no_grant() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node(tmp.path(), RelayConfig::default());
    let relay = node.relay();
    let real = relay
        .issue_ticket("Ana, flat 12B", END, NOW, &mut rng(3))
        .unwrap();
    let mallory = keys(66);
    let mut c = Client::new(relay);
    let err = |e| Response::Error(e);
    // A new vault's mailbox needs a ticket.
    assert_eq!(c.register(&mallory), err(ProtoError::TicketRequired));
    assert!(relay.store().vaults().unwrap().is_empty());
    // Nor does a made-up ticket, or the real id with a guessed secret,
    // and both read alike: the id says nothing.
    let made_up = Ticket {
        id: [9; 16],
        secret: vigil_proto::TicketSecret::from_bytes([9; 32]),
    };
    assert_eq!(c.enrol(&mallory, &made_up), err(ProtoError::TicketUnknown));
    let guessed = Ticket {
        id: real.ticket.id,
        secret: vigil_proto::TicketSecret::from_bytes([9; 32]),
    };
    assert_eq!(c.enrol(&mallory, &guessed), err(ProtoError::TicketUnknown));
    assert!(relay.store().vaults().unwrap().is_empty());
    // No one-time key file and no grant without an enrolled vault.
    assert_eq!(c.call(Request::GrantKey), err(ProtoError::NotAuthenticated));
    assert_eq!(key_files(tmp.path()), 0);
    let fake = AlertKey::from_bytes([7; 32]);
    assert_eq!(
        c.call(Request::Grant(grant_wire(&fake, [1; 32], "Ana, flat 12B"))),
        err(ProtoError::NotAuthenticated)
    );
    assert!(relay.grants().unwrap().is_empty());
    // The ticket is still unused: the real resident enrols with it.
    let ana = keys(1);
    let mut c = Client::new(relay);
    assert!(matches!(
        c.enrol(&ana, &real.ticket),
        Response::Enrolled { .. }
    ));
}

#[test]
fn a_used_ticket_enrols_no_second_vault() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node(tmp.path(), RelayConfig::default());
    let relay = node.relay();
    let t = relay
        .issue_ticket("Ana, flat 12B", END, NOW, &mut rng(3))
        .unwrap();
    let (ana, mallory) = (keys(1), keys(66));
    let mut c = Client::new(relay);
    let enrolled = Response::Enrolled {
        label: "Ana, flat 12B".into(),
        period_end_ms: END,
    };
    assert_eq!(c.enrol(&ana, &t.ticket), enrolled);
    // A copy of the ticket in another vault's hands.
    let mut m = Client::new(relay);
    assert_eq!(
        m.enrol(&mallory, &t.ticket),
        Response::Error(ProtoError::TicketUsed)
    );
    assert!(
        relay
            .store()
            .mailbox(mallory.vault_id().as_bytes())
            .unwrap()
            .is_none()
    );
    // The same vault again (a retry, or Ana's tablet) gets the same answer,
    // and her paired devices get in with the mailbox key as before.
    let mut tablet = Client::new(relay);
    assert_eq!(tablet.enrol(&ana, &t.ticket), enrolled);
    assert_eq!(tablet.register(&ana), Response::Ok);
    assert_eq!(tablet.auth(&ana), Response::Ok);
    // An enrolled vault presenting a second ticket is refused too: one
    // vault, one ticket.
    let t2 = relay
        .issue_ticket("Ana again", END, NOW, &mut rng(4))
        .unwrap();
    assert_eq!(
        tablet.enrol(&ana, &t2.ticket),
        Response::Error(ProtoError::AlreadyEnrolled)
    );
    let states: Vec<_> = relay
        .tickets()
        .unwrap()
        .into_iter()
        .map(|t| t.status(NOW))
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "unused").count(), 1);
}

#[test]
fn expired_and_revoked_tickets_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node(tmp.path(), RelayConfig::default());
    let relay = node.relay();
    let short = relay.issue_ticket("Bo", 5_000, NOW, &mut rng(3)).unwrap();
    let revoked = relay.issue_ticket("Cy", END, NOW, &mut rng(4)).unwrap();
    assert!(
        !relay
            .revoke_ticket(&revoked.ticket.id, 2_000)
            .unwrap()
            .unwrap()
            .already
    );
    let mut c = Client::new(relay);
    c.now = 5_000;
    assert_eq!(
        c.enrol(&keys(1), &short.ticket),
        Response::Error(ProtoError::TicketExpired)
    );
    assert_eq!(
        c.enrol(&keys(2), &revoked.ticket),
        Response::Error(ProtoError::TicketRevoked)
    );
    assert!(relay.store().vaults().unwrap().is_empty());
    // The unused, expired ticket goes at the next sweep; the revoked one at
    // its period's end (it names a resident).
    assert_eq!(relay.sweep(5_000, 0).unwrap().tickets, 1);
    assert_eq!(relay.tickets().unwrap().len(), 1);
    assert_eq!(relay.store().unused_tickets().unwrap(), 0);
}

#[test]
fn staff_see_the_label_they_typed_whatever_the_device_sends() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node(tmp.path(), RelayConfig::default());
    let relay = node.relay();
    let t = relay
        .issue_ticket("Ana, flat 12B", 10 * HOUR, NOW, &mut rng(3))
        .unwrap();
    let ana = keys(1);
    let k = AlertKey::from_bytes([3; 32]);
    let mut c = Client::new(relay);
    assert!(matches!(
        c.enrol(&ana, &t.ticket),
        Response::Enrolled { .. }
    ));
    assert_eq!(c.auth(&ana), Response::Ok);
    assert_eq!(c.grant(&k, "Dr. Smith: evacuate flat 3"), Response::Ok);
    assert_eq!(
        c.call(alert(&k, 1, 2 * HOUR)),
        Response::AlertAck { stored: true }
    );
    let g = &relay.grants().unwrap()[0];
    assert_eq!(g.grant.label, "Ana, flat 12B");
    assert_eq!(
        g.grant.valid_until_ms,
        10 * HOUR,
        "capped at the ticket's period"
    );
    assert_eq!(relay.inbox().unwrap()[0].label, "Ana, flat 12B");
    assert_eq!(
        relay
            .store()
            .mailbox(ana.vault_id().as_bytes())
            .unwrap()
            .unwrap()
            .expires_ms,
        10 * HOUR
    );
    // One ticket, one grant: a second alert key from the same vault would
    // be a second "Ana" in the inbox.
    let other = AlertKey::from_bytes([4; 32]);
    assert_eq!(
        c.grant(&other, "x"),
        Response::Error(ProtoError::TicketUsed)
    );
    assert_eq!(relay.grants().unwrap().len(), 1);
    // The same grant again (a paired device) is taken.
    assert_eq!(c.grant(&k, "x"), Response::Ok);
}

#[test]
fn labels_with_bidi_or_zero_width_characters_are_cleaned_or_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node(tmp.path(), RelayConfig::default());
    let relay = node.relay();
    let t = relay
        .issue_ticket(
            "Ana,\u{200B} flat \u{202E}B21\u{202C}",
            END,
            NOW,
            &mut rng(3),
        )
        .unwrap();
    assert_eq!(t.label, "Ana, flat B21");
    assert_eq!(relay.tickets().unwrap()[0].label, "Ana, flat B21");
    for bad in ["\u{202E}\u{200B} \u{2066}", ""] {
        assert!(matches!(
            relay.issue_ticket(bad, END, NOW, &mut rng(4)),
            Err(TicketError::Label(vigil_node::LabelError::Empty))
        ));
    }
    assert!(matches!(
        relay.issue_ticket(&"x".repeat(81), END, NOW, &mut rng(4)),
        Err(TicketError::Label(vigil_node::LabelError::TooLong { .. }))
    ));
    assert!(matches!(
        relay.issue_ticket("Ana", NOW, NOW, &mut rng(4)),
        Err(TicketError::PeriodOver)
    ));
    assert_eq!(relay.tickets().unwrap().len(), 1);
}

#[test]
fn revoking_a_resident_ends_the_grant() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node(tmp.path(), RelayConfig::default());
    let relay = node.relay();
    let t = relay
        .issue_ticket("Ana, flat 12B", END, NOW, &mut rng(3))
        .unwrap();
    let ana = keys(1);
    let k = AlertKey::from_bytes([3; 32]);
    let mut c = Client::new(relay);
    c.enrol(&ana, &t.ticket);
    c.auth(&ana);
    assert_eq!(c.grant(&k, ""), Response::Ok);
    assert_eq!(
        c.call(alert(&k, 1, HOUR)),
        Response::AlertAck { stored: true }
    );
    assert_eq!(key_files(tmp.path()), 1);

    let r = relay.revoke_ticket(&t.ticket.id, 2_000).unwrap().unwrap();
    assert_eq!((r.deleted.grants, r.kept_alerts), (1, 1));
    assert!(matches!(r.ticket.state, TicketState::Revoked { .. }));
    assert!(relay.grants().unwrap().is_empty());
    assert_eq!(key_files(tmp.path()), 0, "the one-time key is destroyed");
    // The fever staff have not seen stays until they do.
    assert_eq!(relay.inbox().unwrap().len(), 1);
    // Alerts under the grant are refused, and the vault cannot give it again.
    assert_eq!(
        c.call(alert(&k, 2, 2 * HOUR)),
        Response::Error(ProtoError::UnknownGrant)
    );
    let mut tablet = Client::new(relay);
    assert_eq!(tablet.register(&ana), Response::Ok);
    assert_eq!(tablet.auth(&ana), Response::Ok);
    assert_eq!(
        tablet.call(Request::GrantKey),
        Response::Error(ProtoError::TicketRevoked)
    );
    assert_eq!(
        tablet.call(Request::Grant(grant_wire(&k, [1; 32], ""))),
        Response::Error(ProtoError::TicketRevoked)
    );
    assert_eq!(
        tablet.enrol(&ana, &t.ticket),
        Response::Error(ProtoError::TicketRevoked)
    );
    assert_eq!(relay.inbox().unwrap().len(), 1);
    assert!(
        relay
            .revoke_ticket(&t.ticket.id, 3_000)
            .unwrap()
            .unwrap()
            .already
    );
    assert!(relay.revoke_ticket(&[0; 16], 3_000).unwrap().is_none());
}

#[test]
fn outstanding_tickets_are_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let config = RelayConfig {
        max_tickets: 2,
        ..RelayConfig::default()
    };
    let node = node(tmp.path(), config);
    let relay = node.relay();
    let a = relay.issue_ticket("A", END, NOW, &mut rng(1)).unwrap();
    relay.issue_ticket("B", END, NOW, &mut rng(2)).unwrap();
    assert!(matches!(
        relay.issue_ticket("C", END, NOW, &mut rng(3)),
        Err(TicketError::TooMany { limit: 2 })
    ));
    // A redeemed ticket is no longer outstanding.
    Client::new(relay).enrol(&keys(1), &a.ticket);
    relay.issue_ticket("C", END, NOW, &mut rng(3)).unwrap();
    // The count survives a restart.
    drop(node);
    let node = self::node(tmp.path(), config);
    assert!(matches!(
        node.relay().issue_ticket("D", END, NOW, &mut rng(4)),
        Err(TicketError::TooMany { limit: 2 })
    ));
}

#[test]
fn the_node_keeps_no_ticket_secret_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let t = {
        let node = node(tmp.path(), RelayConfig::default());
        let t = node
            .relay()
            .issue_ticket("Ana", END, NOW, &mut rng(3))
            .unwrap();
        Client::new(node.relay()).enrol(&keys(1), &t.ticket);
        t
    };
    let secret = t.ticket.secret.expose_secret();
    let mut stack = vec![tmp.path().to_owned()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                let b = std::fs::read(e.path()).unwrap();
                assert!(
                    !b.windows(32).any(|w| w == secret),
                    "{} holds the ticket secret",
                    e.path().display()
                );
            }
        }
    }
}

/// A resident shreds from the phone while the tablet's session, which
/// authenticated before, stays open: the tablet can no longer take a grant
/// key or give the grant again, so monitoring the resident ended stays
/// ended (found by the fuzz model: a grant only while its vault's mailbox
/// exists).
#[test]
fn a_session_open_across_a_shred_gives_no_grant_again() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node(tmp.path(), RelayConfig::default())
        .with_receipts(&vigil_crypto::SigningIdentity::from_bytes([5; 32]));
    let relay = node.relay();
    let t = relay
        .issue_ticket("Ana, flat 12B", END, NOW, &mut rng(3))
        .unwrap();
    let ana = keys(1);
    let mut phone = Client::new(relay);
    assert!(matches!(
        phone.enrol(&ana, &t.ticket),
        Response::Enrolled { .. }
    ));
    assert_eq!(phone.auth(&ana), Response::Ok);
    let mut tablet = Client::new(relay);
    assert_eq!(tablet.auth(&ana), Response::Ok);
    let Response::GrantKey { public } = phone.call(Request::GrantKey) else {
        panic!("no grant key");
    };
    let alert_key = ana.alert_key(&X25519PublicKey::from_bytes(public));
    let gid = grant_id(&alert_key);
    assert_eq!(
        phone.call(Request::Grant(grant_wire(&alert_key, public, "Ana"))),
        Response::Ok
    );
    let Response::Receipt(_) = phone.call(Request::Shred {
        vault: *ana.vault_id().as_bytes(),
        key: *ana.mailbox_key(&this_node()).expose_secret(),
        grants: vec![vigil_proto::GrantDeletion {
            grant_id: gid,
            proof: alert_key.shred_proof(&ana.vault_id(), &gid),
        }],
        notice: b"sealed notice".to_vec(),
    }) else {
        panic!("no receipt");
    };
    assert!(relay.grants().unwrap().is_empty());
    let files = key_files(tmp.path());
    let shredded = Response::Error(ProtoError::VaultShredded {
        notice: b"sealed notice".to_vec(),
    });
    assert_eq!(tablet.call(Request::GrantKey), shredded);
    assert_eq!(
        key_files(tmp.path()),
        files,
        "a key file for a shredded vault"
    );
    // Nor with a key issued before the shred.
    assert_eq!(
        tablet.call(Request::Grant(grant_wire(&alert_key, public, "Ana"))),
        shredded
    );
    assert!(relay.grants().unwrap().is_empty(), "the grant came back");
    assert_eq!(
        tablet.call(alert(&alert_key, 1, NOW)),
        Response::Error(ProtoError::UnknownGrant)
    );
}

#[test]
fn last_contact_moves_with_every_authenticated_request_coalesced_and_persisted() {
    let tmp = tempfile::tempdir().unwrap();
    let pull = || Request::Pull {
        have: vec![],
        max_bytes: 4096,
    };
    {
        let node = node(tmp.path(), RelayConfig::default());
        let relay = node.relay();
        let t = relay
            .issue_ticket("Ana, flat 12B", 10 * HOUR, NOW, &mut rng(3))
            .unwrap();
        let ana = keys(1);
        let k = AlertKey::from_bytes([3; 32]);
        let mut c = Client::new(relay);
        assert!(matches!(
            c.enrol(&ana, &t.ticket),
            Response::Enrolled { .. }
        ));
        assert_eq!(c.auth(&ana), Response::Ok);
        assert_eq!(c.grant(&k, "x"), Response::Ok);
        let contact = || relay.grants().unwrap()[0].last_contact_ms;
        assert_eq!(contact(), NOW);
        // A sync two hours later (a new connection: Auth, then Pull).
        let mut later = Client::new(relay);
        later.now = NOW + 2 * HOUR;
        assert_eq!(later.auth(&ana), Response::Ok);
        assert_eq!(later.call(pull()), Response::UpToDate);
        assert_eq!(contact(), NOW + 2 * HOUR, "a sync is a contact");
        // Ten seconds later: not worth a disk write.
        later.now += 10_000;
        assert_eq!(later.call(pull()), Response::UpToDate);
        assert_eq!(contact(), NOW + 2 * HOUR, "coalesced within a minute");
        // Two minutes later it moves again.
        later.now = NOW + 2 * HOUR + 2 * 60_000;
        assert_eq!(later.call(pull()), Response::UpToDate);
        assert_eq!(contact(), NOW + 2 * HOUR + 2 * 60_000);
    }
    // Persisted: a restarted node still knows it.
    let node = node(tmp.path(), RelayConfig::default());
    assert_eq!(
        node.relay().grants().unwrap()[0].last_contact_ms,
        NOW + 2 * HOUR + 2 * 60_000
    );
}
