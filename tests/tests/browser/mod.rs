//! A small synchronous browser driver for end-to-end tests: headless Chromium
//! driven over WebDriver by Debian's `chromedriver` (package chromium-driver),
//! via `thirtyfour`. Every method blocks on a private tokio runtime and panics
//! with a clear message on failure. Loopback only: the browser is started with
//! background networking, sync, updates and QUIC off so nothing leaves the host.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thirtyfour::prelude::*;

/// How long chromedriver gets to answer `GET /status` after it is spawned.
const DRIVER_READY: Duration = Duration::from_secs(20);

/// Chromium's flags (plus a fresh `--user-data-dir`): headless, no sandbox
/// (tests run as root), and nothing that phones home (loopback-only hosts).
const CHROMIUM_ARGS: &str = "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --disable-quic --no-first-run \
    --no-default-browser-check --disable-background-networking --disable-component-update --disable-sync --disable-extensions \
    --window-size=1280,900";

/// A headless Chromium session behind a private chromedriver; both are torn
/// down (session quit, process group killed) when this is dropped.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    driver: Option<WebDriver>,
    child: Child,
    /// Holds chromedriver's log and Chromium's profile; removed last.
    dir: tempfile::TempDir,
}

impl Browser {
    /// Spawns chromedriver on a free loopback port, waits until it is ready
    /// and opens a headless Chromium session (fresh profile in a tempdir).
    pub fn start() -> Browser {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("build the browser's tokio runtime");
        let dir = tempfile::tempdir().expect("create the browser tempdir");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("pick a free loopback port for chromedriver").port();
        let log_path = dir.path().join("chromedriver.log");
        let log = std::fs::File::create(&log_path).expect("create chromedriver.log");
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the chromedriver log handle"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => panic!("chromedriver not found: scripts/test installs it (apt-get install chromium-driver)"),
                _ => panic!("spawn chromedriver: {e}"),
            });
        // From here on a panic drops `browser`, which kills chromedriver.
        let mut browser = Browser { rt, driver: None, child, dir };
        browser.wait_ready(port, &log_path);

        let mut caps = DesiredCapabilities::chrome();
        if Path::new("/usr/bin/chromium").exists() {
            caps.set_binary("/usr/bin/chromium").expect("set the chromium binary");
        }
        let profile = browser.dir.path().join("profile");
        let profile_arg = format!("--user-data-dir={}", profile.display());
        for arg in CHROMIUM_ARGS.split_whitespace().chain([profile_arg.as_str()]) {
            caps.add_arg(arg).expect("add a chromium argument");
        }
        let url = format!("http://127.0.0.1:{port}");
        let session = browser.rt.block_on(async { tokio::time::timeout(Duration::from_secs(90), WebDriver::new(url, caps)).await });
        match session {
            Ok(Ok(driver)) => browser.driver = Some(driver),
            Ok(Err(e)) => panic!("open a headless chromium session: {e}\n{}", read(&log_path)),
            Err(_) => panic!("chromium session not open after 90 s\n{}", read(&log_path)),
        }
        browser
    }

    /// Polls chromedriver's `GET /status` until it reports ready.
    fn wait_ready(&mut self, port: u16, log_path: &Path) {
        let deadline = Instant::now() + DRIVER_READY;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chromedriver exited early ({status}):\n{}", read(log_path));
            }
            if status_ready(port) {
                return;
            }
            if Instant::now() > deadline {
                panic!("chromedriver not ready after {DRIVER_READY:?}:\n{}", read(log_path));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn driver(&self) -> &WebDriver {
        self.driver.as_ref().expect("the WebDriver session is open")
    }

    fn run<T>(&self, what: &str, f: impl Future<Output = WebDriverResult<T>>) -> T {
        self.rt.block_on(f).unwrap_or_else(|e| panic!("browser: {what}: {e}"))
    }

    /// Navigates to `url` and waits for the page load.
    pub fn goto(&self, url: &str) {
        self.run(&format!("goto {url}"), self.driver().goto(url))
    }

    /// The URL of the current page.
    pub fn current_url(&self) -> String {
        self.run("current_url", self.driver().current_url()).to_string()
    }

    /// The `<title>` of the current page.
    pub fn title(&self) -> String {
        self.run("title", self.driver().title())
    }

    /// The current page's source (the DOM serialised by the browser).
    pub fn source(&self) -> String {
        self.run("source", self.driver().source())
    }

    /// The rendered text of the first element matching `css` (read in one
    /// script, so a part the page replaces meanwhile is never half read);
    /// panics when none matches.
    pub fn text(&self, css: &str) -> String {
        let v = self.query(css, "const e = document.querySelector(css); return e === null ? null : e.innerText;");
        v.as_str().map(str::to_string).unwrap_or_else(|| panic!("browser: no element matches {css}"))
    }

    /// The rendered texts of all elements matching `css`, in document order.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let v = self.query(css, "return Array.from(document.querySelectorAll(css), e => e.innerText);");
        v.as_array().map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect()).unwrap_or_default()
    }

    /// Whether any element matches `css`.
    pub fn exists(&self, css: &str) -> bool {
        self.query(css, "return document.querySelector(css) !== null;") == serde_json::Value::Bool(true)
    }

    /// Runs `body` with `css` bound to the selector.
    fn query(&self, css: &str, body: &str) -> serde_json::Value {
        let script = format!("const css = arguments[0]; {body}");
        let ret = self.run(&format!("query {css}"), self.driver().execute(&script, vec![serde_json::Value::String(css.to_string())]));
        ret.json().clone()
    }

    /// Clicks the first element matching `css`.
    pub fn click(&self, css: &str) {
        self.run(&format!("click {css}"), async { self.driver().find(By::Css(css)).await?.click().await })
    }

    /// Clears the first input matching `css`, then types `text` into it.
    pub fn fill(&self, css: &str, text: &str) {
        self.run(&format!("fill {css}"), async {
            let e = self.driver().find(By::Css(css)).await?;
            e.clear().await?;
            e.send_keys(text).await
        })
    }

    /// Submits a form by clicking its button (matched by `css`).
    pub fn submit_form(&self, css: &str) {
        self.click(css)
    }

    /// Polls `f` every 200 ms until it returns true; panics naming `what`
    /// once `timeout` has passed.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut f: impl FnMut(&Browser) -> bool) {
        let deadline = Instant::now() + timeout;
        while !f(self) {
            if Instant::now() > deadline {
                panic!("browser: timed out after {timeout:?} waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Writes a PNG screenshot of the viewport to `path` (parents created).
    pub fn screenshot(&self, path: &Path) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the screenshot directory");
        }
        self.run(&format!("screenshot {}", path.display()), self.driver().screenshot(path))
    }

    /// The current page's cookies: (name, value, http_only, same_site as
    /// "Strict"/"Lax"/"None").
    pub fn cookies(&self) -> Vec<(String, String, Option<bool>, Option<String>)> {
        let cookies = self.run("get cookies", self.driver().get_all_cookies());
        cookies.into_iter().map(|c| (c.name, c.value, c.http_only, c.same_site.map(|s| format!("{s:?}")))).collect()
    }

    /// Runs `script` (a function body: `return ...` gives the value) in the
    /// page and returns its JSON result.
    pub fn execute_js(&self, script: &str) -> serde_json::Value {
        let ret = self.run("execute script", self.driver().execute(script, Vec::<serde_json::Value>::new()));
        ret.json().clone()
    }
}

impl Drop for Browser {
    /// Quits the session (5 s at most), then kills chromedriver's whole
    /// process group (chromedriver and any Chromium left behind) and reaps it.
    fn drop(&mut self) {
        if let Some(driver) = self.driver.take() {
            // Spawned, so a timed-out quit is not dropped (and retried
            // synchronously by thirtyfour) until chromedriver is gone.
            let quit = self.rt.spawn(driver.quit());
            let _ = self.rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), quit).await });
        }
        // process_group(0): the group id is chromedriver's pid.
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid only signals that process group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether chromedriver's `GET /status` says `"ready":true`. HTTP/1.1, as
/// chromedriver rejects HTTP/1.0; read until the answer is in, as it keeps the
/// connection open despite `Connection: close`.
fn status_ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let request = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if s.write_all(request).is_err() {
        return false;
    }
    let (mut reply, mut chunk) = (Vec::new(), [0u8; 1024]);
    while let Ok(n @ 1..) = s.read(&mut chunk) {
        reply.extend_from_slice(&chunk[..n]);
        if String::from_utf8_lossy(&reply).contains("\"ready\":true") {
            return true;
        }
    }
    false
}

/// A log file's contents for a panic message (empty if unreadable).
fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
