//! The conversions between the cloud model and a crate's bindings of the
//! contract (WIT). The agent (wasmtime's bindings) and the SDK's native test
//! harness (wit-bindgen's) each generate their own Rust types from the same
//! WIT records; this macro writes the conversions once for both.

/// Writes, in the calling crate, a module `$module` with a `ToWit` trait
/// (model value → contract value, for every record a capability returns,
/// and `Vec`/`Option` of them) and the contract → model conversions of the
/// records a capability takes (`failover_mode`, `failover_role`,
/// `weighted_targets`). Give the paths of the bindings' `types`, `rds`,
/// `ec2`, `route53`, `cloudwatch`, `autoscaling` and `ecs` interface modules.
#[macro_export]
macro_rules! contract_conversions {
    ($module:ident, types = $types:path, rds = $rds:path, ec2 = $ec2:path, route53 = $r53:path, cloudwatch = $cw:path, autoscaling = $asg:path, ecs = $ecs:path) => {
        /// Cloud-model values (`drover-cloud`) as the contract has them, and back.
        pub(crate) mod $module {
            #![allow(dead_code)]
            use $asg as autoscaling;
            use $cw as cloudwatch;
            use $ec2 as ec2;
            use $ecs as ecs;
            use $r53 as route53;
            use $rds as rds;
            use $types as types;

            /// A model value as the contract has it.
            pub trait ToWit {
                /// The contract's type.
                type Wit;
                /// Converts.
                fn to_wit(self) -> Self::Wit;
            }

            impl<T: ToWit> ToWit for Vec<T> {
                type Wit = Vec<T::Wit>;
                fn to_wit(self) -> Self::Wit {
                    self.into_iter().map(ToWit::to_wit).collect()
                }
            }

            impl<T: ToWit> ToWit for Option<T> {
                type Wit = Option<T::Wit>;
                fn to_wit(self) -> Self::Wit {
                    self.map(ToWit::to_wit)
                }
            }

            impl ToWit for () {
                type Wit = ();
                fn to_wit(self) {}
            }

            impl ToWit for bool {
                type Wit = bool;
                fn to_wit(self) -> bool {
                    self
                }
            }

            impl ToWit for String {
                type Wit = String;
                fn to_wit(self) -> String {
                    self
                }
            }

            /// (seconds, nanoseconds) since the Unix epoch.
            fn timestamp((seconds, nanoseconds): (i64, u32)) -> types::Timestamp {
                types::Timestamp { seconds, nanoseconds }
            }

            impl ToWit for $crate::CloudError {
                type Wit = types::Error;
                fn to_wit(self) -> types::Error {
                    types::Error { code: self.code, message: self.message, retryable: self.retryable, resource: self.resource }
                }
            }

            impl ToWit for $crate::rds::DbInstance {
                type Wit = rds::DbInstance;
                fn to_wit(self) -> rds::DbInstance {
                    rds::DbInstance {
                        identifier: self.identifier,
                        arn: self.arn,
                        region: self.region,
                        status: self.status,
                        engine: self.engine,
                        engine_version: self.engine_version,
                        endpoint: self.endpoint,
                        port: self.port,
                        replica_source: self.replica_source,
                        replicas: self.replicas,
                    }
                }
            }

            impl ToWit for $crate::autoscaling::ScalingGroup {
                type Wit = autoscaling::ScalingGroup;
                fn to_wit(self) -> autoscaling::ScalingGroup {
                    let in_service = self.in_service();
                    autoscaling::ScalingGroup {
                        name: self.name,
                        arn: self.arn,
                        region: self.region,
                        min_size: self.min_size,
                        max_size: self.max_size,
                        desired_capacity: self.desired_capacity,
                        instances: self
                            .instances
                            .into_iter()
                            .map(|i| autoscaling::GroupInstance {
                                id: i.id,
                                lifecycle_state: i.lifecycle_state,
                                health_status: i.health_status,
                                availability_zone: i.availability_zone,
                            })
                            .collect(),
                        in_service,
                    }
                }
            }

            impl ToWit for $crate::ecs::EcsService {
                type Wit = ecs::EcsService;
                fn to_wit(self) -> ecs::EcsService {
                    ecs::EcsService {
                        name: self.name,
                        arn: self.arn,
                        cluster: self.cluster,
                        region: self.region,
                        status: self.status,
                        desired_count: self.desired_count,
                        running_count: self.running_count,
                        pending_count: self.pending_count,
                        deployments: self.deployments,
                        rollout_state: self.rollout_state,
                    }
                }
            }

            /// The contract's capacity in the model.
            pub fn capacity(c: autoscaling::Capacity) -> $crate::autoscaling::Capacity {
                $crate::autoscaling::Capacity { min_size: c.min_size, max_size: c.max_size, desired: c.desired }
            }

            impl ToWit for $crate::rds::DbSnapshot {
                type Wit = rds::DbSnapshot;
                fn to_wit(self) -> rds::DbSnapshot {
                    rds::DbSnapshot { identifier: self.identifier, arn: self.arn, region: self.region, status: self.status, instance: self.instance }
                }
            }

            impl ToWit for $crate::rds::SnapshotInfo {
                type Wit = rds::SnapshotInfo;
                fn to_wit(self) -> rds::SnapshotInfo {
                    rds::SnapshotInfo { snapshot: self.snapshot.to_wit(), taken: timestamp(self.taken) }
                }
            }

            impl ToWit for $crate::rds::LagReading {
                type Wit = rds::LagReading;
                fn to_wit(self) -> rds::LagReading {
                    rds::LagReading { seconds: self.seconds, age_seconds: self.age_seconds }
                }
            }

            impl ToWit for $crate::rds::DbCluster {
                type Wit = rds::DbCluster;
                fn to_wit(self) -> rds::DbCluster {
                    rds::DbCluster {
                        identifier: self.identifier,
                        arn: self.arn,
                        region: self.region,
                        status: self.status,
                        engine: self.engine,
                        endpoint: self.endpoint,
                        reader_endpoint: self.reader_endpoint,
                        members: self.members,
                        global_cluster: self.global_cluster,
                    }
                }
            }

            impl ToWit for $crate::rds::GlobalCluster {
                type Wit = rds::GlobalCluster;
                fn to_wit(self) -> rds::GlobalCluster {
                    rds::GlobalCluster {
                        identifier: self.identifier,
                        arn: self.arn,
                        status: self.status,
                        engine: self.engine,
                        members: self
                            .members
                            .into_iter()
                            .map(|m| rds::GlobalMember { cluster_arn: m.cluster_arn, region: m.region, writer: m.writer })
                            .collect(),
                    }
                }
            }

            impl ToWit for $crate::ec2::Instance {
                type Wit = ec2::Instance;
                fn to_wit(self) -> ec2::Instance {
                    ec2::Instance { id: self.id, region: self.region, state: self.state, image_id: self.image_id, volumes: self.volumes }
                }
            }

            impl ToWit for $crate::ec2::Snapshot {
                type Wit = ec2::Snapshot;
                fn to_wit(self) -> ec2::Snapshot {
                    ec2::Snapshot { id: self.id, region: self.region, state: self.state, volume_id: self.volume_id }
                }
            }

            impl ToWit for $crate::ec2::Image {
                type Wit = ec2::Image;
                fn to_wit(self) -> ec2::Image {
                    ec2::Image { id: self.id, region: self.region, name: self.name, state: self.state, created: self.created }
                }
            }

            impl ToWit for $crate::route53::RecordSet {
                type Wit = route53::RecordSet;
                fn to_wit(self) -> route53::RecordSet {
                    route53::RecordSet {
                        name: self.name,
                        record_type: self.record_type,
                        ttl: self.ttl,
                        set_identifier: self.set_identifier,
                        weight: self.weight,
                        values: self.values,
                    }
                }
            }

            impl ToWit for $crate::route53::HealthCheck {
                type Wit = route53::HealthCheck;
                fn to_wit(self) -> route53::HealthCheck {
                    route53::HealthCheck {
                        id: self.id,
                        kind: self.kind,
                        target: self.target,
                        port: self.port,
                        path: self.path,
                        disabled: self.disabled,
                        inverted: self.inverted,
                        status: self.status,
                        reports: self.reports,
                    }
                }
            }

            impl ToWit for $crate::cloudwatch::Alarm {
                type Wit = cloudwatch::Alarm;
                fn to_wit(self) -> cloudwatch::Alarm {
                    let state = match self.state {
                        $crate::cloudwatch::AlarmState::Ok => cloudwatch::AlarmState::Ok,
                        $crate::cloudwatch::AlarmState::Alarm => cloudwatch::AlarmState::Alarm,
                        $crate::cloudwatch::AlarmState::InsufficientData => cloudwatch::AlarmState::InsufficientData,
                    };
                    let since = self
                        .since
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|d| types::Timestamp { seconds: d.as_secs() as i64, nanoseconds: d.subsec_nanos() });
                    cloudwatch::Alarm { name: self.name, arn: self.arn, state, reason: self.reason, since }
                }
            }

            /// The contract's failover mode in the model.
            pub fn failover_mode(mode: rds::GlobalFailoverMode) -> $crate::rds::GlobalFailoverMode {
                match mode {
                    rds::GlobalFailoverMode::Switchover => $crate::rds::GlobalFailoverMode::Switchover,
                    rds::GlobalFailoverMode::Failover => $crate::rds::GlobalFailoverMode::Failover,
                }
            }

            /// The contract's failover role in the model.
            pub fn failover_role(role: route53::FailoverRole) -> $crate::route53::FailoverRole {
                match role {
                    route53::FailoverRole::Primary => $crate::route53::FailoverRole::Primary,
                    route53::FailoverRole::Secondary => $crate::route53::FailoverRole::Secondary,
                }
            }

            /// The contract's weighted targets in the model.
            pub fn weighted_targets(targets: Vec<route53::WeightedTarget>) -> Vec<$crate::route53::WeightedTarget> {
                targets.into_iter().map(|t| $crate::route53::WeightedTarget { set_identifier: t.set_identifier, weight: t.weight, value: t.value }).collect()
            }

            /// The contract's batch of record changes in the model.
            pub fn record_changes(changes: Vec<route53::RecordChange>) -> Vec<$crate::route53::RecordChange> {
                changes
                    .into_iter()
                    .map(|c| match c {
                        route53::RecordChange::PointCname(r) => $crate::route53::RecordChange::PointCname { name: r.name, target: r.target },
                        route53::RecordChange::SetWeights(w) => {
                            $crate::route53::RecordChange::SetWeights { name: w.name, targets: weighted_targets(w.targets) }
                        }
                    })
                    .collect()
            }
        }
    };
}
