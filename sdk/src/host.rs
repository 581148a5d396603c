//! Where the runbook's imports go: to the agent through the WIT contract when
//! the runbook is a component (`wasm32`), to the test harness and its
//! simulated cloud ([`crate::testing`]) when it is compiled for `cargo test`.
//! Everything in the SDK calls the agent through this module only.

#[cfg(target_arch = "wasm32")]
pub(crate) use crate::bindings::drover::runbook::{
    approval, autoscaling, branches, cleanup, clock, cloudwatch, ec2, ecs, log, random, rds, reads, route53, run_context, steps,
};

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::imports::{
    approval, autoscaling, branches, cleanup, clock, cloudwatch, ec2, ecs, log, random, rds, reads, route53, run_context, steps,
};
