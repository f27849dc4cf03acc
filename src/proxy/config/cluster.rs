//! Cluster configuration: one Envoy cluster per HTTPRoute rule, as Envoy Gateway builds it.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use super::{ConfigError, Percent};

/// One Envoy cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Envoy Gateway's cluster name, `httproute/<ns>/<name>/rule/<i>`.
    pub name: String,
    /// Static endpoints (all in one priority and locality).
    pub endpoints: Vec<Endpoint>,
    /// `circuit_breakers.thresholds[DEFAULT]` and `per_host_thresholds`.
    pub circuit_breaker: CircuitBreakerThresholds,
    /// `connect_timeout` (Envoy Gateway default 10 s).
    pub connect_timeout: Duration,
    /// `max_requests_per_connection` (`None` = unlimited).
    pub max_requests_per_connection: Option<NonZeroU32>,
    /// Upstream connection `idle_timeout` (Envoy default 1 h; `None` = disabled).
    pub idle_timeout: Option<Duration>,
    /// Upstream `max_connection_duration` (`None` = unlimited).
    pub max_connection_duration: Option<Duration>,
    /// Load-balancing policy (Envoy Gateway default: LeastRequest).
    pub lb: LbPolicy,
    /// Slow start for RoundRobin and LeastRequest.
    pub slow_start: Option<SlowStart>,
    /// Passive health checking; `None` = no outlier detection.
    pub outlier_detection: Option<OutlierDetectionConfig>,
    /// `healthy_panic_threshold` (default 50; 0 disables panic mode).
    pub panic_threshold: Percent,
    /// `loadBalancer.endpointOverride.extractFrom[].header`: headers naming preferred endpoints
    /// (`IP:Port[,IP:Port...]`); an available one is used, else the load balancer decides.
    pub endpoint_override_headers: Vec<http::HeaderName>,
    /// `healthCheck.active`: the active health checker of this cluster. Envoy then starts every
    /// host as `/failed_active_hc` until its first successful check; the proxy starts serving
    /// once the first round of checks finished (see [`crate::proxy::server`]).
    pub health_check: Option<crate::proxy::health_check::HealthCheckConfig>,
    /// `tcpKeepalive`: TCP keepalive of upstream sockets (`None` = OS defaults, keepalive off).
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// The HTTP version spoken upstream (Envoy's `upstream_protocol_options`).
    pub upstream_protocol: UpstreamProtocol,
}

/// The HTTP version of upstream connections, as Envoy Gateway sets the cluster's
/// `HttpProtocolOptions.upstream_protocol_options`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamProtocol {
    /// `explicit_http_config.http_protocol_options`: HTTP/1.1 (the default).
    #[default]
    Http1,
    /// `explicit_http_config.http2_protocol_options`: h2c with prior knowledge (GRPCRoute
    /// clusters, and backends with appProtocol h2c or grpc).
    Http2,
    /// `use_downstream_protocol_config` (`useClientProtocol: true`): HTTP/2 upstream for
    /// HTTP/2 downstream requests, HTTP/1.1 otherwise.
    UseDownstream,
}

impl UpstreamProtocol {
    /// Whether a request that arrived as `downstream` goes upstream over HTTP/2.
    pub fn is_h2_for(self, downstream: http::Version) -> bool {
        match self {
            UpstreamProtocol::Http1 => false,
            UpstreamProtocol::Http2 => true,
            UpstreamProtocol::UseDownstream => downstream == http::Version::HTTP_2,
        }
    }
}

/// `upstream_connection_options.tcp_keepalive`; unset fields keep the OS defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpKeepalive {
    /// `keepalive_probes`: unanswered probes before the connection is dropped.
    pub probes: Option<u32>,
    /// `keepalive_time`: idle time before the first probe (whole seconds in Envoy).
    pub idle: Option<Duration>,
    /// `keepalive_interval`: time between probes (whole seconds in Envoy).
    pub interval: Option<Duration>,
}

/// One upstream endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Address the proxy connects to.
    pub addr: SocketAddr,
    /// Load-balancing weight (≥ 1).
    pub weight: NonZeroU32,
    /// The Service/Backend this endpoint belongs to, `ns/name`.
    pub backend: String,
    /// Replica index inside that backend.
    pub replica: usize,
    /// Envoy priority level (0 = highest). Envoy Gateway puts `fallback` backends at 1.
    pub priority: u32,
}

/// Circuit-breaker thresholds of the DEFAULT priority.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitBreakerThresholds {
    /// `max_connections` (default 1024).
    pub max_connections: u32,
    /// `max_pending_requests` (default 1024).
    pub max_pending_requests: u32,
    /// `max_requests` (default 1024).
    pub max_requests: u32,
    /// `max_retries` (Envoy Gateway always sets 1024).
    pub max_retries: u32,
    /// `per_host_thresholds[0].max_connections` (default 1024 as Envoy Gateway sets it).
    pub per_host_max_connections: u32,
    /// `retry_budget`; when set it replaces `max_retries`.
    pub retry_budget: Option<RetryBudget>,
}

