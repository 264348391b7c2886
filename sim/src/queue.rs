//! The event queue: events ordered by `(time, seq)`, as a calendar queue.
//!
//! A simulation's events are almost all a few milliseconds ahead of now (messages in
//! flight, near timers), and time never goes back. So instead of one big heap (a cache miss
//! per level per pop), events sit in a ring of time buckets: a push appends to its bucket,
//! and when the cursor reaches a bucket it is sorted once and popped from its end, reading
//! memory in order. Events beyond the ring's horizon wait in a heap and move into the ring
//! as the cursor comes near. The order is exactly `(time, seq)`, the same as a heap's.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Bucket width: 2^16 ns ≈ 65.5 µs.
const WIDTH_BITS: u32 = 16;
/// Buckets in the ring: 4,096, a horizon of ≈ 268 ms.
const BUCKETS: usize = 4096;
const MASK: u64 = BUCKETS as u64 - 1;
/// Emptied buckets' buffers kept for reuse, at most this many...
const SPARES: usize = 128;
/// ...and only those of at most this many entries, so the queue never holds on to more
/// than a few MiB beyond what is in flight.
const SPARE_CAPACITY: usize = 512;

struct Entry<T> {
    at: u64,
    seq: u64,
    item: T,
}

impl<T> Entry<T> {
    fn key(&self) -> (u64, u64) {
        (self.at, self.seq)
    }
}

/// Heap entries compare by key only.
struct Far<T>(Entry<T>);

impl<T> PartialEq for Far<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}
impl<T> Eq for Far<T> {}
impl<T> PartialOrd for Far<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Far<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.key().cmp(&other.0.key())
    }
}

/// A min-queue of `T` by `(at, insertion order)`.
pub(crate) struct EventQueue<T> {
    /// `ring[b & MASK]` holds the events of absolute bucket `b`, for `b` in
    /// `[cursor, cursor + BUCKETS)`. The cursor's own bucket is sorted descending by key
    /// (its next event at the end); the others are unsorted.
    ring: Vec<Vec<Entry<T>>>,
    /// One bit per ring slot: set when the slot holds events.
    occupied: [u64; BUCKETS / 64],
    /// Absolute bucket index of the sorted bucket.
    cursor: u64,
    in_ring: usize,
    /// Events at or beyond `cursor + BUCKETS`.
    far: BinaryHeap<Reverse<Far<T>>>,
    /// Buffers of emptied buckets, handed to buckets that fill up, so a ring cycling
    /// through bursts does not regrow every bucket from nothing.
    spare: Vec<Vec<Entry<T>>>,
    next_seq: u64,
}

impl<T> std::fmt::Debug for EventQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue")
            .field("cursor", &self.cursor)
            .field("in_ring", &self.in_ring)
            .field("far", &self.far.len())
            .finish_non_exhaustive()
    }
}

fn bucket(at: u64) -> u64 {
    at >> WIDTH_BITS
}

impl<T> EventQueue<T> {
    pub(crate) fn new() -> Self {
        Self {
            ring: (0..BUCKETS).map(|_| Vec::new()).collect(),
            occupied: [0; BUCKETS / 64],
            cursor: 0,
            in_ring: 0,
            far: BinaryHeap::new(),
            spare: Vec::new(),
            next_seq: 0,
        }
    }

