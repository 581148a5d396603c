//! Test a runbook natively with `cargo test`, against a simulated cloud.
//!
//! Compiled for the machine running the tests (never into the component),
//! the runbook's calls to the agent are answered here: steps are journaled,
//! retried with their backoff and replayed as the agent does; time is
//! simulated (waits and backoffs take no wall time); and the AWS
//! capabilities act on an in-memory model of RDS, EC2, Route 53 and
//! CloudWatch built from a [`Scenario`], with the failures it scripts
//! (throttle this call, make the replica lag, fail the third poll, a region
//! that does not answer).
//!
//! A test asserts on the result, the journal ([`Report::steps`]), the calls
//! made ([`Cloud::calls`], [`Cloud::changes`]) and the cloud the run left.
//! [`TestRun::crash_before_complete`] crashes the "agent" after a step's
//! side effects and before its completion is journaled, then resumes: the
//! test proves nothing happened twice.
//!
//! ```no_run
//! use drover_sdk::testing::{Scenario, TestRun};
//! # struct RegionalFailover;
//! # impl drover_sdk::Runbook for RegionalFailover {
//! #     type Params = serde_json::Value; type Output = ();
//! #     fn describe() -> drover_sdk::Describe { drover_sdk::Describe::new("x", "0.1.0") }
//! #     fn run(_: &drover_sdk::Ctx, _: serde_json::Value) -> Result<(), drover_sdk::Error> { Ok(()) }
//! # }
//!
//! #[test]
//! fn a_crash_after_the_promotion_does_not_promote_twice() {
//!     let scenario = Scenario::from_toml(include_str!("../scenarios/demo.toml")).unwrap();
//!     let report = TestRun::new(&scenario).crash_before_complete("promote").run::<RegionalFailover>();
//!     assert!(report.succeeded(), "{report}");
//!     assert_eq!(report.cloud.changes("rds.promote-read-replica"), 1);
//!     assert_eq!(report.step("promote").attempts, 2);
//! }
//! ```
//!
//! `drover test RUNBOOK.wasm --scenario FILE` runs the compiled component
//! against the same simulated cloud, in the agent.

mod cloud;
pub(crate) mod imports;
mod run;
mod scenario;

pub use cloud::{Call, Cloud, Db, DbSnap, Ec2Image, Ec2Instance, Ec2Snapshot};
pub use run::{LogLine, Report, StepRecord, TestRun};
pub use scenario::*;
