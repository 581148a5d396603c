//! Host bindings for the `drover:runbook` WIT contract (`wit/runbook.wit`).
//!
//! Every import is async (host calls wait on the journal and, later, on AWS)
//! and trappable: a host-side failure such as non-determinism or a lost lease
//! traps the runbook instead of handing it an error it could ignore.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "runbook",
    imports: { default: async | trappable },
    exports: { default: async },
    // `drover test` receives the simulated cloud's records as JSON.
    additional_derives: [serde::Serialize, serde::Deserialize],
});

pub use drover::runbook::{approval, autoscaling, branches, cleanup, clock, cloudwatch, ec2, ecs, log, random, rds, reads, route53, run_context, steps, types};

/// The WIT package version this agent provides. A runbook importing another
/// version is refused before instantiation with an error naming both.
pub const CONTRACT_VERSION: &str = "0.1.5";

/// The WIT package runbooks import.
pub const CONTRACT_PACKAGE: &str = "drover:runbook";
