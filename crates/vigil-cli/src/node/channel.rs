//! How the operator commands reach the store: sled lets one process open it,
//! so while `serve` runs they ask it over a Unix socket in the data
//! directory (`admin.sock`, mode 0600, owner only), and when no node is
//! serving they open the store themselves.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use vigil_node::{Node, NodeConfig, NodeError, Relay, RelayConfig, StoreError};

use super::admin::{self, Request, Response, Serving, Status};
use crate::common::Error;
use crate::common::time::now_ms;

/// The admin socket's name in the data directory.
pub(crate) const SOCKET: &str = "admin.sock";
/// The relay store's directory in the data directory.
pub(crate) const STORE: &str = vigil_node::RELAY_DIR;

/// Longest request line the node reads.
const MAX_REQUEST: usize = 64 * 1024;
/// Longest response line a command reads.
const MAX_RESPONSE: u64 = 256 * 1024 * 1024;
/// A connection with no request for this long is closed.
const IDLE: Duration = Duration::from_secs(30);
/// How long a command waits for the node's answer.
const ANSWER_WAIT: Duration = Duration::from_secs(120);

/// The data directory must exist; commands other than `serve` never create it.
pub(crate) fn existing_data_dir(data: &Path) -> Result<(), Error> {
    match std::fs::metadata(data) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::failed(format!(
            "{} is not a directory (expected the node's data directory)",
            data.display()
        ))),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::failed(format!(
            "no such data directory: {} (start a node there with `vigil-node serve --data {}`)",
            data.display(),
            data.display()
        ))),
        Err(e) => Err(Error::failed(format!("{}: {e}", data.display()))),
    }
}

/// Opens the relay on `data`'s store, with its grant keys. `create` is for
/// `serve`; the commands refuse a directory with no store in it.
pub(crate) fn open_relay(data: &Path, config: RelayConfig, create: bool) -> Result<Node, String> {
    let store = data.join(STORE);
    if !create && !store.is_dir() {
        return Err(format!(
            "{} is not a vigil-node data directory (it has no store; start a node there with \
             `vigil-node serve --data {}`)",
            data.display(),
            data.display()
        ));
    }
    let config = NodeConfig {
        relay: config,
        grant_key_seed: None,
    };
    Node::open(data, &config).map_err(|e| match e {
        NodeError::Store(e @ StoreError::Locked(_)) => {
            format!("the store is in use by another process ({e})")
        }
        NodeError::GrantKeys { source, .. } => {
            format!("grant keys in {}: {source}", data.display())
        }
        e => e.to_string(),
    })
}

/// What asking the serving node gave.
#[derive(Debug)]
pub(crate) enum Call {
    /// The node answered.
    Answered(Response),
    /// No node is serving; why we think so.
    NotServing(String),
}

/// Sends one request to the node serving `data`, if there is one.
pub(crate) fn call(data: &Path, req: &Request) -> Result<Call, Error> {
    let path = data.join(SOCKET);
    let stream = match StdUnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Ok(Call::NotServing(format!("no {SOCKET}")));
        }
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            return Ok(Call::NotServing(format!(
                "{SOCKET} is left over from a node that stopped"
            )));
        }
        Err(e) => {
            return Err(Error::failed(format!(
                "cannot reach the node through {}: {e}",
                path.display()
            )));
        }
    };
    let fail = |e: std::io::Error| {
        Error::failed(format!(
            "the node at {} did not answer: {}",
            path.display(),
            if e.kind() == ErrorKind::WouldBlock {
                format!("no answer within {ANSWER_WAIT:?}")
            } else {
                e.to_string()
            }
        ))
    };
    stream.set_read_timeout(Some(ANSWER_WAIT)).map_err(fail)?;
    stream.set_write_timeout(Some(ANSWER_WAIT)).map_err(fail)?;
    let mut line = serde_json::to_vec(req).map_err(|e| Error::failed(e.to_string()))?;
    line.push(b'\n');
    (&stream).write_all(&line).map_err(fail)?;
    let mut answer = Vec::new();
    BufReader::new((&stream).take(MAX_RESPONSE))
        .read_until(b'\n', &mut answer)
        .map_err(fail)?;
    if answer.is_empty() {
        return Err(Error::failed(format!(
            "the node at {} closed the admin connection without answering (is it stopping?)",
            path.display()
        )));
    }
    serde_json::from_slice(&answer)
        .map(Call::Answered)
        .map_err(|e| Error::failed(format!("the node's answer is malformed: {e}")))
}

/// Runs `req` on the node serving `data`, or directly on its store when
/// none is. Returns the result and whether a serving node answered.
pub(crate) fn run(data: &Path, req: &Request) -> Result<(serde_json::Value, bool), Error> {
    run_with(data, RelayConfig::default(), req)
}

/// [`run`], with the relay limits `config` when the store is opened
/// directly (a serving node applies its own).
pub(crate) fn run_with(
    data: &Path,
    config: RelayConfig,
    req: &Request,
) -> Result<(serde_json::Value, bool), Error> {
    existing_data_dir(data)?;
    match call(data, req)? {
        Call::Answered(Response::Ok(v)) => Ok((v, true)),
        Call::Answered(Response::Error(e)) => Err(Error::failed(e)),
        Call::NotServing(why) => {
            tracing::info!(data = %data.display(), why, "no node serving; opening the store directly");
            let node = open_relay(data, config, false).map_err(|e| {
                Error::failed(format!(
                    "no node answers on {} ({why}), and the store cannot be opened directly: {e}",
                    data.join(SOCKET).display()
                ))
            })?;
            admin::execute(node.relay(), req, now_ms(), None)
                .map(|v| (v, false))
                .map_err(Error::failed)
        }
    }
}

