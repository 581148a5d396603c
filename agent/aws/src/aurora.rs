//! Aurora global databases: one writer cluster in one region, read-only
//! secondary clusters in others, replicated by storage. Three ways to move
//! the writer:
//!
//! - **switchover** (`SwitchoverGlobalCluster`): planned, no data lost; the
//!   old writer becomes a secondary. For drills and failback.
//! - **failover** (`FailoverGlobalCluster` with `AllowDataLoss`): unplanned,
//!   the writer's region is down; writes not yet replicated are lost.
//! - **detach** (`RemoveFromGlobalCluster`): the manual way AWS documents for
//!   an outage when managed failover is not possible: the secondary leaves
//!   the global database and becomes a standalone writable cluster.
//!
//! An endpoint that does not implement an operation (an emulator) gets the
//! error `unsupported-by-endpoint`, never a retry loop.

use std::time::Duration;

use aws_sdk_rds::config::http::HttpResponse;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};

use crate::error::from_sdk;
use crate::rds::arn_region;
use crate::wait::poll;
use crate::{CapabilityError, Clients};

use drover_cloud::rds::MOVING;
pub use drover_cloud::rds::{DbCluster, GlobalCluster, GlobalFailoverMode, GlobalMember};

/// Global database statuses while a member is being removed.
const DETACHING: &[&str] = &["removing", "modifying"];
/// The state faults RDS answers a request with while the global database
/// or a member is changing (a move or a detach under way).
const STATE_FAULTS: &[&str] = &["InvalidGlobalClusterStateFault", "InvalidDBClusterStateFault"];

/// What a request to make `target_arn` the writer should do, given the
/// global database as it is now.
#[derive(Debug, Clone, PartialEq)]
enum Move {
    /// `target_arn` is the writer and nothing is moving: nothing to send.
    Done,
    /// A move to `target_arn` is under way (an earlier attempt's request,
    /// whose answer may have been lost): adopt it, send nothing.
    UnderWay,
    /// Send the request.
    Send,
}

