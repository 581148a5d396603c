//! What a seed chooses: where the agent crashes, what the cloud does wrong,
//! and in what state the run finds it.
//!
//! Seeds below twice the number of crash points of the fault-free run are
//! the exhaustive sweep: seed `2k` crashes at point `k` (the process is
//! killed: buffered journal writes survive), seed `2k + 1` crashes there by
//! a power cut (they are lost). Higher seeds draw a schedule from a
//! generator seeded with the seed: crashes, a crash loop, faults on the calls
//! the runbook makes, a busy replica, a lag reading that cannot be trusted,
//! and a journal that diverges from the build on resume.

use drover_sim::{Fault, FaultEffect, Scenario};
use serde::Serialize;

use crate::simulation::CrashPlan;

/// What the fault-free run showed: the ground a schedule is drawn on.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// The crash points it passed, as `POINT:STEP`, in order.
    pub trail: Vec<String>,
    /// The calls it made: `service.operation`, region, resource.
    pub calls: Vec<(String, String, String)>,
}

/// One schedule: everything a seed decides.
#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    /// The seed.
    pub seed: u64,
    /// Crash at these point numbers (counted across restarts).
    pub crash_at: Vec<u64>,
    /// Crash at every pass of this point, up to this many times.
    pub crash_loop: Option<(String, u32)>,
    /// Crashes are power cuts: buffered journal writes are lost.
    pub power_cut: bool,
    /// With two agents: the first driver stalls at this point number, a
    /// second agent takes the run over and drives it to its end, then the
    /// first wakes (and must be fenced out).
    pub takeover: Option<u64>,
    /// Faults on the runbook's calls, as the scenario would write them.
    pub faults: Vec<String>,
    #[serde(skip)]
    fault_specs: Vec<Fault>,
    /// An RDS replica that turns busy during the run: identifier, status,
    /// seconds, and after how many calls naming it.
    pub busy: Option<(String, String, u64, u32)>,
    /// The replica lag reading: `-1`, `none`, `stale` or `over-rpo`.
    pub lag: Option<String>,
    /// At the first restart, the journal no longer matches the build (a
    /// completed step was renamed, as a replacement build would).
    pub diverge: bool,
}

/// A generator for the draws (splitmix64: small, and stable across
/// platforms and versions, so a seed means the same schedule everywhere).
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len() as u64) as usize)
    }
}

const BUSY: &[&str] = &["backing-up", "modifying", "rebooting", "storage-optimization", "configuring-enhanced-monitoring"];
const LAG: &[&str] = &["-1", "none", "stale", "over-rpo"];

impl Schedule {
    /// The schedule of `seed` over `baseline` and `scenario`, with `agents`
    /// agents (1, or 2: then a second agent may take the run over).
    pub fn of(seed: u64, baseline: &Baseline, scenario: &Scenario, agents: u8) -> Schedule {
        let points = baseline.trail.len() as u64;
        let mut s = Schedule {
            seed,
            crash_at: vec![],
            crash_loop: None,
            power_cut: false,
            takeover: None,
            faults: vec![],
            fault_specs: vec![],
            busy: None,
            lag: None,
            diverge: false,
        };
        if seed < 2 * points {
            s.crash_at = vec![seed / 2];
            s.power_cut = seed % 2 == 1;
            return s;
        }
        let two = agents >= 2;
        if two && seed < 3 * points {
            s.takeover = Some(seed - 2 * points);
            return s;
        }
        let mut d = Draw(seed);
        if two && d.one_in(5) {
            // A takeover and faults; no crash (one driver stalls instead).
            s.takeover = Some(d.below(points));
        }
        for _ in 0..d.below(3) {
            let at = d.below(points + points / 2 + 1);
            if s.takeover.is_none() {
                s.crash_at.push(at);
            }
        }
        s.crash_at.sort_unstable();
        if d.one_in(6) && s.takeover.is_none() {
            // In a step's body most often: where a crash loop hurts.
            let in_steps: Vec<&String> = baseline.trail.iter().filter(|p| p.starts_with("in-step:") || p.starts_with("after-call:")).collect();
            if let Some(p) = d.pick(&in_steps) {
                s.crash_loop = Some(((*p).clone(), 1 + d.below(4) as u32));
            }
        }
        s.power_cut = d.one_in(3);
        for _ in 0..d.below(4) {
            let Some((call, region, resource)) = d.pick(&baseline.calls).cloned() else { break };
            let (fault, what) = match d.below(5) {
                0 => (Fault::new(&call, "Throttling").times(1 + d.below(3) as u32), "throttled"),
                1 => (Fault::new(&call, "InternalFailure").times(1 + d.below(2) as u32), "5xx"),
                2 => (Fault::new(&call, "timeout").effect(FaultEffect::LostAnswer), "took effect, answer lost"),
                3 => (Fault::new(&call, "timeout").effect(FaultEffect::Resend), "took effect, answer lost, resent by the SDK"),
                _ => {
                    let mut f = Fault::new("*", "unreachable").times(1 + d.below(4) as u32);
                    f.region = Some(region.clone());
                    (f, "region partitioned")
                }
            };
            let fault = fault.after(d.below(3) as u32);
            let resource = if fault.call == "*" { format!("region {region}") } else { resource };
            s.faults.push(format!("{} ({resource}): {what}, after {} call(s), {} time(s)", fault.call, fault.after, fault.times));
            s.fault_specs.push(fault);
        }
        let replicas: Vec<&str> = scenario.rds.instances.iter().filter(|i| i.replica_of.is_some()).map(|i| i.identifier.as_str()).collect();
        if d.one_in(4)
            && let Some(id) = d.pick(&replicas)
        {
            let status = d.pick(BUSY).copied().unwrap_or("backing-up");
            s.busy = Some((id.to_string(), status.to_string(), [30, 120, 600][d.below(3) as usize], 1 + d.below(3) as u32));
        }
        if d.one_in(6) && !replicas.is_empty() {
            s.lag = d.pick(LAG).map(|l| l.to_string());
        }
        s.diverge = !s.crash_at.is_empty() && d.one_in(10);
        // Eventual consistency: a read of RDS answers from before the
        // resource's last change (drawn last, so the draws above stay as
        // they were for every seed).
        let reads: Vec<&(String, String, String)> =
            baseline.calls.iter().filter(|(c, _, _)| c.starts_with("rds.describe-") || c.starts_with("rds.wait-")).collect();
        if d.one_in(5)
            && let Some((call, _, resource)) = d.pick(&reads).copied()
        {
            let mut fault = Fault::new(call, "stale").effect(FaultEffect::Stale).after(d.below(3) as u32).times(1 + d.below(2) as u32);
            fault.resource = Some(resource.clone());
            s.faults.push(format!("{call} ({resource}): a stale read (from before its last change), after {} call(s), {} time(s)", fault.after, fault.times));
            s.fault_specs.push(fault);
        }
        s
    }

