//! `serve`'s webhook deliveries (the HTTP client over the node's durable
//! queue) and its `--metrics` endpoint. The scheduling is vigil-node's
//! (`vigil_node::webhook`); this is the I/O: clocks, sockets, TLS.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use vigil_node::metrics::CONTENT_TYPE;
use vigil_node::webhook::{
    Delivery, Outcome, Settled, TargetId, WebhookPolicy, WebhookQueue, WebhookSecret, Webhooks,
};
use vigil_node::{Metrics, Node, Relay};

use super::config::Settings;
use crate::common::Error;
use crate::common::time::now_ms;

/// The node's webhook secret, beside its identity in the data directory.
pub(crate) const SECRET_FILE: &str = "webhook-secret";
/// How long one attempt may take, connecting included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries taken from the queue at once.
const BATCH: usize = 32;
/// Longest sleep with nothing due (a clock step cannot strand the queue).
const IDLE: Duration = Duration::from_secs(60);

/// Checks a webhook URL: absolute http or https, with a host.
pub(crate) fn check_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|_| format!("webhook `{url}` is not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(uri),
        _ => Err(format!(
            "webhook `{url}`: give an http:// or https:// URL with a host"
        )),
    }
}

/// The secret `serve` signs with: the config file's, else the data
/// directory's (created at first use, owner-only).
pub(crate) fn secret(settings: &Settings, data: &Path) -> Result<WebhookSecret, Error> {
    match &settings.webhook_secret {
        Some(s) => WebhookSecret::parse(s)
            .map_err(|e| Error::usage(format!("config file: webhooks.secret: {e}"))),
        None => load_or_create_secret(data),
    }
}

fn load_or_create_secret(data: &Path) -> Result<WebhookSecret, Error> {
    let path = data.join(SECRET_FILE);
    let fail = |e: std::io::Error| Error::failed(format!("{}: {e}", path.display()));
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mode = std::fs::metadata(&path).map_err(fail)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(Error::failed(format!(
                    "{} is readable by others (mode {:o}): run `chmod 600` on it, and \
                     change the secret if someone else may have read it",
                    path.display(),
                    mode & 0o777
                )));
            }
            WebhookSecret::parse(&text)
                .map_err(|e| Error::failed(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut rng = vigil_crypto::rand_core::UnwrapErr(getrandom::SysRng);
            let s = WebhookSecret::generate(&mut rng);
            // create_new: two processes starting at once do not overwrite
            // each other's secret; the loser reads the winner's.
            let mut f = match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return load_or_create_secret(data);
                }
                Err(e) => return Err(fail(e)),
            };
            f.write_all(format!("{}\n", s.expose()).as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(fail)?;
            tracing::info!(file = %path.display(), "created the webhook secret");
            Ok(s)
        }
        Err(e) => Err(fail(e)),
    }
}

/// Delivers the queue's alerts to the webhooks.
pub(crate) struct Deliverer {
    queue: WebhookQueue,
    urls: HashMap<TargetId, Uri>,
    secret: WebhookSecret,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
}

/// What [`wire`] set up.
pub(crate) struct Wired {
    /// The node; its relay signals each new alert.
    pub(crate) node: Node,
    /// The webhooks' deliverer, if there are webhooks.
    pub(crate) deliverer: Option<Deliverer>,
    /// Notified when an alert is stored, if the dashboard asked: its live
    /// pages show it then rather than at their next poll.
    pub(crate) alert_stored: Option<Arc<Notify>>,
}

/// Wires the webhooks into `node`: its relay queues each new alert and
/// wakes the deliverer, and the dashboard if `dashboard`. Deliveries for
/// webhooks no longer configured are dropped (a removed URL gets nothing).
pub(crate) fn wire(
    settings: &Settings,
    data: &Path,
    node: Node,
    dashboard: bool,
) -> Result<Wired, Error> {
    let queue = WebhookQueue::new(node.store().clone(), WebhookPolicy::default());
    let mut urls = HashMap::new();
    for u in &settings.webhooks {
        urls.insert(TargetId::of(u), check_url(u).map_err(Error::usage)?);
    }
    let targets: Vec<TargetId> = urls.keys().copied().collect();
    let dropped = queue
        .retain_targets(&targets)
        .map_err(|e| Error::failed(format!("the webhook queue: {e}")))?;
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "dropped queued deliveries to webhooks no longer configured"
        );
    }
    if urls.is_empty() && !dashboard {
        return Ok(Wired {
            node,
            deliverer: None,
            alert_stored: None,
        });
    }
    let secret = match urls.is_empty() {
        true => None,
        false => Some(secret(settings, data)?),
    };
    // Each listener has its own Notify: a permit is kept for each until it
    // looks, so neither steals the other's wake-up.
    let deliver = secret.as_ref().map(|_| Arc::new(Notify::new()));
    let pages = dashboard.then(|| Arc::new(Notify::new()));
    let (d, p) = (deliver.clone(), pages.clone());
    let wake = move || {
        for n in [&d, &p].into_iter().flatten() {
            n.notify_one();
        }
    };
    let hooks = Webhooks::new(queue.clone(), targets, Arc::new(wake));
    let node = node.with_webhooks(hooks);
    let metrics = node.relay().metrics().clone();
    let deliverer = match (secret, deliver) {
        (Some(secret), Some(wake)) => Some(Deliverer {
            queue,
            urls,
            secret,
            metrics,
            wake,
        }),
        _ => None,
    };
    Ok(Wired {
        node,
        deliverer,
        alert_stored: pages,
    })
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

