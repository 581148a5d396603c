//! The simulated cloud: an in-memory model of the RDS, EC2, Route 53 and
//! CloudWatch resources the capabilities touch, with the behaviour a runbook
//! relies on (idempotent creation that adopts an earlier attempt's resource,
//! instances and snapshots that take time to become available, replicas that
//! lag, record sets and their weights) and scripted failures.
//!
//! Every call is recorded ([`Cloud::calls`]): tests assert what was called,
//! what changed ([`Cloud::changes`]) and the final state.

mod autoscaling;
mod cloudwatch;
mod ec2;
mod ecs;
mod rds;
mod route53;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::scenario::{Fault, FaultEffect, Scenario};
use drover_cloud::CloudError;

pub use ec2::{Ec2Image, Ec2Instance, Ec2Snapshot};
pub use rds::{Db, DbSnap};

/// The account every simulated ARN is in.
pub(crate) const ACCOUNT: &str = "123456789012";

/// One call a runbook made to the simulated cloud.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Call {
    /// `service.operation`, with the operation's WIT name:
    /// `rds.promote-read-replica`, `route53.set-weights`.
    pub call: String,
    /// The region (Route 53 is global: `global`).
    pub region: String,
    /// The resource named by the call.
    pub resource: String,
    /// The step the call was made in, and which attempt of it.
    pub step: Option<String>,
    /// The attempt number of that step.
    pub attempt: u32,
    /// Whether the call changed anything (a creation an earlier attempt had
    /// already made is adopted: it is a call, not a change).
    pub changed: bool,
    /// The error code, when the call failed.
    pub error: Option<String>,
    /// Simulated time of the call, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

impl Call {
    /// What came of it, in a word: `CHANGED`, `read` (or a no-op), or
    /// `FAILED <code>`.
    pub fn outcome(&self) -> String {
        match (&self.error, self.changed) {
            (Some(code), _) => format!("FAILED {code}"),
            (None, true) => "CHANGED".into(),
            (None, false) => "read".into(),
        }
    }
}

/// A fault of the scenario and how often it has fired.
#[derive(Debug, Clone)]
struct ArmedFault {
    fault: Fault,
    seen: u32,
    fired: u32,
}

/// The simulated cloud. Build it from a [`Scenario`]; a test run (`drover_sdk::testing::TestRun`)
/// drives a runbook against it.
#[derive(Debug, Clone, Serialize)]
pub struct Cloud {
    /// Simulated time, milliseconds since the Unix epoch.
    pub(crate) now_ms: i64,
    /// How long a creation, a promotion or a copy takes to become available.
    #[serde(skip)]
    settle_ms: i64,
    pub(crate) rds: rds::Rds,
    pub(crate) ec2: ec2::Ec2,
    pub(crate) route53: route53::Route53,
    pub(crate) cloudwatch: cloudwatch::CloudWatch,
    pub(crate) autoscaling: autoscaling::Autoscaling,
    pub(crate) ecs: ecs::Ecs,
    /// Regions that do not answer (every call there fails, retryable).
    down: BTreeSet<String>,
    #[serde(skip)]
    faults: Vec<ArmedFault>,
    #[serde(skip)]
    calls: Vec<Call>,
    #[serde(skip)]
    next_id: u64,
    /// Who is calling: the step and attempt, set by the test run.
    #[serde(skip)]
    pub(crate) caller: Option<(String, u32)>,
    /// Set while a request is resent blind by the SDK: a create does not
    /// look for what an earlier request made (the service does not either).
    #[serde(skip)]
    pub(crate) raw: bool,
    /// Answers the simulated capabilities gave that the cloud's own state
    /// contradicts (see [`Cloud::untrue_answers`]).
    #[serde(skip)]
    untrue: Vec<String>,
    /// The RDS resource a call in progress may change, as it was before
    /// (what a stale read answers once the call changed it).
    #[serde(skip)]
    before_call: Option<rds::Before>,
}

/// What a matching fault makes of a call.
enum Entry {
    /// Nothing: the call goes through.
    Through,
    /// The request takes effect; the caller gets this error.
    LostAnswer(CloudError),
    /// The request takes effect twice (the SDK resent it); the caller gets
    /// the second answer.
    Resend,
    /// A read answers from before the resource's last change.
    Stale,
}

/// Where a call is going, checked against the scenario's faults and down
/// regions before the call does anything.
pub(crate) struct Target<'a> {
    pub service: &'static str,
    /// The WIT operation name (`promote-read-replica`).
    pub operation: &'static str,
    /// The AWS API name, for error messages (`PromoteReadReplica`).
    pub api: &'static str,
    pub region: &'a str,
    pub resource: &'a str,
}

