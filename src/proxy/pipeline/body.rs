//! The downstream response body: streams the upstream body (or a local reply) and, when it
//! ends, returns the upstream connection, releases the request's guards and writes the access
//! log entry. The route timeout keeps running while the body streams.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use super::exchange::Exchange;
use crate::proxy::error::ProxyError;

/// Response body sent downstream.
#[derive(Debug)]
pub struct ProxyBody {
    inner: Inner,
    deadline: Option<(Pin<Box<Sleep>>, ProxyError)>,
    /// The stream idle timer, pushed back by every frame.
    idle: Option<(Pin<Box<Sleep>>, Duration)>,
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
        body: Incoming,
        deadline: Option<(Instant, ProxyError)>,
        idle: Option<Duration>,
        done: Exchange,
    ) -> Self {
        ProxyBody {
            inner: Inner::Upstream(body),
            deadline: deadline.map(|(at, e)| (Box::pin(tokio::time::sleep_until(at)), e)),
            idle: idle.map(|d| (Box::pin(tokio::time::sleep(d)), d)),
            done: Some(done),
        }
    }

    fn end(&mut self, how: BodyEnd) {
        if let Some(mut done) = self.done.take() {
            done.settle(how);
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
        if this.done.is_none() {
            return Poll::Ready(None);
        }
        let mut fired = None;
        if let Some((sleep, e)) = this.deadline.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            fired = Some(*e);
        } else if let Some((sleep, _)) = this.idle.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            fired = Some(ProxyError::StreamIdleTimeout);
        }
        if let Some(e) = fired {
            this.end(BodyEnd::Timeout(e));
            return Poll::Ready(Some(Err(BodyError::Timeout(e))));
        }
        let poll = match &mut this.inner {
            Inner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Upstream(b) => Pin::new(b).poll_frame(cx).map_err(BodyError::from),
        };
        if let (Poll::Ready(Some(Ok(_))), Some((sleep, d))) = (&poll, this.idle.as_mut()) {
            sleep.as_mut().reset(Instant::now() + *d);
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
