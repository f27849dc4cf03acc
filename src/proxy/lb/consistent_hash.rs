//! The Maglev load-balancing policy: a [`MaglevTable`] over the hosts currently usable (the
//! healthy hosts of the chosen priority, or all of them in panic mode), rebuilt whenever that
//! set changes, as Envoy rebuilds its table on every host-set update. The last few tables are
//! kept, so traffic split over two priority levels does not rebuild on every request.

use std::sync::{Arc, PoisonError, RwLock};

use super::Candidates;
use super::maglev::MaglevTable;

/// Tables kept (one per recent usable-host set).
const CACHED_TABLES: usize = 4;

/// Maglev over the candidate hosts, with the table of the last candidate set cached.
#[derive(Debug)]
pub(crate) struct ConsistentHash {
    table_size: u64,
    cached: RwLock<Vec<Arc<Built>>>,
}

/// A table and the host indices it was built over (table index → host index).
#[derive(Debug)]
struct Built {
    indices: Vec<usize>,
    table: MaglevTable,
}

impl ConsistentHash {
    /// A policy with `table_size` entries (validated prime by the config).
    pub fn new(table_size: u64) -> Self {
        ConsistentHash {
            table_size,
            cached: RwLock::new(Vec::new()),
        }
    }

    /// The host for `hash` on host-selection `attempt` (0 first); `None` when no table can be
    /// built (the caller then picks at random).
    pub fn pick(&self, c: &Candidates<'_>, hash: u64, attempt: u32) -> Option<usize> {
        let built = self.table_for(c)?;
        let slot = built.table.pick_attempt(hash, attempt);
        built.indices.get(slot).copied()
    }

    fn table_for(&self, c: &Candidates<'_>) -> Option<Arc<Built>> {
        {
            let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(b) = cached.iter().find(|b| b.indices == c.indices) {
                return Some(Arc::clone(b));
            }
        }
        // The usable set changed: rebuild (rare, and outside the read lock).
        let keys: Vec<String> = c
            .indices
            .iter()
            .map(|&i| c.hosts[i].endpoint.addr.to_string())
            .collect();
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let weights: Vec<u32> = c
            .indices
            .iter()
            .map(|&i| c.hosts[i].endpoint.weight.get())
            .collect();
        let table = match MaglevTable::build(&key_refs, &weights, self.table_size) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "maglev table build failed");
                return None;
            }
        };
        tracing::debug!(hosts = c.indices.len(), "maglev table rebuilt");
        let built = Arc::new(Built {
            indices: c.indices.to_vec(),
            table,
        });
        let mut cached = self.cached.write().unwrap_or_else(PoisonError::into_inner);
        if cached.len() >= CACHED_TABLES {
            cached.remove(0);
        }
        cached.push(Arc::clone(&built));
        Some(built)
    }
}
