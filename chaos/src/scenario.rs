//! Game-day scenario files (TOML): what to seed, which runbook to run with
//! which parameters, which faults to inject and when, what else happens to
//! the world during the run, the steady-state hypothesis checked before and
//! after, and the outcome expected. `chaos/README.md` documents the format;
//! `chaos/scenarios/` holds the ones drover ships.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer};

use crate::faults::{Fault, Rule};
use crate::hypothesis::Probe;

/// A game-day.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name (lowercase letters, digits, `-`): names the seeded topology and the output.
    pub name: String,
    /// What it proves, for the report.
    #[serde(default)]
    pub description: String,
    /// A reference runbook by name (`regional-failover`), or a component path
    /// (ending in `.wasm`, relative to the scenario file).
    pub runbook: String,
    /// Which parameters the seeded topology hands the runbook.
    #[serde(default)]
    pub param_set: ParamSet,
    /// More parameters, or overrides (`rto_seconds = 120`).
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// Seeds the fault rates and the choice of crash points.
    #[serde(default)]
    pub seed: u64,
    /// Longest a run may take before the game-day calls it hung.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Faults and when they are on.
    #[serde(default)]
    pub faults: Vec<FaultWindow>,
    /// Things that happen to the world during the run.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// Crash-restart: SIGKILL the agent at each of these points, resume,
    /// and check that every run converges.
    #[serde(default)]
    pub crash: Option<CrashSweep>,
    /// Faults of the agent's own run store.
    #[serde(default)]
    pub store_faults: Vec<StoreFault>,
    /// The steady state before and after.
    #[serde(default)]
    pub hypothesis: Hypothesis,
    /// The outcome expected.
    pub expect: Expect,
    /// What changes in the full form (`--full`); the default is the short form CI runs.
    #[serde(default)]
    pub full: Option<Full>,
}

fn default_timeout() -> u64 {
    300
}

/// The parameter sets of the seeded topology.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamSet {
    /// `regional-failover`'s.
    #[default]
    Failover,
    /// `failback`'s.
    Failback,
    /// `dr-drill`'s.
    Drill,
    /// `dns-shift`'s (gated on the DR health check and alarm).
    Shift,
}

/// When something starts or stops.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// When the run starts.
    Start,
    /// Once step KEY has completed (succeeded or failed for good).
    AfterStep(String),
    /// This many seconds after the run started.
    AfterSeconds(f64),
    /// When the run ends (the default stop).
    End,
}

impl<'de> Deserialize<'de> for Trigger {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Trigger::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Trigger {
    /// `start`, `end`, `after-step:KEY` or `after-seconds:N`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            None if s == "start" => Ok(Trigger::Start),
            None if s == "end" => Ok(Trigger::End),
            Some(("after-step", key)) if !key.is_empty() => Ok(Trigger::AfterStep(key.to_string())),
            Some(("after-seconds", n)) => {
                n.parse::<f64>().ok().filter(|n| *n >= 0.0).map(Trigger::AfterSeconds).ok_or_else(|| format!("'{s}': not a number of seconds"))
            }
            _ => Err(format!("'{s}' is not a trigger (start, end, after-step:KEY, after-seconds:N)")),
        }
    }
}

/// A fault rule and when it is on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultWindow {
    /// When it switches on (default: the start).
    #[serde(default = "start")]
    pub start: Trigger,
    /// When it switches off (default: the end).
    #[serde(default = "end")]
    pub stop: Trigger,
    /// The rule.
    pub rule: Rule,
}

fn start() -> Trigger {
    Trigger::Start
}

fn end() -> Trigger {
    Trigger::End
}

/// Something that happens to the world at a moment of the run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// When.
    pub at: Trigger,
    /// Set the DR side's 5xx alarm to this state (`ALARM`, `OK`).
    #[serde(default)]
    pub alarm: Option<String>,
    /// Delete the DR replica (the DR region lost it).
    #[serde(default)]
    pub delete_replica: bool,
}

/// A fault of the agent's run store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreFault {
    /// When it strikes.
    pub at: Trigger,
    /// What happens to the store.
    pub kind: StoreFaultKind,
}

/// What happens to the run store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreFaultKind {
    /// The store's files can no longer grow: the kernel refuses the agent's
    /// writes past 4 KiB (a file size limit set on the running process,
    /// `RLIMIT_FSIZE`), as a full disk would. The agent must stop with the
    /// run resumable; the game-day then resumes it with the store recovered
    /// (a new process, no limit) and checks that no completed step ran again.
    Full,
}

/// The crash points of a crash-restart sweep.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashSweep {
    /// Crash after every step boundary of the runbook (`after-step:KEY` for
    /// each step a clean run makes).
    #[serde(default)]
    pub every_step_boundary: bool,
    /// This many more points inside steps (`in-step:KEY`, before the body
    /// runs, or `before-complete:KEY`, after it ran and before its outcome
    /// is journaled), chosen with the scenario's seed.
    #[serde(default)]
    pub random_inside: usize,
    /// Explicit points (`DROVER_FAILPOINTS` syntax).
    #[serde(default)]
    pub points: Vec<String>,
}

/// The steady-state hypothesis.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hypothesis {
    /// What must hold before the run.
    #[serde(default)]
    pub before: Vec<Probe>,
    /// What must hold after it.
    #[serde(default)]
    pub after: Vec<Probe>,
}

