//! `junit.xml`: one testsuite per scenario, one testcase per expectation.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::results::RunResults;

/// Writes the JUnit XML for these runs.
pub fn write(path: &Path, runs: &[RunResults]) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, render(runs))
}

/// The JUnit XML document.
pub fn render(runs: &[RunResults]) -> String {
    let tests: usize = runs.iter().map(|r| r.expectations.len()).sum();
    let failures: usize = runs
        .iter()
        .map(|r| r.expectations.iter().filter(|e| !e.passed).count())
        .sum();
    let errors: usize = runs.iter().filter(|r| !r.complete).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"chaosgate\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">"
    );
    for run in runs {
        let failed = run.expectations.iter().filter(|e| !e.passed).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"{}\" time=\"{:.3}\" timestamp=\"{}\">",
            xml(&run.scenario),
            run.expectations.len(),
            usize::from(!run.complete),
            run.elapsed_s,
            xml(run.started_at.trim_end_matches('Z')),
        );
        for e in &run.expectations {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                xml(&e.name),
                xml(&run.scenario),
                run.elapsed_s
            );
            if e.passed && run.complete {
                let _ = writeln!(out, "/>");
                continue;
            }
            let _ = writeln!(out, ">");
            if !e.passed {
                let message = format!("{} (observed {})", e.assertion, e.observed_text);
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"ExpectationFailed\">{}</failure>",
                    xml(&message),
                    xml(&message)
                );
            }
            if let Some(reason) = run.incomplete_reason.as_deref().filter(|_| !run.complete) {
                let _ = writeln!(
                    out,
                    "      <error message=\"{}\" type=\"RunIncomplete\"/>",
                    xml(reason)
                );
            }
            let _ = writeln!(out, "    </testcase>");
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    out.push_str("</testsuites>\n");
    out
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
