//! End-to-end tests of the request path through real loopback sockets, reproducing Envoy
//! Gateway's e2e checks that concern the proxy core.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use tokio::time::Instant;

use crate::proxy::cluster::host_set::HealthFlag;
use crate::proxy::config::{
    CircuitBreakerThresholds, ClusterConfig, Endpoint, ForwardAction, LbPolicy, ListenerConfig,
    OutlierDetectionConfig, Percent, ProxyConfig, RetryOn, RetryPolicy, RouteAction, RouteConfig,
    RouteMatch, RouteSource,
};
use crate::proxy::testing::{Backend, Behavior, get, get_h2c, refused_addr};
use crate::proxy::{Proxy, ProxyHandle};

pub(super) const LISTENER: &str = "default/eg/http";
pub(super) const CLUSTER: &str = "httproute/default/x/rule/0";

pub(super) fn cluster(addrs: &[SocketAddr]) -> ClusterConfig {
    let eps = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| Endpoint::new(*a, "default/x", i))
        .collect();
    let mut c = ClusterConfig::new(CLUSTER, eps);
    c.lb = LbPolicy::RoundRobin;
    c
}

pub(super) const ROUTE: &str = "httproute/default/x/rule/0/match/0";

pub(super) fn route(action: ForwardAction) -> RouteConfig {
    let source = RouteSource {
        kind: "HTTPRoute".into(),
        namespace: "default".into(),
        name: "x".into(),
        rule: 0,
        rule_name: None,
    };
    RouteConfig::new(
        ROUTE,
        source,
        RouteMatch::default(),
        RouteAction::Forward(action),
    )
}

async fn start(c: ClusterConfig, action: ForwardAction) -> ProxyHandle {
    start_routes(c, vec![route(action)]).await
}

/// Starts a proxy with one listener holding `routes` and one cluster `c`.
pub(super) async fn start_routes(c: ClusterConfig, routes: Vec<RouteConfig>) -> ProxyHandle {
    let config = ProxyConfig {
        listeners: vec![ListenerConfig {
            name: LISTENER.into(),
            routes,
        }],
        clusters: vec![c],
        seed: 7,
    };
    Proxy::builder(config)
        .start(
            vec![(LISTENER.into(), "127.0.0.1:0".parse().unwrap())],
            Some("127.0.0.1:0".parse().unwrap()),
        )
        .await
        .unwrap()
}

pub(super) fn addr(p: &ProxyHandle) -> SocketAddr {
    p.listener_addr(LISTENER).unwrap()
}

pub(super) fn stat(p: &ProxyHandle, name: &str) -> u64 {
    p.stats()
        .get(&format!("cluster.{CLUSTER}.{name}"))
        .unwrap_or_else(|| panic!("no stat {name}"))
}

pub(super) fn forward() -> ForwardAction {
    ForwardAction::to_cluster(CLUSTER)
}

/// A backend behaviour that answers after `ms` milliseconds.
pub(super) fn slow(ms: u64) -> Behavior {
    Behavior {
        delay: Duration::from_millis(ms),
        ..Behavior::default()
    }
}

/// `n` GETs of `/` at once: each one's status, whether it carried `x-envoy-overloaded`, and
/// how long it took.
pub(super) async fn concurrent_gets(a: SocketAddr, n: usize) -> Vec<(u16, bool, Duration)> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            tokio::spawn(async move {
                let t = Instant::now();
                let r = get(a, "/", &[]).await;
                let overloaded = r.headers.contains_key("x-envoy-overloaded");
                (r.status, overloaded, t.elapsed())
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("request task"));
    }
    out
}

#[tokio::test]
async fn all_breaker_limits_zero_overflow_every_request() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut c = cluster(&[b.addr]);
    c.circuit_breaker = CircuitBreakerThresholds {
        max_connections: 0,
        max_pending_requests: 0,
        max_requests: 0,
        ..CircuitBreakerThresholds::default()
    };
    let p = start(c, forward()).await;
    let mut log = p.subscribe_access_log();
    for _ in 0..5 {
        let r = get(addr(&p), "/", &[]).await;
        assert_eq!(r.status, 503);
        assert_eq!(r.headers.get("x-envoy-overloaded").unwrap(), "true");
        assert_eq!(
            r.body,
            "upstream connect error or disconnect/reset before headers. reset reason: overflow"
        );
        let e = log.recv().await.unwrap();
        assert_eq!(e.response_flags.to_string(), "UO");
        assert_eq!(e.backend.as_deref(), Some("default/x"));
    }
    assert_eq!(b.hits(), 0);
    assert_eq!(stat(&p, "upstream_rq_pending_overflow"), 5);
    p.shutdown().await;
}

