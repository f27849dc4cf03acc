//! The running record of one request. It is settled exactly once — when the response body
//! ends, or when the request is abandoned (the client went away while the proxy was still
//! waiting upstream) — and settling releases the request's circuit-breaker slots and writes
//! the access log entry. (The upstream connection belongs to the response body, which returns
//! it when the body ends.)

use std::sync::Arc;

use tokio::time::Instant;

use super::body::BodyEnd;
use crate::proxy::access_log::{AccessLogEntry, AccessLogSink};
use crate::proxy::cluster::Cluster;
use crate::proxy::cluster::host_set::{ActiveRequest, Host};
use crate::proxy::cluster::outlier::Outcome;
use crate::proxy::cluster::resources::ResourceGuard;
use crate::proxy::error::ProxyError;
use crate::proxy::flags::ResponseFlag;
use crate::proxy::stats::ListenerStats;

/// Where a listener's requests go when they settle: its stats and the access log. One shared
/// handle, so that each request holds one reference count rather than two.
pub(crate) struct Records {
    pub sink: Arc<dyn AccessLogSink>,
    pub listener: Arc<ListenerStats>,
}

/// One request's record and the resources it holds.
pub(crate) struct Exchange {
    /// The access log entry being filled in. Boxed: the record travels with the request's
    /// futures and its response body, which are moved several times per request.
    pub entry: Box<AccessLogEntry>,
    /// When the request arrived.
    pub start: Instant,
    /// The chosen cluster.
    pub cluster: Option<Arc<Cluster>>,
    /// The index of the host of the attempt in flight (reported to outlier detection when a
    /// route-level timer cuts the attempt short).
    pub in_flight: Option<usize>,
    /// The `max_requests` slot and host active-request count of the final attempt.
    pub attempt: Option<(ResourceGuard, ActiveRequest)>,
    /// The request is gRPC: local replies take gRPC form.
    pub grpc_request: bool,
    /// The request is a HEAD request (a gRPC local reply then carries no `grpc-message`).
    pub head_request: bool,
    /// Set on the pass a response override's redirect started: the status a 1xx/2xx final
    /// response takes (and overrides are not applied again).
    pub redirect: Option<http::StatusCode>,
    records: Arc<Records>,
    settled: bool,
}

impl Exchange {
    /// A new record; counts the request as active on the listener until settled.
    pub fn new(entry: AccessLogEntry, start: Instant, records: Arc<Records>) -> Self {
        records.listener.stats.downstream_rq_active.inc();
        Exchange {
            entry: Box::new(entry),
            start,
            cluster: None,
            in_flight: None,
            attempt: None,
            grpc_request: false,
            head_request: false,
            redirect: None,
            records,
            settled: false,
        }
    }

    /// Records the start of an attempt on `host`.
    pub fn attempt_on(&mut self, host: &Arc<Host>) {
        self.entry.attempts += 1;
        self.entry.upstream_host = Some(host.endpoint.addr);
        self.entry.backend = Some(Arc::clone(&host.backend));
        self.entry.replica = Some(host.endpoint.replica);
        self.in_flight = Some(host.index);
    }

    /// A route-level timer ended the request while an attempt was in flight: Envoy resets that
    /// upstream request and tells outlier detection about a local-origin timeout.
    pub fn abandon_attempt(&mut self, e: ProxyError) {
        if let (Some(index), Some(cluster)) = (self.in_flight.take(), &self.cluster)
            && let Some(host) = cluster.hosts.hosts().get(index)
            && let Some(mapped) = e.local_origin_status()
        {
            cluster.report(host, Outcome::LocalFailure(mapped));
        }
    }

    /// Settles the request (idempotent).
    pub fn settle(&mut self, how: BodyEnd) {
        if self.settled {
            return;
        }
        self.settled = true;
        let flags = &mut self.entry.response_flags;
        match how {
            BodyEnd::Complete => {}
            BodyEnd::UpstreamError => flags.insert(ResponseFlag::UpstreamConnectionTermination),
            BodyEnd::Timeout(e) => {
                flags.insert(e.flag());
                if let Some(c) = &self.cluster {
                    match e {
                        ProxyError::RouteTimeout => c.stats.upstream_rq_timeout.inc(),
                        ProxyError::MaxStreamDuration => {
                            c.stats.upstream_rq_max_duration_reached.inc();
                        }
                        _ => {}
                    }
                }
            }
            BodyEnd::Dropped => flags.insert(ResponseFlag::DownstreamConnectionTermination),
        }
        // Release the circuit-breaker slots before logging.
        drop(self.attempt.take());
        if self.entry.backend.is_none() {
            // No attempt named a host's backend.
            self.entry.backend = self.cluster.as_ref().and_then(|c| c.backend.clone());
        }
        self.entry.duration = self.start.elapsed();
        let listener = &self.records.listener.stats;
        if self.entry.status > 0 {
            listener.count_status(self.entry.status);
        }
        self.records.sink.log(&self.entry);
        listener.downstream_rq_active.dec();
    }
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("entry", &self.entry)
            .field("settled", &self.settled)
            .finish_non_exhaustive()
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // Not settled by a response body: the client went away before the response started.
        self.settle(BodyEnd::Dropped);
    }
}
