//! Where a replica's `(key, version digest)` index lives: the [`Store`] trait, the
//! in-memory reference [`MemStore`], and [`Replica`], which keeps a store and its
//! [`MerkleTree`] in step.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::hasher::{ItemHasher, Xxh3};
use crate::tree::{MerkleTree, Shape};
use crate::{Digest, Key};

/// One entry of a replica: a key and the digest of its current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Item {
    /// The key.
    pub key: Key,
    /// The digest of the key's current version (a hash of the value and its clock, a
    /// version number: anything that differs when the versions differ).
    pub digest: Digest,
}

/// The index of `key → digest` a replica synchronises, grouped by leaf.
///
/// The sync machine reads it leaf range by leaf range and never writes it; writes go
/// through [`Replica`] so that the tree follows. An application backs it by its own storage
/// engine; [`MemStore`] is the reference.
pub trait Store {
    /// The digest of `key`, which lives in `leaf`.
    fn get(&self, leaf: u32, key: Key) -> Option<Digest>;
    /// Sets `key` (in `leaf`) to `digest`, returning the previous digest.
    fn insert(&mut self, leaf: u32, key: Key, digest: Digest) -> Option<Digest>;
    /// Removes `key` (in `leaf`), returning its digest.
    fn remove(&mut self, leaf: u32, key: Key) -> Option<Digest>;
    /// Appends the items of the leaves `leaves`, in leaf order and by key within a leaf.
    fn collect(&self, leaves: Range<u32>, out: &mut Vec<Item>);
    /// Items held.
    fn len(&self) -> usize;
    /// Whether no item is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The in-memory reference store: one sorted vector per leaf.
///
/// 16 bytes per item plus 24 bytes per leaf; a write is a binary search and a shift within
/// one leaf, so choose a [`Shape`] with tens of keys per leaf (the default holds ~15 per
/// leaf at 10^6 keys).
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    leaves: Vec<Vec<Item>>,
    len: usize,
}

impl MemStore {
    /// An empty store for a tree of `leaves` leaves.
    #[must_use]
    pub fn new(leaves: u32) -> Self {
        Self {
            leaves: vec![Vec::new(); leaves as usize],
            len: 0,
        }
    }

    /// Bytes held (item storage and per-leaf vectors, capacity included).
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.leaves
            .iter()
            .map(|l| l.capacity() * std::mem::size_of::<Item>() + std::mem::size_of::<Vec<Item>>())
            .sum()
    }

    fn leaf_mut(&mut self, leaf: u32) -> &mut Vec<Item> {
        let i = leaf as usize;
        if i >= self.leaves.len() {
            self.leaves.resize(i + 1, Vec::new());
        }
        &mut self.leaves[i]
    }
}

impl Store for MemStore {
    fn get(&self, leaf: u32, key: Key) -> Option<Digest> {
        let l = self.leaves.get(leaf as usize)?;
        l.binary_search_by_key(&key, |i| i.key)
            .ok()
            .map(|i| l[i].digest)
    }

    fn insert(&mut self, leaf: u32, key: Key, digest: Digest) -> Option<Digest> {
        let l = self.leaf_mut(leaf);
        match l.binary_search_by_key(&key, |i| i.key) {
            Ok(i) => Some(std::mem::replace(&mut l[i].digest, digest)),
            Err(i) => {
                l.insert(i, Item { key, digest });
                self.len += 1;
                None
            }
        }
    }

    fn remove(&mut self, leaf: u32, key: Key) -> Option<Digest> {
        let l = self.leaves.get_mut(leaf as usize)?;
        let i = l.binary_search_by_key(&key, |i| i.key).ok()?;
        self.len -= 1;
        Some(l.remove(i).digest)
    }

