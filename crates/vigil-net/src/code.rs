//! The enrolment code: what a device needs to reach and pin a node.

use core::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use vigil_crypto::{NodeId, VerifyKey, X25519PublicKey};

use crate::NetError;

const PREFIX: &str = "vigil1";

/// What a device needs to reach and pin a node. Display/FromStr as one string:
/// `vigil1/<socket addr>/<x25519 public key, 64 lowercase hex>/<cert sha256 fingerprint, 64 lowercase hex>/<ed25519 receipt key, 64 lowercase hex>`
/// (IPv6 addresses in the `[::1]:port` form).
///
/// Parsing rejects port 0 and unspecified addresses (`0.0.0.0`, `::`),
/// which no device can reach, and upper-case hex (the form is canonical).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrolmentCode {
    /// Where the node listens.
    pub addr: SocketAddr,
    /// The node's X25519 public key (alert keys are wrapped to it).
    pub node_public: X25519PublicKey,
    /// SHA-256 of the node's TLS certificate (DER), pinned on connect.
    pub fingerprint: [u8; 32],
    /// The node's Ed25519 key, which signs deletion receipts.
    pub receipt_key: VerifyKey,
}

impl EnrolmentCode {
    /// The node this code names: its X25519 key and pinned certificate
    /// (docs/spec.md §1), which the mailbox key is derived for.
    pub fn node_id(&self) -> NodeId {
        NodeId::new(self.node_public, self.fingerprint)
    }
}

impl fmt::Display for EnrolmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}/{}/{}/{}/{}",
            self.addr,
            hex::encode(self.node_public.as_bytes()),
            hex::encode(self.fingerprint),
            hex::encode(self.receipt_key.as_bytes())
        )
    }
}

fn bad(msg: impl Into<String>) -> NetError {
    NetError::BadEnrolmentCode(msg.into())
}

fn parse_hex32(field: &str, s: &str) -> Result<[u8; 32], NetError> {
    if s.len() != 64 {
        return Err(bad(format!(
            "{field} must be 64 hex digits, found {} characters",
            s.len()
        )));
    }
    if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad(format!("{field} must be lowercase hex digits")));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| bad(format!("{field}: {e}")))?;
    Ok(out)
}

impl FromStr for EnrolmentCode {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Self, NetError> {
        // Tolerate surrounding whitespace from copy and paste.
        let parts: Vec<&str> = s.trim().split('/').collect();
        let [prefix, addr, public, fingerprint, receipt] = parts[..] else {
            return Err(bad(format!(
                "expected 5 '/'-separated fields (vigil1/addr/key/fingerprint/receipt key), found {}",
                parts.len()
            )));
        };
        if prefix != PREFIX {
            return Err(bad(format!("expected prefix `{PREFIX}`, found `{prefix}`")));
        }
        let addr: SocketAddr = addr.parse().map_err(|_| {
            bad(format!(
                "`{addr}` is not a socket address (ip:port or [ipv6]:port)"
            ))
        })?;
        if addr.port() == 0 {
            return Err(bad("port 0 is not reachable"));
        }
        if addr.ip().is_unspecified() {
            return Err(bad(format!("{} is not a reachable address", addr.ip())));
        }
        Ok(Self {
            addr,
            node_public: X25519PublicKey::from_bytes(parse_hex32("node public key", public)?),
            fingerprint: parse_hex32("certificate fingerprint", fingerprint)?,
            receipt_key: VerifyKey::from_bytes(parse_hex32("receipt key", receipt)?),
        })
    }
}
