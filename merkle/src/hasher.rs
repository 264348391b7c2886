//! Hashing of the canonical form of an item: the pluggable [`ItemHasher`] and its default,
//! [`Xxh3`] (XXH3-128, a fast non-cryptographic hash).

use xxhash_rust::xxh3::{xxh3_64_with_seed, xxh3_128_with_seed};

use crate::{Digest, Key};

/// How a replica hashes keys and items. Both replicas of a sync must use the same hasher
/// (its [`id`](ItemHasher::id) travels in the session's first message and a mismatch aborts
/// the session).
///
/// The canonical form of an item is the 16 bytes `key.to_le_bytes() ++ digest.to_le_bytes()`.
pub trait ItemHasher: Clone + std::fmt::Debug {
    /// A number naming this hash function and its seeds on the wire.
    fn id(&self) -> u32;
    /// 64 well-mixed bits of the key alone: its top bits choose the key's leaf, so a key
    /// stays in one leaf whatever its version.
    fn bucket(&self, key: Key) -> u64;
    /// The 128-bit hash of the item's canonical form: what the leaves XOR together.
    fn item(&self, key: Key, digest: Digest) -> u128;
}

/// The canonical 16-byte form of an item.
#[must_use]
pub fn canonical(key: Key, digest: Digest) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&key.to_le_bytes());
    b[8..].copy_from_slice(&digest.to_le_bytes());
    b
}

/// XXH3 (64 bits for buckets, 128 bits for items), seeded: the default hasher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Xxh3 {
    seed: u64,
}

impl Xxh3 {
    /// XXH3 with a seed of its own (both replicas must use the same).
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        Self { seed }
    }
}

/// Seed offset that makes the bucket hash independent of the item hash.
const BUCKET_SEED: u64 = 0x6d65_726b_6c65_5f62;

impl ItemHasher for Xxh3 {
    fn id(&self) -> u32 {
        // Id 1 = XXH3, with the low 31 bits of the seed folded in so that two replicas with
        // different seeds refuse each other.
        1 ^ ((self.seed as u32) << 1)
    }

    fn bucket(&self, key: Key) -> u64 {
        xxh3_64_with_seed(&key.to_le_bytes(), self.seed ^ BUCKET_SEED)
    }

    fn item(&self, key: Key, digest: Digest) -> u128 {
        xxh3_128_with_seed(&canonical(key, digest), self.seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_hash_depends_on_key_and_digest() {
        let h = Xxh3::default();
        assert_ne!(h.item(1, 2), h.item(2, 1));
        assert_ne!(h.item(1, 2), h.item(1, 3));
        assert_eq!(h.item(1, 2), Xxh3::default().item(1, 2));
        assert_ne!(h.item(1, 2), Xxh3::with_seed(9).item(1, 2));
        assert_ne!(h.id(), Xxh3::with_seed(9).id());
    }
}
