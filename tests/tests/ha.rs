//! Agents in several regions, for real: three `drover serve` processes on
//! loopback share one DynamoDB table (moto's server), every AWS request of
//! theirs (the store's included) going through the chaos proxy, which counts
//! what the emulators accepted. The driver of a failover is SIGKILLed, or
//! frozen with SIGSTOP past its lease and let go again; DynamoDB throttles.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_chaos::Agent;
use drover_chaos::faults::{Fault, Faults, Rule};
use drover_chaos::hypothesis::{Probe, check};
use drover_chaos::proxy::{Proxy, Upstreams};
use drover_e2e::{Served, free_port, metric, rt, seeded, toml_params, wait_until};
use drover_journal::Journal;
use drover_journal_dynamodb::{DynamoConfig, DynamoJournal};
use drover_test_artifacts as artifacts;
use serde_json::{Value, json};

const API_TOKEN: &str = "api-token-0123456789abcdef";
const AM_TOKEN: &str = "alertmanager-token-0123456789";
/// Short, so that takeovers happen within a test's patience.
const LEASE_SECONDS: u64 = 3;

/// A proxy in front of the emulators (no faults unless a test adds them),
/// on a runtime of its own that lives as long as it does.
struct Counted {
    proxy: Proxy,
    _rt: tokio::runtime::Runtime,
    upstreams: Upstreams,
}

impl Counted {
    fn start() -> Counted {
        drover_e2e::emulators_configured();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let upstreams = Upstreams::from_env().expect("the emulators' endpoints are set");
        let proxy = rt.block_on(Proxy::start(upstreams.clone(), Arc::new(Faults::new(7)))).unwrap();
        Counted { proxy, _rt: rt, upstreams }
    }

    fn faults(&self) -> &Arc<Faults> {
        self.proxy.faults()
    }

    fn accepted(&self, service: &str, operation: &str) -> u64 {
        self.faults().accepted_count(service, operation)
    }

    /// The requests the emulators accepted that change something (AWS
    /// mutations and store writes), by `service:Operation`.
    fn writes(&self) -> std::collections::BTreeMap<String, u64> {
        let reads = ["Describe", "List", "Get", "Query", "Scan", "BatchGet"];
        let mut all = self.faults().accepted();
        all.retain(|op, _| !reads.iter().any(|r| op.split_once(':').is_some_and(|(_, o)| o.starts_with(r))));
        all
    }
}

