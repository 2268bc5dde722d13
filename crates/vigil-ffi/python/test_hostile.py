"""The Python binding played by a buggy or hostile app (issue 16, "Bad input").

Non-finite, denormal and out-of-range numbers, extreme times, 10 MB GATT
packets, 1 MB / NUL-bearing / non-UTF-8 directory strings, a key store in
Python that raises the wrong exception or returns garbage, degenerate
periods, one Vault shared by threads and one directory opened twice. Each
gets a typed exception, never a crash or a hang, and loses nothing.
Run as test_vault.py is (its docstring says how).
"""

import math
import os
import sys
import threading
import time

import pytest

if os.environ.get("VIGIL_FFI_PY"):
    sys.path.insert(0, os.environ["VIGIL_FFI_PY"])

import vigil_ffi as vf  # noqa: E402

TEMP_37_6 = bytes([0x00, 0x78, 0x01, 0x00, 0xFF])
DAY_MS = 86_400_000
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
U32_MAX = 2**32 - 1
TEN_MB = 10 * 1024 * 1024


class AppKeys(vf.KeyStore):
    """An app's key store in a dict, which can misbehave on demand."""

    def __init__(self):
        self.key = None
        self.load_returns = None  # a callable giving what load returns instead
        self.raises = None  # an exception every call raises

    def load(self):
        if self.raises is not None:
            raise self.raises
        if self.load_returns is not None:
            return self.load_returns()
        return self.key

    def store(self, root):
        if self.raises is not None:
            raise self.raises
        if self.key is not None:
            raise vf.KeyStoreError.Occupied(detail="python")
        self.key = bytes(root)

    def destroy_key(self):
        if self.raises is not None:
            raise self.raises
        self.key = None


def now_ms():
    return int(time.time() * 1000)


def new_vault(tmp_path, keys=None):
    keys = keys or AppKeys()
    start = now_ms() - DAY_MS
    vault = vf.Vault.create(str(tmp_path / "v"), start, 7, keys)
    return vault, keys, start


def reopen(tmp_path, keys):
    return vf.Vault.open(str(tmp_path / "v"), keys)


METRICS = [
    vf.Metric.BODY_TEMPERATURE,
    vf.Metric.HEART_RATE,
    vf.Metric.SP_O2,
    vf.Metric.RESPIRATORY_RATE,
    vf.Metric.STEPS,
]


def test_non_finite_denormal_and_huge_values(tmp_path):
    vault, keys, start = new_vault(tmp_path)
    vault.record(vf.Metric.HEART_RATE, 70.0, start + 1)
    denormal = math.ulp(0.0)  # 5e-324, the smallest denormal
    assert 0 < denormal < sys.float_info.min
    for m in METRICS:
        for v in (math.nan, -math.nan, math.inf, -math.inf):
            with pytest.raises(vf.WriteError.Invalid) as e:
                vault.record(m, v, start + 2)
            assert e.value.code == "not-finite", (m, v)
        for v in (sys.float_info.max, -sys.float_info.max, 1e300):
            with pytest.raises(vf.WriteError.Invalid) as e:
                vault.record(m, v, start + 2)
            assert e.value.code == "out-of-range", (m, v)
        # Tiny positive numbers are under every range but steps' (0
        # counts), where they are not whole counts.
        tiny = "fractional-count" if m == vf.Metric.STEPS else "out-of-range"
        for v, want in ((denormal, tiny), (sys.float_info.min, tiny), (-denormal, "out-of-range")):
            with pytest.raises(vf.WriteError.Invalid) as e:
                vault.record(m, v, start + 2)
            assert e.value.code == want, (m, v)
    # Not a number at all: refused in Python before the call.
    with pytest.raises(TypeError):
        vault.record(vf.Metric.HEART_RATE, "72", start + 2)
    assert vault.status().readings == 1
    # The last exception's traceback holds the vault (its method's `self`):
    # dropped with it, so that the vault closes.
    del e, vault
    assert len(reopen(tmp_path, keys).log()) == 1


