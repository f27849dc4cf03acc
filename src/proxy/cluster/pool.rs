//! The proxy's own upstream HTTP/1.1 connection pool, one per host, with Envoy's semantics.
//!
//! A request first takes an idle keep-alive connection of its host. Otherwise it opens a new one
//! when the cluster's `max_connections` and the host's per-host limit allow it. Otherwise it waits
//! as a *pending* request (bounded by `max_pending_requests`, overflow rejects at once) until a
//! connection becomes idle or a connection slot frees up. Each connection is driven by one task
//! (per connection, never per request) that also enforces the idle timeout and the maximum
//! connection duration.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};

use super::host_set::Host;
use super::resources::{ClusterResources, ResourceGuard};
use crate::proxy::config::TcpKeepalive;
use crate::proxy::error::ProxyError;
use crate::proxy::stats::ClusterStats;

/// The request body type sent upstream (buffered so that retries can resend it).
pub type UpstreamBody = Full<Bytes>;

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

/// Idle connections of one host.
#[derive(Debug, Default)]
pub struct HostPool {
    idle: Mutex<Vec<IdleConn>>,
}

/// A connection handed to one request; returned to the pool by [`Lease::finish`], closed when
/// dropped unfinished (the response was not read to the end).
#[derive(Debug)]
pub struct Lease {
    sender: Option<http1::SendRequest<UpstreamBody>>,
    shared: Arc<ConnShared>,
    host: Arc<Host>,
    ctx: Arc<PoolContext>,
    reusable: bool,
    reused: bool,
}

#[derive(Debug)]
struct IdleConn {
    sender: http1::SendRequest<UpstreamBody>,
    shared: Arc<ConnShared>,
}

/// State shared by a connection's driver task and its leases.
#[derive(Debug)]
struct ConnShared {
    created: Instant,
    served: AtomicU32,
    busy: AtomicBool,
    closing: AtomicBool,
    /// Milliseconds after `created` when the connection last became idle.
    idle_since_ms: AtomicU64,
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
}

/// Gets a connection to `host`: idle, new, or after waiting as a pending request.
pub async fn acquire(ctx: &Arc<PoolContext>, host: &Arc<Host>) -> Result<Lease, ProxyError> {
    // The common case first: an idle connection, taken without registering for wake-ups
    // (registering and deregistering lock the cluster's waiter list on every request).
    while let Some(idle) = host.pool.pop() {
        if let Some(lease) = reuse(ctx, host, idle).await {
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
            if let Some(lease) = reuse(ctx, host, idle).await {
                return Ok(lease);
            }
        }
        match try_slot(ctx, host) {
            Ok(slot) => {
                drop(pending);
                // Boxed: the connect and handshake state is large and rarely needed, and
                // inline it would grow every request's future (moved several times a request).
                return Box::pin(connect(ctx, host, slot)).await;
            }
            Err(()) if pending.is_none() => {
                ctx.stats.upstream_cx_overflow.inc();
                let Some(guard) = ctx.resources.pending_requests.try_acquire() else {
                    ctx.stats.upstream_rq_pending_overflow.inc();
                    tracing::debug!(host = %host.endpoint.addr, "max pending requests overflow");
                    return Err(ProxyError::Overflow);
                };
                ctx.stats.upstream_rq_pending_total.inc();
                pending = Some(guard);
            }
            Err(()) => {}
        }
        notified.await;
    }
}

async fn reuse(ctx: &Arc<PoolContext>, host: &Arc<Host>, idle: IdleConn) -> Option<Lease> {
    let IdleConn { mut sender, shared } = idle;
    if shared.busy.swap(true, Ordering::AcqRel) || shared.closing.load(Ordering::Acquire) {
        return None;
    }
    // hyper needs a moment after the previous response to accept the next request.
    if sender.ready().await.is_err() {
        shared.closing.store(true, Ordering::Release);
        return None;
    }
    Some(Lease {
        sender: Some(sender),
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

async fn connect(
    ctx: &Arc<PoolContext>,
    host: &Arc<Host>,
    slot: ConnSlot,
) -> Result<Lease, ProxyError> {
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
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| ProxyError::ConnectFailure)?;
    let shared = Arc::new(ConnShared {
        created: Instant::now(),
        served: AtomicU32::new(0),
        busy: AtomicBool::new(true),
        closing: AtomicBool::new(false),
        idle_since_ms: AtomicU64::new(0),
    });
    tokio::spawn(drive(conn, slot, Arc::clone(&shared)));
    Ok(Lease {
        sender: Some(sender),
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

/// Runs one upstream connection until it ends, closing it when idle or too old.
async fn drive(
    conn: http1::Connection<TokioIo<TcpStream>, UpstreamBody>,
    slot: ConnSlot,
    shared: Arc<ConnShared>,
) {
    let settings = slot.ctx.settings;
    let stats = Arc::clone(&slot.ctx.stats);
    tokio::pin!(conn);
    loop {
        let wake = shared.next_check(&settings, Instant::now());
        tokio::select! {
            _ = &mut conn => break,
            () = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                let now = Instant::now();
                let busy = shared.busy.load(Ordering::Acquire);
                if let Some(max) = settings.max_connection_duration
                    && now >= shared.created + max
                {
                    shared.closing.store(true, Ordering::Release);
                    if !busy {
                        stats.upstream_cx_max_duration_reached.inc();
                        break;
                    }
                }
                if let Some(idle) = settings.idle_timeout
                    && !busy
                    && now >= shared.idle_since() + idle
                {
                    shared.closing.store(true, Ordering::Release);
                    stats.upstream_cx_idle_timeout.inc();
                    break;
                }
            }
        }
    }
    shared.closing.store(true, Ordering::Release);
    stats.upstream_cx_destroy.inc();
    drop(slot);
}

impl ConnShared {
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
            if self.busy.load(Ordering::Acquire) {
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

    /// Sends one request and waits for the response headers.
    pub async fn send(
        &mut self,
        req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let Some(sender) = self.sender.as_mut() else {
            return Err(ProxyError::Reset {
                before_request: true,
            });
        };
        self.shared.served.fetch_add(1, Ordering::AcqRel);
        sender.send_request(req).await.map_err(|e| {
            tracing::debug!(host = %self.host.endpoint.addr, error = %e, "upstream request failed");
            ProxyError::Reset {
                before_request: e.is_canceled(),
            }
        })
    }

    /// The response was read completely: park the connection for reuse when allowed.
    pub fn finish(mut self) {
        self.reusable = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(sender) = self.sender.take() else {
            return;
        };
        let served = self.shared.served.load(Ordering::Acquire);
        let max_reached = self
            .ctx
            .settings
            .max_requests_per_connection
            .is_some_and(|m| served >= m);
        if max_reached {
            self.ctx.stats.upstream_cx_max_requests.inc();
        }
        let keep = self.reusable
            && !max_reached
            && !sender.is_closed()
            && !self.shared.closing.load(Ordering::Acquire);
        if keep {
            let idle_ms =
                u64::try_from(self.shared.created.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.shared.idle_since_ms.store(idle_ms, Ordering::Release);
            self.shared.busy.store(false, Ordering::Release);
            self.host.pool.push(IdleConn {
                sender,
                shared: Arc::clone(&self.shared),
            });
            self.ctx.resources.capacity.notify_waiters();
        } else {
            // Dropping the only sender ends the connection; its driver then frees the slot.
            self.shared.closing.store(true, Ordering::Release);
            self.shared.busy.store(false, Ordering::Release);
            drop(sender);
        }
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.host.cx_dec();
        drop(self.guard.take());
        self.ctx.resources.capacity.notify_waiters();
    }
}
