//! Parallel sections in a run's journal. A section is one entry of the run
//! (step key `section:KEY`): recorded, with its branches (name, input, run
//! id), before any branch starts; ended, with every branch's outcome, once
//! all have ended. Each branch is a run of its own with its own journal
//! (`crate::sections` drives them); this file is the parent's side only.
//!
//! A replay of an ended section returns its recorded outcomes and starts
//! nothing. A section in flight when the driver stopped is driven again:
//! the same branches, found by their run ids, resume where they stopped.

use drover_journal::{Durability, Entry, EntryKind, EntryStatus, ErrorRecord, Op};
use drover_replay::{Violation, sections};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::Result;
use super::{Durable, Phase};
use crate::failpoints::Failpoint;

/// One branch of a section, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionBranch {
    /// Its name, unique in the section.
    pub name: String,
    /// Its input (JSON), secrets masked.
    pub input: Value,
    /// The run that executes it.
    pub run_id: String,
}

/// How a branch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BranchStatus {
    /// Its handler returned a result.
    Succeeded,
    /// Its handler returned an error, trapped or hit a limit.
    Failed,
    /// It was stopped before it ended (a sibling failed under fail-fast, or
    /// the run was cancelled).
    Stopped,
}

/// A branch's outcome, as journaled with its section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchOutcome {
    /// The branch.
    pub name: String,
    /// How it ended.
    pub status: BranchStatus,
    /// Its result, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// What ended it, when it did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
}

/// A section to drive (recorded now, or in flight when the driver stopped).
#[derive(Debug, Clone)]
pub struct Section {
    /// The section's key (as the runbook gave it).
    pub key: String,
    /// Its journal position.
    pub seq: u64,
    /// Stop every branch when one fails.
    pub fail_fast: bool,
    /// Its branches, in the order given.
    pub branches: Vec<SectionBranch>,
}

/// What `begin_section` decided.
#[derive(Debug, Clone)]
pub enum SectionStart {
    /// The section ended in an earlier execution: its recorded outcomes.
    Ended(Vec<BranchOutcome>),
    /// Drive its branches, then call [`Durable::end_section`].
    Drive(Section),
}

/// The branches recorded in a section entry's output.
pub fn recorded_branches(entry: &Entry) -> Vec<SectionBranch> {
    entry.output.as_ref().and_then(|o| serde_json::from_value(o["branches"].clone()).ok()).unwrap_or_default()
}

impl Durable {
    /// Branches the run has started so far (every section before the cursor).
    fn branches_started(&self) -> usize {
        self.entries[..self.cursor.min(self.entries.len())]
            .iter()
            .filter(|e| e.kind == EntryKind::Step && e.key.as_deref().and_then(sections::parse_step_key).is_some())
            .map(|e| recorded_branches(e).len())
            .sum()
    }

