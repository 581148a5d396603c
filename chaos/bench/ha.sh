#!/usr/bin/env bash
# Benchmark: three agents sharing one DynamoDB table (moto's server on
# loopback: `scripts/emulators start` first).
#
# 1. Throughput: N incidents (each its own scope) POSTed to a generic trigger,
#    spread over the three agents, 12 at a time; each starts the janitor
#    fixture (3 steps, a cleanup and an undo per step). Prints runs/s from the
#    first POST to the last run succeeded.
# 2. Takeover: K times, a run (janitor, durable sleep of 2 s after step 1) is
#    started on one agent, which is SIGKILLed while the run sleeps; prints the
#    time from the kill to another agent's claim, and to the run succeeded.
#    The lease is LEASE seconds; the takeover scan runs every LEASE/10 (at most 2 s).
#
#   chaos/bench/ha.sh [N] [K] [LEASE]   (defaults 60 5 5; needs `cargo build -p drover`
#                                        and the runbooks built: scripts/drill does both)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-60}" K="${2:-5}" LEASE="${3:-5}"
eval "$(scripts/emulators env)"
export AWS_EC2_METADATA_DISABLED=true
DROVER="$PWD/target/debug/drover"
RUNBOOK="$PWD/target/runbooks/wasm32-wasip2/release/janitor.wasm"
PY="$(command -v python3)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export BENCH_API_TOKEN="bench-api-token-0123456789" BENCH_TRIGGER_TOKEN="bench-trigger-token-0123456789"
TABLE="drover-bench-$RANDOM$RANDOM"
cat > "$WORK/drover.toml" <<TOML
store = { dynamodb = { table = "$TABLE", region = "us-east-1", lease_seconds = $LEASE } }
[serve]
api_token_env = "BENCH_API_TOKEN"
shutdown_grace_seconds = 2
[[serve.runbook]]
path = "$RUNBOOK"
[[serve.trigger]]
name = "bench"
kind = "generic"
auth = { bearer_env = "BENCH_TRIGGER_TOKEN" }
runbook = "janitor"
scope = "app:{app}"
[[serve.trigger]]
name = "sleepy"
kind = "generic"
auth = { bearer_env = "BENCH_TRIGGER_TOKEN" }
runbook = "janitor"
scope = "app:{app}"
params = { sleep_after = 1, sleep_ms = 2000 }
TOML
export DROVER_CONFIG="$WORK/drover.toml"
DROVER_HOME="$WORK/init" "$DROVER" store init
"$PY" - "$DROVER" "$WORK" "$N" "$K" <<'PY'
import http.client, json, os, signal, socket, statistics, subprocess, sys, threading, time
drover, work, n, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
api, trig = os.environ["BENCH_API_TOKEN"], os.environ["BENCH_TRIGGER_TOKEN"]

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def call(port, method, path, token, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    r = c.getresponse(); data = r.read(); c.close()
    return r.status, (json.loads(data) if data else None)

agents = {}
def start(name):
    port = free_port()
    env = dict(os.environ, DROVER_HOME=f"{work}/{name}")
    log = open(f"{work}/{name}.log", "a")
    p = subprocess.Popen([drover, "serve", "--listen", f"127.0.0.1:{port}"], env=env, stdout=log, stderr=log)
    deadline = time.time() + 60
    while True:
        try:
            if call(port, "GET", "/v1/health", api)[0] == 200: break
        except OSError: pass
        if time.time() > deadline or p.poll() is not None: sys.exit(f"agent {name} did not start: see {work}/{name}.log")
        time.sleep(0.05)
    agents[name] = (p, port)

def status(port, run):
    s, r = call(port, "GET", f"/v1/runs/{run}", api)
    return r["run"] if s == 200 else None

for name in "abc": start(name)
try:
    # 1. Throughput.
    ports = [agents[a][1] for a in "abc"]
    ids, lock = [], threading.Lock()
    def fire(i):
        s, body = call(ports[i % 3], "POST", "/v1/triggers/bench", trig, json.dumps({"labels": {"app": f"bench{i}"}}))
        assert s == 202, (s, body)
        with lock: ids.append(body["runs"][0]["run_id"])
    t0 = time.perf_counter()
    pending = list(range(n))
    while pending:
        batch, pending = pending[:12], pending[12:]
        ts = [threading.Thread(target=fire, args=(i,)) for i in batch]
        for t in ts: t.start()
        for t in ts: t.join()
    left = set(ids)
    while left:
        for run in list(left):
            r = status(ports[0], run)
            if r and r["status"] in ("succeeded", "failed", "cancelled"):
                assert r["status"] == "succeeded", r
                left.discard(run)
        time.sleep(0.01)
    dt = time.perf_counter() - t0
    print(f"{n} runs (3 steps each) over 3 agents: {dt:.2f} s, {n / dt:.1f} runs/s")

    # 2. Takeover.
    claims, dones = [], []
    for i in range(k):
        victim = "abc"[i % 3]
        p, port = agents[victim]
        other = agents["abc"[(i + 1) % 3]][1]
        s, body = call(port, "POST", "/v1/triggers/sleepy", trig, json.dumps({"labels": {"app": f"sleepy{i}"}}))
        assert s == 202, body
        run = body["runs"][0]["run_id"]
        while (status(other, run) or {}).get("status") != "waiting": time.sleep(0.005)
        p.send_signal(signal.SIGKILL); p.wait()
        t0 = time.perf_counter()
        claimed = None
        while True:
            r = status(other, run)
            if claimed is None and r.get("owner") and r["owner"]["pid"] != p.pid:
                claimed = time.perf_counter() - t0
            if r["status"] == "succeeded": break
            time.sleep(0.005)
        claims.append(claimed * 1000); dones.append((time.perf_counter() - t0) * 1000)
        start(victim)
    def show(name, xs):
        xs = sorted(xs)
        print(f"{name:<44} median {statistics.median(xs):7.0f} ms   max {xs[-1]:7.0f} ms   (n={len(xs)})")
    show("driver killed -> run claimed by a survivor", claims)
    show("driver killed -> run succeeded", dones)
finally:
    for p, _ in agents.values():
        p.send_signal(signal.SIGKILL); p.wait()
PY
