//! End-to-end tests of the per-route and per-cluster features wired from the configuration,
//! through loopback sockets, reproducing Envoy Gateway's e2e checks for them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::tests::{CLUSTER, LISTENER, ROUTE, addr, cluster, forward, route, start_routes, stat};
use crate::proxy::ProxyHandle;
use crate::proxy::config::{
    ClusterConfig, Endpoint, ForwardAction, HeaderValueMatch, LbPolicy, OutlierDetectionConfig,
    OverrideAction, OverrideRedirect, OverrideResponse, OverrideSource, PathMatch, Percent,
    ResponseHeaderMatch, ResponseOverrideRule, RouteConfig, RouteMatch, StatusCodeMatch,
    TcpKeepalive,
};
use crate::proxy::fault::{AbortCode, AbortConfig, DelayConfig, FaultConfig};
use crate::proxy::health_check::HealthCheckConfig;
use crate::proxy::lb::hash::HashPolicyConfig;
use crate::proxy::rate_limit::{
    ClientSelectorConfig, GlobalRateLimitConfig, HeaderMatchConfig, Limit, LocalRateLimitConfig,
    RuleConfig, StringMatchType, Unit,
};
use crate::proxy::testing::{Backend, Behavior, Got, get};

/// A backend whose answers can be changed while it runs: `/hc` answers `hc`'s status, every
/// other path `data`'s status; the body is the backend's name.
struct Switchable {
    addr: SocketAddr,
    hc: Arc<AtomicU16>,
    data: Arc<AtomicU16>,
    task: JoinHandle<()>,
}

