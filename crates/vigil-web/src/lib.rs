//! Vigil's staff dashboard: the web side of a community node.
//!
//! An axum app with server-rendered pages (maud), plain CSS and a little
//! JavaScript, no build step. Staff log in with a name and password
//! ([`staff`]); a session cookie (random 32-byte id, HttpOnly,
//! SameSite=Strict, Secure when configured) and a per-session CSRF token on
//! every form guard everything else. Failed logins are rate limited per
//! address and per name ([`limit`]). Every acknowledgement is written to the
//! store's audit log with the staff member's name.
//!
//! Staff also issue and revoke enrolment tickets (each written to the audit
//! log), print a ticket's enrolment sheet, and read the node's state.
//!
//! The inbox is live: every open page gets the new rows over server-sent
//! events when [`Web::notify`] is called (the node program calls it when
//! its relay stores an alert, and acknowledgements here call it), and a
//! task polls the node's inbox every [`WebConfig::poll_every`] to catch
//! every other writer (`vigil-node alerts ack`, the sweeper) without
//! touching the relay, for one inbox scan a second.
#![forbid(unsafe_code)]

pub mod backend;
pub mod i18n;
pub mod limit;
pub mod pages;
pub mod qr;
pub mod session;
pub mod staff;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Form, FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use futures_util::Stream;
use maud::Markup;
use tokio::sync::watch;
use vigil_node::{AuditRecord, MailboxStore};

pub use backend::{Alert, Backend, IssuedTicket};
use i18n::{Catalogue, Lang};
use limit::LoginLimiter;
use pages::Ctx;
use session::{Session, Sessions};
use staff::Staff;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "vigil_session";
/// The login form's CSRF cookie (double submit: there is no session yet).
pub const LOGIN_COOKIE: &str = "vigil_login";
/// The language cookie.
pub const LANG_COOKIE: &str = "vigil_lang";

/// A ticket's period when staff do not say, days (as `vigil-node residents
/// add`: two weeks, so a seven-day period started within a week fits).
pub const DEFAULT_PERIOD_DAYS: u32 = 14;
/// The longest period the form accepts, days (the node's own cap,
/// `limits.max_period`, may be lower: it then refuses).
pub const MAX_PERIOD_DAYS: u32 = 365;
/// How long the server holds a ticket just issued for its sheet, ms.
pub const SHEET_HOLD_MS: i64 = 30 * 60_000;

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");

/// How the dashboard runs.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Mark cookies `Secure` (set when a TLS proxy fronts the dashboard).
    pub secure_cookies: bool,
    /// How often the inbox is checked for changes for the live pages.
    pub poll_every: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            secure_cookies: false,
            poll_every: Duration::from_secs(1),
        }
    }
}

struct Inner {
    backend: Arc<dyn Backend>,
    store: MailboxStore,
    staff: Staff,
    config: WebConfig,
    cat: Catalogue,
    sessions: Mutex<Sessions>,
    limiter: Mutex<LoginLimiter>,
    changes: watch::Sender<u64>,
    holds: Mutex<HashMap<String, Hold>>,
}

/// A ticket just issued, held for its sheet.
///
/// The node keeps only a hash of a ticket's secret, so the sheet's QR code
/// can only be drawn from the issue answer. Rendering the sheet as the
/// answer to the POST would put it behind a browser's "resend the form?"
/// (a reload would issue a second ticket); instead the answer redirects to
/// the sheet, and the ticket waits here: in memory only (never in the store
/// or the audit log), for the session that issued it only (another staff
/// member, or someone who finds the URL, sees the sheet without the code),
/// for [`SHEET_HOLD_MS`], until that session logs out or the ticket is
/// revoked. After that the sheet says the code is gone: revoke and issue
/// again.
struct Hold {
    session: String,
    ticket: IssuedTicket,
    until_ms: i64,
}

