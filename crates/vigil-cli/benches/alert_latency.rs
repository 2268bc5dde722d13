//! Fever-alert latency to the people who act on it (issue 17, "Measured").
//!
//! `cargo bench -p vigil-cli --bench alert_latency` runs the real stack on
//! loopback: `vigil-node serve` as a process (the relay over QUIC, the
//! staff dashboard on TCP, a webhook), a logged-in dashboard page's event
//! stream (SSE) read over TCP, a tiny HTTP receiver for the webhook, and a
//! resident's device (a durable vault on sled, in this process) that syncs
//! its alerts right after each `record`, as an app does on "alert queued".
//! Over N fevers it times, from the `record` of the reading that confirms
//! the fever:
//!
//! 1. the alert stored (the device's `send_alerts` returned);
//! 2. the event on the open page's stream (target p50 ≤ 50 ms);
//! 3. the webhook's POST received (target p50 ≤ 50 ms);
//!
//! with p50, p90 and max, beside a same-run reference (a one-byte loopback
//! TCP round trip), the CPU model, and the user CPU time of this process and
//! of the node. Without `--bench` (under `cargo test --benches`) it runs two
//! fevers, as a smoke test.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use support::*;
use vigil_device::{Period, Vault};
use vigil_log::{FeverRule, Metric, Unit};
use vigil_net::TicketCode;
use vigil_testkit::{DAY, MIN, connect, now_ms, sled_vault};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let fevers = if full { 30 } else { 2 };
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let data = tmp.path().join("node");
    staff_add(&data, "bench");
    let (hook_addr, hooks) = webhook_receiver();
    let hook = format!("http://{hook_addr}/hook");
    let node = Serve::start(&data, &["--webhook", &hook], &tmp.path().join("serve.log"));
    let session = log_in(&node.http, "bench");
    let events = open_page(&node.http, &session);
    // The page's first event is the inbox as it is: empty.
    let first = recv(&events, "the first inbox event");
    assert_eq!(first.unacked, 0);

    // A resident registered by staff; the phone enrols.
    let start = now_ms() - now_ms().rem_euclid(DAY) - DAY;
    let out = vigil_node()
        .args(["residents", "add", "--label", "Ana, flat 12B", "--json"])
        .args(["--period-end", &rfc3339(start + 14 * DAY), "--data"])
        .arg(&data)
        .output()
        .expect("residents add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ticket: TicketCode = j["ticket"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a ticket");
    let node_public = ticket.node.node_public;
    let (mut phone, _keys) = sled_vault(tmp.path(), "phone", Period::days(start, 14), 3);
    let mut conn = connect(&ticket.node);
    phone
        .enrol(
            &mut conn,
            &node_public,
            &ticket.ticket,
            FeverRule::default(),
            now_ms(),
        )
        .expect("enrol");

    let (mut stored, mut page, mut webhook) = (Vec::new(), Vec::new(), Vec::new());
    let mut alerts = 0;
    let mut t = start;
    let (cpu0, node_cpu0, wall0) = (user_s(None), user_s(Some(node.pid())), Instant::now());
    for _ in 0..fevers {
        // Normal readings end the previous fever: its end alert, untimed,
        // reaches the page and the webhook before the next one starts.
        normal_readings(&mut phone, &mut t);
        let r = phone
            .send_alerts(&mut conn, &node_public, t)
            .expect("send alerts");
        if r.delivered > 0 {
            alerts += r.delivered;
            wait_page(&events, alerts);
            wait_hooks(&hooks, r.delivered);
        }
        phone
            .record(Metric::BodyTemperature, 38.2, Unit::Celsius, t)
            .expect("record");
        t += 5 * MIN;
        // Timed: the reading that confirms the fever, and the sync after it.
        let t0 = Instant::now();
        phone
            .record(Metric::BodyTemperature, 38.4, Unit::Celsius, t)
            .expect("record");
        let r = phone
            .send_alerts(&mut conn, &node_public, t)
            .expect("send alerts");
        stored.push(t0.elapsed());
        assert_eq!(r.delivered, 1, "the fever's start alert");
        alerts += 1;
        page.push(wait_page(&events, alerts) - t0);
        let posts = wait_hooks(&hooks, 1);
        assert!(posts[0].1.contains("fever started"), "{}", posts[0].1);
        webhook.push(posts[0].0 - t0);
        t += 10 * MIN;
    }
    let wall = wall0.elapsed().as_secs_f64();
    let (cpu, node_cpu) = (user_s(None) - cpu0, user_s(Some(node.pid())) - node_cpu0);
    conn.close();
    node.stop();
    let rtt = tcp_round_trips(if full { 1000 } else { 10 });

    let row = |what: &str, d: &[Duration], target: &str| {
        let (p50, p90, max) = p50_p90_max(d);
        println!("| {what} | {p50:.3} | {p90:.3} | {max:.3} | {target} |");
    };
    println!("## Fever alert to staff, loopback ({fevers} fevers)\n");
    println!("Machine: {}.\n", machine());
    println!(
        "| from the `record` that confirms the fever to … | p50 ms | p90 ms | max ms | target |"
    );
    println!("|---|---:|---:|---:|---:|");
    row("the alert stored (the device's sync returned)", &stored, "");
    row(
        "the event on the open dashboard page (SSE)",
        &page,
        "p50 ≤ 50 ms",
    );
    row("the webhook's POST received", &webhook, "p50 ≤ 50 ms");
    row("reference: a 1-byte loopback TCP round trip", &rtt, "");
    println!(
        "\nUser CPU over the {fevers} fevers ({wall:.1} s wall, readings and syncs included): \
         this process (device, page, receiver) {cpu:.2} s, the node {node_cpu:.2} s."
    );
    let (p50, _, _) = p50_p90_max(&page);
    let (h50, _, _) = p50_p90_max(&webhook);
    let (r50, _, _) = p50_p90_max(&rtt);
    println!("figure: alert_to_page_p50_ms {p50:.3}");
    println!("figure: alert_to_webhook_p50_ms {h50:.3}");
    println!("figure: loopback_tcp_rtt_p50_ms {r50:.4}");
}

