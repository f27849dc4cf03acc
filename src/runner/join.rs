//! Joins what the client saw (latency from the intended time, status, transport errors) with
//! what the proxy logged for the same request id (route, cluster, upstream replica, response
//! flags), and records each request once in the windowed recorder.
//!
//! Either half may arrive first; the first waits in a sharded map for the second. Requests the
//! proxy never logged (refused connections, client timeouts) are recorded from the client half
//! alone when the run ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::loadgen::flags::{FlagSet, ResponseFlag};
use crate::loadgen::recorder::{Observation, Observed, SeriesKey, WindowedRecorder};
use crate::loadgen::sample::{Outcome, Sample, SampleSink};
use crate::proxy::access_log::{AccessLogEntry, AccessLogSink};

const SHARDS: usize = 16;

/// What the proxy knew about a request.
#[derive(Debug, Clone, Copy)]
struct ProxySide {
    route: Option<u32>,
    backend: Option<u32>,
    replica: Option<u16>,
    flags: FlagSet,
}

#[derive(Debug)]
enum Half {
    Client(Sample),
    Proxy(ProxySide),
}

/// Where a cluster's requests are counted: its route rule and, when the rule has a single
/// backendRef, the backend (so local replies such as overflows count for that backend too).
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    /// Route key `ns/name/<rule index>`.
    pub route: String,
    pub backend: Option<String>,
}

/// The joiner: a [`SampleSink`] for the loads and an [`AccessLogSink`] for the proxy.
#[derive(Debug)]
pub struct Joiner {
    recorder: Arc<WindowedRecorder>,
    request_id_prefix: String,
    clusters: HashMap<String, ClusterInfo>,
    pending: Vec<Mutex<HashMap<String, Half>>>,
}

