//! The dissemination queue: updates waiting to be piggybacked, least-sent and freshest
//! first, each dropped after its retransmit limit (memberlist's `TransmitLimitedQueue`).
//!
//! A newer update about the same member, or a newer user broadcast with the same origin and
//! key, replaces the queued one (invalidation). The queue is bounded: when full, the most
//! sent of its items is dropped and counted.
//!
//! **Compact.** During a join every member queues an Alive for every other, so the queue
//! is, with the member table, what a big group's memory is made of. An item about a member
//! stores only the member, the update's kind and its incarnation, under one `u64` order
//! key; the wire update is rebuilt when a packet is filled, its metadata read from the
//! member table (which holds the metadata of the member's current incarnation: a newer
//! Alive replaces the queued one). Each item keeps its encoded size, so packing rebuilds
//! only what it sends. The member's entry holds its item's id, which transmits do not
//! change, so invalidation needs no index and a transmit no table lookup. The suspecter of a queued Suspect or Dead sits in a side
//! map, our own update is rebuilt from our state, and user broadcasts (rare, with
//! payloads) are kept whole in side maps.

use std::collections::BTreeMap;

use bytes::Bytes;
use epidemic_core::codec;
use hashbrown::HashMap;
use rand::Rng;
use smallvec::SmallVec;

use crate::Address;
use crate::event::{Bound, Event};
use crate::message::Update;
use crate::swim::Swim;

/// Low bits of an order key: the item's id, reversed so that the newest sorts first.
const ID_BITS: u32 = 40;
const ID_MASK: u64 = (1 << ID_BITS) - 1;
/// Largest transmit count an order key holds.
const MAX_TRANSMITS: u32 = (1 << (64 - ID_BITS)) - 1;

/// The order key: fewest transmits first, then newest first.
fn key(transmits: u32, id: u64) -> u64 {
    (u64::from(transmits.min(MAX_TRANSMITS)) << ID_BITS) | (ID_MASK - id)
}

fn transmits_of(key: u64) -> u32 {
    u32::try_from(key >> ID_BITS).unwrap_or(MAX_TRANSMITS)
}

fn id_of(key: u64) -> u64 {
    ID_MASK - (key & ID_MASK)
}

/// What makes two user broadcasts the same subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum UserKey<A> {
    Keyed(A, u64),
    Unkeyed(A, u32),
}

/// The kind of a queued update about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Alive without metadata (rebuilt without touching the table).
    Alive,
    /// Alive with the table's metadata.
    AliveMeta,
    /// Suspect; the suspecter is in `blame`.
    Suspect,
    /// Dead; the declarer is in `blame`.
    Dead,
    /// Left.
    Left,
}

/// One queued item, as small as the update allows; `size` is its encoded size, known
/// when it was queued, so packing rebuilds only what it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry<A> {
    /// An update about a member of the table.
    Member {
        member: A,
        incarnation: u32,
        size: u16,
        kind: Kind,
    },
    /// Our own Alive, or Left once we left (rebuilt from our state).
    Me { size: u16 },
    /// A user broadcast in `users`, under the item's id.
    User { size: u16 },
}

impl<A> Entry<A> {
    fn size(&self) -> usize {
        match self {
            Entry::Member { size, .. } | Entry::Me { size } | Entry::User { size } => {
                usize::from(*size)
            }
        }
    }
}

#[derive(Debug, Clone)]
struct UserItem<A> {
    update: Update<A>,
    subject: UserKey<A>,
}

/// The bounded dissemination queue.
#[derive(Debug, Clone)]
pub(crate) struct TransmitQueue<A: Address> {
    order: BTreeMap<u64, Entry<A>>,
    /// Who suspected or declared dead a member whose Suspect or Dead is queued.
    blame: HashMap<A, A>,
    /// Our own update's id + 1 (0: none queued).
    me: u64,
    /// User broadcasts by item id.
    users: HashMap<u64, UserItem<A>>,
    user_index: HashMap<UserKey<A>, u64>,
    next_id: u64,
    /// The most transmits any key was given: an item's key is found from its id by
    /// trying each count up to this.
    max_transmits: u32,
    capacity: usize,
    /// Dropped at the bound.
    pub(crate) dropped: u64,
    /// Replaced by a newer update about the same subject.
    pub(crate) invalidated: u64,
}