/// Eight normal readings ten minutes apart from `t`, which it advances.
fn normal_readings(phone: &mut Vault, t: &mut i64) {
    for _ in 0..8 {
        phone
            .record(Metric::BodyTemperature, 36.6, Unit::Celsius, *t)
            .expect("record");
        *t += 10 * MIN;
    }
}

/// One inbox event on the page's stream: when it arrived, and its id (the
/// count of unacknowledged alerts).
struct PageEvent {
    at: Instant,
    unacked: usize,
}

/// Opens the dashboard page's event stream (`GET /events` with the
/// session) and reads it on a thread, as the page's script does.
fn open_page(addr: &str, session: &str) -> Receiver<PageEvent> {
    let mut s = TcpStream::connect(addr).expect("connect to the dashboard");
    write!(
        s,
        "GET /events HTTP/1.1\r\nHost: x\r\nCookie: {session}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("request the stream");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(s);
        let mut line = String::new();
        let mut id = None;
        // Lines of the (chunked) stream; chunk sizes are lines of their own.
        // An event ends with an empty line.
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            if let Some(v) = line.strip_prefix("id: ") {
                id = v.trim().parse().ok();
            } else if line == "\n"
                && let Some(unacked) = id.take()
            {
                let ev = PageEvent {
                    at: Instant::now(),
                    unacked,
                };
                if tx.send(ev).is_err() {
                    break;
                }
            }
            line.clear();
        }
    });
    rx
}

fn recv<T>(rx: &Receiver<T>, what: &str) -> T {
    rx.recv_timeout(PATIENCE)
        .unwrap_or_else(|e| panic!("no {what} within {PATIENCE:?}: {e}"))
}

/// Waits for the page's event that shows `alerts` alerts; when it came.
fn wait_page(rx: &Receiver<PageEvent>, alerts: usize) -> Instant {
    loop {
        let ev = recv(rx, "inbox event");
        if ev.unacked >= alerts {
            return ev.at;
        }
    }
}

/// Waits for `n` webhook POSTs: when each came, and its body.
fn wait_hooks(rx: &Receiver<(Instant, String)>, n: usize) -> Vec<(Instant, String)> {
    (0..n).map(|_| recv(rx, "webhook POST")).collect()
}

/// A tiny HTTP/1.1 receiver for the webhook: answers every POST 200 on a
/// kept-alive connection and reports when each arrived whole.
fn webhook_receiver() -> (std::net::SocketAddr, Receiver<(Instant, String)>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let addr = l.local_addr().expect("its address");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || serve_posts(s, &tx));
        }
    });
    (addr, rx)
}

fn serve_posts(s: TcpStream, tx: &mpsc::Sender<(Instant, String)>) {
    let mut w = match s.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(s);
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if !r.read_line(&mut line).is_ok_and(|n| n > 0) {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let at = Instant::now();
        let _ = tx.send((at, String::from_utf8_lossy(&body).into_owned()));
        if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}
