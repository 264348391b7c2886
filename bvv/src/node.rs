//! [`Bvv`]: one node's state (node clock, store, dot→key log, watermark) and the
//! application's commands. The sync protocol's handlers are in `sync.rs`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use hashbrown::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_core::{Machine, MonotonicNow, Output};
use rand::{Rng, RngExt};
use serde::Serialize;
use smallvec::SmallVec;

use crate::clock::{Dot, NodeClock, NodeId};
use crate::config::Config;
use crate::dcc::{Context, Dcc};
use crate::error::Error;
use crate::log::DotLog;
use crate::message::{Message, SyncEntry};
use crate::storage::Storage;
use crate::strip::StripQueue;
use crate::watermark::Watermark;

/// What a node tells its application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A member has been silent for `silent_for` while the log holds dots it has not
    /// been seen to have: truncation waits for it. Reported every
    /// [`Config::gc_block_report`] while it lasts.
    GcBlocked {
        /// The silent member.
        peer: NodeId,
        /// Since when nothing was heard from it (or since this node started).
        silent_for: Duration,
        /// Dots the log holds.
        pending_dots: usize,
    },
    /// A member was retired (by the application or by [`Config::retire_after`]).
    PeerRetired {
        /// The retired id.
        peer: NodeId,
    },
    /// A full transfer from `peer` completed and its clock was joined.
    FullTransfer {
        /// Who sent it.
        peer: NodeId,
    },
}

/// Counters of what a node did and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Writes and deletes accepted.
    pub writes: u64,
    /// Syncs this node started.
    pub syncs_started: u64,
    /// Sync requests answered.
    pub requests_served: u64,
    /// Sync requests ignored because their clock was older than one already heard
    /// from the same member (duplicated or long-delayed copies).
    pub stale_requests: u64,
    /// Reply messages (first and further) sent.
    pub reply_messages_sent: u64,
    /// Replies that carried at least one entry.
    pub replies_with_entries: u64,
    /// Bytes of those replies (all their messages, envelopes included).
    pub nonempty_reply_bytes: u64,
    /// Entries (keys) sent in replies.
    pub entries_sent: u64,
    /// Entries received in replies and pushes.
    pub entries_received: u64,
    /// Received entries that changed the stored values.
    pub entries_changed: u64,
    /// Received entries that changed no value but brought dots this node lacked (a
    /// value it had already seen overwritten).
    pub entries_causal_only: u64,
    /// Received entries whose dots were all in the clock this node sent with its
    /// request: the replier's waste, which exact sync keeps at zero.
    pub entries_redundant: u64,
    /// Received entries that brought nothing new because this node learned their dots
    /// after sending its request (a push or another sync raced the reply, or the
    /// network duplicated it).
    pub entries_raced: u64,
    /// Entries of full transfers (they name no dots).
    pub entries_full: u64,
    /// Entries received in pushes (writes as they happen).
    pub push_entries_received: u64,
    /// Full transfers sent (the log no longer named some missing dot).
    pub full_transfers_sent: u64,
    /// Full transfers completed here.
    pub full_transfers_applied: u64,
    /// Messages from nodes that are not members (or were retired).
    pub dropped_non_member: u64,
    /// Messages or entries refused as hostile (claiming this node's future dots, dots
    /// their container does not cover, unexpected chunk numbers).
    pub dropped_hostile: u64,
    /// Received dots not recorded (too far past a bitmap, or the log was full); they
    /// come again in a later sync.
    pub dots_deferred: u64,
    /// Log entries dropped by garbage collection.
    pub log_truncated: u64,
    /// Keys deleted from the store once empty.
    pub keys_deleted: u64,
    /// Full-transfer sessions forgotten at the bound.
    pub sessions_evicted: u64,
    /// [`Event::GcBlocked`] reports.
    pub gc_blocked_reports: u64,
}

