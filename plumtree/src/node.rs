//! [`Plumtree`]: the state of one node, its commands and its [`Machine`] implementation.
//! The message handlers are in `handlers.rs`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

use bytes::Bytes;
use epidemic_core::{Deadlines, Machine, MonotonicNow, Output, TimerId, TimerTable};
use indexmap::IndexMap;
use rand::Rng;
use smallvec::SmallVec;

use crate::config::Config;
use crate::error::Error;
use crate::event::{Event, Received, Scope, Stats};
use crate::message::{self, Direct, IHave, Message, MessageId, Payload};

/// What a peer id must be: an identity that can be ordered, hashed and printed.
pub trait PeerId: Clone + Ord + Hash + Debug {}

impl<T: Clone + Ord + Hash + Debug> PeerId for T {}

/// The application's say on each received message, before it is delivered or forwarded.
///
/// Return `false` to decline: the message is then neither delivered here nor forwarded
/// (nor served to GRAFTs), its id is remembered so copies are ignored, and the sender is
/// not penalised (it may only have relayed it). Closures `FnMut(&P, &MessageId, &Bytes)
/// -> bool` are validators.
pub trait Validator<P> {
    /// Whether to deliver and forward `payload`, received from `from` with id `id`.
    fn validate(&mut self, from: &P, id: &MessageId, payload: &Bytes) -> bool;
}

/// The default [`Validator`]: accepts every message.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl<P> Validator<P> for AcceptAll {
    fn validate(&mut self, _: &P, _: &MessageId, _: &Bytes) -> bool {
        true
    }
}

impl<P, F: FnMut(&P, &MessageId, &Bytes) -> bool> Validator<P> for F {
    fn validate(&mut self, from: &P, id: &MessageId, payload: &Bytes) -> bool {
        self(from, id, payload)
    }
}

/// The protocol-wide timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Send the queued IHAVE announcements.
    Flush,
}

/// A neighbour and how we push to it.
#[derive(Debug, Clone)]
pub(crate) struct Neighbor {
    /// Eager (payloads) or lazy (IHAVE).
    pub(crate) eager: bool,
    /// GRAFTs with an id it may still have answered with a payload.
    pub(crate) graft_credit: u32,
    /// When it last delivered us a message first (it is our tree parent for some sender).
    pub(crate) parent_at: Option<Instant>,
    /// The last two messages we forwarded to it, with when (it may be our child on their
    /// senders' paths; see [`Config::prune_grace`]).
    pub(crate) pushed: [Option<(Instant, MessageId)>; 2],
    /// Prunes of it deferred by the grace in a row, and when the last one was: under
    /// steady traffic every link is always in its grace, and without a cap no redundant
    /// link would ever be cut ([`Config::max_prune_deferrals`]).
    pub(crate) deferred: (u32, Option<Instant>),
}

/// A payload kept to serve GRAFTs and to announce to new neighbours.
#[derive(Debug, Clone)]
pub(crate) struct Cached<P> {
    pub(crate) payload: Bytes,
    /// Our hop count for it (0 at the origin).
    pub(crate) round: u16,
    /// The neighbour it came from (`None`: we are the origin).
    pub(crate) from: Option<P>,
    /// Neighbours we grafted for it: their copy is an answer, not a redundant push.
    pub(crate) grafted: SmallVec<[P; 2]>,
}

/// A message announced to us whose payload has not arrived.
#[derive(Debug, Clone)]
pub(crate) struct Missing<P> {
    /// Announcers not yet grafted, in the order they announced, with their round.
    pub(crate) announcers: SmallVec<[(P, u16); 4]>,
    /// Announcers grafted so far.
    pub(crate) grafted: SmallVec<[P; 2]>,
    pub(crate) timer: TimerId,
}

