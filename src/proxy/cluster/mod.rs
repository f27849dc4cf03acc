//! An upstream cluster: its hosts, circuit breakers, connection pools, load balancer and
//! outlier detector, all shared by every request and connection of the proxy.

pub mod host_set;
pub mod outlier;
pub mod pool;
pub mod resources;

use std::sync::Arc;

use self::host_set::{Host, HostSet};
use self::outlier::{Outcome, OutlierDetector};
use self::pool::{PoolContext, PoolSettings};
use self::resources::ClusterResources;
use crate::proxy::config::{ClusterConfig, ConfigError};
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
}

impl Cluster {
    /// Builds the run-time cluster; random streams are derived from `rng` by cluster name.
    pub fn new(config: ClusterConfig, rng: &RngSource) -> Result<Self, ConfigError> {
        if let Some(od) = &config.outlier_detection {
            od.validate()?;
        }
        let hosts = Arc::new(HostSet::new(&config.endpoints));
        if config.active_health_checked {
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
        })
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
    }
}
