//! Header handling on the way up and down: request ids, hop-by-hop headers, forwarding headers.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Uri, Version};
use http_body_util::Full;

use crate::proxy::rng::SharedRng;

/// `x-request-id`.
pub const REQUEST_ID: &str = "x-request-id";

// Names inserted on every request, built once: inserting by `&str` would allocate a fresh
// custom header name each time.
const REQUEST_ID_NAME: HeaderName = HeaderName::from_static(REQUEST_ID);
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

const HOP_BY_HOP_COUNT: usize = 7;

/// Hop-by-hop headers never forwarded (RFC 9110 §7.6.1 plus the usual legacy ones).
const HOP_BY_HOP: [HeaderName; HOP_BY_HOP_COUNT] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

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
pub fn ensure_request_id(headers: &mut HeaderMap, rng: &SharedRng) -> String {
    if let Some(id) = headers
        .get(&REQUEST_ID_NAME)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
    {
        return id.to_string();
    }
    let (a, b) = (rng.next_u64(), rng.next_u64());
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
    let id = String::from_utf8(id.to_vec()).unwrap_or_default();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID_NAME, v);
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

/// The request sent upstream for one attempt: HTTP/1.1 in origin form with a Host header, or
/// HTTP/2 (`h2`) with the authority in `:authority` and `te: trailers` kept (gRPC needs it).
pub fn upstream_request(
    parts: &Parts,
    body: Bytes,
    peer: SocketAddr,
    h2: bool,
) -> Request<Full<Bytes>> {
    let mut headers = parts.headers.clone();
    // Envoy keeps `te: trailers` and drops every other TE value.
    let te_trailers = headers
        .get(header::TE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        });
    strip_hop_by_hop(&mut headers);
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    // HTTP/2 clients send the authority instead of a Host header.
    if !headers.contains_key(header::HOST)
        && let Some(a) = parts.uri.authority()
        && let Ok(v) = HeaderValue::from_str(a.as_str())
    {
        headers.insert(header::HOST, v);
    }
    // Envoy Gateway runs with use_remote_address: append the peer to x-forwarded-for.
    if let Some(v) = forwarded_for(headers.get(&X_FORWARDED_FOR), peer) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = parts.method.clone();
    if h2 {
        // The Host header becomes `:authority` (hyper's HTTP/2 client takes it from the URI).
        let authority = headers
            .remove(header::HOST)
            .and_then(|h| http::uri::Authority::try_from(h.as_bytes()).ok())
            .unwrap_or_else(|| http::uri::Authority::from_static("localhost"));
        let uri = Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(path)
            .build();
        *req.uri_mut() = uri.unwrap_or_else(|_| Uri::from_static("/"));
        *req.version_mut() = Version::HTTP_2;
    } else {
        *req.uri_mut() = Uri::from(path);
        *req.version_mut() = Version::HTTP_11;
    }
    *req.headers_mut() = headers;
    req
}

/// `x-forwarded-for` with `peer` appended to the client's value (if any), written into one
/// buffer (the header value is the only allocation).
fn forwarded_for(previous: Option<&HeaderValue>, peer: SocketAddr) -> Option<HeaderValue> {
    let previous = previous
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty());
    let mut out = Vec::with_capacity(previous.map_or(0, |p| p.len() + 2) + 40);
    if let Some(prev) = previous {
        out.extend_from_slice(prev.as_bytes());
        out.extend_from_slice(b", ");
    }
    let _ = std::io::Write::write_fmt(&mut out, format_args!("{}", peer.ip()));
    HeaderValue::from_maybe_shared(Bytes::from(out)).ok()
}

/// Removes hop-by-hop headers from a response and sets Envoy's `server` header.
pub fn clean_response(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    headers.insert(header::SERVER, HeaderValue::from_static("envoy"));
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the message's few names finds which hop-by-hop headers are there, so
    // absent ones cost no lookup.
    let mut present = [false; HOP_BY_HOP_COUNT];
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present[i] = true;
        }
    }
    // Headers named in `Connection` are hop-by-hop too. The usual token, `keep-alive`, is
    // removed below anyway, so the common case collects (and allocates) nothing.
    if present[0] {
        // (`Connection` is HOP_BY_HOP[0].)
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|n| !n.eq_ignore_ascii_case("keep-alive"))
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect();
        for n in &named {
            headers.remove(n);
        }
    }
    for (name, _) in HOP_BY_HOP.iter().zip(present).filter(|(_, p)| *p) {
        headers.remove(name);
    }
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
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(h.get(REQUEST_ID).unwrap(), id.as_str());
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
            assert_eq!(id, expected);
        }
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
        let req = upstream_request(&parts, Bytes::new(), ([127, 0, 0, 9], 5).into(), false);
        assert!(req.headers().get("x-envoy-retry-on").is_none());
        assert_eq!(req.uri(), "/a?b=1");
        let h = req.headers();
        assert!(h.get("connection").is_none() && h.get("x-drop").is_none());
        assert_eq!(h.get("x-keep").unwrap(), "1");
        assert_eq!(h.get("host").unwrap(), "example.com");
        assert_eq!(h.get("x-forwarded-for").unwrap(), "10.0.0.1, 127.0.0.9");
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
        let req = upstream_request(&parts, Bytes::new(), ([127, 0, 0, 9], 5).into(), true);
        assert_eq!(req.version(), Version::HTTP_2);
        assert_eq!(req.uri(), "http://grpc.example.com/pkg.Svc/Call");
        assert!(req.headers().get("host").is_none());
        assert_eq!(req.headers().get("te").unwrap(), "trailers");
        let h1 = upstream_request(&parts, Bytes::new(), ([127, 0, 0, 9], 5).into(), false);
        assert_eq!(h1.headers().get("te").unwrap(), "trailers");
        let (gzip, ()) = Request::builder()
            .uri("/")
            .header("te", "gzip")
            .body(())
            .unwrap()
            .into_parts();
        let req = upstream_request(&gzip, Bytes::new(), ([127, 0, 0, 9], 5).into(), false);
        assert!(req.headers().get("te").is_none());
    }
}
