//! drover's simulated cloud: an in-memory model of the RDS, EC2, Route 53
//! and CloudWatch resources the capabilities act on, built from a
//! [`Scenario`] (TOML), with the behaviour a runbook relies on and the
//! faults the scenario scripts.
//!
//! One model, two drivers:
//! - the agent (`drover test RUNBOOK.wasm --scenario FILE`) answers the
//!   compiled component's capability calls from it, with the real engine
//!   (journal, policy, replay) around them;
//! - the runbook author's `cargo test` (`drover_sdk::testing::TestRun`) runs
//!   the runbook natively against it.
//!
//! It speaks the cloud model's types (`drover-cloud`), the same the real AWS
//! backend returns; host-only (never in a component).

mod cloud;
mod scenario;

pub use cloud::{Call, Cloud, Db, DbSnap, Ec2Image, Ec2Instance, Ec2Snapshot};
pub use scenario::*;
