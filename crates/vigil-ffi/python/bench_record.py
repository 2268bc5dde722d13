"""Times Vault.record through the Python binding on a durable (sled) vault.

The Python side of `vigil-bench ffi`, which runs the same records through
the Rust `vigil::Vault::record` in the same run and prints the ratio. Run
alone:

    python bench_record.py --dir /tmp/v --records 3000 --start-ms 1790035200000

prints `<records per second> <user CPU seconds>` on its last line. Not named
test_*.py: pytest does not collect it.
"""

import argparse
import os
import time

import vigil_ffi as vf


class Keys(vf.KeyStore):
    """The key store an app implements; called at create, not per record."""

    def __init__(self):
        self.key = None

    def load(self):
        return self.key

    def store(self, root):
        if self.key is not None:
            raise vf.KeyStoreError.Occupied(detail="bench")
        self.key = bytes(root)

    def destroy(self):
        self.key = None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True, help="a new directory for the vault")
    p.add_argument("--records", type=int, default=3000)
    p.add_argument("--start-ms", type=int, required=True)
    args = p.parse_args()

    vault = vf.Vault.create(args.dir, args.start_ms, 7, Keys())
    hr = vf.Metric.HEART_RATE
    start = args.start_ms
    # The same workload as the Rust side: 100 untimed (sled's first
    # segments), then the timed records, one durable flush each.
    for i in range(100):
        vault.record(hr, 60.0 + i % 50, start + 1_000 * i)
    n = args.records
    user0 = os.times().user
    t0 = time.perf_counter()
    for i in range(100, 100 + n):
        vault.record(hr, 60.0 + i % 50, start + 1_000 * i)
    elapsed = time.perf_counter() - t0
    user = os.times().user - user0
    assert vault.status().readings == 100 + n
    print(f"{n / elapsed:.1f} {user:.2f}")


if __name__ == "__main__":
    main()
