//! A bounded map from statement shape ([`crate::shape`]) to what was
//! worked out for it, shared by a connection's sessions.
//!
//! Bounded by the bytes of its keys; when full it starts over (cleared
//! whole) rather than tracking recency: a working set that fits stays warm,
//! and one that does not would churn an LRU just the same. Lookups take a
//! short lock; nothing is computed under it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Key bytes a cache may hold before it starts over.
pub const DEFAULT_BUDGET: usize = 4 << 20;

pub struct ShapeCache<V> {
    inner: Mutex<Inner<V>>,
    budget: usize,
}

struct Inner<V> {
    map: HashMap<String, Arc<V>>,
    bytes: usize,
}

impl<V> Default for ShapeCache<V> {
    fn default() -> Self {
        Self::with_budget(DEFAULT_BUDGET)
    }
}

impl<V> ShapeCache<V> {
    pub fn with_budget(budget: usize) -> Self {
        ShapeCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                bytes: 0,
            }),
            budget,
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        self.lock().map.get(key).cloned()
    }

    pub fn insert(&self, key: String, value: Arc<V>) {
        let mut inner = self.lock();
        if inner.bytes + key.len() > self.budget {
            inner.map.clear();
            inner.bytes = 0;
        }
        let len = key.len();
        // Two sessions may race to the same shape: count its key once.
        if inner.map.insert(key, value).is_none() {
            inner.bytes += len;
        }
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<V>> {
        // Entries go in whole: a poisoned map is intact.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_over_when_the_budget_is_spent() {
        let c = ShapeCache::with_budget(10);
        c.insert("abcd".into(), Arc::new(1));
        c.insert("efgh".into(), Arc::new(2));
        assert_eq!(c.get("abcd").as_deref(), Some(&1));
        c.insert("ijkl".into(), Arc::new(3));
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("abcd"), None);
        assert_eq!(c.get("ijkl").as_deref(), Some(&3));
    }
}
