//! The [`Swim`] machine: its state, the application's commands, the timers and the
//! [`Machine`] implementation. The membership rules live in `rules.rs`, probing in
//! `probe.rs`, full-state exchange in `push_pull.rs`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_core::codec::{self, ENVELOPE_LEN};
use epidemic_core::{
    BoundedQueue, Deadlines, Machine, MonotonicNow, Output, Overflow, TimerId, TimerTable,
};
use hashbrown::HashMap;
use rand::{Rng, RngExt};
use smallvec::SmallVec;

use crate::Address;
use crate::broadcast::TransmitQueue;
use crate::config::Config;
use crate::error::{ConfigError, Error};
use crate::event::{Event, MemberInfo, Stats};
use crate::lifeguard::{Awareness, push_pull_scale, retransmit_limit};
use crate::message::{Message, State, Update};
use crate::table::MemberTable;

/// Most members whose refutation one reply carries back to the sender of an outdated
/// suspicion (each Alive is small; eight fit any packet size `validate` accepts).
pub(crate) const MAX_CORRECTIONS: usize = 8;

/// Outputs the output buffer keeps room for once drained.
const OUT_KEEP: usize = 64;

/// The protocol-wide timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// The current probe's direct timeout: time to ask helpers.
    Indirect,
    /// The end of the protocol period: judge the probe, start the next.
    Probe,
    /// Gossip pending updates.
    Gossip,
    /// Full-state exchange.
    PushPull,
    /// Retry the join.
    Join,
}

/// Per-member and per-relay timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer<A> {
    /// A suspicion times out: the member is declared dead.
    Suspicion(A),
    /// A tombstone expires: the entry is forgotten.
    Tombstone(A),
    /// A relayed probe got no ack in time: nack the requester.
    RelayNack(u32),
    /// A relayed probe is over: forget it.
    RelayEnd(u32),
}

/// An open suspicion (Lifeguard's dynamic timeout).
#[derive(Debug, Clone)]
pub(crate) struct Suspicion<A> {
    pub(crate) timer: TimerId,
    pub(crate) start: Instant,
    /// Confirmations that shrink the timeout to `min`.
    pub(crate) k: u32,
    /// Who suspected it: the first did not confirm, each later distinct one did.
    pub(crate) suspecters: SmallVec<[A; 4]>,
    pub(crate) min: Duration,
    pub(crate) max: Duration,
    /// Whether the last-chance ping was sent.
    pub(crate) last_chance: bool,
}

/// A member's entry: small, since a member of an N-member group holds N of them; the
/// few open suspicions and tombstones live in side maps.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) incarnation: u32,
    pub(crate) state: State,
    /// Whether it is in the current probe order.
    pub(crate) in_order: bool,
    /// Its metadata: no heap unless non-empty, and then one shared `Bytes`.
    pub(crate) meta: Option<Box<Bytes>>,
    /// The id + 1 of its queued update (0: none; see `broadcast.rs`).
    pub(crate) queued: u64,
}

impl Member {
    pub(crate) fn new(incarnation: u32, meta: Bytes) -> Self {
        Self {
            incarnation,
            state: State::Alive,
            in_order: false,
            meta: crate::broadcast::boxed_meta(meta),
            queued: 0,
        }
    }

    /// Its metadata (a shared handle, not a copy).
    pub(crate) fn meta(&self) -> Bytes {
        self.meta.as_deref().cloned().unwrap_or_default()
    }

    pub(crate) fn meta_is(&self, meta: &Bytes) -> bool {
        self.meta.as_deref().map_or(meta.is_empty(), |m| m == meta)
    }
}

/// The probe of the current protocol period.
#[derive(Debug, Clone)]
pub(crate) struct Probe<A> {
    pub(crate) target: A,
    pub(crate) seq: u32,
    pub(crate) acked: bool,
    pub(crate) indirect_sent: bool,
    pub(crate) expected_nacks: u32,
    pub(crate) nacks: u32,
}

/// A ping-req we are carrying out for someone.
#[derive(Debug, Clone)]
pub(crate) struct Relay<A> {
    pub(crate) requester: A,
    pub(crate) seq: u32,
    pub(crate) nack: Option<TimerId>,
}

/// The join in progress.
#[derive(Debug, Clone)]
pub(crate) struct Join<A> {
    pub(crate) seeds: Vec<A>,
    pub(crate) attempts: u32,
}

/// What a user-broadcast id is remembered by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Seen<A> {
    Keyed(A, u64),
    Unkeyed(A, u32),
}

