//! [`Node`]: one machine with both roles, write coordinator and replica, over a [`Store`].

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_core::{Deadlines, Machine, MonotonicNow, Output, TimerId, TimerTable};
use hashbrown::HashMap;
use rand::Rng;

use crate::config::Config;
use crate::coordinator::PendingWrite;
use crate::durable::{HintRecord, LogRecord};
use crate::error::ConfigError;
use crate::hints::{DropReason, HintStore};
use crate::message::{HintId, Message, NodeId, WriteId};
use crate::replay::ReplayState;
use crate::store::Store;

/// What a node tells its application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A write met its consistency level: tell the client it succeeded. Every target that
    /// has not acknowledged is covered by a hint persisted before this event.
    WriteAcked {
        /// The write.
        id: WriteId,
        /// Targets (owners or their fallbacks) that acknowledged so far.
        acks: usize,
        /// Owners covered by a hint on this node instead.
        hinted: usize,
        /// From the write command to now.
        latency: Duration,
    },
    /// A write timed out below its consistency level. It may still have reached some
    /// replicas (and hints cover the others), but the client must treat it as failed.
    WriteFailed {
        /// The write.
        id: WriteId,
        /// Acknowledgements received (plus hints, at level ANY).
        acks: usize,
        /// What the level needed.
        required: usize,
    },
    /// Make this record durable before carrying out the next output.
    Persist(LogRecord),
    /// A hint was dropped or never stored (window, TTL, bound): the target misses this
    /// mutation until anti-entropy repairs it.
    HintDropped {
        /// The hint's target.
        target: NodeId,
        /// The key.
        key: Bytes,
        /// The mutation's timestamp.
        timestamp: u64,
        /// Why.
        reason: DropReason,
    },
    /// A hint's target acknowledged it; the hint is removed (and, for a handoff, the
    /// guest copy dropped).
    HintDelivered {
        /// The target.
        target: NodeId,
        /// The hint.
        hint: HintId,
        /// Whether this node held the data as a sloppy-quorum guest.
        handoff: bool,
    },
}

/// Counters of everything a node did and refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Writes accepted by [`Node::write`].
    pub writes: u64,
    /// Writes that met their level.
    pub writes_acked: u64,
    /// Writes that timed out below their level.
    pub writes_failed: u64,
    /// Hints created (and persisted).
    pub hints_stored: u64,
    /// Hints rebuilt from the log at start.
    pub hints_recovered: u64,
    /// Hints removed because their target acknowledged a replay.
    pub hints_delivered: u64,
    /// Hints removed because the target acknowledged the original write late.
    pub hints_superseded: u64,
    /// Hints dropped or refused at the window.
    pub dropped_window: u64,
    /// Hints dropped at their TTL.
    pub dropped_ttl: u64,
    /// Hints refused at the per-target bound.
    pub dropped_target_bound: u64,
    /// Hints refused at the total bound.
    pub dropped_total_bound: u64,
    /// Replays sent.
    pub replays_sent: u64,
    /// Replays not acknowledged in time.
    pub replay_timeouts: u64,
    /// Guest copies dropped after handoff.
    pub guests_discarded: u64,
    /// Mutations applied to the local store (writes, hinted writes, replays).
    pub applied: u64,
    /// Mutations the store refused.
    pub store_errors: u64,
    /// Acknowledgements for unknown writes or hints (late, duplicate, forged).
    pub unknown_acks: u64,
    /// Acknowledgements from a node that was not the target, or that do not match.
    pub forged_acks: u64,
    /// Messages over the mutation size limit.
    pub oversized: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    Write(WriteId),
    Replay(NodeId, HintId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The hint dispatcher: TTL sweep and replay retry.
    Dispatch,
}

/// A node of a Dynamo-style store: it coordinates writes (consistency levels, sloppy
/// quorums, hints), serves as a replica (writes, hinted writes, replays, over a [`Store`]),
/// and replays the hints it holds at an adaptive rate.
///
/// `S` is the application's store, `R` the node's random source (write and hint ids).
#[derive(Debug)]
pub struct Node<S, R> {
    pub(crate) me: NodeId,
    pub(crate) config: Config,
    pub(crate) store: S,
    pub(crate) rng: R,
    pub(crate) clock: MonotonicNow,
    /// An instant and the application's wall clock (ms) at that instant.
    wall: (Instant, u64),
    pub(crate) out: VecDeque<Output<NodeId, Message, Event>>,
    /// Peers the application reported down, and since when.
    pub(crate) down: HashMap<NodeId, Instant>,
    pub(crate) pending: HashMap<WriteId, PendingWrite>,
    pub(crate) deadlines: Deadlines<Deadline>,
    pub(crate) timers: TimerTable<Timer>,
    pub(crate) hints: HintStore,
    pub(crate) replay: BTreeMap<NodeId, ReplayState>,
    pub(crate) stats: Stats,
}

