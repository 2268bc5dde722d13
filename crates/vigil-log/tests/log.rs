//! The health log's behaviour: validation, queries, conflicts, and merges
//! that converge without losing a reading.

use proptest::prelude::*;
use vigil_log::{
    Conflict, Day, DeviceId, FeverRule, HealthLog, LogError, Metric, Severity, Symptom, Unit,
};

const T0: i64 = 1_790_000_000_000 - 1_790_000_000_000 % 86_400_000; // a UTC midnight
const MIN: i64 = 60_000;

fn dev(n: u8) -> DeviceId {
    DeviceId([n; 16])
}

/// A second replica, as a paired device would get it: from the first's save.
fn replica(log: &mut HealthLog, device: DeviceId) -> HealthLog {
    HealthLog::load(&log.save(), device).unwrap()
}

#[test]
fn bad_values_are_refused_clearly() {
    let mut log = HealthLog::new(dev(1));
    let cases: Vec<(Metric, f64, Unit)> = vec![
        (Metric::BodyTemperature, f64::NAN, Unit::Celsius),
        (Metric::BodyTemperature, f64::INFINITY, Unit::Celsius),
        (Metric::BodyTemperature, 29.9, Unit::Celsius),
        (Metric::BodyTemperature, 45.1, Unit::Celsius),
        (Metric::BodyTemperature, 98.6, Unit::Fahrenheit),
        (Metric::HeartRate, 19.0, Unit::BeatsPerMinute),
        (Metric::SpO2, 100.5, Unit::Percent),
        (Metric::RespiratoryRate, 61.0, Unit::BreathsPerMinute),
        (Metric::Steps, -1.0, Unit::Count),
        (Metric::Steps, 10.5, Unit::Count),
        (Metric::HeartRate, 70.0, Unit::Percent),
    ];
    for (m, v, u) in cases {
        let err = log.record(m, v, u, T0).unwrap_err();
        assert!(!err.to_string().is_empty());
    }
    assert!(log.is_empty(), "nothing refused was recorded");
    assert_eq!(
        log.record(Metric::BodyTemperature, 98.6, Unit::Fahrenheit, T0)
            .unwrap_err()
            .to_string(),
        "body_temperature is recorded in °C, not °F"
    );
    assert!(matches!(
        "blood_pressure".parse::<Metric>(),
        Err(LogError::UnknownMetric(_))
    ));
    assert!(matches!(
        "location".parse::<Metric>(),
        Err(LogError::UnknownMetric(_))
    ));
    assert!(
        log.record(Metric::BodyTemperature, 37.0, Unit::Celsius, -5)
            .is_err()
    );
    // Range ends are valid.
    for m in Metric::ALL {
        let (lo, hi) = m.range();
        log.record(m, lo, m.unit(), T0).unwrap();
        log.record(m, hi, m.unit(), T0).unwrap();
    }
    assert_eq!(log.len(), 10);
}

#[test]
fn queries_summaries_and_retraction() {
    let mut log = HealthLog::new(dev(1));
    let a = log
        .record(Metric::HeartRate, 60.0, Unit::BeatsPerMinute, T0 + MIN)
        .unwrap();
    log.record(Metric::HeartRate, 80.0, Unit::BeatsPerMinute, T0 + 2 * MIN)
        .unwrap();
    let wrong = log
        .record(Metric::HeartRate, 200.0, Unit::BeatsPerMinute, T0 + 3 * MIN)
        .unwrap();
    log.record(
        Metric::HeartRate,
        70.0,
        Unit::BeatsPerMinute,
        T0 + 86_400_000,
    )
    .unwrap();
    log.record(Metric::BodyTemperature, 36.6, Unit::Celsius, T0)
        .unwrap();
    log.retract(wrong, "strap was loose", T0 + 4 * MIN).unwrap();
    log.annotate(a, "after climbing stairs").unwrap();

    let day1 = log.readings(Some(Metric::HeartRate), T0, T0 + 86_400_000, false);
    assert_eq!(
        day1.iter().map(|r| r.value).collect::<Vec<_>>(),
        vec![60.0, 80.0]
    );
    assert_eq!(
        log.readings(Some(Metric::HeartRate), T0, T0 + 86_400_000, true)
            .len(),
        3
    );
    assert_eq!(log.retraction(wrong).unwrap().reason, "strap was loose");
    assert_eq!(log.annotation(a), vec!["after climbing stairs".to_owned()]);

    let s = log.daily_summaries(Some(Metric::HeartRate));
    assert_eq!(s.len(), 2);
    assert_eq!(
        (s[0].min, s[0].max, s[0].mean, s[0].count),
        (60.0, 80.0, 70.0, 2)
    );
    assert_eq!(s[0].day, Day::of(T0));
    assert_eq!(s[1].count, 1);
    let unknown = vigil_log::ReadingId {
        device: dev(9),
        seq: 1,
    };
    assert!(matches!(
        log.annotate(unknown, "x"),
        Err(LogError::UnknownReading(_))
    ));
    assert!(matches!(
        log.annotate(a, &"x".repeat(5000)),
        Err(LogError::TextTooLong { .. })
    ));
}

