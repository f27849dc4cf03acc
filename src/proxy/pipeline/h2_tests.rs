//! Upstream HTTP/2 (h2c, prior knowledge) end to end: which requests go upstream over HTTP/2,
//! and Envoy's circuit-breaker semantics for a multiplexed pool.
//!
//! Envoy's circuit-breaking docs: with HTTP/2 "all requests will be multiplexed over the same
//! connection so [max_pending_requests] will only be hit when no connection is already
//! established"; `max_requests` bounds the requests outstanding to the cluster; and
//! `max_requests_per_connection` still closes a connection after N streams.

use std::num::NonZeroU32;
use std::time::Duration;

use super::tests::{addr, cluster, concurrent_gets, forward, route, slow, start_routes, stat};
use crate::proxy::config::UpstreamProtocol;
use crate::proxy::testing::{Backend, Behavior, blackhole_addr, get, get_h2c};

#[tokio::test]
async fn use_client_protocol_follows_the_downstream_version() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut c = cluster(&[b.addr]);
    c.upstream_protocol = UpstreamProtocol::UseDownstream;
    let p = start_routes(c, vec![route(forward())]).await;
    let h2 = get_h2c(addr(&p), "/").await;
    assert_eq!(h2.status, 200);
    assert_eq!(h2.headers.get("x-upstream-version").unwrap(), "HTTP/2.0");
    let h1 = get(addr(&p), "/", &[]).await;
    assert_eq!(h1.headers.get("x-upstream-version").unwrap(), "HTTP/1.1");
    // One HTTP/2 and one HTTP/1.1 connection: separate pools per protocol.
    assert_eq!(stat(&p, "upstream_cx_total"), 2);
    p.shutdown().await;

    // Without useClientProtocol an HTTP/2 request goes upstream over HTTP/1.1.
    let p = start_routes(cluster(&[b.addr]), vec![route(forward())]).await;
    let h2 = get_h2c(addr(&p), "/").await;
    assert_eq!(h2.headers.get("x-upstream-version").unwrap(), "HTTP/1.1");
    p.shutdown().await;
}

#[tokio::test]
async fn one_h2_connection_multiplexes_concurrent_requests() {
    let b = Backend::start("x", slow(500)).await;
    let mut c = cluster(&[b.addr]);
    c.upstream_protocol = UpstreamProtocol::Http2;
    // One connection is all HTTP/2 needs: the connection limit never makes a request wait.
    c.circuit_breaker.max_connections = 1;
    c.circuit_breaker.max_pending_requests = 0;
    let p = start_routes(c, vec![route(forward())]).await;
    let a = addr(&p);
    // The first request establishes the connection; the rest multiplex on it.
    assert_eq!(get(a, "/", &[]).await.status, 200);
    let tasks: Vec<_> = (0..6)
        .map(|_| tokio::spawn(async move { get(a, "/", &[]).await }))
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.headers.get("x-upstream-version").unwrap(), "HTTP/2.0");
    }
    assert_eq!(b.connections.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(
        b.max_in_flight.load(std::sync::atomic::Ordering::Relaxed),
        6
    );
    assert_eq!(stat(&p, "upstream_cx_total"), 1);
    assert_eq!(stat(&p, "upstream_cx_overflow"), 0);
    assert_eq!(stat(&p, "upstream_rq_pending_total"), 0);
    assert_eq!(stat(&p, "upstream_rq_total"), 7);
    p.shutdown().await;
}