/// A SWIM member: probes, suspects, disseminates and answers, as a sans-IO machine.
///
/// `A` is a member's address (its identity); `R` the injected RNG.
pub struct Swim<A: Address, R> {
    pub(crate) me: A,
    pub(crate) config: Config,
    pub(crate) rng: R,
    pub(crate) clock: MonotonicNow,
    pub(crate) started: bool,
    pub(crate) left: bool,
    pub(crate) incarnation: u32,
    pub(crate) meta: Bytes,
    pub(crate) members: MemberTable<A>,
    /// Open suspicions, by member.
    pub(crate) suspicions: HashMap<A, Suspicion<A>>,
    /// Tombstone expiry timers, by member.
    pub(crate) tombstones: HashMap<A, TimerId>,
    /// Alive and Suspect members.
    pub(crate) live: usize,
    pub(crate) order: Vec<A>,
    pub(crate) order_pos: usize,
    pub(crate) probe: Option<Probe<A>>,
    pub(crate) ticks: TimerTable<Tick>,
    pub(crate) timers: Deadlines<Timer<A>>,
    pub(crate) relays: HashMap<u32, Relay<A>>,
    pub(crate) queue: TransmitQueue<A>,
    pub(crate) awareness: Awareness,
    pub(crate) seq: u32,
    pub(crate) user_seq: u32,
    pub(crate) join: Option<Join<A>>,
    /// The seeds of the last join: push-pull reaches for any that is not live, so that
    /// a partition longer than the tombstones' retention still heals.
    pub(crate) seeds: Vec<A>,
    pub(crate) push_pull_seq: Option<u32>,
    pub(crate) replied: BoundedQueue<(A, u32)>,
    pub(crate) seen: HashMap<Seen<A>, u32>,
    pub(crate) seen_order: BoundedQueue<Seen<A>>,
    pub(crate) out: VecDeque<Output<A, Message<A>, Event<A>>>,
    pub(crate) stats: Stats,
    /// Set while handling a message that spread an outdated suspicion of us.
    pub(crate) correct_sender: bool,
    /// Members the message being handled suspected or declared dead at an incarnation
    /// they have since refuted: the sender missed the refutation, so it gets our newer
    /// Alive back (at most [`MAX_CORRECTIONS`] per message).
    pub(crate) corrections: SmallVec<[A; 4]>,
    /// Whether the message being handled asks something (a ping or a ping-req), so that
    /// third-party corrections are worth a reply. Gossip and answers are not corrected:
    /// during a refutation's wave most outdated suspicions are still in flight and
    /// answering each would cost more than the wave.
    pub(crate) correcting: bool,
}