    fn collect(&self, leaves: Range<u32>, out: &mut Vec<Item>) {
        let end = (leaves.end as usize).min(self.leaves.len());
        let start = (leaves.start as usize).min(end);
        for l in &self.leaves[start..end] {
            out.extend_from_slice(l);
        }
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// A replica's data: a [`Store`] and the [`MerkleTree`] over it, updated together in
/// `O(depth)` per write.
#[derive(Debug, Clone)]
pub struct Replica<S = MemStore, H = Xxh3> {
    tree: MerkleTree<H>,
    store: S,
}

impl Replica<MemStore, Xxh3> {
    /// An empty in-memory replica with the default hasher.
    #[must_use]
    pub fn in_memory(shape: Shape) -> Self {
        Self::new(shape, Xxh3::default(), MemStore::new(shape.leaves()))
    }
}

impl<H: ItemHasher> Replica<MemStore, H> {
    /// An in-memory replica bulk-loaded from `items` (a later item replaces an earlier one
    /// with the same key): one hash per item and one pass over the tree, instead of a walk
    /// to the root per item.
    #[must_use]
    pub fn from_items(shape: Shape, hasher: H, items: impl IntoIterator<Item = Item>) -> Self {
        let mut leaves: Vec<Vec<Item>> = vec![Vec::new(); shape.leaves() as usize];
        for i in items {
            leaves[shape.leaf_of(hasher.bucket(i.key)) as usize].push(i);
        }
        let mut len = 0;
        for l in &mut leaves {
            // Stable: of equal keys the last pushed ends last; keep it.
            l.sort_by_key(|i| i.key);
            l.reverse();
            l.dedup_by_key(|i| i.key);
            l.reverse();
            len += l.len();
        }
        let store = MemStore { leaves, len };
        let tree = MerkleTree::build(
            shape,
            hasher,
            store.leaves.iter().flat_map(|l| l.iter().copied()),
        );
        Self { tree, store }
    }
}

impl<S: Store, H: ItemHasher> Replica<S, H> {
    /// A replica over `store`, which must be empty or already match an empty tree (the tree
    /// is built from the store's contents).
    ///
    /// # Panics
    /// If `shape` is invalid ([`Shape::is_valid`]).
    #[must_use]
    pub fn new(shape: Shape, hasher: H, store: S) -> Self {
        let mut buf = Vec::new();
        store.collect(0..shape.leaves(), &mut buf);
        let tree = MerkleTree::build(shape, hasher, buf);
        Self { tree, store }
    }

    /// Sets `key` to `digest`; returns the previous digest. `O(depth)` tree work.
    pub fn insert(&mut self, key: Key, digest: Digest) -> Option<Digest> {
        let leaf = self.tree.leaf_of(key);
        let old = self.store.insert(leaf, key, digest);
        if old != Some(digest) {
            self.tree.update(leaf, key, old, Some(digest));
        }
        old
    }

    /// Removes `key`; returns its digest.
    pub fn remove(&mut self, key: Key) -> Option<Digest> {
        let leaf = self.tree.leaf_of(key);
        let old = self.store.remove(leaf, key);
        if old.is_some() {
            self.tree.update(leaf, key, old, None);
        }
        old
    }

    /// The digest of `key`.
    #[must_use]
    pub fn get(&self, key: Key) -> Option<Digest> {
        self.store.get(self.tree.leaf_of(key), key)
    }

    /// The tree.
    #[must_use]
    pub fn tree(&self) -> &MerkleTree<H> {
        &self.tree
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Items held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether no item is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Appends the items below node `node` of `level`.
    pub fn collect_node(&self, level: u8, node: u32, out: &mut Vec<Item>) {
        self.store
            .collect(self.tree.shape().leaf_range(level, node), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_keeps_store_and_tree_in_step() {
        let shape = Shape {
            fanout_bits: 2,
            depth: 3,
        };
        let mut r = Replica::in_memory(shape);
        assert_eq!(r.insert(5, 50), None);
        assert_eq!(r.insert(6, 60), None);
        assert_eq!(r.insert(5, 51), Some(50));
        assert_eq!(r.get(5), Some(51));
        assert_eq!(r.len(), 2);
        let mut fresh = Replica::in_memory(shape);
        fresh.insert(6, 60);
        fresh.insert(5, 51);
        assert_eq!(r.tree().root(), fresh.tree().root());
        let bulk = Replica::from_items(
            shape,
            Xxh3::default(),
            [
                Item { key: 5, digest: 50 },
                Item { key: 6, digest: 60 },
                Item { key: 5, digest: 51 },
            ],
        );
        assert_eq!(bulk.tree().root(), r.tree().root());
        assert_eq!(bulk.len(), 2);
        assert_eq!(bulk.get(5), Some(51));
        // Rebuilding from the store gives the same tree.
        let rebuilt = Replica::new(shape, Xxh3::default(), r.store().clone());
        assert_eq!(rebuilt.tree().level(3), r.tree().level(3));
        assert_eq!(r.remove(5), Some(51));
        assert_eq!(r.remove(5), None);
        let mut all = Vec::new();
        r.collect_node(0, 0, &mut all);
        assert_eq!(all, [Item { key: 6, digest: 60 }]);
    }
}
