//! `drover inspect RUNBOOK.wasm [--json]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use drover_engine::policy;

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The runbook component (.wasm).
    pub runbook: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// A parameter as NAME=VALUE, to resolve `{param}` in the declared
    /// capabilities (defaults are used for the others).
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = super::run::parse_param)]
    pub params: Vec<(String, String)>,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let engine = home.engine()?;
    let rb = home.load_runbook(&engine, &args.runbook).await?;
    let info = &rb.info;
    // Declared (with the parameters filled in, when they can be), granted, missing.
    let params = info.validate_params(&args.params).ok();
    let declared = params.as_ref().map(|p| policy::resolve(info, p));
    let granted = engine.policy().grants_for(info);
    let missing = declared.as_ref().map(|d| policy::missing(d, granted));
    if args.json {
        let mut v = serde_json::to_value(info)?;
        v["compiled_from_cache"] = rb.from_cache.into();
        v["load_ms"] = (rb.load_time.as_secs_f64() * 1000.0).into();
        v["declared"] = serde_json::to_value(&declared)?;
        v["granted"] = serde_json::to_value(granted)?;
        v["missing_grants"] = serde_json::to_value(&missing)?;
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
    let show = |g: &policy::Grant| {
        let regions = if g.service == "route53" { "global".to_string() } else { g.regions.join(", ") };
        println!("  {:<8} ops [{}]\n           regions [{regions}]\n           resources [{}]", g.service, g.operations.join(", "), g.resources.join(", "));
    };
    for c in &info.capabilities {
        show(&policy::Grant::from(c));
    }
    if info.capabilities.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    match &declared {
        Some(d) if d.iter().zip(&info.capabilities).any(|(r, c)| r.regions != c.regions || r.resources != c.resources) => {
            println!("\ndeclared, with these parameters");
            d.iter().for_each(show);
        }
        _ => {}
    }
    let source = home.config.source.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "no configuration file".into());
    println!("\ngranted ({source})");
    if granted.is_empty() {
        println!("  (nothing: add [runbooks.{}] grants to the configuration)", info.name);
    }
    granted.iter().for_each(show);
    match &missing {
        None => println!("\nmissing: give the required parameters (--param NAME=VALUE) to compare"),
        Some(m) if m.is_empty() => println!("\nmissing: nothing; every declared capability is granted"),
        Some(m) => {
            println!("\nmissing (drover run refuses to start it without --accept-missing-grants)");
            for item in m {
                println!("  - {item}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
