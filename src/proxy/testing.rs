//! Test helpers: tiny loopback HTTP backends and a one-shot client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Sleep;

/// A running test backend.
pub struct Backend {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicU64>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicU64>,
    /// The most requests ever in flight at once.
    pub max_in_flight: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

/// How a backend answers: a fixed status and delay; `/status/<code>`, `?delay=<ms>` (before
/// the headers) and `?body_delay=<ms>` (between headers and body) in the request override them;
/// `?hcfail=1` adds `x-envoy-immediate-health-check-fail: true` to the response and
/// `?grpc_status=<n>` a `grpc-status` header.
/// `reset` closes every connection as soon as a request arrives.
#[derive(Debug, Clone, Copy)]
pub struct Behavior {
    pub status: u16,
    pub delay: Duration,
    pub reset: bool,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            status: 200,
            delay: Duration::ZERO,
            reset: false,
        }
    }
}

/// A body that sends its bytes after a delay.
pub struct TestBody {
    sleep: Option<Pin<Box<Sleep>>>,
    data: Option<Bytes>,
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(s) = self.sleep.as_mut() {
            if s.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }
}

impl Backend {
    pub async fn start(name: &'static str, behavior: Behavior) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let max_in_flight = Arc::new(AtomicU64::new(0));
        let in_flight = Arc::new(AtomicU64::new(0));
        let h = Arc::clone(&hits);
        let (conns, peak) = (Arc::clone(&connections), Arc::clone(&max_in_flight));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                conns.fetch_add(1, Ordering::Relaxed);
                if behavior.reset {
                    tokio::spawn(async move {
                        let mut buf = [0u8; 1024];
                        let _ = stream.read(&mut buf).await;
                        drop(stream);
                    });
                    continue;
                }
                let h = Arc::clone(&h);
                let (peak, in_flight) = (Arc::clone(&peak), Arc::clone(&in_flight));
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let h = Arc::clone(&h);
                        let (peak, in_flight) = (Arc::clone(&peak), Arc::clone(&in_flight));
                        async move {
                            h.fetch_add(1, Ordering::Relaxed);
                            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            let r = answer(name, behavior, req).await;
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            Ok::<_, Infallible>(r)
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Backend {
            addr,
            hits,
            connections,
            max_in_flight,
            task,
        }
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(name: &str, b: Behavior, req: Request<Incoming>) -> Response<TestBody> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let status = path
        .strip_prefix("/status/")
        .and_then(|s| s.parse().ok())
        .unwrap_or(b.status);
    let delay = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("delay="))
        .and_then(|ms| ms.parse().ok())
        .map_or(b.delay, Duration::from_millis);
    let body_delay = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("body_delay="))
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    let echo_id = req.headers().get("x-request-id").cloned();
    let hc_fail = query.split('&').any(|kv| kv == "hcfail=1");
    let grpc_status = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("grpc_status="))
        .map(str::to_string);
    let version = format!("{:?}", req.version());
    let _ = req.into_body().collect().await;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut r = Response::new(TestBody {
        sleep: body_delay.map(|d| Box::pin(tokio::time::sleep(d))),
        data: Some(Bytes::from(name.to_string())),
    });
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r.headers_mut().insert("x-backend", name.parse().unwrap());
    // The HTTP version the request arrived in (`HTTP/1.1`, `HTTP/2.0`).
    r.headers_mut()
        .insert("x-upstream-version", version.parse().unwrap());
    if let Some(id) = echo_id {
        r.headers_mut().insert("x-seen-request-id", id);
    }
    if let Some(code) = grpc_status {
        r.headers_mut().insert("grpc-status", code.parse().unwrap());
    }
    if hc_fail {
        r.headers_mut().insert(
            "x-envoy-immediate-health-check-fail",
            "true".parse().unwrap(),
        );
    }
    r
}

