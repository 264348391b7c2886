//! [`Store`]: the application's storage a replica applies writes to, and [`MemStore`], an
//! in-memory one.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::message::Mutation;

/// Why a store refused a mutation. The replica then does not acknowledge, so the
/// coordinator keeps (or creates) a hint and the write is retried later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The store is at its bound.
    Full,
    /// The store cannot write now (disk error, read-only).
    Unavailable,
}

/// The storage a node applies writes to.
///
/// `apply` must be idempotent and order-insensitive (keep the mutation with the highest
/// timestamp), and must be durable when it returns `Ok`: the node acknowledges right after.
pub trait Store {
    /// Applies a mutation (last write wins).
    ///
    /// # Errors
    /// [`StoreError`] if the mutation was not stored.
    fn apply(&mut self, mutation: &Mutation) -> Result<(), StoreError>;

    /// Drops a copy kept for another owner (a sloppy-quorum guest) once handed off: removes
    /// `key` if its stored timestamp is at most `up_to`. Returns whether it removed it.
    fn discard(&mut self, key: &[u8], up_to: u64) -> bool;
}

/// A stored version: the timestamp and the value (`None`: deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The timestamp.
    pub timestamp: u64,
    /// The value, or a tombstone.
    pub value: Option<Bytes>,
}

/// An in-memory [`Store`] over a `BTreeMap`, bounded in keys.
#[derive(Debug, Clone)]
pub struct MemStore {
    data: BTreeMap<Bytes, Versioned>,
    max_keys: usize,
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new(usize::MAX)
    }
}

impl MemStore {
    /// An empty store holding at most `max_keys` keys.
    #[must_use]
    pub fn new(max_keys: usize) -> Self {
        Self {
            data: BTreeMap::new(),
            max_keys,
        }
    }

    /// The stored version of `key`.
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<&Versioned> {
        self.data.get(key)
    }

    /// Whether the store holds `key` at `timestamp` or newer.
    #[must_use]
    pub fn has(&self, key: &[u8], timestamp: u64) -> bool {
        self.get(key).is_some_and(|v| v.timestamp >= timestamp)
    }

    /// Keys stored.
    #[must_use]
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether nothing is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Every entry in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Versioned)> {
        self.data.iter()
    }
}

impl Store for MemStore {
    fn apply(&mut self, m: &Mutation) -> Result<(), StoreError> {
        if let Some(cur) = self.data.get_mut(&m.key) {
            // Last write wins; equal timestamps break ties on the value so that every
            // replica converges on the same one.
            if (m.timestamp, &m.value) > (cur.timestamp, &cur.value) {
                cur.timestamp = m.timestamp;
                cur.value.clone_from(&m.value);
            }
            return Ok(());
        }
        if self.data.len() >= self.max_keys {
            return Err(StoreError::Full);
        }
        self.data.insert(
            m.key.clone(),
            Versioned {
                timestamp: m.timestamp,
                value: m.value.clone(),
            },
        );
        Ok(())
    }

    fn discard(&mut self, key: &[u8], up_to: u64) -> bool {
        if self.data.get(key).is_some_and(|v| v.timestamp <= up_to) {
            self.data.remove(key);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_write_wins_and_bounds() {
        let mut s = MemStore::new(1);
        s.apply(&Mutation::put(&b"k"[..], &b"new"[..], 5)).unwrap();
        s.apply(&Mutation::put(&b"k"[..], &b"old"[..], 3)).unwrap();
        assert_eq!(s.get(b"k").unwrap().value.as_deref(), Some(&b"new"[..]));
        assert_eq!(
            s.apply(&Mutation::put(&b"j"[..], &b"x"[..], 1)),
            Err(StoreError::Full)
        );
        assert!(!s.discard(b"k", 4));
        assert!(s.discard(b"k", 5));
        assert!(s.is_empty());
    }
}
