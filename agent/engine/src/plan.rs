//! `drover run --dry-run`: mutating capability calls are not made; each is
//! recorded as a planned change, and its result is synthesized from what
//! AWS says now plus the changes planned before it (a planned snapshot is
//! "available", a planned replica exists, a planned promotion makes the
//! replica standalone, a planned global failover makes its target the
//! writer, planned DNS changes show in later reads), so the runbook goes on as it would.
//! Reads are real.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use drover_cloud::autoscaling::ScalingGroup;
use drover_cloud::ecs::EcsService;
use drover_cloud::rds::{DbInstance, GlobalCluster};
use drover_cloud::route53::RecordSet;
use serde::Serialize;

/// One change a dry run would make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedChange {
    /// The step that would make it.
    pub step: String,
    /// `rds`, `route53`, ...
    pub service: &'static str,
    /// The API operation.
    pub operation: &'static str,
    /// Region (`global` for Route 53).
    pub region: String,
    /// The resource it touches.
    pub resource: String,
    /// What it would do, for a human.
    pub detail: String,
}

#[derive(Default)]
struct Inner {
    changes: Vec<PlannedChange>,
    snapshots: HashSet<(String, String)>,
    instances: HashMap<(String, String), DbInstance>,
    records: HashMap<(String, String), Vec<RecordSet>>,
    /// DB instances a planned delete removed.
    deleted: HashSet<(String, String)>,
    /// EC2 instances planned launches made and not yet planned terminated.
    launched: Vec<(String, String)>,
    /// Aurora global databases as planned failovers and detaches left them.
    globals: HashMap<String, GlobalCluster>,
    /// Auto Scaling groups as planned capacity changes left them.
    groups: HashMap<(String, String), ScalingGroup>,
    /// ECS services as planned count changes left them (region, `CLUSTER/NAME`).
    services: HashMap<(String, String), EcsService>,
    /// A readiness evaluation rather than a plain dry run.
    readiness: bool,
}

/// The plan of a dry run, shared by every instance of the run.
#[derive(Clone, Default)]
pub struct Plan(Arc<Mutex<Inner>>);

impl Plan {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The plan of a readiness evaluation (a dry run whose runbook is told
    /// to check its conditions and report findings).
    pub fn for_readiness() -> Self {
        let plan = Plan::default();
        plan.inner().readiness = true;
        plan
    }

    /// Whether this is a readiness evaluation.
    pub fn is_readiness(&self) -> bool {
        self.inner().readiness
    }

    /// Records a change.
    pub fn record(&self, change: PlannedChange) {
        self.inner().changes.push(change);
    }

    /// The changes, in order.
    pub fn changes(&self) -> Vec<PlannedChange> {
        self.inner().changes.clone()
    }

    /// Notes a planned snapshot (or copy).
    pub fn plan_snapshot(&self, region: &str, id: &str) {
        self.inner().snapshots.insert((region.into(), id.into()));
    }

    /// Whether snapshot `id` in `region` exists only in the plan.
    pub fn is_planned_snapshot(&self, region: &str, id: &str) -> bool {
        self.inner().snapshots.contains(&(region.to_string(), id.to_string()))
    }

    /// Notes an instance as a planned change (a new replica, a promotion)
    /// would leave it.
    pub fn plan_instance(&self, region: &str, inst: DbInstance) {
        self.inner().instances.insert((region.into(), inst.identifier.clone()), inst);
    }

    /// The instance as planned changes left it, if any did.
    pub fn planned_instance(&self, region: &str, id: &str) -> Option<DbInstance> {
        self.inner().instances.get(&(region.to_string(), id.to_string())).cloned()
    }

    /// Notes DB instance `id` as deleted by a planned change; returns false
    /// if an earlier planned change deleted it already.
    pub fn plan_delete_instance(&self, region: &str, id: &str) -> bool {
        let mut inner = self.inner();
        inner.instances.remove(&(region.to_string(), id.to_string()));
        inner.deleted.insert((region.into(), id.into()))
    }

    /// Notes global database `g` as a planned failover or detach left it.
    pub fn plan_global(&self, g: GlobalCluster) {
        self.inner().globals.insert(g.identifier.clone(), g);
    }

    /// Global database `id` as planned changes left it, if any did.
    pub fn planned_global(&self, id: &str) -> Option<GlobalCluster> {
        self.inner().globals.get(id).cloned()
    }

    /// Notes an EC2 instance launched by a planned change.
    pub fn plan_launch(&self, region: &str, id: &str) {
        self.inner().launched.push((region.into(), id.into()));
    }

    /// Notes an EC2 instance terminated by a planned change.
    pub fn plan_terminate(&self, region: &str, id: &str) {
        self.inner().launched.retain(|(r, i)| !(r == region && i == id));
    }

    /// The EC2 instances planned launches left running in `region`.
    pub fn launched_in(&self, region: &str) -> Vec<String> {
        self.inner().launched.iter().filter(|(r, _)| r == region).map(|(_, i)| i.clone()).collect()
    }

    /// Notes an Auto Scaling group as a planned capacity change left it.
    pub fn plan_group(&self, g: ScalingGroup) {
        self.inner().groups.insert((g.region.clone(), g.name.clone()), g);
    }

    /// Group `name` in `region` as planned changes left it, if any did.
    pub fn planned_group(&self, region: &str, name: &str) -> Option<ScalingGroup> {
        self.inner().groups.get(&(region.to_string(), name.to_string())).cloned()
    }

    /// Notes an ECS service as a planned count change left it.
    pub fn plan_service(&self, s: EcsService) {
        self.inner().services.insert((s.region.clone(), EcsService::resource(&s.cluster, &s.name)), s);
    }

    /// Service `name` of `cluster` in `region` as planned changes left it, if any did.
    pub fn planned_service(&self, region: &str, cluster: &str, name: &str) -> Option<EcsService> {
        self.inner().services.get(&(region.to_string(), EcsService::resource(cluster, name))).cloned()
    }

    /// Notes the record sets `name` in `zone` as planned changes left them.
    pub fn plan_records(&self, zone: &str, name: &str, sets: Vec<RecordSet>) {
        self.inner().records.insert((drover_aws::route53::fqdn(zone), drover_aws::route53::fqdn(name)), sets);
    }

    /// The record sets as planned changes left them, if any did.
    pub fn records(&self, zone: &str, name: &str) -> Option<Vec<RecordSet>> {
        self.inner().records.get(&(drover_aws::route53::fqdn(zone), drover_aws::route53::fqdn(name))).cloned()
    }
}
