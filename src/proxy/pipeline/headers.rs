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

/// Hop-by-hop headers never forwarded (RFC 9110 §7.6.1 plus the usual legacy ones).
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

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
    for name in ENVOY_INTERNAL {
        headers.remove(name);
    }
}

/// Keeps the client's `x-request-id`, or sets a new UUIDv4-shaped one; returns it.
pub fn ensure_request_id(headers: &mut HeaderMap, rng: &SharedRng) -> String {
    if let Some(id) = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
    {
        return id.to_string();
    }
    let (a, b) = (rng.next_u64(), rng.next_u64());
    let id = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID, v);
    }
    id
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
    let peer_ip = peer.ip().to_string();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.is_empty() => format!("{prev}, {peer_ip}"),
        _ => peer_ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
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

/// Removes hop-by-hop headers from a response and sets Envoy's `server` header.
pub fn clean_response(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    headers.insert(header::SERVER, HeaderValue::from_static("envoy"));
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(n);
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
