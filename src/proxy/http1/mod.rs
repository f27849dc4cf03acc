//! HTTP/1.1 message framing shared by the proxy's two sides: the downstream server reads
//! request heads, the upstream client response heads. Both turn httparse's header lines into a
//! `HeaderMap` whose values share the read buffer, learn from them how the body is delimited
//! and whether the connection persists (RFC 9112 §6.3, §9.3), and decode chunked bodies.

mod body;
mod chunked;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};
use tokio::io::AsyncRead;

pub use body::{BodyState, Progress};
pub use chunked::{ChunkedDecoder, Decoded};

/// Most header lines a head may have (hyper's default).
pub const MAX_HEADERS: usize = 100;
/// Largest head accepted (Envoy's default `max_request_headers_kb` is 60).
pub const MAX_HEAD_BYTES: usize = 60 * 1024;

/// Read buffer size; a read always has at least [`MIN_READ_SPACE`] bytes of room.
pub const READ_BUFFER: usize = 8 * 1024;
const MIN_READ_SPACE: usize = 1024;

/// Reads more bytes from `io` onto the end of `buf`; `Ok(0)` at the end of the stream.
pub fn poll_fill<R: AsyncRead + Unpin>(
    io: &mut R,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < MIN_READ_SPACE {
        buf.reserve(READ_BUFFER);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

/// The length of a complete head from httparse's verdict on `buffered` bytes; `Ok(None)`
/// while it is incomplete. Enforces [`MAX_HEAD_BYTES`] and [`MAX_HEADERS`].
pub fn head_length(
    parsed: Result<httparse::Status<usize>, httparse::Error>,
    buffered: usize,
) -> Result<Option<usize>, FramingError> {
    match parsed {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD_BYTES => {
            Err(FramingError::HeadTooLarge)
        }
        Ok(httparse::Status::Complete(len)) => Ok(Some(len)),
        Ok(httparse::Status::Partial) if buffered > MAX_HEAD_BYTES => {
            Err(FramingError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(FramingError::HeadTooLarge),
        Err(_) => Err(FramingError::Head),
    }
}

/// Why a message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The head is not valid HTTP/1.x.
    #[error("malformed message head")]
    Head,
    /// The head is larger than [`MAX_HEAD_BYTES`] or has too many header lines.
    #[error("message head too large")]
    HeadTooLarge,
    /// `Content-Length` is not one non-negative number.
    #[error("invalid content-length")]
    ContentLength,
    /// The chunked coding is broken.
    #[error("malformed chunked body")]
    Chunked,
}

/// The lines of a head: a typical head has a handful, so they fit inline.
pub type Fields = smallvec::SmallVec<[Field; 12]>;

/// The header names the proxy's HTTP/1.1 code acts on, told apart by one look at a name
/// in any case, so that later checks compare a tag instead of bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    #[default]
    Other,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    Expect,
    Date,
    Server,
    /// The other hop-by-hop names: `proxy-connection`, `te`, `trailer`, `upgrade`.
    HopByHop,
}

impl Known {
    /// What `name` (in any case) is.
    pub fn of(name: &[u8]) -> Known {
        let is = |known: &[u8]| name_is(name, known);
        // The length picks the one or two candidates to compare.
        match name.len() {
            2 if is(b"te") => Known::HopByHop,
            4 if is(b"date") => Known::Date,
            6 if is(b"server") => Known::Server,
            6 if is(b"expect") => Known::Expect,
            7 if is(b"trailer") || is(b"upgrade") => Known::HopByHop,
            10 if is(b"connection") => Known::Connection,
            10 if is(b"keep-alive") => Known::KeepAlive,
            14 if is(b"content-length") => Known::ContentLength,
            16 if is(b"proxy-connection") => Known::HopByHop,
            17 if is(b"transfer-encoding") => Known::TransferEncoding,
            _ => Known::Other,
        }
    }

    /// Hop-by-hop (RFC 9110 §7.6.1 and the usual legacy names): never forwarded.
    pub fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            Known::Connection | Known::KeepAlive | Known::TransferEncoding | Known::HopByHop
        )
    }
}

/// Whether a header name httparse accepted (a token) equals `lower`, a lower-case name of
/// letters, digits and `-`, in any case.
pub fn name_is(name: &[u8], lower: &[u8]) -> bool {
    // Setting bit 5 lower-cases a letter and keeps `-` and digits; no other token byte turns
    // into one of those, so on a token this is exact.
    name.len() == lower.len() && name.iter().zip(lower).all(|(b, k)| b | 0x20 == *k)
}

/// Where one header line's name and value lie in the head, as offsets (a head is smaller than
/// 64 KiB), so the values can share the head's memory once it is split off the read buffer;
/// and what the name is.
#[derive(Debug, Default, Clone, Copy)]
pub struct Field {
    name: (u16, u16),
    value: (u16, u16),
    pub known: Known,
}

impl Field {
    /// Locates httparse's `header` inside the buffer starting at `base`.
    pub fn locate(base: *const u8, header: &httparse::Header<'_>) -> Field {
        let at = |s: &[u8]| (s.as_ptr() as usize - base as usize) as u16;
        let (name, value) = (at(header.name.as_bytes()), at(header.value));
        Field {
            name: (name, name + header.name.len() as u16),
            value: (value, value + header.value.len() as u16),
            known: Known::of(header.name.as_bytes()),
        }
    }

    /// A field whose name and value are these ranges of its head.
    #[cfg(test)]
    pub fn at(head: &[u8], name: std::ops::Range<usize>, value: std::ops::Range<usize>) -> Field {
        Field {
            known: Known::of(&head[name.clone()]),
            name: (name.start as u16, name.end as u16),
            value: (value.start as u16, value.end as u16),
        }
    }

