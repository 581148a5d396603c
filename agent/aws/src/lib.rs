//! drover's AWS capabilities, one module per service: [`rds`] (and
//! [`aurora`] for Aurora global databases), [`ec2`], [`autoscaling`] and
//! [`ecs`] for the compute a failover scales up in the DR region,
//! [`route53`], and [`cloudwatch`] for the signals failover decisions read
//! (replica lag, alarm states). The engine exposes them to runbooks through
//! the `drover:runbook` WIT interfaces (`rds.replica-lag` reads CloudWatch).
//!
//! Every mutating call is idempotent under replay: resources get the
//! runbook's deterministic names and a `drover:idempotency-key` tag, and a
//! call that finds what an earlier attempt made adopts it instead of failing
//! or making a second one. Waiters poll with backoff and jitter up to a
//! deadline, and work the same against AWS (minutes) and the emulators
//! (instant).

// A `CapabilityError` (160 bytes: the service, operation, region, resource,
// code, message and request id a user needs) is returned at most once per
// AWS round trip, which takes milliseconds: boxing it buys nothing.
#![allow(clippy::result_large_err)]

mod arns;
pub mod aurora;
pub mod autoscaling;
mod call_observer;
mod clients;
pub mod cloudwatch;
pub mod ec2;
pub mod ecs;
mod error;
pub mod fence;
mod once;
pub mod rds;
mod request_ids;
pub mod route53;
mod seen_sets;
pub mod sns;
pub mod turns;
mod wait;
mod zones;

pub use call_observer::{CallObserver, counted, observe_calls};
pub use clients::{Clients, timeouts_within};
pub use error::{CapabilityError, from_sdk};

/// The tag key every resource drover creates carries.
pub const IDEMPOTENCY_TAG: &str = "drover:idempotency-key";

/// The tag carrying the id of the run that created a resource (on the
/// throwaway resources a drill makes). Deletion capabilities act only on
/// resources carrying the deleting run's id, and a drill proves it left
/// nothing behind by listing this tag.
pub const RUN_TAG: &str = "drover:run";
