//! What must hold after every schedule, whatever the seed did. Each check
//! has a name, which a failure prints with what it saw. They read the
//! simulated cloud's state and calls, never what the agent believes it did.

use std::collections::BTreeMap;

use drover_journal::{AttemptRecord, Entry, EntryStatus, RunRecord, RunStatus};
use drover_sim::Call;
use serde::Serialize;
use serde_json::Value;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Broken {
    /// The invariant's name (`at-most-once`, `record-points-at-writer`...).
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

fn broken(invariant: &'static str, detail: String) -> Broken {
    Broken { invariant, detail }
}

/// Everything a schedule left, for the checks.
pub struct Observed<'a> {
    /// The run as it ended (or stopped).
    pub run: &'a RunRecord,
    /// Set when the driver stopped the run resumable (the code).
    pub stopped: Option<&'a str>,
    /// Its journal.
    pub entries: &'a [Entry],
    /// Its attempts.
    pub attempts: &'a [AttemptRecord],
    /// The retry policy's attempts of each step begun.
    pub steps: &'a BTreeMap<String, u32>,
    /// Every call to the simulated cloud.
    pub calls: &'a [Call],
    /// How many calls had been made when the journal diverged from the
    /// build (if the schedule made it diverge).
    pub calls_at_divergence: Option<usize>,
    /// With a takeover: what the first driver did once it woke.
    pub fenced: Option<&'a Fenced>,
    /// The cloud before the run and after.
    pub before: &'a Value,
    /// After.
    pub after: &'a Value,
    /// Answers the simulated capabilities gave that the cloud contradicts.
    pub untrue: &'a [String],
}

/// What a driver that stalled while another agent took its run over did
/// once it woke.
#[derive(Debug, Clone)]
pub struct Fenced {
    /// Mutating capability calls it got past the gate.
    pub mutating_calls: u64,
    /// Calls that changed the cloud after it woke.
    pub changed: usize,
    /// How its driver ended.
    pub ended: String,
}

/// Checks every invariant; the broken ones.
pub fn check(o: &Observed) -> Vec<Broken> {
    let mut out = vec![];
    at_most_once(o, &mut out);
    one_writer(o, &mut out);
    attempts_within_policy(o, &mut out);
    journal_monotonic(o, &mut out);
    run_ends(o, &mut out);
    nothing_after_divergence(o, &mut out);
    records_point_at_writers(o, &mut out);
    weights_whole(o, &mut out);
    cname_alone(o, &mut out);
    succeeded_claims(o, &mut out);
    rpo_reported(o, &mut out);
    rto_reported(o, &mut out);
    undos_restore(o, &mut out);
    leaves_nothing(o, &mut out);
    out.extend(o.untrue.iter().map(|u| broken("true-answers", u.clone())));
    out
}

/// Each step's side effect on a resource took effect at most once: two
/// calls of one step that both changed the same resource with the same
/// operation are a duplicate (a resend, a re-run after a crash).
fn at_most_once(o: &Observed, out: &mut Vec<Broken>) {
    let mut seen: BTreeMap<(&str, &str, &str), u32> = BTreeMap::new();
    for c in o.calls.iter().filter(|c| c.changed && c.call != "ec2.tag") {
        let step = c.step.as_deref().unwrap_or("-");
        let n = seen.entry((step, c.call.as_str(), c.resource.as_str())).or_default();
        *n += 1;
        if *n == 2 {
            out.push(broken(
                "at-most-once",
                format!("{} on {} in {} took effect twice within step '{step}' (attempts included)", c.call, c.resource, c.region),
            ));
        }
    }
}

/// Never two writers: a driver whose run another agent took over is fenced
/// out of every side effect when it wakes.
fn one_writer(o: &Observed, out: &mut Vec<Broken>) {
    let Some(f) = o.fenced else { return };
    if f.mutating_calls > 0 || f.changed > 0 {
        out.push(broken(
            "one-writer",
            format!(
                "after another agent took the run over, the stalled driver woke and made {} mutating call(s) ({} changed the cloud); it ended: {}",
                f.mutating_calls, f.changed, f.ended
            ),
        ));
    }
}

/// No step ran more attempts than its retry policy allows, crashes included.
fn attempts_within_policy(o: &Observed, out: &mut Vec<Broken>) {
    for a in o.attempts {
        if let Some(max) = o.steps.get(&a.key)
            && a.number > *max
        {
            out.push(broken("attempts-within-policy", format!("step '{}' ran attempt {} although its retry policy allows {max}", a.key, a.number)));
        }
    }
    for c in o.calls {
        if let (Some(step), Some(max)) = (&c.step, c.step.as_ref().and_then(|s| o.steps.get(s)))
            && c.attempt > *max
        {
            out.push(broken("attempts-within-policy", format!("step '{step}' called {} in attempt {} although it allows {max}", c.call, c.attempt)));
        }
    }
}

