//! The embedded reverse proxy: Envoy's request semantics for the policies chaosgate tests.
//!
//! Start it with [`Proxy::start`] (or [`Proxy::builder`] to add access log sinks) from a
//! validated [`config::ProxyConfig`]; every feature is enabled by its configuration field, with
//! no hooks to write. The ordered request path lives in [`pipeline`]: route match → fault →
//! request buffer → local then global rate limit → weighted cluster and request hash →
//! admission (circuit breakers) → host pick → forward with per-try timeout → classify → retry
//! decision → response or local reply → response override; then access log and stats.
//! Background work (outlier detection timers, active health checkers) starts with the proxy;
//! see [`server`] for how health-checked clusters warm before the listeners serve.

pub mod access_log;
pub mod admin;
pub mod cluster;
pub mod config;
mod downstream;
pub mod error;
pub mod fault;
pub mod flags;
pub mod grpc;
pub mod health_check;
pub mod http1;
pub mod lb;
pub mod pipeline;
pub mod rate_limit;
pub mod response_headers;
pub mod retry;
pub mod rng;
pub mod router;
pub mod server;
pub mod stats;
#[cfg(test)]
pub(crate) mod testing;
pub mod timeout;

pub use server::{Proxy, ProxyBuilder, ProxyHandle, StartError};
