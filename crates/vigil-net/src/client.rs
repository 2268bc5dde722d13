//! The device side: a blocking connection to a node, pinned by certificate
//! fingerprint.

use core::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use quinn::{Connection, ConnectionError, Endpoint, VarInt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use vigil_crypto::NodeId;
use vigil_proto::{CloseReason, Exchange, ExchangeError, MAX_FRAME};

use crate::{ALPN, EnrolmentCode, NetError, SERVER_NAME, codes};

/// Time allowed for one request/response exchange.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// The connection closes after this long without any packet.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Keep-alives keep an idle connection (and NAT mappings) open.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How long [`DeviceConnection::close`] waits for the close to be sent.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Accepts exactly the certificate whose SHA-256 is pinned, and still checks
/// the handshake signature against that certificate's key.
#[derive(Debug)]
struct PinnedCert {
    fingerprint: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
    /// Set on a mismatch, so `connect` can say why the handshake failed.
    mismatch: Arc<AtomicBool>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The pin names one exact certificate, so name and validity period
        // add nothing.
        if <[u8; 32]>::from(Sha256::digest(end_entity)) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            self.mismatch.store(true, Ordering::Relaxed);
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn client_config(
    fingerprint: [u8; 32],
    mismatch: Arc<AtomicBool>,
) -> Result<quinn::ClientConfig, NetError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCert {
        fingerprint,
        algorithms: provider.signature_verification_algorithms,
        mismatch,
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(NetError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(NetError::QuicTls)?;
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(
            IDLE_TIMEOUT.try_into().map_err(NetError::IdleTimeout)?,
        ))
        .keep_alive_interval(Some(KEEP_ALIVE))
        // The node never opens streams towards a device.
        .max_concurrent_bidi_streams(VarInt::from_u32(0))
        .max_concurrent_uni_streams(VarInt::from_u32(0));
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// A runtime that keeps endpoints driven (keep-alives, acks) between the
/// callers' blocking calls: private to one [`DeviceConnection`] (one worker
/// thread), or shared by every connection of a [`ClientEndpoint`]. It is shut
/// down when the last holder is dropped.
#[derive(Clone)]
struct Driver(Arc<RuntimeOwner>);

struct RuntimeOwner(Option<tokio::runtime::Runtime>);

impl Driver {
    fn new() -> Result<Self, NetError> {
        Self::with_workers(1, "vigil-net-device")
    }

    fn with_workers(workers: usize, name: &str) -> Result<Self, NetError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name(name)
            .enable_all()
            .build()
            .map(|rt| Self(Arc::new(RuntimeOwner(Some(rt)))))
            .map_err(|e| NetError::io("starting network runtime", e))
    }

    /// Runs `fut` on the runtime and blocks this thread for its result;
    /// `None` if the task died.
    fn run<F>(&self, fut: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let rt = self.0.0.as_ref()?;
        // A std channel rather than `block_on`, which would panic if the
        // caller happens to be inside another tokio runtime.
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().ok()
    }
}

impl Drop for RuntimeOwner {
    fn drop(&mut self) {
        // Never blocks, so dropping is safe on any thread.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn unspecified_for(addr: SocketAddr) -> SocketAddr {
    if addr.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    }
}

/// Connects on `endpoint` with the pin in `code`, within `timeout`.
async fn connect_on(
    endpoint: &Endpoint,
    config: quinn::ClientConfig,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<Connection, NetError> {
    let connecting = endpoint
        .connect_with(config, addr, SERVER_NAME)
        .map_err(|source| NetError::ConnectSetup { addr, source })?;
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(source)) => Err(NetError::Connect { addr, source }),
        Err(_) => Err(NetError::Timeout(timeout)),
    }
}

/// The receive buffer a [`ClientEndpoint`] asks for: 4 MiB.
pub const SHARED_RECV_BUFFER: usize = 4 * 1024 * 1024;

/// One client endpoint (one UDP socket) and one runtime shared by many
/// [`DeviceConnection`]s.
///
/// [`DeviceConnection::connect`] gives every connection its own socket and
/// its own runtime thread, which is right for a device (it holds one
/// connection) but costs a thread and a few file descriptors per
/// connection. A program that holds thousands of connections at once (the
/// load generator, a gateway) makes one `ClientEndpoint` and connects
/// through it instead: the connections behave exactly as
/// [`DeviceConnection::connect`]'s (same pinning, timeouts, blocking API),
/// but share the socket and `worker_threads` runtime threads. Clones share
/// the endpoint; it lives until the last clone and the last connection made
/// through it are dropped.
#[derive(Clone)]
pub struct ClientEndpoint {
    endpoint: Endpoint,
    driver: Driver,
    recv_buffer: Option<usize>,
}

impl fmt::Debug for ClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientEndpoint")
            .field("local_addr", &self.endpoint.local_addr().ok())
            .field("open_connections", &self.endpoint.open_connections())
            .finish_non_exhaustive()
    }
}