/// The dashboard's shared state (cheap to clone).
#[derive(Clone)]
pub struct Web {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web").finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not lock staff out: the data stays consistent
    // (each operation is one map update).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Web {
    /// The dashboard over `backend`, writing its audit log to `store`, with
    /// the staff accounts in `staff`.
    pub fn new(
        backend: Arc<dyn Backend>,
        store: MailboxStore,
        staff: Staff,
        config: WebConfig,
    ) -> Web {
        Web {
            inner: Arc::new(Inner {
                backend,
                store,
                staff,
                config,
                cat: Catalogue::default(),
                sessions: Mutex::default(),
                limiter: Mutex::default(),
                changes: watch::Sender::new(0),
                holds: Mutex::default(),
            }),
        }
    }

    /// The routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(inbox_page))
            .route("/events", get(events))
            .route("/alerts/{id}/ack", post(ack))
            .route("/residents", get(residents_page).post(issue))
            .route("/residents/{id}/sheet", get(sheet_page))
            .route("/residents/{id}/revoke", post(revoke))
            .route("/node", get(node_page))
            .route("/login", get(login_page).post(login))
            .route("/logout", post(logout))
            .route("/lang/{tag}", get(set_lang))
            .route(
                "/static/app.css",
                get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS) }),
            )
            .route(
                "/static/app.js",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                        JS,
                    )
                }),
            )
            .layer(axum::middleware::map_response(security_headers))
            .with_state(self.clone())
    }

    /// Tells live pages the inbox changed.
    pub fn notify(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Watches the inbox forever, notifying live pages on each change (spawn
    /// it beside the server).
    pub async fn watch_inbox(self) {
        let mut tick = tokio::time::interval(self.inner.config.poll_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<Vec<(String, bool)>> = None;
        loop {
            tick.tick().await;
            let b = self.inner.backend.clone();
            let now = now_ms();
            let seen = match tokio::task::spawn_blocking(move || b.alerts(now)).await {
                Ok(Ok(list)) => list
                    .into_iter()
                    .map(|a| (a.id, a.acked_ms.is_some()))
                    .collect(),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "dashboard: reading the inbox failed");
                    continue;
                }
                Err(_) => continue,
            };
            // The first look notifies too: a page opened before it may
            // have missed a change made meanwhile.
            if last.as_ref() != Some(&seen) {
                self.notify();
            }
            last = Some(seen);
        }
    }

    /// Serves the dashboard on `listener` until `stop` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let watcher = tokio::spawn(self.clone().watch_inbox());
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await;
        watcher.abort();
        r
    }

    fn audit(&self, staff: &str, action: &str, subject: &str) -> Result<(), String> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| e.to_string())?;
        self.inner
            .store
            .append_audit(
                &AuditRecord {
                    at_ms: now_ms(),
                    staff: staff.to_owned(),
                    action: action.to_owned(),
                    subject: subject.to_owned(),
                },
                nonce,
            )
            .map_err(|e| e.to_string())
    }
}

async fn security_headers(mut r: axum::response::Response) -> axum::response::Response {
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(h, "x-frame-options", "DENY");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    r
}

/// A cookie's value from the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(web: &Web, name: &str, value: &str, max_age_s: i64) -> (header::HeaderName, String) {
    let secure = if web.inner.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    (
        header::SET_COOKIE,
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"),
    )
}

/// The page language: the switch's cookie, else `Accept-Language`.
fn lang_of(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE)
        .and_then(Lang::from_tag)
        .unwrap_or_else(|| {
            Lang::from_accept(
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            )
        })
}

/// The client's address (unspecified when the server was not told it, as
/// in tests that call the router directly).
fn client_addr(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// A logged-in staff member: extracting it is what makes a page
/// session-only. Without a live session: a redirect to the login page (a
/// 401 for the event stream and POSTs).
struct Authed {
    id: String,
    session: Session,
    lang: Lang,
}

impl FromRequestParts<Web> for Authed {
    type Rejection = axum::response::Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Self::Rejection> {
        let refuse = || {
            if parts.method == axum::http::Method::GET && parts.uri.path() != "/events" {
                Redirect::to("/login").into_response()
            } else {
                StatusCode::UNAUTHORIZED.into_response()
            }
        };
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) else {
            return Err(refuse());
        };
        let Some(session) = lock(&web.inner.sessions).get(&id, now_ms()) else {
            return Err(refuse());
        };
        // A removed staff member's sessions end at once.
        if !web.inner.staff.exists(&session.staff).unwrap_or(false) {
            lock(&web.inner.sessions).close(&id);
            return Err(refuse());
        }
        Ok(Authed {
            id,
            session,
            lang: lang_of(&parts.headers),
        })
    }
}

