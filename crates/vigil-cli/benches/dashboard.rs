//! Dashboard render time at community scale (issue 17, "Measured").
//!
//! `cargo bench -p vigil-cli --bench dashboard` fills a node's data
//! directory with 10,000 residents (tickets staff issued) and starts
//! `vigil-node serve --http` on it as a process, logs a staff member in,
//! and times `GET /` (the inbox) with the session over loopback: first with
//! an empty inbox (the same-run reference), then, after 500 of the residents
//! enrolled and each reported a fever that started and ended, with 1,000
//! alerts (target ≤ 100 ms). Each page is timed from the request written to
//! the last byte read (server time plus a loopback connection, which the
//! reference carries too): p50 and max over the repetitions, with the CPU
//! model and the user CPU time the node spent serving them. Without
//! `--bench` (under `cargo test --benches`): 50 residents, 5 fevers.
//! A second reference, `GET /login`, is a page rendered without reading the
//! store: what the HTTP path and the templates cost alone.
//!
//! Another page is measured by adding its path to [`PAGES`].

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::*;
use vigil_crypto::rand_core::UnwrapErr;
use vigil_crypto::{KeySchedule, NodeId, RootKey, X25519PublicKey, wrap};
use vigil_node::{IssuedTicket, Node, NodeConfig, RelayConfig};
use vigil_proto::alert::{ALERT_END, ALERT_START, AlertPayload, grant_id, seal_alert};
use vigil_proto::{
    AlertWire, GrantWire, PROTOCOL_VERSION, Request, Response, decode_response, encode_request,
};
use vigil_testkit::{DAY, MIN, now_ms};

/// The pages timed: (path, what it shows, the row marker counted in it).
/// `/residents` is its first page: [`vigil_web::RESIDENTS_PER_PAGE`] rows
/// chosen, in order, out of every resident.
const PAGES: &[(&str, &str, &str)] = &[
    ("/", "inbox", "id=\"alert-"),
    ("/residents", "residents", "<tr id=\"resident-"),
];

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (residents, fevers, reps) = if full { (10_000, 500, 50) } else { (50, 5, 3) };
    let shown = residents.min(vigil_web::RESIDENTS_PER_PAGE);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let data = tmp.path().join("node");
    let start = now_ms() - now_ms().rem_euclid(DAY) - DAY;

    // Staff registered every resident; nobody has had a fever yet.
    let t = Instant::now();
    let tickets = issue_tickets(&data, residents, start);
    let fill_tickets = t.elapsed();
    staff_add(&data, "bench");
    let (empty, _) = time_pages(&data, reps, &[0, shown], &tmp.path().join("serve1.log"));

    // Then `fevers` of them enrolled and reported a fever, started and ended.
    let t = Instant::now();
    fevers_reported(&data, &tickets[..fevers], start);
    let fill_alerts = t.elapsed();
    let (full_inbox, login) = time_pages(
        &data,
        reps,
        &[2 * fevers, shown],
        &tmp.path().join("serve2.log"),
    );

    println!(
        "## Dashboard render, {residents} residents ({reps} requests per page, over loopback)\n"
    );
    println!("Machine: {}.\n", machine());
    println!(
        "| page | p50 ms | max ms | first request (cold) ms | node user CPU per request | target |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let row = |label: String, t: &Timed, target: &str| {
        let (p50, _, max) = p50_p90_max(&t.each);
        let cpu_ms = t.node_user_s * 1e3 / t.each.len() as f64;
        let cold = t
            .cold
            .map_or_else(String::new, |c| format!("{:.1}", c.as_secs_f64() * 1e3));
        println!("| {label} | {p50:.2} | {max:.2} | {cold} | {cpu_ms:.1} ms | {target} |");
    };
    row(
        "reference: `GET /login`, a page with no store read".into(),
        &login,
        "",
    );
    for ((path, what, _), (e, f)) in PAGES.iter().zip(empty.iter().zip(&full_inbox)) {
        row(
            format!("reference: `GET {path}`, {what} with no alerts"),
            e,
            "",
        );
        row(
            format!("`GET {path}`, {what} with {} alerts", 2 * fevers),
            f,
            "≤ 100 ms",
        );
    }
    println!(
        "\nSetting up (untimed): {residents} tickets in {:.1} s, {fevers} enrolments with 2 alerts each in {:.1} s.",
        fill_tickets.as_secs_f64(),
        fill_alerts.as_secs_f64()
    );
    let (p50, _, _) = p50_p90_max(&full_inbox[0].each);
    let (r50, _, _) = p50_p90_max(&empty[0].each);
    println!("figure: inbox_render_p50_ms {p50:.3}");
    println!("figure: inbox_render_empty_p50_ms {r50:.3}");
    let (p50, _, _) = p50_p90_max(&full_inbox[1].each);
    println!("figure: residents_render_p50_ms {p50:.3}");
}

/// One page's timings, and the node's user CPU over them.
struct Timed {
    each: Vec<Duration>,
    node_user_s: f64,
    /// The first request to a freshly started node (the warm-up, untimed
    /// in `each`): caches cold.
    cold: Option<Duration>,
}

