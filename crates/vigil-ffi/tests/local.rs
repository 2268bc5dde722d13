//! The local half of the resident flow through the FFI layer's Rust API:
//! notes, retractions, check-ins, conflicts, queries, exports and the
//! shred, honest and hostile, with the key store an app would implement.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use vigil_ffi::{
    Conflict, KeyStore, KeyStoreError, Metric, OpenError, QueryError, ReadError, Severity,
    ShredError, Symptom, SymptomSeverity, Vault, WriteError,
};

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

/// The app's key store: a slot in memory that counts `destroy` calls.
#[derive(Debug, Default)]
struct AppKeys {
    key: Mutex<Option<Vec<u8>>>,
    destroyed: AtomicUsize,
}

impl AppKeys {
    fn new() -> Arc<Self> {
        Arc::new(AppKeys::default())
    }
    fn holding(root: Vec<u8>) -> Arc<Self> {
        let k = AppKeys::new();
        *k.key.lock().unwrap() = Some(root);
        k
    }
}

impl KeyStore for AppKeys {
    fn load(&self) -> Result<Option<Vec<u8>>, KeyStoreError> {
        Ok(self.key.lock().unwrap().clone())
    }
    fn store(&self, root: Vec<u8>) -> Result<(), KeyStoreError> {
        let mut key = self.key.lock().unwrap();
        if key.is_some() {
            return Err(KeyStoreError::Occupied {
                detail: "test".into(),
            });
        }
        *key = Some(root);
        Ok(())
    }
    fn destroy_key(&self) -> Result<(), KeyStoreError> {
        self.destroyed.fetch_add(1, Ordering::SeqCst);
        self.key.lock().unwrap().take();
        Ok(())
    }
}

/// A week placed around now (midnight UTC two days ago), so that `open`,
/// which reads the system clock, keeps it.
fn week() -> (i64, i64) {
    let now = vigil_testkit::now_ms();
    (vigil_testkit::period_start(), now)
}

fn create(dir: &std::path::Path, keys: &Arc<AppKeys>) -> (Arc<Vault>, i64, i64) {
    let (start, now) = week();
    let vault = Vault::create(dir.display().to_string(), start, 7, keys.clone()).unwrap();
    (vault, start, now)
}

fn day_of(ms: i64) -> String {
    vigil_testkit::date(ms)
}

fn invalid_write(r: Result<impl std::fmt::Debug, WriteError>) -> (String, String) {
    match r {
        Err(WriteError::Invalid { code, detail }) => (code, detail),
        other => panic!("expected WriteError::Invalid, got {other:?}"),
    }
}

fn invalid_query(r: Result<impl std::fmt::Debug, QueryError>) -> (String, String) {
    match r {
        Err(QueryError::Invalid { code, detail }) => (code, detail),
        other => panic!("expected QueryError::Invalid, got {other:?}"),
    }
}

