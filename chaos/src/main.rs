//! `drover-chaos`: game-days against the local emulators (or any endpoint
//! the AWS configuration points at).
//!
//! - `drover-chaos run SCENARIO.toml... [--full]`: runs game-days and writes
//!   each one's `result.json` and `summary.md`; exit 0 when all pass, 1 when
//!   one fails, 2 when one could not be run.
//! - `drover-chaos seed-demo [--suffix NAME]`: seeds (or re-seeds) the demo
//!   topology.
//! - `drover-chaos seed-fleet --databases N [--suffix NAME]`: seeds (or
//!   re-seeds) a fleet of N databases for `fleet-failover`; prints the
//!   fleet and the `--param` pairs that aim the runbook at it.
//! - `drover-chaos proxy --latency-ms MS [--counts FILE]`: a proxy in front
//!   of the emulators that adds MS to every request (a WAN round trip to
//!   another region); prints the environment that points an agent or a
//!   script at it, keeps FILE up to date with the requests answered, and
//!   runs until killed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use drover_aws::Clients;
use drover_chaos::fleet::{Fleet, seed_fleet};
use drover_chaos::gameday::{self, Options};
use drover_chaos::scenario::Scenario;
use drover_chaos::topology::{Topology, seed};

#[derive(Parser)]
#[command(name = "drover-chaos", about = "Game-days for drover: fault injection, region outages, crash-restart")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run game-day scenarios.
    Run {
        /// Scenario files (chaos/scenarios/*.toml).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// The full form (longer, more faults, more crash points) instead of the short one CI runs.
        #[arg(long)]
        full: bool,
        /// Where results go (one directory per scenario).
        #[arg(long, default_value = "target/gamedays")]
        out: PathBuf,
        /// The agent configuration (grants) the runs use.
        #[arg(long, env = "DROVER_CONFIG", default_value = "docs/drover.toml")]
        config: PathBuf,
        /// Where the reference runbook components are.
        #[arg(long, default_value = "target/runbooks/wasm32-wasip2/release")]
        runbooks: PathBuf,
    },
    /// Seed (or re-seed) the demo topology.
    SeedDemo {
        /// Suffix for every name (empty: the names the runbooks default to).
        #[arg(long, default_value = "")]
        suffix: String,
    },
    /// Seed (or re-seed) a fleet of databases for fleet-failover.
    SeedFleet {
        /// How many databases.
        #[arg(long, default_value_t = 10)]
        databases: usize,
        /// Suffix for every name.
        #[arg(long, default_value = "")]
        suffix: String,
    },
    /// A proxy in front of the emulators adding a fixed delay to every request.
    Proxy {
        /// Milliseconds added to every request.
        #[arg(long, default_value_t = 100)]
        latency_ms: u64,
        /// Keep FILE up to date (every 100 ms) with the requests the
        /// emulators answered so far, per `service:Operation`, as JSON
        /// (`{"accepted": {...}, "refused": {...}}`): what a benchmark counts.
        #[arg(long, value_name = "FILE")]
        counts: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(async move {
        match cli.cmd {
            Cmd::SeedDemo { suffix } => {
                let s = seed(&Clients::load().await, &Topology::demo(&suffix)).await.context("seeding the demo topology failed")?;
                println!("{}", serde_json::to_string_pretty(&s)?);
                Ok(ExitCode::SUCCESS)
            }
            Cmd::SeedFleet { databases, suffix } => {
                let fleet = Fleet::new(databases, &suffix);
                seed_fleet(&Clients::load().await, &fleet).await.context("seeding the fleet failed")?;
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({"fleet": fleet, "params": fleet.params()}))?);
                Ok(ExitCode::SUCCESS)
            }
            Cmd::Proxy { latency_ms, counts } => latency_proxy(latency_ms, counts).await,
            Cmd::Run { scenarios, full, out, config, runbooks } => run(scenarios, full, out, config, runbooks).await,
        }
    }) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(scenarios: Vec<PathBuf>, full: bool, out: PathBuf, config: PathBuf, runbooks: PathBuf) -> anyhow::Result<ExitCode> {
    let config = std::fs::canonicalize(&config).with_context(|| format!("the agent configuration {} cannot be found (--config)", config.display()))?;
    let mut all_passed = true;
    for path in scenarios {
        let sc = Scenario::load(&path)?;
        let dir = out.join(&sc.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let opts = Options {
            full,
            runbooks_dir: std::path::absolute(&runbooks)?,
            scenario_dir: path.parent().map(PathBuf::from).unwrap_or_default(),
            config: Some(config.clone()),
            work_dir: std::path::absolute(&dir)?,
        };
        eprintln!("game-day {} ({})...", sc.name, if full { "full" } else { "short" });
        let report = gameday::run(sc, &opts).await.with_context(|| format!("game-day {} could not be run", path.display()))?;
        std::fs::write(dir.join("result.json"), serde_json::to_string_pretty(&report)?)?;
        let summary = report.summary();
        std::fs::write(dir.join("summary.md"), &summary)?;
        println!("{summary}");
        println!("(written to {})\n", dir.display());
        all_passed &= report.passed();
    }
    Ok(if all_passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `proxy`: every request to the emulators delayed by `latency_ms`; prints
/// the environment (`export K=V` lines) and serves until the process is
/// killed, writing the counts of requests to `counts` when given.
async fn latency_proxy(latency_ms: u64, counts: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    use drover_chaos::faults::{Faults, Rule};
    use drover_chaos::proxy::{Proxy, Upstreams};
    let upstreams = Upstreams::from_env().context("AWS_ENDPOINT_URL is not set: run `eval \"$(scripts/emulators env)\"` first")?;
    let faults = std::sync::Arc::new(Faults::new(0));
    let rule: Rule = toml::from_str(&format!("kind = \"latency\"\nms = {latency_ms}")).context("the latency rule")?;
    faults.add(rule);
    let proxy = Proxy::start(upstreams.clone(), faults).await.context("cannot start the proxy on 127.0.0.1")?;
    for (k, v) in upstreams.env_for(&proxy.url()) {
        println!("export {k}={v}");
    }
    use std::io::Write;
    std::io::stdout().flush().context("stdout")?;
    let Some(path) = counts else {
        // Serves until the process is killed.
        std::future::pending::<()>().await;
        return Ok(ExitCode::SUCCESS);
    };
    let mut written = String::new();
    loop {
        let now = serde_json::json!({"accepted": proxy.faults().accepted(), "refused": proxy.faults().refused()}).to_string();
        if now != written {
            // Whole or not at all: a reader never sees half a file.
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &now).and_then(|_| std::fs::rename(&tmp, &path)).with_context(|| format!("cannot write {}", path.display()))?;
            written = now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
