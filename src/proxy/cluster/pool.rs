//! The proxy's own upstream connection pools, one HTTP/1.1 and one HTTP/2 (h2c) pool per host,
//! with Envoy's semantics.
//!
//! HTTP/1.1: a request first takes an idle keep-alive connection of its host. Otherwise it opens
//! a new one when the cluster's `max_connections` and the host's per-host limit allow it.
//! Otherwise it waits as a *pending* request (bounded by `max_pending_requests`, overflow rejects
//! at once) until a connection becomes idle or a connection slot frees up.
//!
//! HTTP/2: one connection per host multiplexes every stream (Envoy Gateway leaves upstream
//! `max_concurrent_streams` unset, so a connection's stream capacity is unbounded). A request
//! opens a stream on the host's ready connection at once; only while that connection is being
//! established — or while `max_connections` leaves no slot for it — do requests wait as
//! pending, so `max_pending_requests` matters only then and concurrency is bounded by
//! `max_requests` (checked by the caller when the stream attaches). A connection that has
//! carried `max_requests_per_connection` streams takes no new ones (it drains and closes when its
//! last stream ends) and the next request opens a new connection. As in Envoy, a failed connect
//! fails the requests pending on it.
//!
//! An HTTP/1.1 connection is the proxy's own ([`super::h1`]): the request holding it drives its
//! I/O, and a timer task per connection (never per request) closes it when idle too long or too
//! old. An HTTP/2 connection is hyper's, driven by one task per connection that also enforces
//! those timeouts. A kept-alive HTTP/1.1 connection the upstream closed while idle is noticed
//! when a request next takes it from the pool (and then discarded, as Envoy would have done
//! already).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep, sleep_until, timeout};

use super::h1;
use super::host_set::Host;
use super::resources::{ClusterResources, ResourceGuard};
use super::response_body::ResponseBody;
use crate::proxy::config::TcpKeepalive;
use crate::proxy::error::ProxyError;
use crate::proxy::response_headers::ResponseHeaders;
use crate::proxy::stats::ClusterStats;

/// The request body type sent upstream (buffered so that retries can resend it).
pub type UpstreamBody = Full<Bytes>;

/// An upstream response whose head has arrived; its body holds the lease.
pub struct UpstreamResponse {
    pub status: http::StatusCode,
    pub headers: ResponseHeaders,
    pub body: ResponseBody,
}

/// Connection settings of a cluster.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// `connect_timeout`.
    pub connect_timeout: Duration,
    /// `max_requests_per_connection`.
    pub max_requests_per_connection: Option<u32>,
    /// Upstream connection `idle_timeout`.
    pub idle_timeout: Option<Duration>,
    /// `max_connection_duration`.
    pub max_connection_duration: Option<Duration>,
    /// TCP keepalive of upstream sockets.
    pub tcp_keepalive: Option<TcpKeepalive>,
}

/// What every host pool of a cluster shares.
#[derive(Debug)]
pub struct PoolContext {
    /// Connection settings.
    pub settings: PoolSettings,
    /// Circuit-breaker counters.
    pub resources: Arc<ClusterResources>,
    /// Cluster stats.
    pub stats: Arc<ClusterStats>,
}

/// The connections of one host: idle HTTP/1.1 connections and the HTTP/2 connection.
#[derive(Debug, Default)]
pub struct HostPool {
    idle: Mutex<Vec<IdleConn>>,
    h2: Mutex<H2State>,
}

/// The host's HTTP/2 pool. The lock is held only for bookkeeping, never across an `.await`.
#[derive(Debug, Default)]
struct H2State {
    /// The connection new streams go to.
    ready: Option<H2Conn>,
    /// A connect is under way; requests wait for it as pending.
    connecting: bool,
    /// Connect failures so far, so that requests pending on a failed connect fail with it.
    failures: u64,
    last_failure: Option<ProxyError>,
}

#[derive(Debug)]
struct H2Conn {
    sender: http2::SendRequest<UpstreamBody>,
    shared: Arc<ConnShared>,
}

