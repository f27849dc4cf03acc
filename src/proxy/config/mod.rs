//! The proxy's own validated configuration model.
//!
//! It maps 1:1 onto Envoy concepts as Envoy Gateway generates them: a listener holds routes (one
//! Envoy route per HTTPRoute rule match), a route forwards to weighted clusters (one Envoy cluster
//! per HTTPRoute rule), a cluster holds endpoints plus circuit breakers, timeouts, load balancing
//! and outlier detection. Whoever resolves Gateway API + BTP manifests builds this model; the
//! proxy never sees raw manifests. Numbers whose range matters are newtypes built by `try_new`.
//!
//! Where Envoy Gateway's translation puts each BackendTrafficPolicy field (btp-spec §c):
//!
//! | BTP field | here |
//! | --- | --- |
//! | `circuitBreaker.maxConnections` / `maxPendingRequests` / `maxParallelRequests` / `maxParallelRetries` | [`ClusterConfig::circuit_breaker`] `max_connections` / `max_pending_requests` / `max_requests` / `max_retries` |
//! | `circuitBreaker.perEndpoint.maxConnections` | `circuit_breaker.per_host_max_connections` |
//! | `circuitBreaker.retryBudget` | `circuit_breaker.retry_budget` ([`RetryBudget::try_new`]) |
//! | `circuitBreaker.maxRequestsPerConnection` | [`ClusterConfig::max_requests_per_connection`] |
//! | `timeout.tcp.connectTimeout` | [`ClusterConfig::connect_timeout`] |
//! | `timeout.http.connectionIdleTimeout` / `maxConnectionDuration` | [`ClusterConfig::idle_timeout`] / [`ClusterConfig::max_connection_duration`] |
//! | `timeout.http.requestTimeout` (or HTTPRoute `timeouts.request`) | [`ForwardAction::timeout`] (`None` for 0) |
//! | `timeout.http.streamIdleTimeout` (else max(1h, request timeout)) | [`ForwardAction::idle_timeout`] |
//! | `timeout.http.maxStreamDuration` | [`ForwardAction::max_stream_duration`] |
//! | `retry` (or HTTPRoute rule `retry`) | [`ForwardAction::retry`] ([`RetryPolicy`]; defaults in [`RetryPolicy::envoy_gateway_default`]) |
//! | `loadBalancer.type` / `slowStart.window` | [`ClusterConfig::lb`] / [`ClusterConfig::slow_start`] |
//! | `loadBalancer.endpointOverride.extractFrom[].header` | [`ClusterConfig::endpoint_override_headers`] |
//! | `healthCheck.panicThreshold` | [`ClusterConfig::panic_threshold`] |
//! | `healthCheck.passive.*` | [`ClusterConfig::outlier_detection`] ([`OutlierDetectionConfig`]; `maxEjectionPercent: 0` stays 10) |
//! | `healthCheck.active` | [`ClusterConfig::health_check`] (hosts start failed; the proxy waits for the first round) |
//! | `loadBalancer.consistentHash` | [`LbPolicy::ConsistentHash`] (`tableSize`) + [`ForwardAction::hash_policy`] (inputs) |
//! | `tcpKeepalive` | [`ClusterConfig::tcp_keepalive`] |
//! | `connection.bufferLimit` | not enforced |
//! | `faultInjection` | [`RouteConfig::fault`] |
//! | `rateLimit.local` / `rateLimit.global` | [`RouteConfig::local_rate_limit`] / [`RouteConfig::global_rate_limit`] |
//! | `requestBuffer.limit` | [`RouteConfig::request_buffer_limit`] |
//! | `responseOverride` | [`RouteConfig::response_overrides`] ([`ResponseOverrideRule`]) |
//! | HTTPRoute rule backendRefs | [`ForwardAction::backends`] and one [`ClusterConfig`] per rule |
//! | Backend `fallback: true` | [`Endpoint::priority`] 1 |
//! | a failed translation | [`RouteAction::DirectResponse`] with 500 |

mod cluster;
mod response_override;
mod route;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

