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

use crate::bindings::drover::runbook::types::Error as WitError;

/// The replay rule for a step (or a cleanup or undo) found in flight after a
/// crash, shared by the agent and this harness: the interrupted attempt
/// counts against the step's retry policy. `attempts` is how many attempts
/// were begun (the interrupted one included), `max_attempts` what the policy
/// allows. Returns the error that fails the step for good once they are used
/// up (its body is not run again: its side effect may have happened), or
/// `None` when it may run again.
pub fn interrupted_step(key: &str, attempts: u32, max_attempts: u32) -> Option<WitError> {
    let max = max_attempts.max(1);
    (attempts >= max).then(|| WitError {
        code: "interrupted".into(),
        message: format!(
            "step '{key}' was interrupted (the agent crashed or was stopped) during attempt {attempts}, and its retry \
             policy allows {max} attempt{s} in all: it was not run again, since what it does may or may not have \
             happened. Check whether it did (the resource it acts on; `drover show` lists its attempts, the audit log \
             its calls) before acting on it; if re-running it is safe (it is idempotent), give it more attempts",
            s = if max == 1 { "" } else { "s" }
        ),
        retryable: false,
        resource: None,
    })
}

#[cfg(test)]
mod tests {
    use super::{Scenario, TestRun};
    use crate::{Ctx, Describe, Error, Retry, Runbook};

    /// A step with no retry, then one with two attempts.
    struct Interrupted;

    impl Runbook for Interrupted {
        type Params = serde_json::Value;
        type Output = Vec<String>;

        fn describe() -> Describe {
            Describe::new("interrupted", "0.1.0").description("a step with one attempt, then one with two")
        }

        fn run(ctx: &Ctx, _: serde_json::Value) -> Result<Vec<String>, Error> {
            let once = ctx.step_with("once", Retry::none(), || Ok("ran".to_string()));
            let twice: String = ctx.step_with("twice", Retry::attempts(2), || Ok("ran".to_string()))?;
            Ok(vec![format!("{:?}", once.map_err(|e| e.code().to_string())), twice])
        }
    }

    #[test]
    fn an_interrupted_attempt_counts_against_the_retry_policy() {
        // One attempt, used up by the crash: failed for good, not run again.
        let r = TestRun::new(&Scenario::empty()).crash_before_complete("once").run::<Interrupted>();
        assert_eq!(r.result.as_ref().map_err(|e| e.code().to_string()), Ok(&r#"["Err(\"interrupted\")","ran"]"#.to_string()));
        let once = r.steps.iter().find(|s| s.key == "once").unwrap();
        assert_eq!((once.status.as_str(), once.attempts), ("failed", 1));
        assert!(once.error.as_deref().unwrap().contains("allows 1 attempt in all"), "{once:?}");
        // Two attempts: the crash used one, the second runs.
        let r = TestRun::new(&Scenario::empty()).crash_before_complete("twice").run::<Interrupted>();
        assert!(r.succeeded());
        let twice = r.steps.iter().find(|s| s.key == "twice").unwrap();
        assert_eq!((twice.status.as_str(), twice.attempts), ("completed", 2));
    }
}
