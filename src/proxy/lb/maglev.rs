//! Maglev consistent hashing, built the way Envoy's `MaglevTable` builds it.
//!
//! Hosts are sorted by their hash key (e.g. `"10.0.0.1:8080"`) so the table does not depend on
//! discovery order; each host's offset is `xxh64(key, 0) % M` and its skip
//! `xxh64(key, 1) % (M − 1) + 1`. The table is filled in rounds: in round `i` a host of weight
//! `w` takes its next free preferred slot when `i·w ≥ target`, and `target` grows by the largest
//! weight each time it does, so hosts fill slots in proportion to their weights. Round one gives
//! every host one slot. Envoy compares normalised floating-point weights; multiplying by the weight
//! sum gives the same comparisons in exact integers.

use xxhash_rust::xxh64::xxh64;

/// Envoy's default Maglev table size (`tableSize` default in EG).
pub const DEFAULT_TABLE_SIZE: u64 = 65_537;
/// Largest table size EG accepts.
pub const MAX_TABLE_SIZE: u64 = 5_000_011;

/// Why a table cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaglevError {
    /// Table size not prime or outside 2..=5000011 (EG's translator text).
    #[error("ConsistentHash: invalid TableSize value {0}")]
    TableSize(u64),
    /// No host to place.
    #[error("maglev table needs at least one host")]
    NoHosts,
    /// `keys` and `weights` have different lengths.
    #[error("maglev table got {keys} host keys but {weights} weights")]
    LengthMismatch {
        /// Number of keys.
        keys: usize,
        /// Number of weights.
        weights: usize,
    },
    /// A host has weight 0 (it could get no entry).
    #[error("maglev host {0} has weight 0")]
    ZeroWeight(String),
    /// Two hosts share one hash key.
    #[error("maglev host key {0} appears twice")]
    DuplicateKey(String),
    /// More hosts than table entries: some host would get none.
    #[error("maglev table size {size} is smaller than the host count {hosts}")]
    TooManyHosts {
        /// Table size.
        size: u64,
        /// Host count.
        hosts: usize,
    },
}

/// An immutable Maglev lookup table mapping a request hash to a host index (input order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaglevTable {
    slots: Vec<u32>,
    hosts: usize,
}

struct BuildEntry {
    host: u32,
    offset: u64,
    skip: u64,
    weight: u64,
    target: u64,
    next: u64,
}

impl MaglevTable {
    /// Builds the table for hosts identified by stable `keys` (e.g. `"ip:port"`) with `weights`.
    ///
    /// `pick` returns indices into these slices.
    pub fn build(keys: &[&str], weights: &[u32], table_size: u64) -> Result<Self, MaglevError> {
        if !(2..=MAX_TABLE_SIZE).contains(&table_size) || !is_prime(table_size) {
            return Err(MaglevError::TableSize(table_size));
        }
        if keys.len() != weights.len() {
            return Err(MaglevError::LengthMismatch {
                keys: keys.len(),
                weights: weights.len(),
            });
        }
        if keys.is_empty() {
            return Err(MaglevError::NoHosts);
        }
        if keys.len() as u64 > table_size {
            return Err(MaglevError::TooManyHosts {
                size: table_size,
                hosts: keys.len(),
            });
        }
        if let Some(i) = weights.iter().position(|w| *w == 0) {
            return Err(MaglevError::ZeroWeight(keys[i].to_owned()));
        }
        // Envoy fills in key order so the table is independent of discovery order.
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|a, b| keys[*a].cmp(keys[*b]));
        if let Some(w) = order.windows(2).find(|w| keys[w[0]] == keys[w[1]]) {
            return Err(MaglevError::DuplicateKey(keys[w[0]].to_owned()));
        }
        let max_weight = u64::from(weights.iter().copied().max().unwrap_or(1));
        let mut entries: Vec<BuildEntry> = order
            .iter()
            .map(|&i| {
                let key = keys[i].as_bytes();
                BuildEntry {
                    host: i as u32,
                    offset: xxh64(key, 0) % table_size,
                    skip: xxh64(key, 1) % (table_size - 1) + 1,
                    weight: u64::from(weights[i]),
                    target: 0,
                    next: 0,
                }
            })
            .collect();
        let size = table_size as usize;
        let mut slots = vec![u32::MAX; size];
        let mut filled = 0usize;
        let mut round: u64 = 1;
        while filled < size {
            for entry in entries.iter_mut() {
                if filled == size {
                    break;
                }
                if round * entry.weight < entry.target {
                    continue;
                }
                entry.target += max_weight;
                // The permutation visits every slot because the size is prime and skip ∈ 1..M.
                let mut slot = permutation(entry, table_size);
                while slots[slot] != u32::MAX {
                    entry.next += 1;
                    slot = permutation(entry, table_size);
                }
                slots[slot] = entry.host;
                entry.next += 1;
                filled += 1;
            }
            round += 1;
        }
        Ok(Self {
            slots,
            hosts: keys.len(),
        })
    }

    /// The host index for a request hash (`table[hash % M]`).
    pub fn pick(&self, hash: u64) -> usize {
        self.slots[(hash % self.slots.len() as u64) as usize] as usize
    }

    /// The host for retry `attempt` (0 = first try): Envoy flips most hash bits per attempt so
    /// retries land elsewhere.
    pub fn pick_attempt(&self, hash: u64, attempt: u32) -> usize {
        let hash = if attempt > 0 {
            hash ^ (u64::MAX - u64::from(attempt) + 1)
        } else {
            hash
        };
        self.pick(hash)
    }

    /// Number of table entries.
    pub fn table_size(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Entries owned by each host (input order); Envoy exposes min/max as `maglev_lb` gauges.
    pub fn entries_per_host(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.hosts];
        for &h in &self.slots {
            counts[h as usize] += 1;
        }
        counts
    }
}

