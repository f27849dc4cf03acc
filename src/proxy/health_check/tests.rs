use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::*;

/// What the test HTTP server saw: (method, path, host, user-agent).
type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// An HTTP/1.1 server on 127.0.0.1:0 answering `/status/<code>`, `/slow` (5 s) and `/body`.
struct HttpServer {
    addr: SocketAddr,
    seen: Seen,
    task: JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn http_server() -> HttpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen2.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let h = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned()
                        };
                        let path = req.uri().path().to_owned();
                        if let Ok(mut s) = seen.lock() {
                            s.push((
                                req.method().to_string(),
                                path.clone(),
                                h("host"),
                                h("user-agent"),
                            ));
                        }
                        let (status, body) = match path.as_str() {
                            "/slow" => {
                                tokio::time::sleep(Duration::from_secs(5)).await;
                                (200, "late")
                            }
                            "/body" => (200, "status: ALIVE and well"),
                            "/exclude" => (503, "draining"),
                            p => (
                                p.trim_start_matches("/status/").parse().unwrap_or(404),
                                "ok",
                            ),
                        };
                        let mut resp =
                            Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                        *resp.status_mut() =
                            StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND);
                        if path == "/exclude" {
                            resp.headers_mut().insert(
                                "x-envoy-immediate-health-check-fail",
                                http::HeaderValue::from_static("true"),
                            );
                        }
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    HttpServer { addr, seen, task }
}

/// A TCP server on 127.0.0.1:0: on "ping" it answers "hello ... pong ... end" and stays open.
async fn tcp_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                if let Ok(n) = stream.read(&mut buf).await {
                    if buf[..n].windows(4).any(|w| w == b"ping") {
                        let _ = stream.write_all(b"hello ").await;
                        let _ = stream.write_all(b"... pong ... end").await;
                    }
                }
                // Hold the connection open so a mismatch can only end in the timeout.
                tokio::time::sleep(Duration::from_secs(5)).await;
            });
        }
    });
    (addr, task)
}

fn http_spec(path: &str, f: impl FnOnce(&mut HealthCheckConfig)) -> HealthCheckSpec {
    let mut c = HealthCheckConfig::http(path, "backend.example");
    c.timeout = Duration::from_millis(300);
    f(&mut c);
    HealthCheckSpec::try_new(&c).expect("valid")
}

fn http_cfg(c: &mut HealthCheckConfig) -> &mut HttpCheckConfig {
    match &mut c.kind {
        CheckKind::Http(h) => h,
        CheckKind::Tcp(_) | CheckKind::Grpc(_) => unreachable!("http config"),
    }
}

// ---- state machine -------------------------------------------------------------------------

/// Envoy initialises every host of a health-checked cluster with `FAILED_ACTIVE_HC` ("If we are
/// depending on a health checker, we initialize to unhealthy") and, on the first result, moves a
/// host to healthy on a single success ("If this is the first time we ever got a check result on
/// this host, we immediately move it to healthy"). A first failure leaves it unhealthy.
#[test]
fn hosts_start_unhealthy_and_one_first_success_is_enough() {
    let mut s = HostHealthState::new(3, 3);
    assert!(!s.is_healthy() && s.is_pending());
    assert_eq!(
        s.on_probe(ProbeResult::Success),
        Some(Transition { healthy: true })
    );
    assert!(!s.is_pending());

    let mut s = HostHealthState::new(3, 3);
    assert_eq!(s.on_probe(ProbeResult::Timeout), None);
    assert!(!s.is_healthy());
    // After the first check, healthy_threshold consecutive successes are needed.
    assert_eq!(s.on_probe(ProbeResult::Success), None);
    assert_eq!(s.on_probe(ProbeResult::Success), None);
    assert_eq!(
        s.on_probe(ProbeResult::Success),
        Some(Transition { healthy: true })
    );
}

