//! The one thing a transport must do for the device side: carry a request
//! frame to the node and bring back its response frame.

/// A transport failure (the node is unreachable, the stream broke, ...).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("transport error: {0}")]
pub struct ExchangeError(pub String);

/// Carries one request frame to the node and returns its response frame.
/// The QUIC driver opens one bidirectional stream per exchange; the
/// simulation calls the relay directly.
pub trait Exchange {
    /// Sends `request` and waits for the response.
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError>;
}

/// The node side of a connection: one handler per connection, fed each
/// request frame in arrival order with the current time; returns the
/// response frame. Implemented by the relay session in `vigil-node`.
pub trait FrameHandler: Send {
    /// Handles one request frame received at `now_ms` (ms since the epoch).
    fn handle(&mut self, request: &[u8], now_ms: i64) -> Vec<u8>;
}
