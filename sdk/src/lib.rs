//! # drover-sdk: write drover runbooks in Rust
//!
//! A runbook is a WebAssembly component the drover agent runs durably: every
//! step is journaled, so a run that crashes resumes where it stopped and never
//! repeats a side effect that completed. This crate is what a runbook author
//! writes against: typed parameters through serde, named steps with retries,
//! journaled time and randomness, durable sleeps and structured logs, all over
//! the `drover:runbook` WIT contract (`wit/runbook.wit`).
//!
//! ## A complete runbook
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "hello-durable"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! drover-sdk = { path = "../../sdk" }
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use std::time::Duration;
//! use drover_sdk::{Ctx, Describe, Error, Param, Runbook, export_runbook};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Params {
//!     greeting: String,
//!     pause_seconds: u64,
//! }
//!
//! #[derive(Serialize, Deserialize)]
//! struct Greeting {
//!     text: String,
//!     at_unix: i64,
//! }
//!
//! struct HelloDurable;
//!
//! impl Runbook for HelloDurable {
//!     type Params = Params;
//!     type Output = String;
//!
//!     fn describe() -> Describe {
//!         Describe::new("hello-durable", "0.1.0")
//!             .description("Greets, waits durably, and greets again.")
//!             .param(Param::string("greeting", "What to say").default("hello"))
//!             .param(Param::integer("pause_seconds", "How long to wait").default(2))
//!     }
//!
//!     fn run(ctx: &Ctx, p: Params) -> Result<String, Error> {
//!         // Runs once; on resume its journaled output comes back instead.
//!         let first: Greeting = ctx.step("greet", || {
//!             Ok(Greeting { text: p.greeting.clone(), at_unix: ctx.unix_seconds() })
//!         })?;
//!         // A durable sleep: a crash here resumes the wait, not the greeting.
//!         ctx.sleep(Duration::from_secs(p.pause_seconds));
//!         // A later step uses an earlier step's output.
//!         let reply = ctx.step("reply", || {
//!             Ok(format!("{} again, {} s after {}", first.text, ctx.unix_seconds() - first.at_unix, first.at_unix))
//!         })?;
//!         Ok(reply)
//!     }
//! }
//!
//! export_runbook!(HelloDurable);
//! # fn main() {}
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2` (the result,
//! `target/wasm32-wasip2/debug/hello_durable.wasm`, is a component) and run
//! it with `drover run hello_durable.wasm --param pause_seconds=5`.
//!
//! ## Cleanups, undos, secrets and cancel
//!
//! A drill that restores a throwaway database registers its deletion the
//! moment it asks for the restore; a failover that shifts traffic registers
//! the shift back as an undo; the database's master password is a secret the
//! runbook passes on but never sees.
//!
//! ```
//! use drover_sdk::{Action, Ctx, Describe, Error, Param, Runbook, Secret, export_runbook};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Params {
//!     snapshot: String,
//!     master_password: Secret,
//! }
//!
//! #[derive(Serialize, Deserialize)]
//! struct Restore {
//!     instance: String,
//! }
//!
//! #[derive(Serialize, Deserialize)]
//! struct Weights {
//!     primary: u8,
//!     dr: u8,
//! }
//!
//! struct Drill;
//!
//! impl Runbook for Drill {
//!     type Params = Params;
//!     type Output = String;
//!
//!     fn describe() -> Describe {
//!         Describe::new("restore-drill", "0.1.0")
//!             .param(Param::string("snapshot", "Snapshot to restore"))
//!             .param(Param::secret("master_password", "Master password for the restored instance"))
//!     }
//!
//!     fn run(ctx: &Ctx, p: Params) -> Result<String, Error> {
//!         let instance = format!("drill-{}", ctx.run_id());
//!         // Registered before the restore is requested: no crash can leave it behind.
//!         ctx.defer("delete-restore", &Restore { instance: instance.clone() })?;
//!         ctx.step("restore", || {
//!             // A capability would get `p.master_password.reference()`, never the value;
//!             // printing the handle shows "[secret master_password]".
//!             ctx.info(&format!("restoring {} as {instance} with {}", p.snapshot, p.master_password));
//!             Ok(())
//!         })?;
//!         ctx.step("shift-weights", || Ok(Weights { primary: 0, dr: 100 }))?;
//!         // Runs only if the run later fails or is cancelled.
//!         ctx.compensate("shift-back", &Weights { primary: 100, dr: 0 })?;
//!         ctx.step("verify", || Ok(()))?;
//!         Ok(instance)
//!     }
//!
//!     fn finalize(ctx: &Ctx, action: Action) -> Result<(), Error> {
//!         match action.key() {
//!             "delete-restore" => {
//!                 let r: Restore = action.payload()?;
//!                 // Idempotent: deleting what is already gone succeeds.
//!                 ctx.info(&format!("deleting {} after a run that {:?}", r.instance, action.ending()));
//!                 Ok(())
//!             }
//!             "shift-back" => {
//!                 let w: Weights = action.payload()?;
//!                 ctx.info(&format!("weights back to {}/{}", w.primary, w.dr));
//!                 Ok(())
//!             }
//!             other => Err(Error::new("unknown-action", other.to_string())),
//!         }
//!     }
//! }
//!
//! export_runbook!(Drill);
//! # fn main() {}
//! ```
//!
//! - **Cleanups** ([`Ctx::defer`]) run when the run ends, however it ends:
//!   success, error, trap or panic, a limit, or `drover cancel`. **Undos**
//!   ([`Ctx::compensate`]) run only when it does not succeed, newest first,
//!   before the cleanups. Each is a journaled step (`undo:KEY`,
//!   `cleanup:KEY`) run once, in a fresh instance, through
//!   [`Runbook::finalize`], with its own idempotency key and retries; a crash
//!   during cleanup resumes with the ones not yet done. A failing one is
//!   reported in the run (`drover show`), never swallowed.
//! - **Secrets** ([`Param::secret`]) are passed by reference
//!   (`--param master_password=env:DB_PASSWORD` or `file:/run/secrets/pw`).
//!   The journal keeps the reference; the runbook gets a [`Secret`] handle;
//!   anything the runbook writes out that contains a secret's value is masked.
//! - **Cancel** (`drover cancel RUN_ID --reason TEXT`) stops the run at its
//!   next step boundary, or at once in a durable sleep or retry backoff; the
//!   step in flight finishes; then undos and cleanups run and the run ends
//!   `cancelled`.
//!
//! ## The rules that make replay work
//! - Touch the world only through [`Ctx`]: no `std::time`, no `rand` with an
//!   OS seed, no threads. The agent gives runbooks no ambient clock, entropy,
//!   files or network; [`Ctx::now`] and [`Ctx::random_u64`] are journaled.
//! - Step keys are unique within a run, and the run reaches its steps in the
//!   same order every time it executes. Decisions based on step outputs are
//!   fine: outputs are journaled.
//! - A step's body may run more than once (a crash mid-step, a retry). Give
//!   [`Attempt::idempotency_key`] to whatever the body creates, so a second
//!   attempt adopts what the first made.
//! - Errors carry a code, a message that says what failed on what resource,
//!   and whether retrying may help ([`Error::retryable`]).

