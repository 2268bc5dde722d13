"""Times Vault.record through the Python binding on a durable (sled) vault.

The Python side of `vigil-bench ffi`, which runs the same records through
the Rust `vigil::Vault::record` in the same run, interleaved chunk by chunk
with this script's, and prints the ratio. Protocol (stdin / stdout, one line
each): the script creates the vault in --dir, records 100 untimed readings
and prints `ready`; then for each line `N` it records the next N readings
and prints `<elapsed seconds> <user CPU seconds>`; it exits at end of input.
Not named test_*.py: pytest does not collect it.
"""

import argparse
import os
import sys
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

    def destroy_key(self):
        self.key = None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True, help="a new directory for the vault")
    p.add_argument("--start-ms", type=int, required=True)
    args = p.parse_args()

    vault = vf.Vault.create(args.dir, args.start_ms, 7, Keys())
    hr = vf.Metric.HEART_RATE
    start = args.start_ms
    # The same workload as the Rust side: 100 untimed (sled's first
    # segments), then the timed records, one durable flush each.
    for i in range(100):
        vault.record(hr, 60.0 + i % 50, start + 1_000 * i)
    i = 100
    print("ready", flush=True)
    for line in sys.stdin:
        n = int(line)
        user0 = os.times().user
        t0 = time.perf_counter()
        for j in range(i, i + n):
            vault.record(hr, 60.0 + j % 50, start + 1_000 * j)
        elapsed = time.perf_counter() - t0
        user = os.times().user - user0
        i += n
        print(f"{elapsed:.6f} {user:.2f}", flush=True)
    assert vault.status().readings == i


if __name__ == "__main__":
    main()