#[test]
fn concurrent_checkins_stay_visible_until_resolved() {
    let mut phone = HealthLog::new(dev(1));
    let mut tablet = replica(&mut phone, dev(2));
    let day = Day::of(T0);
    phone.check_in(day, Symptom::Cough, Severity::Mild).unwrap();
    tablet
        .check_in(day, Symptom::Cough, Severity::Severe)
        .unwrap();
    tablet
        .check_in(day, Symptom::Fatigue, Severity::Moderate)
        .unwrap();
    phone.merge(&mut tablet).unwrap();
    tablet.merge(&mut phone).unwrap();
    assert_eq!(phone.view(), tablet.view());
    let conflicts = phone.conflicts();
    assert_eq!(conflicts.len(), 1);
    let Conflict::CheckIn {
        values, symptom, ..
    } = &conflicts[0]
    else {
        panic!("{conflicts:?}")
    };
    assert_eq!(*symptom, Symptom::Cough);
    let mut sorted = values.clone();
    sorted.sort();
    assert_eq!(sorted, vec![Severity::Mild, Severity::Severe]);
    // The resident resolves it on the phone; the tablet learns it by merge.
    phone
        .check_in(day, Symptom::Cough, Severity::Moderate)
        .unwrap();
    tablet.merge(&mut phone).unwrap();
    assert!(tablet.conflicts().is_empty());
    assert_eq!(
        tablet.checkin(day)[&Symptom::Cough],
        vec![Severity::Moderate]
    );
    assert_eq!(
        tablet.checkin(day)[&Symptom::Fatigue],
        vec![Severity::Moderate]
    );
}

#[test]
fn each_conflicting_value_names_the_device_that_set_it() {
    let mut phone = HealthLog::new(dev(1));
    let id = phone
        .record(Metric::HeartRate, 70.0, Unit::BeatsPerMinute, T0)
        .unwrap();
    let mut tablet = replica(&mut phone, dev(2));
    let day = Day::of(T0);
    phone.check_in(day, Symptom::Cough, Severity::Mild).unwrap();
    tablet
        .check_in(day, Symptom::Cough, Severity::Severe)
        .unwrap();
    phone.annotate(id, "after stairs").unwrap();
    tablet.annotate(id, "sitting").unwrap();
    phone.merge(&mut tablet).unwrap();
    let conflicts = phone.conflicts();
    assert_eq!(conflicts.len(), 2, "{conflicts:?}");
    for c in &conflicts {
        let by = phone.conflict_devices(c);
        let named: Vec<(String, Option<vigil_log::DeviceId>)> = match c {
            Conflict::CheckIn { values, .. } => {
                values.iter().map(|v| v.name().to_owned()).zip(by).collect()
            }
            Conflict::Annotation { values, .. } => values.iter().cloned().zip(by).collect(),
        };
        // Whatever order Automerge gives, each value has its author.
        for (value, device) in named {
            let want = match value.as_str() {
                "mild" | "after stairs" => dev(1),
                "severe" | "sitting" => dev(2),
                other => panic!("unexpected value {other}"),
            };
            assert_eq!(device, Some(want), "{value}");
        }
    }
    // Resolved: one value, by the device that resolved it.
    tablet.merge(&mut phone).unwrap();
    tablet
        .check_in(day, Symptom::Cough, Severity::Moderate)
        .unwrap();
    let c = Conflict::CheckIn {
        day,
        symptom: Symptom::Cough,
        values: vec![Severity::Moderate],
    };
    assert_eq!(tablet.conflict_devices(&c), vec![Some(dev(2))]);
}

