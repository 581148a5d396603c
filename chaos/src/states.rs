//! Resource states the emulators never show. moto's RDS instances are
//! `available` the moment they exist and stay so; AWS's go through
//! `backing-up`, `modifying`, `rebooting` and more, and meanwhile RDS refuses
//! a promotion, a snapshot or a modification with `InvalidDBInstanceState`.
//! A test or a game-day holds an instance in such a state for a while
//! ([`States::hold`]); the proxy then shows it in that state in every
//! `DescribeDBInstances` answer and refuses what RDS would refuse, worded as
//! RDS words it. Every refusal is counted. A fault rule that answers at
//! the service's front door (a throttle, a 5xx, a reset, a hang) comes
//! first, as AWS throttles before it looks at the resource.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::aws_request::AwsRequest;

/// RDS operations on an instance that RDS refuses while the instance is not
/// `available`.
pub const REFUSED_WHILE_BUSY: &[&str] =
    &["PromoteReadReplica", "CreateDBSnapshot", "ModifyDBInstance", "RebootDBInstance", "CreateDBInstanceReadReplica", "StopDBInstance", "StartDBInstance"];

#[derive(Debug, Clone)]
struct Held {
    instance: String,
    status: String,
    until: Instant,
}

/// What the proxy does about an instance's state for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateAction {
    /// Nothing: the request is the emulator's business.
    None,
    /// Refuse it: the instance is in this status.
    Refuse {
        /// The instance.
        instance: String,
        /// Its status.
        status: String,
    },
    /// Forward it, then show the instance in this status in the answer.
    Show {
        /// The status.
        status: String,
    },
}

/// The instances held in a state, and how often a request was refused for it.
#[derive(Debug, Default)]
pub struct States {
    held: Mutex<Vec<Held>>,
    refused: Mutex<u64>,
}

impl States {
    /// Holds RDS instance `instance` in `status` for `duration` from now.
    pub fn hold(&self, instance: &str, status: &str, duration: Duration) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|h| h.instance != instance);
        held.push(Held { instance: instance.into(), status: status.into(), until: Instant::now() + duration });
    }

    /// Requests refused because of a held state so far.
    pub fn refused(&self) -> u64 {
        *self.refused.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn status_of(&self, instance: &str) -> Option<String> {
        let now = Instant::now();
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.iter().find(|h| h.instance == instance && now < h.until).map(|h| h.status.clone())
    }

    /// What to do about request `req` with form body `body`.
    pub fn action(&self, req: &AwsRequest, body: &[u8]) -> StateAction {
        if req.service != "rds" {
            return StateAction::None;
        }
        let Some(instance) = form_param(body, "DBInstanceIdentifier") else { return StateAction::None };
        let Some(status) = self.status_of(&instance) else { return StateAction::None };
        if REFUSED_WHILE_BUSY.contains(&req.operation.as_str()) {
            *self.refused.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            return StateAction::Refuse { instance, status };
        }
        if req.operation == "DescribeDBInstances" {
            return StateAction::Show { status };
        }
        StateAction::None
    }
}

/// The error RDS answers a request it refuses for the instance's state.
pub fn refusal(instance: &str, status: &str) -> (&'static str, String) {
    ("InvalidDBInstanceState", format!("Instance {instance} is not in available state (it is {status})."))
}

/// `body` (a `DescribeDBInstances` answer for one instance) with the
/// instance's status shown as `status`.
pub fn show_status(body: &[u8], status: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    text.replace("<DBInstanceStatus>available</DBInstanceStatus>", &format!("<DBInstanceStatus>{status}</DBInstanceStatus>")).into_bytes()
}

/// The value of form parameter `key` in a query-protocol body, decoded.
fn form_param(body: &[u8], key: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws_request::Protocol;

    fn req(op: &str) -> AwsRequest {
        AwsRequest { service: "rds".into(), region: "us-west-2".into(), operation: op.into(), protocol: Protocol::Query }
    }

    #[test]
    fn a_held_instance_is_shown_busy_and_refuses_what_rds_refuses() {
        let s = States::default();
        let body = b"Action=PromoteReadReplica&Version=2014-10-31&DBInstanceIdentifier=orders-db-replica";
        assert_eq!(s.action(&req("PromoteReadReplica"), body), StateAction::None);
        s.hold("orders-db-replica", "backing-up", Duration::from_secs(60));
        assert_eq!(s.action(&req("PromoteReadReplica"), body), StateAction::Refuse { instance: "orders-db-replica".into(), status: "backing-up".into() });
        let describe = b"Action=DescribeDBInstances&DBInstanceIdentifier=orders-db-replica";
        assert_eq!(s.action(&req("DescribeDBInstances"), describe), StateAction::Show { status: "backing-up".into() });
        assert_eq!(s.action(&req("AddTagsToResource"), b"Action=AddTagsToResource&ResourceName=x"), StateAction::None);
        assert_eq!(s.refused(), 1);
        let shown = show_status(b"<DBInstance><DBInstanceStatus>available</DBInstanceStatus></DBInstance>", "backing-up");
        assert_eq!(String::from_utf8(shown).unwrap(), "<DBInstance><DBInstanceStatus>backing-up</DBInstanceStatus></DBInstance>");
        s.hold("orders-db-replica", "backing-up", Duration::ZERO);
        assert_eq!(s.action(&req("PromoteReadReplica"), body), StateAction::None, "the hold ran out");
        assert_eq!(form_param(b"A=1&DBInstanceIdentifier=a%2Db+c", "DBInstanceIdentifier").as_deref(), Some("a-b c"));
    }
}
