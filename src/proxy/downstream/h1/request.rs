//! Reading a request head off the connection's buffer: the `http` parts the pipeline routes on,
//! how the body is delimited (RFC 9112 §6.3), and what the client asked of the connection.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode, Uri, Version};

use crate::proxy::http1::{
    BodyState, Field, Fields, FramingError, MAX_HEADERS, collect_headers, head_length,
};

/// A parsed request head.
#[derive(Debug)]
pub struct RequestHead {
    /// Method, target, version and header fields (values share the read buffer's memory).
    pub parts: Parts,
    /// How the body is delimited.
    pub body: BodyState,
    /// The client lets the connection carry another request after this one.
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
}

/// A request the server answers itself, closing the connection afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    /// Not valid HTTP/1.x, or a body it cannot delimit.
    #[error("malformed request: {0}")]
    Framing(#[from] FramingError),
    /// Both `Content-Length` and `Transfer-Encoding` (a request smuggling vector Envoy rejects:
    /// its `allow_chunked_length` is off by default), or a transfer coding from HTTP/1.0.
    #[error("both content-length and transfer-encoding")]
    AmbiguousLength,
    /// A transfer coding other than chunked last (RFC 9112 §6.1).
    #[error("unsupported transfer coding")]
    UnsupportedCoding,
}

impl BadRequest {
    /// The status of the local reply.
    pub fn status(self) -> StatusCode {
        match self {
            BadRequest::Framing(FramingError::HeadTooLarge) => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            BadRequest::UnsupportedCoding => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Parses one request head off the front of `buf`; `Ok(None)` while it is incomplete. The
/// header map is built in `spare`'s memory (an earlier request's, emptied) when it has some.
pub fn parse(buf: &mut BytesMut, spare: &mut HeaderMap) -> Result<Option<RequestHead>, BadRequest> {
    // Uninitialised slots: zeroing a hundred of them costs more than parsing a small head.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let parse = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut parsed,
        buf,
        &mut slots,
    );
    let Some(len) = head_length(parse, buf.len())? else {
        return Ok(None);
    };
    let version = match parsed.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let method = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
        .map_err(|_| FramingError::Head)?;
    let base = buf.as_ptr();
    let target = parsed.path.unwrap_or_default().as_bytes();
    let target_at = target.as_ptr() as usize - base as usize;
    let target_range = target_at..target_at + target.len();
    let fields: Fields = parsed
        .headers
        .iter()
        .map(|h| Field::locate(base, h))
        .collect();
    let head = buf.split_to(len).freeze();
    // Room for the `x-request-id` the pipeline adds.
    let (headers, facts) = collect_headers(&head, &fields, std::mem::take(spare), 1)?;
    let uri = Uri::from_maybe_shared(head.slice(target_range)).map_err(|_| FramingError::Head)?;

    let body = if facts.chunked || facts.other_coding {
        // HTTP/1.0 has no transfer codings: such framing is faulty (RFC 9112 §6.1).
        if facts.length.is_some() || version == Version::HTTP_10 {
            return Err(BadRequest::AmbiguousLength);
        }
        if facts.other_coding {
            return Err(BadRequest::UnsupportedCoding);
        }
        BodyState::Chunked(Box::default())
    } else {
        match facts.length {
            None | Some(0) => BodyState::Done,
            Some(n) => BodyState::Length(n),
        }
    };
    // Envoy answers `Expect: 100-continue` itself and does not forward it
    // (`proxy_100_continue` is off by default); HTTP/1.0 clients cannot ask for it.
    let expect_continue = facts.expect_continue && version == Version::HTTP_11 && !body.is_done();
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(RequestHead {
        parts,
        body,
        keep_alive: facts.persistent(version),
        expect_continue,
    }))
}
