//! Fault rules: what to do to which AWS requests, and how often. The proxy
//! asks [`Faults::decide`] about every request; a game-day switches rules on
//! and off while a run is in flight. Every injected fault is counted per
//! kind, and every request passed through per operation and per answer (the
//! emulator accepted it, 2xx, or refused it), so a game-day can report what
//! it injected and prove invariants such as "the emulator accepted exactly
//! one `PromoteReadReplica`".

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::aws_request::AwsRequest;
use crate::error_shape::Injected;

/// What a rule does to a request it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Delay the request by `ms`, plus up to `jitter_ms` more.
    Latency,
    /// Answer with the service's throttling error.
    Throttle,
    /// Answer with the service's 5xx error.
    ServerError,
    /// Close the connection without an answer.
    Reset,
    /// Answer nothing for `ms`, then close the connection (the client's
    /// timeouts decide what it sees).
    Hang,
    /// The region is gone: every matching call's connection is closed
    /// unanswered (a region outage as the client sees it: unreachable).
    Blackhole,
    /// The request took effect, the answer was lost: the request is passed
    /// to the emulator (and counted as it answers), and the client gets the
    /// service's 5xx error instead of the answer.
    LoseAnswer,
    /// The request is passed to the emulator and every `find` in its answer
    /// is replaced by `replace` (a resource shown in a state the emulator
    /// cannot produce: a `failed` image, a global database `failing-over`).
    Rewrite,
}

impl Fault {
    /// The kind's name, as counted.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Latency => "latency",
            Fault::Throttle => "throttle",
            Fault::ServerError => "server-error",
            Fault::Reset => "reset",
            Fault::Hang => "hang",
            Fault::Blackhole => "blackhole",
            Fault::LoseAnswer => "lose-answer",
            Fault::Rewrite => "rewrite",
        }
    }
}

/// A fault and the requests it applies to, as a scenario file writes it:
/// `{ service = "rds", region = "us-east-1", operation = "Describe*", kind = "throttle", rate = 0.3 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The service (`rds`, `ec2`, `route53`, `cloudwatch`, `dynamodb`); any if absent.
    #[serde(default)]
    pub service: Option<String>,
    /// The region; any if absent.
    #[serde(default)]
    pub region: Option<String>,
    /// The operation, exactly or with `*` as a wildcard (`Describe*`); any if absent.
    #[serde(default)]
    pub operation: Option<String>,
    /// What to do.
    pub kind: Fault,
    /// For `latency`: the added delay; for `hang`: how long to hold the request.
    #[serde(default)]
    pub ms: u64,
    /// For `latency`: up to this many more milliseconds, uniformly.
    #[serde(default)]
    pub jitter_ms: u64,
    /// The share of matching requests it applies to, 0 to 1.
    #[serde(default = "always")]
    pub rate: f64,
    /// Let this many matching requests through before the fault starts: a
    /// region that dies right after the run's first call to it
    /// (`pass_first = 1`), exactly, whatever the timing.
    #[serde(default)]
    pub pass_first: u64,
    /// For `rewrite`: the text to replace in the answer.
    #[serde(default)]
    pub find: Option<String>,
    /// For `rewrite`: what replaces it.
    #[serde(default)]
    pub replace: Option<String>,
}

fn always() -> f64 {
    1.0
}

impl Rule {
    /// Whether the rule applies to `req` (before its rate is rolled).
    pub fn matches(&self, req: &AwsRequest) -> bool {
        self.service.as_ref().is_none_or(|s| *s == req.service)
            && self.region.as_ref().is_none_or(|r| *r == req.region)
            && self.operation.as_ref().is_none_or(|o| wildcard(o, &req.operation))
    }

