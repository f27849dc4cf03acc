//! `mock-backends`: serves one replica and its control endpoint, for containers.
//!
//! ```text
//! mock-backends --config '{"backend":"payments","replica":0}' --listen 0.0.0.0:8080 --control 0.0.0.0:9090
//! ```
//!
//! Once both ports are bound it prints one JSON line on stdout,
//! `{"listen":"<addr>","control":"<addr>"}`, so callers can use port 0. Logs go to stderr
//! (`RUST_LOG`, default `info`). SIGTERM or Ctrl-C stops it cleanly with exit code 0; a bad config
//! exits with 2, a port that cannot be bound with 3.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use mock_backends::{ControlServer, Replica, ReplicaConfig};
use tracing_subscriber::EnvFilter;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "mock-backends",
    version,
    about = "One programmable mock backend replica"
)]
struct Args {
    /// The replica configuration as JSON (see the crate docs for the fields).
    #[arg(long)]
    config: String,
    /// Address the replica serves HTTP/1.1 and h2c on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Address of the control endpoint (faults, stats, readiness).
    #[arg(long, default_value = "0.0.0.0:9090")]
    control: SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let config: ReplicaConfig = match serde_json::from_str(&args.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("mock-backends: --config: {error}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = config.validate() {
        eprintln!("mock-backends: --config: {error}");
        return ExitCode::from(2);
    }
    let replica = match Replica::start(config, args.listen).await {
        Ok(replica) => replica,
        Err(error) => {
            eprintln!("mock-backends: {error}");
            return ExitCode::from(3);
        }
    };
    let control = match ControlServer::start(args.control, replica.controller()).await {
        Ok(control) => control,
        Err(error) => {
            eprintln!("mock-backends: cannot listen on {}: {error}", args.control);
            return ExitCode::from(3);
        }
    };

    let ready = serde_json::json!({
        "listen": replica.addr().to_string(),
        "control": control.addr().to_string(),
    });
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{ready}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // Nobody reads our address; keep serving anyway, the ports are what matters.
        tracing::warn!("cannot write the ready line to stdout");
    }
    drop(stdout);
    tracing::info!(listen = %replica.addr(), control = %control.addr(), "mock-backends ready");

    match shutdown_signal().await {
        Ok(signal) => tracing::info!(signal, "shutting down"),
        Err(error) => tracing::error!(%error, "cannot wait for signals; shutting down"),
    }
    control.shutdown().await;
    replica.shutdown().await;
    ExitCode::SUCCESS
}

/// Waits for SIGTERM (what container runtimes send) or Ctrl-C.
async fn shutdown_signal() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => Ok("SIGTERM"),
            result = tokio::signal::ctrl_c() => result.map(|()| "SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map(|()| "ctrl-c")
    }
}
