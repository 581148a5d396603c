//! The host side of the `reads` interface (contract 0.1.5): a step's
//! independent reads sent at once.
//!
//! Each read is admitted as the call it names (`capabilities.rs`:
//! [`HostState::admit`], the same access as the single call: declared,
//! granted, a denial audited and answered as that read's error), then all
//! the admitted reads go to the run's backend together, under one turn among
//! the agent's AWS calls (a batch holding one turn per read could wait on
//! itself under a small cap), and their answers come back in the order
//! asked. A read's error is its own answer; the others are not touched.

use std::future::Future;
use std::pin::Pin;

use drover_replay::Violation;

use crate::backend::{Backends, CallCx};
use crate::bindings::reads::{self, Answer, Read};
use crate::bindings::types;
use crate::capabilities::{
    asg_describe_group_access, ecs_describe_service_access, rds_describe_instance_access, rds_latest_snapshot_access, rds_replica_lag_access,
    route53_get_records_of_access, unmasked,
};
use crate::durable::DurableError;
use crate::host::HostState;
use crate::policy::Access;

/// Most reads one `read-all` may send.
pub const MAX_READS: usize = 16;

/// The access a read needs: that of the call it names.
fn access_of(read: &Read) -> Access {
    match read {
        Read::RdsDescribeInstance(r) => rds_describe_instance_access(&r.region, &r.identifier),
        Read::RdsReplicaLag(r) => rds_replica_lag_access(&r.region, &r.identifier),
        Read::RdsLatestSnapshot(r) => rds_latest_snapshot_access(&r.region, &r.identifier),
        Read::Route53GetRecordsOf(r) => route53_get_records_of_access(&r.zone, &r.names),
        Read::AutoscalingDescribeGroup(r) => asg_describe_group_access(&r.region, &r.name),
        Read::EcsDescribeService(r) => ecs_describe_service_access(&r.region, &r.cluster, &r.name),
    }
}

/// A denied read's answer: its denial, under the read's name.
fn denied(read: &Read, e: types::Error) -> Answer {
    match read {
        Read::RdsDescribeInstance(_) => Answer::RdsDescribeInstance(Err(e)),
        Read::RdsReplicaLag(_) => Answer::RdsReplicaLag(Err(e)),
        Read::RdsLatestSnapshot(_) => Answer::RdsLatestSnapshot(Err(e)),
        Read::Route53GetRecordsOf(_) => Answer::Route53GetRecordsOf(Err(e)),
        Read::AutoscalingDescribeGroup(_) => Answer::AutoscalingDescribeGroup(Err(e)),
        Read::EcsDescribeService(_) => Answer::EcsDescribeService(Err(e)),
    }
}

type Pending<'a> = Pin<Box<dyn Future<Output = wasmtime::Result<Answer>> + Send + 'a>>;

/// One admitted read, sent through the run's backend.
fn send<'a>(b: &'a Backends, cx: &'a CallCx, read: &'a Read) -> Pending<'a> {
    match read {
        Read::RdsDescribeInstance(r) => {
            Box::pin(async move { Ok(Answer::RdsDescribeInstance(unmasked(b.rds.describe_instance(cx, &r.region, &r.identifier).await?))) })
        }
        Read::RdsReplicaLag(r) => Box::pin(async move { Ok(Answer::RdsReplicaLag(unmasked(b.rds.replica_lag(cx, &r.region, &r.identifier).await?))) }),
        Read::RdsLatestSnapshot(r) => {
            Box::pin(async move { Ok(Answer::RdsLatestSnapshot(unmasked(b.rds.latest_snapshot(cx, &r.region, &r.identifier).await?))) })
        }
        Read::Route53GetRecordsOf(r) => {
            Box::pin(async move { Ok(Answer::Route53GetRecordsOf(unmasked(b.route53.get_records_of(cx, &r.zone, &r.names).await?))) })
        }
        Read::AutoscalingDescribeGroup(r) => {
            Box::pin(async move { Ok(Answer::AutoscalingDescribeGroup(unmasked(b.autoscaling.describe_group(cx, &r.region, &r.name).await?))) })
        }
        Read::EcsDescribeService(r) => {
            Box::pin(async move { Ok(Answer::EcsDescribeService(unmasked(b.ecs.describe_service(cx, &r.region, &r.cluster, &r.name).await?))) })
        }
    }
}

impl HostState {
    /// An answer as the runbook gets it: secret values masked in its error.
    fn masked(&self, a: Answer) -> Answer {
        match a {
            Answer::RdsDescribeInstance(r) => Answer::RdsDescribeInstance(r.map_err(|e| self.mask(e))),
            Answer::RdsReplicaLag(r) => Answer::RdsReplicaLag(r.map_err(|e| self.mask(e))),
            Answer::RdsLatestSnapshot(r) => Answer::RdsLatestSnapshot(r.map_err(|e| self.mask(e))),
            Answer::Route53GetRecordsOf(r) => Answer::Route53GetRecordsOf(r.map_err(|e| self.mask(e))),
            Answer::AutoscalingDescribeGroup(r) => Answer::AutoscalingDescribeGroup(r.map_err(|e| self.mask(e))),
            Answer::EcsDescribeService(r) => Answer::EcsDescribeService(r.map_err(|e| self.mask(e))),
        }
    }
}

impl reads::Host for HostState {
    async fn read_all(&mut self, reads: Vec<Read>) -> wasmtime::Result<Vec<Answer>> {
        if reads.len() > MAX_READS {
            return Err(wasmtime::Error::new(DurableError::from(Violation::BadRequest(format!(
                "reads.read-all was given {} reads; at most {MAX_READS} go out at once: split them into several calls",
                reads.len()
            )))));
        }
        let mut answers: Vec<Option<Answer>> = Vec::with_capacity(reads.len());
        let mut admitted = None;
        for read in &reads {
            let access = access_of(read);
            match self.admit(&access).await? {
                Ok(()) => {
                    admitted.get_or_insert(access);
                    answers.push(None);
                }
                Err(e) => answers.push(Some(denied(read, e))),
            }
        }
        let Some(first) = admitted else {
            return Ok(answers.into_iter().flatten().collect());
        };
        let cx = self.call_cx(&first).await?;
        let backends = self.backends.clone();
        let sent: Vec<Pending<'_>> = reads.iter().zip(&answers).filter(|(_, a)| a.is_none()).map(|(r, _)| send(&backends, &cx, r)).collect();
        let mut came = drover_aws::counted(cx.requests.clone(), futures_util::future::join_all(sent)).await.into_iter();
        let mut out = Vec::with_capacity(reads.len());
        for a in answers {
            match a {
                Some(denial) => out.push(denial),
                None => {
                    let answer = came.next().ok_or_else(|| wasmtime::Error::msg("a read's answer is missing"))??;
                    out.push(self.masked(answer));
                }
            }
        }
        drop(cx);
        self.after_call().await?;
        Ok(out)
    }
}