#[test]
fn a_resident_day_through_the_binding() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    let (vault, start, now) = create(&dir, &keys);
    let t = |m: i64| start + DAY + m * MIN;

    // A fever: two readings at or above 37.3 °C within 10 minutes.
    let hr = vault.record(Metric::HeartRate, 72.0, t(0)).unwrap();
    vault.record(Metric::BodyTemperature, 37.0, t(1)).unwrap();
    let hot = vault.record(Metric::BodyTemperature, 38.1, t(10)).unwrap();
    vault.record(Metric::BodyTemperature, 38.6, t(15)).unwrap();
    let wrong = vault.record(Metric::HeartRate, 190.0, t(20)).unwrap();
    vault.record(Metric::SpO2, 97.0, t(21)).unwrap();

    vault
        .annotate(hr.clone(), "after the stairs".into())
        .unwrap();
    vault
        .retract(wrong.clone(), "the strap was loose".into(), t(30))
        .unwrap();
    let day = day_of(t(0));
    vault
        .check_in(
            day.clone(),
            vec![
                SymptomSeverity {
                    symptom: Symptom::Cough,
                    severity: Severity::Mild,
                },
                SymptomSeverity {
                    symptom: Symptom::Chills,
                    severity: Severity::Moderate,
                },
            ],
            now,
        )
        .unwrap();

    let checkin = vault.check_in_of(day.clone()).unwrap();
    assert_eq!(checkin.len(), 10, "every symptom, answered or not");
    let answer = |s: Symptom| {
        checkin
            .iter()
            .find(|c| c.symptom == s)
            .unwrap()
            .severities
            .clone()
    };
    assert_eq!(answer(Symptom::Cough), vec![Severity::Mild]);
    assert_eq!(answer(Symptom::Chills), vec![Severity::Moderate]);
    assert!(answer(Symptom::Headache).is_empty());

    // Queries: by metric and range; the retracted reading only when asked.
    let heart = vault
        .readings(Some(Metric::HeartRate), None, None, false)
        .unwrap();
    assert_eq!(heart.len(), 1);
    assert_eq!(heart[0].reading.id, hr);
    assert_eq!(heart[0].annotations, vec!["after the stairs".to_owned()]);
    let all_heart = vault
        .readings(Some(Metric::HeartRate), None, None, true)
        .unwrap();
    assert_eq!(all_heart.len(), 2);
    let r = all_heart[1].retraction.as_ref().unwrap();
    assert_eq!(
        (r.reason.as_str(), r.at_ms, &r.device_id),
        (
            "the strap was loose",
            t(30),
            &vault.status().unwrap().device_id
        )
    );
    let window = vault
        .readings(None, Some(t(10)), Some(t(15)), false)
        .unwrap();
    assert_eq!(
        window
            .iter()
            .map(|d| d.reading.id.clone())
            .collect::<Vec<_>>(),
        vec![hot]
    );
    assert_eq!(
        vault.readings(None, Some(t(0)), Some(t(0)), true).unwrap(),
        vec![],
        "an empty range is empty"
    );

    let temps = vault
        .daily_summaries(Some(Metric::BodyTemperature), Some(day.clone()))
        .unwrap();
    assert_eq!(temps.len(), 1);
    assert_eq!(
        (temps[0].count, temps[0].min, temps[0].max),
        (3, 37.0, 38.6)
    );
    let hr_sum = vault
        .daily_summaries(Some(Metric::HeartRate), None)
        .unwrap();
    assert_eq!(
        (hr_sum[0].count, hr_sum[0].mean),
        (1, 72.0),
        "the retracted 190 bpm is left out"
    );
    assert!(
        vault
            .daily_summaries(None, Some(day_of(start)))
            .unwrap()
            .is_empty()
    );

    let episodes = vault.fever_episodes().unwrap();
    assert_eq!(episodes.len(), 1);
    assert_eq!(
        (episodes[0].onset_ms, episodes[0].end_ms, episodes[0].peak_c),
        (t(10), None, 38.6)
    );
    assert_eq!(vault.current_fever().unwrap(), Some(episodes[0]));

    // Not enrolled: no grant, no alert, nothing disclosed.
    assert_eq!(vault.evaluate_alerts(now).unwrap(), 0);
    assert!(vault.pending_alerts(now).unwrap().is_empty());
    assert!(vault.grants().unwrap().is_empty());
    assert!(vault.disclosures().unwrap().is_empty());
    assert!(vault.conflicts().unwrap().is_empty());
    assert!(!vault.is_due(now).unwrap());
    assert!(vault.is_due(start + 7 * DAY).unwrap());

    // FHIR: one Observation per reading not retracted, the note with it,
    // and one per check-in answer, each with the anonymous Patient as subject.
    let fhir = vault.export_fhir(None, false, now).unwrap();
    assert_eq!(
        fhir.matches("\"resourceType\": \"Observation\"").count(),
        5 + 2
    );
    assert_eq!(fhir.matches("\"valueQuantity\"").count(), 5);
    assert_eq!(fhir.matches("\"subject\"").count(), 5 + 2);
    assert_eq!(fhir.matches("\"resourceType\": \"Patient\"").count(), 1);
    assert!(fhir.contains("after the stairs"));
    assert!(!fhir.contains("the strap was loose"));
    let with_retracted = vault.export_fhir(None, true, now).unwrap();
    assert!(with_retracted.contains("entered-in-error"));
    let only_temps = vault
        .export_fhir(Some(Metric::BodyTemperature), false, now)
        .unwrap();
    assert_eq!(only_temps.matches("8310-5").count(), 3);

    // Automerge: the whole log, which the library reads back.
    let doc = vault.export_automerge().unwrap();
    let log = vigil::HealthLog::load(&doc, vigil::DeviceId([9; 16])).unwrap();
    assert_eq!(log.len(), 6);
    assert_eq!(
        log.annotation(hr.parse().unwrap()),
        vec!["after the stairs"]
    );

    // All of it was durable: a reopened vault says the same.
    drop(vault);
    let vault = Vault::open(dir.display().to_string(), keys).unwrap();
    assert_eq!(
        vault.readings(None, None, None, true).unwrap().len(),
        6,
        "every reading, the retracted one included"
    );
    assert_eq!(vault.check_in_of(day).unwrap(), checkin);
}

