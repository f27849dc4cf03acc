//! Smooth weighted round robin: the deterministic earliest-deadline-style schedule behind
//! weighted RoundRobin and weighted LeastRequest.
//!
//! Each pick adds every candidate's weight to its running score, takes the highest score and
//! subtracts the total. Over time each host is picked in proportion to its weight, evenly spread;
//! with equal weights it is plain rotation.

use std::sync::{Mutex, PoisonError};

/// Running scores per host index.
#[derive(Debug)]
pub(crate) struct SmoothWeighted {
    scores: Mutex<Vec<f64>>,
}

impl SmoothWeighted {
    /// Scores for `n` hosts.
    pub fn new(n: usize) -> Self {
        SmoothWeighted {
            scores: Mutex::new(vec![0.0; n]),
        }
    }

    /// Picks among `indices` (non-empty) with `weight(index)`.
    pub fn pick(&self, indices: &[usize], weight: impl Fn(usize) -> f64) -> usize {
        let mut scores = self.scores.lock().unwrap_or_else(PoisonError::into_inner);
        let mut total = 0.0;
        let mut best: Option<(usize, f64)> = None;
        for &i in indices {
            let w = weight(i).max(0.0);
            total += w;
            let Some(s) = scores.get_mut(i) else { continue };
            *s += w;
            if best.is_none_or(|(_, b)| *s > b) {
                best = Some((i, *s));
            }
        }
        let chosen = best.map_or(indices[0], |(i, _)| i);
        if let Some(s) = scores.get_mut(chosen) {
            *s -= total;
        }
        chosen
    }
}
