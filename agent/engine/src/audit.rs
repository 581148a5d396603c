//! The audit log: one JSON line per capability call that changes something
//! (allowed or denied) and per denied call of any kind, appended to
//! `audit.jsonl` in the agent's home and made durable before the call goes on;
//! and one per operator takeover of a run (`drover takeover`: operation
//! `drover.takeover`, resource `run/ID`, not `mutating` since it changes
//! nothing in AWS; `deny` when refused for a live lease).
//! The file is only ever appended to, by one writer thread per log: it
//! takes every record waiting, writes them in one `write` (whole lines) and
//! makes them durable with one fdatasync (group commit: many runs' audited
//! calls share one), then tells each caller, whose call waits until then.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

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

/// Most records one write takes.
const MAX_BATCH: usize = 512;

/// Where a caller learns that its record is on disk (or why not).
type Reply = oneshot::Sender<std::io::Result<()>>;

/// The writer thread's queue: a record's line, and its caller's reply.
type Queue = mpsc::Sender<(Vec<u8>, Reply)>;

/// The append-only audit log of an agent home.
pub struct AuditLog {
    path: PathBuf,
    /// The writer thread's queue, started at the first record.
    writer: Mutex<Option<Queue>>,
}

impl AuditLog {
    /// The log at `path` (opened at the first record).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AuditLog { path: path.into(), writer: Mutex::new(None) }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: std::io::Error) -> AuditError {
        AuditError { path: self.path.clone(), source }
    }

    /// Hands `record` to the writer thread (started, and the file opened,
    /// at the first record).
    fn submit(&self, record: &AuditRecord, reply: Reply) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(record).map_err(|e| self.err(std::io::Error::other(e)))?;
        line.push(b'\n');
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = match &*guard {
            Some(tx) => tx.clone(),
            None => {
                let file = OpenOptions::new().create(true).append(true).open(&self.path).map_err(|e| self.err(e))?;
                let (tx, rx) = mpsc::channel();
                std::thread::Builder::new().name("drover-audit".into()).spawn(move || write_loop(file, rx)).map_err(|e| self.err(e))?;
                guard.insert(tx).clone()
            }
        };
        tx.send((line, reply)).map_err(|_| self.err(std::io::Error::other("the audit log's writer stopped")))
    }

    /// Appends `record` and waits until it is on disk (without holding up
    /// the async runtime's thread): what a capability call does before it
    /// leaves, and an operator's control before it is recorded.
    pub async fn append(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let (tx, rx) = oneshot::channel();
        self.submit(record, tx)?;
        match rx.await {
            Ok(r) => r.map_err(|e| self.err(e)),
            Err(_) => Err(self.err(std::io::Error::other("the audit log's writer stopped"))),
        }
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

/// The writer thread: every record waiting goes out in one write and one
/// fdatasync; each caller learns the outcome of the batch its record was in.
fn write_loop(mut file: File, rx: mpsc::Receiver<(Vec<u8>, Reply)>) {
    while let Ok(first) = rx.recv() {
        let batch = drover_journal::group::batch(&rx, first, MAX_BATCH);
        let bytes: Vec<u8> = batch.iter().flat_map(|(line, _)| line.iter().copied()).collect();
        let written = file.write_all(&bytes).and_then(|()| file.sync_data());
        for (_, reply) in batch {
            let _ = reply.send(written.as_ref().map(|_| ()).map_err(|e| std::io::Error::new(e.kind(), e.to_string())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A promotion's record for run `run_id`, `decision`, with `reason`.
    fn promotion(run_id: &str, decision: &str, reason: Option<String>) -> AuditRecord {
        AuditRecord {
            at: Utc::now(),
            run_id: run_id.into(),
            runbook: "failover".into(),
            digest: "ab".into(),
            step: Some("promote".into()),
            operation: "rds.promote-read-replica".into(),
            regions: vec!["us-west-2".into()],
            resources: vec!["db/orders-db-replica".into()],
            mutating: true,
            decision: decision.into(),
            reason,
        }
    }

    #[tokio::test]
    async fn records_are_appended_one_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let rec = |decision: &str| promotion("r1", decision, None);
        AuditLog::new(&path).append(&rec("allow")).await.unwrap();
        let log = AuditLog::new(&path);
        log.append(&rec("deny")).await.unwrap();
        let read = AuditLog::read(&path).unwrap();
        assert_eq!(read.iter().map(|r| r.decision.as_str()).collect::<Vec<_>>(), ["allow", "deny"]);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_callers_at_once_each_get_their_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = std::sync::Arc::new(AuditLog::new(&path));
        let rec = |i: usize| promotion(&format!("r{i}"), "allow", Some("x".repeat(i % 7 * 100)));
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move { log.append(&rec(i)).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let mut runs: Vec<String> = AuditLog::read(&path).unwrap().into_iter().map(|r| r.run_id).collect();
        runs.sort();
        let mut want: Vec<String> = (0..200).map(|i| format!("r{i}")).collect();
        want.sort();
        assert_eq!(runs, want, "every record once, whole");
    }

    #[tokio::test]
    async fn a_log_that_cannot_be_opened_says_where_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("missing-dir").join("audit.jsonl"));
        let rec = promotion("r1", "allow", None);
        let e = log.append(&rec).await.unwrap_err().to_string();
        assert!(e.contains("missing-dir/audit.jsonl") && e.contains("the call was not made"), "{e}");
    }
}
