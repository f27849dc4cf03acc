//! Route configuration: Envoy routes as Envoy Gateway emits them per HTTPRoute rule match.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, Method, StatusCode};
use regex::Regex;

use super::ConfigError;

/// One Envoy route: one match of one HTTPRoute rule.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Envoy Gateway's route name, `httproute/<ns>/<name>/rule/<i>/match/<j>`.
    pub name: String,
    /// The Gateway API object this route comes from, for logs and stats.
    pub source: RouteSource,
    /// Hostnames the route accepts; empty means any host.
    pub hostnames: Vec<Hostname>,
    /// What the request must look like.
    pub matches: RouteMatch,
    /// What to do with a matching request.
    pub action: RouteAction,
    /// `faultInjection`: Envoy's fault filter for this route (`None` = off).
    pub fault: Option<crate::proxy::fault::FaultConfig>,
    /// `rateLimit.local`: this route's token buckets (`None` = no limiter, no headers).
    pub local_rate_limit: Option<crate::proxy::rate_limit::LocalRateLimitConfig>,
    /// `rateLimit.global`: rules counted by the proxy's one in-process rate-limit service;
    /// non-shared rules count per route (keyed by [`RouteConfig::name`]), shared ones per policy.
    pub global_rate_limit: Option<crate::proxy::rate_limit::GlobalRateLimitConfig>,
    /// `requestBuffer.limit` in bytes: the request body is buffered and a larger one gets 413.
    pub request_buffer_limit: Option<u64>,
    /// `responseOverride`: rules applied to the final response; the first match wins.
    pub response_overrides: Vec<super::ResponseOverrideRule>,
}

/// The Gateway API route that produced an Envoy route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSource {
    /// `HTTPRoute` or `GRPCRoute`.
    pub kind: String,
    /// Route namespace.
    pub namespace: String,
    /// Route name.
    pub name: String,
    /// Rule index inside the route.
    pub rule: usize,
    /// The rule's `name`, when set.
    pub rule_name: Option<String>,
}

/// A Gateway API hostname: exact, or a `*.` wildcard matching any subdomain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hostname {
    /// `example.com` (stored lower-case).
    Exact(String),
    /// `*.example.com`, stored as the suffix `.example.com` (lower-case).
    Wildcard(String),
}

/// The conditions of one route match; all must hold.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    /// Path condition (Gateway API default: PathPrefix `/`).
    pub path: PathMatch,
    /// Header conditions.
    pub headers: Vec<HeaderMatch>,
    /// Query parameter conditions.
    pub query_params: Vec<QueryParamMatch>,
    /// Method condition.
    pub method: Option<Method>,
}

/// Gateway API path match.
#[derive(Debug, Clone)]
pub enum PathMatch {
    /// The whole path (without query) equals the value.
    Exact(String),
    /// Element-wise prefix: `/foo` matches `/foo` and `/foo/bar`, not `/foobar`.
    PathPrefix(String),
    /// The whole path matches the regular expression (RE2-like syntax).
    RegularExpression(Regex),
}

/// An exact or regular-expression string match.
#[derive(Debug, Clone)]
pub enum StringMatch {
    /// Equal strings.
    Exact(String),
    /// The whole value matches (anchored at build time).
    RegularExpression(Regex),
}

/// A header condition; names compare case-insensitively.
#[derive(Debug, Clone)]
pub struct HeaderMatch {
    /// Header name.
    pub name: HeaderName,
    /// Value condition.
    pub value: StringMatch,
}

/// A query-parameter condition (first occurrence of the name).
#[derive(Debug, Clone)]
pub struct QueryParamMatch {
    /// Parameter name (case-sensitive).
    pub name: String,
    /// Value condition.
    pub value: StringMatch,
}

/// What a route does.
#[derive(Debug, Clone)]
pub enum RouteAction {
    /// Envoy route action: forward upstream.
    Forward(ForwardAction),
    /// Envoy direct_response (for example the 500 of a failed translation).
    DirectResponse {
        /// Status to answer.
        status: StatusCode,
        /// Body to answer.
        body: Bytes,
    },
}

/// Envoy `route.route` action.
#[derive(Debug, Clone)]
pub struct ForwardAction {
    /// Weighted clusters; one is chosen at random by weight per request.
    pub backends: Vec<WeightedCluster>,
    /// Route timeout covering all attempts; `None` disables it (config value 0).
    pub timeout: Option<Duration>,
    /// Retry policy; none means no retries.
    pub retry: Option<RetryPolicy>,
    /// Route idle timeout (`None` = disabled).
    pub idle_timeout: Option<Duration>,
    /// Route max_stream_duration (`None` = unlimited).
    pub max_stream_duration: Option<Duration>,
    /// Route `hash_policy` for consistent-hash clusters (`loadBalancer.consistentHash`).
    pub hash_policy: Option<crate::proxy::lb::hash::HashPolicyConfig>,
}