/// An address on which nothing listens (connects are refused).
pub async fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// A response as the client saw it.
#[derive(Debug)]
pub struct Got {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One HTTP/1.1 request on a fresh connection, bounded by 10 s.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Got {
    tokio::time::timeout(Duration::from_secs(10), async {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut b = Request::builder().uri(path).header("host", "example.com");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = sender
            .send_request(b.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
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

/// One HTTP/2 cleartext (prior knowledge) request.
pub async fn get_h2c(addr: SocketAddr, path: &str) -> Got {
    h2c_request(addr, "GET", path, &[]).await.0
}

/// One HTTP/2 cleartext (prior knowledge) request with headers; also returns the trailers.
pub async fn h2c_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (Got, Option<HeaderMap>) {
    tokio::time::timeout(Duration::from_secs(10), async {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut b = Request::builder()
            .method(method)
            .uri(format!("http://example.com{path}"));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = sender
            .send_request(b.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let collected = body.collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        let got = Got {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: collected.to_bytes(),
        };
        (got, trailers)
    })
    .await
    .expect("request took longer than 10 s")
}

/// A listener whose accept queue is full, so new connects hang (SYNs are dropped) until the
/// returned guards are dropped.
pub async fn blackhole_addr() -> (SocketAddr, Vec<TcpStream>, tokio::net::TcpListener) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    // Fill the accept queue; further connects stall. Bounded attempts, each bounded in time.
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(50), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => fillers.push(s),
            _ => break,
        }
    }
    (addr, fillers, listener)
}

/// A minimal h2c gRPC server: `/grpc.health.v1.Health/Check` answers the serving status set in
/// `status` (1 SERVING, 2 NOT_SERVING…) for the whole server (service ""), and SERVICE_UNKNOWN
/// (3) for any other service unless `service` names it; `grpc_status` ≠ 0 answers that gRPC
/// error trailers-only; `http_status` ≠ 200 answers that plain HTTP status. Other paths answer
/// 200 `grpc-backend`.
pub struct GrpcHealthServer {
    pub addr: SocketAddr,
    pub status: Arc<AtomicU64>,
    pub grpc_status: Arc<AtomicU64>,
    pub http_status: Arc<AtomicU64>,
    /// (path, content-type, te, user-agent, requested service) of the last health call.
    pub last: Arc<std::sync::Mutex<Option<[String; 5]>>>,
    task: JoinHandle<()>,
}

impl Drop for GrpcHealthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GrpcHealthServer {
    pub async fn start(service: &'static str) -> GrpcHealthServer {
        use crate::proxy::health_check::grpc_probe::{HEALTH_CHECK_PATH, frame};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let status = Arc::new(AtomicU64::new(1));
        let grpc_status = Arc::new(AtomicU64::new(0));
        let http_status = Arc::new(AtomicU64::new(200));
        let last = Arc::new(std::sync::Mutex::new(None));
        let (s, g, h, l) = (
            Arc::clone(&status),
            Arc::clone(&grpc_status),
            Arc::clone(&http_status),
            Arc::clone(&last),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (s, g, h, l) = (s.clone(), g.clone(), h.clone(), l.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (s, g, h, l) = (s.clone(), g.clone(), h.clone(), l.clone());
                        async move {
                            let header = |n: &str| {
                                req.headers()
                                    .get(n)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_string()
                            };
                            let path = req.uri().path().to_string();
                            let seen = [
                                path.clone(),
                                header("content-type"),
                                header("te"),
                                header("user-agent"),
                                String::new(),
                            ];
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let mut r = Response::new(Full::new(Bytes::new()).with_trailers(
                                std::future::ready(None::<Result<HeaderMap, Infallible>>),
                            ));
                            if path != HEALTH_CHECK_PATH {
                                *r.body_mut() = Full::new(Bytes::from_static(b"grpc-backend"))
                                    .with_trailers(std::future::ready(None));
                                return Ok::<_, Infallible>(r);
                            }
                            // HealthCheckRequest: field 1 (string) when a service is named.
                            let asked = body
                                .get(7..)
                                .map(|s| String::from_utf8_lossy(s).into_owned())
                                .unwrap_or_default();
                            let mut seen = seen;
                            seen[4] = asked.clone();
                            *l.lock().unwrap() = Some(seen);
                            let http = h.load(Ordering::SeqCst) as u16;
                            if http != 200 {
                                *r.status_mut() = StatusCode::from_u16(http).unwrap();
                                return Ok(r);
                            }
                            r.headers_mut()
                                .insert("content-type", "application/grpc".parse().unwrap());
                            let code = g.load(Ordering::SeqCst);
                            if code != 0 {
                                r.headers_mut().insert("grpc-status", code.into());
                                return Ok(r);
                            }
                            let serving = if asked.is_empty() || asked == service {
                                s.load(Ordering::SeqCst)
                            } else {
                                3
                            };
                            let mut trailers = HeaderMap::new();
                            trailers.insert("grpc-status", 0.into());
                            *r.body_mut() = Full::new(frame(&[0x08, serving as u8]))
                                .with_trailers(std::future::ready(Some(Ok(trailers))));
                            Ok(r)
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        GrpcHealthServer {
            addr,
            status,
            grpc_status,
            http_status,
            last,
            task,
        }
    }
}
