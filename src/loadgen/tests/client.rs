//! The client against in-test servers: responses, keep-alive, and transport-error classes.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use http::Method;
use tokio_util::sync::CancellationToken;

use super::server::{AfterReply, Behavior, Raw, TestServer, refused_addr};
use crate::loadgen::client::{Client, ClientError, Connection, RequestTemplate};
use crate::loadgen::engine::LoadMode;
use crate::loadgen::sample::TransportErrorKind;
use crate::loadgen::standalone::{resolve_url, run_standalone};

fn client(target: SocketAddr, timeout: Duration) -> Client {
    client_with(Method::GET, target, timeout)
}

fn client_with(method: Method, target: SocketAddr, timeout: Duration) -> Client {
    let template = RequestTemplate::try_new(
        method,
        "/payments?x=1",
        "shop.example.com",
        &[("x-user-id".to_owned(), "one".to_owned())],
        Some("run1"),
        3,
    )
    .expect("template");
    Client::new(target, template, timeout)
}

const TIMEOUT: Duration = Duration::from_secs(5);

/// A raw server answering every request with `bytes` in one write, then `then`.
async fn replying(bytes: &'static [u8], then: AfterReply) -> TestServer {
    TestServer::raw(Raw::Reply {
        bytes,
        trickle: false,
        then,
    })
    .await
}

/// Sends requests `0..count` on one connection slot, each expected to get `status`.
async fn expect_statuses(client: &Client, conn: &mut Connection, count: u64, status: u16) {
    for seq in 0..count {
        let info = client.send(conn, seq).await;
        assert_eq!(info.map(|i| i.status), Ok(status), "request {seq}");
    }
}

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

#[tokio::test]
async fn the_request_head_is_what_hyper_sent() {
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    for method in [Method::GET, Method::POST] {
        let server = replying(OK, AfterReply::KeepOpen).await;
        let client = client_with(method.clone(), server.addr, TIMEOUT);
        let mut conn = Connection::new();
        expect_statuses(&client, &mut conn, 8, 200).await;
        // No body, so no content-length or transfer-encoding, even for POST.
        assert_eq!(
            server.last_request(),
            format!(
                "{method} /payments?x=1 HTTP/1.1\r\nhost: shop.example.com\r\n\
                 x-user-id: one\r\nx-request-id: run1-3-7\r\n\r\n"
            )
        );
        assert_eq!(server.connection_count(), 1);
    }
}

