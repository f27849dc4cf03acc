//! chaosgate: chaos and resilience testing for Envoy Gateway BackendTrafficPolicies.
//!
//! Data flows scenario → policy → runtime (backends, relay, proxy) ← loadgen → expect → report.
#![forbid(unsafe_code)]
#![warn(rust_2018_idioms)]

pub mod cli;
pub mod policy;
pub mod proxy;
pub mod scenario;
