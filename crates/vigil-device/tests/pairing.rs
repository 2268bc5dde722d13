//! Pairing that cannot be hijacked (docs/spec.md §10): the joiner holds a
//! received root unused until the resident confirms the code; a slot takes
//! one offer; a fetched offer is gone.

use std::sync::{Arc, Mutex};

use vigil_crypto::{NodeId, X25519Identity, X25519PublicKey};
use vigil_device::{MemStorage, MemoryKeyStore, Period, SyncFailure, Vault};
use vigil_log::{Metric, Unit};
use vigil_node::{MailboxStore, Relay, RelayConfig};
use vigil_proto::{
    Exchange, ExchangeError, FrameHandler, ProtoError, Request, SyncError, decode_request,
};
use vigil_testkit::{mem_vault, node_id, rng};

const START: i64 = 1_790_035_200_000;
const MIN: i64 = 60_000;

fn period() -> Period {
    Period::days(START, 14)
}

fn relay() -> Relay {
    Relay::new(MailboxStore::in_memory(), RelayConfig::default())
}

/// A connection to `relay` that records the kind of every request sent, and
/// answers pairing fetches from `fetch_from` when set (a node that swaps the
/// offer for one of its own making).
struct Conn {
    session: vigil_node::RelaySession,
    swap: Option<vigil_node::RelaySession>,
    sent: Arc<Mutex<Vec<String>>>,
}

impl Exchange for Conn {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        let req = decode_request(request).expect("a well-formed request");
        let kind = format!("{req:?}");
        let kind = kind.split([' ', '{', '(']).next().unwrap().to_owned();
        self.sent.lock().unwrap().push(kind);
        match (&mut self.swap, &req) {
            (Some(other), Request::PairFetch { .. } | Request::Hello { .. }) => {
                if matches!(req, Request::Hello { .. }) {
                    other.handle(request, START);
                }
                if matches!(req, Request::PairFetch { .. }) {
                    return Ok(other.handle(request, START));
                }
                Ok(self.session.handle(request, START))
            }
            _ => Ok(self.session.handle(request, START)),
        }
    }

    fn node(&self) -> NodeId {
        node_id(X25519Identity::from_bytes([0x4e; 32]).public_key())
    }
}

fn conn(relay: &Relay) -> (Conn, Arc<Mutex<Vec<String>>>) {
    let sent = Arc::new(Mutex::new(vec![]));
    (
        Conn {
            session: relay.session(),
            swap: None,
            sent: sent.clone(),
        },
        sent,
    )
}

/// A first device with one reading, its vault registered at `relay` with a
/// staff ticket (docs/spec.md §15).
fn phone(relay: &Relay, seed: u64) -> Vault {
    let (mut v, _) = mem_vault(period(), seed);
    v.record(Metric::BodyTemperature, 36.6, Unit::Celsius, START + MIN)
        .unwrap();
    let t = relay
        .issue_ticket("a resident", period().end_ms, START, &mut rng(seed + 1000))
        .unwrap();
    v.redeem_ticket(&mut conn(relay).0, &t.ticket).unwrap();
    v
}

fn is_slot_taken(e: &SyncFailure) -> bool {
    matches!(
        e,
        SyncFailure::Protocol(SyncError::Refused(ProtoError::SlotTaken))
    )
}

/// What the joiner sent after fetching the offer: nothing that touches a
/// mailbox.
fn assert_nothing_synced(sent: &[String]) {
    for kind in sent {
        assert!(
            kind == "Hello" || kind == "PairFetch",
            "the joiner sent {kind} before the code was confirmed: {sent:?}"
        );
    }
}

#[test]
fn the_hijacker_who_saw_the_joiner_code_is_found_out_by_the_code() {
    let relay = relay();
    let mut real = phone(&relay, 1);
    let mut hijacker = phone(&relay, 2);
    let joiner = X25519Identity::generate(&mut rng(3));
    let j: X25519PublicKey = joiner.public_key();
    // The hijacker saw the joiner code and is first at the slot.
    let theirs = hijacker
        .offer_pairing(&mut conn(&relay).0, &j, START)
        .unwrap();
    // The resident's real offer is refused, so it cannot be mistaken for a
    // join that went through.
    let e = real
        .offer_pairing(&mut conn(&relay).0, &j, START)
        .unwrap_err();
    assert!(is_slot_taken(&e), "{e:?}");
    // The joiner fetches what is there: the hijacker's root. Its code is the
    // hijacker's, not the one the resident's device would show.
    let (mut c, sent) = conn(&relay);
    let pending = Vault::fetch_join(&mut c, &joiner).unwrap();
    assert_eq!(pending.code(), theirs);
    assert_ne!(pending.code(), real.pairing_code(&j));
    // The resident sees the mismatch and rejects: nothing stored, nothing synced.
    pending.reject();
    assert_nothing_synced(&sent.lock().unwrap());
}

