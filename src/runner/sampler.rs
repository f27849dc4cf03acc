//! Samples the proxy's counters and gauges once per second: counters feed `stat(NAME)`
//! expectations, gauges feed the proxy-state chart. The proxy is read in-process (embedded
//! runtime) or through its `/stats` text over HTTP (docker runtime); both end in
//! [`Samples::record`].

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
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

/// Where the proxy's stats are read.
#[derive(Clone)]
pub enum StatsSource {
    /// The embedded proxy's own stats.
    InProcess(Arc<Stats>),
    /// A proxy's `/stats` (Envoy text format) at `addr`; `clusters` and `listeners` are the
    /// names it serves (names and stat names both hold dots, so `cluster.<name>.<stat>` and
    /// `http.<listener>.<stat>` are split on a known name).
    Http {
        addr: SocketAddr,
        clusters: Vec<String>,
        listeners: Vec<String>,
    },
}

impl StatsSource {
    /// Every stat by its Envoy text name; `None` when the proxy cannot be read.
    pub async fn snapshot(&self) -> Option<BTreeMap<String, u64>> {
        match self {
            StatsSource::InProcess(stats) => Some(stats.snapshot()),
            StatsSource::Http { addr, .. } => {
                let answer = crate::runtime::docker::control::request(
                    *addr,
                    http::Method::GET,
                    "/stats",
                    bytes::Bytes::new(),
                    Duration::from_millis(900),
                )
                .await
                .ok()?;
                answer
                    .status
                    .is_success()
                    .then(|| parse_stats_text(&String::from_utf8_lossy(&answer.body)))
            }
        }
    }

    /// Takes one sample; false when the proxy could not be read (a gap rather than zeros).
    async fn sample(&self, samples: &mut Samples, at: Duration) -> bool {
        match self {
            StatsSource::InProcess(stats) => samples.take(stats, at),
            StatsSource::Http {
                clusters,
                listeners,
                ..
            } => match self.snapshot().await {
                Some(all) => samples.record(scoped_stats(&all, clusters, listeners), at),
                None => return false,
            },
        }
        true
    }
}

/// `name: value` lines (Envoy's `/stats` text) as a map; other lines are skipped.
pub fn parse_stats_text(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(": ")?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// `(scope, stat, value)` for every stat of the text format, with the scopes the in-process
/// sampler uses: a known cluster for `cluster.<name>.<stat>`, `http.<listener>` for a known
/// listener's `http.<listener>.<stat>`, and "" for the root counters (fault, rate limit). Names
/// and stats both hold dots, so the longest known name wins.
fn scoped_stats<'a>(
    all: &'a BTreeMap<String, u64>,
    clusters: &'a [String],
    listeners: &'a [String],
) -> impl Iterator<Item = (&'a str, &'a str, u64)> + 'a {
    all.iter().filter_map(move |(key, value)| {
        if let Some(rest) = key.strip_prefix("cluster.") {
            let cluster = longest_prefix(rest, clusters)?;
            return Some((cluster, &rest[cluster.len() + 1..], *value));
        }
        if let Some(rest) = key.strip_prefix("http.")
            && let Some(listener) = longest_prefix(rest, listeners)
        {
            let scope_len = "http.".len() + listener.len();
            return Some((&key[..scope_len], &key[scope_len + 1..], *value));
        }
        Some(("", key.as_str(), *value))
    })
}

/// The longest of `names` that `text` starts with, followed by a dot.
fn longest_prefix<'a>(text: &str, names: &'a [String]) -> Option<&'a str> {
    names
        .iter()
        .filter(|n| {
            text.strip_prefix(n.as_str())
                .is_some_and(|tail| tail.starts_with('.'))
        })
        .max_by_key(|n| n.len())
        .map(String::as_str)
}

impl Samples {
    /// Takes one sample of `stats` at `t` seconds into the run.
    pub fn take(&mut self, stats: &Stats, at: Duration) {
        let mut entries: Vec<(String, String, u64)> = Vec::new();
        stats.visit(&mut |scope, name, _, value| {
            // Listener and root counters (fault, local rate limit) are kept too, under their
            // Envoy prefixes, for `stat()` on counters no cluster has.
            let scope = match scope {
                Scope::Cluster(cluster) => cluster.to_string(),
                Scope::Http(listener) => format!("http.{listener}"),
                Scope::Root => String::new(),
            };
            entries.push((scope, name.to_string(), value));
        });
        self.record(
            entries.iter().map(|(c, n, v)| (c.as_str(), n.as_str(), *v)),
            at,
        );
    }