/// One weighted backend of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedCluster {
    /// Cluster name.
    pub cluster: String,
    /// Relative weight; 0 means never chosen.
    pub weight: u32,
}

/// Envoy `route.retry_policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub num_retries: u32,
    /// Retry triggers.
    pub retry_on: RetryOn,
    /// Status codes for `retriable-status-codes` (sorted, deduplicated).
    pub retriable_status_codes: Vec<u16>,
    /// Per-attempt timeout.
    pub per_try_timeout: Option<Duration>,
    /// Back-off between attempts.
    pub backoff: RetryBackoff,
}

/// The set of retry triggers (`retry_on`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// `5xx`.
    pub five_xx: bool,
    /// `gateway-error`.
    pub gateway_error: bool,
    /// `reset`.
    pub reset: bool,
    /// `reset-before-request`.
    pub reset_before_request: bool,
    /// `connect-failure`.
    pub connect_failure: bool,
    /// `retriable-4xx`.
    pub retriable_4xx: bool,
    /// `refused-stream`.
    pub refused_stream: bool,
    /// `retriable-status-codes`.
    pub retriable_status_codes: bool,
    /// gRPC `cancelled` (1).
    pub grpc_cancelled: bool,
    /// gRPC `deadline-exceeded` (4).
    pub grpc_deadline_exceeded: bool,
    /// gRPC `internal` (13).
    pub grpc_internal: bool,
    /// gRPC `resource-exhausted` (8).
    pub grpc_resource_exhausted: bool,
    /// gRPC `unavailable` (14).
    pub grpc_unavailable: bool,
}

/// Envoy retry back-off: full jitter, exponential from `base`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBackoff {
    base: Duration,
    max: Duration,
}

impl RouteConfig {
    /// A route with no per-route features (no fault, rate limit, buffer limit or overrides).
    pub fn new(
        name: impl Into<String>,
        source: RouteSource,
        matches: RouteMatch,
        action: RouteAction,
    ) -> Self {
        RouteConfig {
            name: name.into(),
            source,
            hostnames: Vec::new(),
            matches,
            action,
            fault: None,
            local_rate_limit: None,
            global_rate_limit: None,
            request_buffer_limit: None,
            response_overrides: Vec::new(),
        }
    }
}

impl RouteConfig {
    /// Validates the feature blocks (fault, rate limits, hash policy, response overrides).
    pub fn validate_features(&self) -> Result<(), ConfigError> {
        let name = self.name.as_str();
        if let Some(f) = &self.fault {
            crate::proxy::fault::FaultInjector::try_new(f)
                .map_err(|e| ConfigError::feature(name, "faultInjection", e))?;
        }
        if let Some(l) = &self.local_rate_limit {
            crate::proxy::rate_limit::LocalRateLimiter::try_new(l)
                .map_err(|e| ConfigError::feature(name, "rateLimit.local", e))?;
        }
        if let Some(g) = &self.global_rate_limit {
            crate::proxy::rate_limit::GlobalRuleSet::try_new(g)
                .map_err(|e| ConfigError::feature(name, "rateLimit.global", e))?;
        }
        if let RouteAction::Forward(f) = &self.action
            && let Some(h) = &f.hash_policy
        {
            crate::proxy::lb::hash::HashPolicy::try_new(h)
                .map_err(|e| ConfigError::feature(name, "loadBalancer.consistentHash", e))?;
        }
        for rule in &self.response_overrides {
            rule.validate()?;
        }
        Ok(())
    }
}

impl Hostname {
    /// Parses `example.com` or `*.example.com`.
    pub fn try_new(value: &str) -> Result<Self, ConfigError> {
        let lower = value.to_ascii_lowercase();
        if let Some(suffix) = lower.strip_prefix('*') {
            if !suffix.starts_with('.') || suffix.len() < 2 {
                return Err(ConfigError::OutOfRange {
                    field: "hostnames",
                    message: format!("{value:?} is not a valid wildcard hostname"),
                });
            }
            return Ok(Hostname::Wildcard(suffix.to_string()));
        }
        if lower.is_empty() || lower.contains('*') {
            return Err(ConfigError::OutOfRange {
                field: "hostnames",
                message: format!("{value:?} is not a valid hostname"),
            });
        }
        Ok(Hostname::Exact(lower))
    }
}

impl Default for RouteMatch {
    /// Gateway API's default match: PathPrefix `/`.
    fn default() -> Self {
        RouteMatch {
            path: PathMatch::PathPrefix("/".to_string()),
            headers: Vec::new(),
            query_params: Vec::new(),
            method: None,
        }
    }
}

impl PathMatch {
    /// A full-match regular expression over the path.
    pub fn regex(pattern: &str) -> Result<Self, ConfigError> {
        Ok(PathMatch::RegularExpression(anchored(pattern)?))
    }
}

impl StringMatch {
    /// A full-match regular expression over the value.
    pub fn regex(pattern: &str) -> Result<Self, ConfigError> {
        Ok(StringMatch::RegularExpression(anchored(pattern)?))
    }

