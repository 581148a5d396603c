//! The agent's cap on concurrent AWS calls, across long waits.
//!
//! The engine gives each capability call a turn among the agent's AWS calls
//! and holds it for the call. A waiter (an instance becoming available, a
//! Route 53 change INSYNC, a global database's new writer) may take
//! minutes, most of it asleep between two polls: holding a turn through
//! that would let a few waiting drills starve a failover. So the call's
//! turn is lent to the waiter ([`lend`]), and [`crate::wait::poll`] gives it
//! back while it sleeps and takes one again before the next poll
//! ([`sleep_without_turn`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A call's turn among the agent's AWS calls, which a waiter can give back
/// and take again.
pub trait Turn: Send + Sync {
    /// Gives the turn back (nothing if it is not held).
    fn give_back(&self);
    /// Takes a turn again (waiting for one); nothing if it is held.
    fn take_again(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

tokio::task_local! {
    static TURN: Arc<dyn Turn>;
}

/// Runs `f` (a capability call) with its turn `turn` lent to the waiters in it.
pub async fn lend<F: Future>(turn: Arc<dyn Turn>, f: F) -> F::Output {
    TURN.scope(turn, f).await
}

/// The turn lent to the current capability call, if any.
pub fn current() -> Option<Arc<dyn Turn>> {
    TURN.try_with(Arc::clone).ok()
}

/// Sleeps `d` without the call's turn (when one was lent), and takes a turn
/// again before returning.
pub(crate) async fn sleep_without_turn(d: Duration) {
    let Some(turn) = current() else {
        tokio::time::sleep(d).await;
        return;
    };
    turn.give_back();
    tokio::time::sleep(d).await;
    turn.take_again().await;
}
