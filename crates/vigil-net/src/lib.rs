//! Vigil's QUIC transport (docs/spec.md §9): the only async crate. The
//! drivers here just move frames between quinn and the sans-I/O handlers of
//! `vigil-proto`; they never look inside a frame.
//!
//! - [`NodeServer`] runs a node endpoint on the caller's tokio runtime and
//!   feeds each request frame to a per-connection [`vigil_proto::FrameHandler`].
//! - [`DeviceConnection`] is the device side, with a blocking API, pinning the
//!   node's certificate by the fingerprint in an [`EnrolmentCode`];
//!   [`ClientEndpoint`] shares one socket and runtime among many of them.
//!
//! TLS is rustls with the ring provider and TLS 1.3 only; there is no web PKI.
#![forbid(unsafe_code)]

mod client;
mod code;
mod identity;
mod server;

pub use client::{ClientEndpoint, DeviceConnection, SHARED_RECV_BUFFER};
pub use code::EnrolmentCode;
pub use identity::NodeIdentity;
pub use server::{NodeServer, ServerConfig};

/// ALPN protocol id of this protocol version.
const ALPN: &[u8] = b"vigil/1";
/// The TLS server name devices ask for; the node's certificate is made for it.
const SERVER_NAME: &str = "vigil-node";

/// Application error codes on the wire (stream resets and connection closes).
mod codes {
    /// Normal close.
    pub(crate) const CLOSED: u32 = 0;
    /// The request exceeded the node's frame limit.
    pub(crate) const FRAME_TOO_LARGE: u32 = 1;
    /// The node's handler failed; the session state is gone.
    pub(crate) const HANDLER_FAILED: u32 = 2;
    /// The node is shutting down.
    pub(crate) const SHUTDOWN: u32 = 3;

    /// A human-readable meaning for a code received from the peer.
    pub(crate) fn describe(code: u64) -> &'static str {
        match code {
            0 => "closed",
            1 => "request frame too large",
            2 => "node handler failed",
            3 => "node shutting down",
            _ => "unknown error code",
        }
    }
}

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A file or socket operation failed.
    #[error("I/O error: {0}")]
    Io(String),
    /// The TLS or QUIC configuration could not be built.
    #[error("TLS error: {0}")]
    Tls(String),
    /// The connection could not be established (refused, handshake failed, ...).
    #[error("connection failed: {0}")]
    Connect(String),
    /// The node presented a certificate other than the pinned one.
    #[error("node certificate does not match the enrolment code's fingerprint")]
    FingerprintMismatch,
    /// No connection within the connect timeout.
    #[error("connection timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// An enrolment code string is malformed.
    #[error("bad enrolment code: {0}")]
    BadEnrolmentCode(String),
    /// The node identity files exist but are unusable.
    #[error("corrupt node identity: {0}")]
    CorruptIdentity(String),
}