#[test]
fn a_node_that_swaps_the_offer_shows_a_different_code() {
    let honest = relay();
    let evil = relay();
    let mut real = phone(&honest, 4);
    let mut node_vault = phone(&evil, 5);
    let joiner = X25519Identity::generate(&mut rng(6));
    let j = joiner.public_key();
    let code = real.offer_pairing(&mut conn(&honest).0, &j, START).unwrap();
    // The node answers the fetch with a root of its own, wrapped to the
    // joiner's public key (which it sees in the slot's request).
    node_vault
        .offer_pairing(&mut conn(&evil).0, &j, START)
        .unwrap();
    let (mut c, sent) = conn(&honest);
    c.swap = Some(evil.session());
    let pending = Vault::fetch_join(&mut c, &joiner).unwrap();
    assert_ne!(pending.code(), code, "the codes differ");
    let keys = MemoryKeyStore::new();
    drop(pending);
    assert_nothing_synced(&sent.lock().unwrap());
    assert!(vigil_device::KeyStore::load(&keys).unwrap().is_none());
}

#[test]
fn a_confirmed_join_creates_the_vault_and_the_offer_is_gone() {
    let relay = relay();
    let mut first = phone(&relay, 7);
    let joiner = X25519Identity::generate(&mut rng(8));
    let j = joiner.public_key();
    let code = first.offer_pairing(&mut conn(&relay).0, &j, START).unwrap();
    let pending = Vault::fetch_join(&mut conn(&relay).0, &joiner).unwrap();
    assert_eq!(pending.code(), code);
    // Fetched means taken: nothing waits at the slot any more.
    let again = Vault::fetch_join(&mut conn(&relay).0, &joiner).unwrap_err();
    assert!(matches!(again, SyncFailure::NoOffer), "{again:?}");
    let keys = MemoryKeyStore::new();
    let joined = pending
        .confirm(
            Box::new(MemStorage::new()),
            Box::new(keys.clone()),
            &mut conn(&relay).0,
            &mut rng(9),
        )
        .unwrap();
    assert_eq!(joined.vault_id(), first.vault_id());
    assert_eq!(joined.log().len(), 1);
    assert!(vigil_device::KeyStore::load(&keys).unwrap().is_some());
}

#[test]
fn a_slot_takes_one_offer() {
    let relay = relay();
    let mut first = phone(&relay, 10);
    let j = X25519Identity::generate(&mut rng(11)).public_key();
    first.offer_pairing(&mut conn(&relay).0, &j, START).unwrap();
    let e = first
        .offer_pairing(&mut conn(&relay).0, &j, START)
        .unwrap_err();
    assert!(is_slot_taken(&e), "{e:?}");
}

/// A joiner whose first device left an offer through a mailbox proves the
/// mailbox key with `Auth`, which the node answers only for a mailbox that
/// exists with that key: a `Register` before it (which never creates a
/// mailbox: that takes a staff ticket) only costs the join a round trip.
#[test]
fn a_join_syncs_without_a_register_round_trip() {
    let relay = relay();
    let mut first = phone(&relay, 12);
    let joiner = X25519Identity::generate(&mut rng(13));
    let j = joiner.public_key();
    first.offer_pairing(&mut conn(&relay).0, &j, START).unwrap();
    let pending = Vault::fetch_join(&mut conn(&relay).0, &joiner).unwrap();
    let (mut c, sent) = conn(&relay);
    let joined = pending
        .confirm(
            Box::new(MemStorage::new()),
            Box::new(MemoryKeyStore::new()),
            &mut c,
            &mut rng(14),
        )
        .unwrap();
    assert_eq!(joined.log().len(), 1);
    let sent = sent.lock().unwrap();
    assert!(
        !sent.iter().any(|k| k == "Register"),
        "the join registered again: {sent:?}"
    );
    assert_eq!(sent.first().map(String::as_str), Some("Hello"), "{sent:?}");
    assert!(sent.iter().any(|k| k == "Auth"), "{sent:?}");
}

/// Confirming a join through a node that does not know the vault (another
/// node than the one the offer went through) fails as a sync there always
/// did: the node asks for the staff ticket, which the app explains.
#[test]
fn a_join_through_a_node_without_the_vault_asks_for_a_ticket() {
    let relay = relay();
    let other = self::relay();
    let mut first = phone(&relay, 15);
    let joiner = X25519Identity::generate(&mut rng(16));
    let j = joiner.public_key();
    first.offer_pairing(&mut conn(&relay).0, &j, START).unwrap();
    let pending = Vault::fetch_join(&mut conn(&relay).0, &joiner).unwrap();
    let e = pending
        .confirm(
            Box::new(MemStorage::new()),
            Box::new(MemoryKeyStore::new()),
            &mut conn(&other).0,
            &mut rng(17),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            SyncFailure::Protocol(SyncError::Refused(ProtoError::TicketRequired))
        ),
        "{e:?}"
    );
}

