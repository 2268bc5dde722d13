//! Envelope vs raw XChaCha20-Poly1305, side by side in one run.
//!
//! `cargo bench -p vigil-crypto --bench envelope` prints a Markdown table of
//! median throughput (MB/s of plaintext) over 5 runs of ~0.3 s each. The
//! target (issue: step 1) is that `seal` keeps >= 80 % of the raw AEAD's
//! throughput at 64 KiB. Without `--bench` (e.g. under `cargo test`) it does
//! one quick pass so the harness itself stays tested.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305, XNonce};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use vigil_crypto::{Context, KeySchedule, Kind, RootKey, open, seal};

fn measure(budget: Duration, mut f: impl FnMut()) -> f64 {
    // Calibrate, then time a fixed count so every run does equal work.
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget / 10 {
        f();
        n += 1;
    }
    let iters = (n * 10).max(1);
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_secs_f64() / iters as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (runs, budget) = if full {
        (5, Duration::from_millis(300))
    } else {
        (1, Duration::from_millis(5))
    };
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let ks = KeySchedule::new(RootKey::generate(&mut rng));
    let log_key = ks.log_key();
    let raw = XChaCha20Poly1305::new(&(*log_key.expose_secret()).into());
    let ctx = Context::new("bench")
        .bytes(ks.vault_id().as_bytes())
        .bytes(b"device")
        .u64(1);

    println!(
        "| size | raw seal MB/s | envelope seal MB/s | seal ratio | raw open MB/s | envelope open MB/s | open ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for size in [64usize, 1024, 64 * 1024] {
        let msg = vec![0xa5u8; size];
        let mut nonce_bytes = [0u8; 24];
        rng.fill_bytes(&mut nonce_bytes);
        let nonce = XNonce::from(nonce_bytes);
        let aad = [0u8; 48];

        let mut buf = msg.clone();
        let raw_seal = median(
            (0..runs)
                .map(|_| {
                    measure(budget, || {
                        // Like seal: fresh nonce and a buffer to write into, every time.
                        rng.fill_bytes(&mut nonce_bytes);
                        buf.copy_from_slice(&msg);
                        let tag = raw
                            .encrypt_inout_detached(
                                &XNonce::from(nonce_bytes),
                                &aad,
                                buf.as_mut_slice().into(),
                            )
                            .unwrap();
                        black_box((&buf, tag));
                    })
                })
                .collect(),
        );
        let env_seal = median(
            (0..runs)
                .map(|_| {
                    measure(budget, || {
                        black_box(seal(&log_key, Kind::LogBundle, &ctx, &msg, &mut rng).unwrap());
                    })
                })
                .collect(),
        );

        let mut ct = msg.clone();
        let tag = raw
            .encrypt_inout_detached(&nonce, &aad, ct.as_mut_slice().into())
            .unwrap();
        let raw_open = median(
            (0..runs)
                .map(|_| {
                    measure(budget, || {
                        buf.copy_from_slice(&ct);
                        raw.decrypt_inout_detached(&nonce, &aad, buf.as_mut_slice().into(), &tag)
                            .unwrap();
                        black_box(&buf);
                    })
                })
                .collect(),
        );
        let blob = seal(&log_key, Kind::LogBundle, &ctx, &msg, &mut rng).unwrap();
        let env_open = median(
            (0..runs)
                .map(|_| {
                    measure(budget, || {
                        black_box(open(&log_key, Kind::LogBundle, &ctx, &blob).unwrap());
                    })
                })
                .collect(),
        );

        let mbps = |t: f64| size as f64 / t / 1e6;
        println!(
            "| {size} B | {:.0} | {:.0} | {:.0} % | {:.0} | {:.0} | {:.0} % |",
            mbps(raw_seal),
            mbps(env_seal),
            100.0 * raw_seal / env_seal,
            mbps(raw_open),
            mbps(env_open),
            100.0 * raw_open / env_open,
        );
        // Machine-readable, for `vigil-bench report`.
        println!(
            "figure: envelope_{size} {:.1} {:.1}",
            100.0 * raw_seal / env_seal,
            100.0 * raw_open / env_open
        );
    }
}
