//! Measures what chaosgate adds on the path it measures: the embedded proxy (with a realistic
//! policy: circuit breaker, retries, outlier detection) and the fault relay, each against the
//! same in-process mock backend reached directly, in the same run.
//!
//! `cargo run --release --example overhead [-- SECONDS]`
//! Prints closed-loop throughput (64 connections) and open-loop latency at a fixed rate for:
//! direct, through the relay, through the proxy, and the ratios.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use chaosgate::chaos::relay::Relay;
use chaosgate::loadgen::{
    LoadMode, LoadSpec, LoadSummary, Rate, Sample, SampleSink, Schedule, run_load,
};
use chaosgate::proxy::Proxy;
use chaosgate::proxy::config::{
    ClusterConfig, Endpoint, ForwardAction, ListenerConfig, OutlierDetectionConfig, ProxyConfig,
    RetryPolicy, RouteAction, RouteConfig, RouteMatch, RouteSource,
};
use mock_backends::{Replica, ReplicaConfig};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Samples are not needed: the summary carries the numbers.
struct Discard;

impl SampleSink for Discard {
    fn record(&self, _sample: Sample) {}
}

fn proxy_config(backend: SocketAddr) -> ProxyConfig {
    let cluster = "httproute/default/bench/rule/0";
    let mut cluster_config =
        ClusterConfig::new(cluster, vec![Endpoint::new(backend, "default/bench", 0)]);
    cluster_config.circuit_breaker.max_connections = 512;
    cluster_config.circuit_breaker.max_requests = 512;
    cluster_config.outlier_detection = Some(OutlierDetectionConfig::default());
    let mut forward = ForwardAction::to_cluster(cluster);
    forward.retry = Some(RetryPolicy::envoy_gateway_default());
    let source = RouteSource {
        kind: "HTTPRoute".into(),
        namespace: "default".into(),
        name: "bench".into(),
        rule: 0,
        rule_name: None,
    };
    let route = RouteConfig::new(
        format!("{cluster}/match/0"),
        source,
        RouteMatch::default(),
        RouteAction::Forward(forward),
    );
    ProxyConfig {
        listeners: vec![ListenerConfig {
            name: "default/eg/http".into(),
            routes: vec![route],
        }],
        clusters: vec![cluster_config],
        seed: 1,
    }
}

async fn closed(target: SocketAddr, seconds: u64) -> anyhow::Result<LoadSummary> {
    let connections = NonZeroUsize::new(64).unwrap_or(NonZeroUsize::MIN);
    let spec = LoadSpec::new(
        "closed",
        target,
        LoadMode::Closed {
            concurrency: connections,
        },
        Duration::from_secs(seconds),
    );
    Ok(run_load(
        spec,
        Instant::now(),
        Arc::new(Discard),
        CancellationToken::new(),
    )
    .await?)
}

async fn open(target: SocketAddr, seconds: u64, rate: f64) -> anyhow::Result<LoadSummary> {
    let schedule = Schedule::constant(Rate::try_new(rate)?)?;
    let spec = LoadSpec::new(
        "open",
        target,
        LoadMode::Open(schedule),
        Duration::from_secs(seconds),
    );
    Ok(run_load(
        spec,
        Instant::now(),
        Arc::new(Discard),
        CancellationToken::new(),
    )
    .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let backend = Replica::start(ReplicaConfig::new("default", "bench", 0), loopback).await?;
    let relay = Relay::start(loopback, backend.addr()).await?;
    let proxy = Proxy::start(
        proxy_config(backend.addr()),
        vec![("default/eg/http".into(), loopback)],
        None,
    )
    .await?;
    let proxied = proxy
        .listener_addr("default/eg/http")
        .ok_or_else(|| anyhow::anyhow!("no listener"))?;
    let targets = [
        ("direct", backend.addr()),
        ("relay", relay.addr()),
        ("proxy", proxied),
    ];

    println!("closed loop, 64 connections, {seconds}s each");
    let mut rps = Vec::new();
    for (name, addr) in targets {
        let s = closed(addr, seconds).await?;
        println!(
            "  {name:<7} {:>9.0} req/s  p50 {:.3}ms  p99 {:.3}ms",
            s.achieved_rate, s.latency.p50_ms, s.latency.p99_ms
        );
        rps.push(s.achieved_rate);
    }
    println!(
        "  relay/direct {:.2}  proxy/direct {:.2}",
        rps[1] / rps[0],
        rps[2] / rps[0]
    );

    let rate = 1000.0;
    println!("open loop, {rate} req/s, {seconds}s each (latency from the intended send time)");
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for (name, addr) in targets {
        let s = open(addr, seconds, rate).await?;
        println!(
            "  {name:<7} p50 {:.3}ms  p99 {:.3}ms  max {:.3}ms",
            s.latency.p50_ms, s.latency.p99_ms, s.latency.max_ms
        );
        p50.push(s.latency.p50_ms);
        p99.push(s.latency.p99_ms);
    }
    println!(
        "  added by the relay: p50 {:+.3}ms p99 {:+.3}ms; by the proxy: p50 {:+.3}ms p99 {:+.3}ms",
        p50[1] - p50[0],
        p99[1] - p99[0],
        p50[2] - p50[0],
        p99[2] - p99[0]
    );
    proxy.shutdown().await;
    backend.shutdown().await;
    Ok(())
}
