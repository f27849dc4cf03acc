//! Load balancing: which host of a cluster serves the next attempt.
//!
//! [`LoadBalancer::choose`] applies, in Envoy's order: the priority level (priority load with
//! overprovisioning 1.4, so fallback endpoints only get traffic when the first level degrades),
//! the level's healthy set or panic mode (§d.3),
//! the policy's pick over that set (with slow-start weights), and the retry host predicate
//! `previous_hosts` (re-pick up to 5 times to avoid hosts already tried).
//!
//! [`override_host`] runs before all of this when the cluster has endpoint-override headers.
//!
//! Consistent hashing (Maglev) takes the request's hash from [`PickContext::hash`] (computed
//! by the pipeline from the route's hash policy); without one it picks at random.
//!
//! Adding a policy means: a variant of [`crate::proxy::config::LbPolicy`], a variant of
//! `Policy` below built in [`LoadBalancer::new`], and an arm in `Policy::pick`.

mod consistent_hash;
pub mod hash;
mod least_request;
pub mod maglev;
mod round_robin;
mod weighted;

use std::sync::Arc;
use std::time::Duration;

use self::consistent_hash::ConsistentHash;
use self::least_request::LeastRequest;
use self::round_robin::RoundRobin;
use crate::proxy::cluster::host_set::{Host, HostSet, PriorityLevel};
use crate::proxy::config::{ClusterConfig, LbPolicy, Percent, SlowStart};
use crate::proxy::rng::SharedRng;
use crate::proxy::stats::ClusterStats;

/// Envoy's `host_selection_retry_max_attempts` as Envoy Gateway sets it.
pub const HOST_SELECTION_RETRY_MAX_ATTEMPTS: usize = 5;

/// Envoy's default overprovisioning factor (1.4) as a percentage multiplier.
const OVERPROVISIONING: u64 = 140;

/// Envoy's minimum slow-start weight share (`min_weight_percent`).
const SLOW_START_MIN_WEIGHT: f64 = 0.1;

/// A cluster's load balancer.
#[derive(Debug)]
pub struct LoadBalancer {
    policy: Policy,
    slow_start: Option<SlowStart>,
    panic_threshold: Percent,
    rng: SharedRng,
}

/// Per-request inputs of a pick.
#[derive(Debug, Clone, Copy, Default)]
pub struct PickContext<'a> {
    /// Hosts already tried by earlier attempts of this request (`previous_hosts`).
    pub previous_hosts: &'a [usize],
    /// The request's hash for consistent hashing (`None`: no hash input, pick at random).
    pub hash: Option<u64>,
}

/// What the policy sees: candidate hosts and how to weigh them.
pub(crate) struct Candidates<'a> {
    /// Host indices to choose from (non-empty).
    pub indices: &'a [usize],
    /// All hosts of the cluster.
    pub hosts: &'a [Arc<Host>],
    /// Effective weight of a host (endpoint weight × slow-start factor).
    pub weight: &'a dyn Fn(&Host) -> f64,
}

#[derive(Debug)]
enum Policy {
    RoundRobin(RoundRobin),
    LeastRequest(LeastRequest),
    Random,
    ConsistentHash(ConsistentHash),
}

impl LoadBalancer {
    /// The balancer configured for `cluster`.
    pub fn new(cluster: &ClusterConfig, rng: SharedRng) -> Self {
        let n = cluster.endpoints.len();
        let policy = match cluster.lb {
            LbPolicy::RoundRobin => {
                let weights: Vec<f64> = cluster
                    .endpoints
                    .iter()
                    .map(|e| f64::from(e.weight.get()))
                    .collect();
                Policy::RoundRobin(RoundRobin::new(&weights, rng.below(n.max(1) as u64)))
            }
            LbPolicy::LeastRequest { choice_count } => {
                Policy::LeastRequest(LeastRequest::new(n, choice_count))
            }
            LbPolicy::Random => Policy::Random,
            LbPolicy::ConsistentHash { table_size } => {
                Policy::ConsistentHash(ConsistentHash::new(table_size))
            }
        };
        LoadBalancer {
            policy,
            slow_start: cluster.slow_start,
            panic_threshold: cluster.panic_threshold,
            rng,
        }
    }