#[test]
fn fever_episode_detection() {
    let mut log = HealthLog::new(dev(1));
    let rule = FeverRule::default();
    let t = |m: i64| T0 + m * MIN;
    log.record(Metric::BodyTemperature, 37.4, Unit::Celsius, t(0))
        .unwrap();
    // One high reading is not an episode; a second 20 min later is too late.
    log.record(Metric::BodyTemperature, 37.5, Unit::Celsius, t(20))
        .unwrap();
    assert!(log.current_fever(&rule).is_none());
    log.record(Metric::BodyTemperature, 38.1, Unit::Celsius, t(25))
        .unwrap();
    let ep = log.current_fever(&rule).unwrap();
    assert_eq!((ep.onset_ms, ep.peak_c), (t(20), 38.1));
    // Below for an hour ends it.
    for m in [30, 60, 90] {
        log.record(Metric::BodyTemperature, 36.9, Unit::Celsius, t(m))
            .unwrap();
    }
    assert!(log.current_fever(&rule).is_none());
    let eps = log.fever_episodes(&rule);
    assert_eq!(eps.len(), 1);
    assert_eq!(eps[0].end_ms, Some(t(30)));
}

#[derive(Debug, Clone)]
enum Op {
    Record(u8, u16),
    Annotate(usize, u8),
    Retract(usize),
    CheckIn(u8, u8, u8),
    Sync(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..5, any::<u16>()).prop_map(|(m, v)| Op::Record(m, v)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, t)| Op::Annotate(i, t)),
        1 => any::<usize>().prop_map(Op::Retract),
        2 => (0u8..3, 0u8..8, 0u8..4).prop_map(|(d, s, v)| Op::CheckIn(d, s, v)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Sync(a, b)),
    ]
}

fn value_for(m: Metric, v: u16) -> f64 {
    let (lo, hi) = m.range();
    let x = lo + (hi - lo) * f64::from(v) / f64::from(u16::MAX);
    if m == Metric::Steps {
        x.round()
    } else {
        (x * 10.0).round() / 10.0
    }
    .clamp(lo, hi)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// 2–3 replicas apply random operations with partial syncs in between,
    /// then merge in a random order and grouping: all views are identical and
    /// every reading any replica recorded is present.
    #[test]
    fn replicas_converge_without_loss(
        n in 2usize..=3,
        ops in proptest::collection::vec((any::<usize>(), op()), 1..60),
        order in proptest::collection::vec(any::<usize>(), 6),
    ) {
        let mut first = HealthLog::new(dev(1));
        let mut reps = vec![];
        for i in 1..n { reps.push(replica(&mut first, dev(i as u8 + 1))); }
        reps.insert(0, first);
        let mut recorded = vec![];
        for (i, (who, op)) in ops.into_iter().enumerate() {
            let w = who % n;
            let t = T0 + i as i64 * MIN;
            match op {
                Op::Record(m, v) => {
                    let m = Metric::ALL[m as usize];
                    recorded.push(reps[w].record(m, value_for(m, v), m.unit(), t).unwrap());
                }
                Op::Annotate(k, tag) => {
                    let known = reps[w].readings(None, i64::MIN, i64::MAX, true);
                    if !known.is_empty() {
                        let id = known[k % known.len()].id;
                        reps[w].annotate(id, &format!("note {tag}")).unwrap();
                    }
                }
                Op::Retract(k) => {
                    let known = reps[w].readings(None, i64::MIN, i64::MAX, true);
                    if !known.is_empty() {
                        let id = known[k % known.len()].id;
                        reps[w].retract(id, "wrong", t).unwrap();
                    }
                }
                Op::CheckIn(d, s, v) => {
                    let sev = [Severity::None, Severity::Mild, Severity::Moderate, Severity::Severe][v as usize];
                    reps[w].check_in(Day::of(T0) .0.checked_add(i64::from(d)).map(Day).unwrap(), Symptom::ALL[s as usize], sev).unwrap();
                }
                Op::Sync(a, b) => {
                    let (a, b) = (a % n, b % n);
                    if a != b {
                        // Incremental chunk transfer, as sync will do it.
                        let chunk = reps[b].save();
                        reps[a].apply(&chunk).unwrap();
                    }
                }
            }
        }
        // Merge in a random grouping: fold everyone into a random target, in a
        // random order, then spread the result back out, twice (idempotence).
        let target = order[0] % n;
        let mut idx: Vec<usize> = (0..n).filter(|&i| i != target).collect();
        let k = order[1] % idx.len();
        idx.rotate_left(k);
        for _ in 0..2 {
            for &i in &idx {
                let (a, b) = two(&mut reps, target, i);
                a.merge(b).unwrap();
            }
            for &i in &idx {
                let (a, b) = two(&mut reps, i, target);
                a.merge(b).unwrap();
            }
        }
        let view = reps[0].view();
        for r in &reps[1..] {
            prop_assert_eq!(&r.view(), &view);
        }
        for id in recorded {
            prop_assert!(view.readings.iter().any(|r| r.id == id), "reading {} lost", id);
        }
    }
}

