//! End-to-end tests of drover live in `tests/tests/`: they drive the real
//! `drover` binary (through `drover-chaos`'s harness) against real runbook
//! components built by `drover-test-artifacts` and, for the AWS runbooks, the
//! real emulators (`scripts/test` starts them). This library holds what the
//! test files share.

use drover_aws::Clients;
use drover_chaos::Agent;
use drover_chaos::topology::{Seeded, Topology, seed};

/// A runtime for the async setup and checks of a synchronous test.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// Fails with what to do when the emulators are not configured.
pub fn emulators_configured() {
    let ep = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(ep.starts_with("http://127.0.0.1"), "these tests need the local emulators: run them through scripts/test (AWS_ENDPOINT_URL='{ep}')");
}

/// Seeds a demo topology of its own for test `name` (names suffixed).
pub fn seeded(name: &str) -> (Clients, Seeded) {
    emulators_configured();
    let suffix = format!("{name}-{:06x}", rand::random::<u32>() & 0xffffff);
    rt().block_on(async {
        let c = Clients::load().await;
        let s = seed(&c, &Topology::demo(&suffix)).await.expect("the demo topology seeds");
        (c, s)
    })
}

/// The documented example configuration, whose grants fit the demo topology
/// (and the suffixed copies tests seed).
pub fn demo_config() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/drover.toml").to_string()
}

/// A configuration for `drover serve` in `dir`: the demo configuration's
/// grants (everything before its `[serve]` example), then a `[serve]` whose
/// API token is in `$T_API`, then `serve` (runbooks, triggers, drills...).
pub fn serve_config(dir: &std::path::Path, serve: &str) -> std::path::PathBuf {
    let demo = std::fs::read_to_string(demo_config()).expect("the demo configuration");
    let grants = demo.split("\n[serve]").next().unwrap_or_default();
    let path = dir.join("drover.toml");
    std::fs::write(&path, format!("{grants}\n[serve]\napi_token_env = \"T_API\"\nshutdown_grace_seconds = 10\n{serve}")).expect("the configuration is written");
    path
}

/// An agent with a home of its own (removed with the returned directory),
/// configured with [`demo_config`].
pub fn agent() -> (tempfile::TempDir, Agent) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let agent = Agent::new(dir.path().join("home")).with_env("DROVER_CONFIG", &demo_config());
    (dir, agent)
}

/// `drover ARGS` in `agent`'s home: (exit code, stdout, stderr).
pub fn drover(agent: &Agent, args: &[&str]) -> (Option<i32>, String, String) {
    let out = agent.output(args);
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// `drover run RUNBOOK --run-id ID --quiet -p P...`
pub fn args<'a>(runbook: &'a str, id: &'a str, params: &'a [String]) -> Vec<&'a str> {
    let mut a = vec!["run", runbook, "--run-id", id, "--quiet"];
    for p in params {
        a.push("-p");
        a.push(p);
    }
    a
}

/// A `drover serve` process for a test: started in `agent`'s home with the
/// configuration at `config`, stopped (SIGKILL) when dropped unless stopped
/// before. Its stdout and stderr go to `log`.
pub struct Served {
    /// The process.
    pub child: Option<std::process::Child>,
    /// `127.0.0.1:PORT` it listens on.
    pub addr: String,
    /// Where its output goes.
    pub log: std::path::PathBuf,
}

/// A free port on 127.0.0.1 (bound, then released for the agent to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("an address").port()
}

impl Served {
    /// Starts `drover serve --listen ADDR` and waits until `/v1/health` answers.
    pub fn start(agent: &Agent, config: &std::path::Path, addr: &str, log: &std::path::Path) -> Served {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("the log opens");
        let child = agent
            .command(&["--config", config.to_str().unwrap(), "serve", "--listen", addr])
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("drover serve starts");
        let mut served = Served { child: Some(child), addr: addr.to_string(), log: log.to_path_buf() };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            if let Some(Ok(Some(status))) = served.child.as_mut().map(|c| c.try_wait()) {
                panic!("drover serve exited ({status}) before it served:\n{}", served.log_text());
            }
            if let Ok((200, _)) = http(addr, "GET", "/v1/health", &[], b"") {
                return served;
            }
            assert!(std::time::Instant::now() < deadline, "drover serve did not answer within 120 s:\n{}", served.log_text());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// What it printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `METHOD PATH` with `headers` and `body`: (status, JSON body or Null).
    pub fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, serde_json::Value) {
        http(&self.addr, method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log_text()))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        child.wait().expect("reaped")
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            drover_chaos::kill9(&mut c);
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            drover_chaos::kill9(&mut c);
        }
    }
}

/// A minimal HTTP/1.1 request (one per connection) to `addr`, returning the
/// status and the body parsed as JSON (`Null` when it is not JSON).
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<(u16, serde_json::Value)> {
    let (status, text) = http_raw(addr, method, path, headers, body)?;
    Ok((status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)))
}

/// `GET path` on `addr`, the body as text (for `/metrics`).
pub fn http_text(addr: &str, path: &str) -> std::io::Result<String> {
    Ok(http_raw(addr, "GET", path, &[], b"")?.1)
}

