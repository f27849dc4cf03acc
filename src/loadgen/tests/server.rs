//! In-test servers on 127.0.0.1:0 with handles (address, counters, shutdown on drop).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::time::{Instant, sleep_until};
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
    /// `method path host x-request-id x-user-id` of the latest request.
    pub last_request: Arc<Mutex<String>>,
    _stop: DropGuard,
}

/// A raw TCP server that misbehaves below HTTP.
#[derive(Debug, Clone, Copy)]
pub enum Raw {
    /// Reads the request, then closes without answering.
    CloseOnRequest,
    /// Reads the request and never answers (until the server is dropped).
    Hang,
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
        let (conns, token) = (connections.clone(), stop.clone());
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
                let token = token.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = stream.read(&mut buf).await;
                    if let Raw::Hang = kind {
                        token.cancelled().await;
                    }
                    drop(stream);
                });
            }
        });
        TestServer {
            addr,
            requests,
            connections,
            last_request: Arc::default(),
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
