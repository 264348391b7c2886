//! [`HyParView`]: the state of one node, its commands and its [`Machine`] implementation.
//! The message handlers are in `handlers.rs`, the repair paths (refill, rejoin, reconnect,
//! timeouts) in `repair.rs`.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_core::{Deadlines, Machine, MonotonicNow, Output, TimerId, TimerTable};
use indexmap::IndexMap;
use rand::{Rng, RngExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use smallvec::SmallVec;

use crate::config::Config;
use crate::error::Error;
use crate::event::{DownReason, Event, Stats};
use crate::message::{Message, PeerInfo, Priority};
use crate::view::View;

/// What a peer id must be: an identity that can be ordered, hashed, printed and sent.
pub trait PeerId: Clone + Ord + Hash + Debug + Serialize + DeserializeOwned {}

impl<T: Clone + Ord + Hash + Debug + Serialize + DeserializeOwned> PeerId for T {}

/// The protocol-wide timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The periodic shuffle (and the retry of passive peers).
    Shuffle,
    /// The next rejoin attempt of a node whose views ran dry.
    Rejoin,
}

/// What an outstanding request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A `Join` to a contact.
    Join,
    /// A `Neighbor` request refilling the active view (or ending a forwarded join).
    Neighbor(Priority),
    /// A high-priority `Neighbor` to a neighbour lost to a broken link.
    Reconnect,
}

/// An outstanding `Join` or `Neighbor` request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    pub(crate) kind: Kind,
    pub(crate) timer: TimerId,
}

/// A neighbour lost to a broken link, to be asked again.
#[derive(Debug, Clone)]
pub(crate) struct Lost {
    pub(crate) attempts: u8,
    pub(crate) next: Instant,
}

/// One HyParView node: a symmetric active view of a few neighbours with open links, a larger
/// passive view of backups, and the random walks that keep both fresh.
///
/// Generic over the peer id `P` and the RNG `R`. See the crate documentation for the run
/// loop and the error policy.
#[derive(Debug)]
pub struct HyParView<P, R> {
    pub(crate) me: P,
    pub(crate) data: Bytes,
    pub(crate) config: Config,
    pub(crate) rng: R,
    pub(crate) clock: MonotonicNow,
    pub(crate) active: View<P>,
    pub(crate) passive: View<P>,
    /// Outstanding requests, at most `config.max_pending`.
    pub(crate) pending: IndexMap<P, Pending>,
    /// Request timeouts; the value names the peer.
    pub(crate) deadlines: Deadlines<P>,
    pub(crate) timers: TimerTable<Timer>,
    /// Passive peers asked (and refused or failed) since the last shuffle: not asked again
    /// this round. At most the passive capacity plus the pending bound.
    pub(crate) tried: hashbrown::HashSet<P>,
    /// Entries our last shuffle sent, evicted first when the reply is integrated.
    pub(crate) last_shuffle: SmallVec<[P; 8]>,
    /// Whether a shuffle of ours awaits its reply.
    pub(crate) shuffle_outstanding: bool,
    /// Contacts for rejoining, at most `config.max_contacts`.
    pub(crate) contacts: Vec<P>,
    pub(crate) next_contact: usize,
    pub(crate) rejoin_wait: Duration,
    /// Neighbours lost to broken links, at most `config.reconnect_capacity`.
    pub(crate) lost: IndexMap<P, Lost>,
    pub(crate) out: VecDeque<Output<P, Message<P>, Event<P>>>,
    pub(crate) stats: Stats,
    pub(crate) left: bool,
}

impl<P: PeerId, R: Rng> HyParView<P, R> {
    /// A node `me` with opaque `data` (sent with our id: a dialing address, say).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] or [`Error::DataTooLarge`].
    pub fn new(me: P, data: Bytes, config: Config, rng: R) -> Result<Self, Error> {
        config.validate()?;
        if data.len() > config.max_peer_data {
            return Err(Error::DataTooLarge {
                len: data.len(),
                max: config.max_peer_data,
            });
        }
        Ok(Self::fresh(me, data, config, rng))
    }