impl<A: Address, R> std::fmt::Debug for Swim<A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swim")
            .field("me", &self.me)
            .field("incarnation", &self.incarnation)
            .field("members", &self.members.len())
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl<A: Address, R: Rng> Swim<A, R> {
    /// A member at address `me` that has not joined anything yet. It starts probing at its
    /// first input: [`join`](Swim::join), [`start`](Swim::start) or a message.
    ///
    /// # Errors
    /// The configuration cannot work (see [`Config::validate`]).
    pub fn new(me: A, config: Config, rng: R) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            me,
            rng,
            clock: MonotonicNow::new(),
            started: false,
            left: false,
            incarnation: 0,
            meta: Bytes::new(),
            members: MemberTable::new(),
            suspicions: HashMap::new(),
            tombstones: HashMap::new(),
            live: 0,
            order: Vec::new(),
            order_pos: 0,
            probe: None,
            ticks: TimerTable::new(),
            timers: Deadlines::new(),
            relays: HashMap::new(),
            queue: TransmitQueue::new(config.max_queue),
            awareness: Awareness::new(config.awareness_max_multiplier),
            seq: 0,
            user_seq: 0,
            join: None,
            seeds: Vec::new(),
            push_pull_seq: None,
            replied: BoundedQueue::new(64, Overflow::DropOldest),
            seen: HashMap::new(),
            seen_order: BoundedQueue::new(config.max_seen_broadcasts, Overflow::DropOldest),
            out: VecDeque::new(),
            stats: Stats::default(),
            correct_sender: false,
            corrections: SmallVec::new(),
            correcting: false,
            config,
        })
    }

    /// Sets this node's incarnation before it starts (a restarted node that kept its last
    /// incarnation on disk starts above it and needs no refutation round).
    pub fn with_incarnation(mut self, incarnation: u32) -> Self {
        self.incarnation = incarnation;
        self
    }

    // ---- commands -----------------------------------------------------------------------

    /// Starts probing as the first member of a new group (nobody to contact).
    pub fn start(&mut self, now: Instant) {
        let now = self.clock.advance(now);
        self.ensure_started(now);
    }

    /// Joins the group through `seeds`: a full-state exchange with each, retried every
    /// `join_retry_interval` until one answers, `join_attempts` times. After a
    /// [`leave`](Swim::leave), joins again with a higher incarnation.
    ///
    /// # Errors
    /// [`Error::NoSeeds`] if no seed other than this node is given (nothing changes).
    pub fn join(&mut self, now: Instant, seeds: impl IntoIterator<Item = A>) -> Result<(), Error> {
        let now = self.clock.advance(now);
        let mut list: Vec<A> = seeds.into_iter().filter(|s| *s != self.me).collect();
        list.sort();
        list.dedup();
        if list.is_empty() {
            return Err(Error::NoSeeds);
        }
        if self.left {
            self.left = false;
            self.raise_incarnation(self.incarnation);
        }
        self.ensure_started(now);
        self.seeds.clone_from(&list);
        self.join = Some(Join {
            seeds: list,
            attempts: 0,
        });
        self.join_attempt(now);
        Ok(())
    }

    /// Leaves the group gracefully: a Left update is gossiped at once and until its
    /// retransmits are spent; probing stops. The driver may stop the node once
    /// [`poll_timeout`](Machine::poll_timeout) returns `None`.
    pub fn leave(&mut self, now: Instant) {
        let now = self.clock.advance(now);
        if self.left {
            return;
        }
        self.ensure_started(now);
        self.left = true;
        self.join = None;
        self.probe = None;
        self.ticks.stop(Tick::Probe);
        self.ticks.stop(Tick::Indirect);
        self.ticks.stop(Tick::PushPull);
        self.ticks.stop(Tick::Join);
        self.enqueue(Update::Left {
            member: self.me.clone(),
            incarnation: self.incarnation,
        });
        self.gossip(now);
    }

    /// Replaces this node's metadata and announces it with a higher incarnation.
    ///
    /// # Errors
    /// [`Error::MetaTooLong`] (nothing changes).
    pub fn set_meta(&mut self, now: Instant, meta: Bytes) -> Result<(), Error> {
        self.clock.advance(now);
        if meta.len() > self.config.max_meta_len {
            return Err(Error::MetaTooLong {
                len: meta.len(),
                max: self.config.max_meta_len,
            });
        }
        self.meta = meta;
        self.raise_incarnation(self.incarnation);
        Ok(())
    }

    /// Disseminates `payload` to every member, piggybacked like membership updates; a
    /// later broadcast with the same `key` supersedes this one wherever it is still
    /// queued. Returns its sequence number.
    ///
    /// # Errors
    /// [`Error::PayloadTooLarge`] if it cannot fit in one packet; [`Error::Left`].
    pub fn broadcast(
        &mut self,
        now: Instant,
        key: Option<u64>,
        payload: Bytes,
    ) -> Result<u32, Error> {
        self.clock.advance(now);
        if self.left {
            return Err(Error::Left);
        }
        let update = Update::User {
            origin: self.me.clone(),
            seq: self.user_seq.wrapping_add(1),
            key,
            payload,
        };
        let size = codec::encoded_len(&Message::Gossip {
            updates: vec![update.clone()],
        }) + 2;
        if size > self.config.max_packet_size {
            let Update::User { payload, .. } = update else {
                unreachable!("built just above as a User update")
            };
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max: payload
                    .len()
                    .saturating_sub(size - self.config.max_packet_size),
            });
        }
        self.user_seq = self.user_seq.wrapping_add(1);
        self.remember(seen_key(&self.me, self.user_seq, key), self.user_seq);
        self.enqueue(update);
        Ok(self.user_seq)
    }

    // ---- queries ------------------------------------------------------------------------

    /// This node's address.
    #[must_use]
    pub fn me(&self) -> &A {
        &self.me
    }

    /// This node's incarnation.
    #[must_use]
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// Every member this node knows (not itself), tombstones included, in table order.
    pub fn members(&self) -> impl Iterator<Item = MemberInfo<A>> + '_ {
        self.members.iter().map(|(a, m)| MemberInfo {
            member: a.clone(),
            state: m.state,
            incarnation: m.incarnation,
            meta: m.meta(),
        })
    }

    /// One member as this node sees it.
    #[must_use]
    pub fn member(&self, member: &A) -> Option<MemberInfo<A>> {
        self.members.get(member).map(|m| MemberInfo {
            member: member.clone(),
            state: m.state,
            incarnation: m.incarnation,
            meta: m.meta(),
        })
    }

    /// Alive and Suspect members, not counting this node.
    #[must_use]
    pub fn num_live(&self) -> usize {
        self.live
    }

    /// Entries in the member table (tombstones included).
    #[must_use]
    pub fn num_members(&self) -> usize {
        self.members.len()
    }

    /// The local health score (0 is healthy; the probe interval is multiplied by score + 1).
    #[must_use]
    pub fn health_score(&self) -> u32 {
        self.awareness.score()
    }

    /// Updates waiting for dissemination.
    #[must_use]
    pub fn queued_updates(&self) -> usize {
        self.queue.len()
    }

    /// Whether this node has left.
    #[must_use]
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// What this node did and dropped.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.dropped_updates = self.queue.dropped;
        s.invalidated_updates = self.queue.invalidated;
        s
    }

    /// Heap bytes this node's state holds, from capacities and element sizes (the
    /// B-tree of the dissemination queue estimated at two thirds full; allocator overhead
    /// not counted). Experiments divide it by the member count to get the cost of one
    /// member-pair.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let metas = self.members.values().filter(|m| m.meta.is_some()).count();
        self.members.heap_bytes()
            + metas * size_of::<Bytes>()
            + self.order.capacity() * size_of::<A>()
            + self.queue.heap_bytes()
            + self.suspicions.allocation_size()
            + self.tombstones.allocation_size()
            + self.relays.allocation_size()
            + self.seen.allocation_size()
            + self.out.capacity() * size_of::<Output<A, Message<A>, Event<A>>>()
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Ends this member's current protocol period at `at` (now, if `at` is past), so that
    /// an experiment can put every member's periods on one grid, as the SWIM paper's
    /// analysis of first detection assumes. The protocol itself never needs it: each
    /// period starts where the last ended, so a member in perfect local health stays on
    /// the grid it is put on.
    #[cfg(feature = "sim")]
    pub fn align_period(&mut self, now: Instant, at: Instant) {
        let now = self.clock.advance(now);
        if self.started && !self.left {
            self.ticks.set(Tick::Probe, at.max(now));
        }
    }

    // ---- internals shared by the other files -------------------------------------------

    pub(crate) fn ensure_started(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        // Spread the first probe over one interval so that nodes started together do not
        // probe in lockstep.
        let jitter = self.jitter(self.config.probe_interval);
        self.ticks.set(Tick::Probe, now + jitter);
        if !self.config.gossip_interval.is_zero() {
            let j = self.jitter(self.config.gossip_interval);
            self.ticks.set(Tick::Gossip, now + j);
        }
        if !self.config.push_pull_interval.is_zero() {
            let d = self.push_pull_interval();
            let j = self.jitter(d);
            self.ticks.set(Tick::PushPull, now + d + j);
        }
    }

    fn jitter(&mut self, d: Duration) -> Duration {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        Duration::from_nanos(self.rng.random_range(0..nanos))
    }

    pub(crate) fn push_pull_interval(&self) -> Duration {
        push_pull_scale(self.config.push_pull_interval, self.members.len() + 1)
    }

    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// The retransmit limit for the group's current size.
    pub(crate) fn limit(&self) -> u32 {
        retransmit_limit(self.config.retransmit_mult, self.live + 1)
    }

    pub(crate) fn emit(&mut self, e: Event<A>) {
        self.out.push_back(Output::Event(e));
    }

    /// Sends `msg` to `to` after filling it with updates up to the packet size.
    pub(crate) fn send(&mut self, to: A, mut msg: Message<A>) {
        if !self.queue.is_empty() {
            let base = codec::encoded_len(&msg);
            // Two bytes of headroom for the update list's length prefix to grow.
            let budget = self.config.max_packet_size.saturating_sub(base + 2);
            let limit = self.limit();
            if let Some(updates) = msg.updates_mut() {
                self.take_updates(budget, limit, updates);
            }
        }
        debug_assert!(codec::encoded_len(&msg) <= self.config.max_packet_size.max(ENVELOPE_LEN));
        self.out.push_back(Output::Send { to, msg });
    }

    /// Raises our incarnation above `seen` and announces ourselves alive.
    pub(crate) fn raise_incarnation(&mut self, seen: u32) {
        match self.incarnation.max(seen).checked_add(1) {
            Some(inc) => self.incarnation = inc,
            None => {
                self.stats.incarnation_overflow += 1;
                self.incarnation = u32::MAX;
            }
        }
        self.enqueue(Update::Alive {
            member: self.me.clone(),
            incarnation: self.incarnation,
            meta: self.meta.clone(),
        });
    }

    /// The Alive updates that correct the sender of the message just handled: ours if it
    /// spread an outdated suspicion of us, and each member's it suspected or declared
    /// dead below the incarnation that member has since refuted with.
    pub(crate) fn take_corrections(&mut self) -> Vec<Update<A>> {
        let mut updates = Vec::new();
        if std::mem::take(&mut self.correct_sender) {
            updates.push(self.self_alive());
        }
        for a in std::mem::take(&mut self.corrections) {
            if let Some(m) = self.members.get(&a).filter(|m| m.state == State::Alive) {
                updates.push(Update::Alive {
                    member: a,
                    incarnation: m.incarnation,
                    meta: m.meta(),
                });
            }
        }
        if !updates.is_empty() {
            self.stats.corrections_sent += 1;
        }
        updates
    }

    /// Our own Alive update.
    pub(crate) fn self_alive(&self) -> Update<A> {
        Update::Alive {
            member: self.me.clone(),
            incarnation: self.incarnation,
            meta: self.meta.clone(),
        }
    }

    /// Up to `k` distinct random members passing `pick`, never `except`.
    pub(crate) fn random_members(
        &mut self,
        k: usize,
        except: Option<&A>,
        pick: impl Fn(&Member) -> bool,
    ) -> SmallVec<[A; 4]> {
        let mut chosen: SmallVec<[A; 4]> = SmallVec::new();
        let n = self.members.len();
        if n == 0 || k == 0 {
            return chosen;
        }
        // Random probes first (cheap in a big table), then a scan from a random start so a
        // sparse table still yields every candidate.
        for _ in 0..3 * k {
            if chosen.len() >= k {
                return chosen;
            }
            let i = self.rng.random_range(0..n);
            let (a, m) = self.members.get_index(i).expect("index below len");
            if pick(m) && Some(a) != except && !chosen.contains(a) {
                chosen.push(a.clone());
            }
        }
        let start = self.rng.random_range(0..n);
        for j in 0..n {
            if chosen.len() >= k {
                break;
            }
            let (a, m) = self
                .members
                .get_index((start + j) % n)
                .expect("index below len");
            if pick(m) && Some(a) != except && !chosen.contains(a) {
                chosen.push(a.clone());
            }
        }
        chosen
    }

    pub(crate) fn remember(&mut self, key: Seen<A>, seq: u32) {
        if self.seen.insert(key.clone(), seq).is_none() {
            if let Some(old) = self.seen_order.push(key) {
                self.seen.remove(&old);
            }
        }
    }

    // ---- timers -------------------------------------------------------------------------

    fn on_tick(&mut self, now: Instant, tick: Tick) {
        match tick {
            Tick::Indirect => self.send_ping_reqs(now),
            Tick::Probe => {
                self.finish_probe(now);
                self.start_probe(now);
            }
            Tick::Gossip => {
                self.gossip(now);
                if !self.left || !self.queue.is_empty() {
                    self.ticks
                        .set(Tick::Gossip, now + self.config.gossip_interval);
                }
            }
            Tick::PushPull => {
                let mut targets = self.random_members(1, None, |m| m.state.is_live());
                let lost: SmallVec<[A; 4]> = self
                    .seeds
                    .iter()
                    .filter(|s| !self.members.get(*s).is_some_and(|m| m.state.is_live()))
                    .cloned()
                    .collect();
                if !lost.is_empty() {
                    let i = self.rng.random_range(0..lost.len());
                    targets.push(lost[i].clone());
                }
                let seq = self.next_seq();
                self.push_pull_seq = Some(seq);
                for t in targets {
                    self.stats.push_pulls += 1;
                    self.start_push_pull(&t, seq);
                }
                self.ticks
                    .set(Tick::PushPull, now + self.push_pull_interval());
            }
            Tick::Join => self.join_attempt(now),
        }
    }

    fn join_attempt(&mut self, now: Instant) {
        let Some(join) = self.join.as_mut() else {
            return;
        };
        if join.attempts >= self.config.join_attempts {
            self.join = None;
            self.emit(Event::JoinFailed);
            return;
        }
        join.attempts += 1;
        let seeds = join.seeds.clone();
        let seq = self.next_seq();
        self.push_pull_seq = Some(seq);
        for s in seeds {
            self.send_state(&s, seq, false);
        }
        self.ticks
            .set(Tick::Join, now + self.config.join_retry_interval);
    }

    /// Sends pending updates to `gossip_nodes` random members (tombstones included, so a
    /// member wrongly declared dead hears it and refutes), if any are pending.
    pub(crate) fn gossip(&mut self, _now: Instant) {
        if self.queue.is_empty() {
            return;
        }
        let targets =
            self.random_members(self.config.gossip_nodes, None, |m| m.state != State::Left);
        for t in targets {
            if self.queue.is_empty() {
                break;
            }
            self.send(
                t,
                Message::Gossip {
                    updates: Vec::new(),
                },
            );
        }
    }

    fn on_timer(&mut self, now: Instant, timer: Timer<A>) {
        match timer {
            Timer::Suspicion(a) => self.on_suspicion_timeout(now, &a),
            Timer::Tombstone(a) => {
                self.tombstones.remove(&a);
                if self.members.get(&a).is_some_and(|m| !m.state.is_live()) {
                    self.forget_member(&a);
                }
            }
            Timer::RelayNack(seq) => {
                if let Some(r) = self.relays.get_mut(&seq) {
                    r.nack = None;
                    let (to, seq) = (r.requester.clone(), r.seq);
                    self.send(
                        to,
                        Message::Nack {
                            seq,
                            updates: Vec::new(),
                        },
                    );
                }
            }
            Timer::RelayEnd(seq) => {
                if let Some(r) = self.relays.remove(&seq) {
                    if let Some(id) = r.nack {
                        self.timers.cancel(id);
                    }
                }
            }
        }
    }
}

