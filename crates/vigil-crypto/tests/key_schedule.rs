//! Key schedule: known answers (computed outside this crate), separation per
//! purpose and per vault, redacted Debug.

use std::collections::HashSet;

use vigil_crypto::{KeySchedule, NodeId, RootKey, X25519PublicKey};

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).expect("hex").try_into().expect("length")
}

/// Parses `tests/data/key_schedule_kat.txt` into blocks of `name = value`.
fn kat_blocks() -> Vec<Vec<(String, String)>> {
    let text = include_str!("data/key_schedule_kat.txt");
    let mut blocks = vec![Vec::new()];
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !blocks.last().expect("one block").is_empty() {
                blocks.push(Vec::new());
            }
            continue;
        }
        let (k, v) = line.split_once(" = ").expect("name = value");
        blocks
            .last_mut()
            .expect("one block")
            .push((k.to_owned(), v.to_owned()));
    }
    blocks.retain(|b| !b.is_empty());
    blocks
}

#[test]
fn known_answers() {
    let blocks = kat_blocks();
    assert_eq!(
        blocks.len(),
        2,
        "KAT file yielded an unexpected number of blocks"
    );
    let mut checked = 0;
    for block in blocks {
        let get = |name: &str| {
            block
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("missing {name}"))
        };
        let ks = KeySchedule::new(RootKey::from_bytes(unhex(&get("root"))));
        let node = X25519PublicKey::from_bytes(unhex(&get("node_public")));
        let node_id = NodeId::new(node, unhex(&get("node_cert_sha256")));
        let joiner = X25519PublicKey::from_bytes(unhex(&get("joiner_public")));
        assert_eq!(hex::encode(ks.vault_id().as_bytes()), get("vault_id"));
        assert_eq!(hex::encode(ks.log_key().expose_secret()), get("log_key"));
        assert_eq!(
            hex::encode(ks.store_key().expose_secret()),
            get("store_key")
        );
        assert_eq!(
            hex::encode(ks.mailbox_key(&node_id).expose_secret()),
            get("mailbox_key")
        );
        assert_eq!(
            hex::encode(ks.mailbox_key(&node_id).verifier().to_bytes()),
            get("mailbox_verifier")
        );
        assert_eq!(
            hex::encode(ks.alert_key(&node).expose_secret()),
            get("alert_key")
        );
        // The grant id (§12: SHA-256("vigil/v1/grant-id" || K)[..16]) and
        // the proof that deletes the grant (§13).
        let alert_key = ks.alert_key(&node);
        let grant_id: [u8; 16] = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(b"vigil/v1/grant-id");
            h.update(alert_key.expose_secret());
            h.finalize()[..16].try_into().unwrap()
        };
        assert_eq!(hex::encode(grant_id), get("grant_id"));
        let proof = alert_key.shred_proof(&ks.vault_id(), &grant_id);
        assert_eq!(hex::encode(proof), get("grant_shred_proof"));
        assert!(alert_key.verify_shred_proof(&ks.vault_id(), &grant_id, &proof));
        let mut bad = proof;
        bad[31] ^= 1;
        assert!(!alert_key.verify_shred_proof(&ks.vault_id(), &grant_id, &bad));
        assert_eq!(
            format!("{:06}", ks.pairing_code(&joiner).value()),
            get("pairing_code")
        );
        checked += 1;
    }
    assert_eq!(checked, 2);
}

#[test]
fn keys_differ_per_purpose_and_per_vault() {
    let mut seen = HashSet::new();
    for r in 0u8..8 {
        let ks = KeySchedule::new(RootKey::from_bytes([r; 32]));
        let nodes = [[1u8; 32], [2u8; 32]].map(X25519PublicKey::from_bytes);
        // Nodes that differ in their X25519 key only, or in their
        // certificate only, get different mailbox keys.
        let node_ids = [
            NodeId::new(nodes[0], [7; 32]),
            NodeId::new(nodes[1], [7; 32]),
            NodeId::new(nodes[0], [8; 32]),
        ];
        let keys = [
            *ks.log_key().expose_secret(),
            *ks.store_key().expose_secret(),
            *ks.mailbox_key(&node_ids[0]).expose_secret(),
            *ks.mailbox_key(&node_ids[1]).expose_secret(),
            *ks.mailbox_key(&node_ids[2]).expose_secret(),
            *ks.alert_key(&nodes[0]).expose_secret(),
            *ks.alert_key(&nodes[1]).expose_secret(),
            *ks.root().expose_secret(),
        ];
        for k in keys {
            assert!(
                seen.insert(k),
                "a derived key repeated across purposes or vaults"
            );
        }
        assert!(seen.insert({
            let mut v = [0u8; 32];
            v[..16].copy_from_slice(ks.vault_id().as_bytes());
            v
        }));
    }
    assert_eq!(seen.len(), 8 * 9);
}

#[test]
fn debug_prints_no_secret_bytes() {
    let root_bytes = [0x5au8; 32];
    let ks = KeySchedule::new(RootKey::from_bytes(root_bytes));
    let node = X25519PublicKey::from_bytes([9; 32]);
    let node_id = NodeId::new(node, [10; 32]);
    let secrets: Vec<([u8; 32], String)> = vec![
        (root_bytes, format!("{:?}", ks.root())),
        (*ks.log_key().expose_secret(), format!("{:?}", ks.log_key())),
        (
            *ks.store_key().expose_secret(),
            format!("{:?}", ks.store_key()),
        ),
        (
            *ks.mailbox_key(&node_id).expose_secret(),
            format!("{:?}", ks.mailbox_key(&node_id)),
        ),
        (
            *ks.alert_key(&node).expose_secret(),
            format!("{:?}", ks.alert_key(&node)),
        ),
        (root_bytes, format!("{ks:?}")),
    ];
    for (bytes, printed) in secrets {
        let lower = printed.to_lowercase();
        // No run of the secret's bytes may appear, in hex or as a decimal list
        // (single bytes would match ordinary words such as "redacted").
        for w in bytes.windows(3) {
            assert!(!lower.contains(&hex::encode(w)), "{printed} leaks bytes");
            let dec = format!("{w:?}");
            assert!(
                !printed.contains(&dec[1..dec.len() - 1]),
                "{printed} leaks bytes"
            );
        }
        assert!(printed.contains("redacted"), "{printed}");
    }
}

#[test]
fn equality_is_by_value() {
    assert_eq!(RootKey::from_bytes([1; 32]), RootKey::from_bytes([1; 32]));
    assert_ne!(RootKey::from_bytes([1; 32]), RootKey::from_bytes([2; 32]));
}
