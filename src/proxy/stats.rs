//! Envoy-named counters and gauges, kept as atomics and rendered by the admin listener.
//!
//! Hot paths bump fields of [`ClusterStats`] directly; the [`Stats`] registry only walks them
//! when someone reads (admin `/stats`, tests, the runner's `stat(NAME)` metric).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

/// A gauge (current value of something counted up and down).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

/// Counter or gauge (affects the Prometheus `# TYPE` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// The scope a stat belongs to, as Envoy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// `cluster.<name>.` (Prometheus tag `envoy_cluster_name`).
    Cluster(&'a str),
    /// `http.<listener>.` (Prometheus tag `envoy_http_conn_manager_prefix`).
    Http(&'a str),
    /// No prefix: the name is complete (e.g. a filter's own stat prefix).
    Root,
}

/// Something that owns stats and can list them.
pub trait StatSource: Send + Sync {
    /// Calls `f` for every stat with its scope, name, kind and value.
    fn visit(&self, f: &mut dyn FnMut(Scope<'_>, &str, StatKind, u64));
}

/// The registry of every stat source of one proxy.
#[derive(Default)]
pub struct Stats {
    sources: RwLock<Vec<Arc<dyn StatSource>>>,
    extra: Mutex<Vec<ExtraStat>>,
}

/// A stat registered by name at configuration time (health checks, rate limits, faults...).
struct ExtraStat {
    scope: OwnedScope,
    name: String,
    kind: StatKind,
    value: Arc<Counter>,
}

#[derive(PartialEq, Eq)]
enum OwnedScope {
    Cluster(String),
    Http(String),
    Root,
}

/// One counter per HTTP status code 100..=599 (`upstream_rq_<code>`), listed only once used.
#[derive(Debug)]
pub struct CodeCounters(Box<[Counter]>);

macro_rules! cluster_stats {
    ($( $field:ident = $name:literal : $kind:ident ),* $(,)?) => {
        /// Envoy's per-cluster stats (`cluster.<name>.<stat>`).
        #[derive(Debug, Default)]
        pub struct ClusterStats {
            $(
                #[doc = concat!("`", $name, "`")]
                pub $field: $kind,
            )*
            /// `upstream_rq_<code>`.
            pub upstream_rq_by_code: CodeCounters,
        }

        impl ClusterStats {
            /// Calls `f` with every stat's Envoy name, kind and value.
            pub fn for_each(&self, f: &mut dyn FnMut(&'static str, StatKind, u64)) {
                $( f($name, StatKind::$kind, self.$field.get()); )*
            }
        }
    };
}

cluster_stats! {
    upstream_rq_total = "upstream_rq_total": Counter,
    upstream_rq_completed = "upstream_rq_completed": Counter,
    upstream_rq_1xx = "upstream_rq_1xx": Counter,
    upstream_rq_2xx = "upstream_rq_2xx": Counter,
    upstream_rq_3xx = "upstream_rq_3xx": Counter,
    upstream_rq_4xx = "upstream_rq_4xx": Counter,
    upstream_rq_5xx = "upstream_rq_5xx": Counter,
    upstream_rq_pending_total = "upstream_rq_pending_total": Counter,
    upstream_rq_pending_overflow = "upstream_rq_pending_overflow": Counter,
    upstream_rq_timeout = "upstream_rq_timeout": Counter,
    upstream_rq_per_try_timeout = "upstream_rq_per_try_timeout": Counter,
    upstream_rq_max_duration_reached = "upstream_rq_max_duration_reached": Counter,
    upstream_rq_rx_reset = "upstream_rq_rx_reset": Counter,
    upstream_rq_retry = "upstream_rq_retry": Counter,
    upstream_rq_retry_success = "upstream_rq_retry_success": Counter,
    upstream_rq_retry_overflow = "upstream_rq_retry_overflow": Counter,
    upstream_rq_retry_limit_exceeded = "upstream_rq_retry_limit_exceeded": Counter,
    upstream_rq_retry_backoff_exponential = "upstream_rq_retry_backoff_exponential": Counter,
    upstream_cx_total = "upstream_cx_total": Counter,
    upstream_cx_overflow = "upstream_cx_overflow": Counter,
    upstream_cx_connect_fail = "upstream_cx_connect_fail": Counter,
    upstream_cx_connect_timeout = "upstream_cx_connect_timeout": Counter,
    upstream_cx_destroy = "upstream_cx_destroy": Counter,
    upstream_cx_idle_timeout = "upstream_cx_idle_timeout": Counter,
    upstream_cx_max_requests = "upstream_cx_max_requests": Counter,
    upstream_cx_max_duration_reached = "upstream_cx_max_duration_reached": Counter,
    upstream_cx_none_healthy = "upstream_cx_none_healthy": Counter,
    lb_healthy_panic = "lb_healthy_panic": Counter,
    ejections_active = "outlier_detection.ejections_active": Gauge,
    ejections_enforced_total = "outlier_detection.ejections_enforced_total": Counter,
    ejections_overflow = "outlier_detection.ejections_overflow": Counter,
    ejections_enforced_consecutive_5xx = "outlier_detection.ejections_enforced_consecutive_5xx": Counter,
    ejections_detected_consecutive_5xx = "outlier_detection.ejections_detected_consecutive_5xx": Counter,
    ejections_enforced_consecutive_gateway_failure = "outlier_detection.ejections_enforced_consecutive_gateway_failure": Counter,
    ejections_detected_consecutive_gateway_failure = "outlier_detection.ejections_detected_consecutive_gateway_failure": Counter,
    ejections_enforced_consecutive_local_origin_failure = "outlier_detection.ejections_enforced_consecutive_local_origin_failure": Counter,
    ejections_detected_consecutive_local_origin_failure = "outlier_detection.ejections_detected_consecutive_local_origin_failure": Counter,
    ejections_enforced_failure_percentage = "outlier_detection.ejections_enforced_failure_percentage": Counter,
    ejections_detected_failure_percentage = "outlier_detection.ejections_detected_failure_percentage": Counter,
    ejections_enforced_success_rate = "outlier_detection.ejections_enforced_success_rate": Counter,
    ejections_detected_success_rate = "outlier_detection.ejections_detected_success_rate": Counter,
}

/// Per-listener HTTP connection manager stats (`http.<listener>.<stat>`).
#[derive(Debug, Default)]
pub struct HttpStats {
    /// `downstream_rq_total`.
    pub downstream_rq_total: Counter,
    /// `downstream_rq_active`.
    pub downstream_rq_active: Gauge,
    /// `downstream_cx_total`.
    pub downstream_cx_total: Counter,
    /// `downstream_cx_active`.
    pub downstream_cx_active: Gauge,
    /// `no_route`.
    pub no_route: Counter,
    /// `rq_direct_response`.
    pub rq_direct_response: Counter,
    /// `downstream_rq_too_large`: requests answered 413 because their body exceeded the
    /// buffer limit (Envoy's `requestDataTooLarge`).
    pub downstream_rq_too_large: Counter,
    /// `downstream_cx_protocol_error`: connections closed over a request the server could not
    /// read (malformed, ambiguous framing, head too large), answered 400/431/501.
    pub downstream_cx_protocol_error: Counter,
    /// `downstream_rq_completed` and `downstream_rq_<N>xx`, by status class (index N−1).
    pub downstream_rq_completed: Counter,
    /// Responses per status class 1xx..5xx.
    pub downstream_rq_xx: [Counter; 5],
}

impl HttpStats {
    /// Counts a response sent downstream.
    pub fn count_status(&self, status: u16) {
        self.downstream_rq_completed.inc();
        if let Some(c) = usize::from(status / 100)
            .checked_sub(1)
            .and_then(|i| self.downstream_rq_xx.get(i))
        {
            c.inc();
        }
    }
}

/// A named, registered HTTP stats block.
#[derive(Debug)]
pub struct ListenerStats {
    /// The listener name.
    pub name: String,
    /// The stats.
    pub stats: HttpStats,
}

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Gauge {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Subtracts one (saturating, so a bookkeeping slip never wraps around).
    pub fn dec(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }

    /// Sets the value.
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Default for CodeCounters {
    fn default() -> Self {
        CodeCounters((100..600).map(|_| Counter::default()).collect())
    }
}

impl CodeCounters {
    /// Counts one response with `status` (ignored outside 100..=599).
    pub fn inc(&self, status: u16) {
        if let Some(c) = usize::from(status)
            .checked_sub(100)
            .and_then(|i| self.0.get(i))
        {
            c.inc();
        }
    }

    /// `(code, count)` of every code seen at least once.
    pub fn used(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        (100u16..).zip(self.0.iter()).filter_map(|(code, c)| {
            let v = c.get();
            (v > 0).then_some((code, v))
        })
    }
}

impl ClusterStats {
    /// Counts a response by status class (`upstream_rq_<N>xx`, `upstream_rq_completed`).
    pub fn count_status(&self, status: u16) {
        self.upstream_rq_completed.inc();
        self.upstream_rq_by_code.inc(status);
        match status / 100 {
            1 => self.upstream_rq_1xx.inc(),
            2 => self.upstream_rq_2xx.inc(),
            3 => self.upstream_rq_3xx.inc(),
            4 => self.upstream_rq_4xx.inc(),
            _ => self.upstream_rq_5xx.inc(),
        }
    }
}

impl StatSource for ListenerStats {
    fn visit(&self, f: &mut dyn FnMut(Scope<'_>, &str, StatKind, u64)) {
        use StatKind::{Counter as C, Gauge as G};
        let s = &self.stats;
        let scope = Scope::Http(&self.name);
        let [x1, x2, x3, x4, x5] = &s.downstream_rq_xx;
        let table: [(&str, StatKind, u64); 14] = [
            ("downstream_rq_total", C, s.downstream_rq_total.get()),
            ("downstream_rq_active", G, s.downstream_rq_active.get()),
            ("downstream_cx_total", C, s.downstream_cx_total.get()),
            ("downstream_cx_active", G, s.downstream_cx_active.get()),
            ("no_route", C, s.no_route.get()),
            ("rq_direct_response", C, s.rq_direct_response.get()),
            (
                "downstream_rq_too_large",
                C,
                s.downstream_rq_too_large.get(),
            ),
            (
                "downstream_cx_protocol_error",
                C,
                s.downstream_cx_protocol_error.get(),
            ),
            (
                "downstream_rq_completed",
                C,
                s.downstream_rq_completed.get(),
            ),
            ("downstream_rq_1xx", C, x1.get()),
            ("downstream_rq_2xx", C, x2.get()),
            ("downstream_rq_3xx", C, x3.get()),
            ("downstream_rq_4xx", C, x4.get()),
            ("downstream_rq_5xx", C, x5.get()),
        ];
        for (name, kind, v) in table {
            f(scope, name, kind, v);
        }
    }
}

impl Stats {
    /// Adds a source (done while building the proxy, not per request).
    pub fn register(&self, source: Arc<dyn StatSource>) {
        self.sources
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(source);
    }

    /// Registers (or returns the existing) counter `cluster.<cluster>.<name>`, for features
    /// such as health checking that keep their own counters.
    pub fn cluster_counter(&self, cluster: &str, name: &str) -> Arc<Counter> {
        self.extra_counter(
            OwnedScope::Cluster(cluster.to_string()),
            name,
            StatKind::Counter,
        )
    }

    /// Registers (or returns) a counter `http.<listener>.<name>` (e.g. `fault.aborts_injected`).
    /// A gauge is a counter whose value is `set`-like: use [`Counter::add`] only upward.
    pub fn http_counter(&self, listener: &str, name: &str) -> Arc<Counter> {
        self.extra_counter(
            OwnedScope::Http(listener.to_string()),
            name,
            StatKind::Counter,
        )
    }

    /// Registers (or returns) a counter with a complete name, for stats whose prefix is not a
    /// cluster or listener (e.g. `http_local_rate_limiter.http_local_rate_limit.rate_limited`).
    pub fn root_counter(&self, name: &str) -> Arc<Counter> {
        self.extra_counter(OwnedScope::Root, name, StatKind::Counter)
    }

    fn extra_counter(&self, scope: OwnedScope, name: &str, kind: StatKind) -> Arc<Counter> {
        let mut extra = self.extra.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = extra.iter().find(|e| e.scope == scope && e.name == name) {
            return Arc::clone(&e.value);
        }
        let value = Arc::new(Counter::default());
        extra.push(ExtraStat {
            scope,
            name: name.to_string(),
            kind,
            value: Arc::clone(&value),
        });
        value
    }

    /// Calls `f` for every stat.
    pub fn visit(&self, f: &mut dyn FnMut(Scope<'_>, &str, StatKind, u64)) {
        for s in self
            .sources
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            s.visit(f);
        }
        for e in self
            .extra
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let scope = match &e.scope {
                OwnedScope::Cluster(c) => Scope::Cluster(c),
                OwnedScope::Http(l) => Scope::Http(l),
                OwnedScope::Root => Scope::Root,
            };
            f(scope, &e.name, e.kind, e.value.get());
        }
    }

    /// Every stat by its Envoy text name (`cluster.<name>.<stat>`).
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        self.visit(&mut |scope, name, _, v| {
            out.insert(text_name(scope, name), v);
        });
        out
    }

    /// One stat by its Envoy text name; `None` when it does not exist.
    pub fn get(&self, full_name: &str) -> Option<u64> {
        let mut found = None;
        self.visit(&mut |scope, name, _, v| {
            if found.is_none() && text_name(scope, name) == full_name {
                found = Some(v);
            }
        });
        found
    }

    /// Envoy's `/stats` text format, sorted by name.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.snapshot() {
            let _ = writeln!(out, "{k}: {v}");
        }
        out
    }

    /// Envoy's `/stats/prometheus` format.
    pub fn render_prometheus(&self) -> String {
        let mut families: BTreeMap<String, (StatKind, Vec<String>)> = BTreeMap::new();
        self.visit(&mut |scope, name, kind, v| {
            let (prefix, label) = match scope {
                Scope::Cluster(c) => (
                    "envoy_cluster_",
                    format!("{{envoy_cluster_name=\"{}\"}}", escape_label(c)),
                ),
                Scope::Http(l) => (
                    "envoy_http_",
                    format!("{{envoy_http_conn_manager_prefix=\"{}\"}}", escape_label(l)),
                ),
                Scope::Root => ("envoy_", String::new()),
            };
            let metric = format!("{prefix}{}", sanitize(name));
            let entry = families.entry(metric).or_insert((kind, Vec::new()));
            entry.1.push(format!("{label} {v}"));
        });
        let mut out = String::new();
        for (metric, (kind, samples)) in families {
            let t = match kind {
                StatKind::Counter => "counter",
                StatKind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# TYPE {metric} {t}");
            for s in samples {
                let _ = writeln!(out, "{metric}{s}");
            }
        }
        out
    }
}

/// `cluster.<name>.<stat>` or `http.<listener>.<stat>`.
pub fn text_name(scope: Scope<'_>, name: &str) -> String {
    match scope {
        Scope::Cluster(c) => format!("cluster.{c}.{name}"),
        Scope::Http(l) => format!("http.{l}.{name}"),
        Scope::Root => name.to_string(),
    }
}

/// Prometheus metric names allow `[a-zA-Z0-9_:]` only.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct One(ClusterStats);

    impl StatSource for One {
        fn visit(&self, f: &mut dyn FnMut(Scope<'_>, &str, StatKind, u64)) {
            self.0
                .for_each(&mut |n, k, v| f(Scope::Cluster("c/x"), n, k, v));
        }
    }

    #[test]
    fn text_and_prometheus_names() {
        let stats = Stats::default();
        let one = Arc::new(One(ClusterStats::default()));
        one.0.upstream_rq_retry.add(5);
        one.0.ejections_active.inc();
        stats.register(one.clone());
        assert_eq!(stats.get("cluster.c/x.upstream_rq_retry"), Some(5));
        assert_eq!(
            stats.get("cluster.c/x.outlier_detection.ejections_active"),
            Some(1)
        );
        assert_eq!(stats.get("cluster.c/x.nope"), None);
        let text = stats.render_text();
        assert!(text.contains("cluster.c/x.upstream_rq_retry: 5\n"));
        let prom = stats.render_prometheus();
        assert!(prom.contains("# TYPE envoy_cluster_upstream_rq_retry counter"));
        assert!(prom.contains("envoy_cluster_upstream_rq_retry{envoy_cluster_name=\"c/x\"} 5"));
        assert!(prom.contains("# TYPE envoy_cluster_outlier_detection_ejections_active gauge"));
    }

    #[test]
    fn extra_counters_are_shared_by_name() {
        let stats = Stats::default();
        let a = stats.cluster_counter("c", "health_check.failure");
        let b = stats.cluster_counter("c", "health_check.failure");
        a.inc();
        b.inc();
        assert_eq!(stats.get("cluster.c.health_check.failure"), Some(2));
        stats
            .root_counter("http_local_rate_limiter.x.rate_limited")
            .inc();
        stats.http_counter("l", "fault.aborts_injected").add(3);
        assert_eq!(stats.get("http_local_rate_limiter.x.rate_limited"), Some(1));
        assert_eq!(stats.get("http.l.fault.aborts_injected"), Some(3));
        let prom = stats.render_prometheus();
        assert!(
            prom.contains("envoy_http_local_rate_limiter_x_rate_limited 1\n"),
            "{prom}"
        );
    }

    #[test]
    fn gauge_never_wraps() {
        let g = Gauge::default();
        g.dec();
        assert_eq!(g.get(), 0);
        let c = ClusterStats::default();
        c.count_status(503);
        c.count_status(200);
        c.count_status(503);
        assert_eq!((c.upstream_rq_5xx.get(), c.upstream_rq_2xx.get()), (2, 1));
        let used: Vec<(u16, u64)> = c.upstream_rq_by_code.used().collect();
        assert_eq!(used, vec![(200, 1), (503, 2)]);
        c.upstream_rq_by_code.inc(42);
    }
}