impl<A: Address> TransmitQueue<A> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            order: BTreeMap::new(),
            blame: HashMap::new(),
            me: 0,
            users: HashMap::new(),
            user_index: HashMap::new(),
            next_id: 0,
            max_transmits: 0,
            capacity,
            dropped: 0,
            invalidated: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The current key of the item with id `id`, if it is queued. Only invalidation and
    /// removal need it (rare), so the owners keep the id, which transmits do not change.
    fn find_key(&self, id: u64) -> Option<u64> {
        (0..=self.max_transmits)
            .map(|t| key(t, id))
            .find(|k| self.order.contains_key(k))
    }

    /// Heap bytes held (capacity arithmetic; B-tree nodes estimated at two thirds full).
    pub(crate) fn heap_bytes(&self) -> usize {
        let per_item = std::mem::size_of::<(u64, Entry<A>)>();
        self.order.len() * per_item * 3 / 2
            + self.blame.allocation_size()
            + self.users.allocation_size()
            + self.user_index.allocation_size()
    }
}

impl<A: Address, R: Rng> Swim<A, R> {
    /// Queues `update` for dissemination, replacing any queued update about the same
    /// subject; when the queue is full, the most-sent item is dropped (and reported).
    /// An update about another member must describe its entry in the table, which the
    /// membership rules always change first.
    pub(crate) fn enqueue(&mut self, update: Update<A>) {
        let size = u16::try_from(codec::body_len(&update)).unwrap_or(u16::MAX);
        let id = self.queue.next_id.min(ID_MASK - 1);
        let entry = match update {
            Update::User {
                ref origin,
                seq,
                key,
                ..
            } => {
                let subject = match key {
                    Some(k) => UserKey::Keyed(origin.clone(), k),
                    None => UserKey::Unkeyed(origin.clone(), seq),
                };
                if let Some(old) = self.queue.user_index.get(&subject).copied() {
                    self.unqueue_id(old + 1);
                    self.queue.invalidated += 1;
                }
                self.queue.user_index.insert(subject.clone(), id);
                self.queue.users.insert(id, UserItem { update, subject });
                Entry::User { size }
            }
            Update::Alive { ref member, .. } | Update::Left { ref member, .. }
                if *member == self.me =>
            {
                if self.queue.me != 0 {
                    self.unqueue_id(self.queue.me);
                    self.queue.invalidated += 1;
                }
                Entry::Me { size }
            }
            Update::Alive {
                member,
                incarnation,
                meta,
            } => {
                let kind = if meta.is_empty() {
                    Kind::Alive
                } else {
                    Kind::AliveMeta
                };
                let Some(e) = self.member_entry(member, kind, incarnation, size, None) else {
                    return;
                };
                e
            }
            Update::Left {
                member,
                incarnation,
            } => {
                let Some(e) = self.member_entry(member, Kind::Left, incarnation, size, None) else {
                    return;
                };
                e
            }
            Update::Suspect {
                member,
                incarnation,
                from,
            } => {
                let Some(e) =
                    self.member_entry(member, Kind::Suspect, incarnation, size, Some(from))
                else {
                    return;
                };
                e
            }
            Update::Dead {
                member,
                incarnation,
                from,
            } => {
                let Some(e) = self.member_entry(member, Kind::Dead, incarnation, size, Some(from))
                else {
                    return;
                };
                e
            }
        };
        self.queue.next_id += 1;
        let mut dropped = false;
        if self.queue.order.len() >= self.queue.capacity {
            // The most-sent, oldest item goes: it has done the most of its work.
            if let Some((&last, _)) = self.queue.order.last_key_value() {
                self.unqueue(last);
                self.queue.dropped += 1;
                dropped = true;
            }
        }
        match &entry {
            Entry::Member { member, .. } => {
                if let Some(m) = self.members.get_mut(member) {
                    m.queued = id + 1;
                }
            }
            Entry::Me { .. } => self.queue.me = id + 1,
            Entry::User { .. } => {}
        }
        self.queue.order.insert(key(0, id), entry);
        if dropped {
            self.emit(Event::Dropped {
                bound: Bound::Queue,
            });
        }
    }