fn client() -> Result<HttpClient, Error> {
    let provider = rustls::crypto::ring::default_provider();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(provider)
        .map_err(|e| Error::failed(format!("TLS for webhooks: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// The host of a URL, for logs: the path and query may hold a token.
fn host(uri: &Uri) -> String {
    uri.authority().map(ToString::to_string).unwrap_or_default()
}

impl Deliverer {
    /// Delivers until the task is aborted. Runs the store's calls inline:
    /// each is one small read or write.
    pub(crate) async fn run(self) {
        let client = match client() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e.one_line(), "webhooks disabled");
                return;
            }
        };
        let mut rng = vigil_crypto::rand_core::UnwrapErr(getrandom::SysRng);
        loop {
            let due = match self.queue.due(now_ms(), BATCH) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the webhook queue");
                    Vec::new()
                }
            };
            let full = due.len() == BATCH;
            for d in due {
                let Some(uri) = self.urls.get(&d.target) else {
                    continue;
                };
                let outcome = self.attempt(&client, uri, &d).await;
                match self.queue.settle(&d, outcome, now_ms(), &mut rng) {
                    Ok(Settled::Delivered) => {
                        self.metrics.webhook_attempt("delivered");
                        tracing::info!(webhook = %host(uri), delivery = %d.delivery_id, "alert delivered");
                    }
                    Ok(Settled::Retry { at_ms }) => {
                        self.metrics.webhook_attempt("retry");
                        tracing::warn!(
                            webhook = %host(uri),
                            delivery = %d.delivery_id,
                            ?outcome,
                            retry_in_ms = at_ms - now_ms(),
                            "webhook delivery failed; will retry"
                        );
                    }
                    Ok(Settled::GaveUp) => {
                        self.metrics.webhook_attempt("gave_up");
                        tracing::error!(
                            webhook = %host(uri),
                            delivery = %d.delivery_id,
                            ?outcome,
                            "webhook refused the alert repeatedly; gave up on this delivery"
                        );
                    }
                    Ok(Settled::Gone) => {}
                    Err(e) => tracing::error!(error = %e, "cannot update the webhook queue"),
                }
            }
            if full {
                continue;
            }
            let wait = match self.queue.next_due_ms() {
                Ok(Some(at)) => {
                    Duration::from_millis(u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0))
                        .min(IDLE)
                }
                _ => IDLE,
            };
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn attempt(&self, client: &HttpClient, uri: &Uri, d: &Delivery) -> Outcome {
        let req = Request::post(uri.clone())
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("vigil-node/", env!("CARGO_PKG_VERSION")),
            )
            .header("x-vigil-event", "alert")
            .header("x-vigil-signature", self.secret.sign(&d.body))
            .header("x-vigil-delivery", &d.delivery_id)
            .header("idempotency-key", &d.delivery_id)
            .body(Full::new(Bytes::from(d.body.clone())));
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the webhook request");
                return Outcome::NoResponse;
            }
        };
        match tokio::time::timeout(ATTEMPT_TIMEOUT, client.request(req)).await {
            Ok(Ok(resp)) => Outcome::Status(resp.status().as_u16()),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, webhook = %host(uri), "webhook unreachable");
                Outcome::NoResponse
            }
            Err(_) => Outcome::NoResponse,
        }
    }
}

/// Binds the metrics address (before the ready lines, so a busy port fails
/// the start).
pub(crate) async fn bind_metrics(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::failed(format!("cannot listen for metrics on {addr}: {e}")))
}

/// Serves GET /metrics on `listener` until the task is aborted: HTTP/1.1,
/// nothing else on the address.
pub(crate) async fn serve_metrics(listener: TcpListener, relay: Relay) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let relay = relay.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let relay = relay.clone();
                async move { Ok::<_, Infallible>(answer(&req, relay).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "metrics connection");
            }
        });
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text.to_owned())));
    *r.status_mut() = status;
    r
}

async fn answer(req: &Request<hyper::body::Incoming>, relay: Relay) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "not found: try /metrics\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    // The gauges scan the store: off the async threads.
    match tokio::task::spawn_blocking(move || relay.encode_metrics()).await {
        Ok(Ok(text)) => {
            let mut r = Response::new(Full::new(Bytes::from(text)));
            if let Ok(v) = CONTENT_TYPE.parse() {
                r.headers_mut().insert("content-type", v);
            }
            r
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "metrics: store failure");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "storage failure\n")
        }
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
    }
}
