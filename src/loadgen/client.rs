//! The HTTP/1.1 keep-alive client: one request template, one target, many connections.
//!
//! A [`Client`] is shared (immutable) by every worker of a load; each worker owns one
//! [`Connection`], so the pool is simply the set of workers' connections and no request ever
//! waits on a lock. A connection is opened lazily, reused while the server keeps it alive, and
//! discarded after any transport error (the next request reconnects).

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

use super::sample::{ResponseInfo, TransportErrorKind};

/// Header the mock backends set to their service name.
pub const BACKEND_HEADER: &str = "x-chaosgate-backend";
/// Header the mock backends set to their replica index.
pub const REPLICA_HEADER: &str = "x-chaosgate-replica";
/// Header Envoy sets on circuit-breaker overflow replies.
pub const OVERLOADED_HEADER: &str = "x-envoy-overloaded";
/// Header Envoy sets on rate-limited replies.
pub const RATELIMITED_HEADER: &str = "x-envoy-ratelimited";
/// Header carrying the generated request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

// The response headers read on every response, as names built once: looking a header up by
// `&str` parses the name on every call.
const BACKEND_NAME: HeaderName = HeaderName::from_static(BACKEND_HEADER);
const REPLICA_NAME: HeaderName = HeaderName::from_static(REPLICA_HEADER);
const OVERLOADED_NAME: HeaderName = HeaderName::from_static(OVERLOADED_HEADER);
const RATELIMITED_NAME: HeaderName = HeaderName::from_static(RATELIMITED_HEADER);

/// Distinct backend names a connection remembers, so a response costs no string allocation.
const BACKEND_CACHE: usize = 32;

/// Why a request template is invalid.
#[derive(Debug, Error)]
pub enum ClientError {
    /// `path` is not an origin-form request target.
    #[error("path {path:?} is not a valid request path: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What the URI parser said.
        reason: String,
    },
    /// A header name or value is not valid HTTP.
    #[error("header {name:?} is not a valid HTTP header")]
    InvalidHeader {
        /// The header name as given.
        name: String,
    },
    /// The Host value is not a valid header value.
    #[error("host {0:?} is not a valid Host header")]
    InvalidHost(String),
    /// The request-id prefix is not a valid header value.
    #[error("request id prefix {0:?} is not a valid header value")]
    InvalidRequestIdPrefix(String),
}

/// What every request of a load looks like.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    /// `<run prefix>-<load index>-`, the request id minus its sequence number.
    id_prefix: String,
}

/// A load's client: target, request template and per-request timeout.
#[derive(Debug)]
pub struct Client {
    target: SocketAddr,
    template: RequestTemplate,
    timeout: Duration,
}

/// One keep-alive connection, owned by one worker.
#[derive(Debug, Default)]
pub struct Connection {
    live: Option<Live>,
    id_buf: String,
    backends: Vec<Arc<str>>,
}

/// An open connection and the task that drives its I/O.
#[derive(Debug)]
struct Live {
    sender: SendRequest<Empty<Bytes>>,
    driver: AbortHandle,
}