impl ClientEndpoint {
    /// Binds a client endpoint on an ephemeral port of the unspecified
    /// address of `family`'s IP version (pass the node's address), driven by
    /// a runtime of `worker_threads` threads (at least one).
    ///
    /// The socket asks for a [`SHARED_RECV_BUFFER`] receive buffer (the
    /// kernel caps it at `net.core.rmem_max`): with the system default
    /// (208 KiB on Linux) a burst of handshakes through one socket overflows
    /// it, and each lost packet costs a connection a 1 s retransmission.
    pub fn new(family: SocketAddr, worker_threads: usize) -> Result<ClientEndpoint, NetError> {
        Self::bind(unspecified_for(family), worker_threads)
    }

    /// Like [`ClientEndpoint::new`], bound to the local address `bind`
    /// (a device on several networks picks the one to send from).
    pub fn bind(bind: SocketAddr, worker_threads: usize) -> Result<ClientEndpoint, NetError> {
        let driver = Driver::with_workers(worker_threads, "vigil-net-shared")?;
        let io = |e: std::io::Error| NetError::io(format!("binding {bind}"), e);
        let socket = std::net::UdpSocket::bind(bind).map_err(io)?;
        let state = quinn::udp::UdpSocketState::new((&socket).into()).map_err(io)?;
        // Best effort: a smaller buffer only means more retransmissions.
        let _ = state.set_recv_buffer_size((&socket).into(), SHARED_RECV_BUFFER);
        let recv_buffer = state.recv_buffer_size((&socket).into()).ok();
        let endpoint = driver
            .run(async move {
                Endpoint::new(
                    quinn::EndpointConfig::default(),
                    None,
                    socket,
                    Arc::new(quinn::TokioRuntime),
                )
            })
            .unwrap_or_else(|| Err(std::io::Error::other("network runtime stopped")))
            .map_err(io)?;
        Ok(ClientEndpoint {
            endpoint,
            driver,
            recv_buffer,
        })
    }

    /// The socket's receive buffer as the kernel granted it, bytes (Linux
    /// reports twice the usable size), if it could be read.
    pub fn recv_buffer_size(&self) -> Option<usize> {
        self.recv_buffer
    }

    /// Connects to the node in `code` through this endpoint; the same
    /// contract as [`DeviceConnection::connect`].
    pub fn connect(
        &self,
        code: &EnrolmentCode,
        timeout: Duration,
    ) -> Result<DeviceConnection, NetError> {
        let mismatch = Arc::new(AtomicBool::new(false));
        let config = client_config(code.fingerprint, mismatch.clone())?;
        let endpoint = self.endpoint.clone();
        let addr = code.addr;
        let result = self
            .driver
            .run(async move { connect_on(&endpoint, config, addr, timeout).await })
            .unwrap_or_else(|| Err(NetError::RuntimeStopped));
        match result {
            Ok(connection) => Ok(DeviceConnection {
                connection,
                node: code.node_id(),
                endpoint: self.endpoint.clone(),
                sent: 0,
                received: 0,
                driver: self.driver.clone(),
                shared: true,
            }),
            Err(_) if mismatch.load(Ordering::Relaxed) => Err(NetError::FingerprintMismatch),
            Err(e) => Err(e),
        }
    }

    /// Connections open on this endpoint right now.
    pub fn open_connections(&self) -> usize {
        self.endpoint.open_connections()
    }
}

/// A device's connection to a node, with a blocking API: it owns a small
/// tokio runtime (one worker thread) that drives the connection.
///
/// Meant for plain threads (the device code is synchronous). Calling it from
/// inside an async task does not panic but blocks that task's worker thread
/// for the whole exchange; use `spawn_blocking` there.
pub struct DeviceConnection {
    connection: Connection,
    /// The node of the code whose certificate this connection pinned.
    node: NodeId,
    endpoint: Endpoint,
    sent: u64,
    received: u64,
    driver: Driver,
    /// Made through a [`ClientEndpoint`]: the endpoint is not this
    /// connection's alone.
    shared: bool,
}

impl fmt::Debug for DeviceConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceConnection")
            .field("remote", &self.connection.remote_address())
            .field("node", &self.node)
            .field("bytes_sent", &self.sent)
            .field("bytes_received", &self.received)
            .finish_non_exhaustive()
    }
}

