//! The HTTP/1.1 upstream client against scripted servers: framing, keep-alive, interim
//! responses, split reads, and the failures the pipeline tells apart.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::codec::{ChunkedDecoder, Decoded, Framing, FramingError, parse_head};
use super::{BodyState, Connection, ExchangeError};

fn head(
    bytes: &[u8],
    head_request: bool,
) -> Result<Option<super::codec::ResponseHead>, FramingError> {
    parse_head(&mut BytesMut::from(bytes), head_request)
}

fn framing(bytes: &[u8]) -> (Framing, bool) {
    let h = head(bytes, false).unwrap().unwrap();
    (h.framing, h.keep_alive)
}

#[test]
fn framing_follows_rfc_9112() {
    assert_eq!(
        framing(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"),
        (Framing::Length(5), true)
    );
    assert_eq!(
        framing(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        (Framing::Empty, true)
    );
    assert_eq!(
        framing(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n"),
        (Framing::Chunked, true)
    );
    // A coding that does not end in chunked, or no length at all: until close.
    assert_eq!(
        framing(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n"),
        (Framing::UntilClose, false)
    );
    assert_eq!(
        framing(b"HTTP/1.1 200 OK\r\n\r\n"),
        (Framing::UntilClose, false)
    );
    // Both: chunked wins and the connection is not reused.
    assert_eq!(
        framing(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n"),
        (Framing::Chunked, false)
    );
    for bodiless in [
        &b"HTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n"[..],
        b"HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n",
    ] {
        assert_eq!(framing(bodiless), (Framing::Empty, true));
    }
    let h = head(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", true)
        .unwrap()
        .unwrap();
    assert_eq!(h.framing, Framing::Empty, "a HEAD response has no body");
}

#[test]
fn persistence_follows_version_and_connection() {
    assert!(!framing(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n").1);
    assert!(!framing(b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n").1);
    assert!(framing(b"HTTP/1.0 200 OK\r\nconnection: Keep-Alive\r\ncontent-length: 1\r\n\r\n").1);
}

#[test]
fn bad_heads_are_refused() {
    assert_eq!(
        head(b"HTTP/1.1 200 OK\r\ncontent-len", false)
            .unwrap()
            .map(|_| ()),
        None
    );
    assert_eq!(
        head(b"HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\n", false).err(),
        Some(FramingError::ContentLength)
    );
    assert_eq!(
        head(b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", false).err(),
        Some(FramingError::ContentLength)
    );
    assert_eq!(
        head(b"NOT HTTP\r\n\r\n", false).err(),
        Some(FramingError::Head)
    );
    let mut huge = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
    huge.resize(super::codec::MAX_HEAD_BYTES + 10, b'a');
    assert_eq!(head(&huge, false).err(), Some(FramingError::HeadTooLarge));
    // Agreeing repeated lengths are one length.
    assert_eq!(
        framing(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n").0,
        Framing::Length(2)
    );
}

#[test]
fn header_values_are_kept_and_the_head_is_consumed() {
    let mut buf = BytesMut::from(&b"HTTP/1.1 503 Service Unavailable\r\nX-Name: a b \r\nx-name: c\r\ncontent-length: 2\r\n\r\nhi"[..]);
    let h = parse_head(&mut buf, false).unwrap().unwrap();
    assert_eq!(h.status, StatusCode::SERVICE_UNAVAILABLE);
    let map = h.headers.into_map();
    let values: Vec<_> = map.get_all("x-name").iter().collect();
    assert_eq!(values, ["a b", "c"]);
    assert_eq!(&buf[..], b"hi");
}

/// Decodes `wire` fed `step` bytes at a time; returns the data and the trailers seen.
fn decode_chunked(
    wire: &[u8],
    step: usize,
) -> Result<(Vec<u8>, Option<http::HeaderMap>), FramingError> {
    let mut decoder = ChunkedDecoder::default();
    let mut buf = BytesMut::new();
    let (mut data, mut trailers) = (Vec::new(), None);
    let mut fed = 0;
    loop {
        match decoder.decode(&mut buf)? {
            Decoded::Data(d) => data.extend_from_slice(&d),
            Decoded::Trailers(t) => {
                trailers = Some(t);
            }
            Decoded::End => return Ok((data, trailers)),
            Decoded::NeedMore if fed >= wire.len() => {
                panic!("decoder wants more than the wire has")
            }
            Decoded::NeedMore => {
                let end = (fed + step).min(wire.len());
                buf.extend_from_slice(&wire[fed..end]);
                fed = end;
            }
        }
        if trailers.is_some() {
            assert!(decoder.is_done());
            return Ok((data, trailers));
        }
    }
}

#[test]
fn chunked_bodies_decode_whatever_the_read_sizes() {
    let wire = b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-sum: 42\r\nx-more:  b\r\n\r\n";
    for step in [1, 2, 3, 7, wire.len()] {
        let (data, trailers) = decode_chunked(wire, step).unwrap();
        assert_eq!(data, b"helloabcdefghijklmnopqrstuvwxyz", "step {step}");
        let trailers = trailers.expect("trailers");
        assert_eq!(trailers["x-sum"], "42");
        assert_eq!(trailers["x-more"], "b");
    }
    let (data, trailers) = decode_chunked(b"3\r\nabc\r\n0\r\n\r\n", 1).unwrap();
    assert_eq!((data.as_slice(), trailers), (&b"abc"[..], None));
}

#[test]
fn broken_chunked_bodies_are_errors() {
    for wire in [
        &b"zz\r\nabc\r\n0\r\n\r\n"[..],
        b"3\r\nabcXY0\r\n\r\n",
        b"\r\n",
        b"10000000000000000\r\n",
    ] {
        assert_eq!(
            decode_chunked(wire, 4).err(),
            Some(FramingError::Chunked),
            "{wire:?}"
        );
    }
}

/// A server that answers each accepted connection with `script`: for every request it reads
/// a full head (up to the blank line), writes the next response's pieces (pausing between
/// them), and closes after the last response.
async fn scripted(
    script: Vec<Vec<&'static [u8]>>,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut requests = Vec::new();
        for response in script {
            let mut seen = Vec::new();
            while !seen.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                    return requests;
                }
                seen.push(byte[0]);
            }
            requests.push(String::from_utf8(seen).unwrap());
            for piece in response {
                socket.write_all(piece).await.unwrap();
                socket.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        requests
    });
    (addr, task)
}

async fn connect(addr: std::net::SocketAddr) -> Connection {
    Connection::new(TcpStream::connect(addr).await.unwrap())
}

fn get(out: &mut Vec<u8>) {
    out.extend_from_slice(b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n");
}

/// Reads the body of the exchange's response through `poll_body`.
async fn read_body(conn: &mut Connection, mut state: BodyState) -> Result<Vec<u8>, ExchangeError> {
    let mut data = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| conn.poll_body(&mut state, cx)).await {
        if let Ok(d) = frame?.into_data() {
            data.extend_from_slice(&d);
        }
    }
    Ok(data)
}

#[tokio::test]
async fn keep_alive_carries_requests_with_heads_split_across_reads() {
    let (addr, server) = scripted(vec![
        vec![
            b"HTTP/1.1 200",
            b" OK\r\ncontent-le",
            b"ngth: 5\r\n\r\nhel",
            b"lo",
        ],
        vec![
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        ],
        vec![
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n",
            b"0\r\n\r\n",
        ],
    ])
    .await;
    let mut conn = connect(addr).await;
    let (h, state) = conn.exchange(get, &Bytes::new(), false).await.unwrap();
    assert!(h.keep_alive && h.status == StatusCode::OK);
    assert_eq!(read_body(&mut conn, state).await.unwrap(), b"hello");
    assert!(conn.is_usable());

    let body = Bytes::from_static(b"payload");
    let post =
        |out: &mut Vec<u8>| out.extend_from_slice(b"POST /x HTTP/1.1\r\ncontent-length: 7\r\n\r\n");
    let (h, state) = conn.exchange(post, &body, false).await.unwrap();
    assert_eq!(h.status, StatusCode::CREATED, "the 100 Continue is skipped");
    assert_eq!(read_body(&mut conn, state).await.unwrap(), b"ok");

    let (_, state) = conn.exchange(get, &Bytes::new(), false).await.unwrap();
    assert_eq!(read_body(&mut conn, state).await.unwrap(), b"ab");
    let requests = server.await.unwrap();
    assert_eq!(requests.len(), 3);
    assert!(requests[1].starts_with("POST /x"), "{}", requests[1]);
}

#[tokio::test]
async fn a_body_until_close_ends_with_the_connection() {
    let (addr, _server) = scripted(vec![vec![b"HTTP/1.1 200 OK\r\n\r\nall ", b"of it"]]).await;
    let mut conn = connect(addr).await;
    let (h, state) = conn.exchange(get, &Bytes::new(), false).await.unwrap();
    assert!(!h.keep_alive);
    assert_eq!(read_body(&mut conn, state).await.unwrap(), b"all of it");
}

#[tokio::test]
async fn the_failures_are_told_apart() {
    // Closed before any response byte.
    let (addr, _server) = scripted(vec![vec![]]).await;
    let mut conn = connect(addr).await;
    let err = conn.exchange(get, &Bytes::new(), false).await.unwrap_err();
    assert!(matches!(err, ExchangeError::Closed), "{err:?}");

    // Closed in the middle of a body.
    let (addr, _server) = scripted(vec![vec![
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc",
    ]])
    .await;
    let mut conn = connect(addr).await;
    let (_, state) = conn.exchange(get, &Bytes::new(), false).await.unwrap();
    assert!(matches!(
        read_body(&mut conn, state).await,
        Err(ExchangeError::Closed)
    ));

    // Garbage instead of a response.
    let (addr, _server) = scripted(vec![vec![b"SSH-2.0-OpenSSH\r\n\r\n"]]).await;
    let mut conn = connect(addr).await;
    let err = conn.exchange(get, &Bytes::new(), false).await.unwrap_err();
    assert!(
        matches!(err, ExchangeError::Framing(FramingError::Head)),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_idle_connection_the_upstream_closed_is_not_usable() {
    let (addr, server) =
        scripted(vec![vec![b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"]]).await;
    let mut conn = connect(addr).await;
    let (_, state) = conn.exchange(get, &Bytes::new(), false).await.unwrap();
    assert!(state.is_done());
    assert!(conn.is_usable());
    // The script ends: the server closes its side.
    server.await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while conn.is_usable() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "close never noticed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_large_request_body_follows_its_head() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Bytes::from(vec![b'z'; 100_000]);
    let expected = body.len();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let head = b"PUT /big HTTP/1.1\r\ncontent-length: 100000\r\n\r\n";
        while seen.len() < head.len() + expected {
            let mut chunk = [0u8; 8192];
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            seen.extend_from_slice(&chunk[..n]);
        }
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        seen
    });
    let mut conn = connect(addr).await;
    let put = |out: &mut Vec<u8>| {
        out.extend_from_slice(b"PUT /big HTTP/1.1\r\ncontent-length: 100000\r\n\r\n")
    };
    let (h, _) = conn.exchange(put, &body, false).await.unwrap();
    assert_eq!(h.status, StatusCode::OK);
    let seen = server.await.unwrap();
    assert!(seen.ends_with(&body));
}

#[tokio::test]
async fn bodies_collect_through_the_http_body_trait() {
    // The response body type the pipeline streams downstream is exercised end to end by the
    // pipeline tests; here only that a Frame stream collects.
    let (addr, _server) = scripted(vec![vec![
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n0\r\nx-t: 1\r\n\r\n",
    ]])
    .await;
    let mut conn = connect(addr).await;
    let (_, mut state) = conn.exchange(get, &Bytes::new(), false).await.unwrap();
    let body = http_body_util::StreamBody::new(futures_util::stream::poll_fn(move |cx| {
        conn.poll_body(&mut state, cx)
    }));
    let collected = body.collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-t"], "1");
    assert_eq!(collected.to_bytes(), "a");
}

#[test]
fn hop_by_hop_framing_is_consumed_by_the_codec() {
    let h = head(
        b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\ntransfer-encoding: chunked\r\nx-app: 1\r\n\r\n",
        false,
    )
    .unwrap()
    .unwrap();
    assert_eq!(h.framing, Framing::Chunked);
    assert_eq!(h.headers.into_map().len(), 1);
    // A Connection header naming other fields stays for the response cleaning to act on.
    let h = head(
        b"HTTP/1.1 200 OK\r\nconnection: close, x-hop\r\nx-hop: 1\r\ncontent-length: 0\r\n\r\n",
        false,
    )
    .unwrap()
    .unwrap();
    assert!(!h.keep_alive);
    let named = |n| h.headers.contains(&http::HeaderName::from_static(n));
    assert!(named("connection") && named("x-hop"));
}
