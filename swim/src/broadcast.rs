//! The dissemination queue: updates waiting to be piggybacked, least-sent and freshest
//! first, each dropped after its retransmit limit (memberlist's `TransmitLimitedQueue`).
//!
//! A newer update about the same member, or a newer user broadcast with the same origin and
//! key, replaces the queued one (invalidation). The queue is bounded: when full, the most
//! sent of its items is dropped and counted.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use epidemic_core::codec;
use hashbrown::HashMap;
use serde::Serialize;

use crate::Address;
use crate::message::Update;

/// What makes two queued items the same subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject<A> {
    Member(A),
    Keyed(A, u64),
    Unkeyed(A, u32),
}

fn subject<A: Clone>(u: &Update<A>) -> Subject<A> {
    match u {
        Update::User {
            origin,
            key: Some(k),
            ..
        } => Subject::Keyed(origin.clone(), *k),
        Update::User { origin, seq, .. } => Subject::Unkeyed(origin.clone(), *seq),
        Update::Alive { member, .. }
        | Update::Suspect { member, .. }
        | Update::Dead { member, .. }
        | Update::Left { member, .. } => Subject::Member(member.clone()),
    }
}

/// Order: fewest transmits first, then newest (highest id) first.
type Slot = (u32, Reverse<u64>);

#[derive(Debug, Clone)]
struct Item<A> {
    update: Update<A>,
    /// Encoded size in bytes, computed once.
    size: usize,
}

/// The bounded dissemination queue.
#[derive(Debug, Clone)]
pub(crate) struct TransmitQueue<A: Address> {
    items: BTreeMap<Slot, Item<A>>,
    index: HashMap<Subject<A>, Slot>,
    next_id: u64,
    capacity: usize,
    /// Dropped at the bound.
    pub(crate) dropped: u64,
    /// Replaced by a newer update about the same subject.
    pub(crate) invalidated: u64,
}

impl<A: Address + Serialize> TransmitQueue<A> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            items: BTreeMap::new(),
            index: HashMap::new(),
            next_id: 0,
            capacity,
            dropped: 0,
            invalidated: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Queues `update`, replacing any queued update about the same subject. Returns
    /// whether an item was dropped at the bound.
    pub(crate) fn push(&mut self, update: Update<A>) -> bool {
        let key = subject(&update);
        if let Some(slot) = self.index.remove(&key) {
            self.items.remove(&slot);
            self.invalidated += 1;
        }
        let mut dropped = false;
        if self.items.len() >= self.capacity {
            // The most-sent, oldest item goes: it has done the most of its work.
            if let Some((_, item)) = self.items.pop_last() {
                self.index.remove(&subject(&item.update));
                self.dropped += 1;
                dropped = true;
            }
        }
        let slot = (0, Reverse(self.next_id));
        self.next_id += 1;
        let size = codec::body_len(&update);
        self.index.insert(key, slot);
        self.items.insert(slot, Item { update, size });
        dropped
    }

    /// Fills `out` with updates whose encoded sizes fit in `budget` bytes, least-sent and
    /// freshest first; each chosen one counts a transmit and leaves the queue at `limit`.
    pub(crate) fn take(&mut self, mut budget: usize, limit: u32, out: &mut Vec<Update<A>>) {
        // The smallest possible update is a few bytes; stop scanning once nothing can fit.
        const MIN_UPDATE: usize = 3;
        let mut chosen: smallvec::SmallVec<[Slot; 32]> = smallvec::SmallVec::new();
        for (slot, item) in &self.items {
            if budget < MIN_UPDATE {
                break;
            }
            if item.size <= budget {
                budget -= item.size;
                chosen.push(*slot);
            }
        }
        for slot in chosen {
            // The slot came from the map a moment ago.
            let Some(item) = self.items.remove(&slot) else {
                continue;
            };
            out.push(item.update.clone());
            let subject = subject(&item.update);
            let transmits = slot.0 + 1;
            if transmits >= limit {
                self.index.remove(&subject);
            } else {
                let next = (transmits, slot.1);
                self.index.insert(subject, next);
                self.items.insert(next, item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn alive(m: u64, inc: u32) -> Update<u64> {
        Update::Alive {
            member: m,
            incarnation: inc,
            meta: Bytes::new(),
        }
    }

    #[test]
    fn least_sent_then_freshest_first_and_retransmit_limit() {
        let mut q = TransmitQueue::new(16);
        q.push(alive(1, 0));
        q.push(alive(2, 0));
        let mut out = Vec::new();
        q.take(1000, 2, &mut out);
        assert_eq!(out, [alive(2, 0), alive(1, 0)], "newest first");
        q.push(alive(3, 0));
        out.clear();
        q.take(1000, 2, &mut out);
        assert_eq!(out, [alive(3, 0), alive(2, 0), alive(1, 0)], "unsent first");
        assert_eq!(q.len(), 1, "1 and 2 reached the limit of 2");
        out.clear();
        q.take(1000, 2, &mut out);
        assert_eq!(out, [alive(3, 0)]);
        assert!(q.is_empty());
    }

    #[test]
    fn newer_update_about_a_member_invalidates_the_old() {
        let mut q = TransmitQueue::new(16);
        q.push(alive(1, 0));
        q.push(Update::Suspect {
            member: 1,
            incarnation: 0,
            from: 2,
        });
        assert_eq!(q.len(), 1);
        assert_eq!(q.invalidated, 1);
        let user = |seq, key| Update::User {
            origin: 9u64,
            seq,
            key,
            payload: Bytes::from_static(b"x"),
        };
        q.push(user(1, Some(5)));
        q.push(user(2, Some(5)));
        q.push(user(3, None));
        q.push(user(4, None));
        assert_eq!(
            q.len(),
            4,
            "keyed broadcasts supersede, unkeyed ones do not"
        );
    }

    #[test]
    fn packing_respects_the_budget_and_the_bound() {
        let mut q = TransmitQueue::new(3);
        for m in 0..4 {
            assert_eq!(q.push(alive(m, 0)), m == 3);
        }
        assert_eq!((q.len(), q.dropped), (3, 1));
        let size = codec::body_len(&alive(1, 0));
        let mut out = Vec::new();
        q.take(2 * size + 1, 10, &mut out);
        assert_eq!(out.len(), 2);
    }
}
