//! `report.html`: one self-contained page per run — verdict, expectations, what happened when,
//! the policies in force, per-route numbers and the charts embedded as `data:` URIs — readable
//! offline, attachable to a CI run and printable. No scripts, no external fetches.

use std::fmt::Write as _;
use std::path::Path;

mod base64;
mod escape;
mod format;
mod phases;
mod sections;
mod story;

pub use escape::{Esc, slug};
pub use format::{ms, pct};

use crate::report::results::RunResults;

/// The page's stylesheet, inlined into every page (also `chaosgate compare --html`).
pub const STYLE: &str = include_str!("style.css");

/// A PNG chart to embed in the page.
#[derive(Debug, Clone)]
pub struct EmbeddedChart {
    /// File name of the chart (`latency_over_time.png`); its stem names the anchor.
    pub file_name: String,
    /// The PNG bytes.
    pub png: Vec<u8>,
}

impl EmbeddedChart {
    /// Reads a chart PNG from disk.
    pub fn read(path: &Path) -> std::io::Result<EmbeddedChart> {
        Ok(EmbeddedChart {
            file_name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            png: std::fs::read(path)?,
        })
    }

    /// The anchor id of this chart in the page (`chart-latency-over-time`).
    pub fn anchor(&self) -> String {
        chart_anchor(self.file_name.trim_end_matches(".png"))
    }

    /// The image as a `data:` URI.
    pub fn data_uri(&self) -> String {
        format!("data:image/png;base64,{}", base64::encode(&self.png))
    }
}

/// The anchor id of the chart whose file stem is `stem`.
pub fn chart_anchor(stem: &str) -> String {
    format!("chart-{}", slug(stem))
}

/// Renders the report page of one run.
pub fn render(results: &RunResults, charts: &[EmbeddedChart]) -> String {
    let mut body = String::new();
    sections::banner(&mut body, results);
    sections::at_a_glance(&mut body, results);
    sections::expectations(&mut body, results, charts);
    story::story(&mut body, results);
    sections::route_tables(&mut body, results);
    sections::charts(&mut body, charts);
    let _ = writeln!(
        body,
        "<footer>chaosgate {} · results schema v{} · run <code>{}</code> · {}</footer>",
        env!("CARGO_PKG_VERSION"),
        results.schema_version,
        Esc(&results.run_id),
        Esc(&results.file)
    );
    page(
        &format!("{} — {}", results.scenario, verdict_word(results)),
        &body,
    )
}

/// Writes `report.html` for one run.
pub fn write(results: &RunResults, charts: &[EmbeddedChart], path: &Path) -> std::io::Result<()> {
    std::fs::write(path, render(results, charts))
}

/// A complete HTML document around `body` with the inline stylesheet.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        Esc(title)
    )
}

/// `PASSED`, `FAILED` or `INCOMPLETE`.
pub fn verdict_word(results: &RunResults) -> &'static str {
    use crate::report::results::RunVerdict;
    match results.verdict {
        RunVerdict::Passed => "PASSED",
        RunVerdict::Failed => "FAILED",
        RunVerdict::Incomplete => "INCOMPLETE",
    }
}

#[cfg(test)]
mod tests;
