//! The engine end to end against in-test servers: exact pacing, coordinated-omission
//! correction, the backlog cap, cancellation, several loads at once.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::server::{Behavior, Raw, TestServer, refused_addr};
use crate::loadgen::engine::{LoadError, LoadMode, LoadSpec, run_load};
use crate::loadgen::recorder::WindowedRecorder;
use crate::loadgen::sample::{Outcome, Sample, SampleSink, TransportErrorKind};
use crate::loadgen::schedule::{Rate, Schedule};
use crate::loadgen::summary::LoadSummary;

/// Keeps every sample (tests only: bounded by the short runs).
#[derive(Default)]
struct Collect(Mutex<Vec<Sample>>);

impl SampleSink for Collect {
    fn record(&self, sample: Sample) {
        if let Ok(mut v) = self.0.lock() {
            v.push(sample);
        }
    }
}

impl Collect {
    fn take(&self) -> Vec<Sample> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

fn n(v: usize) -> NonZeroUsize {
    NonZeroUsize::new(v).expect("non-zero")
}

fn open(rate: f64) -> LoadMode {
    LoadMode::Open(Schedule::constant(Rate::try_new(rate).expect("rate")).expect("schedule"))
}

fn spec(target: SocketAddr, mode: LoadMode, duration_ms: u64) -> LoadSpec {
    LoadSpec {
        host: Some("shop.example.com".to_owned()),
        timeout: Duration::from_secs(5),
        connections: n(16),
        ..LoadSpec::new("test", target, mode, Duration::from_millis(duration_ms))
    }
}

fn ok_server() -> Behavior {
    Behavior::Ok {
        backend: "catalog",
        replica: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_sends_exactly_the_schedule() {
    let server = TestServer::http(ok_server()).await;
    let sink = Arc::new(Collect::default());
    let mut load = spec(server.addr, open(200.0), 1000);
    load.start = Duration::from_millis(100);
    let summary = run_load(load, Instant::now(), sink.clone(), CancellationToken::new())
        .await
        .expect("load runs");
    assert_eq!(
        (summary.requests, summary.sent, summary.responses),
        (200, 200, 200)
    );
    assert_eq!(summary.status_counts.get(&200), Some(&200));
    assert!((summary.achieved_rate - 200.0).abs() < 1e-9);
    assert_eq!(server.request_count(), 200);
    let mut samples = sink.take();
    samples.sort_by_key(|s| s.request_id);
    for (i, s) in samples.iter().enumerate() {
        assert_eq!(s.request_id, i as u64);
        // Request i is due at start + i·5ms exactly, and is never sent early.
        assert_eq!(s.intended, Duration::from_millis(100 + 5 * i as u64));
        assert!(s.sent >= s.intended, "{s:?}");
        assert!(s.latency >= s.sent - s.intended);
        assert!(
            matches!(&s.outcome, Outcome::Response(r) if r.backend.as_deref() == Some("catalog"))
        );
    }
    assert!(summary.scheduling_error.p50_ms < 20.0, "{summary}");
}

/// A server that holds every response arriving in [1s, 2s) until 2s.
async fn stalling_server(run_start: Instant) -> TestServer {
    TestServer::http(Behavior::StallBetween {
        from: run_start + Duration::from_secs(1),
        until: run_start + Duration::from_secs(2),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_latency_counts_from_the_intended_time() {
    let run_start = Instant::now();
    let server = stalling_server(run_start).await;
    let recorder = Arc::new(WindowedRecorder::try_new(Duration::from_secs(1)).expect("recorder"));
    let summary = run_load(
        spec(server.addr, open(200.0), 3000),
        run_start,
        recorder.clone(),
        CancellationToken::new(),
    )
    .await
    .expect("load runs");
    assert_eq!(
        (summary.requests, summary.responses),
        (600, 600),
        "{summary}"
    );
    println!("{summary}");
    // Every request due during the stall waits for its end: latencies spread over 0..1s for a
    // third of the requests, so the p99 is close to a second.
    assert!(summary.latency.p99_ms >= 500.0, "{summary}");
    let stalled = recorder.aggregate(|_| true, Duration::from_secs(1), Duration::from_secs(2));
    assert_eq!(stalled.requests, 200);
    assert!(
        stalled.p50() >= Duration::from_millis(300),
        "{:?}",
        stalled.p50()
    );
    let after = recorder.aggregate(
        |_| true,
        Duration::from_millis(2500),
        Duration::from_secs(3),
    );
    assert!(
        after.p50() < Duration::from_millis(200),
        "{:?}",
        after.p50()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_hides_the_same_stall() {
    let run_start = Instant::now();
    let server = stalling_server(run_start).await;
    let mut load = spec(server.addr, LoadMode::Closed { concurrency: n(4) }, 3000);
    load.connections = n(1); // ignored in closed loop
    let summary = run_load(
        load,
        run_start,
        Arc::new(Collect::default()),
        CancellationToken::new(),
    )
    .await
    .expect("load runs");
    println!("{summary}");
    // Only the four requests in flight when the stall began saw it ...
    assert!(summary.latency.max_ms >= 500.0, "{summary}");
    // ... so among the many fast ones the p99 does not show it (coordinated omission).
    assert!(summary.sent > 400, "{summary}");
    assert!(summary.latency.p99_ms < 250.0, "{summary}");
    assert_eq!(summary.scheduling_error.max_ms, 0.0);
    assert_eq!(server.connection_count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_beyond_the_cap_is_shed_as_client_overload() {
    let run_start = Instant::now();
    let server = TestServer::http(Behavior::StallBetween {
        from: run_start,
        until: run_start + Duration::from_millis(800),
    })
    .await;
    let mut load = spec(server.addr, open(200.0), 1000);
    load.connections = n(4);
    load.max_backlog = 20;
    let sink = Arc::new(Collect::default());
    let summary = run_load(load, run_start, sink.clone(), CancellationToken::new())
        .await
        .expect("load runs");
    assert_eq!(summary.requests, 200, "every due request is accounted for");
    assert_eq!(summary.sent + summary.client_overloads, 200);
    // ~160 requests come due during the stall; 4 are in flight and at most 20 wait.
    assert!(summary.client_overloads >= 100, "{summary}");
    assert!(server.request_count() <= 100, "{}", server.request_count());
    let shed = sink
        .take()
        .into_iter()
        .filter(|s| s.outcome == Outcome::ClientOverload)
        .count();
    assert_eq!(shed as u64, summary.client_overloads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_errors_are_samples_too() {
    let sink = Arc::new(Collect::default());
    let summary = run_load(
        spec(refused_addr().await, open(100.0), 300),
        Instant::now(),
        sink.clone(),
        CancellationToken::new(),
    )
    .await
    .expect("load runs");
    assert_eq!(summary.requests, 30);
    assert_eq!(
        summary.transport_errors.get(&TransportErrorKind::Refused),
        Some(&30)
    );
    assert!(
        sink.take()
            .iter()
            .all(|s| s.outcome == Outcome::TransportError(TransportErrorKind::Refused))
    );
    let json = serde_json::to_value(&summary).expect("serializes");
    assert_eq!(json["transport_errors"]["refused"], 30);
    assert!(summary.to_string().contains("refused 30"), "{summary}");
}

/// Runs `load`, cancels it after 300 ms, and returns its summary once it stopped, checking
/// that it stopped within two seconds.
async fn cancelled_after_300_ms(load: LoadSpec) -> LoadSummary {
    let cancel = CancellationToken::new();
    let run = run_load(
        load,
        Instant::now(),
        Arc::new(Collect::default()),
        cancel.clone(),
    );
    let stopper = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    };
    let started = Instant::now();
    let (summary, ()) = tokio::join!(run, stopper);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    summary.expect("load runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_a_long_load_promptly() {
    let server = TestServer::http(ok_server()).await;
    let summary = cancelled_after_300_ms(spec(server.addr, open(100.0), 60_000)).await;
    assert!(summary.sent > 10 && summary.sent < 100, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_requests_in_flight() {
    // Every request hangs: only the cancellation can end them before their 60 s timeout.
    let server = TestServer::raw(Raw::Hang).await;
    let mut hung = spec(server.addr, LoadMode::Closed { concurrency: n(4) }, 60_000);
    hung.timeout = Duration::from_secs(60);
    let summary = cancelled_after_300_ms(hung).await;
    assert_eq!(summary.responses, 0, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_loads_share_one_recorder() {
    let server = TestServer::http(ok_server()).await;
    let recorder = Arc::new(WindowedRecorder::try_new(Duration::from_secs(1)).expect("recorder"));
    let run_start = Instant::now();
    let mut first = spec(server.addr, open(100.0), 500);
    first.name = "first".to_owned();
    let mut second = spec(server.addr, LoadMode::Closed { concurrency: n(2) }, 500);
    second.name = "second".to_owned();
    second.index = 1;
    let (a, b) = tokio::join!(
        run_load(first, run_start, recorder.clone(), CancellationToken::new()),
        run_load(
            second,
            run_start,
            recorder.clone(),
            CancellationToken::new()
        ),
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    let count = |load: u16| {
        recorder
            .aggregate(|k| k.load == load, Duration::ZERO, Duration::from_secs(2))
            .requests
    };
    assert_eq!(count(0), 50);
    assert_eq!((count(0), count(1)), (a.requests, b.requests));
    let catalog = recorder.backends().get("catalog").expect("backend seen");
    let by_backend = recorder.aggregate(
        |k| k.backend == Some(catalog),
        Duration::ZERO,
        Duration::from_secs(2),
    );
    assert_eq!(by_backend.requests, a.requests + b.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_uses_only_the_connections_it_needs() {
    let server = TestServer::http(ok_server()).await;
    let mut load = spec(server.addr, open(100.0), 500);
    load.connections = n(64);
    let summary = run_load(
        load,
        Instant::now(),
        Arc::new(Collect::default()),
        CancellationToken::new(),
    )
    .await
    .expect("load runs");
    assert_eq!(summary.responses, 50);
    // Fast responses, 10ms apart: the most recently idle worker takes each next request.
    assert!(
        server.connection_count() <= 4,
        "{} connections",
        server.connection_count()
    );
}

#[test]
fn defaults_follow_the_scenario_format() {
    let target: SocketAddr = ([127, 0, 0, 1], 9).into();
    let load = LoadSpec::new("x", target, open(300.0), Duration::from_secs(1));
    assert_eq!(load.timeout, Duration::from_secs(30));
    assert_eq!((load.method, load.path.as_str()), (http::Method::GET, "/"));
    assert_eq!(load.connections, n(300));
    assert_eq!(open(2.0).default_connections(), n(16));
    assert_eq!(open(1e6).default_connections(), n(1024));
    let closed = LoadMode::Closed { concurrency: n(7) };
    assert_eq!(closed.default_connections(), n(7));
    let ramp = Schedule::stages(
        Rate::try_new(0.0).expect("rate"),
        &[
            crate::loadgen::schedule::Stage {
                duration: Duration::from_secs(1),
                rate: Rate::try_new(500.0).expect("rate"),
            },
            crate::loadgen::schedule::Stage {
                duration: Duration::from_secs(1),
                rate: Rate::try_new(100.0).expect("rate"),
            },
        ],
    )
    .expect("ramp");
    assert_eq!(ramp.peak_rate(), 500.0);
}

#[tokio::test]
async fn invalid_specs_are_errors_not_panics() {
    let target: SocketAddr = ([127, 0, 0, 1], 9).into();
    let sink = Arc::new(Collect::default());
    let mut zero = LoadSpec::new("z", target, open(10.0), Duration::ZERO);
    let err = run_load(
        zero.clone(),
        Instant::now(),
        sink.clone(),
        CancellationToken::new(),
    )
    .await;
    assert!(matches!(
        err,
        Err(LoadError::Zero {
            field: "duration",
            ..
        })
    ));
    zero.duration = Duration::from_secs(1);
    zero.path = "no-slash".to_owned();
    let err = run_load(zero, Instant::now(), sink, CancellationToken::new()).await;
    assert!(matches!(err, Err(LoadError::Request { .. })));
}
