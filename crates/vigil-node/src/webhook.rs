//! Alert notifications: a durable webhook queue (docs/spec.md, "Webhook
//! notifications").
//!
//! Each new alert is queued once per configured webhook in the node's store
//! (keys under `w`), so a restart loses nothing: at least once, never
//! silently dropped for a receiver that is down. The queue is sans-I/O
//! beyond the store: the driver asks what is [`WebhookQueue::due`] at
//! `now_ms`, sends it, and reports the HTTP outcome to
//! [`WebhookQueue::settle`], which schedules the retry (exponential backoff,
//! capped, with jitter from the caller's randomness) or removes the entry.
//! The body carries the alert's facts only, signed with HMAC-SHA256 under a
//! secret shared with the receiver.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use rand_core::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::alerts::{InboxEntry, alert_id};
use crate::store::{MailboxStore, StoreError};

/// The store's key prefix for queued deliveries.
const PREFIX: u8 = b'w';
/// Bytes of a webhook's id (a hash of its URL).
const TARGET_LEN: usize = 16;

/// The secret webhook bodies are signed with: 64 hex digits, used as the
/// HMAC key as text (what the receiver is given). Zeroized on drop, never
/// printed by `Debug`.
#[derive(Clone)]
pub struct WebhookSecret(Zeroizing<String>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret must be 32 to 256 printable ASCII characters without spaces")]
pub struct BadSecret;

impl WebhookSecret {
    /// A new secret from 32 random bytes.
    pub fn generate(rng: &mut impl Rng) -> Self {
        let mut b = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut b[..]);
        WebhookSecret(Zeroizing::new(hex::encode(&b[..])))
    }

    /// A secret given by the operator (the config file or the secret file).
    /// Short secrets are refused: the HMAC is only as strong as its key.
    pub fn parse(text: &str) -> Result<Self, BadSecret> {
        let t = text.trim();
        let ok = (32..=256).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(WebhookSecret(Zeroizing::new(t.to_owned())))
        } else {
            Err(BadSecret)
        }
    }

    /// The secret's text, for `vigil-node webhook secret` and the file.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The `X-Vigil-Signature` value for `body`: `sha256=<hex HMAC>`.
    pub fn sign(&self, body: &[u8]) -> String {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_bytes()).expect("any key length");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }
}

/// A webhook's identity in the queue: the first 16 bytes of
/// `SHA-256("vigil-node/webhook" || URL)`. The same URL after a restart
/// finds its pending deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetId([u8; TARGET_LEN]);

impl TargetId {
    /// The id of the webhook at `url`.
    pub fn of(url: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"vigil-node/webhook");
        h.update(url.as_bytes());
        let mut id = [0u8; TARGET_LEN];
        id.copy_from_slice(&h.finalize()[..TARGET_LEN]);
        TargetId(id)
    }
}

/// The JSON body of a delivery: the alert's facts as staff see them, and
/// nothing else (no grant, vault or device ids, no keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Always `"alert"`.
    pub event: String,
    /// The alert's id (as `vigil-node alerts` shows it).
    pub id: String,
    /// `"fever started"` or `"fever ended"`.
    pub kind: String,
    /// The label staff gave the resident.
    pub label: String,
    /// The episode's onset, rounded down to 10 minutes, ms since the epoch.
    pub onset_ms: i64,
    /// The level band, 1 to 3.
    pub level: u8,
    /// When the node stored the alert, ms since the epoch.
    pub received_ms: i64,
}

impl AlertEvent {
    /// The event for an inbox entry.
    pub fn of(e: &InboxEntry) -> Self {
        AlertEvent {
            event: "alert".into(),
            id: alert_id(&e.grant_id, &e.episode, e.kind),
            kind: e.describe().into(),
            label: e.label.clone(),
            onset_ms: e.onset_ms,
            level: e.level,
            received_ms: e.received_ms,
        }
    }

