//! Where the containers live: the [`Storage`] trait, so an application can keep its keys
//! in its own store, and [`MemoryStore`], the in-memory one that ships.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::dcc::Dcc;

/// A key → container map. Containers are stored stripped; the machine fills them before
/// use. Iteration ([`keys`](Storage::keys)) must be in key order, so that a full transfer
/// is deterministic.
pub trait Storage {
    /// The container of `key`, if stored.
    fn get(&self, key: &[u8]) -> Option<Dcc>;
    /// Stores `dcc` under `key`, replacing what was there.
    fn put(&mut self, key: Bytes, dcc: Dcc);
    /// Deletes `key` (no tombstone: an absent key is an empty container).
    fn remove(&mut self, key: &[u8]);
    /// Keys stored.
    fn len(&self) -> usize;
    /// Whether nothing is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Every key, in order.
    fn keys(&self) -> Box<dyn Iterator<Item = Bytes> + '_>;
    /// The keys after `after` (all with `None`), in order: a page of a full transfer.
    fn keys_after(&self, after: Option<&[u8]>) -> Box<dyn Iterator<Item = Bytes> + '_> {
        match after {
            None => self.keys(),
            Some(a) => {
                let a = Bytes::copy_from_slice(a);
                Box::new(self.keys().filter(move |k| *k > a))
            }
        }
    }
}

/// A [`Storage`] in memory, ordered by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStore {
    map: BTreeMap<Bytes, Dcc>,
}

impl MemoryStore {
    /// Empty.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every key with its (stripped) container, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Dcc)> {
        self.map.iter()
    }

    /// The stored (stripped) container of `key`, without a copy.
    #[must_use]
    pub fn get_ref(&self, key: &[u8]) -> Option<&Dcc> {
        self.map.get(key)
    }
}

impl Storage for MemoryStore {
    fn get(&self, key: &[u8]) -> Option<Dcc> {
        self.map.get(key).cloned()
    }
    fn put(&mut self, key: Bytes, dcc: Dcc) {
        self.map.insert(key, dcc);
    }
    fn remove(&mut self, key: &[u8]) {
        self.map.remove(key);
    }
    fn len(&self) -> usize {
        self.map.len()
    }
    fn keys(&self) -> Box<dyn Iterator<Item = Bytes> + '_> {
        Box::new(self.map.keys().cloned())
    }
    fn keys_after(&self, after: Option<&[u8]>) -> Box<dyn Iterator<Item = Bytes> + '_> {
        use std::ops::Bound;
        let lower = after.map_or(Bound::Unbounded, |a| {
            Bound::Excluded(Bytes::copy_from_slice(a))
        });
        Box::new(
            self.map
                .range((lower, Bound::Unbounded))
                .map(|(k, _)| k.clone()),
        )
    }
}
