"""A resident's story through the Python binding, against a real node.

The test starts `vigil-node serve` (the binary named by VIGIL_NODE_BIN),
registers a resident with `vigil-node residents add`, and then, with the
root keys in a key store written in Python: a phone enrols with the ticket,
a tablet pairs through the node, the wristband's GATT bytes are recorded, a
fever reaches the node's inbox (`vigil-node alerts --json`), sync carries
the readings both ways, and the phone shreds with the node (a verified
receipt); afterwards every call raises Shredded, and the tablet learns of
the shred at its next sync.

    cargo build -p vigil-cli --bins
    VIGIL_NODE_BIN=target/debug/vigil-node python -m pytest crates/vigil-ffi/python
"""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

if os.environ.get("VIGIL_FFI_PY"):
    sys.path.insert(0, os.environ["VIGIL_FFI_PY"])

import vigil_ffi as vf  # noqa: E402

NODE_BIN = os.environ.get("VIGIL_NODE_BIN")
TIMEOUT_MS = 5_000
DAY_MS = 86_400_000
LABEL = "Ana, flat 12B"


def temperature(tenths_c):
    """A Temperature Measurement (0x2A1C) value: flags 0 (Celsius, no time
    stamp), then an IEEE-11073 FLOAT, mantissa `tenths_c`, exponent -1."""
    return bytes([0x00]) + tenths_c.to_bytes(3, "little") + bytes([0xFF])


def fahrenheit(tenths_f):
    """The same in °F (flags bit 0 set)."""
    return bytes([0x01]) + tenths_f.to_bytes(3, "little") + bytes([0xFF])


class AppKeys(vf.KeyStore):
    """The app's key store: where Android's Keystore or iOS's Keychain
    would hold the root, here one attribute."""

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


def now_ms():
    return int(time.time() * 1000)


