//! Tests of the docker runtime. Those that need an engine skip with a printed reason when none
//! answers, and fail instead when `CHAOSGATE_REQUIRE_DOCKER=1` (CI). Each run gets its own
//! network and containers; runs of this process are never swept by each other.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions};
use bytes::Bytes;
use http::{Method, StatusCode};
use mock_backends::{BACKEND_HEADER, Fault, REPLICA_HEADER, ReplicaStats};
use tokio::sync::OnceCell;
use tokio::time::{Instant, timeout};

use super::container::{ROLE_LABEL, SANDBOX_ROLE, container_name};
use super::engine::{MANAGED_LABEL, NAME_PREFIX, OWNER_LABEL, RUN_LABEL};
use super::image::is_static_elf;
use super::network::RunNetwork;
use super::*;
use crate::chaos::timeline::FaultTarget;
use crate::scenario::spec::{BackendProtocol, BackendSpec, FaultKind, LatencyDist, ScenarioSpec};

/// The image, built (or found) once per test binary; each test has its own runtime, so only
/// plain data is shared, never an engine connection.
static IMAGE: OnceCell<RuntimeImage> = OnceCell::const_new();

const BACKEND: &str = "default/pay";

/// An engine, or `None` (with the reason printed) when there is none and none is required.
async fn engine_or_skip(test: &str) -> Option<Engine> {
    match Engine::connect().await {
        Ok(engine) => Some(engine),
        Err(error) => {
            let required = std::env::var("CHAOSGATE_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
            assert!(!required, "CHAOSGATE_REQUIRE_DOCKER=1 but {error}");
            eprintln!("skipping {test}: {error} (set CHAOSGATE_REQUIRE_DOCKER=1 to fail instead)");
            None
        }
    }
}

async fn image(engine: &Engine) -> RuntimeImage {
    IMAGE
        .get_or_init(|| async {
            let started = Instant::now();
            let binaries = StaticBinaries::locate_or_build()
                .await
                .unwrap_or_else(|e| panic!("static binaries: {e}"));
            eprintln!("static binaries ready in {:?}", started.elapsed());
            let started = Instant::now();
            let image = ensure_image(engine, &binaries)
                .await
                .unwrap_or_else(|e| panic!("image: {e}"));
            eprintln!(
                "image {} {} in {:?}",
                image.tag,
                if image.built { "built" } else { "found" },
                started.elapsed()
            );
            image
        })
        .await
        .clone()
}

fn spec(replicas: usize) -> ScenarioSpec {
    ScenarioSpec {
        description: None,
        seed: 7,
        manifests: Vec::new(),
        backends: vec![BackendSpec {
            yaml_path: "spec.backends[0]".to_owned(),
            name: "pay".to_owned(),
            namespace: "default".to_owned(),
            port: None,
            replicas,
            latency: LatencyDist::Fixed(Duration::ZERO),
            error_rate: 0.0,
            error_status: 500,
            health_path: "/healthz".to_owned(),
            protocol: BackendProtocol::Http1,
        }],
        load: Vec::new(),
        faults: Vec::new(),
        expect: Vec::new(),
    }
}

async fn start(engine: &Engine, replicas: usize) -> DockerBackends {
    let image = image(engine).await;
    let started = Instant::now();
    let backends = DockerBackends::start(engine, &image, RunId::generate(), &spec(replicas))
        .await
        .unwrap_or_else(|e| panic!("starting backends: {e}"));
    eprintln!(
        "{replicas} replica(s) of run {} ready in {:?}",
        backends.run(),
        started.elapsed()
    );
    backends
}

async fn get(addr: SocketAddr, limit: Duration) -> Result<control::Answer, String> {
    control::request(addr, Method::GET, "/work", Bytes::new(), limit).await
}

fn traffic(backends: &DockerBackends, index: usize) -> SocketAddr {
    backends.endpoints(BACKEND)[index].1
}

async fn apply(backends: &DockerBackends, replica: usize, active: &[FaultKind]) {
    // Through the trait object, as the timeline runner calls it.
    let target: &dyn FaultTarget = backends;
    target
        .apply(BACKEND, replica, active)
        .await
        .unwrap_or_else(|e| panic!("applying {active:?}: {e}"));
}

async fn stats(backends: &DockerBackends, replica: usize) -> ReplicaStats {
    let published = backends
        .published(BACKEND, replica)
        .await
        .expect("published ports");
    let answer = control::request(
        published.control,
        Method::GET,
        "/stats",
        Bytes::new(),
        Duration::from_secs(5),
    )
    .await
    .expect("stats");
    serde_json::from_slice(&answer.body).expect("stats JSON")
}

/// Containers (any state) and networks still labelled with `run`.
async fn leftovers(engine: &Engine, run: &str) -> (usize, usize) {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{RUN_LABEL}={run}")])]);
    let containers = engine
        .docker()
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .expect("list containers");
    let networks = engine
        .docker()
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .expect("list networks");
    (containers.len(), networks.len())
}

async fn shutdown(engine: &Engine, backends: DockerBackends) {
    let run = backends.run().to_string();
    let started = Instant::now();
    backends.shutdown().await.expect("shutdown");
    eprintln!("run {run} removed in {:?}", started.elapsed());
    assert_eq!(leftovers(engine, &run).await, (0, 0));
}

#[tokio::test]
async fn image_is_built_once_from_static_binaries_and_runs_unprivileged() {
    let Some(engine) = engine_or_skip("image").await else {
        return;
    };
    let first = image(&engine).await;
    let binaries = StaticBinaries::locate_or_build().await.expect("binaries");
    assert!(is_static_elf(&binaries.mock_backends).expect("read"));
    assert!(is_static_elf(&binaries.chaosgate).expect("read"));
    let again = ensure_image(&engine, &binaries).await.expect("image");
    assert_eq!(again.tag, first.tag);
    assert!(!again.built, "an existing image is not built again");
    let inspected = engine
        .docker()
        .inspect_image(&first.tag)
        .await
        .expect("inspect");
    let config = inspected.config.expect("config");
    assert_eq!(config.user.as_deref(), Some("65534:65534"));
}

#[tokio::test]
async fn every_replica_answers_on_its_network_address_with_its_headers() {
    let Some(engine) = engine_or_skip("replicas").await else {
        return;
    };
    let backends = start(&engine, 2).await;
    let endpoints = backends.endpoints(BACKEND);
    assert_eq!(endpoints.len(), 2);
    assert_ne!(endpoints[0].1, endpoints[1].1);
    for (index, addr) in endpoints {
        let answer = get(addr, Duration::from_secs(5)).await.expect("request");
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.headers[&BACKEND_HEADER], BACKEND);
        assert_eq!(answer.headers[&REPLICA_HEADER], index.to_string().as_str());
        // The published port reaches the same replica (for hosts without bridge routes).
        let published = backends.published(BACKEND, index).await.expect("ports");
        let answer = get(published.traffic, Duration::from_secs(5))
            .await
            .expect("request through the published port");
        assert_eq!(answer.headers[&REPLICA_HEADER], index.to_string().as_str());
    }
    for replica in backends.replicas() {
        for name in [&replica.containers.replica, &replica.containers.sandbox] {
            let inspected = engine
                .docker()
                .inspect_container(name, None)
                .await
                .expect("inspect");
            let host = inspected.host_config.expect("host config");
            assert_eq!(host.readonly_rootfs, Some(true), "{name}");
            assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]), "{name}");
            assert!(host.cap_add.unwrap_or_default().is_empty(), "{name}");
            let config = inspected.config.expect("config");
            assert_eq!(config.user.as_deref(), Some("65534:65534"), "{name}");
            let labels = config.labels.expect("labels");
            assert_eq!(labels[MANAGED_LABEL], "true");
            assert_eq!(labels[RUN_LABEL], backends.run().as_str());
        }
    }
    shutdown(&engine, backends).await;
}

