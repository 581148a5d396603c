//! Drills on cron schedules. Each firing is one run named after its slot
//! (`drill-NAME-20261127T030000Z`), so an agent restarted within a slot
//! never runs it twice. Slots missed while no agent ran are not made up: the
//! next one runs. A drill whose scope is held (an incident failover is
//! running) is skipped, and the log says by which run.

use std::str::FromStr;
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;

use crate::config::{DrillConfig, params_text};
use crate::supervisor::{Admission, Start, Supervisor};

/// The first slot of `cron` after `now` (`None`: a bad schedule, or no slot left).
pub fn next_slot(cron: &str, now: chrono::DateTime<Utc>) -> Option<chrono::DateTime<Utc>> {
    cron::Schedule::from_str(cron).ok()?.after(&now).next()
}

/// Runs `drill` on its schedule until the task is dropped.
pub async fn run_schedule(drill: DrillConfig, supervisor: Arc<Supervisor>) {
    let schedule = match cron::Schedule::from_str(&drill.cron) {
        Ok(s) => s,
        Err(e) => {
            // validate() refuses these before the agent starts.
            tracing::error!(drill = %drill.name, error = %e, "bad cron schedule; drill disabled");
            return;
        }
    };
    loop {
        let Some(slot) = schedule.upcoming(Utc).next() else {
            tracing::info!(drill = %drill.name, "schedule has no further slot; drill done");
            return;
        };
        let wait = (slot - Utc::now()).to_std().unwrap_or_default();
        tracing::debug!(drill = %drill.name, slot = %slot, "next drill");
        tokio::time::sleep(wait).await;
        let run_id = format!("drill-{}-{}", drill.name, slot.format("%Y%m%dT%H%M%SZ"));
        let start = Start {
            runbook: drill.runbook.clone(),
            params: params_text(&drill.params),
            run_id: run_id.clone(),
            origin: json!({"kind": "drill", "name": drill.name, "unattended": drill.unattended, "scheduled_for": slot}),
            scope: drill.scope.clone(),
        };
        match supervisor.start(start).await {
            Ok(Admission::Started(id)) => tracing::info!(drill = %drill.name, run_id = %id, "drill started"),
            Ok(Admission::Joined(holder)) => {
                tracing::warn!(drill = %drill.name, scope = ?drill.scope, held_by = %holder, "drill skipped: its scope is held by a run that has not ended")
            }
            Ok(Admission::Existing(id)) => tracing::info!(drill = %drill.name, run_id = %id, "drill slot already taken"),
            Err(e) => tracing::error!(drill = %drill.name, run_id = %run_id, error = %e, "drill could not start"),
        }
        // Never fire twice for one slot, even if the clock steps back.
        let after = slot + chrono::Duration::milliseconds(1);
        if let Ok(wait) = (after - Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
    }
}
