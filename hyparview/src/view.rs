//! A bounded view: peers with their opaque data, in insertion order, with the random picks
//! the protocol needs. Iteration order is deterministic (an `IndexMap`), so the same RNG
//! gives the same choices.

use std::hash::Hash;

use bytes::Bytes;
use indexmap::IndexMap;
use rand::{Rng, RngExt};
use smallvec::SmallVec;

/// Peers and their data, at most `capacity` of them (the caller enforces the bound before
/// inserting, since what to evict is a protocol decision).
#[derive(Debug, Clone)]
pub(crate) struct View<P> {
    peers: IndexMap<P, Bytes>,
    capacity: usize,
}

impl<P: Hash + Eq + Clone> View<P> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            peers: IndexMap::with_capacity(capacity),
            capacity,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.peers.len() >= self.capacity
    }

    pub(crate) fn contains(&self, p: &P) -> bool {
        self.peers.contains_key(p)
    }

    pub(crate) fn get(&self, p: &P) -> Option<&Bytes> {
        self.peers.get(p)
    }

    pub(crate) fn keys(&self) -> impl ExactSizeIterator<Item = &P> {
        self.peers.keys()
    }

    /// Inserts or updates `p`; the caller made room.
    pub(crate) fn insert(&mut self, p: P, data: Bytes) {
        self.peers.insert(p, data);
    }

    pub(crate) fn remove(&mut self, p: &P) -> Option<Bytes> {
        self.peers.swap_remove(p)
    }

    pub(crate) fn clear(&mut self) {
        self.peers.clear();
    }

    /// The entry at index `i`.
    pub(crate) fn at(&self, i: usize) -> Option<(&P, &Bytes)> {
        self.peers.get_index(i)
    }

    /// Removes and returns a random entry.
    pub(crate) fn remove_random(&mut self, rng: &mut impl Rng) -> Option<(P, Bytes)> {
        if self.peers.is_empty() {
            return None;
        }
        let i = rng.random_range(0..self.peers.len());
        self.peers.swap_remove_index(i)
    }

    /// A random peer for which `skip` is false.
    pub(crate) fn pick(&self, rng: &mut impl Rng, skip: impl Fn(&P) -> bool) -> Option<&P> {
        let candidates: SmallVec<[usize; 32]> = (0..self.peers.len())
            .filter(|&i| self.peers.get_index(i).is_some_and(|(p, _)| !skip(p)))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let i = candidates[rng.random_range(0..candidates.len())];
        self.peers.get_index(i).map(|(p, _)| p)
    }

    /// Up to `k` distinct random entries for which `skip` is false, in random order.
    pub(crate) fn sample(
        &self,
        rng: &mut impl Rng,
        k: usize,
        skip: impl Fn(&P) -> bool,
    ) -> SmallVec<[usize; 8]> {
        let mut candidates: SmallVec<[usize; 32]> = (0..self.peers.len())
            .filter(|&i| self.peers.get_index(i).is_some_and(|(p, _)| !skip(p)))
            .collect();
        let k = k.min(candidates.len());
        // Partial Fisher–Yates: the first k slots end up a uniform sample.
        for i in 0..k {
            let j = rng.random_range(i..candidates.len());
            candidates.swap(i, j);
        }
        candidates[..k].iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn picks_respect_skip_and_samples_are_distinct() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut v = View::new(10);
        for p in 0u32..10 {
            v.insert(p, Bytes::new());
        }
        assert!(v.is_full());
        for _ in 0..50 {
            let p = *v.pick(&mut rng, |p| *p != 7).unwrap();
            assert_eq!(p, 7);
            let s = v.sample(&mut rng, 4, |p| p % 2 == 0);
            assert_eq!(s.len(), 4);
            let mut ids: Vec<u32> = s.iter().map(|&i| *v.at(i).unwrap().0).collect();
            assert!(ids.iter().all(|p| p % 2 == 1));
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), 4);
        }
        assert!(v.pick(&mut rng, |_| true).is_none());
        assert_eq!(v.sample(&mut rng, 3, |p| *p != 1).len(), 1);
        let (gone, _) = v.remove_random(&mut rng).unwrap();
        assert!(!v.contains(&gone));
        assert_eq!(v.len(), 9);
    }
}
