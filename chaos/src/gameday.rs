//! The game-day runner: seeds the topology, checks the steady state, starts
//! the fault proxy and the real `drover` binary pointed at it, switches
//! faults and world events on and off as the run reaches its triggers,
//! crashes and resumes the agent where the scenario says, then checks the
//! steady state again and judges the outcome against the scenario's
//! expectations.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_aws::{CapabilityError, Clients};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

use crate::faults::{Fault, Faults};
use crate::hypothesis::{Check, check};
use crate::proxy::{Proxy, Upstreams};
use crate::report::{Report, RunReport};
use crate::scenario::{Action, FaultWindow, ParamSet, Scenario, StoreFaultKind, Trigger};
use crate::topology::{Seeded, Topology, delete_if_present, seed, set_alarm};
use crate::{Agent, ChaosError, kill9, killed_by_sigkill};

/// Where a game-day finds its runbooks and configuration and puts its homes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Run the full form.
    pub full: bool,
    /// Where reference runbooks are (`<name with _>.wasm`).
    pub runbooks_dir: PathBuf,
    /// The directory of the scenario file (for relative runbook paths).
    pub scenario_dir: PathBuf,
    /// The agent configuration (grants) the runs use.
    pub config: Option<PathBuf>,
    /// Where the agents' homes go.
    pub work_dir: PathBuf,
}

/// Why a game-day could not be carried out (as opposed to failing its verdict).
#[derive(Debug, thiserror::Error)]
pub enum GameDayError {
    /// No emulators to run against.
    #[error("the emulators are not configured (AWS_ENDPOINT_URL is unset): run `scripts/emulators start` and `eval \"$(scripts/emulators env)\"`")]
    NoEmulators,
    /// The runbook component is missing.
    #[error("runbook component {0} does not exist: build the runbooks (`scripts/drill` does, or `cargo build -p drover-test-artifacts`) or give a path")]
    NoRunbook(PathBuf),
    /// Seeding or a world event failed.
    #[error("{what} failed: {source}")]
    World {
        /// What was being done.
        what: String,
        /// The AWS error.
        source: Box<CapabilityError>,
    },
    /// Starting the proxy or the agent failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Driving the agent failed.
    #[error(transparent)]
    Agent(#[from] ChaosError),
}

/// Runs `scenario` and judges it.
pub async fn run(scenario: Scenario, opts: &Options) -> Result<Report, GameDayError> {
    let sc = if opts.full { scenario.into_full() } else { scenario };
    let started = Instant::now();
    let upstreams = Upstreams::from_env().ok_or(GameDayError::NoEmulators)?;
    let runbook = if sc.runbook.ends_with(".wasm") {
        opts.scenario_dir.join(&sc.runbook)
    } else {
        opts.runbooks_dir.join(format!("{}.wasm", sc.runbook.replace('-', "_")))
    };
    if !runbook.exists() {
        return Err(GameDayError::NoRunbook(runbook));
    }
    let g = GameDay { clients: Clients::load().await, topology: Topology::demo(&format!("gd-{}", sc.name)), upstreams, runbook, sc: &sc, opts };

    let mut runs = Vec::new();
    let mut clean = None;
    if sc.expect.rto_factor_of_clean.is_some() {
        // The same run with only the latency on: what the errors cost is the difference.
        let latency: Vec<FaultWindow> = sc.faults.iter().filter(|w| w.rule.kind == Fault::Latency).cloned().collect();
        let r = g.one_run("clean", &latency, None).await?;
        clean = r.rto_seconds;
        runs.push(r);
    }
    let first = g.one_run("game-day", &sc.faults, None).await?;
    let steps: Vec<String> = first.steps.iter().map(|(k, _)| k.clone()).filter(|k| !k.starts_with("undo:") && !k.starts_with("cleanup:")).collect();
    runs.push(first);
    if let Some(crash) = &sc.crash {
        let mut points: Vec<String> = crash.points.clone();
        if crash.every_step_boundary {
            points.extend(steps.iter().map(|k| format!("after-step:{k}")));
        }
        // Distinct points inside steps, as many as asked (or as there are),
        // drawn with the scenario's seed.
        let mut rng = StdRng::seed_from_u64(sc.seed);
        let mut candidates: Vec<String> =
            steps.iter().flat_map(|k| [format!("in-step:{k}"), format!("before-complete:{k}")]).filter(|p| !points.contains(p)).collect();
        let mut inside = Vec::new();
        while inside.len() < crash.random_inside && !candidates.is_empty() {
            inside.push(candidates.swap_remove(rng.random_range(0..candidates.len())));
        }
        points.extend(inside);
        for p in points {
            runs.push(g.one_run(&format!("crash at {p}"), &sc.faults, Some(&p)).await?);
        }
    }

    let mut reasons = Vec::new();
    for r in &mut runs {
        judge(&sc, r, clean);
        reasons.extend(r.problems.iter().map(|p| format!("{}: {p}", r.label)));
    }
    Ok(Report {
        scenario: sc.name.clone(),
        description: sc.description.clone(),
        full: opts.full,
        verdict: if reasons.is_empty() { "pass" } else { "fail" }.into(),
        reasons,
        clean_rto_seconds: clean,
        runs,
        duration_seconds: started.elapsed().as_secs_f64(),
    })
}

struct GameDay<'a> {
    clients: Clients,
    topology: Topology,
    upstreams: Upstreams,
    runbook: PathBuf,
    sc: &'a Scenario,
    opts: &'a Options,
}

