//! The member table: entries in a vector (insertion order, `swap_remove` on removal, so
//! iteration and random picks by position are deterministic) and a hash index of `u32`
//! positions. A member of an N-member group holds N entries, so the table is most of a
//! big group's memory: this layout costs the entry itself plus about five to ten bytes
//! of index per member, where an `IndexMap` adds a stored hash and a `usize` index
//! (about twice as much on top of the entry).

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::Address;
use crate::swim::Member;

/// Members by address, in a deterministic order.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemberTable<A> {
    entries: Vec<(A, Member)>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl<A: Address> MemberTable<A> {
    pub(crate) fn new() -> Self {
        Self {
            entries: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries it holds without reallocating.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity().min(self.index.capacity())
    }

    /// Room for exactly `additional` more entries (the index rounds up to its buckets).
    pub(crate) fn reserve_exact(&mut self, additional: usize) {
        self.entries.reserve_exact(additional);
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index
            .reserve(additional, |&i| hasher.hash_one(&entries[i as usize].0));
    }

    fn position(&self, key: &A) -> Option<usize> {
        let hash = self.hasher.hash_one(key);
        self.index
            .find(hash, |&i| self.entries[i as usize].0 == *key)
            .map(|&i| i as usize)
    }

    pub(crate) fn get(&self, key: &A) -> Option<&Member> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    pub(crate) fn get_mut(&mut self, key: &A) -> Option<&mut Member> {
        self.position(key).map(|i| &mut self.entries[i].1)
    }

    /// The entry at `i` in table order.
    pub(crate) fn get_index(&self, i: usize) -> Option<(&A, &Member)> {
        self.entries.get(i).map(|(a, m)| (a, m))
    }

    /// Adds `key` at the end, or replaces its entry in place.
    ///
    /// # Panics
    /// Beyond `u32::MAX` entries (`Config::max_members` bounds the table far below).
    pub(crate) fn insert(&mut self, key: A, member: Member) {
        if let Some(i) = self.position(&key) {
            self.entries[i].1 = member;
            return;
        }
        let hash = self.hasher.hash_one(&key);
        let i = u32::try_from(self.entries.len()).expect("fewer than 2^32 members");
        self.entries.push((key, member));
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index
            .insert_unique(hash, i, |&j| hasher.hash_one(&entries[j as usize].0));
    }

    /// Removes `key`; the last entry takes its place (as `IndexMap::swap_remove`).
    pub(crate) fn swap_remove(&mut self, key: &A) -> Option<Member> {
        let hash = self.hasher.hash_one(key);
        let entries = &self.entries;
        let Ok(found) = self
            .index
            .find_entry(hash, |&i| entries[i as usize].0 == *key)
        else {
            return None;
        };
        let (i, _) = found.remove();
        let last = u32::try_from(self.entries.len() - 1).expect("fewer than 2^32 members");
        if i != last {
            let moved = self.hasher.hash_one(&self.entries[last as usize].0);
            if let Some(slot) = self.index.find_mut(moved, |&j| j == last) {
                *slot = i;
            }
        }
        Some(self.entries.swap_remove(i as usize).1)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&A, &Member)> {
        self.entries.iter().map(|(a, m)| (a, m))
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&A, &mut Member)> {
        self.entries.iter_mut().map(|(a, m)| (&*a, m))
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Member> {
        self.entries.iter().map(|(_, m)| m)
    }

    /// Heap bytes held: the entries' capacity and the index's allocation.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(A, Member)>() + self.index.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn member(inc: u32) -> Member {
        Member::new(inc, Bytes::new())
    }

    #[test]
    fn insert_get_and_swap_remove_keep_the_index_in_step() {
        let mut t: MemberTable<u64> = MemberTable::new();
        for k in 0..100 {
            t.insert(k, member(u32::try_from(k).unwrap()));
        }
        t.insert(7, member(70));
        assert_eq!(t.len(), 100);
        assert_eq!(t.get(&7).unwrap().incarnation, 70, "replaced in place");
        assert_eq!(t.swap_remove(&10).unwrap().incarnation, 10);
        assert!(t.swap_remove(&10).is_none());
        // The last entry moved into the hole, and is still found.
        assert_eq!(t.get_index(10).map(|(a, _)| *a), Some(99));
        assert_eq!(t.get(&99).unwrap().incarnation, 99);
        t.swap_remove(&99);
        assert_eq!(t.len(), 98);
        for k in (0..99).filter(|k| *k != 10) {
            assert!(t.get(&k).is_some(), "{k}");
        }
        let order: Vec<u64> = t.iter().map(|(a, _)| *a).collect();
        assert_eq!(order[..12], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 98, 11]);
        t.get_mut(&3).unwrap().incarnation = 33;
        assert_eq!(t.values().nth(3).unwrap().incarnation, 33);
    }

    #[test]
    fn reserve_exact_grows_by_what_is_asked() {
        let mut t: MemberTable<u64> = MemberTable::new();
        t.reserve_exact(1000);
        let cap = t.capacity();
        assert!((1000..1100).contains(&cap), "{cap}");
        for k in 0..1000 {
            t.insert(k, member(0));
        }
        assert_eq!(t.capacity(), cap, "no reallocation");
    }
}
