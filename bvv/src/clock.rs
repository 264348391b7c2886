//! Dots and the node clock: a bitmap version vector with one [`Entry`] per node id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::entry::Entry;

/// A node's identity in clocks and on the network.
pub type NodeId = u64;

/// One write event: the node that coordinated it and that node's counter for it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Dot {
    /// The node that generated the dot.
    pub id: NodeId,
    /// Its sequence number at that node, from 1.
    pub counter: u64,
}

impl Dot {
    /// The dot `(id, counter)`.
    #[must_use]
    pub fn new(id: NodeId, counter: u64) -> Self {
        Self { id, counter }
    }
}

/// The node clock: per node id, the dots of that node seen here, as a bitmap version
/// vector (DAIS 2015 §4). Every dot a node has seen (written here, or received with its
/// key's container) is in its clock, so one clock summarises the causal past of the
/// whole node, not of one key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeClock {
    entries: BTreeMap<NodeId, Entry>,
}

impl NodeClock {
    /// Nothing seen.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry of `id`, if any dot of it was seen.
    #[must_use]
    pub fn entry(&self, id: NodeId) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// Every counter of `id` up to this one has been seen (0 if none).
    #[must_use]
    pub fn base(&self, id: NodeId) -> u64 {
        self.entries.get(&id).map_or(0, Entry::base)
    }

    /// The entries, by id.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &Entry)> {
        self.entries.iter().map(|(&id, e)| (id, e))
    }

    /// How many ids have an entry.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no dot was ever seen.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `dot` has been seen.
    #[must_use]
    pub fn contains(&self, dot: Dot) -> bool {
        dot.counter == 0
            || self
                .entries
                .get(&dot.id)
                .is_some_and(|e| e.contains(dot.counter))
    }

    /// Records `dot` as seen; `false` (and no change) if it lies further past its entry's
    /// base than a bitmap may reach.
    pub fn add(&mut self, dot: Dot) -> bool {
        if dot.counter == 0 {
            return true;
        }
        let e = self.entries.entry(dot.id).or_default();
        let ok = e.add(dot.counter);
        if *e == Entry::default() {
            self.entries.remove(&dot.id);
        }
        ok
    }

    /// The next dot `id` would generate: one past its base. Only meaningful for the
    /// node's own id, whose entry never has gaps.
    #[must_use]
    pub fn next_dot(&self, id: NodeId) -> Dot {
        Dot::new(id, self.base(id).saturating_add(1))
    }

    /// Joins `other` into `self`: every dot either has seen.
    pub fn join_from(&mut self, other: &NodeClock) {
        for (&id, e) in &other.entries {
            self.entries.entry(id).or_default().join_from(e);
        }
    }

    /// Closes the gaps of `id`'s entry (see [`Entry::close_gaps`]) and raises its base
    /// to at least `at_least`.
    pub(crate) fn close_gaps(&mut self, id: NodeId, at_least: u64) {
        if at_least == 0 && !self.entries.contains_key(&id) {
            return;
        }
        let e = self.entries.entry(id).or_default();
        e.close_gaps();
        e.raise_base(at_least);
    }

    /// Keeps only the entries of the ids `keep` accepts.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(NodeId) -> bool) {
        self.entries.retain(|&id, _| keep(id));
    }

    /// The least upper bound of two clocks.
    #[must_use]
    pub fn join(&self, other: &NodeClock) -> NodeClock {
        let mut j = self.clone();
        j.join_from(other);
        j
    }

    /// Whether `self` has seen every dot `other` has.
    #[must_use]
    pub fn dominates(&self, other: &NodeClock) -> bool {
        other
            .entries
            .iter()
            .all(|(&id, e)| match self.entries.get(&id) {
                Some(mine) => mine.dominates(e),
                None => *e == Entry::default(),
            })
    }

    /// The dots `self` has seen that `other` has not, by id then counter: `self ∖ other`.
    /// Lazy, since a far-ahead clock names many dots; callers bound what they take.
    pub fn missing_dots<'a>(&'a self, other: &'a NodeClock) -> impl Iterator<Item = Dot> + 'a {
        static EMPTY: Entry = Entry::empty();
        self.entries.iter().flat_map(move |(&id, mine)| {
            let theirs = other.entries.get(&id).unwrap_or(&EMPTY);
            theirs.missing_from(mine).map(move |c| Dot::new(id, c))
        })
    }

    /// `|self ∖ other|`, saturating.
    #[must_use]
    pub fn missing_count(&self, other: &NodeClock) -> u64 {
        self.entries.iter().fold(0u64, |n, (&id, mine)| {
            let c = other.entries.get(&id).map_or_else(
                || Entry::new().missing_count(mine),
                |t| t.missing_count(mine),
            );
            n.saturating_add(c)
        })
    }

    /// Bytes of the clock's encoding.
    #[must_use]
    pub fn wire_len(&self) -> usize {
        epidemic_core::codec::body_len(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(dots: &[(u64, u64)]) -> NodeClock {
        let mut c = NodeClock::new();
        for &(id, n) in dots {
            assert!(c.add(Dot::new(id, n)));
        }
        c
    }

    #[test]
    fn missing_dots_by_id() {
        let b = clock(&[(1, 1), (1, 2), (1, 3), (1, 5), (2, 2), (3, 1)]);
        let a = clock(&[(1, 1), (1, 5), (2, 1)]);
        let m: Vec<Dot> = b.missing_dots(&a).collect();
        assert_eq!(
            m,
            [
                Dot::new(1, 2),
                Dot::new(1, 3),
                Dot::new(2, 2),
                Dot::new(3, 1)
            ]
        );
        assert_eq!(b.missing_count(&a), 4);
        let j = a.join(&b);
        assert!(j.dominates(&a) && j.dominates(&b));
        assert_eq!(j.missing_dots(&b).collect::<Vec<_>>(), [Dot::new(2, 1)]);
        assert_eq!(j.next_dot(1), Dot::new(1, 4));
    }
}