#[tokio::test]
async fn a_service_container_joins_the_run_network_and_is_removed_with_the_run() {
    let Some(engine) = engine_or_skip("service").await else {
        return;
    };
    let mut backends = start(&engine, 1).await;
    // mock-backends stands in for the proxy, which has no container command yet.
    let command = [
        "/mock-backends",
        "--config",
        r#"{"backend":"proxy-stand-in"}"#,
        "--listen",
        "0.0.0.0:10000",
        "--control",
        "0.0.0.0:10001",
    ];
    let service = backends
        .start_service(&ServiceLaunch {
            name: "proxy",
            command: command.map(str::to_owned).to_vec(),
            ports: vec![10000],
            env: vec!["RUST_LOG=warn".to_owned()],
            mounts: Vec::new(),
        })
        .await
        .expect("service");
    assert_ne!(SocketAddr::from((service.ip, 8080)), traffic(&backends, 0));
    let on_network = SocketAddr::from((service.ip, 10000));
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        match get(on_network, Duration::from_secs(2)).await {
            Ok(answer) => break answer,
            Err(e) if Instant::now() > deadline => panic!("service never answered: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert_eq!(answer.headers[&BACKEND_HEADER], "default/proxy-stand-in");
    let published = service.published[&10000];
    let answer = get(published, Duration::from_secs(5))
        .await
        .expect("published");
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(leftovers(&engine, backends.run().as_str()).await, (3, 1));
    shutdown(&engine, backends).await;
}

#[tokio::test]
async fn kill_refuses_connections_and_the_replica_comes_back_fresh() {
    let Some(engine) = engine_or_skip("kill").await else {
        return;
    };
    let backends = start(&engine, 1).await;
    let addr = traffic(&backends, 0);
    for _ in 0..3 {
        let answer = get(addr, Duration::from_secs(5)).await.expect("request");
        assert_eq!(answer.status, StatusCode::OK);
    }
    assert_eq!(stats(&backends, 0).await.requests, 3);

    apply(&backends, 0, &[FaultKind::Kill]).await;
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionRefused),
        "a killed replica's address refuses connections"
    );

    let started = Instant::now();
    apply(&backends, 0, &[]).await;
    eprintln!("killed replica back in {:?}", started.elapsed());
    let answer = get(addr, Duration::from_secs(5)).await.expect("request");
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers[&REPLICA_HEADER], "0");
    assert_eq!(stats(&backends, 0).await.requests, 1, "a fresh process");
    shutdown(&engine, backends).await;
}

