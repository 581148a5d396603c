//! `drover`: the command-line front of the agent.
//!
//! Exit codes: 0 the command (or run) succeeded; 1 the run ended `failed`;
//! 2 bad input or an error before or around the run (the message says what
//! and what to do); 3 the run ended `cancelled`; 130 interrupted (the run
//! stays resumable).

mod commands;
mod config;
mod home;
mod progress;
mod remote;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Durable disaster-recovery runbooks: run, resume and inspect them.
#[derive(Parser)]
#[command(name = "drover", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// The agent's home: run store, kept runbooks, compile cache.
    /// Default: $DROVER_HOME, else the platform data directory (~/.local/share/drover).
    #[arg(long, global = true, env = "DROVER_HOME", value_name = "DIR")]
    home: Option<PathBuf>,

    /// The agent's configuration (limits, signing, grants; see docs/drover.toml).
    /// Default: $DROVER_CONFIG, else drover.toml in the home.
    #[arg(long, global = true, env = "DROVER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Log format on stderr: text, or json (one object per line, for log
    /// shippers). Levels: $DROVER_LOG (default: info for serve, error for simulate, else warn).
    #[arg(long, global = true, env = "DROVER_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a runbook component. Prints the run id; with --run-id of an
    /// existing run, continues it or reports how it ended (no step runs twice).
    Run(commands::run::Args),
    /// Resume a run that was interrupted (crash, kill, reboot) from its journal.
    Resume(commands::resume::Args),
    /// Cancel a run: it stops at its next step boundary (or at once in a
    /// durable sleep), runs its undos and cleanups, and ends `cancelled`.
    Cancel(commands::cancel::Args),
    /// Take a failed or cancelled run up again from the step it stopped at
    /// (or --from an earlier one): completed steps are replayed from the
    /// journal, never executed again; recorded with the run and audited.
    Redrive(commands::redrive::Args),
    /// Pause a run: it stops at its next step boundary and waits (durably,
    /// across restarts) until unpaused; recorded and audited.
    Pause(commands::pause::Args),
    /// Let a paused run go on.
    Unpause(commands::pause::Args),
    /// Skip a step that waits for an operator after it failed for good (the
    /// runbook declared what a skip returns), or pass an approval gate;
    /// recorded and audited.
    Skip(commands::skip::Args),
    /// Push a runbook component (and its signature) to an OCI registry.
    Push(commands::push::Args),
    /// Pull a runbook from an OCI registry to a file (and its signature),
    /// checked by digest and, when required, by signature.
    Pull(commands::pull::Args),
    /// Clear the hold a failed automatic run puts on its scope: triggers
    /// may start runs there again (anti-flapping; recorded with the run).
    Unblock(commands::unblock::Args),
    /// Take a run away from a driver that is gone (its container re-created
    /// under a new host name): refused while that driver's lease is live
    /// unless --force; recorded with the run and in the audit log.
    Takeover(commands::takeover::Args),
    /// Approve (or --reject) the approval gate a run waits at.
    Approve(commands::approve::Args),
    /// List the approval gates waiting for a decision.
    Approvals(commands::approve::ListArgs),
    /// List runs, newest first.
    Runs(commands::runs::Args),
    /// Show one run: status, timeline of steps, outputs and errors.
    Show(commands::show::Args),
    /// Show what a runbook declares: name, version, parameters, capabilities.
    Inspect(commands::inspect::Args),
    /// Would a run succeed right now? Checks, changing nothing, every
    /// condition the runbook depends on (exit 0 ready, 1 not ready).
    Readiness(commands::readiness::Args),
    /// Create a runbook crate that builds to a component: Cargo.toml,
    /// src/lib.rs with a two-step example, README.
    New(commands::new::Args),
    /// Run a compiled runbook against a simulated cloud (no AWS, no
    /// emulators, simulated time): prints the run, its calls and the state
    /// it leaves. The scenario (TOML) gives the resources and the faults.
    Test(commands::test::Args),
    /// Deterministic simulation: run a compiled runbook under thousands of
    /// seeded schedules of crashes and faults against the simulated cloud,
    /// checking after each that the failover's invariants hold; a broken one
    /// prints a seed that replays it (`--seed S`).
    Simulate(commands::simulate::Args),
    /// Static checks before deploying a runbook: contract version,
    /// description, documented parameters, narrow capabilities, grants,
    /// signature (exit 0 ready, 1 not).
    Check(commands::check::Args),
    /// Write a run's report: RUN_ID.md and a self-contained RUN_ID.html with
    /// its timeline, RTO against the objective, RPO estimate, what changed.
    Report(commands::report::Args),
    /// Run as a service: drills on schedules, incident triggers (Alertmanager,
    /// SNS, generic JSON), approvals and the HTTP API, per `[serve]` in the
    /// configuration. Resumes the runs left in flight; SIGTERM stops it
    /// without losing a step.
    Serve(commands::serve::Args),
    /// The run store: `drover store init` creates the one the configuration
    /// names (the shared DynamoDB table of agents in several regions).
    Store(commands::store::Args),
    /// Make an ed25519 key pair for signing runbooks: PREFIX.key and PREFIX.pub.
    Keygen(commands::keygen::Args),
    /// Sign a runbook component: writes RUNBOOK.wasm.sig over its exact bytes.
    Sign(commands::sign::Args),
    /// Check that a trusted key signed a runbook component's exact bytes.
    Verify(commands::verify::Args),
}