#[test]
fn non_retriable_failure_is_immediate_others_count() {
    let mut s = HostHealthState::new(1, 3);
    s.on_probe(ProbeResult::Success);
    assert_eq!(
        s.on_probe(ProbeResult::Failed),
        Some(Transition { healthy: false })
    );

    let mut s = HostHealthState::new(1, 3);
    s.on_probe(ProbeResult::Success);
    assert_eq!(s.on_probe(ProbeResult::Retriable), None);
    assert_eq!(s.on_probe(ProbeResult::NetworkFailure), None);
    // A success resets the failure streak.
    assert_eq!(s.on_probe(ProbeResult::Success), None);
    assert_eq!(s.on_probe(ProbeResult::Timeout), None);
    assert_eq!(s.on_probe(ProbeResult::Retriable), None);
    assert_eq!(
        s.on_probe(ProbeResult::NetworkFailure),
        Some(Transition { healthy: false })
    );
    // Further failures change nothing.
    assert_eq!(s.on_probe(ProbeResult::Failed), None);
    assert_eq!(
        s.on_probe(ProbeResult::Success),
        Some(Transition { healthy: true })
    );
}

/// Envoy's `setUnhealthyCrossThread` → `setUnhealthy(PASSIVE, retriable = false)`: a healthy
/// host fails at once, and coming back takes `healthy_threshold` successes (not one).
#[test]
fn passive_failure_is_immediate_and_needs_the_healthy_threshold_back() {
    let mut s = HostHealthState::new(2, 3);
    assert_eq!(
        s.on_probe(ProbeResult::Success),
        Some(Transition { healthy: true })
    );
    assert_eq!(s.on_passive_failure(), Some(Transition { healthy: false }));
    assert_eq!(s.on_passive_failure(), None);
    assert_eq!(s.on_probe(ProbeResult::Success), None);
    assert_eq!(
        s.on_probe(ProbeResult::Success),
        Some(Transition { healthy: true })
    );
}

#[test]
fn a_failure_resets_the_success_streak() {
    let mut s = HostHealthState::new(2, 1);
    s.on_probe(ProbeResult::Success);
    assert_eq!(
        s.on_probe(ProbeResult::Timeout),
        Some(Transition { healthy: false })
    );
    assert_eq!(s.on_probe(ProbeResult::Success), None);
    assert_eq!(s.on_probe(ProbeResult::Retriable), None);
    assert_eq!(s.on_probe(ProbeResult::Success), None);
    assert_eq!(
        s.on_probe(ProbeResult::Success),
        Some(Transition { healthy: true })
    );
}

#[test]
fn config_validation_and_status_ranges() {
    let r = StatusRanges::from_codes(&[204, 200, 201, 202, 200]).expect("valid");
    assert_eq!(r.ranges(), &[(200, 203), (204, 205)]);
    assert!(r.contains(202) && !r.contains(203));
    assert!(StatusRanges::from_codes(&[600]).is_err());
    let mut c = HealthCheckConfig::http("/healthz", "h");
    http_cfg(&mut c).request_body = Some(b"x".to_vec());
    assert_eq!(
        HealthCheckSpec::try_new(&c).unwrap_err().to_string(),
        "The requestBody field can only be set when method is POST or PUT."
    );
    http_cfg(&mut c).method = Method::POST;
    assert!(HealthCheckSpec::try_new(&c).is_ok());
    c.unhealthy_threshold = 0;
    assert!(HealthCheckSpec::try_new(&c).is_err());
    let mut c = HealthCheckConfig::tcp(TcpCheckConfig::default());
    c.timeout = Duration::ZERO;
    assert!(HealthCheckSpec::try_new(&c).is_err());
    let d = HealthCheckConfig::http("/", "h");
    assert_eq!(
        (
            d.timeout,
            d.interval,
            d.unhealthy_threshold,
            d.healthy_threshold,
            d.no_traffic_interval
        ),
        (
            Duration::from_secs(1),
            Duration::from_secs(3),
            3,
            1,
            Duration::from_secs(60)
        )
    );
}

// ---- probes (real sockets on loopback, real time, bounded by the probe timeout) -------------