/// What survives a crash: everything but timers, sessions and the outbox. The
/// simulator's restart factory carries it into the new machine
/// ([`Bvv::take_durable`], [`Bvv::restore`]).
#[derive(Debug, Clone, Default)]
pub struct Durable<S> {
    /// The node's id.
    pub id: NodeId,
    /// Members other than this node.
    pub members: BTreeSet<NodeId>,
    /// Ids retired for good.
    pub retired: BTreeSet<NodeId>,
    /// The node clock.
    pub clock: NodeClock,
    /// The containers.
    pub store: S,
    /// The dot→key log.
    pub log: DotLog,
    /// The watermark matrix.
    pub watermark: Watermark,
    /// Keys whose stored context is not yet empty, by what they wait for.
    pub unstripped: StripQueue,
}

/// A read: the concurrent values of a key and the context to write back with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadResult {
    /// The values, by dot (several when writes were concurrent).
    pub values: Vec<Bytes>,
    /// The causal context: pass it to the next write of this key so that the write
    /// supersedes exactly what was read.
    pub context: Context,
}

/// Full transfers being received: chunks seen and the sender's clock.
#[derive(Debug)]
pub(crate) struct FullProgress {
    pub(crate) request: u32,
    /// The keys the page carried (at most `max_keys_per_sync`).
    pub(crate) keys: BTreeSet<Bytes>,
    pub(crate) total: u32,
    pub(crate) seen: BTreeSet<u32>,
    pub(crate) clock: Option<NodeClock>,
    pub(crate) next: Option<Bytes>,
}

/// The last request sent to a member: its number, the clock and the resume key it
/// carried.
#[derive(Debug)]
pub(crate) struct Requested {
    pub(crate) request: u32,
    pub(crate) clock: NodeClock,
    pub(crate) resume: Option<Bytes>,
}

/// A full transfer from one peer, page by page: the peer's clock when it began (joined
/// once the last page has arrived) and the last key received.
#[derive(Debug)]
pub(crate) struct Pass {
    pub(crate) clock: NodeClock,
    pub(crate) cursor: Option<Bytes>,
}

/// One node of a fully replicated group: node clock, dotted causal containers, dot→key
/// log, watermark matrix and node-wide sync.
#[derive(Debug)]
pub struct Bvv<S, R> {
    pub(crate) config: Config,
    pub(crate) durable: Durable<S>,
    pub(crate) last_heard: BTreeMap<NodeId, Instant>,
    pub(crate) reported: BTreeMap<NodeId, Instant>,
    pub(crate) started: Instant,
    pub(crate) next_session: u32,
    pub(crate) sessions: BTreeMap<(NodeId, u32), FullProgress>,
    /// The clock sent with the last request to each member, to tell a replier's waste
    /// from a race (at most one per member).
    pub(crate) requested: BTreeMap<NodeId, Requested>,
    /// Full transfers in progress, by sender (at most one per member).
    pub(crate) passes: BTreeMap<NodeId, Pass>,
    pub(crate) next_request: u32,
    /// Dots logged within the last [`Config::sync_grace`], oldest first, with a set for
    /// lookups (bounded by [`Config::max_log_entries`]).
    pub(crate) recent: VecDeque<(Instant, Dot)>,
    pub(crate) recent_set: HashSet<Dot>,
    pub(crate) next_sync: Option<Instant>,
    pub(crate) out: VecDeque<Output<NodeId, Message, Event>>,
    pub(crate) clock_now: MonotonicNow,
    pub(crate) rng: R,
    pub(crate) stats: Stats,
}