/// One Plumtree node: eager links forming a broadcast tree, lazy links announcing what
/// travels on it, and the repairs that keep the tree whole.
///
/// Generic over the peer id `P` and the [`Validator`] `V`. Neighbours come from any
/// peer-sampling service through [`neighbor_up`](Self::neighbor_up) and
/// [`neighbor_down`](Self::neighbor_down) (the `hyparview` feature's `Gossip` does it for
/// HyParView). See the crate documentation for the run loop and the error policy.
pub struct Plumtree<P, V = AcceptAll> {
    pub(crate) me: P,
    pub(crate) config: Config,
    pub(crate) validator: V,
    pub(crate) clock: MonotonicNow,
    /// This incarnation's salt for message ids.
    pub(crate) salt: u64,
    pub(crate) next_seq: u64,
    /// Eager and lazy peers, at most `config.max_neighbors`, in the order they came up.
    pub(crate) neighbors: IndexMap<P, Neighbor>,
    /// Ids seen, with when; `received_order` keeps them oldest first for the TTL and the
    /// size bound.
    pub(crate) received: hashbrown::HashSet<MessageId>,
    pub(crate) received_order: VecDeque<(Instant, MessageId)>,
    /// Payloads kept for GRAFTs; `cache_order` oldest first.
    pub(crate) cache: hashbrown::HashMap<MessageId, Cached<P>>,
    pub(crate) cache_order: VecDeque<(Instant, MessageId)>,
    pub(crate) cache_bytes: usize,
    /// Messages announced but not received, at most `config.max_missing`.
    pub(crate) missing: IndexMap<MessageId, Missing<P>>,
    pub(crate) missing_timers: Deadlines<MessageId>,
    /// Announcements waiting for the next flush, per peer.
    pub(crate) ihave_queue: BTreeMap<P, Vec<IHave>>,
    pub(crate) timers: TimerTable<Timer>,
    pub(crate) out: VecDeque<Output<P, Message, Event<P>>>,
    pub(crate) stats: Stats,
    /// When a neighbour last came up or went down (the optimisation's window opens).
    pub(crate) last_change: Option<Instant>,
    /// When a neighbour last went down (new links re-flood for the repair window after).
    pub(crate) last_loss: Option<Instant>,
}

impl<P: Debug, V> Debug for Plumtree<P, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plumtree")
            .field("me", &self.me)
            .field("neighbors", &self.neighbors)
            .field("received", &self.received.len())
            .field("cached", &self.cache.len())
            .field("missing", &self.missing.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<P: PeerId> Plumtree<P, AcceptAll> {
    /// A node `me` with no neighbour yet, accepting every message. `rng` draws the salt
    /// that keeps this incarnation's message ids apart from a previous one's.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn new(me: P, config: Config, rng: &mut impl Rng) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            me,
            validator: AcceptAll,
            clock: MonotonicNow::new(),
            salt: rng.next_u64(),
            next_seq: 0,
            neighbors: IndexMap::new(),
            received: hashbrown::HashSet::new(),
            received_order: VecDeque::new(),
            cache: hashbrown::HashMap::new(),
            cache_order: VecDeque::new(),
            cache_bytes: 0,
            missing: IndexMap::new(),
            missing_timers: Deadlines::new(),
            ihave_queue: BTreeMap::new(),
            timers: TimerTable::new(),
            out: VecDeque::new(),
            stats: Stats::default(),
            last_change: None,
            last_loss: None,
            config,
        })
    }
}

impl<P: PeerId, V: Validator<P>> Plumtree<P, V> {
    /// The same node with `validator` deciding which messages are delivered and forwarded.
    pub fn with_validator<W: Validator<P>>(self, validator: W) -> Plumtree<P, W> {
        Plumtree {
            me: self.me,
            config: self.config,
            validator,
            clock: self.clock,
            salt: self.salt,
            next_seq: self.next_seq,
            neighbors: self.neighbors,
            received: self.received,
            received_order: self.received_order,
            cache: self.cache,
            cache_order: self.cache_order,
            cache_bytes: self.cache_bytes,
            missing: self.missing,
            missing_timers: self.missing_timers,
            ihave_queue: self.ihave_queue,
            timers: self.timers,
            out: self.out,
            stats: self.stats,
            last_change: self.last_change,
            last_loss: self.last_loss,
        }
    }

    // ---- commands -----------------------------------------------------------------------

    /// Broadcasts `payload` to the whole overlay; returns its id. The origin does not
    /// deliver its own message to itself.
    ///
    /// # Errors
    /// [`Error::PayloadTooLarge`]; nothing changes then.
    pub fn broadcast(&mut self, now: Instant, payload: Bytes) -> Result<MessageId, Error> {
        self.broadcast_scoped(now, payload, Scope::Swarm)
    }