/// One request's use of a connection: the whole HTTP/1.1 connection, returned to the pool by
/// [`Lease::finish`] and closed when dropped unfinished (the response was not read to the end);
/// or one HTTP/2 stream, which ends with the lease while the connection stays. Once a request
/// is sent, the response body holds the lease and finishes it when the body ends.
#[derive(Debug)]
pub struct Lease {
    sender: Option<Sender>,
    shared: Arc<ConnShared>,
    host: Arc<Host>,
    ctx: Arc<PoolContext>,
    reusable: bool,
    reused: bool,
}

#[derive(Debug)]
enum Sender {
    // Boxed once per connection: leases and parked connections then move a pointer.
    H1(Box<H1Upstream>),
    H2(http2::SendRequest<UpstreamBody>),
}

/// An HTTP/1.1 connection and the `max_connections` slot it holds; dropping it closes both.
#[derive(Debug)]
struct H1Upstream {
    conn: h1::Connection,
    shared: Arc<ConnShared>,
    slot: ConnSlot,
    /// The exchange deadline's timer, kept across requests: moving a registered timer to a
    /// later deadline is one atomic update, where a fresh timer per request registered and
    /// cancelled a timer-wheel entry every time.
    timer: Option<Pin<Box<Sleep>>>,
}

/// A parked keep-alive connection.
#[derive(Debug)]
struct IdleConn(Box<H1Upstream>);

/// State shared by a connection's driver task and its leases.
#[derive(Debug)]
struct ConnShared {
    created: Instant,
    /// Requests (HTTP/1.1) or streams (HTTP/2) carried so far.
    served: AtomicU32,
    /// HTTP/1.1: a request holds the connection.
    busy: AtomicBool,
    /// HTTP/2: streams in flight.
    streams: AtomicU32,
    closing: AtomicBool,
    /// Milliseconds after `created` when the connection last became idle.
    idle_since_ms: AtomicU64,
    /// Wakes the driver when a closing connection's last stream ended.
    drained: Notify,
}

/// One slot of `max_connections` plus the host's connection count; released when the
/// connection's driver task ends or the connect fails.
#[derive(Debug)]
struct ConnSlot {
    guard: Option<ResourceGuard>,
    host: Arc<Host>,
    ctx: Arc<PoolContext>,
}

impl HostPool {
    /// Idle connections currently parked (including ones closed since).
    pub fn idle_len(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn pop(&self) -> Option<IdleConn> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn push(&self, conn: IdleConn) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }

    /// Takes the parked connection `shared` belongs to, if it is parked.
    fn take_idle(&self, shared: &Arc<ConnShared>) -> Option<IdleConn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let at = idle.iter().position(|c| Arc::ptr_eq(&c.0.shared, shared))?;
        Some(idle.swap_remove(at))
    }
}

/// Gets a connection (`h2`: a stream) to `host`: idle or ready, new, or after waiting as a
/// pending request.
pub async fn acquire(
    ctx: &Arc<PoolContext>,
    host: &Arc<Host>,
    h2: bool,
) -> Result<Lease, ProxyError> {
    if h2 {
        // Boxed: its state machine is ten times the HTTP/1.1 path's, and every request's
        // future would otherwise carry (and move) that much.
        Box::pin(acquire_h2(ctx, host)).await
    } else {
        acquire_h1(ctx, host).await
    }
}

