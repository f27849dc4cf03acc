//! Measures the load generator: achieved rate vs target against an in-process hyper server,
//! and the recorder's cost per sample. Run with `cargo run --release --example loadgen_rate`.

use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chaosgate::loadgen::{
    LoadMode, LoadSpec, Outcome, Rate, ResponseInfo, Sample, SampleSink, Schedule,
    WindowedRecorder, run_load,
};
use http::{Method, Response};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let target = listener.local_addr()?;
    let connections_seen = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&connections_seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("x-chaosgate-backend", "bench")
                            .header("x-chaosgate-replica", "0")
                            .body(Full::new(Bytes::from_static(b"ok\n")))
                            .unwrap_or_default(),
                    )
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    for (rate, connections) in [(1_000.0, 16), (10_000.0, 64), (30_000.0, 128)] {
        let recorder = Arc::new(WindowedRecorder::try_new(Duration::from_secs(1))?);
        let spec = LoadSpec {
            name: format!("rate-{rate}"),
            index: 0,
            target,
            host: Some("bench.local".to_owned()),
            method: Method::GET,
            path: "/".to_owned(),
            headers: Vec::new(),
            mode: LoadMode::Open(Schedule::constant(Rate::try_new(rate)?)?),
            start: Duration::ZERO,
            duration: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            connections: NonZeroUsize::new(connections).unwrap_or(NonZeroUsize::MIN),
            max_backlog: 10_000,
            request_id_prefix: Some("bench".to_owned()),
        };
        let wall = Instant::now();
        let connections_before = connections_seen.load(Ordering::Relaxed);
        let summary = run_load(
            spec,
            Instant::now(),
            recorder.clone(),
            CancellationToken::new(),
        )
        .await?;
        println!("{summary}");
        let agg = recorder.aggregate(|_| true, Duration::ZERO, Duration::from_secs(5));
        recorder.flush();
        let (_, entries) = recorder.entry_counts();
        println!(
            "  recorder: {entries} (window, key) entries, {} bytes each on average",
            recorder.compacted_bytes() / entries.max(1)
        );
        println!(
            "  wall {:.2}s, {} of {connections} connections opened, recorder saw {} requests, p99 {:?}\n",
            wall.elapsed().as_secs_f64(),
            connections_seen.load(Ordering::Relaxed) - connections_before,
            agg.requests,
            agg.p99()
        );
    }

    // Recorder cost: samples recorded from several threads at once.
    for threads in [1usize, 2, 4] {
        let recorder = Arc::new(WindowedRecorder::try_new(Duration::from_secs(1))?);
        let per_thread = 500_000u64;
        let started = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let recorder = Arc::clone(&recorder);
                std::thread::spawn(move || {
                    let backend: Arc<str> = Arc::from(if t % 2 == 0 { "a" } else { "b" });
                    for i in 0..per_thread {
                        recorder.record(Sample {
                            load: 0,
                            request_id: i,
                            intended: Duration::from_micros(i * 20),
                            sent: Duration::from_micros(i * 20),
                            latency: Duration::from_micros(100 + i % 5000),
                            outcome: Outcome::Response(ResponseInfo {
                                status: 200,
                                backend: Some(Arc::clone(&backend)),
                                replica: Some((i % 3) as u16),
                                overloaded: false,
                                ratelimited: false,
                            }),
                        });
                    }
                })
            })
            .collect();
        for h in handles {
            let _ = h.join();
        }
        let elapsed = started.elapsed();
        let total = per_thread * threads as u64;
        println!(
            "recorder: {threads} threads, {total} samples in {:.3}s = {:.0} ns/sample wall, {:.1} M samples/s",
            elapsed.as_secs_f64(),
            elapsed.as_nanos() as f64 / total as f64,
            total as f64 / elapsed.as_secs_f64() / 1e6
        );
    }
    Ok(())
}