#[test]
fn shred_now_destroys_the_key_and_closes_the_object() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    let (vault, start, now) = create(&dir, &keys);
    let id = vault
        .record(Metric::BodyTemperature, 36.8, start + MIN)
        .unwrap();
    let status = vault.status().unwrap();

    let t = vault.shred_now(keys.clone(), now).unwrap();
    assert_eq!(t.vault_id, status.vault_id);
    assert_eq!(
        (t.period_start_ms, t.period_end_ms, t.shredded_at_ms),
        (start, start + 7 * DAY, now)
    );
    assert_eq!((t.receipt, t.receipt_sha256), (None, None), "no node asked");
    assert_eq!(keys.destroyed.load(Ordering::SeqCst), 1);
    assert!(keys.key.lock().unwrap().is_none());

    // Every call on the object is refused, none panics.
    let day = day_of(start);
    assert!(matches!(
        vault.record(Metric::HeartRate, 70.0, start),
        Err(WriteError::Shredded)
    ));
    assert!(matches!(
        vault.annotate(id.clone(), "x".into()),
        Err(WriteError::Shredded)
    ));
    assert!(matches!(
        vault.retract(id.clone(), "x".into(), now),
        Err(WriteError::Shredded)
    ));
    assert!(matches!(
        vault.check_in(
            day.clone(),
            vec![SymptomSeverity {
                symptom: Symptom::Cough,
                severity: Severity::Mild
            }],
            now
        ),
        Err(WriteError::Shredded)
    ));
    assert!(matches!(
        vault.resolve_conflict(format!("{day}/cough"), "mild".into()),
        Err(WriteError::Shredded)
    ));
    assert!(matches!(
        vault.resolve_conflict_with(id.clone(), 0),
        Err(WriteError::Shredded)
    ));
    assert!(matches!(
        vault.evaluate_alerts(now),
        Err(WriteError::Shredded)
    ));
    assert!(matches!(vault.conflicts(), Err(ReadError::Shredded)));
    assert!(matches!(vault.export_automerge(), Err(ReadError::Shredded)));
    assert!(matches!(vault.log(), Err(ReadError::Shredded)));
    assert!(matches!(vault.status(), Err(ReadError::Shredded)));
    for r in [
        vault.check_in_of(day.clone()).map(drop),
        vault.readings(None, None, None, true).map(drop),
        vault.daily_summaries(None, None).map(drop),
        vault.fever_episodes().map(drop),
        vault.current_fever().map(drop),
        vault.pending_alerts(now).map(drop),
        vault.grants().map(drop),
        vault.disclosures().map(drop),
        vault.is_due(now).map(drop),
        vault.export_fhir(None, true, now).map(drop),
    ] {
        assert!(matches!(r, Err(QueryError::Shredded)), "{r:?}");
    }
    assert!(matches!(
        vault.shred_now(keys.clone(), now),
        Err(ShredError::Shredded)
    ));
    assert_eq!(keys.destroyed.load(Ordering::SeqCst), 1);

    // Only the tombstone remains: the directory never opens again.
    drop(vault);
    match Vault::open(dir.display().to_string(), keys) {
        Err(OpenError::Shredded {
            vault_id,
            shredded_at_ms,
        }) => assert_eq!((vault_id, shredded_at_ms), (status.vault_id, now)),
        other => panic!("expected OpenError::Shredded, got {other:?}"),
    }
}

