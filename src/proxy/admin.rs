//! The loopback admin listener: `/stats`, `/stats/prometheus`, `/clusters`, `/ready`, in
//! Envoy's text formats so existing scripts and habits carry over.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::cluster::Cluster;
use super::stats::Stats;

/// What the admin endpoints read.
pub struct AdminState {
    /// All stats.
    pub stats: Arc<Stats>,
    /// All clusters.
    pub clusters: Vec<Arc<Cluster>>,
}

/// Serves admin requests until shutdown.
pub async fn serve(
    socket: TcpListener,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = socket.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = Arc::clone(&state);
                connections.spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handle(&state, req.uri().path())) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
}

/// Answers one admin path.
pub fn handle(state: &AdminState, path: &str) -> Response<Full<Bytes>> {
    let (status, body) = match path {
        "/stats" => (StatusCode::OK, state.stats.render_text()),
        "/stats/prometheus" => (StatusCode::OK, state.stats.render_prometheus()),
        "/clusters" => (StatusCode::OK, render_clusters(&state.clusters)),
        "/ready" => (StatusCode::OK, "LIVE\n".to_string()),
        _ => (StatusCode::NOT_FOUND, "invalid path\n".to_string()),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    r
}

/// Envoy's `/clusters` text: thresholds, then per-host lines `<cluster>::<addr>::<field>::<value>`.
pub fn render_clusters(clusters: &[Arc<Cluster>]) -> String {
    let mut out = String::new();
    let mut sorted: Vec<&Arc<Cluster>> = clusters.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for c in sorted {
        let n = &c.name;
        let r = c.resources();
        let _ = writeln!(out, "{n}::observability_name::{n}");
        for (k, v) in [
            ("max_connections", r.connections.max()),
            ("max_pending_requests", r.pending_requests.max()),
            ("max_requests", r.requests.max()),
            ("max_retries", r.retries.max()),
        ] {
            let _ = writeln!(out, "{n}::default_priority::{k}::{v}");
        }
        for h in c.hosts.hosts() {
            let a = h.endpoint.addr;
            let _ = writeln!(out, "{n}::{a}::cx_active::{}", h.cx_active());
            let _ = writeln!(out, "{n}::{a}::rq_active::{}", h.rq_active());
            let _ = writeln!(out, "{n}::{a}::rq_error::{}", h.rq_error());
            let _ = writeln!(out, "{n}::{a}::rq_total::{}", h.rq_total());
            let _ = writeln!(out, "{n}::{a}::health_flags::{}", h.health_flags_text());
            let _ = writeln!(out, "{n}::{a}::weight::{}", h.endpoint.weight);
            let _ = writeln!(out, "{n}::{a}::priority::{}", h.endpoint.priority);
            let _ = writeln!(out, "{n}::{a}::hostname::{}", h.backend);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::cluster::host_set::HealthFlag;
    use crate::proxy::config::{ClusterConfig, Endpoint};
    use crate::proxy::rng::RngSource;

    #[tokio::test]
    async fn clusters_text_shows_thresholds_and_health() {
        let cfg = ClusterConfig::new(
            "httproute/default/x/rule/0",
            vec![Endpoint::new(([127, 0, 0, 1], 9).into(), "default/x", 0)],
        );
        let c = Arc::new(Cluster::new(cfg, &RngSource::new(1)).unwrap());
        c.hosts
            .set_health_flag(0, HealthFlag::FailedOutlierCheck, true);
        let text = render_clusters(&[c]);
        assert!(text.contains("httproute/default/x/rule/0::default_priority::max_retries::1024\n"));
        assert!(text.contains(
            "httproute/default/x/rule/0::127.0.0.1:9::health_flags::/failed_outlier_check\n"
        ));
        assert!(text.contains("httproute/default/x/rule/0::127.0.0.1:9::rq_active::0\n"));
    }

    #[test]
    fn unknown_path_is_404() {
        let state = AdminState {
            stats: Arc::new(Stats::default()),
            clusters: vec![],
        };
        assert_eq!(handle(&state, "/nope").status(), StatusCode::NOT_FOUND);
        assert_eq!(handle(&state, "/ready").status(), StatusCode::OK);
    }
}