/// A join cut off during its download (the connection lost at the pull,
/// after the store was created) leaves, on disk, a vault that opens with
/// the received key and gets the log at its next sync: the resident does
/// not have to pair again, though the offer is gone from the node.
#[test]
fn a_join_cut_off_during_the_download_leaves_a_vault_that_opens_and_syncs() {
    struct CutAtPull(Conn);
    impl Exchange for CutAtPull {
        fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
            if matches!(decode_request(request), Ok(Request::Pull { .. })) {
                return Err(ExchangeError::ConnectionLost(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "cut",
                )));
            }
            self.0.exchange(request)
        }
        fn node(&self) -> NodeId {
            self.0.node()
        }
    }
    let relay = relay();
    let mut first = phone(&relay, 18);
    let joiner = X25519Identity::generate(&mut rng(19));
    let j = joiner.public_key();
    first.offer_pairing(&mut conn(&relay).0, &j, START).unwrap();
    let pending = Vault::fetch_join(&mut conn(&relay).0, &joiner).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = MemoryKeyStore::new();
    let e = pending
        .confirm(
            Box::new(vigil_device::SledStorage::open(dir.path()).unwrap()),
            Box::new(keys.clone()),
            &mut CutAtPull(conn(&relay).0),
            &mut rng(20),
        )
        .unwrap_err();
    assert!(matches!(e, SyncFailure::Transport(_)), "{e:?}");
    let mut joined = Vault::open_at(dir.path(), &keys, START + MIN).unwrap();
    assert_eq!(joined.vault_id(), first.vault_id());
    assert_eq!(joined.log().len(), 0);
    joined.sync(&mut conn(&relay).0).unwrap();
    assert_eq!(joined.log().len(), 1);
}

/// A store that notes the size of every blob written (the local snapshot
/// is the one blob a vault writes).
#[derive(Debug, Default)]
struct NotingBlobs {
    inner: MemStorage,
    blobs: Arc<Mutex<Vec<usize>>>,
}

impl vigil_device::Storage for NotingBlobs {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, vigil_device::StorageError> {
        self.inner.get(key)
    }
    fn scan_prefix(
        &self,
        prefix: &[u8],
    ) -> Result<vigil_device::Entries, vigil_device::StorageError> {
        self.inner.scan_prefix(prefix)
    }
    fn apply(&mut self, batch: vigil_device::Batch) -> Result<(), vigil_device::StorageError> {
        self.inner.apply(batch)
    }
    fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, vigil_device::StorageError> {
        self.inner.get_blob(name)
    }
    fn put_blob(&mut self, name: &str, value: &[u8]) -> Result<(), vigil_device::StorageError> {
        self.blobs.lock().unwrap().push(value.len());
        self.inner.put_blob(name, value)
    }
    fn tombstone(&self) -> Result<Option<Vec<u8>>, vigil_device::StorageError> {
        self.inner.tombstone()
    }
    fn put_tombstone(&mut self, value: &[u8]) -> Result<(), vigil_device::StorageError> {
        self.inner.put_tombstone(value)
    }
    fn destroy(self: Box<Self>) -> Result<(), vigil_device::StorageError> {
        Ok(())
    }
}

/// The resident watches the pairing screen while the new device confirms:
/// the join stores the relay snapshot as it came and does not save and
/// seal the whole log again as its local snapshot then (a second copy of
/// the work the download already did: ~1/3 of a week's join). Folding what
/// it received into a local snapshot waits for the device's next sync.
#[test]
fn a_join_does_not_save_the_log_again_and_its_next_sync_compacts() {
    let relay = relay();
    let mut first = phone(&relay, 31);
    for i in 0..3000 {
        first
            .record(
                Metric::HeartRate,
                60.0 + f64::from(i % 50),
                Unit::BeatsPerMinute,
                START + 2 * MIN + i64::from(i) * 30_000,
            )
            .unwrap();
    }
    first.sync(&mut conn(&relay).0).unwrap();
    let joiner = X25519Identity::generate(&mut rng(32));
    first
        .offer_pairing(&mut conn(&relay).0, &joiner.public_key(), START)
        .unwrap();
    let pending = Vault::fetch_join(&mut conn(&relay).0, &joiner).unwrap();
    let blobs = Arc::new(Mutex::new(vec![]));
    let store = NotingBlobs {
        inner: MemStorage::new(),
        blobs: blobs.clone(),
    };
    let mut joined = pending
        .confirm(
            Box::new(store),
            Box::new(MemoryKeyStore::new()),
            &mut conn(&relay).0,
            &mut rng(33),
        )
        .unwrap();
    assert_eq!(joined.log().len(), 3001);
    let at_join = blobs.lock().unwrap().clone();
    assert!(
        at_join.iter().all(|&n| n < 1024),
        "the join saved the log again: blobs of {at_join:?} bytes"
    );
    joined.sync(&mut conn(&relay).0).unwrap();
    let after = blobs.lock().unwrap().clone();
    assert!(
        after.iter().any(|&n| n >= 4096),
        "the next sync did not fold what the join received: blobs of {after:?} bytes"
    );
}

