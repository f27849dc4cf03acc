//! The terminal summary printed at the end of a run.

use std::fmt::Write as _;
use std::path::Path;

use super::results::{RunResults, RunVerdict};

/// The summary table: per route and backend, then every expectation with ✓/✗.
pub fn render(results: &RunResults, dir: &Path) -> String {
    let mut out = String::new();
    let verdict = match results.verdict {
        RunVerdict::Passed => "PASSED",
        RunVerdict::Failed => "FAILED",
        RunVerdict::Incomplete => "INCOMPLETE",
    };
    let _ = writeln!(
        out,
        "\n{} — {verdict} ({:.1}s, seed {})",
        results.scenario, results.elapsed_s, results.seed
    );
    if let Some(reason) = &results.incomplete_reason {
        let _ = writeln!(
            out,
            "  stopped early: {reason}; results cover what was measured"
        );
    }
    let header = [
        "ROUTE", "BACKEND", "REQUESTS", "SUCCESS", "P50", "P99", "FLAGS",
    ];
    let rows: Vec<[String; 7]> = results
        .routes
        .iter()
        .map(|r| {
            let fmt_ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}ms"));
            let flags = r
                .flags
                .iter()
                .map(|(f, c)| format!("{f}:{c}"))
                .collect::<Vec<_>>()
                .join(" ");
            [
                r.route.clone(),
                r.backend.clone().unwrap_or_else(|| "-".into()),
                r.requests.to_string(),
                r.success_rate
                    .map_or("-".into(), |s| format!("{:.2}%", s * 100.0)),
                fmt_ms(r.latency_ms.p50),
                fmt_ms(r.latency_ms.p99),
                flags,
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..7)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .enumerate()
            .map(|(c, v)| format!("{v:<w$}", w = widths[c]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let _ = writeln!(out, "{}", line(&header.map(String::from)));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }
    if !results.expectations.is_empty() {
        let _ = writeln!(out);
    }
    for e in &results.expectations {
        let mark = if e.passed { "✓" } else { "✗" };
        let _ = writeln!(
            out,
            "{mark} {}: {} (observed {}, {} requests)",
            e.name, e.assertion, e.observed_text, e.requests
        );
    }
    let _ = writeln!(out, "\nresults: {}", dir.join("results.json").display());
    let report = dir.join("report.html");
    if report.exists() {
        let _ = writeln!(out, "report:  {}", report.display());
    }
    out
}