/// Journal positions run 0, 1, 2... without a gap, and a finished step ends
/// at or after its own position.
fn journal_monotonic(o: &Observed, out: &mut Vec<Broken>) {
    for (i, e) in o.entries.iter().enumerate() {
        if e.seq != i as u64 {
            out.push(broken("journal-monotonic", format!("entry {i} has position {}", e.seq)));
            return;
        }
        if e.end_seq.is_some_and(|end| end < e.seq) {
            out.push(broken("journal-monotonic", format!("entry {} ends at {:?}, before itself", e.seq, e.end_seq)));
        }
    }
}

/// The run ended, or was stopped resumable with the reason recorded.
fn run_ends(o: &Observed, out: &mut Vec<Broken>) {
    if !o.run.status.is_final() && o.stopped.is_none() {
        out.push(broken("run-ends", format!("the run is still '{}' after the schedule, with no stop recorded", o.run.status.as_str())));
    }
}

/// A run whose journal does not match its build changes nothing more: it
/// stops, resumable, no undo run.
fn nothing_after_divergence(o: &Observed, out: &mut Vec<Broken>) {
    let Some(at) = o.calls_at_divergence else { return };
    for c in o.calls.iter().skip(at).filter(|c| c.changed) {
        out.push(broken(
            "nothing-after-divergence",
            format!("after its replay diverged from the journal, the run still changed the cloud: {} on {} (step {:?})", c.call, c.resource, c.step),
        ));
    }
    if o.run.status.is_final() {
        out.push(broken("nothing-after-divergence", format!("a run whose replay diverged ended '{}' instead of stopping resumable", o.run.status.as_str())));
    }
}

/// The instances of the state, by endpoint: (identifier, finished promotion
/// or never a replica).
fn instances(state: &Value) -> BTreeMap<String, (String, bool)> {
    let now = state["now_ms"].as_i64().unwrap_or(0);
    let mut out = BTreeMap::new();
    for (_, by_id) in state["rds"]["instances"].as_object().into_iter().flatten() {
        for (id, db) in by_id.as_object().into_iter().flatten() {
            let i = &db["instance"];
            let promoting = !db["promoting_from"].is_null() && db["ready_at"].as_i64().unwrap_or(i64::MAX) > now;
            let writer = i["replica_source"].is_null() && !promoting;
            if let Some(ep) = i["endpoint"].as_str() {
                out.insert(ep.trim_end_matches('.').to_string(), (id.clone(), writer));
            }
        }
    }
    out
}

/// Record sets by (zone, name, type), as JSON.
fn records(state: &Value) -> BTreeMap<(String, String, String), Vec<Value>> {
    let mut out: BTreeMap<_, Vec<Value>> = BTreeMap::new();
    for (zone, sets) in state["route53"]["zones"].as_object().into_iter().flatten() {
        for r in sets.as_array().into_iter().flatten() {
            let key = (zone.clone(), r["name"].as_str().unwrap_or("").to_string(), r["record_type"].as_str().unwrap_or("").to_string());
            out.entry(key).or_default().push(r.clone());
        }
    }
    out
}

/// A database record the run changed points only at an instance that is
/// not a replica and not in the middle of its promotion.
fn records_point_at_writers(o: &Observed, out: &mut Vec<Broken>) {
    let dbs = instances(o.after);
    let before = records(o.before);
    for (key, sets) in records(o.after) {
        if key.2 != "CNAME" || before.get(&key) == Some(&sets) {
            continue;
        }
        for v in sets.iter().flat_map(|r| r["values"].as_array().cloned().unwrap_or_default()) {
            if let Some((id, false)) = v.as_str().and_then(|v| dbs.get(v.trim_end_matches('.'))) {
                out.push(broken(
                    "record-points-at-writer",
                    format!("{} now points at {id}, which still replicates (or is still being promoted): writes would go to a read-only replica", key.1),
                ));
            }
        }
    }
}

/// Weighted record sets the run changed still send all their traffic
/// somewhere: their weights sum as they did (100 in the demo).
fn weights_whole(o: &Observed, out: &mut Vec<Broken>) {
    let before = records(o.before);
    let sum = |sets: &[Value]| sets.iter().filter_map(|r| r["weight"].as_u64()).sum::<u64>();
    for (key, sets) in records(o.after) {
        let Some(old) = before.get(&key) else { continue };
        if old == &sets || sets.iter().all(|r| r["weight"].is_null()) {
            continue;
        }
        if sum(old) > 0 && sum(&sets) != sum(old) {
            out.push(broken("weights-whole", format!("the weights of {} {} sum to {} (they summed to {})", key.1, key.2, sum(&sets), sum(old))));
        }
    }
}

/// A CNAME is alone at its name (Route 53 refuses anything beside it).
fn cname_alone(o: &Observed, out: &mut Vec<Broken>) {
    let all = records(o.after);
    for (zone, name, kind) in all.keys() {
        if kind == "CNAME" && all.keys().any(|(z, n, k)| z == zone && n == name && k != "CNAME") {
            out.push(broken("cname-alone", format!("{name} in {zone} has a CNAME beside other records")));
        }
    }
}

