//! The response head: the facts a sample keeps, how the body is framed, and whether the
//! connection stays open afterwards (RFC 9112 §6.3 and §9.3).

use std::mem::MaybeUninit;
use std::sync::Arc;

use httparse::{Header, ParserConfig, Status};

use crate::proxy::http1::name_is;

use super::{
    BACKEND_HEADER, OVERLOADED_HEADER, RATELIMITED_HEADER, REPLICA_HEADER, ResponseInfo,
    TransportErrorKind,
};

/// Header lines a response head may have (hyper's default too); more is a protocol error.
const MAX_HEADERS: usize = 100;

/// Distinct backend names a connection remembers, so a response costs no string allocation.
const BACKEND_CACHE: usize = 32;

/// What the bytes at the start of the read buffer hold.
#[derive(Debug)]
pub(super) enum Parsed {
    /// An informational (1xx) head of this many bytes, to skip: the real response follows.
    Interim(usize),
    /// The final response head.
    Final(Head),
}

/// A final response head.
#[derive(Debug)]
pub(super) struct Head {
    /// Its length in bytes; the body starts there.
    pub(super) len: usize,
    pub(super) info: ResponseInfo,
    pub(super) body: Framing,
    /// Whether the connection may carry another request after the body.
    pub(super) keep_alive: bool,
}

/// Where the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body (HEAD, 204, 304, or `content-length: 0`).
    Empty,
    /// `content-length` bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// Backend names seen on one connection, shared by its samples.
#[derive(Debug, Default)]
pub(super) struct BackendNames(Vec<Arc<str>>);

/// The headers that matter, as found in a head.
#[derive(Debug, Default)]
struct Fields<'b> {
    backend: Option<&'b [u8]>,
    replica: Option<&'b [u8]>,
    overloaded: bool,
    ratelimited: bool,
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked: bool,
    close: bool,
    keep_alive: bool,
}

/// Parses the head at the start of `buf`; `None` while it is incomplete. `head_request` says
/// the request was HEAD, whose response never has a body.
pub(super) fn parse(
    buf: &[u8],
    head_request: bool,
    names: &mut BackendNames,
) -> Result<Option<Parsed>, TransportErrorKind> {
    let mut slots = [const { MaybeUninit::<Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed =
        ParserConfig::default().parse_response_with_uninit_headers(&mut response, buf, &mut slots);
    let len = match parsed {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Ok(None),
        Err(_) => return Err(TransportErrorKind::Other),
    };
    let status = response.code.unwrap_or_default();
    match status {
        // Switching protocols was never asked for.
        101 => return Err(TransportErrorKind::Other),
        100..=199 => return Ok(Some(Parsed::Interim(len))),
        _ => {}
    }
    let mut fields = Fields::default();
    for header in response.headers.iter() {
        fields.note(header)?;
    }
    let body = if head_request || status == 204 || status == 304 {
        Framing::Empty
    } else if fields.transfer_encoding {
        // A final coding other than chunked leaves the length to the connection's end.
        if fields.chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        match fields.content_length {
            Some(0) => Framing::Empty,
            Some(len) => Framing::Length(len),
            None => Framing::UntilClose,
        }
    };
    let persistent = match response.version {
        Some(1) => !fields.close,
        _ => fields.keep_alive && !fields.close,
    };
    // Both framings at once smell of request smuggling: finish this response, then drop it.
    let ambiguous = fields.transfer_encoding && fields.content_length.is_some();
    let keep_alive = persistent && !ambiguous && body != Framing::UntilClose;
    let info = ResponseInfo {
        status,
        backend: fields.backend.and_then(|v| names.intern(v)),
        replica: fields
            .replica
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse().ok()),
        overloaded: fields.overloaded,
        ratelimited: fields.ratelimited,
    };
    Ok(Some(Parsed::Final(Head {
        len,
        info,
        body,
        keep_alive,
    })))
}

impl<'b> Fields<'b> {
    fn note(&mut self, header: &Header<'b>) -> Result<(), TransportErrorKind> {
        let name = header.name.as_bytes();
        let value = header.value;
        let is = |known: &str| name_is(name, known.as_bytes());
        // The length picks the framing candidate; `is` compares lengths before bytes.
        match name.len() {
            14 if is("content-length") => {
                self.content_length = Some(content_length(value, self.content_length)?);
            }
            17 if is("transfer-encoding") => {
                self.transfer_encoding = true;
                // Only the last coding of the last field decides.
                self.chunked = tokens(value)
                    .last()
                    .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
            }
            10 if is("connection") => {
                for token in tokens(value) {
                    self.close |= token.eq_ignore_ascii_case(b"close");
                    self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            _ => {
                if is(BACKEND_HEADER) {
                    self.backend = Some(value);
                } else if is(REPLICA_HEADER) {
                    self.replica = Some(value);
                } else if is(OVERLOADED_HEADER) {
                    self.overloaded = true;
                } else if is(RATELIMITED_HEADER) {
                    self.ratelimited = true;
                }
            }
        }
        Ok(())
    }
}

impl BackendNames {
    /// The name as a shared string, allocated once per distinct name.
    fn intern(&mut self, value: &[u8]) -> Option<Arc<str>> {
        if let Some(known) = self.0.iter().find(|b| b.as_bytes() == value) {
            return Some(Arc::clone(known));
        }
        let name: Arc<str> = Arc::from(std::str::from_utf8(value).ok()?);
        if self.0.len() < BACKEND_CACHE {
            self.0.push(Arc::clone(&name));
        }
        Some(name)
    }
}

/// A `content-length` value (a list of equal numbers is allowed), checked against an earlier
/// field's value: differing lengths are a protocol error.
fn content_length(value: &[u8], earlier: Option<u64>) -> Result<u64, TransportErrorKind> {
    let mut length = earlier;
    for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        if token.is_empty() || !token.iter().all(u8::is_ascii_digit) {
            return Err(TransportErrorKind::Other);
        }
        let parsed = token.iter().try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        });
        match (parsed, length) {
            (None, _) => return Err(TransportErrorKind::Other),
            (Some(n), Some(known)) if n != known => return Err(TransportErrorKind::Other),
            (Some(n), _) => length = Some(n),
        }
    }
    length.ok_or(TransportErrorKind::Other)
}

/// The comma-separated tokens of a list-valued field, trimmed, empty ones skipped.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}
