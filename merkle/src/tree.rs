//! The Merkle tree: a complete tree of fixed [`Shape`] over a key space partitioned by key
//! hash, whose node hashes are XORs of item hashes, updated in `O(depth)` per write.
//!
//! # Why partition by key hash, and why XOR
//!
//! Keys are placed in leaves by the top bits of a hash of the key (as Riak's tictac trees
//! and Cassandra's token ranges do), not by key order (as the merkle-search-tree crate
//! does). Hash partitioning keeps the tree's shape fixed whatever the keys, so
//!
//! * two replicas always have the same node boundaries and compare node by node with no
//!   negotiation of ranges;
//! * leaves hold `n / leaves` keys on average whatever the key distribution (no hot range);
//! * a write touches exactly one leaf and its ancestors.
//!
//! A node's hash is the XOR of the 128-bit hashes of the items `(key, digest)` below it.
//! XOR is its own inverse, so an insert XORs the item hash into the leaf and its ancestors,
//! a delete XORs it out and an update XORs out the old and in the new: `depth + 1` XORs and
//! no rehash of siblings, never a rebuild. The price is that the set hash is linear: a
//! replica that chooses its items adversarially can forge equal hashes for different sets.
//! Replicas of one cluster trust each other's data (they already accept its writes); where
//! they do not, use a keyed [`ItemHasher`].
//!
//! Memory: `16 · (leaves + leaves/fanout + … + 1)` bytes, about `16 · leaves · fanout /
//! (fanout − 1)`; for the default shape (fanout 16, depth 4: 65,536 leaves) 1.1 MiB.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::hasher::ItemHasher;
use crate::store::Item;
use crate::{Digest, Key};

/// The fixed shape of a tree: `fanout = 2^fanout_bits` children per node, `depth` levels
/// below the root (level 0 is the root, level `depth` the leaves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// log2 of the fanout, 1 to 8.
    pub fanout_bits: u8,
    /// Levels below the root; `fanout_bits · depth` is at most [`Shape::MAX_LEAF_BITS`].
    pub depth: u8,
}

impl Default for Shape {
    /// Fanout 16, depth 4: 65,536 leaves, about 15 keys per leaf at 10^6 keys. Riak's
    /// tictac trees use 1,024 × 1,024 leaves; Cassandra's repair trees 2^15 to 2^20.
    fn default() -> Self {
        Self {
            fanout_bits: 4,
            depth: 4,
        }
    }
}

impl Shape {
    /// At most 2^24 leaves (256 MiB of tree).
    pub const MAX_LEAF_BITS: u32 = 24;

    /// Whether the shape is within bounds.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        (1..=8).contains(&self.fanout_bits)
            && u32::from(self.fanout_bits) * u32::from(self.depth) <= Self::MAX_LEAF_BITS
    }

    /// Children per node.
    #[must_use]
    pub fn fanout(&self) -> u32 {
        1 << self.fanout_bits
    }

    /// Nodes at `level` (1 at the root).
    #[must_use]
    pub fn nodes_at(&self, level: u8) -> u32 {
        1 << (u32::from(self.fanout_bits) * u32::from(level.min(self.depth)))
    }

    /// Leaves.
    #[must_use]
    pub fn leaves(&self) -> u32 {
        self.nodes_at(self.depth)
    }

    /// The leaf of a key whose bucket hash is `bucket`.
    #[must_use]
    pub fn leaf_of(&self, bucket: u64) -> u32 {
        let bits = u32::from(self.fanout_bits) * u32::from(self.depth);
        if bits == 0 {
            0
        } else {
            // At most 24 bits remain after the shift.
            (bucket >> (64 - bits)) as u32
        }
    }

    /// The children of node `node` at `level` (indices at `level + 1`).
    #[must_use]
    pub fn children(&self, node: u32) -> Range<u32> {
        let b = u32::from(self.fanout_bits);
        (node << b)..((node + 1) << b)
    }

    /// The leaves below node `node` at `level`.
    #[must_use]
    pub fn leaf_range(&self, level: u8, node: u32) -> Range<u32> {
        let shift = u32::from(self.fanout_bits) * u32::from(self.depth.saturating_sub(level));
        (node << shift)..((node + 1) << shift)
    }
}

/// The hashes of a tree of fixed [`Shape`], one `Vec<u128>` per level.
#[derive(Debug, Clone)]
pub struct MerkleTree<H> {
    shape: Shape,
    hasher: H,
    levels: Vec<Vec<u128>>,
}

impl<H: ItemHasher> MerkleTree<H> {
    /// An empty tree (every hash zero: the XOR of no items).
    ///
    /// # Panics
    /// If the shape is invalid ([`Shape::is_valid`]); [`Config`](crate::Config) validation
    /// rejects such shapes first.
    #[must_use]
    pub fn new(shape: Shape, hasher: H) -> Self {
        assert!(shape.is_valid(), "invalid tree shape {shape:?}");
        let levels = (0..=shape.depth)
            .map(|l| vec![0u128; shape.nodes_at(l) as usize])
            .collect();
        Self {
            shape,
            hasher,
            levels,
        }
    }

