//! A run store in memory: the same behaviour as the embedded store (the
//! conformance suite runs against both), without a disk. For the
//! deterministic simulation, where thousands of runs a minute cannot each
//! pay an fdatasync per commit, and for tests. Its time is a clock the caller
//! gives (the simulation's), so leases run out on simulated time.
//!
//! With [`MemoryJournal::with_crash_model`] it also models what a crash
//! keeps, as the embedded store would: durable writes (and everything
//! before them: the write-ahead log is sequential) survive; buffered ones
//! survive a killed process but not a power cut. [`MemoryJournal::crash`]
//! freezes the store at the instant of the crash (every later write is
//! refused: the process is gone); [`MemoryJournal::recover`] restarts it
//! with or without the buffered writes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{
    Approval, AttemptRecord, CancelRequest, Created, Decision, Durability, Entry, Event, Journal, JournalError, Lease, NewRun, Op, Owner, Result, RunFilter,
    RunRecord, RunStatus,
};

/// Where a memory store reads the time.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Default, Clone)]
struct Run {
    record: Option<RunRecord>,
    entries: BTreeMap<u64, Entry>,
    attempts: BTreeMap<(u64, u32), AttemptRecord>,
    events: Vec<Event>,
    approvals: Vec<Approval>,
}

type Runs = BTreeMap<String, Run>;

#[derive(Default)]
struct State {
    runs: Runs,
    /// With the crash model: what a power cut would leave.
    synced: Option<Runs>,
    /// Buffered writes not in `synced` yet.
    unsynced: Vec<(String, Op)>,
    /// Crashed: every write is refused until `recover`.
    frozen: bool,
}

/// A run store in memory.
pub struct MemoryJournal {
    state: Mutex<State>,
    lease: Duration,
    now: Clock,
}

impl MemoryJournal {
    /// An empty store on the wall clock, with claims lasting `lease`.
    pub fn new(lease: Duration) -> MemoryJournal {
        MemoryJournal::with_clock(lease, Arc::new(Utc::now))
    }

    /// An empty store whose leases run on `now`.
    pub fn with_clock(lease: Duration, now: Clock) -> MemoryJournal {
        MemoryJournal { state: Mutex::new(State::default()), lease, now }
    }

    /// Keeps track of what a crash would keep (see the module's docs).
    pub fn with_crash_model(self) -> MemoryJournal {
        {
            let mut st = self.lock();
            st.synced = Some(st.runs.clone());
        }
        self
    }

    /// The process crashes now: every write from now on is refused.
    pub fn crash(&self) {
        self.lock().frozen = true;
    }

    /// A new process opens the store after a crash: with the buffered writes
    /// (the process was killed) or without them (a power cut). Without the
    /// crash model, everything written is kept.
    pub fn recover(&self, keep_buffered: bool) {
        let mut st = self.lock();
        let State { runs, synced, unsynced, frozen } = &mut *st;
        if let Some(synced) = synced.as_mut() {
            if keep_buffered {
                *synced = runs.clone();
            } else {
                *runs = synced.clone();
            }
        }
        unsynced.clear();
        *frozen = false;
    }

    /// Rewrites the entries of run `run_id` with `f` (true if it changed
    /// them), everywhere a crash would keep them. For the deterministic
    /// simulation, which models a replacement build whose steps differ from
    /// what the journal recorded.
    pub fn edit_entries(&self, run_id: &str, f: impl Fn(&mut [Entry]) -> bool) -> bool {
        let mut st = self.lock();
        let State { runs, synced, .. } = &mut *st;
        let mut changed = false;
        for runs in std::iter::once(runs).chain(synced.as_mut()) {
            if let Some(run) = runs.get_mut(run_id) {
                let mut entries: Vec<Entry> = run.entries.values().cloned().collect();
                if f(&mut entries) {
                    changed = true;
                    run.entries = entries.into_iter().map(|e| (e.seq, e)).collect();
                }
            }
        }
        changed
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.lock()
    }

    /// A durable write: `f` on the runs; with the crash model, on what a
    /// crash keeps too, after the buffered writes before it.
    fn durable<R>(&self, f: impl Fn(&mut Runs) -> Result<R>) -> Result<R> {
        let mut st = self.lock();
        if st.frozen {
            return Err(JournalError::Closed);
        }
        let State { runs, synced, unsynced, .. } = &mut *st;
        let out = f(runs)?;
        if let Some(synced) = synced.as_mut() {
            for (run_id, op) in unsynced.drain(..) {
                if let Some(run) = synced.get_mut(&run_id) {
                    apply(run, op);
                }
            }
            // The same write, on the same state: its result is the same.
            let _ = f(synced);
        }
        Ok(out)
    }