impl Authed {
    fn ctx<'a>(&'a self, web: &'a Web) -> Ctx<'a> {
        Ctx {
            cat: &web.inner.cat,
            lang: self.lang,
            staff: Some((&self.session.staff, &self.session.csrf)),
        }
    }

    /// 403 unless the form carries this session's CSRF token.
    fn check_csrf(
        &self,
        form: &std::collections::HashMap<String, String>,
    ) -> Result<(), StatusCode> {
        match form.get("csrf") {
            Some(t) if self.session.csrf_ok(t) => Ok(()),
            _ => Err(StatusCode::FORBIDDEN),
        }
    }
}

type FormMap = Form<std::collections::HashMap<String, String>>;

fn html(m: Markup) -> axum::response::Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], m.0).into_response()
}

fn server_error(web: &Web, lang: Lang, e: &str) -> axum::response::Response {
    tracing::error!(error = %e, "dashboard request failed");
    let c = Ctx {
        cat: &web.inner.cat,
        lang,
        staff: None,
    };
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        html(pages::error(&c, "error-internal")),
    )
        .into_response()
}

/// The inbox (each alert names who acknowledged it), read on the blocking
/// pool.
async fn inbox_data(web: &Web) -> Result<Vec<Alert>, String> {
    let w = web.clone();
    tokio::task::spawn_blocking(move || w.inner.backend.alerts(now_ms()))
        .await
        .map_err(|e| e.to_string())?
}

async fn inbox_page(State(web): State<Web>, a: Authed) -> axum::response::Response {
    let alerts = match inbox_data(&web).await {
        Ok(x) => x,
        Err(e) => return server_error(&web, a.lang, &e),
    };
    let c = a.ctx(&web);
    let rows = pages::inbox_rows(&c, &alerts, now_ms());
    let unacked = alerts.iter().filter(|x| x.acked_ms.is_none()).count();
    html(pages::inbox(&c, rows, unacked))
}

