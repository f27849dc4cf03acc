//! Strings to small ids, so series keys are a few integers instead of owned names.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

/// A thread-safe, append-only string table: the same string always gets the same id.
#[derive(Debug, Default)]
pub struct Interner {
    table: RwLock<Table>,
}

#[derive(Debug, Default)]
struct Table {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Interner {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `name`, adding it if new (ids saturate at `u32::MAX`, far beyond any scenario).
    pub fn intern(&self, name: &str) -> u32 {
        if let Some(id) = self.get(name) {
            return id;
        }
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have added it between the read and the write lock.
        if let Some(&id) = table.ids.get(name) {
            return id;
        }
        let id = u32::try_from(table.names.len()).unwrap_or(u32::MAX);
        let shared: Arc<str> = Arc::from(name);
        table.names.push(Arc::clone(&shared));
        table.ids.insert(shared, id);
        id
    }

    /// The id of `name`, if it was interned.
    pub fn get(&self, name: &str) -> Option<u32> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        table.ids.get(name).copied()
    }

    /// The string behind `id`.
    pub fn resolve(&self, id: u32) -> Option<Arc<str>> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        table.names.get(id as usize).cloned()
    }

    /// How many strings are interned.
    pub fn len(&self) -> usize {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        table.names.len()
    }

    /// Whether nothing is interned yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
