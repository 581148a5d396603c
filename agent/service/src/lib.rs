//! `drover serve`: the agent as a long-running service.
//!
//! - [`config`]: the `[serve]` section: listener, runbooks, drills, triggers.
//! - [`supervisor`]: starts, resumes and stops runs.
//! - [`schedule`]: drills on cron schedules.
//! - [`triggers`], [`alerts`], [`auth`], [`replay`]: incident triggers
//!   (Alertmanager, SNS, generic JSON), their payloads, their authentication
//!   and the deliveries already received.
//! - [`api`]: the HTTP API (runs, approvals, cancel, health, metrics).
//! - [`metrics`]: what `/metrics` exposes.
//! - [`console`]: the web console (runs, a run's live timeline, approvals,
//!   readiness, drills, the operator's controls) on the same listener.
//! - [`readiness`]: the readiness of the served runbooks, on a schedule and on demand.
//! - [`notify`]: webhooks told of approvals awaited and runs ended.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod config;
pub mod console;
pub mod flapping;
pub mod held;
pub mod metrics;
pub mod notify;
pub mod pause;
pub mod readiness;
pub mod replay;
pub mod schedule;
pub mod supervisor;
pub mod triggers;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use drover_engine::{Engine, EngineError, LoadedRunbook};
use drover_journal::{Journal, JournalError};

pub use config::ServeConfig;
pub use metrics::Metrics;
pub use triggers::SnsConfirm;

/// What went wrong in the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The `[serve]` configuration is wrong.
    #[error("[serve] configuration: {0}")]
    Config(String),
    /// A drill or trigger names a runbook the agent does not serve.
    #[error("runbook '{0}' is not served by this agent; add its component under [[serve.runbook]]")]
    UnknownRunbook(String),
    /// The listener could not be opened.
    #[error("cannot listen on {addr}: {detail}; pick a free address in [serve] listen")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        detail: String,
    },
    /// The engine refused.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The run store failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A control (pause, unpause) of a run that has ended.
    #[error("run '{run_id}' has ended ({status}); there is nothing to {what}")]
    Ended {
        /// The run.
        run_id: String,
        /// How it ended.
        status: String,
        /// The control asked for.
        what: String,
    },
    /// A control the run's state does not allow (a skip of a step that does
    /// not wait for an operator, a gate decided before).
    #[error("cannot {what} of run '{run_id}': {why}")]
    Refused {
        /// The run.
        run_id: String,
        /// The control asked for.
        what: String,
        /// Why not, and what to do.
        why: String,
    },
    /// `unblock` of a run that holds nothing.
    #[error("run '{run_id}' holds no trigger: {why}; nothing was changed")]
    NotHeld {
        /// The run.
        run_id: String,
        /// Why it holds nothing.
        why: String,
    },
}

/// Run `run_id`, unless it has ended (a control `what` of an ended run is
/// refused: [`ServiceError::Ended`]).
pub(crate) async fn unended_run(journal: &dyn Journal, run_id: &str, what: &str) -> Result<drover_journal::RunRecord, ServiceError> {
    let run = journal.run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?;
    if run.status.is_final() {
        return Err(ServiceError::Ended { run_id: run_id.into(), status: run.status.to_string(), what: what.into() });
    }
    Ok(run)
}

/// Everything `serve` needs.
pub struct Service {
    /// The `[serve]` section.
    pub config: ServeConfig,
    /// The engine (limits and grants applied).
    pub engine: Arc<Engine>,
    /// The run store.
    pub journal: Arc<dyn Journal>,
    /// The runbooks served, loaded (and signature-checked) by the caller, by name.
    pub runbooks: BTreeMap<String, Arc<LoadedRunbook>>,
    /// How SNS subscriptions are confirmed (`None`: they are not).
    pub sns_confirm: Option<SnsConfirm>,
    /// The metrics (the caller may feed AWS call metrics into them).
    pub metrics: Arc<Metrics>,
}

/// Serves until `stop` completes, then stops every run at its next step
/// boundary (waiting up to `shutdown_grace_seconds`) and returns.
pub async fn serve(service: Service, stop: impl Future<Output = ()> + Send + 'static) -> Result<(), ServiceError> {
    let Service { config, engine, journal, runbooks, sns_confirm, metrics } = service;
    config.validate()?;
    for name in config.drills.iter().map(|d| &d.runbook).chain(config.triggers.iter().map(|t| &t.runbook)) {
        if !runbooks.contains_key(name) {
            return Err(ServiceError::UnknownRunbook(name.clone()));
        }
    }
    let api_token = auth::Verifier::bearer_from_env(&config.api_token_env, "[serve] api_token_env")?;
    let triggers = triggers::Triggers::new(&config.triggers, sns_confirm)?;
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.map_err(|e| ServiceError::Listen { addr: config.listen.to_string(), detail: e.to_string() })?;
    let notifier = Arc::new(notify::Notifier::new(&config.notify, metrics.clone())?);
    let readiness = Arc::new(readiness::Readiness::new(engine.clone(), &runbooks, &config));
    let supervisor = supervisor::Supervisor::new(engine, journal, runbooks, metrics, notifier);
    let resumed = supervisor.resume_in_flight().await?;
    let mut background: Vec<_> = config.drills.iter().map(|d| tokio::spawn(schedule::run_schedule(d.clone(), supervisor.clone()))).collect();
    if let Some(ttl) = supervisor.journal().lease_ttl() {
        // Takeover time after a driver dies: its lease, plus up to this.
        let every = (ttl / 10).clamp(Duration::from_millis(250), Duration::from_secs(2));
        background.push(tokio::spawn(supervisor.clone().take_over_orphans(every)));
    }
    background.push(tokio::spawn(readiness.clone().run_schedule()));
    let api_identity = config.api_token_name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| api_token.label());
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let console = console::Console::new(api_token.secret(), stopping);
    let drills = config.drills.clone();
    let state = Arc::new(api::AppState { supervisor: supervisor.clone(), api_token, api_identity, triggers, console, readiness, drills });
    tracing::info!(
        listen = %config.listen,
        drills = config.drills.len(),
        triggers = config.triggers.len(),
        resumed = resumed.len(),
        "drover serving"
    );
    eprintln!(
        "drover serving on http://{} ({} drill(s), {} trigger(s), {} run(s) resumed)",
        config.listen,
        config.drills.len(),
        config.triggers.len(),
        resumed.len()
    );
    // When told to stop, the console's live streams end first: the
    // graceful shutdown waits for open connections.
    let stop = async move {
        stop.await;
        let _ = stopping_tx.send(true);
    };
    let server = axum::serve(listener, api::router(state)).with_graceful_shutdown(stop);
    let served = server.await;
    for task in background {
        task.abort();
    }
    eprintln!("drover stopping: runs stop at their next step boundary (up to {} s)", config.shutdown_grace_seconds);
    supervisor.shutdown(Duration::from_secs(config.shutdown_grace_seconds)).await;
    served.map_err(|e| ServiceError::Listen { addr: config.listen.to_string(), detail: e.to_string() })
}