#![deny(missing_docs)]

extern crate self as drover_sdk;

pub mod aws;
#[allow(missing_docs)]
pub mod bindings;
mod branches;
pub mod compute;
mod ctx;
mod describe;
mod error;
mod finalize;
mod host;
mod readiness;
mod retry;
mod secret;
#[cfg(not(target_arch = "wasm32"))]
#[allow(
    clippy::panic,
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "the test harness fails the author's test by panicking, as assert! does; it is never in a component"
)]
pub mod testing;

pub use branches::{Branch, Join, Outcome, Outcomes};
pub use ctx::Mode;
pub use ctx::{Approved, Attempt, Ctx, Level, OnFailure};
pub use describe::{Capability, Describe, Param};
pub use error::{Context, Error};
pub use finalize::{Action, Ending};
pub use readiness::{Finding, Readiness};
pub use retry::Retry;
pub use secret::Secret;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A runbook: what it says about itself and what it does.
pub trait Runbook {
    /// The parameters, decoded with serde from the JSON object the agent
    /// passes (every declared parameter present, defaults filled in).
    type Params: DeserializeOwned;
    /// The run's result, journaled as JSON.
    type Output: Serialize;

    /// Name, version, description, parameters, capabilities. Must not call
    /// the agent (no steps, logs or time here).
    fn describe() -> Describe;

