//! Readiness: "would this runbook succeed right now?", answered without
//! changing anything. `drover readiness` runs the runbook as a dry run in
//! [`Mode::Readiness`](crate::Mode); a runbook that implements
//! [`Runbook::readiness`](crate::Runbook::readiness) checks every condition
//! it depends on and reports each as a [`Finding`], instead of stopping at
//! the first problem.

use serde::{Deserialize, Serialize};

/// One checked condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What was checked, e.g. `replica lag under the RPO budget`.
    pub check: String,
    /// Whether it holds.
    pub ok: bool,
    /// What was found, with the numbers.
    pub detail: String,
    /// The resource it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// How to fix it, when it does not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every finding of one evaluation, in the order checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    /// The findings.
    pub findings: Vec<Finding>,
}

impl Readiness {
    /// No findings yet.
    pub fn new() -> Self {
        Readiness::default()
    }

    /// Records that `check` holds.
    pub fn ok(&mut self, check: &str, detail: impl Into<String>, resource: impl Into<String>) {
        self.findings.push(Finding { check: check.into(), ok: true, detail: detail.into(), resource: Some(resource.into()), fix: None });
    }

    /// Records that `check` does not hold, what was found, and how to fix it.
    pub fn problem(&mut self, check: &str, detail: impl Into<String>, resource: impl Into<String>, fix: impl Into<String>) {
        self.findings.push(Finding { check: check.into(), ok: false, detail: detail.into(), resource: Some(resource.into()), fix: Some(fix.into()) });
    }

    /// Records `check` as holding when `result` is `Ok`, and as a problem
    /// (with the error's message and `fix`) otherwise; returns the value.
    pub fn check<T>(&mut self, check: &str, resource: &str, fix: &str, result: Result<T, crate::Error>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(check, e.message(), resource, fix);
                None
            }
        }
    }

    /// Whether every finding holds.
    pub fn ready(&self) -> bool {
        self.findings.iter().all(|f| f.ok)
    }
}