#[tokio::test]
async fn max_parallel_requests_bounds_concurrent_streams() {
    let b = Backend::start("x", slow(600)).await;
    let mut c = cluster(&[b.addr]);
    c.upstream_protocol = UpstreamProtocol::Http2;
    c.circuit_breaker.max_requests = 2;
    let p = start_routes(c, vec![route(forward())]).await;
    let a = addr(&p);
    // Warm the connection so every request below finds it ready.
    assert_eq!(get(a, "/", &[]).await.status, 200);
    let (mut ok, mut overflow) = (0, 0);
    for outcome in concurrent_gets(a, 5).await {
        match outcome {
            (200, false, _) => ok += 1,
            (503, true, took) => {
                assert!(
                    took < Duration::from_millis(250),
                    "overflow is immediate: {took:?}"
                );
                overflow += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, overflow), (2, 3));
    assert_eq!(stat(&p, "upstream_rq_pending_overflow"), 3);
    assert_eq!(stat(&p, "upstream_cx_total"), 1);
    p.shutdown().await;
}

/// While the connection is being established, requests wait as pending (bounded by
/// max_pending_requests) instead of opening connections of their own as HTTP/1.1 does; when
/// the connect fails, the requests pending on it fail too.
#[tokio::test]
async fn requests_pend_on_the_connecting_h2_connection_and_fail_with_it() {
    let (hole, _fillers, _listener) = blackhole_addr().await;
    let mut c = cluster(&[hole]);
    c.upstream_protocol = UpstreamProtocol::Http2;
    c.connect_timeout = Duration::from_millis(800);
    c.circuit_breaker.max_pending_requests = 1;
    let p = start_routes(c, vec![route(forward())]).await;
    let a = addr(&p);
    let mut log = p.subscribe_access_log();
    let first = tokio::spawn(async move { get(a, "/", &[]).await });
    tokio::time::sleep(Duration::from_millis(60)).await;
    let second = tokio::spawn(async move { get(a, "/", &[]).await });
    tokio::time::sleep(Duration::from_millis(60)).await;
    let third = get(a, "/", &[]).await;
    assert_eq!(third.status, 503);
    assert_eq!(third.headers.get("x-envoy-overloaded").unwrap(), "true");
    assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "UO");
    for r in [first.await.unwrap(), second.await.unwrap()] {
        assert_eq!(r.status, 503);
        assert!(
            r.body.ends_with(b"reset reason: connection timeout"),
            "{r:?}"
        );
        assert_eq!(log.recv().await.unwrap().response_flags.to_string(), "UF");
    }
    assert_eq!(stat(&p, "upstream_cx_total"), 1);
    assert_eq!(stat(&p, "upstream_cx_connect_timeout"), 1);
    assert_eq!(stat(&p, "upstream_rq_pending_total"), 1);
    assert_eq!(stat(&p, "upstream_rq_pending_overflow"), 1);
    p.shutdown().await;

    // HTTP/1.1 for comparison: the second request opens a connection of its own.
    let mut c = cluster(&[hole]);
    c.connect_timeout = Duration::from_millis(300);
    c.circuit_breaker.max_pending_requests = 0;
    let p = start_routes(c, vec![route(forward())]).await;
    let a = addr(&p);
    let first = tokio::spawn(async move { get(a, "/", &[]).await });
    tokio::time::sleep(Duration::from_millis(60)).await;
    let second = get(a, "/", &[]).await;
    assert_eq!(second.status, 503);
    assert!(second.body.ends_with(b"reset reason: connection timeout"));
    assert_eq!(first.await.unwrap().status, 503);
    assert_eq!(stat(&p, "upstream_cx_total"), 2);
    assert_eq!(stat(&p, "upstream_rq_pending_total"), 0);
    p.shutdown().await;
}

#[tokio::test]
async fn max_requests_per_connection_counts_h2_streams() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut c = cluster(&[b.addr]);
    c.upstream_protocol = UpstreamProtocol::Http2;
    c.max_requests_per_connection = NonZeroU32::new(2);
    let p = start_routes(c, vec![route(forward())]).await;
    for _ in 0..5 {
        assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    }
    assert_eq!(b.connections.load(std::sync::atomic::Ordering::Relaxed), 3);
    assert_eq!(stat(&p, "upstream_cx_total"), 3);
    assert_eq!(stat(&p, "upstream_cx_max_requests"), 2);
    // The two full connections drained and closed once their streams ended.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stat(&p, "upstream_cx_destroy"), 2);
    assert_eq!(stat(&p, "upstream_cx_active"), 1);
    p.shutdown().await;
}

#[tokio::test]
async fn idle_h2_connections_are_closed() {
    let b = Backend::start("x", Behavior::default()).await;
    let mut c = cluster(&[b.addr]);
    c.upstream_protocol = UpstreamProtocol::Http2;
    c.idle_timeout = Some(Duration::from_millis(150));
    let p = start_routes(c, vec![route(forward())]).await;
    assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(stat(&p, "upstream_cx_idle_timeout"), 1);
    assert_eq!(stat(&p, "upstream_cx_active"), 0);
    // The next request opens a new connection.
    assert_eq!(get(addr(&p), "/", &[]).await.status, 200);
    assert_eq!(stat(&p, "upstream_cx_total"), 2);
    p.shutdown().await;
}
