//! Runs every Wycheproof vector (copied into `tests/data/wycheproof/`, with
//! its licence) against the primitives this crate is built on. Kept inside the
//! crate so the X25519 vectors exercise our own contributory check.

use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, XChaCha20Poly1305};
use hkdf::Hkdf;
use serde_json::Value;
use sha2::Sha256;

use crate::wrap::{X25519Identity, X25519PublicKey};

struct Case {
    group: usize,
    id: u64,
    result: String,
    flags: Vec<String>,
    t: Value,
}

impl Case {
    fn hex(&self, field: &str) -> Vec<u8> {
        hex::decode(
            self.t[field]
                .as_str()
                .unwrap_or_else(|| panic!("tc {} lacks {field}", self.id)),
        )
        .unwrap_or_else(|e| panic!("tc {}: bad hex in {field}: {e}", self.id))
    }
}

fn load(file: &str, expected: usize) -> (Vec<Value>, Vec<Case>) {
    let path = format!(
        "{}/tests/data/wycheproof/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    let groups = doc["testGroups"].as_array().expect("testGroups").clone();
    let mut cases = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        for t in g["tests"].as_array().expect("tests") {
            cases.push(Case {
                group: gi,
                id: t["tcId"].as_u64().expect("tcId"),
                result: t["result"].as_str().expect("result").to_owned(),
                flags: t["flags"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| f.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                t: t.clone(),
            });
        }
    }
    assert!(!cases.is_empty(), "{file} yielded zero cases");
    assert_eq!(cases.len(), expected, "{file}: unexpected number of cases");
    (groups, cases)
}

/// Checks every case, prints per-group counts, and fails listing every bad tcId.
fn run(file: &str, expected: usize, check: impl Fn(&Value, &Case) -> Result<(), String>) {
    let (groups, cases) = load(file, expected);
    let mut failures = Vec::new();
    let mut per_group = vec![0usize; groups.len()];
    for c in &cases {
        per_group[c.group] += 1;
        if let Err(e) = check(&groups[c.group], c) {
            failures.push(format!("tc {} ({}): {e}", c.id, c.result));
        }
    }
    for (gi, n) in per_group.iter().enumerate() {
        eprintln!("{file}: group {gi}: ran {n} cases");
    }
    eprintln!(
        "{file}: ran {} cases, {} failed",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
}

fn aead_case<A: KeyInit + AeadInOut>(c: &Case) -> Result<(), String> {
    let (key, iv, aad, msg, ct, tag) = (
        c.hex("key"),
        c.hex("iv"),
        c.hex("aad"),
        c.hex("msg"),
        c.hex("ct"),
        c.hex("tag"),
    );
    let valid = c.result == "valid";
    let cipher = A::new_from_slice(&key).map_err(|e| format!("key: {e}"))?;
    // A nonce of the wrong size cannot even be expressed in the typed API:
    // that is the rejection an "invalid" size vector asks for.
    let Ok(nonce) = chacha20poly1305::aead::Nonce::<A>::try_from(iv.as_slice()) else {
        return if valid {
            Err("valid vector with unusable nonce".into())
        } else {
            Ok(())
        };
    };
    let Ok(tag_arr) = chacha20poly1305::aead::Tag::<A>::try_from(tag.as_slice()) else {
        return if valid {
            Err("valid vector with unusable tag".into())
        } else {
            Ok(())
        };
    };
    let mut buf = ct.clone();
    let opened = cipher
        .decrypt_inout_detached(&nonce, &aad, buf.as_mut_slice().into(), &tag_arr)
        .is_ok();
    if valid {
        if !opened || buf != msg {
            return Err("valid vector did not decrypt to msg".into());
        }
        let mut enc = msg.clone();
        let t = cipher
            .encrypt_inout_detached(&nonce, &aad, enc.as_mut_slice().into())
            .map_err(|e| format!("encrypt: {e}"))?;
        if enc != ct || t.as_slice() != tag.as_slice() {
            return Err("encryption differs from ct|tag".into());
        }
    } else if opened {
        return Err("invalid vector was accepted".into());
    }
    Ok(())
}

#[test]
fn chacha20_poly1305() {
    run("chacha20_poly1305_test.json", 325, |_, c| {
        aead_case::<ChaCha20Poly1305>(c)
    });
}

#[test]
fn xchacha20_poly1305() {
    run("xchacha20_poly1305_test.json", 315, |_, c| {
        aead_case::<XChaCha20Poly1305>(c)
    });
}

#[test]
fn x25519() {
    run("x25519_test.json", 518, |_, c| {
        let (public, private, shared) = (c.hex("public"), c.hex("private"), c.hex("shared"));
        let public: [u8; 32] = public.try_into().map_err(|_| "public length")?;
        let private: [u8; 32] = private.try_into().map_err(|_| "private length")?;
        let id = X25519Identity::from_bytes(private);
        match id.agree(&X25519PublicKey::from_bytes(public)) {
            Some(s) if s.as_slice() == shared.as_slice() => Ok(()),
            Some(_) => Err("shared secret differs".into()),
            // Our contributory check refuses an all-zero result: a pass for
            // exactly the vectors whose shared secret is zero.
            None if shared.iter().all(|&b| b == 0)
                && c.flags.iter().any(|f| f == "ZeroSharedSecret") =>
            {
                Ok(())
            }
            None => Err("refused a non-zero shared secret".into()),
        }
    });
}

#[test]
fn hkdf_sha256() {
    run("hkdf_sha256_test.json", 86, |_, c| {
        let (ikm, salt, info, okm) = (c.hex("ikm"), c.hex("salt"), c.hex("info"), c.hex("okm"));
        let size = c.t["size"].as_u64().ok_or("size")? as usize;
        let mut out = vec![0u8; size];
        let salt = (!salt.is_empty()).then_some(salt.as_slice());
        let r = Hkdf::<Sha256>::new(salt, &ikm).expand(&info, &mut out);
        match (c.result.as_str(), r) {
            ("valid", Ok(())) if out == okm => Ok(()),
            ("valid", Ok(())) => Err("okm differs".into()),
            ("valid", Err(e)) => Err(format!("valid vector errored: {e}")),
            (_, Err(_)) => Ok(()),
            (_, Ok(())) => Err("invalid size accepted".into()),
        }
    });
}
