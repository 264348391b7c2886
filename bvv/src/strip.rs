//! Keys whose stored causal context is not yet empty, indexed by what they wait for: the
//! first context entry `(id, n)` the node clock's base does not cover. When the base of
//! `id` reaches `n`, the key is stripped again, so re-stripping costs nothing for keys
//! that cannot shrink yet.

use std::collections::BTreeSet;

use bytes::Bytes;
use hashbrown::HashMap;

use crate::clock::{NodeClock, NodeId};

/// The strip queue.
#[derive(Debug, Clone, Default)]
pub struct StripQueue {
    by_wait: BTreeSet<(NodeId, u64, Bytes)>,
    at: HashMap<Bytes, (NodeId, u64)>,
}

impl StripQueue {
    /// Records that `key` waits for `wait` (or for nothing: `None`).
    pub fn set(&mut self, key: &Bytes, wait: Option<(NodeId, u64)>) {
        if self.at.get(key).copied() == wait {
            return;
        }
        if let Some((id, n)) = self.at.remove(key) {
            self.by_wait.remove(&(id, n, key.clone()));
        }
        if let Some((id, n)) = wait {
            self.by_wait.insert((id, n, key.clone()));
            self.at.insert(key.clone(), (id, n));
        }
    }

    /// Up to `limit` keys whose wait the clock's bases now cover.
    #[must_use]
    pub fn due(&self, clock: &NodeClock, limit: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut ids: Vec<NodeId> = Vec::new();
        let mut next = self.by_wait.first().map(|f| f.0);
        while let Some(id) = next {
            ids.push(id);
            next = id.checked_add(1).and_then(|n| {
                self.by_wait
                    .range((n, 0, Bytes::new())..)
                    .next()
                    .map(|f| f.0)
            });
        }
        for id in ids {
            let base = clock.base(id);
            for (_, _, key) in self
                .by_wait
                .range((id, 0, Bytes::new())..)
                .take_while(|(i, n, _)| *i == id && *n <= base)
            {
                if out.len() >= limit {
                    return out;
                }
                out.push(key.clone());
            }
        }
        out
    }

    /// Every waiting key (in no particular order: for aggregates only).
    pub fn keys(&self) -> impl Iterator<Item = &Bytes> {
        self.at.keys()
    }

    /// Keys waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether no key waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Dot;

    #[test]
    fn keys_come_due_when_the_base_reaches_them() {
        let mut q = StripQueue::default();
        let (a, b) = (Bytes::from_static(b"a"), Bytes::from_static(b"b"));
        q.set(&a, Some((1, 3)));
        q.set(&b, Some((2, 1)));
        let mut c = NodeClock::new();
        assert!(q.due(&c, 10).is_empty());
        c.add(Dot::new(2, 1));
        assert_eq!(q.due(&c, 10), std::slice::from_ref(&b));
        q.set(&b, None);
        for n in 1..=3 {
            c.add(Dot::new(1, n));
        }
        assert_eq!(q.due(&c, 10), std::slice::from_ref(&a));
        q.set(&a, Some((1, 5)));
        assert!(q.due(&c, 10).is_empty());
        assert_eq!(q.len(), 1);
    }
}