fn permutation(entry: &BuildEntry, size: u64) -> usize {
    // offset, skip < size ≤ 5e6 and next < size, so the product stays far below u64::MAX.
    ((entry.offset + entry.skip * entry.next) % size) as usize
}

/// Deterministic primality test by trial division (table sizes are at most ~5e6).
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n < 4 {
        return true;
    }
    if n % 2 == 0 {
        return false;
    }
    let mut d = 3;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{}:8080", i + 1)).collect()
    }

    fn refs(k: &[String]) -> Vec<&str> {
        k.iter().map(String::as_str).collect()
    }

    #[test]
    fn validates_table_size() {
        let k = keys(2);
        let k = refs(&k);
        assert_eq!(
            MaglevTable::build(&k, &[1, 1], 65_536)
                .unwrap_err()
                .to_string(),
            "ConsistentHash: invalid TableSize value 65536"
        );
        assert!(MaglevTable::build(&k, &[1, 1], 5_000_017).is_err());
        assert!(MaglevTable::build(&k, &[1, 1], 1).is_err());
        assert!(MaglevTable::build(&k, &[1, 1], 2).is_ok());
        assert!(MaglevTable::build(&k, &[1, 1], MAX_TABLE_SIZE).is_ok());
        assert!(MaglevTable::build(&k, &[1, 0], 7).is_err());
        assert!(MaglevTable::build(&k, &[1], 7).is_err());
        assert!(MaglevTable::build(&["a", "a"], &[1, 1], 7).is_err());
        assert!(MaglevTable::build(&k, &[1, 1], 2).is_ok());
        assert!(MaglevTable::build(&["a", "b", "c"], &[1, 1, 1], 2).is_err());
        assert!(is_prime(65_537) && is_prime(5_000_011) && !is_prime(5_000_013));
    }

    #[test]
    fn entries_are_proportional_to_weight_and_every_host_has_one() {
        let k = keys(4);
        let t = MaglevTable::build(&refs(&k), &[1, 2, 3, 4], DEFAULT_TABLE_SIZE).expect("table");
        let counts = t.entries_per_host();
        assert_eq!(counts.iter().sum::<u64>(), DEFAULT_TABLE_SIZE);
        for (i, c) in counts.iter().enumerate() {
            let expected = DEFAULT_TABLE_SIZE as f64 * (i + 1) as f64 / 10.0;
            assert!(
                (*c as f64 - expected).abs() / expected < 0.01,
                "host {i}: {c} vs {expected}"
            );
        }
        // A tiny weight still gets an entry.
        let t = MaglevTable::build(&refs(&k), &[1, 1_000_000, 1_000_000, 1_000_000], 101)
            .expect("table");
        assert!(t.entries_per_host().iter().all(|c| *c >= 1));
    }

    #[test]
    fn picks_follow_weights_over_many_keys() {
        let k = keys(3);
        let t = MaglevTable::build(&refs(&k), &[1, 1, 2], DEFAULT_TABLE_SIZE).expect("table");
        let mut hits = [0u32; 3];
        for i in 0..40_000u64 {
            hits[t.pick(xxh64(&i.to_le_bytes(), 0))] += 1;
        }
        assert!((9_000..=11_000).contains(&hits[0]), "{hits:?}");
        assert!((9_000..=11_000).contains(&hits[1]), "{hits:?}");
        assert!((19_000..=21_000).contains(&hits[2]), "{hits:?}");
    }

    #[test]
    fn removing_one_host_remaps_about_one_nth() {
        let n = 10;
        let k = keys(n);
        let all = MaglevTable::build(&refs(&k), &vec![1; n], DEFAULT_TABLE_SIZE).expect("table");
        let removed = 3;
        let rest: Vec<&str> = refs(&k)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i != removed)
            .map(|(_, s)| s)
            .collect();
        let fewer = MaglevTable::build(&rest, &vec![1; n - 1], DEFAULT_TABLE_SIZE).expect("table");
        let samples = 100_000u64;
        let mut moved = 0u64;
        let mut moved_from_survivors = 0u64;
        for i in 0..samples {
            let h = xxh64(&i.to_le_bytes(), 42);
            let before = k[all.pick(h)].as_str();
            let after = rest[fewer.pick(h)];
            if before != after {
                moved += 1;
                if before != k[removed] {
                    moved_from_survivors += 1;
                }
            }
        }
        let frac = moved as f64 / samples as f64;
        // The removed host's 1/N must move; Maglev moves a little more than that.
        assert!(frac > 0.09 && frac < 0.15, "moved {frac}");
        assert!(
            (moved_from_survivors as f64 / samples as f64) < 0.05,
            "survivors moved {moved_from_survivors}"
        );
    }

    #[test]
    fn deterministic_and_independent_of_input_order() {
        let k = keys(5);
        let a = MaglevTable::build(&refs(&k), &[1, 2, 3, 4, 5], 1009).expect("table");
        let b = MaglevTable::build(&refs(&k), &[1, 2, 3, 4, 5], 1009).expect("table");
        assert_eq!(a, b);
        let mut rev = refs(&k);
        rev.reverse();
        let c = MaglevTable::build(&rev, &[5, 4, 3, 2, 1], 1009).expect("table");
        for h in 0..5000u64 {
            assert_eq!(k[a.pick(h)], rev[c.pick(h)]);
        }
        // Retry attempts choose from a mutated hash.
        assert_eq!(a.pick_attempt(77, 0), a.pick(77));
        assert_eq!(a.pick_attempt(77, 1), a.pick(77 ^ u64::MAX));
    }
}
