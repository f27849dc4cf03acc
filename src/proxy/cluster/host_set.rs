//! The hosts of a cluster: per-host atomics, health flags and the healthy-host snapshot.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::outlier::HostOutlierCounters;
use super::pool::HostPool;
use crate::proxy::config::Endpoint;

/// Why a host is unhealthy (Envoy `health_flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HealthFlag {
    /// `/failed_outlier_check`: ejected by outlier detection.
    FailedOutlierCheck = 1,
    /// `/failed_active_hc`: failing active health checks.
    FailedActiveHc = 2,
    /// `/excluded_via_immediate_hc_fail`: an upstream response carried
    /// `x-envoy-immediate-health-check-fail`. Envoy excludes such a host from load balancing
    /// altogether: it does not count toward a priority's host total (panic mode and priority
    /// load are computed over the remaining hosts) and is not picked in panic mode either.
    /// Cleared when active checks bring the host back.
    ExcludedViaImmediateHcFail = 4,
}

/// One upstream endpoint with its live state.
#[derive(Debug)]
pub struct Host {
    /// Static endpoint data.
    pub endpoint: Endpoint,
    /// The endpoint's backend label (`ns/name`), shared so logs need not copy it.
    pub backend: Arc<str>,
    /// Index in the cluster's host list.
    pub index: usize,
    rq_active: AtomicU64,
    rq_total: AtomicU64,
    rq_error: AtomicU64,
    cx_active: AtomicU64,
    health: AtomicU8,
    /// Milliseconds since the host set's epoch when slow start (re)started for this host.
    slow_start_since_ms: AtomicU64,
    pub(crate) pool: HostPool,
    pub(crate) outlier: HostOutlierCounters,
}

/// All hosts of a cluster plus the current list of healthy ones.
#[derive(Debug)]
pub struct HostSet {
    hosts: Vec<Arc<Host>>,
    epoch: Instant,
    all: Arc<[usize]>,
    snapshot: RwLock<Arc<HealthSnapshot>>,
}

/// Which hosts are healthy, overall and per priority level; replaced whole on every change.
#[derive(Debug)]
pub struct HealthSnapshot {
    /// Healthy host indices.
    pub healthy: Arc<[usize]>,
    /// Per priority level, highest (0) first.
    pub levels: Vec<PriorityLevel>,
}

/// The hosts of one priority level.
#[derive(Debug)]
pub struct PriorityLevel {
    /// Every host of the level, except excluded ones.
    pub all: Arc<[usize]>,
    /// Its healthy hosts.
    pub healthy: Arc<[usize]>,
}

/// Decrements a host's active-request count when dropped.
#[derive(Debug)]
pub struct ActiveRequest {
    host: Arc<Host>,
}

impl Host {
    /// Requests in flight on this host.
    pub fn rq_active(&self) -> u64 {
        self.rq_active.load(Ordering::Relaxed)
    }

    /// Requests sent to this host so far.
    pub fn rq_total(&self) -> u64 {
        self.rq_total.load(Ordering::Relaxed)
    }

    /// Requests to this host that ended in a 5xx or a local-origin failure.
    pub fn rq_error(&self) -> u64 {
        self.rq_error.load(Ordering::Relaxed)
    }

    /// Open connections (including connecting ones).
    pub fn cx_active(&self) -> u64 {
        self.cx_active.load(Ordering::Relaxed)
    }

