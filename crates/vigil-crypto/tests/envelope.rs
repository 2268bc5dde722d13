//! The sealed envelope under an attacker's hands: every alteration a relay
//! could make yields the one coarse error, and sizes reveal only the bucket.

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_crypto::{
    Context, KeySchedule, Kind, MAX_PLAINTEXT_LEN, OVERHEAD, OpenError, RootKey, SealError,
    bucket_len, open, seal, sealed_len,
};

fn keys(seed: u8) -> KeySchedule {
    KeySchedule::new(RootKey::from_bytes([seed; 32]))
}

fn ctx(seq: u64) -> Context {
    Context::new("test-bundle")
        .bytes(b"vault-a")
        .bytes(b"device-1")
        .u64(seq)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(len in 0usize..=64 * 1024, seed: u64, fill: u8) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let ks = keys(1);
        let plain: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
        let blob = seal(&ks.log_key(), Kind::LogBundle, &ctx(7), &plain, &mut rng).unwrap();
        prop_assert_eq!(blob.len(), sealed_len(len));
        let back = open(&ks.log_key(), Kind::LogBundle, &ctx(7), &blob).unwrap();
        prop_assert_eq!(&back[..], &plain[..]);
    }

    #[test]
    fn every_bit_flip_is_rejected(len in 0usize..700, seed: u64) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let ks = keys(2);
        let plain = vec![0x33u8; len];
        let blob = seal(&ks.log_key(), Kind::LogBundle, &ctx(1), &plain, &mut rng).unwrap();
        let mut tampered = blob.clone();
        for i in 0..blob.len() * 8 {
            tampered[i / 8] ^= 1 << (i % 8);
            prop_assert_eq!(
                open(&ks.log_key(), Kind::LogBundle, &ctx(1), &tampered),
                Err(OpenError),
                "bit {} flipped", i
            );
            tampered[i / 8] ^= 1 << (i % 8);
        }
        prop_assert!(open(&ks.log_key(), Kind::LogBundle, &ctx(1), &tampered).is_ok());
    }

    #[test]
    fn truncation_extension_and_misuse_are_rejected(len in 0usize..5000, seed: u64, cut in 1usize..64, extra in proptest::collection::vec(any::<u8>(), 1..64)) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let ks = keys(3);
        let plain = vec![7u8; len];
        let blob = seal(&ks.store_key(), Kind::LocalRecord, &ctx(5), &plain, &mut rng).unwrap();
        let open_as = |b: &[u8]| open(&ks.store_key(), Kind::LocalRecord, &ctx(5), b);
        prop_assert!(open_as(&blob).is_ok());
        // Truncation.
        prop_assert_eq!(open_as(&blob[..blob.len() - cut]), Err(OpenError));
        prop_assert_eq!(open_as(&blob[..blob.len() / 2]), Err(OpenError));
        prop_assert_eq!(open_as(&[]), Err(OpenError));
        // Extension with arbitrary bytes.
        let mut longer = blob.clone();
        longer.extend_from_slice(&extra);
        prop_assert_eq!(open_as(&longer), Err(OpenError));
        // A context from another slot, sequence, device or vault.
        for other in [ctx(6), Context::new("test-bundle").bytes(b"vault-b").bytes(b"device-1").u64(5),
                      Context::new("test-bundle").bytes(b"vault-a").bytes(b"device-2").u64(5),
                      Context::new("other-domain").bytes(b"vault-a").bytes(b"device-1").u64(5)] {
            prop_assert_eq!(open(&ks.store_key(), Kind::LocalRecord, &other, &blob), Err(OpenError));
        }
        // The wrong kind, and the right kind with the kind byte rewritten.
        prop_assert_eq!(open(&ks.store_key(), Kind::LogBundle, &ctx(5), &blob), Err(OpenError));
        let mut rekinded = blob.clone();
        rekinded[5] = Kind::LogBundle.to_byte();
        prop_assert_eq!(open(&ks.store_key(), Kind::LogBundle, &ctx(5), &rekinded), Err(OpenError));
        // The wrong key: another purpose of the same vault, or another vault.
        let log_key = ks.log_key();
        prop_assert_eq!(open(&log_key, Kind::LocalRecord, &ctx(5), &blob), Err(OpenError));
        prop_assert_eq!(open(&keys(4).store_key(), Kind::LocalRecord, &ctx(5), &blob), Err(OpenError));
    }

    #[test]
    fn equal_bucket_means_equal_size(a in 0usize..20_000, b in 0usize..20_000, seed: u64) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let ks = keys(5);
        let sa = seal(&ks.log_key(), Kind::LogSnapshot, &ctx(0), &vec![1; a], &mut rng).unwrap();
        let sb = seal(&ks.log_key(), Kind::LogSnapshot, &ctx(0), &vec![2; b], &mut rng).unwrap();
        prop_assert_eq!(sa.len() == sb.len(), bucket_len(a) == bucket_len(b));
    }
}

