"""The local half of a resident's story through the Python binding: readings,
notes, a retraction, the check-in, summaries, a fever episode, the FHIR and
Automerge exports, and the shred, with a key store written in Python.

Conflicts need two devices of one vault, which only pair through a node:
the Rust test crates/vigil-ffi/tests/local.rs plays them.

Run as test_vault.py is (its docstring says how).
"""

import json
import os
import sys
import time

import pytest

if os.environ.get("VIGIL_FFI_PY"):
    sys.path.insert(0, os.environ["VIGIL_FFI_PY"])

import vigil_ffi as vf  # noqa: E402

MIN = 60_000
DAY_MS = 86_400_000


class AppKeys(vf.KeyStore):
    """What an app's Keychain / Keystore wrapper does, in a dict."""

    def __init__(self):
        self.key = None
        self.destroyed = 0

    def load(self):
        return self.key

    def store(self, root):
        if self.key is not None:
            raise vf.KeyStoreError.Occupied(detail="python")
        self.key = bytes(root)

    def destroy_key(self):
        self.destroyed += 1
        self.key = None


def now_ms():
    return int(time.time() * 1000)


def week(tmp_path, keys):
    """A week that began at midnight UTC two days ago (open reads the clock)."""
    now = now_ms()
    start = now - now % DAY_MS - 2 * DAY_MS
    return vf.Vault.create(str(tmp_path / "v"), start, 7, keys), start, now


def day_of(ms):
    return time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))


def test_a_resident_day(tmp_path):
    keys = AppKeys()
    vault, start, now = week(tmp_path, keys)

    def t(m):
        return start + DAY_MS + m * MIN

    hr = vault.record(vf.Metric.HEART_RATE, 72.0, t(0))
    vault.record(vf.Metric.BODY_TEMPERATURE, 37.0, t(1))
    vault.record(vf.Metric.BODY_TEMPERATURE, 38.1, t(10))
    vault.record(vf.Metric.BODY_TEMPERATURE, 38.6, t(15))
    wrong = vault.record(vf.Metric.HEART_RATE, 190.0, t(20))

    vault.annotate(hr, "after the stairs")
    vault.retract(wrong, "the strap was loose", t(30))
    day = day_of(t(0))
    vault.check_in(
        day,
        [
            vf.SymptomSeverity(symptom=vf.Symptom.COUGH, severity=vf.Severity.MILD),
            vf.SymptomSeverity(symptom=vf.Symptom.CHILLS, severity=vf.Severity.MODERATE),
        ],
        now,
    )
    answers = {c.symptom: c.severities for c in vault.check_in_of(day)}
    assert answers[vf.Symptom.COUGH] == [vf.Severity.MILD]
    assert answers[vf.Symptom.CHILLS] == [vf.Severity.MODERATE]
    assert answers[vf.Symptom.HEADACHE] == []

    heart = vault.readings(vf.Metric.HEART_RATE, None, None, False)
    assert [(d.reading.id, d.annotations) for d in heart] == [(hr, ["after the stairs"])]
    every = vault.readings(vf.Metric.HEART_RATE, None, None, True)
    assert every[1].retraction.reason == "the strap was loose"
    assert [d.reading.value for d in vault.readings(None, t(10), t(16), False)] == [38.1, 38.6]

    (temps,) = vault.daily_summaries(vf.Metric.BODY_TEMPERATURE, day)
    assert (temps.count, temps.min, temps.max) == (3, 37.0, 38.6)
    (heart_day,) = vault.daily_summaries(vf.Metric.HEART_RATE, None)
    assert (heart_day.count, heart_day.mean) == (1, 72.0)

    (episode,) = vault.fever_episodes()
    assert (episode.onset_ms, episode.end_ms, episode.peak_c) == (t(10), None, 38.6)
    assert vault.current_fever() == episode
    assert vault.evaluate_alerts(now) == 0
    assert vault.pending_alerts(now) == []
    assert vault.grants() == []
    assert vault.disclosures() == []
    assert vault.conflicts() == []

    bundle = json.loads(vault.export_fhir(None, False, now))
    assert bundle["resourceType"] == "Bundle"
    # Besides the readings: the anonymous Patient and the two check-in
    # answers (test_fhir.py checks both with a FHIR validator).
    assert [e["resource"]["resourceType"] for e in bundle["entry"]].count("Patient") == 1
    observations = [e["resource"] for e in bundle["entry"] if "valueQuantity" in e["resource"]]
    assert len(observations) == 4
    assert {o["resourceType"] for o in observations} == {"Observation"}
    assert sorted(o["valueQuantity"]["value"] for o in observations) == [37, 38.1, 38.6, 72]
    noted = next(o for o in observations if o["id"] == hr)
    assert noted["note"] == [{"text": "after the stairs"}]
    everything = json.loads(vault.export_fhir(None, True, now))
    assert [o["resource"].get("status") for o in everything["entry"]].count("entered-in-error") == 1

    doc = vault.export_automerge()
    assert isinstance(doc, bytes) and len(doc) > 0

    del vault
    vault = vf.Vault.open(str(tmp_path / "v"), keys)
    assert len(vault.readings(None, None, None, True)) == 5


