//! The durable waits of a run: `clock.sleep` and approval gates. The
//! wake-up time or the open gate is journaled first; the wait then races
//! the run's cancel and the agent's shutdown, on the run's clock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use drover_journal::{Decision, Durability, Entry, EntryKind, EntryStatus, Op, RunStatus, Verdict};
use serde_json::json;

use super::error::{DurableError, Result};
use super::{Durable, MAX_WAIT, Phase};
use crate::events::RunEvent;
use crate::failpoints::Failpoint;
use drover_replay::{Violation, check_key};

/// How often a run at an approval gate looks for a decision in the journal.
const APPROVAL_POLL: Duration = Duration::from_millis(200);

/// `now + wait` for a wait `call` asked for, refused (bad request, naming
/// the call and the limit) past `limit` or past what a timestamp can hold.
pub(super) fn wait_deadline(now: DateTime<Utc>, wait: Duration, limit: Duration, call: &str) -> Result<DateTime<Utc>> {
    drover_replay::check_wait(wait, limit, call)?;
    let refused = || DurableError::from(drover_replay::limits::wait_refused(wait, limit, call));
    chrono::Duration::from_std(wait).ok().and_then(|d| now.checked_add_signed(d)).ok_or_else(refused)
}

impl Durable {
    /// A wait (sleep or approval gate) at `seq` is over: its entry is
    /// recorded as done, the run shows as running again, and the cursor
    /// moves past it.
    async fn end_wait(&mut self, seq: usize, mut entry: Entry, durability: Durability) -> Result<()> {
        entry.status = EntryStatus::Succeeded;
        entry.finished_at = Some(self.time());
        let running = Op::SetStatus { status: RunStatus::Running, finished_at: None, result: None, error: None };
        self.commit(vec![Op::PutEntry(entry.clone()), running], durability).await?;
        self.put(entry);
        self.cursor = seq + 1;
        Ok(())
    }

    /// Back in a wait after a resume: the run shows as `waiting` again.
    pub(super) async fn show_waiting(&mut self) -> Result<()> {
        let waiting = Op::SetStatus { status: RunStatus::Waiting, finished_at: None, result: None, error: None };
        self.commit(vec![waiting], Durability::Buffered).await
    }

    /// `clock.sleep`: journal the wake-up time durably, then wait for it.
    pub async fn sleep(&mut self, millis: u64) -> Result<()> {
        let label = self.open.as_ref().map(|o| o.key.clone()).unwrap_or_default();
        let recorded = self.recorded(EntryKind::Sleep, None)?;
        let seq = self.cursor;
        let entry = match recorded {
            Some(e) if e.status == EntryStatus::Succeeded => {
                self.cursor += 1;
                return Ok(());
            }
            Some(e) => {
                self.show_waiting().await?;
                e
            }
            None => {
                let now = self.time();
                let wake = wait_deadline(now, Duration::from_millis(millis), MAX_WAIT, "clock.sleep")?;
                let mut e = Entry::new(seq as u64, EntryKind::Sleep, None, EntryStatus::Running, now);
                e.next_attempt_at = Some(wake);
                self.commit(
                    vec![Op::PutEntry(e.clone()), Op::SetStatus { status: RunStatus::Waiting, finished_at: None, result: None, error: None }],
                    Durability::Durable,
                )
                .await?;
                self.put(e.clone());
                e
            }
        };
        self.point(Failpoint::InSleep, &label).await?;
        if let Some(wake) = entry.next_attempt_at {
            self.wait_until(&label, wake).await?;
        }
        self.end_wait(seq, entry, Durability::Buffered).await?;
        self.observer.send(RunEvent::Woke);
        Ok(())
    }

    /// `approval.request`: open gate `gate` (durably), then wait for its
    /// decision: a person's, the deadline's, or the unattended policy's. The
    /// decision is journaled; a replay returns it.
    pub async fn approval(&mut self, gate: &str, message: &str, timeout: Option<Duration>) -> Result<Decision> {
        check_key(gate)?;
        if let Some(step) = self.open_step() {
            return Err(Violation::approval_in_step(gate, step).into());
        }
        if self.phase == Phase::Finalize {
            return Err(Violation::approval_in_finalize(gate).into());
        }
        if !self.keys.insert(format!("approval:{gate}")) {
            return Err(Violation::duplicate_gate(gate).into());
        }
        let seq = self.cursor;
        let mut entry = match self.recorded(EntryKind::Approval, Some(gate))? {
            Some(e) if e.status == EntryStatus::Succeeded => {
                self.cursor += 1;
                return e
                    .output
                    .and_then(|o| serde_json::from_value(o["decision"].clone()).ok())
                    .ok_or_else(|| Violation::BadRequest(format!("the journaled decision of gate '{gate}' is unreadable")).into());
            }
            Some(e) => {
                self.show_waiting().await?;
                e
            }
            None => {
                let now = self.time();
                let call = format!("approval gate '{gate}'");
                let deadline = timeout.map(|t| wait_deadline(now, t, MAX_WAIT, &call)).transpose()?;
                drover_replay::check_approval_message(&call, message.len())?;
                let message = self.secrets.mask(message);
                let mut e = Entry::new(seq as u64, EntryKind::Approval, Some(gate.into()), EntryStatus::Running, now);
                e.next_attempt_at = deadline;
                e.output = Some(json!({"message": message}));
                self.commit(
                    vec![
                        Op::PutEntry(e.clone()),
                        Op::OpenApproval { gate: gate.into(), message, requested_at: now, deadline },
                        Op::SetStatus { status: RunStatus::Waiting, finished_at: None, result: None, error: None },
                    ],
                    Durability::Durable,
                )
                .await?;
                self.put(e.clone());
                e
            }
        };
        let decision = self.await_decision(gate, entry.next_attempt_at, Verdict::Approved).await?;
        let message = entry.output.as_ref().map(|o| o["message"].clone()).unwrap_or_default();
        entry.output = Some(json!({"message": message, "decision": decision}));
        // Durable: the run goes on from the decision, which must not be lost.
        self.end_wait(seq, entry, Durability::Durable).await?;
        self.observer.send(RunEvent::Decided { gate: gate.into(), decision: decision.clone() });
        Ok(decision)
    }

