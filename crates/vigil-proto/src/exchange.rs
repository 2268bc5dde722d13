//! The one thing a transport must do for the device side: carry a request
//! frame to the node and bring back its response frame.

use core::fmt;
use std::io;
use std::time::Duration;

use vigil_crypto::NodeId;

/// Why the node reset a stream or closed a connection: the application
/// error code it sent (docs/spec.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// A normal close (code 0).
    Closed,
    /// The request exceeded the node's frame limit (code 1).
    FrameTooLarge,
    /// The node's handler failed; the session state is gone (code 2).
    HandlerFailed,
    /// The node is shutting down (code 3).
    ShuttingDown,
    /// The connection went past what the node allows before it
    /// authenticates (code 4): a request larger than the pre-authentication
    /// frame limit (its stream is reset), or more requests or bytes than the
    /// pre-authentication budget (the connection is closed).
    PreAuthLimit,
    /// A code this version does not know.
    Unknown(u64),
}

impl CloseReason {
    /// The reason for a code received from the node.
    pub fn from_code(code: u64) -> Self {
        match code {
            0 => CloseReason::Closed,
            1 => CloseReason::FrameTooLarge,
            2 => CloseReason::HandlerFailed,
            3 => CloseReason::ShuttingDown,
            4 => CloseReason::PreAuthLimit,
            other => CloseReason::Unknown(other),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::Closed => "closed",
            CloseReason::FrameTooLarge => "request frame too large",
            CloseReason::HandlerFailed => "node handler failed",
            CloseReason::ShuttingDown => "node shutting down",
            CloseReason::PreAuthLimit => "over the node's limit before authentication",
            CloseReason::Unknown(_) => "unknown error code",
        })
    }
}

/// A transport failure, by kind, so callers can tell a node that is gone
/// from one that refused a request or was too slow. Every message starts
/// with `transport error: ` (users see it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// There is no connection to carry the request (never made, or dropped).
    #[error("transport error: not connected")]
    NotConnected,
    /// The node closed the connection, saying why.
    #[error("transport error: node closed the connection ({0})")]
    Closed(CloseReason),
    /// The node reset this request's stream, saying why.
    #[error("transport error: node refused the request ({0})")]
    Refused(CloseReason),
    /// The connection was lost: idle timeout (kind `TimedOut`), reset by the
    /// peer (`ConnectionReset`), closed (`ConnectionAborted`, `NotConnected`).
    #[error("transport error: connection lost: {0}")]
    ConnectionLost(#[source] io::Error),
    /// No response within the time allowed for one exchange.
    #[error("transport error: no response within {0:?}")]
    TimedOut(Duration),
    /// The response was longer than the largest frame, in bytes.
    #[error("transport error: response exceeds the maximum frame of {0} bytes")]
    ResponseTooLarge(usize),
    /// Another I/O failure while `context` (sending, reading, ...).
    #[error("transport error: {context}: {source}")]
    Io {
        /// What the transport was doing.
        context: &'static str,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The transport's own machinery (its runtime) has stopped.
    #[error("transport error: network runtime stopped")]
    Stopped,
}

/// Carries one request frame to the node and returns its response frame.
/// The QUIC driver opens one bidirectional stream per exchange; the
/// simulation calls the relay directly.
///
/// An exchange also names the node at its other end. The device derives the
/// mailbox key for that node from it (docs/spec.md §1), so the key it sends
/// is always the one for the node that receives it: the QUIC connection
/// reports the node of the enrolment code whose certificate it pinned, and
/// no caller can pair one node's key with another node's connection.
pub trait Exchange {
    /// Sends `request` and waits for the response.
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError>;

    /// The node this exchange reaches.
    fn node(&self) -> NodeId;
}

/// The node side of a connection: one handler per connection, fed each
/// request frame in arrival order with the current time; returns the
/// response frame. Implemented by the relay session in `vigil-node`.
pub trait FrameHandler: Send {
    /// Handles one request frame received at `now_ms` (ms since the epoch).
    fn handle(&mut self, request: &[u8], now_ms: i64) -> Vec<u8>;

    /// Whether this connection has proved it belongs (the relay: a mailbox
    /// key accepted, a grant or alert verified). Until it has, the transport
    /// holds the connection to a small pre-authentication budget (request
    /// size, request count and bytes, concurrent streams); it asks after
    /// every request, so the handler decides, not the transport.
    fn authenticated(&self) -> bool;
}
