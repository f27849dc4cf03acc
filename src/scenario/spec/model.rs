//! The validated Scenario model: what the runtime, the load generator and the checks consume.

use std::fmt;
use std::time::Duration;

use crate::expect::Assertion;
use crate::scenario::yaml::child_key;

/// The validated `spec` of a Scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioSpec {
    pub description: Option<String>,
    /// Seed of every random decision (default 1).
    pub seed: u64,
    /// More object files, as written (relative to the scenario file); `spec.manifests[i]`.
    pub manifests: Vec<String>,
    pub backends: Vec<BackendSpec>,
    pub load: Vec<LoadSpec>,
    pub faults: Vec<FaultSpec>,
    pub expect: Vec<Expectation>,
}

/// A `namespace/name` pair (a Service, a Gateway).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespacedName {
    pub namespace: String,
    pub name: String,
}

/// A mock Service with its replicas (`spec.backends[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct BackendSpec {
    /// Field path of this entry, `spec.backends[0]`.
    pub yaml_path: String,
    /// The Service name, matched against `backendRefs[].name`.
    pub name: String,
    /// The Service namespace (default `default`).
    pub namespace: String,
    /// The Service port, matched against `backendRefs[].port` when given.
    pub port: Option<u16>,
    /// Endpoints behind the Service (default 1).
    pub replicas: usize,
    /// Delay of every normal response (default none).
    pub latency: LatencyDist,
    /// Fraction of requests answered with `error_status` (default 0).
    pub error_rate: f64,
    /// Status of those errors (default 500).
    pub error_status: u16,
    /// Path answered 200 for health checks (default `/healthz`).
    pub health_path: String,
    /// What the replicas speak (default HTTP/1.1).
    pub protocol: BackendProtocol,
}

/// The HTTP version a backend's replicas serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendProtocol {
    /// HTTP/1.1 (`http1`).
    #[default]
    Http1,
    /// HTTP/2 over cleartext with prior knowledge (`h2c`).
    H2c,
}

/// A latency: fixed or drawn from a distribution per request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyDist {
    /// Always this delay (zero: none).
    Fixed(Duration),
    /// Uniform between `min` and `max`, both included.
    Uniform { min: Duration, max: Duration },
    /// Log-normal with this median and 99th percentile (`p50 <= p99`).
    LogNormal { p50: Duration, p99: Duration },
}

/// One load generator (`spec.load[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    /// Field path of this entry, `spec.load[0]`.
    pub yaml_path: String,
    /// Unique name (default `load-<index>`).
    pub name: String,
    /// The Gateway to send to; None when the caller should pick the only one.
    pub gateway: Option<NamespacedName>,
    /// The Gateway listener (`sectionName`); None when the caller should pick the only one.
    pub listener: Option<String>,
    /// Host header (with an optional port); None lets the caller choose.
    pub host: Option<String>,
    pub method: http::Method,
    /// Request path with optional query (default `/`).
    pub path: String,
    /// Extra request headers, names lowercased, in the order written.
    pub headers: Vec<(String, String)>,
    /// Open loop, closed loop or ramp.
    pub shape: LoadShape,
    /// When the load starts, from the start of the run (default 0s).
    pub start: Duration,
    /// How long it runs.
    pub duration: Duration,
    /// Client-side request timeout (default 30s).
    pub timeout: Duration,
    /// Most client connections to keep open (extension; None: as many as needed).
    pub connections: Option<u32>,
}

/// How a load sends requests.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadShape {
    /// Open loop: this many requests per second.
    Rate(f64),
    /// Closed loop: this many workers, each sending back to back.
    Concurrency(u32),
    /// Open loop ramp: from `start_rate`, each stage moves the rate linearly to its own `rate`.
    Stages { start_rate: f64, stages: Vec<Stage> },
}

/// One piece of a ramp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    /// The rate reached at the end of the stage, requests per second.
    pub rate: f64,
}

/// A fault on some replicas of a backend for a time (`spec.faults[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// Field path of this entry, `spec.faults[0]`.
    pub yaml_path: String,
    /// A declared backend.
    pub backend: NamespacedName,
    /// Replica indices affected; None: every replica.
    pub replicas: Option<Vec<usize>>,
    /// When it starts, from the start of the run.
    pub at: Duration,
    /// How long it lasts; None: to the end of the run.
    pub duration: Option<Duration>,
    pub kind: FaultKind,
}

/// What a fault does to the affected replicas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultKind {
    /// Responses are delayed by this much more.
    Latency(LatencyDist),
    /// That fraction of requests is answered with `status`.
    Error { status: u16, rate: f64 },
    /// Requests are accepted and never answered.
    Hang,
    /// Connections are reset when a request arrives.
    Reset,
    /// The replica stops; it starts again, fresh, when the fault ends.
    Kill,
    /// The replica freezes and resumes when the fault ends.
    Pause,
    /// The network between proxy and replica is cut.
    Partition,
    /// Response bodies trickle at this many bytes per second.
    SlowBody { bytes_per_second: u64 },
    /// Only the health path fails (503).
    Unhealthy,
}