    /// Checks the values a scenario file may get wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.rate) {
            return Err(format!("rate {} is not between 0 and 1", self.rate));
        }
        match self.kind {
            Fault::Rewrite if self.find.as_deref().is_none_or(str::is_empty) || self.replace.is_none() => {
                Err("a rewrite fault needs find (not empty) and replace".into())
            }
            _ if self.kind != Fault::Rewrite && (self.find.is_some() || self.replace.is_some()) => {
                Err(format!("find and replace mean nothing to a {} fault", self.kind.kind()))
            }
            Fault::Latency | Fault::Hang if self.ms == 0 => Err(format!("a {} fault needs ms > 0", self.kind.kind())),
            Fault::Latency | Fault::Hang => Ok(()),
            _ if self.ms != 0 || self.jitter_ms != 0 => Err(format!("ms and jitter_ms mean nothing to a {} fault", self.kind.kind())),
            _ => Ok(()),
        }
    }
}

/// `pattern` with `*` matching any run of characters.
fn wildcard(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else { return false };
            (0..=tail.len()).filter(|i| tail.is_char_boundary(*i)).any(|i| wildcard(rest, &tail[i..]))
        }
    }
}

/// What the proxy does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Pass it to the emulator.
    Forward,
    /// Answer with an error in the service's shape.
    Answer(Injected),
    /// Close the connection unanswered.
    Reset,
    /// Hold it, then close the connection.
    Hang(Duration),
    /// Pass it to the emulator, then answer with an error in the service's
    /// shape instead of the emulator's answer.
    LoseAnswer(Injected),
    /// Pass it to the emulator and replace `.0` by `.1` in its answer.
    Rewrite(String, String),
}

/// The proxy's decision: wait this long, then do that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Added latency.
    pub delay: Duration,
    /// Then.
    pub outcome: Outcome,
}

/// A rule switched on, with the id that switches it off.
#[derive(Debug, Clone)]
struct Active {
    id: u64,
    rule: Rule,
    /// Matching requests seen so far.
    seen: u64,
}

#[derive(Debug)]
struct State {
    rules: Vec<Active>,
    next_id: u64,
    rng: StdRng,
    injected: BTreeMap<String, u64>,
    accepted: BTreeMap<String, u64>,
    refused: BTreeMap<String, u64>,
}

