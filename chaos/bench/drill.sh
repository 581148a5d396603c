#!/usr/bin/env bash
# Benchmark: the non-disruptive `dr-drill` on the demo topology (whole
# process: restore, launch, checks, teardown, proof of nothing left, the
# cleanups) and one `drover readiness` evaluation of `regional-failover`,
# N times each. Prints median, min and max wall time.
#
#   chaos/bench/drill.sh [N]   (N defaults to 10; needs `cargo build -p drover -p drover-chaos`
#                               and the runbooks built: scripts/drill does both)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-10}"
scripts/emulators start >/dev/null
eval "$(scripts/emulators env)"
DROVER="$PWD/target/debug/drover"
RB="$PWD/target/runbooks/wasm32-wasip2/release"
export DROVER_HOME="$(mktemp -d)"
trap 'rm -rf "$DROVER_HOME"' EXIT
export DROVER_CONFIG="$PWD/docs/drover.toml"
target/debug/drover-chaos seed-demo >/dev/null

ms() { echo $(( $(date +%s%N) / 1000000 )); }
stats() { sort -n | awk '{a[NR]=$1} END {printf "median %d ms  min %d ms  max %d ms (%d runs)\n", a[int((NR+1)/2)], a[1], a[NR], NR}'; }
drill=(); ready=()
for i in $(seq 1 "$N"); do
    t0=$(ms); "$DROVER" run "$RB/dr_drill.wasm" --run-id "bench-drill-$i-$$" --quiet >/dev/null; t1=$(ms)
    drill+=($((t1 - t0)))
    t0=$(ms); "$DROVER" readiness "$RB/regional_failover.wasm" >/dev/null; t1=$(ms)
    ready+=($((t1 - t0)))
done
echo "dr-drill (whole process):             $(printf '%s\n' "${drill[@]}" | stats)"
echo "drover readiness regional-failover:   $(printf '%s\n' "${ready[@]}" | stats)"
