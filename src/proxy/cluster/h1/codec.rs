//! The upstream client's response head and how its body is delimited (RFC 9112 §6.3); the
//! header and chunked-coding rules it shares with the downstream server are in
//! [`crate::proxy::http1`]. Pure functions over buffers; the connection drives them.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::{HeaderMap, StatusCode, Version};

pub use crate::proxy::http1::{ChunkedDecoder, Decoded, FramingError, MAX_HEAD_BYTES};
use crate::proxy::http1::{Field, Fields, MAX_HEADERS, collect_headers, head_length, keep_fields};
use crate::proxy::response_headers::{MAX_LINES, ResponseHeaders};

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
    /// Header fields, as the head's lines (see [`ResponseHeaders`]).
    pub headers: ResponseHeaders,
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
    let Some(len) = head_length(parse, buf.len())? else {
        return Ok(None);
    };
    let code = parsed.code.ok_or(FramingError::Head)?;
    let status = StatusCode::from_u16(code).map_err(|_| FramingError::Head)?;
    let version = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let base = buf.as_ptr();
    let mut fields: Fields = parsed
        .headers
        .iter()
        .map(|h| Field::locate(base, h))
        .collect();
    let head = buf.split_to(len).freeze();
    let (headers, facts) = if fields.len() <= MAX_LINES {
        let facts = keep_fields(&head, &mut fields)?;
        (ResponseHeaders::lines(head, fields), facts)
    } else {
        let (map, facts) = collect_headers(&head, &fields, HeaderMap::new(), 0)?;
        (ResponseHeaders::from(map), facts)
    };
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
    let keep_alive = facts.persistent(version)
        && framing != Framing::UntilClose
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
