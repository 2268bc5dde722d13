//! The joiner code (docs/spec.md §10): how a joining device's X25519 public
//! key travels to the first device, typed or scanned. One codec for the CLI
//! and the app bindings.

use sha2::{Digest, Sha256};

use crate::X25519PublicKey;

/// What every joiner code starts with.
pub const JOINER_CODE_PREFIX: &str = "vigil-join1/";

/// Hex digits of checksum after the key's 64.
const CHECK_HEX: usize = 8;

/// Why a string is not a joiner code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinerCodeError {
    /// Not `vigil-join1/` followed by 72 hex digits.
    #[error("expected {JOINER_CODE_PREFIX}<72 hex digits>")]
    Malformed,
    /// Well formed, but the checksum does not match the key (a typo).
    #[error("the joiner code fails its checksum (a typo?)")]
    Checksum,
}

/// The joiner code's checksum: the first 4 bytes of
/// SHA-256("vigil/v1/join-code" || key). It catches typing mistakes only;
/// anyone can compute it, so it proves nothing about who made the code.
fn join_check(k: &X25519PublicKey) -> [u8; CHECK_HEX / 2] {
    let mut h = Sha256::new();
    h.update(b"vigil/v1/join-code");
    h.update(k.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The joiner code of `key`: `vigil-join1/`, the key in 64 lowercase hex
/// digits, then the 8 of its checksum.
pub fn joiner_code(key: &X25519PublicKey) -> String {
    format!(
        "{JOINER_CODE_PREFIX}{}{}",
        hex::encode(key.as_bytes()),
        hex::encode(join_check(key))
    )
}

/// Parses a joiner code (surrounding whitespace ignored, hex digits of
/// either case). A code whose checksum fails is refused: wrapping the root
/// to a mistyped key would send it to a key nobody holds (or someone's).
pub fn parse_joiner_code(s: &str) -> Result<X25519PublicKey, JoinerCodeError> {
    let h = s
        .trim()
        .strip_prefix(JOINER_CODE_PREFIX)
        .ok_or(JoinerCodeError::Malformed)?
        .to_ascii_lowercase();
    // Split as bytes: a string index inside a multibyte character would panic.
    let h = h.as_bytes();
    if h.len() != 64 + CHECK_HEX {
        return Err(JoinerCodeError::Malformed);
    }
    let mut k = [0u8; 32];
    let mut check = [0u8; CHECK_HEX / 2];
    hex::decode_to_slice(&h[..64], &mut k).map_err(|_| JoinerCodeError::Malformed)?;
    hex::decode_to_slice(&h[64..], &mut check).map_err(|_| JoinerCodeError::Malformed)?;
    let key = X25519PublicKey::from_bytes(k);
    if join_check(&key) != check {
        return Err(JoinerCodeError::Checksum);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> X25519PublicKey {
        X25519PublicKey::from_bytes([7; 32])
    }

    #[test]
    fn a_code_reads_back_as_its_key_in_either_case() {
        let code = joiner_code(&key());
        assert_eq!(code.len(), JOINER_CODE_PREFIX.len() + 72);
        assert_eq!(parse_joiner_code(&code), Ok(key()));
        let upper = format!(
            "  {JOINER_CODE_PREFIX}{}\n",
            code[JOINER_CODE_PREFIX.len()..].to_ascii_uppercase()
        );
        assert_eq!(parse_joiner_code(&upper), Ok(key()));
    }

    #[test]
    fn a_mistyped_digit_fails_the_checksum() {
        let code = joiner_code(&key());
        for i in [JOINER_CODE_PREFIX.len() + 5, code.len() - 1] {
            let mut b = code.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            let typo = String::from_utf8(b).unwrap();
            assert_eq!(parse_joiner_code(&typo), Err(JoinerCodeError::Checksum));
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let code = joiner_code(&key());
        for bad in [
            String::new(),
            "vigil-join1/".into(),
            code[..code.len() - 8].to_owned(),
            format!("{code}00"),
            code.replacen("vigil-join1/", "vigil-join2/", 1),
            format!("{JOINER_CODE_PREFIX}{}", "g".repeat(72)),
            format!("{JOINER_CODE_PREFIX}{}", "a".repeat(1 << 20)),
        ] {
            assert_eq!(parse_joiner_code(&bad), Err(JoinerCodeError::Malformed));
        }
    }
}

#[cfg(test)]
mod hostile {
    use super::*;

    /// 72 bytes after the prefix, but a two-byte character straddles the
    /// key's end: the parser must refuse it, not split the character.
    #[test]
    fn a_multibyte_character_at_the_key_boundary_is_malformed_not_a_panic() {
        for at in [63, 70] {
            let mut body = "a".repeat(at);
            body.push('é');
            body.push_str(&"a".repeat(72 - at - 2));
            assert_eq!(body.len(), 72);
            let code = format!("{JOINER_CODE_PREFIX}{body}");
            let r = std::panic::catch_unwind(|| parse_joiner_code(&code));
            assert_eq!(r.ok(), Some(Err(JoinerCodeError::Malformed)), "at {at}");
        }
    }
}
