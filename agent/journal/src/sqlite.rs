//! The embedded store: one SQLite file in WAL mode.
//!
//! All writes go through one writer thread that batches whatever commits are
//! waiting into one transaction (group commit): concurrent runs share one
//! fdatasync instead of paying one each. A batch is synced (`synchronous=FULL`)
//! when any commit in it asks for [`Durability::Durable`]. Each commit in a
//! batch runs in its own savepoint, so one refused commit (a stale lease)
//! does not undo the others. Reads use a second connection; WAL lets them run
//! beside the writer.
//!
//! Claims are leases, as in the shared store: a claim records its expiry
//! (`lease_expires`), the driver renews it, and a claim whose lease ran out
//! is taken over by the next claim, whatever host the driver was on (a
//! container re-created with the same volume gets a new host name, and the
//! old one never comes back). A driver on this host whose process exited is
//! taken over at once. A renewal is not fsynced: it only matters while the
//! driver's process lives, and a crash of the machine ends that process too.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::types::rfc3339;
use crate::{
    Approval, AttemptRecord, CancelRequest, Created, Decision, Durability, Entry, EntryKind, EntryStatus, ErrorRecord, Event, Journal, JournalError, Lease,
    Level, NewRun, Op, Owner, Result, RunFilter, RunRecord, RunStatus, RunbookRef,
};

/// Schema version written to `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 6;
/// How long a write waits for another process's lock on the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Most commits one group commit takes.
const MAX_BATCH: usize = 512;

const SCHEMA: &str = r#"
CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,
    runbook_name    TEXT NOT NULL,
    runbook_version TEXT NOT NULL,
    runbook_digest  TEXT NOT NULL,
    params          TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    finished_at     TEXT,
    result          TEXT,
    error           TEXT,
    owner           TEXT,
    fence           INTEGER NOT NULL DEFAULT 0,
    cancel          TEXT,
    policy_override TEXT,
    origin          TEXT,
    scope           TEXT,
    lease_expires   TEXT,
    pause           TEXT
);
CREATE INDEX runs_by_created ON runs(created_at);
CREATE INDEX runs_by_scope ON runs(scope) WHERE scope IS NOT NULL;
CREATE TABLE approvals (
    run_id       TEXT NOT NULL,
    gate         TEXT NOT NULL,
    message      TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    deadline     TEXT,
    decision     TEXT,
    PRIMARY KEY (run_id, gate)
) WITHOUT ROWID;
CREATE TABLE entries (
    run_id          TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    key             TEXT,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    output          TEXT,
    error           TEXT,
    idempotency_key TEXT,
    next_attempt_at TEXT,
    end_seq         INTEGER,
    requests        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE attempts (
    run_id          TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    number          INTEGER NOT NULL,
    key             TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    PRIMARY KEY (run_id, seq, number)
) WITHOUT ROWID;
CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  TEXT NOT NULL,
    at      TEXT NOT NULL,
    level   TEXT NOT NULL,
    step    TEXT,
    message TEXT NOT NULL,
    fields  TEXT NOT NULL
);
CREATE INDEX events_by_run ON events(run_id, id);
"#;

/// The embedded journal: a SQLite file (`runs.db` under the agent's home).
pub struct SqliteJournal {
    path: PathBuf,
    lease: Duration,
    writer: mpsc::Sender<WriteRequest>,
    reader: Arc<Mutex<Connection>>,
}

enum Job {
    Create(Box<NewRun>),
    Cancel(String, CancelRequest),
    Pause(String, Option<CancelRequest>),
    Decide(String, String, Decision),
    /// Claim a run; `true`: whatever its current lease (an operator's takeover).
    Claim(String, Owner, bool),
    Renew(Lease),
    Release(Lease),
    Commit(Lease, Vec<Op>, Durability),
}

enum Reply {
    Unit,
    Run(Box<RunRecord>),
    Created(Box<Created>),
    Lease(Lease),
    Approval(Box<Approval>),
}

struct WriteRequest {
    job: Job,
    reply: oneshot::Sender<Result<Reply>>,
}

impl SqliteJournal {
    /// The default lease: 15 s, as the shared store's.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

    /// Opens (creating if needed) the store at `path`, with the default
    /// lease. Fails with a clear error if the file is not a drover store, is
    /// damaged, or is locked.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_lease(path, Self::DEFAULT_LEASE)
    }

    /// Opens the store at `path`; this process's claims last `lease` unless
    /// renewed. Claims made before leases existed (a store written by an
    /// older drover) are given one `lease` from the migration: a driver
    /// still running under the old version is taken over after that.
    pub fn open_with_lease(path: impl AsRef<Path>, lease: Duration) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| JournalError::Io { path: path.clone(), detail: format!("cannot create directory {}: {e}", dir.display()) })?;
        }
        let writer_conn = open_connection(&path)?;
        migrate(&writer_conn, &path, lease)?;
        // Every statement a commit or a claim runs stays prepared.
        writer_conn.set_prepared_statement_cache_capacity(64);
        let reader = open_connection(&path)?;
        let (tx, rx) = mpsc::channel();
        let thread_path = path.clone();
        std::thread::Builder::new()
            .name("drover-journal-writer".into())
            .spawn(move || writer_loop(writer_conn, thread_path, lease, rx))
            .map_err(|e| JournalError::Io { path: path.clone(), detail: format!("cannot start writer thread: {e}") })?;
        Ok(SqliteJournal { path, lease, writer: tx, reader: Arc::new(Mutex::new(reader)) })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write(&self, job: Job) -> Result<Reply> {
        let (reply, rx) = oneshot::channel();
        self.writer.send(WriteRequest { job, reply }).map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let reader = self.reader.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn).map_err(|e| map_err(&path, e))
        })
        .await
        .map_err(|_| JournalError::Closed)?
    }
}

fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| map_err(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| map_err(path, e))?;
    // journal_mode answers with a row; reading it also proves the file is a database.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(|e| map_err(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(JournalError::Io { path: path.into(), detail: format!("cannot switch to WAL mode (got {mode})") });
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;").map_err(|e| map_err(path, e))?;
    Ok(conn)
}

