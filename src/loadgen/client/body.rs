//! Reading a response body to its end and dropping it: the load generator only needs to know
//! the response is complete.

use tokio::net::TcpStream;

use super::buffer::ReadBuffer;
use super::chunked::ChunkedBody;
use super::head::Framing;
use super::{TransportErrorKind, classify_io};

/// Consumes the body framed by `framing` from `input`, reading `stream` for the rest.
pub(super) async fn skip(
    framing: Framing,
    input: &mut ReadBuffer,
    stream: &mut TcpStream,
) -> Result<(), TransportErrorKind> {
    match framing {
        Framing::Empty => Ok(()),
        Framing::Length(len) => skip_length(len, input, stream).await,
        Framing::Chunked => skip_chunked(input, stream).await,
        Framing::UntilClose => skip_to_close(input, stream).await,
    }
}

async fn skip_length(
    mut left: u64,
    input: &mut ReadBuffer,
    stream: &mut TcpStream,
) -> Result<(), TransportErrorKind> {
    loop {
        let available = input.filled().len();
        // Bounded by `available`, so the cast back to usize is lossless.
        let take = left.min(available as u64);
        input.consume(take as usize);
        left -= take;
        if left == 0 {
            return Ok(());
        }
        read_more(input, stream).await?;
    }
}

async fn skip_chunked(
    input: &mut ReadBuffer,
    stream: &mut TcpStream,
) -> Result<(), TransportErrorKind> {
    let mut body = ChunkedBody::default();
    loop {
        let (used, done) = body
            .feed(input.filled())
            .map_err(|_| TransportErrorKind::Other)?;
        input.consume(used);
        if done {
            return Ok(());
        }
        read_more(input, stream).await?;
    }
}

async fn skip_to_close(
    input: &mut ReadBuffer,
    stream: &mut TcpStream,
) -> Result<(), TransportErrorKind> {
    loop {
        input.consume(input.filled().len());
        match input.fill_from(stream).await {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(classify_io(&e)),
        }
    }
}

/// One more read for a body that is not complete yet: its end of stream is a reset.
async fn read_more(
    input: &mut ReadBuffer,
    stream: &mut TcpStream,
) -> Result<(), TransportErrorKind> {
    match input.fill_from(stream).await {
        Ok(0) => Err(TransportErrorKind::Reset),
        Ok(_) => Ok(()),
        Err(e) => Err(classify_io(&e)),
    }
}
