//! The downstream response body: streams the upstream body (or a local reply) and, when it
//! ends, returns the upstream connection, releases the request's guards and writes the access
//! log entry. The route timeout keeps running while the body streams.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::proxy::access_log::{AccessLogEntry, AccessLogSink};
use crate::proxy::cluster::host_set::ActiveRequest;
use crate::proxy::cluster::pool::Lease;
use crate::proxy::cluster::resources::ResourceGuard;
use crate::proxy::error::ProxyError;
use crate::proxy::flags::ResponseFlag;
use crate::proxy::stats::{ClusterStats, ListenerStats};

/// Response body sent downstream.
#[derive(Debug)]
pub struct ProxyBody {
    inner: Inner,
    deadline: Option<(Pin<Box<Sleep>>, ProxyError)>,
    done: Option<Completion>,
}

/// Why the body stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// Sent completely.
    Complete,
    /// The upstream failed mid-body.
    UpstreamError,
    /// A route-level timer fired mid-body.
    Timeout(ProxyError),
    /// The downstream went away first.
    Dropped,
}

/// Error ending a streamed body (hyper resets the downstream stream).
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The upstream body failed.
    #[error("upstream body: {0}")]
    Upstream(#[from] hyper::Error),
    /// A timeout fired while streaming.
    #[error("{0}")]
    Timeout(ProxyError),
}

#[derive(Debug)]
enum Inner {
    Full(Option<Bytes>),
    Upstream(Incoming),
}

/// Everything to settle when the response ends.
#[derive(Debug)]
pub(crate) struct Completion {
    pub lease: Option<Lease>,
    pub attempt: Option<(ResourceGuard, ActiveRequest)>,
    pub entry: AccessLogEntry,
    pub start: Instant,
    pub sink: Arc<dyn AccessLogSink>,
    pub listener: Arc<ListenerStats>,
    pub cluster: Option<Arc<ClusterStats>>,
}

impl std::fmt::Debug for dyn AccessLogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessLogSink")
    }
}

impl ProxyBody {
    /// A fixed body.
    pub(crate) fn full(bytes: Bytes, done: Completion) -> Self {
        ProxyBody {
            inner: Inner::Full((!bytes.is_empty()).then_some(bytes)),
            deadline: None,
            done: Some(done),
        }
    }

    /// A streamed upstream body, cut off with `error` at `deadline`.
    pub(crate) fn upstream(
        body: Incoming,
        deadline: Option<(Instant, ProxyError)>,
        done: Completion,
    ) -> Self {
        ProxyBody {
            inner: Inner::Upstream(body),
            deadline: deadline.map(|(at, e)| (Box::pin(tokio::time::sleep_until(at)), e)),
            done: Some(done),
        }
    }

    fn end(&mut self, how: BodyEnd) {
        if let Some(done) = self.done.take() {
            done.finish(how);
        }
    }

    fn inner_done(&self) -> bool {
        match &self.inner {
            Inner::Full(b) => b.is_none(),
            Inner::Upstream(b) => b.is_end_stream(),
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Some((sleep, e)) = this.deadline.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            let e = *e;
            this.end(BodyEnd::Timeout(e));
            return Poll::Ready(Some(Err(BodyError::Timeout(e))));
        }
        let poll = match &mut this.inner {
            Inner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Upstream(b) => Pin::new(b).poll_frame(cx).map_err(BodyError::from),
        };
        match &poll {
            Poll::Ready(None) => this.end(BodyEnd::Complete),
            Poll::Ready(Some(Err(_))) => this.end(BodyEnd::UpstreamError),
            // hyper stops polling once the body reports its end, so settle right away.
            Poll::Ready(Some(Ok(_))) if this.inner_done() => this.end(BodyEnd::Complete),
            _ => {}
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.done.is_none() || self.inner_done()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Inner::Upstream(b) => b.size_hint(),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        let how = if self.inner_done() {
            BodyEnd::Complete
        } else {
            BodyEnd::Dropped
        };
        self.end(how);
    }
}

impl Completion {
    /// Settles the request: connection reuse, guards, stats, access log.
    pub(crate) fn finish(mut self, how: BodyEnd) {
        match how {
            BodyEnd::Complete => {
                if let Some(lease) = self.lease.take() {
                    lease.finish();
                }
            }
            BodyEnd::UpstreamError => self
                .entry
                .response_flags
                .insert(ResponseFlag::UpstreamConnectionTermination),
            BodyEnd::Timeout(e) => {
                self.entry.response_flags.insert(e.flag());
                if e == ProxyError::RouteTimeout
                    && let Some(c) = &self.cluster
                {
                    c.upstream_rq_timeout.inc();
                }
            }
            BodyEnd::Dropped => self
                .entry
                .response_flags
                .insert(ResponseFlag::DownstreamConnectionTermination),
        }
        // Release the connection and circuit-breaker slots before logging.
        drop(self.lease.take());
        drop(self.attempt.take());
        self.entry.duration = self.start.elapsed();
        self.sink.log(&self.entry);
        self.listener.stats.downstream_rq_active.dec();
    }
}