impl RequestTemplate {
    /// Builds the template; `host` defaults to the target address when `None`.
    pub fn try_new(
        method: Method,
        path: &str,
        host: &str,
        headers: &[(String, String)],
        request_id_prefix: &str,
        load: u16,
    ) -> Result<Self, ClientError> {
        let uri: Uri =
            path.parse()
                .map_err(|e: http::uri::InvalidUri| ClientError::InvalidPath {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
        if uri.scheme().is_some() || uri.authority().is_some() || !path.starts_with('/') {
            return Err(ClientError::InvalidPath {
                path: path.to_owned(),
                reason: "must start with / (the Host header names the site)".to_owned(),
            });
        }
        let mut map = HeaderMap::with_capacity(headers.len() + 2);
        let host_value =
            HeaderValue::from_str(host).map_err(|_| ClientError::InvalidHost(host.to_owned()))?;
        map.insert(HOST, host_value);
        for (name, value) in headers {
            let invalid = || ClientError::InvalidHeader { name: name.clone() };
            let name_h = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let value_h = HeaderValue::from_str(value).map_err(|_| invalid())?;
            map.append(name_h, value_h);
        }
        let id_prefix = format!("{request_id_prefix}-{load}-");
        if HeaderValue::from_str(&id_prefix).is_err() {
            return Err(ClientError::InvalidRequestIdPrefix(
                request_id_prefix.to_owned(),
            ));
        }
        Ok(Self {
            method,
            uri,
            headers: map,
            id_prefix,
        })
    }

    /// The `x-request-id` of request `seq`.
    pub fn request_id(&self, seq: u64) -> String {
        format!("{}{seq}", self.id_prefix)
    }
}

impl Client {
    /// A client sending `template` to `target`, each request bounded by `timeout`.
    pub fn new(target: SocketAddr, template: RequestTemplate, timeout: Duration) -> Self {
        Self {
            target,
            template,
            timeout,
        }
    }

    /// The address requests go to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Sends request `seq` on `conn` and reads the whole response, within the timeout.
    ///
    /// The timeout covers connecting, sending, the response head and draining the body.
    pub async fn send(
        &self,
        conn: &mut Connection,
        seq: u64,
    ) -> Result<ResponseInfo, TransportErrorKind> {
        let result = tokio::time::timeout(self.timeout, self.exchange(conn, seq)).await;
        let outcome = result.unwrap_or(Err(TransportErrorKind::Timeout));
        if outcome.is_err() {
            // A failed or abandoned exchange leaves the connection in an unknown state.
            conn.live = None;
        }
        outcome
    }

    async fn exchange(
        &self,
        conn: &mut Connection,
        seq: u64,
    ) -> Result<ResponseInfo, TransportErrorKind> {
        let request = self.build(conn, seq)?;
        let sender = self.ready_sender(conn).await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| classify(&e))?;
        let (parts, mut body) = response.into_parts();
        let info = conn.read_info(parts.status.as_u16(), &parts.headers);
        while let Some(frame) = body.frame().await {
            frame.map_err(|e| classify(&e))?;
        }
        Ok(info)
    }

    /// A sender ready for a request: the kept-alive one, or a fresh connection when the server
    /// closed the old one between requests (that is normal keep-alive behaviour, not an error).
    async fn ready_sender<'c>(
        &self,
        conn: &'c mut Connection,
    ) -> Result<&'c mut SendRequest<Empty<Bytes>>, TransportErrorKind> {
        let reusable = match conn.live.as_mut() {
            Some(live) => live.sender.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            conn.live = Some(self.connect().await?);
        }
        match conn.live.as_mut() {
            Some(live) => Ok(&mut live.sender),
            None => Err(TransportErrorKind::Other),
        }
    }

    async fn connect(&self) -> Result<Live, TransportErrorKind> {
        let stream = TcpStream::connect(self.target)
            .await
            .map_err(|e| classify_io(&e))?;
        // Requests are small and latency is what we measure: do not let Nagle hold them back.
        stream.set_nodelay(true).map_err(|e| classify_io(&e))?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| classify(&e))?;
        // One task per connection (not per request) drives its I/O.
        let driver = tokio::spawn(async move {
            // Its error reaches the caller through the pending request; nothing to add here.
            let _ = connection.await;
        })
        .abort_handle();
        Ok(Live { sender, driver })
    }

    fn build(
        &self,
        conn: &mut Connection,
        seq: u64,
    ) -> Result<Request<Empty<Bytes>>, TransportErrorKind> {
        let template = &self.template;
        conn.id_buf.clear();
        conn.id_buf.push_str(&template.id_prefix);
        // Writing into a String cannot fail.
        let _ = write!(conn.id_buf, "{seq}");
        // The prefix was validated and digits are always valid, so this cannot fail in practice.
        let id = HeaderValue::from_str(&conn.id_buf).map_err(|_| TransportErrorKind::Other)?;
        let mut request = Request::new(Empty::new());
        *request.method_mut() = template.method.clone();
        *request.uri_mut() = template.uri.clone();
        *request.headers_mut() = template.headers.clone();
        request
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), id);
        Ok(request)
    }
}

impl Connection {
    /// A connection slot that connects on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a connection is currently open.
    pub fn is_open(&self) -> bool {
        self.live.as_ref().is_some_and(|l| !l.sender.is_closed())
    }

    fn read_info(&mut self, status: u16, headers: &HeaderMap) -> ResponseInfo {
        let backend = headers
            .get(&BACKEND_NAME)
            .and_then(|v| self.backend_name(v));
        let replica = headers
            .get(&REPLICA_NAME)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        ResponseInfo {
            status,
            backend,
            replica,
            overloaded: headers.contains_key(&OVERLOADED_NAME),
            ratelimited: headers.contains_key(&RATELIMITED_NAME),
        }
    }

    /// The backend name as a shared string, allocated once per distinct name per connection.
    fn backend_name(&mut self, value: &HeaderValue) -> Option<Arc<str>> {
        if let Some(known) = self
            .backends
            .iter()
            .find(|b| b.as_bytes() == value.as_bytes())
        {
            return Some(Arc::clone(known));
        }
        let name: Arc<str> = Arc::from(value.to_str().ok()?);
        if self.backends.len() < BACKEND_CACHE {
            self.backends.push(Arc::clone(&name));
        }
        Some(name)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        // Without this a connection to a hung server would outlive the request that gave up on it.
        self.driver.abort();
    }
}

/// Classifies a hyper error by the I/O error underneath it, if any.
fn classify(error: &hyper::Error) -> TransportErrorKind {
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(inner) = source {
        if let Some(io_error) = inner.downcast_ref::<io::Error>() {
            return classify_io(io_error);
        }
        source = inner.source();
    }
    if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_incomplete_message() || error.is_canceled() || error.is_closed() {
        // The peer closed the connection before a complete response: a reset, to the client.
        TransportErrorKind::Reset
    } else {
        TransportErrorKind::Other
    }
}

fn classify_io(error: &io::Error) -> TransportErrorKind {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => TransportErrorKind::Refused,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => TransportErrorKind::Reset,
        io::ErrorKind::TimedOut => TransportErrorKind::Timeout,
        _ => TransportErrorKind::Other,
    }
}
