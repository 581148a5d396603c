//! The cloud model's types (`drover-cloud`, what every backend returns) in
//! the contract's types (WIT, what the runbook gets), and back for the few
//! inputs that are records: `drover-cloud`'s conversions, written for the
//! agent's bindings.

drover_cloud::contract_conversions!(
    wit,
    types = crate::bindings::types,
    rds = crate::bindings::rds,
    ec2 = crate::bindings::ec2,
    route53 = crate::bindings::route53,
    cloudwatch = crate::bindings::cloudwatch,
    autoscaling = crate::bindings::autoscaling,
    ecs = crate::bindings::ecs
);

pub(crate) use wit::{ToWit, capacity, failover_mode, failover_role, record_changes, weighted_targets};