/// `drover show RUN | head`: when the reader of the output goes away, end
/// quietly, as Unix tools do (exit 141, what a shell reports for SIGPIPE),
/// instead of printing a panic. Rust ignores SIGPIPE, so that a socket
/// reports EPIPE rather than killing the process (resetting it is unsafe
/// for commands that talk to AWS), and `println!` then panics on EPIPE.
fn quiet_on_broken_pipe() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied()).unwrap_or("");
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        previous(info);
    }));
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A store that hits a file size limit must fail its write (EFBIG), which
    // the journal reports and the run survives, not kill the agent outright.
    // SAFETY: setting a signal's disposition to ignore, before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    quiet_on_broken_pipe();
    // A simulation crashes its runs thousands of times on purpose: its
    // report says what matters.
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        Command::Simulate(_) => "error",
        _ => "warn",
    };
    let telemetry = telemetry::Telemetry::init(cli.log_format == LogFormat::Json, default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            telemetry.shutdown();
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        let home = home::Home::resolve(cli.home, cli.config)?;
        match cli.command {
            Command::Run(a) => commands::run::exec(&home, a).await,
            Command::Resume(a) => commands::resume::exec(&home, a).await,
            Command::Cancel(a) => commands::cancel::exec(&home, a).await,
            Command::Redrive(a) => commands::redrive::exec(&home, a).await,
            Command::Pause(a) => commands::pause::exec(&home, a, true).await,
            Command::Unpause(a) => commands::pause::exec(&home, a, false).await,
            Command::Unblock(a) => commands::unblock::exec(&home, a).await,
            Command::Skip(a) => commands::skip::exec(&home, a).await,
            Command::Push(a) => commands::push::exec(&home, a).await,
            Command::Pull(a) => commands::pull::exec(&home, a).await,
            Command::Takeover(a) => commands::takeover::exec(&home, a).await,
            Command::Approve(a) => commands::approve::exec(&home, a).await,
            Command::Approvals(a) => commands::approve::list(&home, a).await,
            Command::Runs(a) => commands::runs::exec(&home, a).await,
            Command::Show(a) => commands::show::exec(&home, a).await,
            Command::Inspect(a) => commands::inspect::exec(&home, a).await,
            Command::Readiness(a) => commands::readiness::exec(&home, a).await,
            Command::Report(a) => commands::report::exec(&home, a).await,
            Command::Check(a) => commands::check::exec(&home, a).await,
            Command::Test(a) => commands::test::exec(&home, a).await,
            Command::Simulate(a) => commands::simulate::exec(&home, a).await,
            Command::New(a) => commands::new::exec(a),
            Command::Serve(a) => commands::serve::exec(&home, a).await,
            Command::Store(a) => commands::store::exec(&home, a).await,
            Command::Keygen(a) => commands::keygen::exec(a),
            Command::Sign(a) => commands::sign::exec(a),
            Command::Verify(a) => commands::verify::exec(&home, a).await,
        }
    });
    drop(runtime);
    telemetry.shutdown();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