#[tokio::test]
async fn http_probe_classifies_statuses() {
    let server = http_server().await;
    let ok = http_spec("/status/200", |_| {});
    assert_eq!(probe(&ok, server.addr).await, ProbeResult::Success);
    let seen = server.seen.lock().expect("lock").clone();
    assert_eq!(
        seen,
        vec![(
            "GET".into(),
            "/status/200".into(),
            "backend.example".into(),
            "Envoy/HC".into()
        )]
    );

    assert_eq!(
        probe(&http_spec("/status/418", |_| {}), server.addr).await,
        ProbeResult::Failed
    );
    let retriable = http_spec("/status/503", |c| {
        http_cfg(c).retriable_statuses = vec![503]
    });
    assert_eq!(probe(&retriable, server.addr).await, ProbeResult::Retriable);
    assert_eq!(
        probe(&http_spec("/status/503", |_| {}), server.addr).await,
        ProbeResult::Failed
    );
    // Expected wins over retriable on overlap.
    let both = http_spec("/status/503", |c| {
        http_cfg(c).retriable_statuses = vec![503];
        http_cfg(c).expected_statuses = vec![200, 503];
    });
    assert_eq!(probe(&both, server.addr).await, ProbeResult::Success);
    let body_ok = http_spec("/body", |c| {
        http_cfg(c).expected_body = Some(b"ALIVE".to_vec())
    });
    assert_eq!(probe(&body_ok, server.addr).await, ProbeResult::Success);
    let body_bad = http_spec("/body", |c| {
        http_cfg(c).expected_body = Some(b"DEAD".to_vec())
    });
    assert_eq!(probe(&body_bad, server.addr).await, ProbeResult::Failed);
}

#[tokio::test]
async fn http_probe_timeout_and_connect_failure() {
    let server = http_server().await;
    let slow = http_spec("/slow", |c| c.timeout = Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(probe(&slow, server.addr).await, ProbeResult::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));

    // A port nobody listens on: bind, read the port, close.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    assert_eq!(
        probe(&http_spec("/status/200", |_| {}), closed).await,
        ProbeResult::NetworkFailure
    );
    assert!(ProbeResult::Timeout.is_network() && !ProbeResult::Retriable.is_network());
}

#[tokio::test]
async fn tcp_probe_send_and_receive_in_order() {
    let (addr, task) = tcp_server().await;
    let spec = |send: Option<&[u8]>, receive: &[&[u8]]| {
        let mut c = HealthCheckConfig::tcp(TcpCheckConfig {
            send: send.map(<[u8]>::to_vec),
            receive: receive.iter().map(|b| b.to_vec()).collect(),
        });
        c.timeout = Duration::from_millis(300);
        HealthCheckSpec::try_new(&c).expect("valid")
    };
    assert_eq!(probe(&spec(None, &[]), addr).await, ProbeResult::Success);
    assert_eq!(
        probe(&spec(Some(b"ping"), &[b"hello", b"pong", b"end"]), addr).await,
        ProbeResult::Success
    );
    // Blocks out of order are never found: Envoy waits until the timeout.
    assert_eq!(
        probe(&spec(Some(b"ping"), &[b"end", b"hello"]), addr).await,
        ProbeResult::Timeout
    );
    assert_eq!(
        probe(&spec(Some(b"pong"), &[b"hello"]), addr).await,
        ProbeResult::Timeout
    );
    task.abort();
}

// ---- runner --------------------------------------------------------------------------------

fn sched_spec(jitter: Duration, unhealthy: u32) -> Arc<HealthCheckSpec> {
    let mut c = HealthCheckConfig::tcp(TcpCheckConfig::default());
    c.initial_jitter = jitter;
    c.unhealthy_threshold = unhealthy;
    Arc::new(HealthCheckSpec::try_new(&c).expect("valid"))
}

fn addrs(n: u16) -> Vec<SocketAddr> {
    (0..n)
        .map(|i| SocketAddr::from(([127, 0, 0, 1], 1000 + i)))
        .collect()
}

