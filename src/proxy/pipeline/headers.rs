//! Header handling on the way up and down: request ids, hop-by-hop headers, forwarding headers.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::header::{self, Entry, HeaderName};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Uri, Version};
use http_body_util::Full;

use crate::proxy::access_log::RequestId;
use crate::proxy::http1::Known;
use crate::proxy::response_headers::ResponseHeaders;
use crate::proxy::rng::SharedRng;

/// `x-request-id`.
pub const REQUEST_ID: &str = "x-request-id";

// Names inserted on every request, built once: inserting by `&str` would allocate a fresh
// custom header name each time.
const REQUEST_ID_NAME: HeaderName = HeaderName::from_static(REQUEST_ID);
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The prefix every name in [`ENVOY_INTERNAL`] shares.
const ENVOY_PREFIX: &str = "x-envoy-";

/// Envoy-internal request headers that an edge Envoy (use_remote_address, as Envoy Gateway
/// configures it) removes from external requests, so clients cannot steer retries or timeouts.
const ENVOY_INTERNAL: [&str; 13] = [
    "x-envoy-decorator-operation",
    "x-envoy-downstream-service-cluster",
    "x-envoy-downstream-service-node",
    "x-envoy-expected-rq-timeout-ms",
    "x-envoy-force-trace",
    "x-envoy-internal",
    "x-envoy-ip-tags",
    "x-envoy-max-retries",
    "x-envoy-retry-grpc-on",
    "x-envoy-retry-on",
    "x-envoy-upstream-alt-stat-name",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-upstream-rq-timeout-ms",
];

/// Removes Envoy-internal headers sent by an external client.
pub fn clean_external_request(headers: &mut HeaderMap) {
    // One pass over the request's few names spares thirteen lookups when (as nearly always)
    // the client sent no `x-envoy-` header.
    if !headers
        .keys()
        .any(|name| name.as_str().starts_with(ENVOY_PREFIX))
    {
        return;
    }
    for name in ENVOY_INTERNAL {
        headers.remove(name);
    }
}

/// Keeps the client's `x-request-id`, or sets a new UUIDv4-shaped one; returns it.
pub fn ensure_request_id(headers: &mut HeaderMap, rng: &SharedRng) -> RequestId {
    // One hash of the name for both the lookup and the insert.
    let entry = headers.entry(REQUEST_ID_NAME);
    if let Entry::Occupied(client) = &entry
        && let Some(id) = RequestId::of(client.get())
    {
        return id;
    }
    let (a, b) = rng.next_u64_pair();
    // `{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}` of the fields below, written without the
    // formatting machinery (each field fits its width exactly).
    let mut id = [0u8; 36];
    hex(&mut id[0..8], a >> 32);
    id[8] = b'-';
    hex(&mut id[9..13], (a >> 16) & 0xffff);
    id[13] = b'-';
    id[14] = b'4';
    hex(&mut id[15..18], a & 0x0fff);
    id[18] = b'-';
    hex(&mut id[19..23], ((b >> 48) & 0x3fff) | 0x8000);
    id[23] = b'-';
    hex(&mut id[24..36], b & 0xffff_ffff_ffff);
    let id = RequestId::generated(id);
    let value = id.header_value().clone();
    match entry {
        Entry::Occupied(mut client) => {
            client.insert(value);
        }
        Entry::Vacant(none) => {
            none.insert(value);
        }
    }
    id
}

/// Writes `value` as lower-case hex, zero-padded to fill `out`.
fn hex(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b"0123456789abcdef"[(value & 0xf) as usize];
        value >>= 4;
    }
}

/// The header fields of a request on its way upstream, worked out once per request without
/// copying the downstream map: which downstream fields pass (not hop-by-hop, not named in
/// `Connection`), and the ones the proxy sets (`te: trailers` kept when asked for, the Host
/// from an HTTP/2 client's authority, `x-forwarded-for` with the peer appended — Envoy
/// Gateway runs with use_remote_address — and `x-forwarded-proto`).
pub struct UpstreamHeaders<'a> {
    parts: &'a Parts,
    /// Names the client listed in `Connection` (rarely any besides `keep-alive`).
    connection_named: Vec<HeaderName>,
    te_trailers: bool,
    host: Option<HeaderValue>,
    /// The client's `x-forwarded-for`, which the peer's address is appended to.
    previous_forwarded_for: Option<&'a [u8]>,
    peer: IpAddr,
}

