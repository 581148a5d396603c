//! `drover test RUNBOOK.wasm --scenario FILE [--param K=V]... [--json]`:
//! the compiled component, run by the real engine (journal, policy gate,
//! retries, cleanups) against the simulated cloud of `drover-sim` (the one `drover_sdk::testing` uses)
//! instead of AWS, on simulated time. Prints the run, every call it made and
//! what it changed, and the cloud it left. No emulator, no account, no
//! network; the agent's own store is not touched.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use drover_engine::policy::Policy;
use drover_engine::simulation::Simulation;
use drover_engine::{Engine, RunRequest};
use drover_journal::{Journal, SqliteJournal};
use drover_sim::Scenario;
use serde_json::{Map, Value, json};

use crate::home::Home;

/// What `drover test` and `drover simulate` both take: the runbook, the
/// simulated cloud it runs against, and parameters over the scenario's.
#[derive(clap::Args)]
pub struct Target {
    /// The runbook component (.wasm), or an OCI reference.
    pub runbook: PathBuf,
    /// The simulated cloud: resources, faults, parameters (TOML; see
    /// runbooks/scenarios/demo.toml and the drover_sdk::testing docs).
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// A parameter as NAME=VALUE, over the scenario's `[params]`.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = super::run::parse_param)]
    pub params: Vec<(String, String)>,
}

impl Target {
    /// The scenario file's name, as errors and reports show it.
    pub fn label(&self) -> String {
        self.scenario.display().to_string()
    }

    /// Reads the scenario and the component (a file, or an OCI reference
    /// pulled and checked as a run checks it); an error names the file.
    /// Returns the component's label too (a reference pinned to its digest).
    pub async fn read(&self, home: &Home) -> Result<(Scenario, Vec<u8>, String)> {
        let label = self.label();
        let text = std::fs::read_to_string(&self.scenario).with_context(|| format!("cannot read scenario {label}"))?;
        let scenario = Scenario::from_toml(&text).map_err(|e| anyhow!("scenario {label}: {e}"))?;
        let runbook = self.runbook.display().to_string();
        if let drover_oci::RunbookSource::Oci(reference) = drover_oci::parse_source(&runbook)? {
            let (pulled, _) = home.pull_checked(&reference, &home.config.registry.transport()).await?;
            return Ok((scenario, pulled.component, pulled.pinned));
        }
        let bytes = std::fs::read(&self.runbook).with_context(|| format!("cannot read runbook {runbook}"))?;
        Ok((scenario, bytes, runbook))
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Print the run, the calls and the final state as one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let label = args.target.label();
    let (mut scenario, bytes, runbook_label) = args.target.read(home).await?;
    // Simulated time starts now, so the run's timeline reads like a real one.
    let now = chrono::Utc::now();
    scenario.settings.start_unix = now.timestamp();
    let sim = Simulation::new(&scenario).map_err(|e| anyhow!("scenario {label}: {e}"))?;
    sim.advance_to(now);
    // A throwaway store: a simulated run leaves nothing in the agent's.
    let scratch = tempfile::tempdir().context("cannot create a scratch directory for the simulated run")?;
    let engine = Engine::new(scratch.path(), home.config.limits()?)?.with_simulation(sim.clone());
    let runbook = engine.load(&runbook_label, &bytes).await?;

    let params = runbook.info.validate_params(&scenario.params_over(&args.target.params))?;
    // What the runbook declares (for these parameters) is granted: the
    // simulation tests the runbook, `drover check` the configuration's grants.
    let engine = engine.with_policy(Policy::declared(&runbook.info, &params));

    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::open(scratch.path().join("runs.db"))?);
    let run_id = scenario.settings.run_id.clone();
    let origin = json!({"unattended": true, "kind": "test", "name": label});
    let req = RunRequest { origin: Some(origin), ..RunRequest::new(run_id.clone(), params) };
    let (observer, progress) = crate::progress::Progress::start(true);
    let outcome = engine.start(journal.clone(), &runbook, req, observer).await;
    if let Some(p) = progress {
        p.finish().await;
    }
    let run = outcome?;
    let entries = drover_engine::entries_with_branches(journal.as_ref(), &run.run_id).await?;
    let events = if args.json { journal.events(&run.run_id).await? } else { Vec::new() };
    let cloud = sim.cloud();
    let mut extra = Map::new();
    extra.insert("simulated".into(), json!({"calls": cloud.calls(), "state": cloud.state()}));
    super::print_run(&run, &entries, &events, args.json, extra)?;
    if !args.json {
        println!("\ncalls to the simulated cloud ({}, {} changed something):", cloud.calls().len(), cloud.calls().iter().filter(|c| c.changed).count());
        for c in cloud.calls() {
            let step = c.step.as_deref().filter(|s| !s.is_empty()).map(|s| format!("[{s} #{}]", c.attempt)).unwrap_or_default();
            println!("  {:<34} {:<10} {:<40} {:<8} {step}", c.call, c.region, c.resource, c.outcome());
        }
        println!("\nfinal state:");
        print_state(&cloud.state());
    }
    Ok(super::exit_code(run.status))
}

/// The state, one resource per line.
fn print_state(state: &Value) {
    let regional = |service: &str, kind: &str, show: &dyn Fn(&Value) -> String| {
        for (region, items) in state[service][kind].as_object().into_iter().flatten() {
            for (name, v) in items.as_object().into_iter().flatten() {
                println!("  {service} {kind:<10} {region:<10} {name:<32} {}", show(v));
            }
        }
    };
    regional("rds", "instances", &|v| {
        let i = &v["instance"];
        let replica = i["replica_source"].as_str().map(|s| format!(", replica of {s}")).unwrap_or_default();
        format!("{}{replica}", i["status"].as_str().unwrap_or(""))
    });
    regional("rds", "snapshots", &|v| format!("of {}", v["snapshot"]["instance"].as_str().unwrap_or("")));
    regional("ec2", "instances", &|v| v["instance"]["state"].as_str().unwrap_or("").to_string());
    regional("ec2", "images", &|v| v["image"]["name"].as_str().unwrap_or("").to_string());
    for (zone, sets) in state["route53"]["zones"].as_object().into_iter().flatten() {
        for r in sets.as_array().into_iter().flatten() {
            let set = match (r["set_identifier"].as_str(), r["weight"].as_u64()) {
                (Some(s), Some(w)) => format!(" [{s} weight {w}]"),
                (Some(s), None) => format!(" [{s}]"),
                _ => String::new(),
            };
            let values: Vec<&str> = r["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            println!(
                "  route53 {:<10} {zone:<10} {} {}{set} -> {}",
                "record",
                r["name"].as_str().unwrap_or(""),
                r["record_type"].as_str().unwrap_or(""),
                values.join(", ")
            );
        }
    }
}
