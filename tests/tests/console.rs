//! The web console of `drover serve` in a real browser (Debian's headless
//! Chromium through chromedriver): an alert starts a failover that appears
//! on the runs page without a reload, its page shows the gate, a click on
//! Approve completes the failover (checked against the cloud) and the page
//! reaches `succeeded` by itself; what is refused (no login, a forged form
//! post, a runbook's `<script>`) is refused. Screenshots of the runs list
//! and a run's page are saved under `target/tmp/console/`.

mod browser;

use std::path::PathBuf;
use std::time::Duration;

use browser::Browser;
use drover_chaos::Agent;
use drover_e2e::{Served, free_port, seeded, toml_params};
use drover_test_artifacts as artifacts;
use serde_json::{Value, json};

const API_TOKEN: &str = "api-token-0123456789abcdef";
const AM_TOKEN: &str = "alertmanager-token-0123456789";
/// What the runbook writes in its log line and step output: markup that
/// would run if a page did not escape it.
const HOSTILE_1: &str = "<script>document.body.dataset.pwned='1'</script>";
const HOSTILE_2: &str = "<img src=x onerror=\"document.body.dataset.pwned='2'\">";

// The demo's grants and a `[serve]` section ending with the test's own lines.
use drover_e2e::serve_config as config;

fn alert(labels: Value) -> Vec<u8> {
    json!({"version": "4", "status": "firing", "receiver": "drover", "groupKey": "{}:{}",
           "alerts": [{"status": "firing", "labels": labels, "annotations": {"summary": "orders primary is down"}, "fingerprint": "c1", "startsAt": "2026-12-07T03:00:00Z"}]})
    .to_string()
    .into_bytes()
}

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console")
}

