//! Age-style X25519 wrapping of the root (pairing) and of alert keys (grants).

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_crypto::{
    AlertKey, KeySchedule, RootKey, UnwrapError, WRAPPED_LEN, WrapError, WrappedKey,
    X25519Identity, X25519PublicKey, unwrap, wrap,
};

#[test]
fn root_round_trip_and_pairing_codes_agree() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let first = KeySchedule::new(RootKey::generate(&mut rng));
    let joiner = X25519Identity::generate(&mut rng);
    let wrapped = wrap(&joiner.public_key(), first.root(), &mut rng).unwrap();
    let root: RootKey = unwrap(&joiner, &wrapped).unwrap();
    let second = KeySchedule::new(root);
    assert_eq!(second.vault_id(), first.vault_id());
    assert_eq!(
        second.pairing_code(&joiner.public_key()),
        first.pairing_code(&joiner.public_key())
    );
    assert_eq!(second.log_key(), first.log_key());
}

#[test]
fn substituted_root_or_key_changes_the_pairing_code() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let first = KeySchedule::new(RootKey::generate(&mut rng));
    let joiner = X25519Identity::generate(&mut rng);
    let attacker = X25519Identity::generate(&mut rng);
    // A relay that hands the joiner its own root instead.
    let fake = KeySchedule::new(RootKey::generate(&mut rng));
    assert_ne!(
        fake.pairing_code(&joiner.public_key()),
        first.pairing_code(&joiner.public_key())
    );
    // A relay that swapped the joiner's key for its own.
    assert_ne!(
        first.pairing_code(&attacker.public_key()),
        first.pairing_code(&joiner.public_key())
    );
    assert_eq!(
        first.pairing_code(&joiner.public_key()).to_string().len(),
        7
    );
}

#[test]
fn alert_key_round_trip() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let ks = KeySchedule::new(RootKey::generate(&mut rng));
    let node = X25519Identity::generate(&mut rng);
    let key = ks.alert_key(&node.public_key());
    let wrapped = wrap(&node.public_key(), &key, &mut rng).unwrap();
    let back: AlertKey = unwrap(&node, &wrapped).unwrap();
    assert_eq!(back, key);
}

#[test]
fn wrong_identity_kind_or_tampering_fails_coarsely() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let ks = KeySchedule::new(RootKey::generate(&mut rng));
    let joiner = X25519Identity::generate(&mut rng);
    let other = X25519Identity::generate(&mut rng);
    let wrapped = wrap(&joiner.public_key(), ks.root(), &mut rng).unwrap();
    assert_eq!(unwrap::<RootKey>(&other, &wrapped), Err(UnwrapError));
    // A wrapped root never unwraps as an alert key.
    assert_eq!(unwrap::<AlertKey>(&joiner, &wrapped), Err(UnwrapError));
    for i in 0..WRAPPED_LEN * 8 {
        let mut bytes = *wrapped.as_bytes();
        bytes[i / 8] ^= 1 << (i % 8);
        let t = WrappedKey::from_slice(&bytes).unwrap();
        assert_eq!(unwrap::<RootKey>(&joiner, &t), Err(UnwrapError), "bit {i}");
    }
    assert_eq!(
        WrappedKey::from_slice(&wrapped.as_bytes()[..WRAPPED_LEN - 1]),
        Err(UnwrapError)
    );
    let mut longer = wrapped.as_bytes().to_vec();
    longer.push(0);
    assert_eq!(WrappedKey::from_slice(&longer), Err(UnwrapError));
}

#[test]
fn low_order_recipient_is_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let ks = KeySchedule::new(RootKey::generate(&mut rng));
    // The zero point and the point of order 2 give an all-zero shared secret.
    let mut one = [0u8; 32];
    one[0] = 1;
    for bad in [[0u8; 32], one] {
        assert_eq!(
            wrap(&X25519PublicKey::from_bytes(bad), ks.root(), &mut rng),
            Err(WrapError::InvalidRecipient)
        );
    }
    // A wrapped key whose ephemeral key is low-order is refused on unwrap.
    let joiner = X25519Identity::generate(&mut rng);
    let mut bytes = *wrap(&joiner.public_key(), ks.root(), &mut rng)
        .unwrap()
        .as_bytes();
    bytes[2..34].copy_from_slice(&[0; 32]);
    let t = WrappedKey::from_slice(&bytes).unwrap();
    assert_eq!(unwrap::<RootKey>(&joiner, &t), Err(UnwrapError));
}

#[test]
fn identity_debug_shows_only_public_half() {
    let id = X25519Identity::from_bytes([0x77; 32]);
    let s = format!("{id:?}");
    assert!(!s.contains("7777"), "{s}");
    assert!(s.contains(&format!("{:?}", id.public_key())));
}
