//! `hello-durable`: the smallest runbook that shows what durability means.
//!
//! 1. `plan` picks a change ticket number (journaled randomness) and the time
//!    the run started (journaled clock).
//! 2. `announce` uses `plan`'s output.
//! 3. A durable sleep of `pause_seconds`: kill the agent here and
//!    `drover resume` waits only for what is left.
//! 4. `verify` uses both earlier outputs and reports how long the pause took.

use std::time::Duration;

use drover_sdk::{Ctx, Describe, Error, Param, Runbook, export_runbook};
use serde::{Deserialize, Serialize};

/// Parameters of `hello-durable`.
#[derive(Deserialize)]
struct Params {
    /// Who is greeted.
    target: String,
    /// Length of the durable sleep between `announce` and `verify`.
    pause_seconds: u64,
}

/// Output of the `plan` step.
#[derive(Serialize, Deserialize)]
struct Plan {
    ticket: String,
    started_unix: i64,
}

/// The run's result.
#[derive(Serialize)]
struct Outcome {
    ticket: String,
    message: String,
    paused_seconds: i64,
}

struct HelloDurable;

impl Runbook for HelloDurable {
    type Params = Params;
    type Output = Outcome;

    fn describe() -> Describe {
        Describe::new("hello-durable", env!("CARGO_PKG_VERSION"))
            .description(
                "Plans a change ticket, announces it, sleeps durably for pause_seconds, \
                 then verifies using the earlier steps' outputs. Shows checkpointing and resume.",
            )
            .param(Param::string("target", "Who is greeted in the announcement").default("on-call"))
            .param(Param::integer("pause_seconds", "Length of the durable sleep, in seconds").default(2))
    }

    fn run(ctx: &Ctx, p: Params) -> Result<Outcome, Error> {
        let plan: Plan = ctx.step("plan", || Ok(Plan { ticket: format!("CHG-{:06}", ctx.random_u64() % 1_000_000), started_unix: ctx.unix_seconds() }))?;
        let announcement: String = ctx.step("announce", || {
            let text = format!("hello {}, change {} is under way", p.target, plan.ticket);
            ctx.info(&text);
            Ok(text)
        })?;
        ctx.sleep(Duration::from_secs(p.pause_seconds));
        let paused: i64 = ctx.step("verify", || {
            let paused = ctx.unix_seconds() - plan.started_unix;
            if paused < p.pause_seconds as i64 {
                return Err(Error::new("clock-went-backwards", format!("only {paused} s passed during a {} s pause", p.pause_seconds)));
            }
            Ok(paused)
        })?;
        Ok(Outcome { ticket: plan.ticket, message: announcement, paused_seconds: paused })
    }
}

export_runbook!(HelloDurable);

#[cfg(test)]
mod tests;
