//! `dns-shift`: moves traffic between two weighted records gradually, for
//! example 10, 50, then 100 percent, and lets each stage stand only if the
//! destination stays healthy through a soak period. The health gate reads a
//! Route 53 health check on the destination and CloudWatch alarms (error
//! rate, latency) of the region taking the traffic. When the gate fails, at
//! any stage, the run fails and its undo puts every weight back where it was
//! before the shift began: a destination that failed its gate takes no
//! traffic. The same undo runs when the run is cancelled or hits a limit.
//!
//! Every stage is a journaled step and every gate check is one too, so a
//! crash during a soak resumes the soak (the durable sleep waits only for
//! what is left) and never applies a stage twice.

use std::time::Duration;

use drover_sdk::aws::{cloudwatch, route53};
use drover_sdk::{Action, Capability, Ctx, Describe, Error, Mode, Param, Readiness, Runbook, export_runbook};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Params {
    hosted_zone: String,
    record: String,
    from: String,
    to: String,
    stages: String,
    health_check: String,
    alarms: String,
    alarm_region: String,
    soak_seconds: u64,
    check_interval_seconds: u64,
    fail_on_insufficient_data: bool,
    ungated: bool,
    ttl: u32,
    timeout_seconds: u64,
}

/// A weighted set: its identifier, weight and value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Target {
    set: String,
    weight: u8,
    value: String,
}

#[derive(Serialize, Deserialize)]
struct Start {
    targets: Vec<Target>,
    from_value: String,
    to_value: String,
}

/// What one look at the health gate saw.
#[derive(Serialize, Deserialize, Default)]
struct GateReport {
    healthy: bool,
    /// Why it failed, one line per signal.
    failures: Vec<String>,
    /// What passed with a caveat (an alarm without data).
    warnings: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Restore {
    zone: String,
    record: String,
    targets: Vec<Target>,
    ttl: u32,
    timeout_seconds: u64,
}

#[derive(Serialize, Deserialize)]
struct Outcome {
    /// The stages applied, in percent of traffic to `to`.
    stages: Vec<u8>,
    /// The weights now.
    weights: Vec<Target>,
    /// How many times the gate was read.
    gate_checks: u32,
    warnings: Vec<String>,
}

struct DnsShift;

/// Parses "10,50,100": percentages, strictly increasing, 1 to 100.
fn parse_stages(s: &str) -> Result<Vec<u8>, Error> {
    let bad = |why: String| Error::new("bad-stages", format!("stages '{s}': {why}; give percentages to the destination, increasing, e.g. 10,50,100"));
    let mut out: Vec<u8> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let v: u8 = part.parse().map_err(|_| bad(format!("'{part}' is not a whole percentage")))?;
        if v == 0 || v > 100 {
            return Err(bad(format!("{v} is not between 1 and 100")));
        }
        if out.last().is_some_and(|last| *last >= v) {
            return Err(bad(format!("{v} does not increase")));
        }
        out.push(v);
    }
    if out.is_empty() {
        return Err(bad("no stage".into()));
    }
    Ok(out)
}

fn names(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect()
}

fn read_targets(p: &Params) -> Result<Vec<Target>, Error> {
    // One target per set identifier, whatever the record type (A, AAAA,
    // alias, CNAME): set-weights shifts every record of the set.
    Ok(route53::weighted_targets(&route53::get_records(&p.hosted_zone, &p.record)?)
        .into_iter()
        .map(|t| Target { set: t.set_identifier, weight: t.weight, value: t.value })
        .collect())
}

fn weighted(t: &[Target]) -> Vec<route53::WeightedTarget> {
    t.iter().map(|t| route53::WeightedTarget { set_identifier: t.set.clone(), weight: t.weight, value: t.value.clone() }).collect()
}

/// Reads every signal of the gate. Errors reading a signal are errors
/// (retried if retryable): a gate that cannot be read does not pass.
fn gate(p: &Params) -> Result<GateReport, Error> {
    let mut r = GateReport { healthy: true, ..GateReport::default() };
    if !p.health_check.is_empty() {
        let h = route53::get_health_check(&p.health_check)?;
        if h.disabled {
            // Route 53 calls a disabled check healthy whatever the target
            // does: it says nothing, and a gate must not pass on nothing.
            r.failures.push(format!("health check {} is disabled, so it says nothing about {}; enable it, or gate on alarms instead", h.id, h.target));
        } else if h.status != "healthy" {
            r.failures.push(format!("health check {} on {} is {} ({})", h.id, h.target, h.status, h.reports.join("; ")));
        }
    }
    let alarms = names(&p.alarms);
    if !alarms.is_empty() {
        for a in cloudwatch::describe_alarms(&p.alarm_region, &alarms)? {
            match a.state {
                cloudwatch::AlarmState::Ok => {}
                cloudwatch::AlarmState::Alarm => r.failures.push(format!("alarm {} in {} is ALARM: {}", a.name, p.alarm_region, a.reason)),
                cloudwatch::AlarmState::InsufficientData if p.fail_on_insufficient_data => {
                    r.failures.push(format!("alarm {} in {} has insufficient data: {}", a.name, p.alarm_region, a.reason))
                }
                cloudwatch::AlarmState::InsufficientData => {
                    r.warnings.push(format!("alarm {} in {} has insufficient data (counted as passing)", a.name, p.alarm_region))
                }
            }
        }
    }
    r.healthy = r.failures.is_empty();
    Ok(r)
}

