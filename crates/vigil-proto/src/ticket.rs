//! The enrolment ticket as a device holds it (docs/spec.md §15).

pub use vigil_crypto::{TicketId, TicketSecret};

/// A one-time enrolment ticket staff issued: its id and secret. Whoever
/// holds it may register one new vault at the node and give it one grant,
/// under the label and until the period end staff set.
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket {
    /// The ticket's id (public).
    pub id: TicketId,
    /// The ticket's secret.
    pub secret: TicketSecret,
}