pub use cluster::{
    CircuitBreakerThresholds, ClusterConfig, Endpoint, FailurePercentage, LbPolicy,
    OutlierDetectionConfig, RetryBudget, SlowStart, SuccessRate, TcpKeepalive, UpstreamProtocol,
};
pub use response_override::{
    HeaderValueMatch, OverrideAction, OverrideRedirect, OverrideResponse, OverrideSource,
    ResponseHeaderMatch, ResponseOverrideRule, StatusCodeMatch,
};
pub use route::{
    ForwardAction, HeaderMatch, Hostname, PathMatch, QueryParamMatch, RetryBackoff, RetryOn,
    RetryPolicy, RouteAction, RouteConfig, RouteMatch, RouteSource, StringMatch, WeightedCluster,
};

/// The whole proxy configuration: listeners with their routes, and the clusters they forward to.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Listeners, each named like Envoy Gateway names them (`<gateway ns>/<gateway>/<listener>`).
    pub listeners: Vec<ListenerConfig>,
    /// Upstream clusters, referenced by name from routes.
    pub clusters: Vec<ClusterConfig>,
    /// Seed of the single RNG source (load balancing, retry jitter, request ids).
    pub seed: u64,
}

/// One HTTP listener; its bind address is given when the proxy starts.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Listener name, e.g. `default/eg/http`.
    pub name: String,
    /// Routes in creation order; the router sorts them by Gateway API precedence.
    pub routes: Vec<RouteConfig>,
}

/// A percentage 0..=100 (panic threshold, ejection percentages, enforcing percentages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Percent(u8);

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value is out of its allowed range.
    #[error("{field}: {message}")]
    OutOfRange {
        /// The field path.
        field: &'static str,
        /// What is allowed.
        message: String,
    },
    /// A regular expression does not compile.
    #[error("invalid regular expression {pattern:?}: {message}")]
    Regex {
        /// The offending pattern.
        pattern: String,
        /// The compiler's message.
        message: String,
    },
    /// A route forwards to a cluster that is not defined.
    #[error("route {route}: unknown cluster {cluster}")]
    UnknownCluster {
        /// The route name.
        route: String,
        /// The missing cluster name.
        cluster: String,
    },
    /// Two objects of the same kind share a name.
    #[error("duplicate {kind} name {name}")]
    Duplicate {
        /// `listener` or `cluster`.
        kind: &'static str,
        /// The repeated name.
        name: String,
    },
    /// Invalid header name or value in a matcher.
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    /// A feature block (health check, hash policy, fault, rate limit...) failed validation.
    #[error("{object}: {feature}: {message}")]
    Feature {
        /// The route or cluster name.
        object: String,
        /// The feature, e.g. `healthCheck.active`.
        feature: &'static str,
        /// The feature's own validation message.
        message: String,
    },
}

impl Percent {
    /// The value 100.
    pub const HUNDRED: Percent = Percent(100);

    /// Accepts 0..=100.
    pub fn try_new(value: u32, field: &'static str) -> Result<Self, ConfigError> {
        u8::try_from(value)
            .ok()
            .filter(|v| *v <= 100)
            .map(Percent)
            .ok_or_else(|| ConfigError::OutOfRange {
                field,
                message: format!("{value} is not within 0..=100"),
            })
    }

    /// The value as an integer 0..=100.
    pub fn get(self) -> u32 {
        u32::from(self.0)
    }
}

impl ConfigError {
    /// A feature validation error of `object` (a route or cluster name).
    pub fn feature(object: &str, feature: &'static str, e: impl std::fmt::Display) -> Self {
        ConfigError::Feature {
            object: object.to_string(),
            feature,
            message: e.to_string(),
        }
    }
}

impl ProxyConfig {
    /// Checks cross references (unique names, every route's clusters exist) and every feature
    /// block (health checks, Maglev table sizes, faults, rate limits, hash policies, response
    /// overrides), so a caller can reject a configuration before starting a proxy.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for c in &self.clusters {
            if !names.insert(c.name.as_str()) {
                return Err(ConfigError::Duplicate {
                    kind: "cluster",
                    name: c.name.clone(),
                });
            }
            c.validate_features()?;
        }
        let mut listeners = HashSet::new();
        for l in &self.listeners {
            if !listeners.insert(l.name.as_str()) {
                return Err(ConfigError::Duplicate {
                    kind: "listener",
                    name: l.name.clone(),
                });
            }
            for r in &l.routes {
                r.validate_features()?;
                if let RouteAction::Forward(f) = &r.action {
                    for b in &f.backends {
                        if !names.contains(b.cluster.as_str()) {
                            return Err(ConfigError::UnknownCluster {
                                route: r.name.clone(),
                                cluster: b.cluster.clone(),
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
