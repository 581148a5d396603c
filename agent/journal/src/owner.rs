//! Who drives a run, and whether that driver is still alive.

use crate::Owner;

/// The current process as a run owner.
pub fn current_owner() -> Owner {
    let pid = std::process::id();
    Owner { host: host_name(), pid, start_ticks: process_start_ticks(pid).unwrap_or(0) }
}

/// Whether `owner` is a live process. An owner on another host is assumed
/// alive: only its lease can tell (every store's claims are leases, see
/// [`crate::RunRecord::driver_gone`]).
pub fn owner_is_alive(owner: &Owner) -> bool {
    if owner.host != host_name() {
        return true;
    }
    match process_start_ticks(owner.pid) {
        // The pid exists; it is our driver only if it started when the driver did.
        Some(ticks) => owner.start_ticks == 0 || ticks == owner.start_ticks,
        None => false,
    }
}

/// The environment variable that overrides the host name a driver records
/// (a test hook: the end-to-end tests play a container re-created under
/// another host name with it). Unset, the kernel's host name is used.
pub const HOST_NAME_ENV: &str = "DROVER_HOST_NAME";

fn host_name() -> String {
    if let Some(name) = std::env::var(HOST_NAME_ENV).ok().filter(|s| !s.trim().is_empty()) {
        return name.trim().to_string();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Field 22 of /proc/PID/stat: the process start time in clock ticks after
/// boot. `None` when the process does not exist (or is a zombie).
fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // `rest` starts at field 3 (state).
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive() {
        let me = current_owner();
        assert!(me.start_ticks > 0);
        assert!(owner_is_alive(&me));
    }

    #[test]
    fn recycled_pid_is_not_the_driver() {
        let mut me = current_owner();
        me.start_ticks += 1;
        assert!(!owner_is_alive(&me));
    }

    #[test]
    fn dead_process_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let owner = Owner { host: current_owner().host, pid, start_ticks: 1 };
        assert!(!owner_is_alive(&owner));
    }

    #[test]
    fn other_host_is_assumed_alive() {
        let owner = Owner { host: "elsewhere.invalid".into(), pid: 1, start_ticks: 1 };
        assert!(owner_is_alive(&owner));
    }
}