    /// A tree over `items` built in one pass: each item's hash is XORed into its leaf, then
    /// every inner level is computed once from the level below (`O(items + nodes)`, no
    /// per-item walk to the root).
    ///
    /// # Panics
    /// As [`MerkleTree::new`].
    #[must_use]
    pub fn build(shape: Shape, hasher: H, items: impl IntoIterator<Item = Item>) -> Self {
        let mut t = Self::new(shape, hasher);
        let leaves = &mut t.levels[usize::from(shape.depth)];
        for i in items {
            let leaf = shape.leaf_of(t.hasher.bucket(i.key)) as usize;
            leaves[leaf] ^= t.hasher.item(i.key, i.digest);
        }
        t.rehash_inner();
        t
    }

    /// Recomputes every inner level from the leaves.
    fn rehash_inner(&mut self) {
        let fanout = self.shape.fanout() as usize;
        for l in (0..usize::from(self.shape.depth)).rev() {
            let (upper, lower) = self.levels.split_at_mut(l + 1);
            for (node, children) in upper[l].iter_mut().zip(lower[0].chunks(fanout)) {
                *node = children.iter().fold(0, |acc, h| acc ^ h);
            }
        }
    }

    /// The shape.
    #[must_use]
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The hasher.
    #[must_use]
    pub fn hasher(&self) -> &H {
        &self.hasher
    }

    /// The leaf a key lives in.
    #[must_use]
    pub fn leaf_of(&self, key: Key) -> u32 {
        self.shape.leaf_of(self.hasher.bucket(key))
    }

    /// The root hash: the XOR of every item's hash.
    #[must_use]
    pub fn root(&self) -> u128 {
        self.levels[0][0]
    }

    /// The hashes of every node at `level` (empty past the leaves).
    #[must_use]
    pub fn level(&self, level: u8) -> &[u128] {
        self.levels
            .get(usize::from(level))
            .map_or(&[], Vec::as_slice)
    }

    /// The hash of one node (zero if out of range).
    #[must_use]
    pub fn node(&self, level: u8, node: u32) -> u128 {
        self.level(level).get(node as usize).copied().unwrap_or(0)
    }

    /// Records a write in `leaf`: `old` is the digest the key had (if any), `new` the digest
    /// it has now (if any). `depth + 1` XORs.
    pub fn update(&mut self, leaf: u32, key: Key, old: Option<Digest>, new: Option<Digest>) {
        let mut delta = 0u128;
        if let Some(d) = old {
            delta ^= self.hasher.item(key, d);
        }
        if let Some(d) = new {
            delta ^= self.hasher.item(key, d);
        }
        self.apply(leaf, delta);
    }

    /// XORs `delta` into `leaf` and its ancestors.
    pub fn apply(&mut self, leaf: u32, delta: u128) {
        if delta == 0 {
            return;
        }
        let mut idx = leaf as usize;
        for level in self.levels.iter_mut().rev() {
            if let Some(h) = level.get_mut(idx) {
                *h ^= delta;
            }
            idx >>= self.shape.fanout_bits;
        }
    }

    /// Bytes of hashes held.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.levels.iter().map(|l| l.len() * 16).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hasher::Xxh3;

    #[test]
    fn shape_arithmetic() {
        let s = Shape::default();
        assert_eq!(s.fanout(), 16);
        assert_eq!(s.leaves(), 65_536);
        assert_eq!(s.nodes_at(0), 1);
        assert_eq!(s.children(3), 48..64);
        assert_eq!(s.leaf_range(0, 0), 0..65_536);
        assert_eq!(s.leaf_range(3, 2), 32..48);
        assert_eq!(s.leaf_range(4, 7), 7..8);
        assert_eq!(s.leaf_of(u64::MAX), 65_535);
        assert!(
            !Shape {
                fanout_bits: 0,
                depth: 2
            }
            .is_valid()
        );
        assert!(
            !Shape {
                fanout_bits: 8,
                depth: 4
            }
            .is_valid()
        );
        let flat = Shape {
            fanout_bits: 4,
            depth: 0,
        };
        assert_eq!(flat.leaf_of(u64::MAX), 0);
    }

    #[test]
    fn xor_updates_are_order_independent_and_invertible() {
        let mut a = MerkleTree::new(Shape::default(), Xxh3::default());
        let mut b = MerkleTree::new(Shape::default(), Xxh3::default());
        for k in 0..100u64 {
            let leaf = a.leaf_of(k);
            a.update(leaf, k, None, Some(k * 3));
        }
        for k in (0..100u64).rev() {
            let leaf = b.leaf_of(k);
            b.update(leaf, k, None, Some(k * 3));
        }
        assert_eq!(a.root(), b.root());
        assert_eq!(a.level(4), b.level(4));
        let built = MerkleTree::build(
            Shape::default(),
            Xxh3::default(),
            (0..100u64).map(|k| Item {
                key: k,
                digest: k * 3,
            }),
        );
        for l in 0..=4 {
            assert_eq!(built.level(l), a.level(l));
        }
        let leaf = a.leaf_of(7);
        a.update(leaf, 7, Some(21), Some(22));
        assert_ne!(a.root(), b.root());
        a.update(leaf, 7, Some(22), Some(21));
        assert_eq!(a.root(), b.root());
        for k in 0..100u64 {
            let leaf = a.leaf_of(k);
            a.update(leaf, k, Some(k * 3), None);
        }
        assert!(a.level(2).iter().all(|&h| h == 0));
        assert_eq!(a.root(), 0);
        // Each inner node is the XOR of its children.
        for level in 0..4u8 {
            for (j, &h) in b.level(level).iter().enumerate() {
                let x = b
                    .shape()
                    .children(j as u32)
                    .fold(0, |acc, c| acc ^ b.node(level + 1, c));
                assert_eq!(h, x);
            }
        }
    }
}
