//! The client against in-test servers: responses, keep-alive, and transport-error classes.

use std::net::SocketAddr;
use std::time::Duration;

use http::Method;

use super::server::{Behavior, Raw, TestServer, refused_addr};
use crate::loadgen::client::{Client, ClientError, Connection, RequestTemplate};
use crate::loadgen::sample::TransportErrorKind;

fn client(target: SocketAddr, timeout: Duration) -> Client {
    let template = RequestTemplate::try_new(
        Method::GET,
        "/payments?x=1",
        "shop.example.com",
        &[("x-user-id".to_owned(), "one".to_owned())],
        "run1",
        3,
    )
    .expect("template");
    Client::new(target, template, timeout)
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn reads_status_and_backend_headers_over_one_kept_alive_connection() {
    let server = TestServer::http(Behavior::Ok {
        backend: "payments",
        replica: 2,
    })
    .await;
    let client = client(server.addr, TIMEOUT);
    let mut conn = Connection::new();
    for seq in 0..20 {
        let info = client.send(&mut conn, seq).await.expect("response");
        assert_eq!(info.status, 200);
        assert_eq!(info.backend.as_deref(), Some("payments"));
        assert_eq!(info.replica, Some(2));
        assert!(!info.overloaded && !info.ratelimited);
    }
    assert!(conn.is_open());
    assert_eq!(
        server.last_request(),
        "GET /payments?x=1 shop.example.com run1-3-19 one"
    );
    assert_eq!(server.request_count(), 20);
    assert_eq!(
        server.connection_count(),
        1,
        "keep-alive reuses the connection"
    );
}

#[tokio::test]
async fn error_statuses_and_envoy_headers_are_responses() {
    for (status, overloaded, ratelimited) in
        [(500, false, false), (503, true, false), (429, false, true)]
    {
        let server = TestServer::http(Behavior::Status(status)).await;
        let client = client(server.addr, TIMEOUT);
        let mut conn = Connection::new();
        let info = client
            .send(&mut conn, 0)
            .await
            .expect("a response, not an error");
        assert_eq!(info.status, status);
        assert_eq!(info.backend, None);
        assert_eq!(
            (info.overloaded, info.ratelimited),
            (overloaded, ratelimited)
        );
    }
}

#[tokio::test]
async fn server_closing_keep_alive_is_not_an_error() {
    let server = TestServer::http(Behavior::CloseAfterResponse).await;
    let client = client(server.addr, TIMEOUT);
    let mut conn = Connection::new();
    for seq in 0..5 {
        let info = client
            .send(&mut conn, seq)
            .await
            .expect("reconnects quietly");
        assert_eq!(info.status, 200);
    }
    assert_eq!(server.connection_count(), 5);
}

#[tokio::test]
async fn closed_connection_is_a_reset() {
    let server = TestServer::raw(Raw::CloseOnRequest).await;
    let client = client(server.addr, TIMEOUT);
    let mut conn = Connection::new();
    assert_eq!(
        client.send(&mut conn, 0).await,
        Err(TransportErrorKind::Reset)
    );
    assert!(!conn.is_open(), "a failed connection is dropped");
    // The next request tries a new connection and fails the same way.
    assert_eq!(
        client.send(&mut conn, 1).await,
        Err(TransportErrorKind::Reset)
    );
    assert_eq!(server.connection_count(), 2);
}

#[tokio::test]
async fn nothing_listening_is_refused() {
    let client = client(refused_addr().await, TIMEOUT);
    let mut conn = Connection::new();
    assert_eq!(
        client.send(&mut conn, 0).await,
        Err(TransportErrorKind::Refused)
    );
}

#[tokio::test]
async fn a_hung_server_times_out_and_the_connection_is_closed() {
    let server = TestServer::raw(Raw::Hang).await;
    let client = client(server.addr, Duration::from_millis(150));
    let mut conn = Connection::new();
    let started = tokio::time::Instant::now();
    assert_eq!(
        client.send(&mut conn, 0).await,
        Err(TransportErrorKind::Timeout)
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(!conn.is_open());
}

#[test]
fn request_templates_are_validated() {
    let bad_path = RequestTemplate::try_new(Method::GET, "payments", "h", &[], "r", 0);
    assert!(matches!(bad_path, Err(ClientError::InvalidPath { .. })));
    let absolute = RequestTemplate::try_new(Method::GET, "http://x/y", "h", &[], "r", 0);
    assert!(matches!(absolute, Err(ClientError::InvalidPath { .. })));
    let bad_header = RequestTemplate::try_new(
        Method::GET,
        "/",
        "h",
        &[("bad name".into(), "v".into())],
        "r",
        0,
    );
    assert!(matches!(bad_header, Err(ClientError::InvalidHeader { .. })));
    let bad_host = RequestTemplate::try_new(Method::GET, "/", "h\nx", &[], "r", 0);
    assert!(matches!(bad_host, Err(ClientError::InvalidHost(_))));
    let ok = RequestTemplate::try_new(Method::GET, "/", "h", &[], "run7", 2).expect("valid");
    assert_eq!(ok.request_id(41), "run7-2-41");
}