/// Starts the node on `data`, logs in, and times each of [`PAGES`] `reps`
/// times (after one untimed warm-up request), checking each shows its
/// `rows`; then `GET /login` as often.
fn time_pages(data: &Path, reps: usize, rows: &[usize], log: &Path) -> (Vec<Timed>, Timed) {
    let node = Serve::start(data, &[], log);
    let session = log_in(&node.http, "bench");
    let time = |path: &str, cookie: &str| {
        let cpu0 = user_s(Some(node.pid()));
        let each = (0..reps)
            .map(|_| {
                let t = Instant::now();
                let (status, _) = get(&node.http, path, cookie);
                let took = t.elapsed();
                assert_eq!(status, 200);
                took
            })
            .collect();
        Timed {
            each,
            node_user_s: user_s(Some(node.pid())) - cpu0,
            cold: None,
        }
    };
    let pages = PAGES
        .iter()
        .zip(rows)
        .map(|((path, _, marker), &rows)| {
            let t = Instant::now();
            let (status, body) = get(&node.http, path, &session);
            let cold = t.elapsed();
            assert_eq!(status, 200, "{body}");
            assert_eq!(body.matches(marker).count(), rows, "rows on {path}");
            Timed {
                cold: Some(cold),
                ..time(path, &session)
            }
        })
        .collect();
    let login = time("/login", "");
    node.stop();
    (pages, login)
}

/// The node's store as `serve` opens it (no node may be serving `data`).
fn open(data: &Path) -> Node {
    let config = NodeConfig {
        relay: RelayConfig::default(),
        grant_key_seed: None,
    };
    Node::open(data, &config).expect("open the node's store")
}

/// Staff issue `n` tickets (residents "resident 0" …), valid 14 days.
fn issue_tickets(data: &Path, n: usize, start: i64) -> Vec<IssuedTicket> {
    let node = open(data);
    let mut rng = UnwrapErr(getrandom::SysRng);
    (0..n)
        .map(|i| {
            node.relay()
                .issue_ticket(
                    &format!("resident {i}, flat {}", i % 400),
                    start + 14 * DAY,
                    now_ms(),
                    &mut rng,
                )
                .expect("issue a ticket")
        })
        .collect()
}

/// Each ticket's resident enrols and grants the node alerts, then reports
/// a fever that started and one that ended (the protocol's requests, in
/// this process, as the relay gets them over QUIC).
fn fevers_reported(data: &Path, tickets: &[IssuedTicket], start: i64) {
    let node = open(data);
    let mut rng = UnwrapErr(getrandom::SysRng);
    for (i, t) in tickets.iter().enumerate() {
        let mut h = node.handler();
        let mut call = |r: Request| {
            decode_response(&h.handle(&encode_request(&r), now_ms())).expect("a response")
        };
        call(Request::Hello {
            version: PROTOCOL_VERSION,
        });
        let mut root = [0u8; 32];
        root[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        let keys = KeySchedule::new(RootKey::from_bytes(root));
        let vault = *keys.vault_id().as_bytes();
        // The mailbox key only has to match between Enrol and Auth here (a
        // device derives it from the node's code).
        let mailbox = keys.mailbox_key(&NodeId::new(X25519PublicKey::from_bytes([9; 32]), [0; 32]));
        let enrolled = call(Request::Enrol {
            ticket: t.ticket.id,
            secret: *t.ticket.secret.expose_secret(),
            vault,
            verifier: mailbox.verifier().to_bytes(),
            expires_ms: start + 14 * DAY,
        });
        assert!(
            matches!(enrolled, Response::Enrolled { .. }),
            "{enrolled:?}"
        );
        let auth = call(Request::Auth {
            vault,
            key: *mailbox.expose_secret(),
        });
        assert_eq!(auth, Response::Ok);
        let Response::GrantKey { public } = call(Request::GrantKey) else {
            panic!("no grant key")
        };
        let node_public = X25519PublicKey::from_bytes(public);
        let key = keys.alert_key(&node_public);
        let gid = grant_id(&key);
        let grant = GrantWire {
            grant_id: gid,
            grant_key: public,
            wrapped_key: wrap(&node_public, &key, &mut rng)
                .expect("wrap the alert key")
                .as_bytes()
                .to_vec(),
            threshold_c: 37.3,
            confirm_count: 2,
            confirm_window_ms: 600_000,
            recovery_ms: 60_000,
            valid_from_ms: start,
            valid_until_ms: start + 14 * DAY,
            label: t.label.clone(),
        };
        assert_eq!(call(Request::Grant(grant)), Response::Ok);
        let onset = start + (i as i64 % 100) * 10 * MIN;
        for kind in [ALERT_START, ALERT_END] {
            let episode = [7u8; 16];
            let p = AlertPayload {
                onset_ms: onset,
                level: 1 + (i % 3) as u8,
                kind,
            };
            let a = AlertWire {
                grant_id: gid,
                episode,
                kind,
                blob: seal_alert(&key, &gid, &episode, &p, &mut rng).expect("seal"),
            };
            assert_eq!(call(Request::Alert(a)), Response::AlertAck { stored: true });
        }
    }
}
