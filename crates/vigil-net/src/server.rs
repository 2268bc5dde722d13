//! The node endpoint: accepts connections and feeds request frames to one
//! `FrameHandler` per connection.

use core::fmt;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quinn::{Connection, Endpoint, Incoming, RecvStream, SendStream, VarInt};
use vigil_proto::FrameHandler;

use crate::{ALPN, NetError, NodeIdentity, codes};

/// How long [`NodeServer::shutdown`] waits for connections to close.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// How long a request stays in flight waiting for the device to acknowledge
/// its response (see [`NodeServer::drain`]).
const ACK_WAIT: Duration = Duration::from_secs(1);

/// Makes the handler for one new connection.
type HandlerFactory = Arc<dyn Fn() -> Box<dyn FrameHandler> + Send + Sync>;
type SharedHandler = Arc<tokio::sync::Mutex<Box<dyn FrameHandler>>>;

/// Node endpoint settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// A connection with no traffic for this long is closed (default 30 s).
    pub idle_timeout: Duration,
    /// Bidirectional streams a device may have open at once (default 16).
    pub max_concurrent_streams: u32,
    /// Connections beyond this many are refused (default 20 000).
    pub max_connections: usize,
    /// Largest request accepted; a larger one gets its stream reset
    /// (default [`vigil_proto::MAX_FRAME`]).
    pub max_frame: usize,
    /// Connections from one address (an IPv4 address, an IPv6 /64) beyond
    /// this many are refused (default 64).
    pub max_connections_per_address: usize,
    /// From this many live connections on, a new one must first prove its
    /// address (QUIC Retry: one more round trip, and a spoofed source
    /// address never gets a connection); 0 asks every connection
    /// (default 5,000).
    pub retry_from: usize,
    /// Largest request a connection may send before it authenticates
    /// (default 64 KiB).
    pub pre_auth_max_frame: usize,
    /// Request bytes a connection may send in all before it authenticates;
    /// also its QUIC receive window until then (default 256 KiB).
    pub pre_auth_bytes: usize,
    /// Requests a connection may make before it authenticates (default 256).
    pub pre_auth_requests: usize,
    /// Streams a connection may have open at once before it authenticates
    /// (default 2).
    pub pre_auth_streams: u32,
    /// Test hook: when `Some`, every request frame the node receives is
    /// appended here (the "attacker's copy").
    pub frame_tap: Option<Arc<Mutex<Vec<Vec<u8>>>>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            max_concurrent_streams: 16,
            max_connections: 20_000,
            max_frame: vigil_proto::MAX_FRAME,
            max_connections_per_address: 64,
            retry_from: 5_000,
            pre_auth_max_frame: 64 * 1024,
            pre_auth_bytes: 256 * 1024,
            pre_auth_requests: 256,
            pre_auth_streams: 2,
            frame_tap: None,
        }
    }
}

/// A running node endpoint, spawned on the current tokio runtime. Dropping
/// it stops the endpoint abruptly; prefer [`NodeServer::shutdown`].
pub struct NodeServer {
    endpoint: Endpoint,
    local_addr: SocketAddr,
    accept_task: tokio::task::JoinHandle<()>,
    in_flight: Arc<AtomicUsize>,
    retries: Arc<AtomicU64>,
}

impl fmt::Debug for NodeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

fn quinn_server_config(
    identity: &NodeIdentity,
    config: &ServerConfig,
) -> Result<quinn::ServerConfig, NetError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map_err(NetError::Tls)?
    .with_no_client_auth()
    .with_single_cert(vec![identity.cert()], identity.key())
    .map_err(NetError::Tls)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(NetError::QuicTls)?;
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(
            config
                .idle_timeout
                .try_into()
                .map_err(NetError::IdleTimeout)?,
        ))
        // A connection starts under the pre-authentication budget: few
        // streams, and a receive window that bounds what a stranger can make
        // the node buffer; both are raised when it authenticates.
        .max_concurrent_bidi_streams(VarInt::from_u32(config.pre_auth_streams))
        .receive_window(VarInt::from_u64(config.pre_auth_bytes as u64).unwrap_or(VarInt::MAX))
        .max_concurrent_uni_streams(VarInt::from_u32(0));
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic));
    server.transport_config(Arc::new(transport));
    Ok(server)
}