impl<S: Store, R: Rng> Node<S, R> {
    /// A node `me` with an empty hint store. `wall_ms` is the application's wall clock at
    /// `now` in milliseconds; it only dates persisted hints, so that their TTL survives a
    /// restart.
    ///
    /// # Errors
    /// [`ConfigError`] if `config` does not validate.
    pub fn new(
        me: NodeId,
        config: Config,
        store: S,
        rng: R,
        now: Instant,
        wall_ms: u64,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut clock = MonotonicNow::new();
        let now = clock.advance(now);
        let mut timers = TimerTable::new();
        timers.set(Timer::Dispatch, now + config.replay_interval);
        Ok(Self {
            me,
            hints: HintStore::new(config.max_hints_per_target, config.max_hints_total),
            config,
            store,
            rng,
            clock,
            wall: (now, wall_ms),
            out: VecDeque::new(),
            down: HashMap::new(),
            pending: HashMap::new(),
            deadlines: Deadlines::new(),
            timers,
            replay: BTreeMap::new(),
            stats: Stats::default(),
        })
    }

    /// A node rebuilt after a restart from the live records of its hint log (every `Put`
    /// not followed by its `Remove`). Hints past their TTL or over a bound are dropped and
    /// reported (with a `Remove` to persist); the others are replayed from the first
    /// dispatch, which is due at once. Writes that were in flight are gone: the client never
    /// saw them acknowledged, or a persisted hint covers every replica they had not reached.
    ///
    /// # Errors
    /// [`ConfigError`] if `config` does not validate.
    pub fn from_log<'a>(
        me: NodeId,
        config: Config,
        store: S,
        rng: R,
        now: Instant,
        wall_ms: u64,
        records: impl IntoIterator<Item = &'a HintRecord>,
    ) -> Result<Self, ConfigError> {
        let mut node = Self::new(me, config, store, rng, now, wall_ms)?;
        let now = node.clock.advance(now);
        let mut records: Vec<&HintRecord> = records.into_iter().collect();
        records.sort_by_key(|r| r.created_ms);
        for r in records {
            if node.hints.contains(r.id) || r.target == me {
                continue;
            }
            let age = Duration::from_millis(wall_ms.saturating_sub(r.created_ms));
            let reason = if age >= node.config.hint_ttl {
                Some(DropReason::Ttl)
            } else {
                node.hints.refuses(r.target)
            };
            if let Some(reason) = reason {
                node.report_drop(r.target, &r.mutation.key, r.mutation.timestamp, reason);
                node.persist(LogRecord::Remove(r.id));
                continue;
            }
            // An age older than this process's clock can express restarts the TTL clock
            // at `now`: the hint lives longer, never shorter.
            let created = now.checked_sub(age).unwrap_or(now);
            node.hints.insert(
                r.id,
                r.target,
                r.mutation.clone(),
                created,
                r.created_ms,
                r.handoff,
                now,
            );
            node.stats.hints_recovered += 1;
        }
        node.timers.set(Timer::Dispatch, now);
        Ok(node)
    }

    // ---- liveness, from the application (SWIM, or any successful contact) --------------

    /// The application learned that `peer` is down (a failure detector's verdict). New
    /// writes treat it as unavailable and hint it; replay to it stops.
    pub fn peer_down(&mut self, now: Instant, peer: NodeId) {
        let now = self.clock.advance(now);
        if peer == self.me {
            return;
        }
        self.down.entry(peer).or_insert(now);
        self.abort_replay(peer);
    }

    /// The application learned that `peer` is alive again: replay its hints now.
    pub fn peer_up(&mut self, now: Instant, peer: NodeId) {
        let now = self.clock.advance(now);
        self.down.remove(&peer);
        self.pump(now, peer);
    }

    /// Whether the application reported `peer` down (and not up since).
    #[must_use]
    pub fn is_known_down(&self, peer: NodeId) -> bool {
        self.down.contains_key(&peer)
    }

    pub(crate) fn is_alive(&self, peer: NodeId) -> bool {
        peer == self.me || !self.down.contains_key(&peer)
    }

    // ---- read access -------------------------------------------------------------------

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.me
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The local store.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The local store, mutably (to move it out across a simulated restart).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Hints held.
    #[must_use]
    pub fn hints_pending(&self) -> usize {
        self.hints.len()
    }

    /// Hints held for `target`.
    #[must_use]
    pub fn hints_for(&self, target: NodeId) -> usize {
        self.hints.count_for(target)
    }

    /// Every hint held, in persisted form, by target then age.
    pub fn hint_records(&self) -> impl Iterator<Item = HintRecord> + '_ {
        self.hints.iter().map(crate::hints::Hint::record)
    }

    /// Writes in flight.
    #[must_use]
    pub fn pending_writes(&self) -> usize {
        self.pending.len()
    }

    /// Replays in flight to `target`.
    #[must_use]
    pub fn replays_in_flight(&self, target: NodeId) -> usize {
        self.replay.get(&target).map_or(0, ReplayState::in_flight)
    }

    /// The replay window to `target` (replays allowed in flight), if replay state exists.
    #[must_use]
    pub fn replay_window(&self, target: NodeId) -> Option<f64> {
        self.replay.get(&target).map(ReplayState::window)
    }

    /// The latest instant this node has seen (what a simulated restart rebuilds it at).
    #[must_use]
    pub fn last_seen(&self) -> Option<Instant> {
        self.clock.last()
    }

    /// The application's wall clock at `now` in ms, as this node dates hints.
    #[must_use]
    pub fn wall_clock_ms(&self, now: Instant) -> u64 {
        self.wall_ms(now)
    }

    // ---- shared helpers ----------------------------------------------------------------

    /// The application's wall clock at `now`, in ms.
    pub(crate) fn wall_ms(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.wall.0).as_millis();
        self.wall
            .1
            .saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }

    pub(crate) fn persist(&mut self, record: LogRecord) {
        self.out.push_back(Output::Event(Event::Persist(record)));
    }

    pub(crate) fn send(&mut self, to: NodeId, msg: Message) {
        self.out.push_back(Output::Send { to, msg });
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.out.push_back(Output::Event(event));
    }

    pub(crate) fn report_drop(
        &mut self,
        target: NodeId,
        key: &Bytes,
        timestamp: u64,
        reason: DropReason,
    ) {
        match reason {
            DropReason::Window => self.stats.dropped_window += 1,
            DropReason::Ttl => self.stats.dropped_ttl += 1,
            DropReason::TargetBound => self.stats.dropped_target_bound += 1,
            DropReason::TotalBound => self.stats.dropped_total_bound += 1,
        }
        self.emit(Event::HintDropped {
            target,
            key: key.clone(),
            timestamp,
            reason,
        });
    }

    /// Any message from `peer` proves it alive: if it was reported down, replay now.
    fn contact(&mut self, now: Instant, peer: NodeId) {
        if self.down.remove(&peer).is_some() {
            self.pump(now, peer);
        }
    }

    fn on_dispatch(&mut self, now: Instant) {
        self.expire_hints(now);
        let targets: Vec<NodeId> = self.hints.targets().collect();
        for t in targets {
            self.pump(now, t);
        }
        self.timers
            .set(Timer::Dispatch, now + self.config.replay_interval);
    }

    pub(crate) fn cancel(&mut self, id: TimerId) {
        self.deadlines.cancel(id);
    }
}