impl Drop for Switchable {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn switchable(hc: u16, data: u16) -> Switchable {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (hc, data) = (Arc::new(AtomicU16::new(hc)), Arc::new(AtomicU16::new(data)));
    let (h, d) = (Arc::clone(&hc), Arc::clone(&data));
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (h, d) = (Arc::clone(&h), Arc::clone(&d));
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let code = if req.uri().path() == "/hc" { &h } else { &d };
                    let status = StatusCode::from_u16(code.load(Ordering::SeqCst)).unwrap();
                    async move {
                        let mut r = Response::new(Full::new(Bytes::from_static(b"switchable")));
                        *r.status_mut() = status;
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Switchable {
        addr,
        hc,
        data,
        task,
    }
}

/// One HTTP/1.1 request with a method and body on a fresh connection, bounded by 10 s.
async fn send(addr: SocketAddr, method: &str, path: &str, body: &'static [u8]) -> Got {
    tokio::time::timeout(Duration::from_secs(10), async {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "example.com")
            .body(Full::new(Bytes::from_static(body)))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        Got {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    })
    .await
    .expect("request took longer than 10 s")
}

pub(super) fn with(f: impl FnOnce(&mut RouteConfig)) -> RouteConfig {
    let mut r = route(forward());
    f(&mut r);
    r
}

async fn start_one(c: ClusterConfig, r: RouteConfig) -> ProxyHandle {
    start_routes(c, vec![r]).await
}

pub(super) fn http_stat(p: &ProxyHandle, name: &str) -> Option<u64> {
    p.stats().get(&format!("http.{LISTENER}.{name}"))
}

fn backend_of(g: &Got) -> String {
    g.headers
        .get("x-backend")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn fault_abort_501_answers_fault_filter_abort() {
    let b = Backend::start("x", Behavior::default()).await;
    let r = with(|r| {
        r.fault = Some(FaultConfig {
            delay: None,
            abort: Some(AbortConfig {
                code: AbortCode::Http(501),
                percentage: 100.0,
            }),
        });
    });
    let p = start_one(cluster(&[b.addr]), r).await;
    let mut log = p.subscribe_access_log();
    let g = get(addr(&p), "/", &[]).await;
    assert_eq!((g.status, &g.body[..]), (501, &b"fault filter abort"[..]));
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "FI");
    assert_eq!(b.hits(), 0);
    assert_eq!(http_stat(&p, "fault.aborts_injected"), Some(1));
    assert_eq!(http_stat(&p, "fault.delays_injected"), Some(0));
    p.shutdown().await;
}

#[tokio::test]
async fn fault_delay_then_abort_500() {
    let b = Backend::start("x", Behavior::default()).await;
    let r = with(|r| {
        r.fault = Some(FaultConfig {
            delay: Some(DelayConfig {
                fixed_delay: Duration::from_millis(200),
                percentage: 100.0,
            }),
            abort: Some(AbortConfig {
                code: AbortCode::Http(500),
                percentage: 100.0,
            }),
        });
    });
    let p = start_one(cluster(&[b.addr]), r).await;
    let mut log = p.subscribe_access_log();
    let t0 = Instant::now();
    let g = get(addr(&p), "/", &[]).await;
    assert!(
        t0.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!((g.status, &g.body[..]), (500, &b"fault filter abort"[..]));
    assert_eq!(
        log.recv().await.unwrap().response_flags.to_string(),
        "FI,DI"
    );
    assert_eq!(http_stat(&p, "fault.delays_injected"), Some(1));
    assert_eq!(b.hits(), 0);
    p.shutdown().await;
}

pub(super) fn user_rule(user: &str, requests: u64, unit: Unit) -> RuleConfig {
    RuleConfig::new(
        vec![ClientSelectorConfig {
            headers: vec![HeaderMatchConfig {
                name: "x-user-id".into(),
                match_type: StringMatchType::Exact,
                value: Some(user.into()),
                invert: false,
            }],
            ..ClientSelectorConfig::default()
        }],
        Limit { requests, unit },
    )
}

#[tokio::test]
async fn local_rate_limit_three_per_hour_for_user_one() {
    let b = Backend::start("x", Behavior::default()).await;
    let r = with(|r| {
        r.local_rate_limit = Some(LocalRateLimitConfig {
            rules: vec![user_rule("one", 3, Unit::Hour)],
            x_ratelimit_headers: true,
        });
    });
    let p = start_one(cluster(&[b.addr]), r).await;
    let mut log = p.subscribe_access_log();
    let one = [("x-user-id", "one")];
    for i in 0..3 {
        let g = get(addr(&p), "/", &one).await;
        assert_eq!(g.status, 200, "request {i}");
        assert_eq!(g.headers.get("x-ratelimit-limit").unwrap(), "3");
        let _ = log.recv().await.unwrap();
    }
    let g = get(addr(&p), "/", &one).await;
    assert_eq!(g.status, 429);
    assert_eq!(g.body, "local_rate_limited");
    assert_eq!(g.headers.get("x-envoy-ratelimited").unwrap(), "true");
    assert_eq!(g.headers.get("x-ratelimit-limit").unwrap(), "3");
    assert_eq!(g.headers.get("x-ratelimit-remaining").unwrap(), "0");
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "RL");
    for user in ["two", "three"] {
        assert_eq!(get(addr(&p), "/", &[("x-user-id", user)]).await.status, 200);
    }
    assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    assert_eq!(b.hits(), 6);
    let s = p.stats();
    assert_eq!(
        s.get("http_local_rate_limiter.http_local_rate_limit.enforced"),
        Some(1)
    );
    assert_eq!(
        s.get("http_local_rate_limiter.http_local_rate_limit.enabled"),
        Some(7)
    );
    p.shutdown().await;
}

fn global(shared: bool, requests: u64) -> GlobalRateLimitConfig {
    let mut rule = RuleConfig::new(
        Vec::new(),
        Limit {
            requests,
            // A year-long window: a test never straddles a window boundary in practice.
            unit: Unit::Year,
        },
    );
    rule.shared = shared;
    GlobalRateLimitConfig {
        policy_id: "default/policy".into(),
        rules: vec![rule],
        x_ratelimit_headers: true,
    }
}

fn two_routes(global_limit: GlobalRateLimitConfig) -> Vec<RouteConfig> {
    ["/a", "/b"]
        .into_iter()
        .enumerate()
        .map(|(i, prefix)| {
            let mut r = route(forward());
            r.name = format!("httproute/default/x/rule/0/match/{i}");
            r.matches = RouteMatch {
                path: PathMatch::PathPrefix(prefix.into()),
                ..RouteMatch::default()
            };
            r.global_rate_limit = Some(global_limit.clone());
            r
        })
        .collect()
}

#[tokio::test]
async fn global_rate_limit_counts_per_route_unless_shared() {
    let b = Backend::start("x", Behavior::default()).await;
    // Not shared: each route has its own counter of 2.
    let p = start_routes(cluster(&[b.addr]), two_routes(global(false, 2))).await;
    let mut log = p.subscribe_access_log();
    for path in ["/a", "/a", "/b", "/b"] {
        assert_eq!(get(addr(&p), path, &[]).await.status, 200, "{path}");
        let _ = log.recv().await.unwrap();
    }
    let g = get(addr(&p), "/a", &[]).await;
    assert_eq!(g.status, 429);
    assert!(g.headers.get("x-envoy-ratelimited").is_none());
    assert_eq!(g.headers.get("x-ratelimit-remaining").unwrap(), "0");
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "RL");
    assert_eq!(stat(&p, "ratelimit.over_limit"), 1);
    assert_eq!(stat(&p, "ratelimit.ok"), 4);
    p.shutdown().await;

