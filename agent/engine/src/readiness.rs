//! Would a run succeed right now? The runbook runs as a dry run in
//! readiness mode and reports each condition it depends on as a finding;
//! the agent adds whether the grants it needs are in place. One evaluation
//! for every reader: `drover readiness` and the console of `drover serve`.

use std::time::Instant;

use chrono::{DateTime, Utc};
use drover_journal::RunStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Engine, EngineError, LoadedRunbook, Observer};

/// One condition, as the runbook (or the agent) reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    /// What is checked, e.g. "the replica is available".
    pub check: String,
    /// Whether it holds.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// The resource concerned.
    #[serde(default)]
    pub resource: Option<String>,
    /// What to do when it does not hold.
    #[serde(default)]
    pub fix: Option<String>,
}

/// One evaluation of a runbook's readiness.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// The runbook's name.
    pub runbook: String,
    /// Its version.
    pub version: String,
    /// Every finding holds.
    pub ready: bool,
    /// What was checked, the agent's grants first.
    pub findings: Vec<Finding>,
    /// What a run would change now (the dry run's plan), one line each.
    pub plan: Vec<String>,
    /// How long the evaluation took.
    pub evaluated_ms: f64,
    /// When it was made.
    pub at: DateTime<Utc>,
}

/// Evaluates the readiness of `runbook` with `params` (validated): nothing
/// is changed. An evaluation that cannot run is a finding that fails, with
/// what the error names; only a runbook's malformed findings are an error.
pub async fn evaluate(engine: &Engine, runbook: &LoadedRunbook, params: Value) -> Result<Evaluation, EngineError> {
    let started = Instant::now();
    let at = Utc::now();
    let missing = engine.missing_grants(runbook, &params);
    let evaluated = engine.readiness(runbook, params, Observer::none()).await?;
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
        (RunStatus::Succeeded, Some(found)) => findings.extend(serde_json::from_value::<Vec<Finding>>(found.clone()).map_err(|e| {
            EngineError::Internal(format!(
                "runbook '{}' reported readiness findings that are not a list of {{check, ok, detail, resource, fix}}: {e}",
                runbook.info.name
            ))
        })?),
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
    Ok(Evaluation {
        runbook: runbook.info.name.clone(),
        version: runbook.info.version.clone(),
        ready: findings.iter().all(|f| f.ok),
        findings,
        plan: evaluated.plan.iter().map(|c| format!("{}: {} {} on {} in {}: {}", c.step, c.service, c.operation, c.resource, c.region, c.detail)).collect(),
        evaluated_ms: started.elapsed().as_secs_f64() * 1000.0,
        at,
    })
}