#[test]
fn a_shred_leaves_another_vaults_key_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let (vault, _, now) = create(&tmp.path().join("a"), &AppKeys::new());
    let other = AppKeys::new();
    drop(create(&tmp.path().join("b"), &other));
    let other_root = other.key.lock().unwrap().clone();
    // The app hands the wrong store: the shred completes, that key stays.
    match vault.shred_now(other.clone(), now) {
        Err(ShredError::KeyKept { shredded_at_ms, .. }) => assert_eq!(shredded_at_ms, now),
        r => panic!("expected KeyKept, got {r:?}"),
    }
    assert_eq!(*other.key.lock().unwrap(), other_root);
    assert_eq!(other.destroyed.load(Ordering::SeqCst), 0);
    assert!(matches!(vault.log(), Err(ReadError::Shredded)));
}

/// 1 MB of text that is not what any field wants.
fn huge() -> String {
    "9".repeat(1 << 20)
}

#[test]
fn hostile_input_is_refused_with_a_short_typed_error_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    let (vault, start, now) = create(&dir, &keys);
    let id = vault
        .record(Metric::BodyTemperature, 36.8, start + MIN)
        .unwrap();
    let before = vault.export_automerge().unwrap();
    let today = day_of(now);
    let cough = |severity| SymptomSeverity {
        symptom: Symptom::Cough,
        severity,
    };

    // Reading ids: garbage, 1 MB, well-formed but unknown.
    for bad in ["", "zz", "not-a-reading", &format!("{id}x"), &huge()] {
        let (code, detail) = invalid_write(vault.annotate(bad.into(), "note".into()));
        assert_eq!(code, "invalid-reading-id", "{bad:.40}");
        assert!(detail.len() < 200, "the error echoes 1 MB: {:.80}", detail);
        let (code, _) = invalid_write(vault.retract(bad.into(), "why".into(), now));
        assert_eq!(code, "invalid-reading-id");
    }
    let unknown = format!("{}-1", "ab".repeat(16));
    let (code, _) = invalid_write(vault.annotate(unknown, "note".into()));
    assert_eq!(code, "unknown-reading");

    // Text: empty, blank, over the limit, 1 MB.
    for blank in ["", "   ", "\n\t"] {
        let (code, _) = invalid_write(vault.annotate(id.clone(), blank.into()));
        assert_eq!(code, "empty-text", "{blank:?}");
        let (code, _) = invalid_write(vault.retract(id.clone(), blank.into(), now));
        assert_eq!(code, "empty-text", "{blank:?}");
    }
    for long in ["é".repeat(2001), huge()] {
        let (code, detail) = invalid_write(vault.annotate(id.clone(), long.clone()));
        assert_eq!(code, "text-too-long");
        assert!(detail.len() < 200);
        let (code, _) = invalid_write(vault.retract(id.clone(), long, now));
        assert_eq!(code, "text-too-long");
    }

    // Times: before 1970, after 9999.
    for (at, want) in [
        (-1, "negative-time"),
        (i64::MIN, "negative-time"),
        (253_402_300_800_000, "time-out-of-range"),
        (i64::MAX, "time-out-of-range"),
    ] {
        let (code, _) = invalid_write(vault.retract(id.clone(), "why".into(), at));
        assert_eq!(code, want, "retract at {at}");
        let (code, _) =
            invalid_write(vault.check_in(today.clone(), vec![cough(Severity::Mild)], at));
        assert_eq!(code, want, "check-in at {at}");
        let (code, _) = invalid_write(vault.evaluate_alerts(at));
        assert_eq!(code, want);
        let (code, _) = invalid_query(vault.readings(None, Some(at), None, false));
        assert_eq!(code, want);
        let (code, _) = invalid_query(vault.readings(None, None, Some(at), false));
        assert_eq!(code, want);
        let (code, _) = invalid_query(vault.pending_alerts(at));
        assert_eq!(code, want);
        let (code, _) = invalid_query(vault.is_due(at));
        assert_eq!(code, want);
        let (code, _) = invalid_query(vault.export_fhir(None, false, at));
        assert_eq!(code, want);
        match vault.shred_now(keys.clone(), at) {
            Err(ShredError::Invalid { code, .. }) => assert_eq!(code, want),
            r => panic!("expected ShredError::Invalid, got {r:?}"),
        }
    }
    let (code, _) = invalid_query(vault.readings(None, Some(now), Some(now - 1), false));
    assert_eq!(code, "invalid-range");

    // Days: malformed, impossible, 1 MB, outside the period, in the future.
    for bad in [
        "",
        "yesterday",
        "2026-02-30",
        "2026-13-01",
        "99999-01-01",
        &huge(),
    ] {
        let (code, detail) =
            invalid_write(vault.check_in(bad.into(), vec![cough(Severity::Mild)], now));
        assert_eq!(code, "invalid-day", "{bad:.40}");
        assert!(detail.len() < 200);
        let (code, _) = invalid_query(vault.check_in_of(bad.into()));
        assert_eq!(code, "invalid-day");
        let (code, _) = invalid_query(vault.daily_summaries(None, Some(bad.into())));
        assert_eq!(code, "invalid-day");
    }
    let (code, _) =
        invalid_write(vault.check_in(day_of(start - DAY), vec![cough(Severity::Mild)], now));
    assert_eq!(code, "day-outside-period");
    let (code, _) =
        invalid_write(vault.check_in(day_of(now + DAY), vec![cough(Severity::Mild)], now));
    assert_eq!(code, "day-in-future");
    let (code, _) = invalid_write(vault.check_in(today.clone(), vec![], now));
    assert_eq!(code, "empty-check-in");
    let (code, _) = invalid_write(vault.check_in(
        today.clone(),
        vec![cough(Severity::Mild), cough(Severity::Severe)],
        now,
    ));
    assert_eq!(code, "duplicate-symptom");

    // Conflict keys and values: garbage, unknown symptom, no such conflict.
    for (key, want) in [
        (String::new(), "invalid-reading-id"),
        (huge(), "invalid-conflict-key"),
        (format!("{today}/sneezing"), "unknown-symptom"),
        ("2026-02-30/cough".into(), "invalid-day"),
        (format!("{today}/cough"), "no-such-conflict"),
        (id.clone(), "no-such-conflict"),
    ] {
        let (code, detail) = invalid_write(vault.resolve_conflict(key.clone(), "mild".into()));
        assert_eq!(code, want, "{key:.40}");
        assert!(detail.len() < 200);
        let (code, _) = invalid_write(vault.resolve_conflict_with(key, u32::MAX));
        assert_eq!(code, want);
    }

    // Nothing was written, and the vault still works.
    assert_eq!(vault.export_automerge().unwrap(), before);
    assert!(
        vault.check_in_of(today.clone()).unwrap()[0]
            .severities
            .is_empty()
    );
    vault
        .check_in(today, vec![cough(Severity::Mild)], now)
        .unwrap();
    vault.annotate(id, "fine".into()).unwrap();
    drop(vault);
    let vault = Vault::open(dir.display().to_string(), keys).unwrap();
    let r = vault.readings(None, None, None, true).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].annotations, vec!["fine".to_owned()]);
    assert!(r[0].retraction.is_none());
}

