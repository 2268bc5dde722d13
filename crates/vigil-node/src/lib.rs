//! Vigil's community node. As a relay it stores and serves sealed blobs it
//! cannot read, behind a mailbox verifier (docs/spec.md §11). Sans-I/O: the
//! QUIC driver in `vigil-net` feeds it frames and the time. [`Node`]
//! assembles one from its data directory.
#![forbid(unsafe_code)]

mod alerts;
mod audit;
mod blobs;
mod grant_keys;
mod kv;
mod label;
mod limits;
pub mod metrics;
mod node;
mod relay;
mod store;
mod sweep;
mod tickets;
pub mod webhook;

pub use alerts::{
    ALERT_ID_LEN, AckNote, GrantRecord, InboxEntry, MAX_ACK_BY_CHARS, MAX_ACK_NOTE_CHARS,
    MAX_LABEL_CHARS, MonitoringEnded, alert_id, describe_kind,
};
pub use audit::AuditRecord;
pub use grant_keys::GrantKeys;
pub use label::{LabelError, MAX_STAFF_LABEL_CHARS, normalize_label};
pub use limits::VaultLock;
pub use metrics::Metrics;
pub use node::{GRANT_KEYS_DIR, HandlerFactory, Node, NodeConfig, NodeError, RELAY_DIR};
pub use relay::{CONTACT_EVERY_MS, Relay, RelayConfig, RelaySession, Session, Usage};
pub use store::{MailboxInfo, MailboxStore, SEALED_DIR, ShredMarker, StoreError};
pub use sweep::SweepReport;
pub use tickets::{IssuedTicket, Revoked, TicketError, TicketRecord, TicketState};
