//! The event queue: one heap ordered by `(time, seq)`.
//!
//! The heap holds 24-byte keys; the events themselves (which carry messages of any size)
//! sit in a slab with a free list, so sifting never moves a payload.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A position in the queue: virtual nanoseconds, then insertion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    at: u64,
    seq: u64,
    slot: u32,
}

/// A min-queue of `T` by `(at, insertion order)`.
#[derive(Debug)]
pub(crate) struct EventQueue<T> {
    heap: BinaryHeap<Reverse<Key>>,
    slab: Vec<Option<T>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<T> EventQueue<T> {
    pub(crate) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
        }
    }

    /// Schedules `item` at virtual time `at`; returns its sequence number.
    pub(crate) fn push(&mut self, at: u64, item: T) -> u64 {
        let slot = if let Some(slot) = self.free.pop() {
            self.slab[slot as usize] = Some(item);
            slot
        } else {
            // A simulation with four billion events in flight has run out of memory first.
            let slot = u32::try_from(self.slab.len()).expect("fewer than 2^32 events in flight");
            self.slab.push(Some(item));
            slot
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Key { at, seq, slot }));
        seq
    }

    /// The time of the earliest event.
    pub(crate) fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(k)| k.at)
    }

    /// Removes the earliest event: `(time, seq, item)`.
    pub(crate) fn pop(&mut self) -> Option<(u64, u64, T)> {
        let Reverse(key) = self.heap.pop()?;
        // Every key in the heap points at a filled slot: slots are emptied only here.
        let item = self.slab[key.slot as usize]
            .take()
            .expect("heap keys point at filled slots");
        self.free.push(key.slot);
        Some((key.at, key.seq, item))
    }

    /// Events queued.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_insertion() {
        let mut q = EventQueue::new();
        q.push(5, 'c');
        q.push(1, 'a');
        q.push(5, 'd');
        q.push(1, 'b');
        let order: Vec<char> = std::iter::from_fn(|| q.pop().map(|(_, _, c)| c)).collect();
        assert_eq!(order, ['a', 'b', 'c', 'd']);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn slots_are_reused() {
        let mut q = EventQueue::new();
        for round in 0..100u64 {
            q.push(round, round);
            q.push(round, round + 1000);
            assert_eq!(q.pop().map(|x| x.2), Some(round));
            assert_eq!(q.pop().map(|x| x.2), Some(round + 1000));
        }
        assert!(q.slab.len() <= 2);
    }
}
