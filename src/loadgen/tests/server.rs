//! In-test servers on 127.0.0.1:0 with handles (address, counters, shutdown on drop).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::{CancellationToken, DropGuard};

/// How the HTTP server answers.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// 200 with mock-backend headers and a small body.
    Ok { backend: &'static str, replica: u16 },
    /// This status, with `x-envoy-overloaded: true` when it is 503.
    Status(u16),
    /// 200, but a request arriving in `[from, until)` is held until `until`.
    StallBetween { from: Instant, until: Instant },
    /// 200 with `connection: close` (the server ends keep-alive after each response).
    CloseAfterResponse,
}

/// A running server; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicU64>,
    pub connections: Arc<AtomicU64>,
    /// `method path host x-request-id x-user-id` of the latest request (a raw server: its
    /// whole head, as received).
    pub last_request: Arc<Mutex<String>>,
    _stop: DropGuard,
}

/// A raw TCP server that misbehaves below HTTP, or answers with exact bytes.
#[derive(Debug, Clone, Copy)]
pub enum Raw {
    /// Reads the request, then closes without answering.
    CloseOnRequest,
    /// Reads the request and never answers (until the server is dropped).
    Hang,
    /// Answers each request on a connection with `bytes` (one write, or one byte per write a
    /// millisecond apart when `trickle`), then does what `then` says.
    Reply {
        bytes: &'static [u8],
        trickle: bool,
        then: AfterReply,
    },
}

/// What a [`Raw::Reply`] server does after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterReply {
    /// Waits for the next request on the same connection.
    KeepOpen,
    /// Closes the connection.
    Close,
    /// Keeps the connection open but never answers again.
    Hang,
    /// Reads the next request, then closes without answering it.
    CloseOnNextRequest,
}

impl TestServer {
    /// Starts an HTTP/1.1 server with `behavior`.
    pub async fn http(behavior: Behavior) -> TestServer {
        let listener = bind().await;
        let addr = listener.local_addr().expect("local addr");
        let stop = CancellationToken::new();
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let last_request = Arc::new(Mutex::new(String::new()));
        let (reqs, conns, token) = (requests.clone(), connections.clone(), stop.clone());
        let last = last_request.clone();
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    () = token.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                conns.fetch_add(1, Ordering::Relaxed);
                let (behavior, reqs, token) = (behavior.clone(), reqs.clone(), token.clone());
                let last = last.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        reqs.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut last) = last.lock() {
                            *last = describe(&req);
                        }
                        respond(behavior.clone(), req)
                    });
                    let conn =
                        http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        () = token.cancelled() => {}
                        _ = conn => {}
                    }
                });
            }
        });
        TestServer {
            addr,
            requests,
            connections,
            last_request,
            _stop: stop.drop_guard(),
        }
    }

    /// Starts a raw TCP server.
    pub async fn raw(kind: Raw) -> TestServer {
        let listener = bind().await;
        let addr = listener.local_addr().expect("local addr");
        let stop = CancellationToken::new();
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let last_request = Arc::new(Mutex::new(String::new()));
        let (reqs, conns, token) = (requests.clone(), connections.clone(), stop.clone());
        let last = last_request.clone();
        tokio::spawn(async move {
            loop {
                let mut stream = tokio::select! {
                    () = token.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                conns.fetch_add(1, Ordering::Relaxed);
                let (reqs, token, last) = (reqs.clone(), token.clone(), last.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = token.cancelled() => {}
                        () = serve_raw(kind, &mut stream, &reqs, &last) => {}
                    }
                });
            }
        });
        TestServer {
            addr,
            requests,
            connections,
            last_request,
            _stop: stop.drop_guard(),
        }
    }

    pub fn last_request(&self) -> String {
        self.last_request
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn connection_count(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

/// One raw connection; returns when the server closes it (or hangs forever).
async fn serve_raw(
    kind: Raw,
    stream: &mut TcpStream,
    requests: &AtomicU64,
    last_request: &Mutex<String>,
) {
    let mut pending = Vec::new();
    let mut answered = false;
    loop {
        let Some(head) = read_request(stream, &mut pending).await else {
            return;
        };
        requests.fetch_add(1, Ordering::Relaxed);
        if answered
            && matches!(
                kind,
                Raw::Reply {
                    then: AfterReply::CloseOnNextRequest,
                    ..
                }
            )
        {
            return;
        }
        answered = true;
        if let Ok(mut last) = last_request.lock() {
            *last = String::from_utf8_lossy(&head).into_owned();
        }
        let (bytes, trickle, then) = match kind {
            Raw::CloseOnRequest => return,
            Raw::Hang => return std::future::pending().await,
            Raw::Reply {
                bytes,
                trickle,
                then,
            } => (bytes, trickle, then),
        };
        if trickle {
            for byte in bytes.chunks(1) {
                if stream.write_all(byte).await.is_err() {
                    return;
                }
                sleep(Duration::from_millis(1)).await;
            }
        } else if stream.write_all(bytes).await.is_err() {
            return;
        }
        match then {
            AfterReply::KeepOpen | AfterReply::CloseOnNextRequest => {}
            AfterReply::Close => return,
            AfterReply::Hang => return std::future::pending().await,
        }
    }
}

/// Reads until `pending` holds a whole request head and takes it out; `None` at end of stream.
async fn read_request(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(pending.drain(..end + 4).collect());
        }
        let mut buf = [0u8; 1024];
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

/// An address where nothing listens (bound, then released).
pub async fn refused_addr() -> SocketAddr {
    let listener = bind().await;
    listener.local_addr().expect("local addr")
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback")
}

fn describe(req: &Request<Incoming>) -> String {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    format!(
        "{} {} {} {} {}",
        req.method(),
        req.uri(),
        header("host"),
        header("x-request-id"),
        header("x-user-id")
    )
}

async fn respond(
    behavior: Behavior,
    _req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = Full::new(Bytes::from_static(b"hello from the test server\n"));
    let response = match behavior {
        Behavior::Ok { backend, replica } => Response::builder()
            .header("x-chaosgate-backend", backend)
            .header("x-chaosgate-replica", replica.to_string())
            .body(body),
        Behavior::Status(status) => {
            let mut builder = Response::builder().status(status);
            if status == 503 {
                builder = builder.header("x-envoy-overloaded", "true");
            }
            if status == 429 {
                builder = builder.header("x-envoy-ratelimited", "true");
            }
            builder.body(body)
        }
        Behavior::StallBetween { from, until } => {
            let now = Instant::now();
            if now >= from && now < until {
                sleep_until(until).await;
            }
            Response::builder().body(body)
        }
        Behavior::CloseAfterResponse => {
            Response::builder().header("connection", "close").body(body)
        }
    };
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}