impl<S: Store, R: Rng> Machine for Node<S, R> {
    type Peer = NodeId;
    type Message = Message;
    type Event = Event;

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Message) {
        let now = self.clock.advance(now);
        if from == self.me {
            return;
        }
        self.contact(now, from);
        match msg {
            Message::Write { id, mutation } => self.on_write(from, id, &mutation),
            Message::HintedWrite {
                id,
                owner,
                mutation,
            } => self.on_hinted_write(now, from, id, owner, mutation),
            Message::WriteAck { id } => self.on_write_ack(now, from, id),
            Message::Replay { hint, mutation } => self.on_replay(from, hint, &mutation),
            Message::ReplayAck { hint, timestamp } => {
                self.on_replay_ack(now, from, hint, timestamp);
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock.advance(now);
        while let Some((_, d)) = self.deadlines.pop_expired(now) {
            match d {
                Deadline::Write(id) => self.on_write_timeout(now, id),
                Deadline::Replay(target, hint) => self.on_replay_timeout(now, target, hint),
            }
        }
        while let Some(Timer::Dispatch) = self.timers.pop_expired(now) {
            self.on_dispatch(now);
        }
    }

    fn poll_output(&mut self) -> Option<Output<NodeId, Message, Event>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match (self.deadlines.next_deadline(), self.timers.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
