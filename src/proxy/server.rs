//! Starting and stopping the proxy: listeners (HTTP/1.1 and h2c), the admin listener, and the
//! background tasks (outlier detection timers, active health checkers).
//!
//! Cluster warming: Envoy keeps a cluster with active health checking out of service until its
//! first round of checks is done, and holds the server's listeners until then at startup. The
//! proxy does the same: [`ProxyBuilder::start`] binds the listeners (clients queue in the accept
//! backlog), starts the health checkers, waits until every checked host has its first result —
//! bounded by `initial_jitter + timeout` plus a margin per cluster, after which unanswered hosts
//! simply stay failed — and only then serves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::access_log::{AccessLogEntry, AccessLogSink, BroadcastSink, FanoutSink};
use super::admin;
use super::cluster::Cluster;
use super::config::{ConfigError, ProxyConfig};
use super::downstream;
use super::health_check::HealthCheckerHandle;
use super::pipeline::{FeatureStats, Pipeline, Shared};
use super::rate_limit::{GlobalRateLimiter, WallClock};
use super::rng::RngSource;
use super::stats::{HttpStats, ListenerStats, Stats};

/// How long open connections get to finish their requests at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Extra wait, beyond jitter and probe timeout, for a cluster's first health-check round.
const WARMING_MARGIN: Duration = Duration::from_millis(500);

/// Access log entries buffered per slow in-process subscriber.
const ACCESS_LOG_BUFFER: usize = 65_536;

/// Entry point: `Proxy::start(...)` or `Proxy::builder(...)...start(...)`.
#[derive(Debug)]
pub struct Proxy;

/// Options of a proxy before it starts.
pub struct ProxyBuilder {
    config: ProxyConfig,
    sinks: FanoutSink,
    stats: Arc<Stats>,
}

/// A running proxy.
pub struct ProxyHandle {
    listeners: Vec<(String, SocketAddr)>,
    admin: Option<SocketAddr>,
    stats: Arc<Stats>,
    clusters: Arc<HashMap<String, Arc<Cluster>>>,
    access_log: Arc<BroadcastSink>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    timers: Vec<JoinHandle<()>>,
    health_checkers: Vec<HealthCheckerHandle>,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error("invalid proxy configuration: {0}")]
    Config(#[from] ConfigError),
    /// A bind names a listener the configuration does not have.
    #[error("no listener named {0:?}")]
    UnknownListener(String),
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The admin listener must stay on loopback.
    #[error("admin address {0} is not a loopback address")]
    AdminNotLoopback(SocketAddr),
}

impl Proxy {
    /// Starts a proxy with default options (access log via subscription only).
    pub async fn start(
        config: ProxyConfig,
        binds: Vec<(String, SocketAddr)>,
        admin: Option<SocketAddr>,
    ) -> Result<ProxyHandle, StartError> {
        Proxy::builder(config).start(binds, admin).await
    }

    /// A builder to add access log sinks before starting.
    pub fn builder(config: ProxyConfig) -> ProxyBuilder {
        ProxyBuilder {
            config,
            sinks: FanoutSink::default(),
            stats: Arc::new(Stats::default()),
        }
    }
}

impl ProxyBuilder {
    /// The stats registry the proxy will use, so callers can register their own counters
    /// (`Stats::http_counter`, `Stats::root_counter`, `Stats::cluster_counter`) before start.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Adds an access log sink (for example a [`super::access_log::JsonLinesSink`]).
    pub fn access_log_sink(mut self, sink: Arc<dyn AccessLogSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Binds every listener named in `binds` (`(listener name, address)`), the optional admin
    /// listener, and starts serving.
    pub async fn start(
        self,
        binds: Vec<(String, SocketAddr)>,
        admin: Option<SocketAddr>,
    ) -> Result<ProxyHandle, StartError> {
        let ProxyBuilder {
            config,
            mut sinks,
            stats,
        } = self;
        config.validate()?;
        if let Some(a) = admin
            && !a.ip().is_loopback()
        {
            return Err(StartError::AdminNotLoopback(a));
        }
        let rng = RngSource::new(config.seed);
        let mut clusters = HashMap::new();
        for c in &config.clusters {
            let cluster = Arc::new(Cluster::new(c.clone(), &rng)?);
            stats.register(Arc::clone(&cluster) as _);
            clusters.insert(c.name.clone(), cluster);
        }
        let clusters = Arc::new(clusters);
        let access_log = Arc::new(BroadcastSink::new(ACCESS_LOG_BUFFER));
        sinks.push(Arc::clone(&access_log) as _);
        let shared = Shared {
            global_rate_limit: Arc::new(GlobalRateLimiter::new(WallClock::system())),
            sink: Arc::new(sinks),
            rng: Arc::new(rng.stream("router")),
            request_ids: Arc::new(rng.stream("request-id")),
            epoch: Instant::now(),
        };
        let (shutdown, _) = watch::channel(false);

        // Bind everything first so a bind error starts nothing.
        let mut bound = Vec::new();
        for (name, addr) in binds {
            let listener = config
                .listeners
                .iter()
                .find(|l| l.name == name)
                .ok_or_else(|| StartError::UnknownListener(name.clone()))?;
            let socket = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            let local = socket
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source })?;
            bound.push((listener, socket, local));
        }
        let admin_socket = match admin {
            Some(addr) => {
                let socket = TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?;
                let local = socket
                    .local_addr()
                    .map_err(|source| StartError::Bind { addr, source })?;
                Some((socket, local))
            }
            None => None,
        };