impl<S: Storage, R: Rng> Bvv<S, R> {
    /// A node `id` in a group with `peers` (the other members), storing in `store`.
    /// Its first sync is at a random point of the first interval after `now`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn new(
        now: Instant,
        id: NodeId,
        peers: impl IntoIterator<Item = NodeId>,
        config: Config,
        store: S,
        rng: R,
    ) -> Result<Self, Error> {
        let durable = Durable {
            id,
            members: peers.into_iter().filter(|&p| p != id).collect(),
            retired: BTreeSet::new(),
            clock: NodeClock::new(),
            store,
            log: DotLog::new(),
            watermark: Watermark::new(),
            unstripped: StripQueue::default(),
        };
        Self::restore(now, config, durable, rng)
    }

    /// A node rebuilt from what survived a crash.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn restore(
        now: Instant,
        config: Config,
        durable: Durable<S>,
        mut rng: R,
    ) -> Result<Self, Error> {
        config.validate()?;
        let jitter = rng.random_range(0..config.sync_interval.as_nanos().max(1) as u64);
        let next_sync = now.checked_add(Duration::from_nanos(jitter));
        Ok(Self {
            config,
            durable,
            last_heard: BTreeMap::new(),
            reported: BTreeMap::new(),
            started: now,
            next_session: 0,
            sessions: BTreeMap::new(),
            requested: BTreeMap::new(),
            passes: BTreeMap::new(),
            next_request: 0,
            recent: VecDeque::new(),
            recent_set: HashSet::new(),
            next_sync,
            out: VecDeque::new(),
            clock_now: MonotonicNow::new(),
            rng,
            stats: Stats::default(),
        })
    }

    /// Moves the durable state out (leaving this machine empty): the restart factory's
    /// half of a crash.
    pub fn take_durable(&mut self) -> Durable<S>
    where
        S: Default,
    {
        std::mem::take(&mut self.durable)
    }

    /// The machine a crashed node restarts as: its durable state moved out of `self`, a
    /// fresh RNG, timers re-armed from the last instant it saw (so the first sync is
    /// due at once).
    pub fn restart(&mut self, rng: R) -> Self
    where
        S: Default,
    {
        let now = self.clock_now.last().unwrap_or(self.started);
        let durable = self.take_durable();
        // The configuration was validated when this machine was built.
        Self::restore(now, self.config.clone(), durable, rng).expect("validated config")
    }

    // ---- reading the state ---------------------------------------------------------------

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.durable.id
    }

    /// The node clock.
    #[must_use]
    pub fn clock(&self) -> &NodeClock {
        &self.durable.clock
    }

    /// The store (containers at rest are stripped).
    #[must_use]
    pub fn store(&self) -> &S {
        &self.durable.store
    }

    /// The dot→key log.
    #[must_use]
    pub fn log(&self) -> &DotLog {
        &self.durable.log
    }

    /// The watermark matrix.
    #[must_use]
    pub fn watermark(&self) -> &Watermark {
        &self.durable.watermark
    }

    /// The other members.
    #[must_use]
    pub fn members(&self) -> &BTreeSet<NodeId> {
        &self.durable.members
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Bytes of node-wide metadata: node clock, watermark matrix and log (keys counted
    /// by length plus the dot).
    #[must_use]
    pub fn node_state_bytes(&self) -> usize {
        let d = &self.durable;
        let log: usize = d.log.iter().map(|(_, k)| k.len() + 2 * 9).sum();
        d.clock.wire_len() + epidemic_core::codec::body_len(&d.watermark) + log
    }

    /// The values of `key` and the context to write back with.
    #[must_use]
    pub fn get(&self, key: &[u8]) -> ReadResult {
        let mut dcc = self.durable.store.get(key).unwrap_or_default();
        dcc.fill(&self.durable.clock);
        ReadResult {
            values: dcc.values().iter().map(|(_, v)| v.clone()).collect(),
            context: dcc.context().clone(),
        }
    }

    // ---- commands ------------------------------------------------------------------------

    /// Writes `value` under `key`, superseding the values `context` has seen (pass the
    /// context of a [`get`](Bvv::get); an empty one keeps every value as a sibling).
    /// Returns the write's dot: the acknowledgement.
    ///
    /// # Errors
    /// [`Error::ValueTooLarge`], [`Error::LogFull`], [`Error::EmptyKey`]; nothing changed.
    pub fn put(
        &mut self,
        now: Instant,
        key: Bytes,
        value: Bytes,
        context: &Context,
    ) -> Result<Dot, Error> {
        if value.len() > self.config.max_value_bytes {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: self.config.max_value_bytes,
            });
        }
        self.write(now, key, Some(value), context)
    }

    /// Deletes the values of `key` that `context` has seen. The delete is a dot like a
    /// write; the key leaves the store, without a tombstone, once its container is
    /// empty at rest.
    ///
    /// # Errors
    /// [`Error::LogFull`], [`Error::EmptyKey`]; nothing changed.
    pub fn delete(&mut self, now: Instant, key: Bytes, context: &Context) -> Result<Dot, Error> {
        self.write(now, key, None, context)
    }

    fn write(
        &mut self,
        now: Instant,
        key: Bytes,
        value: Option<Bytes>,
        context: &Context,
    ) -> Result<Dot, Error> {
        self.clock_now.advance(now);
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if self.durable.log.len() >= self.config.max_log_entries {
            return Err(Error::LogFull);
        }
        let d = &mut self.durable;
        let mut dcc = d.store.get(&key).unwrap_or_default();
        dcc.fill(&d.clock);
        dcc.discard(context);
        let dot = d.clock.next_dot(d.id);
        match value {
            Some(v) => dcc.add(dot, v),
            None => dcc.add_dot(dot),
        }
        // The own entry never has gaps, so the next dot always fits.
        let added = d.clock.add(dot);
        debug_assert!(added, "own dots are contiguous");
        d.log.insert(dot, key.clone());
        self.note_recent(dot);
        self.stats.writes += 1;
        if self.config.push_writes && !self.durable.members.is_empty() {
            let entry = SyncEntry {
                key: key.clone(),
                dots: SmallVec::from_slice(&[dot]),
                dcc: dcc.clone(),
            };
            let members: Vec<NodeId> = self.durable.members.iter().copied().collect();
            for to in members {
                self.out.push_back(Output::Send {
                    to,
                    msg: Message::Push {
                        entries: vec![entry.clone()],
                    },
                });
            }
        }
        self.store_stripped(key, dcc);
        Ok(dot)
    }

    /// Starts a sync with `peer` now (the timer does this with a random member).
    ///
    /// # Errors
    /// [`Error::UnknownPeer`] if `peer` is not a member.
    pub fn sync_with(&mut self, now: Instant, peer: NodeId) -> Result<(), Error> {
        self.clock_now.advance(now);
        if !self.durable.members.contains(&peer) {
            return Err(Error::UnknownPeer(peer));
        }
        self.start_sync(peer);
        Ok(())
    }

    /// Adds a member (a new node, or a restarted one under its new id). Until it has
    /// synced, it holds back truncation.
    ///
    /// # Errors
    /// [`Error::UnknownPeer`] if `peer` is this node or was retired.
    pub fn add_peer(&mut self, now: Instant, peer: NodeId) -> Result<(), Error> {
        let now = self.clock_now.advance(now);
        if peer == self.durable.id || self.durable.retired.contains(&peer) {
            return Err(Error::UnknownPeer(peer));
        }
        if self.durable.members.insert(peer) {
            self.last_heard.insert(peer, now);
        }
        Ok(())
    }

    /// Retires a member for good: it no longer holds back truncation, is no longer
    /// synced with, and its messages are dropped. Its dots stay in clocks and keep
    /// travelling. A node that lost its state must come back under a new id
    /// ([`replace_peer`](Bvv::replace_peer)).
    ///
    /// Dots of the retired id that no survivor ever received leave a gap below the
    /// dots that did spread; those stay in the log (their column's base cannot pass the
    /// gap) until the application declares the gap lost with
    /// [`close_retired`](Bvv::close_retired).
    ///
    /// # Errors
    /// [`Error::UnknownPeer`] if `peer` is not a member.
    pub fn retire_peer(&mut self, now: Instant, peer: NodeId) -> Result<(), Error> {
        self.clock_now.advance(now);
        if !self.durable.members.remove(&peer) {
            return Err(Error::UnknownPeer(peer));
        }
        self.durable.retired.insert(peer);
        self.durable.watermark.remove_row(peer);
        self.last_heard.remove(&peer);
        self.reported.remove(&peer);
        self.requested.remove(&peer);
        self.passes.remove(&peer);
        self.out
            .push_back(Output::Event(Event::PeerRetired { peer }));
        self.collect_garbage();
        Ok(())
    }

    /// Declares the missing dots of the retired `peer` lost for good: this node's clock
    /// counts every counter of `peer` up to the highest it has seen (in its clock or in
    /// a key's causal context) as seen, so the column's log can be truncated and those
    /// contexts stripped. Call it on every survivor once they have synced
    /// with each other since the retirement (a dot any survivor had has spread by then).
    ///
    /// A node that joined after the retirement (it never had `peer` as a member) may
    /// call it too, or simply catch up from the others.
    ///
    /// # Errors
    /// [`Error::UnknownPeer`] if `peer` is this node or a current member.
    pub fn close_retired(&mut self, now: Instant, peer: NodeId) -> Result<(), Error> {
        self.clock_now.advance(now);
        if peer == self.durable.id || self.durable.members.contains(&peer) {
            return Err(Error::UnknownPeer(peer));
        }
        // Contexts may name dots of `peer` no clock here holds (they came with a
        // container whose sender is gone): those are part of what is declared lost.
        let d = &self.durable;
        let named = d
            .unstripped
            .keys()
            .filter_map(|k| d.store.get(k))
            .map(|dcc| dcc.context().get(peer))
            .max()
            .unwrap_or(0);
        self.durable.clock.close_gaps(peer, named);
        self.collect_garbage();
        Ok(())
    }

    /// Retires `old` and adds `new`: the id of a node that restarted without its state.
    ///
    /// # Errors
    /// As [`retire_peer`](Bvv::retire_peer) and [`add_peer`](Bvv::add_peer).
    pub fn replace_peer(&mut self, now: Instant, old: NodeId, new: NodeId) -> Result<(), Error> {
        if new == self.durable.id || self.durable.retired.contains(&new) || new == old {
            return Err(Error::UnknownPeer(new));
        }
        self.retire_peer(now, old)?;
        self.add_peer(now, new)
    }

    // ---- internals shared with sync.rs ---------------------------------------------------

    /// Remembers that `dot` was just logged (for [`Config::sync_grace`]).
    pub(crate) fn note_recent(&mut self, dot: Dot) {
        if !self.config.push_writes || self.config.sync_grace.is_zero() {
            return;
        }
        let now = self.clock_now.last().unwrap_or(self.started);
        if self.recent.len() >= self.config.max_log_entries {
            if let Some((_, old)) = self.recent.pop_front() {
                self.recent_set.remove(&old);
            }
        }
        self.recent.push_back((now, dot));
        self.recent_set.insert(dot);
    }

    /// Forgets dots logged longer than [`Config::sync_grace`] ago.
    pub(crate) fn expire_recent(&mut self, now: Instant) {
        while let Some(&(at, dot)) = self.recent.front() {
            if now.saturating_duration_since(at) < self.config.sync_grace {
                break;
            }
            self.recent.pop_front();
            self.recent_set.remove(&dot);
        }
    }

    /// Strips `dcc` against the node clock and stores it, or deletes the key if nothing
    /// is left.
    pub(crate) fn store_stripped(&mut self, key: Bytes, mut dcc: Dcc) {
        let d = &mut self.durable;
        dcc.strip(&d.clock);
        d.unstripped
            .set(&key, dcc.context().entries().first().copied());
        if dcc.is_empty() {
            if d.store.get(&key).is_some() {
                self.stats.keys_deleted += 1;
            }
            d.store.remove(&key);
        } else {
            d.store.put(key, dcc);
        }
    }

    /// Truncates the log below the watermark, re-strips a batch of keys and reports
    /// members that hold truncation back.
    pub(crate) fn collect_garbage(&mut self) {
        let d = &mut self.durable;
        let lowest: Vec<(NodeId, u64)> = d.log.lowest().collect();
        for (id, _) in lowest {
            let mine = d.clock.base(id);
            let others = d.members.iter().map(|&p| d.watermark.get(p, id)).min();
            let upto = others.map_or(mine, |o| o.min(mine));
            let gone = d.log.truncate(id, upto);
            self.stats.log_truncated += gone as u64;
        }
        // Re-strip the keys whose context the clock's base now covers.
        for key in d.unstripped.due(&d.clock, self.config.strip_batch) {
            let dcc = self.durable.store.get(&key).unwrap_or_default();
            self.store_stripped(key, dcc);
        }
    }

    /// Reports (and, with [`Config::retire_after`], retires) members that hold back
    /// truncation while silent.
    pub(crate) fn check_blocking(&mut self, now: Instant) {
        if self.durable.log.is_empty() {
            return;
        }
        let lowest: Vec<(NodeId, u64)> = self.durable.log.lowest().collect();
        let members: Vec<NodeId> = self.durable.members.iter().copied().collect();
        for p in members {
            let blocks = lowest
                .iter()
                .any(|&(id, c)| self.durable.watermark.get(p, id) < c);
            if !blocks {
                continue;
            }
            let heard = self.last_heard.get(&p).copied().unwrap_or(self.started);
            let silent_for = now.saturating_duration_since(heard);
            if silent_for < self.config.gc_block_report {
                continue;
            }
            if self
                .config
                .retire_after
                .is_some_and(|after| silent_for >= after)
            {
                // A member: retiring cannot fail.
                let _ = self.retire_peer(now, p);
                continue;
            }
            let due = self
                .reported
                .get(&p)
                .is_none_or(|&at| now.saturating_duration_since(at) >= self.config.gc_block_report);
            if due {
                self.reported.insert(p, now);
                self.stats.gc_blocked_reports += 1;
                self.out.push_back(Output::Event(Event::GcBlocked {
                    peer: p,
                    silent_for,
                    pending_dots: self.durable.log.len(),
                }));
            }
        }
    }

    pub(crate) fn start_sync(&mut self, peer: NodeId) {
        self.stats.syncs_started += 1;
        let request = self.next_request;
        self.next_request = self.next_request.wrapping_add(1);
        let resume = self.passes.get(&peer).and_then(|p| p.cursor.clone());
        self.requested.insert(
            peer,
            Requested {
                request,
                clock: self.durable.clock.clone(),
                resume: resume.clone(),
            },
        );
        self.out.push_back(Output::Send {
            to: peer,
            msg: Message::SyncRequest {
                request,
                clock: self.durable.clock.clone(),
                resume,
            },
        });
    }

    fn on_sync_timer(&mut self, now: Instant) {
        self.expire_recent(now);
        let members: Vec<NodeId> = self.durable.members.iter().copied().collect();
        if !members.is_empty() {
            let peer = members[self.rng.random_range(0..members.len())];
            self.start_sync(peer);
        }
        self.collect_garbage();
        self.check_blocking(now);
    }
}

impl<S: Storage, R: Rng> Machine for Bvv<S, R> {
    type Peer = NodeId;
    type Message = Message;
    type Event = Event;

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Message) {
        let now = self.clock_now.advance(now);
        self.on_message(now, from, msg);
    }

    fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock_now.advance(now);
        let Some(at) = self.next_sync else { return };
        if now < at {
            return;
        }
        self.next_sync = now.checked_add(self.config.sync_interval);
        self.on_sync_timer(now);
    }

    fn poll_output(&mut self) -> Option<Output<NodeId, Message, Event>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.next_sync
    }
}