async fn events(
    State(web): State<Web>,
    a: Authed,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = web.inner.changes.subscribe();
    // The first event is the inbox as it is now; then one per change.
    let stream =
        futures_util::stream::unfold((web, a, rx, true), |(web, a, mut rx, first)| async move {
            if !first && rx.changed().await.is_err() {
                return None;
            }
            rx.mark_unchanged();
            let ev = match inbox_data(&web).await {
                Ok(alerts) => {
                    let c = a.ctx(&web);
                    let rows = pages::inbox_rows(&c, &alerts, now_ms());
                    let unacked = alerts.iter().filter(|x| x.acked_ms.is_none()).count();
                    Event::default()
                        .event("inbox")
                        .id(unacked.to_string())
                        .data(pages::one_line(rows))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "dashboard: reading the inbox failed");
                    Event::default().event("error").data("")
                }
            };
            Some((Ok(ev), (web, a, rx, false)))
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn valid_alert_id(id: &str) -> bool {
    id.len() == 12
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

async fn ack(
    State(web): State<Web>,
    a: Authed,
    Path(id): Path<String>,
    Form(form): FormMap,
) -> axum::response::Response {
    if let Err(s) = a.check_csrf(&form) {
        return s.into_response();
    }
    if !valid_alert_id(&id) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let w = web.clone();
    let who = a.session.staff.clone();
    let r = tokio::task::spawn_blocking(move || {
        let (alert, already) = w.inner.backend.ack(&id, &who, now_ms())?;
        if !already {
            w.audit(&who, "ack", &alert.id)?;
        }
        Ok::<_, String>(())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match r {
        Ok(()) => {
            web.notify();
            Redirect::to("/").into_response()
        }
        Err(e) => server_error(&web, a.lang, &e),
    }
}

async fn login_page(State(web): State<Web>, headers: HeaderMap) -> axum::response::Response {
    login_form(&web, lang_of(&headers), None, StatusCode::OK)
}

fn login_form(
    web: &Web,
    lang: Lang,
    error: Option<&str>,
    status: StatusCode,
) -> axum::response::Response {
    let token = match session::random_token() {
        Ok(t) => t,
        Err(e) => return server_error(web, lang, &e.to_string()),
    };
    let c = Ctx {
        cat: &web.inner.cat,
        lang,
        staff: None,
    };
    let page = html(pages::login(&c, &token, error));
    (status, [set_cookie(web, LOGIN_COOKIE, &token, 3600)], page).into_response()
}

async fn login(
    State(web): State<Web>,
    parts: Parts,
    Form(form): FormMap,
) -> axum::response::Response {
    let lang = lang_of(&parts.headers);
    // Login CSRF: the form's token must match the cookie set with the form.
    let pre = cookie(&parts.headers, LOGIN_COOKIE).unwrap_or("");
    let sent = form.get("csrf").map_or("", String::as_str);
    if pre.is_empty()
        || pre.len() != sent.len()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            pre.as_bytes(),
            sent.as_bytes(),
        ))
    {
        return StatusCode::FORBIDDEN.into_response();
    }
    let name = form
        .get("name")
        .map_or("", String::as_str)
        .trim()
        .to_owned();
    let password = zeroize::Zeroizing::new(form.get("password").cloned().unwrap_or_default());
    let addr = client_addr(&parts);
    let now = now_ms();
    if lock(&web.inner.limiter).check(addr, &name, now).is_err() {
        tracing::warn!(%addr, "dashboard: login refused, too many failures");
        return login_form(
            &web,
            lang,
            Some("login-too-many"),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let w = web.clone();
    let n = name.clone();
    let ok = tokio::task::spawn_blocking(move || w.inner.staff.verify(&n, &password)).await;
    match ok {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            lock(&web.inner.limiter).failed(addr, &name, now);
            tracing::info!(%addr, "dashboard: wrong name or password");
            return login_form(&web, lang, Some("login-wrong"), StatusCode::UNAUTHORIZED);
        }
        Ok(Err(e)) => return server_error(&web, lang, &e.to_string()),
        Err(e) => return server_error(&web, lang, &e.to_string()),
    }
    let (id, csrf) = match (session::random_token(), session::random_token()) {
        (Ok(i), Ok(c)) => (i, c),
        _ => return server_error(&web, lang, "no randomness"),
    };
    lock(&web.inner.sessions).open(&id, csrf, &name, now);
    if let Err(e) = web.audit(&name, "login", "") {
        tracing::warn!(error = %e, "dashboard: audit log write failed");
    }
    let mut r = Redirect::to("/").into_response();
    let (k, v) = set_cookie(&web, SESSION_COOKIE, &id, session::MAX_AGE_MS / 1000);
    let (k2, v2) = set_cookie(&web, LOGIN_COOKIE, "", 0);
    for (k, v) in [(k, v), (k2, v2)] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

async fn logout(
    State(web): State<Web>,
    a: Authed,
    Form(form): FormMap,
) -> axum::response::Response {
    if let Err(s) = a.check_csrf(&form) {
        return s.into_response();
    }
    lock(&web.inner.sessions).close(&a.id);
    lock(&web.inner.holds).retain(|_, h| h.session != a.id);
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/login".to_owned()),
            set_cookie(&web, SESSION_COOKIE, "", 0),
        ],
    )
        .into_response()
}

async fn set_lang(State(web): State<Web>, Path(tag): Path<String>) -> axum::response::Response {
    let Some(lang) = Lang::from_tag(&tag) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Back to the inbox (the login page when logged out): no Referer is
    // sent under our policy, and an open redirect is avoided.
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_owned()),
            set_cookie(&web, LANG_COOKIE, lang.tag(), 365 * 86400),
        ],
    )
        .into_response()
}

/// Runs `f` on the backend on the blocking pool.
async fn blocking<T: Send + 'static>(
    web: &Web,
    f: impl FnOnce(&Web) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let w = web.clone();
    tokio::task::spawn_blocking(move || f(&w))
        .await
        .map_err(|e| e.to_string())?
}

