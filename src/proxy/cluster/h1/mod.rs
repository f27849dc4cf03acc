//! The proxy's own HTTP/1.1 upstream connection, driven inline by the request that holds it.
//!
//! hyper's client runs each connection in a task of its own and hands every request and
//! response across channels, so each request paid two task wake-ups and their allocations.
//! Here the request writes its head into the socket itself, reads the response head, and the
//! downstream response body reads the upstream body straight from the socket into the
//! downstream connection: one task, and no allocation per request once the buffers are warm.
//! The pool (`super::pool`) owns the connection between requests.

pub mod codec;
#[cfg(test)]
mod tests;

use std::io;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Bytes, BytesMut};
use http_body::Frame;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub use crate::proxy::http1::BodyState;
use crate::proxy::http1::{self, Progress, READ_BUFFER};

use self::codec::{Framing, FramingError, ResponseHead};

/// Request bodies up to this size are copied behind the head and go out in one write.
const INLINE_BODY: usize = 16 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Nothing of the request reached the socket.
    #[error("request not sent: {0}")]
    NotSent(io::Error),
    /// The connection failed after the request (or part of it) was written.
    #[error("connection failed: {0}")]
    Io(#[from] io::Error),
    /// The upstream closed the connection before a complete response.
    #[error("connection closed before the response was complete")]
    Closed,
    /// The response is not valid HTTP/1.1.
    #[error("{0}")]
    Framing(#[from] FramingError),
}

/// One HTTP/1.1 connection to an upstream host.
#[derive(Debug)]
pub struct Connection {
    io: TcpStream,
    /// Bytes read and not yet consumed; response heads and bodies are split off it without
    /// copying.
    buf: BytesMut,
    /// The request being written.
    out: Vec<u8>,
}

impl Connection {
    /// Wraps a connected socket.
    pub fn new(io: TcpStream) -> Self {
        Connection {
            io,
            buf: BytesMut::with_capacity(READ_BUFFER),
            out: Vec::with_capacity(1024),
        }
    }

    /// Whether the idle connection can carry a request: the upstream has not closed it and
    /// sent nothing unasked. Costs no system call unless the socket became readable.
    pub fn is_usable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readable: EOF, an error, stray bytes — or a stale readiness.
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Writes one request (`encode` writes its head) and reads the final response head
    /// (1xx interim responses other than 101 are skipped).
    pub async fn exchange(
        &mut self,
        encode: impl FnOnce(&mut Vec<u8>),
        body: &Bytes,
        head_request: bool,
    ) -> Result<(ResponseHead, BodyState), ExchangeError> {
        self.out.clear();
        encode(&mut self.out);
        let rest: &[u8] = if body.len() <= INLINE_BODY {
            self.out.extend_from_slice(body);
            &[]
        } else {
            body
        };
        self.write_request(rest).await?;
        loop {
            if let Some(head) = codec::parse_head(&mut self.buf, head_request)? {
                if head.status.is_informational()
                    && head.status != http::StatusCode::SWITCHING_PROTOCOLS
                {
                    continue;
                }
                let state = match head.framing {
                    Framing::Empty => BodyState::Done,
                    Framing::Length(n) => BodyState::Length(n),
                    Framing::Chunked => BodyState::Chunked(Box::default()),
                    Framing::UntilClose => BodyState::UntilClose,
                };
                return Ok((head, state));
            }
            if self.read_more().await? == 0 {
                return Err(ExchangeError::Closed);
            }
        }
    }

    /// Writes the buffered head (and inline body), then `rest`.
    async fn write_request(&mut self, rest: &[u8]) -> Result<(), ExchangeError> {
        let mut written = 0;
        while written < self.out.len() {
            match self.io.write(&self.out[written..]).await {
                Ok(0) if written == 0 => {
                    return Err(ExchangeError::NotSent(io::ErrorKind::WriteZero.into()));
                }
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => written += n,
                Err(e) if written == 0 => return Err(ExchangeError::NotSent(e)),
                Err(e) => return Err(e.into()),
            }
        }
        if !rest.is_empty() {
            self.io.write_all(rest).await?;
        }
        Ok(())
    }

    async fn read_more(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read_more(cx)).await
    }

    fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        http1::poll_fill(&mut self.io, cx, &mut self.buf)
    }

    /// The next frame of the response body.
    pub fn poll_body(
        &mut self,
        state: &mut BodyState,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ExchangeError>>> {
        loop {
            match state.take(&mut self.buf) {
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
                Ok(Progress::Frame(frame)) => return Poll::Ready(Some(Ok(frame))),
                Ok(Progress::End) => return Poll::Ready(None),
                Ok(Progress::NeedMore) => {}
            }
            match ready!(self.poll_read_more(cx)) {
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
                Ok(0) if state.ends_at_close() => return Poll::Ready(None),
                Ok(0) => return Poll::Ready(Some(Err(ExchangeError::Closed))),
                Ok(_) => {}
            }
        }
    }
}