#[tokio::test]
async fn retries_on_status_codes_count_exactly_and_return_last_response() {
    let b = Backend::start(
        "x",
        Behavior {
            status: 500,
            ..Behavior::default()
        },
    )
    .await;
    let mut action = forward();
    action.retry = Some(
        RetryPolicy {
            num_retries: 5,
            retry_on: RetryOn::parse("connect-failure,retriable-status-codes").unwrap(),
            ..RetryPolicy::envoy_gateway_default()
        }
        .with_status_codes(&[500])
        .unwrap(),
    );
    let p = start(cluster(&[b.addr]), action).await;
    let mut log = p.subscribe_access_log();
    for i in 1..=3u64 {
        let r = get(addr(&p), "/", &[]).await;
        assert_eq!(r.status, 500);
        assert_eq!(stat(&p, "upstream_rq_retry"), 5 * i);
        let e = log.recv().await.unwrap();
        assert_eq!(e.attempts, 6);
        assert_eq!(e.response_flags.to_string(), "URX");
    }
    assert_eq!(b.hits(), 18);
    assert_eq!(stat(&p, "upstream_rq_retry_limit_exceeded"), 3);
    assert_eq!(stat(&p, "upstream_rq_5xx"), 3);
    assert_eq!(stat(&p, "upstream_rq_500"), 3);
    assert_eq!(stat(&p, "upstream_rq_total"), 18);
    p.shutdown().await;
}

#[tokio::test]
async fn no_retry_policy_means_no_retry() {
    let b = Backend::start(
        "x",
        Behavior {
            status: 500,
            ..Behavior::default()
        },
    )
    .await;
    let p = start(cluster(&[b.addr]), forward()).await;
    assert_eq!(get(addr(&p), "/", &[]).await.status, 500);
    assert_eq!(b.hits(), 1);
    assert_eq!(stat(&p, "upstream_rq_retry"), 0);
    p.shutdown().await;
}

#[tokio::test]
async fn route_timeout_gives_504_ut() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut action = forward();
    action.timeout = Some(Duration::from_millis(200));
    let p = start(cluster(&[b.addr]), action).await;
    let mut log = p.subscribe_access_log();
    assert_eq!(get(addr(&p), "/?delay=100", &[]).await.status, 200);
    log.recv().await.unwrap();
    let t0 = Instant::now();
    let r = get(addr(&p), "/?delay=400", &[]).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.body, "upstream request timeout");
    assert!(t0.elapsed() < Duration::from_millis(390));
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "UT");
    assert_eq!(stat(&p, "upstream_rq_timeout"), 1);
    p.shutdown().await;
}

/// The attempt a route timeout cuts short is reported to outlier detection as a timeout (a
/// gateway failure, 504), as Envoy's router does when it resets the upstream request.
#[tokio::test]
async fn route_timeout_reports_the_abandoned_attempt_to_outlier_detection() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut c = cluster(&[b.addr]);
    c.outlier_detection = Some(OutlierDetectionConfig {
        consecutive_gateway_failure: NonZeroU32::new(1),
        max_ejection_percent: Percent::HUNDRED,
        ..OutlierDetectionConfig::default()
    });
    let mut action = forward();
    action.timeout = Some(Duration::from_millis(100));
    let p = start(c, action).await;
    assert_eq!(get(addr(&p), "/?delay=400", &[]).await.status, 504);
    assert_eq!(stat(&p, "outlier_detection.ejections_enforced_total"), 1);
    assert!(!p.cluster(CLUSTER).unwrap().hosts.hosts()[0].is_healthy());
    p.shutdown().await;
}

