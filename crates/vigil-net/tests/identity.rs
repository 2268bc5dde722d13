//! Node identity persistence.

use vigil_net::{NetError, NodeIdentity};

#[test]
fn identity_persists_across_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    let first = NodeIdentity::load_or_create(&path).unwrap();
    let again = NodeIdentity::load_or_create(&path).unwrap();
    assert_eq!(first.fingerprint(), again.fingerprint());
    assert_eq!(first.x25519().public_key(), again.x25519().public_key());
    // The fingerprint is the certificate file's SHA-256.
    let cert = std::fs::read(path.join("node-cert.der")).unwrap();
    use sha2::Digest;
    assert_eq!(
        <[u8; 32]>::from(sha2::Sha256::digest(&cert)),
        first.fingerprint()
    );
    assert_eq!(
        std::fs::read(path.join("node-x25519.key")).unwrap().len(),
        32
    );
    // A different directory is a different node.
    let other = NodeIdentity::load_or_create(&dir.path().join("other")).unwrap();
    assert_ne!(other.fingerprint(), first.fingerprint());
}

#[cfg(unix)]
#[test]
fn secret_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    NodeIdentity::load_or_create(dir.path()).unwrap();
    for name in ["node-key.der", "node-x25519.key"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
}

fn expect_corrupt(dir: &std::path::Path, what: &str) {
    match NodeIdentity::load_or_create(dir) {
        Err(NetError::CorruptIdentity(msg)) => assert!(msg.contains(what), "{msg}"),
        other => panic!("expected CorruptIdentity mentioning {what}, got {other:?}"),
    }
}

#[test]
fn corrupted_or_partial_identity_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    NodeIdentity::load_or_create(d).unwrap();
    let good_key = std::fs::read(d.join("node-key.der")).unwrap();
    let good_cert = std::fs::read(d.join("node-cert.der")).unwrap();

    std::fs::write(d.join("node-x25519.key"), [7u8; 31]).unwrap();
    expect_corrupt(d, "32 bytes");
    std::fs::write(d.join("node-x25519.key"), [7u8; 32]).unwrap();
    NodeIdentity::load_or_create(d).unwrap();

    std::fs::write(d.join("node-key.der"), b"not a key").unwrap();
    expect_corrupt(d, "node-key.der");
    std::fs::write(d.join("node-key.der"), &good_key).unwrap();

    std::fs::write(d.join("node-cert.der"), &good_cert[..good_cert.len() / 2]).unwrap();
    expect_corrupt(d, "node-cert.der");

    // Another node's certificate does not match this key.
    let other = tempfile::tempdir().unwrap();
    NodeIdentity::load_or_create(other.path()).unwrap();
    std::fs::copy(other.path().join("node-cert.der"), d.join("node-cert.der")).unwrap();
    expect_corrupt(d, "node-cert.der");

    // A missing file is never silently replaced: devices pin the old identity.
    std::fs::remove_file(d.join("node-cert.der")).unwrap();
    expect_corrupt(d, "node-cert.der missing");
    assert!(!d.join("node-cert.der").exists());
}

#[test]
fn load_never_creates_an_identity() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    assert!(NodeIdentity::load(&path).unwrap().is_none());
    assert!(!path.exists(), "load created the directory");
    let made = NodeIdentity::load_or_create(&path).unwrap();
    let loaded = NodeIdentity::load(&path).unwrap().expect("an identity");
    assert_eq!(made.fingerprint(), loaded.fingerprint());
    std::fs::remove_file(path.join("node-x25519.key")).unwrap();
    assert!(matches!(
        NodeIdentity::load(&path),
        Err(NetError::CorruptIdentity(_))
    ));
}
