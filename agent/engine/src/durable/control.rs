//! Run control: what stops a run from outside its runbook. An operator's
//! cancel (main part only: cleanups and undos run to the end), the agent
//! stopping (the run suspends, resumable), and the loss of the driver's
//! lease (fencing: no side effect after it).

use std::sync::Arc;

use drover_journal::{Durability, Event, JournalError, Level, Op, RunStatus};

use super::error::{DurableError, Result};
use super::{Durable, Phase};
use crate::cancel::{CancelSignal, PauseSignal};
use crate::lease::LeaseGuard;
use crate::shutdown::Shutdown;

/// The signals that can stop a run, held by its durable state.
pub struct RunControl {
    /// An operator's cancel request.
    pub(super) cancel: Arc<CancelSignal>,
    /// An operator's pause request, while it stands.
    pub(super) pause: Arc<PauseSignal>,
    /// The engine stopping.
    pub(super) shutdown: Arc<Shutdown>,
    /// The driver's local view of its lease (checked before side effects).
    pub(super) lease_guard: Option<LeaseGuard>,
}

impl RunControl {
    /// Control by `cancel` only (no shutdown raised, no lease guard yet).
    pub(super) fn new(cancel: Arc<CancelSignal>) -> RunControl {
        RunControl { cancel, pause: Default::default(), shutdown: Default::default(), lease_guard: None }
    }

    /// Whether this driver may still act, as its lease keeper knows it.
    pub fn check_held(&self) -> std::result::Result<(), JournalError> {
        self.lease_guard.as_ref().map_or(Ok(()), |g| g.check())
    }

    /// Fails with `Suspended` once the agent is stopping (or the lease is lost).
    pub fn check_suspend(&self) -> Result<()> {
        self.check_held()?;
        if self.shutdown.is_raised() { Err(DurableError::Suspended) } else { Ok(()) }
    }

    /// Fails with `Cancelled` if an operator cancelled the run and `phase`
    /// is the main part (cleanups and undos always run to the end).
    pub fn check_cancel(&self, phase: Phase) -> Result<()> {
        if phase == Phase::Main
            && let Some(r) = self.cancel.request()
        {
            return Err(DurableError::Cancelled { by: r.by, reason: r.reason });
        }
        Ok(())
    }
}

impl Durable {
    /// The driver's lease as its keeper sees it: a side effect, a wait or a
    /// step boundary after the lease was lost (or not renewed in time) stops
    /// the run without writing.
    pub fn with_lease_guard(mut self, guard: LeaseGuard) -> Self {
        self.control.lease_guard = Some(guard);
        self
    }

    /// The operator's pause requests, as the driver's watcher reads them.
    pub fn with_pause(mut self, pause: Arc<PauseSignal>) -> Self {
        self.control.pause = pause;
        self
    }

    /// At a step boundary of the main part: while an operator's pause
    /// stands, the run shows as waiting (an event says who paused it, why,
    /// and before which step) and goes on once the pause is withdrawn. A
    /// cancel or the agent stopping ends the wait as they end a sleep; a
    /// driver that restarts finds the pause in the journal and waits again.
    /// Cleanups and undos are never paused.
    pub(super) async fn hold_if_paused(&mut self, key: &str) -> Result<()> {
        if self.phase != Phase::Main {
            return Ok(());
        }
        let Some(req) = self.control.pause.request() else { return Ok(()) };
        let event = |at, message: String, control: &str| Event {
            at,
            level: Level::Warn,
            step: Some(key.to_string()),
            message,
            fields: vec![("control".into(), control.into()), ("by".into(), req.by.clone()), ("reason".into(), req.reason.clone())],
        };
        let paused = event(self.time(), format!("paused before step '{key}' by {}: {}", req.by, req.reason), "pause");
        let waiting = Op::SetStatus { status: RunStatus::Waiting, finished_at: None, result: None, error: None };
        self.commit(vec![waiting, Op::AddEvent(paused.clone())], Durability::Durable).await?;
        self.observer.send(crate::events::RunEvent::Log(paused));
        tracing::warn!(step = key, by = %req.by, "run paused by an operator");
        let pause = self.control.pause.clone();
        tokio::select! {
            _ = pause.cleared() => {}
            _ = self.control.cancel.raised() => return self.check_cancel(),
            _ = self.control.shutdown.raised() => return Err(DurableError::Suspended),
        }
        self.check_held()?;
        let unpaused = event(self.time(), format!("unpaused before step '{key}' (it had been paused by {}: {})", req.by, req.reason), "unpause");
        let running = Op::SetStatus { status: RunStatus::Running, finished_at: None, result: None, error: None };
        self.commit(vec![running, Op::AddEvent(unpaused.clone())], Durability::Durable).await?;
        self.observer.send(crate::events::RunEvent::Log(unpaused));
        tracing::info!(step = key, "run unpaused");
        Ok(())
    }

