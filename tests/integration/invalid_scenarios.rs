//! scenarios/invalid/: every broken file lists, in `# error: line:col: path: message` comments,
//! exactly the errors `validate` must report for it.

use std::path::{Path, PathBuf};

use chaosgate::scenario::inputs::Inputs;

fn invalid_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/invalid"))
            .expect("scenarios/invalid")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
    files.sort();
    files
}

#[test]
fn every_invalid_scenario_reports_exactly_its_documented_errors() {
    let files = invalid_files();
    assert!(
        files.len() >= 25,
        "expected at least 25 broken files, found {}",
        files.len()
    );
    let mut problems = Vec::new();
    for file in &files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        // Errors name files as given: use the path relative to the project root, as users do.
        let relative = PathBuf::from("scenarios/invalid").join(name);
        let text = std::fs::read_to_string(file).expect("read");
        let expected: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# error: "))
            .map(|e| format!("{}:{e}", relative.display()))
            .collect();
        if expected.is_empty() {
            problems.push(format!("{name}: no `# error:` lines"));
            continue;
        }
        let actual: Vec<String> = match Inputs::load(std::slice::from_ref(&relative)) {
            Ok(_) => vec![],
            Err((errors, _)) => errors.0.iter().map(ToString::to_string).collect(),
        };
        if actual != expected {
            problems.push(format!(
                "{name}\n  expected:\n    {}\n  actual:\n    {}",
                expected.join("\n    "),
                actual.join("\n    ")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
