//! A tiny HTTP/1.1 and h2c client and replica helpers for the tests.

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mock_backends::{Replica, ReplicaConfig, ReplicaHandle};
use tokio::net::TcpStream;
use tokio::time::Instant;

pub type BoxError = Box<dyn Error + Send + Sync>;

/// No single step of a test may take longer than this.
pub const LIMIT: Duration = Duration::from_secs(3);

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One client connection, HTTP/1.1 or h2c with prior knowledge.
pub enum Conn {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("<not utf-8>")
    }
}

impl Conn {
    pub async fn h1(addr: SocketAddr) -> Result<Self, BoxError> {
        let io = TokioIo::new(within(TcpStream::connect(addr)).await?);
        let (sender, connection) = http1::handshake(io).await?;
        tokio::spawn(connection);
        Ok(Self::H1(sender))
    }

    pub async fn h2(addr: SocketAddr) -> Result<Self, BoxError> {
        let io = TokioIo::new(within(TcpStream::connect(addr)).await?);
        let (sender, connection) = within(http2::handshake(TokioExecutor::new(), io)).await?;
        tokio::spawn(connection);
        Ok(Self::H2(sender))
    }

    /// Sends `request` (origin-form path; the URI is made absolute for h2) and reads the answer.
    /// Panics when nothing happens for [`LIMIT`], so a broken replica fails a test instead of
    /// hanging it.
    pub async fn send(
        &mut self,
        addr: SocketAddr,
        request: Request<Full<Bytes>>,
    ) -> Result<Reply, BoxError> {
        within(self.send_unbounded(addr, request)).await
    }

    async fn send_unbounded(
        &mut self,
        addr: SocketAddr,
        request: Request<Full<Bytes>>,
    ) -> Result<Reply, BoxError> {
        let response = match self {
            Self::H1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
            Self::H2(sender) => {
                let (mut parts, body) = request.into_parts();
                parts.uri = format!("http://{addr}{}", parts.uri).parse()?;
                parts.version = Version::HTTP_2;
                sender.ready().await?;
                sender
                    .send_request(Request::from_parts(parts, body))
                    .await?
            }
        };
        let (parts, body) = response.into_parts();
        Ok(Reply {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body: body.collect().await?.to_bytes(),
        })
    }

    pub async fn get(&mut self, addr: SocketAddr, path: &str) -> Result<Reply, BoxError> {
        self.send(addr, get_request(addr, path)).await
    }
}

pub fn get_request(addr: SocketAddr, path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .expect("valid request")
}

/// GET on a fresh HTTP/1.1 connection.
pub async fn get(addr: SocketAddr, path: &str) -> Result<Reply, BoxError> {
    Conn::h1(addr).await?.get(addr, path).await
}

/// GET that must answer.
pub async fn must_get(addr: SocketAddr, path: &str) -> Reply {
    match get(addr, path).await {
        Ok(reply) => reply,
        Err(error) => panic!("GET {path} on {addr} failed: {error}"),
    }
}

/// GET with a deadline; `None` when nothing came back in time.
pub async fn get_within(
    addr: SocketAddr,
    path: &str,
    limit: Duration,
) -> Option<Result<Reply, BoxError>> {
    tokio::time::timeout(limit, get(addr, path)).await.ok()
}

/// Runs `f` and returns its output with the time it took.
pub async fn timed<T>(f: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

pub fn config(backend: &str, replica: usize) -> ReplicaConfig {
    ReplicaConfig::new("default", backend, replica)
}

pub async fn start(config: ReplicaConfig) -> ReplicaHandle {
    Replica::start(config, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect("replica starts")
}

/// Polls `check` every 10 ms until it holds or `limit` passes; returns whether it held.
pub async fn eventually<F: Future<Output = bool>>(
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether a TCP connect to `addr` is refused right now.
pub async fn refused(addr: SocketAddr) -> bool {
    matches!(within(TcpStream::connect(addr)).await, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// Awaits `f`, panicking after [`LIMIT`].
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(LIMIT, f).await {
        Ok(out) => out,
        Err(_) => panic!("step did not finish within {LIMIT:?}"),
    }
}