#[tokio::test]
async fn per_try_timeout_retries_on_another_host() {
    let slow = Backend::start("slow", slow(500)).await;
    let fast = Backend::start("fast", Behavior::default()).await;
    let mut action = forward();
    action.retry = Some(RetryPolicy {
        num_retries: 1,
        retry_on: RetryOn::parse("5xx").unwrap(),
        per_try_timeout: Some(Duration::from_millis(100)),
        ..RetryPolicy::envoy_gateway_default()
    });
    let p = start(cluster(&[slow.addr, fast.addr]), action).await;
    let mut log = p.subscribe_access_log();
    let mut retried = 0;
    for _ in 0..4 {
        let r = get(addr(&p), "/", &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers.get("x-backend").unwrap(), "fast");
        let e = log.recv().await.unwrap();
        retried += u64::from(e.attempts - 1);
    }
    // Round robin alternates and each retry takes the host the first try did not, so at least
    // every other request meets the slow host first and is retried on the fast one.
    assert!(retried >= 2, "{retried}");
    assert_eq!(stat(&p, "upstream_rq_per_try_timeout"), retried);
    assert_eq!(stat(&p, "upstream_rq_retry_success"), retried);
    assert_eq!(fast.hits(), 4);
    p.shutdown().await;
}

#[tokio::test]
async fn round_robin_spreads_over_four_endpoints() {
    let mut backends = Vec::new();
    for name in ["a", "b", "c", "d"] {
        backends.push(Backend::start(name, Behavior::default()).await);
    }
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let p = start(cluster(&addrs), forward()).await;
    for _ in 0..100 {
        assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    }
    for b in &backends {
        assert_eq!(b.hits(), 25);
    }
    p.shutdown().await;
}

#[tokio::test]
async fn consecutive_5xx_ejects_and_traffic_moves_to_healthy_hosts() {
    let bad = Backend::start(
        "bad",
        Behavior {
            status: 500,
            ..Behavior::default()
        },
    )
    .await;
    let good = Backend::start("good", Behavior::default()).await;
    let mut c = cluster(&[bad.addr, good.addr]);
    c.outlier_detection = Some(OutlierDetectionConfig {
        consecutive_5xx: NonZeroU32::new(1),
        max_ejection_percent: Percent::HUNDRED,
        ..OutlierDetectionConfig::default()
    });
    let p = start(c, forward()).await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(get(addr(&p), "/", &[]).await.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 500).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(bad.hits(), 1);
    assert_eq!(stat(&p, "outlier_detection.ejections_enforced_total"), 1);
    assert_eq!(stat(&p, "outlier_detection.ejections_active"), 1);
    let admin = p.admin_addr().unwrap();
    let clusters = get(admin, "/clusters", &[]).await;
    let text = String::from_utf8_lossy(&clusters.body);
    assert!(text.contains(&format!(
        "{CLUSTER}::{}::health_flags::/failed_outlier_check",
        bad.addr
    )));
    p.shutdown().await;
}

