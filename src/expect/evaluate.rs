//! Evaluating expectations over a finished (or interrupted) run: the `where` scope picks series
//! from the windowed recorder (and clusters for proxy counters), the metric reduces them to one
//! observed value, and the assertion compares it with the threshold.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::metric::{LatencyStat, Metric};
use crate::loadgen::flags::ResponseFlag;
use crate::loadgen::recorder::{Aggregate, SeriesKey, WindowedRecorder};
use crate::scenario::spec::{Expectation, RouteRef, RuleRef, Scope};

/// Increases of proxy counters, sampled during the run.
pub trait StatSource {
    /// The increase of counter `stat` over `[from, to)`, summed over `clusters`.
    fn increase(&self, clusters: &[String], stat: &str, from: Duration, to: Duration) -> u64;
}

/// A route rule the recorder knows, and the cluster that serves it.
#[derive(Debug, Clone)]
pub struct RuleSeries {
    pub namespace: String,
    pub name: String,
    pub rule: usize,
    pub rule_name: Option<String>,
    /// The recorder's route id for this rule.
    pub route_id: u32,
    pub cluster: String,
    /// `ns/name` of the backends its backendRefs name.
    pub backends: Vec<String>,
}

/// What an expectation needs to know about the run.
pub struct EvalContext<'a> {
    pub recorder: &'a WindowedRecorder,
    pub stats: &'a dyn StatSource,
    /// Load names by load index.
    pub loads: &'a [String],
    pub rules: &'a [RuleSeries],
    /// The whole run's length: the default `to`.
    pub run_length: Duration,
}

/// The outcome of one expectation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub name: String,
    pub assertion: String,
    /// The observed value in the metric's natural unit (fraction, seconds, count); null when
    /// nothing in scope makes it defined (a rate over no requests).
    pub observed: Option<f64>,
    /// The observed value written like the threshold (`97.2%`, `41ms`).
    pub observed_text: String,
    pub passed: bool,
    /// Requests in the expectation's scope.
    pub requests: u64,
}

/// Evaluates one expectation.
pub fn evaluate(expectation: &Expectation, ctx: &EvalContext<'_>) -> Verdict {
    let scope = &expectation.scope;
    let from = scope.from.unwrap_or(Duration::ZERO);
    let to = scope.to.unwrap_or(ctx.run_length).max(from);
    let filter = ScopeFilter::new(scope, ctx, true);
    let aggregate = ctx.recorder.aggregate(|k| filter.keeps(k), from, to);
    let metric = &expectation.assertion.metric;
    let value = match metric {
        Metric::Share => {
            let wider = ScopeFilter::new(scope, ctx, false);
            let all = ctx.recorder.aggregate(|k| wider.keeps(k), from, to);
            ratio(aggregate.requests, all.requests)
        }
        Metric::Stat(name) => {
            let clusters = filter.clusters(ctx);
            // Without an end, the whole run: up to the last sample, taken once the loads have
            // drained (after the nominal run length).
            let until = scope.to.map_or(Duration::MAX, |_| to);
            Some(ctx.stats.increase(&clusters, name, from, until) as f64)
        }
        Metric::Rps => {
            let seconds = (to - from).as_secs_f64();
            (seconds > 0.0).then(|| aggregate.requests as f64 / seconds)
        }
        other => request_metric(other, &aggregate),
    };
    let assertion = &expectation.assertion;
    Verdict {
        name: expectation.title(),
        assertion: assertion.to_string(),
        observed: value,
        observed_text: value.map_or_else(
            || "n/a (no requests in scope)".to_string(),
            |v| assertion.format_observed(v),
        ),
        passed: value.is_some_and(|v| assertion.holds(v)),
        requests: aggregate.requests,
    }
}

