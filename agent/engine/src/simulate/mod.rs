//! Deterministic simulation: the real engine (journal rules, policy gate,
//! retries, undos and cleanups, replay after a crash) drives a compiled
//! runbook against the simulated cloud on simulated time, under thousands
//! of seeded schedules of crashes and faults, and checks after each that
//! what must hold holds ([`invariants`]). A seed is a schedule
//! ([`schedule`]): the same seed replays the same run, call for call.
//!
//! What is real and what is simulated:
//! - real: the engine, the component, the replay rules, the policy gate,
//!   the shared rules of the capabilities (`drover_cloud`: promotion
//!   adoption, what the SDK may resend);
//! - simulated: the cloud (`drover-sim`, AWS's documented states), time,
//!   randomness (seeded), the journal (`MemoryJournal`, with what a crash
//!   keeps: durable writes, and buffered ones unless the crash is a power
//!   cut), and the crash itself: at a crash point the run stops at once
//!   (nothing after it runs, the journal refuses every later write) and a
//!   new driver resumes it, as a restarted agent would.
//!
//! Not modelled yet: two agents on one store (lease loss, clock skew),
//! eventual consistency of reads, cancel requests.

pub mod invariants;
pub mod schedule;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use drover_journal::{EntryKind, EntryStatus, Journal, MemoryJournal, RunRecord};
use drover_sim::Scenario;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::driver::World;
use crate::events::Observer;
use crate::policy::Policy;
use crate::simulation::Simulation;
use crate::{Engine, EngineError, Limits, LoadedRunbook, RunRequest};

pub use invariants::Broken;
pub use schedule::{Baseline, Schedule};

/// The most restarts a schedule gets before the run is said not to end.
const MAX_RESTARTS: u32 = 16;
/// The run's id in every schedule.
const RUN_ID: &str = "sim-run";

/// A runbook, compiled once, and the scenario its schedules start from.
pub struct Simulator {
    engine: Engine,
    runbook: LoadedRunbook,
    scenario: Scenario,
    params: Value,
    baseline: Baseline,
    agents: u8,
}

/// What one schedule did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The schedule (its seed first).
    pub schedule: Schedule,
    /// How the run ended: `succeeded`, `failed`, `cancelled`, or
    /// `stopped:CODE` (resumable, with the reason recorded).
    pub ending: String,
    /// The run's error code, if it did not succeed.
    pub error: Option<String>,
    /// How many times the agent crashed and restarted.
    pub restarts: u32,
    /// Calls made to the simulated cloud.
    pub calls: usize,
    /// Of which changed something.
    pub changes: usize,
    /// SHA-256 of the run's journal and calls: a replay of the seed gives the same.
    pub fingerprint: String,
    /// The invariants it broke (empty: all held).
    pub broken: Vec<Broken>,
    /// Every call to the simulated cloud, in order (what `--seed` prints).
    pub trace: Vec<drover_sim::Call>,
    /// The journal's steps as they ended: key, status, attempts.
    pub steps: Vec<(String, String, u32)>,
}

/// What an exploration found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The runbook's name and SHA-256.
    pub runbook: String,
    /// Its digest.
    pub digest: String,
    /// Crash points of the fault-free run (seeds below twice this are the exhaustive sweep).
    pub points: usize,
    /// Schedules run.
    pub schedules: u64,
    /// How long it took.
    pub seconds: f64,
    /// Schedules per minute.
    pub per_minute: f64,
    /// Endings, counted.
    pub endings: std::collections::BTreeMap<String, u64>,
    /// The first schedule that broke an invariant (the lowest seed of those run).
    pub failure: Option<Outcome>,
}

impl Simulator {
    /// Compiles `component` (named `label` in errors) and runs it once,
    /// fault-free, on `scenario` with `params` over the scenario's own.
    pub async fn new(
        home: &Path,
        limits: Limits,
        label: &str,
        component: &[u8],
        scenario: Scenario,
        params: &[(String, String)],
    ) -> Result<Simulator, EngineError> {
        let first = Simulation::new(&scenario).map_err(|e| EngineError::Setup(format!("scenario: {e}")))?;
        let engine = Engine::new(home, limits)?.with_simulation(first);
        let runbook = engine.load(label, component).await?;
        let params = runbook.info.validate_params(&scenario.params_over(params))?;
        let engine = engine.with_policy(Policy::declared(&runbook.info, &params));
        let mut sim = Simulator { engine, runbook, scenario, params, baseline: Baseline::default(), agents: 1 };
        let (_, sim_state) = sim.execute(&Schedule::of(u64::MAX, &Baseline::default(), &Scenario::empty(), 1), true).await?;
        sim.baseline = sim_state.unwrap_or_default();
        Ok(sim)
    }