    /// A node with empty views; `config` and `data` already checked.
    fn fresh(me: P, data: Bytes, config: Config, rng: R) -> Self {
        Self {
            me,
            data,
            active: View::new(config.active_capacity),
            passive: View::new(config.passive_capacity),
            pending: IndexMap::new(),
            deadlines: Deadlines::new(),
            timers: TimerTable::new(),
            tried: hashbrown::HashSet::new(),
            last_shuffle: SmallVec::new(),
            shuffle_outstanding: false,
            contacts: Vec::new(),
            next_contact: 0,
            rejoin_wait: config.rejoin_backoff,
            lost: IndexMap::new(),
            out: VecDeque::new(),
            stats: Stats::default(),
            left: false,
            clock: MonotonicNow::new(),
            rng,
            config,
        }
    }

    /// What a process restarting after a crash builds from what it kept on disk (its id,
    /// data, config and contacts): empty views, and a `Join` to a contact at its first
    /// wake-up, which [`poll_timeout`](Machine::poll_timeout) makes due at once; later
    /// tries back off as any rejoin does.
    #[must_use]
    pub fn restarted(&self, rng: R) -> Self {
        let mut n = Self::fresh(self.me.clone(), self.data.clone(), self.config.clone(), rng);
        n.contacts = self.contacts.clone();
        n.clock = self.clock;
        if let (Some(at), false) = (self.clock.last(), n.contacts.is_empty()) {
            n.timers.set(Timer::Rejoin, at);
        }
        n
    }

    // ---- commands -----------------------------------------------------------------------

    /// Joins the overlay through `contact`: sends it a `Join` and remembers it for later
    /// rejoins. The outcome shows as [`Event::NeighborUp`] (the contact took us) or
    /// [`Event::JoinFailed`]; [`pending_joins`](Self::pending_joins) lists joins in flight.
    ///
    /// # Errors
    /// [`Error::SelfContact`], or [`Error::TooManyPending`]; nothing changes then.
    pub fn join(&mut self, now: Instant, contact: P) -> Result<(), Error> {
        let now = self.clock.advance(now);
        if contact == self.me {
            return Err(Error::SelfContact);
        }
        if !self.pending.contains_key(&contact) && self.pending.len() >= self.config.max_pending {
            return Err(Error::TooManyPending);
        }
        self.left = false;
        self.add_contact(contact.clone());
        self.start(now);
        self.send_request(now, contact, Kind::Join);
        Ok(())
    }

    /// Remembers `contact` for rejoining without sending anything (a bootstrap node, say).
    /// The oldest contact is forgotten past [`Config::max_contacts`]; ourselves are ignored.
    pub fn add_contact(&mut self, contact: P) {
        if contact == self.me || self.contacts.contains(&contact) || self.config.max_contacts == 0 {
            return;
        }
        if self.contacts.len() >= self.config.max_contacts {
            self.contacts.remove(0);
        }
        self.contacts.push(contact);
    }

    /// Leaves the overlay: tells every neighbour (`Disconnect { alive: false }`), closes the
    /// links and forgets both views. The node stays inert until the next [`join`](Self::join).
    pub fn leave(&mut self, now: Instant) {
        self.clock.advance(now);
        let peers: Vec<P> = self.active.keys().cloned().collect();
        for p in peers {
            self.active.remove(&p);
            self.send(p.clone(), Message::Disconnect { alive: false });
            self.out.push_back(Output::Disconnect(p.clone()));
            self.emit(Event::NeighborDown(p, DownReason::ShuttingDown));
        }
        self.passive.clear();
        self.pending.clear();
        self.deadlines.clear();
        self.timers = TimerTable::new();
        self.lost.clear();
        self.tried.clear();
        self.left = true;
    }

    /// Replaces the opaque data sent with our id from now on.
    ///
    /// # Errors
    /// [`Error::DataTooLarge`]; the old data stays.
    pub fn set_data(&mut self, data: Bytes) -> Result<(), Error> {
        if data.len() > self.config.max_peer_data {
            return Err(Error::DataTooLarge {
                len: data.len(),
                max: self.config.max_peer_data,
            });
        }
        self.data = data;
        Ok(())
    }