    fn expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        chrono::Duration::from_std(self.lease).ok().and_then(|d| now.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    fn claim_as(&self, run_id: &str, owner: &Owner, force: bool) -> Result<Lease> {
        let now = (self.now)();
        let expires = self.expiry(now);
        self.durable(|runs| claim(runs, run_id, owner, force, now, expires))
    }
}

fn claim(runs: &mut Runs, run_id: &str, owner: &Owner, force: bool, now: DateTime<Utc>, expires: DateTime<Utc>) -> Result<Lease> {
    {
        let run = runs.get_mut(run_id).and_then(|r| r.record.as_mut()).ok_or_else(|| JournalError::UnknownRun(run_id.into()))?;
        if let Some(current) = &run.owner
            && !force
            && current != owner
            && !run.driver_gone(now)
        {
            return Err(JournalError::RunBusy { run_id: run_id.into(), host: current.host.clone(), pid: current.pid });
        }
        let fence = run.fence.checked_add(1).ok_or_else(|| JournalError::Malformed(format!("run '{run_id}': fence overflow")))?;
        run.owner = Some(owner.clone());
        run.fence = fence;
        run.lease_expires_at = Some(expires);
        Ok(Lease { run_id: run_id.into(), fence })
    }
}

/// The record of run `run_id`, or the error naming it.
fn record<'a>(runs: &'a mut BTreeMap<String, Run>, run_id: &str) -> Result<&'a mut RunRecord> {
    runs.get_mut(run_id).and_then(|r| r.record.as_mut()).ok_or_else(|| JournalError::UnknownRun(run_id.into()))
}

/// Creates run `new` (or finds it, or the holder of its scope).
fn create(runs: &mut Runs, new: &NewRun) -> Result<Created> {
    if let Some(existing) = runs.get(&new.run_id).and_then(|r| r.record.clone()) {
        return Ok(Created::Existing(existing));
    }
    if let Some(scope) = &new.scope {
        let holder = runs
            .values()
            .filter_map(|r| r.record.as_ref())
            .filter(|r| r.scope.as_ref() == Some(scope) && !r.status.is_final())
            .min_by(|a, b| a.created_at.cmp(&b.created_at));
        if let Some(held) = holder {
            return Ok(Created::Joined(held.clone()));
        }
    }
    let record = RunRecord {
        run_id: new.run_id.clone(),
        runbook: new.runbook.clone(),
        params: new.params.clone(),
        status: RunStatus::Running,
        created_at: new.created_at,
        finished_at: None,
        result: None,
        error: None,
        owner: None,
        fence: 0,
        lease_expires_at: None,
        cancel: None,
        pause: None,
        policy_override: new.policy_override.clone(),
        origin: new.origin.clone(),
        scope: new.scope.clone(),
    };
    runs.insert(new.run_id.clone(), Run { record: Some(record), ..Run::default() });
    Ok(Created::New)
}

/// Applies `op` to run `run`.
fn apply(run: &mut Run, op: Op) {
    match op {
        Op::PutEntry(e) => {
            run.entries.insert(e.seq, e);
        }
        Op::TruncateAfter(seq) => run.entries.retain(|s, _| *s <= seq),
        Op::AddAttempt(a) => {
            run.attempts.insert((a.seq, a.number), a);
        }
        Op::AddEvent(e) => run.events.push(e),
        Op::OpenApproval { gate, message, requested_at, deadline } => {
            if !run.approvals.iter().any(|a| a.gate == gate) {
                let run_id = run.record.as_ref().map(|r| r.run_id.clone()).unwrap_or_default();
                run.approvals.push(Approval { run_id, gate, message, requested_at, deadline, decision: None });
            }
        }
        Op::SetRunbook(r) => {
            if let Some(rec) = run.record.as_mut() {
                rec.runbook = r;
            }
        }
        Op::ClearCancel => {
            if let Some(rec) = run.record.as_mut() {
                rec.cancel = None;
            }
        }
        Op::SetStatus { status, finished_at, result, error } => {
            if let Some(rec) = run.record.as_mut() {
                rec.status = status;
                rec.finished_at = finished_at;
                rec.result = result;
                rec.error = error;
            }
        }
    }
}