impl Joiner {
    pub fn new(
        recorder: Arc<WindowedRecorder>,
        request_id_prefix: &str,
        clusters: HashMap<String, ClusterInfo>,
    ) -> Joiner {
        Joiner {
            recorder,
            request_id_prefix: request_id_prefix.to_string(),
            clusters,
            pending: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, id: &str) -> std::sync::MutexGuard<'_, HashMap<String, Half>> {
        let hash = id.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        self.pending[hash % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records every request still waiting for its proxy half from what the client saw.
    pub fn finish(&self) {
        for shard in &self.pending {
            let drained: Vec<Half> = shard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain()
                .map(|(_, h)| h)
                .collect();
            for half in drained {
                if let Half::Client(sample) = half {
                    self.record(&sample, None);
                }
            }
        }
    }

    /// Requests waiting for their other half (for tests and leak checks).
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.pending
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    fn record(&self, sample: &Sample, proxy: Option<ProxySide>) {
        let (observed, latency) = match &sample.outcome {
            Outcome::Response(info) => {
                let mut flags = proxy.map_or(FlagSet::EMPTY, |p| p.flags);
                // Without the proxy's record, the client's view of the Envoy headers stands in.
                if info.overloaded {
                    insert_flag(&mut flags, "UO");
                }
                if info.ratelimited {
                    insert_flag(&mut flags, "RL");
                }
                (
                    Observed::Response {
                        status: info.status,
                        flags,
                    },
                    Some(sample.latency),
                )
            }
            Outcome::TransportError(kind) => {
                (Observed::TransportError(*kind), Some(sample.latency))
            }
            Outcome::ClientOverload => (Observed::ClientOverload, None),
        };
        let client_backend = match &sample.outcome {
            Outcome::Response(info) => info
                .backend
                .as_deref()
                .map(|b| self.recorder.backends().intern(b)),
            _ => None,
        };
        let client_replica = match &sample.outcome {
            Outcome::Response(info) => info.replica,
            _ => None,
        };
        let key = SeriesKey {
            load: sample.load,
            route: proxy.and_then(|p| p.route),
            backend: proxy.and_then(|p| p.backend).or(client_backend),
            replica: proxy.and_then(|p| p.replica).or(client_replica),
        };
        self.recorder.record_observation(
            key,
            Observation {
                intended: sample.intended,
                latency,
                observed,
            },
        );
    }

    fn proxy_side(&self, entry: &AccessLogEntry) -> ProxySide {
        // Local replies before the cluster is chosen (rate limits, fault aborts) still belong
        // to their route rule: its cluster is the route name without `/match/<j>`.
        let cluster = entry.cluster.as_deref().or_else(|| {
            entry
                .route
                .as_deref()
                .and_then(|r| r.rsplit_once("/match/").map(|(rule, _)| rule))
        });
        let info = cluster.and_then(|c| self.clusters.get(c));
        let backend = entry
            .backend
            .as_deref()
            .or(info.and_then(|i| i.backend.as_deref()));
        let mut flags = FlagSet::EMPTY;
        for code in entry.response_flags.codes() {
            insert_flag(&mut flags, code);
        }
        ProxySide {
            route: info.map(|i| self.recorder.routes().intern(&i.route)),
            backend: backend.map(|b| self.recorder.backends().intern(b)),
            replica: entry.replica.and_then(|r| u16::try_from(r).ok()),
            flags,
        }
    }
}

fn insert_flag(flags: &mut FlagSet, code: &str) {
    if let Some(flag) = ResponseFlag::parse(code) {
        flags.insert(flag);
    }
}

impl SampleSink for Joiner {
    fn record(&self, sample: Sample) {
        let id = format!(
            "{}-{}-{}",
            self.request_id_prefix, sample.load, sample.request_id
        );
        let proxy = {
            let mut shard = self.shard(&id);
            match shard.remove(&id) {
                Some(Half::Proxy(p)) => Some(p),
                Some(Half::Client(_)) | None => {
                    shard.insert(id, Half::Client(sample));
                    return;
                }
            }
        };
        self.record(&sample, proxy);
    }
}

impl AccessLogSink for Joiner {
    fn log(&self, entry: &AccessLogEntry) {
        let id = entry.request_id.as_str();
        if !id.starts_with(&self.request_id_prefix) {
            return;
        }
        let side = self.proxy_side(entry);
        let sample = {
            let mut shard = self.shard(id);
            match shard.remove(id) {
                Some(Half::Client(sample)) => sample,
                Some(Half::Proxy(_)) | None => {
                    shard.insert(id.to_owned(), Half::Proxy(side));
                    return;
                }
            }
        };
        self.record(&sample, Some(side));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::loadgen::sample::ResponseInfo;
    use crate::proxy::flags::{ResponseFlag as ProxyFlag, ResponseFlags};

    fn joiner() -> (Arc<WindowedRecorder>, Joiner) {
        let recorder = Arc::new(WindowedRecorder::try_new(Duration::from_secs(1)).unwrap());
        let clusters = HashMap::from([(
            "httproute/default/api/rule/0".to_string(),
            ClusterInfo {
                route: "default/api/0".into(),
                backend: Some("default/api".into()),
            },
        )]);
        let j = Joiner::new(recorder.clone(), "run1", clusters);
        (recorder, j)
    }

    fn sample(seq: u64, status: u16) -> Sample {
        Sample {
            load: 0,
            request_id: seq,
            intended: Duration::from_millis(100 * seq),
            sent: Duration::from_millis(100 * seq),
            latency: Duration::from_millis(3),
            outcome: Outcome::Response(ResponseInfo {
                status,
                backend: None,
                replica: None,
                overloaded: status == 503,
                ratelimited: false,
            }),
        }
    }

    fn entry(seq: u64, status: u16, overflow: bool) -> AccessLogEntry {
        let mut flags = ResponseFlags::default();
        if overflow {
            flags.insert(ProxyFlag::UpstreamOverflow);
        }
        AccessLogEntry {
            request_id: format!("run1-0-{seq}").as_str().into(),
            listener: "default/eg/http".into(),
            route: Some("httproute/default/api/rule/0/match/0".into()),
            cluster: Some("httproute/default/api/rule/0".into()),
            upstream_host: None,
            backend: None,
            replica: if overflow { None } else { Some(1) },
            method: http::Method::GET,
            path: http::uri::PathAndQuery::from_static("/"),
            status,
            response_flags: flags,
            attempts: 1,
            start: Duration::ZERO,
            duration: Duration::from_millis(2),
            upstream_duration: None,
        }
    }

    #[test]
    fn joins_in_either_order_and_attributes_local_replies_to_the_backend() {
        let (recorder, j) = joiner();
        SampleSink::record(&j, sample(1, 200));
        j.log(&entry(1, 200, false));
        j.log(&entry(2, 503, true));
        SampleSink::record(&j, sample(2, 503));
        assert_eq!(j.pending(), 0);
        let route = recorder.routes().get("default/api/0");
        let backend = recorder.backends().get("default/api");
        let all = recorder.aggregate(
            |k| k.route == route && k.backend == backend,
            Duration::ZERO,
            Duration::MAX,
        );
        assert_eq!(all.requests, 2);
        assert_eq!(
            all.flag_counts.get(&ResponseFlag::parse("UO").unwrap()),
            Some(&1)
        );
        let replica1 = recorder.aggregate(|k| k.replica == Some(1), Duration::ZERO, Duration::MAX);
        assert_eq!(replica1.requests, 1);
    }

    #[test]
    fn local_replies_before_the_cluster_count_for_their_rule() {
        let (recorder, j) = joiner();
        j.log(&AccessLogEntry {
            cluster: None,
            status: 429,
            ..entry(4, 429, false)
        });
        SampleSink::record(&j, sample(4, 429));
        let route = recorder.routes().get("default/api/0");
        let backend = recorder.backends().get("default/api");
        let all = recorder.aggregate(
            |k| k.route == route && k.backend == backend,
            Duration::ZERO,
            Duration::MAX,
        );
        assert_eq!(all.requests, 1);
    }

    #[test]
    fn unmatched_client_samples_are_recorded_at_the_end() {
        let (recorder, j) = joiner();
        SampleSink::record(&j, sample(3, 200));
        j.log(&AccessLogEntry {
            request_id: "other-0-1".into(),
            ..entry(9, 200, false)
        });
        assert_eq!(j.pending(), 1, "entries of other runs are ignored");
        j.finish();
        assert_eq!(j.pending(), 0);
        let all = recorder.aggregate(|k| k.route.is_none(), Duration::ZERO, Duration::MAX);
        assert_eq!(all.requests, 1);
    }
}