/// Paused time and a scripted prober: the schedule is exact.
#[tokio::test(start_paused = true)]
async fn runner_schedules_first_check_at_once_then_no_traffic_interval_then_interval() {
    let start = Instant::now();
    let times: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let t2 = times.clone();
    let handle = HealthChecker::spawn_with(
        sched_spec(Duration::ZERO, 3),
        addrs(1),
        |_, _| {},
        Arc::default(),
        1,
        move |_, _| {
            let t2 = t2.clone();
            async move {
                t2.lock().expect("lock").push(start.elapsed());
                ProbeResult::Success
            }
        },
    );
    handle.initialized().await;
    tokio::time::sleep(Duration::from_secs(61)).await;
    handle.mark_traffic();
    // The pending 60 s wait still runs out (at 120 s); then every 3 s.
    tokio::time::sleep(Duration::from_secs(66)).await;
    drop(handle);
    let got: Vec<u64> = times
        .lock()
        .expect("lock")
        .iter()
        .map(Duration::as_secs)
        .collect();
    assert_eq!(got, vec![0, 60, 120, 123, 126]);
}

#[tokio::test(start_paused = true)]
async fn runner_initial_jitter_is_seeded() {
    let run = |seed: u64| async move {
        let start = Instant::now();
        let firsts: Arc<Mutex<Vec<(usize, Duration)>>> = Arc::default();
        let f2 = firsts.clone();
        let hosts = addrs(4);
        let hosts2 = hosts.clone();
        let handle = HealthChecker::spawn_with(
            sched_spec(Duration::from_secs(1), 3),
            hosts,
            |_, _| {},
            Arc::default(),
            seed,
            move |_, addr| {
                let f2 = f2.clone();
                let idx = hosts2.iter().position(|a| *a == addr).unwrap_or(usize::MAX);
                async move {
                    f2.lock().expect("lock").push((idx, start.elapsed()));
                    ProbeResult::Success
                }
            },
        );
        handle.initialized().await;
        drop(handle);
        let mut v = firsts.lock().expect("lock").clone();
        v.sort();
        v
    };
    let a = run(7).await;
    let b = run(7).await;
    assert_eq!(a, b);
    assert_eq!(a.len(), 4);
    assert!(a.iter().all(|(_, t)| *t < Duration::from_secs(1)));
    assert!(
        a.iter().any(|(_, t)| *t > Duration::ZERO),
        "jitter applied: {a:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn runner_reports_transitions_and_stats() {
    let script = Arc::new(Mutex::new(VecDeque::from(vec![
        ProbeResult::Success,
        ProbeResult::Timeout,
        ProbeResult::NetworkFailure,
        ProbeResult::Retriable,
        ProbeResult::Success,
        ProbeResult::Failed,
    ])));
    let transitions: Arc<Mutex<Vec<(usize, bool)>>> = Arc::default();
    let tr = transitions.clone();
    let stats = Arc::new(HealthCheckStats::default());
    let handle = HealthChecker::spawn_with(
        sched_spec(Duration::ZERO, 3),
        addrs(1),
        move |i, healthy| tr.lock().expect("lock").push((i, healthy)),
        stats.clone(),
        1,
        move |_, _| {
            let next = script
                .lock()
                .expect("lock")
                .pop_front()
                .unwrap_or(ProbeResult::Failed);
            async move { next }
        },
    );
    // Six probes at 0, 60, ..., 300 s.
    tokio::time::sleep(Duration::from_secs(301)).await;
    handle.shutdown();
    assert_eq!(
        *transitions.lock().expect("lock"),
        vec![(0, true), (0, false), (0, true), (0, false)]
    );
    let snap = stats.snapshot();
    assert_eq!(
        snap,
        [
            ("health_check.attempt", 6),
            ("health_check.success", 2),
            ("health_check.failure", 4),
            ("health_check.network_failure", 2),
            ("health_check.passive_failure", 0),
            ("health_check.verify_cluster", 0),
            ("health_check.healthy", 0),
        ]
    );
}

/// End to end against real loopback servers (real time, bounded).
#[tokio::test]
async fn runner_probes_real_servers() {
    let good = http_server().await;
    let spec = Arc::new(http_spec("/status/200", |_| {}));
    // The second host is a port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let transitions: Arc<Mutex<Vec<(usize, bool)>>> = Arc::default();
    let tr = transitions.clone();
    let stats = Arc::new(HealthCheckStats::default());
    let handle = HealthChecker::spawn(
        spec,
        vec![good.addr, closed],
        move |i, h| tr.lock().expect("lock").push((i, h)),
        stats.clone(),
        3,
    );
    tokio::time::timeout(Duration::from_secs(5), handle.initialized())
        .await
        .expect("first round within 5 s");
    drop(handle);
    assert_eq!(*transitions.lock().expect("lock"), vec![(0, true)]);
    assert_eq!(stats.healthy.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(
        stats
            .network_failure
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(good.seen.lock().expect("lock").len(), 1);
}

// ---- gRPC checks -----------------------------------------------------------------------------

fn grpc_spec(service: Option<&str>) -> HealthCheckSpec {
    let mut c = HealthCheckConfig::grpc(GrpcCheckConfig {
        service: service.map(str::to_string),
        authority: "grpcroute.default.rpc.rule.0".into(),
    });
    c.timeout = Duration::from_millis(300);
    HealthCheckSpec::try_new(&c).expect("valid")
}

/// Envoy's `GrpcHealthCheckerImpl`: only grpc-status 0 with SERVING passes; everything else the
/// server answers is an active failure (unhealthy at once), a refused connect a network failure.
#[tokio::test]
async fn grpc_probe_passes_only_serving() {
    use std::sync::atomic::Ordering;

    use crate::proxy::testing::GrpcHealthServer;
    let server = GrpcHealthServer::start("pkg.Svc").await;
    let whole = grpc_spec(None);
    assert_eq!(probe(&whole, server.addr).await, ProbeResult::Success);
    let seen = server.last.lock().unwrap().clone().unwrap();
    assert_eq!(
        seen,
        [
            "/grpc.health.v1.Health/Check",
            "application/grpc",
            "trailers",
            "Envoy/HC",
            ""
        ]
    );
    // The configured service is asked about.
    assert_eq!(
        probe(&grpc_spec(Some("pkg.Svc")), server.addr).await,
        ProbeResult::Success
    );
    assert_eq!(server.last.lock().unwrap().clone().unwrap()[4], "pkg.Svc");
    assert_eq!(
        probe(&grpc_spec(Some("other.Svc")), server.addr).await,
        ProbeResult::Failed,
        "SERVICE_UNKNOWN"
    );
    server.status.store(2, Ordering::SeqCst);
    assert_eq!(
        probe(&whole, server.addr).await,
        ProbeResult::Failed,
        "NOT_SERVING"
    );
    server.status.store(1, Ordering::SeqCst);
    server.grpc_status.store(12, Ordering::SeqCst);
    assert_eq!(
        probe(&whole, server.addr).await,
        ProbeResult::Failed,
        "UNIMPLEMENTED"
    );
    server.grpc_status.store(0, Ordering::SeqCst);
    server.http_status.store(503, Ordering::SeqCst);
    assert_eq!(
        probe(&whole, server.addr).await,
        ProbeResult::Failed,
        "HTTP 503"
    );
    drop(server);

    let refused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = refused.local_addr().unwrap();
    drop(refused);
    assert_eq!(probe(&whole, addr).await, ProbeResult::NetworkFailure);
}

/// Envoy's HTTP checker: a failing answer carrying `x-envoy-immediate-health-check-fail` also
/// excludes the host (`EXCLUDED_VIA_IMMEDIATE_HC_FAIL`); a plain failure does not.
#[tokio::test]
async fn http_probe_reports_immediate_health_check_fail() {
    let server = http_server().await;
    let spec = |path: &str| http_spec(path, |_| {});
    assert_eq!(
        probe_checked(&spec("/exclude"), server.addr).await,
        (ProbeResult::Failed, true)
    );
    assert_eq!(
        probe_checked(&spec("/status/503"), server.addr).await,
        (ProbeResult::Failed, false)
    );
    // Expected status: the header does not matter.
    let ok = http_spec("/exclude", |c| http_cfg(c).expected_statuses = vec![503]);
    assert_eq!(
        probe_checked(&ok, server.addr).await,
        (ProbeResult::Success, false)
    );
}

// ---- connection reuse ------------------------------------------------------------------------

/// Envoy's HTTP health checker keeps its connection between probes (`reuse_connection` defaults
/// to true; Envoy Gateway leaves it) and closes it on a timeout.
#[tokio::test]
async fn http_probes_reuse_the_host_connection_until_a_timeout() {
    use std::sync::atomic::Ordering;

    use crate::proxy::testing::{Backend, Behavior};
    let b = Backend::start("b", Behavior::default()).await;
    let ok = http_spec("/", |_| {});
    let mut session = probe::Session::default();
    for _ in 0..3 {
        assert_eq!(
            probe::probe_session(&ok, b.addr, &mut session).await.0,
            ProbeResult::Success
        );
    }
    // A failing answer keeps the connection too.
    let failing = http_spec("/status/503", |_| {});
    assert_eq!(
        probe::probe_session(&failing, b.addr, &mut session).await.0,
        ProbeResult::Failed
    );
    assert_eq!(b.hits(), 4);
    assert_eq!(b.connections.load(Ordering::Relaxed), 1);
    // A timeout closes it; the next probe connects again.
    let slow = http_spec("/?delay=1000", |_| {});
    assert_eq!(
        probe::probe_session(&slow, b.addr, &mut session).await.0,
        ProbeResult::Timeout
    );
    assert_eq!(
        probe::probe_session(&ok, b.addr, &mut session).await.0,
        ProbeResult::Success
    );
    assert_eq!(b.connections.load(Ordering::Relaxed), 2);
}

/// A `connection: close` answer ends the connection (Envoy's `shouldClose`).
#[tokio::test]
async fn http_probe_reconnects_after_connection_close() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = accepted.clone();
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                // One request, one answer, and the server keeps the socket open: only the
                // header tells the client not to reuse it.
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
                    .await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            });
        }
    });
    let ok = http_spec("/", |_| {});
    let mut session = probe::Session::default();
    for _ in 0..2 {
        assert_eq!(
            probe::probe_session(&ok, addr, &mut session).await.0,
            ProbeResult::Success
        );
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    server.abort();
}

