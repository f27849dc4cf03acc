//! What one request produced, and the sink that receives it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// The record of one intended request, handed to a [`SampleSink`] when it is settled.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Index of the load that sent it (`LoadSpec::index`).
    pub load: u16,
    /// The per-load sequence number; the `x-request-id` header is `<prefix>-<load>-<request_id>`.
    pub request_id: u64,
    /// When it was meant to leave, since the run started (closed loop: when it left).
    pub intended: Duration,
    /// When it actually left, since the run started (a shed request: when it was shed).
    pub sent: Duration,
    /// From `intended` to the end of the response body or the transport error (a shed request:
    /// how long it was overdue when shed; recorders keep no latency for it).
    pub latency: Duration,
    /// What came back.
    pub outcome: Outcome,
}

/// What came back for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// An HTTP response, body read to the end.
    Response(ResponseInfo),
    /// No (complete) response: the connection failed or the client timed out.
    TransportError(TransportErrorKind),
    /// Never sent: the open-loop backlog exceeded its cap, so the generator shed the request
    /// itself rather than queue without bound.
    ClientOverload,
}

/// The facts read from a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseInfo {
    /// HTTP status code.
    pub status: u16,
    /// `x-chaosgate-backend`, set by the mock backends.
    pub backend: Option<Arc<str>>,
    /// `x-chaosgate-replica`, set by the mock backends.
    pub replica: Option<u16>,
    /// `x-envoy-overloaded` was present (a circuit breaker answered).
    pub overloaded: bool,
    /// `x-envoy-ratelimited` was present (the rate limiter answered).
    pub ratelimited: bool,
}

/// How a request failed without a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportErrorKind {
    /// The connect was refused (nothing listening).
    Refused,
    /// The connection was reset or closed before the response was complete.
    Reset,
    /// The client-side timeout expired.
    Timeout,
    /// Anything else (protocol error, local socket error).
    Other,
}

/// Receives samples from many load tasks at once; must be cheap and must not block for long.
pub trait SampleSink: Send + Sync {
    /// Takes one settled request.
    fn record(&self, sample: Sample);
}

impl TransportErrorKind {
    /// How many kinds exist (the length of per-kind counter arrays).
    pub const COUNT: usize = 4;

    /// Every kind, in declaration order (`ALL[k.index()] == k`).
    pub const ALL: [TransportErrorKind; Self::COUNT] =
        [Self::Refused, Self::Reset, Self::Timeout, Self::Other];

    /// Lower-case name, as in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Reset => "reset",
            Self::Timeout => "timeout",
            Self::Other => "other",
        }
    }

    /// Position in [`Self::ALL`], for counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sinks compose: a pair records into both (e.g. a recorder and a live progress counter).
impl<A: SampleSink, B: SampleSink> SampleSink for (A, B) {
    fn record(&self, sample: Sample) {
        self.0.record(sample.clone());
        self.1.record(sample);
    }
}

impl<S: SampleSink + ?Sized> SampleSink for Arc<S> {
    fn record(&self, sample: Sample) {
        (**self).record(sample);
    }
}
