//! Re-renders everything a run folder shows from its `results.json`: the PNG charts,
//! `report.html` and `junit.xml`. Used at the end of `chaosgate run` and by `chaosgate report`.

use std::path::{Path, PathBuf};

use super::charts;
use super::html::{self, EmbeddedChart};
use super::junit;
use super::results::RunResults;

/// Writes the charts, `report.html` and `junit.xml` of `results` into `dir` and returns the
/// paths written. When the charts fail, the page and JUnit file are still written (without
/// charts) and the chart error is returned, so a drawing problem never hides the results.
pub fn render_run(results: &RunResults, dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let mut embedded = Vec::new();
    let mut chart_error = None;
    match charts::render_all(&results.series, dir) {
        Ok(files) => {
            for file in files {
                match EmbeddedChart::read(&file.path) {
                    Ok(chart) => embedded.push(chart),
                    Err(e) => {
                        chart_error = Some(format!("cannot read {}: {e}", file.path.display()));
                    }
                }
                written.push(file.path);
            }
        }
        Err(e) => chart_error = Some(format!("charts not rendered: {e}")),
    }
    // JUnit first: CI reads it, so a page that cannot be written must not cost it.
    let junit_path = dir.join("junit.xml");
    junit::write(&junit_path, std::slice::from_ref(results))
        .map_err(|e| format!("cannot write {}: {e}", junit_path.display()))?;
    let page = dir.join("report.html");
    html::write(results, &embedded, &page)
        .map_err(|e| format!("cannot write {}: {e}", page.display()))?;
    written.push(page);
    written.push(junit_path);
    match chart_error {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

/// `chaosgate report`: reads a results file and re-renders its folder.
pub fn render_results_file(path: &Path) -> Result<Vec<PathBuf>, RenderError> {
    let results = RunResults::read(path).map_err(RenderError::Input)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    render_run(&results, dir).map_err(RenderError::Output)
}

/// Why `chaosgate report` failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The results file could not be read or parsed.
    #[error("{0}")]
    Input(String),
    /// Writing the outputs failed.
    #[error("{0}")]
    Output(String),
}
