//! Response bodies: whole, or trickled at a fixed rate for the `slowBody` fault.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Largest piece a slow body sends at once.
const MAX_CHUNK: u64 = 16 * 1024;

/// A slow body aims for this many writes per second (fewer when the rate is tiny).
const TICKS_PER_SECOND: u64 = 20;

/// The body of every replica response.
#[derive(Debug)]
pub(crate) enum ReplyBody {
    /// Sent in one frame (`None` once sent or when empty).
    Full(Option<Bytes>),
    /// Sent piece by piece on a schedule.
    Slow(SlowBody),
    /// A gRPC reply: one message, then the trailers carrying `grpc-status`.
    Grpc(Option<Bytes>, Option<HeaderMap>),
}

/// A body released at `rate` bytes per second, measured from its creation so ticks do not drift.
#[derive(Debug)]
pub(crate) struct SlowBody {
    data: Bytes,
    rate: u64,
    chunk: u64,
    start: Instant,
    sent: u64,
    sleep: Pin<Box<Sleep>>,
}

impl ReplyBody {
    pub(crate) fn full(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        Self::Full((!data.is_empty()).then_some(data))
    }

    /// A gRPC body: `message` (already framed), then `trailers`.
    pub(crate) fn grpc(message: Bytes, trailers: HeaderMap) -> Self {
        Self::Grpc(Some(message), Some(trailers))
    }

    /// `data` trickled at `bytes_per_second` (at least 1).
    pub(crate) fn slow(data: impl Into<Bytes>, bytes_per_second: u64) -> Self {
        let rate = bytes_per_second.max(1);
        let chunk = (rate / TICKS_PER_SECOND).clamp(1, MAX_CHUNK);
        let start = Instant::now();
        let mut body = SlowBody {
            data: data.into(),
            rate,
            chunk,
            start,
            sent: 0,
            sleep: Box::pin(tokio::time::sleep_until(start)),
        };
        body.schedule_next();
        Self::Slow(body)
    }
}

impl SlowBody {
    fn next_len(&self) -> usize {
        usize::try_from(self.chunk).map_or(self.data.len(), |c| c.min(self.data.len()))
    }

    /// Sets the timer to when the next piece is due: once `sent + next` bytes fit the rate.
    fn schedule_next(&mut self) {
        let due_bytes = self.sent + self.next_len() as u64;
        let due = Duration::from_secs_f64(due_bytes as f64 / self.rate as f64);
        self.sleep.as_mut().reset(self.start + due);
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Self::Grpc(message, trailers) => Poll::Ready(
                message
                    .take()
                    .map(Frame::data)
                    .or_else(|| trailers.take().map(Frame::trailers))
                    .map(Ok),
            ),
            Self::Slow(slow) => {
                if slow.data.is_empty() {
                    return Poll::Ready(None);
                }
                ready!(slow.sleep.as_mut().poll(cx));
                let piece = slow.data.split_to(slow.next_len());
                slow.sent += piece.len() as u64;
                if !slow.data.is_empty() {
                    slow.schedule_next();
                }
                Poll::Ready(Some(Ok(Frame::data(piece))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(data) => data.is_none(),
            Self::Grpc(message, trailers) => message.is_none() && trailers.is_none(),
            Self::Slow(slow) => slow.data.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        let remaining = match self {
            Self::Full(data) | Self::Grpc(data, _) => data.as_ref().map_or(0, Bytes::len),
            Self::Slow(slow) => slow.data.len(),
        };
        SizeHint::with_exact(remaining as u64)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slow_body_takes_size_over_rate() {
        let start = Instant::now();
        let mut body = ReplyBody::slow(vec![b'x'; 1000], 500);
        let mut pieces = 0;
        let mut total = 0;
        while let Some(frame) = body.frame().await {
            let data = frame.expect("infallible").into_data().expect("data frame");
            total += data.len();
            pieces += 1;
        }
        assert_eq!(total, 1000);
        assert_eq!(pieces, 40, "25-byte pieces at 20 ticks per second");
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn tiny_rates_send_single_bytes() {
        let start = Instant::now();
        let body = ReplyBody::slow(&b"abc"[..], 2);
        let collected = body.collect().await.expect("infallible").to_bytes();
        assert_eq!(&collected[..], b"abc");
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
    }

    #[tokio::test]
    async fn full_body_is_one_frame_with_exact_size() {
        let body = ReplyBody::full(&b"ok\n"[..]);
        assert_eq!(body.size_hint().exact(), Some(3));
        assert!(ReplyBody::full(Bytes::new()).is_end_stream());
        let collected = body.collect().await.expect("infallible").to_bytes();
        assert_eq!(&collected[..], b"ok\n");
    }
}