    /// The entry for an update about `member`, after invalidating its queued one. `None`
    /// (nothing queued) for a member not in the table or our own Suspect or Dead, which
    /// the rules never queue.
    fn member_entry(
        &mut self,
        member: A,
        kind: Kind,
        incarnation: u32,
        size: u16,
        from: Option<A>,
    ) -> Option<Entry<A>> {
        let old = self.members.get(&member)?.queued;
        if old != 0 {
            self.unqueue_id(old);
            self.queue.invalidated += 1;
        }
        if let Some(from) = from {
            self.queue.blame.insert(member.clone(), from);
        }
        Some(Entry::Member {
            member,
            incarnation,
            size,
            kind,
        })
    }

    /// Takes the item whose id + 1 is `queued` out of the queue, if it is there.
    fn unqueue_id(&mut self, queued: u64) {
        if queued == 0 {
            return;
        }
        if let Some(k) = self.queue.find_key(queued - 1) {
            self.unqueue(k);
        }
    }

    /// Takes the item at `key` out of the queue for good, with its side data.
    pub(crate) fn unqueue(&mut self, key: u64) {
        let Some(entry) = self.queue.order.remove(&key) else {
            return;
        };
        let queued = id_of(key) + 1;
        match entry {
            Entry::Member { member, kind, .. } => {
                if let Some(m) = self.members.get_mut(&member).filter(|m| m.queued == queued) {
                    m.queued = 0;
                }
                if matches!(kind, Kind::Suspect | Kind::Dead) {
                    self.queue.blame.remove(&member);
                }
            }
            Entry::Me { .. } => {
                if self.queue.me == queued {
                    self.queue.me = 0;
                }
            }
            Entry::User { .. } => {
                if let Some(u) = self.queue.users.remove(&id_of(key)) {
                    self.queue.user_index.remove(&u.subject);
                }
            }
        }
    }

    /// The wire update the entry at `key` stands for.
    fn rebuild(&self, key: u64, entry: &Entry<A>) -> Option<Update<A>> {
        Some(match entry {
            Entry::Member {
                member,
                incarnation,
                kind,
                ..
            } => {
                let member = member.clone();
                let incarnation = *incarnation;
                let from = || {
                    self.queue
                        .blame
                        .get(&member)
                        .cloned()
                        .unwrap_or_else(|| self.me.clone())
                };
                match kind {
                    Kind::Alive => Update::Alive {
                        member,
                        incarnation,
                        meta: Bytes::new(),
                    },
                    Kind::AliveMeta => Update::Alive {
                        meta: self.members.get(&member)?.meta(),
                        member,
                        incarnation,
                    },
                    Kind::Suspect => Update::Suspect {
                        from: from(),
                        member,
                        incarnation,
                    },
                    Kind::Dead => Update::Dead {
                        from: from(),
                        member,
                        incarnation,
                    },
                    Kind::Left => Update::Left {
                        member,
                        incarnation,
                    },
                }
            }
            Entry::Me { .. } if self.left => Update::Left {
                member: self.me.clone(),
                incarnation: self.incarnation,
            },
            Entry::Me { .. } => self.self_alive(),
            Entry::User { .. } => self.queue.users.get(&id_of(key))?.update.clone(),
        })
    }