#[tokio::test]
async fn pending_overflow_lets_max_parallel_requests_through() {
    let b = Backend::start("x", slow(300)).await;
    let mut c = cluster(&[b.addr]);
    c.circuit_breaker.max_pending_requests = 0;
    c.circuit_breaker.max_requests = 3;
    let p = start(c, forward()).await;
    let a = addr(&p);
    let t0 = Instant::now();
    let mut ok = 0;
    let mut overflow = 0;
    for (status, overloaded, took) in concurrent_gets(a, 10).await {
        match status {
            200 => ok += 1,
            503 => {
                assert!(overloaded);
                assert!(
                    took < Duration::from_millis(250),
                    "overflow must be fast: {took:?}"
                );
                overflow += 1;
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!((ok, overflow), (3, 7));
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(stat(&p, "upstream_rq_pending_overflow"), 7);
    p.shutdown().await;
}

#[tokio::test]
async fn requests_wait_for_a_connection_when_max_connections_is_reached() {
    let b = Backend::start("x", slow(100)).await;
    let mut c = cluster(&[b.addr]);
    c.circuit_breaker.max_connections = 1;
    c.circuit_breaker.max_pending_requests = 1;
    let p = start(c, forward()).await;
    let a = addr(&p);
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            tokio::spawn(async move {
                // Stagger so the order of arrival is known.
                tokio::time::sleep(Duration::from_millis(20 * i)).await;
                get(a, "/", &[]).await.status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    // First holds the connection, second waits (pending), third overflows.
    assert_eq!(statuses, vec![200, 200, 503]);
    assert_eq!(stat(&p, "upstream_cx_total"), 1);
    assert_eq!(stat(&p, "upstream_rq_pending_total"), 1);
    assert_eq!(stat(&p, "upstream_rq_pending_overflow"), 1);
    assert!(stat(&p, "upstream_cx_overflow") >= 2);
    p.shutdown().await;
}

#[tokio::test]
async fn connection_refused_is_503_uf_and_retried_elsewhere() {
    let dead = refused_addr().await;
    let live = Backend::start("live", Behavior::default()).await;
    let p = start(cluster(&[dead]), forward()).await;
    let mut log = p.subscribe_access_log();
    let r = get(addr(&p), "/", &[]).await;
    assert_eq!(r.status, 503);
    assert!(r.body.ends_with(b"reset reason: connection failure"));
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "UF");
    assert_eq!(stat(&p, "upstream_cx_connect_fail"), 1);
    p.shutdown().await;

    let mut action = forward();
    action.retry = Some(RetryPolicy::envoy_gateway_default());
    let p = start(cluster(&[dead, live.addr]), action).await;
    for _ in 0..4 {
        assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    }
    assert_eq!(live.hits(), 4);
    p.shutdown().await;
}

#[tokio::test]
async fn keep_alive_reuses_connections_up_to_the_per_connection_limit() {
    let b = Backend::start("x", Behavior::default()).await;
    let p = start(cluster(&[b.addr]), forward()).await;
    for _ in 0..5 {
        assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    }
    assert_eq!(stat(&p, "upstream_cx_total"), 1);
    p.shutdown().await;

    let mut c = cluster(&[b.addr]);
    c.max_requests_per_connection = NonZeroU32::new(2);
    let p = start(c, forward()).await;
    for _ in 0..5 {
        assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    }
    assert_eq!(stat(&p, "upstream_cx_total"), 3);
    assert_eq!(stat(&p, "upstream_cx_max_requests"), 2);
    p.shutdown().await;
}

#[tokio::test]
async fn idle_upstream_connections_are_closed() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut c = cluster(&[b.addr]);
    c.idle_timeout = Some(Duration::from_millis(100));
    let p = start(c, forward()).await;
    assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stat(&p, "upstream_cx_idle_timeout"), 1);
    assert_eq!(stat(&p, "upstream_cx_active"), 0);
    assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    assert_eq!(stat(&p, "upstream_cx_total"), 2);
    p.shutdown().await;
}

#[tokio::test]
async fn no_healthy_upstream_without_panic_mode() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut c = cluster(&[b.addr]);
    c.panic_threshold = Percent::try_new(0, "t").unwrap();
    let p = start(c, forward()).await;
    let mut log = p.subscribe_access_log();
    p.cluster(CLUSTER)
        .unwrap()
        .hosts
        .set_health_flag(0, HealthFlag::FailedActiveHc, true);
    let r = get(addr(&p), "/", &[]).await;
    assert_eq!((r.status, &r.body[..]), (503, &b"no healthy upstream"[..]));
    let e = log.recv().await.unwrap();
    assert_eq!(e.response_flags.to_string(), "UH");
    // No host was attempted: the request is still attributed to the cluster's one backend.
    assert_eq!((e.attempts, e.backend.as_deref()), (0, Some("default/x")));
    p.shutdown().await;
}

#[tokio::test]
async fn no_route_is_404_nr_and_request_ids_are_kept_or_generated() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut r = route(forward());
    r.matches.path = crate::proxy::config::PathMatch::Exact("/only".into());
    let config = ProxyConfig {
        listeners: vec![ListenerConfig {
            name: LISTENER.into(),
            routes: vec![r],
        }],
        clusters: vec![cluster(&[b.addr])],
        seed: 1,
    };
    let p = Proxy::start(
        config,
        vec![(LISTENER.into(), "127.0.0.1:0".parse().unwrap())],
        None,
    )
    .await
    .unwrap();
    let mut log = p.subscribe_access_log();
    let r = get(addr(&p), "/other", &[("x-request-id", "abc")]).await;
    assert_eq!(r.status, 404);
    let e = log.recv().await.unwrap();
    assert_eq!(
        (e.request_id.as_str(), e.response_flags.to_string()),
        ("abc", "NR".into())
    );
    let r = get(addr(&p), "/only", &[]).await;
    assert_eq!(r.status, 200);
    let e = log.recv().await.unwrap();
    assert_eq!(
        r.headers.get("x-seen-request-id").unwrap(),
        e.request_id.as_str()
    );
    assert_eq!(
        e.route.as_deref(),
        Some("httproute/default/x/rule/0/match/0")
    );
    assert_eq!(e.cluster.as_deref(), Some(CLUSTER));
    assert_eq!(e.upstream_host, Some(b.addr));
    assert_eq!((e.replica, e.attempts, e.status), (Some(0), 1, 200));
    assert!(e.upstream_duration.is_some());
    p.shutdown().await;
}