    /// The crash plan the simulation follows.
    pub fn crash_plan(&self) -> CrashPlan {
        CrashPlan { at: self.crash_at.clone(), repeat: self.crash_loop.clone(), pause_at: self.takeover }
    }

    /// `scenario` with this schedule's faults and states.
    pub fn apply(&self, scenario: &Scenario) -> Scenario {
        let mut sc = scenario.clone();
        sc.faults.extend(self.fault_specs.iter().cloned());
        let replicas: Vec<String> = sc.rds.instances.iter().filter(|i| i.replica_of.is_some()).map(|i| i.identifier.clone()).collect();
        if let Some((id, status, secs, calls)) = &self.busy {
            sc = sc.busy_later(id, status, *secs, *calls);
        }
        for id in replicas {
            sc = match self.lag.as_deref() {
                Some("-1") => sc.lag(&id, Some(-1.0)),
                Some("none") => sc.lag(&id, None),
                Some("stale") => sc.lag_age(&id, 3600),
                Some("over-rpo") => sc.lag(&id, Some(86_400.0)),
                _ => sc,
            };
        }
        sc
    }

    /// The schedule in a few lines, for a failure report.
    pub fn describe(&self) -> Vec<String> {
        let mut out = vec![];
        if !self.crash_at.is_empty() {
            let how = if self.power_cut { "power cut: buffered writes lost" } else { "process killed" };
            out.push(format!("crash at point(s) {:?} ({how})", self.crash_at));
        }
        if let Some(p) = self.takeover {
            out.push(format!("the driver stalls at point {p}; a second agent takes the run over and ends it; then the first wakes"));
        }
        if let Some((p, n)) = &self.crash_loop {
            out.push(format!("crash loop: killed at {p} up to {n} time(s)"));
        }
        out.extend(self.faults.iter().map(|f| format!("fault: {f}")));
        if let Some((id, status, secs, calls)) = &self.busy {
            out.push(format!("{id} turns '{status}' for {secs} s after {calls} call(s) naming it"));
        }
        if let Some(l) = &self.lag {
            out.push(format!("replica lag reading: {l}"));
        }
        if self.diverge {
            out.push("on the first restart the journal does not match the build (a completed step renamed)".into());
        }
        if out.is_empty() {
            out.push("no crash, no fault".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline() -> Baseline {
        Baseline {
            trail: (0..10).map(|i| format!("in-step:s{i}")).collect(),
            calls: vec![
                ("rds.promote-read-replica".into(), "us-west-2".into(), "db".into()),
                ("rds.describe-instance".into(), "us-west-2".into(), "db".into()),
            ],
        }
    }

    #[test]
    fn low_seeds_sweep_every_point_both_ways_and_a_seed_is_a_schedule() {
        let (b, sc) = (baseline(), Scenario::empty());
        for seed in 0..20 {
            let s = Schedule::of(seed, &b, &sc, 1);
            assert_eq!((s.crash_at.clone(), s.power_cut), (vec![seed / 2], seed % 2 == 1));
            assert!(s.faults.is_empty());
        }
        for seed in 20..200 {
            assert_eq!(format!("{:?}", Schedule::of(seed, &b, &sc, 2)), format!("{:?}", Schedule::of(seed, &b, &sc, 2)));
        }
        assert!((20..200).any(|seed| !Schedule::of(seed, &b, &sc, 1).faults.is_empty()));
        assert!((20..200).all(|seed| Schedule::of(seed, &b, &sc, 1).takeover.is_none()));
        // Stale reads are drawn on reads only, for the resource read.
        let stale: Vec<Fault> = (20..400).flat_map(|seed| Schedule::of(seed, &b, &sc, 1).fault_specs).filter(|f| f.effect == FaultEffect::Stale).collect();
        assert!(!stale.is_empty());
        assert!(stale.iter().all(|f| f.call == "rds.describe-instance" && f.resource.as_deref() == Some("db")), "{stale:?}");
        // Two agents: after the crash sweep, a stall at every point in turn.
        assert_eq!(Schedule::of(25, &b, &sc, 2).takeover, Some(5));
        assert!((30..300).any(|seed| Schedule::of(seed, &b, &sc, 2).takeover.is_some()));
    }
}
