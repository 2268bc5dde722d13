//! Vigil's wire protocol: messages, the one codec, and the sans-I/O state
//! machines for every device ↔ node conversation (docs/spec.md §9). No I/O, no clock,
//! no async runtime: drivers feed frames and time in, and carry frames out.
#![forbid(unsafe_code)]

pub mod alert;
mod blob;
mod codec;
mod conversation;
mod exchange;
mod messages;
pub mod receipt;
mod sync;
mod ticket;

pub use codec::{
    CodecError, MAX_FRAME, MAX_SMALL_REQUEST, MAX_VERSION_VECTOR, PROTOCOL_VERSION, REQUEST_HEAD,
    decode_request, decode_response, encode_request, encode_response, request_limit,
};
pub use conversation::{
    AlertEvent, AlertStatusEvent, Conversation, DeliverAlerts, DriveError, FetchPairing, GiveGrant,
    GrantAuth, OfferPairing, OutgoingAlert, PairingFetched, QueryAlertStatus, RedeemTicket,
    RequestShred, drive, pairing_slot,
};
pub use exchange::{CloseReason, Exchange, ExchangeError, FrameHandler};
pub use messages::{
    AlertState, AlertStatusQuery, AlertWire, BundleItem, DeviceIdBytes, GrantDeletion, GrantWire,
    MAX_ALERT_STATUS, ProtoError, Request, Response, SnapshotItem, VaultIdBytes, VersionVector,
};
pub use sync::{DeviceSync, Registration, SyncConfig, SyncError, SyncEvent};
pub use ticket::{Ticket, TicketId, TicketSecret};