    /// Broadcasts `payload` with `scope`: [`Scope::Neighbors`] reaches our current
    /// neighbours only (they deliver it and do not forward it).
    ///
    /// # Errors
    /// [`Error::PayloadTooLarge`]; nothing changes then.
    pub fn broadcast_scoped(
        &mut self,
        now: Instant,
        payload: Bytes,
        scope: Scope,
    ) -> Result<MessageId, Error> {
        let now = self.clock.advance(now);
        let max = message::max_payload(self.config.max_message_size);
        if payload.len() > max {
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max,
            });
        }
        self.evict(now);
        let id = MessageId::new(&self.me, self.salt, self.next_seq, &payload);
        self.next_seq += 1;
        self.stats.broadcasts += 1;
        self.remember(now, id);
        match scope {
            Scope::Swarm => {
                self.eager_push(now, id, 1, &payload, None);
                self.lazy_push(now, id, 1, None);
                self.cache_insert(now, id, payload, 0, None, SmallVec::new());
            }
            Scope::Neighbors => {
                let targets: Vec<P> = self.neighbors.keys().cloned().collect();
                for to in targets {
                    self.send(
                        to,
                        Message::Direct(Direct {
                            id,
                            payload: payload.clone(),
                        }),
                    );
                }
            }
        }
        Ok(id)
    }

    /// A neighbour came up (from the peer-sampling service): it becomes an eager peer, and
    /// every payload still cached is announced to it, so a broadcast in flight while the
    /// overlay repaired still reaches it and its side of the overlay.
    pub fn neighbor_up(&mut self, now: Instant, peer: P) {
        let now = self.clock.advance(now);
        if peer == self.me || self.neighbors.contains_key(&peer) {
            return;
        }
        if self.neighbors.len() >= self.config.max_neighbors {
            self.stats.neighbors_refused += 1;
            return;
        }
        self.evict(now);
        let mut announce: Vec<IHave> = self
            .cache_order
            .iter()
            .filter_map(|(_, id)| {
                self.cache.get(id).map(|c| IHave {
                    id: *id,
                    round: c.round.saturating_add(1),
                })
            })
            .collect();
        if announce.len() > self.config.max_ihave_queue {
            // Keep the newest: the oldest are the likeliest to have reached everyone.
            let drop = announce.len() - self.config.max_ihave_queue;
            announce.drain(..drop);
            self.stats.ihave_queue_full += drop as u64;
        }
        if !announce.is_empty() {
            self.ihave_queue.insert(peer.clone(), announce);
            if !self.timers.is_armed(Timer::Flush) {
                self.timers
                    .set(Timer::Flush, now + self.config.ihave_interval);
            }
        }
        self.last_change = Some(now);
        // Within the repair window after a loss, a new link re-floods too: the overlay is
        // still being rewired, and the tree is rebuilt from the links it ends up with.
        if self
            .last_loss
            .is_some_and(|at| now.saturating_duration_since(at) < self.config.repair_window)
        {
            self.reflood();
        }
        self.neighbors.insert(
            peer,
            Neighbor {
                eager: true,
                graft_credit: self.config.initial_graft_credit,
                parent_at: None,
                pushed: [None; 2],
                deferred: (0, None),
            },
        );
    }

    /// A neighbour went down: it leaves both peer sets, its queued announcements are
    /// dropped, and it is no longer an announcer of any missing message. With
    /// [`Config::eager_on_loss`], every lazy neighbour becomes eager and is sent a GRAFT
    /// (without id) so that it pushes to us too: the next payloads flood the region
    /// around the loss, and their duplicates prune it into a shallow tree. The same
    /// happens when a neighbour comes up within [`Config::repair_window`] of a loss.
    pub fn neighbor_down(&mut self, now: Instant, peer: &P) {
        let now = self.clock.advance(now);
        if self.neighbors.shift_remove(peer).is_none() {
            return;
        }
        self.last_change = Some(now);
        self.last_loss = Some(now);
        self.ihave_queue.remove(peer);
        for m in self.missing.values_mut() {
            m.announcers.retain(|(p, _)| p != peer);
        }
        self.reflood();
    }

    /// With [`Config::eager_on_loss`], makes every lazy neighbour eager and sends it a
    /// GRAFT without id, so that it pushes to us too.
    fn reflood(&mut self) {
        if !self.config.eager_on_loss || !self.config.prune {
            return;
        }
        let lazy: SmallVec<[P; 8]> = self.lazy_peers().cloned().collect();
        for p in lazy {
            self.set_eager(&p, true);
            self.stats.loss_grafts += 1;
            self.send(p, Message::Graft(message::Graft { id: None, round: 0 }));
        }
    }

    // ---- queries ------------------------------------------------------------------------

    /// This node's id.
    pub fn me(&self) -> &P {
        &self.me
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Eager peers (payloads are pushed to them), in the order they came up.
    pub fn eager_peers(&self) -> impl Iterator<Item = &P> {
        self.neighbors
            .iter()
            .filter(|(_, n)| n.eager)
            .map(|(p, _)| p)
    }

    /// Lazy peers (announcements only), in the order they came up.
    pub fn lazy_peers(&self) -> impl Iterator<Item = &P> {
        self.neighbors
            .iter()
            .filter(|(_, n)| !n.eager)
            .map(|(p, _)| p)
    }

    /// Whether `id` was received (or sent) here and is still remembered.
    pub fn has_received(&self, id: &MessageId) -> bool {
        self.received.contains(id)
    }

    /// Messages announced to us whose payload has not arrived.
    pub fn missing(&self) -> usize {
        self.missing.len()
    }

    /// Payloads cached for GRAFTs.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    // ---- shared steps -------------------------------------------------------------------

    pub(crate) fn send(&mut self, to: P, msg: Message) {
        if matches!(msg, Message::Gossip(_)) {
            self.stats.payloads_sent += 1;
        }
        self.out.push_back(Output::Send { to, msg });
    }

    pub(crate) fn emit(&mut self, e: Event<P>) {
        self.out.push_back(Output::Event(e));
    }

    /// Sends the payload to every eager peer but `except`.
    pub(crate) fn eager_push(
        &mut self,
        now: Instant,
        id: MessageId,
        round: u16,
        payload: &Bytes,
        except: Option<&P>,
    ) {
        self.eager_push_filtered(now, id, round, payload, |p| Some(p) == except);
    }

    /// Sends the payload to every eager peer for which `skip` is false, and remembers it
    /// did (see [`Config::prune_grace`]).
    pub(crate) fn eager_push_filtered(
        &mut self,
        now: Instant,
        id: MessageId,
        round: u16,
        payload: &Bytes,
        skip: impl Fn(&P) -> bool,
    ) {
        let mut targets: SmallVec<[P; 8]> = SmallVec::new();
        for (p, n) in &mut self.neighbors {
            if (n.eager || !self.config.prune) && !skip(p) {
                n.pushed = [Some((now, id)), n.pushed[0]];
                targets.push(p.clone());
            }
        }
        for to in targets {
            self.send(
                to,
                Message::Gossip(Payload {
                    id,
                    round,
                    payload: payload.clone(),
                }),
            );
        }
    }

    /// Queues an announcement for every lazy peer but `except`.
    pub(crate) fn lazy_push(
        &mut self,
        now: Instant,
        id: MessageId,
        round: u16,
        except: Option<&P>,
    ) {
        if !self.config.prune {
            return;
        }
        let targets: SmallVec<[P; 8]> = self
            .neighbors
            .iter()
            .filter(|(p, n)| !n.eager && Some(*p) != except)
            .map(|(p, _)| p.clone())
            .collect();
        for to in &targets {
            self.queue_ihave(now, to, IHave { id, round });
        }
    }

    pub(crate) fn queue_ihave(&mut self, now: Instant, to: &P, e: IHave) {
        let q = self.ihave_queue.entry(to.clone()).or_default();
        if q.len() >= self.config.max_ihave_queue {
            self.stats.ihave_queue_full += 1;
            return;
        }
        q.push(e);
        if !self.timers.is_armed(Timer::Flush) {
            self.timers
                .set(Timer::Flush, now + self.config.ihave_interval);
        }
    }

    /// Sends every queued announcement, packed into IHAVE messages of at most
    /// `max_message_size` bytes each, envelope and a composite's tag included.
    pub(crate) fn flush_ihaves(&mut self) {
        let queue = std::mem::take(&mut self.ihave_queue);
        let max = self.config.max_message_size;
        for (to, entries) in queue {
            let Some(n) = self.neighbors.get_mut(&to) else {
                continue;
            };
            let credit = u32::try_from(entries.len()).unwrap_or(u32::MAX);
            n.graft_credit = n.graft_credit.saturating_add(credit).min(
                self.config
                    .max_graft_credit
                    .max(self.config.initial_graft_credit),
            );
            let mut batch: Vec<IHave> = Vec::new();
            let mut batch_len = 0;
            for e in entries {
                let len = message::ihave_entry_len(&e);
                if !batch.is_empty()
                    && message::ihave_len(batch.len() + 1, batch_len + len, 2) > max
                {
                    self.send_ihave(to.clone(), std::mem::take(&mut batch));
                    batch_len = 0;
                }
                batch_len += len;
                batch.push(e);
            }
            if !batch.is_empty() {
                self.send_ihave(to, batch);
            }
        }
    }

    fn send_ihave(&mut self, to: P, batch: Vec<IHave>) {
        self.stats.ihaves_sent += 1;
        self.stats.ihave_entries_sent += batch.len() as u64;
        self.send(to, Message::IHave(batch));
    }

    /// Remembers `id` as received, forgetting the oldest id past the size bound.
    pub(crate) fn remember(&mut self, now: Instant, id: MessageId) {
        if !self.received.insert(id) {
            return;
        }
        self.received_order.push_back((now, id));
        while self.received_order.len() > self.config.max_received {
            if let Some((_, old)) = self.received_order.pop_front() {
                self.received.remove(&old);
                self.stats.received_evictions += 1;
            }
        }
    }

    /// Caches a payload, evicting the oldest past the count and byte bounds.
    pub(crate) fn cache_insert(
        &mut self,
        now: Instant,
        id: MessageId,
        payload: Bytes,
        round: u16,
        from: Option<P>,
        grafted: SmallVec<[P; 2]>,
    ) {
        if self.config.max_cached_payloads == 0 || payload.len() > self.config.max_cached_bytes {
            return;
        }
        self.cache_bytes += payload.len();
        let entry = Cached {
            payload,
            round,
            from,
            grafted,
        };
        if let Some(old) = self.cache.insert(id, entry) {
            // Ids are cached once each (received once); a replaced entry only corrects
            // the byte count.
            self.cache_bytes -= old.payload.len();
        } else {
            self.cache_order.push_back((now, id));
        }
        while self.cache.len() > self.config.max_cached_payloads
            || self.cache_bytes > self.config.max_cached_bytes
        {
            let Some((_, old)) = self.cache_order.pop_front() else {
                break;
            };
            if let Some(c) = self.cache.remove(&old) {
                self.cache_bytes -= c.payload.len();
                self.stats.cache_evictions += 1;
            }
        }
    }

    /// Drops cached payloads and remembered ids past their TTL.
    pub(crate) fn evict(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.cache_order.front() {
            if at + self.config.payload_ttl > now {
                break;
            }
            self.cache_order.pop_front();
            if let Some(c) = self.cache.remove(&id) {
                self.cache_bytes -= c.payload.len();
            }
        }
        while let Some(&(at, id)) = self.received_order.front() {
            if at + self.config.received_ttl > now {
                break;
            }
            self.received_order.pop_front();
            self.received.remove(&id);
        }
    }

    /// Delivers a payload to the application.
    pub(crate) fn deliver(
        &mut self,
        payload: Bytes,
        id: MessageId,
        from: P,
        round: u16,
        scope: Scope,
    ) {
        self.stats.delivered += 1;
        self.emit(Event::Received(Received {
            payload,
            id,
            delivered_from: from,
            round,
            scope,
        }));
    }
}

impl<P: PeerId, V: Validator<P>> Machine for Plumtree<P, V> {
    type Peer = P;
    type Message = Message;
    type Event = Event<P>;

    fn handle_message(&mut self, now: Instant, from: P, msg: Message) {
        let now = self.clock.advance(now);
        self.stats.messages += 1;
        if from == self.me {
            self.stats.hostile += 1;
            return;
        }
        self.evict(now);
        self.on_message(now, from, msg);
    }

    fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock.advance(now);
        self.evict(now);
        while let Some(Timer::Flush) = self.timers.pop_expired(now) {
            self.flush_ihaves();
        }
        while let Some((_, id)) = self.missing_timers.pop_expired(now) {
            self.on_missing_timeout(now, id);
        }
    }

    fn handle_link_down(&mut self, now: Instant, peer: P) {
        self.neighbor_down(now, &peer);
    }

    fn poll_output(&mut self) -> Option<Output<P, Message, Event<P>>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match (
            self.timers.next_deadline(),
            self.missing_timers.next_deadline(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
