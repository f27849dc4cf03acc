//! Weighted round robin (Envoy `round_robin`).

use super::Candidates;
use super::weighted::SmoothWeighted;

/// Weighted round robin over the candidates.
#[derive(Debug)]
pub(crate) struct RoundRobin {
    schedule: SmoothWeighted,
}

impl RoundRobin {
    /// A schedule over `n` hosts with these static weights, advanced by `offset` picks: Envoy
    /// starts round robin at a random position so that proxies do not move in lockstep.
    pub fn new(weights: &[f64], offset: u64) -> Self {
        let schedule = SmoothWeighted::new(weights.len());
        let all: Vec<usize> = (0..weights.len()).collect();
        if !all.is_empty() {
            for _ in 0..offset {
                schedule.pick(&all, |i| weights.get(i).copied().unwrap_or(0.0));
            }
        }
        RoundRobin { schedule }
    }

    pub fn pick(&self, c: &Candidates<'_>) -> usize {
        self.schedule
            .pick(c.indices, |i| c.hosts.get(i).map_or(0.0, |h| (c.weight)(h)))
    }
}
