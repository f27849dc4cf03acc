//! A small HTTP/1.1 client for the replicas' control endpoints (reached through the ports the
//! sandboxes publish on 127.0.0.1): replace the fault set, wait until a replica is ready.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mock_backends::Fault;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

/// How long one control request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a replica may take to answer `/ready` after its container starts.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between readiness polls.
const READY_POLL: Duration = Duration::from_millis(25);

/// An HTTP answer: status, headers, body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// Sends one request on a fresh connection and reads the whole answer, within `limit`.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Bytes,
    limit: Duration,
) -> Result<Answer, String> {
    timeout(limit, request_inner(addr, method, path, body))
        .await
        .map_err(|_| format!("no answer from {addr} within {limit:?}"))?
}

async fn request_inner(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<Answer, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake {addr}: {e}"))?;
    // The connection task ends with the request: one connection per request.
    let driver = tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("{addr}{path}: {e}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("{addr}{path}: reading the body: {e}"))?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
    .await;
    driver.abort();
    result
}

/// Makes `faults` the replica's complete fault set.
pub async fn put_faults(control: SocketAddr, faults: &[Fault]) -> Result<(), String> {
    let body = serde_json::to_vec(faults).map_err(|e| e.to_string())?;
    let answer = request(
        control,
        Method::PUT,
        "/faults",
        body.into(),
        REQUEST_TIMEOUT,
    )
    .await?;
    if answer.status == StatusCode::OK {
        Ok(())
    } else {
        Err(format!(
            "PUT /faults answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ))
    }
}

/// Waits until `GET /ready` answers 200, polling for at most 10 s.
pub async fn wait_ready(control: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last = String::from("never polled");
    while Instant::now() < deadline {
        match request(
            control,
            Method::GET,
            "/ready",
            Bytes::new(),
            Duration::from_secs(1),
        )
        .await
        {
            Ok(answer) if answer.status == StatusCode::OK => return Ok(()),
            Ok(answer) => last = format!("answered {}", answer.status),
            Err(e) => last = e,
        }
        sleep(READY_POLL).await;
    }
    Err(format!("not ready after {READY_TIMEOUT:?} ({last})"))
}
