//! Writing a response head: the status line, the header fields, and the framing the server
//! chooses for the body (RFC 9112 §6): the upstream's `Content-Length`, an exact size the body
//! knows, chunked for HTTP/1.1 clients, or the end of the connection for HTTP/1.0 ones.

use http::{HeaderMap, Method, StatusCode, Version, header};

use super::date;

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
    headers: &HeaderMap,
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
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
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
    headers: &HeaderMap,
    body: BodyFraming,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let (mut has_length, mut has_date) = (false, false);
    for (name, value) in headers {
        has_date |= name == header::DATE;
        if name == header::TRANSFER_ENCODING || name == header::CONNECTION && is_persistence(value)
        {
            // Framing and persistence are this hop's business, written below.
            continue;
        }
        if name == header::CONTENT_LENGTH {
            // A 204 has no body to delimit; elsewhere the length given is the one sent.
            if status == StatusCode::NO_CONTENT || has_length {
                continue;
            }
            has_length = true;
        }
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
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

fn is_persistence(value: &http::HeaderValue) -> bool {
    value.as_bytes().split(|b| *b == b',').all(|t| {
        let t = t.trim_ascii();
        t.eq_ignore_ascii_case(b"close") || t.eq_ignore_ascii_case(b"keep-alive")
    })
}
