//! The runs a serving agent drives: starting them (from a drill, a trigger
//! or the API), resuming the ones in flight when the agent last stopped, and
//! stopping them all without losing a step when it stops again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drover_engine::redrive::Redrive;
use drover_engine::{Admitted, Engine, EngineError, LoadedRunbook, Observer, RunEvent, RunRequest};
use drover_journal::{Journal, JournalError, RunFilter, RunRecord};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::ServiceError;
use crate::metrics::Metrics;
use crate::notify::Notifier;

/// What asking for a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// A new run was started.
    Started(String),
    /// Another unfinished run holds the scope: this request joined it.
    Joined(String),
    /// A run with that id existed (a drill slot already taken): left as is.
    Existing(String),
}

impl Admission {
    /// The run id.
    pub fn run_id(&self) -> &str {
        match self {
            Admission::Started(id) | Admission::Joined(id) | Admission::Existing(id) => id,
        }
    }
}

/// What an operator's redrive did.
#[derive(Debug, Clone)]
pub enum Redriven {
    /// The step the run held after it failed for good is retried (its gate).
    Retried(drover_journal::Approval),
    /// The ended run goes on, from this step (`None`: from its start).
    From(Option<String>),
}

/// How a driven run is taken up.
enum How {
    /// Just admitted, with the runbook it was admitted with.
    Continue(Arc<LoadedRunbook>),
    /// Left unfinished: resumed with the runbook it is pinned to.
    Resume,
    /// Ended failed or cancelled: an operator redrives it.
    Redrive(Redrive),
}

/// A run to start.
pub struct Start {
    /// The runbook's name (as its `describe()` gives it).
    pub runbook: String,
    /// Parameters as `--param` text.
    pub params: Vec<(String, String)>,
    /// The run's id.
    pub run_id: String,
    /// Why it starts (stored with the run).
    pub origin: Value,
    /// The scope it holds.
    pub scope: Option<String>,
}

/// Starts, resumes and stops the runs of a serving agent.
pub struct Supervisor {
    engine: Arc<Engine>,
    journal: Arc<dyn Journal>,
    runbooks: BTreeMap<String, Arc<LoadedRunbook>>,
    metrics: Arc<Metrics>,
    notifier: Arc<Notifier>,
    tasks: Mutex<JoinSet<()>>,
    driving: Mutex<HashSet<String>>,
    /// Runs that stopped with an error, by id: how often in a row, and when
    /// they may be taken up again (so a run that cannot go on here, say its
    /// runbook or a secret is missing on this agent, is not retried on every
    /// takeover scan).
    backoff: Mutex<HashMap<String, (u32, std::time::Instant)>>,
    /// Told the id of a run whenever it moves (the console's live pages).
    wake: tokio::sync::broadcast::Sender<String>,
}

impl Supervisor {
    /// A supervisor serving `runbooks` (by name).
    pub fn new(
        engine: Arc<Engine>,
        journal: Arc<dyn Journal>,
        runbooks: BTreeMap<String, Arc<LoadedRunbook>>,
        metrics: Arc<Metrics>,
        notifier: Arc<Notifier>,
    ) -> Arc<Self> {
        Arc::new(Supervisor {
            engine,
            journal,
            runbooks,
            metrics,
            notifier,
            tasks: Mutex::new(JoinSet::new()),
            driving: Default::default(),
            backoff: Default::default(),
            wake: tokio::sync::broadcast::channel(256).0,
        })
    }

    /// The agent's audit log (operators' controls are audited there too).
    pub fn audit_log(&self) -> Arc<drover_engine::audit::AuditLog> {
        self.engine.audit_log().clone()
    }

    /// The run store.
    pub fn journal(&self) -> &Arc<dyn Journal> {
        &self.journal
    }

    /// The runbooks served, by name.
    pub fn runbooks(&self) -> &BTreeMap<String, Arc<LoadedRunbook>> {
        &self.runbooks
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Hears the id of every run this agent drives as it moves.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.wake.subscribe()
    }