    /// With `agents` 2, schedules also stall the driver while a second agent
    /// takes the run over (after the crash sweep, at every point in turn).
    pub fn with_agents(mut self, agents: u8) -> Self {
        self.agents = agents.clamp(1, 2);
        self
    }

    /// The runbook's name and version.
    pub fn runbook(&self) -> String {
        format!("{} {}", self.runbook.info.name, self.runbook.info.version)
    }

    /// The component's SHA-256.
    pub fn digest(&self) -> &str {
        &self.runbook.info.digest
    }

    /// The crash points of the fault-free run.
    pub fn points(&self) -> usize {
        self.baseline.trail.len()
    }

    /// The schedule of `seed`.
    pub fn schedule(&self, seed: u64) -> Schedule {
        Schedule::of(seed, &self.baseline, &self.scenario, self.agents)
    }

    /// Runs the schedule of `seed`.
    pub async fn run(&self, seed: u64) -> Result<Outcome, EngineError> {
        Ok(self.execute(&self.schedule(seed), false).await?.0)
    }

    /// Runs `schedule`; with `baseline`, also returns what the run passed.
    async fn execute(&self, schedule: &Schedule, baseline: bool) -> Result<(Outcome, Option<Baseline>), EngineError> {
        let scenario = schedule.apply(&self.scenario);
        let journal = Arc::new(MemoryJournal::new(Duration::from_secs(24 * 3600)).with_crash_model());
        let on_crash = {
            let j = journal.clone();
            Box::new(move || j.crash())
        };
        let sim =
            Simulation::with_crashes(&scenario, schedule.seed, schedule.crash_plan(), on_crash).map_err(|e| EngineError::Setup(format!("scenario: {e}")))?;
        let before = sim.cloud().state();
        let dyn_journal: Arc<dyn Journal> = journal.clone();
        let origin = json!({"unattended": true, "kind": "simulation", "name": format!("seed {}", schedule.seed)});
        let req = RunRequest { origin: Some(origin), ..RunRequest::new(RUN_ID, self.params.clone()) };
        self.engine.admit(&dyn_journal, &self.runbook, req).await?;
        let drive = || self.engine.drive(dyn_journal.clone(), &self.runbook, RUN_ID, Observer::none(), World::Simulated(sim.clone()));
        let mut fenced = None;
        let mut result = if schedule.takeover.is_some() {
            let first = drive();
            tokio::pin!(first);
            let ended = tokio::select! {
                biased;
                r = &mut first => Some(r),
                _ = sim.paused() => None,
            };
            match ended {
                Some(r) => r,
                None => {
                    // The first driver is stalled: a second agent takes the
                    // run over (its claim raises the fence) and drives it.
                    let second = drive().await;
                    let (mutating, calls) = (sim.mutating_calls(), sim.cloud().calls().len());
                    sim.wake();
                    let woke = first.await;
                    fenced = Some(invariants::Fenced {
                        mutating_calls: sim.mutating_calls() - mutating,
                        changed: sim.cloud().calls()[calls..].iter().filter(|c| c.changed).count(),
                        ended: match woke {
                            Ok(r) => r.status.as_str().to_string(),
                            Err(e) => e.to_string(),
                        },
                    });
                    second
                }
            }
        } else {
            drive().await
        };
        let mut restarts = 0;
        let mut calls_at_divergence = None;
        let mut stopped = None;
        loop {
            match result {
                Ok(_) => break,
                Err(_) if sim.crashed() && restarts < MAX_RESTARTS => {
                    restarts += 1;
                    journal.recover(!schedule.power_cut);
                    if schedule.diverge && calls_at_divergence.is_none() && journal.edit_entries(RUN_ID, rename_a_completed_step) {
                        calls_at_divergence = Some(sim.cloud().calls().len());
                    }
                    sim.restart();
                }
                Err(EngineError::Stopped { code, .. }) => {
                    stopped = Some(code);
                    break;
                }
                Err(e) if sim.crashed() => return Err(EngineError::Internal(format!("the run crashed more than {MAX_RESTARTS} times: {e}"))),
                Err(e) => return Err(e),
            }
            result = drive().await;
        }
        let run: RunRecord = journal.run(RUN_ID).await?.ok_or_else(|| EngineError::Internal("the simulated run is gone".into()))?;
        let entries = journal.entries(RUN_ID).await?;
        let mut attempts = journal.attempts(RUN_ID).await?;
        // The attempts of its branches' steps, named as the simulation names them.
        for r in journal.runs(&drover_journal::RunFilter::default()).await? {
            if r.origin.as_ref().is_some_and(|o| o["kind"] == "branch" && o["parent"] == RUN_ID) {
                let label = crate::sections::label_of(&r);
                let theirs = journal.attempts(&r.run_id).await?;
                attempts.extend(theirs.into_iter().map(|a| drover_journal::AttemptRecord { key: format!("{label}{}", a.key), ..a }));
            }
        }
        let cloud = sim.cloud();
        let after = cloud.state();
        let steps = sim.steps();
        let broken = invariants::check(&invariants::Observed {
            run: &run,
            stopped: stopped.as_deref(),
            entries: &entries,
            attempts: &attempts,
            steps: &steps,
            calls: cloud.calls(),
            calls_at_divergence,
            fenced: fenced.as_ref(),
            before: &before,
            after: &after,
            untrue: cloud.untrue_answers(),
        });
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&entries).unwrap_or_default());
        h.update(serde_json::to_vec(cloud.calls()).unwrap_or_default());
        let ending = match &stopped {
            Some(code) => format!("stopped:{code}"),
            None => run.status.as_str().to_string(),
        };
        let outcome = Outcome {
            schedule: schedule.clone(),
            ending,
            error: run.error.as_ref().map(|e| e.code.clone()),
            restarts,
            calls: cloud.calls().len(),
            changes: cloud.calls().iter().filter(|c| c.changed).count(),
            fingerprint: hex::encode(h.finalize()),
            broken,
            trace: cloud.calls().to_vec(),
            steps: entries
                .iter()
                .filter(|e| e.kind == EntryKind::Step)
                .map(|e| (e.key.clone().unwrap_or_default(), e.status.as_str().to_string(), e.attempts))
                .collect(),
        };
        let seen = baseline
            .then(|| Baseline { trail: sim.trail(), calls: cloud.calls().iter().map(|c| (c.call.clone(), c.region.clone(), c.resource.clone())).collect() });
        Ok((outcome, seen))
    }

    /// Runs seeds from `first` on `threads` threads (each with its own
    /// single-threaded runtime) until `seeds` have run or `budget` is
    /// spent, and stops at the first broken invariant. Seeds are handed out
    /// in order, so the failure reported is the lowest failing seed among
    /// those run.
    pub fn explore(self: &Arc<Self>, first: u64, seeds: Option<u64>, budget: Option<Duration>, threads: usize) -> Result<Report, EngineError> {
        let started = Instant::now();
        let next = AtomicU64::new(first);
        let stop = AtomicBool::new(false);
        let last = seeds.map(|n| first.saturating_add(n));
        let results = std::sync::Mutex::new((0u64, std::collections::BTreeMap::<String, u64>::new(), None::<Outcome>, None::<EngineError>));
        std::thread::scope(|scope| {
            for _ in 0..threads.max(1) {
                scope.spawn(|| {
                    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        Ok(rt) => rt,
                        Err(e) => {
                            results.lock().unwrap_or_else(|p| p.into_inner()).3 = Some(EngineError::Setup(format!("cannot start a runtime: {e}")));
                            stop.store(true, Ordering::SeqCst);
                            return;
                        }
                    };
                    while !stop.load(Ordering::SeqCst) && budget.is_none_or(|b| started.elapsed() < b) {
                        let seed = next.fetch_add(1, Ordering::SeqCst);
                        if last.is_some_and(|l| seed >= l) {
                            break;
                        }
                        let out = rt.block_on(self.run(seed));
                        let mut r = results.lock().unwrap_or_else(|p| p.into_inner());
                        match out {
                            Ok(o) => {
                                r.0 += 1;
                                *r.1.entry(o.ending.clone()).or_default() += 1;
                                if !o.broken.is_empty() {
                                    stop.store(true, Ordering::SeqCst);
                                    if r.2.as_ref().is_none_or(|f| f.schedule.seed > o.schedule.seed) {
                                        r.2 = Some(o);
                                    }
                                }
                            }
                            Err(e) => {
                                stop.store(true, Ordering::SeqCst);
                                r.3 = Some(EngineError::Internal(format!("seed {seed}: {e}")));
                            }
                        }
                    }
                });
            }
        });
        let (schedules, endings, failure, error) = results.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = error {
            return Err(e);
        }
        let seconds = started.elapsed().as_secs_f64();
        Ok(Report {
            runbook: self.runbook(),
            digest: self.digest().to_string(),
            points: self.points(),
            schedules,
            seconds,
            per_minute: if seconds > 0.0 { schedules as f64 * 60.0 / seconds } else { 0.0 },
            endings,
            failure,
        })
    }
}

/// Renames the last completed step of the journal, as a replacement build
/// that calls it something else would see it. False if there is none, or
/// if the main part ended already (it is not replayed then).
fn rename_a_completed_step(entries: &mut [drover_journal::Entry]) -> bool {
    if entries.iter().any(|e| e.kind == EntryKind::End) {
        return false;
    }
    let Some(e) = entries.iter_mut().rev().find(|e| e.kind == EntryKind::Step && e.status == EntryStatus::Succeeded) else { return false };
    e.key = e.key.as_ref().map(|k| format!("{k}-renamed"));
    true
}
