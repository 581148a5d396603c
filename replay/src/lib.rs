//! drover's replay rules, in one place and without I/O.
//!
//! A durable run is replayed after every crash, and a runbook author's
//! `cargo test` replays it in the native harness of `drover_sdk::testing`.
//! Both must follow the same rules, or a runbook that passes its tests is
//! tested against something other than the agent. This crate holds the rules
//! themselves; the engine (`drover-engine`'s `durable` module) and the harness
//! keep only the I/O (the journal, the clock, the simulated cloud):
//!
//! - [`cursor`]: the replay rule itself: each journaled call is the one
//!   recorded at its position, and a finished run replayed them all;
//! - [`keys`]: what a step, gate or cleanup key may be, and the step key a
//!   cleanup or undo runs under;
//! - [`idempotency`]: the idempotency key of a step, sent to AWS as the
//!   client token and tag (frozen: changing it would make an in-flight step
//!   create its resource a second time);
//! - [`retry`]: a step's retry policy, its backoff and when to retry;
//! - [`attempts`]: an attempt interrupted by a crash counts against the policy;
//! - [`held`]: a step that failed for good waiting for an operator (retry,
//!   skip, or the failure stands);
//! - [`limits`]: the largest request a runbook may make of a journaled call;
//! - [`sections`]: parallel sections: branch names, their run ids, the
//!   cap on branches and the replay rule of a section;
//! - [`summary`]: a run's journal in brief, which the agent and the harness
//!   must agree on.
//!
//! Every refusal is a [`Violation`], whose text is what the runbook's author
//! sees, in the agent and in the harness alike.

pub mod attempts;
pub mod cursor;
pub mod held;
pub mod idempotency;
pub mod keys;
pub mod limits;
pub mod retry;
pub mod revert;
pub mod sections;
pub mod summary;
mod violation;

pub use attempts::{Interrupted, interrupted};
pub use idempotency::idempotency_key;
pub use keys::{ActionKind, MAX_KEY_LEN, check_key};
pub use limits::{MAX_APPROVAL_MESSAGE, MAX_RANDOM_BYTES, MAX_WAIT, check_approval_message, check_random_len, check_wait};
pub use retry::{MAX_BACKOFF_MS, RetrySpec};
pub use summary::StepSummary;
pub use violation::{Violation, describe};