        let mut servers = Vec::new();
        let mut listeners = Vec::new();
        let mut ready = Vec::new();
        let mut feature_routes = Vec::new();
        for (listener, socket, local) in bound {
            let stats_block = Arc::new(ListenerStats {
                name: listener.name.clone(),
                stats: HttpStats::default(),
            });
            stats.register(Arc::clone(&stats_block) as _);
            let pipeline = Arc::new(Pipeline::new(
                listener,
                local,
                |name| clusters.get(name).cloned(),
                shared.clone(),
                Arc::clone(&stats_block),
            )?);
            feature_routes.extend(pipeline.feature_stats().routes);
            listeners.push((listener.name.clone(), local));
            ready.push((listener.name.as_str(), local, socket, pipeline, stats_block));
        }

        // One source for every listener, so proxy-wide stats (the local rate limiter's) sum.
        stats.register(Arc::new(FeatureStats {
            routes: feature_routes,
        }) as _);

        // Active health checks, then warming (see the module docs).
        let mut health_checkers = Vec::new();
        for (i, c) in clusters.values().enumerate() {
            if let Some(h) = c.start_health_checks(config.seed.wrapping_add(i as u64)) {
                let hc = c.health_check.as_ref().map(|hc| &hc.spec);
                let bound =
                    hc.map_or(Duration::ZERO, |s| s.initial_jitter + s.timeout()) + WARMING_MARGIN;
                health_checkers.push((bound, h));
            }
        }
        for (bound, h) in &health_checkers {
            if tokio::time::timeout(*bound, h.initialized()).await.is_err() {
                tracing::warn!("health check warming timed out; unanswered hosts stay failed");
            }
        }
        let health_checkers = health_checkers.into_iter().map(|(_, h)| h).collect();
        for (name, local, socket, pipeline, stats_block) in ready {
            tracing::info!(listener = %name, addr = %local, "proxy listener started");
            servers.push(tokio::spawn(serve(
                socket,
                pipeline,
                stats_block,
                shutdown.subscribe(),
            )));
        }
        let mut admin_addr = None;
        if let Some((socket, local)) = admin_socket {
            admin_addr = Some(local);
            let state = Arc::new(admin::AdminState {
                stats: Arc::clone(&stats),
                clusters: clusters.values().cloned().collect(),
            });
            servers.push(tokio::spawn(admin::serve(
                socket,
                state,
                shutdown.subscribe(),
            )));
        }
        let timers = clusters
            .values()
            .filter_map(|c| c.outlier.clone())
            .map(|od| tokio::spawn(od.run()))
            .collect();
        Ok(ProxyHandle {
            listeners,
            admin: admin_addr,
            stats,
            clusters,
            access_log,
            shutdown,
            servers,
            timers,
            health_checkers,
        })
    }
}

impl ProxyHandle {
    /// `(listener name, bound address)` of every started listener.
    pub fn listener_addrs(&self) -> &[(String, SocketAddr)] {
        &self.listeners
    }

    /// The bound address of one listener.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
    }

    /// The admin listener's address, when started.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The stats registry (read it with `snapshot()` or `get(name)`).
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// A run-time cluster by name (health checking uses its hosts and outlier detector).
    pub fn cluster(&self, name: &str) -> Option<&Arc<Cluster>> {
        self.clusters.get(name)
    }

    /// Subscribes to access log entries of requests finishing from now on.
    pub fn subscribe_access_log(&self) -> broadcast::Receiver<Arc<AccessLogEntry>> {
        self.access_log.subscribe()
    }

    /// Stops accepting, lets open connections finish (bounded), and stops timers.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for s in self.servers.drain(..) {
            let _ = s.await;
        }
        for t in self.timers.drain(..) {
            t.abort();
        }
        self.health_checkers.clear();
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.timers {
            t.abort();
        }
    }
}

/// Accepts connections of one listener until shutdown; one task per connection.
async fn serve(
    socket: TcpListener,
    pipeline: Arc<Pipeline>,
    stats: Arc<ListenerStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = socket.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                stats.stats.downstream_cx_total.inc();
                stats.stats.downstream_cx_active.inc();
                let pipeline = Arc::clone(&pipeline);
                let stats = Arc::clone(&stats);
                let shutdown = shutdown.clone();
                connections.spawn(async move {
                    downstream::serve_connection(stream, peer, pipeline, shutdown, DRAIN_TIMEOUT).await;
                    stats.stats.downstream_cx_active.dec();
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(socket);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}
