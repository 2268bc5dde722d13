//! The fuzz targets' bodies, shared by the cargo-fuzz binaries in
//! `fuzz_targets/` and the corpus generator (`seeds/`).
//!
//! Each target takes arbitrary bytes and panics only on a broken invariant;
//! bad input must come back as a typed error (docs/spec.md §8, §9).
#![forbid(unsafe_code)]

pub mod relay;
pub mod seeds;

use vigil_crypto::{
    AlertKey, Context, Kind, LogKey, RootKey, WRAPPED_LEN, WrappedKey, X25519Identity, open, seal,
    unwrap, wrap,
};
use vigil_proto::{decode_request, decode_response, encode_request, encode_response};

/// A request frame: an error, or a request whose encoding decodes back to
/// the same encoding (compared as bytes: a NaN threshold is not equal to itself).
pub fn request_frame(data: &[u8]) {
    if let Ok(req) = decode_request(data) {
        let once = encode_request(&req);
        assert!(once.len() <= data.len(), "re-encoding grew the frame");
        let again = decode_request(&once).expect("our own encoding decodes");
        assert_eq!(
            encode_request(&again),
            once,
            "request round trip is unstable"
        );
    }
}

/// A response frame, as a device receives it from a node.
pub fn response_frame(data: &[u8]) {
    if let Ok(resp) = decode_response(data) {
        let once = encode_response(&resp);
        assert!(once.len() <= data.len(), "re-encoding grew the frame");
        let again = decode_response(&once).expect("our own encoding decodes");
        assert_eq!(
            encode_response(&again),
            once,
            "response round trip is unstable"
        );
    }
}

/// Every kind, so the first input byte picks any of them.
const KINDS: [Kind; 6] = [
    Kind::LogBundle,
    Kind::LogSnapshot,
    Kind::LocalRecord,
    Kind::Alert,
    Kind::PairingInfo,
    Kind::ShredNotice,
];

fn fixed_log_key() -> LogKey {
    LogKey::from_bytes([0x42; 32])
}

/// Envelope `open`: arbitrary bytes never open (without the key no one can
/// forge), and a blob sealed here opens to its plaintext but no longer opens
/// once any one byte of it is changed.
///
/// Input: `kind selector (1) | flip position (2) | bytes`. The bytes are
/// first tried as a sealed blob, then sealed as a plaintext.
pub fn envelope(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let kind = KINDS[usize::from(sel) % KINDS.len()];
    let (flip, body) = match rest {
        [a, b, body @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), body),
        _ => (0, rest),
    };
    let key = fixed_log_key();
    let ctx = Context::new("vigil/fuzz").u64(u64::from(sel));
    // A blob the fuzzer made up cannot carry a valid tag (2^-128).
    if let Ok(plain) = open(&key, kind, &ctx, body) {
        panic!(
            "forged blob of {} bytes opened to {} bytes",
            body.len(),
            plain.len()
        );
    }
    // The nonce comes from the input, so a crash reproduces exactly.
    let mut rng = seeds::rng_from(body);
    let sealed = seal(&key, kind, &ctx, body, &mut rng).expect("input is below the maximum size");
    let opened = open(&key, kind, &ctx, &sealed).expect("a sealed blob opens");
    assert_eq!(&opened[..], body, "round trip changed the plaintext");
    let mut tampered = sealed.clone();
    let at = flip % tampered.len();
    tampered[at] ^= 1 << (sel % 8);
    assert!(
        open(&key, kind, &ctx, &tampered).is_err(),
        "a blob with byte {at} flipped still opens"
    );
    let other = KINDS[(usize::from(sel) + 1) % KINDS.len()];
    assert!(
        open(&key, other, &ctx, &sealed).is_err(),
        "opened as another kind"
    );
    let other_ctx = Context::new("vigil/fuzz").u64(u64::from(sel) + 1);
    assert!(
        open(&key, kind, &other_ctx, &sealed).is_err(),
        "opened in another context"
    );
}

/// Key `unwrap`: any 82 bytes as a wrapped key give a key or an error (a
/// wrap is not a signature: anyone with the public key can make a valid
/// one, so no "never unwraps" here); a key wrapped here (ephemeral key from
/// the input) unwraps to itself, only as its own kind, only for its
/// identity, and not once any bit is changed.
///
/// Input: `flip position (1) | bit (1) | bytes` (the bytes are the wrapped key,
/// any length, and the seed of the honest wrap).
pub fn unwrap_key(data: &[u8]) {
    let id = X25519Identity::from_bytes([0x24; 32]);
    let (flip, bit, body) = match data {
        [a, b, body @ ..] => (usize::from(*a), *b % 8, body),
        _ => (0, 0, data),
    };
    if let Ok(any) = WrappedKey::from_slice(body) {
        // A wrap carries its kind: one that unwraps as a root cannot also
        // unwrap as an alert key.
        let root = unwrap::<RootKey>(&id, &any);
        let alert = unwrap::<AlertKey>(&id, &any);
        assert!(
            root.is_err() || alert.is_err(),
            "one wrap unwrapped as two kinds"
        );
    }
    let mut rng = seeds::rng_from(body);
    let root = RootKey::generate(&mut rng);
    let Ok(wrapped) = wrap(&id.public_key(), &root, &mut rng) else {
        return;
    };
    let back = unwrap::<RootKey>(&id, &wrapped).expect("an honest wrap unwraps");
    assert_eq!(
        back.expose_secret(),
        root.expose_secret(),
        "unwrapped another key"
    );
    assert!(
        unwrap::<AlertKey>(&id, &wrapped).is_err(),
        "a root unwrapped as an alert key"
    );
    let other = X25519Identity::from_bytes([0x25; 32]);
    assert!(
        unwrap::<RootKey>(&other, &wrapped).is_err(),
        "unwrapped by another identity"
    );
    let mut bytes = *wrapped.as_bytes();
    bytes[flip % WRAPPED_LEN] ^= 1 << bit;
    let tampered = WrappedKey::from_slice(&bytes).expect("same length");
    assert!(
        unwrap::<RootKey>(&id, &tampered).is_err(),
        "a tampered wrap unwrapped"
    );
}