/// One request, one connection: the status and the body as text.
pub fn http_raw(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(rest) } else { rest.to_string() };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// One HTTP request a [`Capture`] server received.
#[derive(Debug, Clone)]
pub struct Captured {
    /// `POST /path`.
    pub request_line: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Captured {
    /// The value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// An HTTP server on 127.0.0.1 that answers every request with `200 {}`
/// (keep-alive included) and keeps what it received: the receiving end of
/// webhooks and exporters in tests. Its threads end with the test process.
pub struct Capture {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<Captured>>>,
}

impl Capture {
    /// Starts one.
    pub fn start() -> Capture {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let addr = listener.local_addr().expect("an address").to_string();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let sink = sink.clone();
                std::thread::spawn(move || capture_connection(conn, sink));
            }
        });
        Capture { addr, got }
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<Captured> {
        self.got.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn capture_connection(conn: std::net::TcpStream, sink: std::sync::Arc<std::sync::Mutex<Vec<Captured>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut reader = BufReader::new(conn.try_clone().expect("a clone of the connection"));
    let mut writer = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').unwrap_or((line, ""));
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let length = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        sink.lock().unwrap_or_else(|p| p.into_inner()).push(Captured { request_line: request_line.trim_end().to_string(), headers, body });
        let _ = write!(writer, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}");
    }
}

/// Calls `f` every 50 ms until it gives a value; fails the test after
/// `timeout`, naming `what` it waited for.
pub fn wait_until<T>(what: &str, timeout: std::time::Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `NAME=VALUE` parameters as the inside of a TOML inline table.
pub fn toml_params(params: &[String]) -> String {
    let value = |v: &str| if v.parse::<i64>().is_ok() || v == "true" || v == "false" { v.to_string() } else { format!("{v:?}") };
    params.iter().map(|p| p.split_once('=').expect("NAME=VALUE")).map(|(k, v)| format!("{k} = {}", value(v))).collect::<Vec<_>>().join(", ")
}

/// The value of the first line of `s`'s `/metrics` starting with `prefix`.
pub fn metric(s: &Served, prefix: &str) -> Option<f64> {
    let text = http_text(&s.addr, "/metrics").expect("/metrics answers");
    text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// A fault proxy in front of the emulators, on a runtime of its own: it
/// counts what the emulators accepted (the side effects a run made, across
/// every `drover` process of a test) and can hold a resource in a state.
pub struct Proxied {
    /// The proxy.
    pub proxy: drover_chaos::proxy::Proxy,
    /// The emulators behind it.
    pub upstreams: drover_chaos::proxy::Upstreams,
    _rt: tokio::runtime::Runtime,
}

impl Proxied {
    /// Starts a proxy in front of the configured emulators.
    pub fn start() -> Proxied {
        emulators_configured();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
        let upstreams = drover_chaos::proxy::Upstreams::from_env().expect("the emulators' endpoints are set");
        let faults = std::sync::Arc::new(drover_chaos::faults::Faults::new(17));
        let proxy = rt.block_on(drover_chaos::proxy::Proxy::start(upstreams.clone(), faults)).expect("the proxy starts");
        Proxied { proxy, upstreams, _rt: rt }
    }

    /// An agent with a home of its own, configured with `config`, whose AWS
    /// calls all go through the proxy.
    pub fn agent_with(&self, config: &str) -> (tempfile::TempDir, Agent) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut a = Agent::new(dir.path().join("home")).with_env("DROVER_CONFIG", config);
        for (k, v) in self.upstreams.env_for(&self.proxy.url()) {
            a = a.with_env(&k, &v);
        }
        (dir, a)
    }

    /// [`Proxied::agent_with`] the [`demo_config`].
    pub fn agent(&self) -> (tempfile::TempDir, Agent) {
        self.agent_with(&demo_config())
    }
}

/// The demo configuration with regional-failover's grant of `upsert-cname`
/// (its `point-db-record` step) taken out, written to `dir`: its path, and
/// the full configuration (to put the grant back).
pub fn config_without_the_record_grant(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let full = std::fs::read_to_string(demo_config()).expect("the demo configuration");
    let granted = r#"operations = ["get-records-of", "upsert-cname", "set-weights"]"#;
    assert!(full.contains(granted), "the demo configuration grants regional-failover its record changes");
    let path = dir.join("drover.toml");
    std::fs::write(&path, full.replace(granted, r#"operations = ["get-records-of", "set-weights"]"#)).expect("a configuration written");
    (path, full)
}

/// What a succeeded failover claims, checked against the cloud: the
/// replica promoted once, the DB record on it, the app's weights on the DR
/// region.
pub fn assert_failed_over(c: &Clients, s: &Seeded) {
    use drover_chaos::hypothesis::{Probe, check};
    for probe in [Probe::ReplicaPromotedOnce, Probe::DbRecordOnReplica, Probe::AppWeightsOnDr] {
        let k = rt().block_on(check(c, s, probe));
        assert!(k.ok, "the run said succeeded, the cloud says {:?}: {}", k.probe, k.detail);
    }
}

/// The attempts of step `key` of run `id`: numbered 1, 2, ... `n`, all with
/// the same idempotency key.
pub fn assert_attempts_share_a_key(agent: &Agent, id: &str, key: &str, n: u32) {
    let attempts = agent.attempts(id);
    let mine: Vec<_> = attempts.iter().filter(|a| a.key == key).collect();
    assert_eq!(mine.iter().map(|a| a.number).collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>(), "{attempts:?}");
    assert!(mine.iter().all(|a| a.idempotency_key == mine[0].idempotency_key), "{attempts:?}");
}