    /// Records the run and starts driving it in the background; a scope held
    /// by another unfinished run is joined instead.
    pub async fn start(self: &Arc<Self>, s: Start) -> Result<Admission, ServiceError> {
        let runbook = self.runbooks.get(&s.runbook).cloned().ok_or_else(|| ServiceError::UnknownRunbook(s.runbook.clone()))?;
        let params = runbook.info.validate_params(&s.params)?;
        let req = RunRequest { origin: Some(s.origin), scope: s.scope, ..RunRequest::new(s.run_id, params) };
        match self.engine.admit(&self.journal, &runbook, req).await? {
            Admitted::New(id) => {
                tracing::info!(run_id = %id, runbook = %s.runbook, "run started");
                self.drive(id.clone(), s.runbook.clone(), How::Continue(runbook));
                Ok(Admission::Started(id))
            }
            Admitted::Joined(holder) => {
                tracing::info!(run_id = %holder.run_id, scope = ?holder.scope, "scope held by an unfinished run: joined it");
                self.metrics.joined(&s.runbook);
                if self.orphaned(&holder, chrono::Utc::now()) {
                    // Its driver is gone (its lease ran out, or its process
                    // here exited): take it up now, not at the next scan.
                    tracing::info!(run_id = %holder.run_id, owner = ?holder.owner, "the run holding the scope has no live driver: resuming it");
                    self.drive(holder.run_id.clone(), holder.runbook.name.clone(), How::Resume);
                }
                Ok(Admission::Joined(holder.run_id))
            }
            Admitted::Existing(run) => Ok(Admission::Existing(run.run_id)),
        }
    }

    /// Resumes every run left unfinished with no live driver (the agent, or
    /// a `drover run`, stopped or crashed while it ran; with a shared store,
    /// another agent whose lease ran out). Returns their ids.
    pub async fn resume_in_flight(self: &Arc<Self>) -> Result<Vec<String>, ServiceError> {
        let mut ids = Vec::new();
        let now = chrono::Utc::now();
        for run in self.journal.runs(&RunFilter { unfinished: true, ..Default::default() }).await? {
            if !self.orphaned(&run, now) {
                continue;
            }
            tracing::info!(run_id = %run.run_id, status = %run.status, owner = ?run.owner, "resuming a run left in flight");
            self.drive(run.run_id.clone(), run.runbook.name.clone(), How::Resume);
            ids.push(run.run_id);
        }
        Ok(ids)
    }

    /// With a shared store (whose claims are leases): looks every `every`
    /// for runs whose driver's lease ran out (an agent that crashed, froze
    /// or lost the store) and takes them over. The store's conditional claim
    /// makes sure one agent wins each run.
    pub async fn take_over_orphans(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            match self.resume_in_flight().await {
                Ok(ids) if !ids.is_empty() => tracing::info!(runs = ?ids, "taking over runs whose driver's lease ran out"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not look for runs to take over; retrying"),
            }
        }
    }

    /// Whether `run` (unfinished) is left without a driver and this agent
    /// should take it up: its driver is gone, it is not driven here already
    /// nor backing off. A run never claimed yet is its creator's for one
    /// lease: it is about to drive it (with a shared store, another agent
    /// created it).
    fn orphaned(&self, run: &RunRecord, now: chrono::DateTime<chrono::Utc>) -> bool {
        let grace = self.journal.lease_ttl().and_then(|t| chrono::Duration::from_std(t).ok()).unwrap_or_default();
        let unclaimed = run.owner.is_none() && run.fence == 0 && now - run.created_at < grace;
        // Stopped on non-determinism: it waits for an operator (a resume
        // with a build whose replay matches, or a cancel), not a takeover.
        let diverged = !run.status.is_final() && run.error.as_ref().is_some_and(|e| e.code == "non-determinism");
        // A branch of a parallel section is driven by its run's driver (which
        // resumes it with the run), never on its own.
        let branch = run.origin.as_ref().is_some_and(|o| o["kind"] == "branch");
        run.driver_gone(now) && !unclaimed && !diverged && !branch && !self.is_driving(&run.run_id) && !self.backing_off(&run.run_id)
    }

    fn backing_off(&self, run_id: &str) -> bool {
        let backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        backoff.get(run_id).is_some_and(|(_, until)| std::time::Instant::now() < *until)
    }

    /// Records how driving `run_id` ended: an error puts it in backoff (5 s,
    /// doubling up to 5 minutes); anything else clears it.
    fn note_outcome(&self, run_id: &str, failed: bool) {
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        if !failed {
            backoff.remove(run_id);
            return;
        }
        let n = backoff.get(run_id).map_or(0, |(n, _)| *n) + 1;
        let wait = Duration::from_secs(5).saturating_mul(1 << (n - 1).min(6)).min(Duration::from_secs(300));
        backoff.insert(run_id.to_string(), (n, std::time::Instant::now() + wait));
    }