    /// Where the name and the value lie in the head.
    pub fn ranges(&self) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let (name, value) = (self.name, self.value);
        (
            usize::from(name.0)..usize::from(name.1),
            usize::from(value.0)..usize::from(value.1),
        )
    }

    /// The name, as it arrived, in `head`.
    pub fn name<'h>(&self, head: &'h [u8]) -> &'h [u8] {
        &head[usize::from(self.name.0)..usize::from(self.name.1)]
    }

    /// The value in `head`.
    pub fn value<'h>(&self, head: &'h [u8]) -> &'h [u8] {
        &head[usize::from(self.value.0)..usize::from(self.value.1)]
    }
}

/// What a head says about framing and persistence.
#[derive(Debug, Default)]
pub struct Facts {
    /// `Content-Length`, when given.
    pub length: Option<u64>,
    /// The last transfer coding is chunked.
    pub chunked: bool,
    /// A transfer coding that does not end in chunked.
    pub other_coding: bool,
    /// `Connection: close`.
    pub close: bool,
    /// `Connection: keep-alive`.
    pub keep_alive: bool,
    /// `Expect: 100-continue` (requests).
    pub expect_continue: bool,
}

impl Facts {
    /// Whether the connection may carry another message after this one, by the version's
    /// default and the `Connection` header.
    pub fn persistent(&self, version: http::Version) -> bool {
        match version {
            http::Version::HTTP_10 => self.keep_alive && !self.close,
            _ => !self.close,
        }
    }
}

/// Builds the header map of a head whose lines are `fields` of `head`, and what they say about
/// framing. Hop-by-hop framing (`Transfer-Encoding`, `Keep-Alive`, a `Connection` of only
/// `close`/`keep-alive`) and `Expect: 100-continue` (answered by the server) are consumed: the
/// proxy never forwards them. `headers`: an empty map whose memory is reused; `room`: fields
/// the caller will add, so the map need not grow (growing rehashes it).
pub fn collect_headers(
    head: &Bytes,
    fields: &[Field],
    mut headers: HeaderMap,
    room: usize,
) -> Result<(HeaderMap, Facts), FramingError> {
    headers.reserve(fields.len() + room);
    let mut facts = Facts::default();
    for field in fields {
        let (name, value) = field.ranges();
        let name = HeaderName::from_bytes(&head[name]).map_err(|_| FramingError::Head)?;
        let value =
            HeaderValue::from_maybe_shared(head.slice(value)).map_err(|_| FramingError::Head)?;
        if facts.note(field.known, value.as_bytes())? == Consumed::Yes {
            continue;
        }
        headers.append(name, value);
    }
    Ok((headers, facts))
}

/// Keeps the lines of a head the message carries on (drops those [`collect_headers`]
/// consumes) and says what they tell about framing; no map is built.
pub fn keep_fields(head: &[u8], fields: &mut Fields) -> Result<Facts, FramingError> {
    let mut facts = Facts::default();
    let mut failed = None;
    fields.retain(|field| match facts.note(field.known, field.value(head)) {
        Ok(consumed) => consumed == Consumed::No,
        Err(e) => {
            failed.get_or_insert(e);
            true
        }
    });
    failed.map_or(Ok(facts), Err)
}

/// Whether a header line was framing for this hop only, so the message need not carry it.
#[derive(Debug, PartialEq, Eq)]
enum Consumed {
    Yes,
    No,
}

impl Facts {
    /// Notes what a field named `known` with `value` says.
    fn note(&mut self, known: Known, value: &[u8]) -> Result<Consumed, FramingError> {
        if known == Known::ContentLength {
            // Repeated or comma-joined values must all agree.
            for part in value.split(|b| *b == b',') {
                let n = parse_decimal(part.trim_ascii()).ok_or(FramingError::ContentLength)?;
                if self.length.is_some_and(|m| m != n) {
                    return Err(FramingError::ContentLength);
                }
                self.length = Some(n);
            }
        } else if known == Known::TransferEncoding {
            let last = value.rsplit(|b| *b == b',').next().unwrap_or(b"");
            let chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
            self.chunked = chunked;
            self.other_coding = !chunked;
            return Ok(Consumed::Yes);
        } else if known == Known::Connection {
            let mut only_persistence = true;
            for token in value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive = true;
                } else {
                    only_persistence = false;
                }
            }
            // Naming other headers: kept, so the message cleaning removes those too.
            if only_persistence {
                return Ok(Consumed::Yes);
            }
        } else if known == Known::KeepAlive {
            return Ok(Consumed::Yes);
        } else if known == Known::Expect && value.eq_ignore_ascii_case(b"100-continue") {
            self.expect_continue = true;
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

#[cfg(test)]
mod tests {
    use super::Known;

    #[test]
    fn known_names_are_told_apart_in_any_case() {
        let cases: [(&[u8], Known); 12] = [
            (b"Content-Length", Known::ContentLength),
            (b"TRANSFER-ENCODING", Known::TransferEncoding),
            (b"connection", Known::Connection),
            (b"Keep-Alive", Known::KeepAlive),
            (b"Date", Known::Date),
            (b"Server", Known::Server),
            (b"Expect", Known::Expect),
            (b"TE", Known::HopByHop),
            (b"Proxy-Connection", Known::HopByHop),
            (b"Content-Type", Known::Other),
            // Same length and bit 5 apart from a known name, but not it.
            (b"Sdrver", Known::Other),
            (b"keep_alive", Known::Other),
        ];
        for (name, known) in cases {
            assert_eq!(Known::of(name), known, "{}", String::from_utf8_lossy(name));
        }
        assert!(Known::Connection.is_hop_by_hop() && !Known::Server.is_hop_by_hop());
    }
}
