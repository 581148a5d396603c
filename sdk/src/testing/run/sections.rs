//! Parallel sections in the test harness: the agent's rules
//! (`drover_replay::sections`), with the branches run one after another, in
//! the order given (one schedule the agent may also take), each on a journal
//! of its own that survives the crashes the test injects. A branch's steps
//! are named `SECTION/BRANCH/KEY` in the report, in crash points and in
//! `cancel_before`; they follow their section's own step there.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::panic_any;

use drover_replay::{ActionKind, Violation, sections};
use serde_json::{Value, json};

use super::{Entry, Interrupt, Journal, Live, Open, Registration, StepRecord, refuse, with_live};
use crate::Ending;
use crate::bindings::drover::runbook::branches::{Branch, BranchOutcome, JoinMode, Outcome};
use crate::bindings::drover::runbook::steps::Attempt;
use crate::bindings::drover::runbook::types::Error as WitError;

/// What one run (the run itself, or one branch) keeps of its own; the rest
/// of [`Live`] (the cloud, the logs, the test's crash points) is shared.
#[derive(Default)]
pub(super) struct RunState {
    pub(super) journal: Journal,
    pub(super) run_id: String,
    pub(super) cursor: usize,
    pub(super) keys: BTreeSet<String>,
    pub(super) registered: BTreeSet<String>,
    pub(super) finalizing: bool,
    pub(super) open: Option<Open>,
    pub(super) action_attempt: Option<Attempt>,
    pub(super) retry: BTreeMap<String, drover_replay::RetrySpec>,
    pub(super) rng: u64,
    /// The branch this run is (name, input JSON), if it is one.
    pub(super) branch: Option<(String, String)>,
    /// `SECTION/BRANCH/` for a branch's steps, empty for the run's.
    pub(super) prefix: String,
    /// Why a branch stops at its next step boundary (fail-fast).
    pub(super) stop: Option<String>,
}

impl Live {
    /// Swaps the run state in [`Live`] with `other`.
    fn exchange(&mut self, other: &mut RunState) {
        std::mem::swap(&mut self.journal, &mut other.journal);
        std::mem::swap(&mut self.run_id, &mut other.run_id);
        std::mem::swap(&mut self.cursor, &mut other.cursor);
        std::mem::swap(&mut self.keys, &mut other.keys);
        std::mem::swap(&mut self.registered, &mut other.registered);
        std::mem::swap(&mut self.finalizing, &mut other.finalizing);
        std::mem::swap(&mut self.open, &mut other.open);
        std::mem::swap(&mut self.action_attempt, &mut other.action_attempt);
        std::mem::swap(&mut self.retry, &mut other.retry);
        std::mem::swap(&mut self.rng, &mut other.rng);
        std::mem::swap(&mut self.branch, &mut other.branch);
        std::mem::swap(&mut self.prefix, &mut other.prefix);
        std::mem::swap(&mut self.stop, &mut other.stop);
    }

    /// The branch this execution runs, if any (`branches.current`).
    pub(crate) fn current_branch(&self) -> Option<Branch> {
        self.branch.as_ref().map(|(name, input)| Branch { name: name.clone(), input: input.clone() })
    }

