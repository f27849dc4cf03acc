//! Serving one downstream connection. HTTP/1.1 goes to the proxy's own server ([`h1`]); a
//! client that opens with the HTTP/2 connection preface (h2c with prior knowledge, as gRPC
//! clients do) is served by hyper's HTTP/2 server.

mod h1;
mod prefixed;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use self::prefixed::Prefixed;
use super::http1::READ_BUFFER;
use super::pipeline::Pipeline;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves one accepted connection until the client closes it or the proxy shuts down (an
/// open HTTP/2 connection then gets `drain` to finish its streams).
pub async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    pipeline: Arc<Pipeline>,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) {
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    // Read until the first bytes tell the preface from an HTTP/1 request line.
    loop {
        let n = buf.len().min(H2_PREFACE.len());
        if buf[..n] != H2_PREFACE[..n] {
            break;
        }
        if n == H2_PREFACE.len() {
            return serve_h2(
                Prefixed::new(buf.freeze(), stream),
                peer,
                pipeline,
                shutdown,
                drain,
            )
            .await;
        }
        tokio::select! {
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            _ = shutdown.changed() => return,
        }
    }
    h1::serve(stream, buf, peer, &pipeline, &mut shutdown).await;
}

async fn serve_h2(
    io: Prefixed<TcpStream>,
    peer: SocketAddr,
    pipeline: Arc<Pipeline>,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) {
    let service = service_fn(move |req| {
        let pipeline = Arc::clone(&pipeline);
        async move { Ok::<_, Infallible>(pipeline.handle(req, peer).await) }
    });
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(%peer, error = %e, "downstream connection ended with error");
            }
        }
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(drain, conn).await;
        }
    }
}