#[tokio::test]
async fn without_a_request_id_prefix_requests_carry_only_the_given_headers() {
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    let server = replying(OK, AfterReply::KeepOpen).await;
    let headers = [("x-request-id".to_owned(), "mine".to_owned())];
    let template =
        RequestTemplate::try_new(Method::GET, "/", "h", &headers, None, 0).expect("template");
    assert_eq!(template.request_id(3), None);
    let client = Client::new(server.addr, template, TIMEOUT);
    let mut conn = Connection::new();
    expect_statuses(&client, &mut conn, 3, 200).await;
    // The user's own id goes out as given, and nothing is appended to it.
    assert_eq!(
        server.last_request(),
        "GET / HTTP/1.1\r\nhost: h\r\nx-request-id: mine\r\n\r\n"
    );
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn chunked_bodies_with_extensions_and_trailers_keep_the_connection() {
    let server = replying(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Chaosgate-Backend: chunky\r\n\r\n\
          5;name=\"a;b\"\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n\
          0;last\r\nx-trailer: yes\r\nx-other: 2\r\n\r\n",
        AfterReply::KeepOpen,
    )
    .await;
    let client = client(server.addr, TIMEOUT);
    let mut conn = Connection::new();
    for seq in 0..3 {
        let info = client.send(&mut conn, seq).await.expect("response");
        assert_eq!(info.status, 200);
        assert_eq!(info.backend.as_deref(), Some("chunky"));
    }
    assert!(conn.is_open());
    assert_eq!(server.request_count(), 3);
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn a_close_delimited_body_ends_the_connection() {
    let server = replying(
        b"HTTP/1.1 200 OK\r\nx-chaosgate-replica: 4\r\n\r\nall of this is body, to the close",
        AfterReply::Close,
    )
    .await;
    let client = client(server.addr, TIMEOUT);
    let mut conn = Connection::new();
    for seq in 0..3 {
        let info = client.send(&mut conn, seq).await.expect("response");
        assert_eq!((info.status, info.replica), (200, Some(4)));
        assert!(
            !conn.is_open(),
            "a close-delimited body leaves nothing to reuse"
        );
    }
    assert_eq!(server.connection_count(), 3);
}

#[tokio::test]
async fn connection_close_is_honoured_even_if_the_server_keeps_the_socket() {
    // The server would never answer a second request on the connection.
    let server = replying(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 2\r\n\r\nok",
        AfterReply::Hang,
    )
    .await;
    let client = client(server.addr, Duration::from_secs(2));
    let mut conn = Connection::new();
    expect_statuses(&client, &mut conn, 3, 200).await;
    assert!(!conn.is_open());
    assert_eq!(server.connection_count(), 3);
}

#[tokio::test]
async fn an_http_1_0_response_without_keep_alive_is_not_reused() {
    let server = replying(
        b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok",
        AfterReply::Hang,
    )
    .await;
    let client = client(server.addr, Duration::from_secs(2));
    let mut conn = Connection::new();
    expect_statuses(&client, &mut conn, 2, 200).await;
    assert_eq!(server.connection_count(), 2);
}

#[tokio::test]
async fn a_server_closing_an_idle_connection_is_not_an_error() {
    // A keep-alive response, then the server closes the connection anyway.
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    for method in [Method::GET, Method::POST] {
        let server = replying(OK, AfterReply::Close).await;
        let client = client_with(method.clone(), server.addr, TIMEOUT);
        let mut conn = Connection::new();
        for seq in 0..6 {
            let idle = tokio::time::sleep(Duration::from_millis(20));
            if method == Method::POST || seq % 2 == 0 {
                // The close arrives while idle and is seen before the next request.
                idle.await;
            }
            // Otherwise a GET goes out at once; the close shows up as an empty read, and the
            // request is sent again on a new connection.
            let info = client.send(&mut conn, seq).await;
            assert_eq!(info.map(|i| i.status), Ok(200), "{method} {seq}");
        }
        assert_eq!(server.connection_count(), 6, "{method}");
    }
}

#[tokio::test]
async fn a_reused_connection_closed_under_a_request_is_retried_only_if_idempotent() {
    // Every connection answers one request and drops the next one unanswered.
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    let server = replying(OK, AfterReply::CloseOnNextRequest).await;
    let client = client(server.addr, TIMEOUT);
    let mut conn = Connection::new();
    expect_statuses(&client, &mut conn, 4, 200).await;
    assert_eq!(server.connection_count(), 4);
    assert_eq!(server.request_count(), 7, "three GETs were sent twice");

    // A POST may have had its effect: it is not sent again (RFC 9110 §9.2.2).
    let server = replying(OK, AfterReply::CloseOnNextRequest).await;
    let client = client_with(Method::POST, server.addr, TIMEOUT);
    let mut conn = Connection::new();
    assert_eq!(client.send(&mut conn, 0).await.map(|i| i.status), Ok(200));
    assert_eq!(
        client.send(&mut conn, 1).await,
        Err(TransportErrorKind::Reset)
    );
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let server = replying(
        b"HTTP/1.1 100 Continue\r\n\r\n\
          HTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\n\
          HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
        AfterReply::KeepOpen,
    )
    .await;
    let client = client(server.addr, TIMEOUT);
    let mut conn = Connection::new();
    expect_statuses(&client, &mut conn, 3, 201).await;
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn a_response_trickling_in_byte_by_byte_is_read_whole() {
    let server = TestServer::raw(Raw::Reply {
        bytes:
            b"HTTP/1.1 200 OK\r\nx-chaosgate-backend: slow\r\ntransfer-encoding: chunked\r\n\r\n\
                 3\r\nabc\r\n0\r\n\r\n",
        trickle: true,
        then: AfterReply::KeepOpen,
    })
    .await;
    let client = client(server.addr, TIMEOUT);
    let mut conn = Connection::new();
    for seq in 0..2 {
        let info = client.send(&mut conn, seq).await.expect("response");
        assert_eq!(info.backend.as_deref(), Some("slow"));
    }
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn head_requests_and_204_304_responses_have_no_body() {
    // A body would never come: reading one would time out.
    let cases: [(Method, &[u8], u16); 3] = [
        (
            Method::HEAD,
            b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n",
            200,
        ),
        (Method::GET, b"HTTP/1.1 204 No Content\r\n\r\n", 204),
        (
            Method::GET,
            b"HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n",
            304,
        ),
    ];
    for (method, reply, status) in cases {
        let server = replying(reply, AfterReply::KeepOpen).await;
        let client = client_with(method, server.addr, Duration::from_secs(2));
        let mut conn = Connection::new();
        expect_statuses(&client, &mut conn, 3, status).await;
        assert_eq!(server.connection_count(), 1, "{status}");
    }
}

#[tokio::test]
async fn the_end_of_the_stream_inside_a_body_is_a_reset() {
    for reply in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort"[..],
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
        b"HTTP/1.1 200 OK\r\ncontent-len",
    ] {
        let server = replying(reply, AfterReply::Close).await;
        let client = client(server.addr, TIMEOUT);
        let mut conn = Connection::new();
        assert_eq!(
            client.send(&mut conn, 0).await,
            Err(TransportErrorKind::Reset)
        );
        assert!(!conn.is_open());
    }
}

#[tokio::test]
async fn a_body_that_stops_coming_times_out() {
    let server = replying(
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort",
        AfterReply::Hang,
    )
    .await;
    let client = client(server.addr, Duration::from_millis(150));
    let mut conn = Connection::new();
    assert_eq!(
        client.send(&mut conn, 0).await,
        Err(TransportErrorKind::Timeout)
    );
    assert!(!conn.is_open());
}

#[tokio::test]
async fn malformed_responses_are_other_errors() {
    for reply in [
        &b"garbage\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: 2, 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ] {
        let server = replying(reply, AfterReply::Hang).await;
        let client = client(server.addr, Duration::from_secs(2));
        let mut conn = Connection::new();
        assert_eq!(
            client.send(&mut conn, 0).await,
            Err(TransportErrorKind::Other),
            "{}",
            String::from_utf8_lossy(reply)
        );
        assert!(!conn.is_open());
    }
}

#[test]
fn request_templates_are_validated() {
    let bad_path = RequestTemplate::try_new(Method::GET, "payments", "h", &[], Some("r"), 0);
    assert!(matches!(bad_path, Err(ClientError::InvalidPath { .. })));
    let absolute = RequestTemplate::try_new(Method::GET, "http://x/y", "h", &[], Some("r"), 0);
    assert!(matches!(absolute, Err(ClientError::InvalidPath { .. })));
    let bad_header = RequestTemplate::try_new(
        Method::GET,
        "/",
        "h",
        &[("bad name".into(), "v".into())],
        Some("r"),
        0,
    );
    assert!(matches!(bad_header, Err(ClientError::InvalidHeader { .. })));
    let bad_host = RequestTemplate::try_new(Method::GET, "/", "h\nx", &[], Some("r"), 0);
    assert!(matches!(bad_host, Err(ClientError::InvalidHost(_))));
    let ok = RequestTemplate::try_new(Method::GET, "/", "h", &[], Some("run7"), 2).expect("valid");
    assert_eq!(ok.request_id(41).as_deref(), Some("run7-2-41"));
    let bad_prefix = RequestTemplate::try_new(Method::GET, "/", "h", &[], Some("r\n"), 0);
    assert!(matches!(
        bad_prefix,
        Err(ClientError::InvalidRequestIdPrefix(_))
    ));
}

#[tokio::test]
async fn the_standalone_load_adds_no_request_id() {
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    let server = replying(OK, AfterReply::KeepOpen).await;
    let target = resolve_url(&format!("http://{}/x", server.addr))
        .await
        .expect("url");
    let mode = LoadMode::Closed {
        concurrency: NonZeroUsize::MIN,
    };
    let summary = run_standalone(
        target,
        mode,
        Duration::from_millis(200),
        None,
        TIMEOUT,
        CancellationToken::new(),
    )
    .await
    .expect("load");
    assert!(summary.responses > 0);
    assert_eq!(
        server.last_request(),
        format!("GET /x HTTP/1.1\r\nhost: {}\r\n\r\n", server.addr)
    );
}
