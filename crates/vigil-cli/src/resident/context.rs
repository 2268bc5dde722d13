//! What every command needs: where the vault and its key are, what time it
//! is, where output goes, and the little state the CLI keeps beside the
//! vault (the node code, the last sync).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_crypto::rand_core::UnwrapErr;
use vigil_device::{FileKeyStore, SledStorage, Vault};
use vigil_net::{DeviceConnection, EnrolmentCode};

use super::error::open_error;
use crate::common::time::{Zone, format_time_in};
use crate::common::{Error as CliError, exit};

/// The CLI's own state, a JSON file inside the vault directory, so that a
/// shred (which empties the directory but for the tombstone) removes it. It
/// holds no secret: the node's public code and when this device last synced.
pub(crate) const STATE_FILE: &str = "vigil-cli.json";
/// A joining device's pairing identity, while `pair join` waits for the offer.
pub(crate) const JOINER_FILE: &str = "vigil-joiner.key";
/// How long to wait for the node to answer a connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The CLI state file's content.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    /// The node this device syncs with (an enrolment code).
    #[serde(default)]
    pub(crate) node: Option<String>,
    /// When this device last completed a sync, ms.
    #[serde(default)]
    pub(crate) last_sync_ms: Option<i64>,
}

/// Everything a command runs with.
pub(crate) struct Ctx {
    /// The vault directory.
    pub(crate) dir: PathBuf,
    /// The key file.
    pub(crate) key_file: PathBuf,
    /// "Now", ms since the epoch.
    pub(crate) now_ms: i64,
    /// Whether to print JSON.
    pub(crate) json: bool,
    /// The zone times are shown in and days are taken in (`--utc`, or the
    /// system's), resolved once by `run`.
    pub(crate) zone: Zone,
    /// Standard output.
    pub(crate) out: Box<dyn Write>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("dir", &self.dir)
            .field("key_file", &self.key_file)
            .field("now_ms", &self.now_ms)
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

/// The default vault directory: `$HOME/.vigil`.
pub(crate) fn default_vault_dir() -> Result<PathBuf, CliError> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".vigil"))
        .ok_or_else(|| CliError::usage("no home directory: pass --vault DIR or set VIGIL_VAULT"))
}

/// The default key file: the vault directory's path with `.key` appended.
pub(crate) fn default_key_file(dir: &Path) -> PathBuf {
    // `~/.vigil/` and `~/.vigil` name the same directory.
    let mut s = dir.components().collect::<PathBuf>().into_os_string();
    s.push(".key");
    PathBuf::from(s)
}

/// A CSPRNG: the operating system's.
pub(crate) fn rng() -> UnwrapErr<getrandom::SysRng> {
    UnwrapErr(getrandom::SysRng)
}

impl Ctx {
    /// A time for the text output, in the display zone (`--json` writes
    /// UTC with `format_time`).
    pub(crate) fn time(&self, ms: i64) -> String {
        format_time_in(ms, &self.zone)
    }

    /// The key store.
    pub(crate) fn key_store(&self) -> FileKeyStore {
        FileKeyStore::new(&self.key_file)
    }

    /// Whether a `pair join` is waiting in this directory.
    pub(crate) fn joiner_pending(&self) -> bool {
        self.dir.join(JOINER_FILE).exists()
    }

    /// Whether the directory holds a vault's store (or a shredded one's tombstone).
    pub(crate) fn holds_vault(&self) -> bool {
        self.dir.join("conf").exists()
            || self.dir.join("db").exists()
            || self.dir.join(vigil_device::TOMBSTONE_FILE).exists()
    }

    /// Whether the vault path names something other than a directory (a
    /// regular file, say), which no command can use as a vault.
    pub(crate) fn dir_is_not_a_directory(&self) -> bool {
        fs::metadata(&self.dir).is_ok_and(|m| !m.is_dir())
    }

    /// Opens the vault (shredding it if its period is over).
    pub(crate) fn open(&self) -> Result<Vault, CliError> {
        if self.dir_is_not_a_directory() {
            return Err(CliError::new(
                exit::NO_VAULT,
                format!(
                    "{} is a file, not a vault directory: pass --vault DIR",
                    self.dir.display()
                ),
            ));
        }
        if self.joiner_pending() && !self.key_file.exists() {
            return Err(CliError::new(
                exit::NO_VAULT,
                format!(
                    "this device is still being paired ({}): run `vigil pair join <node code>` again",
                    self.dir.display()
                ),
            ));
        }
        // A marker without a store is a damaged vault: opening says so.
        if !self.holds_vault() && !self.dir.join(vigil_device::MARKER_FILE).exists() {
            return Err(CliError::new(
                exit::NO_VAULT,
                format!(
                    "no vault in {}: run `vigil init` first, or pass --vault DIR",
                    self.dir.display()
                ),
            ));
        }
        // Another `vigil` command on this vault holds its store until it
        // ends: wait for it (saying so once) rather than fail.
        let mut tell = |dir: &Path| {
            eprintln!("waiting for another vigil command on {}…", dir.display());
        };
        Vault::open_waiting(
            &self.dir,
            &self.key_store(),
            self.now_ms,
            vigil_device::DEFAULT_LOCK_WAIT,
            &mut tell,
        )
        .map_err(|e| open_error(e, &self.dir, &self.key_file, self.now_ms, &self.zone))
    }

