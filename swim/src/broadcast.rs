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
//! Alive replaces the queued one). The member's entry holds its item's key, so
//! invalidation needs no index. The suspecter of a queued Suspect or Dead sits in a side
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
use crate::message::{State, Update};
use crate::swim::Swim;

/// Low bits of an order key: the item's id, reversed so that the newest sorts first.
const ID_BITS: u32 = 40;
const ID_MASK: u64 = (1 << ID_BITS) - 1;
/// Largest transmit count an order key holds.
const MAX_TRANSMITS: u32 = (1 << (64 - ID_BITS)) - 1;

/// The order key: fewest transmits first, then newest first. Never 0 (0 means "not
/// queued" in a member's entry): ids stay below `ID_MASK`.
fn key(transmits: u32, id: u64) -> u64 {
    (u64::from(transmits.min(MAX_TRANSMITS)) << ID_BITS) | (ID_MASK - id)
}

fn transmits_of(key: u64) -> u32 {
    u32::try_from(key >> ID_BITS).unwrap_or(MAX_TRANSMITS)
}

/// What makes two user broadcasts the same subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum UserKey<A> {
    Keyed(A, u64),
    Unkeyed(A, u32),
}

/// One queued item, as small as the update allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry<A> {
    /// An update about a member of the table: Alive (metadata from the table), Suspect or
    /// Dead (suspecter in `blame`) or Left, at `incarnation`.
    Member {
        member: A,
        state: State,
        incarnation: u32,
    },
    /// Our own Alive, or Left once we left (rebuilt from our state).
    Me,
    /// A user broadcast in `users`.
    User(u32),
}

#[derive(Debug, Clone)]
struct UserItem<A> {
    update: Update<A>,
    key: u64,
    subject: UserKey<A>,
}

/// The bounded dissemination queue.
#[derive(Debug, Clone)]
pub(crate) struct TransmitQueue<A: Address> {
    order: BTreeMap<u64, Entry<A>>,
    /// Who suspected or declared dead a member whose Suspect or Dead is queued.
    blame: HashMap<A, A>,
    /// Our own update's key (0: none queued).
    me: u64,
    users: HashMap<u32, UserItem<A>>,
    user_index: HashMap<UserKey<A>, u32>,
    next_user: u32,
    next_id: u64,
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
            next_user: 0,
            next_id: 0,
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