impl NodeServer {
    /// Binds UDP `addr` (port 0 allowed) with the identity's certificate,
    /// ALPN `vigil/1`, TLS 1.3 only, and serves on the current tokio runtime.
    /// `factory` is called once per accepted connection; that handler sees the
    /// connection's requests one at a time.
    pub async fn spawn(
        identity: &NodeIdentity,
        addr: SocketAddr,
        config: ServerConfig,
        factory: Arc<dyn Fn() -> Box<dyn FrameHandler> + Send + Sync>,
    ) -> Result<NodeServer, NetError> {
        let socket = std::net::UdpSocket::bind(addr)
            .map_err(|e| NetError::io(format!("binding {addr}"), e))?;
        Self::spawn_on(identity, socket, config, factory).await
    }

    /// As [`NodeServer::spawn`], on a socket the caller bound (so a program
    /// can learn that its port is taken before it creates anything else).
    pub async fn spawn_on(
        identity: &NodeIdentity,
        socket: std::net::UdpSocket,
        config: ServerConfig,
        factory: Arc<dyn Fn() -> Box<dyn FrameHandler> + Send + Sync>,
    ) -> Result<NodeServer, NetError> {
        let server_config = quinn_server_config(identity, &config)?;
        let addr = socket
            .local_addr()
            .map_err(|e| NetError::io("local address", e))?;
        let io = |e: std::io::Error| NetError::io(format!("binding {addr}"), e);
        // A burst of handshakes overflows the system's default receive
        // buffer (208 KiB on Linux) and each lost packet costs a device a 1 s
        // retransmission: ask for more (best effort; the kernel caps it at
        // net.core.rmem_max). Measured with vigil-bench load, 64 devices
        // connecting at once: p99 1,002 ms → 35 ms.
        let state = quinn::udp::UdpSocketState::new((&socket).into()).map_err(io)?;
        let _ = state.set_recv_buffer_size((&socket).into(), crate::SHARED_RECV_BUFFER);
        let endpoint = Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(io)?;
        let local_addr = endpoint
            .local_addr()
            .map_err(|e| NetError::io("local address", e))?;
        let in_flight = Arc::new(AtomicUsize::new(0));
        let retries = Arc::new(AtomicU64::new(0));
        let accept_task = tokio::spawn(accept_loop(
            endpoint.clone(),
            Arc::new(config),
            factory,
            in_flight.clone(),
            retries.clone(),
        ));
        tracing::info!(%local_addr, "node endpoint listening");
        Ok(NodeServer {
            endpoint,
            local_addr,
            accept_task,
            in_flight,
            retries,
        })
    }

    /// The bound address (with the actual port if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// QUIC Retry packets sent so far (address validation of new
    /// connections while busy).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Requests being received, handled or answered right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The first half of a graceful stop: refuses new connections, then
    /// waits up to `timeout` until no request is in flight (every request
    /// already received has been handled and its response written), while
    /// open connections are still served. Returns whether that point was
    /// reached. Follow it with [`NodeServer::shutdown`].
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.endpoint.set_server_config(None);
        let idle = async {
            while self.in_flight() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(timeout, idle).await.is_ok()
    }

    /// Graceful shutdown: stop accepting, close connections with a code, and
    /// wait (bounded) for the endpoint to be idle.
    pub async fn shutdown(self) {
        self.endpoint.set_server_config(None);
        self.endpoint
            .close(VarInt::from_u32(codes::SHUTDOWN), b"node shutting down");
        if tokio::time::timeout(SHUTDOWN_WAIT, self.endpoint.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!("endpoint not idle after {SHUTDOWN_WAIT:?}; shutting down anyway");
        }
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.endpoint
            .close(VarInt::from_u32(codes::SHUTDOWN), b"node shutting down");
    }
}