    // Shared: one counter of 3 for both routes.
    let p = start_routes(cluster(&[b.addr]), two_routes(global(true, 3))).await;
    for path in ["/a", "/b", "/a"] {
        assert_eq!(get(addr(&p), path, &[]).await.status, 200, "{path}");
    }
    assert_eq!(get(addr(&p), "/b", &[]).await.status, 429);
    p.shutdown().await;
}

pub(super) fn health_checked(addrs: &[SocketAddr], path: &str, panic: u32) -> ClusterConfig {
    let mut c = cluster(addrs);
    let mut hc = HealthCheckConfig::http(path, "example.com");
    hc.timeout = Duration::from_millis(500);
    hc.interval = Duration::from_millis(50);
    hc.no_traffic_interval = Duration::from_millis(50);
    c.health_check = Some(hc);
    c.panic_threshold = Percent::try_new(panic, "t").unwrap();
    c
}

#[tokio::test]
async fn failing_active_check_without_panic_is_503_uh() {
    let b = Backend::start("x", Behavior::default()).await;
    let p = start_one(
        health_checked(&[b.addr], "/status/418", 0),
        route(forward()),
    )
    .await;
    let mut log = p.subscribe_access_log();
    let g = get(addr(&p), "/", &[]).await;
    assert_eq!((g.status, &g.body[..]), (503, &b"no healthy upstream"[..]));
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "UH");
    assert!(stat(&p, "health_check.attempt") >= 1);
    assert!(stat(&p, "health_check.failure") >= 1);
    assert_eq!(stat(&p, "health_check.success"), 0);
    assert_eq!(stat(&p, "health_check.network_failure"), 0);
    assert_eq!(stat(&p, "health_check.healthy"), 0);
    let admin = p.admin_addr().unwrap();
    let text = String::from_utf8_lossy(&get(admin, "/stats", &[]).await.body).to_string();
    for name in [
        "attempt",
        "success",
        "failure",
        "network_failure",
        "healthy",
    ] {
        let line = format!("cluster.{CLUSTER}.health_check.{name}: ");
        assert!(text.contains(&line), "{line} missing from /stats");
    }
    p.shutdown().await;
}

#[tokio::test]
async fn failing_active_check_with_panic_threshold_40_still_serves() {
    let b = Backend::start("x", Behavior::default()).await;
    let p = start_one(
        health_checked(&[b.addr], "/status/418", 40),
        route(forward()),
    )
    .await;
    assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    assert!(stat(&p, "lb_healthy_panic") >= 1);
    p.shutdown().await;
}

#[tokio::test]
async fn passing_active_check_serves_from_the_first_request() {
    let b = Backend::start("x", Behavior::default()).await;
    let p = start_one(
        health_checked(&[b.addr], "/status/200", 0),
        route(forward()),
    )
    .await;
    assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    assert_eq!(stat(&p, "health_check.healthy"), 1);
    assert!(stat(&p, "health_check.success") >= 1);
    p.shutdown().await;
}

