//! Why a request did not get an upstream response, and the local reply Envoy sends instead.
//!
//! Every variant knows its response flag, its local reply and how retries and outlier detection
//! classify it, so those decisions live next to the failure rather than in the pipeline.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::flags::ResponseFlag;

/// A request-level failure of the proxy or of the upstream connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// No route matched.
    #[error("no route")]
    NoRoute,
    /// The load balancer had no usable host.
    #[error("no healthy upstream")]
    NoHealthyUpstream,
    /// A circuit breaker rejected the request.
    #[error("upstream overflow")]
    Overflow,
    /// The TCP connect did not complete within the connect timeout.
    #[error("upstream connect timeout")]
    ConnectTimeout,
    /// The TCP connect failed (refused, unreachable).
    #[error("upstream connect failure")]
    ConnectFailure,
    /// The upstream connection closed or reset before response headers.
    #[error("upstream connection termination")]
    Reset {
        /// Whether the request headers had not been sent yet.
        before_request: bool,
    },
    /// One attempt exceeded the per-try timeout.
    #[error("upstream per-try timeout")]
    PerTryTimeout,
    /// The route timeout (covering all attempts) expired.
    #[error("upstream request timeout")]
    RouteTimeout,
    /// The route's max_stream_duration expired before the response started.
    #[error("max stream duration reached")]
    MaxStreamDuration,
    /// The stream was idle for the route idle timeout before the response started.
    #[error("stream idle timeout")]
    StreamIdleTimeout,
}

/// The response the proxy generates itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: StatusCode,
    /// Body (text/plain).
    pub body: Bytes,
    /// The response flag to log.
    pub flag: Option<ResponseFlag>,
    /// Whether to add `x-envoy-overloaded: true`.
    pub overloaded: bool,
    /// Extra response headers (e.g. rate-limit headers).
    pub headers: HeaderMap,
    /// The gRPC status to answer a gRPC request with, instead of the one mapped from `status`
    /// (a fault abort's `grpcStatus`).
    pub grpc_status: Option<u32>,
    /// Already a gRPC trailers-only reply (no body, no content-length).
    pub trailers_only: bool,
}

impl ProxyError {
    /// The response flag logged for this failure.
    pub fn flag(self) -> ResponseFlag {
        match self {
            ProxyError::NoRoute => ResponseFlag::NoRouteFound,
            ProxyError::NoHealthyUpstream => ResponseFlag::NoHealthyUpstream,
            ProxyError::Overflow => ResponseFlag::UpstreamOverflow,
            ProxyError::ConnectTimeout | ProxyError::ConnectFailure => {
                ResponseFlag::UpstreamConnectionFailure
            }
            ProxyError::Reset { .. } => ResponseFlag::UpstreamConnectionTermination,
            ProxyError::PerTryTimeout | ProxyError::RouteTimeout => {
                ResponseFlag::UpstreamRequestTimeout
            }
            ProxyError::MaxStreamDuration => ResponseFlag::DurationTimeout,
            ProxyError::StreamIdleTimeout => ResponseFlag::StreamIdleTimeout,
        }
    }

    /// Envoy's local reply for this failure.
    pub fn local_reply(self) -> LocalReply {
        let (status, body): (StatusCode, &'static str) = match self {
            ProxyError::NoRoute => (StatusCode::NOT_FOUND, ""),
            ProxyError::NoHealthyUpstream => {
                (StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream")
            }
            ProxyError::Overflow => (
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream connect error or disconnect/reset before headers. reset reason: overflow",
            ),
            ProxyError::ConnectTimeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream connect error or disconnect/reset before headers. reset reason: connection timeout",
            ),
            ProxyError::ConnectFailure => (
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            ),
            ProxyError::Reset { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
            ),
            ProxyError::PerTryTimeout | ProxyError::RouteTimeout => {
                (StatusCode::GATEWAY_TIMEOUT, "upstream request timeout")
            }
            ProxyError::MaxStreamDuration => {
                (StatusCode::REQUEST_TIMEOUT, "downstream duration timeout")
            }
            ProxyError::StreamIdleTimeout => (StatusCode::REQUEST_TIMEOUT, "stream timeout"),
        };
        LocalReply {
            status,
            body: Bytes::from_static(body.as_bytes()),
            flag: Some(self.flag()),
            overloaded: self == ProxyError::Overflow,
            headers: HeaderMap::new(),
            grpc_status: None,
            trailers_only: false,
        }
    }

    /// Whether the failure happened at the host (so outlier detection hears of it) and, if so,
    /// the HTTP status Envoy maps it to when external and local-origin errors are not split.
    pub fn local_origin_status(self) -> Option<u16> {
        match self {
            ProxyError::ConnectTimeout | ProxyError::ConnectFailure | ProxyError::Reset { .. } => {
                Some(503)
            }
            ProxyError::PerTryTimeout | ProxyError::RouteTimeout => Some(504),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_reply_is_envoys() {
        let r = ProxyError::Overflow.local_reply();
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.overloaded);
        assert_eq!(
            r.body,
            "upstream connect error or disconnect/reset before headers. reset reason: overflow"
        );
        assert_eq!(r.flag.map(ResponseFlag::code), Some("UO"));
    }

    #[test]
    fn timeouts_and_connect_failures() {
        assert_eq!(ProxyError::RouteTimeout.local_reply().status, 504);
        assert_eq!(ProxyError::RouteTimeout.flag().code(), "UT");
        assert_eq!(ProxyError::ConnectTimeout.flag().code(), "UF");
        assert!(
            ProxyError::ConnectTimeout
                .local_reply()
                .body
                .ends_with(b"connection timeout")
        );
        assert_eq!(
            ProxyError::NoHealthyUpstream.local_reply().body,
            "no healthy upstream"
        );
        assert_eq!(ProxyError::NoRoute.local_reply().status, 404);
        assert!(!ProxyError::ConnectFailure.local_reply().overloaded);
    }
}