/// A connection to `relay` that counts the bytes of every reply.
struct Counted {
    session: vigil_node::RelaySession,
    received: usize,
}

impl Exchange for Counted {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        let reply = self.session.handle(request, START);
        self.received += reply.len();
        Ok(reply)
    }

    fn node(&self) -> NodeId {
        node_id(X25519Identity::from_bytes([0x4e; 32]).public_key())
    }
}

/// Joins a new device through `relay` with the offer left for `joiner`;
/// returns it and the bytes its join downloaded.
fn join(relay: &Relay, joiner: &X25519Identity, seed: u64) -> (Vault, usize) {
    let pending = Vault::fetch_join(&mut conn(relay).0, joiner).unwrap();
    let mut c = Counted {
        session: relay.session(),
        received: 0,
    };
    let joined = pending
        .confirm(
            Box::new(MemStorage::new()),
            Box::new(MemoryKeyStore::new()),
            &mut c,
            &mut rng(seed),
        )
        .unwrap();
    (joined, c.received)
}

/// A relay snapshot is a whole sealed log: uploading it for every pairing
/// cost the first device a save, a DEFLATE and the upload of the log
/// each time. When the node already holds a snapshot this device saw it
/// accept, and what it holds since is small against it, the joiner's
/// download is that snapshot and a few bundles: no upload, and the join
/// downloads about what it did with a fresh snapshot. When the bundles
/// since are not small, the snapshot is uploaded as before.
#[test]
fn a_pairing_uploads_no_snapshot_the_node_holds_nearly_all_of() {
    let relay = relay();
    let mut first = phone(&relay, 20);
    for i in 0..200 {
        first
            .record(
                Metric::HeartRate,
                60.0 + (i % 30) as f64,
                Unit::BeatsPerMinute,
                START + 2 * MIN + i * 1000,
            )
            .unwrap();
    }
    let a = X25519Identity::generate(&mut rng(21));
    let (mut c, sent) = conn(&relay);
    first.offer_pairing(&mut c, &a.public_key(), START).unwrap();
    assert!(
        sent.lock().unwrap().iter().any(|k| k == "PushSnapshot"),
        "the first pairing uploads the log"
    );
    let (joined_a, bytes_a) = join(&relay, &a, 22);
    assert_eq!(joined_a.log().view(), first.log().view());

    // A reading more, then a second pairing: the node's snapshot covers
    // all but one small bundle.
    first
        .record(
            Metric::HeartRate,
            61.0,
            Unit::BeatsPerMinute,
            START + 9 * MIN,
        )
        .unwrap();
    let b = X25519Identity::generate(&mut rng(23));
    let (mut c, sent) = conn(&relay);
    first.offer_pairing(&mut c, &b.public_key(), START).unwrap();
    let sent = sent.lock().unwrap().clone();
    assert!(
        !sent.iter().any(|k| k == "PushSnapshot"),
        "uploaded the log again: {sent:?}"
    );
    let (joined_b, bytes_b) = join(&relay, &b, 24);
    assert_eq!(joined_b.log().view(), first.log().view());
    assert!(
        bytes_b * 4 <= bytes_a * 5,
        "the join downloads {bytes_b} bytes, the one after a fresh snapshot {bytes_a}"
    );

    // Many more readings: the bundles since are no longer small, and the
    // next pairing uploads the log again.
    for i in 0..400 {
        first
            .record(
                Metric::HeartRate,
                60.0 + (i % 30) as f64,
                Unit::BeatsPerMinute,
                START + 10 * MIN + i * 1000,
            )
            .unwrap();
        if i % 50 == 49 {
            first.sync(&mut conn(&relay).0).unwrap();
        }
    }
    let c3 = X25519Identity::generate(&mut rng(25));
    let (mut c, sent) = conn(&relay);
    first
        .offer_pairing(&mut c, &c3.public_key(), START)
        .unwrap();
    assert!(
        sent.lock().unwrap().iter().any(|k| k == "PushSnapshot"),
        "the log was not uploaded though the node's snapshot covers little of it"
    );
    let (joined_c, _) = join(&relay, &c3, 26);
    assert_eq!(joined_c.log().view(), first.log().view());
}
