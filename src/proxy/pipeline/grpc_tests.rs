//! gRPC local replies end to end: a gRPC request (h2c, `content-type: application/grpc`) gets
//! every reply the proxy makes itself as Envoy's trailers-only gRPC response — HTTP 200 with
//! `grpc-status` mapped from the HTTP status and `grpc-message` from the body — while the
//! access log and listener stats see 200 and the cluster's stats keep the HTTP status.

use std::time::Duration;

use super::feature_tests::{health_checked, http_stat, user_rule, with};
use super::tests::{LISTENER, addr, cluster, forward, route, start_routes, stat};
use crate::proxy::ProxyHandle;
use crate::proxy::config::{
    CircuitBreakerThresholds, ClusterConfig, OutlierDetectionConfig, PathMatch, Percent,
    RouteConfig, RouteMatch, UpstreamProtocol,
};
use crate::proxy::fault::{AbortCode, AbortConfig, FaultConfig};
use crate::proxy::health_check::{GrpcCheckConfig, HealthCheckConfig};
use crate::proxy::rate_limit::{LocalRateLimitConfig, Unit};
use crate::proxy::testing::{Backend, Behavior, Got, GrpcHealthServer, get, h2c_request};

const GRPC: [(&str, &str); 2] = [("content-type", "application/grpc"), ("te", "trailers")];

async fn call(p: &ProxyHandle, path: &str, headers: &[(&str, &str)]) -> Got {
    let (got, trailers) = h2c_request(addr(p), "POST", path, headers).await;
    // Trailers-only: everything is in the one header block that ends the stream.
    assert!(trailers.is_none(), "{trailers:?}");
    got
}

fn assert_grpc(g: &Got, code: &str, message: &str) {
    assert_eq!(g.status, 200, "{g:?}");
    assert_eq!(g.headers["content-type"], "application/grpc");
    assert_eq!(g.headers["grpc-status"], code, "{g:?}");
    assert_eq!(g.headers["grpc-message"], message);
    assert!(g.body.is_empty());
    assert!(!g.headers.contains_key("content-length"));
}

async fn start(c: ClusterConfig, r: RouteConfig) -> ProxyHandle {
    start_routes(c, vec![r]).await
}

#[tokio::test]
async fn overflow_is_unavailable_with_the_overloaded_header_and_logged_as_200() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut c = cluster(&[b.addr]);
    c.circuit_breaker = CircuitBreakerThresholds {
        max_connections: 0,
        max_pending_requests: 0,
        max_requests: 0,
        ..CircuitBreakerThresholds::default()
    };
    let p = start(c, route(forward())).await;
    let mut log = p.subscribe_access_log();
    let g = call(&p, "/pkg.Svc/Call", &GRPC).await;
    assert_grpc(
        &g,
        "14",
        "upstream connect error or disconnect/reset before headers. reset reason: overflow",
    );
    assert_eq!(g.headers["x-envoy-overloaded"], "true");
    let e = log.recv().await.unwrap();
    assert_eq!(
        (e.status, e.response_flags.to_string().as_str()),
        (200, "UO")
    );
    // The router charged the 503 to the cluster; the listener saw a 2xx.
    assert_eq!(stat(&p, "upstream_rq_503"), 1);
    assert_eq!(http_stat(&p, "downstream_rq_2xx"), Some(1));
    assert_eq!(http_stat(&p, "downstream_rq_5xx"), Some(0));

    // gRPC-Web is not gRPC for Envoy: a plain 503.
    let web = call(
        &p,
        "/pkg.Svc/Call",
        &[("content-type", "application/grpc-web")],
    )
    .await;
    assert_eq!(web.status, 503);
    assert!(!web.headers.contains_key("grpc-status"));
    // Nor is a plain HTTP request.
    assert_eq!(get(addr(&p), "/", &[]).await.status, 503);
    p.shutdown().await;
}

#[tokio::test]
async fn route_timeout_no_healthy_upstream_and_no_route() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut action = forward();
    action.timeout = Some(Duration::from_millis(150));
    let mut r = route(action);
    r.matches = RouteMatch {
        path: PathMatch::PathPrefix("/pkg.Svc".into()),
        ..RouteMatch::default()
    };
    let p = start(cluster(&[b.addr]), r).await;
    let mut log = p.subscribe_access_log();
    let g = call(&p, "/pkg.Svc/Call?delay=400", &GRPC).await;
    assert_grpc(&g, "14", "upstream request timeout");
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "UT");
    // 404 NR has an empty body: no grpc-message.
    let g = call(&p, "/other.Svc/Call", &GRPC).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.headers["grpc-status"], "12");
    assert!(!g.headers.contains_key("grpc-message"));
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "NR");
    p.shutdown().await;

    let p = start(
        health_checked(&[b.addr], "/status/418", 0),
        route(forward()),
    )
    .await;
    let g = call(&p, "/pkg.Svc/Call", &GRPC).await;
    assert_grpc(&g, "14", "no healthy upstream");
    p.shutdown().await;
}