fn two<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    assert_ne!(a, b);
    if a < b {
        let (l, r) = v.split_at_mut(b);
        (&mut l[a], &mut r[0])
    } else {
        let (l, r) = v.split_at_mut(a);
        (&mut r[0], &mut l[b])
    }
}

/// Un-retracting on one device while another retracts the same reading
/// anew: both converge, and the concurrent retraction (not seen by the
/// un-retract) wins, so the reading stays out of views on both.
#[test]
fn unretract_converges_and_a_concurrent_retraction_survives() {
    let mut phone = HealthLog::new(dev(1));
    let id = phone
        .record(Metric::BodyTemperature, 39.9, Unit::Celsius, T0)
        .unwrap();
    phone.retract(id, "thermometer in tea", T0 + MIN).unwrap();
    let mut tablet = replica(&mut phone, dev(2));
    assert_eq!(
        phone.unretract(id).unwrap().reason,
        "thermometer in tea",
        "returns what it took back"
    );
    assert!(phone.retraction(id).is_none());
    assert_eq!(phone.readings(None, i64::MIN, i64::MAX, false).len(), 1);
    assert_eq!(phone.unretract(id), Err(LogError::NotRetracted(id)));
    // Merged alone, the un-retract reaches the tablet.
    let mut tablet2 = replica(&mut tablet, dev(3));
    tablet2.merge(&mut phone).unwrap();
    assert!(tablet2.retraction(id).is_none());
    // Concurrently, the tablet retracts it again: that retraction survives.
    tablet.retract(id, "still wrong", T0 + 2 * MIN).unwrap();
    phone.merge(&mut tablet).unwrap();
    tablet.merge(&mut phone).unwrap();
    assert_eq!(phone.view(), tablet.view());
    assert_eq!(phone.retraction(id).unwrap().reason, "still wrong");
    assert!(phone.readings(None, i64::MIN, i64::MAX, false).is_empty());
}

