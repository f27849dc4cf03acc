//! Programmable mock HTTP backends for chaosgate.
//!
//! A [`Replica`] is one endpoint behind a Service: it serves HTTP/1.1 and h2c (prior knowledge) on
//! one port, answers after a sampled latency, fails a configured fraction of requests, answers its
//! health path, and obeys [`Fault`]s changed at run time through its [`ReplicaHandle`] (in process)
//! or the control endpoint of the `mock-backends` binary ([`control`]).
//!
//! # Responses
//!
//! Every response carries `x-chaosgate-backend: <namespace>/<backend>` and
//! `x-chaosgate-replica: <index>`, and echoes `x-request-id`. Request bodies are always read to the
//! end.
//!
//! | request | answer |
//! | --- | --- |
//! | the health path (`/healthz`) | 200 `ok`, 503 under `unhealthy`; no latency, no `errorRate` |
//! | `/status/<code>` | that status (200..=599) |
//! | `/echo` | the request as JSON: `method`, `path`, `host`, `protocol`, `headers` (name → list of values), `namespace`, `backend`, `replica` |
//! | `/bytes/<n>` | n bytes (at most 16 MiB) |
//! | anything else | 200 `ok <backend>/<replica>` |
//! | `?delay=<duration>` on any non-health path | that much extra delay |
//!
//! Non-health requests wait the replica latency plus every `latency` fault plus `?delay`; then an
//! `error` fault (tried in order) or `errorRate` (not for `/status/<code>`) may turn the answer into
//! an error. `hang` holds every request, health checks included, until it is cleared; `reset`
//! answers every request, health checks included, by resetting its connection (TCP RST); `kill`
//! closes the listener and every connection until it is cleared.
//!
//! # JSON shapes
//!
//! Durations are Gateway API strings ([`duration`]). Latency: `"5ms"`, `{"fixed": "5ms"}`,
//! `{"uniform": ["1ms", "9ms"]}`, `{"lognormal": {"p50": "5ms", "p99": "40ms"}}` ([`LatencyDist`]).
//! Faults: `{"type": "latency", "latency": "2s"}`, `{"type": "error", "status": 503, "rate": 1.0}`,
//! `{"type": "hang"}`, `{"type": "reset"}`, `{"type": "slowBody", "bytesPerSecond": 1024}`, `{"type": "unhealthy"}`,
//! `{"type": "kill"}` ([`Fault`]). Replica configuration: [`ReplicaConfig`].
//!
//! # Determinism
//!
//! Each request draws from its own ChaCha8 stream of the replica's seed (`seed` mixed with the
//! replica index), numbered in arrival order: same seed, same arrival order, same decisions.
#![forbid(unsafe_code)]

pub mod config;
pub mod control;
pub mod duration;
pub mod fault;
pub mod latency;
pub mod replica;
pub mod stats;

mod body;
mod io;
mod service;
mod state;

pub use config::{ConfigError, ReplicaConfig};
pub use control::{ControlHandle, ControlServer};
pub use fault::{Fault, FaultError};
pub use latency::{LatencyDist, LatencyError};
pub use replica::{Replica, ReplicaController, ReplicaHandle, StartError};
pub use service::{BACKEND_HEADER, REPLICA_HEADER, REQUEST_ID_HEADER};
pub use stats::ReplicaStats;