async fn acquire_h1(ctx: &Arc<PoolContext>, host: &Arc<Host>) -> Result<Lease, ProxyError> {
    // The common case first: an idle connection, taken without registering for wake-ups
    // (registering and deregistering lock the cluster's waiter list on every request).
    while let Some(idle) = host.pool.pop() {
        if let Some(lease) = reuse(ctx, host, idle) {
            return Ok(lease);
        }
    }
    let mut pending: Option<ResourceGuard> = None;
    loop {
        // Register for wake-ups before looking, so a release between the look and the wait
        // is not missed.
        let notified = ctx.resources.capacity.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();

        while let Some(idle) = host.pool.pop() {
            if let Some(lease) = reuse(ctx, host, idle) {
                return Ok(lease);
            }
        }
        match try_slot(ctx, host) {
            Ok(slot) => {
                drop(pending);
                // Boxed: the connect and handshake state is large and rarely needed, and
                // inline it would grow every request's future (moved several times a request).
                return Box::pin(connect_h1(ctx, host, slot)).await;
            }
            Err(()) if pending.is_none() => {
                ctx.stats.upstream_cx_overflow.inc();
                pending = Some(become_pending(ctx, host)?);
            }
            Err(()) => {}
        }
        notified.await;
    }
}

/// Takes a `max_pending_requests` slot; overflow rejects at once.
fn become_pending(ctx: &PoolContext, host: &Host) -> Result<ResourceGuard, ProxyError> {
    let Some(guard) = ctx.resources.pending_requests.try_acquire() else {
        ctx.stats.upstream_rq_pending_overflow.inc();
        tracing::debug!(host = %host.endpoint.addr, "max pending requests overflow");
        return Err(ProxyError::Overflow);
    };
    ctx.stats.upstream_rq_pending_total.inc();
    Ok(guard)
}

/// What an HTTP/2 request does next, decided under the host's HTTP/2 lock.
enum H2Step {
    Stream(Lease),
    Connect(ConnSlot),
    /// Wait as pending; `true` when no connection slot was free.
    Wait(bool),
    Fail(ProxyError),
}

async fn acquire_h2(ctx: &Arc<PoolContext>, host: &Arc<Host>) -> Result<Lease, ProxyError> {
    let mut pending: Option<(ResourceGuard, u64)> = None;
    loop {
        let notified = ctx.resources.capacity.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();

        let step = {
            let mut st = host.pool.h2.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, seen)) = &pending
                && st.failures != *seen
            {
                H2Step::Fail(st.last_failure.unwrap_or(ProxyError::ConnectFailure))
            } else if let Some(lease) = open_stream(ctx, host, &mut st) {
                H2Step::Stream(lease)
            } else if st.connecting {
                H2Step::Wait(false)
            } else {
                match try_slot(ctx, host) {
                    Ok(slot) => {
                        st.connecting = true;
                        H2Step::Connect(slot)
                    }
                    Err(()) => H2Step::Wait(true),
                }
            }
        };
        match step {
            H2Step::Stream(lease) => return Ok(lease),
            H2Step::Fail(e) => return Err(e),
            H2Step::Connect(slot) => {
                drop(pending);
                return connect_h2(ctx, host, slot).await;
            }
            H2Step::Wait(no_slot) => {
                if pending.is_none() {
                    if no_slot {
                        ctx.stats.upstream_cx_overflow.inc();
                    }
                    let guard = become_pending(ctx, host)?;
                    let failures = host
                        .pool
                        .h2
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .failures;
                    pending = Some((guard, failures));
                }
            }
        }
        notified.await;
    }
}

/// A new stream on the host's ready HTTP/2 connection, if it has one that takes streams.
fn open_stream(ctx: &Arc<PoolContext>, host: &Arc<Host>, st: &mut H2State) -> Option<Lease> {
    let conn = st.ready.as_ref()?;
    let shared = Arc::clone(&conn.shared);
    // Count the stream before looking at `closing`, so the driver never closes a connection
    // under a stream it did not see.
    shared.streams.fetch_add(1, Ordering::SeqCst);
    if shared.closing.load(Ordering::SeqCst) || conn.sender.is_closed() {
        shared.streams.fetch_sub(1, Ordering::SeqCst);
        st.ready = None;
        return None;
    }
    let served = shared.served.fetch_add(1, Ordering::AcqRel) + 1;
    let sender = if max_requests_reached(ctx, served) {
        // This stream is the connection's last: it drains and closes after its streams end.
        ctx.stats.upstream_cx_max_requests.inc();
        shared.closing.store(true, Ordering::SeqCst);
        st.ready.take()?.sender
    } else {
        conn.sender.clone()
    };
    Some(Lease {
        sender: Some(Sender::H2(sender)),
        shared,
        host: Arc::clone(host),
        ctx: Arc::clone(ctx),
        reusable: false,
        reused: true,
    })
}

