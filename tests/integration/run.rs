//! `chaosgate run` end to end through the binary: exit codes, results.json, the `latest` link,
//! and an interrupted run that still leaves its partial results and stops everything.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_chaosgate")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/run")
        .join(name)
}

fn results_of(out: &Path, scenario: &str) -> Value {
    let latest = out.join(scenario).join("latest").join("results.json");
    let text =
        std::fs::read_to_string(&latest).unwrap_or_else(|e| panic!("{}: {e}", latest.display()));
    serde_json::from_str(&text).expect("results.json is JSON")
}

#[test]
fn a_passing_scenario_exits_0_and_writes_results() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(binary())
        .args(["run", "--quiet", "--out"])
        .arg(out.path())
        .arg(fixture("quick-pass.yaml"))
        .output()
        .unwrap();
    let results = results_of(out.path(), "quick-pass");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}\n{:#}",
        String::from_utf8_lossy(&run.stderr),
        results["expectations"]
    );
    assert_eq!(results["verdict"], "passed");
    assert_eq!(results["complete"], true);
    assert_eq!(results["schemaVersion"], 1);
    assert_eq!(results["expectations"].as_array().unwrap().len(), 4);
    let routes = results["routes"].as_array().unwrap();
    assert_eq!(routes[0]["route"], "default/api/rule/0");
    assert!(routes[0]["requests"].as_u64().unwrap() >= 90);
    // The proxy's own counters are kept with Envoy's names.
    assert!(
        results["proxyStats"]["cluster.httproute/default/api/rule/0.upstream_rq_total"]
            .as_u64()
            .unwrap()
            >= 90
    );
    assert!(out.path().join("quick-pass/latest/junit.xml").exists());
}

#[test]
fn a_failing_expectation_exits_1_and_json_output_is_the_results() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(binary())
        .args(["run", "--format", "json", "--out"])
        .arg(out.path())
        .arg(fixture("quick-fail.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let printed: Value =
        serde_json::from_slice(&run.stdout).expect("--format json prints the results");
    assert_eq!(printed["verdict"], "failed");
    let failed: Vec<&Value> = printed["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["name"], "all succeed");
    assert!(failed[0]["observed"].as_f64().unwrap() < 0.8);
}

#[test]
fn invalid_input_exits_2_without_running() {
    let out = tempfile::tempdir().unwrap();
    let broken =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/invalid/11-unknown-fault-type.yaml");
    let run = Command::new(binary())
        .args(["run", "--out"])
        .arg(out.path())
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("unknown fault type `explode`"));
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "nothing written for an invalid scenario"
    );
}

#[test]
fn an_interrupted_run_writes_partial_results_and_stops() {
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary())
        .args(["run", "--quiet", "--out"])
        .arg(out.path())
        .arg(fixture("long-run.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::SystemTime::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::SystemTime::now() < deadline,
            "the run did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(3));
    let results = results_of(out.path(), "long-run");
    assert_eq!(results["complete"], false);
    assert_eq!(results["verdict"], "incomplete");
    assert!(
        results["incompleteReason"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
    let measured = results["routes"][0]["requests"].as_u64().unwrap();
    assert!(
        (50..1500).contains(&measured),
        "partial run measured {measured} requests"
    );
    assert!(results["elapsedS"].as_f64().unwrap() < 10.0);
    // Its JUnit shows every expectation as an error (nothing was decided), in the schema.
    let junit = out.path().join("long-run/latest/junit.xml");
    super::support::assert_valid_junit(&junit);
    let text = std::fs::read_to_string(&junit).unwrap();
    assert!(text.contains("errors=\"3\" skipped"), "{text}");
}
