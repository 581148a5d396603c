//! `drover report`: the Markdown and HTML report of a run, through the real
//! binary. A failed run's report says FAILED, links the failed step in the
//! timeline to its error, and draws one bar per step and per durable wait.

use drover_chaos::Agent;
use drover_e2e::drover;
use drover_test_artifacts as artifacts;

fn agent() -> (tempfile::TempDir, Agent) {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("home"));
    (dir, agent)
}

/// Writes the report of `run_id` into a new directory; (markdown, html).
fn report(agent: &Agent, run_id: &str) -> (String, String) {
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = drover(agent, &["report", run_id, "--out", out.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let md = out.path().join(format!("{run_id}.md"));
    let html = out.path().join(format!("{run_id}.html"));
    assert!(stdout.contains(md.to_str().unwrap()) && stdout.contains(html.to_str().unwrap()), "{stdout}");
    (std::fs::read_to_string(md).unwrap(), std::fs::read_to_string(html).unwrap())
}

#[test]
fn a_failed_run_links_its_failed_step_to_the_error() {
    let (_d, agent) = agent();
    let (code, _, _) = drover(&agent, &["run", artifacts::JANITOR, "--run-id", "bad", "-p", "fail_at=3", "--quiet"]);
    assert_eq!(code, Some(1));
    let (md, html) = report(&agent, "bad");
    assert!(md.starts_with("# janitor run bad: FAILED"), "{md}");
    assert!(md.contains("| [s3](#step-s3) |") && md.contains("### <a id=\"step-s3\"></a>s3: `janitor-failure`"), "{md}");
    assert!(md.contains("## Cleanups and undos") && md.contains("cleanup:c1: succeeded"), "{md}");
    assert!(html.contains("<span class=\"verdict\">FAILED</span>"), "{html}");
    // One bar per journaled step (s1..s3, then the undos and cleanups), the failed one a link to its error.
    let bars = html.matches("<rect class=\"bar ").count();
    let steps = agent.show("bad").unwrap()["steps"].as_array().unwrap().len();
    assert_eq!(bars, steps, "{html}");
    assert!(html.contains("<a href=\"#step-s3\"><rect class=\"bar failed\" data-step=\"s3\""), "{html}");
    assert!(html.contains("<h3 id=\"step-s3\">s3: <code>janitor-failure</code></h3>"), "{html}");
    // Self-contained: no script, stylesheet or image fetched; the only URL is the SVG namespace.
    assert_eq!(html.matches("http").count(), html.matches("http://www.w3.org/2000/svg").count(), "{html}");
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains(" src="), "{html}");
}

#[test]
fn a_durable_wait_is_drawn_and_a_passed_run_says_so() {
    let (_d, agent) = agent();
    let (code, _, stderr) = drover(&agent, &["run", artifacts::HELLO_DURABLE, "--run-id", "ok", "-p", "pause_seconds=1", "--quiet"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (md, html) = report(&agent, "ok");
    assert!(md.starts_with("# hello-durable run ok: PASSED") && md.contains("| durable wait |"), "{md}");
    assert!(md.contains("Nothing: the run made no change in AWS."), "{md}");
    assert_eq!(html.matches("<rect class=\"bar wait\"").count(), 1, "{html}");
    assert_eq!(html.matches("<rect class=\"bar succeeded\"").count(), 3, "{html}");

    let (code, _, stderr) = drover(&agent, &["report", "no-such-run"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no-such-run"), "{stderr}");
}

/// The HTML report in a real browser: headless Chromium renders the page of
/// a failed run, and the screenshot has the timeline's bars drawn: green
/// for the steps that succeeded, red for the one that failed.
#[test]
fn chromium_draws_the_timeline() {
    let (_d, agent) = agent();
    let (code, _, _) = drover(&agent, &["run", artifacts::JANITOR, "--run-id", "seen", "-p", "fail_at=2", "--quiet"]);
    assert_eq!(code, Some(1));
    let out = tempfile::tempdir().unwrap();
    let (code, _, stderr) = drover(&agent, &["report", "seen", "--out", out.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let page = out.path().join("seen.html");
    let shot = out.path().join("seen.png");
    let browser = std::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1100,900"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs (scripts/test installs it: apt-get install chromium)");
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&browser.stderr));

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let count = |rgb: [u8; 3]| pixels.chunks(channels).filter(|p| p[0] == rgb[0] && p[1] == rgb[1] && p[2] == rgb[2]).count();
    // The bars' fills (see drill_report.rs): succeeded #2da44e, failed #cf222e.
    // Every bar is at least 6 px wide and 16 px high, so each succeeded bar
    // has at least 5 x 16 pixels of its exact fill, whatever the steps took.
    let succeeded = std::fs::read_to_string(&page).unwrap().matches("class=\"bar succeeded\"").count();
    assert!(succeeded >= 2, "the report has a bar per succeeded step");
    let (green, red) = (count([0x2d, 0xa4, 0x4e]), count([0xcf, 0x22, 0x2e]));
    assert!(green >= succeeded * 5 * 16, "{succeeded} succeeded bars drawn: {green} green pixels");
    assert!(red > 100, "the failed bar (and the FAILED verdict) drawn: {red} red pixels");
}
