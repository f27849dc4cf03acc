//! An upstream cluster: its hosts, circuit breakers, connection pools, load balancer and
//! outlier detector, all shared by every request and connection of the proxy.

pub mod h1;
pub mod host_set;
pub mod outlier;
pub mod pool;
pub mod resources;
pub mod response_body;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use self::host_set::{Host, HostSet};
use self::outlier::{Outcome, OutlierDetector};
use self::pool::{PoolContext, PoolSettings};
use self::resources::ClusterResources;
use crate::proxy::config::{ClusterConfig, ConfigError};
use crate::proxy::health_check::{
    HealthCheckSpec, HealthCheckStats, HealthChecker, HealthCheckerHandle,
};
use crate::proxy::lb::LoadBalancer;
use crate::proxy::rng::RngSource;
use crate::proxy::stats::{ClusterStats, Scope, StatKind, StatSource};

/// One upstream cluster at run time.
#[derive(Debug)]
pub struct Cluster {
    /// The configuration it was built from.
    pub config: ClusterConfig,
    /// Hosts and their health.
    pub hosts: Arc<HostSet>,
    /// Envoy-named stats.
    pub stats: Arc<ClusterStats>,
    /// Connection pools' shared context (settings, circuit breakers).
    pub pool: Arc<PoolContext>,
    /// Load balancer.
    pub lb: LoadBalancer,
    /// Outlier detector, when configured.
    pub outlier: Option<Arc<OutlierDetector>>,
    /// The cluster name, shared with access log entries.
    pub name: Arc<str>,
    /// The backend label when every endpoint belongs to one backend (so requests the proxy
    /// answers itself can still be attributed to it).
    pub backend: Option<Arc<str>>,
    /// Active health checking, when configured.
    pub health_check: Option<ActiveHealth>,
}

/// A cluster's active health checking: its validated spec, stats, and once started, the
/// checker's "cluster has seen traffic" switch.
#[derive(Debug)]
pub struct ActiveHealth {
    /// The validated checker configuration.
    pub spec: Arc<HealthCheckSpec>,
    /// `health_check.*` stats.
    pub stats: Arc<HealthCheckStats>,
    traffic: OnceLock<Arc<AtomicBool>>,
    passive: OnceLock<Arc<[AtomicBool]>>,
}

impl Cluster {
    /// Builds the run-time cluster; random streams are derived from `rng` by cluster name.
    pub fn new(config: ClusterConfig, rng: &RngSource) -> Result<Self, ConfigError> {
        if let Some(od) = &config.outlier_detection {
            od.validate()?;
        }
        let health_check = config
            .health_check
            .as_ref()
            .map(|hc| {
                HealthCheckSpec::try_new(hc).map(|spec| ActiveHealth {
                    spec: Arc::new(spec),
                    stats: Arc::new(HealthCheckStats::default()),
                    traffic: OnceLock::new(),
                    passive: OnceLock::new(),
                })
            })
            .transpose()
            .map_err(|e| ConfigError::feature(&config.name, "healthCheck.active", e))?;
        let hosts = Arc::new(HostSet::new(&config.endpoints));
        if health_check.is_some() {
            // Envoy adds every host of a health-checked cluster as /failed_active_hc.
            for i in 0..config.endpoints.len() {
                hosts.set_health_flag(i, host_set::HealthFlag::FailedActiveHc, true);
            }
        }
        let stats = Arc::new(ClusterStats::default());
        let resources = Arc::new(ClusterResources::new(&config.circuit_breaker));
        let pool = Arc::new(PoolContext {
            settings: PoolSettings {
                connect_timeout: config.connect_timeout,
                max_requests_per_connection: config.max_requests_per_connection.map(|n| n.get()),
                idle_timeout: config.idle_timeout,
                max_connection_duration: config.max_connection_duration,
                tcp_keepalive: config.tcp_keepalive,
            },
            resources,
            stats: Arc::clone(&stats),
        });
        let lb = LoadBalancer::new(&config, rng.stream(&format!("lb/{}", config.name)));
        let outlier = config.outlier_detection.clone().map(|od| {
            Arc::new(OutlierDetector::new(
                od,
                Arc::clone(&hosts),
                Arc::clone(&stats),
                rng.stream(&format!("outlier/{}", config.name)),
            ))
        });
        let name = Arc::from(config.name.as_str());
        let backend = match config.endpoints.split_first() {
            Some((first, rest)) if rest.iter().all(|e| e.backend == first.backend) => {
                Some(Arc::from(first.backend.as_str()))
            }
            _ => None,
        };
        Ok(Cluster {
            name,
            backend,
            config,
            hosts,
            stats,
            pool,
            lb,
            outlier,
            health_check,
        })
    }