    pub(crate) fn cx_inc(&self) {
        self.cx_active.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn cx_dec(&self) {
        self.cx_active.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn count_error(&self) {
        self.rq_error.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether `flag` is set.
    pub fn has_flag(&self, flag: HealthFlag) -> bool {
        self.health.load(Ordering::Acquire) & flag as u8 != 0
    }

    /// Whether no health flag is set.
    pub fn is_healthy(&self) -> bool {
        self.health.load(Ordering::Acquire) == 0
    }

    /// Envoy's `/clusters` health_flags text (`healthy` or `/failed_...` joined).
    pub fn health_flags_text(&self) -> String {
        if self.is_healthy() {
            return "healthy".to_string();
        }
        let mut s = String::new();
        if self.has_flag(HealthFlag::FailedActiveHc) {
            s.push_str("/failed_active_hc");
        }
        if self.has_flag(HealthFlag::FailedOutlierCheck) {
            s.push_str("/failed_outlier_check");
        }
        if self.has_flag(HealthFlag::ExcludedViaImmediateHcFail) {
            s.push_str("/excluded_via_immediate_hc_fail");
        }
        s
    }

    /// Marks one more request in flight until the returned guard drops.
    pub fn start_request(self: &Arc<Self>) -> ActiveRequest {
        self.rq_active.fetch_add(1, Ordering::Relaxed);
        self.rq_total.fetch_add(1, Ordering::Relaxed);
        ActiveRequest {
            host: Arc::clone(self),
        }
    }
}

impl HostSet {
    /// Hosts for the endpoints, all healthy, all starting their slow start now.
    pub fn new(endpoints: &[Endpoint]) -> Self {
        let hosts: Vec<Arc<Host>> = endpoints
            .iter()
            .enumerate()
            .map(|(index, e)| {
                Arc::new(Host {
                    endpoint: e.clone(),
                    backend: Arc::from(e.backend.as_str()),
                    index,
                    rq_active: AtomicU64::new(0),
                    rq_total: AtomicU64::new(0),
                    rq_error: AtomicU64::new(0),
                    cx_active: AtomicU64::new(0),
                    health: AtomicU8::new(0),
                    slow_start_since_ms: AtomicU64::new(0),
                    pool: HostPool::default(),
                    outlier: HostOutlierCounters::default(),
                })
            })
            .collect();
        let all: Arc<[usize]> = (0..hosts.len()).collect();
        let snapshot = RwLock::new(Arc::new(HealthSnapshot::of(&hosts)));
        HostSet {
            hosts,
            epoch: Instant::now(),
            all,
            snapshot,
        }
    }

    /// All hosts.
    pub fn hosts(&self) -> &[Arc<Host>] {
        &self.hosts
    }

    /// Indices of every host (`0..n`).
    pub fn all(&self) -> &Arc<[usize]> {
        &self.all
    }

    /// Indices of the hosts without health flags (an immutable snapshot).
    pub fn healthy(&self) -> Arc<[usize]> {
        Arc::clone(&self.snapshot().healthy)
    }

    /// The current health snapshot.
    pub fn snapshot(&self) -> Arc<HealthSnapshot> {
        Arc::clone(&self.current())
    }

    /// The current health snapshot, read-locked: what a host pick reads without taking a
    /// reference (health changes wait for it, and a pick never waits for anything).
    pub fn current(&self) -> RwLockReadGuard<'_, Arc<HealthSnapshot>> {
        self.snapshot.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets or clears a health flag; returns whether it changed. When an active health check
    /// brings a host back, its slow start begins again, as in Envoy.
    pub fn set_health_flag(&self, index: usize, flag: HealthFlag, on: bool) -> bool {
        let Some(host) = self.hosts.get(index) else {
            return false;
        };
        let bit = flag as u8;
        let before = if on {
            host.health.fetch_or(bit, Ordering::AcqRel)
        } else {
            host.health.fetch_and(!bit, Ordering::AcqRel)
        };
        let changed = (before & bit != 0) != on;
        if changed {
            if !on && flag == HealthFlag::FailedActiveHc {
                host.slow_start_since_ms
                    .store(self.millis_since_epoch(), Ordering::Relaxed);
            }
            self.refresh();
        }
        changed
    }

    /// How long the host has been in its current slow-start period.
    pub fn slow_start_elapsed(&self, host: &Host) -> Duration {
        let since = host.slow_start_since_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.millis_since_epoch().saturating_sub(since))
    }

    fn millis_since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn refresh(&self) {
        let snapshot = Arc::new(HealthSnapshot::of(&self.hosts));
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = snapshot;
    }
}

impl HealthSnapshot {
    fn of(hosts: &[Arc<Host>]) -> Self {
        let healthy: Arc<[usize]> = hosts
            .iter()
            .filter(|h| h.is_healthy())
            .map(|h| h.index)
            .collect();
        let mut priorities: Vec<u32> = hosts.iter().map(|h| h.endpoint.priority).collect();
        priorities.sort_unstable();
        priorities.dedup();
        let levels = priorities
            .into_iter()
            .map(|p| {
                let all: Arc<[usize]> = hosts
                    .iter()
                    .filter(|h| h.endpoint.priority == p)
                    .filter(|h| !h.has_flag(HealthFlag::ExcludedViaImmediateHcFail))
                    .map(|h| h.index)
                    .collect();
                let healthy: Arc<[usize]> = all
                    .iter()
                    .copied()
                    .filter(|&i| hosts[i].is_healthy())
                    .collect();
                PriorityLevel { all, healthy }
            })
            .collect();
        HealthSnapshot { healthy, levels }
    }
}

impl ActiveRequest {
    /// The host this request runs on.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.host.rq_active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> HostSet {
        let eps: Vec<Endpoint> = (0..n)
            .map(|i| Endpoint::new(([127, 0, 0, 1], 1000 + i as u16).into(), "default/b", i))
            .collect();
        HostSet::new(&eps)
    }

    #[tokio::test(start_paused = true)]
    async fn health_flags_update_the_snapshot() {
        let s = set(3);
        assert_eq!(&*s.healthy(), &[0, 1, 2]);
        assert!(s.set_health_flag(1, HealthFlag::FailedOutlierCheck, true));
        assert!(!s.set_health_flag(1, HealthFlag::FailedOutlierCheck, true));
        assert!(s.set_health_flag(1, HealthFlag::FailedActiveHc, true));
        assert_eq!(&*s.healthy(), &[0, 2]);
        assert_eq!(
            s.hosts()[1].health_flags_text(),
            "/failed_active_hc/failed_outlier_check"
        );
        s.set_health_flag(1, HealthFlag::FailedOutlierCheck, false);
        assert_eq!(&*s.healthy(), &[0, 2]);
        tokio::time::advance(Duration::from_secs(5)).await;
        s.set_health_flag(1, HealthFlag::FailedActiveHc, false);
        assert_eq!(&*s.healthy(), &[0, 1, 2]);
        assert_eq!(s.slow_start_elapsed(&s.hosts()[1]), Duration::ZERO);
        assert_eq!(s.slow_start_elapsed(&s.hosts()[0]), Duration::from_secs(5));
    }

    #[test]
    fn excluded_hosts_leave_the_level() {
        let s = set(3);
        s.set_health_flag(1, HealthFlag::FailedActiveHc, true);
        s.set_health_flag(1, HealthFlag::ExcludedViaImmediateHcFail, true);
        let snap = s.snapshot();
        assert_eq!(&*snap.levels[0].all, &[0, 2]);
        assert_eq!(&*snap.levels[0].healthy, &[0, 2]);
        assert_eq!(
            s.hosts()[1].health_flags_text(),
            "/failed_active_hc/excluded_via_immediate_hc_fail"
        );
    }

    #[test]
    fn active_request_guard_counts() {
        let s = set(1);
        let h = &s.hosts()[0];
        let g = h.start_request();
        assert_eq!((h.rq_active(), h.rq_total()), (1, 1));
        drop(g);
        assert_eq!((h.rq_active(), h.rq_total()), (0, 1));
    }
}