#[test]
fn same_bucket_same_size_exhaustive_small() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let ks = keys(6);
    let sizes: Vec<usize> = (0..=252)
        .map(|n| {
            seal(
                &ks.log_key(),
                Kind::Alert,
                &ctx(0),
                &vec![0xee; n],
                &mut rng,
            )
            .unwrap()
            .len()
        })
        .collect();
    assert!(
        sizes.iter().all(|&s| s == OVERHEAD + 256),
        "every blob up to 252 B is 302 B"
    );
}

#[test]
fn fresh_nonce_each_seal() {
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let ks = keys(7);
    let a = seal(&ks.log_key(), Kind::LogBundle, &ctx(0), b"same", &mut rng).unwrap();
    let b = seal(&ks.log_key(), Kind::LogBundle, &ctx(0), b"same", &mut rng).unwrap();
    assert_ne!(a, b);
    assert_ne!(a[6..30], b[6..30], "nonces differ");
}

#[test]
fn too_large_is_refused_and_oversized_blob_does_not_open() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let ks = keys(8);
    let big = vec![0u8; MAX_PLAINTEXT_LEN + 1];
    assert_eq!(
        seal(&ks.log_key(), Kind::LogSnapshot, &ctx(0), &big, &mut rng),
        Err(SealError::TooLarge {
            len: MAX_PLAINTEXT_LEN + 1,
            max: MAX_PLAINTEXT_LEN
        })
    );
    let max = seal(
        &ks.log_key(),
        Kind::LogSnapshot,
        &ctx(0),
        &big[..MAX_PLAINTEXT_LEN],
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        open(&ks.log_key(), Kind::LogSnapshot, &ctx(0), &max).map(|p| p.len()),
        Ok(MAX_PLAINTEXT_LEN)
    );
    let mut over = max;
    over.extend_from_slice(&[0; 4096]);
    assert_eq!(
        open(&ks.log_key(), Kind::LogSnapshot, &ctx(0), &over),
        Err(OpenError)
    );
}

#[test]
fn the_error_says_nothing_specific() {
    assert_eq!(OpenError.to_string(), "sealed blob could not be opened");
}

/// Known-answer blobs made outside the crate (tests/data/envelope_kat.py):
/// blobs of both envelope versions open — the version 1 blobs that devices
/// and nodes still hold, padded to powers of two, and version 2 blobs,
/// padded to quarter octaves — and a blob padded to the other version's
/// bucket is refused, though its tag verifies.
#[test]
fn known_answer_blobs_of_both_versions() {
    let ks = KeySchedule::new(RootKey::from_bytes(core::array::from_fn(|i| i as u8)));
    let mut seen = [0; 2];
    for line in include_str!("data/envelope_kat.txt").lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(' ').collect();
        let (verdict, version, len, padded) = (f[0], f[1], f[2], f[3]);
        let len: usize = len.parse().unwrap();
        let blob = hex::decode(f[4]).unwrap();
        assert_eq!(blob.len(), OVERHEAD + padded.parse::<usize>().unwrap());
        let opened = open(&ks.log_key(), Kind::LogBundle, &ctx(7), &blob);
        match verdict {
            "opens" => {
                let want: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                assert_eq!(
                    opened.as_deref().map(|p| p.to_vec()),
                    Ok(want),
                    "version {version}, {len} B"
                );
                seen[0] += 1;
            }
            _ => {
                assert_eq!(opened, Err(OpenError), "version {version}, {len} B");
                seen[1] += 1;
            }
        }
    }
    assert_eq!(seen, [6, 2]);
}

/// New blobs are version 2: between 1 KiB and 16 KiB a blob is padded to a
/// quarter octave (at most 25 % more), not to the next power of two, so an
/// hour of band readings (~1.2 KB compressed) no longer seals to 2 KiB.
#[test]
fn new_blobs_are_version_2_with_quarter_octave_buckets() {
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let ks = keys(9);
    let blob = seal(
        &ks.log_key(),
        Kind::LogBundle,
        &ctx(0),
        &[5; 1100],
        &mut rng,
    )
    .unwrap();
    assert_eq!(&blob[..6], b"VGIL\x02\x01");
    assert_eq!(blob.len(), OVERHEAD + 1280);
    for (len, bucket) in [
        (0, 256),
        (252, 256),
        (253, 512),
        (1020, 1024),
        (1021, 1280),
        (1276, 1280),
        (1277, 1536),
        (2044, 2048),
        (2045, 2560),
        (4092, 4096),
        (4093, 5120),
        (8189, 10240),
        (16380, 16384),
        (16381, 20480),
        (65536, 69632),
    ] {
        assert_eq!(bucket_len(len), bucket, "{len} B");
    }
    // Never more than a quarter of padding above 1 KiB.
    for len in 1021..40_000 {
        assert!(bucket_len(len) * 4 <= (len + 4) * 5, "{len} B");
    }
}
