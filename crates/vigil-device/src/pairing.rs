//! Pairing a second device (docs/spec.md §10): the first device leaves the
//! period's root, wrapped to the joiner's X25519 key, in the joiner's slot
//! at the node, with the period sealed beside it; the joiner fetches and
//! unwraps it. Both show a short code derived from the root and the joiner's
//! key for the resident to compare. The joiner holds what it fetched as a
//! [`PendingJoin`], unused, until the resident confirms that the codes match:
//! whoever else wrote the slot (someone who saw the joiner code, or the node)
//! shows up as a different code, before anything is stored or synced.

use vigil_crypto::{
    KeySchedule, RootKey, ShortAuthCode, WRAPPED_LEN, WrappedKey, X25519Identity, X25519PublicKey,
    unwrap,
};
use vigil_proto::{
    Conversation, Exchange, FetchPairing, OfferPairing, PairingFetched, Registration, drive,
};

use crate::error::SyncFailure;
use crate::layout::VaultCrypto;
use crate::period::Period;

/// The node-side slot where a joiner's wrapped root waits:
/// `SHA-256("vigil/v1/pair-slot" || joiner public key)`.
pub fn pairing_slot(joiner: &X25519PublicKey) -> [u8; 32] {
    vigil_proto::pairing_slot(joiner.as_bytes())
}

/// Leaves the root, wrapped to `joiner`, at the node; returns the code to
/// compare.
pub(crate) fn offer(
    crypto: &mut VaultCrypto,
    period: Period,
    conn: &mut dyn Exchange,
    joiner: &X25519PublicKey,
) -> Result<ShortAuthCode, SyncFailure> {
    let wrapped = crypto
        .wrap_root(joiner)
        .map_err(|_| SyncFailure::BadOffer)?;
    let info = crypto.seal_pair_info(joiner, period)?;
    let mut payload = wrapped.as_bytes().to_vec();
    payload.extend_from_slice(&info);
    // The mailbox key for the node behind `conn`, and only that node.
    let mailbox = crypto.keys().mailbox_key(&conn.node());
    let mut conv = OfferPairing::new(
        *crypto.vault_id().as_bytes(),
        mailbox.expose_secret(),
        Registration {
            verifier: mailbox.verifier().to_bytes(),
            expires_ms: period.end_ms,
        },
        pairing_slot(joiner),
        payload,
    );
    drive(&mut conv, conn, |_| Ok::<(), SyncFailure>(()))?;
    Ok(crypto.keys().pairing_code(joiner))
}

/// A pairing offer fetched by the joining device and not yet used: the root
/// stays in memory (zeroized when dropped) until [`PendingJoin::confirm`].
/// Show [`PendingJoin::code`] and ask the resident whether the first device
/// shows the same; if not, [`PendingJoin::reject`] (or drop) it.
pub struct PendingJoin {
    pub(crate) root: RootKey,
    pub(crate) period: Period,
    code: ShortAuthCode,
}

impl PendingJoin {
    /// The code to compare with the one the first device shows.
    pub fn code(&self) -> ShortAuthCode {
        self.code
    }

    /// Discards the offer: nothing was stored or synced, and the root is
    /// zeroized. The offer is gone from the node, so pairing starts again
    /// (best with a new joiner key: the old one was seen by whoever wrote the
    /// slot).
    pub fn reject(self) {}
}

impl std::fmt::Debug for PendingJoin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingJoin")
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

/// Takes the offer left for `joiner` from its slot (the node deletes it).
fn fetch_payload(
    conn: &mut dyn Exchange,
    joiner: &X25519PublicKey,
) -> Result<Option<Vec<u8>>, SyncFailure> {
    let mut conv = FetchPairing::new(pairing_slot(joiner));
    let mut found = None;
    drive(&mut conv, conn, |conv| -> Result<(), SyncFailure> {
        while let Some(ev) = conv.poll_event() {
            found = match ev {
                PairingFetched::Offer(p) => Some(p),
                PairingFetched::NoOffer => None,
            };
        }
        Ok(())
    })?;
    Ok(found)
}

/// Takes and opens the offer left for `identity`.
pub(crate) fn fetch(
    conn: &mut dyn Exchange,
    identity: &X25519Identity,
) -> Result<PendingJoin, SyncFailure> {
    let joiner = identity.public_key();
    let payload = fetch_payload(conn, &joiner)?.ok_or(SyncFailure::NoOffer)?;
    if payload.len() <= WRAPPED_LEN {
        return Err(SyncFailure::BadOffer);
    }
    let wrapped =
        WrappedKey::from_slice(&payload[..WRAPPED_LEN]).map_err(|_| SyncFailure::BadOffer)?;
    let root: RootKey = unwrap(identity, &wrapped).map_err(|_| SyncFailure::BadOffer)?;
    let keys = KeySchedule::new(RootKey::from_bytes(*root.expose_secret()));
    let period = VaultCrypto::open_pair_info(&keys, &joiner, &payload[WRAPPED_LEN..])
        .ok_or(SyncFailure::BadOffer)?;
    let code = keys.pairing_code(&joiner);
    Ok(PendingJoin { root, period, code })
}