class RunningNode:
    """`vigil-node serve` on a free loopback port, and its admin commands."""

    def __init__(self, data, log):
        self.data = str(data)
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [NODE_BIN, "serve", "--data", self.data, "--listen", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        lines = queue.Queue()

        def pump():
            for line in self.proc.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        self.code = None
        deadline = time.monotonic() + 60
        while self.code is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                raise RuntimeError("vigil-node serve did not start; see " + str(log))
            if line.startswith("enrolment code: "):
                self.code = line[len("enrolment code: "):]

    def admin(self, *args):
        out = subprocess.run(
            [NODE_BIN, *args, "--data", self.data],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return out.stdout

    def add_resident(self, label):
        added = json.loads(self.admin("residents", "add", "--label", label, "--json", "--no-qr"))
        return added["ticket"]

    def alerts(self):
        return json.loads(self.admin("alerts", "--json"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def node(tmp_path):
    if not NODE_BIN:
        pytest.skip(
            "VIGIL_NODE_BIN is not set: build the node (cargo build -p vigil-cli --bins) "
            "and set VIGIL_NODE_BIN=target/debug/vigil-node to run the story"
        )
    n = RunningNode(tmp_path / "node", tmp_path / "node.log")
    yield n
    n.stop()


def test_two_devices_a_fever_and_a_shred_through_a_real_node(node, tmp_path):
    now = now_ms()
    start = now - 3_600_000
    ticket = node.add_resident(LABEL)
    assert ticket.startswith("vigil-ticket1/")

    # The phone: its vault, a reading from the wristband, the enrolment.
    phone_keys = AppKeys()
    phone = vf.Vault.create(str(tmp_path / "phone"), start, 7, phone_keys)
    assert len(phone_keys.key) == 32
    [r] = phone.record_gatt(0x2A1C, temperature(366), now - 1_800_000)
    assert (r.metric, r.value) == (vf.Metric.BODY_TEMPERATURE, 36.6)
    phone_node = vf.Node.connect(ticket, TIMEOUT_MS)
    assert phone_node.has_ticket()
    enrolled = phone.enrol(phone_node, None, now)
    assert enrolled.grant.label == LABEL
    assert enrolled.grant.rule == vf.default_fever_rule()
    assert enrolled.alerts_error is None

    # The tablet pairs through the node, from the node's plain code.
    tablet_node = vf.Node.connect(node.code, TIMEOUT_MS)
    assert not tablet_node.has_ticket()
    assert tablet_node.enrolment_code() == phone_node.enrolment_code()
    joiner = vf.Joiner()
    with pytest.raises(vf.SyncError.NoOffer):
        joiner.fetch_offer(tablet_node)
    with pytest.raises(vf.SyncError.BadJoinerCode):
        phone.offer_pairing(phone_node, joiner.joiner_code()[:-1] + "x", now)
    phone_code = phone.offer_pairing(phone_node, joiner.joiner_code(), now)
    tablet_code = joiner.fetch_offer(tablet_node)
    print(f"phone shows {phone_code}, tablet shows {tablet_code}")
    assert phone_code == tablet_code
    tablet_keys = AppKeys()
    tablet_dir = str(tmp_path / "tablet")
    tablet = joiner.confirm(tablet_node, tablet_dir, tablet_keys)
    assert tablet.status().vault_id == phone.status().vault_id
    assert [x.value for x in tablet.log()] == [36.6]

    # A fever on the wristband (one packet in °F): the alert reaches the inbox.
    phone.record_gatt(0x2A1C, temperature(386), now - 240_000)
    [f] = phone.record_gatt(0x2A1C, fahrenheit(1021), now - 120_000)
    assert 38.8 < f.value < 39.0  # 102.1 °F
    sent = phone.send_alerts(phone_node, now)
    assert (sent.delivered, sent.pending) == (1, 0)
    assert phone.pending_alerts(now) == []
    inbox = node.alerts()
    print("node inbox:", inbox)
    assert len(inbox) == 1
    assert inbox[0]["label"] == LABEL
    assert inbox[0]["what"] == "fever started"

    # Staff acknowledge it, with a name and a note: the app learns when,
    # never who or what they wrote.
    [delivered] = phone.delivered_alerts()
    assert isinstance(delivered.kind, vf.AlertKind.STARTED) and delivered.staff_acked_ms is None
    node.admin("alerts", "ack", inbox[0]["id"], "--by", "Mei", "--note", "called her")
    status = phone.refresh_alert_status(phone_node)
    assert (status.asked, status.acknowledged, status.unknown) == (1, 1, 0)
    [delivered] = phone.delivered_alerts()
    assert abs(delivered.staff_acked_ms - now_ms()) < 60_000
    assert "Mei" not in repr(phone.delivered_alerts())

    # Sync both ways.
    phone.sync(phone_node)
    report = tablet.sync(tablet_node)
    # The phone's changes come as bundles or, once the node's bytes pass the
    # relay snapshot rule, as a snapshot that covers them.
    assert report.received >= 1 or report.received_snapshot
    assert sorted(x.value for x in tablet.log())[-2:] == [38.6, f.value]
    tablet.record_gatt(0x2A1C, temperature(371), now - 60_000)
    tablet.sync(tablet_node)
    phone.sync(phone_node)
    assert len(phone.log()) == 4 and len(tablet.log()) == 4

    # Both devices answer today's check-in offline, differently: after a
    # sync each sees the conflict, with the device behind each value.
    day = time.strftime("%Y-%m-%d", time.gmtime(now / 1000))
    phone.check_in(day, [vf.SymptomSeverity(symptom=vf.Symptom.COUGH, severity=vf.Severity.MILD)], now)
    tablet.check_in(day, [vf.SymptomSeverity(symptom=vf.Symptom.COUGH, severity=vf.Severity.SEVERE)], now)
    tablet.sync(tablet_node)
    phone.sync(phone_node)
    [conflict] = phone.conflicts()
    assert isinstance(conflict, vf.Conflict.CHECK_IN)
    assert conflict.key == f"{day}/cough"
    devices = {c.severity: c.device_id for c in conflict.values}
    assert devices == {
        vf.Severity.MILD: phone.status().device_id,
        vf.Severity.SEVERE: tablet.status().device_id,
    }
    phone.resolve_conflict(conflict.key, "moderate")
    phone.sync(phone_node)
    tablet.sync(tablet_node)
    assert tablet.conflicts() == []
    [answer] = [a for a in tablet.check_in_of(day) if a.severities]
    assert (answer.symptom, answer.severities) == (vf.Symptom.COUGH, [vf.Severity.MODERATE])

    # Exports for the resident's doctor: FHIR R4 and the Automerge document.
    bundle = json.loads(phone.export_fhir(None, False, now))
    assert bundle["resourceType"] == "Bundle"
    observations = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    readings = [o for o in observations if "valueQuantity" in o]
    assert len(readings) == 4
    assert {o["valueQuantity"]["code"] for o in readings} == {"Cel"}
    # The check-in answer, as resolved: cough (SNOMED CT 49727002), moderate.
    [answer] = [o for o in observations if "valueCodeableConcept" in o]
    assert (answer["code"]["coding"][0]["code"], answer["status"]) == ("49727002", "final")
    assert answer["valueCodeableConcept"]["coding"][0]["code"] == "6736007"
    doc = phone.export_automerge()
    assert len(doc) > 0
    print(f"exports: FHIR bundle of {len(observations)} observations, Automerge document of {len(doc)} bytes")

    # The resident shreds with the node: its signed receipt, the key gone.
    shred = phone.shred_with_node(phone_node, phone_keys, now)
    print("shred:", shred)
    assert shred.receipt is not None and not shred.receipt_invalid
    assert shred.receipt.grants == 1 and shred.receipt.blobs > 0
    assert len(shred.receipt.devices) == 2
    assert phone_keys.key is None
    with pytest.raises(vf.ReadError.Shredded):
        phone.log()
    with pytest.raises(vf.WriteError.Shredded):
        phone.record(vf.Metric.HEART_RATE, 70.0, now)
    with pytest.raises(vf.SyncError.Shredded):
        phone.sync(phone_node)
    with pytest.raises(vf.ShredError.Shredded):
        phone.shred_with_node(phone_node, phone_keys, now)

    # The tablet hears of it at its next sync and shreds its copy.
    with pytest.raises(vf.SyncError.ShreddedElsewhere):
        tablet.sync(tablet_node)
    with pytest.raises(vf.ReadError.Shredded):
        tablet.log()
    with pytest.raises(vf.OpenError.Shredded):
        vf.Vault.open(tablet_dir, tablet_keys)
    assert tablet_keys.key is None


def test_hostile_codes_are_typed_errors(node):
    for code in ["", "garbage", "vigil-ticket1/garbage", "x" * (1 << 20), node.code + "0"]:
        with pytest.raises(vf.NetError.BadEnrolmentCode):
            vf.Node.connect(code, TIMEOUT_MS)
    ticket = node.add_resident("Ben")
    # The secret mistyped by one character: still a ticket, refused only by
    # the node when it is used.
    flipped = ticket[:-1] + ("0" if ticket[-1] != "0" else "1")
    n = vf.Node.connect(flipped, TIMEOUT_MS)
    keys = AppKeys()
    now = now_ms()
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        vault = vf.Vault.create(os.path.join(d, "v"), now - 3_600_000, 7, keys)
        with pytest.raises(vf.SyncError.Refused) as e:
            vault.enrol(n, None, now)
        assert e.value.code == "ticket-unknown"
        with pytest.raises(vf.SyncError.InvalidRule):
            rule = vf.default_fever_rule()
            rule.threshold_c = float("nan")
            vault.enrol(n, rule, now)
        for bad in ["", "garbage", "é" * 100_000, "vigil-join1/" + "a" * 63 + "é" + "a" * 7]:
            with pytest.raises(vf.SyncError.BadJoinerCode):
                vault.offer_pairing(n, bad, now)