/// A whole ticket id: 32 lowercase hex digits (what the pages link to).
fn valid_ticket_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The residents list's rows per page: enough to scan by eye, few enough
/// that a node with 10,000 residents renders a page in well under 100 ms.
pub const RESIDENTS_PER_PAGE: usize = 100;
/// The longest search the residents list accepts, in characters (a label's
/// longest; a whole ticket id is shorter).
pub const MAX_SEARCH_CHARS: usize = 80;

/// What the residents page was asked for: page (1-based) and search, or a
/// catalogue key saying why they were refused (and what is shown instead).
#[derive(Debug, Default)]
struct ListAsk {
    page: usize,
    q: String,
    error: Option<&'static str>,
}

impl ListAsk {
    /// From the query string's `page` and `q`. A page that is not a
    /// positive whole number, or a search too long or with control
    /// characters (no label has one), is refused: page 1, without the bad
    /// search, and a message.
    fn parse(params: &HashMap<String, String>) -> ListAsk {
        let mut ask = ListAsk {
            page: 1,
            ..ListAsk::default()
        };
        if let Some(q) = params.get("q") {
            // Checked before trimming: a trailing control character (NEL is
            // also white space) is refused, not silently dropped.
            if q.chars().count() > MAX_SEARCH_CHARS {
                ask.error = Some("residents-bad-search-long");
            } else if q.chars().any(char::is_control) {
                ask.error = Some("residents-bad-search-control");
            } else {
                q.trim().clone_into(&mut ask.q);
            }
        }
        if let Some(p) = params.get("page") {
            match p.parse::<usize>() {
                Ok(n) if n >= 1 => ask.page = n,
                _ => ask.error = ask.error.or(Some("residents-bad-page")),
            }
        }
        ask
    }
}

/// The residents page, with the issue form as `form` says and `status`.
async fn residents_response(
    web: &Web,
    a: &Authed,
    ask: &ListAsk,
    form: &pages::IssueForm<'_>,
    status: StatusCode,
) -> axum::response::Response {
    // Every ticket: staff must see revoked ones and ended periods too.
    let query = backend::ResidentQuery {
        q: ask.q.clone(),
        offset: ask
            .page
            .saturating_sub(1)
            .saturating_mul(RESIDENTS_PER_PAGE),
        limit: RESIDENTS_PER_PAGE,
    };
    let page = match blocking(web, move |w| {
        w.inner.backend.resident_page(&query, now_ms())
    })
    .await
    {
        Ok(p) => p,
        Err(e) => return server_error(web, a.lang, &e),
    };
    let view = pages::ListView {
        q: &ask.q,
        per_page: RESIDENTS_PER_PAGE,
        error: ask.error,
    };
    let status = if ask.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    let html_page = pages::residents(&a.ctx(web), &page, &view, now_ms(), form);
    (status, html(html_page)).into_response()
}

