//! From the windowed recorder and proxy samples to what reports show: per-second series for
//! the charts and whole-run statistics per route rule and backend.

use std::collections::BTreeMap;
use std::time::Duration;

use super::charts::{ChartInput, FaultSpan, ReplicaSeries, RouteSeries, SecondPoint};
use super::results::{LatencyMs, RouteStats};
use crate::chaos::timeline::TimelineEvent;
use crate::expect::evaluate::RuleSeries;
use crate::loadgen::flags::ResponseFlag;
use crate::loadgen::recorder::{Aggregate, SeriesKey, WindowedRecorder};
use crate::runner::Samples;
use crate::runtime::compile::Compiled;
use crate::scenario::spec::ScenarioSpec;

/// Percentiles drawn on the latency-distribution chart.
const DISTRIBUTION: [f64; 7] = [0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 99.999];

/// The chart input of a run.
#[allow(clippy::too_many_arguments)]
pub fn build(
    name: &str,
    spec: &ScenarioSpec,
    recorder: &WindowedRecorder,
    rules: &[RuleSeries],
    _events: &[TimelineEvent],
    samples: Samples,
    run_length: Duration,
    compiled: &Compiled,
) -> ChartInput {
    let faults = spec
        .faults
        .iter()
        .map(|f| {
            let replicas = f
                .replicas
                .as_ref()
                .map(|r| format!(" {r:?}"))
                .unwrap_or_default();
            FaultSpan {
                label: format!("{} {}{replicas}", f.kind.type_name(), f.backend.name),
                start_s: f.at.as_secs_f64(),
                end_s: f.end(run_length).as_secs_f64(),
            }
        })
        .collect();
    let routes = rules
        .iter()
        .map(|r| route_series(recorder, r, run_length))
        .collect();
    let mut replicas = Vec::new();
    for backend in &spec.backends {
        let key = format!("{}/{}", backend.namespace, backend.name);
        let Some(id) = recorder.backends().get(&key) else {
            continue;
        };
        for replica in 0..backend.replicas {
            let points = recorder
                .timeline(
                    |k| k.backend == Some(id) && k.replica == Some(replica as u16),
                    Duration::ZERO,
                    run_length,
                )
                .map(|(t, a)| (t.as_secs_f64(), responses(&a)))
                .collect();
            replicas.push(ReplicaSeries {
                name: format!("{}/{replica}", backend.name),
                points,
            });
        }
    }
    let mut clusters: Vec<_> = samples.clusters.into_values().collect();
    for series in &mut clusters {
        if let Some(c) = compiled
            .config
            .clusters
            .iter()
            .find(|c| c.name == series.name)
        {
            series.max_requests_limit = Some(f64::from(c.circuit_breaker.max_requests));
            series.max_pending_limit = Some(f64::from(c.circuit_breaker.max_pending_requests));
        }
    }
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    ChartInput {
        title_prefix: name.to_string(),
        duration_s: run_length.as_secs_f64(),
        faults,
        routes,
        replicas,
        clusters,
    }
}

/// Responses answered by an upstream replica (what "served" means on the traffic chart).
fn responses(a: &Aggregate) -> u64 {
    a.status_counts.values().sum()
}

fn route_series(
    recorder: &WindowedRecorder,
    rule: &RuleSeries,
    run_length: Duration,
) -> RouteSeries {
    let filter = |k: &SeriesKey| k.route == Some(rule.route_id);
    let points = recorder
        .timeline(filter, Duration::ZERO, run_length)
        .map(|(t, a)| {
            let flag = |code: &str| {
                ResponseFlag::parse(code)
                    .and_then(|f| a.flag_counts.get(&f).copied())
                    .unwrap_or(0)
            };
            let success = a.status_class_count(2) + a.status_class_count(3);
            let (uo, rl, ut, uh) = (flag("UO"), flag("RL"), flag("UT"), flag("UH"));
            let has_latency = !a.histogram.is_empty();
            SecondPoint {
                t_s: t.as_secs_f64(),
                requests: a.requests,
                success,
                overflow_uo: uo,
                ratelimited_rl: rl,
                timeout_ut: ut,
                no_healthy_uh: uh,
                other_errors: a.requests.saturating_sub(success + uo + rl + ut + uh),
                p50_ms: has_latency.then(|| ms(a.p50())),
                p99_ms: has_latency.then(|| ms(a.p99())),
            }
        })
        .collect();
    let whole = recorder.aggregate(filter, Duration::ZERO, Duration::MAX);
    let percentiles = if whole.histogram.is_empty() {
        Vec::new()
    } else {
        DISTRIBUTION
            .iter()
            .map(|p| (*p, ms(whole.latency_quantile(p / 100.0))))
            .collect()
    };
    RouteSeries {
        name: format!("{}/{} rule {}", rule.namespace, rule.name, rule.rule),
        points,
        percentiles,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Whole-run statistics per route rule and backend, plus requests the proxy did not route.
pub fn route_stats(recorder: &WindowedRecorder, rules: &[RuleSeries]) -> Vec<RouteStats> {
    let mut out = Vec::new();
    for rule in rules {
        let name = format!("{}/{}/rule/{}", rule.namespace, rule.name, rule.rule);
        for backend in &rule.backends {
            let id = recorder.backends().get(backend);
            let a = recorder.aggregate(
                |k| k.route == Some(rule.route_id) && (rule.backends.len() == 1 || k.backend == id),
                Duration::ZERO,
                Duration::MAX,
            );
            out.push(stats(name.clone(), Some(backend.clone()), &a));
            if rule.backends.len() == 1 {
                break;
            }
        }
    }
    let unrouted = recorder.aggregate(|k| k.route.is_none(), Duration::ZERO, Duration::MAX);
    if unrouted.requests > 0 {
        out.push(stats("(no route)".to_string(), None, &unrouted));
    }
    out
}

fn stats(route: String, backend: Option<String>, a: &Aggregate) -> RouteStats {
    let success = a.status_class_count(2) + a.status_class_count(3);
    let latency = (!a.histogram.is_empty()).then(|| LatencyMs {
        p50: Some(ms(a.p50())),
        p90: Some(ms(a.p90())),
        p99: Some(ms(a.p99())),
        p999: Some(ms(a.p999())),
        max: Some(ms(a.max())),
        mean: Some(ms(a.mean())),
    });
    RouteStats {
        route,
        backend,
        requests: a.requests,
        success,
        success_rate: (a.requests > 0).then(|| success as f64 / a.requests as f64),
        latency_ms: latency.unwrap_or_default(),
        flags: a
            .flag_counts
            .iter()
            .map(|(f, c)| (f.as_str().to_string(), *c))
            .collect(),
        statuses: a
            .status_counts
            .iter()
            .map(|(s, c)| (s.to_string(), *c))
            .collect::<BTreeMap<_, _>>(),
        transport_errors: a.transport_error_count(),
    }
}
