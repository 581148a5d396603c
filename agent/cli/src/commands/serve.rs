//! `drover serve`: the agent as a service (see `drover_service`): the
//! runbooks under `[[serve.runbook]]`, drills on schedules, incident
//! triggers and the HTTP API, until SIGTERM or Ctrl-C stops it gracefully.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use drover_service::{Metrics, Service};

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// Listen here instead of `[serve] listen` (e.g. 127.0.0.1:7878).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let Some(mut config) = home.config.serve.clone() else {
        bail!(
            "the configuration ({}) has no [serve] section; add one (docs/drover.toml shows a complete example)",
            home.config.source.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none found".into())
        );
    };
    if let Some(addr) = args.listen {
        config.listen = addr;
    }
    config.validate()?;
    let engine = Arc::new(home.engine()?);
    let journal = home.journal().await?;
    let mut runbooks = BTreeMap::new();
    for entry in &config.runbooks {
        // An OCI reference is pulled (and pinned) at start; a file is relative to the configuration.
        let path = match drover_oci::parse_source(&entry.path.to_string_lossy())? {
            drover_oci::RunbookSource::Oci(_) => entry.path.clone(),
            drover_oci::RunbookSource::File(_) => home.config.relative(&entry.path),
        };
        let rb = home.load_runbook(&engine, &path).await.with_context(|| format!("[[serve.runbook]] {}", entry.path.display()))?;
        let name = rb.info.name.clone();
        if runbooks.insert(name.clone(), Arc::new(rb)).is_some() {
            bail!("two [[serve.runbook]] components are named '{name}'; serve one build per runbook name");
        }
    }
    let metrics = Arc::new(Metrics::new());
    let m = metrics.clone();
    drover_aws::observe_calls(Arc::new(move |service, operation, status, took| m.aws_call(service, operation, status, took)));
    let sns_confirm: drover_service::SnsConfirm = Arc::new(|topic: String, token: String| {
        Box::pin(async move {
            let clients = drover_aws::Clients::load().await;
            drover_aws::sns::confirm_subscription(&clients, &topic, &token)
                .await
                .map(|arn| tracing::info!(subscription = %arn, "SNS subscription confirmed through the SNS API"))
                .map_err(|e| e.to_string())
        })
    });
    let service = Service { config, engine, journal, runbooks, sns_confirm: Some(sns_confirm), metrics };
    drover_service::serve(service, stop_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Completes at SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