impl<'a> UpstreamHeaders<'a> {
    /// The upstream fields of `parts`, a request from `peer`: one pass over the request's few
    /// fields rather than a hashed lookup for each name of interest.
    pub fn new(parts: &'a Parts, peer: SocketAddr) -> Self {
        let mut connection_named = Vec::new();
        let mut te_trailers = false;
        let mut has_host = false;
        let mut previous_forwarded_for = None;
        for (name, value) in &parts.headers {
            if name == header::HOST {
                has_host = true;
            } else if name == header::TE {
                // Envoy keeps `te: trailers` and drops every other TE value.
                te_trailers |= value
                    .as_bytes()
                    .split(|b| *b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"trailers"));
            } else if name == header::CONNECTION {
                connection_tokens(value.as_bytes(), &mut connection_named);
            } else if name == X_FORWARDED_FOR && previous_forwarded_for.is_none() {
                previous_forwarded_for = Some(value.as_bytes()).filter(|v| !v.is_empty());
            }
        }
        // HTTP/2 clients send the authority instead of a Host header.
        let host = if has_host {
            None
        } else {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        };
        UpstreamHeaders {
            parts,
            connection_named,
            te_trailers,
            host,
            previous_forwarded_for,
            peer: peer.ip(),
        }
    }

    /// Calls `f` with every field passed on from the client (not hop-by-hop, not named in
    /// `Connection`), then the Host and TE the proxy sets.
    fn for_each_passed(&self, f: &mut impl FnMut(&HeaderName, &HeaderValue)) {
        for (name, value) in &self.parts.headers {
            let replaced = name == X_FORWARDED_FOR || name == X_FORWARDED_PROTO;
            let hop_by_hop = Known::of(name.as_str().as_bytes()).is_hop_by_hop();
            if !replaced && !hop_by_hop && !self.connection_named.contains(name) {
                f(name, value);
            }
        }
        if let Some(host) = &self.host {
            f(&header::HOST, host);
        }
        if self.te_trailers {
            f(&header::TE, &HeaderValue::from_static("trailers"));
        }
    }

    /// Calls `f` with every field the upstream request carries.
    pub fn for_each(&self, mut f: impl FnMut(&HeaderName, &HeaderValue)) {
        self.for_each_passed(&mut f);
        let mut xff = Vec::with_capacity(64);
        write_forwarded_for(&mut xff, self.previous_forwarded_for, self.peer);
        if let Ok(xff) = HeaderValue::from_maybe_shared(Bytes::from(xff)) {
            f(&X_FORWARDED_FOR, &xff);
        }
        f(&X_FORWARDED_PROTO, &HeaderValue::from_static("http"));
    }

    /// Writes the HTTP/1.1 request head (origin form) for a body of `body_len` bytes:
    /// `Content-Length` is added when the body is not empty and the client sent none (a
    /// chunked request arrives buffered whole).
    pub fn encode_h1(&self, body_len: usize, out: &mut Vec<u8>) {
        let parts = self.parts;
        out.extend_from_slice(parts.method.as_str().as_bytes());
        out.push(b' ');
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        self.for_each_passed(&mut |name, value| {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        });
        // Written in place: no header value is built for them.
        out.extend_from_slice(b"x-forwarded-for: ");
        write_forwarded_for(out, self.previous_forwarded_for, self.peer);
        out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\n");
        if body_len > 0 && !parts.headers.contains_key(header::CONTENT_LENGTH) {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
    /// The HTTP/2 request: the Host header becomes `:authority` (hyper's HTTP/2 client takes
    /// it from the URI) and `te: trailers` is kept (gRPC needs it).
    pub fn h2_request(&self, body: Bytes) -> Request<Full<Bytes>> {
        let mut headers = HeaderMap::with_capacity(self.parts.headers.len() + 3);
        let mut authority = None;
        self.for_each(|name, value| {
            if name == header::HOST {
                authority = http::uri::Authority::try_from(value.as_bytes()).ok();
            } else {
                headers.append(name.clone(), value.clone());
            }
        });
        let authority = authority.unwrap_or_else(|| http::uri::Authority::from_static("localhost"));
        let path = self
            .parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        let uri = Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(path)
            .build();
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = self.parts.method.clone();
        *req.uri_mut() = uri.unwrap_or_else(|_| Uri::from_static("/"));
        *req.version_mut() = Version::HTTP_2;
        *req.headers_mut() = headers;
        req
    }
}

/// Adds the header names one `Connection` value lists (besides `keep-alive`) to `named`.
fn connection_tokens(value: &[u8], named: &mut Vec<HeaderName>) {
    let names = value
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(b"keep-alive"))
        .filter_map(|n| HeaderName::from_bytes(n).ok());
    named.extend(names);
}

