//! Fever-alert latency and node alert throughput (step 4).
//!
//! `cargo bench --bench alerts` measures, over loopback QUIC to a local node:
//!
//! 1. latency from `record` of the reading that completes the debounce to the
//!    alert durably stored in the node's inbox (`record` + `send_alerts`,
//!    device store on sled), over many episodes: p50 / p99;
//! 2. alerts per second one node verifies (unwrap-cached key, AEAD open,
//!    window and duplicate checks) and stores durably, from 4 connections.
//!
//! Without `--bench` it runs a few episodes, as a smoke test.

use std::path::Path;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil::X25519PublicKey;
use vigil::node::LocalNode;
use vigil::{Metric, Period, TicketCode, Unit, Vault};
use vigil_crypto::{KeySchedule, RootKey, wrap};
use vigil_proto::alert::{ALERT_START, AlertPayload, grant_id, seal_alert};
use vigil_proto::{
    AlertWire, Exchange, GrantWire, PROTOCOL_VERSION, Request, Response, decode_response,
    encode_request,
};
use vigil_testkit::{DAY, MIN, connect, enrol, node, now_ms, sled_vault};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let tmp = tempfile::tempdir().unwrap();
    // Untapped, with the default settings: the node as a community runs it.
    let node = node(&tmp.path().join("node"));
    // The period contains now (the node checks validity on its clock).
    let start = now_ms() - now_ms().rem_euclid(DAY) - DAY;

    // ~95 simulated minutes per episode: 150 fit in the 14-day period.
    let episodes = if full { 150 } else { 5 };
    let latency = latency(tmp.path(), &node, start, episodes);
    let per = if full { 2000 } else { 20 };
    let threads = 4;
    let rate = throughput(&node, start, threads, per);
    assert_eq!(
        node.node().relay().inbox().unwrap().len(),
        2 * episodes + threads as usize * per
    );
    node.shutdown();
    report(&latency, episodes, threads, per, rate);
}

/// The alert latencies measured, sorted, and the phone's log length.
struct Latency {
    sorted: Vec<Duration>,
    log_len: usize,
}

impl Latency {
    /// The `p` quantile, in ms.
    fn pct(&self, p: f64) -> f64 {
        let lat = &self.sorted;
        lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3
    }
}

/// Latency (figure 1): a phone enrolled with the node lives `episodes`
/// fevers; each is timed from the `record` that confirms it to the alert stored.
fn latency(dir: &Path, node: &LocalNode, start: i64, episodes: usize) -> Latency {
    let code = node.enrolment_code();
    let (mut phone, _) = sled_vault(dir, "phone", Period::days(start, 14), 3);
    let mut conn = enrol(&mut phone, node, "bench", start);
    let mut lat = Vec::new();
    let mut t = start;
    for _ in 0..episodes {
        // Normal readings, one high one, then the high one that confirms.
        normal_readings(&mut phone, &mut t);
        // The previous episode's end alert goes out untimed.
        phone.send_alerts(&mut conn, &code.node_public, t).unwrap();
        phone
            .record(Metric::BodyTemperature, 38.2, Unit::Celsius, t)
            .unwrap();
        t += 5 * MIN;
        let t0 = Instant::now();
        phone
            .record(Metric::BodyTemperature, 38.4, Unit::Celsius, t)
            .unwrap();
        let r = phone.send_alerts(&mut conn, &code.node_public, t).unwrap();
        lat.push(t0.elapsed());
        assert_eq!(r.delivered, 1);
        t += 10 * MIN;
    }
    // The episodes' end alerts, untimed.
    normal_readings(&mut phone, &mut t);
    phone.send_alerts(&mut conn, &code.node_public, t).unwrap();
    conn.close();
    lat.sort();
    Latency {
        sorted: lat,
        log_len: phone.log().len(),
    }
}

/// Throughput (figure 2): `threads` connections, each its own grant, send
/// `per` pre-sealed alerts each. Returns alerts stored per second.
fn throughput(node: &LocalNode, start: i64, threads: u64, per: usize) -> f64 {
    // Staff register the residents first (untimed).
    let tickets: Vec<TicketCode> = (0..threads)
        .map(|i| {
            node.issue_ticket(&format!("resident {i}"), start + 14 * DAY)
                .unwrap()
        })
        .collect();
    let t0 = Instant::now();
    let handles: Vec<_> = tickets
        .into_iter()
        .zip(0..threads)
        .map(|(t, i)| std::thread::spawn(move || send_alerts(&t, i, start, per)))
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    (threads as usize * per) as f64 / t0.elapsed().as_secs_f64()
}