pub(crate) fn seen_key<A: Clone>(origin: &A, seq: u32, key: Option<u64>) -> Seen<A> {
    match key {
        Some(k) => Seen::Keyed(origin.clone(), k),
        None => Seen::Unkeyed(origin.clone(), seq),
    }
}

impl<A: Address, R: Rng> Machine for Swim<A, R> {
    type Peer = A;
    type Message = Message<A>;
    type Event = Event<A>;

    fn handle_message(&mut self, now: Instant, from: A, msg: Message<A>) {
        let now = self.clock.advance(now);
        if from == self.me {
            self.stats.misdirected += 1;
            return;
        }
        if !self.left {
            self.ensure_started(now);
        }
        self.correct_sender = false;
        self.corrections.clear();
        self.correcting = matches!(msg, Message::Ping { .. } | Message::PingReq { .. });
        match msg {
            Message::Ping {
                seq,
                target,
                updates,
            } => {
                if target != self.me {
                    self.stats.misdirected += 1;
                    return;
                }
                self.apply_all(now, &from, updates);
                let updates = self.take_corrections();
                self.send(from, Message::Ack { seq, updates });
                return;
            }
            Message::Ack { seq, updates } => {
                self.apply_all(now, &from, updates);
                self.on_ack(seq);
            }
            Message::PingReq {
                seq,
                target,
                nack_ms,
                updates,
            } => {
                self.apply_all(now, &from, updates);
                self.on_ping_req(now, from.clone(), seq, target, nack_ms);
            }
            Message::Nack { seq, updates } => {
                self.apply_all(now, &from, updates);
                self.on_nack(seq);
            }
            Message::Gossip { updates } => self.apply_all(now, &from, updates),
            Message::PushPull {
                seq,
                reply,
                members,
                ..
            } => self.on_push_pull(now, &from, seq, reply, members),
            Message::PushPullDigest { seq, digest } => {
                self.on_push_pull_digest(&from, seq, digest);
            }
        }
        let updates = self.take_corrections();
        if !updates.is_empty() {
            self.send(from, Message::Gossip { updates });
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock.advance(now);
        while let Some((_, timer)) = self.timers.pop_expired(now) {
            self.on_timer(now, timer);
        }
        while let Some(tick) = self.ticks.pop_expired(now) {
            self.on_tick(now, tick);
        }
    }

    fn poll_output(&mut self) -> Option<Output<A, Message<A>, Event<A>>> {
        let o = self.out.pop_front();
        if o.is_none() && self.out.capacity() > OUT_KEEP {
            // A merged full state emits one event per new member: give the burst's
            // buffer back rather than keep it for the node's life.
            self.out.shrink_to(OUT_KEEP);
        }
        o
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match (self.ticks.next_deadline(), self.timers.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
