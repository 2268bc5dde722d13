"""The Python binding of vigil-ffi, driven with a key store written in Python.

Run against the wheel maturin builds (README "Use Vigil from an app"), or
against a directory holding a generated vigil_ffi.py with libvigil_ffi.so
next to it: VIGIL_FFI_PY=<dir> pytest <this file>.
"""

import math
import os
import sys
import time

import pytest

if os.environ.get("VIGIL_FFI_PY"):
    sys.path.insert(0, os.environ["VIGIL_FFI_PY"])

import vigil_ffi as vf  # noqa: E402

# Temperature Measurement, Celsius, no time stamp: FLOAT 376 x 10^-1 = 37.6.
TEMP_37_6 = bytes([0x00, 0x78, 0x01, 0x00, 0xFF])
# The same value as the FLOAT's NaN (mantissa 0x7FFFFF).
TEMP_NAN = bytes([0x00, 0xFF, 0xFF, 0x7F, 0x00])
DAY_MS = 86_400_000


class AppKeys(vf.KeyStore):
    """What an app's Keychain / Keystore wrapper does, in a dict."""

    def __init__(self):
        self.key = None
        self.misbehave = None

    def load(self):
        if self.misbehave == "raise":
            raise RuntimeError("the platform keystore crashed")
        if self.misbehave == "garbage":
            return b"not a key"
        return self.key

    def store(self, root):
        if self.key is not None:
            raise vf.KeyStoreError.Occupied(detail="python")
        self.key = bytes(root)

    def destroy_key(self):
        self.key = None


def now_ms():
    return int(time.time() * 1000)


def test_create_record_gatt_reopen(tmp_path):
    keys = AppKeys()
    start = now_ms() - DAY_MS
    vault = vf.Vault.create(str(tmp_path / "v"), start, 7, keys)
    assert len(keys.key) == 32

    got = vault.record_gatt(0x2A1C, TEMP_37_6, start + 60_000)
    assert [(r.metric, r.value, r.time_ms) for r in got] == [
        (vf.Metric.BODY_TEMPERATURE, 37.6, start + 60_000)
    ]
    vault.record(vf.Metric.HEART_RATE, 72.0, start + 120_000)
    status = vault.status()
    assert status.readings == 2
    assert status.period_end_ms == start + 7 * DAY_MS
    del vault

    vault = vf.Vault.open(str(tmp_path / "v"), keys)
    assert [r.metric for r in vault.log()] == [vf.Metric.BODY_TEMPERATURE, vf.Metric.HEART_RATE]
    assert vault.status().vault_id == status.vault_id


def test_bad_readings_are_typed_errors_and_record_nothing(tmp_path):
    keys = AppKeys()
    start = now_ms() - DAY_MS
    vault = vf.Vault.create(str(tmp_path / "v"), start, 7, keys)
    with pytest.raises(vf.WriteError.Invalid) as e:
        vault.record(vf.Metric.BODY_TEMPERATURE, math.nan, start + 1)
    assert e.value.code == "not-finite"
    with pytest.raises(vf.WriteError.Gatt) as e:
        vault.record_gatt(0x2A1C, TEMP_NAN, start + 1)
    assert e.value.code == "nan"
    with pytest.raises(vf.WriteError.Gatt) as e:
        vault.record_gatt(0x2A1C, TEMP_37_6 + b"\x00", start + 1)
    assert e.value.code == "trailing-bytes"
    assert vault.log() == []


def test_a_key_store_that_raises_or_returns_garbage(tmp_path):
    keys = AppKeys()
    start = now_ms() - DAY_MS
    vault = vf.Vault.create(str(tmp_path / "v"), start, 7, keys)
    vault.record_gatt(0x2A1C, TEMP_37_6, start + 1)
    del vault

    keys.misbehave = "raise"
    with pytest.raises(vf.OpenError.KeyStore) as e:
        vf.Vault.open(str(tmp_path / "v"), keys)
    assert "crashed" in str(e.value)
    keys.misbehave = "garbage"
    with pytest.raises(vf.OpenError.KeyStore) as e:
        vf.Vault.open(str(tmp_path / "v"), keys)
    assert "9 bytes" in str(e.value)

    keys.misbehave = None
    assert len(vf.Vault.open(str(tmp_path / "v"), keys).log()) == 1