/// One throughput connection: grant `i` of a vault of its own, then `per`
/// alerts sealed before they are sent, each one stored.
fn send_alerts(ticket: &TicketCode, i: u64, start: i64, per: usize) {
    let code = &ticket.node;
    let node_public = code.node_public;
    let mut rng = ChaCha20Rng::seed_from_u64(100 + i);
    let keys = KeySchedule::new(RootKey::from_bytes([i as u8 + 1; 32]));
    let key = keys.alert_key(&node_public);
    let gid = grant_id(&key);
    let mut c = connect(code);
    let mut call = |r: Request| decode_response(&c.exchange(&encode_request(&r)).unwrap()).unwrap();
    call(Request::Hello {
        version: PROTOCOL_VERSION,
    });
    let vault = *keys.vault_id().as_bytes();
    let enrolled = call(Request::Enrol {
        ticket: ticket.ticket.id,
        secret: *ticket.ticket.secret.expose_secret(),
        vault,
        verifier: keys.mailbox_key(&code.node_id()).verifier().to_bytes(),
        expires_ms: start + 14 * DAY,
    });
    assert!(
        matches!(enrolled, Response::Enrolled { .. }),
        "{enrolled:?}"
    );
    let auth = call(Request::Auth {
        vault,
        key: *keys.mailbox_key(&code.node_id()).expose_secret(),
    });
    assert_eq!(auth, Response::Ok);
    let Response::GrantKey { public } = call(Request::GrantKey) else {
        panic!("no grant key")
    };
    let grant = GrantWire {
        grant_id: gid,
        grant_key: public,
        wrapped_key: wrap(&X25519PublicKey::from_bytes(public), &key, &mut rng)
            .unwrap()
            .as_bytes()
            .to_vec(),
        threshold_c: 37.3,
        confirm_count: 2,
        confirm_window_ms: 600_000,
        // Short, so that onsets 10 minutes apart are distinct episodes (the
        // node merges closer ones).
        recovery_ms: 60_000,
        valid_from_ms: start,
        valid_until_ms: start + 14 * DAY,
        label: format!("resident {i}"),
    };
    let alerts: Vec<AlertWire> = (0..per)
        .map(|n| {
            let mut episode = [0u8; 16];
            episode[..8].copy_from_slice(&(n as u64).to_be_bytes());
            let p = AlertPayload {
                onset_ms: start + n as i64 * 600_000,
                level: 1,
                kind: ALERT_START,
            };
            AlertWire {
                grant_id: gid,
                episode,
                kind: ALERT_START,
                blob: seal_alert(&key, &gid, &episode, &p, &mut rng).unwrap(),
            }
        })
        .collect();
    assert_eq!(call(Request::Grant(grant)), Response::Ok);
    for a in alerts {
        assert_eq!(call(Request::Alert(a)), Response::AlertAck { stored: true });
    }
    c.close();
}

/// The table, then the `figure:` lines `vigil-bench report` reads.
fn report(latency: &Latency, episodes: usize, threads: u64, per: usize, rate: f64) {
    let log_len = latency.log_len;
    println!("## Fever alerts over loopback QUIC\n");
    println!("| figure | value | target |");
    println!("|---|---:|---:|");
    println!(
        "| record → stored in the node's inbox, p50 / p99 ({episodes} episodes, log of {log_len} readings) | {:.2} / {:.2} ms | p50 ≤ 5 ms |",
        latency.pct(0.5),
        latency.pct(0.99)
    );
    println!(
        "| alerts verified and stored durably, {threads} connections × {per} | {rate:.0}/s | |"
    );
    // Machine-readable, for `vigil-bench report`.
    println!("figure: alert_p50_ms {:.3}", latency.pct(0.5));
    println!("figure: alert_p99_ms {:.3}", latency.pct(0.99));
    println!("figure: alerts_per_s {rate:.0}");
}

/// Eight normal readings ten minutes apart from `t`, which it advances
/// (enough to end an episode, or to start the next one afresh).
fn normal_readings(phone: &mut Vault, t: &mut i64) {
    for _ in 0..8 {
        phone
            .record(Metric::BodyTemperature, 36.6, Unit::Celsius, *t)
            .unwrap();
        *t += 10 * MIN;
    }
}
