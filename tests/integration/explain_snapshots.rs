//! `explain --output json` snapshots: each fixture in tests/fixtures/explain is one situation
//! derived from Envoy Gateway's documentation and btp-spec.md; its `.json` beside it is the
//! reviewed answer. Set CHAOSGATE_UPDATE_SNAPSHOTS=1 to rewrite them after a deliberate change.

use std::path::{Path, PathBuf};

use super::support::explain_json;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/explain");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn explain_json_matches_reviewed_snapshots() {
    let update = std::env::var_os("CHAOSGATE_UPDATE_SNAPSHOTS").is_some();
    let files = fixtures();
    assert!(
        files.len() >= 15,
        "expected at least 15 explain fixtures, found {}",
        files.len()
    );
    let mut mismatches = Vec::new();
    for file in &files {
        let actual = explain_json(std::slice::from_ref(file))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let rendered = serde_json::to_string_pretty(&actual).expect("json") + "\n";
        let snapshot = file.with_extension("json");
        if update {
            std::fs::write(&snapshot, &rendered).expect("write snapshot");
            continue;
        }
        let expected = std::fs::read_to_string(&snapshot).unwrap_or_else(|_| {
            panic!(
                "{} has no snapshot; review the output and run with CHAOSGATE_UPDATE_SNAPSHOTS=1",
                file.display()
            )
        });
        if expected != rendered {
            mismatches.push(format!(
                "{}\n--- expected\n{expected}\n--- actual\n{rendered}",
                file.display()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "explain output changed:\n{}",
        mismatches.join("\n")
    );
}
