//! `hello-durable` natively, with simulated time: `cargo test` in `runbooks/`.

use drover_sdk::testing::{Scenario, TestRun};
use serde_json::Value;

use super::HelloDurable;

#[test]
fn an_hour_long_durable_sleep_takes_no_wall_time() {
    let r = TestRun::new(&Scenario::empty()).param("pause_seconds", 3600).run::<HelloDurable>();
    assert!(r.succeeded(), "{r}");
    let out: Value = r.output();
    assert_eq!(out["paused_seconds"], 3600);
}

#[test]
fn a_crash_after_the_sleep_neither_sleeps_again_nor_draws_a_new_ticket() {
    let once = TestRun::new(&Scenario::empty()).param("pause_seconds", 600).run::<HelloDurable>();
    let r = TestRun::new(&Scenario::empty()).param("pause_seconds", 600).crash_before_complete("verify").run::<HelloDurable>();
    assert!(r.succeeded(), "{r}");
    let (a, b): (Value, Value) = (once.output(), r.output());
    assert_eq!(b["paused_seconds"], 600, "the replay slept again: {b}");
    assert_eq!(a["ticket"], b["ticket"]);
    assert_eq!(r.step("plan").attempts, 1);
    assert_eq!(r.step("verify").attempts, 2);
}

/// The parity check with the agent: `tests/tests/simulated.rs` runs the
/// compiled component in the real engine (`drover test`) on the same
/// scenario and compares with the same file.
#[test]
fn journals_what_the_agent_journals_under_the_same_faults() {
    let scenario = Scenario::from_toml(include_str!("../../scenarios/parity/hello-durable.toml")).unwrap();
    TestRun::new(&scenario).run::<HelloDurable>().assert_journal(include_str!("../../scenarios/parity/hello-durable.journal.json"));
}
