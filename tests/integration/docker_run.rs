//! `chaosgate run --runtime docker` end to end through the binary: the same scenario reaches the
//! same verdicts as in the embedded runtime, and an interrupted docker run leaves no container
//! or network behind.
//!
//! Docker required: without an engine these tests skip, unless `CHAOSGATE_REQUIRE_DOCKER=1`
//! makes them fail. The first docker run of a build makes the static binaries and the image
//! (minutes when cold; see docker/README.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::Value;

/// Docker runs one at a time: they share the image build and the two cores.
static DOCKER: Mutex<()> = Mutex::new(());

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_chaosgate")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/run")
        .join(name)
}

/// Whether an engine answers; panics instead of skipping with `CHAOSGATE_REQUIRE_DOCKER=1`.
fn docker_or_skip(test: &str) -> bool {
    let answer = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let why = match answer {
        Ok(out) if out.status.success() => return true,
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
        Err(e) => format!("docker: {e}"),
    };
    let required = std::env::var("CHAOSGATE_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
    assert!(!required, "CHAOSGATE_REQUIRE_DOCKER=1 but no engine: {why}");
    eprintln!("skipping {test}: no docker engine ({why}); set CHAOSGATE_REQUIRE_DOCKER=1 to fail");
    false
}

/// Runs `file` in `runtime`; returns the exit code, the results and stderr.
fn run(runtime: &str, file: &Path, out: &Path) -> (Option<i32>, Value, String) {
    let started = SystemTime::now();
    let run = Command::new(binary())
        .args(["run", "--runtime", runtime, "--out"])
        .arg(out)
        .arg(file)
        .stdout(Stdio::null())
        .output()
        .expect("run chaosgate");
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    eprintln!(
        "{runtime} run of {} took {:?}:\n{stderr}",
        file.display(),
        started.elapsed().unwrap_or_default()
    );
    let scenario = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let latest = out.join(scenario).join("latest").join("results.json");
    let text = std::fs::read_to_string(&latest)
        .unwrap_or_else(|e| panic!("{}: {e}\n{stderr}", latest.display()));
    let results = serde_json::from_str(&text).expect("results.json is JSON");
    (run.status.code(), results, stderr)
}

/// Each expectation's name and whether it held.
fn verdicts(results: &Value) -> Vec<(String, bool)> {
    results["expectations"]
        .as_array()
        .expect("expectations")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or("").to_string(),
                e["passed"].as_bool().expect("passed"),
            )
        })
        .collect()
}

fn same_verdicts_in_both_runtimes(file: &Path) -> (Value, Value) {
    let out = tempfile::tempdir().unwrap();
    let (code_e, embedded, _) = run("embedded", file, &out.path().join("embedded"));
    let (code_d, docker, stderr) = run("docker", file, &out.path().join("docker"));
    assert_eq!(docker["runtime"], "docker");
    assert_eq!(embedded["runtime"], "embedded");
    assert_eq!(docker["complete"], true, "{stderr}");
    assert_eq!(
        verdicts(&docker),
        verdicts(&embedded),
        "docker: {:#}\nembedded: {:#}\n{stderr}",
        docker["expectations"],
        embedded["expectations"]
    );
    assert_eq!(code_d, code_e, "exit codes differ: {stderr}");
    assert_eq!(docker["verdict"], embedded["verdict"], "{stderr}");
    (embedded, docker)
}

#[test]
fn a_passing_scenario_passes_in_docker_as_embedded() {
    if !docker_or_skip("docker quick-pass") {
        return;
    }
    let _one = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let (_, docker) = same_verdicts_in_both_runtimes(&fixture("quick-pass.yaml"));
    assert_eq!(docker["verdict"], "passed");
    // The proxy's access log came back from the container: requests have their route and
    // replicas, and the proxy's counters came from its published /stats.
    let routes = docker["routes"].as_array().unwrap();
    assert_eq!(routes[0]["route"], "default/api/rule/0");
    assert!(routes[0]["requests"].as_u64().unwrap() >= 90);
    assert!(
        docker["proxyStats"]["cluster.httproute/default/api/rule/0.upstream_rq_total"]
            .as_u64()
            .unwrap()
            >= 90,
        "{:#}",
        docker["proxyStats"]
    );
}

/// A killed replica: retries on refused connects and resets keep every request successful,
/// and the proxy counts its retries.
const KILL_WITH_RETRIES: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, namespace: default}
spec:
  gatewayClassName: eg
  listeners:
    - {name: http, protocol: HTTP, port: 80}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: default}
