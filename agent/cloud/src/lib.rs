//! drover's cloud model: the resources a runbook's capability calls act on,
//! as plain data.
//!
//! Three backends answer a capability call: the real AWS one
//! (`drover-aws`), the planning one of `--dry-run`, and the simulated cloud
//! (`drover-sim`, behind `drover test` and the runbook author's
//! `cargo test`). They all speak these types, so the engine converts a
//! result into the contract's (WIT) types in one place, and the simulated
//! cloud needs no bridge to the agent. No I/O here.
//!
//! One module per service, named after the WIT interface: [`rds`] (Aurora
//! included, as in the contract), [`ec2`], [`route53`], [`cloudwatch`],
//! [`autoscaling`], [`ecs`].

pub mod autoscaling;
pub mod cloudwatch;
pub mod ec2;
pub mod ecs;
mod error;
pub mod rds;
pub mod resend;
pub mod route53;
mod wit;

pub use error::CloudError;
