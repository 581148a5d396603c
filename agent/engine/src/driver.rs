//! Driving a run: claim it, execute the runbook from the top (the journal
//! answers what already happened), and record how it ended.

use std::sync::Arc;

use chrono::Utc;
use drover_journal::{
    Created, Durability, ErrorRecord, Journal, JournalError, NewRun, Op, RunRecord, RunStatus, RunbookRef,
    current_owner,
};
use serde_json::Value;
use wasmtime::{Store, StoreLimitsBuilder, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::durable::{Durable, DurableError};
use crate::events::{Observer, RunEvent};
use crate::host::{HostState, from_wit};
use crate::sandbox::{stderr_tail, wasi_for_run};
use crate::{EPOCH_TICK, Engine, EngineError, LoadedRunbook};

/// A new run to start.
pub struct RunRequest {
    /// Its id (validated).
    pub run_id: String,
    /// Validated parameters (see [`crate::RunbookInfo::validate_params`]).
    pub params: Value,
}

/// Why the runbook's code was stopped by a limit.
#[derive(Debug, thiserror::Error)]
#[error("the runbook used more than its CPU budget of {budget_ms} ms (limit cpu_time); it was stopped")]
pub struct CpuBudgetExceeded {
    budget_ms: u128,
}

/// Checks a run id: 1 to 64 of `[A-Za-z0-9._-]`.
pub fn check_run_id(id: &str) -> Result<(), EngineError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with('.');
    if ok { Ok(()) } else { Err(EngineError::BadRunId(id.into())) }
}

