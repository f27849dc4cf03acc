//! The request path of a replica: health answers, latency, error decisions and the httpbin-like
//! helpers (`/status/<code>`, `/echo`, `/bytes/<n>`, `?delay=`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use rand::Rng;
use tokio::sync::Notify;

use crate::body::ReplyBody;
use crate::duration;
use crate::fault::{ActiveFaults, final_status};
use crate::state::Shared;

/// Names the Service behind the answer: `<namespace>/<backend>`.
pub const BACKEND_HEADER: HeaderName = HeaderName::from_static("x-chaosgate-backend");
/// Names the replica index behind the answer.
pub const REPLICA_HEADER: HeaderName = HeaderName::from_static("x-chaosgate-replica");
/// Echoed from the request when present.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The gRPC health method: answered like the health path, for any service (h2c).
pub const GRPC_HEALTH_PATH: &str = "/grpc.health.v1.Health/Check";

/// `/bytes/<n>` answers at most this much.
const MAX_BYTES: usize = 16 * 1024 * 1024;

const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// What a non-health request asks for, from its path and query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// The replica's normal answer.
    Normal,
    /// `/status/<code>`.
    Status(StatusCode),
    /// `/echo`: the request as JSON.
    Echo,
    /// `/bytes/<n>`: n bytes of filler.
    Bytes(usize),
}

/// Serves one request; never fails (bad helper input is a 400). Under a `reset` fault it asks the
/// connection task, through `reset`, to reset the connection, and waits to be dropped with it.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    reset: Arc<Notify>,
    request: Request<Incoming>,
) -> Result<Response<ReplyBody>, Infallible> {
    let (parts, mut body) = request.into_parts();
    let is_grpc_health = parts.uri.path() == GRPC_HEALTH_PATH;
    let is_health = is_grpc_health || parts.uri.path() == shared.config.health_path;
    let _in_flight = shared.counters.request(is_health);
    if shared.faults.borrow().reset {
        reset.notify_one();
        let never = std::future::pending::<Infallible>().await;
        match never {}
    }
    // Read the whole request body so the connection stays usable; a body error means the client
    // went away and hyper will drop this future anyway.
    while let Some(Ok(_)) = body.frame().await {}
    shared.wait_while_hung().await;
    let faults = shared.faults();
    let mut response = if is_grpc_health {
        grpc_health(&faults)
    } else if is_health {
        health(&faults)
    } else {
        serve(&shared, &faults, &parts).await
    };
    let headers = response.headers_mut();
    headers.insert(BACKEND_HEADER, shared.backend_header.clone());
    headers.insert(REPLICA_HEADER, shared.replica_header.clone());
    if let Some(id) = parts.headers.get(&REQUEST_ID_HEADER) {
        headers.insert(REQUEST_ID_HEADER, id.clone());
    }
    Ok(response)
}

fn health(faults: &ActiveFaults) -> Response<ReplyBody> {
    if faults.unhealthy {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            ReplyBody::full(&b"unhealthy\n"[..]),
        )
    } else {
        text(StatusCode::OK, ReplyBody::full(&b"ok\n"[..]))
    }
}

/// `grpc.health.v1.HealthCheckResponse` SERVING (1), or NOT_SERVING (2) under the `unhealthy`
/// fault, in one uncompressed frame with `grpc-status: 0` trailers.
fn grpc_health(faults: &ActiveFaults) -> Response<ReplyBody> {
    let status = if faults.unhealthy { 2 } else { 1 };
    // Frame: flag 0, length 2; message: field 1 (varint) = status.
    let message = Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut response = Response::new(ReplyBody::grpc(message, trailers));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    response
}

async fn serve(shared: &Shared, faults: &ActiveFaults, parts: &Parts) -> Response<ReplyBody> {
    let (route, extra_delay) = match parse_route(parts) {
        Ok(parsed) => parsed,
        Err(message) => return text(StatusCode::BAD_REQUEST, ReplyBody::full(message)),
    };
    // Draw in a fixed order so a seed replays the same decisions.
    let mut rng = shared.request_rng();
    let mut delay = shared.latency.sample(&mut rng) + extra_delay;
    for latency in &faults.latency {
        delay += latency.sample(&mut rng);
    }
    let injected = faults
        .errors
        .iter()
        .find(|(_, rate)| rng.random::<f64>() < *rate)
        .map(|(status, _)| *status);
    let intrinsic_error = rng.random::<f64>() < shared.error_rate;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let error_status = match (injected, route) {
        (Some(status), _) => Some(status),
        (None, Route::Status(_)) => None,
        (None, _) => intrinsic_error.then_some(shared.error_status),
    };
    if let Some(status) = error_status {
        shared.counters.injected_error();
        return text(
            status,
            body(faults, Bytes::from_static(b"injected error\n")),
        );
    }
    match route {
        Route::Normal => text(StatusCode::OK, body(faults, shared.ok_body.clone())),
        Route::Status(status) => {
            let message = format!("{}\n", status.as_u16());
            text(status, body(faults, message.into()))
        }
        Route::Echo => {
            let mut response = Response::new(body(faults, echo(shared, parts)));
            response.headers_mut().insert(CONTENT_TYPE, JSON);
            response
        }
        Route::Bytes(n) => text(StatusCode::OK, body(faults, Bytes::from(vec![b'x'; n]))),
    }
}

