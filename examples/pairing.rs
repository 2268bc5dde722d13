//! Pair a second device into a vault and read what the first one sealed.
//!
//! Run with `cargo run --example pairing`. It walks through what the resident
//! sees: the joiner's key, the wrapped root crossing the (untrusted) relay,
//! the 6-digit code both screens show, and a reading sealed on the phone that
//! only the paired tablet opens.

use vigil::crypto::rand_core::UnwrapErr;
use vigil::crypto::{
    Context, KeySchedule, Kind, RootKey, X25519Identity, open, seal, sealed_len, unwrap, wrap,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = UnwrapErr(getrandom::SysRng);

    // The phone creates the period's vault.
    let phone = KeySchedule::new(RootKey::generate(&mut rng));
    println!("phone:  created vault {}", phone.vault_id());

    // The tablet shows its public key (as a QR code or text, in an app).
    let tablet_identity = X25519Identity::generate(&mut rng);
    let tablet_public = tablet_identity.public_key();
    println!("tablet: my pairing key is {tablet_public:?}");

    // The phone wraps the root to it; the wrapped bytes may cross the relay.
    let wrapped = wrap(&tablet_public, phone.root(), &mut rng)?;
    println!(
        "phone:  sent the wrapped root ({} bytes) through the relay",
        wrapped.as_bytes().len()
    );

    // The tablet unwraps it; both show the code for the resident to compare.
    let tablet = KeySchedule::new(unwrap::<RootKey>(&tablet_identity, &wrapped)?);
    let (a, b) = (
        phone.pairing_code(&tablet_public),
        tablet.pairing_code(&tablet_public),
    );
    println!(
        "phone shows {a}, tablet shows {b}: {}",
        if a == b { "match" } else { "MISMATCH" }
    );

    // A reading sealed on the phone opens on the tablet, in the same slot only.
    let ctx = Context::new("example-bundle")
        .bytes(phone.vault_id().as_bytes())
        .u64(1);
    let reading = b"body temperature 37.6 C at 08:10";
    let blob = seal(&phone.log_key(), Kind::LogBundle, &ctx, reading, &mut rng)?;
    let plain = open(&tablet.log_key(), Kind::LogBundle, &ctx, &blob)?;
    println!(
        "tablet: opened a {}-byte blob (padded; {} bytes of plaintext): {:?}",
        blob.len(),
        plain.len(),
        String::from_utf8_lossy(&plain)
    );
    assert_eq!(blob.len(), sealed_len(reading.len()));
    let moved = Context::new("example-bundle")
        .bytes(phone.vault_id().as_bytes())
        .u64(2);
    let err = open(&tablet.log_key(), Kind::LogBundle, &moved, &blob).unwrap_err();
    println!("relay moved the blob to slot 2: {err}");
    Ok(())
}
