//! `drover readiness RUNBOOK.wasm [--param K=V]... [--json]`: would a run
//! succeed right now? Nothing is changed: the runbook runs as a dry run in
//! readiness mode and reports each condition it depends on; the agent adds
//! whether the grants it needs are in place. Exit 0 when ready, 1 when not.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use drover_journal::RunStatus;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The runbook component (.wasm).
    pub runbook: PathBuf,
    /// A parameter as NAME=VALUE; repeat for more.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = super::run::parse_param)]
    pub params: Vec<(String, String)>,
    /// Print JSON: `{"runbook", "ready", "findings": [{"check", "ok", "detail", "resource", "fix"}], "evaluated_ms"}`.
    #[arg(long)]
    pub json: bool,
}

/// One condition, as the runbook (or the agent) reports it.
#[derive(Debug, Serialize, Deserialize)]
struct Finding {
    check: String,
    ok: bool,
    detail: String,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    fix: Option<String>,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let engine = home.engine()?;
    let runbook = home.load_runbook(&engine, &args.runbook).await?;
    let params = runbook.info.validate_params(&args.params)?;
    let started = Instant::now();
    let missing = engine.missing_grants(&runbook, &params);
    let evaluated = engine.readiness(&runbook, params, drover_engine::Observer::none()).await?;
    let elapsed = started.elapsed();

    let mut findings = vec![if missing.is_empty() {
        Finding { check: "the grants it needs are in place".into(), ok: true, detail: "every declared capability is granted".into(), resource: None, fix: None }
    } else {
        Finding {
            check: "the grants it needs are in place".into(),
            ok: false,
            detail: format!("not granted: {}", missing.join("; ")),
            resource: None,
            fix: Some(format!("add them under [runbooks.{}] in the agent's configuration", runbook.info.name)),
        }
    }];
    let run = &evaluated.run;
    match (run.status, run.result.as_ref().and_then(|r| r.get("findings"))) {
        (RunStatus::Succeeded, Some(found)) => findings.extend(serde_json::from_value::<Vec<Finding>>(found.clone())?),
        (RunStatus::Succeeded, None) => findings.push(Finding {
            check: "a dry run reaches its end".into(),
            ok: true,
            detail: format!("the runbook has no readiness checks of its own; a dry run succeeds with {} planned change(s)", evaluated.plan.len()),
            resource: None,
            fix: None,
        }),
        _ => {
            let e = run.error.clone();
            findings.push(Finding {
                check: "the evaluation runs".into(),
                ok: false,
                detail: e.as_ref().map(|e| format!("{}: {}", e.code, e.message)).unwrap_or_else(|| format!("ended {}", run.status.as_str())),
                resource: e.and_then(|e| e.resource),
                fix: Some("fix what the error names; `drover run --dry-run` shows the same run step by step".into()),
            });
        }
    }
    let ready = findings.iter().all(|f| f.ok);
    if args.json {
        let v = json!({
            "runbook": runbook.info.name,
            "ready": ready,
            "findings": findings,
            "evaluated_ms": elapsed.as_secs_f64() * 1000.0,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("readiness of {} {} ({} ms)", runbook.info.name, runbook.info.version, elapsed.as_millis());
        for f in &findings {
            println!("  {} {}: {}", if f.ok { "✔" } else { "✘" }, f.check, f.detail);
            if !f.ok {
                if let Some(r) = &f.resource {
                    println!("      resource: {r}");
                }
                if let Some(fix) = &f.fix {
                    println!("      fix: {fix}");
                }
            }
        }
        let problems = findings.iter().filter(|f| !f.ok).count();
        if ready {
            println!("READY: a run would succeed now, as far as these checks see");
        } else {
            println!("NOT READY: {problems} problem(s)");
        }
    }
    Ok(if ready { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
