#!/usr/bin/env bash
# Benchmark: the runbook author's loop.
#  1. `drover new` + `cargo test` (natively, against the simulated cloud) +
#     `cargo build --release --target wasm32-wasip2` of a fresh runbook, with
#     an empty target directory, then again for a second runbook sharing it.
#  2. A simulated-cloud test run of regional-failover: one test
#     (`fails_over_the_demo_topology`) and all 11 of its tests, by running
#     the test binary N times; and `drover test` of its component against
#     runbooks/scenarios/demo.toml, N times (process start, component load
#     and the run in the real engine included).
#
#   chaos/bench/authoring.sh [N]   (N defaults to 20; needs `cargo build -p drover`
#                                   and the runbooks built: scripts/drill does both)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-20}"
ROOT="$PWD"
DROVER="$ROOT/target/debug/drover"
export DROVER_HOME="$(mktemp -d)" AWS_EC2_METADATA_DISABLED=true
work="$(mktemp -d)"
trap 'rm -rf "$work" "$DROVER_HOME"' EXIT

ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

loop() { # NAME TARGET_DIR
    local t0 t1 t2 t3
    t0=$(ms)
    "$DROVER" new "$1" --dir "$work" --sdk "$ROOT/sdk" >/dev/null
    t1=$(ms)
    (cd "$work/$1" && CARGO_TARGET_DIR="$2" cargo test -q >/dev/null 2>&1)
    t2=$(ms)
    (cd "$work/$1" && CARGO_TARGET_DIR="$2" cargo build -q --release --target wasm32-wasip2 2>/dev/null)
    t3=$(ms)
    printf '  %-32s new %5d ms   cargo test %6d ms   wasm build %6d ms   total %6d ms\n' "$1" $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) $((t3 - t0))
}
echo "drover new + cargo test + wasm build:"
loop team-failover "$work/target"
loop payments-failover "$work/target"

(cd runbooks && cargo test -q --target-dir ../target/runbooks -p regional-failover --no-run >/dev/null 2>&1)
bin="$(ls -t "$ROOT"/target/runbooks/debug/deps/regional_failover-* | grep -v '\.d$' | head -1)"
one=(); all=(); comp=()
for _ in $(seq "$N"); do
    t0=$(ms); "$bin" -q --exact tests::fails_over_the_demo_topology >/dev/null; t1=$(ms); one+=($((t1 - t0)))
    t0=$(ms); "$bin" -q >/dev/null; t1=$(ms); all+=($((t1 - t0)))
    t0=$(ms); "$DROVER" test "$ROOT/target/runbooks/wasm32-wasip2/release/regional_failover.wasm" --scenario "$ROOT/runbooks/scenarios/demo.toml" >/dev/null; t1=$(ms); comp+=($((t1 - t0)))
done
echo "regional-failover against the simulated demo topology, median of $N (wall, process start included):"
echo "  one native test (cargo test, 1 run)            $(printf '%s\n' "${one[@]}" | median) ms"
echo "  all 11 native tests (18 simulated runs)        $(printf '%s\n' "${all[@]}" | median) ms"
echo "  drover test COMPONENT --scenario demo.toml     $(printf '%s\n' "${comp[@]}" | median) ms"
