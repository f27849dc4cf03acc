//! The bundled scenario library: every file validates, and the scenarios of
//! `scenarios/failing/` run to the end and fail their expectations (exit code 1) as their
//! comments say. The passing library itself is run by CI through the README's main command
//! (`chaosgate run scenarios/`), which takes minutes, not here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chaosgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chaosgate"))
        .args(args)
        .current_dir(project_root())
        .output()
        .expect("the chaosgate binary runs")
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(project_root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_library_and_its_subfolders_validate() {
    // The required library (13 stories) plus the long and failing folders.
    assert!(
        yaml_files("scenarios").len() >= 11,
        "scenarios/ lost files: {:?}",
        yaml_files("scenarios")
    );
    for dir in ["scenarios/", "scenarios/failing/", "scenarios/long/"] {
        let output = chaosgate(&["validate", dir]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "validate {dir}: {}",
            describe(&output)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("0 with errors"),
            "validate {dir} summary: {stdout}"
        );
    }
}

#[test]
fn failing_scenarios_fail_their_expectations() {
    let files = yaml_files("scenarios/failing");
    assert!(
        files.len() >= 2,
        "expected two failing scenarios: {files:?}"
    );
    let out = tempfile::tempdir().expect("temp dir");
    let out_dir = out.path().to_str().expect("utf-8 temp path");
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read scenario");
        assert!(
            text.contains("# EXPECTED TO FAIL"),
            "{} must say why it fails",
            file.display()
        );
        let relative = file
            .strip_prefix(project_root())
            .expect("under the project")
            .to_str()
            .expect("utf-8 path");
        let output = chaosgate(&["run", relative, "--out", out_dir]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{relative} must fail an expectation: {}",
            describe(&output)
        );
        assert!(stdout.contains('✗'), "{relative}: no ✗ in {stdout}");
        // One results.json per scenario run, under <out>/<scenario name>/<run id>/.
        let name = scenario_name(&text);
        let runs: Vec<PathBuf> = std::fs::read_dir(out.path().join(&name))
            .unwrap_or_else(|e| panic!("{relative}: no report folder {name}: {e}"))
            .filter_map(Result::ok)
            // `latest` is a symlink to the run folder: count run folders only.
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path().join("results.json"))
            .filter(|p| p.is_file())
            .collect();
        assert_eq!(runs.len(), 1, "{relative}: results.json files {runs:?}");
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&runs[0]).expect("read results"))
                .expect("results.json is JSON");
        assert_eq!(results["verdict"], "failed", "{relative}: {results}");
        let failed = results["expectations"]
            .as_array()
            .expect("expectations")
            .iter()
            .filter(|e| e["passed"] == false)
            .count();
        assert!(
            failed >= 1,
            "{relative}: no failed expectation in results.json"
        );
    }
}

/// The Scenario object's `metadata.name`: the report folder.
fn scenario_name(text: &str) -> String {
    text.split("\n---")
        .find(|doc| doc.contains("kind: Scenario"))
        .and_then(|doc| {
            doc.lines()
                .find_map(|l| l.strip_prefix("metadata: {name: "))
                .map(|rest| rest.trim_end_matches('}').trim().to_string())
        })
        .expect("a Scenario with `metadata: {name: ...}`")
}