    // ---- reading ------------------------------------------------------------------------

    /// Our id.
    pub fn me(&self) -> &P {
        &self.me
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The active view: our neighbours, in a stable order.
    pub fn active_view(&self) -> impl ExactSizeIterator<Item = &P> {
        self.active.keys()
    }

    /// The passive view: backups, in a stable order.
    pub fn passive_view(&self) -> impl ExactSizeIterator<Item = &P> {
        self.passive.keys()
    }

    /// Whether `peer` is a neighbour.
    pub fn is_neighbor(&self, peer: &P) -> bool {
        self.active.contains(peer)
    }

    /// The opaque data we hold for `peer`, if it is in a view.
    pub fn peer_data(&self, peer: &P) -> Option<&Bytes> {
        self.active.get(peer).or_else(|| self.passive.get(peer))
    }

    /// Peers we sent a `Join` or `Neighbor` request to that has not been answered yet.
    pub fn pending_requests(&self) -> impl Iterator<Item = &P> {
        self.pending.keys()
    }

    /// Contacts with a `Join` in flight.
    pub fn pending_joins(&self) -> impl Iterator<Item = &P> {
        self.pending
            .iter()
            .filter(|(_, p)| p.kind == Kind::Join)
            .map(|(k, _)| k)
    }

    /// Neighbours lost to a broken link that we will ask again.
    pub fn lost_neighbors(&self) -> impl Iterator<Item = &P> {
        self.lost.keys()
    }

    /// The contacts remembered for rejoining.
    pub fn contacts(&self) -> &[P] {
        &self.contacts
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    // ---- shared helpers -----------------------------------------------------------------

    /// Arms the shuffle on the first input, at a random point of the first round so that
    /// nodes do not shuffle in lockstep.
    pub(crate) fn start(&mut self, now: Instant) {
        if !self.timers.is_armed(Timer::Shuffle) {
            let nanos = u64::try_from(self.config.shuffle_interval.as_nanos()).unwrap_or(u64::MAX);
            let offset = Duration::from_nanos(self.rng.random_range(1..=nanos.max(1)));
            self.timers.set(Timer::Shuffle, now + offset);
        }
    }

    pub(crate) fn send(&mut self, to: P, msg: Message<P>) {
        self.out.push_back(Output::Send { to, msg });
    }

    pub(crate) fn emit(&mut self, e: Event<P>) {
        self.out.push_back(Output::Event(e));
    }

    pub(crate) fn me_info(&self) -> PeerInfo<P> {
        PeerInfo {
            id: self.me.clone(),
            data: self.data.clone(),
        }
    }

    /// Whether a peer's data is within bounds (counted as hostile if not).
    pub(crate) fn data_ok(&mut self, data: &Bytes) -> bool {
        if data.len() > self.config.max_peer_data {
            self.stats.hostile += 1;
            return false;
        }
        true
    }

    /// Takes `peer` into the active view, dropping a random neighbour if it is full.
    /// Returns false if it was already there (its data is refreshed) or is ourselves.
    pub(crate) fn add_active(&mut self, peer: P, data: Bytes) -> bool {
        if peer == self.me {
            return false;
        }
        if self.active.contains(&peer) {
            if !data.is_empty() {
                self.active.insert(peer, data);
            }
            return false;
        }
        if self.active.is_full() {
            self.evict_random_neighbor(&peer);
        }
        self.passive.remove(&peer);
        self.lost.swap_remove(&peer);
        self.tried.remove(&peer);
        self.active.insert(peer.clone(), data);
        self.emit(Event::NeighborUp(peer));
        if self.active.is_full() {
            self.rejoin_wait = self.config.rejoin_backoff;
        }
        true
    }

    /// Drops a random neighbour (other than `keep`) to make room: it hears `Disconnect`,
    /// its link is closed, and it becomes a passive peer.
    fn evict_random_neighbor(&mut self, keep: &P) {
        let Some(victim) = self.active.pick(&mut self.rng, |p| p == keep).cloned() else {
            return;
        };
        let data = self.active.remove(&victim).unwrap_or_default();
        // An answer still due from it would cross our `Disconnect`: it must not re-add it.
        self.take_pending(&victim);
        self.stats.evictions += 1;
        self.send(victim.clone(), Message::Disconnect { alive: true });
        self.out.push_back(Output::Disconnect(victim.clone()));
        self.emit(Event::NeighborDown(victim.clone(), DownReason::Replaced));
        self.add_passive(victim, data, &[]);
    }

    /// Removes `peer` from the active view with `reason`; returns its data.
    pub(crate) fn remove_active(&mut self, peer: &P, reason: DownReason) -> Option<Bytes> {
        let data = self.active.remove(peer)?;
        self.emit(Event::NeighborDown(peer.clone(), reason));
        Some(data)
    }

    /// Puts `peer` in the passive view unless it is us, a neighbour, or already there (then
    /// its data is refreshed). A full view evicts first an entry of `prefer` (what we just
    /// sent in a shuffle), then a random one.
    pub(crate) fn add_passive(&mut self, peer: P, data: Bytes, prefer: &[P]) {
        if peer == self.me || self.active.contains(&peer) || self.config.passive_capacity == 0 {
            return;
        }
        if self.passive.contains(&peer) {
            if !data.is_empty() {
                self.passive.insert(peer, data);
            }
            return;
        }
        if self.passive.is_full() {
            let preferred = prefer.iter().find(|p| self.passive.contains(p)).cloned();
            match preferred {
                Some(p) => {
                    self.passive.remove(&p);
                }
                None => {
                    self.passive.remove_random(&mut self.rng);
                }
            }
            self.stats.passive_evictions += 1;
        }
        self.passive.insert(peer, data);
    }

    /// Sends a `Join` or `Neighbor` request to `peer` and arms its timeout, unless one is
    /// already outstanding or the pending bound is reached (counted). Returns whether sent.
    pub(crate) fn send_request(&mut self, now: Instant, peer: P, kind: Kind) -> bool {
        if peer == self.me || self.pending.contains_key(&peer) {
            return false;
        }
        if self.pending.len() >= self.config.max_pending {
            self.stats.pending_full += 1;
            return false;
        }
        let timer = self
            .deadlines
            .insert(now + self.config.neighbor_timeout, peer.clone());
        self.pending.insert(peer.clone(), Pending { kind, timer });
        let data = self.data.clone();
        let msg = match kind {
            Kind::Join => Message::Join { data },
            Kind::Reconnect => Message::Neighbor {
                priority: Priority::High,
                data,
            },
            Kind::Neighbor(priority) => Message::Neighbor { priority, data },
        };
        self.send(peer, msg);
        true
    }

    /// Clears the outstanding request to `peer`, if any.
    pub(crate) fn take_pending(&mut self, peer: &P) -> Option<Pending> {
        let p = self.pending.swap_remove(peer)?;
        self.deadlines.cancel(p.timer);
        Some(p)
    }
}

impl<P: PeerId, R: Rng> Machine for HyParView<P, R> {
    type Peer = P;
    type Message = Message<P>;
    type Event = Event<P>;

    fn handle_message(&mut self, now: Instant, from: P, msg: Message<P>) {
        let now = self.clock.advance(now);
        if self.left {
            return;
        }
        self.stats.messages += 1;
        if from == self.me {
            self.stats.hostile += 1;
            return;
        }
        self.start(now);
        self.on_message(now, from, msg);
        self.after_input(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock.advance(now);
        if self.left {
            return;
        }
        self.on_timeout(now);
        self.after_input(now);
    }

    fn handle_link_down(&mut self, now: Instant, peer: P) {
        let now = self.clock.advance(now);
        if self.left {
            return;
        }
        self.on_link_down(now, peer);
        self.after_input(now);
    }

    fn poll_output(&mut self) -> Option<Output<P, Message<P>, Event<P>>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let lost = self.lost.values().map(|l| l.next).min();
        [
            self.timers.next_deadline(),
            self.deadlines.next_deadline(),
            lost,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
