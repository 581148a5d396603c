//! The agent's cap on concurrent AWS calls (`limits.concurrent_host_calls`),
//! with failovers first.
//!
//! Each capability call takes a turn for its requests. A waiter gives its
//! turn back while it sleeps between two polls (see `drover_aws::turns`), so
//! a run waiting minutes for an instance holds no turn meanwhile. When the
//! cap is reached, calls queue: every queued call of a failover is served
//! before any queued call of a drill, each class in order of arrival. A run
//! is a drill when a drill schedule started it (its origin's `kind` is
//! `drill`); any other run (an incident trigger, an operator's `drover run`)
//! may be a failover and goes first.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Which queue a run's calls wait in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A run that may be a failover: served first.
    Failover,
    /// A scheduled drill: served when no failover call waits.
    Drill,
}

impl Priority {
    /// The priority of a run with `origin` (see the module's doc).
    pub fn of_origin(origin: Option<&serde_json::Value>) -> Self {
        // A branch of a parallel section runs at its run's priority.
        if origin.is_some_and(|o| o["kind"] == "drill" || o["run_kind"] == "drill") { Priority::Drill } else { Priority::Failover }
    }
}

#[derive(Debug)]
struct State {
    free: usize,
    failovers: VecDeque<oneshot::Sender<()>>,
    drills: VecDeque<oneshot::Sender<()>>,
}

/// The turns of the agent's AWS calls.
#[derive(Debug)]
pub struct HostCalls {
    state: Mutex<State>,
}

/// A held turn; given back when dropped.
#[derive(Debug)]
pub struct Turn {
    calls: Arc<HostCalls>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.calls.release();
    }
}

impl HostCalls {
    /// A cap of `max` calls at once (at least one).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(HostCalls { state: Mutex::new(State { free: max.max(1), failovers: VecDeque::new(), drills: VecDeque::new() }) })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a turn, behind every queued call of the same or a higher
    /// priority.
    pub async fn turn(self: &Arc<Self>, priority: Priority) -> Turn {
        let rx = {
            let mut s = self.state();
            let ahead = match priority {
                Priority::Failover => !s.failovers.is_empty(),
                Priority::Drill => !s.failovers.is_empty() || !s.drills.is_empty(),
            };
            if s.free > 0 && !ahead {
                s.free -= 1;
                return Turn { calls: self.clone() };
            }
            let (tx, rx) = oneshot::channel();
            match priority {
                Priority::Failover => s.failovers.push_back(tx),
                Priority::Drill => s.drills.push_back(tx),
            }
            rx
        };
        let mut waiting = Waiting { calls: self.clone(), rx: Some(rx) };
        if let Some(rx) = waiting.rx.as_mut() {
            // The sender lives in the queue until release() hands it a turn.
            let _ = rx.await;
        }
        waiting.rx = None;
        Turn { calls: self.clone() }
    }

    /// Hands a given-back turn to the first waiting failover, else the first
    /// waiting drill, else frees it.
    fn release(&self) {
        let mut s = self.state();
        while let Some(tx) = s.failovers.pop_front().or_else(|| s.drills.pop_front()) {
            if tx.send(()).is_ok() {
                return;
            }
        }
        s.free += 1;
    }
}

/// A queued call; if it is dropped (its run cancelled) after a turn was
/// handed to it, the turn goes to the next.
struct Waiting {
    calls: Arc<HostCalls>,
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.calls.release();
            }
        }
    }
}

/// A capability call's turn, lent to its waiters (`drover_aws::turns`):
/// given back while they sleep, taken again (in the run's queue) to poll.
pub(crate) struct LentTurn {
    calls: Arc<HostCalls>,
    priority: Priority,
    held: Mutex<Option<Turn>>,
}

impl LentTurn {
    pub(crate) fn new(calls: Arc<HostCalls>, priority: Priority, turn: Turn) -> Arc<Self> {
        Arc::new(LentTurn { calls, priority, held: Mutex::new(Some(turn)) })
    }
}

impl drover_aws::turns::Turn for LentTurn {
    fn give_back(&self) {
        let given = self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(given);
    }

    fn take_again(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if self.held.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                return;
            }
            let turn = self.calls.turn(self.priority).await;
            *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(turn);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failovers_call_goes_before_queued_drill_calls() {
        let calls = HostCalls::new(1);
        let held = calls.turn(Priority::Drill).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut queued = Vec::new();
        for (name, p) in [("drill-1", Priority::Drill), ("drill-2", Priority::Drill), ("failover", Priority::Failover)] {
            let (mine, order) = (calls.clone(), order.clone());
            queued.push(tokio::spawn(async move {
                let _turn = mine.turn(p).await;
                order.lock().unwrap().push(name);
            }));
            // Queued in this order before the turn comes free.
            // (One guard at a time: two `state()` calls in one condition
            // would hold the first lock while taking the second.)
            while {
                let s = calls.state();
                s.failovers.len() + s.drills.len()
            } < queued.len()
            {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for q in queued {
            q.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["failover", "drill-1", "drill-2"]);
        assert_eq!(calls.state().free, 1, "every turn came back");
    }

    #[tokio::test]
    async fn a_call_waiting_between_polls_does_not_block_another_runs_call() {
        let calls = HostCalls::new(1);
        let lent = LentTurn::new(calls.clone(), Priority::Drill, calls.turn(Priority::Drill).await);
        let (polled, first_poll) = oneshot::channel::<()>();
        let (other_done, other) = oneshot::channel::<()>();
        let waiter = {
            let lent: Arc<dyn drover_aws::turns::Turn> = lent.clone();
            tokio::spawn(drover_aws::turns::lend(lent, async move {
                // What `drover_aws`'s poll does between two polls.
                let turn = drover_aws::turns::current().expect("lent");
                turn.give_back();
                let _ = polled.send(());
                let _ = other.await;
                turn.take_again().await;
            }))
        };
        first_poll.await.unwrap();
        // Were the whole wait to hold the only turn, the call below would wait for it.
        assert_eq!(calls.state().free, 1, "the waiter gave its turn back while it waits");
        let turn = calls.turn(Priority::Failover).await;
        drop(turn);
        other_done.send(()).unwrap();
        waiter.await.unwrap();
        assert!(lent.held.lock().unwrap().is_some(), "the waiter polls with a turn again");
        drop(lent);
        assert_eq!(calls.state().free, 1);
    }

    #[tokio::test]
    async fn a_cancelled_queued_call_passes_its_turn_on() {
        let calls = HostCalls::new(1);
        let held = calls.turn(Priority::Failover).await;
        let queued = tokio::spawn({
            let calls = calls.clone();
            async move { calls.turn(Priority::Failover).await }
        });
        while calls.state().failovers.is_empty() {
            tokio::task::yield_now().await;
        }
        queued.abort();
        let _ = queued.await;
        drop(held);
        assert_eq!(calls.state().free, 1);
        let _again = calls.turn(Priority::Drill).await;
    }

    #[test]
    fn drills_are_the_runs_a_drill_schedule_started() {
        assert_eq!(Priority::of_origin(Some(&serde_json::json!({"kind": "drill", "name": "weekly"}))), Priority::Drill);
        assert_eq!(Priority::of_origin(Some(&serde_json::json!({"kind": "trigger"}))), Priority::Failover);
        assert_eq!(Priority::of_origin(None), Priority::Failover);
    }
}