    /// The tombstone of a shredded vault in the directory, if any.
    pub(crate) fn tombstone(&self) -> Option<vigil_device::Tombstone> {
        SledStorage::read_tombstone(&self.dir)
            .ok()
            .flatten()
            .and_then(|t| vigil_device::Tombstone::decode(&t))
    }

    /// The CLI state (empty if none).
    pub(crate) fn state(&self) -> State {
        fs::read(self.dir.join(STATE_FILE))
            .ok()
            .and_then(|b| parse_state(&b))
            .unwrap_or_default()
    }

    /// Replaces the CLI state atomically.
    pub(crate) fn save_state(&self, state: &State) -> Result<(), CliError> {
        let path = self.dir.join(STATE_FILE);
        let bytes =
            serde_json::to_vec_pretty(state).map_err(|e| CliError::failed(e.to_string()))?;
        vigil_fs::write_atomic(&path, &bytes, vigil_fs::Mode::OwnerOnly)
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))
    }

    /// Remembers a sync with the node of `code` now, and the node itself
    /// if none is remembered yet.
    pub(crate) fn synced_with(&self, code: &EnrolmentCode) -> Result<(), CliError> {
        let mut state = self.state();
        state.last_sync_ms = Some(self.now_ms);
        if state.node.is_none() {
            state.node = Some(code.to_string());
        }
        self.save_state(&state)
    }

    /// The node to talk to: `over` if given, else the remembered one.
    pub(crate) fn node_code(&self, over: Option<&str>) -> Result<EnrolmentCode, CliError> {
        match over {
            Some(c) => parse_node_code(c),
            None => match self.state().node {
                Some(c) => parse_node_code(&c),
                None => Err(CliError::usage(
                    "no node known for this vault: run `vigil enrol <ticket>` with the ticket staff gave you first, or pass --node CODE",
                )),
            },
        }
    }

    /// Prints an output type as one pretty JSON document (`--json`).
    pub(crate) fn print_json<T: serde::Serialize + ?Sized>(
        &mut self,
        v: &T,
    ) -> Result<(), CliError> {
        let s = crate::common::to_json(v)?;
        writeln!(self.out, "{s}")?;
        Ok(())
    }
}

/// Parses a node's enrolment code.
pub(crate) fn parse_node_code(s: &str) -> Result<EnrolmentCode, CliError> {
    s.parse::<EnrolmentCode>().map_err(CliError::from)
}

/// Connects to the node, pinning its certificate.
pub(crate) fn connect(code: &EnrolmentCode) -> Result<DeviceConnection, CliError> {
    connect_within(code, CONNECT_TIMEOUT)
}

/// [`connect`], giving up after `timeout` (a command's own `--timeout`).
pub(crate) fn connect_within(
    code: &EnrolmentCode,
    timeout: Duration,
) -> Result<DeviceConnection, CliError> {
    DeviceConnection::connect(code, timeout)
        .map_err(|e| CliError::from(e).context(&format!("node {}", code.addr)))
}

/// Writes a file only the owner can read, refusing to overwrite unless `force`.
pub(crate) fn write_private(path: &Path, bytes: &[u8], force: bool) -> Result<(), CliError> {
    // Plaintext health data must land in the file named, not wherever a
    // planted symlink points.
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(CliError::usage(format!(
            "{} is a symbolic link: name the file itself",
            path.display()
        )));
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::usage(format!(
                "{} already exists (pass --force to overwrite it)",
                path.display()
            ))
        } else {
            CliError::failed(format!("cannot write {}: {e}", path.display()))
        }
    })?;
    // `mode` applies only to a file it creates: an overwritten regular file
    // keeps its old mode unless narrowed here (a device such as /dev/stdout
    // is left as it is).
    #[cfg(unix)]
    if f.metadata().is_ok_and(|m| m.is_file()) {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))?;
    }
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))
}

/// The state file's contents; `None` if it is not one (a damaged state file
/// is treated as empty: it holds nothing the vault needs).
pub(crate) fn parse_state(bytes: &[u8]) -> Option<State> {
    serde_json::from_slice(bytes).ok()
}
