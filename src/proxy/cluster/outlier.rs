//! Outlier detection (passive health checking), following Envoy's detector.
//!
//! Per-request results feed per-host atomic counters; only a detection (a counter reaching its
//! threshold) or the interval timer takes the detector's lock. Ejection lasts
//! `base_ejection_time × ejection count` (capped), and the multiplier decays while the host
//! stays healthy.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::{Instant, MissedTickBehavior};

use super::host_set::{HealthFlag, Host, HostSet};
use crate::proxy::config::{OutlierDetectionConfig, Percent};
use crate::proxy::rng::SharedRng;
use crate::proxy::stats::ClusterStats;

/// Per-host counters updated on the request path.
#[derive(Debug, Default)]
pub struct HostOutlierCounters {
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    consecutive_local: AtomicU32,
    interval_success: AtomicU64,
    interval_failure: AtomicU64,
}

/// What one attempt to a host produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The host answered with this HTTP status (an external result).
    Response(u16),
    /// A local-origin failure (connect failure/timeout, reset, timeout), with the HTTP status
    /// Envoy maps it to when errors are not split (503 or 504).
    LocalFailure(u16),
}

/// Which detector fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detector {
    /// `consecutive_5xx`.
    Consecutive5xx,
    /// `consecutive_gateway_failure`.
    ConsecutiveGatewayFailure,
    /// `consecutive_local_origin_failure`.
    ConsecutiveLocalOriginFailure,
    /// `failure_percentage`.
    FailurePercentage,
    /// `success_rate`.
    SuccessRate,
}

/// The outlier detector of one cluster.
#[derive(Debug)]
pub struct OutlierDetector {
    config: OutlierDetectionConfig,
    hosts: Arc<HostSet>,
    stats: Arc<ClusterStats>,
    rng: SharedRng,
    state: Mutex<Vec<EjectionState>>,
}

/// Ejection bookkeeping of one host.
#[derive(Debug, Clone, Copy, Default)]
struct EjectionState {
    /// Envoy's ejection-time multiplier.
    multiplier: u32,
    ejected_at: Option<Instant>,
}