/// A new table of its own, created with `drover store init`; the
/// configuration file naming it (with the demo grants and `serve`).
fn store_and_config(dir: &Path, counted: &Counted, serve: &str) -> (PathBuf, DynamoConfig) {
    let table = format!("drover-ha-{:08x}", rand::random::<u32>());
    let demo = std::fs::read_to_string(drover_e2e::demo_config()).unwrap();
    // The example's grants and limits (before its `[serve]`), without its `store`.
    let grants: String = demo.split("\n[serve]").next().unwrap().lines().filter(|l| !l.starts_with("store =")).map(|l| format!("{l}\n")).collect();
    let path = dir.join("drover.toml");
    std::fs::write(
        &path,
        format!(
            "store = {{ dynamodb = {{ table = \"{table}\", region = \"us-east-1\", lease_seconds = {LEASE_SECONDS} }} }}\n{grants}\n\
             [serve]\napi_token_env = \"T_API\"\nshutdown_grace_seconds = 10\n{serve}"
        ),
    )
    .unwrap();
    let init = agent(dir, "init", counted, &path).output(&["store", "init"]);
    let out = String::from_utf8_lossy(&init.stdout);
    assert!(init.status.success() && out.contains("created"), "{out}{}", String::from_utf8_lossy(&init.stderr));
    let again = agent(dir, "init", counted, &path).output(&["store", "init"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("exists already"), "init twice leaves the table");
    (path, DynamoConfig { table, region: "us-east-1".into(), lease: Duration::from_secs(LEASE_SECONDS) })
}

/// Agent `name`: a home of its own, the shared configuration, every AWS
/// endpoint (DynamoDB's too) at the counting proxy.
fn agent(dir: &Path, name: &str, counted: &Counted, config: &Path) -> Agent {
    let mut a = Agent::new(dir.join(name))
        .with_env("T_API", API_TOKEN)
        .with_env("T_AM", AM_TOKEN)
        .with_env("DROVER_CONFIG", config.to_str().unwrap())
        .with_env("DROVER_LOG", "info,drover_engine=warn");
    for (k, v) in counted.upstreams.env_for(&counted.proxy.url()) {
        a = a.with_env(&k, &v);
    }
    a
}

fn serve(dir: &Path, agent: &Agent, name: &str, config: &Path) -> Served {
    Served::start(agent, config, &format!("127.0.0.1:{}", free_port()), &dir.join(format!("{name}.log")))
}

fn alert(s: &Served, app: &str) -> (u16, Value) {
    alert_firing_since(s, app, "2026-12-05T10:00:00Z")
}

/// The alert of a firing that started at `starts_at` (an agent takes a
/// notification it has already received as a duplicate).
fn alert_firing_since(s: &Served, app: &str, starts_at: &str) -> (u16, Value) {
    let body = json!({"version": "4", "status": "firing", "receiver": "drover", "groupKey": "{}:{}",
                      "alerts": [{"status": "firing", "labels": {"alertname": "PrimaryDown", "app": app}, "annotations": {}, "fingerprint": "f1", "startsAt": starts_at}]});
    let auth = format!("Bearer {AM_TOKEN}");
    s.call("POST", "/v1/triggers/am", &[("authorization", &auth)], body.to_string().as_bytes())
}

fn trigger(runbook: &str, params: &str) -> String {
    format!(
        "[[serve.runbook]]\npath = \"{runbook}\"\n\n[[serve.trigger]]\nname = \"am\"\nkind = \"alertmanager\"\nauth = {{ bearer_env = \"T_AM\" }}\n\
         runbook = \"{}\"\nscope = \"app:{{app}}\"\nparams = {{ {params} }}\n",
        if runbook.contains("regional") { "regional-failover" } else { "janitor" }
    )
}

/// The store itself, read by the test (attempts, the journal).
/// It is reached directly (`AWS_ENDPOINT_URL_DYNAMODB` of `scripts/test`),
/// not through the proxy, so that its reads are not counted.
fn store(config: &DynamoConfig) -> (tokio::runtime::Runtime, DynamoJournal) {
    let rt = rt();
    let j = rt.block_on(DynamoJournal::open(config.clone()));
    (rt, j)
}

fn attempts_of(config: &DynamoConfig, run_id: &str, key: &str) -> usize {
    let (rt, j) = store(config);
    rt.block_on(j.attempts(run_id)).unwrap().iter().filter(|a| a.key == key).count()
}

#[test]
fn one_alert_sent_to_three_agents_starts_one_run() {
    let counted = Counted::start();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, store_cfg) = store_and_config(dir.path(), &counted, &trigger(artifacts::JANITOR, "steps = 3"));
    let agents: Vec<Agent> = ["a", "b", "c"].iter().map(|n| agent(dir.path(), n, &counted, &cfg)).collect();
    let served: Vec<Served> = agents.iter().zip(["a", "b", "c"]).map(|(a, n)| serve(dir.path(), a, n, &cfg)).collect();

    // The same alert reaches the three agents at the same moment.
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let answers: Vec<(u16, Value)> = std::thread::scope(|sc| {
        let hs: Vec<_> = served
            .iter()
            .map(|s| {
                let barrier = barrier.clone();
                sc.spawn(move || {
                    barrier.wait();
                    alert(s, "orders")
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|(c, _)| *c == 202), "{answers:?}");
    let ids: Vec<&str> = answers.iter().map(|(_, v)| v["runs"][0]["run_id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "every agent names the one run: {answers:?}");
    let started = answers.iter().filter(|(_, v)| v["runs"][0]["joined"] == false).count();
    assert_eq!(started, 1, "one agent started it, two joined it: {answers:?}");
    let id = ids[0].to_string();
    agents[1].wait_for_status(&id, "succeeded", Duration::from_secs(60)).unwrap();
    let (_, listed) = agents[2].json(&["runs", "--json"]).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "one run in the shared store: {listed}");
    for step in ["s1", "s2", "s3"] {
        assert_eq!(attempts_of(&store_cfg, &id, step), 1, "{step} ran once");
    }
    // Every agent's API sees it.
    for s in &served {
        let auth = format!("Bearer {API_TOKEN}");
        let (code, v) = s.call("GET", &format!("/v1/runs/{id}"), &[("authorization", &auth)], b"");
        assert_eq!((code, v["run"]["status"].as_str()), (200, Some("succeeded")), "{v}");
    }
    // The outage is over: the next alert (a new firing), to any agent, starts a new run.
    let (code, v) = alert_firing_since(&served[2], "orders", "2026-12-05T11:00:00Z");
    assert_eq!((code, v["runs"][0]["joined"].as_bool()), (202, Some(false)), "{v}");
    assert_ne!(v["runs"][0]["run_id"].as_str(), Some(id.as_str()));
}

/// A failover on three agents: a seeded demo topology, a new table, agents
/// b and c serving, and agent a serving with `failpoints` armed.
struct Failover {
    counted: Counted,
    clients: drover_aws::Clients,
    seeded: drover_chaos::topology::Seeded,
    store: DynamoConfig,
    survivors: Vec<Served>,
    a: Agent,
    driver: Served,
    _dir: tempfile::TempDir,
}

impl Failover {
    fn start(name: &str, failpoints: &str) -> Failover {
        let counted = Counted::start();
        let (clients, seeded) = seeded(name);
        let dir = tempfile::tempdir().unwrap();
        let params = toml_params(&seeded.topology.params());
        let (cfg, store) = store_and_config(dir.path(), &counted, &trigger(artifacts::REGIONAL_FAILOVER, &params));
        let survivors = ["b", "c"].iter().map(|n| serve(dir.path(), &agent(dir.path(), n, &counted, &cfg), n, &cfg)).collect();
        let a = agent(dir.path(), "a", &counted, &cfg).with_env("DROVER_FAILPOINTS", failpoints);
        let driver = serve(dir.path(), &a, "a", &cfg);
        Failover { counted, clients, seeded, store, survivors, a, driver, _dir: dir }
    }

    /// Sends the outage's alert to agent a, which starts the run: its id.
    fn alert_the_driver(&self) -> String {
        let (code, v) = alert(&self.driver, &self.seeded.topology.db_instance);
        assert_eq!((code, v["runs"][0]["joined"].as_bool()), (202, Some(false)), "{v}");
        v["runs"][0]["run_id"].as_str().unwrap().to_string()
    }

    /// Waits for a survivor to finish run `id`.
    fn succeeded(&self, id: &str) -> Value {
        self.a
            .wait_for_status(id, "succeeded", Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("{e}\n--- b ---\n{}\n--- c ---\n{}", self.survivors[0].log_text(), self.survivors[1].log_text()))
    }

    /// The probes of a failover done once.
    fn failed_over(&self) {
        rt().block_on(async {
            for p in [Probe::ReplicaPromotedOnce, Probe::DbRecordOnReplica, Probe::AppWeightsOnDr] {
                let k = check(&self.clients, &self.seeded, p).await;
                assert!(k.ok, "{:?}: {}", k.probe, k.detail);
            }
        });
    }
}

/// The failover's driver dies right after promoting the replica (before
/// the promotion is journaled). A survivor takes the lease once it runs out
/// and finishes from the journal: the promotion is sent once, each DNS
/// change once.
#[test]
fn the_driver_of_a_failover_is_killed_and_a_survivor_finishes_it_with_one_promotion() {
    let mut f = Failover::start("ha-kill", "before-complete:promote");
    let id = f.alert_the_driver();
    let died = wait_until("the driver to die at its failpoint", Duration::from_secs(120), || {
        f.driver.child.as_mut().unwrap().try_wait().unwrap().map(|_| Instant::now())
    });
    assert!(f.driver.log_text().contains("failpoint before-complete:promote hit"), "{}", f.driver.log_text());
    assert_eq!(f.counted.accepted("rds", "PromoteReadReplica"), 1, "the driver promoted before dying");

    let done = f.succeeded(&id);
    let takeover = died.elapsed();
    assert_eq!(done["result"]["rto_met"], true, "{done:#}");
    assert!(f.survivors.iter().any(|s| s.log_text().contains("taking over runs")), "a survivor took the run over");
    let resumed: f64 = f.survivors.iter().filter_map(|s| metric(s, "drover_runs_resumed_total{runbook=\"regional-failover\"}")).sum();
    assert_eq!(resumed, 1.0, "one survivor resumed it");
    eprintln!("takeover: the run succeeded {takeover:?} after its driver died (lease {LEASE_SECONDS} s)");

    let accepted = f.counted.faults().accepted();
    assert_eq!(f.counted.accepted("rds", "PromoteReadReplica"), 1, "no second promotion: {accepted:?}");
    assert_eq!(attempts_of(&f.store, &id, "promote"), 2, "the promotion step was re-entered once, with its idempotency key");
    for step in ["preflight", "point-db-record", "shift-app-weights", "verify"] {
        assert_eq!(attempts_of(&f.store, &id, step), 1, "{step} ran once");
    }
    assert_eq!(f.counted.accepted("route53", "ChangeResourceRecordSets"), 2, "one DNS change per DNS step: {accepted:?}");
    f.failed_over();
}

/// The failover's driver freezes (SIGSTOP) after journaling the promotion
/// step's begin, before sending it. A survivor takes over when the lease
/// runs out and finishes. Then the frozen driver wakes (SIGCONT): its lease
/// is gone, so its promotion is refused before it leaves the process and
/// it writes nothing; the final state is the survivor's.
#[test]
fn a_driver_frozen_past_its_lease_is_fenced_out_when_it_wakes() {
    let f = Failover::start("ha-stop", "in-step:promote=stop");
    let pid = f.driver.child.as_ref().unwrap().id();
    let id = f.alert_the_driver();
    wait_until("the driver to freeze at its failpoint", Duration::from_secs(120), || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('T')).then_some(())
    });
    let done = f.succeeded(&id);
    assert_eq!(done["status"], "succeeded");
    assert_eq!(f.counted.accepted("rds", "PromoteReadReplica"), 1, "the survivor promoted");
    let (rt, journal) = store(&f.store);
    let snapshot = || rt.block_on(async { (journal.run(&id).await.unwrap(), journal.entries(&id).await.unwrap(), journal.attempts(&id).await.unwrap()) });
    let before = snapshot();
    let writes_before = f.counted.writes();

    // The frozen driver wakes.
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGCONT);
    }
    wait_until("the woken driver to find itself fenced out", Duration::from_secs(30), || f.driver.log_text().contains("fenced out").then_some(()));
    std::thread::sleep(Duration::from_secs(1));
    let log = f.driver.log_text();
    assert!(log.contains("fencing: refused rds.promote-read-replica"), "the promotion was refused before it left: {log}");
    assert!(!log.contains("run ended"), "the woken driver did not finish the run: {log}");
    assert_eq!(metric(&f.driver, "drover_runs_fenced_out_total{runbook=\"regional-failover\"}"), Some(1.0));
    assert_eq!(f.counted.writes(), writes_before, "no AWS mutation and no store write of the woken driver went through");
    assert_eq!(snapshot(), before, "the journal is the survivor's, unchanged");
    f.failed_over();
}

/// DynamoDB throttles and fails a share of the store's requests: runs go
/// on (the store retries; a run stopped by an outage longer than that is
/// continued), and no step is lost or run twice.
#[test]
fn dynamodb_throttling_and_errors_lose_and_duplicate_no_step() {
    let counted = Counted::start();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, store_cfg) = store_and_config(dir.path(), &counted, "");
    for kind in [Fault::Throttle, Fault::ServerError] {
        counted.faults().add(Rule {
            service: Some("dynamodb".into()),
            region: None,
            operation: None,
            kind,
            ms: 0,
            jitter_ms: 0,
            rate: if kind == Fault::Throttle { 0.2 } else { 0.05 },
            pass_first: 0,
            find: None,
            replace: None,
        });
    }
    let a = agent(dir.path(), "a", &counted, &cfg);
    let steps = 12;
    let ids: Vec<String> = (0..3).map(|i| format!("throttled-{i}")).collect();
    let mut stops = std::collections::HashMap::new();
    for id in &ids {
        let p = format!("steps={steps}");
        let mut tries = 0;
        loop {
            tries += 1;
            let out = a.output(&["run", artifacts::JANITOR, "--run-id", id, "--quiet", "-p", &p, "-p", "sleep_after=4", "-p", "sleep_ms=300"]);
            if out.status.success() {
                break;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("dynamodb table") && tries < 5, "only the store's unavailability may stop a run: {err}");
        }
        stops.insert(id.clone(), tries - 1);
    }
    let injected = counted.faults().injected();
    assert!(injected.values().sum::<u64>() > 10, "faults were injected: {injected:?}");
    let (rt, journal) = store(&store_cfg);
    for id in &ids {
        let (run, entries, attempts) =
            rt.block_on(async { (journal.run(id).await.unwrap().unwrap(), journal.entries(id).await.unwrap(), journal.attempts(id).await.unwrap()) });
        assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
        for n in 1..=steps {
            let key = format!("s{n}");
            let done: Vec<_> = entries.iter().filter(|e| e.key.as_deref() == Some(key.as_str())).collect();
            assert_eq!(done.len(), 1, "{id}: {key} journaled once: {entries:?}");
            assert_eq!(done[0].status.as_str(), "succeeded");
            // A run the store stopped re-enters the step in flight, with its idempotency key.
            let tries = attempts.iter().filter(|a| a.key == key).count();
            assert!(tries >= 1 && tries <= 1 + stops[id], "{id}: {key} began {tries} times with {} stop(s)", stops[id]);
        }
    }
}