/// Whether a node is serving `data` (its status if so).
pub(crate) fn status(data: &Path) -> Option<Status> {
    match call(data, &Request::Status) {
        Ok(Call::Answered(Response::Ok(v))) => serde_json::from_value(v).ok(),
        _ => None,
    }
}

/// The admin socket of a serving node.
#[derive(Debug)]
pub(crate) struct AdminServer {
    path: PathBuf,
    accept: tokio::task::JoinHandle<()>,
}

/// Before `serve` binds: refuses if another node answers on the socket,
/// removes a socket left by a node that died.
pub(crate) fn clear_stale_socket(data: &Path) -> Result<(), Error> {
    let path = data.join(SOCKET);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::failed(format!("{}: {e}", path.display()))),
    };
    if !meta.file_type().is_socket() {
        return Err(Error::failed(format!(
            "{} exists and is not a socket; move it away",
            path.display()
        )));
    }
    match StdUnixStream::connect(&path) {
        Ok(_) => Err(Error::failed(format!(
            "a node is already serving {} (it answers on {})",
            data.display(),
            path.display()
        ))),
        Err(_) => {
            tracing::info!(path = %path.display(), "removing the admin socket a stopped node left");
            std::fs::remove_file(&path)
                .map_err(|e| Error::failed(format!("removing stale {}: {e}", path.display())))
        }
    }
}

impl AdminServer {
    /// Binds `data/admin.sock` (mode 0600) and answers requests on the
    /// current tokio runtime.
    pub(crate) fn bind(data: &Path, relay: Relay, status: Serving) -> Result<AdminServer, Error> {
        let path = data.join(SOCKET);
        let bind_err = |e: std::io::Error| {
            Error::failed(format!(
                "cannot open the admin socket {}: {e}",
                path.display()
            ))
        };
        let listener = UnixListener::bind(&path).map_err(bind_err)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(bind_err)?;
        let owner = std::fs::metadata(&path).map_err(bind_err)?.uid();
        let accept = tokio::spawn(accept_loop(listener, relay, status, owner));
        tracing::info!(path = %path.display(), "admin socket listening");
        Ok(AdminServer { path, accept })
    }

    /// Stops answering and removes the socket.
    pub(crate) fn close(self) {
        self.accept.abort();
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "could not remove the admin socket")
            }
        }
    }
}

async fn accept_loop(listener: UnixListener, relay: Relay, status: Serving, owner: u32) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "admin socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // The mode already keeps others out; the peer's uid is checked too.
        match stream.peer_cred() {
            Ok(c) if c.uid() == owner || c.uid() == 0 => {}
            Ok(c) => {
                tracing::warn!(uid = c.uid(), "admin connection from another user refused");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin connection without credentials refused");
                continue;
            }
        }
        tokio::spawn(serve_connection(stream, relay.clone(), status.clone()));
    }
}

async fn answer(relay: &Relay, status: &Serving, line: &[u8]) -> Response {
    let req: Request = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => return Response::Error(format!("bad admin request: {e}")),
    };
    let (relay, status, r) = (relay.clone(), status.clone(), req.clone());
    let result =
        tokio::task::spawn_blocking(move || admin::execute(&relay, &r, now_ms(), Some(&status)))
            .await;
    match result {
        Ok(Ok(v)) => {
            match &req {
                Request::Ack { id, by, .. } => {
                    tracing::info!(id, by = ?by, "admin: alert acknowledged");
                }
                Request::Sweep { .. } => tracing::info!(report = %v, "admin: swept"),
                // The answer holds the ticket's secret: never logged.
                Request::ResidentsAdd { .. } => tracing::info!("admin: resident registered"),
                Request::ResidentsRevoke { id } => tracing::info!(id, "admin: ticket revoked"),
                _ => tracing::debug!(?req, "admin request"),
            }
            Response::Ok(v)
        }
        Ok(Err(e)) => {
            tracing::debug!(?req, error = %e, "admin request failed");
            Response::Error(e)
        }
        Err(e) => {
            tracing::error!(error = %e, "admin request panicked");
            Response::Error("the node failed to handle the request".into())
        }
    }
}

async fn serve_connection(stream: UnixStream, relay: Relay, status: Serving) {
    let (read, mut write) = stream.into_split();
    let mut read = tokio::io::BufReader::new(read);
    loop {
        let mut line = Vec::new();
        let got = tokio::time::timeout(
            IDLE,
            (&mut read)
                .take(MAX_REQUEST as u64 + 1)
                .read_until(b'\n', &mut line),
        )
        .await;
        match got {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
        }
        let too_long = line.len() > MAX_REQUEST;
        let resp = if too_long {
            Response::Error(format!("admin request longer than {MAX_REQUEST} bytes"))
        } else {
            answer(&relay, &status, &line).await
        };
        let mut out = match serde_json::to_vec(&resp) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "could not encode an admin response");
                return;
            }
        };
        out.push(b'\n');
        if write.write_all(&out).await.is_err() || too_long {
            return;
        }
    }
}
