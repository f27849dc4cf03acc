//! The HTTP/1.1 server against raw client bytes: persistence, pipelining, request bodies,
//! `Expect: 100-continue`, HTTP/1.0 clients, malformed requests, response framing and shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::proxy::ProxyHandle;
use crate::proxy::config::{ClusterConfig, Endpoint, ForwardAction, ListenerConfig, ProxyConfig};
use crate::proxy::config::{PathMatch, RouteAction, RouteConfig, RouteMatch, RouteSource};

const LISTENER: &str = "default/eg/http";
const CLUSTER: &str = "httproute/default/echo/rule/0";

/// A backend that answers every request with its body, the request's method in
/// `x-method`, whether it carried `expect` in `x-expect`, its `x-probe` values in
/// `x-probes`; `/stream` answers in two frames of unknown length.
async fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let method = req.method().to_string();
                    let expect = req.headers().contains_key("expect").to_string();
                    let probes: Vec<_> = req.headers().get_all("x-probe").iter().collect();
                    let probes = probes
                        .iter()
                        .map(|v| v.to_str().unwrap())
                        .collect::<Vec<_>>()
                        .join(",");
                    let stream = req.uri().path() == "/stream";
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let body: http_body_util::combinators::BoxBody<Bytes, Infallible> = if stream {
                        let frames = [Bytes::from_static(b"one,"), Bytes::from_static(b"two")]
                            .map(|b| Ok::<_, Infallible>(Frame::data(b)));
                        StreamBody::new(futures_util::stream::iter(frames)).boxed()
                    } else {
                        Full::new(body).boxed()
                    };
                    let mut r = Response::new(body);
                    r.headers_mut().insert("x-method", method.parse().unwrap());
                    r.headers_mut().insert("x-expect", expect.parse().unwrap());
                    r.headers_mut().insert("x-probes", probes.parse().unwrap());
                    Ok::<_, Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

async fn proxy() -> ProxyHandle {
    proxy_to(echo_backend().await).await
}

async fn proxy_to(backend: SocketAddr) -> ProxyHandle {
    let source = RouteSource {
        kind: "HTTPRoute".into(),
        namespace: "default".into(),
        name: "echo".into(),
        rule: 0,
        rule_name: None,
    };
    // `/direct` is answered by the proxy itself, before any request body is read.
    let direct = RouteConfig::new(
        "httproute/default/echo/rule/0/match/1",
        source.clone(),
        RouteMatch {
            path: PathMatch::Exact("/direct".into()),
            ..RouteMatch::default()
        },
        RouteAction::DirectResponse {
            status: http::StatusCode::OK,
            body: Bytes::from_static(b"direct"),
        },
    );
    let route = RouteConfig::new(
        "httproute/default/echo/rule/0/match/0",
        source,
        RouteMatch::default(),
        RouteAction::Forward(ForwardAction::to_cluster(CLUSTER)),
    );
    let config = ProxyConfig {
        listeners: vec![ListenerConfig {
            name: LISTENER.into(),
            routes: vec![direct, route],
        }],
        clusters: vec![ClusterConfig::new(
            CLUSTER,
            vec![Endpoint::new(backend, "default/echo", 0)],
        )],
        seed: 1,
    };
    crate::proxy::Proxy::start(
        config,
        vec![(LISTENER.into(), "127.0.0.1:0".parse().unwrap())],
        None,
    )
    .await
    .unwrap()
}

async fn connect(p: &ProxyHandle) -> TcpStream {
    TcpStream::connect(p.listener_addr(LISTENER).unwrap())
        .await
        .unwrap()
}

/// Connects and sends `bytes`.
async fn send(p: &ProxyHandle, bytes: impl AsRef<[u8]>) -> TcpStream {
    let mut s = connect(p).await;
    s.write_all(bytes.as_ref()).await.unwrap();
    s
}

/// Reads until `text` has appeared `times` times or the connection closes; returns
/// everything read.
async fn read_until(stream: &mut TcpStream, text: &str, times: usize) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while String::from_utf8_lossy(&got).matches(text).count() < times {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("response in time");
    String::from_utf8_lossy(&got).into_owned()
}

