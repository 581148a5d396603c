//! Parallel sections: what a section and its branches may be named, how many
//! a run may start, the journal key and run id they take, and the replay rule
//! for a section (the same branches, names and inputs, in the same order).

use crate::{Violation, check_key};

/// Branches a run may start, all its sections together, unless the agent's
/// configuration says otherwise (`limits.max_branches`).
pub const DEFAULT_MAX_BRANCHES: usize = 256;

/// Longest branch name, in bytes.
pub const MAX_BRANCH_NAME_LEN: usize = 64;

/// The journaled step a section `key` is recorded under: `section:KEY`
/// (runbook keys cannot hold a `:`).
pub fn step_key(key: &str) -> String {
    format!("section:{key}")
}

/// The section key of a journaled step key, if it is one.
pub fn parse_step_key(step_key: &str) -> Option<&str> {
    step_key.strip_prefix("section:")
}

/// The run id of branch `name` of section `key` of run `run_id`:
/// `RUN.KEY.NAME`, a `/` of the key written `-`. Deterministic, so a resumed
/// section finds the branches it started; two sections whose keys differ
/// only by `/` and `-` would share ids, which the agent detects and refuses.
pub fn branch_run_id(run_id: &str, key: &str, name: &str) -> String {
    format!("{run_id}.{}.{name}", key.replace('/', "-"))
}

/// Checks a branch name: 1 to 64 bytes of lowercase letters, digits, `-`,
/// `_` and `.` (it becomes part of the branch's run id).
pub fn check_branch_name(section: &str, name: &str) -> Result<(), Violation> {
    let bad = |reason: &str| {
        Err(Violation::BadRequest(format!(
            "branch '{}' of parallel section '{section}' is invalid: {reason}",
            name.chars().take(MAX_BRANCH_NAME_LEN).collect::<String>()
        )))
    };
    if name.is_empty() {
        return bad("its name is empty");
    }
    if name.len() > MAX_BRANCH_NAME_LEN {
        return bad("its name is longer than 64 bytes");
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')) {
        return bad("use lowercase letters, digits, '-', '_' and '.' in branch names");
    }
    Ok(())
}

/// Checks a section `key` asking for branches `names`, in a run that has
/// started `started` branches so far and may start `max` in all.
pub fn check_section(key: &str, names: &[&str], started: usize, max: usize) -> Result<(), Violation> {
    check_key(key)?;
    if names.is_empty() {
        return Err(Violation::BadRequest(format!("parallel section '{key}' was asked for with no branch; give it at least one")));
    }
    let mut seen = std::collections::HashSet::new();
    for name in names {
        check_branch_name(key, name)?;
        if !seen.insert(*name) {
            return Err(Violation::BadRequest(format!("branch '{name}' appears twice in parallel section '{key}'; branch names are unique within a section")));
        }
    }
    if started + names.len() > max {
        return Err(Violation::BadRequest(format!(
            "parallel section '{key}' asks for {} branches, and the run has started {started} already: more than the {max} a run may start \
             (limit max_branches under [limits] in the agent's configuration); split the work or raise the limit",
            names.len()
        )));
    }
    Ok(())
}

/// A section asked for where it cannot run: inside step `step`'s body.
pub fn in_step(key: &str, step: &str) -> Violation {
    Violation::BadRequest(format!("parallel section '{key}' was started inside step '{step}'; start sections between steps"))
}

/// A section asked for inside branch `branch` (sections do not nest).
pub fn in_branch(key: &str, branch: &str) -> Violation {
    Violation::BadRequest(format!("parallel section '{key}' was started inside branch '{branch}'; sections do not nest: start it from run()"))
}

/// A section asked for while cleanups and undos run.
pub fn in_finalize(key: &str) -> Violation {
    Violation::BadRequest(format!("parallel section '{key}' was started inside finalize(); cleanups and undos cannot start branches"))
}

/// The replay rule of a section: the branches asked for now (`requested`,
/// name and input) must be the ones recorded at journal position `seq`.
pub fn check_same_branches(seq: u64, key: &str, recorded: &[(String, String)], requested: &[(String, String)]) -> Result<(), Violation> {
    if recorded == requested {
        return Ok(());
    }
    let names = |b: &[(String, String)]| b.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
    let (was, now) = (names(recorded), names(requested));
    let what = if was == now { format!("branches {now} with other inputs") } else { format!("branches {now}") };
    Err(Violation::NonDeterminism {
        seq,
        recorded: format!("parallel section '{key}' with branches {was}"),
        requested: format!("parallel section '{key}' with {what}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ids_and_limits() {
        assert_eq!(step_key("fleet"), "section:fleet");
        assert_eq!(parse_step_key("section:fleet"), Some("fleet"));
        assert_eq!(parse_step_key("fleet"), None);
        assert_eq!(branch_run_id("r1", "promote/all", "db-1"), "r1.promote-all.db-1");
        assert!(check_section("fleet", &["db-1", "db-2"], 0, 2).is_ok());
        for (names, want) in [
            (vec![], "with no branch"),
            (vec!["a", "a"], "appears twice"),
            (vec!["A"], "use lowercase"),
            (vec!["a/b"], "use lowercase"),
            (vec!["a", "b", "c"], "more than the 2 a run may start"),
        ] {
            let e = check_section("fleet", &names, 0, 2).unwrap_err().to_string();
            assert!(e.contains(want), "{names:?}: {e}");
        }
        assert!(check_section("fleet", &["a"], 2, 2).unwrap_err().to_string().contains("has started 2 already"));
    }

    #[test]
    fn a_section_replays_only_with_the_same_branches() {
        let b = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        let rec = b(&[("a", "1"), ("b", "2")]);
        assert!(check_same_branches(3, "s", &rec, &rec).is_ok());
        let e = check_same_branches(3, "s", &rec, &b(&[("a", "1")])).unwrap_err();
        assert!(e.is_non_determinism());
        assert!(
            e.to_string().contains("recorded parallel section 's' with branches a, b, but the runbook now asks for parallel section 's' with branches a."),
            "{e}"
        );
        let e = check_same_branches(3, "s", &rec, &b(&[("a", "1"), ("b", "3")])).unwrap_err();
        assert!(e.to_string().contains("with branches a, b with other inputs"), "{e}");
    }
}