    /// Waits for the decision on `gate`, deciding it here (`unattended`:
    /// what nobody's decision means at this gate) when the run is
    /// unattended, a dry run, or past its deadline. The journal arbitrates:
    /// the first decision recorded wins, so a late approval cannot race a
    /// timeout into two outcomes.
    pub(super) async fn await_decision(&self, gate: &str, deadline: Option<DateTime<Utc>>, unattended: Verdict) -> Result<Decision> {
        let run_id = self.lease.run_id.clone();
        let decide = |verdict, by: &str, comment: &str| Decision { verdict, by: by.into(), comment: comment.into(), at: self.time() };
        let (configured, dry) = match unattended {
            Verdict::Approved => ("approved by the agent's configuration", "a dry run assumes approval"),
            _ => ("an unattended run has no operator: the failure stands", "a dry run has no operator: the failure stands"),
        };
        if let Some(by) = &self.unattended {
            self.journal.decide(&run_id, gate, &decide(unattended, by, configured)).await?;
        } else if self.plan.is_some() {
            self.journal.decide(&run_id, gate, &decide(unattended, "drover (dry run)", dry)).await?;
        }
        let mut announced = false;
        loop {
            self.check_cancel()?;
            self.check_suspend()?;
            let found = self.journal.approvals(Some(&run_id), false).await?;
            let approval = found.into_iter().find(|a| a.gate == gate);
            if let Some(d) = approval.as_ref().and_then(|a| a.decision.clone()) {
                return Ok(d);
            }
            if deadline.is_some_and(|d| self.time() >= d) {
                let timed_out = decide(Verdict::TimedOut, "drover (deadline)", "nobody decided before the gate's deadline");
                let a = self.journal.decide(&run_id, gate, &timed_out).await?;
                return Ok(a.decision.unwrap_or(timed_out));
            }
            if !announced {
                let message = approval.map(|a| a.message).unwrap_or_default();
                self.observer.send(RunEvent::AwaitingApproval { gate: gate.into(), message, deadline });
                announced = true;
            }
            let mut wait = APPROVAL_POLL;
            if let Some(d) = deadline {
                wait = wait.min((d - self.time()).to_std().unwrap_or(Duration::ZERO));
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.control.cancel.raised() => {}
                _ = self.control.shutdown.raised() => {}
            }
        }
    }

    /// Waits until `at`; in the main part of a run, a cancel ends the wait.
    pub(super) async fn wait_until(&self, label: &str, at: DateTime<Utc>) -> Result<()> {
        self.check_cancel()?;
        if self.time.jump_to(at) {
            // Simulated time: the wait is over at once.
            tokio::task::yield_now().await;
            return Ok(());
        }
        let left = (at - self.time()).to_std().unwrap_or(Duration::ZERO);
        if left.is_zero() {
            return Ok(());
        }
        self.check_suspend()?;
        self.observer.send(RunEvent::Sleeping { step: (!label.is_empty()).then(|| label.to_string()), until: at });
        if self.phase == Phase::Finalize {
            return tokio::select! {
                _ = tokio::time::sleep(left) => Ok(()),
                _ = self.control.shutdown.raised() => Err(DurableError::Suspended),
            };
        }
        tokio::select! {
            _ = tokio::time::sleep(left) => Ok(()),
            _ = self.control.cancel.raised() => self.check_cancel(),
            _ = self.control.shutdown.raised() => Err(DurableError::Suspended),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_past_the_limit_or_the_calendar_are_refused() {
        let now = Utc::now();
        assert_eq!(wait_deadline(now, Duration::ZERO, MAX_WAIT, "clock.sleep").unwrap(), now);
        assert!(wait_deadline(now, MAX_WAIT, MAX_WAIT, "clock.sleep").is_ok());
        for wait in [MAX_WAIT + Duration::from_millis(1), Duration::from_millis(u64::MAX), Duration::MAX] {
            let err = wait_deadline(now, wait, MAX_WAIT, "clock.sleep").unwrap_err();
            assert!(matches!(err, DurableError::Rule(Violation::BadRequest(_))), "{err}");
            assert!(err.to_string().contains("at most 31622400000 ms (366 days)"), "{err}");
        }
        // Even under a limit that allows it, a time past the calendar is refused, not a panic.
        assert!(wait_deadline(DateTime::<Utc>::MAX_UTC, Duration::from_secs(1), MAX_WAIT, "x").is_err());
    }
}
