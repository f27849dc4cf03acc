//! Seams for the request-path features built elsewhere: fault injection and rate limiting.
//!
//! Both are per-route in Envoy (the filters read the matched route's configuration), so both
//! hooks receive the matched route. They decide synchronously; the pipeline performs the delay
//! and sends the local reply, so a hook never holds a lock across an `.await`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use http::request::Parts;

use crate::proxy::config::RouteConfig;
use crate::proxy::error::LocalReply;

/// Envoy's fault filter (`envoy.filters.http.fault`): runs first after route match.
pub trait FaultHook: Send + Sync {
    /// What to do with this request: delay it, abort it, both (delay first), or neither.
    fn decide(&self, route: &RouteConfig, req: &Parts) -> FaultDecision;
}

/// Envoy's local rate limit filter: runs after the fault filter.
pub trait RateLimitHook: Send + Sync {
    /// Whether the request may proceed.
    fn check(&self, route: &RouteConfig, req: &Parts, peer: SocketAddr) -> RateLimitDecision;
}

/// The fault filter's decision.
#[derive(Debug, Clone, Default)]
pub struct FaultDecision {
    /// Hold the request this long (flag `DI`).
    pub delay: Option<Duration>,
    /// Answer with this reply instead of forwarding (flag `FI`).
    pub abort: Option<LocalReply>,
}

/// The rate limiter's decision.
#[derive(Debug, Clone)]
pub enum RateLimitDecision {
    /// Proceed; add these headers (e.g. `x-ratelimit-*`) to the response.
    Allow(HeaderMap),
    /// Answer with this reply (status 429, flag `RL`).
    Limit(LocalReply),
}

/// The hooks a pipeline runs; `None` means the feature is off.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Fault injection.
    pub fault: Option<Arc<dyn FaultHook>>,
    /// Rate limiting.
    pub rate_limit: Option<Arc<dyn RateLimitHook>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("fault", &self.fault.is_some())
            .field("rate_limit", &self.rate_limit.is_some())
            .finish()
    }
}