    /// Picks a host index; `None` means no usable host (503 `no healthy upstream`).
    pub fn choose(
        &self,
        hosts: &HostSet,
        stats: &ClusterStats,
        ctx: PickContext<'_>,
    ) -> Option<usize> {
        let snapshot = hosts.current();
        let level = match snapshot.levels.len() {
            0 => return None,
            1 => 0,
            _ => self.pick_priority(&snapshot.levels),
        };
        let PriorityLevel { all, healthy } = &snapshot.levels[level];
        // Panic mode (per priority): below the threshold, health is ignored; 0 disables it.
        let panic = 100 * healthy.len() < self.panic_threshold.get() as usize * all.len();
        let indices: &[usize] = if panic {
            stats.lb_healthy_panic.inc();
            all
        } else if healthy.is_empty() {
            return None;
        } else {
            healthy
        };
        let weight = |h: &Host| self.effective_weight(hosts, h);
        let candidates = Candidates {
            indices,
            hosts: hosts.hosts(),
            weight: &weight,
        };
        let mut pick = self.policy.pick(&candidates, &self.rng, ctx.hash, 0);
        for attempt in 1..=HOST_SELECTION_RETRY_MAX_ATTEMPTS as u32 {
            if !ctx.previous_hosts.contains(&pick) {
                break;
            }
            pick = self.policy.pick(&candidates, &self.rng, ctx.hash, attempt);
        }
        Some(pick)
    }

    /// Envoy's priority load: each level's health is `min(100, 1.4 × healthy %)` (the default
    /// overprovisioning factor); levels take traffic in order, each up to its health normalized
    /// by the total, so a degraded level spills the rest to the next. With no healthy host
    /// anywhere, everything goes to the highest level.
    fn pick_priority(&self, levels: &[PriorityLevel]) -> usize {
        let health: Vec<u64> = levels
            .iter()
            .map(|l| {
                let total = l.all.len().max(1) as u64;
                (OVERPROVISIONING * l.healthy.len() as u64 / total).min(100)
            })
            .collect();
        let total_health = health.iter().sum::<u64>().min(100);
        if total_health == 0 {
            return 0;
        }
        let mut remaining = 100u64;
        let loads: Vec<u64> = health
            .iter()
            .map(|h| {
                let load = (h * 100 / total_health).min(remaining);
                remaining -= load;
                load
            })
            .collect();
        let sum: u64 = loads.iter().sum();
        let mut ticket = self.rng.below(sum.max(1));
        for (i, load) in loads.iter().enumerate() {
            if ticket < *load {
                return i;
            }
            ticket -= load;
        }
        0
    }

    /// Endpoint weight scaled by slow start: `max(10 %, max(elapsed, 1 s) / window)` while the
    /// host is inside its window (aggression 1.0, so the ramp is linear).
    fn effective_weight(&self, hosts: &HostSet, host: &Host) -> f64 {
        let w = f64::from(host.endpoint.weight.get());
        match self.slow_start {
            Some(ss) => w * slow_start_factor(hosts.slow_start_elapsed(host), ss.window),
            None => w,
        }
    }
}

/// Envoy's endpoint override: the first endpoint named in the request's override headers
/// (`IP:Port[,IP:Port...]`) that is healthy and not yet tried by this request.
pub fn override_host(
    headers_to_read: &[http::HeaderName],
    request: &http::HeaderMap,
    hosts: &HostSet,
    previous_hosts: &[usize],
) -> Option<usize> {
    headers_to_read
        .iter()
        .flat_map(|name| request.get_all(name))
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<std::net::SocketAddr>().ok())
        .find_map(|addr| {
            hosts
                .hosts()
                .iter()
                .find(|h| {
                    h.endpoint.addr == addr && h.is_healthy() && !previous_hosts.contains(&h.index)
                })
                .map(|h| h.index)
        })
}

/// The slow-start multiplier for a host that has been up for `elapsed`.
pub fn slow_start_factor(elapsed: Duration, window: Duration) -> f64 {
    if elapsed >= window {
        return 1.0;
    }
    let t = elapsed.max(Duration::from_secs(1)).as_secs_f64() / window.as_secs_f64();
    t.clamp(SLOW_START_MIN_WEIGHT, 1.0)
}

impl Policy {
    /// One pick; `attempt` is the host-selection retry (it perturbs the hash).
    fn pick(&self, c: &Candidates<'_>, rng: &SharedRng, hash: Option<u64>, attempt: u32) -> usize {
        match self {
            Policy::RoundRobin(rr) => rr.pick(c),
            Policy::LeastRequest(lr) => lr.pick(c, rng),
            Policy::Random => random_pick(c, rng),
            Policy::ConsistentHash(ch) => hash
                .and_then(|h| ch.pick(c, h, attempt))
                .unwrap_or_else(|| random_pick(c, rng)),
        }
    }
}

/// Uniform over the candidates.
fn random_pick(c: &Candidates<'_>, rng: &SharedRng) -> usize {
    c.indices[rng.below(c.indices.len() as u64) as usize]
}

#[cfg(test)]
mod tests;
