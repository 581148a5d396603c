//! drover's game-day toolkit.
//!
//! This first part is the crash-restart harness: it drives the real `drover`
//! binary in a home of its own, kills it with SIGKILL at chosen points (from
//! outside, or from inside through the agent's `DROVER_FAILPOINTS`), and reads
//! back what the run journal says. The end-to-end tests and the crash-restart
//! sweeps of game-days are built on it.

pub mod aws_request;
pub mod error_shape;
pub mod exact_delete;
pub mod faults;
pub mod fleet;
pub mod gameday;
pub mod hypothesis;
pub mod proxy;
pub mod report;
pub mod scenario;
pub mod states;
pub mod topology;

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use drover_journal::{AttemptRecord, Journal, SqliteJournal};
use serde_json::Value;

/// The environment variable through which the agent arms crash points.
pub const FAILPOINTS_ENV: &str = "DROVER_FAILPOINTS";

/// What went wrong driving the agent.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// The binary could not be started.
    #[error("cannot start {bin}: {source}")]
    Spawn {
        /// The binary.
        bin: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The agent printed something that is not the JSON asked for.
    #[error("`drover {args}` did not print JSON ({source}); stdout: {stdout}; stderr: {stderr}")]
    NotJson {
        /// The arguments.
        args: String,
        /// Parse error.
        source: serde_json::Error,
        /// What it printed.
        stdout: String,
        /// Its stderr.
        stderr: String,
    },
    /// A condition did not come true in time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
}

/// The `drover` binary next to the running test executable (`target/<profile>/drover`),
/// or the one named by `DROVER_BIN`.
pub fn drover_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("DROVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/drover-chaos -> target/<profile>/drover;
    // target/<profile>/deps/<test> -> target/<profile>/drover.
    let dir = exe.parent().expect("the executable has a directory");
    let bin = if dir.ends_with("deps") { dir.parent().unwrap_or(dir).join("drover") } else { dir.join("drover") };
    assert!(bin.exists(), "{} does not exist: build it first (`cargo build -p drover`) or set DROVER_BIN", bin.display());
    bin
}

/// One agent home, driven through the real binary.
pub struct Agent {
    /// The binary.
    pub bin: PathBuf,
    /// Its `DROVER_HOME`.
    pub home: PathBuf,
    /// Extra environment for every command.
    pub env: Vec<(String, String)>,
}

impl Agent {
    /// An agent using `home` (created if needed).
    pub fn new(home: impl Into<PathBuf>) -> Self {
        let home = home.into();
        std::fs::create_dir_all(&home).expect("create home");
        Agent { bin: drover_bin(), home, env: Vec::new() }
    }

    /// Adds `key=value` to the environment of every command.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// A command for `drover ARGS` in this home, with no failpoints armed.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("DROVER_HOME", &self.home)
            .env_remove(FAILPOINTS_ENV)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        c
    }

    /// Runs `drover ARGS` to completion.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("drover runs")
    }

    /// Runs `drover ARGS` (which must include `--json`) and parses its stdout.
    pub fn json(&self, args: &[&str]) -> Result<(ExitStatus, Value), ChaosError> {
        let out = self.output(args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let v = serde_json::from_str(&stdout).map_err(|source| ChaosError::NotJson {
            args: args.join(" "),
            source,
            stdout: stdout.clone(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        })?;
        Ok((out.status, v))
    }

    /// Starts `drover ARGS` in the background with `failpoints` armed (empty: none).
    pub fn spawn(&self, args: &[&str], failpoints: &str) -> Result<Child, ChaosError> {
        let mut c = self.command(args);
        if !failpoints.is_empty() {
            c.env(FAILPOINTS_ENV, failpoints);
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().map_err(|source| ChaosError::Spawn { bin: self.bin.clone(), source })
    }

    /// Starts `drover ARGS` in the background with `failpoints` armed, its
    /// stdout and stderr appended to `log` (a long run under faults logs a
    /// lot: a pipe nobody reads would block it).
    pub fn spawn_logged(&self, args: &[&str], failpoints: &str, log: &std::path::Path) -> Result<Child, ChaosError> {
        let spawn_err = |source| ChaosError::Spawn { bin: self.bin.clone(), source };
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).map_err(spawn_err)?;
        let mut c = self.command(args);
        if !failpoints.is_empty() {
            c.env(FAILPOINTS_ENV, failpoints);
        }
        c.stdout(file.try_clone().map_err(spawn_err)?).stderr(file);
        c.spawn().map_err(spawn_err)
    }

    /// `drover show RUN_ID --json`, or `None` if the run does not exist yet.
    pub fn show(&self, run_id: &str) -> Option<Value> {
        let out = self.output(&["show", run_id, "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Every attempt of every step body of run `run_id` (cleanups and undos
    /// included), read from the run store itself: the audit trail that shows
    /// whether a side effect could have happened twice.
    pub fn attempts(&self, run_id: &str) -> Vec<AttemptRecord> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        rt.block_on(async {
            let journal = SqliteJournal::open(self.home.join("runs.db")).expect("the run store opens");
            journal.attempts(run_id).await.expect("attempts are readable")
        })
    }

    /// How many attempts of step `key` run `run_id` started.
    pub fn attempt_count(&self, run_id: &str, key: &str) -> usize {
        self.attempts(run_id).iter().filter(|a| a.key == key).count()
    }

    /// Polls until run `run_id` has `status`.
    pub fn wait_for_status(&self, run_id: &str, status: &str, timeout: Duration) -> Result<Value, ChaosError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.show(run_id)
                && v["status"] == status
            {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(ChaosError::Timeout(timeout, format!("run {run_id} to be {status}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Sends SIGKILL to `child` and reaps it.
pub fn kill9(child: &mut Child) -> ExitStatus {
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGKILL);
    }
    child.wait().expect("reap killed child")
}

/// Whether `status` is a death by SIGKILL.
pub fn killed_by_sigkill(status: &ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGKILL)
}
