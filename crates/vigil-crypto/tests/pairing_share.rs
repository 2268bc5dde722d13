//! Two devices paired by a wrapped root share sealed data, and an
//! attacker's copy of the traffic (the wrapped root and the blob) opens for
//! neither a relay nor a stranger. (Moved from the facade's tests: the
//! facade no longer exposes the crypto core.)

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_crypto::{
    Context, KeySchedule, Kind, OpenError, RootKey, UnwrapError, X25519Identity, open, seal,
    unwrap, wrap,
};

#[test]
fn paired_devices_share_the_log_and_a_relay_cannot_read_it() {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let phone = KeySchedule::new(RootKey::generate(&mut rng));
    let tablet_id = X25519Identity::generate(&mut rng);
    let wrapped = wrap(&tablet_id.public_key(), phone.root(), &mut rng).unwrap();
    let tablet = KeySchedule::new(unwrap::<RootKey>(&tablet_id, &wrapped).unwrap());
    assert_eq!(
        phone.pairing_code(&tablet_id.public_key()),
        tablet.pairing_code(&tablet_id.public_key())
    );

    let ctx = Context::new("bundle")
        .bytes(phone.vault_id().as_bytes())
        .u64(3);
    let blob = seal(&phone.log_key(), Kind::LogBundle, &ctx, b"38.2", &mut rng).unwrap();
    assert_eq!(
        &open(&tablet.log_key(), Kind::LogBundle, &ctx, &blob).unwrap()[..],
        b"38.2"
    );

    // What the relay saw: `wrapped` and `blob`. Its own identity and any other
    // vault's keys open neither.
    let relay = X25519Identity::generate(&mut rng);
    assert_eq!(unwrap::<RootKey>(&relay, &wrapped).err(), Some(UnwrapError));
    let stranger = KeySchedule::new(RootKey::generate(&mut rng));
    assert_eq!(
        open(&stranger.log_key(), Kind::LogBundle, &ctx, &blob),
        Err(OpenError)
    );
    // The plaintext does not appear in what crossed the wire.
    assert!(!blob.windows(4).any(|w| w == b"38.2"));
}
