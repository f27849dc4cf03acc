//! The request body as the pipeline reads it: frames taken off the connection's read buffer,
//! read from the socket in the pipeline's own task.

use std::io;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::net::tcp::ReadHalf;

use crate::proxy::http1::{self, BodyState, FramingError, Progress};

/// The read half of a downstream connection: the socket, the bytes read ahead of the parser,
/// and where the current request's body stands. The request body reads through it while the
/// pipeline runs; the connection loop reads the next head through it, and meanwhile watches
/// for the client going away.
#[derive(Debug)]
pub struct ReadSide<'s> {
    io: ReadHalf<'s>,
    pub buf: BytesMut,
    pub body: BodyState,
}

impl<'s> ReadSide<'s> {
    pub fn new(io: ReadHalf<'s>, buf: BytesMut) -> Self {
        ReadSide {
            io,
            buf,
            body: BodyState::Done,
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at the end of the stream.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        http1::poll_fill(&mut self.io, cx, &mut self.buf)
    }
}

/// Locks the read side; the lock is never contended (one task), and never poisoned in a way
/// that matters (no invariant spans a panic).
pub fn lock<'a, 's>(read: &'a Mutex<ReadSide<'s>>) -> MutexGuard<'a, ReadSide<'s>> {
    read.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why the request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    /// The socket failed.
    #[error("downstream connection failed: {0}")]
    Io(#[from] io::Error),
    /// The client closed the connection mid-body.
    #[error("downstream closed the connection mid-body")]
    Closed,
    /// The chunked coding is broken.
    #[error("{0}")]
    Framing(#[from] FramingError),
}

/// The body of a downstream request.
#[derive(Debug)]
pub struct RequestBody<'c, 's> {
    /// `None` for a request without a body (most are), which then never takes the lock.
    read: Option<&'c Mutex<ReadSide<'s>>>,
}

impl<'c, 's> RequestBody<'c, 's> {
    /// The body `read`'s body state delimits; `None` for a request without one.
    pub fn new(read: Option<&'c Mutex<ReadSide<'s>>>) -> Self {
        RequestBody { read }
    }
}

impl Body for RequestBody<'_, '_> {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let Some(read) = self.read else {
            return Poll::Ready(None);
        };
        let mut read = lock(read);
        let read = &mut *read;
        loop {
            match read.body.take(&mut read.buf) {
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
                Ok(Progress::Frame(frame)) => return Poll::Ready(Some(Ok(frame))),
                Ok(Progress::End) => return Poll::Ready(None),
                Ok(Progress::NeedMore) => {}
            }
            match ready!(read.poll_fill(cx)) {
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
                Ok(0) => return Poll::Ready(Some(Err(RequestBodyError::Closed))),
                Ok(_) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_none_or(|read| lock(read).body.is_done())
    }

    fn size_hint(&self) -> SizeHint {
        match self.read.map(|read| lock(read).body.remaining()) {
            None => SizeHint::with_exact(0),
            Some(Some(n)) => SizeHint::with_exact(n),
            Some(None) => SizeHint::default(),
        }
    }
}