/// What a succeeded run says it did is so in the cloud: the instance it
/// promoted is a writer.
fn succeeded_claims(o: &Observed, out: &mut Vec<Broken>) {
    if o.run.status != RunStatus::Succeeded {
        return;
    }
    let result = o.run.result.clone().unwrap_or(Value::Null);
    if let Some(promoted) = result["promoted"].as_str() {
        let name = promoted.rsplit(':').next().unwrap_or(promoted);
        let writer = instances(o.after).into_values().find(|(id, _)| id == name).map(|(_, w)| w);
        if writer != Some(true) {
            out.push(broken("succeeded-claims", format!("the run succeeded saying it promoted {name}, which is not a writer in the cloud ({writer:?})")));
        }
    }
}

/// The replicas of the state before the run whose lag is unknown: no
/// reading, `-1` (replication not running), or a stale reading.
fn unknown_lag(state: &Value) -> Vec<String> {
    let mut out = vec![];
    for (_, by_id) in state["rds"]["instances"].as_object().into_iter().flatten() {
        for (id, db) in by_id.as_object().into_iter().flatten() {
            if db["instance"]["replica_source"].is_null() {
                continue;
            }
            let lag = db["lag_seconds"].as_f64();
            if lag.is_none_or(|l| l < 0.0) || db["lag_age_seconds"].as_u64().is_some_and(|a| a > 300) {
                out.push(id.clone());
            }
        }
    }
    out
}

/// A succeeded run's RPO estimate is a real lag reading: not negative, and
/// none at all when the replica's lag was unknown (the operator's override
/// says so in the result's warnings instead).
fn rpo_reported(o: &Observed, out: &mut Vec<Broken>) {
    if o.run.status != RunStatus::Succeeded {
        return;
    }
    let result = o.run.result.clone().unwrap_or(Value::Null);
    let Some(rpo) = result.get("estimated_rpo_seconds") else { return };
    if let Some(v) = rpo.as_f64()
        && v < 0.0
    {
        out.push(broken("rpo-reported", format!("the run reports an RPO of {v} s: a lag reading below 0 means replication is not running, not a known loss")));
    }
    let unknown = unknown_lag(o.before);
    if !rpo.is_null() && !unknown.is_empty() {
        out.push(broken("rpo-reported", format!("the run reports an RPO of {rpo} s although the lag of {} was unknown", unknown.join(", "))));
    }
}

/// A reported RTO lies within the run's simulated time.
fn rto_reported(o: &Observed, out: &mut Vec<Broken>) {
    let Some(rto) = o.run.result.as_ref().and_then(|r| r["rto_seconds"].as_f64()) else { return };
    let elapsed = (o.after["now_ms"].as_i64().unwrap_or(0) - o.before["now_ms"].as_i64().unwrap_or(0)) as f64 / 1000.0;
    if rto < 0.0 || rto > elapsed + 1.0 {
        out.push(broken("rto-reported", format!("the run reports an RTO of {rto:.1} s; the run took {elapsed:.1} s of simulated time")));
    }
}

/// Instances (RDS and EC2, not terminated) tagged as made by run `run_id`.
fn made_by(state: &Value, run_id: &str) -> Vec<String> {
    let mut out = vec![];
    for (service, kind) in [("rds", "instances"), ("ec2", "instances")] {
        for (region, by_id) in state[service][kind].as_object().into_iter().flatten() {
            for (id, item) in by_id.as_object().into_iter().flatten() {
                let terminated = item["instance"]["state"].as_str() == Some("terminated");
                if item["tags"]["drover:run"].as_str() == Some(run_id) && !terminated {
                    out.push(format!("{service} instance {id} in {region}"));
                }
            }
        }
    }
    out
}

/// A failed or cancelled run leaves nothing it created, unless a cleanup
/// that failed says so (its error is in the journal and the report).
fn leaves_nothing(o: &Observed, out: &mut Vec<Broken>) {
    if !matches!(o.run.status, RunStatus::Failed | RunStatus::Cancelled) {
        return;
    }
    let reported =
        o.entries.iter().any(|e| e.key.as_deref().is_some_and(|k| k.starts_with("cleanup:") || k.starts_with("undo:")) && e.status == EntryStatus::Failed);
    let left = made_by(o.after, &o.run.run_id);
    if !reported && !left.is_empty() {
        out.push(broken(
            "leaves-nothing",
            format!("the run ended '{}' and left what it created, with no failed cleanup to say so: {}", o.run.status.as_str(), left.join(", ")),
        ));
    }
}

/// A run that did not succeed and whose undos all ran left the weighted
/// records as they were before it.
fn undos_restore(o: &Observed, out: &mut Vec<Broken>) {
    if o.run.status == RunStatus::Succeeded || !o.run.status.is_final() {
        return;
    }
    let undos: Vec<&Entry> = o.entries.iter().filter(|e| e.key.as_deref().is_some_and(|k| k.starts_with("undo:"))).collect();
    if undos.is_empty() || undos.iter().any(|e| e.status != EntryStatus::Succeeded) {
        return;
    }
    let before = records(o.before);
    for (key, sets) in records(o.after) {
        let weighted = sets.iter().any(|r| !r["weight"].is_null());
        if weighted && before.get(&key).is_some_and(|old| old != &sets) {
            out.push(broken("undos-restore", format!("the run's undos all ran, but {} {} is not as it was before the run", key.1, key.2)));
        }
    }
}