    /// Schedules `item` at virtual time `at`; returns its sequence number.
    pub(crate) fn push(&mut self, at: u64, item: T) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.insert(Entry { at, seq, item });
        seq
    }

    fn insert(&mut self, e: Entry<T>) {
        let b = bucket(e.at);
        if b >= self.cursor + BUCKETS as u64 {
            self.far.push(Reverse(Far(e)));
            return;
        }
        let slot = if b <= self.cursor {
            // The sorted bucket (an event earlier than the cursor's bucket also goes here:
            // it is smaller than everything queued, and sorting keeps it first).
            let slot = (self.cursor & MASK) as usize;
            let v = &mut self.ring[slot];
            let key = e.key();
            let i = v.partition_point(|x| x.key() > key);
            v.insert(i, e);
            slot
        } else {
            let slot = (b & MASK) as usize;
            let v = &mut self.ring[slot];
            if v.capacity() == 0 {
                if let Some(spare) = self.spare.pop() {
                    *v = spare;
                }
            }
            v.push(e);
            slot
        };
        self.occupied[slot / 64] |= 1 << (slot % 64);
        self.in_ring += 1;
    }

    /// The time of the earliest event. Takes `&mut self` because finding it may move the
    /// cursor forward, which does not change the order.
    pub(crate) fn peek_time(&mut self) -> Option<u64> {
        self.settle()?;
        self.ring[(self.cursor & MASK) as usize]
            .last()
            .map(|e| e.at)
    }

    /// Removes the earliest event: `(time, seq, item)`.
    pub(crate) fn pop(&mut self) -> Option<(u64, u64, T)> {
        let slot = self.settle()?;
        // `settle` returned the slot of a non-empty sorted bucket.
        let e = self.ring[slot].pop().expect("settled bucket is non-empty");
        if self.ring[slot].is_empty() {
            self.occupied[slot / 64] &= !(1 << (slot % 64));
            // An emptied bucket gives its buffer to the spares (or back to the allocator):
            // were every slot to keep the largest burst it ever saw, a 10,000-node flood
            // would peak at 3× the memory of a heap.
            let buffer = std::mem::take(&mut self.ring[slot]);
            if self.spare.len() < SPARES && buffer.capacity() <= SPARE_CAPACITY {
                self.spare.push(buffer);
            }
        }
        self.in_ring -= 1;
        Some((e.at, e.seq, e.item))
    }

    /// Events queued.
    pub(crate) fn len(&self) -> usize {
        self.in_ring + self.far.len()
    }

    /// Moves the cursor to the first non-empty bucket (sorting it) and returns its slot, or
    /// `None` if the queue is empty.
    fn settle(&mut self) -> Option<usize> {
        let slot = (self.cursor & MASK) as usize;
        if !self.ring[slot].is_empty() {
            return Some(slot);
        }
        if self.in_ring == 0 {
            let Reverse(Far(first)) = self.far.peek()?;
            self.cursor = bucket(first.at);
        } else {
            self.cursor += self.distance_to_next_occupied(slot);
        }
        // Bring in the far events that the ring now covers.
        let horizon = self.cursor + BUCKETS as u64;
        while self
            .far
            .peek()
            .is_some_and(|Reverse(Far(e))| bucket(e.at) < horizon)
        {
            let Some(Reverse(Far(e))) = self.far.pop() else {
                break;
            };
            let slot = (bucket(e.at) & MASK) as usize;
            self.ring[slot].push(e);
            self.occupied[slot / 64] |= 1 << (slot % 64);
            self.in_ring += 1;
        }
        let slot = (self.cursor & MASK) as usize;
        self.ring[slot].sort_unstable_by_key(|e| Reverse(e.key()));
        Some(slot)
    }

    /// Slots from `from` (empty) forward, cyclically, to the next occupied one. The ring
    /// must hold an event.
    fn distance_to_next_occupied(&self, from: usize) -> u64 {
        let words = BUCKETS / 64;
        let start = from + 1;
        for step in 0..=words {
            let pos = (start / 64 + step) % words;
            let mut word = self.occupied[pos];
            if step == 0 {
                // Ignore slots before `start` in its own word.
                word &= !0u64 << (start % 64);
            }
            if step == words {
                // Wrapped around to the first word: only slots before `start` count.
                word &= (1u64 << (start % 64)).wrapping_sub(1);
            }
            if word != 0 {
                let slot = pos * 64 + word.trailing_zeros() as usize;
                return ((slot + BUCKETS - from) % BUCKETS) as u64;
            }
        }
        unreachable!("distance_to_next_occupied called with an empty ring")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
    fn far_events_and_long_gaps() {
        let mut q = EventQueue::new();
        let day = 86_400_000_000_000u64;
        q.push(day, "day");
        q.push(3, "now");
        q.push(day + 1, "day+1");
        q.push(700_000_000, "0.7 s");
        assert_eq!(q.pop().map(|x| x.2), Some("now"));
        assert_eq!(q.peek_time(), Some(700_000_000));
        assert_eq!(q.pop().map(|x| x.2), Some("0.7 s"));
        q.push(day - 5, "just before");
        let rest: Vec<_> = std::iter::from_fn(|| q.pop().map(|x| x.2)).collect();
        assert_eq!(rest, ["just before", "day", "day+1"]);
        assert_eq!(q.peek_time(), None);
    }

    #[test]
    fn a_drained_burst_gives_its_memory_back() {
        let mut q = EventQueue::new();
        for i in 0..10_000u64 {
            q.push(1_000 + i % 7, i);
        }
        while q.pop().is_some() {}
        let kept: usize = q.ring.iter().chain(&q.spare).map(Vec::capacity).sum();
        assert!(
            kept <= SPARES * SPARE_CAPACITY,
            "{kept} entries still allocated"
        );
        assert!(
            q.ring.iter().all(|v| v.capacity() == 0),
            "drained buckets hold nothing"
        );
    }

    /// What a reference heap does with the same operations.
    #[derive(Debug, Clone)]
    enum Op {
        Push(u64),
        Pop,
        Peek,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            // Delays from "now" to a few seconds: inside the ring, at its edge, far.
            3 => (0u64..2_000_000).prop_map(Op::Push),
            2 => (0u64..600_000_000).prop_map(Op::Push),
            1 => (0u64..5_000_000_000).prop_map(Op::Push),
            1 => prop::sample::select(vec![0u64, 65_535, 65_536, 268_435_455, 268_435_456]).prop_map(Op::Push),
            4 => Just(Op::Pop),
            // Peeking moves the cursor ahead of `now`; later pushes may land behind it.
            2 => Just(Op::Peek),
        ]
    }

    proptest! {
        /// Pops come out exactly as from a binary heap keyed by `(time, seq)`, with pushes
        /// never earlier than the last pop (virtual time does not go back).
        #[test]
        fn same_order_as_a_heap(ops in proptest::collection::vec(op(), 0..600)) {
            let mut q = EventQueue::new();
            let mut reference = BinaryHeap::new();
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Push(delay) => {
                        let seq = q.push(now + delay, ());
                        reference.push(Reverse((now + delay, seq)));
                    }
                    Op::Pop => {
                        let got = q.pop().map(|(at, seq, _)| (at, seq));
                        let want = reference.pop().map(|Reverse(k)| k);
                        prop_assert_eq!(got, want);
                        if let Some((at, _)) = got { now = at; }
                    }
                    Op::Peek => {
                        let want = reference.peek().map(|Reverse(k)| k.0);
                        prop_assert_eq!(q.peek_time(), want);
                    }
                }
                prop_assert_eq!(q.len(), reference.len());
            }
            while let Some(Reverse(want)) = reference.pop() {
                prop_assert_eq!(q.peek_time(), Some(want.0));
                prop_assert_eq!(q.pop().map(|(at, seq, _)| (at, seq)), Some(want));
            }
            prop_assert!(q.pop().is_none());
        }
    }
}