/// The weights of a stage: `percent` to the destination, the rest to the
/// source, every other set as it was.
fn stage_weights(start: &Start, p: &Params, percent: u8) -> Vec<Target> {
    start
        .targets
        .iter()
        .map(|t| {
            let weight = if t.set == p.to {
                percent
            } else if t.set == p.from {
                100 - percent
            } else {
                t.weight
            };
            Target { weight, ..t.clone() }
        })
        .collect()
}

fn gate_failed(stage: Option<u8>, report: &GateReport) -> Error {
    let when = match stage {
        Some(s) => format!("after the {s} percent stage"),
        None => "before any change".to_string(),
    };
    let then = match stage {
        Some(_) => "the weights are being put back as they were before the shift",
        None => "DNS left unchanged",
    };
    Error::new("health-gate-failed", format!("the health gate failed {when}: {}; {then}", report.failures.join("; ")))
}

impl Runbook for DnsShift {
    type Params = Params;
    type Output = Outcome;

    fn describe() -> Describe {
        Describe::new("dns-shift", env!("CARGO_PKG_VERSION"))
            .description(
                "Shifts traffic between two weighted records in stages (e.g. 10, 50, 100 percent), holding each \
                 stage through a soak period during which a health gate (a Route 53 health check on the \
                 destination, CloudWatch alarms of its region) must pass. When the gate fails, or the run is \
                 cancelled, every weight goes back to where it was before the shift. Defaults match the demo \
                 topology (us-east-1 to us-west-2).",
            )
            .param(Param::string("hosted_zone", "Route 53 hosted zone").default("orders.example.internal"))
            .param(Param::string("record", "Name of the weighted records").default("app.orders.example.internal"))
            .param(Param::string("from", "Set identifier traffic leaves").default("us-east-1"))
            .param(Param::string("to", "Set identifier traffic goes to").default("us-west-2"))
            .param(Param::string("stages", "Percent of traffic to `to` at each stage, increasing").default("10,50,100"))
            .param(Param::string("health_check", "Route 53 health check of the destination (empty: none)").default(""))
            .param(Param::string("alarms", "CloudWatch alarms that must not be in ALARM, comma-separated (empty: none)").default(""))
            .param(Param::string("alarm_region", "Region of the alarms").default("us-west-2"))
            .param(Param::integer("soak_seconds", "How long each stage must stay healthy").default(300))
            .param(Param::integer("check_interval_seconds", "How often the gate is read during a soak").default(30))
            .param(Param::boolean("fail_on_insufficient_data", "Count an alarm without data as failing").default(false))
            .param(Param::boolean("ungated", "Shift without any health signal (refused otherwise)").default(false))
            .param(Param::integer("ttl", "TTL of the records, in seconds").default(60))
            .param(Param::integer("timeout_seconds", "Longest wait for a change to be INSYNC").default(300))
            .capability(Capability::new("route53").operations(["get-records", "set-weights", "get-health-check"]).resources([
                "zone/{hosted_zone}",
                "record/{record}",
                "healthcheck/{health_check}",
            ]))
            .capability(Capability::new("cloudwatch").operations(["describe-alarms"]).regions(["{alarm_region}"]).resources(["alarm/*"]))
    }

