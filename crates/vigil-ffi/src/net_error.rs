//! The network calls' errors as UniFFI error enums, one variant for each of
//! the library's ([`vigil::NetError`], [`vigil::ExchangeError`],
//! [`vigil::SyncFailure`], [`vigil::ShredError`]), plus the refusals of the
//! binding's own input checks and `Other` for variants newer than this
//! binding (the library's enums are non-exhaustive).

use crate::{Gone, OpenError, WriteError};

/// Why reaching a node failed ([`vigil::NetError`]), or why its code was
/// refused.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum NetError {
    /// A file or socket operation failed.
    #[error("I/O error: {context}: {detail}")]
    Io {
        /// What was being done.
        context: String,
        /// What failed.
        detail: String,
    },
    /// The system has no randomness to offer.
    #[error("I/O error: system randomness unavailable: {detail}")]
    Randomness {
        /// What failed.
        detail: String,
    },
    /// The runtime that drives connections has stopped.
    #[error("I/O error: network runtime stopped")]
    RuntimeStopped,
    /// The TLS configuration could not be built.
    #[error("TLS error: {detail}")]
    Tls {
        /// What failed.
        detail: String,
    },
    /// The TLS configuration offers no cipher suite QUIC can start with.
    #[error("TLS error: {detail}")]
    QuicTls {
        /// What failed.
        detail: String,
    },
    /// A certificate could not be generated.
    #[error("TLS error: generating certificate: {detail}")]
    Certificate {
        /// What failed.
        detail: String,
    },
    /// The idle timeout does not fit QUIC's encoding.
    #[error("TLS error: idle timeout too large")]
    IdleTimeout,
    /// The connection attempt could not start.
    #[error("connection failed: {addr}: {detail}")]
    ConnectSetup {
        /// The node's address.
        addr: String,
        /// Why.
        detail: String,
    },
    /// The connection could not be established (refused, handshake failed).
    #[error("connection failed: {addr}: {detail}")]
    Connect {
        /// The node's address.
        addr: String,
        /// Why.
        detail: String,
    },
    /// The node presented another certificate than the code pins: not the
    /// node the code names (or someone in between).
    #[error("node certificate does not match the enrolment code's fingerprint")]
    FingerprintMismatch,
    /// No connection within the timeout.
    #[error("connection timed out after {timeout_ms} ms")]
    Timeout {
        /// The timeout, ms.
        timeout_ms: u64,
    },
    /// The enrolment code or ticket is malformed (or far too long).
    #[error("bad enrolment code: {detail}")]
    BadEnrolmentCode {
        /// How.
        detail: String,
    },
    /// The node identity files are unusable (a node's error).
    #[error("corrupt node identity: {detail}")]
    CorruptIdentity {
        /// How.
        detail: String,
    },
    /// An error variant newer than this binding (its message says what).
    #[error("{detail}")]
    Other {
        /// The library's message.
        detail: String,
    },
}

/// The error's chain below its own message (the library's carry their
/// cause as a source).
fn source_text(e: &dyn std::error::Error) -> String {
    e.source().map_or_else(|| e.to_string(), |s| s.to_string())
}

impl From<vigil::NetError> for NetError {
    fn from(e: vigil::NetError) -> Self {
        use vigil::NetError as E;
        let detail = source_text(&e);
        match e {
            E::Io { context, .. } => NetError::Io { context, detail },
            E::Randomness(_) => NetError::Randomness { detail },
            E::RuntimeStopped => NetError::RuntimeStopped,
            E::Tls(_) => NetError::Tls { detail },
            E::QuicTls(_) => NetError::QuicTls { detail },
            E::Certificate(_) => NetError::Certificate { detail },
            E::IdleTimeout(_) => NetError::IdleTimeout,
            E::ConnectSetup { addr, .. } => NetError::ConnectSetup {
                addr: addr.to_string(),
                detail,
            },
            E::Connect { addr, .. } => NetError::Connect {
                addr: addr.to_string(),
                detail,
            },
            E::FingerprintMismatch => NetError::FingerprintMismatch,
            E::Timeout(d) => NetError::Timeout {
                timeout_ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            },
            E::BadEnrolmentCode(detail) => NetError::BadEnrolmentCode { detail },
            E::CorruptIdentity(detail) => NetError::CorruptIdentity { detail },
            e => NetError::Other {
                detail: e.to_string(),
            },
        }
    }
}

