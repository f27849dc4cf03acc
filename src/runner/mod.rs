//! `chaosgate run`: one scenario file at a time — start the backends and the proxy, drive the
//! loads, inject the faults on schedule, evaluate the expectations and write the results.
//!
//! Whatever happens after the backends start (Ctrl-C, a failure), what was measured so far is
//! written, marked incomplete, and everything the run started is stopped before returning.

mod join;
mod loads;
mod runtime;
mod sampler;
mod scenario_run;

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

pub use sampler::{Samples, StatsSource};
pub use scenario_run::{ScenarioOutcome, run_scenario_file};

use crate::report::results::RunVerdict;
use crate::scenario::diag::Diagnostic;
use crate::scenario::load::files_in;

/// Where a run happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    Embedded,
    Docker,
}

/// How `chaosgate run` presents its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Options of `chaosgate run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub runtime: RuntimeKind,
    pub out: PathBuf,
    pub seed: Option<u64>,
    pub junit: Option<PathBuf>,
    pub format: OutputFormat,
    pub quiet: bool,
}

/// Exit codes of scenario-format.md.
pub mod exit {
    /// Every expectation held.
    pub const PASSED: u8 = 0;
    /// At least one expectation failed.
    pub const FAILED: u8 = 1;
    /// Invalid input or usage.
    pub const INVALID: u8 = 2;
    /// The run could not be carried out.
    pub const INFRASTRUCTURE: u8 = 3;
}

/// The scenario files behind `paths`: files as given, folders' `*.yaml` sorted.
pub fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut files = Vec::new();
    for path in paths {
        files.extend(files_in(path)?);
    }
    Ok(files)
}

/// Runs every scenario file and returns the process exit code: the most severe outcome.
pub async fn run_paths(
    paths: &[PathBuf],
    options: &RunOptions,
    cancel: CancellationToken,
) -> (u8, Vec<ScenarioOutcome>) {
    let files = match scenario_files(paths) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("{e}");
            return (exit::INVALID, Vec::new());
        }
    };
    if files.is_empty() {
        eprintln!("no scenario files (*.yaml) in {}", display_paths(paths));
        return (exit::INVALID, Vec::new());
    }
    let mut code = exit::PASSED;
    let mut outcomes = Vec::new();
    for file in files {
        if cancel.is_cancelled() {
            break;
        }
        let outcome = run_scenario_file(&file, options, cancel.clone()).await;
        code = code.max(outcome.exit_code());
        outcomes.push(outcome);
    }
    if cancel.is_cancelled() {
        code = code.max(exit::INFRASTRUCTURE);
    }
    (code, outcomes)
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl ScenarioOutcome {
    /// The exit code this outcome alone calls for.
    pub fn exit_code(&self) -> u8 {
        match self {
            ScenarioOutcome::Skipped { .. } => exit::PASSED,
            ScenarioOutcome::Invalid { .. } => exit::INVALID,
            ScenarioOutcome::Infrastructure { .. } => exit::INFRASTRUCTURE,
            ScenarioOutcome::Ran { results, .. } => match results.verdict {
                RunVerdict::Passed => exit::PASSED,
                RunVerdict::Failed => exit::FAILED,
                RunVerdict::Incomplete => exit::INFRASTRUCTURE,
            },
        }
    }

    /// The scenario file it is about.
    pub fn file(&self) -> &Path {
        match self {
            ScenarioOutcome::Skipped { file, .. }
            | ScenarioOutcome::Invalid { file, .. }
            | ScenarioOutcome::Infrastructure { file, .. }
            | ScenarioOutcome::Ran { file, .. } => file,
        }
    }
}