fn body(faults: &ActiveFaults, data: Bytes) -> ReplyBody {
    match faults.slow_body {
        Some(rate) => ReplyBody::slow(data, rate),
        None => ReplyBody::full(data),
    }
}

fn text(status: StatusCode, body: ReplyBody) -> Response<ReplyBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, TEXT);
    response
}

/// The helper a path asks for and the `?delay=` it adds; `Err` is the text of a 400.
fn parse_route(parts: &Parts) -> Result<(Route, Duration), String> {
    let path = parts.uri.path();
    let route = if let Some(code) = path.strip_prefix("/status/") {
        let status = code
            .parse::<u16>()
            .ok()
            .and_then(final_status)
            .ok_or_else(|| format!("/status/<code> needs a status in 200..=599, got {code:?}\n"))?;
        Route::Status(status)
    } else if path == "/echo" {
        Route::Echo
    } else if let Some(n) = path.strip_prefix("/bytes/") {
        let n = n
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= MAX_BYTES)
            .ok_or_else(|| format!("/bytes/<n> needs n in 0..={MAX_BYTES}, got {n:?}\n"))?;
        Route::Bytes(n)
    } else {
        Route::Normal
    };
    let mut delay = Duration::ZERO;
    for pair in parts.uri.query().unwrap_or_default().split('&') {
        if let Some(value) = pair.strip_prefix("delay=") {
            delay = duration::parse(value).map_err(|e| format!("delay: {e}\n"))?;
        }
    }
    Ok((route, delay))
}

/// The request as JSON: method, path, host, protocol, headers (name → values) and who answered.
fn echo(shared: &Shared, parts: &Parts) -> Bytes {
    let mut headers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or_default();
    let document = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        "host": host,
        "protocol": format!("{:?}", parts.version),
        "headers": headers,
        "namespace": shared.config.namespace,
        "backend": shared.config.backend,
        "replica": shared.config.replica,
    });
    // Serializing a `Value` built from strings and numbers cannot fail.
    Bytes::from(serde_json::to_vec(&document).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str) -> Parts {
        Request::get(uri)
            .body(())
            .expect("valid request")
            .into_parts()
            .0
    }

    #[test]
    fn routes_httpbin_helpers() {
        assert_eq!(
            parse_route(&parts("/")),
            Ok((Route::Normal, Duration::ZERO))
        );
        assert_eq!(
            parse_route(&parts("/status/418")),
            Ok((Route::Status(StatusCode::IM_A_TEAPOT), Duration::ZERO))
        );
        assert_eq!(
            parse_route(&parts("/echo")),
            Ok((Route::Echo, Duration::ZERO))
        );
        assert_eq!(
            parse_route(&parts("/bytes/10")),
            Ok((Route::Bytes(10), Duration::ZERO))
        );
        assert_eq!(
            parse_route(&parts("/anything?x=1&delay=250ms")),
            Ok((Route::Normal, Duration::from_millis(250)))
        );
        assert_eq!(
            parse_route(&parts("/status/503?delay=1s")),
            Ok((
                Route::Status(StatusCode::SERVICE_UNAVAILABLE),
                Duration::from_secs(1)
            ))
        );
    }

    #[tokio::test]
    async fn grpc_health_answers_serving_unless_unhealthy() {
        for (unhealthy, status) in [(false, 1), (true, 2)] {
            let faults = ActiveFaults {
                unhealthy,
                ..ActiveFaults::default()
            };
            let response = grpc_health(&faults);
            assert_eq!(response.headers()[CONTENT_TYPE], "application/grpc");
            let collected = response.into_body().collect().await.expect("infallible");
            assert_eq!(collected.trailers().expect("trailers")["grpc-status"], "0");
            assert_eq!(&collected.to_bytes()[..], [0, 0, 0, 0, 2, 0x08, status]);
        }
    }

    #[test]
    fn bad_helper_input_is_rejected() {
        assert!(parse_route(&parts("/status/abc")).is_err());
        assert!(parse_route(&parts("/status/100")).is_err());
        assert!(parse_route(&parts("/status/600")).is_err());
        assert!(parse_route(&parts("/bytes/-1")).is_err());
        assert!(parse_route(&parts("/bytes/999999999")).is_err());
        let err = parse_route(&parts("/?delay=5")).expect_err("no unit");
        assert!(err.contains("unit"), "{err}");
    }
}