fn migrate(conn: &Connection, path: &Path, lease: Duration) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| map_err(path, e))?;
    if version > SCHEMA_VERSION {
        return Err(JournalError::SchemaTooNew { path: path.into(), found: version, supported: SCHEMA_VERSION });
    }
    if version == 0 {
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0)).map_err(|e| map_err(path, e))?;
        if tables > 0 {
            return Err(JournalError::Corrupt { path: path.into(), detail: "it is an SQLite database, but not one drover created".into() });
        }
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")).map_err(|e| map_err(path, e))?;
        return Ok(());
    }
    if version == 1 {
        // 2: runs started with missing grants record the operator's override.
        conn.execute_batch("BEGIN IMMEDIATE; ALTER TABLE runs ADD COLUMN policy_override TEXT; PRAGMA user_version = 2; COMMIT;")
            .map_err(|e| map_err(path, e))?;
    }
    if version <= 2 {
        // 3: why a run started, the scope it holds, and approval gates.
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             ALTER TABLE runs ADD COLUMN origin TEXT;
             ALTER TABLE runs ADD COLUMN scope TEXT;
             CREATE INDEX runs_by_scope ON runs(scope) WHERE scope IS NOT NULL;
             CREATE TABLE approvals (
                 run_id TEXT NOT NULL, gate TEXT NOT NULL, message TEXT NOT NULL,
                 requested_at TEXT NOT NULL, deadline TEXT, decision TEXT,
                 PRIMARY KEY (run_id, gate)
             ) WITHOUT ROWID;
             PRAGMA user_version = 3;
             COMMIT;",
        )
        .map_err(|e| map_err(path, e))?;
    }
    if version <= 3 {
        // 4: claims are leases. A claim an older drover made has no expiry:
        // it gets one lease from now (its driver, if it still runs, does not
        // renew, and is taken over after that).
        let expires = rfc3339(&lease_expiry(Utc::now(), lease));
        let step = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE; ALTER TABLE runs ADD COLUMN lease_expires TEXT;")?;
            conn.execute("UPDATE runs SET lease_expires = ?1 WHERE owner IS NOT NULL", params![expires])?;
            conn.execute_batch("PRAGMA user_version = 4; COMMIT;")
        };
        if let Err(e) = step() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(map_err(path, e));
        }
    }
    if version <= 4 {
        // 5: an operator's request to pause a run.
        conn.execute_batch("BEGIN IMMEDIATE; ALTER TABLE runs ADD COLUMN pause TEXT; PRAGMA user_version = 5; COMMIT;").map_err(|e| map_err(path, e))?;
    }
    if version <= 5 {
        // 6: the AWS requests of each step.
        conn.execute_batch("BEGIN IMMEDIATE; ALTER TABLE entries ADD COLUMN requests INTEGER NOT NULL DEFAULT 0; PRAGMA user_version = 6; COMMIT;")
            .map_err(|e| map_err(path, e))?;
    }
    Ok(())
}

/// When a claim made or renewed at `now` runs out.
fn lease_expiry(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(lease).ok().and_then(|d| now.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn map_err(path: &Path, e: rusqlite::Error) -> JournalError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        let detail = msg.clone().unwrap_or_else(|| f.to_string());
        return match f.code {
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => JournalError::Corrupt { path: path.into(), detail },
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => JournalError::Locked { path: path.into(), waited_ms: BUSY_TIMEOUT.as_millis() as u64 },
            ErrorCode::DiskFull => JournalError::Io { path: path.into(), detail: format!("disk full: {detail}") },
            ErrorCode::ReadOnly => JournalError::Io { path: path.into(), detail: format!("store is read-only: {detail}") },
            ErrorCode::CannotOpen => JournalError::Io { path: path.into(), detail: format!("cannot open: {detail}") },
            _ => JournalError::Io { path: path.into(), detail },
        };
    }
    match e {
        rusqlite::Error::FromSqlConversionFailure(_, _, inner) => JournalError::Malformed(inner.to_string()),
        other => JournalError::Io { path: path.into(), detail: other.to_string() },
    }
}

fn writer_loop(conn: Connection, path: PathBuf, lease: Duration, rx: mpsc::Receiver<WriteRequest>) {
    let mut synchronous_full = true;
    while let Ok(first) = rx.recv() {
        let batch = crate::group::batch(&rx, first, MAX_BATCH);
        // A renewal needs no fsync: it matters only while its driver lives.
        let durable = batch.iter().any(|r| !matches!(r.job, Job::Commit(_, _, Durability::Buffered) | Job::Renew(_)));
        if durable != synchronous_full {
            let pragma = if durable { "PRAGMA synchronous=FULL" } else { "PRAGMA synchronous=NORMAL" };
            if let Err(e) = conn.execute_batch(pragma) {
                fail_all(batch, &map_err(&path, e));
                continue;
            }
            synchronous_full = durable;
        }
        if let Err(e) = exec(&conn, "BEGIN IMMEDIATE", []) {
            fail_all(batch, &map_err(&path, e));
            continue;
        }
        let mut results = Vec::with_capacity(batch.len());
        let mut fatal = None;
        for req in &batch {
            if let Err(e) = exec(&conn, "SAVEPOINT one", []) {
                fatal = Some(map_err(&path, e));
                break;
            }
            let r = apply(&conn, &path, lease, &req.job);
            let end = if r.is_ok() { exec(&conn, "RELEASE one", []).map(|_| ()) } else { conn.execute_batch("ROLLBACK TO one; RELEASE one") };
            if let Err(e) = end {
                fatal = Some(map_err(&path, e));
                break;
            }
            results.push(r);
        }
        if fatal.is_none()
            && let Err(e) = exec(&conn, "COMMIT", [])
        {
            fatal = Some(map_err(&path, e));
        }
        match fatal {
            Some(err) => {
                let _ = conn.execute_batch("ROLLBACK");
                fail_all(batch, &err);
            }
            None => {
                for (req, r) in batch.into_iter().zip(results) {
                    let _ = req.reply.send(r);
                }
            }
        }
    }
}

