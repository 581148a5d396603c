//! Reads sent together (contract 0.1.5): a step's reads that do not depend
//! on each other go out at once, so the step waits one round trip for all
//! of them instead of one per read (a failover's preflight across two
//! regions: five reads, one wait).
//!
//! ```ignore
//! let mut reads = Reads::new();
//! let replica = reads.describe_instance(&p.dr_region, &p.replica);
//! let lag = reads.replica_lag(&p.dr_region, &p.replica);
//! let mut answers = reads.send();
//! let replica = answers.take(replica)?; // as rds::describe_instance answers
//! let lag = answers.take(lag)?;
//! ```
//!
//! Each read is checked against the run's policy as the call it names and
//! answers as that call would, its own error included: taking one answer
//! never depends on another. Like every AWS call, only inside a step.

use std::marker::PhantomData;

use super::{autoscaling, ecs, rds, route53};
use crate::Error;
use crate::host::reads as wit;

use wit::{Answer, GroupRef, InstanceRef, Read, RecordsRef, ServiceRef};

/// Most reads the agent sends in one go; [`Reads::send`] splits more into
/// several goes.
pub const MAX_READS: usize = 16;

/// Reads to send together: add each (a [`Ticket`] comes back), [`send`](Reads::send)
/// them, then [`take`](Answers::take) each answer with its ticket.
#[derive(Default)]
pub struct Reads {
    reads: Vec<Read>,
}

/// Where the answer to one read will be, and of which type.
#[must_use = "a read's answer is taken with its ticket"]
#[derive(Debug)]
pub struct Ticket<T> {
    index: usize,
    answer: PhantomData<fn() -> T>,
}

/// The answers of a [`Reads::send`].
pub struct Answers {
    answers: Vec<Option<Answer>>,
}

impl Reads {
    /// No reads yet.
    pub fn new() -> Self {
        Reads::default()
    }

    fn push<T>(&mut self, read: Read) -> Ticket<T> {
        self.reads.push(read);
        Ticket { index: self.reads.len() - 1, answer: PhantomData }
    }

    /// [`rds::describe_instance`].
    pub fn describe_instance(&mut self, region: &str, identifier: &str) -> Ticket<rds::DbInstance> {
        self.push(Read::RdsDescribeInstance(InstanceRef { region: region.into(), identifier: identifier.into() }))
    }

    /// [`rds::replica_lag`].
    pub fn replica_lag(&mut self, region: &str, identifier: &str) -> Ticket<Option<rds::LagReading>> {
        self.push(Read::RdsReplicaLag(InstanceRef { region: region.into(), identifier: identifier.into() }))
    }

    /// [`rds::latest_snapshot`].
    pub fn latest_snapshot(&mut self, region: &str, instance: &str) -> Ticket<Option<rds::SnapshotInfo>> {
        self.push(Read::RdsLatestSnapshot(InstanceRef { region: region.into(), identifier: instance.into() }))
    }

    /// [`route53::get_records_of`].
    pub fn get_records_of(&mut self, zone: &str, names: &[String]) -> Ticket<Vec<route53::RecordSet>> {
        self.push(Read::Route53GetRecordsOf(RecordsRef { zone: zone.into(), names: names.to_vec() }))
    }

    /// [`autoscaling::describe_group`].
    pub fn describe_group(&mut self, region: &str, name: &str) -> Ticket<autoscaling::ScalingGroup> {
        self.push(Read::AutoscalingDescribeGroup(GroupRef { region: region.into(), name: name.into() }))
    }

    /// [`ecs::describe_service`].
    pub fn describe_service(&mut self, region: &str, cluster: &str, name: &str) -> Ticket<ecs::EcsService> {
        self.push(Read::EcsDescribeService(ServiceRef { region: region.into(), cluster: cluster.into(), name: name.into() }))
    }

    /// Sends every read at once (in goes of [`MAX_READS`]) and returns the
    /// answers when the last has come back.
    pub fn send(self) -> Answers {
        let mut answers = Vec::with_capacity(self.reads.len());
        for go in self.reads.chunks(MAX_READS) {
            answers.extend(wit::read_all(go).into_iter().map(Some));
        }
        Answers { answers }
    }
}