    /// Whether `value` satisfies the condition.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            StringMatch::Exact(v) => v == value,
            StringMatch::RegularExpression(re) => re.is_match(value),
        }
    }

    /// Whether this is an exact match (used by route precedence).
    pub fn is_exact(&self) -> bool {
        matches!(self, StringMatch::Exact(_))
    }
}

impl HeaderMatch {
    /// Builds a header match, validating the name.
    pub fn try_new(name: &str, value: StringMatch) -> Result<Self, ConfigError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ConfigError::HeaderName(name.to_string()))?;
        Ok(HeaderMatch { name, value })
    }
}

impl ForwardAction {
    /// Forward to one cluster with Envoy's defaults: 15 s route timeout, no retries,
    /// idle timeout max(1h, route timeout) as Envoy Gateway sets it, no max stream duration.
    pub fn to_cluster(cluster: impl Into<String>) -> Self {
        ForwardAction {
            backends: vec![WeightedCluster {
                cluster: cluster.into(),
                weight: 1,
            }],
            timeout: Some(Duration::from_secs(15)),
            retry: None,
            idle_timeout: Some(Duration::from_secs(3600)),
            max_stream_duration: None,
            hash_policy: None,
        }
    }
}

impl RetryPolicy {
    /// Envoy Gateway's defaults: 2 retries on
    /// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes` with status codes `[503]`.
    pub fn envoy_gateway_default() -> Self {
        RetryPolicy {
            num_retries: 2,
            retry_on: RetryOn {
                connect_failure: true,
                refused_stream: true,
                grpc_unavailable: true,
                grpc_cancelled: true,
                retriable_status_codes: true,
                ..RetryOn::default()
            },
            retriable_status_codes: vec![503],
            per_try_timeout: None,
            backoff: RetryBackoff::default(),
        }
    }

    /// Sets the retriable status codes, checking 100..=599 and sorting/deduplicating them.
    pub fn with_status_codes(mut self, codes: &[u16]) -> Result<Self, ConfigError> {
        if let Some(bad) = codes.iter().find(|c| !(100..=599).contains(*c)) {
            return Err(ConfigError::OutOfRange {
                field: "retry.retryOn.httpStatusCodes",
                message: format!("{bad} is not within 100..=599"),
            });
        }
        let mut codes = codes.to_vec();
        codes.sort_unstable();
        codes.dedup();
        self.retriable_status_codes = codes;
        Ok(self)
    }
}

impl RetryOn {
    /// Parses Envoy's comma-separated `retry_on` string (unknown names are errors).
    pub fn parse(list: &str) -> Result<Self, ConfigError> {
        let mut on = RetryOn::default();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let flag = match name {
                "5xx" => &mut on.five_xx,
                "gateway-error" => &mut on.gateway_error,
                "reset" => &mut on.reset,
                "reset-before-request" => &mut on.reset_before_request,
                "connect-failure" => &mut on.connect_failure,
                "retriable-4xx" => &mut on.retriable_4xx,
                "refused-stream" => &mut on.refused_stream,
                "retriable-status-codes" => &mut on.retriable_status_codes,
                "cancelled" => &mut on.grpc_cancelled,
                "deadline-exceeded" => &mut on.grpc_deadline_exceeded,
                "internal" => &mut on.grpc_internal,
                "resource-exhausted" => &mut on.grpc_resource_exhausted,
                "unavailable" => &mut on.grpc_unavailable,
                other => {
                    return Err(ConfigError::OutOfRange {
                        field: "retry.retryOn.triggers",
                        message: format!("unknown trigger {other:?}"),
                    });
                }
            };
            *flag = true;
        }
        Ok(on)
    }
}

impl RetryBackoff {
    /// Base and max must be > 0 and max ≥ base.
    pub fn try_new(base: Duration, max: Option<Duration>) -> Result<Self, ConfigError> {
        if base.is_zero() {
            return Err(ConfigError::OutOfRange {
                field: "retry.perRetry.backOff.baseInterval",
                message: "must be greater than 0".to_string(),
            });
        }
        let max = max.unwrap_or(base * 10);
        if max < base {
            return Err(ConfigError::OutOfRange {
                field: "retry.perRetry.backOff.maxInterval",
                message: "must be greater than or equal to baseInterval".to_string(),
            });
        }
        Ok(RetryBackoff { base, max })
    }

    /// The base interval.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The cap.
    pub fn max(&self) -> Duration {
        self.max
    }
}

impl Default for RetryBackoff {
    /// Envoy: 25 ms base, 250 ms max.
    fn default() -> Self {
        RetryBackoff {
            base: Duration::from_millis(25),
            max: Duration::from_millis(250),
        }
    }
}

/// Compiles `pattern` so that it must match the whole input, as Envoy's safe_regex does.
fn anchored(pattern: &str) -> Result<Regex, ConfigError> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| ConfigError::Regex {
        pattern: pattern.to_string(),
        message: e.to_string(),
    })
}