    fn is_driving(&self, run_id: &str) -> bool {
        self.driving.lock().unwrap_or_else(|p| p.into_inner()).contains(run_id)
    }

    /// Drives `run_id` (of runbook `name`) in the background: with
    /// `runbook`, or the component the run is pinned to.
    /// Redrives failed or cancelled run `run_id` (see
    /// `drover_engine::redrive`): refused, with the reason, before anything
    /// is written when it cannot be; otherwise driven on here. Returns the
    /// step it goes on from (`None`: from where its runbook returned).
    pub async fn redrive(self: &Arc<Self>, run_id: &str, redrive: Redrive) -> Result<Option<String>, ServiceError> {
        let run = self.journal.run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?;
        let entries = self.journal.entries(run_id).await?;
        let approvals = self.journal.approvals(Some(run_id), false).await?;
        // Said now, to the caller; the engine checks again (and audits) under its claim.
        let reopening = drover_engine::redrive::plan(&run, &entries, &approvals, redrive.from.as_deref())?;
        self.drive(run_id.to_string(), run.runbook.name.clone(), How::Redrive(redrive));
        Ok(reopening.step)
    }

    /// An operator's redrive (`drover redrive`, the API, the console): a run
    /// held at a step that failed for good (and `from` not given) retries
    /// that step; a failed or cancelled run goes on from where it stopped
    /// (or from step `from`).
    pub async fn redrive_or_retry(self: &Arc<Self>, run_id: &str, from: Option<String>, by: &str, reason: &str) -> Result<Redriven, ServiceError> {
        if from.is_none()
            && let Some(d) = crate::held::retry(self.journal.as_ref(), &self.audit_log(), run_id, by, reason).await?
        {
            return Ok(Redriven::Retried(d.gate));
        }
        let step = self.redrive(run_id, Redrive { from, by: by.to_string(), reason: reason.to_string() }).await?;
        Ok(Redriven::From(step))
    }

    fn drive(self: &Arc<Self>, run_id: String, name: String, how: How) {
        if !self.driving.lock().unwrap_or_else(|p| p.into_inner()).insert(run_id.clone()) {
            return;
        }
        let me = self.clone();
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.spawn(async move {
            let (tx, rx) = mpsc::unbounded_channel();
            let watcher =
                tokio::spawn(watch(rx, me.metrics.clone(), me.notifier.clone(), me.wake.clone(), run_id.clone(), name, !matches!(how, How::Continue(_))));
            let observer = Observer::channel(tx);
            let journal = me.journal.clone();
            let outcome = match &how {
                How::Continue(rb) => me.engine.continue_run(journal, rb, &run_id, observer).await,
                How::Resume => me.engine.resume(journal, &run_id, None, observer).await,
                How::Redrive(r) => me.engine.redrive(journal, &run_id, r, None, observer).await,
            };
            let _ = watcher.await;
            me.finished(&run_id, outcome).await;
            let _ = me.wake.send(run_id.clone());
            me.driving.lock().unwrap_or_else(|p| p.into_inner()).remove(&run_id);
        });
        // Reap what has ended, so a long-lived agent does not collect handles.
        while tasks.try_join_next().is_some() {}
    }