#[tokio::test]
async fn rate_limit_is_unavailable_with_rate_limit_headers() {
    let b = Backend::start("x", Behavior::default()).await;
    let r = with(|r| {
        r.local_rate_limit = Some(LocalRateLimitConfig {
            rules: vec![user_rule("one", 1, Unit::Hour)],
            x_ratelimit_headers: true,
        });
    });
    let p = start(cluster(&[b.addr]), r).await;
    let headers = [GRPC[0], GRPC[1], ("x-user-id", "one")];
    let first = call(&p, "/pkg.Svc/Call", &headers).await;
    assert_eq!(first.status, 200);
    assert!(!first.headers.contains_key("grpc-status"));
    let g = call(&p, "/pkg.Svc/Call", &headers).await;
    assert_grpc(&g, "14", "local_rate_limited");
    assert_eq!(g.headers["x-ratelimit-limit"], "1");
    p.shutdown().await;
}

#[tokio::test]
async fn fault_aborts_in_grpc_and_http_form() {
    let b = Backend::start("x", Behavior::default()).await;
    let abort = |code| {
        with(|r| {
            r.fault = Some(FaultConfig {
                delay: None,
                abort: Some(AbortConfig {
                    code,
                    percentage: 100.0,
                }),
            });
        })
    };
    // abort.grpcStatus: the configured code; HTTP 200 for a gRPC and a plain request alike.
    let p = start(cluster(&[b.addr]), abort(AbortCode::Grpc(3))).await;
    let mut log = p.subscribe_access_log();
    assert_grpc(
        &call(&p, "/pkg.Svc/Call", &GRPC).await,
        "3",
        "fault filter abort",
    );
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "FI");
    let plain = get(addr(&p), "/", &[]).await;
    assert_eq!(
        (plain.status, &plain.body[..]),
        (200, &b"fault filter abort"[..])
    );
    p.shutdown().await;

    // abort.httpStatus: mapped for a gRPC request (403 → PERMISSION_DENIED).
    let p = start(cluster(&[b.addr]), abort(AbortCode::Http(403))).await;
    assert_grpc(
        &call(&p, "/pkg.Svc/Call", &GRPC).await,
        "7",
        "fault filter abort",
    );
    assert_eq!(get(addr(&p), "/", &[]).await.status, 403);
    assert_eq!(b.hits(), 0);
    assert_eq!(
        p.stats()
            .get(&format!("http.{LISTENER}.fault.aborts_injected")),
        Some(2)
    );
    p.shutdown().await;
}

/// An active gRPC health check (healthCheck.active.type GRPC): a NOT_SERVING host is out of load
/// balancing (503 UH with panic mode off), a SERVING one serves, over the h2 upstream a
/// GRPCRoute cluster uses.
#[tokio::test]
async fn grpc_active_health_check_gates_the_host() {
    use std::sync::atomic::Ordering;

    let server = GrpcHealthServer::start("pkg.Svc").await;
    server.status.store(2, Ordering::SeqCst);
    let mut c = cluster(&[server.addr]);
    c.upstream_protocol = UpstreamProtocol::Http2;
    c.panic_threshold = Percent::try_new(0, "panicThreshold").unwrap();
    let mut hc = HealthCheckConfig::grpc(GrpcCheckConfig {
        service: Some("pkg.Svc".into()),
        authority: "grpcroute.default.x.rule.0".into(),
    });
    hc.interval = Duration::from_millis(100);
    hc.no_traffic_interval = Duration::from_millis(100);
    hc.timeout = Duration::from_millis(500);
    c.health_check = Some(hc);
    let p = start(c, route(forward())).await;
    let mut log = p.subscribe_access_log();
    let g = call(&p, "/pkg.Svc/Call", &GRPC).await;
    assert_grpc(&g, "14", "no healthy upstream");
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "UH");
    assert!(stat(&p, "health_check.failure") >= 1);

    server.status.store(1, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let g = call(&p, "/pkg.Svc/Call", &GRPC).await;
        if g.status == 200 && !g.headers.contains_key("grpc-status") {
            assert_eq!(g.body, "grpc-backend");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    p.shutdown().await;
}

/// Envoy's router feeds outlier detection `grpcToHttpStatus(grpc-status)` for a gRPC request
/// whose response headers carry one: a trailers-only UNAVAILABLE (HTTP 200) counts as a 503.
#[tokio::test]
async fn grpc_status_in_headers_feeds_outlier_detection() {
    let (a, b) = (
        Backend::start("a", Behavior::default()).await,
        Backend::start("b", Behavior::default()).await,
    );
    let mut c = cluster(&[a.addr, b.addr]);
    c.outlier_detection = Some(OutlierDetectionConfig {
        consecutive_5xx: std::num::NonZeroU32::new(1),
        max_ejection_percent: Percent::HUNDRED,
        ..OutlierDetectionConfig::default()
    });
    let p = start(c, route(forward())).await;
    // A plain HTTP request: the header means nothing, HTTP 200 is a success.
    assert_eq!(get(addr(&p), "/?grpc_status=14", &[]).await.status, 200);
    assert_eq!(stat(&p, "outlier_detection.ejections_enforced_total"), 0);
    let g = get(addr(&p), "/?grpc_status=14", &GRPC).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.headers["grpc-status"], "14");
    assert_eq!(stat(&p, "outlier_detection.ejections_enforced_total"), 1);
    p.shutdown().await;
}
