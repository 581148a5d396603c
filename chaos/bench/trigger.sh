#!/usr/bin/env bash
# Benchmark: incident trigger to run, through `drover serve`. N alerts, one
# after another, each for its own scope, POSTed to a generic trigger (bearer
# token) that starts the janitor fixture (3 steps, a cleanup and an undo per
# step). Prints median and p90 of: the trigger's answer (authenticated,
# parsed, run recorded durably: 202), and alert to run succeeded (polling
# the API every 2 ms).
#
#   chaos/bench/trigger.sh [N]   (N defaults to 50; needs `cargo build -p drover`
#                                 and the runbooks built: scripts/drill does both)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-50}"
DROVER="$PWD/target/debug/drover"
RUNBOOK="$PWD/target/runbooks/wasm32-wasip2/release/janitor.wasm"
PY="$(command -v python3)"
export DROVER_HOME="$(mktemp -d)"
PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export BENCH_API_TOKEN="bench-api-token-0123456789" BENCH_TRIGGER_TOKEN="bench-trigger-token-0123456789"
cat > "$DROVER_HOME/drover.toml" <<TOML
[serve]
api_token_env = "BENCH_API_TOKEN"
[[serve.runbook]]
path = "$RUNBOOK"
[[serve.trigger]]
name = "bench"
kind = "generic"
auth = { bearer_env = "BENCH_TRIGGER_TOKEN" }
runbook = "janitor"
scope = "app:{app}"
TOML
"$DROVER" serve --listen "127.0.0.1:$PORT" 2>"$DROVER_HOME/serve.log" &
SERVE=$!
trap 'kill $SERVE 2>/dev/null; wait $SERVE 2>/dev/null; rm -rf "$DROVER_HOME"' EXIT
"$PY" - "$PORT" "$N" <<'PY'
import http.client, json, os, statistics, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
api, trig = os.environ["BENCH_API_TOKEN"], os.environ["BENCH_TRIGGER_TOKEN"]
def call(method, path, token, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    r = c.getresponse(); data = r.read(); c.close()
    return r.status, (json.loads(data) if data else None)
deadline = time.time() + 60
while True:
    try:
        if call("GET", "/v1/health", api)[0] == 200: break
    except OSError: pass
    if time.time() > deadline: sys.exit("drover serve did not start")
    time.sleep(0.05)
answer, done = [], []
for i in range(n):
    t0 = time.perf_counter()
    status, body = call("POST", "/v1/triggers/bench", trig, json.dumps({"labels": {"app": f"bench{i}"}}))
    t1 = time.perf_counter()
    assert status == 202, (status, body)
    run = body["runs"][0]["run_id"]
    while True:
        s, r = call("GET", f"/v1/runs/{run}", api)
        if r["run"]["status"] in ("succeeded", "failed", "cancelled"): break
        time.sleep(0.002)
    t2 = time.perf_counter()
    assert r["run"]["status"] == "succeeded", r
    answer.append((t1 - t0) * 1000); done.append((t2 - t0) * 1000)
def show(name, xs):
    xs = sorted(xs)
    print(f"{name:<34} median {statistics.median(xs):7.1f} ms   p90 {xs[int(len(xs) * 0.9) - 1]:7.1f} ms   (n={len(xs)})")
show("trigger answered (202, run recorded)", answer)
show("alert to run succeeded", done)
PY
