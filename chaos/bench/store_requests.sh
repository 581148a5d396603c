#!/usr/bin/env bash
# Benchmark: what one journaled step costs the shared store on DynamoDB, in
# requests and in time: the `probe` fixture run by `drover run` with its
# store on DynamoDB (moto), every store request through the counting proxy,
# once with 0 steps and once with N (each step journals a `now`, a random
# value and an event, and completes: it only computes). Prints the store's
# requests per step, by operation, and the time per step.
#
#   chaos/bench/store_requests.sh [N]   (N defaults to 200)
#   (needs `cargo build -p drover -p drover-chaos` and the runbooks built)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-200}"
scripts/emulators start >/dev/null
eval "$(scripts/emulators env)"
export AWS_EC2_METADATA_DISABLED=true
DROVER="$PWD/target/debug/drover"
CHAOS="$PWD/target/debug/drover-chaos"
RUNBOOK="$PWD/target/runbooks/wasm32-wasip2/release/probe.wasm"
PY="$PWD/.emulators/moto/bin/python"
WORK="$(mktemp -d)"
PROXY=""
trap '[ -n "$PROXY" ] && kill $PROXY 2>/dev/null; rm -rf "$WORK"' EXIT
TABLE="drover-steps-$RANDOM$RANDOM"
cat > "$WORK/drover.toml" <<TOML
store = { dynamodb = { table = "$TABLE", region = "us-east-1", lease_seconds = 15 } }
TOML
export DROVER_CONFIG="$WORK/drover.toml" DROVER_HOME="$WORK/home"
"$DROVER" store init >/dev/null
"$CHAOS" proxy --latency-ms 0 --counts "$WORK/counts.json" > "$WORK/proxy.env" &
PROXY=$!
for _ in $(seq 1 50); do grep -q AWS_ENDPOINT_URL "$WORK/proxy.env" 2>/dev/null && break; sleep 0.1; done
counts() { sleep 0.3; cat "$WORK/counts.json"; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }
(source "$WORK/proxy.env"; "$DROVER" run "$RUNBOOK" --run-id zero --param steps=0 --quiet >/dev/null)
before="$(counts)"
t0=$(ms); (source "$WORK/proxy.env"; "$DROVER" run "$RUNBOOK" --run-id steps --param "steps=$N" --quiet >/dev/null); t1=$(ms)
(source "$WORK/proxy.env"; "$DROVER" run "$RUNBOOK" --run-id zero2 --param steps=0 --quiet >/dev/null)
between="$(counts)"
"$PY" - "$N" "$before" "$between" "$((t1 - t0))" <<'PY'
import json, sys
n = int(sys.argv[1])
a, b = json.loads(sys.argv[2]), json.loads(sys.argv[3])
def dynamo(c):
    return {k: v for k, v in {**c["accepted"], **{f"{k} (refused)": v for k, v in c["refused"].items()}}.items() if k.startswith("dynamodb:")}
# The 0-step run once before and once after: what a run costs besides its steps.
fixed = dynamo(a)
both = dynamo(b)
ops = sorted(set(fixed) | set(both))
print(f"DynamoDB store requests of a run of {n} steps that only compute (probe), beyond a 0-step run's:")
total = 0.0
for op in ops:
    per = (both.get(op, 0) - 2 * fixed.get(op, 0)) / n
    total += per
    print(f"  {op:<40} {per:6.2f} per step")
print(f"  {'all':<40} {total:6.2f} per step")
print(f"whole run of {n} steps: {sys.argv[4]} ms ({int(sys.argv[4]) / n:.2f} ms per step, moto on loopback)")
PY