#[tokio::test]
async fn h2c_downstream_is_served() {
    let b = Backend::start("x", Behavior::default()).await;
    let p = start(cluster(&[b.addr]), forward()).await;
    let r = get_h2c(addr(&p), "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "x");
    p.shutdown().await;
}

#[tokio::test]
async fn admin_serves_envoy_stats() {
    let b = Backend::start("x", Behavior::default()).await;
    let p = start(cluster(&[b.addr]), forward()).await;
    get(addr(&p), "/", &[]).await;
    let admin = p.admin_addr().unwrap();
    let text = String::from_utf8_lossy(&get(admin, "/stats", &[]).await.body).to_string();
    assert!(
        text.contains(&format!("cluster.{CLUSTER}.upstream_rq_2xx: 1\n")),
        "{text}"
    );
    assert!(text.contains(&format!("http.{LISTENER}.downstream_rq_total: 1\n")));
    assert!(
        text.contains(&format!("http.{LISTENER}.downstream_rq_2xx: 1\n")),
        "{text}"
    );
    let prom =
        String::from_utf8_lossy(&get(admin, "/stats/prometheus", &[]).await.body).to_string();
    assert!(prom.contains(&format!(
        "envoy_cluster_upstream_rq_total{{envoy_cluster_name=\"{CLUSTER}\"}} 1"
    )));
    assert_eq!(get(admin, "/ready", &[]).await.status, 200);
    p.shutdown().await;
}

#[tokio::test]
async fn upstream_reset_is_503_uc_and_retried_on_reset() {
    let reset = Backend::start(
        "reset",
        Behavior {
            reset: true,
            ..Behavior::default()
        },
    )
    .await;
    let live = Backend::start("live", Behavior::default()).await;
    let p = start(cluster(&[reset.addr]), forward()).await;
    let mut log = p.subscribe_access_log();
    let r = get(addr(&p), "/", &[]).await;
    assert_eq!(r.status, 503);
    assert!(
        r.body.ends_with(b"reset reason: connection termination"),
        "{:?}",
        r.body
    );
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "UC");
    p.shutdown().await;

    let mut action = forward();
    action.retry = Some(RetryPolicy {
        retry_on: RetryOn::parse("reset").unwrap(),
        ..RetryPolicy::envoy_gateway_default()
    });
    let p = start(cluster(&[reset.addr, live.addr]), action).await;
    let mut log = p.subscribe_access_log();
    let mut retried = 0;
    for _ in 0..4 {
        assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
        retried += u64::from(log.recv().await.unwrap().attempts - 1);
    }
    assert!(retried >= 2, "{retried}");
    assert_eq!(stat(&p, "upstream_rq_retry"), retried);
    assert_eq!(live.hits(), 4);
    p.shutdown().await;
}

#[tokio::test]
async fn max_stream_duration_before_headers_is_408() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut action = forward();
    action.max_stream_duration = Some(Duration::from_millis(100));
    let p = start(cluster(&[b.addr]), action).await;
    let mut log = p.subscribe_access_log();
    let r = get(addr(&p), "/?delay=400", &[]).await;
    assert_eq!(
        (r.status, &r.body[..]),
        (408, &b"downstream duration timeout"[..])
    );
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "DT");
    p.shutdown().await;
}

#[tokio::test]
async fn route_timeout_during_the_body_resets_the_stream() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut action = forward();
    action.timeout = Some(Duration::from_millis(150));
    let p = start(cluster(&[b.addr]), action).await;
    let mut log = p.subscribe_access_log();
    let stream = tokio::net::TcpStream::connect(addr(&p)).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .uri("/?body_delay=400")
        .header("host", "a")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200, "headers arrive before the timeout");
    let body = http_body_util::BodyExt::collect(resp.into_body()).await;
    assert!(body.is_err(), "the body is cut off");
    let e = log.recv().await.unwrap();
    assert_eq!((e.status, e.response_flags.to_string()), (200, "UT".into()));
    assert_eq!(stat(&p, "upstream_rq_timeout"), 1);
    p.shutdown().await;
}