/// Envoy's gRPC health checker keeps its HTTP/2 connection too, and a timeout only resets the
/// stream.
#[tokio::test]
async fn grpc_probes_reuse_the_host_connection_across_timeouts() {
    use std::sync::atomic::Ordering;

    use crate::proxy::testing::{Backend, Behavior};
    // The test backend answers the health call without gRPC headers: an active failure, which
    // keeps the connection.
    let b = Backend::start("b", Behavior::default()).await;
    let mut session = probe::Session::default();
    let spec = grpc_spec(None);
    for _ in 0..2 {
        assert_eq!(
            probe::probe_session(&spec, b.addr, &mut session).await.0,
            ProbeResult::Failed
        );
    }
    let slow = Backend::start(
        "slow",
        Behavior {
            delay: Duration::from_millis(1000),
            ..Behavior::default()
        },
    )
    .await;
    let mut slow_session = probe::Session::default();
    for _ in 0..2 {
        assert_eq!(
            probe::probe_session(&spec, slow.addr, &mut slow_session)
                .await
                .0,
            ProbeResult::Timeout
        );
    }
    assert_eq!(b.hits(), 2);
    assert_eq!(b.connections.load(Ordering::Relaxed), 1);
    assert_eq!(slow.connections.load(Ordering::Relaxed), 1);
}

/// The runner keeps one session per host: repeated probes of a host share its connection.
#[tokio::test]
async fn runner_reuses_one_connection_per_host() {
    use std::sync::atomic::Ordering;

    use crate::proxy::testing::{Backend, Behavior};
    let (a, b) = (
        Backend::start("a", Behavior::default()).await,
        Backend::start("b", Behavior::default()).await,
    );
    let spec = Arc::new(http_spec("/", |c| {
        c.interval = Duration::from_millis(20);
        c.no_traffic_interval = Duration::from_millis(20);
    }));
    let stats = Arc::new(HealthCheckStats::default());
    let handle = HealthChecker::spawn(spec, vec![a.addr, b.addr], |_, _| {}, stats, 1);
    tokio::time::timeout(Duration::from_secs(10), async {
        while a.hits() < 4 || b.hits() < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("four probes per host within 10 s");
    drop(handle);
    assert_eq!(a.connections.load(Ordering::Relaxed), 1);
    assert_eq!(b.connections.load(Ordering::Relaxed), 1);
}