def test_bad_input_raises_typed_errors(tmp_path):
    vault, start, now = week(tmp_path, AppKeys())
    rid = vault.record(vf.Metric.SP_O2, 97.0, start + MIN)
    with pytest.raises(vf.WriteError.Invalid) as e:
        vault.annotate("x" * (1 << 20), "note")
    assert e.value.code == "invalid-reading-id" and len(str(e.value)) < 200
    with pytest.raises(vf.WriteError.Invalid) as e:
        vault.annotate(rid, "")
    assert e.value.code == "empty-text"
    with pytest.raises(vf.WriteError.Invalid) as e:
        vault.retract(rid, "why", -1)
    assert e.value.code == "negative-time"
    with pytest.raises(vf.WriteError.Invalid) as e:
        vault.check_in("2026-02-30", [vf.SymptomSeverity(symptom=vf.Symptom.COUGH, severity=vf.Severity.MILD)], now)
    assert e.value.code == "invalid-day"
    with pytest.raises(vf.QueryError.Invalid) as e:
        vault.readings(None, now, now - 1, False)
    assert e.value.code == "invalid-range"
    with pytest.raises(vf.QueryError.Invalid) as e:
        vault.export_fhir(None, False, 2**63 - 1)
    assert e.value.code == "time-out-of-range"
    with pytest.raises(vf.WriteError.Invalid) as e:
        vault.resolve_conflict(day_of(now) + "/sneezing", "mild")
    assert e.value.code == "unknown-symptom"
    # Python refuses what the binding's types cannot carry before Rust sees it.
    with pytest.raises(ValueError):
        vault.check_in(day_of(now), [vf.SymptomSeverity(symptom="cough", severity=vf.Severity.MILD)], now)
    assert [d.reading.id for d in vault.readings(None, None, None, True)] == [rid]
    assert vault.readings(None, None, None, True)[0].annotations == []


def test_shred_then_every_call_raises_shredded(tmp_path):
    keys = AppKeys()
    vault, start, now = week(tmp_path, keys)
    rid = vault.record(vf.Metric.BODY_TEMPERATURE, 36.9, start + MIN)
    vault_id = vault.status().vault_id

    tomb = vault.shred_now(keys, now)
    assert (tomb.vault_id, tomb.shredded_at_ms) == (vault_id, now)
    assert (tomb.period_start_ms, tomb.period_end_ms) == (start, start + 7 * DAY_MS)
    assert tomb.receipt is None
    assert keys.destroyed == 1 and keys.key is None

    day = day_of(now)
    answer = [vf.SymptomSeverity(symptom=vf.Symptom.COUGH, severity=vf.Severity.MILD)]
    calls = {
        vf.WriteError.Shredded: [
            lambda: vault.record(vf.Metric.HEART_RATE, 70.0, now),
            lambda: vault.annotate(rid, "x"),
            lambda: vault.retract(rid, "x", now),
            lambda: vault.check_in(day, answer, now),
            lambda: vault.resolve_conflict(day + "/cough", "mild"),
            lambda: vault.resolve_conflict_with(rid, 0),
            lambda: vault.evaluate_alerts(now),
        ],
        vf.ReadError.Shredded: [
            vault.log,
            vault.status,
            vault.conflicts,
            vault.export_automerge,
        ],
        vf.QueryError.Shredded: [
            lambda: vault.check_in_of(day),
            lambda: vault.readings(None, None, None, True),
            lambda: vault.daily_summaries(None, None),
            vault.fever_episodes,
            vault.current_fever,
            lambda: vault.pending_alerts(now),
            vault.grants,
            vault.disclosures,
            lambda: vault.is_due(now),
            lambda: vault.export_fhir(None, True, now),
        ],
        vf.ShredError.Shredded: [lambda: vault.shred_now(keys, now)],
    }
    for error, fns in calls.items():
        for fn in fns:
            with pytest.raises(error):
                fn()
    assert keys.destroyed == 1

    with pytest.raises(vf.OpenError.Shredded) as e:
        vf.Vault.open(str(tmp_path / "v"), keys)
    assert e.value.vault_id == vault_id