#[async_trait]
impl Journal for MemoryJournal {
    async fn create_run(&self, new: &NewRun) -> Result<Created> {
        self.durable(|runs| create(runs, new))
    }

    async fn claim(&self, run_id: &str, owner: &Owner) -> Result<Lease> {
        self.claim_as(run_id, owner, false)
    }

    async fn take_over(&self, run_id: &str, owner: &Owner) -> Result<Lease> {
        self.claim_as(run_id, owner, true)
    }

    fn lease_ttl(&self) -> Option<Duration> {
        Some(self.lease)
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        self.durable(|runs| {
            if let Ok(run) = record(runs, &lease.run_id)
                && run.fence == lease.fence
            {
                run.owner = None;
                run.lease_expires_at = None;
            }
            Ok(())
        })
    }

    async fn renew(&self, lease: &Lease) -> Result<()> {
        let expires = self.expiry((self.now)());
        self.durable(|runs| {
            let run = record(runs, &lease.run_id)?;
            if run.fence != lease.fence || run.owner.is_none() {
                return Err(JournalError::LeaseLost { run_id: lease.run_id.clone(), fence: lease.fence });
            }
            run.lease_expires_at = Some(expires);
            Ok(())
        })
    }

    async fn check_lease(&self, lease: &Lease) -> Result<()> {
        let now = (self.now)();
        let mut st = self.state();
        let run = record(&mut st.runs, &lease.run_id)?;
        let (run_id, fence) = (lease.run_id.clone(), lease.fence);
        if run.fence != fence {
            return Err(JournalError::LeaseLost { run_id, fence });
        }
        match run.lease_expires_at.filter(|_| run.owner.is_some()) {
            Some(t) if t > now => Ok(()),
            // Released or run out: this driver may no longer act.
            _ => Err(JournalError::LeaseExpired { run_id, fence }),
        }
    }

    async fn commit(&self, lease: &Lease, ops: Vec<Op>, durability: Durability) -> Result<()> {
        let fenced = |runs: &mut Runs| -> Result<()> {
            if record(runs, &lease.run_id)?.fence != lease.fence {
                return Err(JournalError::LeaseLost { run_id: lease.run_id.clone(), fence: lease.fence });
            }
            Ok(())
        };
        if durability == Durability::Durable {
            return self.durable(|runs| {
                fenced(runs)?;
                let run = runs.get_mut(&lease.run_id).ok_or_else(|| JournalError::UnknownRun(lease.run_id.clone()))?;
                for op in ops.iter().cloned() {
                    apply(run, op);
                }
                Ok(())
            });
        }
        let mut st = self.state();
        if st.frozen {
            return Err(JournalError::Closed);
        }
        fenced(&mut st.runs)?;
        let State { runs, synced, unsynced, .. } = &mut *st;
        let run = runs.get_mut(&lease.run_id).ok_or_else(|| JournalError::UnknownRun(lease.run_id.clone()))?;
        if synced.is_some() {
            unsynced.extend(ops.iter().cloned().map(|op| (lease.run_id.clone(), op)));
        }
        for op in ops {
            apply(run, op);
        }
        Ok(())
    }

    async fn request_cancel(&self, run_id: &str, request: &CancelRequest) -> Result<RunRecord> {
        self.durable(|runs| {
            let run = record(runs, run_id)?;
            if run.cancel.is_none() && !run.status.is_final() {
                run.cancel = Some(request.clone());
            }
            Ok(run.clone())
        })
    }

    async fn request_pause(&self, run_id: &str, request: Option<&CancelRequest>) -> Result<RunRecord> {
        self.durable(|runs| {
            let run = record(runs, run_id)?;
            if !run.status.is_final() {
                run.pause = request.cloned();
            }
            Ok(run.clone())
        })
    }

    async fn decide(&self, run_id: &str, gate: &str, decision: &Decision) -> Result<Approval> {
        self.durable(|runs| {
            let unknown = || JournalError::UnknownGate { run_id: run_id.into(), gate: gate.into() };
            let run = runs.get_mut(run_id).ok_or_else(unknown)?;
            let approval = run.approvals.iter_mut().find(|a| a.gate == gate).ok_or_else(unknown)?;
            if approval.decision.is_none() {
                approval.decision = Some(decision.clone());
            }
            Ok(approval.clone())
        })
    }