/// Metrics computed from the requests in scope alone.
fn request_metric(metric: &Metric, a: &Aggregate) -> Option<f64> {
    let n = a.requests;
    match metric {
        Metric::Requests => Some(n as f64),
        Metric::SuccessRate => ratio(a.status_class_count(2) + a.status_class_count(3), n),
        Metric::ErrorRate => ratio(
            n - (a.status_class_count(2) + a.status_class_count(3)).min(n),
            n,
        ),
        Metric::StatusRate(sel) => ratio(status_matching(a, |s| sel.matches(s)), n),
        Metric::StatusCount(sel) => Some(status_matching(a, |s| sel.matches(s)) as f64),
        Metric::FlagRate(_) | Metric::OverflowRate | Metric::RatelimitedRate => {
            ratio(flag_count(a, metric), n)
        }
        Metric::FlagCount(_) => Some(flag_count(a, metric) as f64),
        Metric::TransportErrorRate => ratio(a.transport_error_count(), n),
        Metric::Latency(stat) => {
            if a.histogram.is_empty() {
                return None;
            }
            let d = match stat {
                LatencyStat::P50 => a.p50(),
                LatencyStat::P90 => a.p90(),
                LatencyStat::P99 => a.p99(),
                LatencyStat::P999 => a.p999(),
                LatencyStat::Max => a.max(),
                LatencyStat::Mean => a.mean(),
            };
            Some(d.as_secs_f64())
        }
        Metric::Rps | Metric::Share | Metric::Stat(_) => None,
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn status_matching(a: &Aggregate, matches: impl Fn(u16) -> bool) -> u64 {
    a.status_counts
        .iter()
        .filter(|(s, _)| matches(**s))
        .map(|(_, c)| c)
        .sum()
}

fn flag_count(a: &Aggregate, metric: &Metric) -> u64 {
    metric
        .response_flag()
        .and_then(|f| ResponseFlag::parse(f.as_str()))
        .and_then(|f| a.flag_counts.get(&f).copied())
        .unwrap_or(0)
}

/// The recorder series an expectation's `where` keeps.
struct ScopeFilter {
    load: Option<u16>,
    routes: Option<Vec<u32>>,
    backend: Option<Option<u32>>,
    replica: Option<u16>,
    route_refs: Option<RouteRef>,
    backend_name: Option<String>,
}

impl ScopeFilter {
    /// With `with_backend` false, `backend` and `replica` are ignored: the denominator of `share`.
    fn new(scope: &Scope, ctx: &EvalContext<'_>, with_backend: bool) -> ScopeFilter {
        let load = scope.load.as_ref().map(|name| {
            ctx.loads
                .iter()
                .position(|l| l == name)
                .map_or(u16::MAX, |i| i as u16)
        });
        let routes = scope.route.as_ref().map(|r| {
            ctx.rules
                .iter()
                .filter(|s| rule_matches(r, s))
                .map(|s| s.route_id)
                .collect()
        });
        let backend_name = scope
            .backend
            .as_ref()
            .map(|b| format!("{}/{}", b.namespace, b.name));
        let backend = if with_backend {
            backend_name
                .as_ref()
                .map(|name| ctx.recorder.backends().get(name))
        } else {
            None
        };
        let replica = if with_backend {
            scope.replica.map(|r| r as u16)
        } else {
            None
        };
        ScopeFilter {
            load,
            routes,
            backend,
            replica,
            route_refs: scope.route.clone(),
            backend_name,
        }
    }

    fn keeps(&self, key: &SeriesKey) -> bool {
        if self.load.is_some_and(|l| l != key.load) {
            return false;
        }
        if let Some(routes) = &self.routes
            && !key.route.is_some_and(|r| routes.contains(&r))
        {
            return false;
        }
        if let Some(backend) = self.backend {
            // A backend nobody ever answered for has no id: nothing matches it.
            if backend.is_none() || key.backend != backend {
                return false;
            }
        }
        if self.replica.is_some() && key.replica != self.replica {
            return false;
        }
        true
    }

    /// The clusters a proxy counter is summed over: those of the routes in scope, narrowed to
    /// those that send to the backend in scope; every cluster when neither is given.
    fn clusters(&self, ctx: &EvalContext<'_>) -> Vec<String> {
        let mut clusters: Vec<String> = ctx
            .rules
            .iter()
            .filter(|s| self.route_refs.as_ref().is_none_or(|r| rule_matches(r, s)))
            .filter(|s| {
                self.backend_name
                    .as_ref()
                    .is_none_or(|b| s.backends.contains(b))
            })
            .map(|s| s.cluster.clone())
            .collect();
        clusters.sort();
        clusters.dedup();
        clusters
    }
}

fn rule_matches(r: &RouteRef, s: &RuleSeries) -> bool {
    r.namespace == s.namespace
        && r.name == s.name
        && match &r.rule {
            None => true,
            Some(RuleRef::Index(i)) => *i == s.rule,
            Some(RuleRef::Name(n)) => s.rule_name.as_deref() == Some(n.as_str()),
        }
}

/// Cumulative counter values by scope (a cluster's name, `http.<listener>`, or "" for root
/// counters), then counter name.
pub type ClusterCounters = HashMap<String, HashMap<String, u64>>;

/// How late after its tick a counter sample may be taken and still stand for the tick's time
/// (half the one-second sampling period).
const SAMPLE_LATENESS: Duration = Duration::from_millis(500);

/// Counter samples taken during a run. Each sample keeps only the counters that changed since
/// the one before, so a long run costs memory for what moved, not for every counter every
/// second.
#[derive(Debug, Clone, Default)]
pub struct StatTimeline {
    changes: Vec<(Duration, ClusterCounters)>,
    /// Every counter's newest value.
    latest: ClusterCounters,
}

impl StatTimeline {
    /// Adds a sample of every counter (times must not go backwards).
    pub fn push(&mut self, at: Duration, counters: ClusterCounters) {
        let mut changed: ClusterCounters = HashMap::new();
        for (scope, stats) in counters {
            let known = self.latest.entry(scope.clone()).or_default();
            for (name, value) in stats {
                if known.get(&name) != Some(&value) {
                    known.insert(name.clone(), value);
                    changed
                        .entry(scope.clone())
                        .or_default()
                        .insert(name, value);
                }
            }
        }
        self.changes.push((at, changed));
    }

    /// The samples, oldest first, each with the counters that changed at it.
    pub fn changes(&self) -> &[(Duration, ClusterCounters)] {
        &self.changes
    }

    /// The value of a counter at time `t`: its newest value sampled by then (0 before any). A
    /// sample is stamped when it was actually taken, a little after its tick (more on a busy
    /// machine), so the sample of tick `t` counts as taken at `t`.
    fn value_at(&self, cluster: &str, stat: &str, t: Duration) -> u64 {
        let by = t.saturating_add(SAMPLE_LATENESS);
        self.changes
            .iter()
            .take_while(|(at, _)| *at <= by)
            .filter_map(|(_, c)| c.get(cluster)?.get(stat).copied())
            .last()
            .unwrap_or(0)
    }
}

impl StatSource for StatTimeline {
    /// Sums over the clusters in scope; a counter no cluster has (the fault filter's, the local
    /// rate limiter's) is summed over the listener and root scopes instead.
    fn increase(&self, clusters: &[String], stat: &str, from: Duration, to: Duration) -> u64 {
        let latest = &self.latest;
        let cluster_has = clusters
            .iter()
            .any(|name| latest.get(name).is_some_and(|s| s.contains_key(stat)));
        let scopes: Vec<&String> = if cluster_has {
            clusters.iter().collect()
        } else {
            latest
                .keys()
                .filter(|k| k.is_empty() || k.starts_with("http."))
                .collect()
        };
        scopes
            .into_iter()
            .map(|c| {
                self.value_at(c, stat, to)
                    .saturating_sub(self.value_at(c, stat, from))
            })
            .sum()
    }
}

#[cfg(test)]
mod tests;