/// Why one exchange with a connected node failed ([`vigil::ExchangeError`]).
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ExchangeError {
    /// There is no connection to carry the request.
    #[error("transport error: not connected")]
    NotConnected,
    /// The node closed the connection, saying why.
    #[error("transport error: node closed the connection ({reason})")]
    Closed {
        /// Why (the node's close code, as text).
        reason: String,
    },
    /// The node reset this request's stream, saying why.
    #[error("transport error: node refused the request ({reason})")]
    Refused {
        /// Why.
        reason: String,
    },
    /// The connection was lost (idle timeout, reset).
    #[error("transport error: connection lost: {detail}")]
    ConnectionLost {
        /// How.
        detail: String,
    },
    /// No response within the time allowed for one exchange.
    #[error("transport error: no response within {timeout_ms} ms")]
    TimedOut {
        /// The time allowed, ms.
        timeout_ms: u64,
    },
    /// The response was longer than the largest frame.
    #[error("transport error: response exceeds the maximum frame of {max_bytes} bytes")]
    ResponseTooLarge {
        /// The largest frame, bytes.
        max_bytes: u64,
    },
    /// Another I/O failure.
    #[error("transport error: {context}: {detail}")]
    Io {
        /// What the transport was doing.
        context: String,
        /// What failed.
        detail: String,
    },
    /// The transport's runtime has stopped.
    #[error("transport error: network runtime stopped")]
    Stopped,
    /// An error variant newer than this binding (its message says what).
    #[error("{detail}")]
    Other {
        /// The library's message.
        detail: String,
    },
}

impl From<vigil::ExchangeError> for ExchangeError {
    fn from(e: vigil::ExchangeError) -> Self {
        use vigil::ExchangeError as E;
        match e {
            E::NotConnected => ExchangeError::NotConnected,
            E::Closed(r) => ExchangeError::Closed {
                reason: r.to_string(),
            },
            E::Refused(r) => ExchangeError::Refused {
                reason: r.to_string(),
            },
            E::ConnectionLost(e) => ExchangeError::ConnectionLost {
                detail: e.to_string(),
            },
            E::TimedOut(d) => ExchangeError::TimedOut {
                timeout_ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            },
            E::ResponseTooLarge(n) => ExchangeError::ResponseTooLarge {
                max_bytes: u64::try_from(n).unwrap_or(u64::MAX),
            },
            E::Io { context, source } => ExchangeError::Io {
                context: context.into(),
                detail: source.to_string(),
            },
            E::Stopped => ExchangeError::Stopped,
            e => ExchangeError::Other {
                detail: e.to_string(),
            },
        }
    }
}

/// A short, stable name for each refusal the node sends (for apps to
/// branch on), as docs/spec.md lists them.
fn refusal_code(e: &vigil::ProtoError) -> &'static str {
    use vigil::ProtoError as E;
    match e {
        E::UnsupportedVersion { .. } => "unsupported-version",
        E::HelloFirst => "hello-first",
        E::NotAuthenticated => "not-authenticated",
        E::Unauthorized => "unauthorized",
        E::UnknownVault => "unknown-vault",
        E::AlreadyRegistered => "already-registered",
        E::QuotaExceeded { .. } => "quota-exceeded",
        E::Conflict => "conflict",
        E::OutOfOrder { .. } => "out-of-order",
        E::NotFound => "not-found",
        E::Malformed(_) => "malformed",
        E::Internal(_) => "internal",
        E::UnknownGrant => "unknown-grant",
        E::GrantRevoked => "grant-revoked",
        E::BadGrant => "bad-grant",
        E::ForgedAlert => "forged-alert",
        E::OutsideWindow => "outside-window",
        E::NoReceipts => "no-receipts",
        E::PeriodOver => "period-over",
        E::SlotTaken => "slot-taken",
        E::VaultShredded { .. } => "vault-shredded",
        E::NodeFull { .. } => "node-full",
        E::ExpiryTooFar { .. } => "expiry-too-far",
        E::TooManyEntries { .. } => "too-many-entries",
        E::TicketRequired => "ticket-required",
        E::TicketUnknown => "ticket-unknown",
        E::TicketUsed => "ticket-used",
        E::TicketExpired => "ticket-expired",
        E::TicketRevoked => "ticket-revoked",
        E::AlreadyEnrolled => "already-enrolled",
        _ => "refused",
    }
}