/// Two devices of one vault, paired through an in-process node, set the
/// same check-in and note differently; the binding lists both values with
/// the device that set each, and resolves them as `vigil conflicts
/// resolve` does.
#[test]
fn conflicts_name_their_devices_and_resolve() {
    use vigil::KeyStore as _;

    let tmp = tempfile::tempdir().unwrap();
    let (start, now) = week();
    let period = vigil::Period::days(start, 7);
    let node = vigil_testkit::node(&tmp.path().join("node"));
    let mut rng = vigil_testkit::rng(16);

    let (mut phone, _phone_keys) = vigil_testkit::disk_vault(&tmp.path().join("phone"), period, 1);
    let id = phone
        .record(
            vigil::Metric::HeartRate,
            71.0,
            vigil::Unit::BeatsPerMinute,
            start + MIN,
        )
        .unwrap();
    let mut phone_conn = vigil_testkit::register(&mut phone, &node);
    phone.sync(&mut phone_conn).unwrap();
    let joiner = vigil::X25519Identity::generate(&mut rng);
    phone
        .offer_pairing(&mut phone_conn, &joiner.public_key(), start + MIN)
        .unwrap();
    let tablet_dir = tmp.path().join("tablet");
    let tablet_keys = vigil::MemoryKeyStore::new();
    let mut tablet_conn = vigil_testkit::connect(node.enrolment_code());
    let mut tablet = vigil::Vault::fetch_join(&mut tablet_conn, &joiner)
        .unwrap()
        .confirm(
            Box::new(vigil::SledStorage::open(&tablet_dir).unwrap()),
            Box::new(tablet_keys.clone()),
            &mut tablet_conn,
            &mut rng,
        )
        .unwrap();

    // Offline from each other, both answer the same question differently.
    let day = vigil::Day::of(now);
    phone
        .check_in(day, vigil::Symptom::SoreThroat, vigil::Severity::Mild)
        .unwrap();
    phone.annotate(id, "after the stairs").unwrap();
    tablet
        .check_in(day, vigil::Symptom::SoreThroat, vigil::Severity::Severe)
        .unwrap();
    tablet.annotate(id, "sitting still").unwrap();
    phone.sync(&mut phone_conn).unwrap();
    tablet.sync(&mut tablet_conn).unwrap();
    let (phone_dev, tablet_dev) = (
        phone.device_id().to_string(),
        tablet.device_id().to_string(),
    );
    let root = tablet_keys
        .load()
        .unwrap()
        .unwrap()
        .expose_secret()
        .to_vec();
    drop((tablet, tablet_conn, phone, phone_conn));

    // The tablet's vault, opened by the app with its root.
    let vault = Vault::open(tablet_dir.display().to_string(), AppKeys::holding(root)).unwrap();
    let conflicts = vault.conflicts().unwrap();
    assert_eq!(conflicts.len(), 2, "{conflicts:?}");
    let (checkin_key, annotation_key) = match (&conflicts[0], &conflicts[1]) {
        (
            Conflict::CheckIn {
                key,
                day: d,
                symptom,
                values,
            },
            Conflict::Annotation {
                key: akey,
                reading_id,
                values: notes,
            },
        ) => {
            assert_eq!((d, *symptom), (&day.to_string(), Symptom::SoreThroat));
            assert_eq!(key, &format!("{day}/sore-throat"));
            let mut got: Vec<_> = values
                .iter()
                .map(|v| (v.severity, v.device_id.clone().unwrap()))
                .collect();
            got.sort_by_key(|(s, _)| *s as u8);
            assert_eq!(
                got,
                vec![
                    (Severity::Mild, phone_dev.clone()),
                    (Severity::Severe, tablet_dev.clone())
                ]
            );
            assert_eq!((akey, reading_id), (&id.to_string(), &id.to_string()));
            for n in notes {
                let want = if n.text == "after the stairs" {
                    &phone_dev
                } else {
                    &tablet_dev
                };
                assert_eq!(n.device_id.as_ref(), Some(want), "{n:?}");
            }
            (key.clone(), akey.clone())
        }
        other => panic!("expected a check-in then an annotation conflict, got {other:?}"),
    };
    let shown = vault.check_in_of(day.to_string()).unwrap();
    assert_eq!(shown[1].symptom, Symptom::SoreThroat);
    assert_eq!(shown[1].severities.len(), 2, "both values stay visible");

    // A value that is not a severity is refused; then both are resolved.
    let (code, _) = invalid_write(vault.resolve_conflict(checkin_key.clone(), "awful".into()));
    assert_eq!(code, "unknown-severity");
    let (code, _) = invalid_write(vault.resolve_conflict_with(annotation_key.clone(), 2));
    assert_eq!(code, "no-such-choice");
    vault
        .resolve_conflict(checkin_key, "moderate".into())
        .unwrap();
    let kept = vault.resolve_conflict_with(annotation_key, 1).unwrap();
    assert!(["after the stairs", "sitting still"].contains(&kept.as_str()));
    assert!(vault.conflicts().unwrap().is_empty());
    assert_eq!(
        vault.check_in_of(day.to_string()).unwrap()[1].severities,
        vec![Severity::Moderate]
    );
    let r = vault.readings(None, None, None, false).unwrap();
    assert_eq!(r[0].annotations, vec![kept]);
}

