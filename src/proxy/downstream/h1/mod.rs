//! The proxy's own HTTP/1.1 server connection: one task reads a request head, runs the
//! pipeline, and writes the response, then the next request (pipelined ones included).
//!
//! hyper's server kept a `HeaderMap`, a service future and a response encoder of its own per
//! request; this loop hands the pipeline the head it parsed (header values share the read
//! buffer) and writes the response head and a small body in one system call. It keeps what
//! clients rely on: keep-alive by version and `Connection`, chunked and sized request bodies,
//! `Expect: 100-continue` (answered at once, as Envoy does), HTTP/1.0 clients, header limits,
//! a `date` header, and graceful shutdown (an idle connection closes, a busy one finishes its
//! request first). A client that goes away mid-request cancels it, as in Envoy.

mod body;
mod date;
mod request;
mod response;
#[cfg(test)]
mod tests;

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, Method, Request, Version};
use http_body::Body;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::WriteHalf;
use tokio::sync::watch;

use self::body::{ReadSide, RequestBody, lock};
use self::request::{BadRequest, RequestHead};
use self::response::{BodyFraming, Exchange};
use crate::proxy::http1::Progress;
use crate::proxy::pipeline::{Pipeline, ProxyResponse};
use crate::proxy::response_headers::ResponseHeaders;

/// Bytes of pipelined requests read ahead while one is in flight.
const MAX_READ_AHEAD: usize = 64 * 1024;
/// Body frames up to this size are copied behind the head (or chunk header) and go out in one
/// write; larger ones are written from their own memory.
const INLINE_BODY: usize = 16 * 1024;
/// How long a closing connection waits for the client to read the response and close, so
/// unread request bytes do not turn the close into a reset that destroys the response
/// (Envoy's `delayed_close_timeout` default).
const LINGER: Duration = Duration::from_secs(1);
/// Bytes a lingering close reads and discards at most.
const LINGER_BYTES: usize = 1 << 20;

/// Serves HTTP/1.1 on `stream`, whose first bytes were already read into `buf`.
pub async fn serve(
    mut stream: TcpStream,
    buf: BytesMut,
    peer: SocketAddr,
    pipeline: &Pipeline,
    shutdown: &mut watch::Receiver<bool>,
) {
    let (read_half, mut write) = stream.split();
    let read = Mutex::new(ReadSide::new(read_half, buf));
    let mut out = Vec::with_capacity(1024);
    // One wait for the shutdown signal for the connection's life: a `changed()` made for each
    // request costs a lock, a waiter-list insert and a removal every time.
    let mut signal = shutdown.clone();
    let mut shutdown_signalled = pin!(signal.changed());
    // The signal's value, marked seen: from here a change (the proxy only ever signals
    // "stop") is told by an atomic load, where reading the value takes a lock.
    let stopped_before = *shutdown.borrow_and_update();
    // The last request's header map, emptied: the next request's is built in its memory.
    let mut spare_headers = HeaderMap::new();
    loop {
        let next = next_head(
            &read,
            &mut spare_headers,
            shutdown,
            stopped_before,
            shutdown_signalled.as_mut(),
        );
        let head = match next.await {
            Next::Head(head) => head,
            Next::Closed => return,
            Next::Bad(e) => {
                tracing::debug!(%peer, error = %e, "bad request");
                pipeline.http_stats().downstream_cx_protocol_error.inc();
                out.clear();
                let x = Exchange {
                    method: &Method::GET,
                    version: Version::HTTP_11,
                    close: true,
                };
                let empty = ResponseHeaders::default();
                response::encode_head(&mut out, &x, e.status(), &empty, BodyFraming::Length(0));
                if write.write_all(&out).await.is_ok() {
                    linger_close(&read, &mut write).await;
                }
                return;
            }
        };
        let RequestHead {
            parts,
            body,
            keep_alive,
            expect_continue,
        } = head;
        if expect_continue
            && write
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return;
        }
        // Between requests the read side's body state is done (the last one was read to
        // its end, or the connection closed): only a request with a body changes it.
        let has_body = !body.is_done();
        if has_body {
            lock(&read).body = body;
        }
        let (method, version) = (parts.method.clone(), parts.version);
        let request = Request::from_parts(parts, RequestBody::new(has_body.then_some(&read)));
        let response = {
            let handle = pipeline.serve(request, peer, &mut spare_headers);
            tokio::pin!(handle);
            tokio::select! {
                biased;
                response = &mut handle => response,
                // Dropping the request cancels it; the pipeline logs it as `DC`.
                () = client_gone(&read) => return,
            }
        };
        spare_headers.clear();
        let request_read = !has_body || drain_buffered_body(&read);
        let x = Exchange {
            method: &method,
            version,
            close: !keep_alive || !request_read || stopped_before || stopping(shutdown),
        };
        match write_response(&mut write, &mut out, response, &x).await {
            Ok(true) if !x.close => {}
            Ok(_) => {
                linger_close(&read, &mut write).await;
                return;
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "downstream response not sent");
                return;
            }
        }
    }
}

