//! Replica counters: atomics on the request path, a plain snapshot for callers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// A snapshot of a replica's counters. Counters add up across kill/restart cycles (they describe
/// what the replica saw during the run); gauges describe the current incarnation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStats {
    /// Requests received on any path but the health path.
    pub requests: u64,
    /// Requests received on the health path.
    pub health_checks: u64,
    /// Requests answered with an injected error (an `error` fault or `errorRate`).
    pub injected_errors: u64,
    /// Connections reset by a `reset` fault.
    pub resets: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Connections open now.
    pub active_connections: u64,
    /// Requests received and not yet answered (or abandoned).
    pub in_flight: u64,
    /// Requests held by a `hang` fault now.
    pub hanging: u64,
    /// Times the replica came back after a `kill` fault.
    pub restarts: u64,
    /// Whether the listener is open (false while killed or shut down).
    pub up: bool,
}

/// The live counters behind [`ReplicaStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    health_checks: AtomicU64,
    injected_errors: AtomicU64,
    resets: AtomicU64,
    connections: AtomicU64,
    active_connections: AtomicU64,
    in_flight: AtomicU64,
    hanging: AtomicU64,
    restarts: AtomicU64,
    up: AtomicBool,
    /// Numbers requests so each gets its own RNG stream.
    sequence: AtomicU64,
}

/// Decrements a gauge when dropped, so no early return or cancellation leaks a count.
#[must_use]
pub(crate) struct GaugeGuard<'a>(&'a AtomicU64);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counters {
    /// Counts a request and holds it in flight until the guard drops.
    pub(crate) fn request(&self, is_health: bool) -> GaugeGuard<'_> {
        let counter = if is_health {
            &self.health_checks
        } else {
            &self.requests
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Self::raise(&self.in_flight)
    }

    /// Counts an accepted connection and holds it open until the guard drops.
    pub(crate) fn connection(&self) -> GaugeGuard<'_> {
        self.connections.fetch_add(1, Ordering::Relaxed);
        Self::raise(&self.active_connections)
    }

    /// Holds a request as hanging until the guard drops.
    pub(crate) fn hanging(&self) -> GaugeGuard<'_> {
        Self::raise(&self.hanging)
    }

    pub(crate) fn injected_error(&self) {
        self.injected_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reset(&self) {
        self.resets.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub(crate) fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> ReplicaStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ReplicaStats {
            requests: get(&self.requests),
            health_checks: get(&self.health_checks),
            injected_errors: get(&self.injected_errors),
            resets: get(&self.resets),
            connections: get(&self.connections),
            active_connections: get(&self.active_connections),
            in_flight: get(&self.in_flight),
            hanging: get(&self.hanging),
            restarts: get(&self.restarts),
            up: self.is_up(),
        }
    }

    fn raise(gauge: &AtomicU64) -> GaugeGuard<'_> {
        gauge.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(gauge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_give_gauges_back() {
        let counters = Counters::default();
        {
            let _conn = counters.connection();
            let _req = counters.request(false);
            let _health = counters.request(true);
            let _hang = counters.hanging();
            let stats = counters.snapshot();
            assert_eq!(
                (stats.active_connections, stats.in_flight, stats.hanging),
                (1, 2, 1)
            );
        }
        let stats = counters.snapshot();
        assert_eq!(
            (stats.active_connections, stats.in_flight, stats.hanging),
            (0, 0, 0)
        );
        assert_eq!(
            (stats.connections, stats.requests, stats.health_checks),
            (1, 1, 1)
        );
    }
}