fn max_requests_reached(ctx: &PoolContext, served: u32) -> bool {
    ctx.settings
        .max_requests_per_connection
        .is_some_and(|m| served >= m)
}

/// A parked connection for a new request, unless it was closed meanwhile (dropping it frees
/// its slot).
fn reuse(ctx: &Arc<PoolContext>, host: &Arc<Host>, idle: IdleConn) -> Option<Lease> {
    let IdleConn(mut upstream) = idle;
    let shared = Arc::clone(&upstream.shared);
    if shared.busy.swap(true, Ordering::AcqRel) || shared.closing.load(Ordering::Acquire) {
        return None;
    }
    if !upstream.conn.is_usable() {
        tracing::debug!(host = %host.endpoint.addr, "idle upstream connection was closed");
        return None;
    }
    Some(Lease {
        sender: Some(Sender::H1(upstream)),
        shared,
        host: Arc::clone(host),
        ctx: Arc::clone(ctx),
        reusable: false,
        reused: true,
    })
}

fn try_slot(ctx: &Arc<PoolContext>, host: &Arc<Host>) -> Result<ConnSlot, ()> {
    let within_host_limit = host.cx_active() < ctx.resources.per_host_max_connections;
    let guard = match within_host_limit
        .then(|| ctx.resources.connections.try_acquire())
        .flatten()
    {
        Some(g) => g,
        // Envoy lets a pool with no connection at all open one whatever the limits say, so the
        // real count can exceed max_connections by the number of hosts.
        None if host.cx_active() == 0 => {
            ctx.stats.upstream_cx_overflow.inc();
            ctx.resources.connections.force_acquire()
        }
        None => return Err(()),
    };
    host.cx_inc();
    Ok(ConnSlot {
        guard: Some(guard),
        host: Arc::clone(host),
        ctx: Arc::clone(ctx),
    })
}

/// Opens the TCP connection (connect timeout, nodelay, keepalive).
async fn open_tcp(ctx: &PoolContext, host: &Host) -> Result<TcpStream, ProxyError> {
    let stats = &ctx.stats;
    stats.upstream_cx_total.inc();
    let addr = host.endpoint.addr;
    let stream = match timeout(ctx.settings.connect_timeout, TcpStream::connect(addr)).await {
        Err(_) => {
            stats.upstream_cx_connect_timeout.inc();
            stats.upstream_cx_connect_fail.inc();
            tracing::debug!(%addr, "upstream connect timeout");
            return Err(ProxyError::ConnectTimeout);
        }
        Ok(Err(e)) => {
            stats.upstream_cx_connect_fail.inc();
            tracing::debug!(%addr, error = %e, "upstream connect failure");
            return Err(ProxyError::ConnectFailure);
        }
        Ok(Ok(s)) => s,
    };
    // Latency matters more than packet count for proxied requests.
    let _ = stream.set_nodelay(true);
    if let Some(ka) = &ctx.settings.tcp_keepalive
        && let Err(e) = apply_keepalive(&stream, ka)
    {
        tracing::debug!(%addr, error = %e, "cannot set upstream TCP keepalive");
    }
    Ok(stream)
}

fn new_shared(busy: bool, streams: u32) -> Arc<ConnShared> {
    Arc::new(ConnShared {
        created: Instant::now(),
        served: AtomicU32::new(0),
        busy: AtomicBool::new(busy),
        streams: AtomicU32::new(streams),
        closing: AtomicBool::new(false),
        idle_since_ms: AtomicU64::new(0),
        drained: Notify::new(),
    })
}

