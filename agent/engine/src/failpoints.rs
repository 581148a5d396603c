//! Crash injection for tests and game-days: `DROVER_FAILPOINTS` makes the
//! agent kill itself with SIGKILL at a named point of a named step, exactly as
//! a crash or an OOM kill would. The chaos suite sweeps these points.
//!
//! Syntax: a comma-separated list of `POINT:STEP`, where POINT is one of
//! `before-step` (before the step is journaled), `in-step` (after its begin is
//! journaled, before the body runs), `before-complete` (the body returned, its
//! outcome not yet journaled), `after-step` (the outcome is durable) and
//! `in-sleep` (the wake-up time of a sleep is durable; STEP is the enclosing
//! step, or `-` outside any step), `after-call` (a capability call took
//! effect, its answer has not reached the runbook) and `after-commit` (any
//! journal write returned; STEP is the step open, or `-`). Unset, every
//! check is one relaxed load.
//!
//! Under a deterministic simulation the same points (`Durable::point`) are
//! where the simulation crashes the agent in-process instead.
//!
//! `POINT:STEP=stop` freezes the process with SIGSTOP instead, once, as a
//! paused VM or a stalled host would; SIGCONT lets it go on. Agents sharing
//! a store use it to show that a driver waking from a pause is fenced out.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// A point where a crash can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// Before a step is journaled.
    BeforeStep,
    /// After a step's begin is journaled, before its body runs.
    InStep,
    /// After the body returned, before its outcome is journaled.
    BeforeComplete,
    /// After a step's outcome is durable.
    AfterStep,
    /// After a sleep's wake-up time is durable.
    InSleep,
    /// After a capability call took effect, before its answer reaches the
    /// runbook.
    AfterCall,
    /// After any journal commit returned.
    AfterCommit,
}

impl Failpoint {
    /// The point's name, as `DROVER_FAILPOINTS` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Failpoint::BeforeStep => "before-step",
            Failpoint::InStep => "in-step",
            Failpoint::BeforeComplete => "before-complete",
            Failpoint::AfterStep => "after-step",
            Failpoint::InSleep => "in-sleep",
            Failpoint::AfterCall => "after-call",
            Failpoint::AfterCommit => "after-commit",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "before-step" => Failpoint::BeforeStep,
            "in-step" => Failpoint::InStep,
            "before-complete" => Failpoint::BeforeComplete,
            "after-step" => Failpoint::AfterStep,
            "in-sleep" => Failpoint::InSleep,
            "after-call" => Failpoint::AfterCall,
            "after-commit" => Failpoint::AfterCommit,
            _ => return None,
        })
    }
}

/// The environment variable that arms failpoints.
pub const ENV: &str = "DROVER_FAILPOINTS";

/// What an armed failpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// SIGKILL: a crash.
    Kill,
    /// SIGSTOP, once: a pause until SIGCONT.
    Stop,
}

fn armed() -> &'static [(Failpoint, String, Action)] {
    static ARMED: OnceLock<Vec<(Failpoint, String, Action)>> = OnceLock::new();
    ARMED.get_or_init(|| std::env::var(ENV).map(|v| parse(&v)).unwrap_or_default())
}

/// Parses a `DROVER_FAILPOINTS` value; unknown points are reported on stderr
/// and ignored, so a typo never kills a production run.
pub fn parse(spec: &str) -> Vec<(Failpoint, String, Action)> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (target, action) = match item.split_once('=') {
            None => (item, Some(Action::Kill)),
            Some((t, "stop")) => (t, Some(Action::Stop)),
            Some((t, "kill")) => (t, Some(Action::Kill)),
            Some((t, _)) => (t, None),
        };
        match (target.split_once(':').and_then(|(p, k)| Some((Failpoint::parse(p)?, k.to_string()))), action) {
            (Some((p, k)), Some(a)) => out.push((p, k, a)),
            _ => eprintln!("drover: ignoring malformed {ENV} entry '{item}'"),
        }
    }
    out
}

/// Whether `point` is armed for `step` (in this process's `DROVER_FAILPOINTS`).
pub fn is_armed(point: Failpoint, step: &str) -> bool {
    let step = if step.is_empty() { "-" } else { step };
    armed().iter().any(|(p, k, _)| *p == point && k == step)
}

/// Kills (or freezes) this process if `point` is armed for `step`.
pub fn hit(point: Failpoint, step: &str) {
    static STOPPED: AtomicBool = AtomicBool::new(false);
    let step = if step.is_empty() { "-" } else { step };
    for (_, _, action) in armed().iter().filter(|(p, k, _)| *p == point && k == step) {
        let signal = match action {
            Action::Kill => libc::SIGKILL,
            Action::Stop if !STOPPED.swap(true, Ordering::SeqCst) => libc::SIGSTOP,
            Action::Stop => continue,
        };
        let what = if signal == libc::SIGKILL { "killing this process (SIGKILL)" } else { "freezing this process (SIGSTOP) until SIGCONT" };
        eprintln!("drover: failpoint {}:{step} hit, {what}", point.name());
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points_and_ignores_junk() {
        let v = parse("after-step:plan, in-sleep:-,bogus:x,nocolon,in-step:promote=stop,in-step:x=maybe");
        assert_eq!(
            v,
            vec![
                (Failpoint::AfterStep, "plan".into(), Action::Kill),
                (Failpoint::InSleep, "-".into(), Action::Kill),
                (Failpoint::InStep, "promote".into(), Action::Stop),
            ]
        );
        for p in [
            Failpoint::BeforeStep,
            Failpoint::InStep,
            Failpoint::BeforeComplete,
            Failpoint::AfterStep,
            Failpoint::InSleep,
            Failpoint::AfterCall,
            Failpoint::AfterCommit,
        ] {
            assert_eq!(Failpoint::parse(p.name()), Some(p));
        }
    }
}