    /// Fills `out` with queued updates whose encoded sizes fit in `budget` bytes,
    /// least-sent and freshest first; each chosen one counts a transmit and leaves the
    /// queue at `limit`.
    pub(crate) fn take_updates(&mut self, mut budget: usize, limit: u32, out: &mut Vec<Update<A>>) {
        // The smallest possible update is a few bytes; stop scanning once nothing can fit.
        const MIN_UPDATE: usize = 3;
        let mut chosen: SmallVec<[u64; 32]> = SmallVec::new();
        for (key, entry) in &self.queue.order {
            if budget < MIN_UPDATE {
                break;
            }
            let size = entry.size();
            if size <= budget {
                budget -= size;
                chosen.push(*key);
            }
        }
        for key in chosen {
            if let Some(update) = self
                .queue
                .order
                .get(&key)
                .and_then(|e| self.rebuild(key, e))
            {
                out.push(update);
            }
            let transmits = transmits_of(key) + 1;
            if transmits >= limit {
                self.unqueue(key);
                continue;
            }
            // The owners keep the id, which this does not change.
            let Some(entry) = self.queue.order.remove(&key) else {
                continue;
            };
            self.queue.max_transmits = self.queue.max_transmits.max(transmits);
            self.queue.order.insert(
                (u64::from(transmits.min(MAX_TRANSMITS)) << ID_BITS) | (key & ID_MASK),
                entry,
            );
        }
    }

    /// Removes `member`'s entry from the table (a tombstone that expired or was evicted),
    /// with its queued update.
    pub(crate) fn forget_member(&mut self, member: &A) {
        if let Some(queued) = self.members.get(member).map(|m| m.queued) {
            self.unqueue_id(queued);
        }
        self.members.swap_remove(member);
    }
}

