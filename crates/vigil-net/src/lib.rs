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
pub use code::{EnrolmentCode, TicketCode};
pub use identity::NodeIdentity;
pub use server::{NodeServer, ServerConfig};

/// ALPN protocol id of this protocol version.
const ALPN: &[u8] = b"vigil/1";
/// The TLS server name devices ask for; the node's certificate is made for it.
const SERVER_NAME: &str = "vigil-node";

/// Application error codes on the wire (stream resets and connection
/// closes); devices read them as [`vigil_proto::CloseReason`].
mod codes {
    /// Normal close.
    pub(crate) const CLOSED: u32 = 0;
    /// The request exceeded the node's frame limit.
    pub(crate) const FRAME_TOO_LARGE: u32 = 1;
    /// The node's handler failed; the session state is gone.
    pub(crate) const HANDLER_FAILED: u32 = 2;
    /// The node is shutting down.
    pub(crate) const SHUTDOWN: u32 = 3;
    /// Over the pre-authentication budget (frame size, requests, bytes).
    pub(crate) const PRE_AUTH_LIMIT: u32 = 4;

    #[cfg(test)]
    #[test]
    fn devices_read_these_codes_as_sent() {
        use vigil_proto::CloseReason;
        for (code, reason) in [
            (CLOSED, CloseReason::Closed),
            (FRAME_TOO_LARGE, CloseReason::FrameTooLarge),
            (HANDLER_FAILED, CloseReason::HandlerFailed),
            (SHUTDOWN, CloseReason::ShuttingDown),
            (PRE_AUTH_LIMIT, CloseReason::PreAuthLimit),
        ] {
            assert_eq!(CloseReason::from_code(code.into()), reason);
        }
    }
}

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A file or socket operation failed while doing `context`.
    #[error("I/O error: {context}: {source}")]
    Io {
        /// What was being done ("binding 0.0.0.0:0", "reading <path>", ...).
        context: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The system has no randomness to offer (for new identity keys).
    #[error("I/O error: system randomness unavailable: {0}")]
    Randomness(#[source] getrandom::Error),
    /// The runtime that drives connections has stopped.
    #[error("I/O error: network runtime stopped")]
    RuntimeStopped,
    /// The TLS configuration could not be built.
    #[error("TLS error: {0}")]
    Tls(#[source] rustls::Error),
    /// The TLS configuration offers no cipher suite QUIC can start with.
    #[error("TLS error: {0}")]
    QuicTls(#[source] quinn::crypto::rustls::NoInitialCipherSuite),
    /// The node's self-signed certificate could not be generated.
    #[error("TLS error: generating certificate: {0}")]
    Certificate(#[source] rcgen::Error),
    /// The idle timeout does not fit QUIC's encoding.
    #[error("TLS error: idle timeout too large")]
    IdleTimeout(#[source] quinn::VarIntBoundsExceeded),
    /// The connection attempt could not start (endpoint stopping, bad
    /// address, ...).
    #[error("connection failed: {addr}: {source}")]
    ConnectSetup {
        /// The node's address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: quinn::ConnectError,
    },
    /// The connection could not be established (refused, handshake failed, ...).
    #[error("connection failed: {addr}: {source}")]
    Connect {
        /// The node's address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: quinn::ConnectionError,
    },
    /// The node presented a certificate other than the pinned one.
    #[error("node certificate does not match the enrolment code's fingerprint")]
    FingerprintMismatch,
    /// No connection within the connect timeout.
    #[error("connection timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// An enrolment code string is malformed (the message says how).
    #[error("bad enrolment code: {0}")]
    BadEnrolmentCode(String),
    /// The node identity files exist but are unusable (the message says
    /// which and how).
    #[error("corrupt node identity: {0}")]
    CorruptIdentity(String),
}

impl NetError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        NetError::Io {
            context: context.into(),
            source,
        }
    }
}