    /// A step key as the test names it: with its branch's prefix.
    pub(super) fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Whether a new step `key` must not start: the run was cancelled (a
    /// branch's `cancel_before`) or a sibling failed under fail-fast.
    pub(super) fn stop_before(&mut self, key: &str) {
        if self.finalizing || ActionKind::parse(key).is_some() {
            return;
        }
        let reason = if self.cancelled { Some("the test cancelled the run".to_string()) } else { self.stop.clone() };
        if let Some(reason) = reason {
            self.keys.remove(key);
            self.cancel_reason = Some(reason);
            panic_any(Interrupt::Cancel);
        }
    }

    /// The parent's side of `branches.run`: checks, then the recorded
    /// outcomes (`Ok`) or the branches to drive (`Err`), recorded in flight.
    fn begin_section(&mut self, key: &str, list: &[Branch], mode: JoinMode) -> Result<Vec<BranchOutcome>, Vec<(String, String, String)>> {
        if self.finalizing {
            refuse(sections::in_finalize(key))
        }
        if let Some(o) = &self.open {
            refuse(sections::in_step(key, &o.key))
        }
        if let Some((branch, _)) = &self.branch {
            refuse(sections::in_branch(key, branch))
        }
        let names: Vec<&str> = list.iter().map(|b| b.name.as_str()).collect();
        let started: usize = self.journal.steps.iter().filter(|s| sections::parse_step_key(&s.key).is_some()).map(|s| section_branches(s).len()).sum();
        if let Err(v) = sections::check_section(key, &names, started, self.max_branches) {
            refuse(v)
        }
        let mut asked = Vec::new();
        for b in list {
            match serde_json::from_str::<Value>(&b.input) {
                Ok(v) => asked.push((b.name.clone(), v.to_string())),
                Err(e) => refuse(Violation::BadRequest(format!("the input of branch '{}' of parallel section '{key}' is not JSON: {e}", b.name))),
            }
        }
        let step_key = sections::step_key(key);
        if !self.keys.insert(step_key.clone()) {
            refuse(Violation::DuplicateKey { key: key.into() })
        }
        if let Some(Entry::Step(index)) = self.recorded("step", Some(&step_key)) {
            self.cursor += 1;
            let rec = &self.journal.steps[index];
            let was: Vec<(String, String)> = section_branches(rec).into_iter().map(|(n, i, _)| (n, i)).collect();
            if let Err(v) = sections::check_same_branches(self.cursor as u64 - 1, key, &was, &asked) {
                refuse(v)
            }
            if rec.status != "in-flight" {
                let out: Value = rec.output.as_deref().and_then(|o| serde_json::from_str(o).ok()).unwrap_or(Value::Null);
                return Ok(out["outcomes"].as_array().map(|a| a.iter().filter_map(outcome_from_json).collect()).unwrap_or_default());
            }
            return Err(section_branches(rec));
        }
        let fail_fast = matches!(mode, JoinMode::FailFast);
        let branches: Vec<(String, String, String)> =
            asked.into_iter().map(|(name, input)| (sections::branch_run_id(&self.run_id, key, &name), name, input)).map(|(id, n, i)| (n, i, id)).collect();
        let output = json!({
            "mode": if fail_fast { "fail-fast" } else { "collect-all" },
            "branches": branches.iter().map(|(n, i, id)| json!({"name": n, "input": serde_json::from_str::<Value>(i).unwrap_or(Value::Null), "run_id": id})).collect::<Vec<_>>(),
        });
        let index = self.journal.steps.len();
        self.journal.steps.push(StepRecord {
            key: step_key,
            status: "in-flight".into(),
            output: Some(output.to_string()),
            error: None,
            attempts: 1,
            // A section has no idempotency key of its own: its branches' runs have theirs.
            idempotency_key: String::new(),
            error_record: None,
        });
        self.record(Entry::Step(index));
        Err(branches)
    }

    /// Records the section's outcomes, hands the succeeded branches'
    /// actions to the run, and lists the branches' steps after the section's.
    fn end_section(&mut self, key: &str, outcomes: &[BranchOutcome], handed: Vec<Registration>, steps: Vec<StepRecord>) {
        let step_key = sections::step_key(key);
        let Some(index) = self.journal.steps.iter().position(|s| s.key == step_key) else { return };
        let rec = &mut self.journal.steps[index];
        let mut out: Value = rec.output.as_deref().and_then(|o| serde_json::from_str(o).ok()).unwrap_or(Value::Null);
        out["outcomes"] = Value::Array(outcomes.iter().map(outcome_to_json).collect());
        rec.output = Some(out.to_string());
        match outcomes.iter().find_map(|o| match &o.outcome {
            Outcome::Succeeded(_) => None,
            Outcome::Failed(e) | Outcome::Stopped(e) => Some((o.name.clone(), e.clone())),
        }) {
            None => rec.status = "completed".into(),
            Some((name, e)) => {
                let e = WitError { message: format!("branch '{name}': {}", e.message), ..e };
                rec.status = "failed".into();
                rec.error = Some(format!("{}: {}", e.code, e.message));
                rec.error_record = Some(e);
            }
        }
        self.branch_steps.insert(step_key, steps);
        // Not journaled calls of the run: kept for its finalize only.
        self.journal.registrations.extend(handed);
    }
}

/// The branches (name, input JSON, run id) a section's step recorded.
fn section_branches(rec: &StepRecord) -> Vec<(String, String, String)> {
    let out: Value = rec.output.as_deref().and_then(|o| serde_json::from_str(o).ok()).unwrap_or(Value::Null);
    out["branches"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| (b["name"].as_str().unwrap_or_default().to_string(), b["input"].to_string(), b["run_id"].as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn outcome_to_json(o: &BranchOutcome) -> Value {
    let err = |e: &WitError| json!({"code": e.code, "message": e.message, "retryable": e.retryable, "resource": e.resource});
    match &o.outcome {
        Outcome::Succeeded(v) => json!({"name": o.name, "status": "succeeded", "output": serde_json::from_str::<Value>(v).unwrap_or(Value::Null)}),
        Outcome::Failed(e) => json!({"name": o.name, "status": "failed", "error": err(e)}),
        Outcome::Stopped(e) => json!({"name": o.name, "status": "stopped", "error": err(e)}),
    }
}

fn outcome_from_json(v: &Value) -> Option<BranchOutcome> {
    let name = v["name"].as_str()?.to_string();
    let e = &v["error"];
    let err = || WitError {
        code: e["code"].as_str().unwrap_or("unknown").into(),
        message: e["message"].as_str().unwrap_or_default().into(),
        retryable: e["retryable"].as_bool().unwrap_or(false),
        resource: e["resource"].as_str().map(str::to_string),
    };
    let outcome = match v["status"].as_str()? {
        "succeeded" => Outcome::Succeeded(v["output"].to_string()),
        "failed" => Outcome::Failed(err()),
        _ => Outcome::Stopped(err()),
    };
    Some(BranchOutcome { name, outcome })
}

/// Puts the run's state back when a branch's execution ends, however it
/// ends (a crash injected in a branch unwinds through here).
struct Leave {
    run_id: String,
    parent: Option<RunState>,
}

impl Drop for Leave {
    fn drop(&mut self) {
        if let Some(mut parent) = self.parent.take() {
            with_live(|l| {
                l.exchange(&mut parent);
                // `parent` now holds the branch's state: keep it for its next execution.
                l.branch_runs.insert(self.run_id.clone(), parent);
            });
        }
    }
}

/// `branches.run`, natively.
pub(crate) fn run(key: &str, list: &[Branch], mode: JoinMode) -> Vec<BranchOutcome> {
    let branches = match with_live(|l| l.begin_section(key, list, mode)) {
        Ok(outcomes) => return outcomes,
        Err(branches) => branches,
    };
    let fail_fast = matches!(mode, JoinMode::FailFast);
    let (exec, params) = with_live(|l| (l.branch_exec, l.params.clone()));
    let Some(exec) = exec else { panic!("branches.run outside TestRun::run") };
    let mut stop: Option<String> = None;
    let mut outcomes = Vec::new();
    let mut handed = Vec::new();
    let mut steps = Vec::new();
    for (name, input, run_id) in &branches {
        let prefix = format!("{key}/{name}/");
        // Enter the branch: its kept state, or a new one.
        let mut state = with_live(|l| l.branch_runs.remove(run_id)).unwrap_or_else(|| {
            let seed = drover_replay::idempotency_key(run_id, "random").bytes().fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
            RunState { run_id: run_id.clone(), rng: seed, branch: Some((name.clone(), input.clone())), prefix: prefix.clone(), ..RunState::default() }
        });
        if state.journal.ended.is_none() {
            state.stop = stop.clone();
            // A crash of an earlier execution left its attempt in flight.
            for s in &mut state.journal.steps {
                if s.status == "in-flight" {
                    s.error = Some("the agent crashed during this attempt".into());
                }
            }
            with_live(|l| l.exchange(&mut state));
            let leave = Leave { run_id: run_id.clone(), parent: Some(state) };
            exec(&params);
            drop(leave);
        } else {
            with_live(|l| l.branch_runs.insert(run_id.clone(), state));
        }
        let (ending, result, regs, branch_steps) = with_live(|l| {
            let b = &l.branch_runs[run_id];
            let (ending, result, _) = b.journal.ended.clone().unwrap_or((
                Ending::Failed,
                Err(WitError { code: "not-ended".into(), message: "the branch did not end".into(), retryable: false, resource: None }),
                0,
            ));
            (ending, result, b.journal.registrations.clone(), b.journal.steps.clone())
        });
        let outcome = match (ending, result) {
            (Ending::Succeeded, Ok(v)) => Outcome::Succeeded(v),
            (Ending::Cancelled, Err(e)) => Outcome::Stopped(e),
            (_, Err(e)) => Outcome::Failed(e),
            (_, Ok(v)) => Outcome::Succeeded(v),
        };
        if let Outcome::Succeeded(_) = outcome {
            for r in regs {
                handed.push(Registration {
                    step_key: Some(r.kind.step_key(&format!("{key}/{name}/{}", r.key))),
                    branch: Some((name.clone(), input.clone())),
                    ..r
                });
            }
        } else if fail_fast && stop.is_none() {
            stop = Some(format!("branch '{name}' of parallel section '{key}' did not succeed"));
        }
        steps.extend(branch_steps.into_iter().map(|s| StepRecord { key: format!("{prefix}{}", s.key), ..s }));
        outcomes.push(BranchOutcome { name: name.clone(), outcome });
    }
    with_live(|l| l.end_section(key, &outcomes, handed, steps));
    outcomes
}
