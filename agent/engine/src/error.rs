//! Errors of the engine. Each says what failed, on what, and what to do.
//! A run that fails is not an engine error: it is a run outcome, journaled.

use std::path::PathBuf;

use drover_journal::JournalError;

/// What went wrong loading a runbook or driving a run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The file does not start with the WebAssembly magic number.
    #[error("{label} is not a WebAssembly file (it starts with {head}); give the .wasm component a runbook build produced")]
    NotWasm {
        /// File name.
        label: String,
        /// Its first bytes, printable.
        head: String,
    },
    /// A core module where a component was expected.
    #[error(
        "{label} is a core WebAssembly module, not a component; build runbooks with \
         `cargo build --target wasm32-wasip2` (or wrap a module with `wasm-tools component new`)"
    )]
    CoreModule {
        /// File name.
        label: String,
    },
    /// The component does not validate or compile.
    #[error("the component is invalid: {detail}")]
    InvalidComponent {
        /// What wasmtime said.
        detail: String,
    },
    /// The component imports a `drover:runbook` version this agent does not provide.
    #[error(
        "{label} was built against the runbook contract {found} ({import}), but this agent provides \
         drover:runbook@{supported}; rebuild the runbook with a drover-sdk for contract {supported}, \
         or upgrade the agent"
    )]
    UnsupportedContract {
        /// File name.
        label: String,
        /// The import.
        import: String,
        /// The version it asks for.
        found: String,
        /// Ours.
        supported: &'static str,
    },
    /// The component imports something the agent does not provide at all.
    #[error(
        "{label} imports '{import}', which drover does not provide; runbooks may import only \
         drover:runbook@{supported} and WASI 0.2"
    )]
    UnknownImport {
        /// File name.
        label: String,
        /// The import.
        import: String,
        /// Our contract version.
        supported: &'static str,
    },
    /// The component is not a runbook (wrong exports).
    #[error(
        "{label} is not a drover runbook: it must export `describe` and `run` (the drover:runbook \
         `runbook` world), but it exports [{exports}]"
    )]
    WrongWorld {
        /// File name.
        label: String,
        /// What it exports.
        exports: String,
    },
    /// `describe()` trapped or misbehaved.
    #[error("{label}: describe() failed: {detail}")]
    Describe {
        /// File name.
        label: String,
        /// What happened.
        detail: String,
    },
    /// `describe()` returned something unusable.
    #[error("runbook '{name}' describes itself wrongly: {detail}")]
    BadDescription {
        /// Runbook name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// The runbook declares capabilities the operator has not granted.
    #[error(
        "runbook '{runbook}' declares capabilities the operator has not granted, so it was not started:\n  - {}\n\
         grant them under [runbooks.{runbook}] in the agent's configuration (`drover inspect RUNBOOK` compares both), \
         or start it anyway with --accept-missing-grants (recorded with the run; the calls that need them are still refused)",
        missing.join("\n  - ")
    )]
    NotGranted {
        /// Runbook name.
        runbook: String,
        /// What is missing, one item per line.
        missing: Vec<String>,
    },
    /// `--param` names a parameter the runbook does not declare.
    #[error("runbook '{runbook}' has no parameter '{name}'; its parameters are: {known}")]
    UnknownParam {
        /// Runbook name.
        runbook: String,
        /// The parameter given.
        name: String,
        /// Declared names.
        known: String,
    },
    /// A parameter value does not fit its type.
    #[error("parameter '{name}': {detail}")]
    BadParam {
        /// Parameter.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// A required parameter is missing.
    #[error("runbook '{runbook}' requires parameter '{name}' ({ty}: {description}), which is required and has no default; give it with --param {name}=VALUE")]
    MissingParam {
        /// Runbook name.
        runbook: String,
        /// Parameter.
        name: String,
        /// Its type.
        ty: &'static str,
        /// Its description.
        description: String,
    },
    /// A run id is reused with another runbook or other parameters.
    #[error(
        "run '{run_id}' already exists with {what}; a run id names one run: pick a new id, \
         or `drover resume {run_id}` to continue that run"
    )]
    RunIdConflict {
        /// The run id.
        run_id: String,
        /// What differs.
        what: String,
    },
    /// Another run that has not ended holds the scope the new run asked for.
    #[error(
        "scope '{scope}' is held by run '{run_id}', which has not ended; no second run was started. \
         Follow that run (`drover show {run_id}`), or cancel it first if it is the wrong one"
    )]
    ScopeHeld {
        /// The scope.
        scope: String,
        /// The run holding it.
        run_id: String,
    },
    /// The agent is stopping: the run stopped at a step boundary or wait,
    /// with nothing lost, and resumes when an agent starts again.
    #[error("run '{run_id}' was suspended because the agent is stopping; it resumes where it stopped (`drover resume {run_id}`, or the next `drover serve`)")]
    Suspended {
        /// The run.
        run_id: String,
    },
    /// Under a deterministic simulation: the agent crashed at `point`
    /// (nothing after it ran; the run is resumable as after a real crash).
    #[error("run '{run_id}' crashed at {point} (simulated)")]
    Crashed {
        /// The run.
        run_id: String,
        /// The crash point, as `POINT:STEP`.
        point: String,
    },
    /// The run stopped without an outcome and stays resumable: its replay
    /// diverged from the journal, or the audit log cannot be written. The
    /// stop is recorded with the run; `message` says why and what to do.
    #[error("run '{run_id}' stopped ({code}): {message}")]
    Stopped {
        /// The run.
        run_id: String,
        /// `non-determinism` or `audit-log`.
        code: String,
        /// Why, and what to do.
        message: String,
    },
    /// The audit log could not be written: the audited action was not taken.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// `drover redrive` refused: nothing was written, the run is as it was.
    #[error("run '{run_id}' cannot be redriven: {reason}")]
    RedriveRefused {
        /// The run.
        run_id: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The component a run is pinned to is gone from the agent's home.
    #[error("the runbook (sha256 {digest}) this run is pinned to cannot be loaded: {detail}; pass it again with --runbook FILE")]
    RunbookMissing {
        /// Digest.
        digest: String,
        /// Why.
        detail: String,
    },
    /// A secret parameter's reference cannot be resolved.
    #[error("secret parameter '{name}' ({reference}) cannot be resolved: {detail}; the value is not in the journal, so fix the reference's target and retry")]
    SecretUnavailable {
        /// The parameter.
        name: String,
        /// Its reference.
        reference: String,
        /// Why.
        detail: String,
    },
    /// A malformed run id.
    #[error("run id '{0}' is invalid: use 1 to 64 letters, digits, '-', '_' or '.'")]
    BadRunId(String),
    /// Files under the agent's home could not be read or written.
    #[error("{path}: {detail}")]
    Storage {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// The journal failed; the run is left as its last durable write left it.
    #[error("{0}; the run keeps every step journaled before this error: fix the store, then `drover resume` it")]
    Journal(#[from] JournalError),
    /// The engine could not be set up.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Setup(String),
    /// A bug in the agent: an invariant did not hold.
    #[error("internal error: {0}; the run keeps every journaled step, report this and `drover resume` it")]
    Internal(String),
    /// The runbook could not be instantiated.
    #[error("cannot instantiate the runbook: {0}")]
    Instantiate(String),
}
