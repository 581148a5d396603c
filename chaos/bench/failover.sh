#!/usr/bin/env bash
# Benchmark: regional-failover on the demo topology, by drover and by the
# same failover as a plain sequential boto3 script (failover_boto3.py),
# through a proxy adding LATENCY ms to every request (0: none; 100: a WAN
# round trip to another region), N times each per latency, re-seeding
# before every run (seeding goes straight to the emulators). Prints, per
# latency, the median wall time (whole process) and RTO (start to DNS
# shifted) of both, their ratios, the requests each made (counted at the
# proxy), drover's time inside and outside its steps, and drover's median
# time per step.
#
#   chaos/bench/failover.sh [N] [LATENCY...]   (N defaults to 10, LATENCY to 0;
#                                               e.g. `chaos/bench/failover.sh 5 0 50 100`)
#   BENCH_JSON=FILE: also append one JSON line per latency to FILE (the
#   medians, the ratios and the requests: what chaos/bench/check.sh reads)
#   (needs `cargo build -p drover -p drover-chaos` and the runbooks built:
#    scripts/drill does both)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-10}"
shift || true
LATENCIES=("${@:-0}")
[ ${#LATENCIES[@]} -gt 0 ] || LATENCIES=(0)
scripts/emulators start >/dev/null
eval "$(scripts/emulators env)"
export AWS_EC2_METADATA_DISABLED=true
DROVER="$PWD/target/debug/drover"
CHAOS="$PWD/target/debug/drover-chaos"
RUNBOOK="$PWD/target/runbooks/wasm32-wasip2/release/regional_failover.wasm"
PY="$PWD/.emulators/moto/bin/python"
WORK="$(mktemp -d)"
export DROVER_HOME="$WORK/home"
export DROVER_CONFIG="$PWD/docs/drover.toml"
PROXY=""
trap '[ -n "$PROXY" ] && kill $PROXY 2>/dev/null; rm -rf "$WORK"' EXIT

ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Requests the proxy passed on so far (its counts file is rewritten every 100 ms).
requests() { sleep 0.3; "$PY" -c 'import json,sys; c = json.load(open(sys.argv[1])); print(sum(c["accepted"].values()) + sum(c["refused"].values()))' "$WORK/counts.json" 2>/dev/null || echo 0; }

for LATENCY in "${LATENCIES[@]}"; do
    rm -f "$WORK/proxy.env" "$WORK/counts.json"
    "$CHAOS" proxy --latency-ms "$LATENCY" --counts "$WORK/counts.json" > "$WORK/proxy.env" &
    PROXY=$!
    for _ in $(seq 1 50); do grep -q AWS_ENDPOINT_URL "$WORK/proxy.env" 2>/dev/null && break; sleep 0.1; done
    drover_ms=(); script_ms=(); inside_ms=(); drover_rto=(); script_rto=(); drover_req=(); script_req=(); : > "$WORK/steps.txt"
    for i in $(seq 1 "$N"); do
        id="bench-$LATENCY-$i-$$"
        target/debug/drover-chaos seed-demo >/dev/null
        r0=$(requests)
        t0=$(ms); (source "$WORK/proxy.env"; "$DROVER" run "$RUNBOOK" --run-id "$id" --quiet >/dev/null); t1=$(ms)
        drover_ms+=($((t1 - t0))); r1=$(requests); drover_req+=($((r1 - r0)))
        "$DROVER" show "$id" --json > "$WORK/run.json"
        read -r inside rto < <("$PY" - "$WORK/run.json" "$WORK/steps.txt" <<'PY'
import json, sys, datetime
run = json.load(open(sys.argv[1]))
assert run["status"] == "succeeded", run["status"]
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
took = [(s["key"], (t(s["finished_at"]) - t(s["started_at"])).total_seconds() * 1000) for s in run["steps"]]
with open(sys.argv[2], "a") as f:
    for k, v in took:
        f.write(f"{k} {v:.0f}\n")
print(round(sum(v for _, v in took)), round(run["result"]["rto_seconds"] * 1000))
PY
)
        inside_ms+=("$inside"); drover_rto+=("$rto")
        target/debug/drover-chaos seed-demo >/dev/null
        r0=$(requests)
        t0=$(ms); out="$(source "$WORK/proxy.env"; "$PY" chaos/bench/failover_boto3.py "bench$LATENCY$i$$")"; t1=$(ms)
        script_ms+=($((t1 - t0))); r1=$(requests); script_req+=($((r1 - r0)))
        script_rto+=("${out#rto_ms=}")
    done
    kill $PROXY 2>/dev/null || true; wait $PROXY 2>/dev/null || true; PROXY=""
    "$PY" - "$LATENCY" "${drover_ms[*]}" "${script_ms[*]}" "${inside_ms[*]}" "${drover_rto[*]}" "${script_rto[*]}" "${drover_req[*]}" "${script_req[*]}" "$WORK/steps.txt" <<'PY'
import statistics, sys, collections, json, os
latency = sys.argv[1]
d, s, inside, d_rto, s_rto, d_req, s_req = ([int(x) for x in a.split()] for a in sys.argv[2:9])
def show(name, xs):
    xs = sorted(xs)
    print(f"  {name:<42} median {statistics.median(xs):7.0f} ms   min {xs[0]:6d}   max {xs[-1]:6d}   (n={len(xs)})")
print(f"regional-failover, {latency} ms added to every request")
show("drover run regional-failover (whole process)", d)
show("boto3 script, sequential (whole process)", s)
show("drover: RTO (start to DNS shifted)", d_rto)
show("boto3: RTO (start to DNS shifted)", s_rto)
show("drover: inside its steps", inside)
print(f"  drover outside its steps: median {statistics.median([a - b for a, b in zip(d, inside)]):.0f} ms")
print(f"  requests per run: drover {statistics.median(d_req):.0f}, boto3 script {statistics.median(s_req):.0f}")
print(f"  drover / script: {statistics.median(s) / statistics.median(d):.2f}x as fast (whole process), {statistics.median(s_rto) / max(statistics.median(d_rto), 1):.2f}x (RTO)")
steps = collections.defaultdict(list)
for line in open(sys.argv[9]):
    k, v = line.split()
    steps[k].append(float(v))
print("  drover per step (median ms): " + ", ".join(f"{k} {statistics.median(v):.0f}" for k, v in steps.items()))
out = os.environ.get("BENCH_JSON")
if out:
    with open(out, "a") as f:
        f.write(json.dumps({
            "latency_ms": int(latency),
            "drover_ms": statistics.median(d), "script_ms": statistics.median(s),
            "drover_rto_ms": statistics.median(d_rto), "script_rto_ms": statistics.median(s_rto),
            "whole_ratio": statistics.median(s) / statistics.median(d),
            "rto_ratio": statistics.median(s_rto) / max(statistics.median(d_rto), 1),
            "drover_requests": statistics.median(d_req), "script_requests": statistics.median(s_req),
        }) + "\n")
PY
done