async fn connect_h1(
    ctx: &Arc<PoolContext>,
    host: &Arc<Host>,
    slot: ConnSlot,
) -> Result<Lease, ProxyError> {
    let stream = open_tcp(ctx, host).await?;
    let shared = new_shared(true, 0);
    let settings = ctx.settings;
    if settings.idle_timeout.is_some() || settings.max_connection_duration.is_some() {
        tokio::spawn(watch_h1(
            Arc::clone(host),
            Arc::clone(&shared),
            settings,
            Arc::clone(&ctx.stats),
        ));
    }
    let upstream = Box::new(H1Upstream {
        conn: h1::Connection::new(stream),
        shared: Arc::clone(&shared),
        slot,
        timer: None,
    });
    Ok(Lease {
        sender: Some(Sender::H1(upstream)),
        shared,
        host: Arc::clone(host),
        ctx: Arc::clone(ctx),
        reusable: false,
        reused: false,
    })
}

/// Opens the host's HTTP/2 connection and its first stream; wakes the requests pending on it
/// (they take streams on it, or fail with the connect error).
async fn connect_h2(
    ctx: &Arc<PoolContext>,
    host: &Arc<Host>,
    slot: ConnSlot,
) -> Result<Lease, ProxyError> {
    let connected = match open_tcp(ctx, host).await {
        Ok(stream) => http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|_| ProxyError::ConnectFailure),
        Err(e) => Err(e),
    };
    let mut st = host.pool.h2.lock().unwrap_or_else(PoisonError::into_inner);
    st.connecting = false;
    let (sender, conn) = match connected {
        Ok(c) => c,
        Err(e) => {
            st.failures += 1;
            st.last_failure = Some(e);
            drop(st);
            drop(slot);
            return Err(e);
        }
    };
    let shared = new_shared(false, 1);
    shared.served.store(1, Ordering::Release);
    tokio::spawn(drive(conn, slot, Arc::clone(&shared)));
    let lease_sender = if max_requests_reached(ctx, 1) {
        ctx.stats.upstream_cx_max_requests.inc();
        shared.closing.store(true, Ordering::SeqCst);
        sender
    } else {
        st.ready = Some(H2Conn {
            sender: sender.clone(),
            shared: Arc::clone(&shared),
        });
        sender
    };
    drop(st);
    ctx.resources.capacity.notify_waiters();
    Ok(Lease {
        sender: Some(Sender::H2(lease_sender)),
        shared,
        host: Arc::clone(host),
        ctx: Arc::clone(ctx),
        reusable: false,
        reused: false,
    })
}

/// Turns on SO_KEEPALIVE with the configured probe count, idle time and interval (Envoy's
/// `upstream_connection_options.tcp_keepalive`; unset values keep the OS defaults).
pub(crate) fn apply_keepalive(stream: &TcpStream, ka: &TcpKeepalive) -> std::io::Result<()> {
    let mut params = socket2::TcpKeepalive::new();
    if let Some(idle) = ka.idle {
        params = params.with_time(idle);
    }
    if let Some(interval) = ka.interval {
        params = params.with_interval(interval);
    }
    if let Some(probes) = ka.probes {
        params = params.with_retries(probes);
    }
    socket2::SockRef::from(stream).set_tcp_keepalive(&params)
}

/// Runs one upstream connection until it ends, closing it when idle or too old (a closing
/// HTTP/2 connection closes once its last stream ended).
async fn drive<C>(conn: C, slot: ConnSlot, shared: Arc<ConnShared>)
where
    C: Future,
{
    let settings = slot.ctx.settings;
    let stats = Arc::clone(&slot.ctx.stats);
    tokio::pin!(conn);
    loop {
        let wake = shared.next_check(&settings, Instant::now());
        let closing = shared.closing.load(Ordering::SeqCst);
        tokio::select! {
            _ = &mut conn => break,
            () = shared.drained.notified(), if closing => {
                if !shared.is_busy() {
                    break;
                }
            }
            () = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                if let Some(expiry) = shared.expiry(&settings, Instant::now()) {
                    shared.closing.store(true, Ordering::SeqCst);
                    // A stream may have attached just before `closing` was set.
                    if !shared.is_busy() {
                        expiry.count(&stats);
                        break;
                    }
                }
            }
        }
    }
    shared.closing.store(true, Ordering::SeqCst);
    stats.upstream_cx_destroy.inc();
    drop(slot);
}

