//! The chunked transfer coding (RFC 9112 §7.1), decoded incrementally from a read buffer.

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::FramingError;

/// Longest chunk-size line (hex digits, extensions) or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Decodes a chunked body incrementally: feed it the read buffer, take data out.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// Trailer fields read so far (the block may span reads).
    trailers: Option<HeaderMap>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// This many data bytes of the current chunk are still to come.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk.
    Trailers,
    /// The body ended.
    Done,
}

/// What the decoder produced from the buffer.
#[derive(Debug)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The trailer fields (only when there are any); the body ended.
    Trailers(HeaderMap),
    /// The body ended.
    End,
    /// More input is needed.
    NeedMore,
}

impl ChunkedDecoder {
    /// Decodes the next item from `buf`, consuming what it used.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, FramingError> {
        loop {
            match self.state {
                ChunkState::Done => {
                    return Ok(self.trailers.take().map_or(Decoded::End, Decoded::Trailers));
                }
                ChunkState::Size => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    let size = parse_chunk_size(&line)?;
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let data = buf.split_to(n).freeze();
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                    return Ok(Decoded::Data(data));
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(FramingError::Chunked);
                    }
                    buf.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                        continue;
                    }
                    let (name, value) = split_field(&line)?;
                    self.trailers
                        .get_or_insert_with(HeaderMap::new)
                        .append(name, value);
                }
            }
        }
    }

    /// The last chunk and the trailer block were read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done && self.trailers.is_none()
    }
}

/// Takes one CRLF-terminated line (without the CRLF) off the front of `buf`.
fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, FramingError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(end) if end > MAX_LINE => Err(FramingError::Chunked),
        Some(end) => {
            let line = buf.split_to(end).freeze();
            buf.advance(2);
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(FramingError::Chunked),
        None => Ok(None),
    }
}

/// The hex size before any `;extension`.
fn parse_chunk_size(line: &[u8]) -> Result<u64, FramingError> {
    let digits = line
        .split(|b| *b == b';')
        .next()
        .unwrap_or(b"")
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(FramingError::Chunked);
    }
    digits.iter().try_fold(0u64, |n, d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return Err(FramingError::Chunked),
        };
        Ok(n << 4 | u64::from(v))
    })
}

fn split_field(line: &Bytes) -> Result<(HeaderName, HeaderValue), FramingError> {
    let colon = line
        .iter()
        .position(|b| *b == b':')
        .ok_or(FramingError::Chunked)?;
    let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| FramingError::Chunked)?;
    let value = line.slice(colon + 1..);
    let start = value
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    let value = HeaderValue::from_maybe_shared(value.slice(start..end))
        .map_err(|_| FramingError::Chunked)?;
    Ok((name, value))
}
