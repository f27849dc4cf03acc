//! chaosgate: chaos and resilience testing for Envoy Gateway BackendTrafficPolicies.
//!
//! Data flows scenario → policy → runtime (backends, relay, proxy) ← loadgen → expect → report.
#![forbid(unsafe_code)]
#![warn(rust_2018_idioms)]

pub mod chaos;
pub mod cli;
pub mod expect;
pub mod loadgen;
pub mod policy;
pub mod proxy;
pub mod report;
pub mod runner;
pub mod runtime;
pub mod scenario;