/// Envoy's retry budget: concurrent retries allowed =
/// max(`min_retry_concurrency`, `percent` % of active plus pending requests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    percent: f64,
    min_retry_concurrency: u32,
}

/// The cluster's load-balancing policy; `lb::LoadBalancer::new` is the single dispatch point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    /// Weighted round robin.
    RoundRobin,
    /// Power of `choice_count` choices (equal weights) or weight/(active+1) (unequal weights).
    LeastRequest {
        /// Number of random candidates (≥ 2, default 2).
        choice_count: u32,
    },
    /// Uniform random.
    Random,
    /// `ConsistentHash`: Maglev over the usable hosts, keyed by the route's hash policy
    /// ([`super::ForwardAction::hash_policy`]); a request without hash input picks at random.
    ConsistentHash {
        /// Maglev table size (prime, 2..=5000011; EG default 65537).
        table_size: u64,
    },
}

/// Slow start: a new host's weight ramps linearly over `window` from 10 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowStart {
    /// Ramp duration (> 0).
    pub window: Duration,
}

/// Envoy `outlier_detection` as Envoy Gateway emits it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierDetectionConfig {
    /// Evaluation interval (EG default 3 s).
    pub interval: Duration,
    /// `consecutive_5xx` (EG default 5); `None` disables the detector.
    pub consecutive_5xx: Option<NonZeroU32>,
    /// `consecutive_gateway_failure`; set only when configured (EG then enforces it at 100 %).
    pub consecutive_gateway_failure: Option<NonZeroU32>,
    /// `consecutive_local_origin_failure` (default 5; only used with split errors).
    pub consecutive_local_origin_failure: Option<NonZeroU32>,
    /// `split_external_local_origin_errors`.
    pub split_external_local_origin_errors: bool,
    /// `base_ejection_time` (EG default 30 s).
    pub base_ejection_time: Duration,
    /// `max_ejection_time` (Envoy default 300 s).
    pub max_ejection_time: Duration,
    /// `max_ejection_percent` (default 10).
    pub max_ejection_percent: Percent,
    /// `always_eject_one_host`.
    pub always_eject_one_host: bool,
    /// `enforcing_consecutive_5xx` (default 100).
    pub enforcing_consecutive_5xx: Percent,
    /// `enforcing_consecutive_gateway_failure` (Envoy default 0; EG sets 100 when configured).
    pub enforcing_consecutive_gateway_failure: Percent,
    /// `enforcing_local_origin_success_rate`/`consecutive_local_origin_failure` enforcement (100).
    pub enforcing_consecutive_local_origin_failure: Percent,
    /// Failure-percentage detector, when EG turns it on.
    pub failure_percentage: Option<FailurePercentage>,
    /// Success-rate detector (on by default in Envoy; EG leaves it so).
    pub success_rate: Option<SuccessRate>,
}

/// Success-rate detector settings (Envoy defaults: 5 hosts, 100 requests, factor 1.9).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuccessRate {
    /// Minimum hosts with enough volume.
    pub minimum_hosts: u32,
    /// Minimum requests per host in the interval.
    pub request_volume: u32,
    /// Ejection threshold = mean − `stdev_factor` × stdev.
    pub stdev_factor: f64,
    /// `enforcing_success_rate` (default 100).
    pub enforcing: Percent,
}

impl Default for SuccessRate {
    fn default() -> Self {
        SuccessRate {
            minimum_hosts: 5,
            request_volume: 100,
            stdev_factor: 1.9,
            enforcing: Percent::HUNDRED,
        }
    }
}

/// Failure-percentage detector settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePercentage {
    /// Eject when a host's failure percentage ≥ this.
    pub threshold: Percent,
    /// Minimum hosts with enough volume (Envoy default 5).
    pub minimum_hosts: u32,
    /// Minimum requests per host in the interval (Envoy default 50).
    pub request_volume: u32,
    /// `enforcing_failure_percentage` (EG sets 100).
    pub enforcing: Percent,
}

impl ClusterConfig {
    /// A cluster with Envoy Gateway's effective defaults.
    pub fn new(name: impl Into<String>, endpoints: Vec<Endpoint>) -> Self {
        ClusterConfig {
            name: name.into(),
            endpoints,
            circuit_breaker: CircuitBreakerThresholds::default(),
            connect_timeout: Duration::from_secs(10),
            max_requests_per_connection: None,
            idle_timeout: Some(Duration::from_secs(3600)),
            max_connection_duration: None,
            lb: LbPolicy::LeastRequest { choice_count: 2 },
            slow_start: None,
            outlier_detection: None,
            panic_threshold: Percent(50),
            health_check: None,
            tcp_keepalive: None,
            endpoint_override_headers: Vec::new(),
            upstream_protocol: UpstreamProtocol::Http1,
        }
    }
}

