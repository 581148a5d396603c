//! Driving a parallel section: each branch is a run of its own (run id
//! `RUN.KEY.BRANCH`, origin `{"kind": "branch", ...}`), with its own journal,
//! driven by this driver in a fresh instance of the same runbook, several at
//! once (`limits.concurrent_branches`). A branch's journal replays like any
//! run's, so a crash anywhere in a section resumes every unfinished branch
//! where it stopped and never runs a finished step again.
//!
//! Structured concurrency: the section returns only when every branch has
//! ended. Under fail-fast, the first branch that fails stops the others at
//! their next step boundary (a cancel of the branch, by `drover`); a cancel
//! of the run reaches every branch the same way. A branch that does not
//! succeed runs its own undos and cleanups before it ends; one that succeeds
//! hands them to the run (see `driver::finalize`).
//!
//! The parent's side of the journal (the section entry) is
//! `durable::sections`; the rules (names, ids, caps, replay) are
//! `drover_replay::sections`.

use std::sync::Arc;

use chrono::Utc;
use drover_journal::{CancelRequest, Created, ErrorRecord, Journal, NewRun, RunRecord, RunStatus, RunbookRef};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::cancel::CancelSignal;
use crate::driver::World;
use crate::durable::{BranchOutcome, BranchStatus, DurableError, Section, SectionBranch};
use crate::events::{Observer, RunEvent};
use crate::{Engine, EngineError, LoadedRunbook};

/// The branch an instance runs (from its run's origin): `branches.current`.
#[derive(Debug, Clone, PartialEq)]
pub struct BranchCall {
    /// The branch's name.
    pub name: String,
    /// Its input, as JSON text.
    pub input: String,
}

impl BranchCall {
    /// The branch a run executes, if it is a branch (its origin says so).
    pub fn of_run(run: &RunRecord) -> Option<BranchCall> {
        let origin = run.origin.as_ref()?;
        if origin["kind"] != "branch" {
            return None;
        }
        Some(BranchCall { name: origin["branch"].as_str()?.to_string(), input: origin["input"].to_string() })
    }
}

/// How a branch run's steps are named outside its journal (crash points,
/// the simulation, reports): `SECTION/BRANCH/`; empty for a run.
pub(crate) fn label_of(run: &RunRecord) -> String {
    match run.origin.as_ref().filter(|o| o["kind"] == "branch") {
        Some(o) => format!("{}/{}/", o["section"].as_str().unwrap_or_default(), o["branch"].as_str().unwrap_or_default()),
        None => String::new(),
    }
}

/// A section the runbook asked for, sent from its `branches.run` call to the
/// driver, which drives the branches and answers.
pub(crate) struct SectionRequest {
    pub section: Section,
    pub reply: oneshot::Sender<Result<Vec<BranchOutcome>, DurableError>>,
}

/// Where a run's instance sends its sections.
pub(crate) type SectionSender = mpsc::Sender<SectionRequest>;

/// What a section's branches share with the run that started them.
pub(crate) struct Parent<'a> {
    pub journal: &'a Arc<dyn Journal>,
    pub runbook: &'a LoadedRunbook,
    pub run: &'a RunRecord,
    pub world: World,
    pub cancel: &'a Arc<CancelSignal>,
    pub observer: &'a Observer,
}

/// The origin recorded with branch `b` of `section` of run `parent`: what
/// it runs, and what it inherits from its run's origin (whether its gates
/// are decided unattended; a drill's priority).
fn origin(parent: &RunRecord, section: &Section, b: &SectionBranch) -> Value {
    let of = |k: &str| parent.origin.as_ref().map(|o| o[k].clone()).unwrap_or(Value::Null);
    json!({
        "kind": "branch",
        "name": format!("{}/{}", section.key, b.name),
        "parent": parent.run_id,
        "section": section.key,
        "branch": b.name,
        "input": b.input,
        "fail_fast": section.fail_fast,
        "unattended": of("unattended"),
        "run_kind": of("kind"),
    })
}