    /// The runbook itself.
    fn run(ctx: &Ctx, params: Self::Params) -> Result<Self::Output, Error>;

    /// Readiness (`drover readiness`): checks, without changing anything,
    /// every condition a run depends on, and reports each. Called instead of
    /// [`run`](Self::run) when the run's [`Mode`] is `Readiness`; a runbook
    /// that does not implement it is simply dry-run.
    fn readiness(ctx: &Ctx, params: &Self::Params) -> Option<Result<Readiness, Error>> {
        let _ = (ctx, params);
        None
    }

    /// One branch of a parallel section started with [`Ctx::parallel`]: the
    /// agent calls it in the branch's own instance, with the run's
    /// parameters and the branch (name and input). Its steps are journaled
    /// in the branch's own journal (keys unique within the branch); its
    /// result is the branch's outcome. A runbook that starts no section need
    /// not implement it.
    fn branch(ctx: &Ctx, params: &Self::Params, branch: Branch) -> Result<serde_json::Value, Error> {
        let _ = (ctx, params);
        Err(Error::new("no-branch-handler", format!("the runbook started branch '{}' but does not implement Runbook::branch", branch.name)))
    }

    /// Carries out a cleanup or undo registered with [`Ctx::defer`] or
    /// [`Ctx::compensate`]. The agent calls it after `run` has ended, in a
    /// fresh instance, once per action (again only after a crash or a
    /// retryable error; [`Ctx::attempt`] gives the idempotency key). A runbook
    /// that registers nothing need not implement it.
    fn finalize(ctx: &Ctx, action: Action) -> Result<(), Error> {
        let _ = ctx;
        Err(Error::new("no-finalize", format!("the runbook registered '{}' but does not implement Runbook::finalize", action.key())))
    }
}

/// Exports a [`Runbook`] implementation as the component's `runbook` world.
#[macro_export]
macro_rules! export_runbook {
    ($runbook:ty) => {
        struct __DroverExport;

        impl $crate::bindings::Guest for __DroverExport {
            fn describe() -> $crate::bindings::drover::runbook::types::RunbookInfo {
                $crate::__private::describe::<$runbook>()
            }

            fn run(
                params: ::std::string::String,
            ) -> ::core::result::Result<::std::string::String, $crate::bindings::drover::runbook::types::Error> {
                $crate::__private::run::<$runbook>(&params)
            }

            fn finalize(
                action: $crate::bindings::Action,
            ) -> ::core::result::Result<(), $crate::bindings::drover::runbook::types::Error> {
                $crate::__private::finalize::<$runbook>(action)
            }
        }

        $crate::bindings::__export_runbook_world!(__DroverExport with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    use super::*;
    use crate::bindings::drover::runbook::types::{Error as WitError, RunbookInfo};

    pub fn describe<R: Runbook>() -> RunbookInfo {
        R::describe().into_wit()
    }

    pub fn run<R: Runbook>(params: &str) -> Result<String, WitError> {
        let params: R::Params =
            serde_json::from_str(params).map_err(|e| Error::new("bad-params", format!("parameters do not fit the runbook's type: {e}")).to_wit())?;
        let ctx = Ctx::new();
        if let Some(branch) = branches::current() {
            // This instance runs one branch of a parallel section.
            let output = R::branch(&ctx, &params, branch).map_err(|e| e.to_wit())?;
            return serde_json::to_string(&output).map_err(|e| Error::new("output-not-serializable", format!("branch result: {e}")).to_wit());
        }
        if ctx.mode() == Mode::Readiness
            && let Some(found) = R::readiness(&ctx, &params)
        {
            let found = found.map_err(|e| e.to_wit())?;
            return serde_json::to_string(&found).map_err(|e| Error::new("output-not-serializable", format!("readiness: {e}")).to_wit());
        }
        let output = R::run(&ctx, params).map_err(|e| e.to_wit())?;
        serde_json::to_string(&output).map_err(|e| Error::new("output-not-serializable", format!("run result: {e}")).to_wit())
    }

    pub fn finalize<R: Runbook>(action: crate::bindings::Action) -> Result<(), WitError> {
        let key = action.key.clone();
        let action = Action::from_wit(action).map_err(|e| e.to_wit())?;
        let ctx = Ctx::new();
        ctx.current_attempt_from_host(&key);
        R::finalize(&ctx, action).map_err(|e| e.to_wit())
    }
}