#[test]
fn an_alerted_failover_is_approved_in_the_browser_and_the_page_follows_it_live() {
    let (c, seeded) = seeded("console");
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("home"))
        .with_env("T_API", API_TOKEN)
        .with_env("T_AM", AM_TOKEN)
        .with_env("T_DBPW", "an-unrelated-secret-0123")
        .with_env("DROVER_LOG", "info,drover_engine=warn");
    let params = toml_params(&seeded.topology.params());
    let cfg = config(
        dir.path(),
        &format!(
            "[[serve.runbook]]\npath = \"{}\"\n[[serve.runbook]]\npath = \"{}\"\n\
             [[serve.trigger]]\nname = \"orders\"\nkind = \"alertmanager\"\nauth = {{ bearer_env = \"T_AM\" }}\nmatch = {{ alertname = \"OrdersPrimaryDown\" }}\n\
             runbook = \"regional-failover\"\nscope = \"app:{{app}}\"\nparams = {{ {params}, approval = true }}\n\
             [[serve.drill]]\nname = \"weekly\"\nrunbook = \"regional-failover\"\ncron = \"0 0 3 * * Mon\"\nparams = {{ {params} }}\n",
            artifacts::REGIONAL_FAILOVER,
            artifacts::JANITOR,
        ),
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let s = Served::start(&agent, &cfg, &addr, &dir.path().join("serve.log"));
    let base = format!("http://{addr}");
    let b = Browser::start();

    // No session: the login page, whatever page was asked for; a wrong token is refused.
    b.goto(&format!("{base}/console/runs"));
    assert!(b.current_url().contains("/console/login"), "{}", b.current_url());
    b.fill("input[name=name]", "alice (on call)");
    b.fill("input[name=token]", "not-the-token-0123456789");
    b.click("form.login button");
    b.wait_for("the refusal", Duration::from_secs(10), |b| b.exists("p.error"));
    assert!(b.text("p.error").contains("not the agent's API token"), "{}", b.text("p.error"));
    b.fill("input[name=name]", "alice (on call)");
    b.fill("input[name=token]", API_TOKEN);
    b.click("form.login button");
    b.wait_for("the runs page", Duration::from_secs(10), |b| b.current_url().contains("/console/runs") && b.exists("form.filters"));
    let cookie = b.cookies().into_iter().find(|c| c.0 == "drover_session").expect("a session cookie");
    assert_eq!((cookie.2, cookie.3.as_deref()), (Some(true), Some("Strict")), "HttpOnly, SameSite=Strict: {cookie:?}");
    let cookie_header = format!("drover_session={}", cookie.1);

    // The alert starts the failover; the runs page shows it without a reload.
    b.execute_js("window.__notReloaded = 42; return null;");
    let auth = format!("Bearer {AM_TOKEN}");
    let (code, v) = drover_e2e::http(
        &addr,
        "POST",
        "/v1/triggers/orders",
        &[("authorization", &auth)],
        &alert(json!({"alertname": "OrdersPrimaryDown", "app": seeded.topology.db_instance})),
    )
    .unwrap();
    assert_eq!(code, 202, "{v}");
    let id = v["runs"][0]["run_id"].as_str().unwrap().to_string();
    let row = format!("tr[data-run='{id}']");
    b.wait_for("the run to appear on the runs page", Duration::from_secs(30), |b| b.exists(&row));
    b.wait_for("it to wait at its gate", Duration::from_secs(60), |b| b.text(&row).contains("waiting"));
    assert!(b.text(&row).contains("trigger orders (alertmanager alert OrdersPrimaryDown)"), "{}", b.text(&row));
    assert_eq!(b.execute_js("return window.__notReloaded;"), json!(42), "the list followed without a reload");
    b.screenshot(&shots().join("runs.png"));

    // The approvals page lists the gate.
    b.goto(&format!("{base}/console/approvals"));
    b.wait_for("the pending gate", Duration::from_secs(10), |b| b.exists("div.gate[data-gate='failover']"));
    assert!(b.text("div.gate").contains("Nothing has been changed yet"), "{}", b.text("div.gate"));

    // The run's page shows the gate; Approve completes the failover, and
    // the page reaches `succeeded` by itself.
    b.goto(&format!("{base}/console/runs/{id}"));
    b.wait_for("the gate on the run's page", Duration::from_secs(10), |b| b.exists("div.gate[data-gate='failover'] button.approve"));
    b.screenshot(&shots().join("run-waiting.png"));
    b.execute_js("window.__notReloaded = 43; return null;");
    b.fill("div.gate[data-gate='failover'] form input[name=comment]", "primary region confirmed down");
    b.click("div.gate[data-gate='failover'] button.approve");
    b.wait_for("the run to succeed on its page", Duration::from_secs(120), |b| b.text("table.facts").contains("succeeded"));
    assert_eq!(b.execute_js("return window.__notReloaded;"), json!(43), "the page followed the run without a reload");
    b.wait_for("the report's verdict", Duration::from_secs(10), |b| b.text("section.report h1").contains("PASSED"));
    assert!(b.text("section.report").contains("RTO"), "RTO against its objective: {}", b.text("section.report"));
    assert!(b.exists("section.report svg rect.bar.succeeded"), "the timeline is drawn");
    b.screenshot(&shots().join("run-succeeded.png"));
    for png in ["runs.png", "run-waiting.png", "run-succeeded.png"] {
        assert!(std::fs::metadata(shots().join(png)).map(|m| m.len() > 1000).unwrap_or(false), "{png} saved");
    }

    // The cloud moved (not what the agent says it did), and the decision is
    // recorded as the token's with the person's name as a claim.
    drover_e2e::rt().block_on(async {
        use drover_chaos::hypothesis::{Probe, check};
        for p in [Probe::ReplicaPromotedOnce, Probe::DbRecordOnReplica, Probe::AppWeightsOnDr] {
            let k = check(&c, &seeded, p).await;
            assert!(k.ok, "after the console's approval: {:?}: {}", k.probe, k.detail);
        }
    });
    let done = agent.show(&id).unwrap();
    let gate = done["waits"].as_array().unwrap().iter().find(|w| w["kind"] == "approval").unwrap().clone();
    let holder = drover_service::auth::Verifier::Bearer(API_TOKEN.as_bytes().to_vec()).label();
    assert_eq!(gate["decision"]["by"], format!("{holder} (console; claimed: alice (on call))"), "{gate:#}");
    assert_eq!(gate["decision"]["comment"], "primary region confirmed down");

    // Forged posts: with the session cookie but no CSRF token, or a wrong
    // one: 403 and nothing done; without a session: 401.
    let form = "application/x-www-form-urlencoded";
    let post = |path: &str, headers: &[(&str, &str)], body: &str| drover_e2e::http_raw(&addr, "POST", path, headers, body.as_bytes()).unwrap();
    let cancel = format!("/console/runs/{id}/cancel");
    let (code, _) = post(&cancel, &[("cookie", &cookie_header), ("content-type", form)], "reason=forged");
    assert_eq!(code, 403, "no CSRF token");
    let (code, _) = post(&cancel, &[("cookie", &cookie_header), ("content-type", form)], &format!("reason=forged&_csrf={}", "ab".repeat(32)));
    assert_eq!(code, 403, "a wrong CSRF token");
    let (code, _) = post(&cancel, &[("content-type", form)], "reason=forged");
    assert_eq!(code, 401, "no session");
    assert!(agent.show(&id).unwrap()["cancel"].is_null(), "nothing was recorded");
    let (code, body) = post("/console/login", &[("content-type", form)], "name=x&token=wrong-token-0123456789");
    assert_eq!(code, 401, "{body}");

    // A runbook's markup renders as text, and runs nothing.
    let p1 = format!("part1={HOSTILE_1}");
    let p2 = format!("part2={HOSTILE_2}");
    let out = agent.output(&["run", artifacts::SECRETIVE, "--run-id", "hostile", "-p", "password=env:T_DBPW", "-p", &p1, "-p", &p2, "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    b.goto(&format!("{base}/console/runs/hostile"));
    b.wait_for("the hostile run's events", Duration::from_secs(10), |b| b.exists("table.events"));
    let logged = b.texts("table.events td.message");
    assert!(logged.iter().any(|m| m.contains(HOSTILE_1) && m.contains("<img src=x")), "the log line is shown as text: {logged:?}");
    assert_eq!(b.execute_js("return document.querySelectorAll('main script, main img').length;"), json!(0), "no element made of it");
    assert_eq!(b.execute_js("return document.body.dataset.pwned || null;"), Value::Null, "nothing of it ran");
    assert!(b.source().contains("&lt;script&gt;document.body.dataset.pwned"), "escaped in the page");
    assert!(!b.source().contains("an-unrelated-secret-0123"), "a secret stays masked as in the journal");
    // The runs page and the API filter by runbook.
    b.goto(&format!("{base}/console/runs?runbook=secretive"));
    assert_eq!(b.texts("table.runs tbody tr td:first-child"), ["hostile"]);
    let bearer = format!("Bearer {API_TOKEN}");
    let (code, v) = drover_e2e::http(&addr, "GET", "/v1/runs?runbook=regional-failover", &[("authorization", &bearer)], b"").unwrap();
    assert_eq!((code, v["runs"].as_array().map(|r| r.len())), (200, Some(1)), "{v}");

    // The readiness and drills pages.
    b.goto(&format!("{base}/console/readiness"));
    b.click("section.readiness[data-runbook='regional-failover'] form button");
    b.wait_for("an evaluation", Duration::from_secs(60), |b| b.exists("section.readiness[data-runbook='regional-failover'] table.findings"));
    let readiness = b.text("section.readiness[data-runbook='regional-failover']");
    assert!(readiness.contains("READY") && readiness.contains("the grants it needs are in place"), "{readiness}");
    b.goto(&format!("{base}/console/drills"));
    assert!(b.text("section.drill[data-drill='weekly']").contains("0 0 3 * * Mon"), "{}", b.text("section.drill"));

    // Logging out ends the session in the browser.
    b.goto(&format!("{base}/console/runs"));
    b.click("form.logout button");
    b.wait_for("the login page", Duration::from_secs(10), |b| b.current_url().contains("/console/login"));
    b.goto(&format!("{base}/console/runs/{id}"));
    assert!(b.current_url().contains("/console/login?next=/console/runs/"), "{}", b.current_url());
    drop(b);
    drop(s);
}

/// The console's live streams never hold up a stopping agent.
#[test]
fn a_live_page_does_not_hold_up_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("home")).with_env("T_API", API_TOKEN);
    let cfg = config(dir.path(), &format!("[[serve.runbook]]\npath = \"{}\"\n", artifacts::JANITOR));
    let addr = format!("127.0.0.1:{}", free_port());
    let s = Served::start(&agent, &cfg, &addr, &dir.path().join("serve.log"));
    let b = Browser::start();
    b.goto(&format!("http://{addr}/console/login"));
    b.fill("input[name=name]", "bob");
    b.fill("input[name=token]", API_TOKEN);
    b.click("form.login button");
    b.wait_for("the runs page", Duration::from_secs(10), |b| b.exists("#runs[data-live]"));
    std::thread::sleep(Duration::from_millis(500));
    let t0 = std::time::Instant::now();
    let status = s.terminate();
    assert!(status.success(), "{status}");
    assert!(t0.elapsed() < Duration::from_secs(8), "the open event stream ended with the agent: {:?}", t0.elapsed());
}
