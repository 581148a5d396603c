#!/usr/bin/env bash
# The speed regression check CI runs (issue 25): regional-failover by drover
# and by the sequential boto3 script, side by side through the latency proxy
# (LATENCY ms added to every request; 50 by default), N runs each (3 by
# default). Fails when a ratio measured in this run is more than 30% worse
# than chaos/bench/baseline.json: drover's speed-up over the script (whole
# process, and RTO), and the requests drover sends per failover. Ratios and
# counts, not absolute times: the machine's speed cancels out, the round
# trips do not.
#
#   chaos/bench/check.sh [N] [LATENCY]
#   (needs `cargo build -p drover -p drover-chaos` and the runbooks built)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-3}"
LATENCY="${2:-50}"
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
BENCH_JSON="$OUT" chaos/bench/failover.sh "$N" "$LATENCY"
.emulators/moto/bin/python - "$OUT" chaos/bench/baseline.json <<'PY'
import json, sys
now = json.loads(open(sys.argv[1]).read().splitlines()[-1])
base = json.load(open(sys.argv[2]))
tolerance = base["tolerance"]
failed = []
def at_least(name):
    floor = base[name] * (1 - tolerance)
    ok = now[name] >= floor
    print(f"  {name}: {now[name]:.2f} (baseline {base[name]:.2f}, fails below {floor:.2f}) {'ok' if ok else 'WORSE'}")
    if not ok:
        failed.append(name)
def at_most(name):
    ceiling = base[name] * (1 + tolerance)
    ok = now[name] <= ceiling
    print(f"  {name}: {now[name]:.0f} (baseline {base[name]:.0f}, fails above {ceiling:.1f}) {'ok' if ok else 'WORSE'}")
    if not ok:
        failed.append(name)
if now["latency_ms"] != base["latency_ms"]:
    sys.exit(f"the baseline was measured at {base['latency_ms']} ms, this run at {now['latency_ms']} ms: compare like with like")
print(f"speed regression check at {now['latency_ms']} ms per request (tolerance {tolerance:.0%}):")
at_least("whole_ratio")
at_least("rto_ratio")
at_most("drover_requests")
if failed:
    sys.exit(f"speed regression: {', '.join(failed)} more than {tolerance:.0%} worse than chaos/bench/baseline.json "
             "(if the change is deliberate, measure again with chaos/bench/check.sh and update the baseline with the reason)")
PY