def test_extreme_times(tmp_path):
    vault, keys, start = new_vault(tmp_path)
    with pytest.raises(vf.WriteError.Invalid) as e:
        vault.record(vf.Metric.HEART_RATE, 70.0, I64_MIN)
    assert e.value.code == "negative-time"
    with pytest.raises(vf.WriteError.Invalid) as e:
        vault.record_gatt(0x2A1C, TEMP_37_6, I64_MIN)
    assert e.value.code == "negative-time"
    # Past i64: the binding refuses it before the call.
    for t in (2**63, -(2**63) - 1, 2**100):
        with pytest.raises((ValueError, OverflowError)):
            vault.record(vf.Metric.HEART_RATE, 70.0, t)
    # Any time from 0 on is kept, and listed.
    vault.record(vf.Metric.HEART_RATE, 71.0, start)
    vault.record(vf.Metric.HEART_RATE, 72.0, 0)
    vault.record(vf.Metric.HEART_RATE, 73.0, I64_MAX)
    assert vault.record_gatt(0x2A1C, TEMP_37_6, I64_MAX)[0].time_ms == I64_MAX

    def check(v):
        assert [r.time_ms for r in v.log()] == [0, start, I64_MAX, I64_MAX]
        assert v.status().readings == 4

    check(vault)
    del e, vault
    check(reopen(tmp_path, keys))


def test_huge_empty_and_unknown_gatt_packets(tmp_path):
    vault, keys, start = new_vault(tmp_path)
    vault.record_gatt(0x2A1C, TEMP_37_6, start + 1)
    packets = []
    for c in (0x2A1C, 0x2A37, 0x2A5F, 0x0000, 0xFFFF):
        packets += [(c, b""), (c, bytes(TEN_MB)), (c, b"\xff" * TEN_MB)]
    packets.append((0x2A1C, TEMP_37_6 + bytes(TEN_MB)))
    for c, b in packets:
        with pytest.raises(vf.WriteError.Gatt) as e:
            vault.record_gatt(c, b, start + 2)
        assert e.value.code and len(str(e.value)) < 1000, hex(c)
    # Not a u16, or not bytes: refused in Python before the call.
    for c in (-1, 0x10000):
        with pytest.raises((ValueError, OverflowError)):
            vault.record_gatt(c, TEMP_37_6, start + 2)
    with pytest.raises(TypeError):
        vault.record_gatt(0x2A1C, "00780100ff", start + 2)
    assert vault.status().readings == 1
    del e, vault
    assert len(reopen(tmp_path, keys).log()) == 1


def test_hostile_directory_strings(tmp_path):
    keys = AppKeys()
    start = now_ms() - DAY_MS
    a_file = tmp_path / "a-file"
    a_file.write_bytes(b"the app's own data")
    dirs = [
        str(tmp_path / ("d" * (1 << 20))),
        str(tmp_path / ("n" * 300)),
        str(tmp_path / "va\0ult"),
        "\0",
        str(a_file / "vault"),
        str(a_file),
        "/proc/vigil-vault",
    ]
    for d in dirs:
        with pytest.raises((vf.OpenError.Storage, vf.OpenError.NotEmpty)):
            vf.Vault.create(d, start, 7, keys)
        with pytest.raises((vf.OpenError.Storage, vf.OpenError.NotAVault)):
            vf.Vault.open(d, keys)
    # A lone surrogate is not UTF-8: refused in Python before the call.
    with pytest.raises(UnicodeEncodeError):
        vf.Vault.create(str(tmp_path / "\ud800"), start, 7, keys)
    assert keys.key is None
    assert a_file.read_bytes() == b"the app's own data"