    /// Starts the active health checker (when configured): transitions set or clear
    /// `/failed_active_hc`, and every successful check returns an outlier-ejected host (§d.2).
    /// `seed` drives the initial jitter. Returns the handle owning the probe tasks.
    pub fn start_health_checks(&self, seed: u64) -> Option<HealthCheckerHandle> {
        let hc = self.health_check.as_ref()?;
        let addrs = self.hosts.hosts().iter().map(|h| h.endpoint.addr).collect();
        let hosts = Arc::clone(&self.hosts);
        let excluded = Arc::clone(&self.hosts);
        let outlier = self.outlier.clone();
        let name = Arc::clone(&self.name);
        let handle = HealthChecker::spawn_with_success(
            Arc::clone(&hc.spec),
            addrs,
            move |i, healthy| {
                hosts.set_health_flag(i, host_set::HealthFlag::FailedActiveHc, !healthy);
                if healthy {
                    // A host excluded by an immediate health-check failure is back.
                    hosts.set_health_flag(
                        i,
                        host_set::HealthFlag::ExcludedViaImmediateHcFail,
                        false,
                    );
                }
                tracing::info!(cluster = %name, host = i, healthy, "active health changed");
            },
            move |i| {
                if let Some(od) = &outlier {
                    od.uneject(i);
                }
            },
            move |i| {
                // A failing check answered with x-envoy-immediate-health-check-fail.
                excluded.set_health_flag(i, host_set::HealthFlag::ExcludedViaImmediateHcFail, true);
            },
            Arc::clone(&hc.stats),
            seed,
        );
        // A restart (not done today) keeps the first switch; either flips the same way.
        let _ = hc.traffic.set(handle.traffic_marker());
        let _ = hc.passive.set(handle.passive_failures());
        Some(handle)
    }

    /// Tells the health checker the cluster has seen traffic (its probes then run every
    /// `interval` instead of `no_traffic_interval`). One relaxed load once set.
    pub fn note_traffic(&self) {
        if let Some(flag) = self.health_check.as_ref().and_then(|hc| hc.traffic.get())
            && !flag.load(Ordering::Relaxed)
        {
            flag.store(true, Ordering::Relaxed);
        }
    }

    /// An upstream response of `host` carried `x-envoy-immediate-health-check-fail`. With
    /// active health checking (Envoy's router calls the host's health-check monitor, a no-op
    /// otherwise) the host is excluded from load balancing and fails active health checking at
    /// once (`/failed_active_hc/excluded_via_immediate_hc_fail`, `health_check.failure` and
    /// `health_check.passive_failure`); active checks bring it back after `healthy_threshold`
    /// successes.
    pub fn immediate_health_check_fail(&self, host: &Host) {
        let Some(hc) = &self.health_check else {
            return;
        };
        let Some(passive) = hc.passive.get() else {
            return;
        };
        let i = host.index;
        self.hosts
            .set_health_flag(i, host_set::HealthFlag::ExcludedViaImmediateHcFail, true);
        self.hosts
            .set_health_flag(i, host_set::HealthFlag::FailedActiveHc, true);
        hc.stats.failure.fetch_add(1, Ordering::Relaxed);
        hc.stats.passive_failure.fetch_add(1, Ordering::Relaxed);
        if let Some(flag) = passive.get(i) {
            flag.store(true, Ordering::Release);
        }
        tracing::info!(cluster = %self.name, host = i, "host excluded: x-envoy-immediate-health-check-fail");
    }

    /// Circuit-breaker counters.
    pub fn resources(&self) -> &ClusterResources {
        &self.pool.resources
    }

    /// Feeds one attempt's result to host error counts and outlier detection.
    pub fn report(&self, host: &Host, outcome: Outcome) {
        if matches!(outcome, Outcome::LocalFailure(_) | Outcome::Response(500..)) {
            host.count_error();
        }
        if let Some(od) = &self.outlier {
            od.report(host, outcome);
        }
    }
}

impl StatSource for Cluster {
    fn visit(&self, f: &mut dyn FnMut(Scope<'_>, &str, StatKind, u64)) {
        use StatKind::Gauge as G;
        let scope = Scope::Cluster(&self.config.name);
        self.stats
            .for_each(&mut |name, kind, v| f(scope, name, kind, v));
        for (code, v) in self.stats.upstream_rq_by_code.used() {
            f(scope, &format!("upstream_rq_{code}"), StatKind::Counter, v);
        }
        let r = self.resources();
        let open = |res: &resources::Resource| u64::from(res.is_open());
        let table: [(&str, u64); 9] = [
            ("upstream_rq_active", r.requests.current()),
            ("upstream_rq_pending_active", r.pending_requests.current()),
            ("upstream_cx_active", r.connections.current()),
            ("circuit_breakers.default.cx_open", open(&r.connections)),
            (
                "circuit_breakers.default.rq_pending_open",
                open(&r.pending_requests),
            ),
            ("circuit_breakers.default.rq_open", open(&r.requests)),
            ("circuit_breakers.default.rq_retry_open", open(&r.retries)),
            ("membership_total", self.hosts.hosts().len() as u64),
            ("membership_healthy", self.hosts.healthy().len() as u64),
        ];
        for (name, v) in table {
            f(scope, name, G, v);
        }
        if let Some(hc) = &self.health_check {
            for (name, v) in hc.stats.snapshot() {
                let kind = if name == "health_check.healthy" {
                    G
                } else {
                    StatKind::Counter
                };
                f(scope, name, kind, u64::try_from(v).unwrap_or(0));
            }
        }
    }
}
