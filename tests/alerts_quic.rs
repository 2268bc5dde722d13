//! What the community node learns from a whole monitoring week, over
//! loopback QUIC: keep every frame it received and its data directory, use
//! every key it holds, and show that exactly the fever episode's alerts open
//! and nothing else of the resident's appears anywhere.

use std::path::{Path, PathBuf};

use vigil::X25519Identity;
use vigil::node::{NodeConfig, NodeIdentity};
use vigil::{DeviceConnection, EnrolmentCode, KeyStore, Period, Vault};
use vigil::{Metric, Unit};
use vigil_crypto::{AlertKey, WrappedKey, unwrap};
use vigil_node::GrantKeys;
use vigil_proto::alert::{ALERT_END, ALERT_START, AlertPayload, open_alert, round_onset};
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
    let mut conn = enrol(&mut phone, &node, label, start);

    // A fever on day 3 from 10:00 to 13:00 (peak 38.6).
    let fever_onset = start + 2 * DAY + 10 * HOUR;
    let (canaries, values) = live_the_week(&mut phone, &mut conn, &code, start, fever_onset);
    assert!(phone.pending_alerts().unwrap().is_empty());

    // Everything the node holds: the frames it received, its files.
    let frames: Vec<Vec<u8>> = tap.lock().unwrap().clone();
    let mut held: Vec<Vec<u8>> = frames.clone();
    for f in files(&node_dir) {
        held.push(std::fs::read(f).unwrap());
    }
    let (alert_keys, opened) = open_with_every_node_key(&frames, &node_dir, node_secret, label);
    assert_only_the_episodes_alerts_open(&opened, fever_onset);
    let inbox = relay.inbox().unwrap();
    assert_eq!(inbox.len(), 2);
    assert_no_plaintext_anywhere(&held, &canaries, &values);

    // The period ends. What an attacker copied before the end: the node's
    // frames and files (above), the phone's vault and key store.
    let keyfile = tmp.path().join("phone.key");
    let secrets = phone_secrets(&keyfile, &alert_keys, &code.node_id());
    let end = start + 7 * DAY;
    let t = phone
        .shred_with_node(&mut conn, &vigil::FileKeyStore::new(&keyfile), end)
        .unwrap();
    let receipt =
        vigil_proto::receipt::verify_receipt(&code.receipt_key, &t.receipt.unwrap()).unwrap();
    assert_eq!(receipt.grants, 1);
    // Staff never acknowledged them: both stay until the sweep below.
    assert_eq!((receipt.alerts, receipt.kept_unseen_alerts), (0, 2));
    relay.sweep(end, 0).unwrap();
    conn.close();
    node.shutdown();

    assert!(!keyfile.exists());
    assert_nothing_left_opens(tmp.path(), &dev, &secrets, &frames);
}

/// The week: temperature and heart rate every 10 minutes, SpO2 hourly,
/// canary annotations, a fever of three hours from `fever_onset`; every
/// hour the phone syncs and sends what is due. Returns the canary notes and
/// the temperatures they annotate.
fn live_the_week(
    phone: &mut Vault,
    conn: &mut DeviceConnection,
    code: &EnrolmentCode,
    start: i64,
    fever_onset: i64,
) -> (Vec<String>, Vec<f64>) {
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
            phone.sync(conn).unwrap();
            phone.send_alerts(conn, &code.node_public, t).unwrap();
        }
    }
    (canaries, values)
}

/// Uses every key the node holds on every frame it received: its X25519
/// identity, the one-time grant keys in its data directory, and through
/// them the alert key of each grant. Checks the grant is wrapped to a
/// one-time key, every alert opens and no log blob does, and that the log
/// went through the node. Returns the alert keys and the opened alerts.
fn open_with_every_node_key(
    frames: &[Vec<u8>],
    node_dir: &Path,
    node_secret: [u8; 32],
    label: &str,
) -> (Vec<AlertKey>, Vec<AlertPayload>) {
    let node_id = X25519Identity::from_bytes(node_secret);
    let grant_keys = GrantKeys::open(&node_dir.join("grant-keys"), [0; 32]).unwrap();
    let mut alert_keys: Vec<AlertKey> = vec![];
    let mut opened = vec![];
    let mut other_blobs = 0;
    for f in frames {
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
    (alert_keys, opened)
}

/// Exactly the episode's two alerts opened, with the coarse onset.
fn assert_only_the_episodes_alerts_open(opened: &[AlertPayload], fever_onset: i64) {
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
}

/// No reading value, annotation or vital in plain bytes anywhere in what
/// the node `held`.
fn assert_no_plaintext_anywhere(held: &[Vec<u8>], canaries: &[String], values: &[f64]) {
    for h in held {
        for c in canaries {
            assert!(!contains(h, c.as_bytes()), "canary visible to the node");
        }
        assert!(!contains(h, b"CANARY"));
        assert!(!contains(h, b"night-sweats"));
        for v in values {
            assert!(!contains(h, &v.to_be_bytes()));
        }
        for hr in [61.0f64, 75.0, 90.0] {
            assert!(!contains(h, &hr.to_be_bytes()), "heart rate visible");
        }
    }
}

/// The phone's secrets an attacker could copy before the shred: its root
/// key and the keys derived from it, and the alert keys of its grants.
fn phone_secrets(keyfile: &Path, alert_keys: &[AlertKey], node: &vigil::NodeId) -> Vec<[u8; 32]> {
    let root = vigil::FileKeyStore::new(keyfile).load().unwrap().unwrap();
    let schedule = vigil_crypto::KeySchedule::new(root);
    let mut secrets = vec![
        *schedule.root().expose_secret(),
        *schedule.log_key().expose_secret(),
        *schedule.store_key().expose_secret(),
        *schedule.mailbox_key(node).expose_secret(),
    ];
    secrets.extend(alert_keys.iter().map(|k| *k.expose_secret()));
    secrets
}

/// Everything left anywhere under `dir`: the node's files (identity keys
/// included), the phone's tombstone (only that under `phone_dir`). No root
/// or derived key byte occurs in any of it, and no key file left unwraps
/// any grant the attacker copied in `frames`, so none of the copied alerts
/// (nor anything else) opens.
fn assert_nothing_left_opens(
    dir: &Path,
    phone_dir: &Path,
    secrets: &[[u8; 32]],
    frames: &[Vec<u8>],
) {
    let left: Vec<PathBuf> = files(dir);
    let phone_left: Vec<_> = left.iter().filter(|p| p.starts_with(phone_dir)).collect();
    assert_eq!(phone_left.len(), 1, "only the tombstone: {phone_left:?}");
    let mut key_material: Vec<[u8; 32]> = vec![];
    for f in &left {
        let b = std::fs::read(f).unwrap();
        for s in secrets {
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
    for f in frames {
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
