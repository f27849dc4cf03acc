//! A replica without faults: identity headers, errors, protocols, helpers, determinism, teardown.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::Full;
use mock_backends::LatencyDist;

use crate::util::*;

#[tokio::test]
async fn normal_answer_names_backend_and_replica() {
    let replica = start(config("payments", 1)).await;
    let addr = replica.addr();
    let mut conn = Conn::h1(addr).await.expect("connects");
    let request = Request::get("/pay")
        .header("host", "shop.example.com")
        .header("x-request-id", "abc-123")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let reply = conn.send(addr, request).await.expect("answers");
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "ok payments/1\n");
    assert_eq!(
        reply.header("x-chaosgate-backend"),
        Some("default/payments")
    );
    assert_eq!(reply.header("x-chaosgate-replica"), Some("1"));
    assert_eq!(reply.header("x-request-id"), Some("abc-123"));

    let health = must_get(addr, "/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.header("x-chaosgate-replica"), Some("1"));
    assert_eq!(health.header("x-request-id"), None);

    let stats = replica.stats();
    assert_eq!(
        (stats.requests, stats.health_checks, stats.injected_errors),
        (1, 1, 0)
    );
    assert!(stats.up);
}

#[tokio::test]
async fn error_rate_one_answers_error_status_but_not_on_health() {
    let mut cfg = config("flaky", 0);
    cfg.error_rate = 1.0;
    cfg.error_status = 502;
    let replica = start(cfg).await;
    let addr = replica.addr();
    for _ in 0..5 {
        let reply = must_get(addr, "/").await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
        assert_eq!(reply.header("x-chaosgate-backend"), Some("default/flaky"));
    }
    assert_eq!(must_get(addr, "/healthz").await.status, StatusCode::OK);
    // An explicit status helper is not subject to errorRate.
    assert_eq!(
        must_get(addr, "/status/201").await.status,
        StatusCode::CREATED
    );
    assert_eq!(replica.stats().injected_errors, 5);
}

#[tokio::test]
async fn h2c_with_prior_knowledge_is_served() {
    let replica = start(config("grpcish", 2)).await;
    let addr = replica.addr();
    let mut conn = Conn::h2(addr).await.expect("connects");
    for _ in 0..3 {
        let reply = conn.get(addr, "/").await.expect("answers");
        assert_eq!(reply.version, Version::HTTP_2);
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.text(), "ok grpcish/2\n");
        assert_eq!(reply.header("x-chaosgate-replica"), Some("2"));
    }
    let stats = replica.stats();
    assert_eq!((stats.requests, stats.connections), (3, 1));
}

#[tokio::test]
async fn http1_keeps_connections_alive_and_drains_bodies() {
    let replica = start(config("catalog", 0)).await;
    let addr = replica.addr();
    let mut conn = Conn::h1(addr).await.expect("connects");
    let upload = Request::post("/upload")
        .header("host", "catalog")
        .body(Full::new(Bytes::from(vec![b'u'; 200_000])))
        .expect("request");
    assert_eq!(
        conn.send(addr, upload).await.expect("answers").status,
        StatusCode::OK
    );
    for _ in 0..3 {
        assert_eq!(
            conn.get(addr, "/").await.expect("answers").status,
            StatusCode::OK
        );
    }
    let stats = replica.stats();
    assert_eq!(
        (stats.requests, stats.connections, stats.active_connections),
        (4, 1, 1)
    );
}