    fn fresh_key(&mut self) -> u64 {
        let id = self.next_id.min(ID_MASK - 1);
        self.next_id += 1;
        key(0, id)
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
                if let Some(id) = self.queue.user_index.get(&subject).copied() {
                    if let Some(old) = self.queue.users.get(&id).map(|u| u.key) {
                        self.unqueue(old);
                        self.queue.invalidated += 1;
                    }
                }
                let id = self.queue.next_user;
                self.queue.next_user = self.queue.next_user.wrapping_add(1);
                self.queue.user_index.insert(subject.clone(), id);
                self.queue.users.insert(
                    id,
                    UserItem {
                        update,
                        key: 0,
                        subject,
                    },
                );
                Some(Entry::User(id))
            }
            Update::Alive { ref member, .. } | Update::Left { ref member, .. }
                if *member == self.me =>
            {
                if self.queue.me != 0 {
                    self.unqueue(self.queue.me);
                    self.queue.invalidated += 1;
                }
                Some(Entry::Me)
            }
            Update::Alive {
                member,
                incarnation,
                ..
            } => self.member_entry(member, State::Alive, incarnation, None),
            Update::Left {
                member,
                incarnation,
            } => self.member_entry(member, State::Left, incarnation, None),
            Update::Suspect {
                member,
                incarnation,
                from,
            } => self.member_entry(member, State::Suspect, incarnation, Some(from)),
            Update::Dead {
                member,
                incarnation,
                from,
            } => self.member_entry(member, State::Dead, incarnation, Some(from)),
        };
        let Some(entry) = entry else {
            return;
        };
        let mut dropped = false;
        if self.queue.order.len() >= self.queue.capacity {
            // The most-sent, oldest item goes: it has done the most of its work.
            if let Some((&last, _)) = self.queue.order.last_key_value() {
                self.unqueue(last);
                self.queue.dropped += 1;
                dropped = true;
            }
        }
        let key = self.queue.fresh_key();
        self.set_key(&entry, key);
        self.queue.order.insert(key, entry);
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
        state: State,
        incarnation: u32,
        from: Option<A>,
    ) -> Option<Entry<A>> {
        let old = self.members.get(&member)?.queued;
        if old != 0 {
            self.unqueue(old);
            self.queue.invalidated += 1;
        }
        if let Some(from) = from {
            self.queue.blame.insert(member.clone(), from);
        }
        Some(Entry::Member {
            member,
            state,
            incarnation,
        })
    }

    /// Records where `entry` now sits in the order (0: nowhere).
    fn set_key(&mut self, entry: &Entry<A>, key: u64) {
        match entry {
            Entry::Member { member, .. } => {
                if let Some(m) = self.members.get_mut(member) {
                    m.queued = key;
                }
            }
            Entry::Me => self.queue.me = key,
            Entry::User(id) => {
                if let Some(u) = self.queue.users.get_mut(id) {
                    u.key = key;
                }
            }
        }
    }

    /// Takes the item at `key` out of the queue for good, with its side data.
    pub(crate) fn unqueue(&mut self, key: u64) {
        let Some(entry) = self.queue.order.remove(&key) else {
            return;
        };
        self.set_key(&entry, 0);
        match entry {
            Entry::Member { member, state, .. } => {
                if matches!(state, State::Suspect | State::Dead) {
                    self.queue.blame.remove(&member);
                }
            }
            Entry::Me => {}
            Entry::User(id) => {
                if let Some(u) = self.queue.users.remove(&id) {
                    self.queue.user_index.remove(&u.subject);
                }
            }
        }
    }

    /// The wire update an entry stands for.
    fn rebuild(&self, entry: &Entry<A>) -> Option<Update<A>> {
        Some(match entry {
            Entry::Member {
                member,
                state,
                incarnation,
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
                match state {
                    State::Alive => Update::Alive {
                        meta: self.members.get(&member)?.meta(),
                        member,
                        incarnation,
                    },
                    State::Suspect => Update::Suspect {
                        from: from(),
                        member,
                        incarnation,
                    },
                    State::Dead => Update::Dead {
                        from: from(),
                        member,
                        incarnation,
                    },
                    State::Left => Update::Left {
                        member,
                        incarnation,
                    },
                }
            }
            Entry::Me if self.left => Update::Left {
                member: self.me.clone(),
                incarnation: self.incarnation,
            },
            Entry::Me => self.self_alive(),
            Entry::User(id) => self.queue.users.get(id)?.update.clone(),
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
            let Some(update) = self.rebuild(entry) else {
                continue;
            };
            let size = codec::body_len(&update);
            if size <= budget {
                budget -= size;
                chosen.push(*key);
                out.push(update);
            }
        }
        for key in chosen {
            let transmits = transmits_of(key) + 1;
            if transmits >= limit {
                self.unqueue(key);
                continue;
            }
            let Some(entry) = self.queue.order.remove(&key) else {
                continue;
            };
            let next = (u64::from(transmits.min(MAX_TRANSMITS)) << ID_BITS) | (key & ID_MASK);
            self.set_key(&entry, next);
            self.queue.order.insert(next, entry);
        }
    }

    /// Removes `member`'s entry from the table (a tombstone that expired or was evicted),
    /// with its queued update.
    pub(crate) fn forget_member(&mut self, member: &A) {
        if let Some(key) = self.members.get(member).map(|m| m.queued) {
            if key != 0 {
                self.unqueue(key);
            }
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
            let key = s.members.get(&m).unwrap().queued;
            s.unqueue(key);
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
