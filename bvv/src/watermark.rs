//! The watermark matrix: for each peer (row), what this node knows that peer has seen of
//! every node's dots (column), as the base of that peer's clock entry. A dot `(q, n)` is
//! known to be everywhere once every member's cell for `q` is at least `n`; only then
//! may the dot→key log forget it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::clock::{NodeClock, NodeId};

/// Rows by peer, cells by node id. Cells only grow.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Watermark {
    rows: BTreeMap<NodeId, BTreeMap<NodeId, u64>>,
}

impl Watermark {
    /// No knowledge.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// What this node knows `peer` has seen of `id`'s dots (every counter up to it).
    #[must_use]
    pub fn get(&self, peer: NodeId, id: NodeId) -> u64 {
        self.rows
            .get(&peer)
            .and_then(|r| r.get(&id))
            .copied()
            .unwrap_or(0)
    }

    /// Raises one cell.
    pub fn raise(&mut self, peer: NodeId, id: NodeId, counter: u64) {
        if counter == 0 {
            return;
        }
        let cell = self.rows.entry(peer).or_default().entry(id).or_default();
        *cell = (*cell).max(counter);
    }

    /// Raises `peer`'s row to the bases of its clock, for the columns `known` accepts.
    pub fn update_row(&mut self, peer: NodeId, clock: &NodeClock, known: impl Fn(NodeId) -> bool) {
        for (id, e) in clock.iter() {
            if known(id) {
                self.raise(peer, id, e.base());
            }
        }
    }

    /// Joins another node's matrix, for the rows and columns `known` accepts.
    pub fn join_from(
        &mut self,
        other: &Watermark,
        row: impl Fn(NodeId) -> bool,
        col: impl Fn(NodeId) -> bool,
    ) {
        for (&peer, cells) in &other.rows {
            if !row(peer) {
                continue;
            }
            for (&id, &n) in cells {
                if col(id) {
                    self.raise(peer, id, n);
                }
            }
        }
    }

    /// The smallest cell of column `id` over `members`: every dot of `id` up to it has
    /// been seen by all of them.
    #[must_use]
    pub fn min(&self, id: NodeId, members: &BTreeSet<NodeId>) -> u64 {
        members.iter().map(|&p| self.get(p, id)).min().unwrap_or(0)
    }

    /// Whether `clock`, claimed to be `peer`'s, is older than what this matrix already
    /// knows `peer` has seen (a clock only grows, so such a clock is a stale copy: a
    /// duplicated or long-delayed message).
    #[must_use]
    pub fn is_behind(&self, peer: NodeId, clock: &NodeClock) -> bool {
        self.rows
            .get(&peer)
            .is_some_and(|row| row.iter().any(|(&id, &n)| clock.base(id) < n))
    }

    /// Forgets `peer`'s row (its column stays: its dots still travel).
    pub fn remove_row(&mut self, peer: NodeId) {
        self.rows.remove(&peer);
    }

    /// The rows, by peer.
    pub fn rows(&self) -> impl Iterator<Item = (NodeId, &BTreeMap<NodeId, u64>)> {
        self.rows.iter().map(|(&p, r)| (p, r))
    }

    /// Number of cells.
    #[must_use]
    pub fn cells(&self) -> usize {
        self.rows.values().map(BTreeMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Dot;

    #[test]
    fn min_over_members_and_rows_only_grow() {
        let mut w = Watermark::new();
        let mut c = NodeClock::new();
        for n in 1..=5 {
            c.add(Dot::new(9, n));
        }
        w.update_row(1, &c, |_| true);
        w.raise(2, 9, 3);
        w.raise(2, 9, 2);
        let members: BTreeSet<NodeId> = [1, 2].into();
        assert_eq!(w.min(9, &members), 3);
        let three: BTreeSet<NodeId> = [1, 2, 3].into();
        assert_eq!(w.min(9, &three), 0);
        w.remove_row(2);
        assert_eq!(w.get(2, 9), 0);
    }
}