    /// Records one sample from `(cluster, stat, value)` triples at `at` into the run.
    pub fn record<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
        at: Duration,
    ) {
        let mut counters: ClusterCounters = HashMap::new();
        let mut gauges: HashMap<String, HashMap<&'static str, f64>> = HashMap::new();
        for (cluster, name, value) in entries {
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
                _ => continue,
            };
            gauges
                .entry(cluster.to_string())
                .or_default()
                .insert(gauge, value as f64);
        }
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
    stats: StatsSource,
    run_start: Instant,
    stop: tokio_util::sync::CancellationToken,
) -> Samples {
    let mut samples = Samples::default();
    let mut tick = tokio::time::interval_at(run_start, SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                stats.sample(&mut samples, run_start.elapsed()).await;
            }
            _ = stop.cancelled() => break,
        }
    }
    // The last sample carries the whole run's totals, which `stat()` over the run reads: a busy
    // machine or engine must not turn it into a gap.
    for _ in 0..FINAL_SAMPLE_ATTEMPTS {
        if stats.sample(&mut samples, run_start.elapsed()).await {
            break;
        }
    }
    samples
}

/// How often the final sample is tried before the run settles for the previous one.
const FINAL_SAMPLE_ATTEMPTS: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_text_splits_on_known_cluster_names() {
        let text = "cluster.httproute/default/api/rule/0.upstream_rq_total: 12\n\
                    cluster.httproute/default/api/rule/0.outlier_detection.ejections_active: 1\n\
                    cluster.httproute/default/api/rule/0.membership_total: 3\n\
                    cluster.httproute/default/api/rule/0.membership_healthy: 2\n\
                    cluster.other.upstream_rq_total: 5\n\
                    http.default/eg/http.downstream_rq_total: 12\n\
                    fault.aborts_injected: 4\n\
                    not a stat line\n";
        let all = parse_stats_text(text);
        assert_eq!(all.len(), 7);
        let clusters = vec!["httproute/default/api/rule/0".to_string()];
        let listeners = vec!["default/eg/http".to_string()];
        let mut samples = Samples::default();
        samples.record(
            scoped_stats(&all, &clusters, &listeners),
            Duration::from_secs(1),
        );
        let series = &samples.clusters["httproute/default/api/rule/0"];
        assert_eq!(series.ejected_hosts, vec![(1.0, 1.0)]);
        assert_eq!(series.unhealthy_hosts, vec![(1.0, 1.0)]);
        assert_eq!(
            samples.clusters.len(),
            1,
            "unknown clusters are not sampled"
        );
        // The listener's and root counters keep the scopes the in-process sampler gives them,
        // so `stat()` on a fault or rate-limit counter works in both runtimes.
        let counters = &samples.counters.changes()[0].1;
        assert_eq!(counters["http.default/eg/http"]["downstream_rq_total"], 12);
        assert_eq!(counters[""]["fault.aborts_injected"], 4);
        assert!(!counters.contains_key("other"));
    }

    /// A `/stats` over HTTP (the docker proxy's) ends in the same samples as in-process stats.
    #[tokio::test]
    async fn stats_over_http_are_sampled() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for total in [3u64, 7] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await.unwrap();
                let body = format!(
                    "cluster.c.upstream_rq_total: {total}\ncluster.c.upstream_rq_active: 2\n"
                );
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                s.write_all(head.as_bytes()).await.unwrap();
                s.write_all(body.as_bytes()).await.unwrap();
            }
        });
        let source = StatsSource::Http {
            addr,
            clusters: vec!["c".to_string()],
            listeners: Vec::new(),
        };
        let mut samples = Samples::default();
        source.sample(&mut samples, Duration::from_secs(1)).await;
        source.sample(&mut samples, Duration::from_secs(2)).await;
        server.await.unwrap();
        assert_eq!(
            samples.clusters["c"].active_requests,
            vec![(1.0, 2.0), (2.0, 2.0)]
        );
        // Two samples; the second keeps only what changed.
        let changes = samples.counters.changes();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].1["c"]["upstream_rq_total"], 3);
        assert_eq!(changes[1].1["c"]["upstream_rq_total"], 7);
        assert!(!changes[1].1["c"].contains_key("upstream_rq_active"));
        // Nobody answering: no sample rather than zeros.
        let gone = StatsSource::Http {
            addr,
            clusters: vec!["c".to_string()],
            listeners: Vec::new(),
        };
        gone.sample(&mut samples, Duration::from_secs(3)).await;
        assert_eq!(samples.clusters["c"].active_requests.len(), 2);
    }
}