/// A type a read answers with.
pub trait Answered: Sized {
    /// The answer, if it is one of this type.
    fn from_answer(answer: Answer) -> Option<Result<Self, Error>>;
}

macro_rules! answered {
    ($($case:ident => $t:ty),* $(,)?) => {$(
        impl Answered for $t {
            fn from_answer(answer: Answer) -> Option<Result<Self, Error>> {
                match answer {
                    Answer::$case(r) => Some(r.map_err(Error::from_wit)),
                    _ => None,
                }
            }
        }
    )*};
}

answered!(
    RdsDescribeInstance => rds::DbInstance,
    RdsReplicaLag => Option<rds::LagReading>,
    RdsLatestSnapshot => Option<rds::SnapshotInfo>,
    Route53GetRecordsOf => Vec<route53::RecordSet>,
    AutoscalingDescribeGroup => autoscaling::ScalingGroup,
    EcsDescribeService => ecs::EcsService,
);

impl Answers {
    /// The answer to the read of `ticket`: what its call would have returned.
    pub fn take<T: Answered>(&mut self, ticket: Ticket<T>) -> Result<T, Error> {
        let missing = || Error::new("bad-answer", format!("the agent gave no answer of the right kind to read {}", ticket.index + 1));
        let answer = self.answers.get_mut(ticket.index).and_then(Option::take).ok_or_else(missing)?;
        T::from_answer(answer).ok_or_else(missing)?
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::testing::{Scenario, TestRun};
    use crate::{Ctx, Describe, Runbook};

    /// 20 reads in one step: more than one go of the agent's.
    struct Many;

    impl Runbook for Many {
        type Params = serde_json::Value;
        type Output = Vec<String>;

        fn describe() -> Describe {
            Describe::new("many-reads", "0.1.0").description("20 reads sent together, one of them of a missing instance")
        }

        fn run(ctx: &Ctx, _: serde_json::Value) -> Result<Vec<String>, Error> {
            ctx.step("read", || {
                let mut reads = Reads::new();
                let tickets: Vec<Ticket<rds::DbInstance>> = (0..20)
                    .map(|i| match i {
                        7 => reads.describe_instance("us-west-2", "no-such-db"),
                        i if i % 2 == 0 => reads.describe_instance("us-east-1", "orders-db"),
                        _ => reads.describe_instance("us-west-2", "orders-db-replica"),
                    })
                    .collect();
                let lag = reads.replica_lag("us-west-2", "orders-db-replica");
                let mut answers = reads.send();
                let mut out: Vec<String> =
                    tickets.into_iter().map(|t| answers.take(t).map(|i| i.identifier).unwrap_or_else(|e| e.code().to_string())).collect();
                out.push(format!("lag {}", answers.take(lag)?.map(|l| l.seconds).unwrap_or(-1.0)));
                Ok(out)
            })
        }
    }

    #[test]
    fn more_reads_than_one_go_answer_in_order_each_with_its_own_error() {
        let scenario = Scenario::from_toml(
            r#"
[[rds.instance]]
region = "us-east-1"
identifier = "orders-db"

[[rds.instance]]
region = "us-west-2"
identifier = "orders-db-replica"
replica_of = "us-east-1/orders-db"
lag_seconds = 2.0
"#,
        )
        .unwrap();
        let r = TestRun::new(&scenario).run::<Many>();
        assert!(r.succeeded(), "{r}");
        let out: Vec<String> = serde_json::from_str(r.result.as_ref().unwrap()).unwrap();
        assert_eq!(out.len(), 21, "{out:?}");
        for (i, got) in out.iter().take(20).enumerate() {
            let want = match i {
                7 => "DBInstanceNotFound",
                i if i % 2 == 0 => "orders-db",
                _ => "orders-db-replica",
            };
            assert_eq!(got, want, "read {i}: {out:?}");
        }
        assert_eq!(out[20], "lag 2");
        assert_eq!(r.calls().iter().filter(|c| c.call == "rds.describe-instance").count(), 20);
    }
}
