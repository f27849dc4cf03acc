//! gRPC local replies: how Envoy answers a gRPC request with a reply of its own.
//!
//! Envoy's `Http::Utility::sendLocalReply`: when the request is gRPC, the reply becomes a
//! *trailers-only* response — HTTP 200, `content-type: application/grpc`, `grpc-status` (the
//! explicit gRPC status when the sender gave one, such as a fault abort's `grpcStatus`, else
//! `Grpc::Utility::httpToGrpcStatus` of the HTTP status) and `grpc-message` (the reply body,
//! percent-encoded; left out for HEAD requests and empty bodies) — in one header block that ends
//! the stream, without content-length. Headers added before (such as `x-envoy-overloaded`) stay.
//! The router has already charged the HTTP status (503, 504…) to the cluster's stats; the
//! access log's `%RESPONSE_CODE%` and the listener's stats see 200.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::error::LocalReply;
use super::response_headers::ResponseHeaders;

/// `grpc-status`.
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// `grpc-message`.
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// Envoy's `Grpc::Common::hasGrpcContentType`: the content-type is exactly `application/grpc`
/// or starts with `application/grpc+` (so `application/grpc-web` is not gRPC).
pub fn is_grpc_request(headers: &HeaderMap) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    headers
        .get(http::header::CONTENT_TYPE)
        .map(HeaderValue::as_bytes)
        .and_then(|v| v.strip_prefix(GRPC))
        .is_some_and(|rest| rest.is_empty() || rest[0] == b'+')
}

/// Envoy's `Grpc::Utility::httpToGrpcStatus`.
pub fn http_to_grpc_status(status: u16) -> u32 {
    match status {
        400 => 13,                   // INTERNAL
        401 => 16,                   // UNAUTHENTICATED
        403 => 7,                    // PERMISSION_DENIED
        404 => 12,                   // UNIMPLEMENTED
        429 | 502 | 503 | 504 => 14, // UNAVAILABLE
        _ => 2,                      // UNKNOWN
    }
}

/// Envoy's `Grpc::Utility::grpcToHttpStatus`, which the router feeds to outlier detection
/// for a gRPC request whose response headers carry `grpc-status`.
pub fn grpc_to_http_status(code: u64) -> u16 {
    match code {
        0 => 200,
        1 => 499,
        3 | 9 | 11 => 400, // INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE
        4 => 504,
        5 => 404,
        6 | 10 => 409, // ALREADY_EXISTS, ABORTED
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500, // UNKNOWN, INTERNAL, DATA_LOSS, invalid
    }
}

/// The status outlier detection hears of for a response: for a gRPC request with
/// `grpc-status` in the response headers (a trailers-only answer) the mapped gRPC status,
/// else the HTTP status (Envoy's router; trailers are not looked at).
pub fn outlier_status(grpc_request: bool, status: u16, headers: &ResponseHeaders) -> u16 {
    if !grpc_request {
        return status;
    }
    match headers.get(&GRPC_STATUS) {
        None => status,
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(500, grpc_to_http_status),
    }
}

/// gRPC's percent-encoding of `grpc-message` (as Envoy's `PercentEncoding::encode`): bytes
/// outside printable ASCII, and `%` itself, become `%XX`.
pub fn encode_message(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text {
        if (b' '..=b'~').contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Turns a local reply into Envoy's trailers-only gRPC reply (see the module docs).
pub fn into_trailers_only(reply: &mut LocalReply, head_request: bool) {
    let code = reply
        .grpc_status
        .unwrap_or_else(|| http_to_grpc_status(reply.status.as_u16()));
    reply.status = StatusCode::OK;
    let h = &mut reply.headers;
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    if !h.contains_key(GRPC_STATUS) {
        h.insert(GRPC_STATUS, HeaderValue::from(code));
    }
    if !reply.body.is_empty()
        && !head_request
        && let Ok(v) = HeaderValue::from_str(&encode_message(&reply.body))
    {
        h.insert(GRPC_MESSAGE, v);
    }
    h.remove(http::header::CONTENT_LENGTH);
    reply.body = Bytes::new();
    reply.trailers_only = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::error::ProxyError;

    #[test]
    fn grpc_content_types_are_envoys() {
        let is = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_str(ct).unwrap(),
            );
            is_grpc_request(&h)
        };
        assert!(is("application/grpc"));
        assert!(is("application/grpc+proto"));
        assert!(is("application/grpc+"));
        assert!(!is("application/grpc-web"));
        assert!(!is("application/grpc-web+proto"));
        assert!(!is("application/grpc-"));
        assert!(!is("application/json"));
        assert!(!is_grpc_request(&HeaderMap::new()));
    }

    #[test]
    fn http_statuses_map_as_in_envoy() {
        let table = [
            (400, 13),
            (401, 16),
            (403, 7),
            (404, 12),
            (429, 14),
            (502, 14),
            (503, 14),
            (504, 14),
            (500, 2),
            (413, 2),
            (408, 2),
        ];
        for (http, grpc) in table {
            assert_eq!(http_to_grpc_status(http), grpc, "{http}");
        }
    }

    #[test]
    fn grpc_statuses_map_to_http_for_outlier_detection() {
        let table = [
            (0, 200),
            (1, 499),
            (2, 500),
            (3, 400),
            (4, 504),
            (5, 404),
            (6, 409),
            (7, 403),
            (8, 429),
            (9, 400),
            (10, 409),
            (11, 400),
            (12, 501),
            (13, 500),
            (14, 503),
            (15, 500),
            (16, 401),
            (99, 500),
        ];
        for (grpc, http) in table {
            assert_eq!(grpc_to_http_status(grpc), http, "{grpc}");
        }
        let mut h = ResponseHeaders::default();
        assert_eq!(outlier_status(true, 200, &h), 200);
        h.insert(GRPC_STATUS, HeaderValue::from_static("14"));
        assert_eq!(outlier_status(true, 200, &h), 503);
        assert_eq!(outlier_status(false, 200, &h), 200);
        h.insert(GRPC_STATUS, HeaderValue::from_static("x"));
        assert_eq!(outlier_status(true, 200, &h), 500);
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(
            encode_message(b"no healthy upstream"),
            "no healthy upstream"
        );
        assert_eq!(encode_message(b"50% off\n"), "50%25 off%0A");
        assert_eq!(encode_message("é".as_bytes()), "%C3%A9");
    }

    #[test]
    fn overflow_becomes_unavailable_trailers_only() {
        let mut r = ProxyError::Overflow.local_reply();
        into_trailers_only(&mut r, false);
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.is_empty() && r.trailers_only && r.overloaded);
        assert_eq!(r.headers[GRPC_STATUS], "14");
        assert_eq!(
            r.headers[GRPC_MESSAGE],
            "upstream connect error or disconnect/reset before headers. reset reason: overflow"
        );
        assert_eq!(r.headers[http::header::CONTENT_TYPE], "application/grpc");

        let mut head = ProxyError::RouteTimeout.local_reply();
        into_trailers_only(&mut head, true);
        assert_eq!(head.headers[GRPC_STATUS], "14");
        assert!(!head.headers.contains_key(GRPC_MESSAGE));

        let mut explicit = LocalReply::new(StatusCode::OK, Bytes::from_static(b"x"));
        explicit.grpc_status = Some(3);
        into_trailers_only(&mut explicit, false);
        assert_eq!(explicit.headers[GRPC_STATUS], "3");
    }
}
