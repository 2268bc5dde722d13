//! How the vault's failures reach the resident: each library error mapped
//! to a message and an exit code of the CLIs' one error type.

use vigil_device::{
    KeyStore, OpenError, ShredError, StorageError, SyncFailure, Tombstone, Vault, WriteError,
};

use super::fmt::value_error;
use crate::common::time::{Zone, format_time_in};
use crate::common::{Error as CliError, exit, one_line};

impl From<StorageError> for CliError {
    fn from(e: StorageError) -> Self {
        CliError::failed(format!("vault store: {e}"))
    }
}

impl From<WriteError> for CliError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Invalid(vigil_log::LogError::NotInitialised) => CliError::failed(
                "this device has not received the vault's log yet: run `vigil sync` first",
            ),
            WriteError::Invalid(e) => CliError::usage(value_error(&e)),
            WriteError::Gatt(e) => {
                CliError::usage(format!("GATT packet refused: {e} (nothing was recorded)"))
            }
            e => CliError::failed(e.to_string()),
        }
    }
}

impl From<SyncFailure> for CliError {
    fn from(e: SyncFailure) -> Self {
        use vigil_proto::{ProtoError as P, SyncError};
        let refused = |e: &P| match e {
            P::TicketRequired => Some(
                "this vault is not enrolled with this node: enrol with the ticket staff gave you (`vigil enrol <ticket>`)",
            ),
            P::TicketUnknown => Some(
                "the node does not know this ticket (mistyped, or issued by another node?): check it with staff",
            ),
            P::TicketUsed => Some(
                "this ticket was already used by another vault (or for another grant): ask staff for a new one",
            ),
            P::TicketExpired => Some("this ticket's period is over: ask staff for a new one"),
            P::TicketRevoked => Some("staff revoked this ticket: ask them for a new one"),
            P::AlreadyEnrolled => {
                Some("this vault is already enrolled with this node under another ticket")
            }
            _ => None,
        };
        match e {
            // Without the command's display zone here: UTC, marked so. The
            // commands that sync (`sync`, `pair`, `watch`) catch this first
            // and say it in the display zone (`shredded_elsewhere`).
            SyncFailure::ShreddedElsewhere(t) => shredded_message(&t, "", &Zone::utc()),
            SyncFailure::Protocol(SyncError::Refused(ref p)) if refused(p).is_some() => {
                CliError::failed(refused(p).unwrap_or_default())
            }
            e => CliError::failed(one_line(&e.to_string())),
        }
    }
}

fn shredded_message(t: &Tombstone, note: &str, zone: &Zone) -> CliError {
    CliError::new(
        exit::SHREDDED,
        format!(
            "this vault was shredded on another device at {}; this device has shredded its copy too, and only its tombstone remains{note}",
            format_time_in(t.shredded_at_ms, zone)
        ),
    )
}

/// A sync found the vault shredded on another device (the device already
/// wrote its tombstone and deleted its store): destroys the key now, and
/// says so with exit code 4, the time in the display `zone`.
pub(crate) fn shredded_elsewhere(
    vault: Vault,
    keys: &dyn KeyStore,
    t: &Tombstone,
    zone: &Zone,
) -> CliError {
    match vault.finish_shred(keys) {
        Ok(()) => shredded_message(t, "", zone),
        // The tombstone is written: the next open destroys the key.
        Err(e) => shredded_message(
            t,
            &format!(
                " (the key file is not destroyed yet: {})",
                one_line(&e.to_string())
            ),
            zone,
        ),
    }
}

impl From<vigil_net::NetError> for CliError {
    fn from(e: vigil_net::NetError) -> Self {
        match e {
            vigil_net::NetError::BadEnrolmentCode(m) => {
                CliError::usage(format!("bad node code: {m}"))
            }
            e => CliError::failed(format!(
                "cannot reach the node: {}",
                one_line(&e.to_string())
            )),
        }
    }
}

/// Maps a vault that cannot be opened to a message and exit code.
pub(crate) fn open_error(
    e: OpenError,
    dir: &std::path::Path,
    key: &std::path::Path,
    now_ms: i64,
    zone: &Zone,
) -> CliError {
    let (d, k) = (dir.display(), key.display());
    let shredded = |t: &vigil_device::Tombstone, note: &str| {
        // What the tombstone records: when the shred happened, and the
        // period. Before the period's end, only the resident can have asked
        // for it (on this device or another); at or after it, the period
        // ending did it, and "just now" only on the open that shredded.
        let when = if t.shredded_at_ms < t.period.end_ms {
            format!(
                "it was shredded by the resident at {}, before the end of its monitoring period",
                format_time_in(t.shredded_at_ms, zone)
            )
        } else if t.shredded_at_ms == now_ms {
            format!(
                "its monitoring period ended at {}, so it was shredded just now",
                format_time_in(t.period.end_ms, zone)
            )
        } else {
            format!(
                "its monitoring period ended at {}, and it was shredded at {}",
                format_time_in(t.period.end_ms, zone),
                format_time_in(t.shredded_at_ms, zone)
            )
        };
        CliError::new(
            exit::SHREDDED,
            format!("the vault in {d} no longer exists: {when}; only its tombstone remains{note}"),
        )
    };
    match e {
        OpenError::Shredded(t) => shredded(&t, ""),
        // The shred is complete; the key given is another vault's and stays.
        OpenError::Shred(ShredError::KeyKept(t)) => shredded(
            &t,
            &format!(
                " (warning: the key file {k} is not this vault's key, so it was left untouched)"
            ),
        ),
        OpenError::NotEmpty { file, .. } => CliError::usage(format!(
            "{d} holds {file:?}, which is not Vigil's: a vault needs a new or empty directory (nothing was changed)"
        )),
        OpenError::MissingKey => CliError::new(
            exit::NO_VAULT,
            format!("no key file at {k} for the vault in {d} (wrong --key-file?)"),
        ),
        OpenError::WrongKey { .. } => CliError::new(
            exit::NO_VAULT,
            format!(
                "the key file {k} belongs to another vault than the one in {d} (wrong --key-file?)"
            ),
        ),
        OpenError::KeyStore(e) => CliError::new(exit::NO_VAULT, one_line(&e.to_string())),
        OpenError::NotAVault(_) => CliError::new(
            exit::NO_VAULT,
            format!("no vault in {d}: run `vigil init` first, or pass --vault DIR"),
        ),
        OpenError::Corrupt(m) => CliError::failed(format!(
            "the vault store in {d} is damaged ({}): if the key file {k} is intact, run `vigil recover` to rebuild it from the node (the damaged files are kept aside)",
            one_line(&m)
        )),
        OpenError::AlreadyExists(_) => CliError::usage(format!(
            "{d} already holds a vault (or the tombstone of one)"
        )),
        e => CliError::failed(one_line(&e.to_string())),
    }
}
