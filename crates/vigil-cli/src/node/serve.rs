//! `vigil-node serve`: the relay on QUIC, the admin socket, the sweeper, and
//! a graceful stop on SIGINT/SIGTERM.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use vigil_net::{NodeIdentity, NodeServer};
use vigil_node::{Node, Relay};

use super::admin::{Serving, Status};
use super::channel::{self, AdminServer};
use super::code::{enrolment_code, read_state, write_state};
use super::config::Settings;
use super::util::out;
use crate::common::Error;
use crate::common::time::{ms, now_ms, show_duration};

/// How long a stopping node waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(5);

/// Creates the node's data directory (mode 0700) if it is missing.
pub(crate) fn create_data_dir(data: &Path) -> Result<(), Error> {
    if data.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data)
        .map_err(|e| Error::failed(format!("cannot create {}: {e}", data.display())))?;
    tracing::info!(data = %data.display(), "created a new node data directory");
    Ok(())
}

/// The address to bind: `--listen` as given, except that port 0 on a node
/// that served before takes the port it chose then. Residents' codes and
/// tickets hold that address, so a restart on a new port would strand them
/// all; an explicit port always wins.
fn listen_addr(data: &Path, listen: SocketAddr) -> Result<(SocketAddr, bool), Error> {
    if listen.port() != 0 || !data.is_dir() {
        return Ok((listen, false));
    }
    match read_state(data)? {
        Some(s) if s.listen.port() != 0 => {
            Ok((SocketAddr::new(listen.ip(), s.listen.port()), true))
        }
        _ => Ok((listen, false)),
    }
}

/// Binds the node's UDP socket, before anything is created on disk: a node
/// that cannot listen leaves no data directory or identity behind.
fn bind(data: &Path, settings: &Settings) -> Result<UdpSocket, Error> {
    let (addr, reused) = listen_addr(data, settings.listen)?;
    if reused {
        tracing::info!(
            port = addr.port(),
            "--listen asks for port 0: reusing the port this node chose on its first start,              which residents' codes hold"
        );
    }
    UdpSocket::bind(addr).map_err(|e| {
        let hint = if reused {
            format!(
                " (port {} was chosen on the node's first start and is in every resident's                  code and ticket: free it, or pass --listen with another port and give                  residents new codes)",
                addr.port()
            )
        } else {
            String::new()
        };
        Error::failed(format!("cannot listen on {addr}: {e}{hint}"))
    })
}

/// `--http`: the staff dashboard.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dashboard {
    /// Where to listen.
    pub(crate) addr: std::net::SocketAddr,
    /// `--http-secure-cookies`.
    pub(crate) secure_cookies: bool,
    /// `--http-poll`: how often live pages re-read the inbox.
    pub(crate) poll_every: Option<Duration>,
}

/// Runs the node until SIGINT or SIGTERM.
pub(crate) fn run(settings: &Settings, dashboard: Option<Dashboard>) -> Result<(), Error> {
    let data = settings.data_dir()?.to_path_buf();
    // A node already serving this directory is told first: it is why the
    // port is taken.
    channel::clear_stale_socket(&data)?;
    let socket = bind(&data, settings)?;
    create_data_dir(&data)?;
    let identity = NodeIdentity::load_or_create(&data)
        .map_err(|e| Error::failed(format!("node identity in {}: {e}", data.display())))?;
    let node = channel::open_relay(&data, settings.relay, true)
        .map_err(|e| {
            Error::failed(format!(
                "cannot open the store in {}: {e}",
                data.join(channel::STORE).display()
            ))
        })?
        .with_receipts(identity.signing());
    let wired = super::hooks::wire(settings, &data, node, dashboard.is_some())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vigil-node")
        .build()
        .map_err(|e| Error::failed(format!("starting the runtime: {e}")))?;
    let result = rt.block_on(serve(settings, data, socket, identity, wired, dashboard));
    // Dropping the runtime waits for store work still running on its
    // blocking threads; the store's last handle then closes it.
    drop(rt);
    if result.is_ok() {
        tracing::info!("node stopped");
    }
    result
}

