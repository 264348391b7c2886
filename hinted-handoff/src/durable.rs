//! What a node asks the application to persist, and [`MemLog`], the in-memory durable log
//! the simulator carries across a crash.
//!
//! The machine never writes to disk. It emits [`Event::Persist`](crate::Event::Persist)
//! with a [`LogRecord`]; the application makes it durable before carrying out the next
//! output (the drain contract already orders outputs), so that a hint is on disk before
//! the write it covers is acknowledged. After a restart, the live records (every `Put`
//! not followed by its `Remove`) rebuild the node with [`Node::from_log`](crate::Node::from_log).

use hashbrown::HashMap;
use indexmap_free::OrderedMap;
use serde::{Deserialize, Serialize};

use crate::message::{HintId, Mutation, NodeId};

/// A hint as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HintRecord {
    /// The hint's id on its holder.
    pub id: HintId,
    /// Who must receive the mutation.
    pub target: NodeId,
    /// The mutation.
    pub mutation: Mutation,
    /// When the hint was created, on the application's wall clock in milliseconds (so
    /// that the TTL survives a restart).
    pub created_ms: u64,
    /// Whether this node keeps the data as a sloppy-quorum guest for `target` (and drops
    /// its copy once `target` acknowledges).
    pub handoff: bool,
}

/// One append to the hint log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogRecord {
    /// A new hint.
    Put(HintRecord),
    /// A hint delivered or dropped.
    Remove(HintId),
}

/// An in-memory durable hint log: the live records in append order, with removes applied.
/// The simulator's restart factory carries exactly this over a crash; a real deployment
/// uses the file log (feature `log`) or its own store.
#[derive(Debug, Clone, Default)]
pub struct MemLog {
    live: OrderedMap,
    appended: u64,
}

impl MemLog {
    /// An empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one record.
    pub fn apply(&mut self, record: &LogRecord) {
        self.appended += 1;
        match record {
            LogRecord::Put(h) => self.live.insert(h.clone()),
            LogRecord::Remove(id) => self.live.remove(*id),
        }
    }

    /// The live hints, oldest append first.
    pub fn records(&self) -> impl Iterator<Item = &HintRecord> {
        self.live.iter()
    }

    /// Live hints.
    #[must_use]
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no hint is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.live.len() == 0
    }

    /// Records applied since creation.
    #[must_use]
    pub fn appended(&self) -> u64 {
        self.appended
    }
}

/// Insertion-ordered map of live hints without a dependency: a sequence-keyed `BTreeMap`
/// plus an id index.
mod indexmap_free {
    use std::collections::BTreeMap;

    use super::{HashMap, HintId, HintRecord};

    #[derive(Debug, Clone, Default)]
    pub(super) struct OrderedMap {
        by_seq: BTreeMap<u64, HintRecord>,
        seq_of: HashMap<HintId, u64>,
        next: u64,
    }

    impl OrderedMap {
        pub(super) fn insert(&mut self, h: HintRecord) {
            self.remove(h.id);
            self.seq_of.insert(h.id, self.next);
            self.by_seq.insert(self.next, h);
            self.next += 1;
        }

        pub(super) fn remove(&mut self, id: HintId) {
            if let Some(seq) = self.seq_of.remove(&id) {
                self.by_seq.remove(&seq);
            }
        }

        pub(super) fn iter(&self) -> impl Iterator<Item = &HintRecord> {
            self.by_seq.values()
        }

        pub(super) fn len(&self) -> usize {
            self.by_seq.len()
        }
    }
}
