//! The RTO a drill demonstrated, run after run: an inline SVG line over the
//! drill's ended runs (green dot: passed, red: failed; a failed run that
//! measured no RTO sits on the axis), with the objective as a dashed line.
//! Numbers only: nothing a runbook wrote reaches the markup.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

/// One ended run of a drill.
pub struct Point {
    /// When it started.
    pub at: DateTime<Utc>,
    /// The RTO it measured, if it got that far.
    pub rto_seconds: Option<f64>,
    /// It succeeded.
    pub passed: bool,
}

const W: f64 = 640.0;
const H: f64 = 160.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 20.0;

/// The chart of `points` (oldest first, at most the newest 50 drawn) with
/// the `objective` in seconds, if there is one.
pub fn rto_trend(points: &[Point], objective: Option<f64>) -> String {
    let points = &points[points.len().saturating_sub(50)..];
    if points.is_empty() {
        return "<p class=\"empty\">No ended run yet.</p>".into();
    }
    let top = points.iter().filter_map(|p| p.rto_seconds).chain(objective).fold(1.0_f64, f64::max) * 1.15;
    let x = |i: usize| if points.len() == 1 { LEFT + (W - LEFT) / 2.0 } else { LEFT + (W - LEFT - 10.0) * i as f64 / (points.len() - 1) as f64 };
    let y = |v: f64| H - BOTTOM - (H - BOTTOM - 8.0) * (v / top);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"demonstrated RTO of {} runs\">",
        points.len()
    );
    let _ = write!(s, "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{b}\" x2=\"{W}\" y2=\"{b}\"/>", b = H - BOTTOM);
    let _ = write!(s, "<line class=\"axis\" x1=\"{LEFT}\" y1=\"8\" x2=\"{LEFT}\" y2=\"{}\"/>", H - BOTTOM);
    let _ = write!(
        s,
        "<text class=\"label\" x=\"4\" y=\"{:.1}\">{:.0} s</text><text class=\"label\" x=\"4\" y=\"{:.1}\">0 s</text>",
        y(top / 1.15) + 4.0,
        top / 1.15,
        H - BOTTOM
    );
    if let Some(o) = objective {
        let _ =
            write!(s, "<line class=\"objective\" x1=\"{LEFT}\" y1=\"{yo:.1}\" x2=\"{W}\" y2=\"{yo:.1}\"><title>objective {o:.0} s</title></line>", yo = y(o));
    }
    let line: Vec<String> = points.iter().enumerate().filter_map(|(i, p)| p.rto_seconds.map(|v| format!("{:.1},{:.1}", x(i), y(v)))).collect();
    if line.len() > 1 {
        let _ = write!(s, "<polyline class=\"line\" points=\"{}\"/>", line.join(" "));
    }
    for (i, p) in points.iter().enumerate() {
        let v = p.rto_seconds.unwrap_or(0.0);
        let what = match p.rto_seconds {
            Some(r) => format!("{r:.2} s"),
            None => "no RTO measured".into(),
        };
        let _ = write!(
            s,
            "<circle class=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>{}: {} ({})</title></circle>",
            if p.passed { "pass" } else { "fail" },
            x(i),
            y(v),
            p.at.format("%Y-%m-%d %H:%M UTC"),
            what,
            if p.passed { "passed" } else { "failed" }
        );
    }
    let _ = write!(
        s,
        "<text class=\"label\" x=\"{LEFT}\" y=\"{H}\">{}</text><text class=\"label\" x=\"{W}\" y=\"{H}\" text-anchor=\"end\">{}</text></svg>",
        points[0].at.format("%Y-%m-%d"),
        points[points.len() - 1].at.format("%Y-%m-%d")
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dot_per_run_and_the_objective() {
        let t = Utc::now();
        let pts = vec![
            Point { at: t, rto_seconds: Some(40.0), passed: true },
            Point { at: t, rto_seconds: None, passed: false },
            Point { at: t, rto_seconds: Some(70.0), passed: true },
        ];
        let svg = rto_trend(&pts, Some(60.0));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("class=\"fail\"").count(), 1);
        assert!(svg.contains("objective 60 s"), "{svg}");
        assert!(svg.contains("<polyline"), "two measured runs make a line");
        assert!(rto_trend(&[], None).contains("No ended run"));
    }
}
