//! Amazon CloudWatch metrics the failover decisions read: the replica lag
//! of an RDS read replica (`AWS/RDS` `ReplicaLag`, in seconds), which is the
//! data a promotion would lose, i.e. the RPO it would give.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};

use crate::error::from_sdk;
use crate::{CapabilityError, Clients};

/// How far back a lag reading may be: RDS publishes every minute.
pub const LAG_WINDOW: Duration = Duration::from_secs(300);

/// The replica lag of RDS instance `id` in `region`: the most recent
/// one-minute maximum of `ReplicaLag` within [`LAG_WINDOW`], in seconds, with
/// its age in seconds (from the end of its minute); `None` when CloudWatch has no reading (a replica that
/// is not replicating, or metrics not published yet).
pub async fn replica_lag(c: &Clients, region: &str, id: &str) -> Result<Option<(f64, u64)>, CapabilityError> {
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
    let newest = out.datapoints().iter().filter(|d| d.timestamp().is_some() && d.maximum().is_some()).max_by_key(|d| *d.timestamp().unwrap());
    Ok(newest.map(|d| {
        // A datapoint is stamped with the start of its one-minute period.
        let end = SystemTime::try_from(*d.timestamp().unwrap()).unwrap_or(now) + Duration::from_secs(60);
        (d.maximum().unwrap(), now.duration_since(end).unwrap_or_default().as_secs())
    }))
}