/// Polls until a request gets `status` (every 20 ms, at most 3 s).
async fn eventually(p: &ProxyHandle, status: u16) -> bool {
    for _ in 0..150 {
        if get(addr(p), "/", &[]).await.status == status {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn host_recovers_when_its_check_passes_again() {
    let s = switchable(503, 200).await;
    let p = start_one(health_checked(&[s.addr], "/hc", 0), route(forward())).await;
    assert_eq!(get(addr(&p), "/", &[]).await.status, 503);
    s.hc.store(200, Ordering::SeqCst);
    assert!(eventually(&p, 200).await, "host never recovered");
    // And fails again at once on a non-retriable status.
    s.hc.store(418, Ordering::SeqCst);
    assert!(eventually(&p, 503).await, "host never failed");
    p.shutdown().await;
}

#[tokio::test]
async fn successful_check_returns_an_ejected_host() {
    let s = switchable(200, 500).await;
    let mut c = health_checked(&[s.addr], "/hc", 0);
    c.outlier_detection = Some(OutlierDetectionConfig {
        consecutive_5xx: std::num::NonZeroU32::new(1),
        max_ejection_percent: Percent::HUNDRED,
        // Long enough that only the health check can bring the host back.
        base_ejection_time: Duration::from_secs(300),
        interval: Duration::from_secs(300),
        ..OutlierDetectionConfig::default()
    });
    let p = start_one(c, route(forward())).await;
    assert_eq!(get(addr(&p), "/", &[]).await.status, 500);
    let host = &p.cluster(CLUSTER).unwrap().hosts.hosts()[0];
    // Ejected by the 5xx; the next passing check (every 50 ms) un-ejects it.
    s.data.store(200, Ordering::SeqCst);
    assert!(eventually(&p, 200).await, "host stayed ejected");
    assert!(host.is_healthy());
    assert_eq!(stat(&p, "outlier_detection.ejections_enforced_total"), 1);
    p.shutdown().await;
}

/// `x-envoy-immediate-health-check-fail` on an upstream response (Envoy's router →
/// `setUnhealthy(ImmediateHealthCheckFail)`): with active health checking the host is excluded
/// at once and fails active HC; it comes back after `healthy_threshold` passing checks.
#[tokio::test]
async fn immediate_health_check_fail_excludes_the_host_until_checks_pass() {
    let (a, b) = (
        Backend::start("a", Behavior::default()).await,
        Backend::start("b", Behavior::default()).await,
    );
    let mut c = health_checked(&[a.addr, b.addr], "/status/200", 0);
    if let Some(hc) = c.health_check.as_mut() {
        hc.healthy_threshold = 3;
        hc.interval = Duration::from_millis(300);
        hc.no_traffic_interval = Duration::from_millis(300);
    }
    let p = start_one(c, route(forward())).await;
    let first = get(addr(&p), "/?hcfail=1", &[]).await;
    assert_eq!(first.status, 200);
    // The header is passed on downstream.
    assert_eq!(first.headers["x-envoy-immediate-health-check-fail"], "true");
    let failed = backend_of(&first);
    let index = usize::from(failed == "b");
    let host = &p.cluster(CLUSTER).unwrap().hosts.hosts()[index];
    assert_eq!(
        host.health_flags_text(),
        "/failed_active_hc/excluded_via_immediate_hc_fail"
    );
    assert_eq!(stat(&p, "health_check.passive_failure"), 1);
    // Three checks 300 ms apart are needed before it serves again.
    for _ in 0..6 {
        assert_ne!(backend_of(&get(addr(&p), "/", &[]).await), failed);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !host.is_healthy() {
        assert!(Instant::now() < deadline, "host never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        seen.insert(backend_of(&get(addr(&p), "/", &[]).await));
    }
    assert_eq!(seen.len(), 2, "both hosts serve again");
    p.shutdown().await;

    // A failing active check answered with the header excludes the host too.
    let p = start_one(
        health_checked(&[a.addr], "/status/503?hcfail=1", 0),
        route(forward()),
    )
    .await;
    let host = &p.cluster(CLUSTER).unwrap().hosts.hosts()[0];
    assert_eq!(
        host.health_flags_text(),
        "/failed_active_hc/excluded_via_immediate_hc_fail"
    );
    p.shutdown().await;

    // Without active health checking the header changes nothing.
    let p = start_one(cluster(&[a.addr, b.addr]), route(forward())).await;
    assert_eq!(get(addr(&p), "/?hcfail=1", &[]).await.status, 200);
    assert!(
        p.cluster(CLUSTER)
            .unwrap()
            .hosts
            .hosts()
            .iter()
            .all(|h| h.is_healthy())
    );
    p.shutdown().await;
}

async fn three_backends() -> (Vec<Backend>, ClusterConfig) {
    let mut backends = Vec::new();
    for name in ["a", "b", "c"] {
        backends.push(Backend::start(name, Behavior::default()).await);
    }
    let eps = backends
        .iter()
        .enumerate()
        .map(|(i, b)| Endpoint::new(b.addr, "default/x", i))
        .collect();
    let mut c = ClusterConfig::new(CLUSTER, eps);
    c.lb = LbPolicy::consistent_hash(65_537).unwrap();
    (backends, c)
}

fn hashed(policy: HashPolicyConfig) -> RouteConfig {
    route(ForwardAction {
        hash_policy: Some(policy),
        ..forward()
    })
}

#[tokio::test]
async fn consistent_hash_on_a_header_is_sticky() {
    let (_backends, c) = three_backends().await;
    let p = start_one(c, hashed(HashPolicyConfig::Header("x-user".into()))).await;
    let first = backend_of(&get(addr(&p), "/", &[("x-user", "alice")]).await);
    for _ in 0..49 {
        let g = get(addr(&p), "/", &[("x-user", "alice")]).await;
        assert_eq!(backend_of(&g), first);
    }
    let mut seen = std::collections::HashSet::new();
    for i in 0..30 {
        let user = format!("user-{i}");
        seen.insert(backend_of(&get(addr(&p), "/", &[("x-user", &user)]).await));
    }
    assert!(seen.len() >= 2, "30 users all on {seen:?}");
    p.shutdown().await;
}

#[tokio::test]
async fn cookie_hash_with_ttl_sets_a_cookie_then_sticks() {
    let (_backends, c) = three_backends().await;
    let policy = HashPolicyConfig::Cookie {
        name: "session".into(),
        ttl: Some(Duration::from_secs(60)),
        attributes: Vec::new(),
    };
    let p = start_one(c, hashed(policy)).await;
    let g = get(addr(&p), "/", &[]).await;
    assert_eq!(g.status, 200);
    let set = g.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(set.starts_with("session=\""), "{set}");
    assert!(set.ends_with("; Max-Age=60; HttpOnly"), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();
    let first = backend_of(&g);
    for _ in 0..20 {
        let g = get(addr(&p), "/", &[("cookie", &cookie)]).await;
        assert_eq!(backend_of(&g), first);
        assert!(g.headers.get("set-cookie").is_none());
    }
    p.shutdown().await;
}

#[tokio::test]
async fn request_over_the_buffer_limit_is_413() {
    let b = Backend::start("x", Behavior::default()).await;
    let r = with(|r| r.request_buffer_limit = Some(16));
    let p = start_one(cluster(&[b.addr]), r).await;
    let mut log = p.subscribe_access_log();
    let g = send(addr(&p), "POST", "/", &[b'x'; 100]).await;
    assert_eq!((g.status, &g.body[..]), (413, &b"Payload Too Large"[..]));
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "-");
    assert_eq!(send(addr(&p), "POST", "/", b"small body").await.status, 200);
    assert_eq!(b.hits(), 1);
    // Envoy's connection manager counts it as `downstream_rq_too_large`.
    assert_eq!(http_stat(&p, "downstream_rq_too_large"), Some(1));
    p.shutdown().await;
}

fn override_rule(codes: Vec<StatusCodeMatch>, action: OverrideAction) -> ResponseOverrideRule {
    ResponseOverrideRule {
        status_codes: codes,
        response_headers: Vec::new(),
        source: OverrideSource::All,
        action,
    }
}

#[tokio::test]
async fn response_override_rewrites_a_404() {
    let b = Backend::start("x", Behavior::default()).await;
    let r = with(|r| {
        r.response_overrides = vec![
            override_rule(
                vec![StatusCodeMatch::Value(404)],
                OverrideAction::Response(OverrideResponse {
                    content_type: Some("text/plain".into()),
                    body: Some("Oops! Your request is not found.".into()),
                    ..OverrideResponse::default()
                }),
            ),
            // Never reached for a 404: the first matching rule wins.
            override_rule(
                vec![StatusCodeMatch::range(400, 499).unwrap()],
                OverrideAction::Response(OverrideResponse {
                    status_code: Some(418),
                    ..OverrideResponse::default()
                }),
            ),
            override_rule(
                vec![StatusCodeMatch::range(500, 502).unwrap()],
                OverrideAction::Redirect(OverrideRedirect {
                    path: Some("/oops?from=500".into()),
                    ..OverrideRedirect::default()
                }),
            ),
        ];
    });
    let p = start_one(cluster(&[b.addr]), r).await;
    let g = get(addr(&p), "/status/404", &[]).await;
    assert_eq!(g.status, 404);
    assert_eq!(g.body, "Oops! Your request is not found.");
    assert_eq!(g.headers.get("content-type").unwrap(), "text/plain");
    assert_eq!(get(addr(&p), "/status/403", &[]).await.status, 418);
    // Untouched statuses stream through.
    assert_eq!(get(addr(&p), "/", &[]).await.body, "x");
    p.shutdown().await;
}

/// Envoy's custom response redirect policy follows the redirect *internally*: the request runs
/// again (as a GET, with the new host and path) and the client gets the target's answer, its
/// status replaced by the redirect's when it is 1xx/2xx; overrides are not applied again, and
/// no Location header is sent. A local reply is never redirected.
#[tokio::test]
async fn response_override_redirect_is_followed_internally() {
    let b = Backend::start("x", Behavior::default()).await;
    let redirect = |path: &str, status| {
        override_rule(
            vec![StatusCodeMatch::range(500, 503).unwrap()],
            OverrideAction::Redirect(OverrideRedirect {
                path: Some(path.into()),
                status_code: status,
                ..OverrideRedirect::default()
            }),
        )
    };
    let r = with(|r| r.response_overrides = vec![redirect("/status/200", None)]);
    let p = start_one(cluster(&[b.addr]), r).await;
    let mut log = p.subscribe_access_log();
    let g = send(addr(&p), "POST", "/status/500", b"payload").await;
    assert_eq!((g.status, &g.body[..]), (302, &b"x"[..]));
    assert!(!g.headers.contains_key("location"));
    assert_eq!(b.hits(), 2, "the original request and the redirect");
    let e = log.recv().await.unwrap();
    assert_eq!((e.status, e.attempts), (302, 2));
    p.shutdown().await;

    // A target answering outside 1xx/2xx keeps its status; overrides do not apply again.
    let r = with(|r| {
        r.response_overrides = vec![redirect("/status/502", Some(301))];
    });
    let p = start_one(cluster(&[b.addr]), r).await;
    let g = get(addr(&p), "/status/500", &[]).await;
    assert_eq!((g.status, &g.body[..]), (502, &b"x"[..]));
    let g = get(addr(&p), "/status/503", &[]).await;
    assert_eq!(g.status, 502);
    p.shutdown().await;

    // Local replies go out unchanged.
    let r = with(|r| r.response_overrides = vec![redirect("/status/200", None)]);
    let p = start_one(health_checked(&[b.addr], "/status/418", 0), r).await;
    let g = get(addr(&p), "/", &[]).await;
    assert_eq!((g.status, &g.body[..]), (503, &b"no healthy upstream"[..]));
    p.shutdown().await;
}

#[tokio::test]
async fn response_override_source_and_header_match() {
    let b = Backend::start("x", Behavior::default()).await;
    let r = with(|r| {
        let mut local = override_rule(
            vec![StatusCodeMatch::Value(503)],
            OverrideAction::Response(OverrideResponse {
                body: Some("local 503".into()),
                set_headers: vec![(
                    HeaderName::from_static("x-override"),
                    HeaderValue::from_static("local"),
                )],
                ..OverrideResponse::default()
            }),
        );
        local.source = OverrideSource::Local;
        let mut by_header = override_rule(
            Vec::new(),
            OverrideAction::Response(OverrideResponse {
                status_code: Some(202),
                ..OverrideResponse::default()
            }),
        );
        by_header.source = OverrideSource::Backend;
        by_header.response_headers = vec![ResponseHeaderMatch {
            name: HeaderName::from_static("x-backend"),
            value: HeaderValueMatch::regex("x+").unwrap(),
        }];
        r.response_overrides = vec![local, by_header];
        r.request_buffer_limit = Some(1);
    });
    let mut c = cluster(&[b.addr]);
    c.tcp_keepalive = Some(TcpKeepalive {
        probes: Some(3),
        idle: Some(Duration::from_secs(30)),
        interval: Some(Duration::from_secs(5)),
    });
    let p = start_one(c, r).await;
    // Upstream 503 is a backend reply: the Local rule leaves it; the header rule rewrites it.
    let g = get(addr(&p), "/status/503", &[]).await;
    assert_eq!((g.status, &g.body[..]), (202, &b"x"[..]));
    // A local reply (413) is not matched by either rule.
    let g = send(addr(&p), "POST", "/", b"too big").await;
    assert_eq!(g.status, 413);
    p.shutdown().await;
}

#[tokio::test]
async fn local_override_rewrites_no_healthy_upstream() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut rule = override_rule(
        vec![StatusCodeMatch::Value(503)],
        OverrideAction::Response(OverrideResponse {
            body: Some("local 503".into()),
            ..OverrideResponse::default()
        }),
    );
    rule.source = OverrideSource::Local;
    let r = with(|r| r.response_overrides = vec![rule]);
    let p = start_one(health_checked(&[b.addr], "/status/418", 0), r).await;
    let mut log = p.subscribe_access_log();
    let g = get(addr(&p), "/", &[]).await;
    assert_eq!((g.status, &g.body[..]), (503, &b"local 503"[..]));
    assert_eq!(g.headers.get("content-type").unwrap(), "text/plain");
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "UH");
    p.shutdown().await;
}

#[tokio::test]
async fn upstream_sockets_get_tcp_keepalive() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let s = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let ka = TcpKeepalive {
        probes: Some(4),
        idle: Some(Duration::from_secs(40)),
        interval: Some(Duration::from_secs(7)),
    };
    crate::proxy::cluster::pool::apply_keepalive(&s, &ka).unwrap();
    let r = socket2::SockRef::from(&s);
    assert!(r.keepalive().unwrap());
    assert_eq!(r.tcp_keepalive_time().unwrap(), Duration::from_secs(40));
    assert_eq!(r.tcp_keepalive_interval().unwrap(), Duration::from_secs(7));
    assert_eq!(r.tcp_keepalive_retries().unwrap(), 4);
}

#[tokio::test]
async fn invalid_feature_config_fails_start() {
    let b = Backend::start("x", Behavior::default()).await;
    let r = with(|r| {
        r.fault = Some(FaultConfig {
            delay: None,
            abort: None,
        });
    });
    let config = crate::proxy::config::ProxyConfig {
        listeners: vec![crate::proxy::config::ListenerConfig {
            name: LISTENER.into(),
            routes: vec![r],
        }],
        clusters: vec![cluster(&[b.addr])],
        seed: 1,
    };
    let err = crate::proxy::Proxy::start(
        config,
        vec![(LISTENER.into(), "127.0.0.1:0".parse().unwrap())],
        None,
    )
    .await
    .err()
    .expect("an empty fault block must be rejected");
    assert!(err.to_string().contains(ROUTE), "{err}");
    assert!(err.to_string().contains("faultInjection"), "{err}");
}

#[tokio::test]
async fn hash_policy_also_picks_the_weighted_cluster() {
    let a = Backend::start("a", Behavior::default()).await;
    let b = Backend::start("b", Behavior::default()).await;
    let clusters: Vec<ClusterConfig> = [("ca", &a), ("cb", &b)]
        .into_iter()
        .map(|(name, be)| {
            let mut c = ClusterConfig::new(name, vec![Endpoint::new(be.addr, name, 0)]);
            c.lb = LbPolicy::consistent_hash(65_537).unwrap();
            c
        })
        .collect();
    let mut action = forward();
    action.backends = ["ca", "cb"]
        .into_iter()
        .map(|c| crate::proxy::config::WeightedCluster {
            cluster: c.into(),
            weight: 1,
        })
        .collect();
    action.hash_policy = Some(HashPolicyConfig::Header("x-user".into()));
    let config = crate::proxy::config::ProxyConfig {
        listeners: vec![crate::proxy::config::ListenerConfig {
            name: LISTENER.into(),
            routes: vec![route(action)],
        }],
        clusters,
        seed: 3,
    };
    let p = crate::proxy::Proxy::start(
        config,
        vec![(LISTENER.into(), "127.0.0.1:0".parse().unwrap())],
        None,
    )
    .await
    .unwrap();
    let mut seen = std::collections::HashSet::new();
    for i in 0..20 {
        let user = format!("user-{i}");
        let first = backend_of(&get(addr(&p), "/", &[("x-user", &user)]).await);
        for _ in 0..4 {
            let again = backend_of(&get(addr(&p), "/", &[("x-user", &user)]).await);
            assert_eq!(again, first, "{user} moved");
        }
        seen.insert(first);
    }
    assert_eq!(seen.len(), 2, "20 users all on {seen:?}");
    p.shutdown().await;
}
