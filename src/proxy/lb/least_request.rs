//! Least request (Envoy `least_request`): power of N choices with equal weights, weighted
//! round robin over `weight / (active + 1)` otherwise (active_request_bias 1.0).

use super::Candidates;
use super::weighted::SmoothWeighted;
use crate::proxy::rng::SharedRng;

/// The least-request balancer.
#[derive(Debug)]
pub(crate) struct LeastRequest {
    choice_count: u32,
    schedule: SmoothWeighted,
}

impl LeastRequest {
    pub fn new(n: usize, choice_count: u32) -> Self {
        LeastRequest {
            choice_count,
            schedule: SmoothWeighted::new(n),
        }
    }

    pub fn pick(&self, c: &Candidates<'_>, rng: &SharedRng) -> usize {
        // One candidate wins every draw and every schedule: no weights, no draws.
        if let [only] = c.indices {
            return *only;
        }
        let weight_of = |i: usize| c.hosts.get(i).map_or(0.0, |h| (c.weight)(h));
        let first = weight_of(c.indices[0]);
        let equal = c
            .indices
            .iter()
            .all(|&i| (weight_of(i) - first).abs() < f64::EPSILON);
        if equal {
            return self.p2c(c, rng);
        }
        self.schedule.pick(c.indices, |i| {
            let active = c.hosts.get(i).map_or(0, |h| h.rq_active());
            weight_of(i) / (active as f64 + 1.0)
        })
    }

    /// Draws `choice_count` candidates (with replacement, as Envoy does) and keeps the one
    /// with the fewest active requests; the first drawn wins ties.
    fn p2c(&self, c: &Candidates<'_>, rng: &SharedRng) -> usize {
        let n = c.indices.len() as u64;
        let mut best: Option<(usize, u64)> = None;
        for _ in 0..self.choice_count {
            let i = c.indices[rng.below(n) as usize];
            let active = c.hosts.get(i).map_or(u64::MAX, |h| h.rq_active());
            if best.is_none_or(|(_, b)| active < b) {
                best = Some((i, active));
            }
        }
        best.map_or(c.indices[0], |(i, _)| i)
    }
}
