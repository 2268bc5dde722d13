"""The FHIR export through the Python binding, checked by an independent
validator: the R4B models of fhir.resources (PyPI; test-bindings installs
the pinned version in its venv) parse the whole Bundle, which refuses
unknown or misspelt elements, missing required ones, wrong types, ids and
dates. R4B's Bundle, Patient and Observation are R4's (R4B changed neither
resource). Then what the models cannot know: every Observation's subject is
the Bundle's one anonymous Patient, and the check-ins are there, coded.

Run as test_vault.py is (its docstring says how), with fhir.resources
installed.
"""

import json
import os
import sys
import time

from fhir.resources.R4B.bundle import Bundle

if os.environ.get("VIGIL_FFI_PY"):
    sys.path.insert(0, os.environ["VIGIL_FFI_PY"])

import vigil_ffi as vf  # noqa: E402

MIN = 60_000
DAY_MS = 86_400_000
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"


class AppKeys(vf.KeyStore):
    """A key store in a dict."""

    def __init__(self):
        self.key = None

    def load(self):
        return self.key

    def store(self, root):
        if self.key is not None:
            raise vf.KeyStoreError.Occupied(detail="python")
        self.key = bytes(root)

    def destroy_key(self):
        self.key = None


def day_of(ms):
    return time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))


# A value in range for every metric; a metric added to the binding without
# one here fails the test rather than going unexported unseen.
VALUES = {
    vf.Metric.BODY_TEMPERATURE: 37.9,
    vf.Metric.HEART_RATE: 72.0,
    vf.Metric.SP_O2: 97.0,
    vf.Metric.RESPIRATORY_RATE: 15.0,
    vf.Metric.STEPS: 1200.0,
}
LOINC_OF = {
    vf.Metric.BODY_TEMPERATURE: "8310-5",
    vf.Metric.HEART_RATE: "8867-4",
    vf.Metric.SP_O2: "59408-5",
    vf.Metric.RESPIRATORY_RATE: "9279-1",
    vf.Metric.STEPS: "55423-8",
}


def make_vault(tmp_path):
    """A week begun two days ago: a reading of every metric yesterday (the
    temperature retracted), and check-ins yesterday and today, today's
    written one answer at a time."""
    now = int(time.time() * 1000)
    start = now - now % DAY_MS - 2 * DAY_MS
    vault = vf.Vault.create(str(tmp_path / "v"), start, 7, AppKeys())
    assert set(VALUES) == set(vf.Metric)
    ids = {}
    for i, (metric, value) in enumerate(VALUES.items()):
        ids[metric] = vault.record(metric, value, start + DAY_MS + i * MIN)
    vault.retract(ids[vf.Metric.BODY_TEMPERATURE], "thermometer in tea", start + DAY_MS + 10 * MIN)
    yesterday, today = day_of(start + DAY_MS), day_of(now)
    every = [
        vf.SymptomSeverity(symptom=s, severity=[vf.Severity.NONE, vf.Severity.MILD, vf.Severity.MODERATE, vf.Severity.SEVERE][i % 4])
        for i, s in enumerate(vf.Symptom)
    ]
    vault.check_in(yesterday, every, now)
    vault.check_in(today, [vf.SymptomSeverity(symptom=vf.Symptom.COUGH, severity=vf.Severity.MILD)], now)
    vault.check_in(today, [vf.SymptomSeverity(symptom=vf.Symptom.CHILLS, severity=vf.Severity.SEVERE)], now)
    return vault, ids, now, yesterday, today


def validated(text):
    """The Bundle parsed by fhir.resources (raises on any R4 model error),
    and the same as plain JSON."""
    model = Bundle.parse_raw(text)
    assert model.type == "collection"
    return model, json.loads(text)


def subject_checked(model):
    """The Patient's full URL, after checking there is one Patient, that it
    holds nothing that could identify anyone, and that every Observation's
    subject resolves to it; and the Observations."""
    patients = [e for e in model.entry if e.resource.resource_type == "Patient"]
    assert len(patients) == 1
    patient = patients[0]
    assert patient.fullUrl.startswith("urn:uuid:")
    # Anonymous: the model's every element but the id is absent.
    fields = {k for k, v in patient.resource.dict(exclude_none=True).items()}
    assert fields == {"resourceType", "id"}, fields
    observations = [e.resource for e in model.entry if e.resource.resource_type == "Observation"]
    assert len(observations) + 1 == len(model.entry)
    urls = {e.fullUrl: e.resource for e in model.entry}
    assert len(urls) == len(model.entry), "full URLs are unique"
    for o in observations:
        assert o.subject is not None, o.id
        assert urls[o.subject.reference] is patient.resource, o.id
    return patient.fullUrl, observations


def coding(concept, system):
    return next((c.code for c in concept.coding or [] if c.system == system), None)


def test_the_bundle_is_valid_r4_with_a_subject_and_the_check_ins(tmp_path):
    vault, ids, now, yesterday, today = make_vault(tmp_path)

    model, raw = validated(vault.export_fhir(None, False, now))
    assert "total" not in raw, "bdl-1: total only in a search or history"
    _, observations = subject_checked(model)

    readings = [o for o in observations if coding(o.code, LOINC)]
    assert sorted(coding(o.code, LOINC) for o in readings) == sorted(
        LOINC_OF[m] for m in VALUES if m != vf.Metric.BODY_TEMPERATURE
    ), "every metric, less the retracted temperature"
    assert {o.status for o in readings} == {"final"}

    answers = [o for o in observations if o.category[0].coding[0].code == "survey"]
    assert len(answers) == len(list(vf.Symptom)) + 2
    assert {str(o.effectiveDateTime) for o in answers} == {yesterday, today}
    assert {o.status for o in answers} == {"final"}
    for o in answers:
        assert o.valueCodeableConcept is not None and coding(o.valueCodeableConcept, SNOMED), o.id
    by_key = {(str(o.effectiveDateTime), coding(o.code, SNOMED)): coding(o.valueCodeableConcept, SNOMED) for o in answers}
    cough, chills, sore_throat = "49727002", "43724002", "267102003"
    absent, mild, moderate, severe = "2667000", "255604002", "6736007", "24484000"
    assert by_key[(yesterday, cough)] == absent
    assert by_key[(yesterday, sore_throat)] == mild
    assert by_key[(today, cough)] == mild
    assert by_key[(today, chills)] == severe
    assert moderate in by_key.values()
    # The one symptom SNOMED CT has no single concept for keeps its text.
    assert any(o.code.text == "Loss of taste or smell" for o in answers)

    # A one-metric export: that metric's readings, still with a subject.
    model, _ = validated(vault.export_fhir(vf.Metric.HEART_RATE, False, now))
    _, observations = subject_checked(model)
    assert [coding(o.code, LOINC) for o in observations] == ["8867-4"]


def test_a_retracted_reading_is_valid_entered_in_error_with_its_subject(tmp_path):
    vault, ids, now, _, _ = make_vault(tmp_path)
    model, _ = validated(vault.export_fhir(None, True, now))
    _, observations = subject_checked(model)
    (gone,) = [o for o in observations if o.id == ids[vf.Metric.BODY_TEMPERATURE]]
    assert gone.status == "entered-in-error"
    assert any("thermometer in tea" in n.text for n in gone.note)
    assert len([o for o in observations if coding(o.code, LOINC)]) == len(VALUES)
