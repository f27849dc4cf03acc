//! Active health checking (`healthCheck.active`), emulating Envoy's HTTP, TCP and gRPC health
//! checkers.
//!
//! `config` validates the policy's numbers, `state` is the per-host state machine (pure),
//! `probe` runs one HTTP/1.1 or TCP check (`grpc_probe` one gRPC check), and `runner` schedules
//! probes per host and reports transitions.

pub mod config;
pub mod grpc_probe;
pub mod probe;
pub mod runner;
pub mod state;

pub use config::{
    CheckKind, GrpcCheckConfig, HealthCheckConfig, HealthCheckConfigError, HealthCheckSpec,
    HttpCheckConfig, StatusRanges, TcpCheckConfig,
};
pub use probe::{ProbeResult, probe, probe_checked};
pub use runner::{HealthCheckStats, HealthChecker, HealthCheckerHandle};
pub use state::{HostHealthState, Transition};

#[cfg(test)]
mod tests;