/// Why a sync, enrolment, alert delivery or pairing step failed
/// ([`vigil::SyncFailure`]). Nothing acknowledged or stored is lost: a
/// later call resumes where this one stopped.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum SyncError {
    /// The node could not be (re)connected.
    #[error("cannot reach the node: {source}")]
    Connect {
        /// Why.
        #[from]
        source: NetError,
    },
    /// The transport failed; the next call reconnects.
    #[error(transparent)]
    Transport {
        /// Its error.
        #[from]
        source: ExchangeError,
    },
    /// The node refused a request.
    #[error("the node refused: {detail}")]
    Refused {
        /// A short, stable name (`ticket-unknown`, `slot-taken`, ...).
        code: String,
        /// The node's message.
        detail: String,
    },
    /// The node's reply could not be decoded.
    #[error("bad reply from the node: {detail}")]
    BadReply {
        /// How.
        detail: String,
    },
    /// The node replied out of turn.
    #[error("unexpected reply from the node: {detail}")]
    Unexpected {
        /// What came.
        detail: String,
    },
    /// The device's store failed.
    #[error("{detail}")]
    Storage {
        /// What failed.
        detail: String,
    },
    /// A local write failed.
    #[error(transparent)]
    Write {
        /// Its error.
        #[from]
        source: WriteError,
    },
    /// Creating the joining device's vault failed.
    #[error(transparent)]
    Open {
        /// Its error.
        #[from]
        source: OpenError,
    },
    /// Pairing: no offer for this device at the node (yet): ask again.
    #[error("no pairing offer for this device at the node (has the first device sent it?)")]
    NoOffer,
    /// Pairing: the offer does not open with this device's pairing key.
    #[error("the pairing offer does not open with this device's key")]
    BadOffer,
    /// Another device of this vault shredded it: this device wrote its
    /// tombstone and deleted its store, and this object is closed. Opening
    /// the vault's directory again destroys the key in the key store (and
    /// raises `OpenError.Shredded`).
    #[error("this vault was shredded on another device at {shredded_at_ms} ms")]
    ShreddedElsewhere {
        /// The vault (hex).
        vault_id: String,
        /// When it was shredded, ms.
        shredded_at_ms: i64,
    },
    /// The connection reaches another node than the one named.
    #[error("the connection reaches another node than the one named")]
    WrongNode,
    /// Enrolling needs a node connected from a ticket (`vigil-ticket1/...`).
    #[error(
        "this node was connected from its enrolment code: enrolling needs the resident's ticket (vigil-ticket1/...)"
    )]
    NoTicket,
    /// The fever rule is not plausible (nothing was sent).
    #[error("invalid fever rule: {detail}")]
    InvalidRule {
        /// What is wrong.
        detail: String,
    },
    /// The joiner code is malformed or fails its checksum (nothing sent).
    #[error("invalid joiner code: {detail}")]
    BadJoinerCode {
        /// `malformed`, `checksum` or `too-long`.
        code: String,
        /// What is wrong.
        detail: String,
    },
    /// This joiner was confirmed or rejected: pairing again needs a new one.
    #[error("this joiner was already confirmed or rejected: make a new one")]
    JoinerClosed,
    /// The vault was shredded through this object.
    #[error("this vault was shredded; nothing is left to sync")]
    Shredded,
    /// An error variant newer than this binding (its message says what).
    #[error("{detail}")]
    Other {
        /// The library's message.
        detail: String,
    },
}

impl From<vigil::SyncFailure> for SyncError {
    fn from(e: vigil::SyncFailure) -> Self {
        use vigil::SyncFailure as E;
        match e {
            E::Transport(e) => SyncError::Transport { source: e.into() },
            E::Protocol(vigil::SyncError::Refused(p)) => SyncError::Refused {
                code: refusal_code(&p).into(),
                detail: p.to_string(),
            },
            E::Protocol(vigil::SyncError::Codec(c)) => SyncError::BadReply {
                detail: c.to_string(),
            },
            E::Protocol(vigil::SyncError::Unexpected(detail)) => SyncError::Unexpected { detail },
            E::Protocol(p) => SyncError::Other {
                detail: p.to_string(),
            },
            E::Storage(e) => SyncError::Storage {
                detail: e.to_string(),
            },
            E::Write(e) => SyncError::Write { source: e.into() },
            E::Open(e) => SyncError::Open { source: e.into() },
            E::NoOffer => SyncError::NoOffer,
            E::BadOffer => SyncError::BadOffer,
            E::ShreddedElsewhere(t) => SyncError::ShreddedElsewhere {
                vault_id: t.vault_id.to_string(),
                shredded_at_ms: t.shredded_at_ms,
            },
            E::WrongNode => SyncError::WrongNode,
            e => SyncError::Other {
                detail: e.to_string(),
            },
        }
    }
}

impl From<vigil::StorageError> for SyncError {
    fn from(e: vigil::StorageError) -> Self {
        SyncError::Storage {
            detail: e.to_string(),
        }
    }
}

impl From<Gone> for SyncError {
    fn from(_: Gone) -> Self {
        SyncError::Shredded
    }
}