fn fail_all(batch: Vec<WriteRequest>, err: &JournalError) {
    for req in batch {
        let _ = req.reply.send(Err(err.clone()));
    }
}

fn apply(conn: &Connection, path: &Path, lease: Duration, job: &Job) -> Result<Reply> {
    let sql = |e| map_err(path, e);
    match job {
        Job::Create(run) => {
            if let Some(existing) = read_run(conn, &run.run_id).map_err(sql)? {
                return Ok(Reply::Created(Box::new(Created::Existing(existing))));
            }
            if let Some(scope) = &run.scope {
                let holder: Option<String> = conn
                    .query_row(
                        "SELECT run_id FROM runs WHERE scope = ?1 AND status NOT IN ('succeeded', 'failed', 'cancelled')
                         ORDER BY created_at LIMIT 1",
                        params![scope],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sql)?;
                if let Some(holder) = holder
                    && let Some(held) = read_run(conn, &holder).map_err(sql)?
                {
                    return Ok(Reply::Created(Box::new(Created::Joined(held))));
                }
            }
            conn.execute(
                "INSERT INTO runs (run_id, runbook_name, runbook_version, runbook_digest, params, status, created_at, policy_override, origin, scope)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    run.run_id,
                    run.runbook.name,
                    run.runbook.version,
                    run.runbook.digest,
                    run.params.to_string(),
                    RunStatus::Running.as_str(),
                    rfc3339(&run.created_at),
                    run.policy_override.as_ref().map(Value::to_string),
                    run.origin.as_ref().map(Value::to_string),
                    run.scope,
                ],
            )
            .map_err(sql)?;
            Ok(Reply::Created(Box::new(Created::New)))
        }
        Job::Cancel(run_id, req) => {
            let run = read_run(conn, run_id).map_err(sql)?.ok_or_else(|| JournalError::UnknownRun(run_id.clone()))?;
            if run.cancel.is_none() && !run.status.is_final() {
                let text = serde_json::to_string(req).map_err(|e| JournalError::Malformed(e.to_string()))?;
                conn.execute("UPDATE runs SET cancel = ?2 WHERE run_id = ?1", params![run_id, text]).map_err(sql)?;
            }
            let run = read_run(conn, run_id).map_err(sql)?.ok_or_else(|| JournalError::UnknownRun(run_id.clone()))?;
            Ok(Reply::Run(Box::new(run)))
        }
        Job::Pause(run_id, req) => {
            let run = read_run(conn, run_id).map_err(sql)?.ok_or_else(|| JournalError::UnknownRun(run_id.clone()))?;
            if !run.status.is_final() {
                let text = req.as_ref().map(serde_json::to_string).transpose().map_err(|e| JournalError::Malformed(e.to_string()))?;
                conn.execute("UPDATE runs SET pause = ?2 WHERE run_id = ?1", params![run_id, text]).map_err(sql)?;
            }
            let run = read_run(conn, run_id).map_err(sql)?.ok_or_else(|| JournalError::UnknownRun(run_id.clone()))?;
            Ok(Reply::Run(Box::new(run)))
        }
        Job::Decide(run_id, gate, decision) => {
            let found = read_approval(conn, run_id, gate).map_err(sql)?;
            let Some(approval) = found else {
                return Err(JournalError::UnknownGate { run_id: run_id.clone(), gate: gate.clone() });
            };
            if approval.decision.is_none() {
                let text = serde_json::to_string(decision).map_err(|e| JournalError::Malformed(e.to_string()))?;
                conn.execute("UPDATE approvals SET decision = ?3 WHERE run_id = ?1 AND gate = ?2 AND decision IS NULL", params![run_id, gate, text])
                    .map_err(sql)?;
            }
            let approval =
                read_approval(conn, run_id, gate).map_err(sql)?.ok_or_else(|| JournalError::UnknownGate { run_id: run_id.clone(), gate: gate.clone() })?;
            Ok(Reply::Approval(Box::new(approval)))
        }
        Job::Claim(run_id, owner, force) => {
            let run = read_run(conn, run_id).map_err(sql)?.ok_or_else(|| JournalError::UnknownRun(run_id.clone()))?;
            let now = Utc::now();
            if let Some(current) = &run.owner
                && !force
                && current != owner
                && !run.driver_gone(now)
            {
                return Err(JournalError::RunBusy { run_id: run_id.clone(), host: current.host.clone(), pid: current.pid });
            }
            let fence = run.fence.checked_add(1).ok_or_else(|| JournalError::Malformed(format!("run '{run_id}': fence overflow")))?;
            let owner_json = serde_json::to_string(owner).map_err(|e| JournalError::Malformed(e.to_string()))?;
            conn.execute(
                "UPDATE runs SET owner = ?2, fence = ?3, lease_expires = ?4 WHERE run_id = ?1",
                params![run_id, owner_json, fence as i64, rfc3339(&lease_expiry(now, lease))],
            )
            .map_err(sql)?;
            Ok(Reply::Lease(Lease { run_id: run_id.clone(), fence }))
        }
        Job::Renew(held) => {
            let renewed = conn
                .execute(
                    "UPDATE runs SET lease_expires = ?3 WHERE run_id = ?1 AND fence = ?2 AND owner IS NOT NULL",
                    params![held.run_id, held.fence as i64, rfc3339(&lease_expiry(Utc::now(), lease))],
                )
                .map_err(sql)?;
            if renewed == 0 {
                return Err(match read_run(conn, &held.run_id).map_err(sql)? {
                    None => JournalError::UnknownRun(held.run_id.clone()),
                    Some(_) => JournalError::LeaseLost { run_id: held.run_id.clone(), fence: held.fence },
                });
            }
            Ok(Reply::Unit)
        }
        Job::Release(lease) => {
            conn.execute("UPDATE runs SET owner = NULL, lease_expires = NULL WHERE run_id = ?1 AND fence = ?2", params![lease.run_id, lease.fence as i64])
                .map_err(sql)?;
            Ok(Reply::Unit)
        }
        Job::Commit(lease, ops, _) => {
            let held: Option<i64> = conn
                .prepare_cached("SELECT fence FROM runs WHERE run_id = ?1")
                .and_then(|mut st| st.query_row(params![lease.run_id], |r| r.get(0)).optional())
                .map_err(sql)?;
            match held {
                None => return Err(JournalError::UnknownRun(lease.run_id.clone())),
                Some(f) if f as u64 != lease.fence => {
                    return Err(JournalError::LeaseLost { run_id: lease.run_id.clone(), fence: lease.fence });
                }
                Some(_) => {}
            }
            for op in ops {
                apply_op(conn, &lease.run_id, op).map_err(sql)?;
            }
            Ok(Reply::Unit)
        }
    }
}

