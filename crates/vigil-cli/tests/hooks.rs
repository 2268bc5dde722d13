//! Webhooks and metrics of the real `vigil-node serve`: a device's fever
//! alerts are POSTed to a test receiver (a tiny HTTP server here), signed,
//! with a stable idempotency key, retried after a 500, and delivered once
//! across a node restart while the receiver was down; `--metrics` serves
//! the counters. A new alert reaches an open dashboard page and the webhook
//! when it is stored, not at the next poll.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::*;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigil_device::Period;
use vigil_log::{FeverRule, Metric, Unit};
use vigil_net::TicketCode;
use vigil_testkit::{connect, mem_vault};

fn vigil_node(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_vigil-node"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = vigil_node(args);
    assert!(
        out.status.success(),
        "vigil-node {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Staff register a resident; the phone enrols and reports a fever that
/// starts and ends: two alerts.
fn resident_with_a_fever(d: &str, label: &str) {
    let start = period_start();
    let j: Value = serde_json::from_str(&ok(&[
        "residents",
        "add",
        "--label",
        label,
        "--period-end",
        &rfc3339(start + 7 * DAY),
        "--data",
        d,
        "--json",
    ]))
    .unwrap();
    let ticket: TicketCode = j["ticket"].as_str().unwrap().parse().unwrap();
    let (mut phone, _) = mem_vault(Period::days(start, 7), 7);
    let mut conn = connect(&ticket.node);
    phone
        .enrol(
            &mut conn,
            &ticket.node.node_public,
            &ticket.ticket,
            FeverRule::default(),
            now_ms(),
        )
        .unwrap();
    let day = start + DAY;
    for m in (8 * 60..18 * 60).step_by(10) {
        let fever = (10 * HOUR..13 * HOUR).contains(&(m * MIN));
        let temp = if fever { 38.4 } else { 36.6 };
        phone
            .record(Metric::BodyTemperature, temp, Unit::Celsius, day + m * MIN)
            .unwrap();
    }
    let r = phone
        .send_alerts(&mut conn, &ticket.node.node_public, now_ms())
        .unwrap();
    assert_eq!(r.delivered, 2);
    conn.close();
}

/// One request the receiver got, and the status it answered.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    status: u16,
}

/// A tiny HTTP/1.1 server: answers each POST with the next scripted
/// status (then 200), and records it.
struct Receiver {
    addr: std::net::SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(addr: &str, script: &[u16]) -> Receiver {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind(addr)).unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let h = hits.clone();
        rt.spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(serve_one(s, h.clone(), script.clone()));
            }
        });
        Receiver {
            addr,
            hits,
            _rt: rt,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Waits (a bound, not a timing) until `n` requests arrived.
    fn wait_for(&self, n: usize) -> Vec<Hit> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let h = self.hits();
            if h.len() >= n {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "only {} requests: {h:#?}",
                h.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

async fn serve_one(
    mut s: tokio::net::TcpStream,
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut tmp = [0u8; 4096];
            match s.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let path = lines.next().unwrap().split(' ').nth(1).unwrap().to_owned();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .map_or(0, |v| v.parse().unwrap());
        while buf.len() < head_end + len {
            let mut tmp = [0u8; 4096];
            match s.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        let status = script.lock().unwrap().pop_front().unwrap_or(200);
        hits.lock().unwrap().push(Hit {
            path,
            headers,
            body,
            status,
        });
        let reply = format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\n\r\n");
        if s.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// HMAC-SHA256 by its definition (RFC 2104), independent of the node's.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> String {
    assert!(key.len() <= 64);
    let (mut ipad, mut opad) = ([0x36u8; 64], [0x5cu8; 64]);
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    let outer = Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize();
    hex::encode(outer)
}

/// A loopback port free now (for an address given before its server runs).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` on `addr`: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    let (head, body) = r.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The metrics as `series -> value`.
fn scrape(addr: &str) -> BTreeMap<String, f64> {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect()
}

/// The alerts' ids as `vigil-node alerts --json` shows them.
fn alert_ids(d: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(&ok(&["alerts", "--data", d, "--json"])).unwrap();
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_webhook_commands_have_help_with_an_example() {
    for cmd in [&["webhook", "--help"][..], &["webhook", "secret", "--help"]] {
        let help = ok(cmd);
        assert!(help.contains("Example") && help.contains("vigil-node webhook secret"));
    }
    let serve = ok(&["serve", "--help"]);
    assert!(serve.contains("--webhook <URL>") && serve.contains("--metrics <ADDR>"));
    assert!(serve.contains("[webhooks]"), "{serve}");
}

#[test]
fn alerts_reach_the_webhook_signed_once_each_and_metrics_count_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    // The first delivery fails with a 500: it is retried.
    let rx = Receiver::start("127.0.0.1:0", &[500]);
    let hook = format!("http://{}/hook?token=t0ps3cret", rx.addr);
    let metrics = format!("127.0.0.1:{}", free_port());
    let node = Node::start(
        &[
            "--data",
            d,
            "--listen",
            "127.0.0.1:0",
            "--webhook",
            &hook,
            "--metrics",
            &metrics,
        ],
        &tmp.path().join("serve.log"),
    );
    // The secret: created at first use, owner-only, printed on request.
    let secret = ok(&["webhook", "secret", "--data", d]).trim().to_owned();
    assert_eq!(secret.len(), 64);
    let file = data.join("webhook-secret");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let label = "Ana Costa, flat 12B";
    resident_with_a_fever(d, label);
    let hits = rx.wait_for(3);
    let ids = alert_ids(d);
    assert_eq!(ids.len(), 2);

    let mut delivered = BTreeMap::new();
    for h in &hits {
        assert_eq!(h.path, "/hook?token=t0ps3cret");
        assert_eq!(h.headers["content-type"], "application/json");
        let sig = &h.headers["x-vigil-signature"];
        assert_eq!(
            sig,
            &format!("sha256={}", hmac_sha256(secret.as_bytes(), &h.body))
        );
        let key = &h.headers["idempotency-key"];
        assert_eq!(&h.headers["x-vigil-delivery"], key);
        let body: Value = serde_json::from_slice(&h.body).unwrap();
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "event",
                "id",
                "kind",
                "label",
                "level",
                "onset_ms",
                "received_ms"
            ]
        );
        assert_eq!(body["label"], label);
        assert!(ids.contains(&body["id"].as_str().unwrap().to_owned()));
        if h.status == 200 {
            let before = delivered.insert(key.clone(), (body["id"].clone(), h.body.clone()));
            assert!(before.is_none(), "delivered twice: {hits:#?}");
        }
    }
    // The 500'd one came again with the same key and the same bytes.
    let failed = hits.iter().find(|h| h.status == 500).unwrap();
    let retried = &delivered[&failed.headers["idempotency-key"]];
    assert_eq!(retried.1, failed.body);
    let mut got: Vec<String> = delivered
        .values()
        .map(|(id, _)| id.as_str().unwrap().to_owned())
        .collect();
    got.sort();
    assert_eq!(got, ids, "each alert delivered");
    let kinds: Vec<Value> = hits
        .iter()
        .map(|h| serde_json::from_slice::<Value>(&h.body).unwrap()["kind"].clone())
        .collect();
    assert!(kinds.contains(&Value::from("fever started")));
    assert!(kinds.contains(&Value::from("fever ended")));

    // The metrics, scraped from the running node once it has settled the
    // last attempt (the receiver logs a request before it answers).
    let deadline = Instant::now() + PATIENCE;
    let m = loop {
        let m = scrape(&metrics);
        let delivered = "vigil_node_webhook_deliveries_total{result=\"delivered\"}";
        if m.get(delivered) == Some(&2.0) {
            assert_eq!(m["vigil_node_webhook_queue"], 0.0);
            break m;
        }
        assert!(Instant::now() < deadline, "{m:#?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let get_m = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k}: {m:#?}"));
    assert_eq!(get_m("vigil_node_alerts_stored_total"), 2.0);
    assert_eq!(get_m("vigil_node_alerts_unacknowledged"), 2.0);
    assert_eq!(
        get_m("vigil_node_webhook_deliveries_total{result=\"delivered\"}"),
        2.0
    );
    assert_eq!(
        get_m("vigil_node_webhook_deliveries_total{result=\"retry\"}"),
        1.0
    );
    assert!(get_m("vigil_node_requests_total{kind=\"alert\",result=\"ok\"}") >= 2.0);
    assert!(get_m("vigil_node_requests_total{kind=\"enrol\",result=\"ok\"}") >= 1.0);
    assert!(get_m("vigil_node_connections_total") >= 1.0);
    assert!(get_m("vigil_node_store_size_bytes") > 0.0);
    for k in m.keys() {
        assert!(!k.contains("Ana") && !k.contains("flat"), "{k}");
    }
    assert_eq!(get(&metrics, "/").0, 404);

    // The serve log names the webhook's host, never its path (a token).
    let status = node.terminate();
    assert!(status.success());
    let log = std::fs::read_to_string(tmp.path().join("serve.log")).unwrap();
    assert!(log.contains("alert delivered"), "{log}");
    assert!(!log.contains("t0ps3cret"), "{log}");

    // A secret file others can read is refused, not used.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = vigil_node(&["webhook", "secret", "--data", d]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
}

#[test]
fn an_alert_stored_while_the_receiver_is_down_is_delivered_once_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let rx_addr = format!("127.0.0.1:{}", free_port());
    let hook = format!("http://{rx_addr}/alerts");
    let args = |m: &str| {
        vec![
            "--data".to_owned(),
            d.to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--webhook".to_owned(),
            hook.clone(),
            "--metrics".to_owned(),
            m.to_owned(),
        ]
    };
    let m1 = format!("127.0.0.1:{}", free_port());
    let a1 = args(&m1);
    let node = Node::start(
        &a1.iter().map(String::as_str).collect::<Vec<_>>(),
        &tmp.path().join("serve1.log"),
    );
    resident_with_a_fever(d, "Ben, flat 3");
    // Stored, not delivered: the receiver is down.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let m = scrape(&m1);
        if m.get("vigil_node_webhook_deliveries_total{result=\"retry\"}") >= Some(&2.0) {
            assert_eq!(m["vigil_node_webhook_queue"], 2.0);
            break;
        }
        assert!(Instant::now() < deadline, "{m:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(node.terminate().success());

    // The receiver comes up, then the node again.
    let rx = Receiver::start(&rx_addr, &[]);
    let m2 = format!("127.0.0.1:{}", free_port());
    let a2 = args(&m2);
    let node = Node::start(
        &a2.iter().map(String::as_str).collect::<Vec<_>>(),
        &tmp.path().join("serve2.log"),
    );
    let hits = rx.wait_for(2);
    // Then the queue is empty: nothing more will come.
    let deadline = Instant::now() + PATIENCE;
    while scrape(&m2)["vigil_node_webhook_queue"] != 0.0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let hits_after = rx.hits();
    assert_eq!(hits_after.len(), 2, "{hits_after:#?}");
    let mut ids: Vec<String> = hits
        .iter()
        .map(|h| {
            let b: Value = serde_json::from_slice(&h.body).unwrap();
            b["id"].as_str().unwrap().to_owned()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, alert_ids(d));
    assert_ne!(
        hits[0].headers["idempotency-key"],
        hits[1].headers["idempotency-key"]
    );
    assert!(node.terminate().success());
}

/// `vigil-node staff add NAME` with the password on stdin.
fn staff_add(d: &str, name: &str, password: &str) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vigil-node"))
        .args(["staff", "add", name, "--password-stdin", "--data", d])
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(child.wait().unwrap().success());
}

/// One HTTP/1.1 request on a new connection: (status, head, body).
fn http(addr: &str, req: &str) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").unwrap();
    (
        head[9..12].parse().unwrap(),
        head.to_owned(),
        body.to_owned(),
    )
}