/// Closes an HTTP/1.1 connection that stays idle for `idle_timeout` or reaches
/// `max_connection_duration`: at once when it is parked, else when its request ends. Ends when
/// the connection does.
async fn watch_h1(
    host: Arc<Host>,
    shared: Arc<ConnShared>,
    settings: PoolSettings,
    stats: Arc<ClusterStats>,
) {
    while let Some(wake) = shared.next_check(&settings, Instant::now()) {
        tokio::select! {
            () = shared.drained.notified() => return,
            () = sleep_until(wake) => {}
        }
        if let Some(expiry) = shared.expiry(&settings, Instant::now()) {
            shared.closing.store(true, Ordering::SeqCst);
            // Parked: close it now. In use: its lease sees `closing` and closes it.
            if let Some(parked) = host.pool.take_idle(&shared) {
                expiry.count(&stats);
                drop(parked);
            }
            return;
        }
    }
}

/// Why a connection's time is up.
#[derive(Debug, Clone, Copy)]
enum Expiry {
    /// `max_connection_duration` reached (busy or not).
    MaxDuration,
    /// Idle for `idle_timeout`.
    Idle,
}

impl Expiry {
    fn count(self, stats: &ClusterStats) {
        match self {
            Expiry::MaxDuration => stats.upstream_cx_max_duration_reached.inc(),
            Expiry::Idle => stats.upstream_cx_idle_timeout.inc(),
        }
    }
}

impl ConnShared {
    /// Whether the connection is too old, or idle too long, at `now`.
    fn expiry(&self, s: &PoolSettings, now: Instant) -> Option<Expiry> {
        if s.max_connection_duration
            .is_some_and(|max| now >= self.created + max)
        {
            Some(Expiry::MaxDuration)
        } else if s
            .idle_timeout
            .is_some_and(|idle| !self.is_busy() && now >= self.idle_since() + idle)
        {
            Some(Expiry::Idle)
        } else {
            None
        }
    }