fn json_text<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(|v| serde_json::to_string(v).unwrap_or_else(|_| "null".into()))
}

/// Runs `sql` with `params` through the connection's statement cache: the
/// statements of a commit are parsed once per connection, not once per
/// commit.
fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

fn apply_op(conn: &Connection, run_id: &str, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::PutEntry(e) => {
            exec(
                conn,
                "INSERT OR REPLACE INTO entries
                 (run_id, seq, kind, key, status, attempts, started_at, finished_at, output, error,
                  idempotency_key, next_attempt_at, end_seq, requests)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    run_id,
                    e.seq as i64,
                    e.kind.as_str(),
                    e.key,
                    e.status.as_str(),
                    e.attempts,
                    rfc3339(&e.started_at),
                    e.finished_at.as_ref().map(rfc3339),
                    json_text(&e.output),
                    json_text(&e.error),
                    e.idempotency_key,
                    e.next_attempt_at.as_ref().map(rfc3339),
                    e.end_seq.map(|s| s as i64),
                    e.requests,
                ],
            )?;
        }
        Op::TruncateAfter(seq) => {
            exec(conn, "DELETE FROM entries WHERE run_id = ?1 AND seq > ?2", params![run_id, *seq as i64])?;
        }
        Op::AddAttempt(a) => {
            exec(
                conn,
                "INSERT OR REPLACE INTO attempts (run_id, seq, number, key, idempotency_key, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![run_id, a.seq as i64, a.number, a.key, a.idempotency_key, rfc3339(&a.started_at)],
            )?;
        }
        Op::AddEvent(ev) => {
            exec(
                conn,
                "INSERT INTO events (run_id, at, level, step, message, fields) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![run_id, rfc3339(&ev.at), ev.level.as_str(), ev.step, ev.message, serde_json::to_string(&ev.fields).unwrap_or_else(|_| "[]".into()),],
            )?;
        }
        Op::OpenApproval { gate, message, requested_at, deadline } => {
            exec(
                conn,
                "INSERT OR IGNORE INTO approvals (run_id, gate, message, requested_at, deadline) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![run_id, gate, message, rfc3339(requested_at), deadline.as_ref().map(rfc3339)],
            )?;
        }
        Op::SetRunbook(r) => {
            exec(
                conn,
                "UPDATE runs SET runbook_name = ?2, runbook_version = ?3, runbook_digest = ?4 WHERE run_id = ?1",
                params![run_id, r.name, r.version, r.digest],
            )?;
        }
        Op::ClearCancel => {
            exec(conn, "UPDATE runs SET cancel = NULL WHERE run_id = ?1", params![run_id])?;
        }
        Op::SetStatus { status, finished_at, result, error } => {
            exec(
                conn,
                "UPDATE runs SET status = ?2, finished_at = ?3, result = ?4, error = ?5 WHERE run_id = ?1",
                params![run_id, status.as_str(), finished_at.as_ref().map(rfc3339), json_text(result), json_text(error)],
            )?;
        }
    }
    Ok(())
}

fn bad(col: usize, msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, msg.into())
}

fn time_col(row: &Row, col: usize) -> rusqlite::Result<DateTime<Utc>> {
    let s: String = row.get(col)?;
    DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(|e| bad(col, format!("time '{s}': {e}")))
}

fn opt_time_col(row: &Row, col: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let s: Option<String> = row.get(col)?;
    s.map(|s| DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(|e| bad(col, format!("time '{s}': {e}")))).transpose()
}

fn json_col<T: serde::de::DeserializeOwned>(row: &Row, col: usize) -> rusqlite::Result<Option<T>> {
    let s: Option<String> = row.get(col)?;
    s.map(|s| serde_json::from_str(&s).map_err(|e| bad(col, format!("json: {e}")))).transpose()
}

const RUN_COLUMNS: &str = "run_id, runbook_name, runbook_version, runbook_digest, params, status, created_at,
     finished_at, result, error, owner, fence, cancel, policy_override, origin, scope, lease_expires, pause";

fn run_from_row(row: &Row) -> rusqlite::Result<RunRecord> {
    let status: String = row.get(5)?;
    let owner = json_col::<Owner>(row, 10)?;
    Ok(RunRecord {
        run_id: row.get(0)?,
        runbook: RunbookRef { name: row.get(1)?, version: row.get(2)?, digest: row.get(3)? },
        params: json_col::<Value>(row, 4)?.unwrap_or(Value::Null),
        status: RunStatus::parse(&status).ok_or_else(|| bad(5, format!("run status '{status}'")))?,
        created_at: time_col(row, 6)?,
        finished_at: opt_time_col(row, 7)?,
        result: json_col(row, 8)?,
        error: json_col::<ErrorRecord>(row, 9)?,
        lease_expires_at: if owner.is_some() { opt_time_col(row, 16)? } else { None },
        owner,
        fence: row.get::<_, i64>(11)? as u64,
        cancel: json_col::<CancelRequest>(row, 12)?,
        pause: json_col::<CancelRequest>(row, 17)?,
        policy_override: json_col::<Value>(row, 13)?,
        origin: json_col::<Value>(row, 14)?,
        scope: row.get(15)?,
    })
}

