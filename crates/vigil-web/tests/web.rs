//! The dashboard as staff (and attackers) use it, through the router.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use vigil_node::MailboxStore;
use vigil_web::backend::{IssuedTicket, LastSweep, NodeInfo, Quota, Resident};
use vigil_web::staff::Staff;
use vigil_web::{Alert, Backend, Web, WebConfig};

const PASSWORD: &str = "correct horse battery";
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// The secret part of every ticket the fake issues: it must never reach
/// the audit log or anyone but the staff member who issued it.
const SECRET: &str = "5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2";

#[derive(Default)]
struct Fake {
    alerts: Mutex<Vec<Alert>>,
    residents: Mutex<Vec<Resident>>,
    /// (label, period length) of each ticket issued.
    issued: Mutex<Vec<(String, i64)>>,
    node: Mutex<NodeInfo>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

impl Backend for Fake {
    fn alerts(&self, _now_ms: i64) -> Result<Vec<Alert>, String> {
        Ok(self.alerts.lock().unwrap().clone())
    }
    fn ack(&self, id: &str, by: &str, now_ms: i64) -> Result<(Alert, bool), String> {
        let mut all = self.alerts.lock().unwrap();
        let a = all.iter_mut().find(|a| a.id == id).ok_or("no such alert")?;
        let already = a.acked_ms.is_some();
        a.acked_ms.get_or_insert(now_ms);
        a.acked_by.get_or_insert_with(|| by.to_owned());
        Ok((a.clone(), already))
    }
    fn residents(&self, all: bool, _now_ms: i64) -> Result<Vec<Resident>, String> {
        let list = self.residents.lock().unwrap().clone();
        Ok(list
            .into_iter()
            .filter(|r| all || matches!(r.status.as_str(), "unused" | "enrolled"))
            .collect())
    }
    fn issue_ticket(
        &self,
        label: &str,
        period_ms: i64,
        now_ms: i64,
    ) -> Result<IssuedTicket, String> {
        if label == "Full" {
            return Err("too many unused tickets (10000): <revoke> some".into());
        }
        let mut issued = self.issued.lock().unwrap();
        issued.push((label.to_owned(), period_ms));
        let id = format!("{:032x}", 0xa1b2c3d4e5f6_u64 + issued.len() as u64);
        let ticket = format!(
            "vigil-ticket1/127.0.0.1:4433/{}/{}/{}/{id}/{SECRET}",
            "11".repeat(32),
            "22".repeat(32),
            "33".repeat(32)
        );
        self.residents
            .lock()
            .unwrap()
            .push(resident(&id, label, "unused", None));
        Ok(IssuedTicket {
            id,
            label: label.to_owned(),
            period_end_ms: now_ms + period_ms,
            ticket: ticket.into(),
        })
    }
    fn revoke(&self, id: &str, _now_ms: i64) -> Result<(Resident, bool), String> {
        let mut all = self.residents.lock().unwrap();
        let r = all
            .iter_mut()
            .find(|r| r.ticket.as_deref() == Some(id))
            .ok_or("no such ticket")?;
        let already = r.status == "revoked";
        r.status = "revoked".into();
        Ok((r.clone(), already))
    }
    fn node_info(&self, _now_ms: i64) -> Result<NodeInfo, String> {
        Ok(self.node.lock().unwrap().clone())
    }
}

fn resident(ticket: &str, label: &str, status: &str, last_contact_ms: Option<i64>) -> Resident {
    Resident {
        id: ticket[..12].to_owned(),
        ticket: Some(ticket.to_owned()),
        label: label.to_owned(),
        status: status.to_owned(),
        period_end_ms: 1_780_000_000_000,
        last_contact_ms,
        alerts: 0,
        unacked: 0,
    }
}

fn alert(id: &str, label: &str) -> Alert {
    Alert {
        id: id.into(),
        kind: 1,
        label: label.into(),
        onset_ms: 1_780_000_000_000,
        level: 2,
        received_ms: 1_780_000_000_000,
        acked_ms: None,
        monitoring_ended_ms: None,
        acked_by: None,
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    web: Web,
    app: Router,
    fake: Arc<Fake>,
    store: MailboxStore,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let staff = Staff::in_dir(dir.path());
    staff.add("Mei", PASSWORD, 0).unwrap();
    staff.add("Li", PASSWORD, 0).unwrap();
    let fake = Arc::new(Fake::default());
    let store = MailboxStore::in_memory();
    let web = Web::new(
        fake.clone(),
        store.clone(),
        staff,
        WebConfig {
            secure_cookies: false,
            poll_every: Duration::from_millis(10),
        },
    );
    Harness {
        app: web.router(),
        web,
        _dir: dir,
        fake,
        store,
    }
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Resp {
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(|v| v.split(';').next().unwrap()[name.len() + 1..].to_owned())
    }
    fn location(&self) -> &str {
        self.headers[header::LOCATION].to_str().unwrap()
    }
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b' ' => "+".to_owned(),
                    b if b.is_ascii_alphanumeric() || b"-_.".contains(&b) => {
                        (b as char).to_string()
                    }
                    b => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn send(app: &Router, req: Request<Body>) -> Resp {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body =
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Resp {
        status,
        headers,
        body,
    }
}

async fn get(app: &Router, path: &str, cookies: &str) -> Resp {
    send(
        app,
        Request::get(path)
            .header(header::COOKIE, cookies)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

async fn post(app: &Router, path: &str, cookies: &str, form: &[(&str, &str)]) -> Resp {
    send(
        app,
        Request::post(path)
            .header(header::COOKIE, cookies)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form_encode(form)))
            .unwrap(),
    )
    .await
}

/// The first `name="csrf" value="..."` on a page.
fn csrf_of(page: &str) -> String {
    let at = page
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + 64].to_owned()
}

async fn try_login(app: &Router, name: &str, password: &str) -> Resp {
    let page = get(app, "/login", "").await;
    assert_eq!(page.status, StatusCode::OK);
    let pre = page.cookie("vigil_login").unwrap();
    post(
        app,
        "/login",
        &format!("vigil_login={pre}"),
        &[
            ("csrf", &csrf_of(&page.body)),
            ("name", name),
            ("password", password),
        ],
    )
    .await
}

/// Logs in; returns the session cookie header and the session's CSRF token.
async fn login(app: &Router) -> (String, String) {
    login_as(app, "Mei").await
}

async fn login_as(app: &Router, name: &str) -> (String, String) {
    let r = try_login(app, name, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let cookie = format!("vigil_session={}", r.cookie("vigil_session").unwrap());
    let set = r
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert!(set.iter().any(|c| c.starts_with("vigil_session=")
        && c.contains("HttpOnly")
        && c.contains("SameSite=Strict")));
    let inbox = get(app, "/", &cookie).await;
    assert_eq!(inbox.status, StatusCode::OK);
    let csrf = csrf_of(&inbox.body);
    (cookie, csrf)
}

#[tokio::test]
async fn right_password_logs_in_wrong_one_does_not() {
    let h = harness();
    let r = try_login(&h.app, "Mei", "wrong horse battery").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains(r#"id="login-error""#));
    assert!(r.cookie("vigil_session").is_none());
    let r = try_login(&h.app, "Nobody", PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (cookie, _) = login(&h.app).await;
    let page = get(&h.app, "/", &cookie).await;
    assert!(page.body.contains("Signed in as Mei"), "{}", page.body);
}

#[tokio::test]
async fn guessing_is_rate_limited_even_with_the_right_password_next() {
    let h = harness();
    for _ in 0..vigil_web::limit::MAX_PER_NAME {
        assert_eq!(
            try_login(&h.app, "Mei", "guess guess guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = try_login(&h.app, "Mei", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.cookie("vigil_session").is_none());
}

#[tokio::test]
async fn every_page_needs_a_session() {
    let h = harness();
    h.fake
        .alerts
        .lock()
        .unwrap()
        .push(alert("3fa2c19b04de", "Ana"));
    let r = get(&h.app, "/", "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login");
    assert!(!r.body.contains("Ana"));
    assert_eq!(
        get(&h.app, "/events", "").await.status,
        StatusCode::UNAUTHORIZED
    );
    let forged = "vigil_session=".to_owned() + &"ab".repeat(32);
    assert_eq!(
        get(&h.app, "/", &forged).await.status,
        StatusCode::SEE_OTHER
    );
    let r = post(
        &h.app,
        "/alerts/3fa2c19b04de/ack",
        &forged,
        &[("csrf", "x")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(h.fake.alerts.lock().unwrap()[0].acked_ms.is_none());
    // What is public: the login page and the static files.
    assert_eq!(get(&h.app, "/login", "").await.status, StatusCode::OK);
    assert_eq!(
        get(&h.app, "/static/app.css", "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&h.app, "/static/app.js", "").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused() {
    let h = harness();
    h.fake
        .alerts
        .lock()
        .unwrap()
        .push(alert("3fa2c19b04de", "Ana"));
    let (cookie, csrf) = login(&h.app).await;
    for form in [
        vec![],
        vec![("csrf", "00".repeat(32))],
        vec![("csrf", csrf[..63].to_owned())],
    ] {
        let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = post(&h.app, "/alerts/3fa2c19b04de/ack", &cookie, &f).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = post(&h.app, "/logout", &cookie, &f).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    assert!(h.fake.alerts.lock().unwrap()[0].acked_ms.is_none());
    assert!(
        h.store
            .audit_log()
            .unwrap()
            .iter()
            .all(|r| r.action != "ack")
    );
    // A login form posted without the cookie it came with (cross-site).
    let page = get(&h.app, "/login", "").await;
    let r = post(
        &h.app,
        "/login",
        "",
        &[
            ("csrf", &csrf_of(&page.body)),
            ("name", "Mei"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Still logged in: the refused logout did nothing.
    assert_eq!(get(&h.app, "/", &cookie).await.status, StatusCode::OK);
}

#[tokio::test]
async fn ack_is_audited_with_the_name_and_shown() {
    let h = harness();
    h.fake
        .alerts
        .lock()
        .unwrap()
        .push(alert("3fa2c19b04de", "Ana"));
    let (cookie, csrf) = login(&h.app).await;
    let page = get(&h.app, "/", &cookie).await;
    assert!(
        page.body
            .contains(r#"id="alert-3fa2c19b04de" class="unacked""#),
        "{}",
        page.body
    );
    let r = post(
        &h.app,
        "/alerts/3fa2c19b04de/ack",
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let log = h.store.audit_log().unwrap();
    let acks: Vec<_> = log.iter().filter(|r| r.action == "ack").collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(
        (acks[0].staff.as_str(), acks[0].subject.as_str()),
        ("Mei", "3fa2c19b04de")
    );
    let page = get(&h.app, "/", &cookie).await;
    assert!(page.body.contains(r#"class="acked""#));
    assert!(page.body.contains("Acknowledged by Mei"), "{}", page.body);
    // A second click: no second audit record.
    post(
        &h.app,
        "/alerts/3fa2c19b04de/ack",
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(
        h.store
            .audit_log()
            .unwrap()
            .iter()
            .filter(|r| r.action == "ack")
            .count(),
        1
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let h = harness();
    let (cookie, csrf) = login(&h.app).await;
    let r = post(&h.app, "/logout", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        get(&h.app, "/", &cookie).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn removed_staff_lose_their_session() {
    let h = harness();
    let (cookie, _) = login(&h.app).await;
    Staff::in_dir(h._dir.path()).remove("Mei").unwrap();
    assert_eq!(
        get(&h.app, "/", &cookie).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_hostile_label_is_shown_as_text() {
    let h = harness();
    let evil = r#"<script>alert(1)</script><img src=x onerror="x()">"#;
    h.fake
        .alerts
        .lock()
        .unwrap()
        .push(alert("3fa2c19b04de", evil));
    let (cookie, _) = login(&h.app).await;
    let page = get(&h.app, "/", &cookie).await;
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(!page.body.contains("<img"));
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"));
}

#[tokio::test]
async fn language_follows_the_browser_then_the_switch() {
    let h = harness();
    let zh = send(
        &h.app,
        Request::get("/login")
            .header(header::ACCEPT_LANGUAGE, "zh-CN,zh;q=0.9")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(zh.body.contains(r#"<html lang="zh-CN">"#));
    assert!(zh.body.contains("工作人员登录"));
    let en = get(&h.app, "/login", "").await;
    assert!(en.body.contains("Staff login"));
    let sw = get(&h.app, "/lang/zh-CN", "").await;
    assert_eq!(sw.status, StatusCode::SEE_OTHER);
    let lang = sw.cookie("vigil_lang").unwrap();
    assert_eq!(lang, "zh-CN");
    let (session, _) = login(&h.app).await;
    let page = get(&h.app, "/", &format!("{session}; vigil_lang={lang}")).await;
    assert!(page.body.contains("发热警报"), "{}", page.body);
    assert_eq!(
        get(&h.app, "/lang/fr", "").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_stored_alert_appears_on_the_live_stream() {
    let h = harness();
    let (cookie, _) = login(&h.app).await;
    let r = h
        .app
        .clone()
        .oneshot(
            Request::get("/events")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = r.into_body();
    let watcher = tokio::spawn(h.web.clone().watch_inbox());
    let mut seen = String::new();
    // The first event is the inbox as it is: empty.
    while !seen.contains("event: inbox") {
        let f = body.frame().await.unwrap().unwrap();
        if let Ok(d) = f.into_data() {
            seen.push_str(std::str::from_utf8(&d).unwrap());
        }
    }
    assert!(seen.contains("inbox-empty"), "{seen}");
    h.fake
        .alerts
        .lock()
        .unwrap()
        .push(alert("0123456789ab", "Bo, room 4"));
    // A hang guard only: the watcher polls every 10 ms.
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let f = body.frame().await.unwrap().unwrap();
            if let Ok(d) = f.into_data() {
                seen.push_str(std::str::from_utf8(&d).unwrap());
                if seen.contains("alert-0123456789ab") {
                    return;
                }
            }
        }
    })
    .await;
    watcher.abort();
    assert!(found.is_ok(), "no event for the new alert: {seen}");
    assert!(seen.contains("Bo, room 4"));
}

// ------------------------------------------------------------ residents, sheets, node

/// Reads the sheet's inline SVG QR code back as pixels and decodes it as a
/// phone's scanner would.
fn scan_svg(page: &str) -> String {
    let start = page.find("<svg").expect("an inline SVG");
    let svg = &page[start..start + page[start..].find("</svg>").unwrap()];
    let vb = &svg[svg.find("viewBox=\"").unwrap() + 9..];
    let nums: Vec<usize> = vb[..vb.find('"').unwrap()]
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    let (w, h) = (nums[2], nums[3]);
    let d = &svg[svg.find(" d=\"").unwrap() + 4..];
    let d = &d[..d.find('"').unwrap()];
    let mut dark = vec![vec![false; w]; h];
    // The renderer draws each dark run as `M{x} {y}h{w}v{h}H{x}V{y}`.
    for seg in d.split('M').filter(|s| !s.is_empty()) {
        let n: Vec<usize> = seg
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        let (x, y, rw, rh) = (n[0], n[1], n[2], n[3]);
        for row in dark.iter_mut().skip(y).take(rh) {
            for px in row.iter_mut().skip(x).take(rw) {
                *px = true;
            }
        }
    }
    let scale = 4;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w * scale, h * scale, |x, y| {
        if dark[y / scale][x / scale] { 0 } else { 255 }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().unwrap().1
}

async fn issue(h: &Harness, cookie: &str, form: &[(&str, &str)]) -> Resp {
    post(&h.app, "/residents", cookie, form).await
}

#[tokio::test]
async fn residents_sheets_and_the_node_page_need_a_session() {
    let h = harness();
    let t = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4";
    h.fake
        .residents
        .lock()
        .unwrap()
        .push(resident(t, "Ana", "enrolled", Some(now_ms())));
    for path in ["/residents", "/node", &format!("/residents/{t}/sheet")] {
        let r = get(&h.app, path, "").await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.location(), "/login");
        assert!(!r.body.contains("Ana"));
    }
    let forged = "vigil_session=".to_owned() + &"ab".repeat(32);
    let r = post(
        &h.app,
        "/residents",
        &forged,
        &[("csrf", "x"), ("label", "Eve")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = post(
        &h.app,
        &format!("/residents/{t}/revoke"),
        &forged,
        &[("csrf", "x")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(h.fake.issued.lock().unwrap().is_empty());
    assert_eq!(h.fake.residents.lock().unwrap()[0].status, "enrolled");
}

#[tokio::test]
async fn issuing_a_ticket_needs_the_csrf_token_is_audited_and_opens_its_sheet() {
    let h = harness();
    let (cookie, csrf) = login(&h.app).await;
    let page = get(&h.app, "/residents", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(r#"<form id="issue-ticket""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"name="label""#));
    // Without the token (a cross-site form): refused, nothing issued.
    for bad in ["", &"00".repeat(32)] {
        let r = issue(&h, &cookie, &[("csrf", bad), ("label", "Ana")]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    assert!(h.fake.issued.lock().unwrap().is_empty());

    let r = issue(
        &h,
        &cookie,
        &[
            ("csrf", &csrf),
            ("label", "Ana Costa, flat 12B"),
            ("days", "7"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        h.fake.issued.lock().unwrap()[0],
        ("Ana Costa, flat 12B".to_owned(), 7 * DAY)
    );
    let sheet_at = r.location().to_owned();
    let id = format!("{:032x}", 0xa1b2c3d4e5f6_u64 + 1);
    assert_eq!(sheet_at, format!("/residents/{id}/sheet"));
    // Audited with the name; the secret is nowhere in the log.
    let log = h.store.audit_log().unwrap();
    let issued: Vec<_> = log.iter().filter(|r| r.action == "ticket.issue").collect();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].staff, "Mei");
    assert!(id.starts_with(&issued[0].subject[..12]), "{:?}", issued[0]);
    for r in &log {
        assert!(
            !format!("{r:?}").contains(&SECRET[..16]),
            "the ticket's secret in the audit log: {r:?}"
        );
    }

    // The sheet: the ticket as text and as a QR code that scans to it.
    let sheet = get(&h.app, &sheet_at, &cookie).await;
    assert_eq!(sheet.status, StatusCode::OK);
    let ticket = format!(
        "vigil-ticket1/127.0.0.1:4433/{}/{}/{}/{id}/{SECRET}",
        "11".repeat(32),
        "22".repeat(32),
        "33".repeat(32)
    );
    assert!(sheet.body.contains(&ticket), "{}", sheet.body);
    assert!(sheet.body.contains(r#"id="sheet-qr""#));
    assert_eq!(scan_svg(&sheet.body), ticket);
    assert!(sheet.body.contains("vigil enrol"));
    assert!(sheet.body.contains("Ana Costa, flat 12B"));
    assert_eq!(sheet.headers[header::CACHE_CONTROL], "no-store");

    // Logged out, or another staff member: no secret.
    let r = get(&h.app, &sheet_at, "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!r.body.contains(SECRET));
    let (li, _) = login_as(&h.app, "Li").await;
    let r = get(&h.app, &sheet_at, &li).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains(SECRET), "{}", r.body);
    assert!(!r.body.contains("<svg"));
    assert!(r.body.contains(r#"id="sheet-no-code""#));

    // The residents page lists it with a link to its sheet.
    let page = get(&h.app, "/residents", &cookie).await;
    assert!(page.body.contains(r#"id="residents""#));
    assert!(
        page.body
            .contains(&format!(r#"class="sheet-link" href="{sheet_at}""#)),
        "{}",
        page.body
    );
    assert!(page.body.contains("Unused"), "{}", page.body);
    assert!(!page.body.contains(SECRET));
}

#[tokio::test]
async fn the_period_defaults_to_two_weeks_and_bad_input_issues_nothing() {
    let h = harness();
    let (cookie, csrf) = login(&h.app).await;
    for (label, days) in [
        ("Ana", "0"),
        ("Ana", "400"),
        ("Ana", "soon"),
        ("", "7"),
        ("\u{7}", "7"),
    ] {
        let r = issue(
            &h,
            &cookie,
            &[("csrf", &csrf), ("label", label), ("days", days)],
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{label:?} {days}");
        assert!(r.body.contains(r#"id="issue-error""#), "{}", r.body);
    }
    assert!(h.fake.issued.lock().unwrap().is_empty());
    let r = issue(&h, &cookie, &[("csrf", &csrf), ("label", "Bo")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        h.fake.issued.lock().unwrap()[0],
        ("Bo".to_owned(), 14 * DAY)
    );
}

#[tokio::test]
async fn revoking_needs_the_csrf_token_and_is_audited_once() {
    let h = harness();
    let t = "0123456789abcdef0123456789abcdef";
    h.fake
        .residents
        .lock()
        .unwrap()
        .push(resident(t, "Ana", "enrolled", Some(now_ms())));
    let (cookie, csrf) = login(&h.app).await;
    let page = get(&h.app, "/residents", &cookie).await;
    assert!(page.body.contains(r#"class="revoke""#), "{}", page.body);
    let at = format!("/residents/{t}/revoke");
    let r = post(&h.app, &at, &cookie, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(h.fake.residents.lock().unwrap()[0].status, "enrolled");
    let r = post(&h.app, &at, &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/residents");
    assert_eq!(h.fake.residents.lock().unwrap()[0].status, "revoked");
    post(&h.app, &at, &cookie, &[("csrf", &csrf)]).await;
    let log = h.store.audit_log().unwrap();
    let revokes: Vec<_> = log.iter().filter(|r| r.action == "ticket.revoke").collect();
    assert_eq!(revokes.len(), 1, "{log:?}");
    assert_eq!(
        (revokes[0].staff.as_str(), revokes[0].subject.as_str()),
        ("Mei", &t[..12])
    );
    let page = get(&h.app, "/residents", &cookie).await;
    assert!(page.body.contains("Revoked"), "{}", page.body);
    // Not a ticket id: nothing asked of the node.
    let r = post(
        &h.app,
        "/residents/..%2F..%2Fx/revoke",
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_hostile_long_label_is_escaped_and_cut_in_the_table() {
    let h = harness();
    let evil = format!(
        r#"<script>alert(1)</script>"><img src=x onerror="x()">{}"#,
        "y".repeat(200)
    );
    h.fake.residents.lock().unwrap().push(resident(
        "0123456789abcdef0123456789abcdef",
        &evil,
        "enrolled",
        Some(now_ms()),
    ));
    let (cookie, _) = login(&h.app).await;
    let page = get(&h.app, "/residents", &cookie).await;
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(!page.body.contains("<img"));
    // The whole label in the title, escaped; the cell cut.
    let escaped = evil
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    assert!(
        page.body.contains(&format!(r#"title="{escaped}""#)),
        "{}",
        page.body
    );
    assert!(page.body.contains('…'));
    assert!(!page.body.contains(&format!(">{escaped}<")));
}

#[tokio::test]
async fn no_contact_for_24_hours_is_marked_at_the_boundary() {
    use vigil_web::pages::{NO_CONTACT_MS, silent};
    assert_eq!(NO_CONTACT_MS, DAY);
    let now = 1_780_000_000_000;
    let r = |status: &str, last: i64| {
        resident(
            "0123456789abcdef0123456789abcdef",
            "Ana",
            status,
            Some(now - last),
        )
    };
    assert!(!silent(&r("enrolled", DAY), now));
    assert!(silent(&r("enrolled", DAY + 1), now));
    assert!(!silent(&r("revoked", 3 * DAY), now));
    assert!(!silent(&r("unused", 3 * DAY), now));

    let h = harness();
    let now = now_ms();
    h.fake.residents.lock().unwrap().extend([
        resident(
            "aaaaaaaaaaaa0000000000000000aaaa",
            "Quiet",
            "enrolled",
            Some(now - DAY - 60_000),
        ),
        resident(
            "bbbbbbbbbbbb0000000000000000bbbb",
            "Heard",
            "enrolled",
            Some(now - DAY + 60_000),
        ),
    ]);
    let (cookie, _) = login(&h.app).await;
    let page = get(&h.app, "/residents", &cookie).await;
    let row = |id: &str| {
        let at = page.body.find(&format!(r#"id="resident-{id}""#)).unwrap();
        let end = at + page.body[at..].find("</tr>").unwrap();
        page.body[at..end].to_owned()
    };
    assert!(
        row("aaaaaaaaaaaa").contains(r#"class="no-contact""#),
        "{}",
        page.body
    );
    assert!(!row("bbbbbbbbbbbb").contains("no-contact"));
}

#[tokio::test]
async fn the_node_page_shows_code_fingerprint_storage_sweep_and_receipts() {
    let h = harness();
    *h.fake.node.lock().unwrap() = NodeInfo {
        code: Some("vigil1/192.0.2.1:4433/aa/bb/cc".into()),
        fingerprint: "f1".repeat(32),
        listen: "0.0.0.0:4433".into(),
        version: "0.1.0".into(),
        started_ms: 1_780_000_000_000,
        mailboxes: Quota {
            used: 12,
            max: 20_000,
        },
        blob_bytes: Quota {
            used: 3 * 1_048_576,
            max: 32 * 1_073_741_824,
        },
        unused_tickets: Quota {
            used: 4,
            max: 10_000,
        },
        pairing_slots: Quota {
            used: 0,
            max: 1_000,
        },
        grant_keys: Quota {
            used: 9,
            max: 21_000,
        },
        max_bytes_per_vault: 64 * 1_048_576,
        store_bytes: 5 * 1_048_576,
        last_sweep: Some(LastSweep {
            at_ms: 1_780_000_060_000,
            mailboxes: 2,
            blobs: 31,
            bytes: 4096,
            grants: 2,
            alerts: 1,
            tickets: 1,
        }),
        receipts: 7,
    };
    let (cookie, _) = login(&h.app).await;
    let page = get(&h.app, "/node", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    let b = &page.body;
    assert!(b.contains(r#"<section id="node""#), "{b}");
    assert!(b.contains("vigil1/192.0.2.1:4433/aa/bb/cc"));
    assert!(b.contains(&"f1".repeat(32)));
    assert!(b.contains(r#"id="node-storage""#));
    assert!(b.contains("12 / 20000"), "{b}");
    assert!(b.contains("3.0 MiB / 32.0 GiB"), "{b}");
    assert!(b.contains(r#"id="node-last-sweep""#));
    assert!(b.contains("2026-05-28 20:27 UTC"), "{b}");
    assert!(b.contains(r#"id="node-receipts""#));
    assert!(b.contains(">7<"), "{b}");
    // No code: said so.
    h.fake.node.lock().unwrap().code = None;
    let page = get(&h.app, "/node", &cookie).await;
    assert!(page.body.contains(r#"id="node-no-code""#), "{}", page.body);
}

#[tokio::test]
async fn every_page_links_to_inbox_residents_and_node() {
    let h = harness();
    let (cookie, _) = login(&h.app).await;
    for (path, current) in [
        ("/", "nav-inbox"),
        ("/residents", "nav-residents"),
        ("/node", "nav-node"),
    ] {
        let page = get(&h.app, path, &cookie).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for id in ["nav-inbox", "nav-residents", "nav-node"] {
            assert!(page.body.contains(&format!(r#"id="{id}""#)), "{path}: {id}");
        }
        assert!(
            page.body
                .contains(&format!(r#"id="{current}" aria-current="page""#)),
            "{path}: {}",
            page.body
        );
    }
    let zh = get(&h.app, "/residents", &format!("{cookie}; vigil_lang=zh-CN")).await;
    assert!(zh.body.contains("居民"), "{}", zh.body);
}

#[tokio::test]
async fn the_held_code_goes_at_logout_and_at_revoke_and_a_refusal_is_shown() {
    let h = harness();
    let (cookie, csrf) = login(&h.app).await;
    let r = issue(&h, &cookie, &[("csrf", &csrf), ("label", "Ana")]).await;
    let sheet_at = r.location().to_owned();
    assert!(get(&h.app, &sheet_at, &cookie).await.body.contains(SECRET));
    // Logged out and in again: the sheet, without the code.
    post(&h.app, "/logout", &cookie, &[("csrf", &csrf)]).await;
    let (cookie, csrf) = login(&h.app).await;
    let page = get(&h.app, &sheet_at, &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains(SECRET), "{}", page.body);
    // Revoked right after issuing: no code either.
    let r = issue(&h, &cookie, &[("csrf", &csrf), ("label", "Bo")]).await;
    let sheet_at = r.location().to_owned();
    let id = sheet_at.split('/').nth(2).unwrap().to_owned();
    post(
        &h.app,
        &format!("/residents/{id}/revoke"),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    let page = get(&h.app, &sheet_at, &cookie).await;
    assert!(!page.body.contains(SECRET), "{}", page.body);
    // The node refuses: said so on the page (its words escaped), nothing
    // audited.
    let r = issue(&h, &cookie, &[("csrf", &csrf), ("label", "Full")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains(r#"id="issue-error""#));
    assert!(
        r.body
            .contains("too many unused tickets (10000): &lt;revoke&gt; some"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(r#"value="Full""#),
        "the form keeps what was typed"
    );
    let issued = h
        .store
        .audit_log()
        .unwrap()
        .iter()
        .filter(|r| r.action == "ticket.issue")
        .count();
    assert_eq!(issued, 2);
    // An unknown ticket has no sheet.
    let r = get(
        &h.app,
        &format!("/residents/{}/sheet", "0".repeat(32)),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

// ------------------------------------------------------------ residents at community scale

/// `n` residents heard from an hour ago, labelled "Resident 000" …, each
/// with a distinct short id.
fn many_residents(n: usize) -> Vec<Resident> {
    let now = now_ms();
    (0..n)
        .map(|i| {
            resident(
                &format!("{:012x}{}", 0x10_0000 + i, "0".repeat(20)),
                &format!("Resident {i:03}"),
                "enrolled",
                Some(now - HOUR),
            )
        })
        .collect()
}

/// The short ids of a page's resident rows, in order.
fn row_ids(page: &str) -> Vec<String> {
    page.match_indices(r#"<tr id="resident-"#)
        .map(|(at, m)| page[at + m.len()..at + m.len() + 12].to_owned())
        .collect()
}

#[tokio::test]
async fn the_residents_page_shows_one_page_at_a_time_and_links_the_others() {
    let h = harness();
    h.fake.residents.lock().unwrap().extend(many_residents(250));
    let (cookie, _) = login(&h.app).await;

    let first = get(&h.app, "/residents", &cookie).await;
    assert_eq!(first.status, StatusCode::OK);
    let ids1 = row_ids(&first.body);
    assert_eq!(ids1.len(), 100, "{}", first.body);
    assert!(first.body.contains("1–100 of 250"), "{}", first.body);
    assert!(
        first.body.contains(r#"href="/residents?page=2""#),
        "{}",
        first.body
    );
    assert!(!first.body.contains(r#"id="page-prev""#));
    // `?page=1` is the same page.
    let again = get(&h.app, "/residents?page=1", &cookie).await;
    assert_eq!(row_ids(&again.body), ids1);

    let second = get(&h.app, "/residents?page=2", &cookie).await;
    assert!(second.body.contains("101–200 of 250"), "{}", second.body);
    assert!(second.body.contains(r#"href="/residents?page=1""#));
    assert!(second.body.contains(r#"href="/residents?page=3""#));
    let last = get(&h.app, "/residents?page=3", &cookie).await;
    let ids3 = row_ids(&last.body);
    assert_eq!(ids3.len(), 50);
    assert!(last.body.contains("201–250 of 250"), "{}", last.body);
    assert!(!last.body.contains(r#"id="page-next""#));

    // Every resident on exactly one page, in label order.
    let mut all = ids1;
    all.extend(row_ids(&second.body));
    all.extend(ids3);
    let want: Vec<String> = h
        .fake
        .residents
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(all, want);

    // The same in Chinese: the range comes from the catalogue.
    let zh = get(
        &h.app,
        "/residents?page=2",
        &format!("{cookie}; vigil_lang=zh-CN"),
    )
    .await;
    assert!(!zh.body.contains("101–200 of 250"));
    assert!(zh.body.contains("101–200"), "{}", zh.body);
}

#[tokio::test]
async fn a_silent_resident_comes_first_on_page_one() {
    let h = harness();
    let now = now_ms();
    let mut list = many_residents(250);
    // Last in label order and in the store: only being silent brings her up.
    list.push(resident(
        &format!("ffffffffffff{}", "0".repeat(20)),
        "Zoe Quiet",
        "enrolled",
        Some(now - 3 * DAY),
    ));
    h.fake.residents.lock().unwrap().extend(list);
    let (cookie, _) = login(&h.app).await;
    let page = get(&h.app, "/residents", &cookie).await;
    let ids = row_ids(&page.body);
    assert_eq!(ids.len(), 100);
    assert_eq!(ids[0], "ffffffffffff", "{}", page.body);
    assert_eq!(ids[1], format!("{:012x}", 0x10_0000));
}

#[tokio::test]
async fn search_finds_by_label_or_id_prefix_and_shows_the_query_as_text() {
    let h = harness();
    // "Resident 100"–"Resident 199" and "Resident 1000"–"Resident 1199"
    // contain "resident 1": 300 of them.
    let mut list = many_residents(1200);
    list.push(resident(
        "abcdef0123450000000000000000abcd",
        "Ana Costa, flat 12B",
        "enrolled",
        Some(now_ms()),
    ));
    h.fake.residents.lock().unwrap().extend(list);
    let (cookie, _) = login(&h.app).await;

    let page = get(&h.app, "/residents", &cookie).await;
    assert!(
        page.body.contains(r#"<form id="residents-search""#),
        "{}",
        page.body
    );

    // By label, any case.
    let r = get(&h.app, "/residents?q=aNA+cOSTA", &cookie).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(row_ids(&r.body), ["abcdef012345"], "{}", r.body);
    // By id prefix.
    let r = get(&h.app, "/residents?q=abcdef01", &cookie).await;
    assert_eq!(row_ids(&r.body), ["abcdef012345"]);
    // Many matches: paged, the query kept in the links.
    let r = get(&h.app, "/residents?q=resident+1", &cookie).await;
    assert_eq!(row_ids(&r.body).len(), 100);
    assert!(r.body.contains("1–100 of 300"), "{}", r.body);
    assert!(r.body.contains("1,201 in all"), "{}", r.body);
    assert!(
        r.body
            .contains(r#"href="/residents?page=2&amp;q=resident%201""#),
        "{}",
        r.body
    );
    // Nothing found: said so.
    let r = get(&h.app, "/residents?q=nobody", &cookie).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(row_ids(&r.body).is_empty());
    assert!(
        r.body.contains(r#"id="residents-none-found""#),
        "{}",
        r.body
    );

    // A hostile query is shown back as text only.
    let evil = r#""><script>alert(1)</script>"#;
    let r = get(
        &h.app,
        &format!(
            "/residents?q={}",
            form_encode(&[("", evil)])[1..].to_owned()
        ),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("<script>alert"), "{}", r.body);
    assert!(r.body.contains("&quot;&gt;&lt;script&gt;"), "{}", r.body);
}

#[tokio::test]
async fn hostile_page_and_search_parameters_get_a_clear_page() {
    let h = harness();
    h.fake.residents.lock().unwrap().extend(many_residents(250));
    let (cookie, _) = login(&h.app).await;
    // Not a page number: refused with a message, never a server error.
    for bad in [
        "-1",
        "0",
        "abc",
        "1.5",
        "99999999999999999999999",
        "%00",
        "2%0A3",
    ] {
        let r = get(&h.app, &format!("/residents?page={bad}"), &cookie).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "page={bad}");
        assert!(
            r.body.contains(r#"id="residents-error""#),
            "page={bad}: {}",
            r.body
        );
        assert!(r.body.contains(r#"href="/residents""#));
    }
    // Past the end: the last page.
    let r = get(&h.app, "/residents?page=9999", &cookie).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(row_ids(&r.body).len(), 50);
    assert!(r.body.contains("201–250 of 250"), "{}", r.body);
    // Past the end of a search with no match: no rows, no panic.
    let r = get(&h.app, "/residents?page=5&q=nobody", &cookie).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(row_ids(&r.body).is_empty());
    // A 10 KB query, or one with control characters: refused with a
    // message, not echoed.
    let long = "a".repeat(10 * 1024);
    let r = get(&h.app, &format!("/residents?q={long}"), &cookie).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains(r#"id="residents-error""#), "{}", r.body);
    assert!(!r.body.contains(&long[..200]));
    for ctl in ["%07", "a%0Db", "%1B%5B31m", "%C2%85"] {
        let r = get(&h.app, &format!("/residents?q={ctl}"), &cookie).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "q={ctl}");
        assert!(r.body.contains(r#"id="residents-error""#));
    }
    // Not UTF-8, or a malformed query string: the same clear refusal.
    for raw in ["q=%FF%FE", "page=%", "q=%zz"] {
        let r = get(&h.app, &format!("/residents?{raw}"), &cookie).await;
        assert!(
            r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::OK,
            "{raw}: {}",
            r.status
        );
        assert!(!r.body.is_empty());
    }
}