    /// A request or stream is using the connection.
    fn is_busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst) || self.streams.load(Ordering::SeqCst) > 0
    }

    fn idle_since(&self) -> Instant {
        self.created + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
    }

    /// When the driver should next look at this connection; `None` once it is closing (the
    /// connection then ends when its last lease lets go of it).
    fn next_check(&self, s: &PoolSettings, now: Instant) -> Option<Instant> {
        if self.closing.load(Ordering::Acquire) {
            return None;
        }
        let idle = s.idle_timeout.map(|t| {
            if self.is_busy() {
                now + t
            } else {
                self.idle_since() + t
            }
        });
        let max = s.max_connection_duration.map(|m| self.created + m);
        match (idle, max) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Lease {
    /// Whether this connection served a request before.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// The host this connection goes to.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// Whether this lease is an HTTP/2 stream.
    pub fn is_h2(&self) -> bool {
        matches!(self.sender, Some(Sender::H2(_)))
    }

    /// Sends one HTTP/1.1 request (`encode` writes its head, `body` follows) and waits for the
    /// response head until `deadline` (which then ends it with its error); the response body
    /// then holds this lease.
    pub async fn send_h1(
        mut self,
        encode: impl FnOnce(&mut Vec<u8>),
        body: &Bytes,
        head_request: bool,
        deadline: Option<(Instant, ProxyError)>,
    ) -> Result<UpstreamResponse, ProxyError> {
        let Some(Sender::H1(upstream)) = self.sender.as_mut() else {
            return Err(ProxyError::Reset {
                before_request: true,
            });
        };
        self.shared.served.fetch_add(1, Ordering::AcqRel);
        let H1Upstream { conn, timer, .. } = &mut **upstream;
        let exchange = conn.exchange(encode, body, head_request);
        let result = match deadline {
            None => exchange.await,
            Some((at, error)) => {
                let timer = match timer {
                    Some(timer) => {
                        timer.as_mut().reset(at);
                        timer
                    }
                    None => timer.insert(Box::pin(sleep_until(at))),
                };
                tokio::select! {
                    biased;
                    result = exchange => result,
                    // The lease is dropped with this future: the connection closes.
                    () = timer.as_mut() => return Err(error),
                }
            }
        };
        match result {
            Ok((head, state)) => Ok(UpstreamResponse {
                status: head.status,
                headers: head.headers,
                body: ResponseBody::h1(self, state, head.keep_alive),
            }),
            Err(e) => {
                tracing::debug!(host = %self.host.endpoint.addr, error = %e, "upstream request failed");
                Err(ProxyError::Reset {
                    before_request: matches!(e, h1::ExchangeError::NotSent(_)),
                })
            }
        }
    }

    /// Sends one request on this HTTP/2 stream and waits for the response headers; the
    /// response body then holds this lease.
    pub async fn send_h2(
        mut self,
        req: Request<UpstreamBody>,
    ) -> Result<UpstreamResponse, ProxyError> {
        // Streams are counted when they open (see `open_stream`).
        let Some(Sender::H2(sender)) = self.sender.as_mut() else {
            return Err(ProxyError::Reset {
                before_request: true,
            });
        };
        match sender.send_request(req).await {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                Ok(UpstreamResponse {
                    status: parts.status,
                    headers: parts.headers.into(),
                    body: ResponseBody::h2(self, body),
                })
            }
            Err(e) => {
                tracing::debug!(host = %self.host.endpoint.addr, error = %e, "upstream request failed");
                Err(ProxyError::Reset {
                    before_request: e.is_canceled(),
                })
            }
        }
    }

    /// The response was read completely: park the connection for reuse when allowed.
    pub fn finish(mut self) {
        self.reusable = true;
    }

    /// The HTTP/1.1 connection, while this lease holds one.
    pub(super) fn h1_connection(&mut self) -> Option<&mut h1::Connection> {
        match self.sender.as_mut() {
            Some(Sender::H1(upstream)) => Some(&mut upstream.conn),
            _ => None,
        }
    }

    fn release_h1(&mut self, upstream: Box<H1Upstream>) {
        let served = self.shared.served.load(Ordering::Acquire);
        let max_reached = max_requests_reached(&self.ctx, served);
        if max_reached {
            self.ctx.stats.upstream_cx_max_requests.inc();
        }
        let keep = self.reusable && !max_reached && !self.shared.closing.load(Ordering::Acquire);
        if keep {
            self.mark_idle();
            self.shared.busy.store(false, Ordering::Release);
            self.host.pool.push(IdleConn(upstream));
            self.ctx.resources.capacity.notify_waiters();
        } else {
            self.shared.busy.store(false, Ordering::Release);
            drop(upstream);
        }
    }

    /// The stream ended (an unread response body resets just that stream).
    fn release_h2(&mut self, sender: http2::SendRequest<UpstreamBody>) {
        drop(sender);
        if self.shared.streams.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.mark_idle();
            if self.shared.closing.load(Ordering::SeqCst) {
                self.shared.drained.notify_one();
            }
        }
    }

    fn mark_idle(&self) {
        let idle_ms = u64::try_from(self.shared.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.shared.idle_since_ms.store(idle_ms, Ordering::Release);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        match self.sender.take() {
            None => {}
            Some(Sender::H1(sender)) => self.release_h1(sender),
            Some(Sender::H2(sender)) => self.release_h2(sender),
        }
    }
}

impl Drop for H1Upstream {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.slot.ctx.stats.upstream_cx_destroy.inc();
        // Ends the connection's timer task.
        self.shared.drained.notify_one();
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.host.cx_dec();
        drop(self.guard.take());
        self.ctx.resources.capacity.notify_waiters();
    }
}
