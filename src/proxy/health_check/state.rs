//! Per-host active health state machine, as Envoy's `ActiveHealthCheckSession` runs it.
//!
//! Envoy marks every host of a health-checked cluster `FAILED_ACTIVE_HC` when it is added, so a
//! host starts **unhealthy** and the first check decides: a single first success makes it healthy
//! (whatever `healthy_threshold` says), a first failure leaves it unhealthy.
//! After that: a non-retriable active failure (status neither expected nor retriable, or a body
//! mismatch) makes a healthy host unhealthy at once; network failures, timeouts and retriable
//! statuses count toward `unhealthy_threshold` consecutive failures; an unhealthy host needs
//! `healthy_threshold` consecutive successes. Any failure resets the success streak and any
//! success resets the failure streak.

use super::probe::ProbeResult;

/// A change of a host's active health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The host's new health.
    pub healthy: bool,
}

/// Health of one host under active checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostHealthState {
    healthy: bool,
    first_check: bool,
    num_healthy: u32,
    num_unhealthy: u32,
    healthy_threshold: u32,
    unhealthy_threshold: u32,
}

impl HostHealthState {
    /// A new host: unhealthy until its first check (thresholds are clamped to at least 1).
    pub fn new(healthy_threshold: u32, unhealthy_threshold: u32) -> Self {
        Self {
            healthy: false,
            first_check: true,
            num_healthy: 0,
            num_unhealthy: 0,
            healthy_threshold: healthy_threshold.max(1),
            unhealthy_threshold: unhealthy_threshold.max(1),
        }
    }

    /// Current health.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// True until the first probe result arrived.
    pub fn is_pending(&self) -> bool {
        self.first_check
    }

    /// A passive failure (an upstream response carried `x-envoy-immediate-health-check-fail`):
    /// Envoy's `setUnhealthy(PASSIVE, retriable = false)` — unhealthy at once, the success
    /// streak reset, so coming back takes `healthy_threshold` successful checks.
    pub fn on_passive_failure(&mut self) -> Option<Transition> {
        self.first_check = false;
        self.num_healthy = 0;
        self.num_unhealthy = 0;
        if !self.healthy {
            return None;
        }
        self.healthy = false;
        Some(Transition { healthy: false })
    }

    /// Applies one probe result; returns the transition when the health changed.
    pub fn on_probe(&mut self, result: ProbeResult) -> Option<Transition> {
        let first = std::mem::replace(&mut self.first_check, false);
        match result {
            ProbeResult::Success => {
                self.num_unhealthy = 0;
                if self.healthy {
                    return None;
                }
                self.num_healthy += 1;
                if first || self.num_healthy >= self.healthy_threshold {
                    self.healthy = true;
                    self.num_healthy = 0;
                    return Some(Transition { healthy: true });
                }
                None
            }
            failure => {
                self.num_healthy = 0;
                if !self.healthy {
                    return None;
                }
                self.num_unhealthy += 1;
                let immediate = failure == ProbeResult::Failed;
                if immediate || self.num_unhealthy >= self.unhealthy_threshold {
                    self.healthy = false;
                    self.num_unhealthy = 0;
                    return Some(Transition { healthy: false });
                }
                None
            }
        }
    }
}