    /// The body's bytes (compact JSON).
    pub fn to_json(&self) -> Vec<u8> {
        // Strings and integers only: serialisation cannot fail.
        serde_json::to_vec(self).expect("plain struct")
    }
}

/// Retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookPolicy {
    /// The first retry's delay, ms (default 1 s); doubled each attempt.
    pub base_ms: i64,
    /// The longest delay between attempts, ms (default 5 minutes).
    pub cap_ms: i64,
    /// Attempts refused with a client error (3xx, 4xx other than 408 and 429)
    /// before the delivery is given up (default 5): the receiver says the
    /// request is wrong, so retrying forever would only repeat that.
    pub give_up_after: u32,
}

impl Default for WebhookPolicy {
    fn default() -> Self {
        WebhookPolicy {
            base_ms: 1_000,
            cap_ms: 300_000,
            give_up_after: 5,
        }
    }
}

/// A queued delivery as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    body: Vec<u8>,
    delivery_id: String,
    attempts: u32,
    client_errors: u32,
    next_ms: i64,
}

/// One delivery to make now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    key: Vec<u8>,
    /// The webhook it goes to.
    pub target: TargetId,
    /// `X-Vigil-Delivery` and `Idempotency-Key`: the same for every attempt
    /// of this alert to this webhook, so a receiver drops duplicates.
    pub delivery_id: String,
    /// The JSON body (the same bytes on every attempt).
    pub body: Vec<u8>,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What an attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP response with this status.
    Status(u16),
    /// No response: connection refused, TLS failure, timeout.
    NoResponse,
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// 2xx: removed from the queue.
    Delivered,
    /// Tried again at this time, ms.
    Retry {
        /// When.
        at_ms: i64,
    },
    /// Refused with client errors `give_up_after` times: removed.
    GaveUp,
    /// Not in the queue any more (settled already).
    Gone,
}

/// The durable delivery queue, in the node's store.
#[derive(Debug, Clone)]
pub struct WebhookQueue {
    store: MailboxStore,
    policy: WebhookPolicy,
}

/// A status that says the request itself is wrong: a redirect (not
/// followed: the operator must fix the URL) or a 4xx other than 408
/// (timeout) and 429 (slow down).
fn client_error(status: u16) -> bool {
    (300..500).contains(&status) && status != 408 && status != 429
}

fn corrupt(_: postcard::Error) -> StoreError {
    StoreError::Corrupt("webhook delivery".into())
}

fn delivery_id(target: &TargetId, alert: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"vigil-node/delivery");
    h.update(target.0);
    h.update(alert.as_bytes());
    hex::encode(&h.finalize()[..16])
}

impl WebhookQueue {
    /// The queue in `store`.
    pub fn new(store: MailboxStore, policy: WebhookPolicy) -> Self {
        WebhookQueue { store, policy }
    }

    fn key(target: &TargetId, e: &InboxEntry) -> Vec<u8> {
        let mut k = vec![PREFIX];
        k.extend_from_slice(&target.0);
        k.extend_from_slice(&e.grant_id);
        k.extend_from_slice(&e.episode);
        k.push(e.kind);
        k
    }

    /// Queues `e` for each webhook, due now. An alert already queued for a
    /// webhook is not queued again. Durable when it returns.
    pub fn enqueue(
        &self,
        targets: &[TargetId],
        e: &InboxEntry,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let event = AlertEvent::of(e);
        let body = event.to_json();
        for t in targets {
            let p = Pending {
                body: body.clone(),
                delivery_id: delivery_id(t, &event.id),
                attempts: 0,
                client_errors: 0,
                next_ms: now_ms,
            };
            let v = postcard::to_stdvec(&p).map_err(corrupt)?;
            self.store.db().insert_if_absent(Self::key(t, e), v)?;
        }
        self.store.db().flush()
    }

