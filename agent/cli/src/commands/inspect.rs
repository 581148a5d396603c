//! `drover inspect RUNBOOK.wasm [--json]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The runbook component (.wasm).
    pub runbook: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let label = args.runbook.display().to_string();
    let bytes = std::fs::read(&args.runbook).with_context(|| format!("cannot read runbook {label}"))?;
    let engine = home.engine()?;
    let rb = engine.load(&label, &bytes).await?;
    let info = &rb.info;
    if args.json {
        let mut v = serde_json::to_value(info)?;
        v["compiled_from_cache"] = rb.from_cache.into();
        v["load_ms"] = (rb.load_time.as_secs_f64() * 1000.0).into();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("runbook   {} {}", info.name, info.version);
    println!("sha256    {}", info.digest);
    println!("contract  drover:runbook@{}", info.contract);
    if !info.description.is_empty() {
        println!("\n{}", info.description);
    }
    println!("\nparameters");
    if info.params.is_empty() {
        println!("  (none)");
    }
    for p in &info.params {
        let default = match &p.default {
            Some(v) => format!("default {v}"),
            None => "required".into(),
        };
        let ty = serde_json::to_value(p.ty)?.as_str().unwrap_or("").to_string();
        println!("  {:<20} {:<8} {:<20} {}", p.name, ty, default, p.description);
    }
    println!("\ncapabilities");
    if info.capabilities.is_empty() {
        println!("  (none: this runbook touches nothing outside the agent)");
    }
    for c in &info.capabilities {
        let regions = if c.regions.is_empty() { "global".to_string() } else { c.regions.join(",") };
        println!("  {:<10} ops [{}]  regions [{regions}]  resources [{}]", c.service, c.operations.join(", "), c.resources.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