#[tokio::test]
async fn client_going_away_releases_everything_and_logs_dc() {
    let b = Backend::start("x", slow(300)).await;
    let p = start(cluster(&[b.addr]), forward()).await;
    let mut log = p.subscribe_access_log();
    let a = addr(&p);
    let client = tokio::spawn(async move { get(a, "/", &[]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.abort();
    let e = tokio::time::timeout(Duration::from_secs(2), log.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((e.status, e.response_flags.to_string()), (0, "DC".into()));
    assert_eq!(stat(&p, "upstream_rq_active"), 0);
    let c = p.cluster(CLUSTER).unwrap();
    assert_eq!(c.hosts.hosts()[0].rq_active(), 0);
    assert_eq!(
        p.stats()
            .get(&format!("http.{LISTENER}.downstream_rq_active")),
        Some(0)
    );
    p.shutdown().await;
}

#[tokio::test]
async fn max_connection_duration_closes_old_connections() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut c = cluster(&[b.addr]);
    c.max_connection_duration = Some(Duration::from_millis(100));
    let p = start(c, forward()).await;
    assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(stat(&p, "upstream_cx_max_duration_reached"), 1);
    assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    assert_eq!(stat(&p, "upstream_cx_total"), 2);
    p.shutdown().await;
}

#[tokio::test]
async fn retry_overflow_returns_the_last_response() {
    let b = Backend::start(
        "x",
        Behavior {
            status: 503,
            ..Behavior::default()
        },
    )
    .await;
    let mut c = cluster(&[b.addr]);
    c.circuit_breaker.max_retries = 0;
    let mut action = forward();
    action.retry = Some(RetryPolicy::envoy_gateway_default());
    let p = start(c, action).await;
    let mut log = p.subscribe_access_log();
    let r = get(addr(&p), "/", &[]).await;
    assert_eq!(r.status, 503);
    assert!(!r.headers.contains_key("x-envoy-overloaded"));
    let e = log.recv().await.unwrap();
    assert_eq!((e.attempts, e.response_flags.to_string()), (1, "UO".into()));
    assert_eq!(stat(&p, "upstream_rq_retry_overflow"), 1);
    assert_eq!(stat(&p, "upstream_rq_retry"), 0);
    p.shutdown().await;
}

#[tokio::test]
async fn overloaded_upstream_responses_are_not_retried() {
    // A second proxy layer answering 503 + x-envoy-overloaded must not be retried.
    let inner_backend = Backend::start("x", Behavior::default()).await;
    let mut inner_cluster = cluster(&[inner_backend.addr]);
    inner_cluster.circuit_breaker.max_requests = 0;
    let inner = start(inner_cluster, forward()).await;
    let mut action = forward();
    action.retry = Some(RetryPolicy {
        retry_on: RetryOn::parse("5xx").unwrap(),
        ..RetryPolicy::envoy_gateway_default()
    });
    let outer = start(cluster(&[addr(&inner)]), action).await;
    let r = get(addr(&outer), "/", &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers.get("x-envoy-overloaded").unwrap(), "true");
    assert_eq!(stat(&outer, "upstream_rq_retry"), 0);
    outer.shutdown().await;
    inner.shutdown().await;
}

#[tokio::test]
async fn connect_timeout_is_503_uf() {
    let (hole, _fillers, _listener) = crate::proxy::testing::blackhole_addr().await;
    let mut c = cluster(&[hole]);
    c.connect_timeout = Duration::from_millis(100);
    let p = start(c, forward()).await;
    let mut log = p.subscribe_access_log();
    let t0 = Instant::now();
    let r = get(addr(&p), "/", &[]).await;
    assert_eq!(r.status, 503);
    assert!(
        r.body.ends_with(b"reset reason: connection timeout"),
        "{:?}",
        r.body
    );
    assert!(t0.elapsed() < Duration::from_millis(900));
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "UF");
    assert_eq!(stat(&p, "upstream_cx_connect_timeout"), 1);
    p.shutdown().await;
}

#[tokio::test]
async fn panic_mode_serves_unhealthy_hosts() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut c = cluster(&[b.addr]);
    c.panic_threshold = Percent::try_new(40, "t").unwrap();
    let p = start(c, forward()).await;
    p.cluster(CLUSTER)
        .unwrap()
        .hosts
        .set_health_flag(0, HealthFlag::FailedActiveHc, true);
    assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    assert_eq!(stat(&p, "lb_healthy_panic"), 1);
    p.shutdown().await;
}

#[tokio::test]
async fn weighted_backends_split_traffic() {
    let a = Backend::start("a", Behavior::default()).await;
    let b = Backend::start("b", Behavior::default()).await;
    let mut ca = cluster(&[a.addr]);
    ca.name = "httproute/default/x/rule/0".into();
    let mut cb = cluster(&[b.addr]);
    cb.name = "httproute/default/y/rule/0".into();
    let mut action = forward();
    action.backends = vec![
        crate::proxy::config::WeightedCluster {
            cluster: ca.name.clone(),
            weight: 3,
        },
        crate::proxy::config::WeightedCluster {
            cluster: cb.name.clone(),
            weight: 1,
        },
    ];
    let config = ProxyConfig {
        listeners: vec![ListenerConfig {
            name: LISTENER.into(),
            routes: vec![route(action)],
        }],
        clusters: vec![ca, cb],
        seed: 11,
    };
    let p = Proxy::start(
        config,
        vec![(LISTENER.into(), "127.0.0.1:0".parse().unwrap())],
        None,
    )
    .await
    .unwrap();
    for _ in 0..200 {
        assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    }
    assert!((125..=175).contains(&a.hits()), "a got {}", a.hits());
    assert_eq!(a.hits() + b.hits(), 200);
    p.shutdown().await;
}

#[tokio::test]
async fn pending_requests_do_not_hold_max_requests_slots() {
    // One connection, parallel limit 2: requests queue for the connection instead of
    // overflowing max_requests, because Envoy checks max_requests when a request attaches.
    let b = Backend::start("x", slow(50)).await;
    let mut c = cluster(&[b.addr]);
    c.circuit_breaker.max_connections = 1;
    c.circuit_breaker.max_requests = 2;
    let p = start(c, forward()).await;
    let a = addr(&p);
    for (status, _, _) in concurrent_gets(a, 5).await {
        assert_eq!(status, 200);
    }
    assert_eq!(stat(&p, "upstream_cx_total"), 1);
    assert_eq!(stat(&p, "upstream_rq_pending_overflow"), 0);
    assert!(stat(&p, "upstream_rq_pending_total") >= 3);
    p.shutdown().await;
}

#[tokio::test]
async fn never_more_than_max_requests_in_flight() {
    let b = Backend::start("x", slow(100)).await;
    let mut c = cluster(&[b.addr]);
    c.circuit_breaker.max_requests = 3;
    let p = start(c, forward()).await;
    let a = addr(&p);
    let mut ok = 0;
    for (s, _, _) in concurrent_gets(a, 20).await {
        assert!(s == 200 || s == 503, "{s}");
        ok += u64::from(s == 200);
    }
    assert!(b.max_in_flight.load(std::sync::atomic::Ordering::SeqCst) <= 3);
    assert_eq!(stat(&p, "upstream_rq_pending_overflow"), 20 - ok);
    assert!(ok >= 3);
    p.shutdown().await;
}

#[tokio::test]
async fn per_host_connection_limit_queues_requests() {
    let b = Backend::start("x", slow(50)).await;
    let mut c = cluster(&[b.addr]);
    c.circuit_breaker.per_host_max_connections = 2;
    let p = start(c, forward()).await;
    let a = addr(&p);
    for (status, _, _) in concurrent_gets(a, 8).await {
        assert_eq!(status, 200);
    }
    assert!(b.connections.load(std::sync::atomic::Ordering::SeqCst) <= 2);
    assert!(b.max_in_flight.load(std::sync::atomic::Ordering::SeqCst) <= 2);
    p.shutdown().await;
}

#[tokio::test]
async fn passive_health_check_fails_over_to_the_fallback_priority() {
    // Envoy Gateway's failover demo: the active backend breaks, the first failure ejects it,
    // and traffic moves to the fallback backend (priority 1).
    let active = Backend::start(
        "active",
        Behavior {
            status: 500,
            ..Behavior::default()
        },
    )
    .await;
    let fallback = Backend::start("fallback", Behavior::default()).await;
    let mut c = cluster(&[active.addr, fallback.addr]);
    c.endpoints[1].priority = 1;
    c.endpoints[1].backend = "default/fallback".into();
    c.outlier_detection = Some(OutlierDetectionConfig {
        consecutive_5xx: NonZeroU32::new(1),
        max_ejection_percent: Percent::HUNDRED,
        ..OutlierDetectionConfig::default()
    });
    let p = start(c, forward()).await;
    let mut log = p.subscribe_access_log();
    assert_eq!(get(addr(&p), "/", &[]).await.status, 500);
    assert_eq!(
        log.recv().await.unwrap().backend.as_deref(),
        Some("default/x")
    );
    for _ in 0..5 {
        let r = get(addr(&p), "/", &[]).await;
        assert_eq!(r.headers.get("x-backend").unwrap(), "fallback");
        assert_eq!(
            log.recv().await.unwrap().backend.as_deref(),
            Some("default/fallback")
        );
    }
    assert_eq!((active.hits(), fallback.hits()), (1, 5));
    p.shutdown().await;
}

#[tokio::test]
async fn endpoint_override_header_picks_the_endpoint() {
    let a = Backend::start("a", Behavior::default()).await;
    let b = Backend::start("b", Behavior::default()).await;
    let mut c = cluster(&[a.addr, b.addr]);
    c.endpoint_override_headers = vec![http::HeaderName::from_static("x-destination")];
    let p = start(c, forward()).await;
    let target = b.addr.to_string();
    for _ in 0..4 {
        let r = get(addr(&p), "/", &[("x-destination", target.as_str())]).await;
        assert_eq!(r.headers.get("x-backend").unwrap(), "b");
    }
    assert_eq!(a.hits(), 0);
    p.shutdown().await;
}

#[tokio::test]
async fn start_rejects_bad_binds() {
    let config = || ProxyConfig {
        listeners: vec![ListenerConfig {
            name: LISTENER.into(),
            routes: vec![],
        }],
        clusters: vec![],
        seed: 1,
    };
    let err = Proxy::start(
        config(),
        vec![("nope".into(), "127.0.0.1:0".parse().unwrap())],
        None,
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(err, crate::proxy::StartError::UnknownListener(_)));
    let err = Proxy::start(config(), vec![], Some("0.0.0.0:0".parse().unwrap()))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, crate::proxy::StartError::AdminNotLoopback(_)));
}