    fn entries(&self) -> Result<Vec<(Vec<u8>, Pending)>, StoreError> {
        self.store
            .db()
            .scan_prefix(&[PREFIX])?
            .into_iter()
            .map(|(k, v)| Ok((k, postcard::from_bytes(&v).map_err(corrupt)?)))
            .collect()
    }

    /// Up to `limit` deliveries due at `now_ms`, earliest first.
    pub fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let mut due: Vec<(Vec<u8>, Pending)> = self
            .entries()?
            .into_iter()
            .filter(|(_, p)| p.next_ms <= now_ms)
            .collect();
        due.sort_by_key(|(k, p)| (p.next_ms, k.clone()));
        due.truncate(limit);
        Ok(due
            .into_iter()
            .map(|(key, p)| {
                let mut t = [0u8; TARGET_LEN];
                t.copy_from_slice(&key[1..=TARGET_LEN]);
                Delivery {
                    key,
                    target: TargetId(t),
                    delivery_id: p.delivery_id,
                    body: p.body,
                    attempts: p.attempts,
                }
            })
            .collect())
    }

    /// When the next delivery is due, if any is queued.
    pub fn next_due_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.entries()?.iter().map(|(_, p)| p.next_ms).min())
    }

    /// Deliveries queued.
    pub fn len(&self) -> Result<usize, StoreError> {
        Ok(self.store.db().scan_prefix(&[PREFIX])?.len())
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Records an attempt's outcome: removes a delivered (2xx) or given-up
    /// delivery, else schedules the next attempt. The delay doubles from
    /// `base_ms` up to `cap_ms`, then a random part of its upper half is
    /// taken off (`rng`), so receivers that come back are not hit by every
    /// node at once. Durable when it returns.
    pub fn settle(
        &self,
        d: &Delivery,
        outcome: Outcome,
        now_ms: i64,
        rng: &mut impl Rng,
    ) -> Result<Settled, StoreError> {
        let Some(v) = self.store.db().get(&d.key)? else {
            return Ok(Settled::Gone);
        };
        let mut p: Pending = postcard::from_bytes(&v).map_err(corrupt)?;
        let settled = match outcome {
            Outcome::Status(s) if (200..300).contains(&s) => Settled::Delivered,
            Outcome::Status(s)
                if client_error(s) && p.client_errors + 1 >= self.policy.give_up_after =>
            {
                Settled::GaveUp
            }
            other => {
                if let Outcome::Status(s) = other
                    && client_error(s)
                {
                    p.client_errors += 1;
                }
                p.attempts = p.attempts.saturating_add(1);
                let delay = self.delay(p.attempts, rng);
                p.next_ms = now_ms.saturating_add(delay);
                Settled::Retry { at_ms: p.next_ms }
            }
        };
        match settled {
            Settled::Retry { .. } => {
                let v = postcard::to_stdvec(&p).map_err(corrupt)?;
                self.store.db().insert(d.key.clone(), v)?;
            }
            _ => self.store.db().remove(&d.key)?,
        }
        self.store.db().flush()?;
        Ok(settled)
    }

    /// The delay before attempt `attempts + 1`: `base · 2^(attempts-1)`,
    /// capped, less up to half of it at random.
    fn delay(&self, attempts: u32, rng: &mut impl Rng) -> i64 {
        let exp = attempts.saturating_sub(1).min(40);
        let full = self
            .policy
            .base_ms
            .max(1)
            .saturating_mul(1i64 << exp)
            .min(self.policy.cap_ms.max(1));
        let half = full / 2;
        let jitter = if half > 0 {
            i64::try_from(rng.next_u64() % half.unsigned_abs()).unwrap_or(0)
        } else {
            0
        };
        full - jitter
    }

    /// Drops the deliveries of webhooks no longer configured (logged by the
    /// caller): a removed URL must not be sent anything later. Returns how
    /// many were dropped.
    pub fn retain_targets(&self, targets: &[TargetId]) -> Result<usize, StoreError> {
        let mut dropped = 0;
        for (k, _) in self.store.db().scan_prefix(&[PREFIX])? {
            let keep = targets
                .iter()
                .any(|t| k.get(1..=TARGET_LEN) == Some(&t.0[..]));
            if !keep {
                self.store.db().remove(&k)?;
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.store.db().flush()?;
        }
        Ok(dropped)
    }
}

/// What the relay does with a new alert: queue it for the webhooks and wake
/// the driver that delivers.
#[derive(Clone)]
pub struct Webhooks {
    queue: WebhookQueue,
    targets: Vec<TargetId>,
    wake: std::sync::Arc<dyn Fn() + Send + Sync>,
}

impl fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhooks")
            .field("targets", &self.targets.len())
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// Queues alerts in `queue` for `targets`; `wake` is called after each
    /// new alert, once it is queued (the driver's notification, so delivery
    /// does not wait for a poll). With no targets nothing is queued but
    /// `wake` is still called: a dashboard's live pages listen to it too.
    pub fn new(
        queue: WebhookQueue,
        targets: Vec<TargetId>,
        wake: std::sync::Arc<dyn Fn() + Send + Sync>,
    ) -> Self {
        Webhooks {
            queue,
            targets,
            wake,
        }
    }

    /// The queue.
    pub fn queue(&self) -> &WebhookQueue {
        &self.queue
    }

    /// Queues a newly stored alert.
    pub(crate) fn alert_stored(&self, e: &InboxEntry, now_ms: i64) -> Result<(), StoreError> {
        if !self.targets.is_empty() {
            self.queue.enqueue(&self.targets, e, now_ms)?;
        }
        (self.wake)();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn entry(kind: u8) -> InboxEntry {
        InboxEntry {
            grant_id: [1; 16],
            label: "Ana, flat 12B".into(),
            episode: [2; 16],
            kind,
            onset_ms: 1_700_000_400_000,
            level: 2,
            received_ms: 1_700_000_500_000,
            acked_ms: None,
            monitoring_ended: None,
            ack: None,
        }
    }

    fn queue() -> WebhookQueue {
        WebhookQueue::new(MailboxStore::in_memory(), WebhookPolicy::default())
    }

    #[test]
    fn the_body_has_the_alerts_facts_only() {
        let e = entry(1);
        let body: serde_json::Value =
            serde_json::from_slice(&AlertEvent::of(&e).to_json()).unwrap();
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "event",
                "id",
                "kind",
                "label",
                "level",
                "onset_ms",
                "received_ms"
            ]
        );
        assert_eq!(body["kind"], "fever started");
        assert_eq!(body["id"], e.id().as_str());
        let text = String::from_utf8(AlertEvent::of(&e).to_json()).unwrap();
        assert!(!text.contains(&hex::encode(e.grant_id)), "{text}");
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2 ("Jefe") has a key shorter than we accept,
        // so the HMAC is checked against the construction by hand.
        let s = WebhookSecret::parse(&"k".repeat(32)).unwrap();
        let body = b"what do ya want for nothing?";
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for i in 0..32 {
            ipad[i] ^= b'k';
            opad[i] ^= b'k';
        }
        let inner = Sha256::new()
            .chain_update(ipad)
            .chain_update(body)
            .finalize();
        let outer = Sha256::new()
            .chain_update(opad)
            .chain_update(inner)
            .finalize();
        assert_eq!(s.sign(body), format!("sha256={}", hex::encode(outer)));
        assert_ne!(s.sign(body), s.sign(b"what do ya want for nothing!"));
    }

    #[test]
    fn short_or_spaced_secrets_are_refused_and_never_printed() {
        assert_eq!(WebhookSecret::parse("short").unwrap_err(), BadSecret);
        assert!(WebhookSecret::parse(&format!("{} x", "a".repeat(40))).is_err());
        let s = WebhookSecret::generate(&mut ChaCha20Rng::from_seed([7; 32]));
        assert_eq!(s.expose().len(), 64);
        assert!(!format!("{s:?}").contains(s.expose()));
    }

    #[test]
    fn a_delivery_is_due_once_then_retried_with_capped_backoff() {
        let q = queue();
        let t = TargetId::of("http://127.0.0.1:9/hook");
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        q.enqueue(&[t], &entry(1), 1_000).unwrap();
        // Queued twice (two devices sent the alert): once.
        q.enqueue(&[t], &entry(1), 1_500).unwrap();
        assert_eq!(q.len().unwrap(), 1);
        assert!(q.due(999, 10).unwrap().is_empty());
        let d = q.due(1_000, 10).unwrap().remove(0);
        let id = d.delivery_id.clone();
        let mut now = 1_000;
        let mut delays = vec![];
        for _ in 0..12 {
            let Settled::Retry { at_ms } =
                q.settle(&d, Outcome::Status(500), now, &mut rng).unwrap()
            else {
                panic!("a 500 is retried")
            };
            delays.push(at_ms - now);
            assert!(q.due(at_ms - 1, 10).unwrap().is_empty());
            now = at_ms;
            let again = q.due(now, 10).unwrap().remove(0);
            assert_eq!(again.delivery_id, id, "stable across attempts");
            assert_eq!(again.body, d.body);
        }
        // Doubling, jittered within the upper half, then capped at 5 min.
        assert!((500..=1_000).contains(&delays[0]), "{delays:?}");
        assert!((1_000..=2_000).contains(&delays[1]), "{delays:?}");
        assert!(delays.iter().all(|d| *d <= 300_000), "{delays:?}");
        assert!(delays[11] >= 150_000, "{delays:?}");
        assert_eq!(
            q.settle(&d, Outcome::NoResponse, now, &mut rng).unwrap(),
            Settled::Retry {
                at_ms: q.next_due_ms().unwrap().unwrap()
            }
        );
        assert_eq!(
            q.settle(&d, Outcome::Status(204), now, &mut rng).unwrap(),
            Settled::Delivered
        );
        assert!(q.is_empty().unwrap());
        assert_eq!(
            q.settle(&d, Outcome::Status(204), now, &mut rng).unwrap(),
            Settled::Gone
        );
    }

    #[test]
    fn client_errors_give_up_but_408_and_429_do_not() {
        let q = queue();
        let t = TargetId::of("http://127.0.0.1:9/hook");
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        q.enqueue(&[t], &entry(2), 0).unwrap();
        let d = q.due(0, 1).unwrap().remove(0);
        for s in [429, 408, 429, 503, 429, 408, 100] {
            assert!(matches!(
                q.settle(&d, Outcome::Status(s), 0, &mut rng).unwrap(),
                Settled::Retry { .. }
            ));
        }
        for s in [400, 301, 404, 403] {
            assert!(matches!(
                q.settle(&d, Outcome::Status(s), 0, &mut rng).unwrap(),
                Settled::Retry { .. }
            ));
        }
        assert_eq!(
            q.settle(&d, Outcome::Status(410), 0, &mut rng).unwrap(),
            Settled::GaveUp
        );
        assert!(q.is_empty().unwrap());
    }

    #[test]
    fn each_webhook_has_its_own_delivery_and_removed_ones_are_dropped() {
        let q = queue();
        let a = TargetId::of("http://127.0.0.1:9/a");
        let b = TargetId::of("http://127.0.0.1:9/b");
        q.enqueue(&[a, b], &entry(1), 0).unwrap();
        let due = q.due(0, 10).unwrap();
        assert_eq!(due.len(), 2);
        assert_ne!(due[0].delivery_id, due[1].delivery_id);
        assert_eq!(q.retain_targets(&[b]).unwrap(), 1);
        let left = q.due(0, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].target, b);
    }
}