#[tokio::test]
async fn httpbin_helpers() {
    let replica = start(config("echo", 0)).await;
    let addr = replica.addr();
    assert_eq!(
        must_get(addr, "/status/418").await.status,
        StatusCode::IM_A_TEAPOT
    );
    assert_eq!(
        must_get(addr, "/status/abc").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(must_get(addr, "/bytes/1234").await.body.len(), 1234);

    let (reply, took) = timed(must_get(addr, "/status/503?delay=120ms")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took >= Duration::from_millis(120), "{took:?}");

    let mut conn = Conn::h1(addr).await.expect("connects");
    let request = Request::get("/echo?x=1")
        .header("host", "echo.example.com")
        .header("x-user-id", "one")
        .header("x-multi", "a")
        .header("x-multi", "b")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let reply = conn.send(addr, request).await.expect("answers");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let echo: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/echo?x=1");
    assert_eq!(echo["host"], "echo.example.com");
    assert_eq!(echo["headers"]["x-user-id"], serde_json::json!(["one"]));
    assert_eq!(echo["headers"]["x-multi"], serde_json::json!(["a", "b"]));
    assert_eq!(echo["backend"], "echo");
    assert_eq!(echo["replica"], 0);
}

#[tokio::test]
async fn latency_delays_traffic_but_not_health() {
    let mut cfg = config("slow", 0);
    cfg.latency = LatencyDist::Fixed(Duration::from_millis(300));
    let replica = start(cfg).await;
    let addr = replica.addr();
    let (reply, took) = timed(must_get(addr, "/")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let (reply, took) = timed(must_get(addr, "/healthz")).await;
    assert_eq!(reply.status, StatusCode::OK);
    // Generous bound: the machine may be busy; 300 ms would mean the latency applied.
    assert!(took < Duration::from_millis(200), "{took:?}");
}

/// The status sequence of 30 sequential requests to a replica with errorRate 0.5.
async fn statuses(seed: u64, index: usize) -> Vec<u16> {
    let mut cfg = config("coin", index);
    cfg.error_rate = 0.5;
    cfg.seed = seed;
    let replica = start(cfg).await;
    let addr = replica.addr();
    let mut conn = Conn::h1(addr).await.expect("connects");
    let mut out = Vec::new();
    for _ in 0..30 {
        out.push(conn.get(addr, "/").await.expect("answers").status.as_u16());
    }
    out
}

#[tokio::test]
async fn same_seed_same_decisions() {
    let first = statuses(7, 0).await;
    assert_eq!(first, statuses(7, 0).await);
    assert!(first.contains(&200) && first.contains(&500), "{first:?}");
    assert_ne!(
        first,
        statuses(7, 1).await,
        "replica index is mixed into the seed"
    );
    assert_ne!(first, statuses(8, 0).await);
}

#[tokio::test]
async fn dropping_the_handle_stops_everything() {
    let metrics = tokio::runtime::Handle::current().metrics();
    assert_eq!(metrics.num_alive_tasks(), 0);
    let replica = start(config("gone", 0)).await;
    let addr = replica.addr();
    // Leave requests pending on both protocols when the handle goes.
    replica
        .set_faults(vec![mock_backends::Fault::Hang])
        .expect("valid");
    let h1 = tokio::spawn(get(addr, "/"));
    let mut h2 = Conn::h2(addr).await.expect("connects");
    let h2 = tokio::spawn(async move { h2.get(addr, "/").await });
    assert!(
        eventually(Duration::from_secs(1), || async {
            replica.stats().hanging == 2
        })
        .await
    );

    drop(replica);
    assert!(
        within(h1).await.expect("joins").is_err(),
        "pending HTTP/1.1 request fails"
    );
    assert!(
        within(h2).await.expect("joins").is_err(),
        "pending h2 request fails"
    );
    assert!(refused(addr).await);
    assert!(
        eventually(Duration::from_secs(1), || async {
            metrics.num_alive_tasks() == 0
        })
        .await,
        "tasks left: {}",
        metrics.num_alive_tasks()
    );
}

#[tokio::test]
async fn shutdown_waits_for_teardown() {
    let replica = start(config("bye", 0)).await;
    let addr = replica.addr();
    let controller = replica.controller();
    let mut conn = Conn::h1(addr).await.expect("connects");
    assert_eq!(
        conn.get(addr, "/").await.expect("answers").status,
        StatusCode::OK
    );
    replica.shutdown().await;
    assert!(refused(addr).await);
    let stats = controller.stats();
    assert!(!stats.up);
    assert_eq!(stats.active_connections, 0);
    assert!(
        conn.get(addr, "/").await.is_err(),
        "open connection was closed"
    );
}

#[tokio::test]
async fn invalid_config_is_rejected() {
    let mut cfg = config("bad", 0);
    cfg.error_rate = 1.5;
    let result = mock_backends::Replica::start(cfg, "127.0.0.1:0".parse().expect("address")).await;
    assert!(matches!(result, Err(mock_backends::StartError::Config(_))));
}
