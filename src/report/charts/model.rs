//! What the charts draw: a plain, serde-serializable snapshot of one run.
//!
//! The model is deliberately independent of the rest of chaosgate so the report stage can build it
//! from results files as well as from a live run, and so charts can be re-rendered from JSON.

use serde::{Deserialize, Serialize};

/// Everything the chart renderer needs for one scenario run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChartInput {
    /// Scenario name; every chart title starts with it.
    pub title_prefix: String,
    /// Planned run length in seconds; the time axis covers at least this much.
    pub duration_s: f64,
    /// Fault windows, shaded on every time chart.
    pub faults: Vec<FaultSpan>,
    /// Per-route client-side series.
    pub routes: Vec<RouteSeries>,
    /// Requests served per backend replica over time.
    pub replicas: Vec<ReplicaSeries>,
    /// Proxy cluster gauges over time.
    pub clusters: Vec<ClusterSeries>,
}

/// One fault of the timeline, in seconds since the run started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpan {
    /// Short text drawn at the top of the shaded window.
    pub label: String,
    /// Start of the fault.
    pub start_s: f64,
    /// End of the fault; equal to `start_s` for an instantaneous fault (drawn as a thin band).
    pub end_s: f64,
}

/// Client-side view of one route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteSeries {
    /// Route name as shown in legends and panel titles.
    pub name: String,
    /// One point per time window (normally one second).
    pub points: Vec<SecondPoint>,
    /// Whole-run latency distribution: `(percentile, latency_ms)`, e.g. `(99.9, 42.0)`.
    pub percentiles: Vec<(f64, f64)>,
}

/// Outcome counts and latency of one time window of one route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondPoint {
    /// Start of the window in seconds since the run started.
    pub t_s: f64,
    /// Requests completed in the window (all outcomes).
    pub requests: u64,
    /// Successful responses.
    pub success: u64,
    /// Rejected by a circuit breaker (Envoy flag `UO`).
    pub overflow_uo: u64,
    /// Rejected by a rate limit (`RL`).
    pub ratelimited_rl: u64,
    /// Upstream request timeout (`UT`).
    pub timeout_ut: u64,
    /// No healthy upstream host (`UH`).
    pub no_healthy_uh: u64,
    /// Every other failure (5xx, resets, connection failures, client errors).
    pub other_errors: u64,
    /// Median latency of the window; `None` when nothing completed.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency of the window; `None` when nothing completed.
    pub p99_ms: Option<f64>,
}

/// Requests served by one backend replica over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaSeries {
    /// `backend/replica`, e.g. `orders/1`.
    pub name: String,
    /// `(t_s, served)`: requests the replica served in the window starting at `t_s`.
    pub points: Vec<(f64, u64)>,
}

/// Proxy-side gauges of one upstream cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterSeries {
    /// Cluster name.
    pub name: String,
    /// `(t_s, value)` samples of `upstream_rq_active`.
    pub active_requests: Vec<(f64, f64)>,
    /// `(t_s, value)` samples of `upstream_rq_pending_active`.
    pub pending: Vec<(f64, f64)>,
    /// Circuit-breaker `max_requests`, drawn as a dashed line.
    pub max_requests_limit: Option<f64>,
    /// Circuit-breaker `max_pending_requests`, drawn as a dashed line.
    pub max_pending_limit: Option<f64>,
    /// `(t_s, hosts)` currently ejected by outlier detection.
    pub ejected_hosts: Vec<(f64, f64)>,
    /// `(t_s, hosts)` currently failing active health checks.
    pub unhealthy_hosts: Vec<(f64, f64)>,
}