/// The outcome of branch `name` from its run as it ended.
fn outcome_of(name: &str, run: &RunRecord) -> BranchOutcome {
    let status = match run.status {
        RunStatus::Succeeded => BranchStatus::Succeeded,
        RunStatus::Cancelled => BranchStatus::Stopped,
        _ => BranchStatus::Failed,
    };
    let error = match status {
        BranchStatus::Succeeded => None,
        _ => Some(run.error.clone().unwrap_or_else(|| ErrorRecord::terminal("branch-failed", format!("branch '{name}' did not succeed")))),
    };
    BranchOutcome { name: name.to_string(), status, output: run.result.clone().filter(|_| status == BranchStatus::Succeeded), error }
}

/// The driver's errors that stop the branch's driver without an outcome
/// stop the section's (and so the run's) the same way.
fn stop_of(e: EngineError) -> DurableError {
    match e {
        EngineError::Journal(j) => DurableError::Journal(j),
        EngineError::Suspended { .. } => DurableError::Suspended,
        EngineError::Crashed { point, .. } => DurableError::Crashed { point },
        EngineError::Stopped { run_id, code, message } => DurableError::BranchStopped { run_id, code, message },
        other => DurableError::Branch(other.to_string()),
    }
}

impl Engine {
    /// Creates (or finds) the runs of `section`'s branches and drives them
    /// until every one has ended; returns their outcomes in order.
    pub(crate) async fn run_section(&self, parent: &Parent<'_>, section: &Section) -> Result<Vec<BranchOutcome>, DurableError> {
        let (journal, run) = (parent.journal, parent.run);
        let stop = Arc::new(CancelSignal::default());
        let mut ended = Vec::with_capacity(section.branches.len());
        for b in &section.branches {
            let new = NewRun {
                run_id: b.run_id.clone(),
                // The build driving the run now (a resume with a fixed build pins its branches to it too).
                runbook: RunbookRef {
                    name: parent.runbook.info.name.clone(),
                    version: parent.runbook.info.version.clone(),
                    digest: parent.runbook.info.digest.clone(),
                },
                params: run.params.clone(),
                created_at: Utc::now(),
                policy_override: run.policy_override.clone(),
                origin: Some(origin(run, section, b)),
                scope: None,
            };
            let existing = match journal.create_run(&new).await.map_err(DurableError::Journal)? {
                Created::New => None,
                Created::Existing(found) => Some(found),
                Created::Joined(holder) => {
                    return Err(DurableError::Branch(format!("branch run '{}' could not be created: run '{}' holds its scope", b.run_id, holder.run_id)));
                }
            };
            if let Some(found) = &existing {
                let mine = found
                    .origin
                    .as_ref()
                    .is_some_and(|o| o["parent"] == run.run_id.as_str() && o["section"] == section.key.as_str() && o["branch"] == b.name.as_str());
                if !mine {
                    return Err(DurableError::Branch(format!(
                        "branch '{}' of parallel section '{}' would run as '{}', which is another run; rename the section \
                         (section keys that differ only by '/' and '-' share branch run ids)",
                        b.name, section.key, b.run_id
                    )));
                }
            }
            ended.push(existing.filter(|r| r.status.is_final()));
        }
        if section.fail_fast
            && let Some((b, r)) = section.branches.iter().zip(&ended).find_map(|(b, r)| r.as_ref().filter(|r| r.status != RunStatus::Succeeded).map(|r| (b, r)))
        {
            // It failed before the driver stopped: its siblings stop again.
            stop.raise(fail_fast_request(section, &b.name, r));
        }
        let concurrency = self.limits.concurrent_branches.max(1);
        let mut jobs = Vec::with_capacity(section.branches.len());
        for (b, done) in section.branches.iter().zip(ended) {
            jobs.push(self.branch_job(parent, section, b, done, stop.clone()));
        }
        let results: Vec<Result<BranchOutcome, DurableError>> = futures_util::stream::iter(jobs).buffered(concurrency).collect().await;
        results.into_iter().collect()
    }
}

