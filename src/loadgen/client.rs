//! The HTTP/1.1 keep-alive client: one request template, one target, many connections.
//!
//! A [`Client`] is shared (immutable) by every worker of a load; each worker owns one
//! [`Connection`], so the pool is simply the set of workers' connections and no request ever
//! waits on a lock. A connection is opened lazily, reused while the server keeps it alive, and
//! discarded after any transport error (the next request reconnects).
//!
//! The HTTP/1.1 exchange is hand-written rather than hyper's: the request head is encoded once
//! per load and a request only appends its id, the worker reads the response on its own task
//! (no per-connection driver task, channel or header map per request), and the body is framed
//! and dropped without being handed out. In steady state a request allocates nothing.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use http::header::{HOST, HeaderName, HeaderValue, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Uri};
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use self::buffer::ReadBuffer;
use self::head::{BackendNames, Parsed};
use super::sample::{ResponseInfo, TransportErrorKind};

mod body;
mod buffer;
mod chunked;
mod head;

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

/// The most a response head may take (status line and headers); a longer one is an error.
const MAX_HEAD: usize = 64 * 1024;

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

/// What every request of a load looks like, encoded once.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    method: Method,
    /// The request line and headers, ending with `x-request-id: <prefix>` when requests carry
    /// an id (a request appends its sequence number and the blank line), else with the last
    /// header line (a request appends the blank line).
    head: Vec<u8>,
    /// `<run prefix>-<load index>-`, the request id minus its sequence number; `None` when
    /// requests carry no id.
    id_prefix: Option<String>,
}

/// A load's client: target, request template and per-request timeout.
#[derive(Debug)]
pub struct Client {
    target: SocketAddr,
    template: RequestTemplate,
    timeout: Duration,
}

/// One keep-alive connection, owned by one worker, with buffers reused by every request.
#[derive(Debug, Default)]
pub struct Connection {
    stream: Option<TcpStream>,
    /// A response already came over `stream`, so a failure before the next response's first
    /// byte may just be the server having closed the idle connection.
    reused: bool,
    request: Vec<u8>,
    input: ReadBuffer,
    backends: BackendNames,
    /// The request timeout's timer, kept across requests.
    timer: Option<Pin<Box<Sleep>>>,
}

/// Why one attempt on one connection failed.
#[derive(Debug)]
enum Failure {
    /// A reused connection failed before any response byte: most likely the server closed it
    /// while idle. `sent` says the request may have reached the server.
    Stale { sent: bool },
    /// A failure to report.
    Transport(TransportErrorKind),
}

impl RequestTemplate {
    /// Builds the template. With a `request_id_prefix`, each request carries the
    /// `x-request-id` `<prefix>-<load>-<seq>` (replacing one given in `headers`); without one,
    /// it carries only `headers` and the Host.
    pub fn try_new(
        method: Method,
        path: &str,
        host: &str,
        headers: &[(String, String)],
        request_id_prefix: Option<&str>,
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
        let mut map = HeaderMap::with_capacity(headers.len() + 1);
        let host_value =
            HeaderValue::from_str(host).map_err(|_| ClientError::InvalidHost(host.to_owned()))?;
        map.insert(HOST, host_value);
        for (name, value) in headers {
            let invalid = || ClientError::InvalidHeader { name: name.clone() };
            let name_h = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let value_h = HeaderValue::from_str(value).map_err(|_| invalid())?;
            map.append(name_h, value_h);
        }
        let id_prefix = request_id_prefix
            .map(|prefix| {
                let id = format!("{prefix}-{load}-");
                match HeaderValue::from_str(&id) {
                    Ok(_) => Ok(id),
                    Err(_) => Err(ClientError::InvalidRequestIdPrefix(prefix.to_owned())),
                }
            })
            .transpose()?;
        let head = encode_head(&method, &uri, &map, id_prefix.as_deref());
        Ok(Self {
            method,
            head,
            id_prefix,
        })
    }

    /// The `x-request-id` of request `seq`, if requests carry one.
    pub fn request_id(&self, seq: u64) -> Option<String> {
        self.id_prefix
            .as_ref()
            .map(|prefix| format!("{prefix}{seq}"))
    }

