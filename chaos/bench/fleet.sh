#!/usr/bin/env bash
# Benchmark: fleet-failover of N databases (default 10) by drover and by the
# same failover as a plain sequential boto3 script (fleet_boto3.py), through
# a proxy adding LATENCY ms (default 100: a WAN round trip to another
# region) to every request, ROUNDS times each (default 3), re-seeding the
# fleet before every run. Prints median wall time (whole process) and RTO
# (start to traffic shifted) of both, their ratio and the requests each made;
# then how fast the emulators answer those requests (emulator_throughput.py).
#
#   chaos/bench/fleet.sh [N] [LATENCY] [ROUNDS]
#   (needs `cargo build -p drover -p drover-chaos` and the runbooks built:
#    scripts/drill does both)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-10}"
LATENCY="${2:-100}"
ROUNDS="${3:-3}"
scripts/emulators start >/dev/null
eval "$(scripts/emulators env)"
export AWS_EC2_METADATA_DISABLED=true
DROVER="$PWD/target/debug/drover"
CHAOS="$PWD/target/debug/drover-chaos"
RUNBOOK="$PWD/target/runbooks/wasm32-wasip2/release/fleet_failover.wasm"
PY="$PWD/.emulators/moto/bin/python"
WORK="$(mktemp -d)"
export DROVER_HOME="$WORK/home"
export DROVER_CONFIG="$PWD/docs/drover.toml"
"$CHAOS" proxy --latency-ms "$LATENCY" --counts "$WORK/counts.json" > "$WORK/proxy.env" &
PROXY=$!
trap 'kill $PROXY 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 50); do grep -q AWS_ENDPOINT_URL "$WORK/proxy.env" 2>/dev/null && break; sleep 0.1; done

ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Requests the proxy passed on so far (its counts file is rewritten every 100 ms).
requests() { sleep 0.3; "$PY" -c 'import json,sys; c = json.load(open(sys.argv[1])); print(sum(c["accepted"].values()) + sum(c["refused"].values()))' "$WORK/counts.json" 2>/dev/null || echo 0; }
drover_ms=(); script_ms=(); drover_rto=(); script_rto=(); drover_req=(); script_req=()
for i in $(seq 1 "$ROUNDS"); do
    # Seeding goes straight to the emulators; the runs go through the proxy.
    "$CHAOS" seed-fleet --databases "$N" --suffix "bench" > "$WORK/fleet.json"
    mapfile -t params < <("$PY" -c 'import json,sys; [print("--param\n" + p) for p in json.load(open(sys.argv[1]))["params"]]' "$WORK/fleet.json")
    r0=$(requests)
    t0=$(ms); (source "$WORK/proxy.env"; "$DROVER" run "$RUNBOOK" --run-id "fleet-$i-$$" --quiet "${params[@]}" >/dev/null); t1=$(ms)
    drover_ms+=($((t1 - t0))); r1=$(requests); drover_req+=($((r1 - r0)))
    drover_rto+=("$("$DROVER" show "fleet-$i-$$" --json | "$PY" -c 'import json, sys; r = json.load(sys.stdin); assert r["status"] == "succeeded", r["status"]; print(round(r["result"]["rto_seconds"] * 1000))')")
    "$CHAOS" seed-fleet --databases "$N" --suffix "bench" > "$WORK/fleet.json"
    r0=$(requests)
    t0=$(ms); out="$(source "$WORK/proxy.env"; "$PY" chaos/bench/fleet_boto3.py "$WORK/fleet.json")"; t1=$(ms)
    script_ms+=($((t1 - t0))); r1=$(requests); script_req+=($((r1 - r0)))
    script_rto+=("${out#rto_ms=}")
done
"$PY" - "$N" "$LATENCY" "${drover_ms[*]}" "${script_ms[*]}" "${drover_rto[*]}" "${script_rto[*]}" "${drover_req[*]}" "${script_req[*]}" <<'PY'
import statistics, sys
n, latency = sys.argv[1], sys.argv[2]
d, s, d_rto, s_rto, d_req, s_req = ([int(x) for x in a.split()] for a in sys.argv[3:9])
def show(name, xs):
    xs = sorted(xs)
    print(f"{name:<44} median {statistics.median(xs):7.0f} ms   min {xs[0]:6d}   max {xs[-1]:6d}   (n={len(xs)})")
print(f"fleet of {n} databases, {latency} ms added to every request")
show("drover run fleet-failover (whole process)", d)
show("boto3 script, sequential (whole process)", s)
show("drover: RTO (start to traffic shifted)", d_rto)
show("boto3: RTO (start to traffic shifted)", s_rto)
print(f"requests per run: drover {statistics.median(d_req):.0f}, boto3 script {statistics.median(s_req):.0f}")
print(f"drover is {statistics.median(s) / statistics.median(d):.1f}x faster (whole process), {statistics.median(s_rto) / statistics.median(d_rto):.1f}x (RTO)")
PY
"$PY" chaos/bench/emulator_throughput.py "$WORK/fleet.json"