/// One expectation (`spec.expect[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// Field path of this entry, `spec.expect[0]`.
    pub yaml_path: String,
    pub name: Option<String>,
    pub scope: Scope,
    pub assertion: Assertion,
}

/// `where`: which requests an expectation counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    /// A route, or one rule of it; the caller checks that it exists.
    pub route: Option<RouteRef>,
    /// A declared backend: the Service the proxy picked for the request.
    pub backend: Option<NamespacedName>,
    /// A replica index of `backend`.
    pub replica: Option<usize>,
    /// A declared load's name.
    pub load: Option<String>,
    /// Window start, by intended send time from the start of the run.
    pub from: Option<Duration>,
    /// Window end.
    pub to: Option<Duration>,
}

/// `ns/name` or `ns/name/rule/<index or name>` of a route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteRef {
    pub namespace: String,
    pub name: String,
    pub rule: Option<RuleRef>,
}

/// A route rule by position or by `rules[].name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuleRef {
    Index(usize),
    Name(String),
}

impl ScenarioSpec {
    /// How long the run lasts: the latest end (`start + duration`) over the loads.
    pub fn run_length(&self) -> Duration {
        self.load
            .iter()
            .map(LoadSpec::end)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// The declared backend with this namespace and name.
    pub fn backend(&self, key: &NamespacedName) -> Option<&BackendSpec> {
        self.backends
            .iter()
            .find(|b| b.namespace == key.namespace && b.name == key.name)
    }

    /// Field path of `manifests[index]`, to locate errors about that file.
    pub fn manifest_field(index: usize) -> String {
        crate::scenario::yaml::child_index("spec.manifests", index)
    }

    /// The load with this name.
    pub fn load_named(&self, name: &str) -> Option<&LoadSpec> {
        self.load.iter().find(|l| l.name == name)
    }
}

impl NamespacedName {
    /// A pair from its parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        NamespacedName {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for NamespacedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl BackendSpec {
    /// The Service's namespace and name.
    pub fn key(&self) -> NamespacedName {
        NamespacedName::new(&self.namespace, &self.name)
    }

    /// Field path of one of this entry's fields (`spec.backends[0].port`).
    pub fn field(&self, field: &str) -> String {
        child_key(&self.yaml_path, field)
    }
}

impl BackendProtocol {
    /// The spelling in scenario files.
    pub fn as_str(&self) -> &'static str {
        match self {
            BackendProtocol::Http1 => "http1",
            BackendProtocol::H2c => "h2c",
        }
    }
}

impl Default for LatencyDist {
    fn default() -> Self {
        LatencyDist::Fixed(Duration::ZERO)
    }
}

impl LoadSpec {
    /// When the load stops, from the start of the run.
    pub fn end(&self) -> Duration {
        self.start + self.duration
    }

    /// Field path of one of this entry's fields (`spec.load[0].gateway`).
    pub fn field(&self, field: &str) -> String {
        child_key(&self.yaml_path, field)
    }
}

impl LoadShape {
    /// The rate an open-loop load aims at `elapsed` after its start (0 after a ramp's last
    /// stage); None for a closed loop.
    pub fn rate_at(&self, elapsed: Duration) -> Option<f64> {
        match self {
            LoadShape::Rate(rate) => Some(*rate),
            LoadShape::Concurrency(_) => None,
            LoadShape::Stages { start_rate, stages } => {
                let mut from = *start_rate;
                let mut left = elapsed;
                for stage in stages {
                    if left < stage.duration {
                        let progress = left.as_secs_f64() / stage.duration.as_secs_f64();
                        return Some(from + (stage.rate - from) * progress);
                    }
                    left -= stage.duration;
                    from = stage.rate;
                }
                Some(0.0)
            }
        }
    }
}

impl FaultSpec {
    /// Field path of one of this entry's fields (`spec.faults[0].at`).
    pub fn field(&self, field: &str) -> String {
        child_key(&self.yaml_path, field)
    }

    /// When the fault ends in a run of `run_length`.
    pub fn end(&self, run_length: Duration) -> Duration {
        self.duration.map_or(run_length, |d| self.at + d)
    }

    /// Whether the fault hits this replica index.
    pub fn affects(&self, replica: usize) -> bool {
        self.replicas.as_ref().is_none_or(|r| r.contains(&replica))
    }
}

impl FaultKind {
    /// The `type` spelling.
    pub fn type_name(&self) -> &'static str {
        match self {
            FaultKind::Latency(_) => "latency",
            FaultKind::Error { .. } => "error",
            FaultKind::Hang => "hang",
            FaultKind::Reset => "reset",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::SlowBody { .. } => "slowBody",
            FaultKind::Unhealthy => "unhealthy",
        }
    }
}

impl Expectation {
    /// Field path of one of this entry's fields (`spec.expect[0].where.route`).
    pub fn field(&self, field: &str) -> String {
        child_key(&self.yaml_path, field)
    }

    /// The name to show: `name`, or the assertion's canonical text.
    pub fn title(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.assertion.to_string())
    }
}

impl fmt::Display for RouteRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        match &self.rule {
            Some(RuleRef::Index(i)) => write!(f, "/rule/{i}"),
            Some(RuleRef::Name(n)) => write!(f, "/rule/{n}"),
            None => Ok(()),
        }
    }
}