/// The `name=value` of the cookie `name` the response sets.
fn set_cookie(head: &str, name: &str) -> String {
    head.lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .find(|l| l.starts_with(&format!("{name}=")))
        .map(|l| l.split(';').next().unwrap().to_owned())
        .unwrap()
}

/// Logs `name` in on the dashboard at `addr`: the session cookie.
fn log_in(addr: &str, name: &str, password: &str) -> String {
    let (_, head, page) = http(
        addr,
        "GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let pre = set_cookie(&head, "vigil_login");
    let at = page.find(r#"name="csrf" value=""#).unwrap() + 19;
    let form = format!(
        "csrf={}&name={name}&password={}",
        &page[at..at + 64],
        password.replace(' ', "+")
    );
    let (status, head, _) = http(
        addr,
        &format!(
            "POST /login HTTP/1.1\r\nHost: x\r\nCookie: {pre}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(status, 303, "{head}");
    set_cookie(&head, "vigil_session")
}

/// Staff watch the dashboard, whose inbox poll is an hour apart: only the
/// relay's "alert stored" signal can bring a device's alerts to the open
/// page in time (and to the webhook, if `webhook`).
fn alerts_reach_the_page_at_once(webhook: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let password = "correct horse battery";
    staff_add(d, "Mei", password);
    let rx = Receiver::start("127.0.0.1:0", &[]);
    let hook = format!("http://{}/hook", rx.addr);
    let http_addr = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "--data",
        d,
        "--listen",
        "127.0.0.1:0",
        "--http",
        &http_addr,
        "--http-poll",
        "1h",
    ];
    if webhook {
        args.extend(["--webhook", &hook]);
    }
    let node = Node::start(&args, &tmp.path().join("serve.log"));
    let session = log_in(&http_addr, "Mei", password);

    // The page is open: its event stream, whose first event is the inbox now.
    let mut events = std::net::TcpStream::connect(&http_addr).unwrap();
    events.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        events,
        "GET /events HTTP/1.1\r\nHost: x\r\nCookie: {session}\r\n\r\n"
    )
    .unwrap();
    let mut events = std::io::BufReader::new(events);
    let mut next_inbox = || {
        // Keep-alive comments come every 15 s: a deadline, not a read
        // timeout, bounds the wait (the poll is an hour away).
        let deadline = Instant::now() + PATIENCE;
        let mut line = String::new();
        loop {
            assert!(
                Instant::now() < deadline,
                "no inbox event within {PATIENCE:?}"
            );
            line.clear();
            let n = std::io::BufRead::read_line(&mut events, &mut line).expect("the event stream");
            assert!(n > 0, "stream closed");
            if line.starts_with("data: <tr") {
                return line.clone();
            }
        }
    };
    assert!(next_inbox().contains("inbox-empty"));

    let label = "Ana Costa, flat 12B";
    resident_with_a_fever(d, label);
    // Both alerts (started, ended) reach the page.
    let mut rows = next_inbox();
    while rows.matches("id=\"alert-").count() < 2 {
        rows = next_inbox();
    }
    assert!(rows.contains(label), "{rows}");
    let ids = alert_ids(d);
    for id in &ids {
        assert!(rows.contains(&format!("id=\"alert-{id}")), "{rows}");
    }
    if webhook {
        let mut got: Vec<String> = rx
            .wait_for(2)
            .iter()
            .map(|h| {
                let b: Value = serde_json::from_slice(&h.body).unwrap();
                b["id"].as_str().unwrap().to_owned()
            })
            .collect();
        got.sort();
        assert_eq!(got, ids);
    } else {
        assert!(rx.hits().is_empty());
    }
    assert!(node.terminate().success());
}

#[test]
fn a_new_alert_reaches_an_open_page_without_waiting_for_its_poll() {
    alerts_reach_the_page_at_once(false);
}

#[test]
fn with_a_webhook_too_a_new_alert_reaches_both_without_waiting_for_a_poll() {
    alerts_reach_the_page_at_once(true);
}