const APPROVAL_COLUMNS: &str = "run_id, gate, message, requested_at, deadline, decision";

fn approval_from_row(row: &Row) -> rusqlite::Result<Approval> {
    Ok(Approval {
        run_id: row.get(0)?,
        gate: row.get(1)?,
        message: row.get(2)?,
        requested_at: time_col(row, 3)?,
        deadline: opt_time_col(row, 4)?,
        decision: json_col::<Decision>(row, 5)?,
    })
}

fn read_approval(conn: &Connection, run_id: &str, gate: &str) -> rusqlite::Result<Option<Approval>> {
    conn.query_row(&format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE run_id = ?1 AND gate = ?2"), params![run_id, gate], approval_from_row).optional()
}

fn read_run(conn: &Connection, run_id: &str) -> rusqlite::Result<Option<RunRecord>> {
    conn.query_row(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1"), params![run_id], run_from_row).optional()
}

fn entry_from_row(row: &Row) -> rusqlite::Result<Entry> {
    let kind: String = row.get(1)?;
    let status: String = row.get(3)?;
    Ok(Entry {
        seq: row.get::<_, i64>(0)? as u64,
        kind: EntryKind::parse(&kind).ok_or_else(|| bad(1, format!("entry kind '{kind}'")))?,
        key: row.get(2)?,
        status: EntryStatus::parse(&status).ok_or_else(|| bad(3, format!("entry status '{status}'")))?,
        attempts: row.get(4)?,
        started_at: time_col(row, 5)?,
        finished_at: opt_time_col(row, 6)?,
        output: json_col(row, 7)?,
        error: json_col(row, 8)?,
        idempotency_key: row.get(9)?,
        next_attempt_at: opt_time_col(row, 10)?,
        end_seq: row.get::<_, Option<i64>>(11)?.map(|s| s as u64),
        requests: row.get(12)?,
    })
}

#[async_trait]
impl Journal for SqliteJournal {
    async fn create_run(&self, run: &NewRun) -> Result<Created> {
        match self.write(Job::Create(Box::new(run.clone()))).await? {
            Reply::Created(c) => Ok(*c),
            _ => unreachable!("create answers Created"),
        }
    }

    async fn claim(&self, run_id: &str, owner: &Owner) -> Result<Lease> {
        match self.write(Job::Claim(run_id.to_string(), owner.clone(), false)).await? {
            Reply::Lease(l) => Ok(l),
            _ => unreachable!("claim answers Lease"),
        }
    }

    async fn take_over(&self, run_id: &str, owner: &Owner) -> Result<Lease> {
        match self.write(Job::Claim(run_id.to_string(), owner.clone(), true)).await? {
            Reply::Lease(l) => Ok(l),
            _ => unreachable!("claim answers Lease"),
        }
    }

    fn lease_ttl(&self) -> Option<Duration> {
        Some(self.lease)
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        self.write(Job::Release(lease.clone())).await.map(|_| ())
    }

    async fn renew(&self, lease: &Lease) -> Result<()> {
        self.write(Job::Renew(lease.clone())).await.map(|_| ())
    }

    async fn check_lease(&self, lease: &Lease) -> Result<()> {
        let id = lease.run_id.clone();
        let held: Option<(i64, Option<String>)> = self
            .read(move |c| {
                c.query_row("SELECT fence, CASE WHEN owner IS NULL THEN NULL ELSE lease_expires END FROM runs WHERE run_id = ?1", params![id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .await?;
        let (run_id, fence) = (lease.run_id.clone(), lease.fence);
        match held {
            None => Err(JournalError::UnknownRun(run_id)),
            Some((f, _)) if f as u64 != fence => Err(JournalError::LeaseLost { run_id, fence }),
            Some((_, expires)) => {
                let expires = expires.and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).map(|t| t.with_timezone(&Utc));
                match expires {
                    Some(t) if t > Utc::now() => Ok(()),
                    // Released, run out, or unreadable: this driver may no longer act.
                    _ => Err(JournalError::LeaseExpired { run_id, fence }),
                }
            }
        }
    }

    async fn commit(&self, lease: &Lease, ops: Vec<Op>, durability: Durability) -> Result<()> {
        self.write(Job::Commit(lease.clone(), ops, durability)).await.map(|_| ())
    }

    async fn send(&self, lease: &Lease, ops: Vec<Op>) -> Result<crate::Sent> {
        // Queued to the one writer thread, which applies its queue in order.
        let (reply, rx) = oneshot::channel();
        self.writer.send(WriteRequest { job: Job::Commit(lease.clone(), ops, Durability::Buffered), reply }).map_err(|_| JournalError::Closed)?;
        Ok(Box::pin(async move { rx.await.map_err(|_| JournalError::Closed)?.map(|_| ()) }))
    }

    async fn request_cancel(&self, run_id: &str, request: &CancelRequest) -> Result<RunRecord> {
        match self.write(Job::Cancel(run_id.to_string(), request.clone())).await? {
            Reply::Run(r) => Ok(*r),
            _ => unreachable!("cancel answers Run"),
        }
    }

    async fn request_pause(&self, run_id: &str, request: Option<&CancelRequest>) -> Result<RunRecord> {
        match self.write(Job::Pause(run_id.to_string(), request.cloned())).await? {
            Reply::Run(r) => Ok(*r),
            _ => unreachable!("pause answers Run"),
        }
    }

    async fn decide(&self, run_id: &str, gate: &str, decision: &Decision) -> Result<Approval> {
        match self.write(Job::Decide(run_id.to_string(), gate.to_string(), decision.clone())).await? {
            Reply::Approval(a) => Ok(*a),
            _ => unreachable!("decide answers Approval"),
        }
    }

    async fn approvals(&self, run_id: Option<&str>, pending_only: bool) -> Result<Vec<Approval>> {
        let id = run_id.map(str::to_string);
        self.read(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {APPROVAL_COLUMNS} FROM approvals
                 WHERE (?1 IS NULL OR run_id = ?1) AND (?2 = 0 OR decision IS NULL)
                 ORDER BY requested_at, run_id, gate"
            ))?;
            let rows = stmt.query_map(params![id, pending_only as i64], approval_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        let id = run_id.to_string();
        self.read(move |c| read_run(c, &id)).await
    }

    async fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>> {
        let status = filter.status.map(|s| s.as_str().to_string());
        let limit = filter.limit.map(|l| l as i64).unwrap_or(-1);
        let unfinished = filter.unfinished;
        let runbook = filter.runbook.clone();
        self.read(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR status = ?1)
                 AND (?3 = 0 OR status IN ('running', 'waiting'))
                 AND (?4 IS NULL OR runbook_name = ?4)
                 ORDER BY created_at DESC, run_id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![status, limit, unfinished as i64, runbook], run_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn entries(&self, run_id: &str) -> Result<Vec<Entry>> {
        let id = run_id.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT seq, kind, key, status, attempts, started_at, finished_at, output, error,
                        idempotency_key, next_attempt_at, end_seq, requests
                 FROM entries WHERE run_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![id], entry_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn attempts(&self, run_id: &str) -> Result<Vec<AttemptRecord>> {
        let id = run_id.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT seq, key, number, idempotency_key, started_at FROM attempts
                 WHERE run_id = ?1 ORDER BY seq, number",
            )?;
            let rows = stmt.query_map(params![id], |row| {
                Ok(AttemptRecord {
                    seq: row.get::<_, i64>(0)? as u64,
                    key: row.get(1)?,
                    number: row.get(2)?,
                    idempotency_key: row.get(3)?,
                    started_at: time_col(row, 4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn events(&self, run_id: &str) -> Result<Vec<Event>> {
        let id = run_id.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare("SELECT at, level, step, message, fields FROM events WHERE run_id = ?1 ORDER BY id")?;
            let rows = stmt.query_map(params![id], |row| {
                let level: String = row.get(1)?;
                Ok(Event {
                    at: time_col(row, 0)?,
                    level: Level::parse(&level).ok_or_else(|| bad(1, format!("level '{level}'")))?,
                    step: row.get(2)?,
                    message: row.get(3)?,
                    fields: json_col(row, 4)?.unwrap_or_default(),
                })
            })?;
            rows.collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Verdict, current_owner};

    fn new_run(id: &str) -> NewRun {
        NewRun {
            run_id: id.into(),
            runbook: RunbookRef { name: "t".into(), version: "1.0.0".into(), digest: "ab".into() },
            params: serde_json::json!({"x": 1}),
            created_at: Utc::now(),
            policy_override: None,
            origin: None,
            scope: None,
        }
    }

    #[tokio::test]
    async fn the_embedded_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let j: Arc<dyn Journal> = Arc::new(SqliteJournal::open(dir.path().join("runs.db")).unwrap());
        crate::conformance::all(&j, "c").await;
    }

    #[tokio::test]
    async fn an_expired_lease_of_another_host_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let j: Arc<dyn Journal> = Arc::new(SqliteJournal::open_with_lease(dir.path().join("runs.db"), Duration::from_secs(1)).unwrap());
        crate::conformance::an_expired_lease_is_taken_over(&j, "x").await;
    }

    /// The column version 6 added to `entries`.
    const V6_REQUESTS: &str = "\n    requests        INTEGER NOT NULL DEFAULT 0,";

    #[tokio::test]
    async fn a_version_3_claim_gets_one_lease_from_the_migration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.db");
        {
            let c = Connection::open(&path).unwrap();
            let v3 = SCHEMA.replace(",\n    lease_expires   TEXT,\n    pause           TEXT", "").replace(V6_REQUESTS, "");
            assert!(!v3.contains("lease_expires") && !v3.contains("pause") && !v3.contains("requests"), "{v3}");
            c.execute_batch(&format!("{v3} PRAGMA user_version = 3;")).unwrap();
            // Claimed by an older drover in a container since re-created under another host name.
            c.execute(
                "INSERT INTO runs (run_id, runbook_name, runbook_version, runbook_digest, params, status, created_at, owner, fence, scope)
                 VALUES ('stuck', 't', '1.0.0', 'ab', '{}', 'waiting', '2026-11-01T00:00:00Z',
                         '{\"host\":\"old-host\",\"pid\":7,\"start_ticks\":9}', 1, 'app:shop')",
                [],
            )
            .unwrap();
        }
        let before = Utc::now();
        let j = SqliteJournal::open_with_lease(&path, Duration::from_secs(30)).unwrap();
        let run = j.run("stuck").await.unwrap().unwrap();
        let expires = run.lease_expires_at.expect("an old claim gets an expiry");
        assert!(expires >= before + chrono::Duration::seconds(30) && expires <= Utc::now() + chrono::Duration::seconds(30), "{expires}");
        assert!(!run.driver_gone(Utc::now()));
        assert!(run.driver_gone(expires), "once that lease ran out, the old claim is gone");
        assert!(matches!(j.claim("stuck", &current_owner()).await, Err(JournalError::RunBusy { .. })));
        let version: i64 = Connection::open(&path).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn a_scope_held_by_an_unfinished_run_is_joined_not_doubled() {
        let dir = tempfile::tempdir().unwrap();
        let j = Arc::new(SqliteJournal::open(dir.path().join("runs.db")).unwrap());
        let scoped = |id: &str| NewRun { scope: Some("app:shop".into()), ..new_run(id) };
        // Two requests for the same scope at the same moment: one run.
        let (ra, rb) = (scoped("a"), scoped("b"));
        let (a, b) = tokio::join!(j.create_run(&ra), j.create_run(&rb));
        let (a, b) = (a.unwrap(), b.unwrap());
        let (created, joined) = match (&a, &b) {
            (Created::New, Created::Joined(r)) => ("a", r),
            (Created::Joined(r), Created::New) => ("b", r),
            other => panic!("expected one new and one joined, got {other:?}"),
        };
        assert_eq!(joined.run_id, created);
        assert!(j.run(if created == "a" { "b" } else { "a" }).await.unwrap().is_none(), "the joiner created nothing");
        // Another scope is independent; once the holder ends, the scope is free.
        assert!(matches!(j.create_run(&NewRun { scope: Some("app:other".into()), ..new_run("c") }).await.unwrap(), Created::New));
        let lease = j.claim(created, &current_owner()).await.unwrap();
        let done = Op::SetStatus { status: RunStatus::Failed, finished_at: Some(Utc::now()), result: None, error: None };
        j.commit(&lease, vec![done], Durability::Durable).await.unwrap();
        assert!(matches!(j.create_run(&scoped("d")).await.unwrap(), Created::New));
        assert_eq!(j.run("d").await.unwrap().unwrap().scope.as_deref(), Some("app:shop"));
    }

    #[tokio::test]
    async fn the_first_decision_on_a_gate_wins() {
        let dir = tempfile::tempdir().unwrap();
        let j = SqliteJournal::open(dir.path().join("runs.db")).unwrap();
        j.create_run(&new_run("r")).await.unwrap();
        let decision = |verdict, by: &str| Decision { verdict, by: by.into(), comment: String::new(), at: Utc::now() };
        let err = j.decide("r", "promote", &decision(Verdict::Approved, "me")).await.unwrap_err();
        assert!(matches!(err, JournalError::UnknownGate { .. }), "{err}");
        let lease = j.claim("r", &current_owner()).await.unwrap();
        let open = Op::OpenApproval { gate: "promote".into(), message: "go?".into(), requested_at: Utc::now(), deadline: None };
        j.commit(&lease, vec![open.clone()], Durability::Durable).await.unwrap();
        assert_eq!(j.approvals(None, true).await.unwrap().len(), 1);
        let first = j.decide("r", "promote", &decision(Verdict::Rejected, "alice")).await.unwrap();
        let second = j.decide("r", "promote", &decision(Verdict::Approved, "bob")).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(second.decision.unwrap().by, "alice");
        // Opening it again (a replay after a crash) keeps the decision.
        j.commit(&lease, vec![open], Durability::Durable).await.unwrap();
        let all = j.approvals(Some("r"), false).await.unwrap();
        assert_eq!(all[0].decision.as_ref().unwrap().verdict, Verdict::Rejected);
        assert!(j.approvals(None, true).await.unwrap().is_empty());
    }

    fn step(seq: u64, key: &str, status: EntryStatus) -> Entry {
        let mut e = Entry::new(seq, EntryKind::Step, Some(key.into()), status, Utc::now());
        e.attempts = 1;
        e.output = Some(serde_json::json!({"ok": true}));
        e.idempotency_key = Some("k".into());
        e
    }

    #[tokio::test]
    async fn create_claim_commit_read() {
        let dir = tempfile::tempdir().unwrap();
        let j = SqliteJournal::open(dir.path().join("runs.db")).unwrap();
        assert!(matches!(j.create_run(&new_run("r1")).await.unwrap(), Created::New));
        assert!(matches!(j.create_run(&new_run("r1")).await.unwrap(), Created::Existing(_)));
        let lease = j.claim("r1", &current_owner()).await.unwrap();
        assert_eq!(lease.fence, 1);
        j.commit(&lease, vec![Op::PutEntry(step(0, "a", EntryStatus::Running))], Durability::Buffered).await.unwrap();
        j.commit(&lease, vec![Op::PutEntry(step(0, "a", EntryStatus::Succeeded))], Durability::Durable).await.unwrap();
        j.commit(&lease, vec![Op::PutEntry(step(1, "b", EntryStatus::Running))], Durability::Durable).await.unwrap();
        j.commit(&lease, vec![Op::TruncateAfter(0)], Durability::Durable).await.unwrap();
        let entries = j.entries("r1").await.unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].status, EntryStatus::Succeeded);
        assert_eq!(entries[0].output, Some(serde_json::json!({"ok": true})));
        let run = j.run("r1").await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Running);
        assert_eq!(run.owner, Some(current_owner()));
    }

    #[tokio::test]
    async fn stale_lease_is_refused_and_other_commits_in_the_batch_survive() {
        let dir = tempfile::tempdir().unwrap();
        let j = SqliteJournal::open(dir.path().join("runs.db")).unwrap();
        j.create_run(&new_run("r1")).await.unwrap();
        j.create_run(&new_run("r2")).await.unwrap();
        let old = j.claim("r1", &current_owner()).await.unwrap();
        let new = j.claim("r1", &current_owner()).await.unwrap();
        let l2 = j.claim("r2", &current_owner()).await.unwrap();
        let stale = j.commit(&old, vec![Op::PutEntry(step(0, "a", EntryStatus::Running))], Durability::Durable);
        let fresh = j.commit(&l2, vec![Op::PutEntry(step(0, "a", EntryStatus::Running))], Durability::Durable);
        let (stale, fresh) = tokio::join!(stale, fresh);
        assert!(matches!(stale, Err(JournalError::LeaseLost { .. })), "{stale:?}");
        assert!(matches!(j.check_lease(&old).await, Err(JournalError::LeaseLost { .. })));
        j.check_lease(&new).await.unwrap();
        fresh.unwrap();
        assert!(j.entries("r1").await.unwrap().is_empty());
        assert_eq!(j.entries("r2").await.unwrap().len(), 1);
        j.commit(&new, vec![Op::PutEntry(step(0, "a", EntryStatus::Running))], Durability::Durable).await.unwrap();
    }

    #[tokio::test]
    async fn live_driver_blocks_claim_dead_driver_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let j = SqliteJournal::open(dir.path().join("runs.db")).unwrap();
        j.create_run(&new_run("r1")).await.unwrap();
        // A live process that is not us: our parent (the test harness) or init.
        let mut other = current_owner();
        other.pid = 1;
        other.start_ticks = 0;
        j.claim("r1", &other).await.unwrap();
        let err = j.claim("r1", &current_owner()).await.unwrap_err();
        assert!(matches!(err, JournalError::RunBusy { pid: 1, .. }), "{err}");
        // A driver that died.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        j.create_run(&new_run("r2")).await.unwrap();
        let dead = Owner { pid: dead_pid, start_ticks: 7, ..current_owner() };
        j.claim("r2", &dead).await.unwrap();
        let lease = j.claim("r2", &current_owner()).await.unwrap();
        assert_eq!(lease.fence, 2);
    }

    #[tokio::test]
    async fn unknown_run_and_not_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let j = SqliteJournal::open(dir.path().join("runs.db")).unwrap();
        let err = j.claim("nope", &current_owner()).await.unwrap_err();
        assert!(err.to_string().contains("no run with id 'nope'"), "{err}");

        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![b'x'; 8192]).unwrap();
        let err = SqliteJournal::open(&garbage).err().unwrap();
        assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("garbage.db"), "{err}");

        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE t(x)").unwrap();
        let err = SqliteJournal::open(&foreign).err().unwrap();
        assert!(err.to_string().contains("not one drover created"), "{err}");
    }

    #[tokio::test]
    async fn a_version_1_store_is_migrated_and_keeps_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.db");
        {
            let c = Connection::open(&path).unwrap();
            // The schema as version 1 had it: no override, origin, scope or approvals.
            let v1 = SCHEMA
                .replace(
                    ",\n    policy_override TEXT,\n    origin          TEXT,\n    scope           TEXT,\n    lease_expires   TEXT,\n    pause           TEXT",
                    "",
                )
                .split("CREATE INDEX runs_by_scope")
                .next()
                .unwrap()
                .to_string()
                + SCHEMA.split_once("CREATE TABLE entries").map(|(_, rest)| format!("CREATE TABLE entries{rest}")).unwrap().replace(V6_REQUESTS, "").as_str();
            assert!(
                !v1.contains("origin")
                    && !v1.contains("lease_expires")
                    && !v1.contains("pause")
                    && !v1.contains("approvals")
                    && !v1.contains("requests")
                    && v1.contains("CREATE TABLE events"),
                "{v1}"
            );
            c.execute_batch(&format!("{v1} PRAGMA user_version = 1;")).unwrap();
            c.execute(
                "INSERT INTO runs (run_id, runbook_name, runbook_version, runbook_digest, params, status, created_at)
                 VALUES ('old', 't', '1.0.0', 'ab', '{}', 'succeeded', '2026-11-01T00:00:00Z')",
                [],
            )
            .unwrap();
        }
        let j = SqliteJournal::open(&path).unwrap();
        let old = j.run("old").await.unwrap().unwrap();
        assert_eq!((old.status, old.policy_override), (RunStatus::Succeeded, None));
        let mut new = new_run("new");
        new.policy_override = Some(serde_json::json!({"accepted_missing_grants": ["rds region us-west-2"]}));
        j.create_run(&new).await.unwrap();
        assert_eq!(j.run("new").await.unwrap().unwrap().policy_override, new.policy_override);
        j.create_run(&NewRun { scope: Some("s".into()), ..new_run("scoped") }).await.unwrap();
        assert!(j.approvals(None, false).await.unwrap().is_empty());
        let version: i64 = Connection::open(&path).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn locked_store_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.db");
        let j = SqliteJournal::open(&path).unwrap();
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let err = j.create_run(&new_run("r1")).await.unwrap_err();
        assert!(matches!(err, JournalError::Locked { .. }), "{err}");
        holder.execute_batch("ROLLBACK").unwrap();
        // Nothing was lost: the store works again.
        j.create_run(&new_run("r1")).await.unwrap();
    }

    #[tokio::test]
    async fn events_and_attempts_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let j = SqliteJournal::open(dir.path().join("runs.db")).unwrap();
        j.create_run(&new_run("r1")).await.unwrap();
        let lease = j.claim("r1", &current_owner()).await.unwrap();
        let at = Utc::now();
        j.commit(
            &lease,
            vec![
                Op::AddAttempt(AttemptRecord { seq: 0, key: "a".into(), number: 1, idempotency_key: "k".into(), started_at: at }),
                Op::AddEvent(Event { at, level: Level::Warn, step: Some("a".into()), message: "m".into(), fields: vec![("k".into(), "v".into())] }),
                Op::SetStatus { status: RunStatus::Succeeded, finished_at: Some(at), result: Some(serde_json::json!(3)), error: None },
            ],
            Durability::Durable,
        )
        .await
        .unwrap();
        assert_eq!(j.attempts("r1").await.unwrap().len(), 1);
        let ev = j.events("r1").await.unwrap();
        assert_eq!(ev[0].fields, vec![("k".to_string(), "v".to_string())]);
        let run = j.run("r1").await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Succeeded);
        assert_eq!(run.result, Some(serde_json::json!(3)));
        assert_eq!(j.runs(&RunFilter::default()).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn first_cancel_request_wins_and_final_runs_are_not_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let j = SqliteJournal::open(dir.path().join("runs.db")).unwrap();
        j.create_run(&new_run("r1")).await.unwrap();
        let req = |why: &str| CancelRequest { by: "sre@host".into(), reason: why.into(), at: Utc::now() };
        let run = j.request_cancel("r1", &req("drill window over")).await.unwrap();
        assert_eq!(run.cancel.as_ref().unwrap().reason, "drill window over");
        let run = j.request_cancel("r1", &req("again")).await.unwrap();
        assert_eq!(run.cancel.unwrap().reason, "drill window over");

        j.create_run(&new_run("r2")).await.unwrap();
        let lease = j.claim("r2", &current_owner()).await.unwrap();
        let done = Op::SetStatus { status: RunStatus::Succeeded, finished_at: Some(Utc::now()), result: None, error: None };
        j.commit(&lease, vec![done], Durability::Durable).await.unwrap();
        let run = j.request_cancel("r2", &req("too late")).await.unwrap();
        assert!(run.cancel.is_none());
        assert!(matches!(j.request_cancel("nope", &req("x")).await, Err(JournalError::UnknownRun(_))));
    }
}