/// The metadata an entry holds: nothing on the heap when empty (most groups), one shared
/// `Bytes` otherwise.
pub(crate) fn boxed_meta(meta: Bytes) -> Option<Box<Bytes>> {
    (!meta.is_empty()).then(|| Box::new(meta))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;
    use epidemic_core::Machine;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::Config;
    use crate::message::Message;

    type Node = Swim<u64, ChaCha8Rng>;

    fn alive(m: u64, inc: u32) -> Update<u64> {
        Update::Alive {
            member: m,
            incarnation: inc,
            meta: Bytes::new(),
        }
    }

    /// A node that knows members `1..=n` at incarnation 0, with an empty queue.
    fn node(n: u64, max_queue: usize) -> (Node, Instant) {
        #[allow(clippy::disallowed_methods)] // a fixed origin; tests never wait on it
        let now = Instant::now();
        let config = Config {
            max_queue,
            ..Config::lan()
        };
        let mut s = Swim::new(0, config, ChaCha8Rng::seed_from_u64(1)).unwrap();
        s.handle_message(
            now,
            1,
            Message::Gossip {
                updates: (1..=n).map(|m| alive(m, 0)).collect(),
            },
        );
        for m in 1..=n {
            let queued = s.members.get(&m).unwrap().queued;
            s.unqueue_id(queued);
        }
        while s.poll_output().is_some() {}
        assert!(s.queue.is_empty());
        (s.queue.dropped, s.queue.invalidated) = (0, 0);
        (s, now)
    }

    fn raise(s: &mut Node, now: Instant, m: u64, inc: u32) {
        s.handle_message(
            now,
            9,
            Message::Gossip {
                updates: vec![alive(m, inc)],
            },
        );
    }

    #[test]
    fn least_sent_then_freshest_first_and_retransmit_limit() {
        let (mut s, now) = node(3, 16);
        raise(&mut s, now, 1, 1);
        raise(&mut s, now, 2, 1);
        let mut out = Vec::new();
        s.take_updates(1000, 2, &mut out);
        assert_eq!(out, [alive(2, 1), alive(1, 1)], "newest first");
        raise(&mut s, now, 3, 1);
        out.clear();
        s.take_updates(1000, 2, &mut out);
        assert_eq!(out, [alive(3, 1), alive(2, 1), alive(1, 1)], "unsent first");
        assert_eq!(s.queue.len(), 1, "1 and 2 reached the limit of 2");
        assert_eq!(s.members.get(&1).unwrap().queued, 0);
        out.clear();
        s.take_updates(1000, 2, &mut out);
        assert_eq!(out, [alive(3, 1)]);
        assert!(s.queue.is_empty());
    }

    #[test]
    fn newer_update_about_a_member_invalidates_the_old() {
        let (mut s, now) = node(3, 16);
        raise(&mut s, now, 1, 1);
        s.handle_message(
            now,
            2,
            Message::Gossip {
                updates: vec![Update::Suspect {
                    member: 1,
                    incarnation: 1,
                    from: 2,
                }],
            },
        );
        while s.poll_output().is_some() {}
        assert_eq!(s.queue.len(), 1);
        assert_eq!(s.queue.invalidated, 1);
        let mut out = Vec::new();
        s.take_updates(1000, 5, &mut out);
        assert_eq!(
            out,
            [Update::Suspect {
                member: 1,
                incarnation: 1,
                from: 2
            }],
            "the suspecter comes back from the side map"
        );
        let user = |seq, key| Update::User {
            origin: 9u64,
            seq,
            key,
            payload: Bytes::from_static(b"x"),
        };
        s.handle_message(
            now,
            2,
            Message::Gossip {
                updates: vec![
                    user(1, Some(5)),
                    user(2, Some(5)),
                    user(3, None),
                    user(4, None),
                ],
            },
        );
        assert_eq!(
            s.queue.len(),
            4,
            "keyed broadcasts supersede, unkeyed ones do not"
        );
        assert_eq!(s.queue.users.len(), 3);
        assert_eq!(s.queue.max_transmits, 1);
        assert_eq!(s.queue.user_index.len(), 3);
    }

    #[test]
    fn metadata_is_read_from_the_table_and_our_own_update_from_our_state() {
        let (mut s, now) = node(2, 16);
        let meta = Bytes::from_static(b"rack-7");
        s.handle_message(
            now,
            1,
            Message::Gossip {
                updates: vec![Update::Alive {
                    member: 1,
                    incarnation: 4,
                    meta: meta.clone(),
                }],
            },
        );
        s.set_meta(now, Bytes::from_static(b"me")).unwrap();
        let mut out = Vec::new();
        s.take_updates(1000, 5, &mut out);
        assert_eq!(
            out,
            [
                Update::Alive {
                    member: 0,
                    incarnation: 1,
                    meta: Bytes::from_static(b"me")
                },
                Update::Alive {
                    member: 1,
                    incarnation: 4,
                    meta
                },
            ]
        );
        s.leave(now);
        out.clear();
        s.take_updates(1000, 5, &mut out);
        assert_eq!(
            out[0],
            Update::Left {
                member: 0,
                incarnation: 1
            },
            "our Left replaced our Alive"
        );
    }

    #[test]
    fn packing_respects_the_budget_and_the_bound() {
        let (mut s, now) = node(4, 3);
        for m in 1..=4 {
            raise(&mut s, now, m, 1);
        }
        let drops = std::iter::from_fn(|| s.poll_output())
            .filter(|o| {
                matches!(
                    o,
                    epidemic_core::Output::Event(Event::Dropped {
                        bound: Bound::Queue
                    })
                )
            })
            .count();
        assert_eq!((s.queue.len(), s.queue.dropped, drops), (3, 1, 1));
        assert_eq!(s.members.get(&1).unwrap().queued, 0, "the oldest went");
        let size = codec::body_len(&alive(1, 1));
        let mut out = Vec::new();
        s.take_updates(2 * size + 1, 10, &mut out);
        assert_eq!(out, [alive(4, 1), alive(3, 1)]);
    }

    #[test]
    fn a_forgotten_member_takes_its_queued_update_along() {
        let (mut s, now) = node(3, 16);
        s.handle_message(
            now,
            2,
            Message::Gossip {
                updates: vec![Update::Dead {
                    member: 1,
                    incarnation: 0,
                    from: 2,
                }],
            },
        );
        assert_eq!((s.queue.len(), s.queue.blame.len()), (1, 1));
        s.forget_member(&1);
        assert_eq!((s.queue.len(), s.queue.blame.len()), (0, 0));
        assert!(s.member(&1).is_none());
    }
}