async fn residents_page(
    State(web): State<Web>,
    a: Authed,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> axum::response::Response {
    let ask = match params {
        Ok(Query(p)) => ListAsk::parse(&p),
        Err(_) => ListAsk {
            page: 1,
            error: Some("residents-bad-page"),
            ..ListAsk::default()
        },
    };
    residents_response(&web, &a, &ask, &pages::IssueForm::default(), StatusCode::OK).await
}

async fn issue(State(web): State<Web>, a: Authed, Form(form): FormMap) -> axum::response::Response {
    if let Err(s) = a.check_csrf(&form) {
        return s.into_response();
    }
    let label = form.get("label").map_or("", String::as_str);
    let days_text = form.get("days").map_or("", |d| d.trim());
    let refuse = |key: &'static str| pages::IssueForm {
        label,
        days: days_text,
        error: Some((key, None)),
    };
    let bad = StatusCode::BAD_REQUEST;
    // The node checks the label too; checked here first so the refusal is
    // in the page's language.
    if vigil_node::normalize_label(label).is_err() {
        return residents_response(
            &web,
            &a,
            &ListAsk::default(),
            &refuse("issue-error-label"),
            bad,
        )
        .await;
    }
    let days = if days_text.is_empty() {
        DEFAULT_PERIOD_DAYS
    } else {
        match days_text.parse::<u32>() {
            Ok(d) if (1..=MAX_PERIOD_DAYS).contains(&d) => d,
            _ => {
                return residents_response(
                    &web,
                    &a,
                    &ListAsk::default(),
                    &refuse("issue-error-days"),
                    bad,
                )
                .await;
            }
        }
    };
    let (who, l) = (a.session.staff.clone(), label.to_owned());
    let period_ms = i64::from(days) * 86_400_000;
    let issued = blocking(&web, move |w| {
        w.inner.backend.issue_ticket(&l, period_ms, now_ms())
    })
    .await;
    let t = match issued {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: the node refused a ticket");
            let f = pages::IssueForm {
                error: Some(("issue-error-node", Some(&e))),
                ..refuse("issue-error-node")
            };
            return residents_response(&web, &a, &ListAsk::default(), &f, bad).await;
        }
    };
    // The audit names the ticket by its short id: never its secret.
    let short = t.id.get(..12).unwrap_or(&t.id).to_owned();
    if let Err(e) = blocking(&web, move |w| w.audit(&who, "ticket.issue", &short)).await {
        return server_error(&web, a.lang, &e);
    }
    let at = format!("/residents/{}/sheet", t.id);
    let now = now_ms();
    let mut holds = lock(&web.inner.holds);
    holds.retain(|_, h| h.until_ms > now);
    holds.insert(
        t.id.clone(),
        Hold {
            session: a.id.clone(),
            ticket: t,
            until_ms: now.saturating_add(SHEET_HOLD_MS),
        },
    );
    drop(holds);
    Redirect::to(&at).into_response()
}

async fn sheet_page(
    State(web): State<Web>,
    a: Authed,
    Path(id): Path<String>,
) -> axum::response::Response {
    if !valid_ticket_id(&id) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let now = now_ms();
    let held = lock(&web.inner.holds)
        .get(&id)
        .filter(|h| h.session == a.id && h.until_ms > now)
        .map(|h| h.ticket.clone());
    let c = a.ctx(&web);
    if let Some(t) = held {
        let svg = match qr::svg(&t.ticket) {
            Ok(s) => s,
            Err(e) => return server_error(&web, a.lang, &e),
        };
        let sheet = pages::SheetTicket {
            label: &t.label,
            period_end_ms: t.period_end_ms,
            code: Some((&t, svg)),
        };
        return html(pages::sheet(&c, &sheet));
    }
    let list = match blocking(&web, |w| w.inner.backend.residents(true, now_ms())).await {
        Ok(l) => l,
        Err(e) => return server_error(&web, a.lang, &e),
    };
    match list
        .iter()
        .find(|r| r.ticket.as_deref() == Some(id.as_str()))
    {
        Some(r) => html(pages::sheet(
            &c,
            &pages::SheetTicket {
                label: &r.label,
                period_end_ms: r.period_end_ms,
                code: None,
            },
        )),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn revoke(
    State(web): State<Web>,
    a: Authed,
    Path(id): Path<String>,
    Form(form): FormMap,
) -> axum::response::Response {
    if let Err(s) = a.check_csrf(&form) {
        return s.into_response();
    }
    if !valid_ticket_id(&id) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let who = a.session.staff.clone();
    let i = id.clone();
    let r = blocking(&web, move |w| {
        let (_, already) = w.inner.backend.revoke(&i, now_ms())?;
        if !already {
            w.audit(&who, "ticket.revoke", &i[..12])?;
        }
        Ok(())
    })
    .await;
    // A revoked ticket's sheet shows no code, even to who issued it.
    lock(&web.inner.holds).remove(&id);
    match r {
        Ok(()) => {
            // Revoking an enrolled resident may drop alerts from the inbox.
            web.notify();
            Redirect::to("/residents").into_response()
        }
        Err(e) => server_error(&web, a.lang, &e),
    }
}

async fn node_page(State(web): State<Web>, a: Authed) -> axum::response::Response {
    match blocking(&web, |w| w.inner.backend.node_info(now_ms())).await {
        Ok(n) => html(pages::node(&a.ctx(&web), &n)),
        Err(e) => server_error(&web, a.lang, &e),
    }
}
