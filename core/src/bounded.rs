//! [`BoundedQueue`]: a FIFO with a configured bound that counts what it drops.

use std::collections::VecDeque;

/// Which item a full [`BoundedQueue`] gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Refuse the item being pushed (keep what is queued): outboxes, request queues.
    #[default]
    DropNewest,
    /// Evict the oldest item to make room: caches of recent updates.
    DropOldest,
}

/// A FIFO that never grows past its capacity.
///
/// Every queue in an epidemic machine has a configured bound (DESIGN §2). When full, a push
/// drops one item according to the [`Overflow`] policy, counts it, and hands it back so the
/// machine can report it as an event: nothing is dropped silently.
#[derive(Debug, Clone)]
pub struct BoundedQueue<T> {
    items: VecDeque<T>,
    capacity: usize,
    overflow: Overflow,
    dropped: u64,
}

impl<T> BoundedQueue<T> {
    /// A queue holding at most `capacity` items. A capacity of zero drops every push.
    #[must_use]
    pub fn new(capacity: usize, overflow: Overflow) -> Self {
        Self {
            items: VecDeque::new(),
            capacity,
            overflow,
            dropped: 0,
        }
    }

    /// Appends `item`. Returns the item dropped to respect the bound, if any (the pushed
    /// item itself under [`Overflow::DropNewest`]).
    #[must_use = "a dropped item should be reported"]
    pub fn push(&mut self, item: T) -> Option<T> {
        if self.items.len() < self.capacity {
            self.items.push_back(item);
            return None;
        }
        self.dropped += 1;
        match self.overflow {
            Overflow::DropNewest => Some(item),
            Overflow::DropOldest => {
                let evicted = self.items.pop_front();
                if self.capacity == 0 {
                    return Some(item);
                }
                self.items.push_back(item);
                evicted
            }
        }
    }

    /// Removes the oldest item.
    pub fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// The oldest item.
    #[must_use]
    pub fn front(&self) -> Option<&T> {
        self.items.front()
    }

    /// Items queued.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the next push will drop an item.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.items.len() >= self.capacity
    }

    /// The configured bound.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Items dropped at the bound since creation.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Queued items, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }

    /// Removes and returns every queued item, oldest first.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.items.drain(..)
    }

    /// Keeps only the items for which `keep` returns true.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.items.retain(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn drop_newest_keeps_the_queue() {
        let mut q = BoundedQueue::new(2, Overflow::DropNewest);
        assert_eq!(q.push(1), None);
        assert_eq!(q.push(2), None);
        assert!(q.is_full());
        assert_eq!(q.push(3), Some(3));
        assert_eq!(q.dropped(), 1);
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn drop_oldest_evicts_the_front() {
        let mut q = BoundedQueue::new(2, Overflow::DropOldest);
        assert_eq!(q.push(1), None);
        assert_eq!(q.push(2), None);
        assert_eq!(q.push(3), Some(1));
        assert_eq!(q.drain().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(q.dropped(), 1);
    }

    #[test]
    fn zero_capacity_drops_everything() {
        for policy in [Overflow::DropNewest, Overflow::DropOldest] {
            let mut q = BoundedQueue::new(0, policy);
            assert_eq!(q.push(7), Some(7));
            assert!(q.is_empty());
            assert_eq!(q.dropped(), 1);
        }
    }

    proptest! {
        /// Whatever is pushed, the queue stays within its bound, and every item is either
        /// still queued, popped, or handed back as dropped: nothing vanishes.
        #[test]
        fn bound_holds_and_nothing_is_lost(
            cap in 0usize..8,
            oldest in any::<bool>(),
            ops in proptest::collection::vec(any::<bool>(), 0..200),
        ) {
            let policy = if oldest { Overflow::DropOldest } else { Overflow::DropNewest };
            let mut q = BoundedQueue::new(cap, policy);
            let (mut pushed, mut popped, mut dropped) = (0u64, 0u64, 0u64);
            for push in ops {
                if push {
                    pushed += 1;
                    if q.push(pushed).is_some() { dropped += 1; }
                } else if q.pop().is_some() {
                    popped += 1;
                }
                prop_assert!(q.len() <= cap);
            }
            prop_assert_eq!(q.dropped(), dropped);
            prop_assert_eq!(pushed, popped + dropped + q.len() as u64);
        }
    }
}
