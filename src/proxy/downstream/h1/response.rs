//! Writing a response head: the status line, the header fields, and the framing the server
//! chooses for the body (RFC 9112 §6): the upstream's `Content-Length`, an exact size the body
//! knows, chunked for HTTP/1.1 clients, or the end of the connection for HTTP/1.0 ones.

use http::{Method, StatusCode, Version, header};

use super::date;
use crate::proxy::http1::Known;
use crate::proxy::response_headers::ResponseHeaders;

/// How the response body goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body may follow (HEAD, 1xx, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the server closes the connection (HTTP/1.0 clients without a known length).
    UntilClose,
}

/// What the request said that shapes the response head.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub method: &'a Method,
    pub version: Version,
    /// The connection closes after this response.
    pub close: bool,
}

/// Picks the body framing for a response; `exact` is the body's exact size when it knows it.
pub fn framing(
    x: &Exchange<'_>,
    status: StatusCode,
    headers: &ResponseHeaders,
    exact: Option<u64>,
) -> BodyFraming {
    if *x.method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return BodyFraming::None;
    }
    // The body's exact size, when it knows it, is the upstream's `Content-Length` or the local
    // reply's length; the header is looked up only for the rest.
    let length = exact.or_else(|| {
        headers
            .get(&header::CONTENT_LENGTH)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    match (length, x.version) {
        (Some(n), _) => BodyFraming::Length(n),
        (None, Version::HTTP_10) => BodyFraming::UntilClose,
        (None, _) => BodyFraming::Chunked,
    }
}

/// Encodes the head of a response into `out`.
pub fn encode_head(
    out: &mut Vec<u8>,
    x: &Exchange<'_>,
    status: StatusCode,
    headers: &ResponseHeaders,
    body: BodyFraming,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let (mut has_length, mut has_date) = (false, false);
    // Names may come in any case (an upstream's lines): compared without case, written in
    // lower case, as Envoy writes them.
    headers.for_each(|name, value, known| {
        match known {
            Known::Date => has_date = true,
            // Framing and persistence are this hop's business, written below.
            Known::TransferEncoding => return,
            Known::Connection if is_persistence(value) => return,
            // A 204 has no body to delimit; elsewhere the length given is the one sent.
            Known::ContentLength if status == StatusCode::NO_CONTENT || has_length => return,
            Known::ContentLength => has_length = true,
            _ => {}
        }
        let at = out.len();
        out.extend_from_slice(name);
        out[at..].make_ascii_lowercase();
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    });
    match body {
        BodyFraming::Length(n) if !has_length => {
            let mut digits = itoa::Buffer::new();
            field(out, b"content-length", digits.format(n).as_bytes());
        }
        BodyFraming::Chunked => field(out, b"transfer-encoding", b"chunked"),
        _ => {}
    }
    if x.close || body == BodyFraming::UntilClose {
        field(out, b"connection", b"close");
    } else if x.version == Version::HTTP_10 {
        field(out, b"connection", b"keep-alive");
    }
    if !has_date {
        date::with_now(|now| field(out, b"date", now));
    }
    out.extend_from_slice(b"\r\n");
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn is_persistence(value: &[u8]) -> bool {
    value.split(|b| *b == b',').all(|t| {
        let t = t.trim_ascii();
        t.eq_ignore_ascii_case(b"close") || t.eq_ignore_ascii_case(b"keep-alive")
    })
}
