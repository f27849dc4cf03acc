//! HTTP/1.1 response framing for the upstream client: the response head and how its body is
//! delimited (RFC 9112 §6.3), and the chunked transfer coding. Pure functions over buffers; the
//! connection drives them.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, StatusCode, Version};

/// Most header lines a response head may have (hyper's client default).
const MAX_HEADERS: usize = 100;
/// Largest response head accepted (Envoy's default `max_request_headers_kb` is 60).
pub const MAX_HEAD_BYTES: usize = 60 * 1024;
/// Longest chunk-size line (hex digits, extensions) or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Why a response could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The head is not valid HTTP/1.x.
    #[error("malformed response head")]
    Head,
    /// The head is larger than [`MAX_HEAD_BYTES`] or has too many header lines.
    #[error("response head too large")]
    HeadTooLarge,
    /// `Content-Length` is not one non-negative number.
    #[error("invalid content-length")]
    ContentLength,
    /// The chunked coding is broken.
    #[error("malformed chunked body")]
    Chunked,
}

/// How a response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304, or `Content-Length: 0`).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status code.
    pub status: StatusCode,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// Header fields, values sharing the read buffer's memory.
    pub headers: HeaderMap,
    /// How the body ends.
    pub framing: Framing,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
}

/// Parses one response head off the front of `buf`; `Ok(None)` while it is incomplete.
/// `head_request`: the request was HEAD, so the response has no body whatever it says.
pub fn parse_head(
    buf: &mut BytesMut,
    head_request: bool,
) -> Result<Option<ResponseHead>, FramingError> {
    // Uninitialised slots: zeroing a hundred of them cost more than parsing a small head.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let parse = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        buf,
        &mut slots,
    );
    let len = match parse {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(FramingError::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(FramingError::HeadTooLarge),
        Err(_) => return Err(FramingError::Head),
    };
    if len > MAX_HEAD_BYTES {
        return Err(FramingError::HeadTooLarge);
    }
    let code = parsed.code.ok_or(FramingError::Head)?;
    let status = StatusCode::from_u16(code).map_err(|_| FramingError::Head)?;
    let version = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    // Offsets into the head (it is smaller than 64 KiB), so the values can share its memory
    // once it is split off.
    let base = buf.as_ptr() as usize;
    let mut fields = [Field::default(); MAX_HEADERS];
    let count = parsed.headers.len();
    for (field, h) in fields.iter_mut().zip(parsed.headers.iter()) {
        let at = |s: &[u8]| (s.as_ptr() as usize - base) as u16;
        let (name, value) = (at(h.name.as_bytes()), at(h.value));
        *field = Field {
            name: (name, name + h.name.len() as u16),
            value: (value, value + h.value.len() as u16),
        };
    }
    let head = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(count);
    let mut facts = Facts::default();
    for field in &fields[..count] {
        let (ns, ne) = (usize::from(field.name.0), usize::from(field.name.1));
        let (vs, ve) = (usize::from(field.value.0), usize::from(field.value.1));
        let name = HeaderName::from_bytes(&head[ns..ne]).map_err(|_| FramingError::Head)?;
        let value =
            HeaderValue::from_maybe_shared(head.slice(vs..ve)).map_err(|_| FramingError::Head)?;
        if facts.note(&name, &value)? == Consumed::Yes {
            continue;
        }
        headers.append(name, value);
    }
    let bodiless = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless {
        Framing::Empty
    } else if facts.chunked {
        Framing::Chunked
    } else if facts.other_coding {
        // A transfer coding that does not end in chunked: the body runs until close.
        Framing::UntilClose
    } else {
        match facts.length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    let keep_alive = match version {
        Version::HTTP_10 => facts.keep_alive,
        _ => !facts.close,
    } && framing != Framing::UntilClose
        // Both codings: RFC 9112 §6.3 says to treat it as chunked and close afterwards.
        && !(facts.chunked && facts.length.is_some())
        && status != StatusCode::SWITCHING_PROTOCOLS;
    Ok(Some(ResponseHead {
        status,
        version,
        headers,
        framing,
        keep_alive,
    }))
}

/// Where one header line's name and value lie in the head.
#[derive(Debug, Default, Clone, Copy)]
struct Field {
    name: (u16, u16),
    value: (u16, u16),
}

/// What the head says about framing and persistence.
#[derive(Debug, Default)]
struct Facts {
    length: Option<u64>,
    chunked: bool,
    other_coding: bool,
    close: bool,
    keep_alive: bool,
}

/// Whether a header line was framing for this hop only, so the response need not carry it.
#[derive(Debug, PartialEq, Eq)]
enum Consumed {
    Yes,
    No,
}

impl Facts {
    /// Notes what `name: value` says; hop-by-hop framing (`Transfer-Encoding`, `Keep-Alive`, a
    /// `Connection` of only `close`/`keep-alive`) is consumed: the proxy never forwards it.
    fn note(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<Consumed, FramingError> {
        if name == header::CONTENT_LENGTH {
            // Repeated or comma-joined values must all agree.
            for part in value.as_bytes().split(|b| *b == b',') {
                let n = parse_decimal(part.trim_ascii()).ok_or(FramingError::ContentLength)?;
                if self.length.is_some_and(|m| m != n) {
                    return Err(FramingError::ContentLength);
                }
                self.length = Some(n);
            }
        } else if name == header::TRANSFER_ENCODING {
            let last = value
                .as_bytes()
                .rsplit(|b| *b == b',')
                .next()
                .unwrap_or(b"");
            let chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
            self.chunked = chunked;
            self.other_coding = !chunked;
            return Ok(Consumed::Yes);
        } else if name == header::CONNECTION {
            let mut only_persistence = true;
            for token in value.as_bytes().split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive = true;
                } else {
                    only_persistence = false;
                }
            }
            // Naming other headers: kept, so the response cleaning removes those too.
            if only_persistence {
                return Ok(Consumed::Yes);
            }
        } else if name.as_str() == "keep-alive" {
            return Ok(Consumed::Yes);
        }
        Ok(Consumed::No)
    }
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

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
