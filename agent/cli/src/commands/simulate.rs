//! `drover simulate RUNBOOK.wasm --scenario FILE [--seeds N | --seed S] [--budget 60s] [--json]`:
//! the deterministic simulation (`drover_engine::simulate`). The real engine
//! drives the compiled component against the simulated cloud under seeded
//! schedules of crashes (every crash point of the run, then sampled) and
//! faults (throttling, 5xx, answers lost after the request took effect, SDK
//! resends, partitioned regions, replicas turning busy, lag readings that
//! cannot be trusted, stale reads, a journal that no longer matches the
//! build), and checks after each schedule the invariants a failover must
//! keep. A broken invariant prints the seed, the component's digest and the
//! schedule; `--seed S` replays it, call for call.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use drover_engine::simulate::{Outcome, Simulator};

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: super::test::Target,
    /// How many schedules to run (seeds from 0; default: as many as the budget allows).
    #[arg(long, conflicts_with = "seed")]
    pub seeds: Option<u64>,
    /// Run (replay) the one schedule of this seed and print it.
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long to explore: `60s`, `5m` (default 60s; with --seeds, no limit unless given).
    #[arg(long, value_parser = parse_budget)]
    pub budget: Option<Duration>,
    /// Agents sharing the run's store: with 2, schedules also stall the
    /// driver while a second agent takes the run over, which must fence the
    /// first out of every side effect.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub agents: u8,
    /// Threads running schedules (default: the machine's cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the report (or the schedule's outcome) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `60s`, `5m`, `1h` or plain seconds.
fn parse_budget(s: &str) -> Result<Duration, String> {
    let (n, unit) = match s.trim().char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.trim().split_at(i),
        None => (s.trim(), "s"),
    };
    let n: u64 = n.parse().map_err(|_| format!("'{s}' is not a duration such as 60s or 5m"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("'{s}': the unit must be s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let label = args.target.label();
    let (scenario, bytes, runbook_label) = args.target.read(home).await?;
    // A throwaway home: the simulation leaves nothing in the agent's.
    let scratch = tempfile::tempdir().context("cannot create a scratch directory for the simulation")?;
    let sim = Simulator::new(scratch.path(), home.config.limits()?, &runbook_label, &bytes, scenario, &args.target.params).await?.with_agents(args.agents);
    let replay = |seed: u64| {
        let params: String = args.target.params.iter().map(|(k, v)| format!(" --param {k}={v}")).collect();
        let agents = if args.agents > 1 { format!(" --agents {}", args.agents) } else { String::new() };
        format!("drover simulate {runbook_label} --scenario {label}{params}{agents} --seed {seed}")
    };

    if let Some(seed) = args.seed {
        let outcome = sim.run(seed).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&outcome)?);
        } else {
            print_outcome(&sim.runbook(), sim.digest(), &outcome);
            println!("\nsteps:");
            for (key, status, attempts) in &outcome.steps {
                println!("  {key:<34} {status:<10} {attempts} attempt(s)");
            }
            println!("\ncalls to the simulated cloud:");
            for c in &outcome.trace {
                let step = c.step.as_deref().filter(|s| !s.is_empty()).map(|s| format!("[{s} #{}]", c.attempt)).unwrap_or_default();
                println!("  {:<34} {:<10} {:<40} {:<24} {step}", c.call, c.region, c.resource, c.outcome());
            }
        }
        return Ok(if outcome.broken.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }

    let budget = match (args.budget, args.seeds) {
        (Some(b), _) => Some(b),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(60)),
    };
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let sim = Arc::new(sim);
    let explorer = sim.clone();
    let seeds = args.seeds;
    let report = tokio::task::spawn_blocking(move || explorer.explore(0, seeds, budget, threads)).await.context("the simulation stopped")??;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: {} schedules in {:.1} s ({:.0} a minute; {} crash points in the fault-free run, every one crashed at, killed and by a power cut)",
            report.runbook, report.schedules, report.seconds, report.per_minute, report.points
        );
        let endings: Vec<String> = report.endings.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("endings: {}", endings.join(", "));
        match &report.failure {
            None => println!("every invariant held in every schedule"),
            Some(f) => {
                println!();
                print_outcome(&report.runbook, &report.digest, f);
            }
        }
    }
    if let Some(f) = &report.failure {
        eprintln!("\nreplay it: {}", replay(f.schedule.seed));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_outcome(runbook: &str, digest: &str, o: &Outcome) {
    println!("seed {} of {runbook} (sha256 {digest})", o.schedule.seed);
    for line in o.schedule.describe() {
        println!("  schedule: {line}");
    }
    println!(
        "  ending: {}{}, {} restart(s), {} calls ({} changed something)",
        o.ending,
        o.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default(),
        o.restarts,
        o.calls,
        o.changes
    );
    println!("  fingerprint: {} (journal and calls; a replay gives the same)", o.fingerprint);
    if o.broken.is_empty() {
        println!("  every invariant held");
    }
    for b in &o.broken {
        println!("  BROKEN {}: {}", b.invariant, b.detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse() {
        assert_eq!(parse_budget("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_budget("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_budget("20"), Ok(Duration::from_secs(20)));
        assert!(parse_budget("5 days").is_err());
        assert!(parse_budget("s").is_err());
    }
}