impl DeviceConnection {
    /// Connects to the node in `code` (ALPN `vigil/1`, server name
    /// `vigil-node`), accepting only the certificate it pins, within `timeout`.
    pub fn connect(code: &EnrolmentCode, timeout: Duration) -> Result<DeviceConnection, NetError> {
        let mismatch = Arc::new(AtomicBool::new(false));
        let config = client_config(code.fingerprint, mismatch.clone())?;
        let driver = Driver::new()?;
        let addr = code.addr;
        let bind = unspecified_for(addr);
        let attempt = async move {
            let endpoint =
                Endpoint::client(bind).map_err(|e| NetError::io(format!("binding {bind}"), e))?;
            let connection = connect_on(&endpoint, config, addr, timeout).await?;
            Ok((endpoint, connection))
        };
        let result = driver
            .run(attempt)
            .unwrap_or_else(|| Err(NetError::RuntimeStopped));
        match result {
            Ok((endpoint, connection)) => Ok(DeviceConnection {
                connection,
                node: code.node_id(),
                endpoint,
                sent: 0,
                received: 0,
                driver,
                shared: false,
            }),
            Err(_) if mismatch.load(Ordering::Relaxed) => Err(NetError::FingerprintMismatch),
            Err(e) => Err(e),
        }
    }

    /// Request payload bytes sent so far (for benchmarks).
    pub fn bytes_sent(&self) -> u64 {
        self.sent
    }

    /// Bytes this connection has put on the wire (UDP payloads: QUIC
    /// framing and retransmissions included), for benchmarks and tests.
    pub fn udp_bytes_sent(&self) -> u64 {
        self.connection.stats().udp_tx.bytes
    }

    /// Response payload bytes received so far (for benchmarks).
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    /// Closes the connection gracefully, waiting briefly for the close to be
    /// delivered. Dropping instead closes it without waiting. A connection
    /// made through a [`ClientEndpoint`] does not wait: the shared endpoint
    /// keeps running and sends the close.
    pub fn close(self) {
        self.connection
            .close(VarInt::from_u32(codes::CLOSED), b"device closed");
        if self.shared {
            return;
        }
        let endpoint = self.endpoint.clone();
        self.driver.run(async move {
            let _ = tokio::time::timeout(CLOSE_WAIT, endpoint.wait_idle()).await;
        });
    }
}

/// A lost connection as a typed transport error: the node's close reason,
/// or the loss as an `io::Error` whose kind says how (timeout, reset, ...).
fn connection_error(e: ConnectionError) -> ExchangeError {
    let kind = match &e {
        ConnectionError::ApplicationClosed(close) => {
            return ExchangeError::Closed(CloseReason::from_code(close.error_code.into_inner()));
        }
        ConnectionError::TimedOut => io::ErrorKind::TimedOut,
        ConnectionError::Reset => io::ErrorKind::ConnectionReset,
        ConnectionError::LocallyClosed => io::ErrorKind::NotConnected,
        _ => io::ErrorKind::ConnectionAborted,
    };
    ExchangeError::ConnectionLost(io::Error::new(kind, e))
}

fn write_error(e: quinn::WriteError) -> ExchangeError {
    match e {
        quinn::WriteError::Stopped(code) => {
            ExchangeError::Refused(CloseReason::from_code(code.into_inner()))
        }
        quinn::WriteError::ConnectionLost(c) => connection_error(c),
        other => ExchangeError::Io {
            context: "sending request",
            source: other.into(),
        },
    }
}

fn read_error(e: quinn::ReadToEndError) -> ExchangeError {
    match e {
        quinn::ReadToEndError::Read(quinn::ReadError::Reset(code)) => {
            ExchangeError::Refused(CloseReason::from_code(code.into_inner()))
        }
        quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(c)) => connection_error(c),
        quinn::ReadToEndError::TooLong => ExchangeError::ResponseTooLarge(MAX_FRAME),
        quinn::ReadToEndError::Read(other) => ExchangeError::Io {
            context: "reading response",
            // quinn's kind for the read error, its text with the wrapper's.
            source: io::Error::new(
                io::Error::from(other.clone()).kind(),
                quinn::ReadToEndError::Read(other),
            ),
        },
    }
}

impl Exchange for DeviceConnection {
    /// One bidirectional stream per exchange: write the request, finish,
    /// read the whole response; at most 30 s.
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        let connection = self.connection.clone();
        // The runtime task must own its data; one copy of the frame is cheap
        // next to sending it.
        let request = request.to_vec();
        let len = request.len() as u64;
        let attempt = async move {
            let (mut send, mut recv) = connection.open_bi().await.map_err(connection_error)?;
            send.write_all(&request).await.map_err(write_error)?;
            // Only fails if already finished or reset, which cannot be here.
            let _ = send.finish();
            recv.read_to_end(MAX_FRAME).await.map_err(read_error)
        };
        let outcome = self
            .driver
            .run(async move { tokio::time::timeout(EXCHANGE_TIMEOUT, attempt).await });
        let response = match outcome {
            None => Err(ExchangeError::Stopped),
            Some(Err(_)) => Err(ExchangeError::TimedOut(EXCHANGE_TIMEOUT)),
            Some(Ok(r)) => r,
        }?;
        self.sent += len;
        self.received += response.len() as u64;
        Ok(response)
    }

    /// The node of the enrolment code this connection pinned.
    fn node(&self) -> NodeId {
        self.node
    }
}
