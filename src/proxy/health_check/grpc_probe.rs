//! The gRPC health check, as Envoy's `GrpcHealthCheckerImpl` runs it: one
//! `grpc.health.v1.Health/Check` call over h2c (POST, `content-type: application/grpc`,
//! `te: trailers`, user agent `Envoy/HC`, `grpc-timeout` from the probe timeout) asking about
//! the configured service (unset = the whole server).
//!
//! Only `grpc-status: 0` with a `HealthCheckResponse` whose status is SERVING passes. Any other
//! answer — a non-200 HTTP status, a content-type that is not gRPC, another gRPC status, a
//! missing or undecodable message, NOT_SERVING / UNKNOWN / SERVICE_UNKNOWN — is an *active*
//! failure (the host is unhealthy at once); a connect failure or reset is a network failure.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_TYPE, TE, USER_AGENT};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::config::{GrpcCheckConfig, USER_AGENT as HC_AGENT};
use super::probe::{Connection, ProbeResult};
use crate::proxy::grpc::{GRPC_STATUS, is_grpc_request};

/// The method Envoy calls.
pub const HEALTH_CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// `grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: u64 = 1;

pub(super) async fn grpc_probe(
    g: &GrpcCheckConfig,
    timeout: Duration,
    addr: SocketAddr,
    slot: &mut Option<Connection<SendRequest<Full<Bytes>>>>,
) -> ProbeResult {
    if slot.as_ref().is_some_and(|c| c.sender.is_closed()) {
        *slot = None;
    }
    if slot.is_none() {
        let Ok(stream) = TcpStream::connect(addr).await else {
            return ProbeResult::NetworkFailure;
        };
        let _ = stream.set_nodelay(true);
        let Ok((sender, conn)) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await
        else {
            return ProbeResult::NetworkFailure;
        };
        *slot = Some(Connection::new(sender, conn));
    }
    // The connection stays in the session: a timeout resets only this stream, as in Envoy.
    let Some(mut sender) = slot.as_ref().map(|c| c.sender.clone()) else {
        return ProbeResult::NetworkFailure;
    };
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("http://{}{HEALTH_CHECK_PATH}", g.authority))
        .header(CONTENT_TYPE, "application/grpc")
        .header(TE, "trailers")
        .header(USER_AGENT, HC_AGENT)
        .header("grpc-timeout", format!("{}m", timeout.as_millis()))
        .body(Full::new(frame(&request_message(g.service.as_deref()))));
    let result = match request {
        Err(_) => ProbeResult::Failed,
        Ok(request) => match sender.send_request(request).await {
            Err(_) => ProbeResult::NetworkFailure,
            Ok(response) => judge(response).await,
        },
    };
    if result.is_network() {
        *slot = None;
    }
    result
}

async fn judge(response: http::Response<hyper::body::Incoming>) -> ProbeResult {
    let (parts, body) = response.into_parts();
    if parts.status != http::StatusCode::OK || !is_grpc_request(&parts.headers) {
        return ProbeResult::Failed;
    }
    let Ok(collected) = body.collect().await else {
        return ProbeResult::NetworkFailure;
    };
    // Trailers, or the headers of a trailers-only response.
    let status = collected
        .trailers()
        .and_then(|t| t.get(GRPC_STATUS))
        .or_else(|| parts.headers.get(GRPC_STATUS))
        .cloned();
    let message = collected.to_bytes();
    match status {
        Some(s) if s == "0" && serving_status(&message) == Some(SERVING) => ProbeResult::Success,
        _ => ProbeResult::Failed,
    }
}

/// `HealthCheckRequest { string service = 1; }`; an empty service is the empty message.
pub fn request_message(service: Option<&str>) -> Bytes {
    let mut out = BytesMut::new();
    if let Some(s) = service.filter(|s| !s.is_empty()) {
        out.put_u8(0x0a); // field 1, length-delimited
        put_varint(&mut out, s.len() as u64);
        out.put_slice(s.as_bytes());
    }
    out.freeze()
}

/// One uncompressed gRPC message frame: flag, big-endian length, message.
pub fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.put_slice(message);
    out.freeze()
}

/// The `status` of the first `HealthCheckResponse` frame in `body` (0 = UNKNOWN when the field
/// is absent); `None` when there is no complete, uncompressed, decodable message.
pub fn serving_status(body: &[u8]) -> Option<u64> {
    let (&flag, rest) = body.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let mut msg = rest.get(4..4 + len)?;
    if flag != 0 {
        return None;
    }
    let mut status = 0;
    while !msg.is_empty() {
        let key = take_varint(&mut msg)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = take_varint(&mut msg)?,
            (_, 0) => {
                take_varint(&mut msg)?;
            }
            (_, 1) => msg = msg.get(8..)?,
            (_, 2) => {
                let n = usize::try_from(take_varint(&mut msg)?).ok()?;
                msg = msg.get(n..)?;
            }
            (_, 5) => msg = msg.get(4..)?,
            _ => return None,
        }
    }
    Some(status)
}

fn put_varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn take_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_encoding() {
        assert!(request_message(None).is_empty());
        assert!(request_message(Some("")).is_empty());
        assert_eq!(&request_message(Some("pkg.Svc"))[..], b"\x0a\x07pkg.Svc");
        assert_eq!(&frame(b"ab")[..], b"\x00\x00\x00\x00\x02ab");
        assert_eq!(serving_status(&frame(b"\x08\x01")), Some(SERVING));
        assert_eq!(serving_status(&frame(b"\x08\x02")), Some(2));
        // An empty message is status UNKNOWN; unknown fields are skipped.
        assert_eq!(serving_status(&frame(b"")), Some(0));
        assert_eq!(serving_status(&frame(b"\x12\x01x\x08\x01")), Some(SERVING));
        assert_eq!(serving_status(b""), None);
        assert_eq!(serving_status(b"\x00\x00\x00\x00\x05\x08"), None);
        assert_eq!(serving_status(b"\x01\x00\x00\x00\x02\x08\x01"), None);
    }
}
