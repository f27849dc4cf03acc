//! `chaosgate proxy`: flags to listener binds; the serving itself is the proxy's.
//!
//! Two environment variables serve the docker runtime, which runs this command in a container
//! (their flags would be noise for people): `CHAOSGATE_PROXY_SEED` seeds the proxy like the
//! run's seed seeds the embedded one, and `CHAOSGATE_PROXY_STATS_ADDR` serves a read-only
//! `/stats` (Envoy text format) on a non-loopback address — the admin listener must stay on
//! loopback, which a container's published port cannot reach. `--access-log -` writes the JSON
//! lines to stdout (the container's log stream).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::proxy::Proxy;
use crate::proxy::access_log::JsonLinesSink;
use crate::proxy::stats::Stats;
use crate::runner::exit;
use crate::runtime::compile::{Compiled, compile};
use crate::runtime::standalone::ManifestEndpoints;
use crate::scenario::inputs::Inputs;

/// Serves the Gateways of `files` until Ctrl-C.
pub async fn serve(
    files: &[PathBuf],
    listen: &[String],
    admin: &str,
    access_log: Option<&Path>,
    cancel: CancellationToken,
) -> u8 {
    let inputs = match Inputs::load(files) {
        Ok(inputs) => inputs,
        Err((errors, _)) => {
            eprintln!("{errors}");
            return exit::INVALID;
        }
    };
    let analysis = inputs.analyze();
    let seed = match std::env::var("CHAOSGATE_PROXY_SEED") {
        Ok(text) => match text.parse::<u64>() {
            Ok(seed) => seed,
            Err(e) => {
                eprintln!("error: CHAOSGATE_PROXY_SEED={text}: {e}");
                return exit::INVALID;
            }
        },
        Err(_) => 1,
    };
    let compiled = match compile(
        &analysis,
        &inputs.objects,
        &ManifestEndpoints(&inputs.objects),
        seed,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    for w in &compiled.warnings {
        eprintln!("warning: {w}");
    }
    let binds = match binds(&compiled, listen) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let admin: SocketAddr = match admin.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: --admin {admin}: {e}");
            return exit::INVALID;
        }
    };
    let mut builder = Proxy::builder(compiled.config);
    if access_log == Some(Path::new("-")) {
        builder = builder.access_log_sink(Arc::new(JsonLinesSink::new(std::io::stdout())));
    } else if let Some(path) = access_log {
        match JsonLinesSink::create(path) {
            Ok(sink) => builder = builder.access_log_sink(Arc::new(sink)),
            Err(e) => {
                eprintln!("error: --access-log {}: {e}", path.display());
                return exit::INVALID;
            }
        }
    }
    let proxy = match builder.start(binds, Some(admin)).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INFRASTRUCTURE;
        }
    };
    for (name, addr) in proxy.listener_addrs() {
        eprintln!("listening: {name} on {addr}");
    }
    if let Some(addr) = proxy.admin_addr() {
        eprintln!("admin: http://{addr}/stats");
    }
    if let Ok(text) = std::env::var("CHAOSGATE_PROXY_STATS_ADDR") {
        let listener = match text.parse::<SocketAddr>() {
            Ok(addr) => TcpListener::bind(addr).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match listener {
            Ok(listener) => {
                eprintln!("stats: http://{text}/stats");
                tokio::spawn(serve_stats(listener, proxy.stats().clone(), cancel.clone()));
            }
            Err(e) => {
                eprintln!("error: CHAOSGATE_PROXY_STATS_ADDR={text}: {e}");
                proxy.shutdown().await;
                return exit::INVALID;
            }
        }
    }
    cancel.cancelled().await;
    proxy.shutdown().await;
    exit::PASSED
}

/// Answers `GET /stats` with the Envoy text format and anything else with 404, one request per
/// connection; a few reads a second from the runner, so a connection gets no task of its own.
async fn serve_stats(listener: TcpListener, stats: Arc<Stats>, cancel: CancellationToken) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = cancel.cancelled() => return,
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), answer_stats(stream, &stats)).await;
    }
}

async fn answer_stats(mut stream: TcpStream, stats: &Stats) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let (status, body) = if head.starts_with(b"GET /stats ") {
        ("200 OK", stats.render_text())
    } else {
        ("404 Not Found", String::new())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// `ADDR` for a single listener, else `[GATEWAY/]LISTENER=ADDR` per listener.
fn binds(compiled: &Compiled, listen: &[String]) -> Result<Vec<(String, SocketAddr)>, String> {
    let names: Vec<&str> = compiled.listeners.iter().map(|l| l.name.as_str()).collect();
    if names.is_empty() {
        return Err("the files declare no HTTP listener with routes to serve".into());
    }
    let mut out = Vec::new();
    for entry in listen {
        let (selector, addr) = match entry.rsplit_once('=') {
            Some((s, a)) => (Some(s), a),
            None => (None, entry.as_str()),
        };
        let addr: SocketAddr = addr.parse().map_err(|e| format!("--listen {entry}: {e}"))?;
        let name = match selector {
            None if names.len() == 1 => names[0].to_string(),
            None => {
                return Err(format!(
                    "several listeners ({}): use --listen [GATEWAY/]LISTENER=ADDR",
                    names.join(", ")
                ));
            }
            Some(sel) => {
                let matching: Vec<&&str> = names
                    .iter()
                    .filter(|n| n.ends_with(&format!("/{sel}")) || **n == sel)
                    .collect();
                match matching.as_slice() {
                    [one] => one.to_string(),
                    [] => {
                        return Err(format!(
                            "--listen {entry}: no listener {sel} (listeners: {})",
                            names.join(", ")
                        ));
                    }
                    _ => {
                        return Err(format!(
                            "--listen {entry}: {sel} is ambiguous: name the Gateway too"
                        ));
                    }
                }
            }
        };
        out.push((name, addr));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stats_listener_answers_stats_and_nothing_else() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let server = tokio::spawn(serve_stats(
            listener,
            Arc::new(Stats::default()),
            cancel.clone(),
        ));
        let get = |path: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).await.unwrap();
            answer
        };
        assert!(get("/stats").await.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(get("/clusters").await.starts_with("HTTP/1.1 404"));
        cancel.cancel();
        server.await.unwrap();
    }
}