def test_an_empty_directory_string_writes_nothing_in_the_working_directory(tmp_path, monkeypatch):
    cwd = tmp_path / "app"
    cwd.mkdir()
    (cwd / "settings.json").write_text("{}")
    monkeypatch.chdir(cwd)
    keys = AppKeys()
    with pytest.raises(vf.OpenError.Storage) as e:
        vf.Vault.create("", now_ms(), 7, keys)
    assert "empty" in str(e.value)
    with pytest.raises((vf.OpenError.Storage, vf.OpenError.NotAVault)):
        vf.Vault.open("", keys)
    assert sorted(p.name for p in cwd.iterdir()) == ["settings.json"]
    assert keys.key is None


def test_key_store_raising_the_wrong_exception(tmp_path):
    vault, keys, start = new_vault(tmp_path)
    vault.record(vf.Metric.HEART_RATE, 64.0, start + 1)
    del vault
    for exc in (RuntimeError("keystore crashed"), KeyError("k"), ZeroDivisionError(), MemoryError()):
        keys.raises = exc
        with pytest.raises(vf.OpenError.KeyStore) as e:
            reopen(tmp_path, keys)
        assert isinstance(e.value.source, vf.KeyStoreError.Unexpected) or "unexpected" in str(
            e.value
        ), repr(e.value)
    keys.raises = RuntimeError("keystore crashed")
    fresh = AppKeys()
    fresh.raises = RuntimeError("keystore crashed")
    with pytest.raises(vf.OpenError.KeyStore):
        vf.Vault.create(str(tmp_path / "fresh"), start, 7, fresh)
    keys.raises = None
    assert len(reopen(tmp_path, keys).log()) == 1
    # The failed create left nothing in the way.
    fresh.raises = None
    vf.Vault.create(str(tmp_path / "fresh"), start, 7, fresh)
    assert len(fresh.key) == 32


# ctypes reports the swallowed BaseException as an unraisable exception:
# expected here, it is what these tests play.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3), GeneratorExit()])
def test_key_store_raising_a_base_exception(tmp_path, exc):
    """Not an Exception: UniFFI's generated callback does not catch it, so
    ctypes swallows it and Rust sees success. Vigil must not believe it."""
    keys = AppKeys()
    keys.raises = exc
    start = now_ms() - DAY_MS
    with pytest.raises(vf.OpenError.KeyStore):
        vf.Vault.create(str(tmp_path / "v"), start, 7, keys)
    keys.raises = None
    vault = vf.Vault.create(str(tmp_path / "v"), start, 7, keys)
    vault.record(vf.Metric.HEART_RATE, 64.0, start + 1)
    del vault
    keys.raises = exc
    with pytest.raises(vf.OpenError.KeyStore):
        reopen(tmp_path, keys)
    keys.raises = None
    assert len(reopen(tmp_path, keys).log()) == 1


# ctypes reports the swallowed BaseException as an unraisable exception:
# expected here, it is what these tests play.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_shred_with_a_key_store_raising_a_base_exception(tmp_path):
    keys = AppKeys()
    # A week that ended yesterday: opening it shreds it.
    vf.Vault.create(str(tmp_path / "v"), now_ms() - 8 * DAY_MS, 7, keys)

    class Stubborn(AppKeys):
        def destroy_key(self):
            raise KeyboardInterrupt()

    stubborn = Stubborn()
    stubborn.key = keys.key
    with pytest.raises(vf.OpenError.Shred) as e:
        reopen(tmp_path, stubborn)
    assert "still holds" in str(e.value)
    assert stubborn.key is not None
    with pytest.raises(vf.OpenError.Shredded):
        reopen(tmp_path, keys)
    assert keys.key is None