#[tokio::test]
async fn pause_holds_requests_until_the_replica_thaws() {
    let Some(engine) = engine_or_skip("pause").await else {
        return;
    };
    let backends = start(&engine, 1).await;
    let addr = traffic(&backends, 0);
    apply(&backends, 0, &[FaultKind::Pause]).await;
    let pending = tokio::spawn(async move { get(addr, Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!pending.is_finished(), "a paused replica does not answer");
    apply(&backends, 0, &[]).await;
    let answer = timeout(Duration::from_secs(5), pending)
        .await
        .expect("answered after the unpause")
        .expect("task")
        .expect("request");
    assert_eq!(answer.status, StatusCode::OK);
    shutdown(&engine, backends).await;
}

#[tokio::test]
async fn partition_drops_packets_until_the_replica_is_reconnected_at_its_address() {
    let Some(engine) = engine_or_skip("partition").await else {
        return;
    };
    let backends = start(&engine, 1).await;
    let addr = traffic(&backends, 0);
    assert!(get(addr, Duration::from_secs(5)).await.is_ok());
    apply(&backends, 0, &[FaultKind::Partition]).await;
    assert!(backends.published(BACKEND, 0).await.is_none());
    let cut = get(addr, Duration::from_secs(1)).await;
    assert!(
        cut.is_err(),
        "a partitioned replica is unreachable: {cut:?}"
    );
    apply(&backends, 0, &[]).await;
    assert_eq!(backends.endpoints(BACKEND)[0].1, addr, "same address");
    let answer = get(addr, Duration::from_secs(5)).await.expect("request");
    assert_eq!(answer.status, StatusCode::OK);
    shutdown(&engine, backends).await;
}

#[tokio::test]
async fn replica_faults_go_through_the_control_endpoint_and_survive_container_faults() {
    let Some(engine) = engine_or_skip("control faults").await else {
        return;
    };
    let backends = start(&engine, 1).await;
    let addr = traffic(&backends, 0);
    let error = FaultKind::Error {
        status: 503,
        rate: 1.0,
    };
    let status = |answer: Result<control::Answer, String>| answer.expect("request").status;

    apply(&backends, 0, &[error]).await;
    assert_eq!(status(get(addr, Duration::from_secs(5)).await), 503);

    // Latency starts during a partition: it is in place when the partition ends.
    let latency = FaultKind::Latency(LatencyDist::Fixed(Duration::from_millis(400)));
    apply(&backends, 0, &[FaultKind::Partition, latency]).await;
    assert!(get(addr, Duration::from_millis(500)).await.is_err());
    apply(&backends, 0, &[latency]).await;
    let started = Instant::now();
    assert_eq!(status(get(addr, Duration::from_secs(5)).await), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));

    // A killed replica comes back fresh, and gets the faults still active.
    apply(&backends, 0, &[FaultKind::Kill, error]).await;
    assert!(get(addr, Duration::from_secs(1)).await.is_err());
    apply(&backends, 0, &[error]).await;
    assert_eq!(status(get(addr, Duration::from_secs(5)).await), 503);
    assert_eq!(stats(&backends, 0).await.requests, 1, "a fresh process");

    apply(&backends, 0, &[]).await;
    assert_eq!(status(get(addr, Duration::from_secs(5)).await), 200);
    shutdown(&engine, backends).await;
}

#[tokio::test]
async fn container_faults_overlap_in_any_order() {
    let Some(engine) = engine_or_skip("overlapping container faults").await else {
        return;
    };
    let backends = start(&engine, 1).await;
    let addr = traffic(&backends, 0);
    let ok = |answer: Result<control::Answer, String>| {
        assert_eq!(answer.expect("request").status, StatusCode::OK);
    };
    // Killed while paused, then thawed: a fresh process.
    apply(&backends, 0, &[FaultKind::Pause]).await;
    apply(&backends, 0, &[FaultKind::Pause, FaultKind::Kill]).await;
    apply(&backends, 0, &[FaultKind::Pause]).await;
    assert!(get(addr, Duration::from_millis(500)).await.is_err());
    apply(&backends, 0, &[]).await;
    ok(get(addr, Duration::from_secs(5)).await);
    assert_eq!(stats(&backends, 0).await.requests, 1, "a fresh process");
    // Killed while partitioned; the partition outlasts the kill.
    apply(&backends, 0, &[FaultKind::Partition]).await;
    apply(&backends, 0, &[FaultKind::Partition, FaultKind::Kill]).await;
    apply(&backends, 0, &[FaultKind::Partition]).await;
    assert!(get(addr, Duration::from_millis(500)).await.is_err());
    apply(&backends, 0, &[]).await;
    ok(get(addr, Duration::from_secs(5)).await);
    assert_eq!(stats(&backends, 0).await.requests, 1, "a fresh process");
    shutdown(&engine, backends).await;
}

#[tokio::test]
async fn a_dropped_run_is_removed_by_its_guard() {
    let Some(engine) = engine_or_skip("guard").await else {
        return;
    };
    let backends = start(&engine, 1).await;
    let run = backends.run().to_string();
    assert_eq!(leftovers(&engine, &run).await, (2, 1));
    apply(&backends, 0, &[FaultKind::Pause]).await;
    drop(backends);
    assert_eq!(leftovers(&engine, &run).await, (0, 0));
}

#[tokio::test]
async fn a_run_abandoned_by_a_panic_is_removed_by_its_guard() {
    let Some(engine) = engine_or_skip("guard on panic").await else {
        return;
    };
    let (run_tx, run_rx) = tokio::sync::oneshot::channel();
    let task_engine = engine.clone();
    let task = tokio::spawn(async move {
        let backends = start(&task_engine, 1).await;
        let _ = run_tx.send(backends.run().to_string());
        panic!("a run fails with its containers up");
    });
    let joined = task.await;
    assert!(joined.is_err_and(|e| e.is_panic()));
    let run = run_rx.await.expect("the run started");
    assert_eq!(leftovers(&engine, &run).await, (0, 0));
}

#[tokio::test]
async fn sweep_removes_leftovers_of_dead_processes_only() {
    let Some(engine) = engine_or_skip("sweep").await else {
        return;
    };
    // A process that has exited: its pid names a dead owner.
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let dead_pid = child.id();
    child.wait().expect("wait");
    let dead_owner =
        engine::owner_id().replace(&format!("/{}", std::process::id()), &format!("/{dead_pid}"));
    let dead_run = RunId::generate();
    let live_run = RunId::generate();
    for (run, owner) in [(&dead_run, dead_owner), (&live_run, engine::owner_id())] {
        let mut labels = engine::labels(run.as_str(), &[]);
        labels.insert(OWNER_LABEL.to_owned(), owner);
        engine
            .docker()
            .create_network(NetworkCreateRequest {
                name: format!("{NAME_PREFIX}{run}"),
                labels: Some(labels),
                ..Default::default()
            })
            .await
            .expect("create network");
    }
    let removed = sweep(&engine).await.expect("sweep");
    assert!(
        removed
            .networks
            .contains(&format!("{NAME_PREFIX}{dead_run}"))
    );
    assert_eq!(leftovers(&engine, dead_run.as_str()).await, (0, 0));
    assert_eq!(leftovers(&engine, live_run.as_str()).await, (0, 1));
    remove_run(&engine, live_run.as_str())
        .await
        .expect("remove");
    assert_eq!(leftovers(&engine, live_run.as_str()).await, (0, 0));
}

#[tokio::test]
async fn an_absent_engine_is_named_in_the_error() {
    let error = Engine::connect_to("unix:///nonexistent/chaosgate-test.sock", "a test")
        .await
        .expect_err("no engine there");
    let message = error.to_string();
    assert!(
        message.contains("unix:///nonexistent/chaosgate-test.sock")
            && message.contains("DOCKER_HOST"),
        "{message}"
    );
}

#[test]
fn container_faults_act_on_containers_and_the_rest_on_the_replica() {
    let latency = LatencyDist::Fixed(Duration::from_millis(5));
    let want = desired(&[
        FaultKind::Partition,
        FaultKind::Latency(latency),
        FaultKind::Reset,
        FaultKind::Kill,
    ]);
    assert!(want.partitioned && want.killed && !want.paused);
    assert_eq!(
        want.behaviours,
        vec![
            Fault::Latency(mock_backends::LatencyDist::Fixed(Duration::from_millis(5))),
            Fault::Reset
        ]
    );
    assert_eq!(desired(&[]), backends::Desired::default());
    assert!(desired(&[FaultKind::Pause]).paused);
}

#[test]
fn a_dynamic_executable_is_not_static_and_a_text_file_is_not_elf() {
    let exe = std::env::current_exe().expect("exe");
    // Test binaries are built without crt-static.
    assert!(!is_static_elf(&exe).expect("read"));
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("text");
    std::fs::write(&text, vec![b'x'; 100]).expect("write");
    assert!(!is_static_elf(&text).expect("read"));
}

#[test]
fn run_ids_and_container_names_are_valid_docker_names() {
    let a = RunId::generate();
    let b = RunId::generate();
    assert_ne!(a, b);
    assert!(RunId::try_new(a.as_str()).is_ok());
    assert!(RunId::try_new("Bad_Id").is_err());
    assert!(RunId::try_new("").is_err());
    assert_eq!(
        container_name("r1", "ns", "svc:x", 2),
        "chaosgate-r1-ns-svc_x-2"
    );
    assert_eq!(SANDBOX_ROLE, "sandbox");
    assert!(!ROLE_LABEL.is_empty());
}

#[test]
fn owners_on_other_hosts_count_as_alive_and_garbage_as_dead() {
    assert!(engine::owner_alive(&engine::owner_id()));
    assert!(engine::owner_alive("some-other-host.invalid/1"));
    assert!(!engine::owner_alive("no-slash"));
}

#[test]
fn addresses_skip_the_gateway_and_stop_at_the_broadcast() {
    let mut network =
        RunNetwork::for_test("10.9.0.0/30".parse().expect("net"), [10, 9, 0, 1].into());
    assert_eq!(
        network.allocate().expect("first"),
        std::net::Ipv4Addr::new(10, 9, 0, 2)
    );
    assert!(network.allocate().is_err(), "10.9.0.3 is the broadcast");
}

#[test]
fn binaries_that_are_missing_or_not_static_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chaosgate = dir.path().join("chaosgate");
    let missing = StaticBinaries::in_dir(dir.path(), &chaosgate).expect_err("missing");
    assert!(missing.contains("mock-backends"), "{missing}");
    std::fs::write(dir.path().join("mock-backends"), b"#!/bin/sh\n").expect("write");
    std::fs::write(&chaosgate, b"#!/bin/sh\n").expect("write");
    let dynamic = StaticBinaries::in_dir(dir.path(), &chaosgate).expect_err("not static");
    assert!(dynamic.contains("not a static executable"), "{dynamic}");
}