/// How the run must end.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `succeeded` or `failed`.
    pub outcome: String,
    /// For a failed run: its error code.
    #[serde(default)]
    pub error_code: Option<String>,
    /// The run's RTO must be within this many seconds.
    #[serde(default)]
    pub rto_budget_seconds: Option<f64>,
    /// The RTO must be within this factor of a clean run's (the scenario
    /// run first with only its latency faults on).
    #[serde(default)]
    pub rto_factor_of_clean: Option<f64>,
    /// Each must appear in one of the run's warnings.
    #[serde(default)]
    pub warnings_contain: Vec<String>,
    /// Most requests of `service:Operation` the emulators may accept (a 2xx
    /// answer: the side effects, counted at the proxy), e.g.
    /// `"rds:PromoteReadReplica" = 1`. A request refused (a snapshot that
    /// already exists) took no effect and is not counted.
    #[serde(default)]
    pub max_accepted: BTreeMap<String, u64>,
}

/// The full form's changes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Full {
    /// Parameters to add or override.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// Faults in place of the short form's.
    #[serde(default)]
    pub faults: Option<Vec<FaultWindow>>,
    /// Random crash points in place of the short form's number.
    #[serde(default)]
    pub random_inside: Option<usize>,
    /// Timeout in place of the short form's.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// A scenario that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("scenario {path}: {why}")]
pub struct ScenarioError {
    /// The file.
    pub path: String,
    /// What is wrong with it.
    pub why: String,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let err = |why: String| ScenarioError { path: path.display().to_string(), why };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot be read: {e}")))?;
        let s: Scenario = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        s.validate().map_err(err)?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(format!("name '{}': use lowercase letters, digits and '-'", self.name));
        }
        if !["succeeded", "failed"].contains(&self.expect.outcome.as_str()) {
            return Err(format!("expect.outcome '{}': succeeded or failed", self.expect.outcome));
        }
        let full_faults = self.full.as_ref().and_then(|f| f.faults.as_ref());
        for (prefix, list) in [("faults", Some(&self.faults)), ("full.faults", full_faults)] {
            let Some(list) = list else { continue };
            for (i, w) in list.iter().enumerate() {
                w.rule.validate().map_err(|e| format!("{prefix}[{i}]: {e}"))?;
                if w.start == Trigger::End {
                    return Err(format!("{prefix}[{i}]: a fault cannot start at the end"));
                }
            }
            if self.expect.rto_factor_of_clean.is_some() && !list.iter().any(|w| w.rule.kind != Fault::Latency) {
                return Err(format!("expect.rto_factor_of_clean compares with a run without the error faults, but {prefix} has none"));
            }
        }
        for (i, a) in self.actions.iter().enumerate() {
            if a.alarm.is_none() && !a.delete_replica {
                return Err(format!("actions[{i}]: does nothing (give alarm = \"ALARM\" or delete_replica = true)"));
            }
            if a.at == Trigger::End {
                return Err(format!("actions[{i}]: at = \"end\" would act after the run; give a moment during it"));
            }
            if let Some(state) = &a.alarm
                && !["ALARM", "OK", "INSUFFICIENT_DATA"].contains(&state.as_str())
            {
                return Err(format!("actions[{i}]: alarm state '{state}' (ALARM, OK or INSUFFICIENT_DATA)"));
            }
        }
        for (i, f) in self.store_faults.iter().enumerate() {
            if f.at == Trigger::End {
                return Err(format!("store_faults[{i}]: at = \"end\" would strike after the run; give a moment during it"));
            }
        }
        Ok(())
    }

    /// The scenario in its full form.
    pub fn into_full(mut self) -> Self {
        if let Some(full) = self.full.take() {
            self.params.extend(full.params);
            if let Some(f) = full.faults {
                self.faults = f;
            }
            if let (Some(n), Some(c)) = (full.random_inside, self.crash.as_mut()) {
                c.random_inside = n;
            }
            if let Some(t) = full.timeout_seconds {
                self.timeout_seconds = t;
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_parse_and_bad_ones_are_named() {
        assert_eq!(Trigger::parse("after-step:stage-50").unwrap(), Trigger::AfterStep("stage-50".into()));
        assert_eq!(Trigger::parse("after-seconds:1.5").unwrap(), Trigger::AfterSeconds(1.5));
        assert!(Trigger::parse("after-step:").is_err());
        assert!(Trigger::parse("sometime").unwrap_err().contains("not a trigger"));
    }

    #[test]
    fn every_shipped_scenario_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(path.file_stem().unwrap().to_str().unwrap(), s.name, "file named after the scenario");
                n += 1;
            }
        }
        assert!(n >= 5, "{n} scenarios");
    }

    #[test]
    fn a_bad_scenario_says_what_is_wrong() {
        let dir = tempfile_dir();
        let p = dir.join("bad.toml");
        std::fs::write(&p, "name = \"bad\"\nrunbook = \"x\"\n[expect]\noutcome = \"maybe\"\n").unwrap();
        assert!(Scenario::load(&p).unwrap_err().to_string().contains("expect.outcome 'maybe'"));
        std::fs::write(&p, "name = \"bad\"\nrunbook = \"x\"\n[expect]\noutcome = \"failed\"\n[[faults]]\nrule = { kind = \"latency\" }\n").unwrap();
        assert!(Scenario::load(&p).unwrap_err().to_string().contains("needs ms"));
        std::fs::write(&p, "name = \"bad\"\nrunbok = \"x\"\n").unwrap();
        assert!(Scenario::load(&p).unwrap_err().to_string().contains("runbok"));
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("drover-scenario-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
