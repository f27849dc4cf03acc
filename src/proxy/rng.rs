//! The proxy's single seeded randomness source.
//!
//! Every consumer (load balancers, retry jitter, outlier enforcement, request ids) draws from a
//! ChaCha8 stream derived from the configured seed and a fixed label, so a run is reproducible.

use std::sync::{Mutex, PoisonError};

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A shared, seeded random stream. Locking is brief and never spans an `.await`.
#[derive(Debug)]
pub struct SharedRng(Mutex<ChaCha8Rng>);

/// Derives independent streams from one seed.
#[derive(Debug, Clone, Copy)]
pub struct RngSource {
    seed: u64,
}

impl RngSource {
    /// A source for `seed`.
    pub fn new(seed: u64) -> Self {
        RngSource { seed }
    }

    /// The stream for `label` (e.g. `lb/<cluster>`); same seed and label → same stream.
    pub fn stream(&self, label: &str) -> SharedRng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        // The label picks the ChaCha stream, so streams never overlap.
        rng.set_stream(fnv1a(label.as_bytes()));
        SharedRng(Mutex::new(rng))
    }
}

impl SharedRng {
    /// A uniform integer in `0..n` (`n` > 0).
    pub fn below(&self, n: u64) -> u64 {
        self.with(|r| r.random_range(0..n.max(1)))
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&self) -> f64 {
        self.with(|r| r.random::<f64>())
    }

    /// 64 random bits.
    pub fn next_u64(&self) -> u64 {
        self.with(|r| r.next_u64())
    }

    /// 128 random bits, under one lock: the first two `next_u64` would give.
    pub fn next_u64_pair(&self) -> (u64, u64) {
        self.with(|r| (r.next_u64(), r.next_u64()))
    }

    /// Runs `f` with the generator locked.
    pub fn with<T>(&self, f: impl FnOnce(&mut ChaCha8Rng) -> T) -> T {
        // A panic while holding the lock cannot leave the generator in an invalid state.
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

/// FNV-1a, a fixed hash so stream labels map to the same stream on every platform.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_label_repeat() {
        let a = RngSource::new(7).stream("lb/x");
        let b = RngSource::new(7).stream("lb/x");
        let c = RngSource::new(7).stream("lb/y");
        let va: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let vc: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
    }

    #[test]
    fn below_stays_in_range() {
        let r = RngSource::new(1).stream("t");
        assert!((0..1000).all(|_| r.below(3) < 3));
        assert_eq!(r.below(0), 0);
    }
}