/// The rules in force, and what they did.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    /// No rules yet; `seed` makes the rate rolls repeatable.
    pub fn new(seed: u64) -> Self {
        Faults {
            state: Mutex::new(State {
                rules: Vec::new(),
                next_id: 1,
                rng: StdRng::seed_from_u64(seed),
                injected: BTreeMap::new(),
                accepted: BTreeMap::new(),
                refused: BTreeMap::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Switches `rule` on; returns the id that switches it off.
    pub fn add(&self, rule: Rule) -> u64 {
        let mut s = self.state();
        let id = s.next_id;
        s.next_id += 1;
        s.rules.push(Active { id, rule, seen: 0 });
        id
    }

    /// Switches rule `id` off.
    pub fn remove(&self, id: u64) {
        self.state().rules.retain(|a| a.id != id);
    }

    /// Switches every rule off.
    pub fn clear(&self) {
        self.state().rules.clear();
    }

    /// Decides what happens to `req`: every matching latency rule that fires
    /// adds its delay; the first other matching rule that fires decides the
    /// outcome; a request no rule stops is forwarded.
    pub fn decide(&self, req: &AwsRequest) -> Decision {
        let mut s = self.state();
        let State { rules, rng, injected, .. } = &mut *s;
        let mut delay = Duration::ZERO;
        let mut outcome = Outcome::Forward;
        for a in rules.iter_mut().filter(|a| a.rule.matches(req)) {
            a.seen += 1;
            if a.seen <= a.rule.pass_first {
                continue;
            }
            if a.rule.rate < 1.0 && rng.random::<f64>() >= a.rule.rate {
                continue;
            }
            let fired = match a.rule.kind {
                Fault::Latency => {
                    let jitter = if a.rule.jitter_ms > 0 { rng.random_range(0..=a.rule.jitter_ms) } else { 0 };
                    delay += Duration::from_millis(a.rule.ms + jitter);
                    true
                }
                _ if outcome != Outcome::Forward => false,
                Fault::Throttle => {
                    outcome = Outcome::Answer(Injected::Throttle);
                    true
                }
                Fault::ServerError => {
                    outcome = Outcome::Answer(Injected::ServerError);
                    true
                }
                Fault::Reset | Fault::Blackhole => {
                    outcome = Outcome::Reset;
                    true
                }
                Fault::Hang => {
                    outcome = Outcome::Hang(Duration::from_millis(a.rule.ms));
                    true
                }
                Fault::LoseAnswer => {
                    outcome = Outcome::LoseAnswer(Injected::ServerError);
                    true
                }
                Fault::Rewrite => match (&a.rule.find, &a.rule.replace) {
                    (Some(find), Some(replace)) if !find.is_empty() => {
                        outcome = Outcome::Rewrite(find.clone(), replace.clone());
                        true
                    }
                    _ => false,
                },
            };
            if fired {
                *injected.entry(a.rule.kind.kind().to_string()).or_default() += 1;
            }
        }
        Decision { delay, outcome }
    }

    /// Faults injected so far, per kind.
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.state().injected.clone()
    }

    /// Records the emulator's answer to a forwarded request.
    pub fn record(&self, req: &AwsRequest, status: u16) {
        let mut s = self.state();
        let map = if (200..300).contains(&status) { &mut s.accepted } else { &mut s.refused };
        *map.entry(format!("{}:{}", req.service, req.operation)).or_default() += 1;
    }

    /// Requests the emulators accepted (2xx), per `service:Operation`: the
    /// calls that took effect.
    pub fn accepted(&self) -> BTreeMap<String, u64> {
        self.state().accepted.clone()
    }

    /// Requests the emulators refused (an error answer), per `service:Operation`.
    pub fn refused(&self) -> BTreeMap<String, u64> {
        self.state().refused.clone()
    }

    /// How many `service` `operation` requests the emulators accepted.
    pub fn accepted_count(&self, service: &str, operation: &str) -> u64 {
        self.state().accepted.get(&format!("{service}:{operation}")).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws_request::Protocol;

    fn req(service: &str, region: &str, op: &str) -> AwsRequest {
        AwsRequest { service: service.into(), region: region.into(), operation: op.into(), protocol: Protocol::Query }
    }

    fn rule(toml_text: &str) -> Rule {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn rules_match_by_service_region_and_operation_pattern() {
        let r = rule("service = \"rds\"\nregion = \"us-east-1\"\noperation = \"Describe*\"\nkind = \"throttle\"");
        assert!(r.matches(&req("rds", "us-east-1", "DescribeDBInstances")));
        assert!(!r.matches(&req("rds", "us-west-2", "DescribeDBInstances")));
        assert!(!r.matches(&req("rds", "us-east-1", "PromoteReadReplica")));
        assert!(!r.matches(&req("ec2", "us-east-1", "DescribeInstances")));
        assert!(rule("kind = \"blackhole\"").matches(&req("ec2", "eu-west-1", "X")));
        assert!(toml::from_str::<Rule>("kind = \"flood\"").is_err());
        assert!(toml::from_str::<Rule>("kind = \"throttle\"\nrgion = \"x\"").is_err(), "a typo is an error");
        assert!(rule("kind = \"throttle\"\nrate = 1.5").validate().is_err());
        assert!(rule("kind = \"latency\"").validate().is_err(), "latency without ms");
        assert!(rule("kind = \"throttle\"\nms = 5").validate().is_err(), "ms on a throttle");
        assert!(rule("kind = \"rewrite\"\nfind = \"x\"").validate().is_err(), "rewrite without replace");
        assert!(rule("kind = \"rewrite\"\nfind = \"x\"\nreplace = \"y\"").validate().is_ok());
        assert!(rule("kind = \"lose-answer\"\nfind = \"x\"").validate().is_err(), "find on a lose-answer");
    }

    #[test]
    fn latency_adds_up_the_first_stopping_fault_decides_and_everything_is_counted() {
        let f = Faults::new(7);
        f.add(rule("kind = \"latency\"\nms = 100"));
        let throttle = f.add(rule("service = \"rds\"\nkind = \"throttle\""));
        f.add(rule("service = \"rds\"\nkind = \"server-error\""));
        let d = f.decide(&req("rds", "us-east-1", "PromoteReadReplica"));
        assert_eq!(d, Decision { delay: Duration::from_millis(100), outcome: Outcome::Answer(Injected::Throttle) });
        f.remove(throttle);
        assert_eq!(f.decide(&req("rds", "us-east-1", "PromoteReadReplica")).outcome, Outcome::Answer(Injected::ServerError));
        assert_eq!(f.decide(&req("ec2", "us-east-1", "RunInstances")).outcome, Outcome::Forward);
        assert_eq!(f.injected(), BTreeMap::from([("latency".into(), 3), ("server-error".into(), 1), ("throttle".into(), 1)]));
        f.record(&req("ec2", "us-east-1", "RunInstances"), 200);
        f.record(&req("rds", "us-east-1", "CreateDBSnapshot"), 400);
        assert_eq!(f.accepted_count("ec2", "RunInstances"), 1);
        assert_eq!(f.accepted_count("rds", "CreateDBSnapshot"), 0);
        assert_eq!(f.refused(), BTreeMap::from([("rds:CreateDBSnapshot".into(), 1)]));
        f.clear();
        assert_eq!(f.decide(&req("rds", "us-east-1", "X")), Decision { delay: Duration::ZERO, outcome: Outcome::Forward });
    }

    #[test]
    fn a_lost_answer_and_a_rewrite_pass_the_request_on() {
        let f = Faults::new(1);
        let lose = f.add(rule("operation = \"CreateSnapshot\"\nkind = \"lose-answer\""));
        assert_eq!(f.decide(&req("ec2", "us-east-1", "CreateSnapshot")).outcome, Outcome::LoseAnswer(Injected::ServerError));
        assert_eq!(f.decide(&req("ec2", "us-east-1", "DescribeSnapshots")).outcome, Outcome::Forward);
        f.remove(lose);
        f.add(rule("operation = \"DescribeImages\"\nkind = \"rewrite\"\nfind = \"available\"\nreplace = \"failed\""));
        assert_eq!(f.decide(&req("ec2", "us-east-1", "DescribeImages")).outcome, Outcome::Rewrite("available".into(), "failed".into()));
        assert_eq!(f.injected(), BTreeMap::from([("lose-answer".into(), 1), ("rewrite".into(), 1)]));
    }

    #[test]
    fn pass_first_lets_that_many_matching_requests_through() {
        let f = Faults::new(1);
        f.add(rule("region = \"us-east-1\"\nkind = \"blackhole\"\npass_first = 2"));
        let outcomes: Vec<Outcome> = ["us-east-1", "us-west-2", "us-east-1", "us-east-1"].iter().map(|r| f.decide(&req("rds", r, "X")).outcome).collect();
        assert_eq!(outcomes, [Outcome::Forward, Outcome::Forward, Outcome::Forward, Outcome::Reset]);
    }

    #[test]
    fn a_rate_applies_to_about_that_share_and_repeats_with_the_seed() {
        let run = |seed| {
            let f = Faults::new(seed);
            f.add(rule("kind = \"server-error\"\nrate = 0.3"));
            (0..1000).filter(|_| f.decide(&req("rds", "us-east-1", "X")).outcome != Outcome::Forward).count()
        };
        let n = run(42);
        assert!((240..=360).contains(&n), "{n} of 1000");
        assert_eq!(run(42), n, "same seed, same faults");
    }
}
