//! The audit log: one JSON line per capability call that changes something
//! (allowed or denied) and per denied call of any kind, appended to
//! `audit.jsonl` in the agent's home and made durable before the call goes on;
//! and one per operator takeover of a run (`drover takeover`: operation
//! `drover.takeover`, resource `run/ID`, not `mutating` since it changes
//! nothing in AWS; `deny` when refused for a live lease).
//! The file is only ever appended to; a record is one `write` of one line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One audited call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the decision was made.
    pub at: DateTime<Utc>,
    /// The run.
    pub run_id: String,
    /// The runbook's name and its component digest.
    pub runbook: String,
    /// SHA-256 of the component.
    pub digest: String,
    /// The step making the call.
    pub step: Option<String>,
    /// `service.operation`.
    pub operation: String,
    /// Regions the call acts in.
    pub regions: Vec<String>,
    /// Resources (`kind/name`).
    pub resources: Vec<String>,
    /// Whether the call changes anything.
    pub mutating: bool,
    /// `allow` or `deny`.
    pub decision: String,
    /// Why it was denied.
    pub reason: Option<String>,
}

impl AuditRecord {
    /// An operator's control of `run` (`drover.redrive`, `drover.pause`,
    /// `drover.takeover`, ...) on `resource` (`run/ID`, or a gate of it):
    /// it changes nothing in AWS. `decision` is `allow` or `deny`; `reason`
    /// says who and why (and, denied, why not).
    pub fn control(run: &drover_journal::RunRecord, operation: &str, step: Option<String>, resource: String, decision: &str, reason: String) -> Self {
        AuditRecord {
            at: Utc::now(),
            run_id: run.run_id.clone(),
            runbook: run.runbook.name.clone(),
            digest: run.runbook.digest.clone(),
            step,
            operation: operation.into(),
            regions: Vec::new(),
            resources: vec![resource],
            mutating: false,
            decision: decision.into(),
            reason: Some(reason),
        }
    }
}

/// Why the audit log could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the audit log {path}: {source}; the call was not made (free disk space or fix the file's permissions, then resume the run)")]
pub struct AuditError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The append-only audit log of an agent home.
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl AuditLog {
    /// The log at `path` (opened at the first record).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AuditLog { path: path.into(), file: Mutex::new(None) }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` and waits until it is on disk.
    pub fn append(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let err = |source| AuditError { path: self.path.clone(), source };
        let mut line = serde_json::to_vec(record).map_err(|e| err(std::io::Error::other(e)))?;
        line.push(b'\n');
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let file = match &mut *guard {
            Some(file) => file,
            None => guard.insert(OpenOptions::new().create(true).append(true).open(&self.path).map_err(err)?),
        };
        file.write_all(&line).map_err(err)?;
        file.sync_data().map_err(err)
    }

    /// Reads every record (for tests and `drover audit`-style tools).
    pub fn read(path: &Path) -> std::io::Result<Vec<AuditRecord>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).map_err(std::io::Error::other)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_appended_one_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let rec = |decision: &str| AuditRecord {
            at: Utc::now(),
            run_id: "r1".into(),
            runbook: "failover".into(),
            digest: "ab".into(),
            step: Some("promote".into()),
            operation: "rds.promote-read-replica".into(),
            regions: vec!["us-west-2".into()],
            resources: vec!["db/orders-db-replica".into()],
            mutating: true,
            decision: decision.into(),
            reason: None,
        };
        AuditLog::new(&path).append(&rec("allow")).unwrap();
        let log = AuditLog::new(&path);
        log.append(&rec("deny")).unwrap();
        let read = AuditLog::read(&path).unwrap();
        assert_eq!(read.iter().map(|r| r.decision.as_str()).collect::<Vec<_>>(), ["allow", "deny"]);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }
}
