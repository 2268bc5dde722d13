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

const TICKET_PREFIX: &str = "vigil-ticket1";

/// What staff hand a resident to enrol (docs/spec.md §15): the node's
/// enrolment code and a one-time ticket. Display/FromStr as one string:
/// `vigil-ticket1/<socket addr>/<x25519 key>/<cert fingerprint>/<receipt key>/<ticket id, 32 lowercase hex>/<ticket secret, 64 lowercase hex>`
/// (the four node fields as in [`EnrolmentCode`]). It holds a secret:
/// `Debug` redacts it, and whoever reads the string may enrol once.
#[derive(PartialEq, Eq)]
pub struct TicketCode {
    /// The node.
    pub node: EnrolmentCode,
    /// The ticket.
    pub ticket: vigil_proto::Ticket,
}

impl fmt::Debug for TicketCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketCode")
            .field("node", &self.node)
            .field("ticket", &hex::encode(self.ticket.id))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for TicketCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = self.node.to_string();
        let rest = node.strip_prefix(PREFIX).unwrap_or(&node);
        write!(
            f,
            "{TICKET_PREFIX}{rest}/{}/{}",
            hex::encode(self.ticket.id),
            hex::encode(self.ticket.secret.expose_secret())
        )
    }
}

impl FromStr for TicketCode {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Self, NetError> {
        let s = s.trim();
        let Some(rest) = s
            .strip_prefix(TICKET_PREFIX)
            .and_then(|r| r.strip_prefix('/'))
        else {
            if s.starts_with(PREFIX) {
                return Err(bad(
                    "this is a node's enrolment code, not a ticket: staff give each resident a ticket (`vigil-ticket1/...`) with `vigil-node residents add`",
                ));
            }
            return Err(bad(format!("a ticket starts with `{TICKET_PREFIX}/`")));
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let [addr, public, fingerprint, receipt, id, secret] = parts[..] else {
            return Err(bad(format!(
                "expected 7 '/'-separated fields ({TICKET_PREFIX}/addr/key/fingerprint/receipt key/ticket id/secret), found {}",
                parts.len() + 1
            )));
        };
        let node: EnrolmentCode =
            format!("{PREFIX}/{addr}/{public}/{fingerprint}/{receipt}").parse()?;
        if id.len() != 32 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("ticket id must be 32 lowercase hex digits"));
        }
        let mut tid = [0u8; 16];
        hex::decode_to_slice(id, &mut tid).map_err(|e| bad(format!("ticket id: {e}")))?;
        let secret = vigil_crypto::Zeroizing::new(parse_hex32("ticket secret", secret)?);
        Ok(TicketCode {
            node,
            ticket: vigil_proto::Ticket {
                id: tid,
                secret: vigil_proto::TicketSecret::from_bytes(*secret),
            },
        })
    }
}
