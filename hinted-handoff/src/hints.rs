//! [`HintStore`]: the hints a node holds, per target in creation order, bounded per target
//! and in total, with the guest copies (sloppy-quorum handoffs) they cover.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use crate::durable::HintRecord;
use crate::message::{HintId, Mutation, NodeId};

/// Why a hint was dropped, or never stored. Each is reported as
/// [`Event::HintDropped`](crate::Event::HintDropped): Cassandra drops these silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DropReason {
    /// The target had been down longer than the max hint window: no hint was created.
    Window,
    /// The hint outlived its TTL before delivery.
    Ttl,
    /// The target already had the maximum number of hints.
    TargetBound,
    /// The node already held the maximum number of hints.
    TotalBound,
}

/// A hint held in memory.
#[derive(Debug, Clone)]
pub(crate) struct Hint {
    /// The hint's id.
    pub(crate) id: HintId,
    /// Who must receive the mutation.
    pub(crate) target: NodeId,
    /// The mutation.
    pub(crate) mutation: Mutation,
    /// When it was created (for the TTL).
    pub(crate) created: Instant,
    /// Wall-clock milliseconds at creation (what is persisted).
    pub(crate) created_ms: u64,
    /// Whether this node keeps the data as a guest for `target`.
    pub(crate) handoff: bool,
    /// Not replayed before this instant (a hint for a target that may still answer the
    /// original write).
    pub(crate) ready_at: Instant,
    /// Creation order on this node.
    pub(crate) seq: u64,
}

impl Hint {
    /// The persisted form.
    #[must_use]
    pub(crate) fn record(&self) -> HintRecord {
        HintRecord {
            id: self.id,
            target: self.target,
            mutation: self.mutation.clone(),
            created_ms: self.created_ms,
            handoff: self.handoff,
        }
    }
}

/// Guest copies of one key: how many handoff hints cover it and their newest timestamp.
#[derive(Debug, Clone, Copy, Default)]
struct Guest {
    hints: u32,
    newest: u64,
}

/// Every hint a node holds.
#[derive(Debug, Default)]
pub(crate) struct HintStore {
    hints: HashMap<HintId, Hint>,
    /// Per target, hints in creation order.
    by_target: BTreeMap<NodeId, BTreeMap<u64, HintId>>,
    guests: HashMap<Bytes, Guest>,
    next_seq: u64,
    max_per_target: usize,
    max_total: usize,
}

impl HintStore {
    pub(crate) fn new(max_per_target: usize, max_total: usize) -> Self {
        Self {
            max_per_target,
            max_total,
            ..Self::default()
        }
    }

    /// Whether a hint for `target` would be refused, and why.
    pub(crate) fn refuses(&self, target: NodeId) -> Option<DropReason> {
        if self.hints.len() >= self.max_total {
            Some(DropReason::TotalBound)
        } else if self.count_for(target) >= self.max_per_target {
            Some(DropReason::TargetBound)
        } else {
            None
        }
    }

    /// Inserts a hint (the caller checked [`refuses`](Self::refuses) and id uniqueness).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert(
        &mut self,
        id: HintId,
        target: NodeId,
        mutation: Mutation,
        created: Instant,
        created_ms: u64,
        handoff: bool,
        ready_at: Instant,
    ) -> &Hint {
        let seq = self.next_seq;
        self.next_seq += 1;
        if handoff {
            let g = self.guests.entry(mutation.key.clone()).or_default();
            g.hints += 1;
            g.newest = g.newest.max(mutation.timestamp);
        }
        self.by_target.entry(target).or_default().insert(seq, id);
        self.hints.entry(id).or_insert(Hint {
            id,
            target,
            mutation,
            created,
            created_ms,
            handoff,
            ready_at,
            seq,
        })
    }

    /// Removes a hint. For a handoff hint that was the last guest hint of its key, also
    /// returns the newest guest timestamp of that key: the copy the store may now discard.
    pub(crate) fn remove(&mut self, id: HintId) -> Option<(Hint, Option<u64>)> {
        let hint = self.hints.remove(&id)?;
        if let Some(per) = self.by_target.get_mut(&hint.target) {
            per.remove(&hint.seq);
            if per.is_empty() {
                self.by_target.remove(&hint.target);
            }
        }
        let mut discard = None;
        if hint.handoff {
            if let Some(g) = self.guests.get_mut(&hint.mutation.key) {
                g.hints = g.hints.saturating_sub(1);
                if g.hints == 0 {
                    discard = Some(g.newest);
                    self.guests.remove(&hint.mutation.key);
                }
            }
        }
        Some((hint, discard))
    }

    pub(crate) fn get(&self, id: HintId) -> Option<&Hint> {
        self.hints.get(&id)
    }

    pub(crate) fn contains(&self, id: HintId) -> bool {
        self.hints.contains_key(&id)
    }

    pub(crate) fn len(&self) -> usize {
        self.hints.len()
    }

    pub(crate) fn count_for(&self, target: NodeId) -> usize {
        self.by_target.get(&target).map_or(0, BTreeMap::len)
    }

    /// Targets with hints, in order.
    pub(crate) fn targets(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.by_target.keys().copied()
    }

    /// A target's hints, oldest first.
    pub(crate) fn for_target(&self, target: NodeId) -> impl Iterator<Item = &Hint> + '_ {
        self.by_target
            .get(&target)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|id| self.hints.get(id))
    }

    /// A target's hints from creation sequence `from` on, oldest first.
    pub(crate) fn for_target_from(
        &self,
        target: NodeId,
        from: u64,
    ) -> impl Iterator<Item = &Hint> + '_ {
        self.by_target
            .get(&target)
            .into_iter()
            .flat_map(move |m| m.range(from..).map(|(_, id)| id))
            .filter_map(|id| self.hints.get(id))
    }

    /// Every hint, by target then age.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Hint> + '_ {
        self.by_target
            .values()
            .flat_map(|m| m.values())
            .filter_map(|id| self.hints.get(id))
    }
}
