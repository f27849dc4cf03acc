//! Faults applied at run time through the handle.

use std::time::Duration;

use http::StatusCode;
use mock_backends::{Fault, FaultError, LatencyDist};

use crate::util::*;

fn latency(ms: u64) -> Fault {
    Fault::Latency(LatencyDist::Fixed(Duration::from_millis(ms)))
}

#[tokio::test]
async fn latency_fault_adds_delay_until_cleared() {
    let replica = start(config("payments", 0)).await;
    let addr = replica.addr();
    replica.set_faults(vec![latency(300)]).expect("valid");
    let (reply, took) = timed(must_get(addr, "/")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let (_, took) = timed(must_get(addr, "/healthz")).await;
    assert!(
        took < Duration::from_millis(200),
        "health is not delayed: {took:?}"
    );

    // Two latency faults add up.
    replica.add_fault(latency(100)).expect("valid");
    let (_, took) = timed(must_get(addr, "/")).await;
    assert!(took >= Duration::from_millis(400), "{took:?}");

    replica.clear_faults();
    let (_, took) = timed(must_get(addr, "/")).await;
    assert!(took < Duration::from_millis(200), "{took:?}");
}

#[tokio::test]
async fn error_fault_combines_with_latency() {
    let replica = start(config("payments", 0)).await;
    let addr = replica.addr();
    replica
        .set_faults(vec![
            latency(100),
            Fault::Error {
                status: 503,
                rate: 1.0,
            },
        ])
        .expect("valid");
    let (reply, took) = timed(must_get(addr, "/")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.header("x-chaosgate-backend"),
        Some("default/payments")
    );
    assert!(took >= Duration::from_millis(100), "{took:?}");
    // A backend-level error also overrides the /status helper.
    assert_eq!(
        must_get(addr, "/status/200").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(must_get(addr, "/healthz").await.status, StatusCode::OK);
    assert_eq!(replica.stats().injected_errors, 2);

    replica.clear_faults();
    assert_eq!(must_get(addr, "/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn hang_holds_requests_until_cleared() {
    let replica = start(config("payments", 0)).await;
    let addr = replica.addr();
    replica.set_faults(vec![Fault::Hang]).expect("valid");
    assert!(
        get_within(addr, "/", Duration::from_millis(200))
            .await
            .is_none()
    );
    assert!(
        get_within(addr, "/healthz", Duration::from_millis(100))
            .await
            .is_none(),
        "health checks hang too"
    );

    let pending = tokio::spawn(timed(get(addr, "/")));
    assert!(
        eventually(Duration::from_secs(1), || async {
            replica.stats().hanging >= 1
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    replica.clear_faults();
    let (reply, took) = within(pending).await.expect("joins");
    assert_eq!(reply.expect("answered after clear").status, StatusCode::OK);
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(
        eventually(Duration::from_secs(1), || async {
            replica.stats().hanging == 0
        })
        .await
    );
}

#[tokio::test]
async fn slow_body_trickles_at_the_rate() {
    let replica = start(config("payments", 0)).await;
    let addr = replica.addr();
    replica
        .set_faults(vec![Fault::SlowBody {
            bytes_per_second: 1000,
        }])
        .expect("valid");
    let (reply, took) = timed(must_get(addr, "/bytes/400")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.len(), 400);
    assert!(
        took >= Duration::from_millis(380) && took < Duration::from_millis(900),
        "400 bytes at 1000 B/s took {took:?}"
    );
    replica.clear_faults();
    let (_, took) = timed(must_get(addr, "/bytes/400")).await;
    assert!(took < Duration::from_millis(200), "{took:?}");
}

#[tokio::test]
async fn unhealthy_only_fails_the_health_path() {
    let mut cfg = config("payments", 0);
    cfg.health_path = "/ready".into();
    let replica = start(cfg).await;
    let addr = replica.addr();
    replica.set_faults(vec![Fault::Unhealthy]).expect("valid");
    assert_eq!(
        must_get(addr, "/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(must_get(addr, "/").await.status, StatusCode::OK);
    assert_eq!(
        must_get(addr, "/healthz").await.status,
        StatusCode::OK,
        "not the health path"
    );
    replica.clear_faults();
    assert_eq!(must_get(addr, "/ready").await.status, StatusCode::OK);
}

#[tokio::test]
async fn kill_refuses_connects_and_restarts_fresh_on_the_same_port() {
    let replica = start(config("payments", 0)).await;
    let addr = replica.addr();
    let mut open = Conn::h1(addr).await.expect("connects");
    assert_eq!(
        open.get(addr, "/").await.expect("answers").status,
        StatusCode::OK
    );
    replica.set_faults(vec![latency(1000)]).expect("valid");
    let in_flight = tokio::spawn(get(addr, "/"));
    assert!(
        eventually(Duration::from_secs(1), || async {
            replica.stats().in_flight == 1
        })
        .await
    );

    replica.add_fault(Fault::Kill).expect("valid");
    assert!(eventually(Duration::from_secs(1), || async { refused(addr).await }).await);
    assert!(
        within(in_flight).await.expect("joins").is_err(),
        "in-flight request is dropped"
    );
    assert!(
        open.get(addr, "/").await.is_err(),
        "open connection is dropped"
    );
    let stats = replica.stats();
    assert!(!stats.up);
    assert!(
        eventually(Duration::from_secs(1), || async {
            replica.stats().active_connections == 0
        })
        .await
    );

    replica.clear_faults();
    assert!(eventually(Duration::from_secs(1), || async { !refused(addr).await }).await);
    let (reply, took) = timed(must_get(addr, "/")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        took < Duration::from_millis(500),
        "latency fault is gone too: {took:?}"
    );
    let stats = replica.stats();
    assert!(stats.up);
    assert_eq!(stats.restarts, 1);
    assert_eq!(replica.addr(), addr);
}

#[tokio::test]
async fn invalid_faults_change_nothing() {
    let replica = start(config("payments", 0)).await;
    replica.set_faults(vec![Fault::Unhealthy]).expect("valid");
    assert_eq!(
        replica.set_faults(vec![
            Fault::Hang,
            Fault::Error {
                status: 503,
                rate: 2.0
            }
        ]),
        Err(FaultError::InvalidRate(2.0))
    );
    assert_eq!(
        replica.add_fault(Fault::SlowBody {
            bytes_per_second: 0
        }),
        Err(FaultError::ZeroRate)
    );
    assert_eq!(replica.faults(), vec![Fault::Unhealthy]);
    replica.add_fault(Fault::Hang).expect("valid");
    assert_eq!(replica.faults(), vec![Fault::Unhealthy, Fault::Hang]);
}

/// Whether the error chain holds an `ECONNRESET`.
fn is_reset(error: &BoxError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionReset;
        }
        source = error.source();
    }
    false
}

#[tokio::test]
async fn reset_answers_requests_with_a_tcp_reset() {
    let replica = start(config("payments", 0)).await;
    let addr = replica.addr();
    let mut h2 = Conn::h2(addr).await.expect("connects");
    replica.set_faults(vec![Fault::Reset]).expect("valid");
    let error = get(addr, "/").await.expect_err("reset");
    assert!(is_reset(&error), "{error:?}");
    let error = get(addr, "/healthz")
        .await
        .expect_err("health checks are reset too");
    assert!(is_reset(&error), "{error:?}");
    assert!(h2.get(addr, "/").await.is_err(), "h2 connection is reset");
    assert_eq!(replica.stats().resets, 3);

    replica.clear_faults();
    assert_eq!(must_get(addr, "/").await.status, StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(1), || async {
            replica.stats().active_connections == 0
        })
        .await
    );
}