/// Staged readings (the device's journal keeps them durable) are visible at
/// once, stay visible across a merge, enter the document only at the fold,
/// as one change for all of them, and a replay of one already there adds
/// nothing.
#[test]
fn staged_readings_fold_into_one_change_and_survive_merges() {
    let mut a = HealthLog::new(dev(1));
    let mut b = replica(&mut a, dev(2));
    let before = a.unsaved().0.len();
    assert_eq!(before, 0);
    let staged: Vec<_> = (0..20)
        .map(|i| {
            a.stage(
                Metric::HeartRate,
                60.0 + i as f64,
                Unit::BeatsPerMinute,
                T0 + i * MIN,
            )
            .unwrap()
        })
        .collect();
    assert_eq!(a.len(), 20);
    assert_eq!(a.staged().len(), 20);
    assert!(a.unsaved().0.is_empty(), "nothing in the document yet");
    // A merge from another device keeps the staged readings, after its own.
    b.record(Metric::SpO2, 97.0, Unit::Percent, T0).unwrap();
    a.merge(&mut b).unwrap();
    assert_eq!(a.len(), 21);
    assert_eq!(a.staged().len(), 20);
    let heads = a.heads();
    assert_eq!(a.fold().unwrap(), 20);
    assert!(a.staged().is_empty());
    assert_ne!(a.heads(), heads);
    // What a stores next carries all twenty.
    let (chunk, _) = a.unsaved();
    let mut fresh = replica(&mut b, dev(3));
    fresh.apply(&chunk).unwrap();
    assert_eq!(fresh.len(), 21);
    assert_eq!(fresh.view().readings, a.view().readings);
    let mut doc = automerge::AutoCommit::load(&a.save()).unwrap();
    assert_eq!(
        doc.get_changes(&[]).len(),
        3,
        "creation, b's reading, one fold"
    );
    // Idempotent replay; the next id continues after the staged ones.
    assert!(!a.restage(staged[3]).unwrap());
    assert_eq!(a.len(), 21);
    let next = a
        .stage(Metric::HeartRate, 70.0, Unit::BeatsPerMinute, T0)
        .unwrap();
    assert_eq!(next.id.seq, 21);
    // Another device's reading is never restaged as this one's.
    let mut foreign = staged[0];
    foreign.id.device = dev(9);
    assert!(a.restage(foreign).is_err());
    a.unstage_last(1);
    assert_eq!(a.len(), 21);
    assert_eq!(
        a.stage(Metric::HeartRate, 70.0, Unit::BeatsPerMinute, T0)
            .unwrap()
            .id
            .seq,
        21
    );
}

/// Pins every lookup by id (`reading`, `annotate`'s and `retract`'s check,
/// `restage`'s idempotence) on a log as a device opens it: loaded from a
/// save followed by chunks, two devices' readings, some staged again from
/// a journal, one merge and one unstage later. Each answer must equal the
/// one a scan of `readings` gives, whether or not any lookup came before
/// (the lookup index may be built late).
#[test]
fn lookups_by_id_agree_with_the_readings_after_load() {
    let mut a = HealthLog::new(dev(1));
    let mut b = replica(&mut a, dev(2));
    for i in 0..30 {
        a.record(
            Metric::HeartRate,
            60.0 + i as f64,
            Unit::BeatsPerMinute,
            T0 + i * MIN,
        )
        .unwrap();
        b.record(Metric::SpO2, 95.0, Unit::Percent, T0 + i * MIN + 1)
            .unwrap();
    }
    let saved = a.save();
    a.mark_all_saved();
    a.merge(&mut b).unwrap();
    for i in 30..40 {
        a.record(Metric::HeartRate, 60.0, Unit::BeatsPerMinute, T0 + i * MIN)
            .unwrap();
    }
    let mut chunks = a.unsaved().0;
    let journal: Vec<_> = (40..45)
        .map(|i| {
            a.stage(Metric::HeartRate, 61.0, Unit::BeatsPerMinute, T0 + i * MIN)
                .unwrap()
        })
        .collect();
    let mut whole = saved.clone();
    whole.append(&mut chunks);
    let unknown = vigil_log::ReadingId {
        device: dev(1),
        seq: 999,
    };
    for lookup_first in [false, true] {
        let mut o = HealthLog::load(&whole, dev(1)).unwrap();
        assert_eq!(o.len(), 70);
        if lookup_first {
            assert!(o.reading(journal[0].id).is_none());
        }
        // Replay: each new once, then every one again (idempotent), and a
        // reading the document holds already is not staged twice.
        for r in &journal {
            assert!(o.restage(*r).unwrap());
        }
        for r in &journal {
            assert!(!o.restage(*r).unwrap());
        }
        let in_doc = a.readings(Some(Metric::HeartRate), i64::MIN, i64::MAX, true)[3];
        assert!(!o.restage(in_doc).unwrap());
        assert_eq!(o.len(), 75);
        assert_eq!(
            o.readings(None, i64::MIN, i64::MAX, true),
            a.readings(None, i64::MIN, i64::MAX, true)
        );
        let check = |o: &HealthLog| {
            for r in o.readings(None, i64::MIN, i64::MAX, true) {
                assert_eq!(o.reading(r.id), Some(r));
            }
            assert_eq!(o.reading(unknown), None);
        };
        check(&o);
        assert!(matches!(
            o.annotate(unknown, "x"),
            Err(LogError::UnknownReading(_))
        ));
        let other = b.readings(None, i64::MIN, i64::MAX, true)[0].id;
        o.annotate(other, "seen").unwrap();
        o.retract(journal[1].id, "wrong", T0).unwrap();
        // A merge rebuilds the view; staged readings stay, found by id.
        let mut c = replica(&mut b, dev(3));
        c.record(Metric::SpO2, 96.0, Unit::Percent, T0 + 99 * MIN)
            .unwrap();
        o.merge(&mut c).unwrap();
        assert_eq!(o.len(), 76);
        check(&o);
        o.unstage_last(2);
        assert_eq!(o.reading(journal[4].id), None);
        assert_eq!(o.reading(journal[2].id), Some(journal[2]));
        check(&o);
        assert_eq!(
            o.stage(Metric::HeartRate, 62.0, Unit::BeatsPerMinute, T0)
                .unwrap()
                .id
                .seq,
            journal[3].id.seq
        );
    }
}