    /// The engine's shutdown signal: once raised, the run stops at its next
    /// step boundary or wait ([`DurableError::Suspended`]).
    pub fn with_shutdown(mut self, shutdown: Arc<Shutdown>) -> Self {
        self.control.shutdown = shutdown;
        self
    }

    /// Fails with `Suspended` once the agent is stopping.
    pub(super) fn check_suspend(&self) -> Result<()> {
        self.control.check_suspend()
    }

    /// Fails with `Cancelled` if an operator cancelled the run (main part only:
    /// cleanups and undos always run to the end).
    pub(super) fn check_cancel(&self) -> Result<()> {
        self.control.check_cancel(self.phase)
    }

    /// The operator's cancel request, if one was made (in any phase).
    pub fn cancel_request(&self) -> Option<drover_journal::CancelRequest> {
        self.control.cancel.request()
    }

    /// The cancel signal, while a cancel can still stop the run (the main
    /// part; never the finalize phase). Long capability waits race it.
    pub fn cancel_watch(&self) -> Option<Arc<CancelSignal>> {
        (self.phase == Phase::Main).then(|| self.control.cancel.clone())
    }

    /// Called before a call that changes the world: the running attempt's
    /// begin (and everything before it) must be on disk first, so that after
    /// any crash the journal shows the attempt may have had an effect. This
    /// driver must still hold the run as it knows it. The read of the fence
    /// in the store comes last, right before the request
    /// ([`Durable::check_fence`]): a driver that stalls after this (in the
    /// commit, waiting for a turn among the agent's AWS calls) and wakes
    /// after another agent took the run over is still stopped.
    pub async fn before_side_effect(&mut self) -> Result<()> {
        self.check_held()?;
        let Some(open) = &self.open else { return Ok(()) };
        if open.durable_begin {
            return Ok(());
        }
        let entry = self.entries[open.seq].clone();
        self.commit(vec![Op::PutEntry(entry)], Durability::Durable).await?;
        if let Some(open) = self.open.as_mut() {
            open.durable_begin = true;
        }
        Ok(())
    }

    /// The fencing check in the store (see [`crate::lease`]): a strongly
    /// consistent read of the run's fence, the last check before a side
    /// effect leaves the process, with [`Durable::check_held`].
    pub async fn check_fence(&self) -> Result<()> {
        // (The power test's switch: before the fix, the fence was read
        // before the waits that precede the request.)
        if drover_replay::revert::reverted(drover_replay::revert::Fix::FenceReadBeforeSideEffect) {
            return Ok(());
        }
        self.journal.check_lease(&self.lease).await?;
        Ok(())
    }

    /// Whether this driver may still act, as its lease keeper knows it (no
    /// round trip): the last check before a side effect leaves the process.
    pub fn check_held(&self) -> std::result::Result<(), JournalError> {
        self.control.check_held()
    }

    /// The driver's lease guard, which the AWS clients of a mutating call
    /// check before every attempt (none outside a driven run).
    pub fn lease_guard(&self) -> Option<&LeaseGuard> {
        self.control.lease_guard.as_ref()
    }
}