/// An enrolled device (through an in-process node, as the network half of
/// the binding does it): its grant, what it told the community, and the
/// alerts waiting for the node, before and after they are sent.
#[test]
fn grants_disclosures_and_waiting_alerts_of_an_enrolled_device() {
    use vigil::KeyStore as _;
    use vigil_ffi::{AlertKind, Disclosure};

    let tmp = tempfile::tempdir().unwrap();
    let (start, now) = week();
    let dir = tmp.path().join("phone");
    let node = vigil_testkit::node(&tmp.path().join("node"));
    let (mut phone, keys) = vigil_testkit::disk_vault(&dir, vigil::Period::days(start, 7), 3);
    let mut conn = vigil_testkit::enrol(&mut phone, &node, "room 12", now);
    let node_hex: String = node
        .enrolment_code()
        .node_public
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let root = keys.load().unwrap().unwrap().expose_secret().to_vec();
    drop(phone);

    // The app records a fever: an alert waits for the node.
    let vault = Vault::open(dir.display().to_string(), AppKeys::holding(root.clone())).unwrap();
    vault
        .record(Metric::BodyTemperature, 38.2, now - 5 * MIN)
        .unwrap();
    vault
        .record(Metric::BodyTemperature, 38.5, now - MIN)
        .unwrap();
    let grants = vault.grants().unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(
        (grants[0].label.as_str(), &grants[0].node),
        ("room 12", &node_hex)
    );
    assert_eq!(grants[0].rule.threshold_c, 37.3);
    let pending = vault.pending_alerts(now).unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].kind, AlertKind::Started);
    assert_eq!(pending[0].grant_id, grants[0].grant_id);
    assert!(!pending[0].overdue);
    assert!(vault.pending_alerts(now + 16 * MIN).unwrap()[0].overdue);
    assert_eq!(vault.evaluate_alerts(now).unwrap(), 0, "already queued");
    assert_eq!(
        vault.current_fever().unwrap().unwrap().onset_ms,
        now - 5 * MIN
    );
    match vault.disclosures().unwrap().as_slice() {
        [
            Disclosure::Grant {
                label, node, rule, ..
            },
        ] => {
            assert_eq!((label.as_str(), node), ("room 12", &node_hex));
            assert_eq!(*rule, grants[0].rule);
        }
        other => panic!("expected the grant only, got {other:?}"),
    }
    drop(vault);

    // The network half sends it; the binding then shows what was told.
    let mut phone = vigil::Vault::open(&dir, &keys).unwrap();
    let public = node.enrolment_code().node_public;
    assert_eq!(
        phone
            .send_alerts(&mut conn, &public, now)
            .unwrap()
            .delivered,
        1
    );
    drop(phone);
    let vault = Vault::open(dir.display().to_string(), AppKeys::holding(root)).unwrap();
    assert!(vault.pending_alerts(now).unwrap().is_empty());
    match vault.disclosures().unwrap().as_slice() {
        [
            Disclosure::Grant { .. },
            Disclosure::AlertSent {
                kind: AlertKind::Started,
                at_ms,
                ..
            },
            Disclosure::AlertAcknowledged {
                kind: AlertKind::Started,
                ..
            },
        ] => assert_eq!(*at_ms, now),
        other => panic!("expected grant, sent, acknowledged; got {other:?}"),
    }
}

/// An app releases its vault object when it is done (Kotlin's `close()`,
/// Python's last reference): that is an orderly close, not a crash, so the
/// fold chunks stored since the last snapshot are compacted and the next
/// open loads one document.
#[test]
fn releasing_the_vault_object_compacts_so_the_next_open_loads_one_document() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = Arc::new(AppKeys::default());
    let (vault, start, _) = create(tmp.path(), &keys);
    // 300 readings: one fold of 256 is stored as a chunk, 44 wait in the
    // journal.
    for i in 0..300 {
        vault
            .record(
                Metric::HeartRate,
                60.0 + f64::from(i % 40),
                start + i64::from(i) * MIN,
            )
            .unwrap();
    }
    let before = vault.status().unwrap();
    assert!(before.pending_chunks >= 1, "{before:?}");
    drop(vault);

    let dir = tmp.path().display().to_string();
    let reopened = Vault::open(dir, keys.clone()).unwrap();
    let after = reopened.status().unwrap();
    assert_eq!(after.readings, 300);
    assert_eq!(
        after.pending_chunks, 0,
        "released without compacting: {after:?}"
    );
}
