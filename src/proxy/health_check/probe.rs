//! One active probe: an HTTP/1.1 request, a TCP exchange or a gRPC health call, bounded by the
//! spec's timeout.
//!
//! HTTP and gRPC probes keep their connection in the host's [`Session`] between probes, as
//! Envoy's health checkers keep their codec client (`reuse_connection` defaults to true and
//! Envoy Gateway does not set it). Envoy drops it when the answer says `connection: close`, on a
//! reset or close, and for HTTP on a timeout (a gRPC timeout only resets the stream). TCP probes
//! use a fresh connection each time.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{HOST, USER_AGENT};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::config::{
    CheckKind, HealthCheckSpec, HttpCheckConfig, RESPONSE_BUFFER_SIZE, TcpCheckConfig,
    USER_AGENT as HC_AGENT,
};

/// Outcome of one probe, in Envoy's failure classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    /// Expected status (and body), or TCP blocks all received.
    Success,
    /// Active, non-retriable failure: unexpected status or body mismatch; unhealthy at once.
    Failed,
    /// Retriable status: counts toward the unhealthy threshold.
    Retriable,
    /// Connect failure, reset or close before an answer (Envoy `NETWORK`).
    NetworkFailure,
    /// No complete answer within the timeout (Envoy `NETWORK_TIMEOUT`).
    Timeout,
}

impl ProbeResult {
    /// True for the network classes (stat `network_failure`).
    pub fn is_network(self) -> bool {
        matches!(self, ProbeResult::NetworkFailure | ProbeResult::Timeout)
    }
}

/// Probes `addr` once according to `spec`.
pub async fn probe(spec: &HealthCheckSpec, addr: SocketAddr) -> ProbeResult {
    probe_checked(spec, addr).await.0
}

/// Probes `addr` once on a fresh connection; the flag is true when a failing HTTP answer carried
/// `x-envoy-immediate-health-check-fail` (Envoy then also excludes the host from load
/// balancing, `EXCLUDED_VIA_IMMEDIATE_HC_FAIL`).
pub async fn probe_checked(spec: &HealthCheckSpec, addr: SocketAddr) -> (ProbeResult, bool) {
    probe_session(spec, addr, &mut Session::default()).await
}

/// One host's health-check connection, kept from one probe to the next.
#[derive(Default)]
pub struct Session {
    http1: Option<Connection<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>,
    h2: Option<Connection<hyper::client::conn::http2::SendRequest<Full<Bytes>>>>,
}

/// A client connection: its sender and the task driving it (closed when dropped).
pub(super) struct Connection<S> {
    pub(super) sender: S,
    task: JoinHandle<()>,
}

impl<S> Connection<S> {
    pub(super) fn new<F>(sender: S, driver: F) -> Self
    where
        F: Future + Send + 'static,
    {
        let task = tokio::spawn(async move {
            let _ = driver.await;
        });
        Connection { sender, task }
    }
}

impl<S> Drop for Connection<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Probes `addr` once, on the session's connection when it has a usable one (see
/// [`probe_checked`] for the flag).
pub async fn probe_session(
    spec: &HealthCheckSpec,
    addr: SocketAddr,
    session: &mut Session,
) -> (ProbeResult, bool) {
    let run = async {
        match &spec.kind {
            CheckKind::Http(h) => http_probe(spec, h, addr, &mut session.http1).await,
            CheckKind::Tcp(t) => (tcp_probe(t, addr).await, false),
            CheckKind::Grpc(g) => (
                super::grpc_probe::grpc_probe(g, spec.timeout, addr, &mut session.h2).await,
                false,
            ),
        }
    };
    match tokio::time::timeout(spec.timeout, run).await {
        Ok(checked) => checked,
        Err(_) => (ProbeResult::Timeout, false),
    }
}

/// The response header that makes a failing check exclude the host.
const IMMEDIATE_HC_FAIL: &str = "x-envoy-immediate-health-check-fail";

