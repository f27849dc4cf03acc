//! An upstream response body, holding the connection lease it is read from: the lease is
//! finished (the HTTP/1.1 connection parked for reuse, the HTTP/2 stream closed) the moment
//! the body ends, and dropped — closing the HTTP/1.1 connection, resetting the stream — when
//! the body is abandoned or fails.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::h1::{self, BodyState};
use super::pool::Lease;

/// The body of an upstream response.
#[derive(Debug)]
pub struct ResponseBody {
    /// `None` once the body ended or failed.
    lease: Option<Lease>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    H1 {
        state: BodyState,
        /// The response lets the connection carry another request.
        keep_alive: bool,
    },
    H2(Incoming),
}

/// Why an upstream body failed.
#[derive(Debug, thiserror::Error)]
pub enum ResponseBodyError {
    /// The HTTP/1.1 connection failed or the body's framing is broken.
    #[error(transparent)]
    H1(#[from] h1::ExchangeError),
    /// The HTTP/2 stream failed.
    #[error(transparent)]
    H2(#[from] hyper::Error),
}

impl ResponseBody {
    /// An HTTP/1.1 body read from the lease's connection.
    pub(super) fn h1(lease: Lease, state: BodyState, keep_alive: bool) -> Self {
        let mut body = ResponseBody {
            lease: Some(lease),
            kind: Kind::H1 { state, keep_alive },
        };
        // A response without a body frees its connection right away.
        body.release_if_ended();
        body
    }

    /// An HTTP/2 stream's body.
    pub(super) fn h2(lease: Lease, body: Incoming) -> Self {
        ResponseBody {
            lease: Some(lease),
            kind: Kind::H2(body),
        }
    }

    /// Finishes the lease once the body has ended.
    fn release_if_ended(&mut self) {
        let ended = match &self.kind {
            Kind::H1 { state, keep_alive } => {
                if state.is_done() && !keep_alive {
                    // Read to the end, but the connection must not carry another request.
                    drop(self.lease.take());
                    return;
                }
                state.is_done()
            }
            Kind::H2(body) => body.is_end_stream(),
        };
        if ended && let Some(lease) = self.lease.take() {
            lease.finish();
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = ResponseBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
        let this = self.get_mut();
        let poll = match &mut this.kind {
            Kind::H1 { state, .. } => match this.lease.as_mut().and_then(Lease::h1_connection) {
                Some(conn) => conn.poll_body(state, cx).map_err(ResponseBodyError::from),
                None => Poll::Ready(None),
            },
            Kind::H2(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(ResponseBodyError::from),
        };
        match &poll {
            Poll::Ready(Some(Err(_))) => drop(this.lease.take()),
            Poll::Ready(_) => this.release_if_ended(),
            Poll::Pending => {}
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::H1 { state, .. } => state.is_done(),
            Kind::H2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::H1 { state, .. } => state
                .remaining()
                .map_or_else(SizeHint::default, SizeHint::with_exact),
            Kind::H2(body) => body.size_hint(),
        }
    }
}