impl Engine {
    pub(crate) fn new_store(
        &self,
        durable: Option<Durable>,
        run_id: &str,
        created_unix: i64,
    ) -> (Store<HostState>, MemoryOutputPipe) {
        let (wasi, stderr) = wasi_for_run(run_id, created_unix);
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .instances(32)
            .tables(64)
            .memories(16)
            .trap_on_grow_failure(true)
            .build();
        let state = HostState {
            durable,
            wasi,
            table: Default::default(),
            limits,
            cpu_ticks: 0,
        };
        let mut store = Store::new(&self.wasm, state);
        store.limiter(|s| &mut s.limits);
        let budget_ticks = (self.limits.cpu_time.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        let budget_ms = self.limits.cpu_time.as_millis();
        store.epoch_deadline_callback(move |mut ctx| {
            let s = ctx.data_mut();
            s.cpu_ticks += 1;
            if s.cpu_ticks > budget_ticks {
                return Err(wasmtime::Error::new(CpuBudgetExceeded { budget_ms }));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store.set_epoch_deadline(1);
        (store, stderr)
    }

    /// Starts run `req` of `runbook`, or, if a run with that id exists,
    /// continues it (same runbook and parameters required) or reports it as it
    /// ended. Returns the run as it stands when the driver stops.
    pub async fn start(
        &self,
        journal: Arc<dyn Journal>,
        runbook: &LoadedRunbook,
        req: RunRequest,
        observer: Observer,
    ) -> Result<RunRecord, EngineError> {
        check_run_id(&req.run_id)?;
        let new = NewRun {
            run_id: req.run_id.clone(),
            runbook: RunbookRef {
                name: runbook.info.name.clone(),
                version: runbook.info.version.clone(),
                digest: runbook.info.digest.clone(),
            },
            params: req.params.clone(),
            created_at: Utc::now(),
        };
        if let Created::Existing(run) = journal.create_run(&new).await? {
            if run.runbook.digest != new.runbook.digest {
                return Err(EngineError::RunIdConflict {
                    run_id: run.run_id,
                    what: format!("another runbook ({} {}, sha256 {})", run.runbook.name, run.runbook.version, run.runbook.digest),
                });
            }
            if run.params != new.params {
                return Err(EngineError::RunIdConflict { run_id: run.run_id, what: format!("other parameters ({})", run.params) });
            }
            if run.status.is_final() {
                return Ok(run);
            }
        }
        self.drive(journal, runbook, &req.run_id, observer).await
    }

    /// Resumes run `run_id` with the runbook it is pinned to, or with
    /// `replacement` (a fixed build: its replay is checked against the
    /// journal, and a divergence fails the run before anything executes).
    pub async fn resume(
        &self,
        journal: Arc<dyn Journal>,
        run_id: &str,
        replacement: Option<&LoadedRunbook>,
        observer: Observer,
    ) -> Result<RunRecord, EngineError> {
        let run = journal.run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?;
        if run.status.is_final() {
            return Ok(run);
        }
        match replacement {
            Some(rb) => self.drive(journal, rb, run_id, observer).await,
            None => {
                let rb = self.load_pinned(&run.runbook.digest).await?;
                self.drive(journal, &rb, run_id, observer).await
            }
        }
    }

    async fn drive(
        &self,
        journal: Arc<dyn Journal>,
        runbook: &LoadedRunbook,
        run_id: &str,
        observer: Observer,
    ) -> Result<RunRecord, EngineError> {
        let lease = journal.claim(run_id, &current_owner()).await?;
        let result = self.execute(journal.clone(), runbook, run_id, lease.clone(), observer).await;
        // Giving up the claim is a courtesy: a dead driver's claim is taken over anyway.
        let _ = journal.release(&lease).await;
        result?;
        journal.run(run_id).await?.ok_or_else(|| EngineError::Journal(JournalError::UnknownRun(run_id.into())))
    }

    async fn execute(
        &self,
        journal: Arc<dyn Journal>,
        runbook: &LoadedRunbook,
        run_id: &str,
        lease: drover_journal::Lease,
        observer: Observer,
    ) -> Result<(), EngineError> {
        let run = journal.run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?;
        let entries = journal.entries(run_id).await?;
        let span = tracing::info_span!("run", run_id, runbook = %runbook.info.name, version = %runbook.info.version);
        let _enter = span.enter();
        observer.send(RunEvent::Started { run_id: run_id.into(), journaled_entries: entries.len() });
        let mut ops = Vec::new();
        if run.runbook.digest != runbook.info.digest {
            tracing::warn!(from = %run.runbook.digest, to = %runbook.info.digest, "resuming with a replacement runbook");
        }
        if run.status == RunStatus::Waiting {
            ops.push(Op::SetStatus { status: RunStatus::Running, finished_at: None, result: None, error: None });
        }
        let durable = Durable::new(journal.clone(), lease.clone(), entries, observer.clone(), self.limits.max_output_bytes);
        let (mut store, stderr) = self.new_store(Some(durable), run_id, run.created_at.timestamp());
        if !ops.is_empty() {
            journal.commit(&lease, std::mem::take(&mut ops), Durability::Buffered).await?;
        }

        let params = run.params.to_string();
        let outcome = match runbook.pre.instantiate_async(&mut store).await {
            Ok(instance) => instance.call_run(&mut store, &params).await,
            Err(e) => Err(e),
        };
        let durable = store.data_mut().durable.as_mut().expect("set above");
        ops.extend(durable.take_pending());
        let now = Some(Utc::now());
        let ending = match outcome {
            Ok(Ok(result)) => match durable.check_fully_replayed() {
                Ok(()) => Ok(serde_json::from_str::<Value>(&result).unwrap_or(Value::String(result))),
                Err(e) => Err(ErrorRecord::terminal(e.code(), e.to_string())),
            },
            Ok(Err(e)) => Err(from_wit(e)),
            Err(trap) => {
                // The journal itself failed, or another driver took over: do not
                // record an outcome; the run stays resumable from its last durable step.
                if let Some(DurableError::Journal(j)) = trap.downcast_ref::<DurableError>() {
                    let j = j.clone();
                    tracing::error!(error = %j, "journal failed; run left resumable");
                    return Err(EngineError::Journal(j));
                }
                Err(trap_record(&trap, &stderr))
            }
        };
        match ending {
            Ok(result) => {
                ops.push(Op::SetStatus { status: RunStatus::Succeeded, finished_at: now, result: Some(result), error: None });
            }
            Err(error) => {
                ops.extend(durable.close_open_step(&error));
                tracing::info!(code = %error.code, message = %error.message, "run failed");
                ops.push(Op::SetStatus { status: RunStatus::Failed, finished_at: now, result: None, error: Some(error) });
            }
        }
        journal.commit(&lease, ops, Durability::Durable).await?;
        Ok(())
    }
}

/// The journaled error for a runbook that trapped.
fn trap_record(trap: &wasmtime::Error, stderr: &MemoryOutputPipe) -> ErrorRecord {
    let tail = stderr_tail(stderr, 2048);
    if let Some(d) = trap.downcast_ref::<DurableError>() {
        return ErrorRecord::terminal(d.code(), d.to_string());
    }
    if let Some(c) = trap.downcast_ref::<CpuBudgetExceeded>() {
        return ErrorRecord::terminal("limit-exceeded", c.to_string());
    }
    let root = format!("{trap:#}");
    if root.contains("forcing trap when growing memory") || root.contains("memory size") {
        return ErrorRecord::terminal(
            "limit-exceeded",
            "the runbook tried to grow its memory past the limit (limit memory_bytes); it was stopped".to_string(),
        );
    }
    if let Some(panic) = tail.lines().find(|l| l.contains("panicked at")) {
        let rest: Vec<&str> = tail.lines().skip_while(|l| !l.contains("panicked at")).take(4).collect();
        let _ = panic;
        return ErrorRecord::terminal("panic", format!("the runbook panicked: {}", rest.join(" ").trim()));
    }
    let what = match trap.downcast_ref::<Trap>() {
        Some(t) => t.to_string(),
        None => root.lines().next().unwrap_or("unknown trap").to_string(),
    };
    let mut message = format!("the runbook trapped: {what}");
    if !tail.is_empty() {
        message.push_str(&format!("; its stderr: {tail}"));
    }
    ErrorRecord::terminal("trap", message)
}
