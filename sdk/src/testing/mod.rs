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

pub(crate) mod imports;
mod run;

pub use drover_sim::*;
pub use run::{LogLine, Report, StepRecord, TestRun};

drover_cloud::contract_conversions!(
    convert,
    types = crate::bindings::drover::runbook::types,
    rds = crate::bindings::drover::runbook::rds,
    ec2 = crate::bindings::drover::runbook::ec2,
    route53 = crate::bindings::drover::runbook::route53,
    cloudwatch = crate::bindings::drover::runbook::cloudwatch,
    autoscaling = crate::bindings::drover::runbook::autoscaling,
    ecs = crate::bindings::drover::runbook::ecs
);

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

    /// A step whose body sleeps, then a sleep between steps.
    struct SleepInStep;

    impl Runbook for SleepInStep {
        type Params = serde_json::Value;
        type Output = u64;

        fn describe() -> Describe {
            Describe::new("sleep-in-step", "0.1.0").description("a sleep inside a step, then one outside")
        }

        fn run(ctx: &Ctx, _: serde_json::Value) -> Result<u64, Error> {
            let start = ctx.now();
            ctx.step("settle", || {
                ctx.sleep(std::time::Duration::from_secs(5));
                Ok(())
            })?;
            ctx.step("next", || Ok(()))?;
            ctx.sleep(std::time::Duration::from_secs(60));
            let slept = ctx.now().duration_since(start).map(|d| d.as_secs()).unwrap_or(0);
            Ok(slept)
        }
    }

    #[test]
    fn a_sleep_inside_a_completed_step_is_not_replayed_in_place_of_a_later_one() {
        // Before the harness kept one journal in call order, the inner sleep
        // was journaled on its own list: the replay skipped the step's body
        // but not its sleep, and the sleep after `next` returned at once.
        let r = TestRun::new(&Scenario::empty()).crash_after_complete("next").run::<SleepInStep>();
        assert!(r.succeeded(), "{r}");
        assert_eq!(r.crashes, 1);
        assert!(r.output::<u64>() >= 65, "{r}");
    }

    /// Breaks the rules the agent enforces, one per parameter value.
    struct RuleBreaker;

    impl Runbook for RuleBreaker {
        type Params = serde_json::Value;
        type Output = ();

        fn describe() -> Describe {
            Describe::new("rule-breaker", "0.1.0")
                .description("calls the agent where it may not")
                .param(crate::describe::Param::string("rule", "which rule to break"))
        }

        fn run(ctx: &Ctx, p: serde_json::Value) -> Result<(), Error> {
            match p["rule"].as_str().unwrap_or_default() {
                "bad-key" => ctx.step("Promote DB", || Ok(())),
                "long-backoff" => {
                    let retry = Retry::attempts(2).backoff(std::time::Duration::from_secs(3 * 24 * 3600), std::time::Duration::from_secs(3 * 24 * 3600));
                    ctx.step_with("x", retry, || Ok(()))
                }
                "approval-in-step" => ctx.step("x", || ctx.approval("go", "ok?").map(|_| ())),
                _ => Ok(()),
            }
        }
    }

    #[test]
    fn what_the_agent_refuses_fails_the_run_as_a_contract_violation() {
        for (rule, says) in [
            ("bad-key", "step key 'Promote DB' is invalid"),
            ("long-backoff", "steps.begin 'x': retry policy initial-backoff-ms is 259200000; at most 86400000 ms"),
            ("approval-in-step", "approval gate 'go' was requested inside step 'x'; request approvals between steps"),
        ] {
            let r = TestRun::new(&Scenario::empty()).param("rule", rule).run::<RuleBreaker>();
            let e = r.error();
            assert_eq!(e.code(), "contract-violation", "{rule}: {r}");
            assert!(e.to_string().contains(says), "{rule}: {e}");
        }
    }

    #[test]
    fn keys_are_the_agents_idempotency_keys() {
        let r = TestRun::new(&Scenario::empty()).run::<Interrupted>();
        let once = r.steps.iter().find(|s| s.key == "once").unwrap();
        let run_id = Scenario::empty().settings.run_id;
        assert_eq!(once.idempotency_key, drover_replay::idempotency_key(&run_id, "once"));
    }
}
