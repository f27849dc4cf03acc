//! The embedded reverse proxy: Envoy's request semantics for the policies chaosgate tests.
//!
//! Data flow of one request (see [`pipeline`]): route match → fault hook → rate-limit hook →
//! admission (circuit breakers) → host pick → forward with per-try timeout → classify → retry
//! decision → response or local reply; then access log and stats.

pub mod cluster;
pub mod config;
pub mod error;
pub mod flags;
pub mod lb;
pub mod retry;
pub mod rng;
pub mod router;
pub mod stats;
