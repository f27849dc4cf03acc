//! `junit.xml`: one testsuite per scenario, one testcase per expectation, in the JUnit format
//! that CI dashboards read (`docs/junit.xsd` describes exactly what is written).
//!
//! Each testcase has one outcome, and every count is derived from those outcomes, so the
//! counts the dashboards show can never disagree with the elements they list.

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

/// What one testcase reports.
enum Outcome {
    Passed,
    /// The expectation was evaluated over the whole run and did not hold.
    Failed {
        message: String,
    },
    /// The run did not complete, so the expectation could not be decided.
    Error {
        message: String,
        detail: String,
    },
}

struct Case {
    name: String,
    outcome: Outcome,
}

struct Suite<'a> {
    run: &'a RunResults,
    cases: Vec<Case>,
}

impl Suite<'_> {
    fn count(&self, pick: fn(&Outcome) -> bool) -> usize {
        self.cases.iter().filter(|c| pick(&c.outcome)).count()
    }
    fn failures(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed { .. }))
    }
    fn errors(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Error { .. }))
    }
}

/// The testcases of one run. An incomplete run decides nothing: each expectation becomes an
/// error carrying why the run stopped (and a run without expectations gets one such case, so
/// the interruption is never invisible on a dashboard).
fn suite(run: &RunResults) -> Suite<'_> {
    let mut cases: Vec<Case> = run
        .expectations
        .iter()
        .map(|e| {
            let assertion = format!("{} (observed {})", e.assertion, e.observed_text);
            let outcome = match run.incomplete_reason.as_deref() {
                Some(reason) if !run.complete => Outcome::Error {
                    message: format!("the run did not complete: {reason}"),
                    detail: format!("{assertion} before the run stopped"),
                },
                _ if e.passed => Outcome::Passed,
                _ => Outcome::Failed { message: assertion },
            };
            Case {
                name: e.name.clone(),
                outcome,
            }
        })
        .collect();
    if !run.complete && cases.is_empty() {
        let reason = run.incomplete_reason.as_deref().unwrap_or("unknown reason");
        cases.push(Case {
            name: "the run completes".to_string(),
            outcome: Outcome::Error {
                message: format!("the run did not complete: {reason}"),
                detail: String::new(),
            },
        });
    }
    Suite { run, cases }
}

/// The JUnit XML document.
pub fn render(runs: &[RunResults]) -> String {
    let suites: Vec<Suite<'_>> = runs.iter().map(suite).collect();
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites.iter().map(Suite::failures).sum();
    let errors: usize = suites.iter().map(Suite::errors).sum();
    let time: f64 = runs.iter().map(|r| r.elapsed_s).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"chaosgate\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">"
    );
    for suite in &suites {
        write_suite(&mut out, suite);
    }
    out.push_str("</testsuites>\n");
    out
}

fn write_suite(out: &mut String, suite: &Suite<'_>) {
    let run = suite.run;
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{:.3}\" timestamp=\"{}\">",
        xml(&run.scenario),
        suite.cases.len(),
        suite.failures(),
        suite.errors(),
        run.elapsed_s.max(0.0),
        xml(run.started_at.trim_end_matches('Z')),
    );
    out.push_str("    <properties>\n");
    for (name, value) in [
        ("file", run.file.clone()),
        ("run_id", run.run_id.clone()),
        ("runtime", run.runtime.clone()),
        ("seed", run.seed.to_string()),
        ("verdict", format!("{:?}", run.verdict).to_lowercase()),
    ] {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            xml(&value)
        );
    }
    out.push_str("    </properties>\n");
    for case in &suite.cases {
        // Expectations are judged over the whole run, not timed one by one: the suite carries
        // the duration, and zero here keeps dashboards that add up testcases from counting it
        // once per expectation.
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"0.000\"",
            xml(&case.name),
            xml(&run.scenario),
        );
        match &case.outcome {
            Outcome::Passed => out.push_str("/>\n"),
            Outcome::Failed { message } => {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{0}\" type=\"ExpectationFailed\">{0}</failure>\n    </testcase>",
                    xml(message)
                );
            }
            Outcome::Error { message, detail } => {
                let _ = writeln!(
                    out,
                    ">\n      <error message=\"{}\" type=\"RunIncomplete\">{}</error>\n    </testcase>",
                    xml(message),
                    xml(detail)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n");
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Tabs, newlines and carriage returns survive in attributes only as references.
            '\t' | '\n' | '\r' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            // XML 1.0 cannot carry the other control characters at all.
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