impl Cloud {
    /// The cloud a scenario describes, before any call.
    pub fn new(scenario: &Scenario) -> Result<Cloud, String> {
        let now_ms = scenario.settings.start_unix.saturating_mul(1000);
        let mut cloud = Cloud {
            now_ms,
            settle_ms: i64::from(scenario.settings.settle_seconds) * 1000,
            rds: rds::Rds::default(),
            ec2: ec2::Ec2::default(),
            route53: route53::Route53::default(),
            cloudwatch: cloudwatch::CloudWatch::default(),
            autoscaling: autoscaling::Autoscaling::default(),
            ecs: ecs::Ecs::default(),
            down: scenario.down_regions.iter().cloned().collect(),
            faults: scenario.faults.iter().cloned().map(|fault| ArmedFault { fault, seen: 0, fired: 0 }).collect(),
            calls: Vec::new(),
            next_id: 1,
            caller: None,
            raw: false,
            untrue: Vec::new(),
            before_call: None,
        };
        cloud.rds.load(&scenario.rds, now_ms)?;
        cloud.ec2.load(&scenario.ec2, now_ms)?;
        cloud.route53.load(&scenario.route53, now_ms)?;
        cloud.cloudwatch.load(&scenario.cloudwatch, now_ms)?;
        cloud.autoscaling.load(&scenario.autoscaling, now_ms)?;
        cloud.ecs.load(&scenario.ecs, now_ms)?;
        Ok(cloud)
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// The calls named `call` (`rds.promote-read-replica`) that changed
    /// something: how many times the side effect really happened.
    pub fn changes(&self, call: &str) -> usize {
        self.calls.iter().filter(|c| c.call == call && c.changed).count()
    }

    /// The calls named `call`, whatever their outcome.
    pub fn count(&self, call: &str) -> usize {
        self.calls.iter().filter(|c| c.call == call).count()
    }

    /// Simulated time now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Moves simulated time forward (waits, backoffs and sleeps do).
    pub fn advance_ms(&mut self, ms: i64) {
        self.now_ms = self.now_ms.saturating_add(ms.max(0));
    }

    pub(crate) fn fresh_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}-{:017x}", self.next_id);
        self.next_id += 1;
        id
    }

    pub(crate) fn ready_at(&self) -> i64 {
        self.now_ms + self.settle_ms
    }

    /// Checks a call against the down regions and the faults (each fault
    /// counts the calls it matches). `Err` is what the runbook gets.
    fn enter(&mut self, t: &Target) -> Result<Entry, CloudError> {
        if self.down.contains(t.region) {
            return Err(aws_error(t, "unreachable", "could not connect to the endpoint (the region is down in this scenario)", true));
        }
        if t.service == "rds"
            && let Some(db) = self.rds.instances.get_mut(t.region).and_then(|m| m.get_mut(t.resource))
        {
            db.named(self.now_ms);
        }
        let call = format!("{}.{}", t.service, t.operation);
        for armed in &mut self.faults {
            let f = &armed.fault;
            if !glob(&f.call, &call) || f.region.as_deref().is_some_and(|r| r != t.region) || f.resource.as_deref().is_some_and(|r| !glob(r, t.resource)) {
                continue;
            }
            armed.seen += 1;
            if armed.seen <= f.after || (f.times != 0 && armed.fired >= f.times) {
                continue;
            }
            armed.fired += 1;
            let message = f.message.clone().unwrap_or_else(|| {
                format!("injected by the scenario ({} of {})", armed.fired, if f.times == 0 { "every call".into() } else { f.times.to_string() })
            });
            let retryable = f.retryable.unwrap_or_else(|| retryable_code(&f.error));
            let error = aws_error(t, &f.error, &message, retryable);
            return match f.effect {
                FaultEffect::Fail => Err(error),
                FaultEffect::LostAnswer => Ok(Entry::LostAnswer(error)),
                // With the SDK's retries off, the lost answer is what the caller gets.
                FaultEffect::Resend if drover_cloud::resend::sent_once(&call) => Ok(Entry::LostAnswer(error)),
                FaultEffect::Resend => Ok(Entry::Resend),
                FaultEffect::Stale => Ok(Entry::Stale),
            };
        }
        Ok(Entry::Through)
    }

    /// Records that a simulated capability answered something the cloud's
    /// state contradicts.
    pub(crate) fn untrue(&mut self, what: String) {
        self.untrue.push(what);
    }

    /// Answers the simulated capabilities gave that the cloud's own state
    /// contradicts (a promotion said to be under way that nobody asked for):
    /// empty unless a rule the capabilities share with the agent is broken.
    pub fn untrue_answers(&self) -> &[String] {
        &self.untrue
    }

    /// Records a call, whatever came of it.
    fn record(&mut self, t: &Target, changed: bool, error: Option<&CloudError>) {
        if changed && let Some(before) = self.before_call.take() {
            self.rds.remember(t.region, t.resource, before);
        }
        self.calls.push(Call {
            call: format!("{}.{}", t.service, t.operation),
            region: t.region.to_string(),
            resource: t.resource.to_string(),
            step: self.caller.as_ref().map(|c| c.0.clone()),
            attempt: self.caller.as_ref().map_or(0, |c| c.1),
            changed,
            error: error.map(|e| e.code.clone()),
            at_ms: self.now_ms,
        });
    }

    /// Runs a call: faults first, then `body`, which says whether it changed
    /// anything; the call is recorded either way (a resent request twice).
    pub(crate) fn call<T>(&mut self, t: Target, mut body: impl FnMut(&mut Cloud, &Target) -> Result<(T, bool), CloudError>) -> Result<T, CloudError> {
        let entry = match self.enter(&t) {
            Ok(entry) => entry,
            Err(e) => {
                self.record(&t, false, Some(&e));
                return Err(e);
            }
        };
        // A change to an RDS resource: what it was, for stale reads after.
        self.before_call = (t.service == "rds" && !t.api.starts_with("Describe")).then(|| self.rds.before(t.region, t.resource, self.now_ms));
        if let Entry::LostAnswer(e) = entry {
            let changed = matches!(body(self, &t), Ok((_, true)));
            self.record(&t, changed, Some(&e));
            return Err(e);
        }
        if matches!(entry, Entry::Resend) {
            let changed = matches!(body(self, &t), Ok((_, true)));
            let lost = aws_error(&t, "timeout", "the answer was lost; the SDK sent the request again", true);
            self.record(&t, changed, Some(&lost));
            self.raw = true;
            let again = body(self, &t);
            self.raw = false;
            if again.is_err() {
                // The resend was refused (the first request made it): the
                // capability looks the resource up and adopts it, as
                // `drover-aws`'s create-or-adopt does after any failed send.
                self.record(&t, false, again.as_ref().err());
                let adopted = body(self, &t);
                return self.finish(&t, adopted);
            }
            return self.finish(&t, again);
        }
        // A stale read answers from before the resource's last change.
        self.rds.stale = matches!(entry, Entry::Stale);
        let out = body(self, &t);
        self.rds.stale = false;
        self.finish(&t, out)
    }

    fn finish<T>(&mut self, t: &Target, out: Result<(T, bool), CloudError>) -> Result<T, CloudError> {
        match out {
            Ok((v, changed)) => {
                self.record(t, changed, None);
                Ok(v)
            }
            Err(e) => {
                self.record(t, false, Some(&e));
                Err(e)
            }
        }
    }

    /// A wait: the resource becomes ready at `ready_at`; simulated time moves
    /// to it if that is within `timeout_seconds`, or by the whole timeout.
    pub(crate) fn wait_until(&mut self, t: &Target, ready_at: i64, timeout_seconds: u32, what: &str) -> Result<(), CloudError> {
        let deadline = self.now_ms + i64::from(timeout_seconds) * 1000;
        if ready_at <= deadline {
            self.now_ms = self.now_ms.max(ready_at);
            Ok(())
        } else {
            self.now_ms = deadline;
            Err(aws_error(t, "timeout", &format!("{what} is still not available after {timeout_seconds} s"), false))
        }
    }

    /// Says which step and attempt the next calls come from (the agent's
    /// `drover test` does; a test run (`drover_sdk::testing::TestRun`) sets it itself).
    pub fn set_caller(&mut self, caller: Option<(String, u32)>) {
        self.caller = caller;
    }

    /// The state as JSON (what `drover test` prints).
    pub fn state(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// An error as the agent hands it to a runbook: what failed, on what, where.
pub(crate) fn aws_error(t: &Target, code: &str, message: &str, retryable: bool) -> CloudError {
    CloudError {
        code: code.to_string(),
        message: format!("{} {} on {} in {} failed: {code}: {message} (simulated)", t.service, t.api, t.resource, t.region),
        retryable,
        resource: Some(t.resource.to_string()),
    }
}

/// Error codes AWS uses for throttling and transient failures.
pub(crate) fn retryable_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "TooManyRequestsException"
            | "PriorRequestNotComplete"
            | "replica-busy"
            | "InternalFailure"
            | "InternalError"
            | "ServiceUnavailable"
            | "unreachable"
            | "timeout"
    )
}

/// Milliseconds since the Unix epoch as (seconds, nanoseconds).
pub(crate) fn ms_timestamp(ms: i64) -> (i64, u32) {
    (ms.div_euclid(1000), (ms.rem_euclid(1000) * 1_000_000) as u32)
}

/// Milliseconds since the Unix epoch as a system time.
pub(crate) fn ms_time(ms: i64) -> std::time::SystemTime {
    let since_epoch = std::time::Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 { std::time::UNIX_EPOCH + since_epoch } else { std::time::UNIX_EPOCH - since_epoch }
}

/// `*` matches any run of characters; everything else literally.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Resources by region and name.
pub(crate) type Regional<T> = BTreeMap<String, BTreeMap<String, T>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("rds.*", "rds.promote-read-replica"));
        assert!(glob("*", "anything"));
        assert!(glob("orders-*-final", "orders-db-final"));
        assert!(!glob("orders-*-final", "orders-db"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
    }
}