/// A backend speaking raw HTTP/1.1: on every connection it reads one request head, writes
/// `response`, and closes the connection when `close_after` is set.
async fn raw_backend(response: &'static [u8], close_after: bool) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        if s.write_all(response).await.is_err() || close_after {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_kept_alive_connection_the_backend_closed_while_idle_is_replaced() {
    // The backend closes every connection after one response without saying so.
    let b = raw_backend(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", true).await;
    let p = start(cluster(&[b]), forward()).await;
    for _ in 0..3 {
        let got = get(addr(&p), "/", &[]).await;
        assert_eq!((got.status, &got.body[..]), (200, &b"ok"[..]));
        // Time for the close to arrive before the next request looks at the idle connection.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stat(&p, "upstream_cx_total"), 3);
    assert_eq!(stat(&p, "upstream_rq_total"), 3);
    p.shutdown().await;
}

/// Sends two requests through a proxy in front of a raw backend answering `response`; returns
/// how many upstream connections they took.
async fn two_requests_through(response: &'static [u8], close_after: bool, body: &[u8]) -> u64 {
    let p = start(
        cluster(&[raw_backend(response, close_after).await]),
        forward(),
    )
    .await;
    for _ in 0..2 {
        let got = get(addr(&p), "/", &[]).await;
        assert_eq!((got.status, &got.body[..]), (200, body));
    }
    let connections = stat(&p, "upstream_cx_total");
    p.shutdown().await;
    connections
}

#[tokio::test]
async fn responses_framed_by_chunks_or_by_close_stream_through() {
    let chunked =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    let connections = two_requests_through(chunked, false, b"abcde").await;
    assert_eq!(connections, 1, "a chunked response keeps the connection");

    let until_close = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nto the end";
    let connections = two_requests_through(until_close, true, b"to the end").await;
    assert_eq!(connections, 2, "a close-delimited body ends its connection");
}

#[tokio::test]
async fn a_malformed_upstream_response_is_a_reset() {
    let b = raw_backend(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", false).await;
    let p = start(cluster(&[b]), forward()).await;
    let got = get(addr(&p), "/", &[]).await;
    assert_eq!(got.status, 503);
    assert_eq!(stat(&p, "upstream_cx_destroy"), 1);
    p.shutdown().await;
}