    /// Puts the bytes of request `seq` in `out`.
    fn write_request(&self, seq: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.head);
        if self.id_prefix.is_some() {
            out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
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
        // One timer per connection, pushed back before each request: moving a registered
        // timer to a later deadline is a single atomic update, where a fresh timeout per
        // request registered and cancelled a timer-wheel entry every time.
        let deadline = Instant::now() + self.timeout;
        let mut timer = match conn.timer.take() {
            Some(mut timer) => {
                timer.as_mut().reset(deadline);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        let outcome = tokio::select! {
            biased;
            outcome = self.exchange(conn, seq) => outcome,
            () = &mut timer => Err(TransportErrorKind::Timeout),
        };
        conn.timer = Some(timer);
        if outcome.is_err() {
            // A failed or abandoned exchange leaves the connection in an unknown state.
            conn.close();
        }
        outcome
    }

    async fn exchange(
        &self,
        conn: &mut Connection,
        seq: u64,
    ) -> Result<ResponseInfo, TransportErrorKind> {
        self.template.write_request(seq, &mut conn.request);
        if conn.still_open() {
            match conn.round_trip(&self.template).await {
                Ok(info) => return Ok(info),
                // The server closing an idle keep-alive connection is normal, not an error: try
                // once more on a fresh one, unless a non-idempotent request may have arrived
                // (RFC 9110 §9.2.2).
                Err(Failure::Stale { sent }) if !sent || self.template.method.is_idempotent() => {}
                Err(failure) => return Err(failure.kind()),
            }
        }
        conn.connect(self.target).await?;
        conn.round_trip(&self.template).await.map_err(Failure::kind)
    }
}

impl Connection {
    /// A connection slot that connects on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a connection is currently open.
    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// Whether the kept-alive stream looks usable: a close (or stray bytes) that the server
    /// sent while the connection was idle and the runtime has already seen ends it here, before
    /// any request is sent on it. Costs no system call while the socket has nothing to read.
    fn still_open(&mut self) -> bool {
        let Some(stream) = &self.stream else {
            return false;
        };
        if !self.input.filled().is_empty() {
            // Bytes already received belong to the next response.
            return true;
        }
        let mut probe = [0u8; 1];
        let idle =
            matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        if !idle {
            self.close();
        }
        idle
    }

    async fn connect(&mut self, target: SocketAddr) -> Result<(), TransportErrorKind> {
        self.close();
        let stream = TcpStream::connect(target)
            .await
            .map_err(|e| classify_io(&e))?;
        // Requests are small and latency is what we measure: do not let Nagle hold them back.
        stream.set_nodelay(true).map_err(|e| classify_io(&e))?;
        self.stream = Some(stream);
        Ok(())
    }

    fn close(&mut self) {
        self.stream = None;
        self.reused = false;
        self.input.clear();
    }

    /// Writes the encoded request and reads its response to the end of the body.
    async fn round_trip(&mut self, template: &RequestTemplate) -> Result<ResponseInfo, Failure> {
        let reused = self.reused;
        let Some(stream) = self.stream.as_mut() else {
            return Err(Failure::Transport(TransportErrorKind::Other));
        };
        if let Err(e) = stream.write_all(&self.request).await {
            return Err(if reused && peer_gone(&e) {
                Failure::Stale { sent: false }
            } else {
                Failure::Transport(classify_io(&e))
            });
        }
        let head_request = template.method == Method::HEAD;
        let mut received = !self.input.filled().is_empty();
        let head = loop {
            // (Nothing to parse yet right after the request went out.)
            let parsed = match self.input.filled() {
                [] => Ok(None),
                filled => head::parse(filled, head_request, &mut self.backends),
            };
            match parsed {
                Ok(Some(Parsed::Interim(len))) => {
                    self.input.consume(len);
                    continue;
                }
                Ok(Some(Parsed::Final(head))) => break head,
                Ok(None) if self.input.filled().len() >= MAX_HEAD => {
                    return Err(Failure::Transport(TransportErrorKind::Other));
                }
                Ok(None) => {}
                Err(kind) => return Err(Failure::Transport(kind)),
            }
            let quiet = reused && !received;
            match self.input.fill_from(stream).await {
                Ok(0) if quiet => return Err(Failure::Stale { sent: true }),
                Ok(0) => return Err(Failure::Transport(TransportErrorKind::Reset)),
                Ok(_) => received = true,
                Err(e) if quiet && peer_gone(&e) => return Err(Failure::Stale { sent: true }),
                Err(e) => return Err(Failure::Transport(classify_io(&e))),
            }
        };
        self.input.consume(head.len);
        body::skip(head.body, &mut self.input, stream)
            .await
            .map_err(Failure::Transport)?;
        if head.keep_alive {
            self.reused = true;
        } else {
            self.close();
        }
        Ok(head.info)
    }
}

impl Failure {
    fn kind(self) -> TransportErrorKind {
        match self {
            // The peer closed the connection before a response: a reset, to the client.
            Failure::Stale { .. } => TransportErrorKind::Reset,
            Failure::Transport(kind) => kind,
        }
    }
}

/// The request line and headers, as hyper wrote them for a bodiless request: lower-case names
/// in the map's order, no `content-length`, no `transfer-encoding`; a generated `x-request-id`
/// comes last so a request only appends its number.
fn encode_head(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    id_prefix: Option<&str>,
) -> Vec<u8> {
    let mut head = Vec::with_capacity(128);
    head.extend_from_slice(method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(uri.to_string().as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        let replaced = id_prefix.is_some() && name.as_str() == REQUEST_ID_HEADER;
        if name == TRANSFER_ENCODING || replaced {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if let Some(prefix) = id_prefix {
        head.extend_from_slice(REQUEST_ID_HEADER.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(prefix.as_bytes());
    }
    head
}

/// Whether an I/O error means the peer closed or reset the connection.
fn peer_gone(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
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
