//! Circuit-breaker counters (Envoy's cluster `ResourceManager`) with RAII guards.
//!
//! Limits reject at once: `try_acquire` never waits. The returned guard gives the slot back in
//! `Drop`, so no early return can leak a slot.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

use crate::proxy::config::CircuitBreakerThresholds;

/// One counted resource with a maximum.
#[derive(Debug)]
pub struct Resource {
    max: u64,
    current: AtomicU64,
}

/// The four DEFAULT-priority resources of a cluster, plus the wake-up for pending requests.
#[derive(Debug)]
pub struct ClusterResources {
    /// `max_connections`.
    pub connections: Arc<Resource>,
    /// `max_pending_requests`.
    pub pending_requests: Arc<Resource>,
    /// `max_requests`.
    pub requests: Arc<Resource>,
    /// `max_retries`.
    pub retries: Arc<Resource>,
    /// `per_host_thresholds.max_connections`.
    pub per_host_max_connections: u64,
    /// Woken whenever a connection becomes idle or a connection slot frees up.
    pub capacity: Notify,
}

/// A held slot of a [`Resource`]; dropping it releases the slot.
#[derive(Debug)]
#[must_use = "dropping the guard releases the slot at once"]
pub struct ResourceGuard {
    resource: Arc<Resource>,
}

impl Resource {
    /// A resource allowing `max` concurrent holders.
    pub fn new(max: u64) -> Self {
        Resource {
            max,
            current: AtomicU64::new(0),
        }
    }

    /// Takes a slot when one is free; `None` means overflow.
    pub fn try_acquire(self: &Arc<Self>) -> Option<ResourceGuard> {
        self.current
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                (c < self.max).then_some(c + 1)
            })
            .ok()
            .map(|_| ResourceGuard {
                resource: Arc::clone(self),
            })
    }

    /// Takes a slot only while fewer than `max` are in use (a dynamic limit such as a retry
    /// budget, instead of the configured maximum).
    pub fn try_acquire_below(self: &Arc<Self>, max: u64) -> Option<ResourceGuard> {
        self.current
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                (c < max).then_some(c + 1)
            })
            .ok()
            .map(|_| ResourceGuard {
                resource: Arc::clone(self),
            })
    }

    /// Takes a slot even beyond the limit (Envoy lets a host's pool open its first
    /// connection whatever `max_connections` says).
    pub fn force_acquire(self: &Arc<Self>) -> ResourceGuard {
        self.current.fetch_add(1, Ordering::AcqRel);
        ResourceGuard {
            resource: Arc::clone(self),
        }
    }

    /// Slots in use.
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    /// The limit.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Whether the breaker is open (no free slot), Envoy's `circuit_breakers.default.*_open`.
    pub fn is_open(&self) -> bool {
        self.current() >= self.max
    }
}

impl ClusterResources {
    /// Resources sized by the thresholds.
    pub fn new(t: &CircuitBreakerThresholds) -> Self {
        ClusterResources {
            connections: Arc::new(Resource::new(u64::from(t.max_connections))),
            pending_requests: Arc::new(Resource::new(u64::from(t.max_pending_requests))),
            requests: Arc::new(Resource::new(u64::from(t.max_requests))),
            retries: Arc::new(Resource::new(u64::from(t.max_retries))),
            per_host_max_connections: u64::from(t.per_host_max_connections),
            capacity: Notify::new(),
        }
    }
}

impl Drop for ResourceGuard {
    fn drop(&mut self) {
        self.resource.current.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_at_max_and_releases_on_drop() {
        let r = Arc::new(Resource::new(2));
        let a = r.try_acquire().unwrap();
        let b = r.try_acquire().unwrap();
        assert!(r.try_acquire().is_none());
        assert!(r.is_open());
        drop(a);
        assert_eq!(r.current(), 1);
        let c = r.try_acquire();
        assert!(c.is_some());
        drop((b, c));
        assert_eq!(r.current(), 0);
    }

    #[test]
    fn dynamic_and_forced_slots_are_released() {
        let r = Arc::new(Resource::new(1));
        let a = r.try_acquire_below(2).unwrap();
        let b = r.try_acquire_below(2).unwrap();
        assert!(r.try_acquire_below(2).is_none());
        let c = r.force_acquire();
        assert_eq!(r.current(), 3);
        drop((a, b, c));
        assert_eq!(r.current(), 0);
    }

    #[test]
    fn zero_limit_always_rejects() {
        let r = Arc::new(Resource::new(0));
        assert!(r.try_acquire().is_none());
        assert_eq!(r.current(), 0);
    }
}