/// Everything until the server closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got))
        .await
        .expect("closed in time")
        .expect("read");
    String::from_utf8_lossy(&got).into_owned()
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn keeps_the_connection_and_frames_by_length() {
    let p = proxy().await;
    let mut s = connect(&p).await;
    for i in 0..3 {
        let body = format!("hello {i}");
        let req = format!(
            "POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let got = read_until(&mut s, &body, 1).await;
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        assert_eq!(header(&got, "content-length"), Some("7"), "{got}");
        assert_eq!(header(&got, "x-method"), Some("POST"));
        assert!(header(&got, "date").is_some_and(|d| d.ends_with("GMT")));
        assert_eq!(header(&got, "connection"), None, "persistent by default");
    }
    p.shutdown().await;
}

/// A backend that answers each request head with `response`, bytes as given.
async fn raw_backend(response: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    got.extend_from_slice(&buf[..n]);
                    while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        got.drain(..end + 4);
                        if stream.write_all(response.as_bytes()).await.is_err() {
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
async fn upstream_lines_pass_in_lower_case_without_hop_by_hop_fields() {
    let backend = raw_backend(
        "HTTP/1.1 200 OK\r\nServer: raw\r\nX-Mixed-Case: v\r\nConnection: keep-alive, X-Hop\r\n\
         X-Hop: 1\r\nKeep-Alive: timeout=5\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\
         Content-Length: 2\r\n\r\nok",
    )
    .await;
    let p = proxy_to(backend).await;
    let mut s = send(&p, "GET /x HTTP/1.1\r\nhost: a\r\n\r\n").await;
    let got = read_until(&mut s, "\r\n\r\nok", 1).await;
    let head = got.split("\r\n\r\n").next().unwrap();
    let lines: Vec<&str> = head
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("date:"))
        .collect();
    assert_eq!(
        lines,
        [
            "x-mixed-case: v",
            "set-cookie: a=1",
            "set-cookie: b=2",
            "content-length: 2",
            "server: envoy",
        ],
        "{got}"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let p = proxy().await;
    let reqs = "POST /a HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nfirst\
                POST /b HTTP/1.1\r\nhost: a\r\ncontent-length: 6\r\n\r\nsecond\
                GET /c HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n";
    let mut s = send(&p, reqs).await;
    let got = read_to_close(&mut s).await;
    let first = got.find("first").expect("first");
    let second = got.find("second").expect("second");
    assert!(first < second, "{got}");
    assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 3, "{got}");
    assert!(
        got.ends_with("\r\n\r\n"),
        "the GET's empty body ends it: {got}"
    );
    assert_eq!(got.matches("connection: close").count(), 1, "{got}");
    p.shutdown().await;
}

#[tokio::test]
async fn each_request_on_a_connection_carries_only_its_own_headers() {
    // The connection builds each request's header map in the memory of the one before.
    let p = proxy().await;
    let mut s = connect(&p).await;
    let requests = [
        ("x-probe: a\r\nx-probe: b\r\nx-other: 1\r\n", "a,b"),
        ("", ""),
        ("x-probe: c\r\n", "c"),
    ];
    for (i, (fields, probes)) in requests.into_iter().enumerate() {
        let req = format!("GET /{i} HTTP/1.1\r\nhost: a\r\n{fields}\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let got = read_until(&mut s, "\r\n\r\n", 1).await;
        assert_eq!(header(&got, "x-probes"), Some(probes), "request {i}: {got}");
    }
    p.shutdown().await;
}

#[tokio::test]
async fn chunked_request_bodies_are_decoded() {
    let p = proxy().await;
    let req = "POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n\
               5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\ntrailer: t\r\n\r\n";
    let mut s = send(&p, req).await;
    let got = read_until(&mut s, "hello, world", 1).await;
    assert_eq!(header(&got, "content-length"), Some("12"), "{got}");
    // Split across writes too.
    let (head, rest) = req.split_at(60);
    s.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    s.write_all(rest.as_bytes()).await.unwrap();
    let got = read_until(&mut s, "hello, world", 1).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    p.shutdown().await;
}

#[tokio::test]
async fn expect_100_continue_is_answered_and_not_forwarded() {
    let p = proxy().await;
    let mut s = send(
        &p,
        b"PUT /x HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n",
    )
    .await;
    let interim = read_until(&mut s, "\r\n\r\n", 1).await;
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"data").await.unwrap();
    let got = read_until(&mut s, "data", 1).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert_eq!(header(&got, "x-expect"), Some("false"), "{got}");
    p.shutdown().await;
}

#[tokio::test]
async fn http_1_0_clients_close_unless_they_ask_to_keep_alive() {
    let p = proxy().await;
    let mut s = send(&p, b"GET /stream HTTP/1.0\r\nhost: a\r\n\r\n").await;
    let got = read_to_close(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert_eq!(header(&got, "connection"), Some("close"), "{got}");
    assert_eq!(
        header(&got, "transfer-encoding"),
        None,
        "no chunked for 1.0"
    );
    assert!(got.ends_with("\r\n\r\none,two"), "close-delimited: {got}");

    let mut s = connect(&p).await;
    for _ in 0..2 {
        s.write_all(b"GET /x HTTP/1.0\r\nhost: a\r\nconnection: keep-alive\r\n\r\n")
            .await
            .unwrap();
        let got = read_until(&mut s, "\r\n\r\n", 1).await;
        assert_eq!(header(&got, "connection"), Some("keep-alive"), "{got}");
    }
    p.shutdown().await;
}

#[tokio::test]
async fn streamed_responses_are_chunked_for_http_1_1() {
    let p = proxy().await;
    let mut s = send(&p, b"GET /stream HTTP/1.1\r\nhost: a\r\n\r\n").await;
    let got = read_until(&mut s, "0\r\n\r\n", 1).await;
    assert_eq!(header(&got, "transfer-encoding"), Some("chunked"), "{got}");
    let body = got.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(body, "4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n");
    // HEAD: the head only, whatever the body would have been.
    s.write_all(b"HEAD /x HTTP/1.1\r\nhost: a\r\n\r\nGET /x HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let got = read_until(&mut s, "HTTP/1.1 200", 2).await;
    assert!(got.contains("x-method: HEAD"), "{got}");
    p.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_a_status_and_a_close() {
    let p = proxy().await;
    let cases: [(&[u8], &str); 6] = [
        (b"NOT HTTP AT ALL\r\n\r\n", "400"),
        (
            b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n",
            "400",
        ),
        (b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip\r\n\r\n", "501"),
        (b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1, 2\r\n\r\n", "400"),
        (b"GET / HTTP/2.0\r\nhost: a\r\n\r\n", "400"),
        (b"POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n", "400"),
    ];
    for (bytes, status) in cases {
        let mut s = send(&p, bytes).await;
        let got = read_to_close(&mut s).await;
        assert!(
            got.starts_with(&format!("HTTP/1.1 {status} ")),
            "{}: {got}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(header(&got, "connection"), Some("close"));
    }
    let huge = format!("GET / HTTP/1.1\r\nx-big: {}\r\n\r\n", "a".repeat(70 * 1024));
    let mut s = send(&p, huge).await;
    let got = read_to_close(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 431 "), "{got}");
    // Envoy's connection manager counts each as a protocol error.
    let errors = p
        .stats()
        .get(&format!("http.{LISTENER}.downstream_cx_protocol_error"));
    assert_eq!(errors, Some(cases.len() as u64 + 1));
    p.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_finishes_busy_ones() {
    let p = proxy().await;
    let mut idle = send(&p, b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n").await;
    read_until(&mut idle, "x-method", 1).await;
    let shutdown = tokio::spawn(p.shutdown());
    let rest = read_to_close(&mut idle).await;
    assert!(!rest.contains("HTTP/1.1"), "{rest}");
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown in time")
        .unwrap();
}

#[tokio::test]
async fn an_unread_request_body_closes_the_connection_after_the_reply() {
    // The proxy answers `/direct` without reading the body; the rest of the body is still on
    // the wire, so the connection cannot carry another request.
    let p = proxy().await;
    let mut s = send(
        &p,
        b"POST /direct HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\npartial",
    )
    .await;
    let got = read_to_close(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert_eq!(header(&got, "connection"), Some("close"), "{got}");
    assert!(got.ends_with("direct"), "{got}");
    // A body that did arrive whole keeps the connection.
    let mut s = send(
        &p,
        b"POST /direct HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\nabc",
    )
    .await;
    let got = read_until(&mut s, "direct", 1).await;
    assert_eq!(header(&got, "connection"), None, "{got}");
    p.shutdown().await;
}

#[tokio::test]
async fn a_client_gone_mid_body_leaves_the_proxy_serving() {
    let p = proxy().await;
    let gone = send(
        &p,
        b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\npartial",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(gone);
    let mut s = send(
        &p,
        b"GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    )
    .await;
    let got = read_to_close(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    p.shutdown().await;
}