    fn run(ctx: &Ctx, p: Params) -> Result<Outcome, Error> {
        let stages = parse_stages(&p.stages)?;
        if p.from == p.to {
            return Err(Error::new("bad-params", format!("from and to are both '{}'; name two different weighted sets", p.from)));
        }
        if p.health_check.is_empty() && names(&p.alarms).is_empty() && !p.ungated {
            return Err(Error::new(
                "no-health-gate",
                "no health signal to gate the stages on: pass health_check=ID and/or alarms=NAME,..., or ungated=true to shift blind",
            ));
        }
        let dry = ctx.mode() != Mode::Run;
        let interval = p.check_interval_seconds.max(1);
        let checks = p.soak_seconds.div_ceil(interval).max(1);

        let start: Start = ctx.step("preflight", || {
            let targets = read_targets(&p)?;
            let find = |set: &str| {
                targets.iter().find(|t| t.set == set).map(|t| t.value.clone()).ok_or_else(|| {
                    Error::new("record-not-found", format!("no weighted set '{set}' under {} in {}; DNS left unchanged", p.record, p.hosted_zone))
                        .with_resource(p.record.clone())
                })
            };
            let from_value = find(&p.from)?;
            let to_value = find(&p.to)?;
            Ok(Start { targets, from_value, to_value })
        })?;
        let mut warnings = Vec::new();
        let before: GateReport = ctx.step("gate-before", || gate(&p))?;
        warnings.extend(before.warnings.iter().cloned());
        if !before.healthy {
            return Err(gate_failed(None, &before));
        }
        // Registered before the first change: whatever stops the run from
        // here (the gate, a cancel, a limit), the weights go back.
        ctx.compensate(
            "restore-weights",
            &Restore { zone: p.hosted_zone.clone(), record: p.record.clone(), targets: start.targets.clone(), ttl: p.ttl, timeout_seconds: p.timeout_seconds },
        )?;

        let mut applied = Vec::new();
        let mut gate_checks = 1;
        let mut weights = start.targets.clone();
        for &stage in &stages {
            weights = stage_weights(&start, &p, stage);
            ctx.step(&format!("stage-{stage}"), || {
                route53::set_weights(&p.hosted_zone, &p.record, &weighted(&weights), p.ttl, Duration::from_secs(p.timeout_seconds))?;
                Ok(())
            })?;
            applied.push(stage);
            ctx.info(&format!("{stage} percent of {} now goes to {}", p.record, p.to));
            for check in 1..=checks {
                if !dry {
                    // The last wait is what is left of the soak, so a stage soaks as long as asked.
                    let left = p.soak_seconds.max(1).saturating_sub((check - 1) * interval);
                    ctx.sleep(Duration::from_secs(interval.min(left).max(1)));
                }
                let report: GateReport = ctx.step(&format!("gate-{stage}-{check}"), || gate(&p))?;
                gate_checks += 1;
                for w in &report.warnings {
                    if !warnings.contains(w) {
                        ctx.warn(w);
                        warnings.push(w.clone());
                    }
                }
                if !report.healthy {
                    return Err(gate_failed(Some(stage), &report));
                }
                if dry {
                    break;
                }
            }
        }
        Ok(Outcome { stages: applied, weights, gate_checks, warnings })
    }

    /// Would the shift start now? The records and the gate, read only.
    fn readiness(ctx: &Ctx, p: &Params) -> Option<Result<Readiness, Error>> {
        Some(ctx.step("readiness", || {
            let mut r = Readiness::new();
            if let Err(e) = parse_stages(&p.stages) {
                r.problem("the stages are valid", e.message().to_string(), p.stages.clone(), "give increasing percentages, e.g. 10,50,100");
            }
            match read_targets(p) {
                Ok(t) => {
                    for set in [&p.from, &p.to] {
                        match t.iter().find(|x| &x.set == set) {
                            Some(x) => r.ok("the weighted sets exist", format!("{set} has weight {} at {}", x.weight, x.value), p.record.clone()),
                            None => r.problem(
                                "the weighted sets exist",
                                format!("no set '{set}' under {}", p.record),
                                p.record.clone(),
                                "create a weighted record per side, or pass from=/to=",
                            ),
                        }
                    }
                }
                Err(e) => {
                    r.problem("the weighted sets exist", e.message().to_string(), p.hosted_zone.clone(), "check the hosted zone name (--param hosted_zone)")
                }
            }
            match gate(p) {
                Ok(g) if g.healthy => {
                    r.ok("the health gate passes now", if g.warnings.is_empty() { "every signal passes".into() } else { g.warnings.join("; ") }, p.to.clone())
                }
                Ok(g) => r.problem("the health gate passes now", g.failures.join("; "), p.to.clone(), "fix the destination before shifting traffic to it"),
                Err(e) => {
                    r.problem("the health gate passes now", e.message().to_string(), p.to.clone(), "check the health check id, the alarm names and the region")
                }
            }
            Ok(r)
        }))
    }

    fn finalize(ctx: &Ctx, action: Action) -> Result<(), Error> {
        match action.key() {
            "restore-weights" => {
                let r: Restore = action.payload()?;
                route53::set_weights(&r.zone, &r.record, &weighted(&r.targets), r.ttl, Duration::from_secs(r.timeout_seconds))?;
                ctx.warn(&format!("weights of {} put back as before the shift", r.record));
                Ok(())
            }
            other => Err(Error::new("unknown-action", format!("dns-shift registered no action '{other}'"))),
        }
    }
}

export_runbook!(DnsShift);

#[cfg(test)]
mod tests;
