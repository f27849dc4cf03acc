//! The downstream response body: streams the upstream body (or a local reply) and, when it
//! ends, returns the upstream connection, releases the request's guards and writes the access
//! log entry. The route timeout keeps running while the body streams.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::exchange::Exchange;
use crate::proxy::cluster::response_body::{ResponseBody, ResponseBodyError};
use crate::proxy::error::ProxyError;

/// Response body sent downstream.
///
/// Its timers are armed only when the upstream body makes the response wait: a small response
/// whose body arrives with its headers never registers (nor cancels) a timer, and until a
/// timer is armed its expiry is checked against the clock.
#[derive(Debug)]
pub struct ProxyBody {
    inner: Inner,
    /// The route-level deadline and the error it ends the body with.
    deadline: Option<Deadline>,
    /// The stream idle timer, pushed back by every frame.
    idle: Option<IdleTimer>,
    done: Option<Exchange>,
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
    Upstream(#[from] ResponseBodyError),
    /// A timeout fired while streaming.
    #[error("{0}")]
    Timeout(ProxyError),
}

#[derive(Debug)]
enum Inner {
    Full(Option<Bytes>),
    Upstream(ResponseBody),
}

#[derive(Debug)]
struct Deadline {
    at: Instant,
    error: ProxyError,
    sleep: Option<Pin<Box<Sleep>>>,
}

#[derive(Debug)]
struct IdleTimer {
    limit: Duration,
    /// The last frame (or the response headers).
    since: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl ProxyBody {
    /// A fixed body.
    pub(crate) fn full(bytes: Bytes, done: Exchange) -> Self {
        ProxyBody {
            inner: Inner::Full((!bytes.is_empty()).then_some(bytes)),
            deadline: None,
            idle: None,
            done: Some(done),
        }
    }

    /// A streamed upstream body, cut off with `error` at `deadline`, or with a stream idle
    /// timeout when no frame arrives for `idle`.
    pub(crate) fn upstream(
        body: ResponseBody,
        deadline: Option<(Instant, ProxyError)>,
        idle: Option<Duration>,
        done: Exchange,
    ) -> Self {
        ProxyBody {
            inner: Inner::Upstream(body),
            deadline: deadline.map(|(at, error)| Deadline {
                at,
                error,
                sleep: None,
            }),
            idle: idle.map(|limit| IdleTimer {
                limit,
                since: Instant::now(),
                sleep: None,
            }),
            done: Some(done),
        }
    }

    fn end(&mut self, how: BodyEnd) {
        if let Some(mut done) = self.done.take() {
            if how != BodyEnd::Complete {
                // Close the upstream connection (or reset the stream) before the request
                // settles, as a completed body returned its connection before.
                self.inner = Inner::Full(None);
            }
            done.settle(how);
        }
    }

    /// The timer that has run out, if any (the route deadline first).
    fn expired(&self) -> Option<ProxyError> {
        if self.deadline.is_none() && self.idle.is_none() {
            return None;
        }
        let now = Instant::now();
        if let Some(d) = &self.deadline
            && now >= d.at
        {
            return Some(d.error);
        }
        match &self.idle {
            Some(i) if now >= i.since + i.limit => Some(ProxyError::StreamIdleTimeout),
            _ => None,
        }
    }

    /// The body waits for the upstream: arms the timers so they wake the task, and reports one
    /// that has run out meanwhile.
    fn arm_timers(&mut self, cx: &mut Context<'_>) -> Option<ProxyError> {
        if let Some(d) = &mut self.deadline {
            let at = d.at;
            let sleep = d
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if sleep.as_mut().poll(cx).is_ready() {
                return Some(d.error);
            }
        }
        if let Some(i) = &mut self.idle {
            let due = i.since + i.limit;
            let sleep = i
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
            if sleep.as_mut().poll(cx).is_ready() {
                return Some(ProxyError::StreamIdleTimeout);
            }
        }
        None
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
        if this.done.is_none() {
            return Poll::Ready(None);
        }
        if let Some(e) = this.expired() {
            this.end(BodyEnd::Timeout(e));
            return Poll::Ready(Some(Err(BodyError::Timeout(e))));
        }
        let poll = match &mut this.inner {
            Inner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Upstream(b) => Pin::new(b).poll_frame(cx).map_err(BodyError::from),
        };
        if let (Poll::Ready(Some(Ok(_))), Some(idle)) = (&poll, this.idle.as_mut()) {
            idle.since = Instant::now();
            if let Some(sleep) = idle.sleep.as_mut() {
                sleep.as_mut().reset(idle.since + idle.limit);
            }
        }
        if poll.is_pending()
            && let Some(e) = this.arm_timers(cx)
        {
            this.end(BodyEnd::Timeout(e));
            return Poll::Ready(Some(Err(BodyError::Timeout(e))));
        }
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
