//! What the community node learns from a whole monitoring week, over
//! loopback QUIC: keep every frame it received and its data directory, use
//! every key it holds, and show that exactly the fever episode's alerts open
//! and nothing else of the resident's appears anywhere.

use std::path::PathBuf;

use vigil::X25519Identity;
use vigil::node::{NodeConfig, NodeIdentity};
use vigil::{KeyStore, Period};
use vigil::{Metric, Unit};
use vigil_crypto::{AlertKey, WrappedKey, unwrap};
use vigil_node::GrantKeys;
use vigil_proto::alert::{ALERT_END, ALERT_START, open_alert, round_onset};
use vigil_proto::{Request, decode_request};

use vigil_testkit::{
    DAY, HOUR, MIN, contains, enrol, files, period_start, sled_vault, tapped_node_with,
};

#[test]
fn the_node_learns_the_fever_alerts_and_nothing_else() {
    let start = period_start();
    let tmp = tempfile::tempdir().unwrap();
    let node_dir = tmp.path().join("node");
    let config = NodeConfig {
        grant_key_seed: Some([21; 32]),
        ..NodeConfig::default()
    };
    let (node, tap) = tapped_node_with(&node_dir, &config);
    let node_secret = *NodeIdentity::load_or_create(&node_dir)
        .unwrap()
        .x25519()
        .expose_secret();
    let relay = node.node().relay();
    let code = node.enrolment_code().clone();

    let dev = tmp.path().join("phone");
    let (mut phone, _) = sled_vault(tmp.path(), "phone", Period::days(start, 7), 21);
    let label = "Ana Costa, flat 12B";
    let mut conn = enrol(&mut phone, &code, label, start);

    // The week: temperature and heart rate every 10 minutes, SpO2 hourly,
    // canary annotations; a fever on day 3 from 10:00 to 13:00 (peak 38.6).
    let fever_onset = start + 2 * DAY + 10 * HOUR;
    let mut canaries = vec![];
    let mut values = vec![];
    for m in (0..7 * 24 * 60).step_by(10) {
        let t = start + m * MIN;
        let in_fever = (fever_onset..fever_onset + 3 * HOUR).contains(&t);
        let temp = if in_fever {
            38.3 + (m % 4) as f64 * 0.1
        } else {
            36.41 + (m % 60) as f64 * 0.01
        };
        let id = phone
            .record(Metric::BodyTemperature, temp, Unit::Celsius, t)
            .unwrap();
        phone
            .record(
                Metric::HeartRate,
                61.0 + (m % 30) as f64,
                Unit::BeatsPerMinute,
                t,
            )
            .unwrap();
        if m % 60 == 0 {
            phone
                .record(Metric::SpO2, 96.0 + (m % 3) as f64, Unit::Percent, t)
                .unwrap();
        }
        if m % 720 == 0 {
            let c = format!("CANARY-{m}-night-sweats");
            phone.annotate(id, &c).unwrap();
            canaries.push(c);
            values.push(temp);
        }
        // Every hour the phone syncs and sends what is due.
        if m % 60 == 50 {
            phone.sync(&mut conn).unwrap();
            phone.send_alerts(&mut conn, &code.node_public, t).unwrap();
        }
    }
    assert!(phone.pending_alerts().unwrap().is_empty());

    // Everything the node holds: the frames it received, its files.
    let frames: Vec<Vec<u8>> = tap.lock().unwrap().clone();
    let mut held: Vec<Vec<u8>> = frames.clone();
    for f in files(&node_dir) {
        held.push(std::fs::read(f).unwrap());
    }
    // Every key the node holds: its X25519 identity, the one-time grant keys
    // in its data directory, and through them the alert key of each grant.
    let node_id = X25519Identity::from_bytes(node_secret);
    let grant_keys = GrantKeys::open(&node_dir.join("grant-keys"), [0; 32]).unwrap();
    let mut alert_keys: Vec<AlertKey> = vec![];
    let mut opened = vec![];
    let mut other_blobs = 0;
    for f in &frames {
        let Ok(req) = decode_request(f) else { continue };
        match req {
            Request::Grant(g) => {
                assert_eq!(g.label, label, "the label is shared by consent");
                let wk = WrappedKey::from_slice(&g.wrapped_key).unwrap();
                assert!(
                    unwrap::<AlertKey>(&node_id, &wk).is_err(),
                    "not wrapped to the long-term key"
                );
                let one_time = grant_keys.load(&g.grant_key).expect("grant key on disk");
                alert_keys.push(unwrap::<AlertKey>(&one_time, &wk).unwrap());
            }
            Request::Alert(a) => {
                let p = alert_keys
                    .iter()
                    .find_map(|k| open_alert(k, &a.grant_id, &a.episode, a.kind, &a.blob).ok())
                    .expect("the node can open the alerts it was granted");
                opened.push(p);
            }
            Request::Push(b) => {
                other_blobs += 1;
                // Nothing else opens under the alert key, in any slot.
                for k in &alert_keys {
                    assert!(open_alert(k, &[0; 16], &[0; 16], ALERT_START, &b.blob).is_err());
                }
            }
            Request::PushSnapshot(s) => {
                other_blobs += 1;
                for k in &alert_keys {
                    assert!(open_alert(k, &[0; 16], &[0; 16], ALERT_START, &s.blob).is_err());
                }
            }
            _ => {}
        }
    }
    assert!(
        other_blobs > 100,
        "the log went through the node ({other_blobs} blobs)"
    );
    // Exactly the episode's two alerts, with the coarse onset.
    assert_eq!(opened.len(), 2, "{opened:?}");
    assert_eq!(
        opened.iter().map(|p| p.kind).collect::<Vec<_>>(),
        vec![ALERT_START, ALERT_END]
    );
    assert!(
        opened
            .iter()
            .all(|p| p.onset_ms == round_onset(fever_onset) && p.level == 2)
    );
    let inbox = relay.inbox().unwrap();
    assert_eq!(inbox.len(), 2);
    // No reading value, annotation or vital in plain bytes anywhere.
    for h in &held {
        for c in &canaries {
            assert!(!contains(h, c.as_bytes()), "canary visible to the node");
        }
        assert!(!contains(h, b"CANARY"));
        assert!(!contains(h, b"night-sweats"));
        for v in &values {
            assert!(!contains(h, &v.to_be_bytes()));
        }
        for hr in [61.0f64, 75.0, 90.0] {
            assert!(!contains(h, &hr.to_be_bytes()), "heart rate visible");
        }
    }
    // The period ends. What an attacker copied before the end: the node's
    // frames and files (above), the phone's vault and key store.
    let keyfile = tmp.path().join("phone.key");
    let root = vigil::FileKeyStore::new(&keyfile).load().unwrap().unwrap();
    let schedule = vigil_crypto::KeySchedule::new(root);
    let mut secrets = vec![
        *schedule.root().expose_secret(),
        *schedule.log_key().expose_secret(),
        *schedule.store_key().expose_secret(),
        *schedule.mailbox_key().expose_secret(),
    ];
    secrets.extend(alert_keys.iter().map(|k| *k.expose_secret()));
    let end = start + 7 * DAY;
    let t = phone
        .shred_with_node(&mut conn, &vigil::FileKeyStore::new(&keyfile), end)
        .unwrap();
    let receipt =
        vigil_proto::receipt::verify_receipt(&code.receipt_key, &t.receipt.unwrap()).unwrap();
    assert_eq!(receipt.grants, 1);
    assert_eq!(receipt.alerts, 2);
    relay.sweep(end, 0).unwrap();
    conn.close();
    node.shutdown();

    // Everything left anywhere: the node's files (identity keys included),
    // the phone's tombstone. No root or derived key byte occurs in any of it,
    // and no key file left unwraps any grant the attacker copied, so none of
    // the copied alerts (nor anything else) opens.
    let left: Vec<PathBuf> = files(tmp.path());
    assert!(!keyfile.exists());
    let phone_left: Vec<_> = left.iter().filter(|p| p.starts_with(&dev)).collect();
    assert_eq!(phone_left.len(), 1, "only the tombstone: {phone_left:?}");
    let mut key_material: Vec<[u8; 32]> = vec![];
    for f in &left {
        let b = std::fs::read(f).unwrap();
        for s in &secrets {
            assert!(!contains(&b, s), "a key survives in {}", f.display());
        }
        if f.extension().and_then(|e| e.to_str()) == Some("key") {
            key_material.extend(b.windows(32).map(|w| <[u8; 32]>::try_from(w).unwrap()));
        }
    }
    assert!(
        !key_material.is_empty(),
        "the node's own identity keys are still there"
    );
    let mut grants_tried = 0;
    for f in &frames {
        if let Ok(Request::Grant(g)) = decode_request(f) {
            let wk = WrappedKey::from_slice(&g.wrapped_key).unwrap();
            for k in &key_material {
                assert!(unwrap::<AlertKey>(&X25519Identity::from_bytes(*k), &wk).is_err());
            }
            grants_tried += 1;
        }
    }
    assert_eq!(grants_tried, 1);
}
