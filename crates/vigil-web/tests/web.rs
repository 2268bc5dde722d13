//! The dashboard as staff (and attackers) use it, through the router.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use vigil_node::MailboxStore;
use vigil_web::staff::Staff;
use vigil_web::{Alert, Backend, Web, WebConfig};

const PASSWORD: &str = "correct horse battery";

#[derive(Default)]
struct Fake {
    alerts: Mutex<Vec<Alert>>,
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
        .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
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
    let r = try_login(app, "Mei", PASSWORD).await;
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
