//! The control endpoint of the `mock-backends` binary: plain HTTP/1.1 on its own port, so faults
//! can be changed while the replica itself is hung or killed.
//!
//! | request | effect | answer |
//! | --- | --- | --- |
//! | `GET /ready` | — | 200 while the replica listens, 503 while killed; body `{"up": bool}` |
//! | `GET /stats` | — | 200, [`ReplicaStats`](crate::ReplicaStats) as JSON |
//! | `GET /faults` | — | 200, the active faults as a JSON list |
//! | `PUT /faults` | replaces the faults with the JSON list in the body | 200, the active faults |
//! | `POST /faults` | adds the one JSON fault in the body | 200, the active faults |
//! | `DELETE /faults` | clears every fault | 200, `[]` |
//!
//! Bad input answers 400 with `{"error": "..."}` and changes nothing.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::fault::Fault;
use crate::replica::{ReplicaController, stopped};

/// Largest request body the control endpoint reads.
const MAX_BODY: usize = 1024 * 1024;

/// Starts control endpoints.
#[derive(Debug)]
pub struct ControlServer;

/// A running control endpoint; dropping it stops it.
#[derive(Debug)]
pub struct ControlHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ControlServer {
    /// Binds `listen` and serves the control API for `replica`.
    pub async fn start(
        listen: SocketAddr,
        replica: ReplicaController,
    ) -> io::Result<ControlHandle> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, replica, stop_rx));
        Ok(ControlHandle { addr, stop, task })
    }
}

impl ControlHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the endpoint and waits until its connections are closed.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "control task ended abnormally");
        }
    }
}

async fn serve(listener: TcpListener, replica: ReplicaController, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => return,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let replica = replica.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request| handle(replica.clone(), request));
                        let io = TokioIo::new(stream);
                        if let Err(error) = http1::Builder::new().serve_connection(io, service).await {
                            tracing::debug!(%error, "control connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "control accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
        }
    }
}

async fn handle(
    replica: ReplicaController,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => return Ok(bad_request(format!("cannot read body: {error}"))),
    };
    let response = match (parts.uri.path(), &parts.method) {
        ("/ready", &Method::GET) => {
            let up = replica.stats().up;
            let status = if up {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json(status, &serde_json::json!({ "up": up }))
        }
        ("/stats", &Method::GET) => json(StatusCode::OK, &replica.stats()),
        ("/faults", &Method::GET) => json(StatusCode::OK, &replica.faults()),
        ("/faults", &Method::PUT) => match serde_json::from_slice::<Vec<Fault>>(&body) {
            Ok(faults) => match replica.set_faults(faults) {
                Ok(()) => json(StatusCode::OK, &replica.faults()),
                Err(error) => bad_request(error.to_string()),
            },
            Err(error) => bad_request(format!("expected a JSON list of faults: {error}")),
        },
        ("/faults", &Method::POST) => match serde_json::from_slice::<Fault>(&body) {
            Ok(fault) => match replica.add_fault(fault) {
                Ok(()) => json(StatusCode::OK, &replica.faults()),
                Err(error) => bad_request(error.to_string()),
            },
            Err(error) => bad_request(format!("expected one JSON fault: {error}")),
        },
        ("/faults", &Method::DELETE) => {
            replica.clear_faults();
            json(StatusCode::OK, &replica.faults())
        }
        ("/ready" | "/stats", _) => not_allowed("GET"),
        ("/faults", _) => not_allowed("GET, PUT, POST, DELETE"),
        _ => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": "unknown path; try /ready, /stats, /faults" }),
        ),
    };
    Ok(response)
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    // Our own types serialize without failing; an empty body would show up in tests.
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn bad_request(message: String) -> Response<Full<Bytes>> {
    json(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({ "error": message }),
    )
}

fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = json(
        StatusCode::METHOD_NOT_ALLOWED,
        &serde_json::json!({ "error": format!("allowed methods: {allow}") }),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}