    async fn finished(&self, run_id: &str, outcome: Result<RunRecord, EngineError>) {
        let failed = match &outcome {
            Ok(_) | Err(EngineError::Suspended { .. }) => false,
            Err(EngineError::Journal(e)) => !(e.is_fenced() || matches!(e, JournalError::RunBusy { .. })),
            Err(_) => true,
        };
        self.note_outcome(run_id, failed);
        match outcome {
            Ok(run) => {
                tracing::info!(run_id, runbook = %run.runbook.name, status = %run.status, "run ended");
                self.metrics.run_ended(&run);
                if run.status.is_final() {
                    self.notifier.send(
                        "ended",
                        serde_json::json!({
                            "event": "run-ended",
                            "run_id": run.run_id,
                            "runbook": run.runbook.name,
                            "status": run.status,
                            "result": run.result,
                            "error": run.error,
                            "origin": run.origin,
                            "report": format!("drover report {}", run.run_id),
                        }),
                    );
                }
            }
            Err(EngineError::Suspended { .. }) => tracing::info!(run_id, "run suspended; it resumes when the agent starts again"),
            Err(EngineError::Journal(JournalError::RunBusy { host, pid, .. })) => {
                tracing::info!(run_id, host, pid, "another agent claimed the run first; it drives it")
            }
            Err(EngineError::Journal(e)) if e.is_fenced() => {
                tracing::warn!(run_id, error = %e, "this agent no longer holds the run (fenced out): stopped without writing");
                if let Ok(Some(run)) = self.journal.run(run_id).await {
                    self.metrics.fenced_out(&run.runbook.name);
                }
            }
            Err(e) => {
                tracing::error!(run_id, error = %e, "run stopped with an error; it stays resumable");
                if let Ok(Some(run)) = self.journal.run(run_id).await {
                    self.metrics.run_ended(&run);
                }
            }
        }
    }

    /// Runs being driven by this agent now.
    pub fn driving(&self) -> Vec<String> {
        let mut v: Vec<String> = self.driving.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
        v.sort();
        v
    }

    /// Stops every run at its next step boundary or wait (steps in flight
    /// finish and are journaled) and waits up to `grace` for them. What is
    /// still running after that is dropped mid-step: its step runs again,
    /// with the same idempotency key, when the agent starts again.
    pub async fn shutdown(&self, grace: Duration) {
        self.engine.shutdown();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let all = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(grace_s = grace.as_secs(), "steps still in flight after the grace period; they run again on the next start");
        }
    }
}

/// Turns a run's events into metrics and logs.
/// Follows a run's events for the metrics and notifications; `resumed`: the
/// run was taken up from another driver (counted once this agent holds it).
async fn watch(
    mut rx: mpsc::UnboundedReceiver<RunEvent>,
    metrics: Arc<Metrics>,
    notifier: Arc<Notifier>,
    wake: tokio::sync::broadcast::Sender<String>,
    run_id: String,
    runbook: String,
    resumed: bool,
) {
    let mut started: BTreeMap<String, std::time::Instant> = BTreeMap::new();
    let mut run = run_id;
    while let Some(ev) = rx.recv().await {
        // Nobody listening is fine: no console page is open.
        let _ = wake.send(run.clone());
        match ev {
            RunEvent::Started { run_id, .. } => {
                if resumed {
                    metrics.resumed(&runbook);
                }
                run = run_id
            }
            RunEvent::StepStarted { key, .. } => {
                started.insert(key, std::time::Instant::now());
            }
            RunEvent::StepFinished { key, status, requests, .. } => {
                if let Some(t) = started.remove(&key) {
                    metrics.step_finished(&key, status.as_str(), t.elapsed());
                }
                metrics.step_requests(&runbook, &key, requests);
            }
            RunEvent::AwaitingApproval { gate, message, deadline } => {
                tracing::warn!(run_id = %run, gate = %gate, deadline = ?deadline, "waiting for approval: {message}");
                notifier.send(
                    "approval",
                    serde_json::json!({
                        "event": "approval-requested",
                        "run_id": run,
                        "runbook": runbook,
                        "gate": gate,
                        "message": message,
                        "deadline": deadline,
                        "approve": format!("drover approve {run} {gate}"),
                        "reject": format!("drover approve {run} {gate} --reject"),
                        "api": format!("POST /v1/runs/{run}/approvals/{gate}"),
                    }),
                );
            }
            // An operator's control the driver recorded (pause, unpause, redrive).
            RunEvent::Log(ev) if ev.fields.iter().any(|(k, _)| k == "control") => {
                let field = |name: &str| ev.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                notifier.send(
                    "control",
                    serde_json::json!({
                        "event": "run-control",
                        "run_id": run,
                        "runbook": runbook,
                        "control": field("control"),
                        "by": field("by"),
                        "reason": field("reason"),
                        "step": ev.step,
                        "message": ev.message,
                        "show": format!("drover show {run}"),
                    }),
                );
            }
            RunEvent::Decided { gate, decision } => {
                tracing::info!(run_id = %run, gate = %gate, verdict = decision.verdict.as_str(), by = %decision.by, "approval gate decided");
            }
            _ => {}
        }
    }
}
