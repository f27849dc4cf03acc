//! Envoy router retry semantics (§d.5): which outcomes a policy retries, how many times, and
//! how long to back off. Circuit-breaker admission of retries (`max_retries`) is done by the
//! pipeline, which owns the cluster.

use std::time::Duration;

use http::HeaderName;

use super::config::{RetryOn, RetryPolicy};
use super::error::ProxyError;
use super::response_headers::ResponseHeaders;
use super::rng::SharedRng;

/// Header that marks a response as produced by an overloaded Envoy; never retried.
pub const OVERLOADED_HEADER: HeaderName = HeaderName::from_static("x-envoy-overloaded");

/// What one attempt produced, as retry decisions see it.
#[derive(Debug, Clone, Copy)]
pub enum AttemptResult<'a> {
    /// Upstream response headers arrived.
    Response {
        /// Status code.
        status: u16,
        /// Response headers (for `grpc-status` and `x-envoy-overloaded`).
        headers: &'a ResponseHeaders,
    },
    /// No response.
    Failure(ProxyError),
}

/// The retry state of one request.
#[derive(Debug)]
pub struct RetryState<'a> {
    policy: &'a RetryPolicy,
    retries_done: u32,
}

/// Verdict after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Retry after this back-off.
    Retry(Duration),
    /// The outcome is final (not retriable).
    Final,
    /// Retriable, but `num_retries` is used up (`upstream_rq_retry_limit_exceeded`, flag `URX`).
    LimitExceeded,
}

impl<'a> RetryState<'a> {
    /// Fresh state for one request.
    pub fn new(policy: &'a RetryPolicy) -> Self {
        RetryState {
            policy,
            retries_done: 0,
        }
    }

    /// Retries scheduled so far.
    pub fn retries_done(&self) -> u32 {
        self.retries_done
    }

    /// Decides about the attempt that just ended; a `Retry` counts as one retry.
    pub fn decide(&mut self, result: AttemptResult<'_>, rng: &SharedRng) -> RetryDecision {
        if !is_retriable(self.policy, result) {
            return RetryDecision::Final;
        }
        if self.retries_done >= self.policy.num_retries {
            return RetryDecision::LimitExceeded;
        }
        self.retries_done += 1;
        RetryDecision::Retry(backoff(self.policy, self.retries_done, rng))
    }
}

/// Whether `policy` retries this outcome.
pub fn is_retriable(policy: &RetryPolicy, result: AttemptResult<'_>) -> bool {
    let on = &policy.retry_on;
    match result {
        AttemptResult::Response { status, headers } => {
            // The header lookups come last: a success (nearly every response) needs none.
            let grpc = || {
                on.grpc_cancelled
                    || on.grpc_deadline_exceeded
                    || on.grpc_resource_exhausted
                    || on.grpc_internal
                    || on.grpc_unavailable
            };
            ((on.five_xx && status >= 500)
                || (on.gateway_error && matches!(status, 502..=504))
                || (on.retriable_4xx && status == 409)
                || (on.retriable_status_codes && policy.retriable_status_codes.contains(&status))
                || (grpc() && grpc_retriable(on, headers)))
                && !headers.contains(&OVERLOADED_HEADER)
        }
        AttemptResult::Failure(e) => failure_retriable(on, e),
    }
}

fn failure_retriable(on: &RetryOn, e: ProxyError) -> bool {
    let reset_like = on.reset || on.five_xx || on.gateway_error;
    match e {
        ProxyError::ConnectFailure | ProxyError::ConnectTimeout => {
            reset_like || on.connect_failure || on.reset_before_request
        }
        ProxyError::Reset { before_request } => {
            reset_like || (on.reset_before_request && before_request)
        }
        // A per-try timeout is a local reset with a timeout: retried by 5xx, gateway-error, reset.
        ProxyError::PerTryTimeout => reset_like,
        // Overflow, no host, route-level timeouts and local decisions are never retried.
        ProxyError::Overflow
        | ProxyError::NoHealthyUpstream
        | ProxyError::NoRoute
        | ProxyError::RouteTimeout
        | ProxyError::MaxStreamDuration
        | ProxyError::StreamIdleTimeout => false,
    }
}

/// gRPC triggers look at `grpc-status` in the response headers (trailers are not checked).
fn grpc_retriable(on: &RetryOn, headers: &ResponseHeaders) -> bool {
    let Some(code) = headers
        .get(&super::grpc::GRPC_STATUS)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|s| s.trim().parse::<u32>().ok())
    else {
        return false;
    };
    match code {
        1 => on.grpc_cancelled,
        4 => on.grpc_deadline_exceeded,
        8 => on.grpc_resource_exhausted,
        13 => on.grpc_internal,
        14 => on.grpc_unavailable,
        _ => false,
    }
}

/// Envoy's jittered exponential back-off for retry number `n` (1-based): a random time in
/// `[0, (2^n − 1) × base)`, capped at the maximum, in whole milliseconds.
pub fn backoff(policy: &RetryPolicy, n: u32, rng: &SharedRng) -> Duration {
    let base = u64::try_from(policy.backoff.base().as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let max = u64::try_from(policy.backoff.max().as_millis()).unwrap_or(u64::MAX);
    let multiplier = 1u64.checked_shl(n.min(63)).map_or(u64::MAX, |m| m - 1);
    let upper = multiplier.saturating_mul(base).max(1);
    Duration::from_millis(rng.below(upper).min(max))
}

#[cfg(test)]
mod tests;
