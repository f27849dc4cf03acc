//! Weighted round robin (Envoy `round_robin`).

use super::Candidates;
use super::weighted::SmoothWeighted;

/// Weighted round robin over the candidates.
#[derive(Debug)]
pub(crate) struct RoundRobin {
    schedule: SmoothWeighted,
}

impl RoundRobin {
    pub fn new(n: usize) -> Self {
        RoundRobin {
            schedule: SmoothWeighted::new(n),
        }
    }

    pub fn pick(&self, c: &Candidates<'_>) -> usize {
        self.schedule
            .pick(c.indices, |i| c.hosts.get(i).map_or(0.0, |h| (c.weight)(h)))
    }
}