impl OutlierDetector {
    /// A detector over `hosts`.
    pub fn new(
        config: OutlierDetectionConfig,
        hosts: Arc<HostSet>,
        stats: Arc<ClusterStats>,
        rng: SharedRng,
    ) -> Self {
        let n = hosts.hosts().len();
        OutlierDetector {
            config,
            hosts,
            stats,
            rng,
            state: Mutex::new(vec![EjectionState::default(); n]),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OutlierDetectionConfig {
        &self.config
    }

    /// Records one attempt's result for `host`.
    pub fn report(&self, host: &Host, outcome: Outcome) {
        let c = &host.outlier;
        let split = self.config.split_external_local_origin_errors;
        match outcome {
            Outcome::Response(status) => {
                if status >= 500 {
                    c.interval_failure.fetch_add(1, Ordering::Relaxed);
                } else {
                    c.interval_success.fetch_add(1, Ordering::Relaxed);
                }
                if split {
                    // An answer proves the connection worked.
                    c.consecutive_local.store(0, Ordering::Relaxed);
                }
                self.external(host, status);
            }
            Outcome::LocalFailure(mapped) => {
                if split {
                    // Split mode keeps local-origin errors out of the external statistics.
                    if let Some(t) = self.config.consecutive_local_origin_failure
                        && bump(&c.consecutive_local) == t.get()
                    {
                        c.consecutive_local.store(0, Ordering::Relaxed);
                        self.detected(host.index, Detector::ConsecutiveLocalOriginFailure);
                    }
                } else {
                    c.interval_failure.fetch_add(1, Ordering::Relaxed);
                    self.external(host, mapped);
                }
            }
        }
    }

    fn external(&self, host: &Host, status: u16) {
        let c = &host.outlier;
        if status >= 500 {
            if let Some(t) = self.config.consecutive_5xx
                && bump(&c.consecutive_5xx) == t.get()
            {
                c.consecutive_5xx.store(0, Ordering::Relaxed);
                self.detected(host.index, Detector::Consecutive5xx);
            }
        } else {
            c.consecutive_5xx.store(0, Ordering::Relaxed);
        }
        if matches!(status, 502..=504) {
            if let Some(t) = self.config.consecutive_gateway_failure
                && bump(&c.consecutive_gateway) == t.get()
            {
                c.consecutive_gateway.store(0, Ordering::Relaxed);
                self.detected(host.index, Detector::ConsecutiveGatewayFailure);
            }
        } else {
            c.consecutive_gateway.store(0, Ordering::Relaxed);
        }
    }

    /// A detector fired for host `index`: count it and eject when enforcement and the
    /// max-ejection check allow.
    fn detected(&self, index: usize, detector: Detector) {
        let (detected, enforced, enforcing) = self.detector_stats(detector);
        detected.inc();
        if !self.roll(enforcing) {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.get(index).is_none_or(|s| s.ejected_at.is_some()) {
            return;
        }
        let ejected = state.iter().filter(|s| s.ejected_at.is_some()).count() as u64;
        let total = state.len() as u64;
        let max = u64::from(self.config.max_ejection_percent.get());
        let allowed = 100 * (ejected + 1) <= max * total
            || (self.config.always_eject_one_host && ejected == 0);
        if !allowed {
            self.stats.ejections_overflow.inc();
            tracing::debug!(
                host = index,
                ?detector,
                "outlier ejection skipped: max ejection percent"
            );
            return;
        }
        let now = Instant::now();
        if let Some(s) = state.get_mut(index) {
            s.multiplier = s.multiplier.saturating_add(1);
            s.ejected_at = Some(now);
        }
        drop(state);
        self.hosts
            .set_health_flag(index, HealthFlag::FailedOutlierCheck, true);
        self.stats.ejections_active.inc();
        self.stats.ejections_enforced_total.inc();
        enforced.inc();
        tracing::info!(host = index, ?detector, "outlier detection ejected host");
    }

    /// The interval timer: return hosts whose ejection time is over, decay multipliers, run
    /// the failure-percentage detector, and start a new interval.
    pub fn on_interval(&self) {
        let now = Instant::now();
        let base = self.config.base_ejection_time;
        let cap = self.config.max_ejection_time.max(base);
        let mut returned = Vec::new();
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            for (i, s) in state.iter_mut().enumerate() {
                match s.ejected_at {
                    Some(at) => {
                        let duration = base.saturating_mul(s.multiplier.max(1)).min(cap);
                        if now >= at + duration {
                            s.ejected_at = None;
                            returned.push(i);
                        }
                    }
                    None => s.multiplier = s.multiplier.saturating_sub(1),
                }
            }
        }
        for i in returned {
            self.hosts
                .set_health_flag(i, HealthFlag::FailedOutlierCheck, false);
            self.stats.ejections_active.dec();
            tracing::info!(host = i, "outlier detection returned host");
        }
        self.success_rate();
        self.failure_percentage();
        for h in self.hosts.hosts() {
            h.outlier.interval_success.store(0, Ordering::Relaxed);
            h.outlier.interval_failure.store(0, Ordering::Relaxed);
        }
    }

    /// Envoy's success-rate detector: among hosts with enough volume (and enough such hosts),
    /// eject those whose success rate is below mean − factor × standard deviation.
    fn success_rate(&self) {
        let Some(sr) = self.config.success_rate else {
            return;
        };
        let rates: Vec<(usize, f64)> = self
            .hosts
            .hosts()
            .iter()
            .filter_map(|h| {
                let ok = h.outlier.interval_success.load(Ordering::Relaxed);
                let bad = h.outlier.interval_failure.load(Ordering::Relaxed);
                let total = ok + bad;
                (total >= u64::from(sr.request_volume) && total > 0)
                    .then(|| (h.index, 100.0 * ok as f64 / total as f64))
            })
            .collect();
        if rates.is_empty() || (rates.len() as u64) < u64::from(sr.minimum_hosts) {
            return;
        }
        let n = rates.len() as f64;
        let mean = rates.iter().map(|(_, r)| r).sum::<f64>() / n;
        let variance = rates.iter().map(|(_, r)| (r - mean).powi(2)).sum::<f64>() / n;
        let threshold = mean - sr.stdev_factor * variance.sqrt();
        for (i, rate) in rates {
            if rate < threshold {
                self.detected(i, Detector::SuccessRate);
            }
        }
    }

    fn failure_percentage(&self) {
        let Some(fp) = self.config.failure_percentage else {
            return;
        };
        let volumes: Vec<(usize, u64, u64)> = self
            .hosts
            .hosts()
            .iter()
            .map(|h| {
                let ok = h.outlier.interval_success.load(Ordering::Relaxed);
                let bad = h.outlier.interval_failure.load(Ordering::Relaxed);
                (h.index, ok + bad, bad)
            })
            .filter(|(_, total, _)| *total >= u64::from(fp.request_volume))
            .collect();
        if (volumes.len() as u64) < u64::from(fp.minimum_hosts) {
            return;
        }
        for (i, total, bad) in volumes {
            if 100 * bad >= u64::from(fp.threshold.get()) * total {
                self.detected(i, Detector::FailurePercentage);
            }
        }
    }

    /// Returns an ejected host at once (an active health check succeeded).
    pub fn uneject(&self, index: usize) {
        let was = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state
                .get_mut(index)
                .and_then(|s| s.ejected_at.take())
                .is_some()
        };
        if was {
            self.hosts
                .set_health_flag(index, HealthFlag::FailedOutlierCheck, false);
            self.stats.ejections_active.dec();
        }
    }

    /// Whether host `index` is ejected, and since when.
    pub fn ejected_since(&self, index: usize) -> Option<Instant> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(index)
            .and_then(|s| s.ejected_at)
    }