@pytest.mark.parametrize(
    "garbage, expected",
    [
        (lambda: b"", vf.OpenError.KeyStore),
        (lambda: b"\x00" * 31, vf.OpenError.KeyStore),
        (lambda: b"\xa5" * (1 << 20), vf.OpenError.KeyStore),
        # 32 bytes, but not this vault's key.
        (lambda: b"\x07" * 32, vf.OpenError.WrongKey),
        # No key at all.
        (lambda: None, vf.OpenError.MissingKey),
        # Not bytes: a str (UniFFI's generated callback copies len(str)
        # bytes of its internal buffer: another key, refused), an int, a
        # list, a dict.
        (lambda: "0" * 32, (vf.OpenError.KeyStore, vf.OpenError.WrongKey)),
        (lambda: 42, vf.OpenError.KeyStore),
        (lambda: [1] * 32, vf.OpenError.KeyStore),
        (lambda: {"key": b"0" * 32}, vf.OpenError.KeyStore),
    ],
)
def test_key_store_returning_garbage(tmp_path, garbage, expected):
    vault, keys, start = new_vault(tmp_path)
    vault.record(vf.Metric.SP_O2, 97.0, start + 1)
    del vault
    keys.load_returns = garbage
    with pytest.raises(expected):
        reopen(tmp_path, keys)
    keys.load_returns = None
    assert len(reopen(tmp_path, keys).log()) == 1


def test_degenerate_periods(tmp_path):
    keys = AppKeys()
    d = str(tmp_path / "v")
    now = now_ms()
    for start, days in [(now, 0), (I64_MAX, 7), (I64_MAX, 0), (I64_MAX, U32_MAX)]:
        with pytest.raises(vf.OpenError.InvalidPeriod):
            vf.Vault.create(d, start, days, keys)
    for start, days in [(now, -1), (now, U32_MAX + 1), (2**63, 7)]:
        with pytest.raises((ValueError, OverflowError)):
            vf.Vault.create(d, start, days, keys)
    assert keys.key is None
    vault = vf.Vault.create(d, now - DAY_MS, U32_MAX, keys)
    assert vault.status().period_end_ms == now - DAY_MS + U32_MAX * DAY_MS
    vault.record(vf.Metric.STEPS, 1000.0, now)
    del vault
    assert len(vf.Vault.open(d, keys).log()) == 1


def test_one_vault_shared_by_python_threads(tmp_path):
    vault, keys, start = new_vault(tmp_path)
    errors = []

    def work(t):
        try:
            for i in range(10):
                at = start + t * 1000 + i
                if t == 0:
                    vault.record(vf.Metric.HEART_RATE, 60.0, at)
                elif t == 1:
                    vault.record_gatt(0x2A1C, TEMP_37_6, at)
                elif t == 2:
                    with pytest.raises(vf.WriteError.Invalid):
                        vault.record(vf.Metric.HEART_RATE, math.nan, at)
                    with pytest.raises(vf.WriteError.Gatt):
                        vault.record_gatt(0x2A37, b"\xff" * 4096, at)
                else:
                    assert len(vault.log()) <= 20
                    assert vault.status().readings <= 20
        except BaseException as e:  # reported below, with its thread
            errors.append((t, e))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
        assert not th.is_alive(), "a thread hung"
    assert errors == []
    assert len(vault.log()) == 20
    del vault
    assert len(reopen(tmp_path, keys).log()) == 20


def test_the_same_directory_as_two_vault_objects(tmp_path):
    first, keys, start = new_vault(tmp_path)
    first.record(vf.Metric.HEART_RATE, 61.0, start + 1)
    results = {}

    def try_open():
        try:
            results["open"] = reopen(tmp_path, keys)
        except vf.OpenError as e:
            results["open"] = e

    def try_create():
        try:
            results["create"] = vf.Vault.create(str(tmp_path / "v"), start, 7, AppKeys())
        except vf.OpenError as e:
            results["create"] = e

    threads = [threading.Thread(target=f) for f in (try_open, try_create)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
        assert not th.is_alive(), "a second open hung"
    for what, got in results.items():
        assert isinstance(got, vf.OpenError.Storage), (what, got)
        assert "in use" in str(got), (what, got)
        assert "another open vault in this process" in str(got), (what, got)
    first.record(vf.Metric.HEART_RATE, 62.0, start + 2)
    assert len(first.log()) == 2
    del first
    assert len(reopen(tmp_path, keys).log()) == 2
