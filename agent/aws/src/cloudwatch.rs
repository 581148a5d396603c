//! Amazon CloudWatch metrics the failover decisions read: the replica lag
//! of an RDS read replica (`AWS/RDS` `ReplicaLag`, in seconds), which is the
//! data a promotion would lose, i.e. the RPO it would give; and the state of
//! metric alarms, the signals a health gate reads before it lets more
//! traffic through.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, StateValue, Statistic};

use crate::error::from_sdk;
use crate::{CapabilityError, Clients};

pub use drover_cloud::cloudwatch::{Alarm, AlarmState};
use drover_cloud::rds::LagReading;

/// How far back a lag reading may be: RDS publishes every minute.
pub const LAG_WINDOW: Duration = Duration::from_secs(300);

/// The replica lag of RDS instance `id` in `region`: the most recent
/// one-minute maximum of `ReplicaLag` within [`LAG_WINDOW`], in seconds, with
/// its age in seconds (from the end of its minute); `None` when CloudWatch has no reading (a replica that
/// is not replicating, or metrics not published yet).
pub async fn replica_lag(c: &Clients, region: &str, id: &str) -> Result<Option<LagReading>, CapabilityError> {
    let now = SystemTime::now();
    let out = c
        .cloudwatch(region)
        .get_metric_statistics()
        .namespace("AWS/RDS")
        .metric_name("ReplicaLag")
        .dimensions(Dimension::builder().name("DBInstanceIdentifier").value(id).build())
        .start_time(DateTime::from(now - LAG_WINDOW))
        .end_time(DateTime::from(now + Duration::from_secs(60)))
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .map_err(|e| from_sdk("cloudwatch", "GetMetricStatistics", region, id, e))?;
    let newest = out.datapoints().iter().filter_map(|d| Some((*d.timestamp()?, d.maximum()?))).max_by_key(|(at, _)| *at);
    Ok(newest.map(|(at, maximum)| {
        // A datapoint is stamped with the start of its one-minute period.
        let end = SystemTime::try_from(at).unwrap_or(now) + Duration::from_secs(60);
        LagReading { seconds: maximum, age_seconds: now.duration_since(end).unwrap_or_default().as_secs() }
    }))
}

/// The metric alarms `names` in `region`, in the order asked. A name that
/// CloudWatch does not know is an error (`alarm-not-found`): a mistyped
/// alarm must not make a health gate pass by saying nothing.
pub async fn describe_alarms(c: &Clients, region: &str, names: &[String]) -> Result<Vec<Alarm>, CapabilityError> {
    let what = names.join(",");
    let mut found = Vec::new();
    // DescribeAlarms takes at most 100 names per call.
    for chunk in names.chunks(100) {
        let mut next: Option<String> = None;
        loop {
            let out = c
                .cloudwatch(region)
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| from_sdk("cloudwatch", "DescribeAlarms", region, &what, e))?;
            for a in out.metric_alarms() {
                let state = match a.state_value() {
                    Some(StateValue::Alarm) => AlarmState::Alarm,
                    Some(StateValue::Ok) => AlarmState::Ok,
                    _ => AlarmState::InsufficientData,
                };
                found.push(Alarm {
                    name: a.alarm_name().unwrap_or_default().to_string(),
                    arn: a.alarm_arn().unwrap_or_default().to_string(),
                    state,
                    reason: a.state_reason().unwrap_or_default().to_string(),
                    since: a.state_updated_timestamp().and_then(|t| SystemTime::try_from(*t).ok()),
                });
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
    }
    let mut ordered = Vec::with_capacity(names.len());
    for name in names {
        match found.iter().find(|a| &a.name == name) {
            Some(a) => ordered.push(a.clone()),
            None => {
                return Err(CapabilityError::new(
                    "cloudwatch",
                    "DescribeAlarms",
                    region,
                    name,
                    "alarm-not-found",
                    format!("no metric alarm named '{name}' in {region}; check the name and the region (composite alarms are not read)"),
                ));
            }
        }
    }
    Ok(ordered)
}