/// Decides [`Move`] for making `target_arn` the writer of `g` by `mode`; a
/// move under way to another cluster, or one whose target RDS does not say,
/// is an error: it names what is moving and what to do.
fn next_move(g: &GlobalCluster, region: &str, target_arn: &str, mode: GlobalFailoverMode) -> Result<Move, CapabilityError> {
    if !g.members.iter().any(|m| m.cluster_arn == target_arn) {
        return Err(CapabilityError::new(
            "rds",
            mode.operation(),
            region,
            target_arn,
            "not-a-member",
            format!(
                "{target_arn} is not a cluster of global database {} (members: {})",
                g.identifier,
                g.members.iter().map(|m| m.cluster_arn.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    if g.moving() {
        return match g.moving_to.as_deref() {
            Some(to) if to == target_arn => Ok(Move::UnderWay),
            Some(to) => Err(CapabilityError::new(
                "rds",
                mode.operation(),
                region,
                &g.identifier,
                "move-in-progress",
                format!(
                    "global database {} is '{}' to {to}, not to {target_arn}; wait until it ends (rds.wait-global-writer) and decide again",
                    g.identifier, g.status
                ),
            )),
            None => Err(CapabilityError::new(
                "rds",
                mode.operation(),
                region,
                &g.identifier,
                "move-in-progress",
                format!(
                    "global database {} is '{}' and RDS does not say to which cluster; wait until it is available and run the step again",
                    g.identifier, g.status
                ),
            )
            .retryable()),
        };
    }
    if g.writer().is_some_and(|w| w.cluster_arn == target_arn) {
        return Ok(Move::Done);
    }
    Ok(Move::Send)
}

/// Describes DB cluster `id` in `region`.
pub async fn describe_cluster(c: &Clients, region: &str, id: &str) -> Result<DbCluster, CapabilityError> {
    let out = c.rds(region).describe_db_clusters().db_cluster_identifier(id).send().await.map_err(|e| from_sdk("rds", "DescribeDBClusters", region, id, e))?;
    let k = out
        .db_clusters()
        .first()
        .ok_or_else(|| CapabilityError::new("rds", "DescribeDBClusters", region, id, "DBClusterNotFoundFault", format!("no DB cluster '{id}' in {region}")))?;
    Ok(DbCluster {
        identifier: k.db_cluster_identifier().unwrap_or(id).to_string(),
        arn: k.db_cluster_arn().unwrap_or_default().to_string(),
        region: region.to_string(),
        status: k.status().unwrap_or_default().to_string(),
        engine: k.engine().unwrap_or_default().to_string(),
        endpoint: k.endpoint().map(str::to_string),
        reader_endpoint: k.reader_endpoint().map(str::to_string),
        members: k
            .db_cluster_members()
            .iter()
            .filter_map(|m| Some((m.db_instance_identifier()?.to_string(), m.is_cluster_writer().unwrap_or(false))))
            .collect(),
        global_cluster: k.global_cluster_identifier().map(str::to_string),
    })
}

/// Describes global database `id`, asking the endpoint of `region`.
pub async fn describe_global_cluster(c: &Clients, region: &str, id: &str) -> Result<GlobalCluster, CapabilityError> {
    let out = c
        .rds(region)
        .describe_global_clusters()
        .global_cluster_identifier(id)
        .send()
        .await
        .map_err(|e| from_sdk("rds", "DescribeGlobalClusters", region, id, e))?;
    let g =
        out.global_clusters().iter().find(|g| g.global_cluster_identifier() == Some(id)).ok_or_else(|| {
            CapabilityError::new("rds", "DescribeGlobalClusters", region, id, "GlobalClusterNotFoundFault", format!("no global database '{id}'"))
        })?;
    Ok(GlobalCluster {
        identifier: id.to_string(),
        arn: g.global_cluster_arn().unwrap_or_default().to_string(),
        status: g.status().unwrap_or_default().to_string(),
        engine: g.engine().unwrap_or_default().to_string(),
        moving_to: g
            .failover_state()
            .filter(|f| f.status().is_none_or(|s| s.as_str() != "cancelling"))
            .and_then(|f| f.to_db_cluster_arn())
            .filter(|_| MOVING.contains(&g.status().unwrap_or_default()))
            .map(str::to_string),
        members: g
            .global_cluster_members()
            .iter()
            .map(|m| {
                let cluster_arn = m.db_cluster_arn().unwrap_or_default().to_string();
                GlobalMember { region: arn_region(&cluster_arn).unwrap_or_default().to_string(), writer: m.is_writer().unwrap_or(false), cluster_arn }
            })
            .collect(),
    })
}

/// Makes cluster `target_arn` the writer of global database `id`, by
/// `mode`. When it already is the writer, or a move to it is under way (an
/// earlier attempt's request went through), nothing is sent: the step
/// adopts it. A move under way to another cluster is refused. When RDS
/// answers with a state fault (the global database changed meanwhile), it is
/// described again and a move to `target_arn` adopted. Returns whether a
/// request was sent, and the global database as it is after it. The move
/// itself takes minutes on AWS: wait with [`wait_global_writer`].
pub async fn failover_global_cluster(
    c: &Clients,
    region: &str,
    id: &str,
    target_arn: &str,
    mode: GlobalFailoverMode,
) -> Result<(bool, GlobalCluster), CapabilityError> {
    let before = describe_global_cluster(c, region, id).await?;
    match next_move(&before, region, target_arn, mode)? {
        Move::Done => return Ok((false, before)),
        Move::UnderWay => {
            tracing::info!(global_cluster = id, target = target_arn, status = %before.status, "a move to this writer is under way; adopting it");
            return Ok((false, before));
        }
        Move::Send => {}
    }
    let sent = match mode {
        GlobalFailoverMode::Switchover => c
            .rds(region)
            .switchover_global_cluster()
            .global_cluster_identifier(id)
            .target_db_cluster_identifier(target_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unsupported_or(c, mode.operation(), region, id, e)),
        GlobalFailoverMode::Failover => c
            .rds(region)
            .failover_global_cluster()
            .global_cluster_identifier(id)
            .target_db_cluster_identifier(target_arn)
            .allow_data_loss(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unsupported_or(c, mode.operation(), region, id, e)),
    };
    if let Err(err) = sent {
        if !STATE_FAULTS.contains(&err.code.as_str()) {
            return Err(err);
        }
        // The state changed under us: an earlier attempt's move (its answer
        // lost, or the SDK's own retry of this one) explains it.
        let now = describe_global_cluster(c, region, id).await?;
        return match next_move(&now, region, target_arn, mode)? {
            Move::Done | Move::UnderWay => {
                tracing::info!(global_cluster = id, target = target_arn, status = %now.status, error = %err, "the move is already under way or done; adopting it");
                Ok((false, now))
            }
            Move::Send => Err(err),
        };
    }
    Ok((true, describe_global_cluster(c, region, id).await?))
}

/// What a detach should do, given the global database as it is now:
/// `Ok(true)` send, `Ok(false)` it is not a member (nothing to do); a
/// writer move under way is an error (detaching during it would race it).
fn detach_needed(g: &GlobalCluster, home: &str, cluster_arn: &str) -> Result<bool, CapabilityError> {
    if !g.members.iter().any(|m| m.cluster_arn == cluster_arn) {
        return Ok(false);
    }
    if g.moving() {
        let to = g.moving_to.as_deref().unwrap_or("a cluster RDS does not name");
        return Err(CapabilityError::new(
            "rds",
            "RemoveFromGlobalCluster",
            home,
            cluster_arn,
            "move-in-progress",
            format!(
                "global database {} is '{}' to {to}; detaching {cluster_arn} now would race it: wait until it ends (rds.wait-global-writer), then decide again",
                g.identifier, g.status
            ),
        ));
    }
    Ok(true)
}

/// Detaches cluster `cluster_arn` from global database `id` (described
/// through the endpoint of `region`; the request goes to the cluster's own
/// region, as AWS requires): it becomes a standalone writable cluster, the
/// manual recovery when managed failover is not possible. Waits up to
/// `timeout` until it is no longer a member: an endpoint that acknowledges
/// the request but keeps the member gets an error, not a false success. A
/// cluster no longer a member is left alone (`false`). A detach under way
/// (the global database `removing`/`modifying`, or RDS answering a state
/// fault while it is) is waited for, not sent again; during a writer move
/// it is refused. Returns whether this call (or an earlier attempt's
/// request it adopted) detached the cluster.
pub async fn detach_from_global_cluster(c: &Clients, region: &str, id: &str, cluster_arn: &str, timeout: Duration) -> Result<bool, CapabilityError> {
    let is_member = |g: &GlobalCluster| g.members.iter().any(|m| m.cluster_arn == cluster_arn);
    let home = arn_region(cluster_arn).unwrap_or(region);
    let before = describe_global_cluster(c, region, id).await?;
    if !detach_needed(&before, home, cluster_arn)? {
        return Ok(false);
    }
    // While the global database is `removing`/`modifying` a detach is under
    // way (an earlier attempt's): wait for it instead of sending another.
    if !DETACHING.contains(&before.status.as_str()) {
        let sent = c
            .rds(home)
            .remove_from_global_cluster()
            .global_cluster_identifier(id)
            .db_cluster_identifier(cluster_arn)
            .send()
            .await
            .map_err(|e| unsupported_or(c, "RemoveFromGlobalCluster", home, id, e));
        if let Err(err) = sent {
            if !STATE_FAULTS.contains(&err.code.as_str()) {
                return Err(err);
            }
            // Refused because something is changing: a detach under way (or
            // done) is adopted and waited for; anything else is the error.
            let now = describe_global_cluster(c, region, id).await?;
            if !detach_needed(&now, home, cluster_arn)? {
                return Ok(true);
            }
            if !DETACHING.contains(&now.status.as_str()) {
                return Err(err);
            }
            tracing::info!(global_cluster = id, cluster = cluster_arn, status = %now.status, "a detach is under way; waiting for it");
        }
    } else {
        tracing::info!(global_cluster = id, cluster = cluster_arn, status = %before.status, "a detach is under way; waiting for it instead of sending another");
    }
    let gone = poll(timeout, || async { Ok::<_, CapabilityError>((!is_member(&describe_global_cluster(c, region, id).await?)).then_some(())) }).await?;
    match gone {
        Some(()) => Ok(true),
        None => Err(CapabilityError::new(
            "rds",
            "RemoveFromGlobalCluster",
            home,
            cluster_arn,
            "still-a-member",
            format!("the endpoint accepted the request, but {cluster_arn} is still a member of {id} after {} s", timeout.as_secs()),
        )
        .retryable()),
    }
}

/// Waits until `target_arn` is the writer of global database `id` and the
/// global database is `available` again.
pub async fn wait_global_writer(c: &Clients, region: &str, id: &str, target_arn: &str, timeout: Duration) -> Result<GlobalCluster, CapabilityError> {
    let last = std::sync::Mutex::new(None::<GlobalCluster>);
    let found = poll(timeout, || {
        let last = &last;
        async move {
            let g = describe_global_cluster(c, region, id).await?;
            let done = g.status == "available" && g.writer().is_some_and(|w| w.cluster_arn == target_arn);
            *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(g.clone());
            Ok::<_, CapabilityError>(done.then_some(g))
        }
    })
    .await?;
    found.ok_or_else(|| {
        let last = last.into_inner().unwrap_or_else(|p| p.into_inner());
        let now = last.map(|g| format!("status '{}', writer {}", g.status, g.writer().map(|w| w.cluster_arn.as_str()).unwrap_or("none"))).unwrap_or_default();
        CapabilityError::new(
            "rds",
            "DescribeGlobalClusters",
            region,
            id,
            "timeout",
            format!("{target_arn} is not the writer after {} s ({now})", timeout.as_secs()),
        )
        .retryable()
    })
}

/// Maps an error, telling "this endpoint does not implement the operation"
/// (LocalStack's `NotImplemented`/501, moto's HTTP 500 with no AWS error
/// body) apart from a real failure.
fn unsupported_or<E>(c: &Clients, operation: &'static str, region: &str, id: &str, e: SdkError<E, HttpResponse>) -> CapabilityError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    SdkError<E, HttpResponse>: ProvideErrorMetadata + aws_types::request_id::RequestId,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code().map(str::to_string);
    let custom = c.endpoint_override("rds");
    let unimplemented = matches!(code.as_deref(), Some("NotImplemented" | "InvalidAction" | "UnknownOperationException"))
        || status == Some(501)
        || (status == Some(500) && code.is_none() && custom.is_some());
    if unimplemented {
        let at = custom.unwrap_or_else(|| "AWS".into());
        return CapabilityError::new(
            "rds",
            operation,
            region,
            id,
            "unsupported-by-endpoint",
            format!(
                "the RDS endpoint {at} does not implement {operation} (moto and LocalStack do not); against AWS it is supported. \
                 To recover on such an endpoint, detach the secondary cluster (rds.detach-from-global-cluster) and point clients at it"
            ),
        );
    }
    from_sdk("rds", operation, region, id, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EAST: &str = "arn:aws:rds:us-east-1:1:cluster:orders";
    const WEST: &str = "arn:aws:rds:us-west-2:1:cluster:orders-dr";
    const EU: &str = "arn:aws:rds:eu-west-1:1:cluster:orders-eu";

    fn global(status: &str, writer: &str, moving_to: Option<&str>) -> GlobalCluster {
        GlobalCluster {
            identifier: "orders-global".into(),
            arn: String::new(),
            status: status.into(),
            engine: "aurora-postgresql".into(),
            members: [EAST, WEST, EU]
                .iter()
                .map(|a| GlobalMember { cluster_arn: a.to_string(), region: arn_region(a).unwrap_or_default().into(), writer: *a == writer })
                .collect(),
            moving_to: moving_to.map(str::to_string),
        }
    }

    #[test]
    fn a_move_under_way_to_the_target_is_adopted_and_one_elsewhere_refused() {
        let m = GlobalFailoverMode::Failover;
        assert_eq!(next_move(&global("available", EAST, None), "us-east-1", WEST, m).unwrap(), Move::Send);
        assert_eq!(next_move(&global("available", WEST, None), "us-east-1", WEST, m).unwrap(), Move::Done);
        for status in ["failing-over", "switching-over"] {
            assert_eq!(next_move(&global(status, EAST, Some(WEST)), "us-east-1", WEST, m).unwrap(), Move::UnderWay, "{status}");
            let err = next_move(&global(status, EAST, Some(EU)), "us-east-1", WEST, m).unwrap_err();
            assert_eq!((err.code.as_str(), err.retryable), ("move-in-progress", false), "{err}");
            assert!(err.message.contains(EU) && err.message.contains(WEST), "{err}");
            // Moving away from the writer asked for: not "done".
            assert_eq!(next_move(&global(status, EAST, Some(WEST)), "us-east-1", EAST, m).unwrap_err().code, "move-in-progress");
            let err = next_move(&global(status, EAST, None), "us-east-1", WEST, m).unwrap_err();
            assert_eq!((err.code.as_str(), err.retryable), ("move-in-progress", true), "{err}");
        }
        assert_eq!(next_move(&global("available", EAST, None), "us-east-1", "arn:other", m).unwrap_err().code, "not-a-member");
    }

    #[test]
    fn a_detach_is_not_sent_for_a_non_member_nor_during_a_move() {
        assert!(detach_needed(&global("available", EAST, None), "us-west-2", WEST).unwrap());
        assert!(!detach_needed(&global("available", EAST, None), "us-west-2", "arn:other").unwrap());
        let err = detach_needed(&global("failing-over", EAST, Some(EU)), "us-west-2", WEST).unwrap_err();
        assert_eq!(err.code, "move-in-progress", "{err}");
        assert!(detach_needed(&global("removing", EAST, None), "us-west-2", WEST).unwrap(), "a detach under way is waited for, by the caller");
    }
}
