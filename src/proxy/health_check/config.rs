//! Health-check configuration: raw values as the policy gives them, validated into a spec.

use std::time::Duration;

use http::Method;

/// User agent of every HTTP health check, as Envoy sends it.
pub const USER_AGENT: &str = "Envoy/HC";
/// Envoy matches an expected response body within this many leading bytes.
pub const RESPONSE_BUFFER_SIZE: usize = 1024;

/// Raw active health check (`healthCheck.active`), defaults as EG/Envoy apply them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// HTTP or TCP checker.
    pub kind: CheckKind,
    /// Probe timeout (default 1s).
    pub timeout: Duration,
    /// Interval between probes once the cluster has seen traffic (default 3s).
    pub interval: Duration,
    /// Random delay in `[0, initial_jitter)` before each host's first probe (default 0).
    pub initial_jitter: Duration,
    /// Consecutive network/retriable failures that make a host unhealthy (default 3).
    pub unhealthy_threshold: u32,
    /// Consecutive successes that make an unhealthy host healthy (default 1).
    pub healthy_threshold: u32,
    /// Interval until the cluster has seen traffic (Envoy default 60s; EG leaves it).
    pub no_traffic_interval: Duration,
}

/// Checker kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// HTTP/1.1 request.
    Http(HttpCheckConfig),
    /// TCP connect, optional send, receive blocks.
    Tcp(TcpCheckConfig),
    /// `grpc.health.v1.Health/Check` over h2c.
    Grpc(GrpcCheckConfig),
}

/// Raw gRPC check (Envoy's `grpc_health_check`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GrpcCheckConfig {
    /// `service_name`: the service asked about (`None` or empty = the whole server).
    pub service: Option<String>,
    /// `:authority` (Envoy: the configured authority, else the cluster name).
    pub authority: String,
}

/// Raw HTTP check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheckConfig {
    /// Request path (1..=1024 characters).
    pub path: String,
    /// Host header (hostname, else endpoint hostname, else route hostname — chosen by the caller).
    pub host: String,
    /// Method (default GET).
    pub method: Method,
    /// Expected statuses (default [200]); each 100..=599.
    pub expected_statuses: Vec<u16>,
    /// Retriable statuses; each 100..=599.
    pub retriable_statuses: Vec<u16>,
    /// The response body (first 1024 bytes) must contain this.
    pub expected_body: Option<Vec<u8>>,
    /// Request body (POST/PUT only).
    pub request_body: Option<Vec<u8>>,
}

/// Raw TCP check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcpCheckConfig {
    /// Payload written after connecting.
    pub send: Option<Vec<u8>>,
    /// Blocks that must appear in the response, in order (not necessarily contiguous).
    pub receive: Vec<Vec<u8>>,
}

/// Invalid health-check configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthCheckConfigError {
    /// A duration that must be positive is zero.
    #[error("health check {0} must be greater than 0")]
    ZeroDuration(&'static str),
    /// A threshold below 1.
    #[error("health check {0} must be at least 1")]
    Threshold(&'static str),
    /// Path empty or longer than 1024.
    #[error("health check path must be 1..1024 characters")]
    Path,
    /// Status outside 100..=599.
    #[error("health check status {0} must be between 100 and 599")]
    Status(u16),
    /// Method outside EG's list.
    #[error("health check method {0} is not supported")]
    Method(String),
    /// Request body with a method other than POST/PUT (EG's CEL text).
    #[error("The requestBody field can only be set when method is POST or PUT.")]
    RequestBody,
    /// Host header not usable.
    #[error("health check host {0:?} is not a valid Host header")]
    Host(String),
}

/// Sorted, merged half-open status ranges `[start, end)`, as EG emits `expected_statuses`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusRanges(Vec<(u16, u16)>);

/// Validated health-check spec used by the prober and the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSpec {
    pub(crate) kind: CheckKind,
    pub(crate) expected: StatusRanges,
    pub(crate) retriable: StatusRanges,
    pub(crate) timeout: Duration,
    pub(crate) interval: Duration,
    pub(crate) initial_jitter: Duration,
    pub(crate) unhealthy_threshold: u32,
    pub(crate) healthy_threshold: u32,
    pub(crate) no_traffic_interval: Duration,
}

impl HealthCheckConfig {
    /// An HTTP check with every other field at its default.
    pub fn http(path: &str, host: &str) -> Self {
        Self::with_kind(CheckKind::Http(HttpCheckConfig {
            path: path.to_owned(),
            host: host.to_owned(),
            method: Method::GET,
            expected_statuses: vec![200],
            retriable_statuses: Vec::new(),
            expected_body: None,
            request_body: None,
        }))
    }