async fn serve(
    settings: &Settings,
    data: PathBuf,
    socket: UdpSocket,
    identity: NodeIdentity,
    wired: super::hooks::Wired,
    dashboard: Option<Dashboard>,
) -> Result<(), Error> {
    let super::hooks::Wired {
        node,
        deliverer,
        alert_stored,
    } = wired;
    let relay = node.relay().clone();
    // Handlers first, so a signal right after the ready line is handled.
    let sig =
        |kind, name| signal(kind).map_err(|e| Error::failed(format!("cannot handle {name}: {e}")));
    let mut term = sig(SignalKind::terminate(), "SIGTERM")?;
    let mut int = sig(SignalKind::interrupt(), "SIGINT")?;

    let factory = node.handler_factory();
    let at = socket.local_addr().map_or(settings.listen, |a| a);
    let server = NodeServer::spawn_on(&identity, socket, settings.server.clone(), factory)
        .await
        .map_err(|e| Error::failed(format!("cannot listen on {at}: {e}")))?;
    let bound = server.local_addr();
    let status = Status {
        pid: std::process::id(),
        listen: bound,
        advertise: settings.advertise,
        started_ms: now_ms(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let code = enrolment_code(&identity, settings.advertise.unwrap_or(bound));
    let serving = Serving::new(status.clone(), code.clone(), identity.fingerprint());
    // The dashboard's port before the ready line: a busy port fails the start.
    let web = match dashboard {
        Some(d) => Some(start_dashboard(d, &data, &node, serving.clone(), alert_stored).await?),
        None => None,
    };
    let metrics = match settings.metrics {
        Some(addr) => Some(super::hooks::bind_metrics(addr).await?),
        None => None,
    };
    let metrics_addr = metrics.as_ref().and_then(|l| l.local_addr().ok());
    write_state(&data, &status)?;
    let admin = AdminServer::bind(&data, relay.clone(), serving.clone())?;

    let mut ready = format!("vigil-node listening on {bound}");
    if let Some(a) = metrics_addr {
        ready.push_str(&format!("\nmetrics on http://{a}/metrics"));
    }
    match &code {
        Ok(c) => ready.push_str(&format!("\nenrolment code: {c}")),
        Err(why) => ready.push_str(&format!("\nno enrolment code yet: {why}")),
    }
    if let Some((addr, _, _)) = &web {
        ready.push_str(&format!("\nstaff dashboard on http://{addr}/"));
    }
    if let Err(e) = out(&ready) {
        tracing::warn!(error = %e, "could not print the ready lines");
    }
    tracing::info!(
        listen = %bound,
        data = %data.display(),
        sweep_every = %show_duration(settings.sweep_every),
        grace = %show_duration(settings.grace),
        code = code.as_ref().map(ToString::to_string).unwrap_or_default(),
        webhooks = settings.webhooks.len(),
        metrics = metrics_addr.map(|a| a.to_string()).unwrap_or_default(),
        "node serving"
    );
    let metrics_task = metrics.map(|l| tokio::spawn(super::hooks::serve_metrics(l, relay.clone())));
    let deliver_task = deliverer.map(|d| tokio::spawn(d.run()));

    let sweeper = tokio::spawn(sweep_loop(
        relay.clone(),
        serving,
        settings.sweep_every,
        ms(settings.grace),
    ));

    let which = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(
        signal = which,
        "shutting down: no new connections, finishing requests"
    );
    sweeper.abort();
    // Deliveries not made stay queued in the store for the next start.
    for t in [metrics_task, deliver_task].into_iter().flatten() {
        t.abort();
    }
    if !server.drain(DRAIN).await {
        tracing::warn!(
            in_flight = server.in_flight(),
            "requests still in flight after {DRAIN:?}; closing anyway"
        );
    }
    if let Some((_, stop, task)) = web {
        // Live pages hold their event streams open: stop taking requests,
        // give the others a moment, then close.
        let _ = stop.send(());
        let abort = task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    admin.close();
    server.shutdown().await;
    Ok(())
}

/// A running dashboard: its address, its stop signal, its task.
type WebTask = (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

async fn start_dashboard(
    d: Dashboard,
    data: &Path,
    node: &Node,
    serving: Serving,
    alert_stored: Option<Arc<Notify>>,
) -> Result<WebTask, Error> {
    let listener = tokio::net::TcpListener::bind(d.addr)
        .await
        .map_err(|e| Error::failed(format!("cannot serve the dashboard on {}: {e}", d.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::failed(format!("dashboard address: {e}")))?;
    let staff = vigil_web::staff::Staff::in_dir(data);
    if staff.list().map(|l| l.is_empty()).unwrap_or(false) {
        tracing::warn!("no staff accounts yet: add one with `vigil-node staff add NAME`");
    }
    let web = vigil_web::Web::new(
        std::sync::Arc::new(super::web::NodeBackend::new(node.relay().clone(), serving)),
        node.store().clone(),
        staff,
        vigil_web::WebConfig {
            secure_cookies: d.secure_cookies,
            poll_every: d
                .poll_every
                .unwrap_or(vigil_web::WebConfig::default().poll_every),
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = stopped.await;
        };
        // A stored alert reaches the live pages at once; their poll stays
        // for changes made elsewhere (`alerts ack` from a terminal, sweeps).
        let pages = web.clone();
        let forward = async move {
            match alert_stored {
                Some(n) => loop {
                    n.notified().await;
                    pages.notify();
                },
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            r = web.serve(listener, stop) => {
                if let Err(e) = r {
                    tracing::error!(error = %e, "the dashboard stopped");
                }
            }
            () = forward => {}
        }
    });
    tracing::info!(http = %addr, "staff dashboard serving");
    Ok((addr, stop, task))
}

async fn sweep_loop(relay: Relay, serving: Serving, every: Duration, grace_ms: i64) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The first tick is immediate: a sweep at start.
        tick.tick().await;
        let r = relay.clone();
        let now = now_ms();
        match tokio::task::spawn_blocking(move || r.sweep(now, grace_ms)).await {
            Ok(Ok(report)) => {
                serving.swept(now, &report);
                tracing::debug!(?report, "sweep done");
            }
            Ok(Err(e)) => tracing::error!(error = %e, "sweep failed"),
            Err(e) => tracing::error!(error = %e, "sweep task failed"),
        }
    }
}
