//! The dot→key log: for every dot not yet known to be seen by every member, the key it
//! wrote. Sync looks up the keys of the dots a peer misses here, so that exactly those
//! keys travel; garbage collection truncates each node's column below the watermark.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::clock::{Dot, NodeId};

/// Dots by node id then counter, each with its key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DotLog {
    by_id: BTreeMap<NodeId, BTreeMap<u64, Bytes>>,
    len: usize,
}

impl DotLog {
    /// Empty.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no dot is pending.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records that `dot` wrote `key`.
    pub fn insert(&mut self, dot: Dot, key: Bytes) {
        if self
            .by_id
            .entry(dot.id)
            .or_default()
            .insert(dot.counter, key)
            .is_none()
        {
            self.len += 1;
        }
    }

    /// The key `dot` wrote, if still logged.
    #[must_use]
    pub fn get(&self, dot: Dot) -> Option<&Bytes> {
        self.by_id.get(&dot.id)?.get(&dot.counter)
    }

    /// The logged dots of `id` above `counter`, in order.
    pub fn above(&self, id: NodeId, counter: u64) -> impl Iterator<Item = (u64, &Bytes)> {
        self.by_id
            .get(&id)
            .into_iter()
            .flat_map(move |m| m.range(counter.saturating_add(1)..).map(|(&c, k)| (c, k)))
            .filter(move |&(c, _)| c > counter)
    }

    /// Forgets every dot of `id` up to `counter`; returns how many went.
    pub fn truncate(&mut self, id: NodeId, counter: u64) -> usize {
        let Some(m) = self.by_id.get_mut(&id) else {
            return 0;
        };
        let before = m.len();
        *m = match counter.checked_add(1) {
            Some(next) => m.split_off(&next),
            None => BTreeMap::new(),
        };
        let gone = before - m.len();
        if m.is_empty() {
            self.by_id.remove(&id);
        }
        self.len -= gone;
        gone
    }

    /// The ids with pending dots, each with its lowest pending counter.
    pub fn lowest(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.by_id
            .iter()
            .filter_map(|(&id, m)| m.keys().next().map(|&c| (id, c)))
    }

    /// Every entry, by dot.
    pub fn iter(&self) -> impl Iterator<Item = (Dot, &Bytes)> {
        self.by_id
            .iter()
            .flat_map(|(&id, m)| m.iter().map(move |(&c, k)| (Dot::new(id, c), k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_below_a_counter() {
        let mut l = DotLog::new();
        for c in 1..=5 {
            l.insert(Dot::new(7, c), Bytes::from(vec![c as u8]));
        }
        l.insert(Dot::new(8, 1), Bytes::from_static(b"k"));
        assert_eq!(l.above(7, 3).map(|(c, _)| c).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(l.truncate(7, 3), 3);
        assert_eq!(l.len(), 3);
        assert_eq!(l.lowest().collect::<Vec<_>>(), [(7, 4), (8, 1)]);
        assert_eq!(l.truncate(8, u64::MAX), 1);
        assert_eq!(l.len(), 2);
        assert!(l.get(Dot::new(7, 5)).is_some());
    }
}