impl GameDay<'_> {
    /// Seeds, checks, runs the agent through the proxy (crashing it at
    /// `failpoint` and resuming it, if given), applies the scenario's
    /// triggers as the run goes, and reads everything back.
    async fn one_run(&self, label: &str, windows: &[FaultWindow], failpoint: Option<&str>) -> Result<RunReport, GameDayError> {
        let sc = self.sc;
        let seeded = seed(&self.clients, &self.topology)
            .await
            .map_err(|source| GameDayError::World { what: "seeding the topology".into(), source: Box::new(source) })?;
        let before = self.checks(&seeded, &sc.hypothesis.before).await;
        let faults = Arc::new(Faults::new(sc.seed));
        let proxy = Proxy::start(self.upstreams.clone(), faults.clone()).await?;

        let run_id = format!("gd-{}-{:06x}", sc.name, rand::random::<u32>() & 0xffffff);
        let mut agent = Agent::new(self.opts.work_dir.join("homes").join(&run_id)).with_env("AWS_EC2_METADATA_DISABLED", "true");
        for (k, v) in self.upstreams.env_for(&proxy.url()) {
            agent = agent.with_env(&k, &v);
        }
        if let Some(cfg) = &self.opts.config {
            agent = agent.with_env("DROVER_CONFIG", &cfg.display().to_string());
        }
        let params = params(sc, &seeded);
        let runbook = self.runbook.display().to_string();
        let mut args = vec!["run", runbook.as_str(), "--run-id", run_id.as_str(), "--quiet"];
        for p in &params {
            args.extend(["-p", p.as_str()]);
        }

        let watch_steps = windows.iter().any(|w| matches!(w.start, Trigger::AfterStep(_)) || matches!(w.stop, Trigger::AfterStep(_)))
            || sc.actions.iter().any(|a| matches!(a.at, Trigger::AfterStep(_)))
            || sc.store_faults.iter().any(|f| matches!(f.at, Trigger::AfterStep(_)));
        let mut struck = vec![false; sc.store_faults.len()];
        // The steps done before the store failed: none may run again.
        let mut done_before_store_fault: Option<HashSet<String>> = None;
        let mut store_recovered = false;
        let mut on: Vec<Option<u64>> = vec![None; windows.len()];
        let mut over = vec![false; windows.len()];
        let mut acted = vec![false; sc.actions.len()];
        let t0 = Instant::now();
        let timeout = Duration::from_secs(sc.timeout_seconds);
        let log = self.opts.work_dir.join("homes").join(format!("{run_id}.log"));
        let mut child = Running(Some(agent.spawn_logged(&args, failpoint.unwrap_or(""), &log)?));
        let (mut crashed, mut hung) = (false, false);
        loop {
            let completed = if watch_steps { completed_steps(&agent, &run_id) } else { HashSet::new() };
            let elapsed = t0.elapsed().as_secs_f64();
            let fired = |t: &Trigger| match t {
                Trigger::Start => true,
                Trigger::AfterStep(k) => completed.contains(k),
                Trigger::AfterSeconds(s) => elapsed >= *s,
                Trigger::End => false,
            };
            for (i, w) in windows.iter().enumerate() {
                if on[i].is_none() && !over[i] && fired(&w.start) {
                    on[i] = Some(faults.add(w.rule.clone()));
                }
                if let Some(id) = on[i]
                    && fired(&w.stop)
                {
                    faults.remove(id);
                    on[i] = None;
                    over[i] = true;
                }
            }
            for (i, a) in sc.actions.iter().enumerate() {
                if !acted[i] && fired(&a.at) {
                    self.act(a, &seeded).await?;
                    acted[i] = true;
                }
            }
            for (i, f) in sc.store_faults.iter().enumerate() {
                if !struck[i] && fired(&f.at) {
                    match f.kind {
                        // (Never pid 0: prlimit would limit this process.)
                        StoreFaultKind::Full => {
                            if let Some(pid) = child.id() {
                                limit_file_size(pid, 4096)?
                            }
                        }
                    }
                    struck[i] = true;
                    let done = if watch_steps { completed.clone() } else { completed_steps(&agent, &run_id) };
                    done_before_store_fault.get_or_insert(done);
                }
            }
            if let Some(status) = child.try_wait()? {
                if failpoint.is_some() && !crashed && killed_by_sigkill(&status) {
                    crashed = true;
                    child.replace(agent.spawn_logged(&["resume", run_id.as_str(), "--quiet"], "", &log)?);
                    continue;
                }
                if done_before_store_fault.is_some() && !store_recovered {
                    // The store recovers: a new agent process has no limit.
                    store_recovered = true;
                    child.replace(agent.spawn_logged(&["resume", run_id.as_str(), "--quiet"], "", &log)?);
                    continue;
                }
                break;
            }
            if t0.elapsed() > timeout {
                child.kill();
                hung = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        faults.clear();
        let shown = tokio::task::block_in_place(|| agent.show(&run_id)).unwrap_or(Value::Null);
        let after = self.checks(&seeded, &sc.hypothesis.after).await;
        let mut report = read_run(label, &run_id, &shown, hung);
        report.crashed_and_resumed = crashed;
        if let Some(p) = failpoint
            && !crashed
        {
            report.problems.push(format!("the crash point {p} was never reached"));
        }
        if !sc.store_faults.is_empty() && done_before_store_fault.is_none() {
            report.problems.push("the store fault never struck (its trigger was not reached)".into());
        }
        for key in done_before_store_fault.iter().flatten() {
            if let Some((_, attempts)) = report.steps.iter().find(|(k, _)| k == key)
                && *attempts > 1
            {
                report.problems.push(format!("step {key} completed before the store failed, yet ran {attempts} times"));
            }
        }
        report.store_fault_survived = store_recovered;
        report.before = before;
        report.after = after;
        report.faults_injected = faults.injected();
        report.accepted = faults.accepted();
        report.refused = faults.refused();
        Ok(report)
    }

    async fn checks(&self, seeded: &Seeded, probes: &[crate::hypothesis::Probe]) -> Vec<Check> {
        let mut out = Vec::new();
        for p in probes {
            out.push(check(&self.clients, seeded, *p).await);
        }
        out
    }

    async fn act(&self, a: &Action, seeded: &Seeded) -> Result<(), GameDayError> {
        let t = &seeded.topology;
        if let Some(state) = &a.alarm {
            let value = aws_sdk_cloudwatch::types::StateValue::from(state.as_str());
            set_alarm(&self.clients, &t.dr_region, &seeded.dr_alarm, value, "game-day: set by the scenario")
                .await
                .map_err(|source| GameDayError::World { what: format!("setting alarm {} to {state}", seeded.dr_alarm), source: Box::new(source) })?;
        }
        if a.delete_replica {
            delete_if_present(&self.clients, &t.dr_region, &t.replica)
                .await
                .map_err(|source| GameDayError::World { what: format!("deleting {}", t.replica), source: Box::new(source) })?;
        }
        Ok(())
    }
}

/// Caps the size of any file process `pid` writes (`RLIMIT_FSIZE`): from
/// now on its writes past `bytes` fail, as on a full disk.
fn limit_file_size(pid: u32, bytes: u64) -> Result<(), GameDayError> {
    let limit = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
    // SAFETY: prlimit(2) on a child process we started; the struct is valid for the call.
    let rc = unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(GameDayError::Io(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The agent process of a game-day run: killed if the game-day stops
/// early (an error), so that no agent goes on acting on the topology.
struct Running(Option<std::process::Child>);

impl Running {
    fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        match self.0.as_mut() {
            Some(c) => c.try_wait(),
            None => Ok(None),
        }
    }

    fn id(&self) -> Option<u32> {
        self.0.as_ref().map(std::process::Child::id)
    }

    fn replace(&mut self, next: std::process::Child) {
        self.kill();
        self.0 = Some(next);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.0.take()
            && c.try_wait().ok().flatten().is_none()
        {
            kill9(&mut c);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The runbook parameters: the topology's set, then the scenario's.
fn params(sc: &Scenario, s: &Seeded) -> Vec<String> {
    let mut p = match sc.param_set {
        ParamSet::Failover => s.topology.params(),
        ParamSet::Failback => s.topology.failback_params(),
        ParamSet::Drill => s.topology.drill_params(),
        ParamSet::Shift => s.shift_params(),
    };
    for (k, v) in &sc.params {
        let v = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => v.to_string(),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        p.retain(|x| !x.starts_with(&format!("{k}=")));
        p.push(format!("{k}={v}"));
    }
    p
}

/// The steps of run `run_id` that have completed (for good).
fn completed_steps(agent: &Agent, run_id: &str) -> HashSet<String> {
    let shown = tokio::task::block_in_place(|| agent.show(run_id));
    let Some(steps) = shown.as_ref().and_then(|v| v["steps"].as_array()) else { return HashSet::new() };
    steps.iter().filter(|s| s["status"] == "succeeded" || s["status"] == "failed").filter_map(|s| s["key"].as_str().map(str::to_string)).collect()
}

/// What `drover show --json` says of the run.
fn read_run(label: &str, run_id: &str, shown: &Value, hung: bool) -> RunReport {
    let steps: Vec<(String, u64)> = shown["steps"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| Some((s["key"].as_str()?.to_string(), s["attempts"].as_u64().unwrap_or(1)))).collect())
        .unwrap_or_default();
    let duration = || {
        let t = |k: &str| shown[k].as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        Some((t("finished_at")? - t("started_at")?).num_milliseconds() as f64 / 1000.0)
    };
    let status = if hung { "hung".to_string() } else { shown["status"].as_str().unwrap_or("unknown").to_string() };
    RunReport {
        label: label.into(),
        run_id: run_id.into(),
        error: shown["error"]["code"].as_str().map(|c| (c.to_string(), shown["error"]["message"].as_str().unwrap_or_default().to_string())),
        rto_seconds: shown["result"]["rto_seconds"].as_f64().or_else(duration),
        steps_retried: steps.iter().map(|(_, a)| a.saturating_sub(1)).sum(),
        warnings: shown["result"]["warnings"].as_array().map(|w| w.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default(),
        steps,
        status,
        crashed_and_resumed: false,
        store_fault_survived: false,
        before: Vec::new(),
        after: Vec::new(),
        faults_injected: BTreeMap::new(),
        accepted: BTreeMap::new(),
        refused: BTreeMap::new(),
        problems: Vec::new(),
        shown: shown.clone(),
    }
}

/// Adds to `r.problems` everything by which it misses the scenario.
fn judge(sc: &Scenario, r: &mut RunReport, clean: Option<f64>) {
    let e = &sc.expect;
    for c in r.before.iter().filter(|c| !c.ok) {
        r.problems.push(format!("the steady state did not hold before the run: {:?}: {}", c.probe, c.detail));
    }
    for c in r.after.iter().filter(|c| !c.ok) {
        r.problems.push(format!("the steady state does not hold after the run: {:?}: {}", c.probe, c.detail));
    }
    let expected = if r.label == "clean" { "succeeded" } else { e.outcome.as_str() };
    if r.status != expected {
        let why = r.error.as_ref().map(|(c, m)| format!(": {c}: {m}")).unwrap_or_default();
        r.problems.push(format!("the run ended {} (expected {expected}){why}", r.status));
    }
    if r.label == "clean" {
        return;
    }
    if let Some(code) = &e.error_code
        && r.error.as_ref().map(|(c, _)| c) != Some(code)
    {
        r.problems.push(format!("the error code is {:?}, expected {code}", r.error.as_ref().map(|(c, _)| c)));
    }
    if e.outcome == "succeeded"
        && !r.crashed_and_resumed
        && let (Some(budget), Some(rto)) = (e.rto_budget_seconds, r.rto_seconds)
        && rto > budget
    {
        r.problems.push(format!("RTO {rto:.2} s is over the budget of {budget} s"));
    }
    if let (Some(factor), Some(clean), Some(rto)) = (e.rto_factor_of_clean, clean, r.rto_seconds)
        && !r.crashed_and_resumed
        && rto > factor * clean
    {
        r.problems.push(format!("RTO {rto:.2} s is over {factor} x the clean RTO of {clean:.2} s"));
    }
    for want in &e.warnings_contain {
        if !r.warnings.iter().any(|w| w.contains(want.as_str())) {
            r.problems.push(format!("no warning mentions '{want}' (warnings: {:?})", r.warnings));
        }
    }
    for (what, max) in &e.max_accepted {
        let n = r.accepted.get(what).copied().unwrap_or(0);
        if n > *max {
            r.problems.push(format!("the emulators accepted {what} {n} times (at most {max})"));
        }
    }
}