impl Engine {
    /// Drives branch `b` of `section` to its end (unless it ended already:
    /// `done`), stopping its siblings under fail-fast if it did not succeed.
    async fn branch_job(
        &self,
        parent: &Parent<'_>,
        section: &Section,
        b: &SectionBranch,
        done: Option<RunRecord>,
        stop: Arc<CancelSignal>,
    ) -> Result<BranchOutcome, DurableError> {
        let run = match done {
            Some(r) => r,
            None => {
                let observer = parent.observer.prefixed(format!("{}/{}", section.key, b.name));
                let links = vec![parent.cancel.clone(), stop.clone()];
                self.drive_branch(parent, &b.run_id, observer, links).await.map_err(stop_of)?
            }
        };
        if section.fail_fast && run.status != RunStatus::Succeeded {
            stop.raise(fail_fast_request(section, &b.name, &run));
        }
        Ok(outcome_of(&b.name, &run))
    }
}

/// A branch's drive, boxed: a run's drive contains its branches' drives (the
/// recursion is one level deep: sections do not nest), and a boxed future
/// names its type.
type BranchDrive<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<RunRecord, EngineError>> + Send + 'a>>;

impl Engine {
    fn drive_branch<'a>(&'a self, parent: &'a Parent<'_>, run_id: &'a str, observer: Observer, links: Vec<Arc<CancelSignal>>) -> BranchDrive<'a> {
        Box::pin(self.drive_linked(parent.journal.clone(), parent.runbook, run_id, observer, parent.world.clone(), links, None))
    }
}

/// The stop of the siblings of branch `name`, which ended as `run` did.
fn fail_fast_request(section: &Section, name: &str, run: &RunRecord) -> CancelRequest {
    let why = run.error.as_ref().map(|e| e.to_string()).unwrap_or_else(|| run.status.to_string());
    CancelRequest {
        by: "drover (fail-fast)".into(),
        reason: format!("branch '{name}' of parallel section '{}' did not succeed ({why})", section.key),
        at: Utc::now(),
    }
}

impl Observer {
    /// An observer that forwards a branch's events to this one, their step
    /// keys prefixed with `prefix/` (its start is not forwarded: the run
    /// started long ago).
    pub fn prefixed(&self, prefix: String) -> Observer {
        let Some(parent) = self.sender() else { return Observer::none() };
        let (tx, mut rx) = mpsc::unbounded_channel::<RunEvent>();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let p = |k: String| format!("{prefix}/{k}");
                let ev = match ev {
                    RunEvent::Started { .. } => continue,
                    RunEvent::StepReplayed { key, status } => RunEvent::StepReplayed { key: p(key), status },
                    RunEvent::StepStarted { key, attempt } => RunEvent::StepStarted { key: p(key), attempt },
                    RunEvent::StepRetrying { key, attempt, backoff, error } => RunEvent::StepRetrying { key: p(key), attempt, backoff, error },
                    RunEvent::StepFinished { key, status, error, requests } => RunEvent::StepFinished { key: p(key), status, error, requests },
                    RunEvent::Sleeping { step, until } => RunEvent::Sleeping { step: step.map(p), until },
                    other => other,
                };
                if parent.send(ev).is_err() {
                    return;
                }
            }
        });
        Observer::channel(tx)
    }
}

/// Run `run_id`'s journal as people read it: after each parallel section,
/// the steps (and waits) of its branches, in branch order, their keys named
/// `SECTION/BRANCH/KEY` (`drover show`, `drover test`, reports, the API).
pub async fn entries_with_branches(journal: &dyn Journal, run_id: &str) -> Result<Vec<drover_journal::Entry>, drover_journal::JournalError> {
    use drover_journal::EntryKind;
    let mut out = Vec::new();
    for e in journal.entries(run_id).await? {
        let section = (e.kind == EntryKind::Step).then(|| e.key.as_deref().and_then(drover_replay::sections::parse_step_key)).flatten().map(str::to_string);
        let branches = if section.is_some() { crate::durable::recorded_branches(&e) } else { Vec::new() };
        out.push(e);
        let Some(section) = section else { continue };
        for b in branches {
            for mut be in journal.entries(&b.run_id).await? {
                if !matches!(be.kind, EntryKind::Step | EntryKind::Sleep | EntryKind::Approval) {
                    continue;
                }
                be.key = Some(format!("{section}/{}/{}", b.name, be.key.unwrap_or_default()));
                out.push(be);
            }
        }
    }
    Ok(out)
}