/// Decrements a count when dropped: the live connections (when a
/// connection task ends) or the requests in flight (when a stream task does).
struct ConnectionSlot(Arc<AtomicUsize>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Live connections per address (see [`address_key`]).
type PerAddress = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// What a connection's source address counts as: an IPv4 address, or an
/// IPv6 /64 (what one subscriber is usually given, so one attacker does not
/// get 2^64 addresses' worth of connections).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// Gives an address's place back when its connection task ends.
struct AddressSlot {
    map: PerAddress,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

async fn accept_loop(
    endpoint: Endpoint,
    config: Arc<ServerConfig>,
    factory: HandlerFactory,
    in_flight: Arc<AtomicUsize>,
    retries: Arc<AtomicU64>,
) {
    let live = Arc::new(AtomicUsize::new(0));
    let per_address: PerAddress = Arc::default();
    while let Some(mut incoming) = endpoint.accept().await {
        let remote = incoming.remote_address();
        // Handshakes in progress count too, so a flood cannot exceed the
        // cap; only this loop adds, so reading then adding is exact.
        let now_live = live.load(Ordering::Relaxed);
        if now_live >= config.max_connections {
            tracing::warn!(%remote, limit = config.max_connections, "connection limit reached; refusing");
            incoming.refuse();
            continue;
        }
        // Busy: a new connection first proves it can receive at its source
        // address (a spoofed one cannot), at the cost of one round trip.
        if now_live >= config.retry_from && !incoming.remote_address_validated() {
            match incoming.retry() {
                Ok(()) => {
                    retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%remote, live = now_live, "busy: address validation (Retry) asked");
                    continue;
                }
                Err(e) => incoming = e.into_incoming(),
            }
        }
        let key = address_key(remote.ip());
        let address_slot = {
            let mut map = per_address.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(key).or_insert(0);
            if *n >= config.max_connections_per_address {
                drop(map);
                tracing::warn!(
                    %remote,
                    limit = config.max_connections_per_address,
                    "per-address connection limit reached; refusing"
                );
                incoming.refuse();
                continue;
            }
            *n += 1;
            AddressSlot {
                map: per_address.clone(),
                key,
            }
        };
        live.fetch_add(1, Ordering::Relaxed);
        let slot = ConnectionSlot(live.clone());
        tokio::spawn(serve_connection(
            incoming,
            config.clone(),
            factory.clone(),
            (slot, address_slot),
            in_flight.clone(),
        ));
    }
}

/// One connection's standing under the pre-authentication budget.
#[derive(Default)]
struct Admission {
    authenticated: AtomicBool,
    requests: AtomicUsize,
    bytes: AtomicUsize,
}

async fn serve_connection(
    incoming: Incoming,
    config: Arc<ServerConfig>,
    factory: HandlerFactory,
    _slots: (ConnectionSlot, AddressSlot),
    in_flight: Arc<AtomicUsize>,
) {
    let remote = incoming.remote_address();
    let connection = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(%remote, "handshake failed: {e}");
            return;
        }
    };
    let handler: SharedHandler = Arc::new(tokio::sync::Mutex::new(factory()));
    let admission = Arc::new(Admission::default());
    loop {
        match connection.accept_bi().await {
            Ok((send, recv)) => {
                if !admission.authenticated.load(Ordering::Acquire)
                    && admission.requests.fetch_add(1, Ordering::AcqRel) >= config.pre_auth_requests
                {
                    tracing::warn!(
                        %remote,
                        limit = config.pre_auth_requests,
                        "too many requests before authentication; closing the connection"
                    );
                    connection.close(
                        VarInt::from_u32(codes::PRE_AUTH_LIMIT),
                        b"over the pre-authentication budget",
                    );
                    return;
                }
                in_flight.fetch_add(1, Ordering::Relaxed);
                let request = ConnectionSlot(in_flight.clone());
                tokio::spawn(serve_stream(
                    connection.clone(),
                    send,
                    recv,
                    handler.clone(),
                    config.clone(),
                    admission.clone(),
                    request,
                ));
            }
            Err(e) => {
                tracing::debug!(%remote, "connection ended: {e}");
                return;
            }
        }
    }
}