/// Writes `x-forwarded-for`'s value: `peer` appended to the client's value (if any).
fn write_forwarded_for(out: &mut Vec<u8>, previous: Option<&[u8]>, peer: IpAddr) {
    if let Some(prev) = previous {
        out.extend_from_slice(prev);
        out.extend_from_slice(b", ");
    }
    match peer {
        // The common case without the formatting machinery.
        IpAddr::V4(ip) => {
            let mut digits = itoa::Buffer::new();
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(digits.format(octet).as_bytes());
            }
        }
        ip @ IpAddr::V6(_) => {
            let _ = std::io::Write::write_fmt(out, format_args!("{ip}"));
        }
    }
}

/// Removes hop-by-hop headers (and those `Connection` names) from a response and sets
/// Envoy's `server` header. One pass over the response's few fields; the common case
/// allocates nothing.
pub fn clean_response(headers: &mut ResponseHeaders) {
    let mut named = Vec::new();
    headers.for_each(|_, value, known| {
        if known == Known::Connection {
            connection_tokens(value, &mut named);
        }
    });
    headers.remove_where(|name, known| {
        known == Known::Server
            || known.is_hop_by_hop()
            || named
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h.as_str().as_bytes()))
    });
    headers.append(header::SERVER, HeaderValue::from_static("envoy"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::rng::RngSource;

    #[test]
    fn request_id_is_kept_or_generated() {
        let rng = RngSource::new(1).stream("ids");
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("mine"));
        assert_eq!(ensure_request_id(&mut h, &rng), "mine");
        let mut h = HeaderMap::new();
        let id = ensure_request_id(&mut h, &rng);
        let id = id.as_str();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(h.get(REQUEST_ID).unwrap(), id);
        // An empty id, or one that is not visible ASCII, is replaced.
        for unusable in [&b""[..], b"caf\xe9"] {
            let mut h = HeaderMap::new();
            h.insert(REQUEST_ID, HeaderValue::from_bytes(unusable).unwrap());
            let id = ensure_request_id(&mut h, &rng);
            assert_eq!(id.as_str().len(), 36);
            assert_eq!(h.get(REQUEST_ID).unwrap(), id.header_value());
        }
    }

    #[test]
    fn generated_request_ids_are_uuid_v4_shaped_hex() {
        let (rng, twin) = (
            RngSource::new(9).stream("ids"),
            RngSource::new(9).stream("ids"),
        );
        for _ in 0..64 {
            let id = ensure_request_id(&mut HeaderMap::new(), &rng);
            let (a, b) = (twin.next_u64(), twin.next_u64());
            let expected = format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0x0fff,
                ((b >> 48) & 0x3fff) | 0x8000,
                b & 0xffff_ffff_ffff
            );
            assert_eq!(id, expected.as_str());
        }
    }

    const PEER: ([u8; 4], u16) = ([127, 0, 0, 9], 5);

    /// The fields `UpstreamHeaders` passes upstream, as a map.
    fn upstream_fields(parts: &Parts) -> HeaderMap {
        let mut map = HeaderMap::new();
        UpstreamHeaders::new(parts, PEER.into()).for_each(|n, v| {
            map.append(n.clone(), v.clone());
        });
        map
    }

    fn encode_h1(parts: &Parts, body_len: usize) -> String {
        let mut out = Vec::new();
        UpstreamHeaders::new(parts, PEER.into()).encode_h1(body_len, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn upstream_request_is_origin_form_without_hop_by_hop() {
        let (parts, ()) = Request::builder()
            .uri("http://example.com/a?b=1")
            .header("connection", "keep-alive, x-drop")
            .header("x-drop", "1")
            .header("x-keep", "1")
            .header("x-forwarded-for", "10.0.0.1")
            .header("x-envoy-retry-on", "5xx")
            .body(())
            .unwrap()
            .into_parts();
        let mut parts = parts;
        clean_external_request(&mut parts.headers);
        let h = upstream_fields(&parts);
        assert!(h.get("x-envoy-retry-on").is_none());
        assert!(h.get("connection").is_none() && h.get("x-drop").is_none());
        assert_eq!(h.get("x-keep").unwrap(), "1");
        assert_eq!(h.get("host").unwrap(), "example.com");
        assert_eq!(h.get("x-forwarded-for").unwrap(), "10.0.0.1, 127.0.0.9");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "http");
        assert_eq!(
            encode_h1(&parts, 0),
            "GET /a?b=1 HTTP/1.1\r\nx-keep: 1\r\nhost: example.com\r\n\
             x-forwarded-for: 10.0.0.1, 127.0.0.9\r\nx-forwarded-proto: http\r\n\r\n"
        );
    }

    #[test]
    fn forwarded_for_appends_v4_and_v6_peers() {
        let written = |previous: Option<&[u8]>, peer: &str| {
            let mut out = Vec::new();
            write_forwarded_for(&mut out, previous, peer.parse().unwrap());
            String::from_utf8(out).unwrap()
        };
        assert_eq!(written(None, "10.200.0.7"), "10.200.0.7");
        assert_eq!(
            written(Some(b"1.2.3.4"), "2001:db8::1"),
            "1.2.3.4, 2001:db8::1"
        );
    }

    #[test]
    fn h1_head_states_the_body_length_unless_the_client_did() {
        let (parts, ()) = Request::builder()
            .method("POST")
            .uri("/p")
            .header("host", "h")
            .header("transfer-encoding", "chunked")
            .body(())
            .unwrap()
            .into_parts();
        let head = encode_h1(&parts, 12);
        assert!(
            head.starts_with("POST /p HTTP/1.1\r\nhost: h\r\n"),
            "{head}"
        );
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert!(head.ends_with("content-length: 12\r\n\r\n"), "{head}");
        // An empty body gets no length (as hyper's client did), a stated one is kept as is.
        assert!(!encode_h1(&parts, 0).contains("content-length"));
        let (stated, ()) = Request::builder()
            .method("PUT")
            .uri("/p")
            .header("content-length", "3")
            .body(())
            .unwrap()
            .into_parts();
        let head = encode_h1(&stated, 3);
        assert_eq!(head.matches("content-length").count(), 1, "{head}");
    }

    #[test]
    fn h2_upstream_request_carries_the_authority_and_keeps_te_trailers() {
        let (parts, ()) = Request::builder()
            .uri("/pkg.Svc/Call")
            .header("host", "grpc.example.com")
            .header("te", "trailers")
            .header("content-type", "application/grpc")
            .body(())
            .unwrap()
            .into_parts();
        let req = UpstreamHeaders::new(&parts, PEER.into()).h2_request(Bytes::new());
        assert_eq!(req.version(), Version::HTTP_2);
        assert_eq!(req.uri(), "http://grpc.example.com/pkg.Svc/Call");
        assert!(req.headers().get("host").is_none());
        assert_eq!(req.headers().get("te").unwrap(), "trailers");
        assert_eq!(upstream_fields(&parts).get("te").unwrap(), "trailers");
        let (gzip, ()) = Request::builder()
            .uri("/")
            .header("te", "gzip")
            .body(())
            .unwrap()
            .into_parts();
        assert!(upstream_fields(&gzip).get("te").is_none());
    }
}