async fn http_probe(
    spec: &HealthCheckSpec,
    h: &HttpCheckConfig,
    addr: SocketAddr,
    slot: &mut Option<Connection<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>,
) -> (ProbeResult, bool) {
    // Taken out of the session: a timeout drops it, and Envoy closes the connection then.
    let reused = match slot.take().filter(|c| !c.sender.is_closed()) {
        Some(mut c) => c.sender.ready().await.is_ok().then_some(c),
        None => None,
    };
    let mut connection = match reused {
        Some(c) => c,
        None => {
            let Ok(stream) = TcpStream::connect(addr).await else {
                return (ProbeResult::NetworkFailure, false);
            };
            let _ = stream.set_nodelay(true);
            let Ok((sender, conn)) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
            else {
                return (ProbeResult::NetworkFailure, false);
            };
            Connection::new(sender, conn)
        }
    };
    let body = h.request_body.clone().map(Bytes::from).unwrap_or_default();
    let request = http::Request::builder()
        .method(h.method.clone())
        .uri(h.path.as_str())
        .header(HOST, h.host.as_str())
        .header(USER_AGENT, HC_AGENT)
        .body(Full::new(body));
    let Ok(request) = request else {
        return (ProbeResult::Failed, false);
    };
    let mut exclude = false;
    let mut keep = false;
    let result = match connection.sender.send_request(request).await {
        Err(_) => ProbeResult::NetworkFailure,
        Ok(response) => {
            let status = response.status().as_u16();
            exclude = response.headers().contains_key(IMMEDIATE_HC_FAIL);
            keep = !asks_to_close(&response);
            // Envoy judges the check when the response is complete, so the body is read to its end.
            match read_body(response.into_body(), RESPONSE_BUFFER_SIZE).await {
                None => ProbeResult::NetworkFailure,
                Some(_) if !spec.expected.contains(status) => {
                    if spec.retriable.contains(status) {
                        ProbeResult::Retriable
                    } else {
                        ProbeResult::Failed
                    }
                }
                Some(prefix) => match &h.expected_body {
                    Some(expected) if !contains(&prefix, expected) => ProbeResult::Failed,
                    _ => ProbeResult::Success,
                },
            }
        }
    };
    if keep && !result.is_network() {
        *slot = Some(connection);
    }
    // Only a failing answer excludes (Envoy: unexpected status or body mismatch).
    let exclude = exclude && matches!(result, ProbeResult::Failed | ProbeResult::Retriable);
    (result, exclude)
}

/// HTTP/1.1 `connection: close`, or HTTP/1.0 without `keep-alive`: the server will close.
fn asks_to_close<B>(response: &http::Response<B>) -> bool {
    let connection = response
        .headers()
        .get(http::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let has = |token: &str| {
        connection
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if response.version() == http::Version::HTTP_10 {
        !has("keep-alive")
    } else {
        has("close")
    }
}

/// Reads the whole body, keeping its first `limit` bytes; None when it breaks off with an error.
async fn read_body(mut body: hyper::body::Incoming, limit: usize) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return None };
        if let Ok(data) = frame.into_data() {
            let take = data.len().min(limit - buf.len());
            buf.extend_from_slice(&data[..take]);
        }
    }
    Some(buf)
}

async fn tcp_probe(t: &TcpCheckConfig, addr: SocketAddr) -> ProbeResult {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return ProbeResult::NetworkFailure;
    };
    if let Some(send) = &t.send {
        if stream.write_all(send).await.is_err() {
            return ProbeResult::NetworkFailure;
        }
    }
    if t.receive.is_empty() {
        return ProbeResult::Success;
    }
    // Envoy keeps reading until every block is found; a mismatch only ends in the timeout or a close.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return ProbeResult::NetworkFailure,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if blocks_in_order(&buf, &t.receive) {
                    return ProbeResult::Success;
                }
            }
        }
    }
}

/// Each block found after the end of the previous one.
fn blocks_in_order(buf: &[u8], blocks: &[Vec<u8>]) -> bool {
    let mut start = 0;
    for block in blocks {
        match find(&buf[start..], block) {
            Some(i) => start += i + block.len(),
            None => return false,
        }
    }
    true
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
