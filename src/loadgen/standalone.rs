//! `chaosgate load URL`: the load generator on its own, for users who want an oha/wrk-style tool
//! with coordinated-omission correction and HDR percentiles.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::engine::{LoadError, LoadMode, LoadSpec, run_load};
use super::sample::{Sample, SampleSink};
use super::summary::LoadSummary;

/// Where a URL points: the socket address, the Host header and the request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTarget {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

/// Parses and resolves an `http://host[:port][/path]` URL (https is not supported: chaosgate
/// talks plain HTTP to its own proxies).
pub async fn resolve_url(url: &str) -> Result<UrlTarget, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}`: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("`{url}`: no host"));
    }
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| format!("`{url}`: cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("`{url}`: {authority} has no address"))?;
    Ok(UrlTarget {
        addr,
        host: authority.to_string(),
        path: path.to_string(),
    })
}

/// Runs one load against `target` until `duration` passes or `cancel` fires.
pub async fn run_standalone(
    target: UrlTarget,
    mode: LoadMode,
    duration: Duration,
    connections: Option<NonZeroUsize>,
    timeout: Duration,
    cancel: CancellationToken,
) -> Result<LoadSummary, LoadError> {
    let mut spec = LoadSpec::new("load", target.addr, mode, duration);
    spec.host = Some(target.host);
    spec.path = target.path;
    spec.timeout = timeout;
    // Nothing joins the standalone tool's samples to a proxy's log, and a load generator adds
    // no header the user did not ask for (wrk and oha add none): the target parses only what
    // it would see from its real clients.
    spec.request_id_prefix = None;
    if let Some(c) = connections {
        spec.connections = c;
    }
    run_load(spec, Instant::now(), Arc::new(Discard), cancel).await
}

/// The summary carries everything the standalone tool prints; samples need not be kept.
struct Discard;

impl SampleSink for Discard {
    fn record(&self, _sample: Sample) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_urls() {
        let t = resolve_url("http://127.0.0.1:8080/api?x=1").await.unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.host, "127.0.0.1:8080");
        assert_eq!(t.path, "/api?x=1");
        let t = resolve_url("http://localhost").await.unwrap();
        assert_eq!(t.addr.port(), 80);
        assert_eq!(t.path, "/");
        assert!(
            resolve_url("https://x")
                .await
                .unwrap_err()
                .contains("only http://")
        );
        assert!(
            resolve_url("http:///x")
                .await
                .unwrap_err()
                .contains("no host")
        );
    }
}