    /// `branches.run`: replay an ended section, or record a new one (or find
    /// the one in flight) and hand it to the driver. `in_branch` names the
    /// branch this instance runs, if any (sections do not nest).
    pub async fn begin_section(
        &mut self,
        key: &str,
        requested: Vec<(String, String)>,
        fail_fast: bool,
        in_branch: Option<&str>,
        max_branches: usize,
    ) -> Result<SectionStart> {
        if self.phase == Phase::Finalize {
            return Err(sections::in_finalize(key).into());
        }
        if let Some(open) = &self.open {
            return Err(sections::in_step(key, &open.key).into());
        }
        if let Some(branch) = in_branch {
            return Err(sections::in_branch(key, branch).into());
        }
        let names: Vec<&str> = requested.iter().map(|(n, _)| n.as_str()).collect();
        sections::check_section(key, &names, self.branches_started(), max_branches)?;
        let mut asked = Vec::with_capacity(requested.len());
        for (name, input) in &requested {
            if input.len() > self.max_output_bytes {
                return Err(Violation::BadRequest(format!(
                    "the input of branch '{name}' of parallel section '{key}' is {} bytes, more than the step output limit of {} bytes (output_kib); \
                     give a branch identifiers, not data",
                    input.len(),
                    self.max_output_bytes
                ))
                .into());
            }
            let masked = self.secrets.mask_json(input);
            let value: Value = serde_json::from_str(&masked)
                .map_err(|e| Violation::BadRequest(format!("the input of branch '{name}' of parallel section '{key}' is not JSON: {e}")))?;
            asked.push((name.clone(), value));
        }
        let step_key = sections::step_key(key);
        if !self.keys.insert(step_key.clone()) {
            return Err(Violation::DuplicateKey { key: key.into() }.into());
        }
        self.point(Failpoint::BeforeStep, &step_key).await?;
        let seq = self.cursor;
        let text = |b: &[(String, Value)]| b.iter().map(|(n, v)| (n.clone(), v.to_string())).collect::<Vec<_>>();
        if let Some(e) = self.recorded(EntryKind::Step, Some(&step_key))? {
            let recorded = recorded_branches(&e);
            let was: Vec<(String, Value)> = recorded.iter().map(|b| (b.name.clone(), b.input.clone())).collect();
            sections::check_same_branches(seq as u64, key, &text(&was), &text(&asked))?;
            self.cursor = seq + 1;
            if e.status != EntryStatus::Running {
                let outcomes = e.output.as_ref().and_then(|o| serde_json::from_value(o["outcomes"].clone()).ok()).unwrap_or_default();
                return Ok(SectionStart::Ended(outcomes));
            }
            let fail_fast = e.output.as_ref().is_some_and(|o| o["mode"] == "fail-fast");
            return Ok(SectionStart::Drive(Section { key: key.into(), seq: seq as u64, fail_fast, branches: recorded }));
        }
        self.check_cancel()?;
        self.check_suspend()?;
        let run_id = self.run_id().to_string();
        let branches: Vec<SectionBranch> =
            asked.into_iter().map(|(name, input)| SectionBranch { run_id: sections::branch_run_id(&run_id, key, &name), name, input }).collect();
        let mut entry = Entry::new(seq as u64, EntryKind::Step, Some(step_key), EntryStatus::Running, self.time());
        entry.attempts = 1;
        entry.output = Some(json!({"mode": if fail_fast { "fail-fast" } else { "collect-all" }, "branches": branches}));
        // Buffered: if a power cut loses it, the replay records it again and
        // finds the branches it started by their run ids.
        self.commit(vec![Op::PutEntry(entry.clone())], Durability::Buffered).await?;
        self.put(entry);
        self.cursor = seq + 1;
        Ok(SectionStart::Drive(Section { key: key.into(), seq: seq as u64, fail_fast, branches }))
    }

    /// Records, durably, that `section` ended with `outcomes` (one per
    /// branch, in order). The section entry fails, with the first branch's
    /// error, when a branch did not succeed; the runbook decides what that
    /// means for the run.
    pub async fn end_section(&mut self, section: &Section, outcomes: &[BranchOutcome]) -> Result<()> {
        let Some(mut entry) = self.entries.get(section.seq as usize).cloned() else {
            return Err(Violation::BadRequest(format!("parallel section '{}' ended without being begun", section.key)).into());
        };
        let now = self.time();
        let first_error = outcomes.iter().find(|o| o.status != BranchStatus::Succeeded).map(|o| {
            let mut e = o.error.clone().unwrap_or_else(|| ErrorRecord::terminal("branch-failed", "a branch did not succeed"));
            e.message = format!("branch '{}': {}", o.name, e.message);
            e
        });
        match first_error {
            Some(error) => entry.fail(error, now),
            None => {
                entry.status = EntryStatus::Succeeded;
                entry.finished_at = Some(now);
            }
        }
        if let Some(out) = entry.output.as_mut() {
            out["outcomes"] = serde_json::to_value(outcomes).unwrap_or(Value::Null);
        }
        entry.end_seq = Some(section.seq);
        self.commit(vec![Op::PutEntry(entry.clone())], Durability::Durable).await?;
        self.put(entry);
        self.point(Failpoint::AfterStep, &sections::step_key(&section.key)).await
    }

    /// The run's own registrations and its sections, in journal order: what
    /// the driver's finalize walks (a section stands for the actions its
    /// succeeded branches handed to the run).
    pub fn actions_in_order(&self) -> Vec<Listed> {
        self.entries
            .iter()
            .filter_map(|e| match (e.kind, e.key.as_deref().and_then(sections::parse_step_key)) {
                (EntryKind::Register, _) => super::registration_of(e).map(Listed::Own),
                (EntryKind::Step, Some(key)) => Some(Listed::Section { key: key.to_string(), branches: recorded_branches(e) }),
                _ => None,
            })
            .collect()
    }
}

/// An item of [`Durable::actions_in_order`].
#[derive(Debug, Clone)]
pub enum Listed {
    /// A cleanup or undo the run registered itself.
    Own(super::Registration),
    /// A parallel section, with its branches.
    Section {
        /// The section's key.
        key: String,
        /// Its branches.
        branches: Vec<SectionBranch>,
    },
}
