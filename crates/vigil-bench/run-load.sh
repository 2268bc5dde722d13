#!/bin/sh
# Reruns the step-8 load measurements and keeps every report (Markdown + JSON).
#
#   crates/vigil-bench/run-load.sh [OUT_DIR]      (default: target/load-results)
#
# Run it on a quiet machine: the generator and the node share its cores, and
# other processes change every figure. Set CARGO_TARGET_DIR to reuse a build.
# Exits 1 if any run reported a dead node or a lost acknowledged bundle.
set -u
cd "$(dirname "$0")/../.." || exit 2
OUT=${1:-target/load-results}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --locked -p vigil-bench -p vigil-cli --bin vigil-bench --bin vigil-node || exit 2
BIN=$TARGET/release/vigil-bench
mkdir -p "$OUT"
failed=0
run() {
    name=$1
    shift
    echo "== $name: vigil-bench load $*"
    "$BIN" load "$@" --json "$OUT/$name.json" >"$OUT/$name.md"
    status=$?
    cat "$OUT/$name.md"
    [ $status -eq 0 ] || { echo "!! $name exited $status"; failed=1; }
}
# The realistic day, compressed to a minute: 1,000 residents (400 bundles/s offered).
run load-1000 --residents 1000
# The same, connecting 8 at a time (handshake rate without loss recovery).
run load-1000-connect8 --residents 1000 --connect-concurrency 8
# 10,000 residents at the same per-resident pace (day in 10 minutes: 400 bundles/s).
run load-10000 --residents 10000 --day-seconds 600 --network-threads 2
# 10,000 residents as fast as the machine goes (saturation).
run load-10000-max --residents 10000 --day-seconds 0 --network-threads 2
# Back-pressure: a node that takes 800 connections, 1,000 residents.
run load-1000-full --residents 1000 --node-max-connections 800 --connect-attempts 3
# 10,000 as fast as possible again, glibc's mmap threshold fixed (inherited by
# the node): the node's memory without heap fragmentation.
export MALLOC_MMAP_THRESHOLD_=131072
run load-10000-max-mmap --residents 10000 --day-seconds 0 --network-threads 2
unset MALLOC_MMAP_THRESHOLD_
exit $failed