fn now_ms() -> i64 {
    // A clock before 1970 is reported as the epoch rather than failing.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The first [`vigil_proto::REQUEST_HEAD`] bytes of a request (fewer if the
/// request is shorter), which tell its kind.
async fn read_head(recv: &mut RecvStream) -> Result<Vec<u8>, quinn::ReadError> {
    let mut head = vec![0u8; vigil_proto::REQUEST_HEAD];
    let mut got = 0;
    while got < head.len() {
        match recv.read(&mut head[got..]).await? {
            Some(n) => got += n,
            None => break,
        }
    }
    head.truncate(got);
    Ok(head)
}

async fn serve_stream(
    connection: Connection,
    mut send: SendStream,
    mut recv: RecvStream,
    handler: SharedHandler,
    config: Arc<ServerConfig>,
    admission: Arc<Admission>,
    _request: ConnectionSlot,
) {
    let authenticated = admission.authenticated.load(Ordering::Acquire);
    // Before authentication a request is read only up to the small limit,
    // and all of them only up to the budget's bytes.
    let limit = if authenticated {
        config.max_frame
    } else {
        let spent = admission.bytes.load(Ordering::Acquire);
        config
            .pre_auth_max_frame
            .min(config.pre_auth_bytes.saturating_sub(spent))
    };
    // Once authenticated, the request's kind sets its limit: only pushes
    // may be large, so a megabyte `Pull` is refused after its head, unread.
    let (head, limit) = if authenticated {
        match read_head(&mut recv).await {
            Ok(head) => {
                let limit = vigil_proto::request_limit(&head)
                    .min(limit)
                    .saturating_sub(head.len());
                (head, limit)
            }
            Err(e) => {
                tracing::debug!("reading request: {e}");
                return;
            }
        }
    } else {
        (Vec::new(), limit)
    };
    let request = match recv.read_to_end(limit).await {
        Ok(rest) if head.is_empty() => rest,
        Ok(rest) => [head, rest].concat(),
        Err(quinn::ReadToEndError::TooLong) if !authenticated => {
            tracing::warn!(
                remote = %connection.remote_address(),
                limit,
                "request over the pre-authentication limit; refused unread"
            );
            let code = VarInt::from_u32(codes::PRE_AUTH_LIMIT);
            let _ = recv.stop(code);
            let _ = send.reset(code);
            return;
        }
        Err(quinn::ReadToEndError::TooLong) => {
            tracing::debug!(remote = %connection.remote_address(), "request too large; resetting stream");
            let code = VarInt::from_u32(codes::FRAME_TOO_LARGE);
            // Either may fail if the peer already gave up; nothing more to do then.
            let _ = recv.stop(code);
            let _ = send.reset(code);
            return;
        }
        Err(e) => {
            tracing::debug!("reading request: {e}");
            return;
        }
    };
    if let Some(tap) = &config.frame_tap {
        // A poisoned tap only means a test thread panicked; keep recording.
        tap.lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(request.clone());
    }
    // The handler may touch the disk, so it runs off the async workers;
    // the owned guard keeps this connection's calls one at a time.
    if !authenticated {
        admission.bytes.fetch_add(request.len(), Ordering::AcqRel);
    }
    let mut guard = handler.lock_owned().await;
    let result = tokio::task::spawn_blocking(move || {
        let response = guard.handle(&request, now_ms());
        (response, guard.authenticated())
    })
    .await;
    let response = match result {
        Ok((r, authed)) => {
            if authed && !admission.authenticated.swap(true, Ordering::AcqRel) {
                // Proved: the connection gets the full limits.
                connection
                    .set_max_concurrent_bi_streams(VarInt::from_u32(config.max_concurrent_streams));
                connection.set_receive_window(VarInt::MAX);
                tracing::debug!(remote = %connection.remote_address(), "connection authenticated");
            }
            r
        }
        Err(e) => {
            // The session state may be half-updated: end the connection.
            tracing::error!("frame handler failed: {e}");
            connection.close(VarInt::from_u32(codes::HANDLER_FAILED), b"handler failed");
            return;
        }
    };
    if let Err(e) = send.write_all(&response).await {
        tracing::debug!("writing response: {e}");
        return;
    }
    if send.finish().is_ok() {
        // The request stays in flight until the device acknowledges the
        // whole response, so a draining node does not close under it; a
        // device that vanished without acknowledging holds it a moment only.
        let _ = tokio::time::timeout(ACK_WAIT, send.stopped()).await;
    }
}
