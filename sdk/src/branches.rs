//! Parallel sections: several durable branches started at once and joined
//! before the runbook goes on ([`Ctx::parallel`]). Each branch runs in its
//! own instance of the runbook, through [`crate::Runbook::branch`], with its
//! own journal: its step keys need only be unique within the branch.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::host::branches;
use crate::{Ctx, Error};

/// What a section does when one of its branches fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// Stop every other branch at its next step boundary (each runs its
    /// undos and cleanups), then return.
    FailFast,
    /// Let every branch run to its end, then return.
    CollectAll,
}

/// The branch a [`crate::Runbook::branch`] call runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    /// Its name in the section.
    pub name: String,
    /// Its input, as given to [`Ctx::parallel`].
    pub input: Value,
}

impl Branch {
    /// The input, decoded as the type it was given as.
    pub fn input<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_value(self.input.clone()).map_err(|e| Error::new("bad-branch-input", format!("input of branch '{}': {e}", self.name)))
    }
}

/// How one branch of a section ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The branch's name.
    pub name: String,
    /// Its result (JSON), or what ended it.
    pub result: Result<Value, Error>,
    /// Whether it was stopped before it ended (a sibling failed under
    /// [`Join::FailFast`], or the run was cancelled) rather than failing itself.
    pub stopped: bool,
}

impl Outcome {
    /// Whether the branch succeeded.
    pub fn succeeded(&self) -> bool {
        self.result.is_ok()
    }

    /// The branch's result, decoded as the type its handler returned.
    pub fn output<T: DeserializeOwned>(&self) -> Result<T, Error> {
        match &self.result {
            Ok(v) => serde_json::from_value(v.clone()).map_err(|e| Error::new("bad-branch-output", format!("output of branch '{}': {e}", self.name))),
            Err(e) => Err(e.clone()),
        }
    }
}

/// The outcomes of a section, in the order its branches were given.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcomes(pub Vec<Outcome>);

impl Outcomes {
    /// Whether every branch succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.0.iter().all(Outcome::succeeded)
    }

    /// The first branch that did not succeed, as an error naming it (a
    /// failure before the stops it caused), or `Ok` when all succeeded.
    pub fn check(&self) -> Result<(), Error> {
        let first = self.0.iter().find(|o| !o.succeeded() && !o.stopped).or_else(|| self.0.iter().find(|o| !o.succeeded()));
        match first.map(|o| (o, &o.result)) {
            Some((o, Err(e))) => Err(e.clone().context(format_args!("branch '{}'", o.name))),
            _ => Ok(()),
        }
    }
}

impl Ctx {
    /// Runs `branches` (name, input) in parallel as the section `key` and
    /// waits until every one has ended; returns their outcomes in order.
    ///
    /// Each branch runs [`crate::Runbook::branch`] in its own instance, as a
    /// sequence of journaled steps of its own: a crash anywhere resumes every
    /// unfinished branch where it stopped, and a finished branch never runs
    /// again. A replay returns the recorded outcomes. A branch that fails runs
    /// its own undos and cleanups before the section returns; a branch that
    /// succeeds hands them to the run (its undos run only if the run fails).
    ///
    /// `key` is a step key (unique within the run); branch names are unique
    /// within the section (lowercase letters, digits, `-`, `_`, `.`). Call it
    /// between steps, from [`crate::Runbook::run`] (sections do not nest).
    pub fn parallel<I, N, T>(&self, key: &str, branches: I, join: Join) -> Result<Outcomes, Error>
    where
        I: IntoIterator<Item = (N, T)>,
        N: Into<String>,
        T: Serialize,
    {
        let mut list = Vec::new();
        for (name, input) in branches {
            let name = name.into();
            let input = serde_json::to_string(&input).map_err(|e| Error::new("bad-branch-input", format!("input of branch '{name}': {e}")))?;
            list.push(branches::Branch { name, input });
        }
        let mode = match join {
            Join::FailFast => branches::JoinMode::FailFast,
            Join::CollectAll => branches::JoinMode::CollectAll,
        };
        let outcomes = branches::run(key, &list, mode)
            .into_iter()
            .map(|o| {
                let (result, stopped) = match o.outcome {
                    branches::Outcome::Succeeded(json) => (
                        serde_json::from_str(&json).map_err(|e| Error::new("bad-branch-output", format!("output of branch '{}' is not JSON: {e}", o.name))),
                        false,
                    ),
                    branches::Outcome::Failed(e) => (Err(Error::from_wit(e)), false),
                    branches::Outcome::Stopped(e) => (Err(Error::from_wit(e)), true),
                };
                Outcome { name: o.name, result, stopped }
            })
            .collect();
        Ok(Outcomes(outcomes))
    }

    /// The branch this instance runs, when it runs one (in
    /// [`crate::Runbook::branch`], and in [`crate::Runbook::finalize`] for an
    /// action a branch registered).
    pub fn branch(&self) -> Option<Branch> {
        current()
    }
}

/// The branch this instance runs, if any.
pub(crate) fn current() -> Option<Branch> {
    branches::current().map(|b| Branch { input: serde_json::from_str(&b.input).unwrap_or(Value::Null), name: b.name })
}
