//! A step held for an operator after it failed for good (`steps.fail-with`,
//! contract 0.1.3). Instead of failing the run (and running its undos), the
//! step waits durably at the gate `failed:KEY:N`, like an approval gate: an
//! operator retries it (approve, or `drover redrive`), skips it (`drover
//! skip`: the runbook gets the outcome it declared for a skip) or lets the
//! failure stand (reject, the deadline, an unattended run, a cancel). The
//! rules (gate names, what each decision means) are `drover_replay::held`'s.

use std::time::Duration;

use drover_journal::{AttemptRecord, Durability, Entry, EntryStatus, ErrorRecord, Event, Level, Op, RunStatus, Verdict, rfc3339};
use drover_replay::held::{self, Held, Resolution, Skip};
use serde_json::{Value, json};

use super::error::{DurableError, Result};
use super::waits::wait_deadline;
use super::{AttemptGrant, Durable, MAX_WAIT, OpenStep, RetrySpec, StepStart};
use crate::events::RunEvent;
use crate::failpoints::Failpoint;

/// What the runbook declared for a step that fails for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// How long the run waits for an operator (zero: it does not).
    pub wait: Duration,
    /// What a skip hands the runbook.
    pub skip: Skip,
}

/// The held record of a step entry, if the step waits for an operator.
pub fn held_of(e: &Entry) -> Option<Held> {
    if e.status != EntryStatus::Running {
        return None;
    }
    serde_json::from_value(e.output.as_ref()?.get("held")?.clone()).ok()
}

impl Durable {
    /// `steps.fail-with`: [`Durable::fail_step`], holding the step for an
    /// operator once it has failed for good.
    pub async fn fail_step_with(&mut self, key: &str, error: drover_journal::ErrorRecord, hold: Hold) -> Result<StepStart> {
        let call = format!("the operator wait of step '{key}'");
        drover_replay::check_wait(hold.wait, MAX_WAIT, &call)?;
        let skip = match hold.skip {
            Skip::Output(json) => Skip::Output(self.checked_output(key, &json, "its skip output is ")?.0),
            other => other,
        };
        self.failed(key, error, Some(Hold { wait: hold.wait, skip })).await
    }

    /// Holds the open step `open` (entry `entry`), failed for good with
    /// `error`: the gate opens and the run shows as waiting, in one durable
    /// commit; then it waits for the decision.
    pub(super) async fn hold(&mut self, open: OpenStep, mut entry: Entry, error: ErrorRecord, hold: Hold) -> Result<StepStart> {
        let key = open.key.clone();
        let now = self.time();
        let gate = held::failure_gate(&key, open.attempt);
        let deadline = wait_deadline(now, hold.wait, MAX_WAIT, &format!("the operator wait of step '{key}'"))?;
        let message = held::question(&key, open.attempt, &error.message, &hold.skip, self.run_id());
        let record = Held { gate: gate.clone(), skip: hold.skip, deadline: rfc3339(&deadline) };
        entry.error = Some(error.clone());
        entry.output = Some(json!({ "held": record }));
        entry.next_attempt_at = None;
        let event = Event {
            at: now,
            level: Level::Warn,
            step: Some(key.clone()),
            message: format!("step '{key}' failed for good: it waits for an operator at gate {gate} until {}", rfc3339(&deadline)),
            fields: vec![("code".into(), error.code.clone()), ("gate".into(), gate.clone())],
        };
        // The failed attempt's own entries go: a retry runs the body again.
        self.entries.truncate(open.seq + 1);
        self.commit(
            vec![
                Op::TruncateAfter(open.seq as u64),
                Op::PutEntry(entry.clone()),
                Op::OpenApproval { gate, message, requested_at: now, deadline: Some(deadline) },
                Op::AddEvent(event),
                Op::SetStatus { status: RunStatus::Waiting, finished_at: None, result: None, error: None },
            ],
            Durability::Durable,
        )
        .await?;
        self.put(entry.clone());
        self.cursor = open.seq + 1;
        tracing::warn!(step = %key, "step failed for good; held for an operator");
        self.point(Failpoint::AfterStep, &key).await?;
        self.await_held(open.seq, entry, open.retry).await
    }

