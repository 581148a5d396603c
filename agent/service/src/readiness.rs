//! The readiness of every runbook a serving agent serves: evaluated on a
//! schedule (`[serve] readiness_interval_seconds`) and on demand (the
//! console's "Evaluate now"), the last evaluation of each kept for the
//! console. An evaluation is a dry run: it reads the cloud and changes
//! nothing.
//!
//! The parameters of an evaluation are those of the runbook's first drill,
//! else of its first trigger, else its defaults: what the next automatic
//! run of it would be given.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drover_engine::readiness::Evaluation;
use drover_engine::{Engine, LoadedRunbook};

use crate::config::{ServeConfig, params_text};

/// A served runbook and the parameters its evaluations take.
type Evaluated = (Arc<LoadedRunbook>, Vec<(String, String)>);

/// The last evaluation of each runbook (`Err`: why it could not run).
pub struct Readiness {
    engine: Arc<Engine>,
    runbooks: BTreeMap<String, Evaluated>,
    interval: Option<Duration>,
    last: Mutex<BTreeMap<String, Result<Evaluation, String>>>,
    /// One evaluation at a time per agent (each is a dry run against AWS).
    running: tokio::sync::Mutex<()>,
}

impl Readiness {
    /// The readiness of `runbooks`, with the parameters `config` gives them.
    pub fn new(engine: Arc<Engine>, runbooks: &BTreeMap<String, Arc<LoadedRunbook>>, config: &ServeConfig) -> Readiness {
        let params_of = |name: &str| {
            let drill = config.drills.iter().find(|d| d.runbook == name).map(|d| &d.params);
            let trigger = config.triggers.iter().find(|t| t.runbook == name).map(|t| &t.params);
            drill.or(trigger).map(params_text).unwrap_or_default()
        };
        Readiness {
            engine,
            runbooks: runbooks.iter().map(|(n, rb)| (n.clone(), (rb.clone(), params_of(n)))).collect(),
            interval: (config.readiness_interval_seconds > 0).then(|| Duration::from_secs(config.readiness_interval_seconds)),
            last: Mutex::new(BTreeMap::new()),
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// How often every runbook is evaluated (`None`: only on demand).
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// The last evaluation of each runbook evaluated so far.
    pub fn last(&self) -> BTreeMap<String, Result<Evaluation, String>> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Evaluates runbook `name` now and keeps the result; `false` when the
    /// agent does not serve it.
    pub async fn evaluate(&self, name: &str) -> bool {
        let Some((runbook, params)) = self.runbooks.get(name) else { return false };
        let _one = self.running.lock().await;
        let outcome = match runbook.info.validate_params(params) {
            Ok(p) => drover_engine::readiness::evaluate(&self.engine, runbook, p).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("{e} (readiness takes the parameters of the runbook's first drill or trigger)")),
        };
        match &outcome {
            Ok(ev) => tracing::info!(runbook = name, ready = ev.ready, evaluated_ms = ev.evaluated_ms, "readiness evaluated"),
            Err(e) => tracing::warn!(runbook = name, error = %e, "readiness could not be evaluated"),
        }
        self.last.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), outcome);
        true
    }

    /// Evaluates every runbook on the schedule, until the task is dropped.
    pub async fn run_schedule(self: Arc<Self>) {
        let Some(every) = self.interval else { return };
        loop {
            for name in self.runbooks.keys() {
                self.evaluate(name).await;
            }
            tokio::time::sleep(every).await;
        }
    }
}