impl ClusterConfig {
    /// Validates the feature blocks: the active health check and the Maglev table size
    /// (prime, and at least one entry per endpoint).
    pub fn validate_features(&self) -> Result<(), ConfigError> {
        if let Some(hc) = &self.health_check {
            crate::proxy::health_check::HealthCheckSpec::try_new(hc)
                .map_err(|e| ConfigError::feature(&self.name, "healthCheck.active", e))?;
        }
        if let LbPolicy::ConsistentHash { table_size } = self.lb {
            LbPolicy::consistent_hash(table_size)?;
            if (self.endpoints.len() as u64) > table_size {
                return Err(ConfigError::feature(
                    &self.name,
                    "loadBalancer.consistentHash.tableSize",
                    format!("{table_size} is smaller than the endpoint count"),
                ));
            }
        }
        Ok(())
    }
}

impl Endpoint {
    /// An endpoint of weight 1.
    pub fn new(addr: SocketAddr, backend: impl Into<String>, replica: usize) -> Self {
        Endpoint {
            addr,
            weight: NonZeroU32::MIN,
            backend: backend.into(),
            replica,
            priority: 0,
        }
    }
}

impl Default for CircuitBreakerThresholds {
    /// Envoy defaults with Envoy Gateway's max_retries of 1024.
    fn default() -> Self {
        CircuitBreakerThresholds {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 1024,
            per_host_max_connections: 1024,
            retry_budget: None,
        }
    }
}

impl LbPolicy {
    /// LeastRequest with a validated choice count (≥ 2).
    pub fn least_request(choice_count: u32) -> Result<Self, ConfigError> {
        if choice_count < 2 {
            return Err(ConfigError::OutOfRange {
                field: "loadBalancer.leastRequest.choiceCount",
                message: format!("{choice_count} is less than 2"),
            });
        }
        Ok(LbPolicy::LeastRequest { choice_count })
    }

    /// ConsistentHash (Maglev) with a validated table size (prime within 2..=5000011).
    pub fn consistent_hash(table_size: u64) -> Result<Self, ConfigError> {
        use crate::proxy::lb::maglev::{MAX_TABLE_SIZE, is_prime};
        if !(2..=MAX_TABLE_SIZE).contains(&table_size) || !is_prime(table_size) {
            return Err(ConfigError::OutOfRange {
                field: "loadBalancer.consistentHash.tableSize",
                message: format!("{table_size} is not a prime within 2..=5000011"),
            });
        }
        Ok(LbPolicy::ConsistentHash { table_size })
    }
}

impl RetryBudget {
    /// `percent` must be within 0..=100 (Envoy Gateway's numerator/denominator × 100).
    pub fn try_new(percent: f64, min_retry_concurrency: Option<u32>) -> Result<Self, ConfigError> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(ConfigError::OutOfRange {
                field: "circuitBreaker.retryBudget.percent",
                message: format!("{percent} is not within 0..=100"),
            });
        }
        Ok(RetryBudget {
            percent,
            min_retry_concurrency: min_retry_concurrency.unwrap_or(3),
        })
    }

    /// Concurrent retries allowed with `outstanding` active plus pending requests.
    pub fn allowed(&self, outstanding: u64) -> u64 {
        // Truncation matches Envoy's integer conversion of the budget.
        let by_percent = (self.percent / 100.0 * outstanding as f64) as u64;
        by_percent.max(u64::from(self.min_retry_concurrency))
    }
}

impl SlowStart {
    /// The window must be > 0.
    pub fn try_new(window: Duration) -> Result<Self, ConfigError> {
        if window.is_zero() {
            return Err(ConfigError::OutOfRange {
                field: "loadBalancer.slowStart.window",
                message: "must be greater than 0".to_string(),
            });
        }
        Ok(SlowStart { window })
    }
}

impl Default for OutlierDetectionConfig {
    /// Envoy Gateway's defaults for `healthCheck.passive`.
    fn default() -> Self {
        OutlierDetectionConfig {
            interval: Duration::from_secs(3),
            consecutive_5xx: NonZeroU32::new(5),
            consecutive_gateway_failure: None,
            consecutive_local_origin_failure: NonZeroU32::new(5),
            split_external_local_origin_errors: false,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: Percent(10),
            always_eject_one_host: false,
            enforcing_consecutive_5xx: Percent::HUNDRED,
            enforcing_consecutive_gateway_failure: Percent::HUNDRED,
            enforcing_consecutive_local_origin_failure: Percent::HUNDRED,
            failure_percentage: None,
            success_rate: Some(SuccessRate::default()),
        }
    }
}

impl OutlierDetectionConfig {
    /// Checks durations (interval and base ejection time > 0).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval.is_zero() {
            return Err(ConfigError::OutOfRange {
                field: "healthCheck.passive.interval",
                message: "must be greater than 0".to_string(),
            });
        }
        if self.base_ejection_time.is_zero() {
            return Err(ConfigError::OutOfRange {
                field: "healthCheck.passive.baseEjectionTime",
                message: "must be greater than 0".to_string(),
            });
        }
        Ok(())
    }
}

impl FailurePercentage {
    /// Envoy's defaults around a configured threshold.
    pub fn with_threshold(threshold: Percent) -> Self {
        FailurePercentage {
            threshold,
            minimum_hosts: 5,
            request_volume: 50,
            enforcing: Percent::HUNDRED,
        }
    }
}
