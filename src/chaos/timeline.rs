//! The fault timeline: which faults are active on which replica at each moment of a run, and a
//! runner that applies them on schedule through a runtime's [`FaultTarget`].
//!
//! At every start or end, the whole set of faults active on each affected replica is computed
//! again and handed to the target, so overlapping faults (latency during a partition) compose
//! and an ending fault never cancels another that is still running.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::scenario::spec::{FaultKind, ScenarioSpec};

/// Applies faults to one runtime (in-process backends and relays, or containers).
pub trait FaultTarget: Send + Sync {
    /// Makes `active` the complete set of faults on `backend` (`ns/name`) replica `replica`.
    fn apply<'a>(
        &'a self,
        backend: &'a str,
        replica: usize,
        active: &'a [FaultKind],
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

/// A fault starting or ending, as recorded for reports and charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEvent {
    /// Seconds since the run started (scheduled time).
    pub at_s: f64,
    /// Seconds since the run started when it was actually applied.
    pub applied_s: f64,
    /// Index into `spec.faults`.
    pub fault: usize,
    pub backend: String,
    pub replicas: Vec<usize>,
    #[serde(rename = "type")]
    pub kind: String,
    pub edge: Edge,
    /// Why applying it failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether a fault starts or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Edge {
    Start,
    End,
}

/// One scheduled change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub at: Duration,
    pub fault: usize,
    pub edge: Edge,
}

/// Every start and end in time order; at the same instant, ends come first so that a fault that
/// ends exactly when another starts does not overlap it.
pub fn changes(spec: &ScenarioSpec) -> Vec<Change> {
    let run = spec.run_length();
    let mut out: Vec<Change> = spec
        .faults
        .iter()
        .enumerate()
        .flat_map(|(fault, f)| {
            let end = f.end(run);
            let start = Change {
                at: f.at,
                fault,
                edge: Edge::Start,
            };
            // A fault that lasts to the end of the run is lifted when the run stops.
            let stop = (end < run).then_some(Change {
                at: end,
                fault,
                edge: Edge::End,
            });
            std::iter::once(start).chain(stop)
        })
        .collect();
    out.sort_by_key(|c| (c.at, c.edge == Edge::Start, c.fault));
    out
}

/// The faults active on a replica at `t` (started at or before `t`, not yet ended).
pub fn active_at(
    spec: &ScenarioSpec,
    backend: &str,
    replica: usize,
    t: Duration,
) -> Vec<FaultKind> {
    let run = spec.run_length();
    spec.faults
        .iter()
        .filter(|f| backend_key(f) == backend && f.affects(replica))
        .filter(|f| f.at <= t && t < f.end(run))
        .map(|f| f.kind)
        .collect()
}

fn backend_key(f: &crate::scenario::spec::FaultSpec) -> String {
    format!("{}/{}", f.backend.namespace, f.backend.name)
}

/// The replicas a fault touches.
fn replicas_of(spec: &ScenarioSpec, fault: usize) -> Vec<usize> {
    let f = &spec.faults[fault];
    let count = spec
        .backends
        .iter()
        .find(|b| b.namespace == f.backend.namespace && b.name == f.backend.name)
        .map_or(0, |b| b.replicas);
    (0..count).filter(|&r| f.affects(r)).collect()
}

/// Applies every change at its time until the list is done or `cancel` fires; returns what was
/// applied, when, and any failure.
pub async fn run_timeline(
    spec: &ScenarioSpec,
    run_start: Instant,
    target: &dyn FaultTarget,
    cancel: CancellationToken,
) -> Vec<TimelineEvent> {
    let mut events = Vec::new();
    let all = changes(spec);
    // Changes at the same instant are applied together: each replica gets its new set once.
    for batch in all.chunk_by(|a, b| a.at == b.at) {
        let at = batch[0].at;
        tokio::select! {
            _ = tokio::time::sleep_until(run_start + at) => {}
            _ = cancel.cancelled() => break,
        }
        let mut touched: Vec<(String, usize)> = Vec::new();
        for change in batch {
            let backend = backend_key(&spec.faults[change.fault]);
            for replica in replicas_of(spec, change.fault) {
                if !touched.contains(&(backend.clone(), replica)) {
                    touched.push((backend.clone(), replica));
                }
            }
        }
        let mut failures: Vec<(String, usize, String)> = Vec::new();
        for (backend, replica) in &touched {
            let active = active_at(spec, backend, *replica, at);
            if let Err(e) = target.apply(backend, *replica, &active).await {
                failures.push((backend.clone(), *replica, e));
            }
        }
        let applied_s = run_start.elapsed().as_secs_f64();
        for change in batch {
            let fault = &spec.faults[change.fault];
            let backend = backend_key(fault);
            let replicas = replicas_of(spec, change.fault);
            let error = failures
                .iter()
                .find(|(b, r, _)| *b == backend && replicas.contains(r))
                .map(|(_, r, e)| format!("replica {r}: {e}"));
            events.push(TimelineEvent {
                at_s: at.as_secs_f64(),
                applied_s,
                fault: change.fault,
                backend,
                replicas,
                kind: fault.kind.type_name().to_string(),
                edge: change.edge,
                error,
            });
        }
    }
    events
}

#[cfg(test)]
mod tests;
