//! Vigil's community node. As a relay it stores and serves sealed blobs it
//! cannot read, behind a mailbox verifier (docs/spec.md §11). Sans-I/O: the
//! QUIC driver in `vigil-net` feeds it frames and the time.
#![forbid(unsafe_code)]

mod alerts;
mod grant_keys;
mod kv;
mod relay;
mod store;
mod sweep;

pub use alerts::{GrantRecord, InboxEntry, MAX_LABEL_CHARS};
pub use grant_keys::GrantKeys;
pub use relay::{Relay, RelayConfig, RelaySession, Session};
pub use store::{MailboxInfo, MailboxStore, StoreError};
pub use sweep::SweepReport;