    /// Ticks [`Self::on_interval`] every `interval` until the task is aborted.
    pub async fn run(self: Arc<Self>) {
        let period = self.config.interval;
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.on_interval();
        }
    }

    fn detector_stats(
        &self,
        d: Detector,
    ) -> (
        &crate::proxy::stats::Counter,
        &crate::proxy::stats::Counter,
        Percent,
    ) {
        let s = &self.stats;
        let c = &self.config;
        match d {
            Detector::Consecutive5xx => (
                &s.ejections_detected_consecutive_5xx,
                &s.ejections_enforced_consecutive_5xx,
                c.enforcing_consecutive_5xx,
            ),
            Detector::ConsecutiveGatewayFailure => (
                &s.ejections_detected_consecutive_gateway_failure,
                &s.ejections_enforced_consecutive_gateway_failure,
                c.enforcing_consecutive_gateway_failure,
            ),
            Detector::ConsecutiveLocalOriginFailure => (
                &s.ejections_detected_consecutive_local_origin_failure,
                &s.ejections_enforced_consecutive_local_origin_failure,
                c.enforcing_consecutive_local_origin_failure,
            ),
            Detector::FailurePercentage => (
                &s.ejections_detected_failure_percentage,
                &s.ejections_enforced_failure_percentage,
                c.failure_percentage
                    .map_or(Percent::HUNDRED, |f| f.enforcing),
            ),
            Detector::SuccessRate => (
                &s.ejections_detected_success_rate,
                &s.ejections_enforced_success_rate,
                c.success_rate.map_or(Percent::HUNDRED, |f| f.enforcing),
            ),
        }
    }

    /// Whether an enforcing percentage lets this detection eject (100 always, 0 never).
    fn roll(&self, p: Percent) -> bool {
        match p.get() {
            100 => true,
            0 => false,
            p => self.rng.below(100) < u64::from(p),
        }
    }
}

/// Increments and returns the new value.
fn bump(a: &AtomicU32) -> u32 {
    a.fetch_add(1, Ordering::Relaxed).saturating_add(1)
}

#[cfg(test)]
mod tests;