    async fn approvals(&self, run_id: Option<&str>, pending_only: bool) -> Result<Vec<Approval>> {
        let st = self.state();
        let mut found: Vec<Approval> = st
            .runs
            .iter()
            .filter(|(id, _)| run_id.is_none_or(|r| r == id.as_str()))
            .flat_map(|(_, r)| r.approvals.iter())
            .filter(|a| !pending_only || a.decision.is_none())
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.requested_at, &a.run_id, &a.gate).cmp(&(b.requested_at, &b.run_id, &b.gate)));
        Ok(found)
    }

    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        Ok(self.state().runs.get(run_id).and_then(|r| r.record.clone()))
    }

    async fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>> {
        let st = self.state();
        let mut found: Vec<RunRecord> = st
            .runs
            .values()
            .filter_map(|r| r.record.clone())
            .filter(|r| filter.status.is_none_or(|s| r.status == s))
            .filter(|r| !filter.unfinished || matches!(r.status, RunStatus::Running | RunStatus::Waiting))
            .filter(|r| filter.runbook.as_ref().is_none_or(|n| r.runbook.name == *n))
            .collect();
        found.sort_by(|a, b| (b.created_at, &b.run_id).cmp(&(a.created_at, &a.run_id)));
        found.truncate(filter.limit.unwrap_or(usize::MAX));
        Ok(found)
    }

    async fn entries(&self, run_id: &str) -> Result<Vec<Entry>> {
        Ok(self.state().runs.get(run_id).map(|r| r.entries.values().cloned().collect()).unwrap_or_default())
    }

    async fn attempts(&self, run_id: &str) -> Result<Vec<AttemptRecord>> {
        Ok(self.state().runs.get(run_id).map(|r| r.attempts.values().cloned().collect()).unwrap_or_default())
    }

    async fn events(&self, run_id: &str) -> Result<Vec<Event>> {
        Ok(self.state().runs.get(run_id).map(|r| r.events.clone()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn behaves_as_every_store_must() {
        let j: Arc<dyn Journal> = Arc::new(MemoryJournal::new(Duration::from_secs(30)));
        crate::conformance::all(&j, "c").await;
        let j: Arc<dyn Journal> = Arc::new(MemoryJournal::new(Duration::from_millis(200)));
        crate::conformance::an_expired_lease_is_taken_over(&j, "x").await;
    }

    #[tokio::test]
    async fn a_crash_keeps_durable_writes_and_a_power_cut_loses_buffered_ones() {
        use crate::{EntryKind, EntryStatus, current_owner};
        let entry = |seq| Op::PutEntry(Entry::new(seq, EntryKind::Step, Some(format!("s{seq}")), EntryStatus::Running, Utc::now()));
        for keep_buffered in [true, false] {
            let j = MemoryJournal::new(Duration::from_secs(30)).with_crash_model();
            j.create_run(&crate::conformance::new_run("r")).await.unwrap();
            let lease = j.claim("r", &current_owner()).await.unwrap();
            j.commit(&lease, vec![entry(0)], Durability::Durable).await.unwrap();
            j.commit(&lease, vec![entry(1)], Durability::Buffered).await.unwrap();
            j.crash();
            // The process is gone: nothing more is written.
            assert!(matches!(j.commit(&lease, vec![entry(2)], Durability::Durable).await, Err(JournalError::Closed)));
            assert!(matches!(j.release(&lease).await, Err(JournalError::Closed)));
            j.recover(keep_buffered);
            let seqs: Vec<u64> = j.entries("r").await.unwrap().iter().map(|e| e.seq).collect();
            assert_eq!(seqs, if keep_buffered { vec![0, 1] } else { vec![0] }, "keep_buffered={keep_buffered}");
            // A buffered write made durable by a later durable one survives a power cut.
            j.commit(&lease, vec![entry(5)], Durability::Buffered).await.unwrap();
            j.commit(&lease, vec![entry(6)], Durability::Durable).await.unwrap();
            j.crash();
            j.recover(false);
            let seqs: Vec<u64> = j.entries("r").await.unwrap().iter().map(|e| e.seq).collect();
            assert!(seqs.ends_with(&[5, 6]), "{seqs:?}");
        }
    }
}