    /// A TCP check with every other field at its default.
    pub fn tcp(tcp: TcpCheckConfig) -> Self {
        Self::with_kind(CheckKind::Tcp(tcp))
    }

    /// A gRPC check with every other field at its default.
    pub fn grpc(grpc: GrpcCheckConfig) -> Self {
        Self::with_kind(CheckKind::Grpc(grpc))
    }

    fn with_kind(kind: CheckKind) -> Self {
        Self {
            kind,
            timeout: Duration::from_secs(1),
            interval: Duration::from_secs(3),
            initial_jitter: Duration::ZERO,
            unhealthy_threshold: 3,
            healthy_threshold: 1,
            no_traffic_interval: Duration::from_secs(60),
        }
    }
}

impl StatusRanges {
    /// Dedupes, sorts and merges consecutive codes into half-open ranges.
    pub fn from_codes(codes: &[u16]) -> Result<Self, HealthCheckConfigError> {
        let mut sorted = codes.to_vec();
        if let Some(bad) = sorted.iter().find(|c| !(100..=599).contains(*c)) {
            return Err(HealthCheckConfigError::Status(*bad));
        }
        sorted.sort_unstable();
        sorted.dedup();
        let mut ranges: Vec<(u16, u16)> = Vec::new();
        for c in sorted {
            match ranges.last_mut() {
                Some((_, end)) if *end == c => *end = c + 1,
                _ => ranges.push((c, c + 1)),
            }
        }
        Ok(Self(ranges))
    }

    /// True when `status` lies in a range.
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(s, e)| (*s..*e).contains(&status))
    }

    /// The ranges.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.0
    }
}

impl HealthCheckSpec {
    /// Validates the raw configuration.
    pub fn try_new(config: &HealthCheckConfig) -> Result<Self, HealthCheckConfigError> {
        for (name, d) in [
            ("timeout", config.timeout),
            ("interval", config.interval),
            ("noTrafficInterval", config.no_traffic_interval),
        ] {
            if d.is_zero() {
                return Err(HealthCheckConfigError::ZeroDuration(name));
            }
        }
        if config.unhealthy_threshold < 1 {
            return Err(HealthCheckConfigError::Threshold("unhealthyThreshold"));
        }
        if config.healthy_threshold < 1 {
            return Err(HealthCheckConfigError::Threshold("healthyThreshold"));
        }
        let (expected, retriable) = match &config.kind {
            CheckKind::Http(h) => {
                if h.path.is_empty() || h.path.len() > 1024 {
                    return Err(HealthCheckConfigError::Path);
                }
                const METHODS: [&str; 8] = [
                    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH",
                ];
                if !METHODS.contains(&h.method.as_str()) {
                    return Err(HealthCheckConfigError::Method(h.method.to_string()));
                }
                if h.request_body.is_some() && h.method != Method::POST && h.method != Method::PUT {
                    return Err(HealthCheckConfigError::RequestBody);
                }
                if http::HeaderValue::from_str(&h.host).is_err() || h.host.is_empty() {
                    return Err(HealthCheckConfigError::Host(h.host.clone()));
                }
                let expected = if h.expected_statuses.is_empty() {
                    vec![200]
                } else {
                    h.expected_statuses.clone()
                };
                (
                    StatusRanges::from_codes(&expected)?,
                    StatusRanges::from_codes(&h.retriable_statuses)?,
                )
            }
            CheckKind::Grpc(g) => {
                if http::uri::Authority::try_from(g.authority.as_str()).is_err() {
                    return Err(HealthCheckConfigError::Host(g.authority.clone()));
                }
                (StatusRanges::default(), StatusRanges::default())
            }
            CheckKind::Tcp(_) => (StatusRanges::default(), StatusRanges::default()),
        };
        Ok(Self {
            kind: config.kind.clone(),
            expected,
            retriable,
            timeout: config.timeout,
            interval: config.interval,
            initial_jitter: config.initial_jitter,
            unhealthy_threshold: config.unhealthy_threshold,
            healthy_threshold: config.healthy_threshold,
            no_traffic_interval: config.no_traffic_interval,
        })
    }

    /// Probe timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Interval once the cluster has seen traffic.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Interval before the cluster has seen traffic.
    pub fn no_traffic_interval(&self) -> Duration {
        self.no_traffic_interval
    }
}