/// What the connection brought next.
// Moved once per request; boxing the head would cost an allocation each time.
#[allow(clippy::large_enum_variant)]
enum Next {
    Head(RequestHead),
    /// The client closed the connection (or the proxy is shutting down and it is idle).
    Closed,
    Bad(BadRequest),
}

/// Reads the next request head; an idle connection closes when the proxy shuts down
/// (`stopped_before`: it already was when the connection started; `signalled`: the
/// connection's wait for a change of `shutdown`). The read side is locked once per poll, not
/// once per parse and read: each lock is a pair of atomic operations.
async fn next_head(
    read: &Mutex<ReadSide<'_>>,
    spare_headers: &mut HeaderMap,
    shutdown: &watch::Receiver<bool>,
    stopped_before: bool,
    mut signalled: Pin<&mut impl Future<Output = Result<(), watch::error::RecvError>>>,
) -> Next {
    poll_fn(|cx| {
        let mut read = lock(read);
        loop {
            if !read.buf.is_empty() {
                match request::parse(&mut read.buf, spare_headers) {
                    Ok(Some(head)) => return Poll::Ready(Next::Head(head)),
                    Ok(None) => {}
                    Err(e) => return Poll::Ready(Next::Bad(e)),
                }
            }
            let idle = read.buf.is_empty();
            if idle && (stopped_before || stopping(shutdown)) {
                return Poll::Ready(Next::Closed);
            }
            match read.poll_fill(cx) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Next::Closed),
                Poll::Ready(Ok(_)) => {}
                // The shutdown wait is polled only while nothing arrives, and only until it
                // resolves: the connection then closes.
                Poll::Pending if idle && signalled.as_mut().poll(cx).is_ready() => {
                    return Poll::Ready(Next::Closed);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

/// Discards what is already buffered of a request body the pipeline did not read (a local
/// reply); whether the body is now complete, so the connection can carry another request.
fn drain_buffered_body(read: &Mutex<ReadSide<'_>>) -> bool {
    let mut read = lock(read);
    let read = &mut *read;
    loop {
        match read.body.take(&mut read.buf) {
            Ok(Progress::Frame(_)) => {}
            Ok(Progress::End) => return true,
            Ok(Progress::NeedMore) | Err(_) => return false,
        }
    }
}

/// Whether the proxy began shutting down (or its handle is gone) since the connection marked
/// the signal seen: the proxy only ever changes it to "stop".
fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    shutdown.has_changed().unwrap_or(true)
}

/// Resolves when the client closes the connection while its request is in flight. Watches
/// only once the request body has been read (until then the body's own reads see the close);
/// bytes of pipelined requests are kept for later.
async fn client_gone(read: &Mutex<ReadSide<'_>>) {
    poll_fn(|cx| {
        let mut read = lock(read);
        if !read.body.is_done() {
            // Polled again on every wake-up of the request's task, so it starts in time.
            return Poll::Pending;
        }
        while read.buf.len() < MAX_READ_AHEAD {
            match read.poll_fill(cx) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Pending
    })
    .await;
}

/// Writes the response; `Ok(true)` when it went out whole and framed, so the connection can
/// carry another request.
async fn write_response(
    write: &mut WriteHalf<'_>,
    out: &mut Vec<u8>,
    response: ProxyResponse,
    x: &Exchange<'_>,
) -> io::Result<bool> {
    let ProxyResponse {
        status,
        headers,
        mut body,
    } = response;
    let framing = response::framing(x, status, &headers, body.size_hint().exact());
    out.clear();
    response::encode_head(out, x, status, &headers, framing);
    drop(headers);
    let mut sent: u64 = 0;
    let mut trailers = None;
    loop {
        // Frames that are ready join the head in the buffer; wait only once it is written.
        let frame = if out.is_empty() {
            poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        } else {
            match poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    write.write_all(out).await?;
                    out.clear();
                    continue;
                }
            }
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => {
                // Cut off: what was sent stays short of its framing, so the client sees the
                // failure, as when Envoy resets an HTTP/1.1 stream.
                write.write_all(out).await?;
                tracing::debug!(error = %e, "response body failed");
                return Ok(false);
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    trailers = frame.into_trailers().ok();
                    continue;
                }
            },
        };
        sent += data.len() as u64;
        match framing {
            BodyFraming::None => {}
            BodyFraming::Length(n) if sent > n => {
                // More than the declared length: send what fits and close.
                let fits = data.len() - (sent - n) as usize;
                write_data(write, out, data.slice(..fits)).await?;
                write.write_all(out).await?;
                return Ok(false);
            }
            BodyFraming::Length(_) | BodyFraming::UntilClose => {
                write_data(write, out, data).await?
            }
            BodyFraming::Chunked if data.is_empty() => {}
            BodyFraming::Chunked => {
                write_chunk_size(out, data.len());
                write_data(write, out, data).await?;
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    let whole = match framing {
        BodyFraming::Length(n) => sent == n,
        BodyFraming::Chunked => {
            out.extend_from_slice(b"0\r\n");
            for (name, value) in trailers.iter().flat_map(HeaderMap::iter) {
                out.extend_from_slice(name.as_str().as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
            true
        }
        BodyFraming::None => true,
        BodyFraming::UntilClose => false,
    };
    write.write_all(out).await?;
    out.clear();
    Ok(whole)
}

/// Appends `data` to the buffer, or writes the buffer and then `data` when it is large.
async fn write_data(write: &mut WriteHalf<'_>, out: &mut Vec<u8>, data: Bytes) -> io::Result<()> {
    if data.len() <= INLINE_BODY {
        out.extend_from_slice(&data);
        return Ok(());
    }
    write.write_all(out).await?;
    out.clear();
    let mut data = data;
    while data.has_remaining() {
        let n = write.write(&data).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data.advance(n);
    }
    Ok(())
}

fn write_chunk_size(out: &mut Vec<u8>, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(HEX[(len >> (i * 4)) & 0xf]);
    }
    out.extend_from_slice(b"\r\n");
}

/// Closes after a final response: sends FIN, then reads and discards what the client still
/// sends until it closes too (bounded in time and bytes), so the response is not lost to a
/// reset.
async fn linger_close(read: &Mutex<ReadSide<'_>>, write: &mut WriteHalf<'_>) {
    if write.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut discarded = 0;
        loop {
            let n = poll_fn(|cx| {
                let mut read = lock(read);
                read.buf.clear();
                read.poll_fill(cx)
            })
            .await;
            match n {
                Ok(0) | Err(_) => return,
                Ok(n) => discarded += n,
            }
            if discarded > LINGER_BYTES {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}