    /// Waits for the decision on held step `entry` at `seq`, then carries
    /// it out: a new attempt, the skip outcome, or the failure.
    pub(super) async fn await_held(&mut self, seq: usize, mut entry: Entry, retry: RetrySpec) -> Result<StepStart> {
        let key = entry.key.clone().unwrap_or_default();
        let Some(record) = held_of(&entry) else {
            return Err(drover_replay::Violation::BadRequest(format!("step '{key}' is not held for an operator")).into());
        };
        let deadline = chrono::DateTime::parse_from_rfc3339(&record.deadline).ok().map(|d| d.with_timezone(&chrono::Utc));
        let error = entry.error.clone().unwrap_or_else(|| ErrorRecord::terminal("unknown", "the journal recorded a held step without its error"));
        let decision = match self.await_decision(&record.gate, deadline, Verdict::Rejected).await {
            Ok(d) => d,
            Err(e @ DurableError::Cancelled { .. }) => {
                // The run ends here: the step's failure stands, on the record.
                let now = self.time();
                entry.output = None;
                entry.fail(error, now);
                entry.end_seq = Some(seq as u64);
                self.commit(vec![Op::PutEntry(entry.clone())], Durability::Durable).await?;
                self.put(entry);
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        self.observer.send(RunEvent::Decided { gate: record.gate.clone(), decision: decision.clone() });
        let now = self.time();
        let said = if decision.comment.is_empty() { String::new() } else { format!(": {}", decision.comment) };
        let control = |what: &str, level: Level, message: String| Event {
            at: now,
            level,
            step: Some(key.clone()),
            message,
            fields: vec![
                ("control".into(), what.into()),
                ("by".into(), decision.by.clone()),
                ("reason".into(), decision.comment.clone()),
                ("gate".into(), record.gate.clone()),
            ],
        };
        let running = Op::SetStatus { status: RunStatus::Running, finished_at: None, result: None, error: None };
        match held::resolve(decision.verdict.as_str(), &record.skip) {
            Resolution::Retry => {
                entry.attempts = entry.attempts.saturating_add(1);
                entry.output = None;
                let number = entry.attempts;
                let idem = entry.idempotency_key.clone().unwrap_or_else(|| super::idempotency_key(self.run_id(), &key));
                let event = control("retry", Level::Info, format!("step '{key}' retried by {}{said}", decision.by));
                let attempt = AttemptRecord { seq: seq as u64, key: key.clone(), number, idempotency_key: idem.clone(), started_at: now };
                self.commit(vec![Op::PutEntry(entry.clone()), Op::AddAttempt(attempt), Op::AddEvent(event.clone()), running], Durability::Durable).await?;
                self.put(entry);
                self.cursor = seq + 1;
                self.observer.send(RunEvent::Log(event));
                self.open_attempt(seq, &key, number, &idem, retry).await?;
                Ok(StepStart::Run(AttemptGrant { idempotency_key: idem, number }))
            }
            Resolution::Skip => {
                let event = control("skip", Level::Warn, held::skipped_message(&key, &decision.by, &decision.comment));
                entry.end_seq = Some(seq as u64);
                entry.finished_at = Some(now);
                let start = match &record.skip {
                    Skip::Output(json) => {
                        entry.status = EntryStatus::Succeeded;
                        entry.output = serde_json::from_str::<Value>(json).ok();
                        entry.error = None;
                        StepStart::Completed(json.clone())
                    }
                    _ => {
                        let skipped = ErrorRecord {
                            code: held::SKIPPED.into(),
                            message: held::skipped_message(&key, &decision.by, &decision.comment),
                            retryable: false,
                            resource: Some(key.clone()),
                        };
                        entry.output = None;
                        entry.fail(skipped.clone(), now);
                        StepStart::Failed(skipped)
                    }
                };
                self.commit(vec![Op::PutEntry(entry.clone()), Op::AddEvent(event.clone()), running], Durability::Durable).await?;
                self.observer.send(RunEvent::Log(event));
                self.observer.send(RunEvent::StepFinished { key: key.clone(), status: entry.status, error: entry.error.clone(), requests: entry.requests });
                self.put(entry);
                self.cursor = seq + 1;
                Ok(start)
            }
            Resolution::Fail => {
                let level = Level::Error;
                let event = match decision.verdict {
                    Verdict::Rejected => control("reject", level, format!("the failure of step '{key}' stands: {} rejected a retry{said}", decision.by)),
                    _ => Event {
                        at: now,
                        level,
                        step: Some(key.clone()),
                        message: format!("the failure of step '{key}' stands: {} ({}){said}", decision.verdict.as_str(), decision.by),
                        fields: vec![("gate".into(), record.gate.clone())],
                    },
                };
                entry.output = None;
                entry.fail(error.clone(), now);
                entry.end_seq = Some(seq as u64);
                self.commit(vec![Op::PutEntry(entry.clone()), Op::AddEvent(event.clone()), running], Durability::Durable).await?;
                let requests = entry.requests;
                self.put(entry);
                self.cursor = seq + 1;
                self.observer.send(RunEvent::Log(event));
                self.observer.send(RunEvent::StepFinished { key, status: EntryStatus::Failed, error: Some(error.clone()), requests });
                Ok(StepStart::Failed(error))
            }
        }
    }
}