/// A journal's replay at open, without a lookup per reading: readings
/// restaged with `restage_deferred` are checked for validity at once, and
/// against the document when the view is next needed. One the document
/// holds already is not shown twice nor staged; the new ones are staged,
/// in order, and ids continue after them, whether the view was built
/// before the replay, after it, or only after a merge came in between.
#[test]
fn deferred_restage_is_restage() {
    let mut a = HealthLog::new(dev(1));
    let mut b = replica(&mut a, dev(2));
    for i in 0..10 {
        a.record(Metric::HeartRate, 60.0, Unit::BeatsPerMinute, T0 + i * MIN)
            .unwrap();
    }
    let saved = a.save();
    // Three more staged (in a journal), not in the saved document.
    let journal: Vec<_> = (10..13)
        .map(|i| {
            a.stage(Metric::HeartRate, 61.0, Unit::BeatsPerMinute, T0 + i * MIN)
                .unwrap()
        })
        .collect();
    let held = a.readings(None, i64::MIN, i64::MAX, true)[4];
    b.record(Metric::SpO2, 97.0, Unit::Percent, T0).unwrap();
    for case in 0..3 {
        let mut o = HealthLog::load(&saved, dev(1)).unwrap();
        if case == 1 {
            assert_eq!(o.len(), 10);
        }
        o.restage_deferred(held).unwrap();
        for r in &journal {
            o.restage_deferred(*r).unwrap();
        }
        let mut foreign = journal[0];
        foreign.id.device = dev(9);
        assert!(o.restage_deferred(foreign).is_err());
        let mut bad = journal[0];
        bad.time_ms = -1;
        assert!(o.restage_deferred(bad).is_err());
        let mut expected = 13;
        if case == 2 {
            o.merge(&mut b).unwrap();
            expected += 1;
        }
        assert_eq!(o.len(), expected);
        assert_eq!(o.staged(), &journal[..]);
        for r in &journal {
            assert_eq!(o.reading(r.id), Some(*r));
        }
        assert_eq!(
            o.readings(Some(Metric::HeartRate), i64::MIN, i64::MAX, true),
            a.readings(Some(Metric::HeartRate), i64::MIN, i64::MAX, true)
        );
        let next = o
            .stage(Metric::HeartRate, 62.0, Unit::BeatsPerMinute, T0)
            .unwrap();
        assert_eq!(next.id.seq, 14);
        assert_eq!(o.fold().unwrap(), 4);
        assert_eq!(o.len(), expected + 1);
    }
}
