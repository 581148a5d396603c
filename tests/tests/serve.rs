//! `drover serve` end to end: the real binary as a service, driven over
//! HTTP (its API and its trigger endpoints), by a real Prometheus
//! Alertmanager, and by the clock (cron drills); killed with SIGKILL and
//! stopped with SIGTERM in between.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use drover_chaos::Agent;
use drover_e2e::{Served, free_port, metric, rt, seeded, toml_params, wait_until};
use drover_test_artifacts as artifacts;
use serde_json::{Value, json};

const API_TOKEN: &str = "api-token-0123456789abcdef";
const AM_TOKEN: &str = "alertmanager-token-0123456789";
const HMAC_KEY: &str = "generic-hmac-key-0123456789";

/// An agent whose environment holds the secrets the configurations name.
fn agent(dir: &Path) -> Agent {
    Agent::new(dir.join("home"))
        .with_env("T_API", API_TOKEN)
        .with_env("T_AM", AM_TOKEN)
        .with_env("T_HMAC", HMAC_KEY)
        .with_env("DROVER_LOG", "info,drover_engine=warn")
}

// The demo's grants and a `[serve]` section ending with the test's own lines.
use drover_e2e::serve_config as config;

fn runbook(path: &str) -> String {
    format!("[[serve.runbook]]\npath = \"{path}\"\n")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn api(s: &Served, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let auth = bearer(API_TOKEN);
    let body = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
    s.call(method, path, &[("authorization", &auth), ("content-type", "application/json")], &body)
}

fn runs(s: &Served) -> Vec<Value> {
    let (code, v) = api(s, "GET", "/v1/runs", &Value::Null);
    assert_eq!(code, 200, "{v}");
    v["runs"].as_array().unwrap().clone()
}

/// An Alertmanager notification of one alert; each call is a new firing
/// (its own `startsAt`): a test replays a delivery by sending its bytes again.
fn alertmanager_body(labels: Value, status: &str) -> Vec<u8> {
    static FIRINGS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = FIRINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let starts_at = format!("2026-12-05T10:{:02}:{:02}Z", n / 60 % 60, n % 60);
    json!({"version": "4", "status": status, "receiver": "drover", "groupKey": "{}:{}",
           "alerts": [{"status": status, "labels": labels, "annotations": {}, "fingerprint": "f1", "startsAt": starts_at}]})
    .to_string()
    .into_bytes()
}

#[test]
fn unauthenticated_and_malformed_triggers_are_refused_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path());
    let cfg = config(
        dir.path(),
        &format!(
            "{}\n[[serve.trigger]]\nname = \"am\"\nkind = \"alertmanager\"\nauth = {{ bearer_env = \"T_AM\" }}\nmatch = {{ alertname = \"JanitorDown\" }}\nrunbook = \"janitor\"\nparams = {{ steps = 2 }}\n\
             \n[[serve.trigger]]\nname = \"gen\"\nkind = \"generic\"\nauth = {{ hmac_sha256_env = \"T_HMAC\" }}\nrunbook = \"janitor\"\n",
            runbook(artifacts::JANITOR)
        ),
    );
    let s = Served::start(&agent, &cfg, &format!("127.0.0.1:{}", free_port()), &dir.path().join("serve.log"));
    let body = alertmanager_body(json!({"alertname": "JanitorDown"}), "firing");

    // Alertmanager's trigger: no token, a wrong one, another scheme.
    assert_eq!(s.call("POST", "/v1/triggers/am", &[], &body).0, 401);
    assert_eq!(s.call("POST", "/v1/triggers/am", &[("authorization", &bearer("alertmanager-token-0123456780"))], &body).0, 401);
    assert_eq!(s.call("POST", "/v1/triggers/am", &[("authorization", &bearer(API_TOKEN))], &body).0, 401, "the API token is not a trigger's");
    // The signed trigger: a bearer token, a signature over another body, a stale timestamp.
    let now = chrono_now();
    let signed = |ts: i64, b: &[u8]| drover_service::auth::sign(HMAC_KEY.as_bytes(), ts, b);
    let gen_body = br#"{"labels":{"app":"janitor"}}"#;
    assert_eq!(s.call("POST", "/v1/triggers/gen", &[("authorization", &bearer(HMAC_KEY))], gen_body).0, 401);
    let sig = signed(now, br#"{"labels":{"app":"other"}}"#);
    let ts = now.to_string();
    let (code, v) = s.call("POST", "/v1/triggers/gen", &[("x-drover-timestamp", &ts), ("x-drover-signature", &sig)], gen_body);
    assert_eq!(code, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("does not match the body"), "{v}");
    let old = (now - 3600).to_string();
    let sig = signed(now - 3600, gen_body);
    assert_eq!(s.call("POST", "/v1/triggers/gen", &[("x-drover-timestamp", &old), ("x-drover-signature", &sig)], gen_body).0, 401);
    // Authenticated but malformed: 400, named.
    let (code, v) = s.call("POST", "/v1/triggers/am", &[("authorization", &bearer(AM_TOKEN))], b"{\"alerts\": 3");
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("not an Alertmanager webhook payload"), "{v}");
    let bad = br#"{"labels": ["x"]}"#;
    let sig = signed(now, bad);
    assert_eq!(s.call("POST", "/v1/triggers/gen", &[("x-drover-timestamp", &ts), ("x-drover-signature", &sig)], bad).0, 400);
    assert_eq!(s.call("POST", "/v1/triggers/nope", &[("authorization", &bearer(AM_TOKEN))], &body).0, 404);
    // The API wants its token; health and metrics do not.
    assert_eq!(s.call("GET", "/v1/runs", &[], b"").0, 401);
    assert_eq!(s.call("GET", "/v1/health", &[], b"").0, 200);
    assert_eq!(metric(&s, "drover_trigger_requests_total{trigger=\"am\",result=\"unauthorized\"}"), Some(3.0));
    assert!(runs(&s).is_empty(), "nothing ran");

    // A resolved alert, or one the trigger does not match, starts nothing.
    let auth = bearer(AM_TOKEN);
    let (code, v) = s.call("POST", "/v1/triggers/am", &[("authorization", &auth)], &alertmanager_body(json!({"alertname": "JanitorDown"}), "resolved"));
    assert_eq!((code, v["runs"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
    let (code, _) = s.call("POST", "/v1/triggers/am", &[("authorization", &auth)], &alertmanager_body(json!({"alertname": "Other"}), "firing"));
    assert_eq!(code, 200);
    assert!(runs(&s).is_empty());

    // Properly signed: the run starts, and records where it came from.
    let sig = signed(now, gen_body);
    let (code, v) = s.call(
        "POST",
        "/v1/triggers/gen",
        &[("x-drover-timestamp", &ts), ("x-drover-signature", &sig), ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")],
        gen_body,
    );
    assert_eq!(code, 202, "{v}");
    let id = v["runs"][0]["run_id"].as_str().unwrap().to_string();
    agent.wait_for_status(&id, "succeeded", Duration::from_secs(60)).unwrap();
    let (_, run) = api(&s, "GET", &format!("/v1/runs/{id}"), &Value::Null);
    let origin = &run["run"]["origin"];
    assert_eq!((origin["kind"].as_str(), origin["name"].as_str()), (Some("trigger"), Some("gen")), "{run:#}");
    assert_eq!(origin["alerts"][0]["labels"]["app"], "janitor");
    assert_eq!(origin["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    assert_eq!(run["run"]["scope"], "trigger:gen");
    wait_until("the run's metrics", Duration::from_secs(10), || metric(&s, "drover_runs_total{runbook=\"janitor\",outcome=\"succeeded\"}"));

    // The same signed request replayed inside its 5 minutes, or the same body
    // signed again, starts nothing (its run has ended, so no scope is held):
    // 200, a duplicate, naming the run the delivery started.
    let replayed = [("x-drover-timestamp", ts.as_str()), ("x-drover-signature", sig.as_str())];
    let (code, v) = s.call("POST", "/v1/triggers/gen", &replayed, gen_body);
    assert_eq!((code, v["duplicate"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(v["runs"][0]["run_id"], id.as_str(), "{v}");
    let later = (now + 1).to_string();
    let resigned = signed(now + 1, gen_body);
    let (code, v) = s.call("POST", "/v1/triggers/gen", &[("x-drover-timestamp", &later), ("x-drover-signature", &resigned)], gen_body);
    assert_eq!((code, v["duplicate"].as_bool()), (200, Some(true)), "{v}");
    // A bearer trigger: Alertmanager's notification sent again (a replay, or
    // its retry) after its run ended starts nothing either.
    let firing = alertmanager_body(json!({"alertname": "JanitorDown"}), "firing");
    let (code, v) = s.call("POST", "/v1/triggers/am", &[("authorization", &auth)], &firing);
    assert_eq!(code, 202, "{v}");
    let am_run = v["runs"][0]["run_id"].as_str().unwrap().to_string();
    agent.wait_for_status(&am_run, "succeeded", Duration::from_secs(60)).unwrap();
    let (code, v) = s.call("POST", "/v1/triggers/am", &[("authorization", &auth)], &firing);
    assert_eq!((code, v["duplicate"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(v["runs"][0]["run_id"], am_run.as_str(), "{v}");
    assert_eq!(runs(&s).len(), 2, "one run per delivery");
    assert_eq!(metric(&s, "drover_trigger_requests_total{trigger=\"gen\",result=\"duplicate\"}"), Some(2.0));
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn two_simultaneous_alerts_start_one_run_approved_over_the_api_and_sigterm_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path());
    let hook = drover_e2e::Capture::start();
    let cfg = config(
        dir.path(),
        &format!(
            "{}\n[[serve.trigger]]\nname = \"am\"\nkind = \"alertmanager\"\nauth = {{ bearer_env = \"T_AM\" }}\nrunbook = \"janitor\"\nparams = {{ gate_after = 1 }}\nscope = \"app:{{app}}\"\n\
             \n[[serve.notify]]\nurl = \"http://{}/drover\"\nhmac_sha256_env = \"T_HMAC\"\n",
            runbook(artifacts::JANITOR),
            hook.addr
        ),
    );
    // The notifications `hook` received with `event`, each checked against its signature.
    let notified = |event: &str| -> Vec<Value> {
        hook.received()
            .into_iter()
            .filter(|r| {
                let (ts, sig) = (r.header("x-drover-timestamp").unwrap(), r.header("x-drover-signature").unwrap());
                assert_eq!(sig, drover_service::auth::sign(HMAC_KEY.as_bytes(), ts.parse().unwrap(), &r.body), "signed");
                r.json()["event"] == event
            })
            .map(|r| r.json())
            .collect()
    };
    let addr = format!("127.0.0.1:{}", free_port());
    let log = dir.path().join("serve.log");
    let s = Served::start(&agent, &cfg, &addr, &log);
    let body = alertmanager_body(json!({"alertname": "OrdersDown", "app": "orders"}), "firing");
    let other = alertmanager_body(json!({"alertname": "OrdersLatency", "app": "orders"}), "firing");
    let auth = bearer(AM_TOKEN);

    // Two alerts for the same outage at the same moment: one run.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let answers: Vec<(u16, Value)> = std::thread::scope(|sc| {
        let hs: Vec<_> = [&body, &other]
            .into_iter()
            .map(|body| {
                let (barrier, body, auth, addr) = (barrier.clone(), body.clone(), auth.clone(), addr.clone());
                sc.spawn(move || {
                    barrier.wait();
                    drover_e2e::http(&addr, "POST", "/v1/triggers/am", &[("authorization", &auth)], &body).unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|(c, _)| *c == 202), "{answers:?}");
    let ids: Vec<&str> = answers.iter().map(|(_, v)| v["runs"][0]["run_id"].as_str().unwrap()).collect();
    let joined: Vec<bool> = answers.iter().map(|(_, v)| v["runs"][0]["joined"].as_bool().unwrap()).collect();
    assert_eq!(ids[0], ids[1], "{answers:?}");
    assert_eq!(joined.iter().filter(|j| **j).count(), 1, "{answers:?}");
    assert_eq!(runs(&s).len(), 1);
    let id = ids[0].to_string();
    assert_eq!(metric(&s, "drover_runs_joined_total{runbook=\"janitor\"}"), Some(1.0));
    // The first alert's delivery sent again is a duplicate, not a third request to join.
    let (code, v) = s.call("POST", "/v1/triggers/am", &[("authorization", &auth)], &body);
    assert_eq!((code, v["duplicate"].as_bool(), v["runs"][0]["run_id"].as_str()), (200, Some(true), Some(id.as_str())), "{v}");
    assert_eq!(metric(&s, "drover_runs_joined_total{runbook=\"janitor\"}"), Some(1.0));

    // It waits at its gate, and the on-call webhook is told how to decide.
    agent.wait_for_status(&id, "waiting", Duration::from_secs(30)).unwrap();
    let page = wait_until("the approval notification", Duration::from_secs(10), || notified("approval-requested").into_iter().next());
    assert_eq!((page["run_id"].as_str(), page["gate"].as_str()), (Some(id.as_str()), Some("g1")), "{page}");
    assert_eq!(page["approve"], format!("drover approve {id} g1"));
    // The API lists it and approves it.
    let (_, pending) = api(&s, "GET", "/v1/approvals", &Value::Null);
    assert_eq!(pending["approvals"][0]["gate"], "g1", "{pending}");
    let (code, v) = api(&s, "POST", &format!("/v1/runs/{id}/approvals/g1"), &json!({"approve": "yes"}));
    assert_eq!(code, 400, "{v}");
    let (code, v) = api(&s, "POST", &format!("/v1/runs/{id}/approvals/g1"), &json!({"approve": true, "by": "sre-oncall", "comment": "go"}));
    assert_eq!(code, 200, "{v}");
    let done = agent.wait_for_status(&id, "succeeded", Duration::from_secs(30)).unwrap();
    let gate = done["waits"].as_array().unwrap().iter().find(|w| w["kind"] == "approval").unwrap().clone();
    // Who decided is who holds the token (the configuration names none: a
    // label of the token); what the body says of itself is only a claim.
    let holder = drover_service::auth::Verifier::Bearer(API_TOKEN.as_bytes().to_vec()).label();
    assert_eq!(gate["decision"]["by"], format!("{holder} (API; claimed: sre-oncall)"));
    // Deciding again is refused.
    let (code, _) = api(&s, "POST", &format!("/v1/runs/{id}/approvals/g1"), &json!({"approve": false, "by": "someone"}));
    assert_eq!(code, 409);
    let ended = wait_until("the run-ended notification", Duration::from_secs(10), || notified("run-ended").into_iter().find(|n| n["run_id"] == id.as_str()));
    assert_eq!(ended["status"], "succeeded", "{ended}");

    // The outage's run has ended: the next alert starts a new one, which
    // waits at its gate when the agent is told to stop.
    let next = alertmanager_body(json!({"alertname": "OrdersDown", "app": "orders"}), "firing");
    let (code, v) = s.call("POST", "/v1/triggers/am", &[("authorization", &auth)], &next);
    assert_eq!((code, v["runs"][0]["joined"].as_bool()), (202, Some(false)), "{v}");
    let second = v["runs"][0]["run_id"].as_str().unwrap().to_string();
    assert_ne!(second, id);
    agent.wait_for_status(&second, "waiting", Duration::from_secs(30)).unwrap();
    let t0 = Instant::now();
    let status = s.terminate();
    assert!(status.success(), "SIGTERM exits cleanly: {status}");
    assert!(t0.elapsed() < Duration::from_secs(8), "a run waiting at a gate does not hold the agent: {:?}", t0.elapsed());
    let left = agent.show(&second).unwrap();
    assert_eq!(left["status"], "waiting", "{left:#}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("run suspended"));

    // The next agent resumes it at its gate; `drover approve --agent` (the
    // CLI through the agent's API) lets it finish.
    let s = Served::start(&agent, &cfg, &addr, &log);
    let (_, health) = s.call("GET", "/v1/health", &[], b"");
    assert!(health["driving"].as_array().unwrap().iter().any(|d| d == second.as_str()), "{health}");
    let url = format!("http://{addr}");
    let remote = |args: &[&str], token: &str| agent.command(args).env("DROVER_API_TOKEN", token).output().unwrap();
    let out = remote(&["approvals", "--agent", &url, "--json"], API_TOKEN);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["run_id"], second.as_str(), "{listed}");
    let out = remote(&["approve", &second, "g1", "--agent", &url], "not-the-token-0123456789");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the API token"), "{}", String::from_utf8_lossy(&out.stderr));
    // Paused through the agent before the decision: approved, it holds
    // before its next step until unpaused through the agent.
    let out = remote(&["pause", &second, "--agent", &url, "--reason", "checking the replica"], API_TOKEN);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = remote(&["approve", &second, "g1", "--agent", &url, "--comment", "from my laptop"], API_TOKEN);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until("the paused run to hold before s2", Duration::from_secs(30), || {
        let r = agent.show(&second)?;
        let held = r["events"].as_array()?.iter().any(|e| e["message"].as_str().is_some_and(|m| m.contains("paused before step 's2'")));
        (held && r["status"] == "waiting").then_some(())
    });
    assert_eq!(agent.attempt_count(&second, "s2"), 0, "nothing runs while paused");
    let out = remote(&["unpause", &second, "--agent", &url, "--reason", "replica is fine"], API_TOKEN);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    agent.wait_for_status(&second, "succeeded", Duration::from_secs(30)).unwrap();
    // An ended run is neither paused nor redriven through the agent: its answer says why.
    let out = remote(&["pause", &second, "--agent", &url, "--reason", "late"], API_TOKEN);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("answered 409: run '"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = remote(&["redrive", &second, "--agent", &url, "--reason", "again"], API_TOKEN);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("it succeeded"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(agent.attempt_count(&second, "s1"), 1, "the step before the gate ran once");
    drop(s);
}

/// A cron drill: `dr-drill` on the demo topology fires at its slot, runs
/// unattended against the emulators, and passes; the metrics show its RTO.
#[test]
fn a_cron_drill_fires_and_succeeds() {
    let (_c, seeded) = seeded("cron");
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path());
    let slot = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 4;
    let (h, m, sec) = ((slot / 3600) % 24, (slot / 60) % 60, slot % 60);
    let params = toml_params(&seeded.topology.drill_params());
    let cfg = config(
        dir.path(),
        &format!(
            "{}\n[[serve.drill]]\nname = \"nightly\"\nrunbook = \"dr-drill\"\ncron = \"{sec} {m} {h} * * *\"\nscope = \"orders\"\nparams = {{ {} }}\n",
            runbook(artifacts::DR_DRILL),
            params
        ),
    );
    let s = Served::start(&agent, &cfg, &format!("127.0.0.1:{}", free_port()), &dir.path().join("serve.log"));
    let run = wait_until("the drill to run", Duration::from_secs(60), || runs(&s).into_iter().next());
    let id = run["run_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("drill-nightly-"), "{id}");
    let done = agent
        .wait_for_status(&id, "succeeded", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}: {:#}\n{}", agent.show(&id).unwrap_or_default(), s.log_text()));
    assert_eq!(done["result"]["verdict"], "pass", "{done:#}");
    assert_eq!(run["origin"]["kind"], "drill");
    assert_eq!(run["origin"]["unattended"], true);
    let rto = wait_until("the drill's RTO metric", Duration::from_secs(10), || metric(&s, "drover_last_drill_rto_seconds{runbook=\"dr-drill\"}"));
    assert!((rto - done["result"]["rto_seconds"].as_f64().unwrap()).abs() < 1e-6);
    assert_eq!(runs(&s).len(), 1, "one slot, one run");
    // The drill's AWS requests are timed, per service and operation.
    let text = drover_e2e::http_text(&s.addr, "/metrics").unwrap();
    let restore = text
        .lines()
        .find(|l| l.starts_with("drover_aws_call_duration_seconds_count{") && l.contains("operation=\"RestoreDBInstanceFromDBSnapshot\""))
        .unwrap_or_else(|| panic!("no latency of the drill's restore request:\n{text}"));
    assert!(restore.contains("service=\"rds\"") || restore.contains("service=\"RDS\""), "{restore}");
    assert!(restore.rsplit(' ').next().unwrap().parse::<f64>().unwrap() >= 1.0, "{restore}");
    let _ = rt();
}

/// A real Prometheus scrapes `/metrics` and reads the run counters with
/// their labels, as an alerting rule would.
#[test]
fn prometheus_scrapes_the_run_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path());
    let cfg = config(
        dir.path(),
        &format!(
            "{}\n[[serve.trigger]]\nname = \"am\"\nkind = \"alertmanager\"\nauth = {{ bearer_env = \"T_AM\" }}\nrunbook = \"janitor\"\nparams = {{ fail_at = 2 }}\n",
            runbook(artifacts::JANITOR)
        ),
    );
    let s = Served::start(&agent, &cfg, &format!("127.0.0.1:{}", free_port()), &dir.path().join("serve.log"));
    let (code, v) = s.call("POST", "/v1/triggers/am", &[("authorization", &bearer(AM_TOKEN))], &alertmanager_body(json!({"alertname": "X"}), "firing"));
    assert_eq!(code, 202, "{v}");
    agent.wait_for_status(v["runs"][0]["run_id"].as_str().unwrap(), "failed", Duration::from_secs(30)).unwrap();

    let prom_addr = format!("127.0.0.1:{}", free_port());
    let prom_cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!("global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: drover\n    static_configs: [{{targets: ['{}']}}]\n", s.addr),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let mut prom = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", prom_cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("prom-data").display()))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("prometheus runs (scripts/test installs it: apt-get install prometheus)");
    let query = "/api/v1/query?query=drover_runs_total";
    let series = wait_until("Prometheus to scrape drover_runs_total", Duration::from_secs(60), || {
        let (code, v) = drover_e2e::http(&prom_addr, "GET", query, &[], b"").ok()?;
        let r = v["data"]["result"].as_array()?.clone();
        (code == 200 && !r.is_empty()).then_some(r)
    });
    drover_chaos::kill9(&mut prom);
    let metric = &series[0]["metric"];
    assert_eq!(
        (metric["runbook"].as_str(), metric["outcome"].as_str(), metric["job"].as_str()),
        (Some("janitor"), Some("failed"), Some("drover")),
        "{series:?}"
    );
    assert_eq!(series[0]["value"][1], "1");
}

/// A real Prometheus Alertmanager on loopback, stopped when dropped.
struct Alertmanager {
    child: std::process::Child,
    addr: String,
}

impl Alertmanager {
    /// Starts one that sends every alert to `webhook` with `token`.
    fn start(dir: &Path, webhook: &str, token: &str) -> Alertmanager {
        let cfg = dir.join("alertmanager.yml");
        std::fs::write(
            &cfg,
            format!(
                "route: {{receiver: drover, group_wait: 1s, group_interval: 1s, repeat_interval: 1h}}\n\
                 receivers:\n  - name: drover\n    webhook_configs:\n      - url: {webhook}\n        \
                 http_config: {{authorization: {{type: Bearer, credentials: {token}}}}}\n"
            ),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.join("alertmanager.log")).unwrap();
        let child = std::process::Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus-alertmanager runs (scripts/test installs it: apt-get install prometheus-alertmanager)");
        let am = Alertmanager { child, addr };
        wait_until("Alertmanager to be ready", Duration::from_secs(30), || {
            matches!(drover_e2e::http(&am.addr, "GET", "/-/ready", &[], b""), Ok((200, _))).then_some(())
        });
        am
    }

    /// Fires an alert with `labels`, as Prometheus would.
    fn fire(&self, labels: Value) {
        let body = json!([{"labels": labels, "annotations": {"summary": "orders primary is down"}}]).to_string();
        let (code, v) = drover_e2e::http(&self.addr, "POST", "/api/v2/alerts", &[("content-type", "application/json")], body.as_bytes()).unwrap();
        assert_eq!(code, 200, "Alertmanager took the alert: {v}");
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        drover_chaos::kill9(&mut self.child);
    }
}

/// The incident path for real: Alertmanager sends the alert to the
/// trigger (bearer token), the failover starts and waits at its approval
/// gate with nothing changed; the agent is SIGKILLed there; the next agent
/// resumes the wait; `drover approve` lets the failover complete.
#[test]
fn an_alertmanager_alert_fails_over_after_approval_even_across_sigkill() {
    use drover_chaos::hypothesis::{Probe, check};
    let (c, seeded) = seeded("am");
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path());
    let params = toml_params(&seeded.topology.params());
    let cfg = config(
        dir.path(),
        &format!(
            "{}\n[[serve.trigger]]\nname = \"orders\"\nkind = \"alertmanager\"\nauth = {{ bearer_env = \"T_AM\" }}\nmatch = {{ alertname = \"OrdersPrimaryDown\" }}\n\
             runbook = \"regional-failover\"\nscope = \"app:{{app}}\"\nparams = {{ {}, approval = true }}\n",
            runbook(artifacts::REGIONAL_FAILOVER),
            params
        ),
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let log = dir.path().join("serve.log");
    let s = Served::start(&agent, &cfg, &addr, &log);
    let am = Alertmanager::start(dir.path(), &format!("http://{addr}/v1/triggers/orders"), AM_TOKEN);
    am.fire(json!({"alertname": "OrdersPrimaryDown", "app": seeded.topology.db_instance, "severity": "critical"}));

    let run = wait_until("Alertmanager's alert to start a run", Duration::from_secs(30), || runs(&s).into_iter().next());
    let id = run["run_id"].as_str().unwrap().to_string();
    assert_eq!(run["origin"]["source"], "alertmanager");
    assert_eq!(run["origin"]["alerts"][0]["labels"]["alertname"], "OrdersPrimaryDown");
    agent.wait_for_status(&id, "waiting", Duration::from_secs(60)).unwrap();
    let (_, pending) = api(&s, "GET", "/v1/approvals", &Value::Null);
    let message = pending["approvals"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("Nothing has been changed yet") && message.contains(&seeded.topology.replica), "{message}");
    let untouched = |context: &str| {
        rt().block_on(async {
            for p in [Probe::DbRecordOnPrimary, Probe::AppWeightsOnPrimary, Probe::ReplicaNotPromoted] {
                let k = check(&c, &seeded, p).await;
                assert!(k.ok, "{context}: {:?}: {}", k.probe, k.detail);
            }
        })
    };
    untouched("waiting for approval");

    // SIGKILL while the failover waits for a person.
    s.kill();
    assert_eq!(agent.show(&id).unwrap()["status"], "waiting");
    let s = Served::start(&agent, &cfg, &addr, &log);
    let (_, health) = s.call("GET", "/v1/health", &[], b"");
    assert!(health["driving"].as_array().unwrap().iter().any(|d| d == id.as_str()), "resumed on start: {health}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(agent.show(&id).unwrap()["status"], "waiting", "the resumed run waits at its gate again");
    untouched("resumed, still waiting");

    let out = agent.output(&["approve", &id, "failover", "--comment", "primary region confirmed down"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let done = agent.wait_for_status(&id, "succeeded", Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}\n{}", s.log_text()));
    assert_eq!(done["result"]["rto_met"], true, "{done:#}");
    rt().block_on(async {
        for p in [Probe::ReplicaPromotedOnce, Probe::DbRecordOnReplica, Probe::AppWeightsOnDr] {
            let k = check(&c, &seeded, p).await;
            assert!(k.ok, "after approval: {:?}: {}", k.probe, k.detail);
        }
    });
    assert_eq!(agent.attempt_count(&id, "preflight"), 1, "the step before the gate ran once");
    assert_eq!(runs(&s).len(), 1, "Alertmanager's repeats joined the one run");
}

/// The CloudWatch path for real (LocalStack): an HTTP subscription to the
/// trigger is confirmed by the agent through the SNS API; an alarm going to
/// ALARM is delivered by SNS (with the token as HTTP Basic credentials from
/// the subscription URL) and starts the runbook; a message of another topic
/// is refused.
#[test]
fn a_cloudwatch_alarm_through_sns_starts_the_runbook_after_the_handshake() {
    drover_e2e::emulators_configured();
    const SNS_TOKEN: &str = "sns-subscription-token-0123";
    let suffix = format!("{:06x}", rand::random::<u32>() & 0xffffff);
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path()).with_env("T_SNS", SNS_TOKEN);
    let rt = rt();
    let clients = rt.block_on(drover_aws::Clients::load());
    let (sns, cw) = (clients.sns("us-east-1"), clients.cloudwatch("us-east-1"));
    let topic = rt.block_on(sns.create_topic().name(format!("drover-alarms-{suffix}")).send()).unwrap().topic_arn().unwrap().to_string();
    let alarm = format!("orders-5xx-{suffix}");
    let cfg = config(
        dir.path(),
        &format!(
            "{}\n[[serve.trigger]]\nname = \"cw\"\nkind = \"sns\"\ntopic_arn = \"{topic}\"\nauth = {{ bearer_env = \"T_SNS\" }}\nmatch = {{ AlarmName = \"{alarm}\" }}\nrunbook = \"janitor\"\n",
            runbook(artifacts::JANITOR)
        ),
    );
    let s = Served::start(&agent, &cfg, &format!("127.0.0.1:{}", free_port()), &dir.path().join("serve.log"));

    // Subscribing makes SNS post the confirmation; the agent confirms it.
    let endpoint = format!("http://drover:{SNS_TOKEN}@{}/v1/triggers/cw", s.addr);
    rt.block_on(sns.subscribe().topic_arn(&topic).protocol("http").endpoint(&endpoint).send()).unwrap();
    // SNS lists the subscription as confirmed as soon as its API has taken
    // the agent's ConfirmSubscription, a moment before the agent logs it.
    wait_until("the subscription to be confirmed, by the agent", Duration::from_secs(30), || {
        let subs = rt.block_on(sns.list_subscriptions_by_topic().topic_arn(&topic).send()).ok()?;
        let confirmed = subs.subscriptions().iter().any(|x| x.subscription_arn().is_some_and(|a| a.starts_with("arn:")));
        (confirmed && s.log_text().contains("SNS subscription confirmed")).then_some(())
    });

    // The alarm fires: SNS delivers it, and the runbook starts.
    rt.block_on(
        cw.put_metric_alarm()
            .alarm_name(&alarm)
            .namespace("Drover/Test")
            .metric_name("Errors5xx")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold)
            .alarm_actions(&topic)
            .send(),
    )
    .unwrap();
    rt.block_on(
        cw.set_alarm_state().alarm_name(&alarm).state_value(aws_sdk_cloudwatch::types::StateValue::Alarm).state_reason("game-day: 5xx over threshold").send(),
    )
    .unwrap();
    let run = wait_until("the alarm to start a run", Duration::from_secs(30), || runs(&s).into_iter().next());
    assert_eq!(run["origin"]["source"], "sns", "{run:#}");
    assert_eq!(run["origin"]["alerts"][0]["labels"]["AlarmName"], alarm.as_str());
    agent.wait_for_status(run["run_id"].as_str().unwrap(), "succeeded", Duration::from_secs(30)).unwrap();

    // A message of another topic is refused, even with the token.
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("drover:{SNS_TOKEN}")));
    let other = json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:000000000000:elsewhere", "Message": format!("{{\"AlarmName\":\"{alarm}\",\"NewStateValue\":\"ALARM\"}}")});
    let (code, _) = s.call("POST", "/v1/triggers/cw", &[("authorization", &basic), ("x-amz-sns-message-type", "Notification")], other.to_string().as_bytes());
    assert_eq!(code, 403);
    assert_eq!(runs(&s).len(), 1);
}

/// Anti-flapping: per runbook and scope, triggers start runs at least
/// `min_interval_seconds` apart, and none after a failed automatic run until
/// an operator clears the hold; each refusal says why and until when, and is
/// counted. Redrive and unblock work over the API with the caller recorded.
#[test]
fn alerts_that_flap_start_one_run_and_a_failed_one_holds_until_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path());
    let hook = drover_e2e::Capture::start();
    let trigger = |name: &str, alert: &str, runbook: &str, scope: &str, min_interval: u32| {
        format!(
            "\n[[serve.trigger]]\nname = \"{name}\"\nkind = \"alertmanager\"\nauth = {{ bearer_env = \"T_AM\" }}\nmatch = {{ alertname = \"{alert}\" }}\n\
             runbook = \"{runbook}\"\nparams = {{ steps = 2 }}\nparams_from_labels = {{ fail_at = \"fail_at\" }}\nscope = \"{scope}\"\nmin_interval_seconds = {min_interval}\n"
        )
    };
    let cfg = config(
        dir.path(),
        &format!(
            "{}{}{}{}{}\n[[serve.notify]]\nurl = \"http://{}/drover\"\nevents = [\"control\"]\n",
            runbook(artifacts::JANITOR),
            runbook(artifacts::PROBE),
            trigger("am", "OrdersDown", "janitor", "app:{app}", 600),
            trigger("flaky", "FlakyDown", "probe", "flaky:{app}", 0),
            trigger("tidy", "TidyDown", "janitor", "tidy:{app}", 0),
            hook.addr
        ),
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let s = Served::start(&agent, &cfg, &addr, &dir.path().join("serve.log"));
    let auth = bearer(AM_TOKEN);
    let fire = |trigger: &str, alert: &str, app: &str, fail_at: u32| {
        let body = alertmanager_body(json!({"alertname": alert, "app": app, "fail_at": fail_at.to_string()}), "firing");
        s.call("POST", &format!("/v1/triggers/{trigger}"), &[("authorization", &auth)], &body)
    };

    // An alert starts a failover, which ends; the alert fires again (the
    // flap) seconds later: held until 600 s after the first run started.
    let (code, v) = fire("am", "OrdersDown", "orders", 0);
    assert_eq!(code, 202, "{v}");
    let first = v["runs"][0]["run_id"].as_str().unwrap().to_string();
    let done = agent.wait_for_status(&first, "succeeded", Duration::from_secs(30)).unwrap();
    let (code, v) = fire("am", "OrdersDown", "orders", 0);
    assert_eq!(code, 200, "a held trigger is answered, not failed (the sender must not retry into the hold): {v}");
    assert_eq!(v["runs"], json!([]), "{v}");
    let held = &v["held"][0];
    assert_eq!((held["scope"].as_str(), held["held_by"].as_str()), (Some("app:orders"), Some(first.as_str())), "{v}");
    let created = chrono::DateTime::parse_from_rfc3339(done["started_at"].as_str().unwrap()).unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(held["until"].as_str().unwrap()).unwrap();
    assert_eq!((until - created).num_seconds(), 600, "{v}");
    assert!(held["reason"].as_str().unwrap().contains("at least 600 s apart"), "{v}");
    assert_eq!(runs(&s).len(), 1);
    assert_eq!(metric(&s, "drover_trigger_requests_total{trigger=\"am\",result=\"held\"}"), Some(1.0));
    // Pause over the API: refused for an ended run and an unknown one.
    let (code, v) = api(&s, "POST", &format!("/v1/runs/{first}/pause"), &json!({"reason": "look"}));
    assert_eq!(code, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("there is nothing to pause"), "{v}");
    assert_eq!(api(&s, "POST", "/v1/runs/nope/unpause", &json!({"reason": "go"})).0, 404);
    // Another scope is not held by it.
    let (code, v) = fire("am", "OrdersDown", "billing", 0);
    assert_eq!(code, 202, "{v}");

    // An automatic run that fails holds its scope until an operator clears it.
    let (code, v) = fire("flaky", "FlakyDown", "cart", 1);
    assert_eq!(code, 202, "{v}");
    let failed = v["runs"][0]["run_id"].as_str().unwrap().to_string();
    agent.wait_for_status(&failed, "failed", Duration::from_secs(30)).unwrap();
    let (code, v) = fire("flaky", "FlakyDown", "cart", 0);
    assert_eq!((code, v["held"][0]["held_by"].as_str(), v["held"][0]["until"].is_null()), (200, Some(failed.as_str()), true), "{v}");
    assert!(v["held"][0]["reason"].as_str().unwrap().contains(&format!("drover unblock {failed}")), "{v}");
    // A manual run is not held, and says that the hold exists.
    let out = agent.output(&["run", artifacts::PROBE, "-p", "steps=1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("note: automatic runs of probe in scope 'flaky:cart' are held") && said.contains("(this manual run is not held)"), "{said}");
    // Redriven over the API (its step fails again: the fault is in its parameters).
    let (code, v) = api(&s, "POST", &format!("/v1/runs/{failed}/redrive"), &json!({"reason": ""}));
    assert_eq!(code, 400, "{v}");
    let (code, v) = api(&s, "POST", &format!("/v1/runs/{failed}/redrive"), &json!({"reason": "try s1 once more", "by": "sre-oncall"}));
    assert_eq!((code, v["from_step"].as_str()), (202, Some("s1")), "{v}");
    wait_until("the redriven run to fail again", Duration::from_secs(30), || {
        let r = agent.show(&failed)?;
        (r["status"] == "failed" && agent.attempt_count(&failed, "s1") == 2).then_some(())
    });
    // The on-call webhook is told (and only of controls: its events say so).
    let told = wait_until("the redrive notification", Duration::from_secs(10), || {
        hook.received().into_iter().map(|r| r.json()).find(|n| n["run_id"] == failed.as_str())
    });
    assert_eq!((told["event"].as_str(), told["control"].as_str(), told["step"].as_str()), (Some("run-control"), Some("redrive"), Some("s1")), "{told}");
    assert!(told["by"].as_str().unwrap().ends_with("(API; claimed: sre-oncall)"), "{told}");
    assert!(hook.received().iter().all(|r| r.json()["event"] == "run-control"), "only controls were asked for");
    let (code, v) = api(&s, "POST", &format!("/v1/runs/{}/redrive", first), &json!({"reason": "again"}));
    assert_eq!(code, 409, "a succeeded run is not redriven: {v}");
    assert!(v["error"].as_str().unwrap().contains("it succeeded"), "{v}");
    // A failed run whose cleanups ran (the janitor registers one before its
    // first step) is not redriven: what they removed is gone.
    let (code, v) = fire("tidy", "TidyDown", "shelf", 1);
    assert_eq!(code, 202, "{v}");
    let tidy = v["runs"][0]["run_id"].as_str().unwrap().to_string();
    agent.wait_for_status(&tidy, "failed", Duration::from_secs(30)).unwrap();
    let (code, v) = api(&s, "POST", &format!("/v1/runs/{tidy}/redrive"), &json!({"reason": "again"}));
    assert_eq!(code, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("cleanup:c1 (registered before the first step) ran after it ended (succeeded)"), "{v}");
    assert_eq!(agent.show(&tidy).unwrap()["status"], "failed");
    // Cleared over the API: the next alert starts a run.
    let (code, v) = api(&s, "POST", &format!("/v1/runs/{failed}/unblock"), &json!({"reason": "cart fixed", "by": "sre-oncall"}));
    assert_eq!(code, 200, "{v}");
    let (code, v) = api(&s, "POST", &format!("/v1/runs/{failed}/unblock"), &json!({"reason": "again"}));
    assert_eq!(code, 409, "{v}");
    let out = agent
        .command(&["unblock", &failed, "--agent", &format!("http://{}", s.addr), "--reason", "again"])
        .env("DROVER_API_TOKEN", API_TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("answered 409"), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, v) = fire("flaky", "FlakyDown", "cart", 0);
    assert_eq!(code, 202, "{v}");
    let shown = agent.show(&failed).unwrap();
    let controls: Vec<&str> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["fields"].as_array().unwrap().iter().any(|f| f[0] == "control"))
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(controls.len() == 2 && controls.iter().all(|m| m.contains("(API; claimed: sre-oncall)")), "{controls:?}");
    assert_eq!(metric(&s, "drover_trigger_requests_total{trigger=\"flaky\",result=\"held\"}"), Some(1.0));
}