spec:
  parentRefs: [{name: eg}]
  rules:
    - backendRefs: [{name: api, port: 8080}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: api, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: api}]
  loadBalancer: {type: RoundRobin}
  retry:
    numRetries: 3
    retryOn: {triggers: [connect-failure, reset]}
    perRetry: {backOff: {baseInterval: 10ms, maxInterval: 50ms}}
---
apiVersion: chaosgate.dev/v1alpha1
kind: Scenario
metadata: {name: kill-with-retries}
spec:
  seed: 3
  backends:
    - {name: api, port: 8080, replicas: 2, latency: 1ms}
  load:
    - {name: clients, path: /, rate: 40, duration: 6s}
  faults:
    - {backend: api, replicas: [0], at: 2s, duration: 2s, type: kill}
  expect:
    - {name: retries hide the kill, assert: success_rate >= 99%}
    - {name: the proxy retried, assert: stat(upstream_rq_retry) > 10}
    - name: the survivor serves during the kill
      where: {backend: api, replica: 1, from: 3s, to: 4s}
      assert: share > 90%
    - {name: nothing went wrong at all, assert: stat(upstream_rq_retry) == 0}
"#;

#[test]
fn a_killed_replica_with_retries_reaches_the_same_verdicts() {
    if !docker_or_skip("docker kill-with-retries") {
        return;
    }
    let _one = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kill-with-retries.yaml");
    std::fs::write(&file, KILL_WITH_RETRIES).unwrap();
    let (embedded, docker) = same_verdicts_in_both_runtimes(&file);
    // The last expectation fails on purpose: both runtimes saw retries.
    assert_eq!(docker["verdict"], "failed");
    assert_eq!(
        verdicts(&embedded),
        vec![
            ("retries hide the kill".to_string(), true),
            ("the proxy retried".to_string(), true),
            ("the survivor serves during the kill".to_string(), true),
            ("nothing went wrong at all".to_string(), false),
        ]
    );
    assert_eq!(
        docker["faults"].as_array().map(Vec::len),
        Some(2),
        "{docker:#}"
    );
}

/// Containers and networks labelled as owned by process `pid`.
fn owned_by(pid: u32) -> (Vec<String>, Vec<String>) {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string();
    let filter = format!("label=dev.chaosgate.owner={hostname}/{pid}");
    let list = |args: &[&str], format: &str| -> Vec<String> {
        let out = Command::new("docker")
            .args(args)
            .args(["--filter", &filter, "--format", format])
            .output()
            .expect("docker");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    (
        list(
            &["ps", "-a", "--filter", "label=dev.chaosgate.managed=true"],
            "{{.Names}}",
        ),
        list(
            &[
                "network",
                "ls",
                "--filter",
                "label=dev.chaosgate.managed=true",
            ],
            "{{.Name}}",
        ),
    )
}

#[test]
fn an_interrupted_docker_run_leaves_no_container_or_network() {
    if !docker_or_skip("docker interrupt") {
        return;
    }
    let _one = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary())
        .args(["run", "--runtime", "docker", "--quiet", "--out"])
        .arg(out.path())
        .arg(fixture("long-run.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until the run's proxy container is up (the image may be built first), then a
    // little longer so requests flow.
    let deadline = SystemTime::now() + Duration::from_secs(240);
    loop {
        let (containers, _) = owned_by(pid);
        if containers.iter().any(|c| c.contains("-service-proxy-")) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended before its proxy started: {status}");
        }
        assert!(SystemTime::now() < deadline, "no proxy container appeared");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let (containers, networks) = owned_by(pid);
    assert_eq!(
        containers.len(),
        5,
        "2 replicas × 2 + proxy: {containers:?}"
    );
    assert_eq!(networks.len(), 1);
    let killed = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let stopped_at = SystemTime::now();
    let deadline = stopped_at + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            SystemTime::now() < deadline,
            "the run did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!(
        "interrupted docker run ended {:?} after SIGINT",
        stopped_at.elapsed().unwrap_or_default()
    );
    assert_eq!(status.code(), Some(3));
    assert_eq!(owned_by(pid), (Vec::new(), Vec::new()), "leftovers");
    let latest = out.path().join("long-run/latest/results.json");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(latest).unwrap()).unwrap();
    assert_eq!(results["runtime"], "docker");
    assert_eq!(results["verdict"], "incomplete");
    assert!(results["routes"][0]["requests"].as_u64().unwrap() > 0);
}
