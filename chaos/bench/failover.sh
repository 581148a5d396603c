#!/usr/bin/env bash
# Benchmark: regional-failover on the demo topology, by drover and by the
# same failover as a plain boto3 script (failover_boto3.py), N times each,
# re-seeding before every run. Prints median and spread of wall time for
# both, of the RTO each measures (start to DNS shifted), and drover's own
# share (time outside its steps' bodies).
#
#   chaos/bench/failover.sh [N]      (N defaults to 10; needs `cargo build -p drover -p drover-chaos`
#                                     and the runbooks built: scripts/drill does both)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-10}"
scripts/emulators start
eval "$(scripts/emulators env)"
DROVER="$PWD/target/debug/drover"
RUNBOOK="$PWD/target/runbooks/wasm32-wasip2/release/regional_failover.wasm"
PY="$PWD/.emulators/moto/bin/python"
export DROVER_HOME="$(mktemp -d)"
trap 'rm -rf "$DROVER_HOME"' EXIT
export DROVER_CONFIG="$PWD/docs/drover.toml"

ms() { echo $(( $(date +%s%N) / 1000000 )); }
drover_ms=(); script_ms=(); inside_ms=(); drover_rto=(); script_rto=()
for i in $(seq 1 "$N"); do
    target/debug/drover-chaos seed-demo >/dev/null
    t0=$(ms); "$DROVER" run "$RUNBOOK" --run-id "bench-$i-$$" --quiet >/dev/null; t1=$(ms)
    drover_ms+=($((t1 - t0)))
    inside_ms+=("$("$DROVER" show "bench-$i-$$" --json | "$PY" -c '
import json, sys, datetime
run = json.load(sys.stdin)
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
print(round(sum((t(s["finished_at"]) - t(s["started_at"])).total_seconds() for s in run["steps"]) * 1000))')")
    drover_rto+=("$("$DROVER" show "bench-$i-$$" --json | "$PY" -c 'import json, sys; print(round(json.load(sys.stdin)["result"]["rto_seconds"] * 1000))')")
    target/debug/drover-chaos seed-demo >/dev/null
    t0=$(ms); out="$("$PY" chaos/bench/failover_boto3.py "bench$i$$")"; t1=$(ms)
    script_ms+=($((t1 - t0)))
    script_rto+=("${out#rto_ms=}")
done
"$PY" - "${drover_ms[*]}" "${script_ms[*]}" "${inside_ms[*]}" "${drover_rto[*]}" "${script_rto[*]}" <<'PY'
import statistics, sys
d, s, inside, d_rto, s_rto = ([int(x) for x in a.split()] for a in sys.argv[1:6])
def show(name, xs):
    xs = sorted(xs)
    print(f"{name:<34} median {statistics.median(xs):7.0f} ms   min {xs[0]:6d}   max {xs[-1]:6d}   (n={len(xs)})")
show("drover run regional-failover", d)
show("boto3 script (sequential)", s)
show("drover: inside its steps", inside)
show("drover: RTO (start to DNS shifted)", d_rto)
show("boto3: RTO (start to DNS shifted)", s_rto)
print(f"drover outside its steps (process start, load, journal, replay): median {statistics.median([a - b for a, b in zip(d, inside)]):.0f} ms")
PY
