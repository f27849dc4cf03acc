//! Samples the proxy's counters and gauges once per second: counters feed `stat(NAME)`
//! expectations, gauges feed the proxy-state chart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::expect::evaluate::{ClusterCounters, StatTimeline};
use crate::proxy::stats::{Scope, Stats};
use crate::report::charts::ClusterSeries;

/// How often the proxy is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Counter samples for expectations and gauge series for charts.
#[derive(Debug, Default)]
pub struct Samples {
    pub counters: StatTimeline,
    pub clusters: HashMap<String, ClusterSeries>,
}

impl Samples {
    /// Takes one sample of `stats` at `t` seconds into the run.
    pub fn take(&mut self, stats: &Stats, at: Duration) {
        let mut counters: ClusterCounters = HashMap::new();
        let mut gauges: HashMap<String, HashMap<&'static str, f64>> = HashMap::new();
        stats.visit(&mut |scope, name, _, value| {
            let cluster = match scope {
                Scope::Cluster(cluster) => cluster,
                // Listener and root counters (fault, local rate limit) are kept too, under
                // their Envoy prefixes, for `stat()` on counters no cluster has.
                Scope::Http(listener) => {
                    counters
                        .entry(format!("http.{listener}"))
                        .or_default()
                        .insert(name.to_string(), value);
                    return;
                }
                Scope::Root => {
                    counters
                        .entry(String::new())
                        .or_default()
                        .insert(name.to_string(), value);
                    return;
                }
            };
            counters
                .entry(cluster.to_string())
                .or_default()
                .insert(name.to_string(), value);
            let gauge = match name {
                "upstream_rq_active" => "active",
                "upstream_rq_pending_active" => "pending",
                "outlier_detection.ejections_active" => "ejected",
                "membership_total" => "total",
                "membership_healthy" => "healthy",
                _ => return,
            };
            gauges
                .entry(cluster.to_string())
                .or_default()
                .insert(gauge, value as f64);
        });
        let t = at.as_secs_f64();
        for (cluster, g) in gauges {
            let series = self
                .clusters
                .entry(cluster.clone())
                .or_insert_with(|| ClusterSeries {
                    name: cluster,
                    ..ClusterSeries::default()
                });
            let get = |k: &str| g.get(k).copied().unwrap_or(0.0);
            series.active_requests.push((t, get("active")));
            series.pending.push((t, get("pending")));
            series.ejected_hosts.push((t, get("ejected")));
            series
                .unhealthy_hosts
                .push((t, (get("total") - get("healthy")).max(0.0)));
        }
        self.counters.push(at, counters);
    }
}

/// Samples `stats` every second from `run_start` until `stop` fires, then once more.
pub async fn sample_until(
    stats: Arc<Stats>,
    run_start: Instant,
    stop: tokio_util::sync::CancellationToken,
) -> Samples {
    let mut samples = Samples::default();
    let mut tick = tokio::time::interval_at(run_start, SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => samples.take(&stats, run_start.elapsed()),
            _ = stop.cancelled() => break,
        }
    }
    samples.take(&stats, run_start.elapsed());
    samples
}
