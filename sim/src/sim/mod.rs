//! [`Sim`]: the discrete-event simulator over any [`Machine`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use epidemic_core::{Machine, Output};
use hashbrown::{HashMap, HashSet};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::{LinkConfig, SimConfig, Transport};
use crate::metrics::{DropReason, EventRecord, Metrics, NodeMetrics, TraceHash};
use crate::network::{Fate, Network, NodeId, nanos};
use crate::queue::EventQueue;
use crate::wire::Wire;

mod access;
mod error;
mod recorder;

pub use error::SimError;
use recorder::{Recorder, Step};

/// Builds a restarted node's machine from the crashed one: move whatever the scenario
/// declares durable out of the old machine (`&mut`), and return a fresh machine.
pub type RestartFn<M> = Box<dyn FnMut(&<M as Machine>::Peer, &mut M, &mut ChaCha8Rng) -> M>;

/// Decides, per message, whether the network may carry it: `(virtual now, from, to,
/// message) -> deliver?`. A test tool for aiming a fault at one message kind.
pub type FilterFn<M> = Box<
    dyn FnMut(
        Duration,
        &<M as Machine>::Peer,
        &<M as Machine>::Peer,
        &<M as Machine>::Message,
    ) -> bool,
>;

/// Sees every application event as it is emitted: `(virtual now, node, event)`.
pub type EventHookFn<M> = Box<dyn FnMut(Duration, &<M as Machine>::Peer, &<M as Machine>::Event)>;

/// A whole-network check: `Err` explains what is wrong.
pub type InvariantFn<M> = Box<dyn FnMut(&Sim<M>) -> Result<(), String>>;

type Command<M> = Box<dyn FnOnce(&mut M, Instant)>;

struct Node<M: Machine> {
    machine: M,
    up: bool,
    /// The virtual time of this node's live timer event, if one is queued.
    wake: Option<u64>,
    metrics: NodeMetrics,
}

enum Action<M: Machine> {
    Deliver(Packet<M::Message>),
    /// Live only if the node's `wake` still equals the event's time.
    Timer(NodeId),
    LinkDown {
        node: NodeId,
        peer: NodeId,
    },
    Crash(NodeId),
    Restart(NodeId),
    /// A late joiner comes up with the machine it was added with.
    Start(NodeId),
    Partition(Vec<Vec<NodeId>>),
    Heal,
    SetLink {
        from: NodeId,
        to: NodeId,
        link: Option<LinkConfig>,
    },
    Command(NodeId, Command<M>),
    Slow(NodeId, u64),
}

/// A message on the wire.
struct Packet<Msg> {
    from: NodeId,
    to: NodeId,
    /// Index into [`Metrics::kinds`].
    kind: u16,
    bytes: u32,
    msg: Msg,
}

struct Invariant<M: Machine> {
    name: String,
    every: Option<u64>,
    /// When the next periodic check is due; `None` for end-of-run-only invariants, and at
    /// the end of virtual time.
    next: Option<u64>,
    check: InvariantFn<M>,
}

/// A deterministic discrete-event network of [`Machine`]s.
///
/// Virtual time starts at zero; one queue orders every delivery, timer, fault and command
/// by `(time, sequence)`; nodes are kept in peer order; every random choice comes from one
/// ChaCha stream seeded by [`SimConfig::seed`] (a second stream of the same seed forks the
/// machines' own RNGs). The same seed and the same scenario give the same
/// [`trace_hash`](Sim::trace_hash).
///
/// Each node is drained per the drain contract after every input, and woken at its
/// `poll_timeout`. A machine whose deadline is still in the past right after
/// `handle_timeout` is woken again one virtual nanosecond later, so time always advances.
pub struct Sim<M: Machine> {
    config: SimConfig,
    now: u64,
    epoch: Instant,
    queue: EventQueue<Action<M>>,
    /// Timer events in the queue that no longer match their node's `wake`.
    stale: usize,
    nodes: Vec<Node<M>>,
    /// Each node's peer id, apart from the nodes so that naming a sender stays in cache.
    peers: Vec<M::Peer>,
    index: BTreeMap<M::Peer, NodeId>,
    lookup: HashMap<M::Peer, NodeId>,
    net: Network,
    /// Pending dial failures on connection transports: one link-down per pair at a time.
    failing: HashSet<(NodeId, NodeId)>,
    rng: ChaCha8Rng,
    forks: ChaCha8Rng,
    wire: Wire<M::Message>,
    metrics: Metrics,
    events: Vec<EventRecord<M::Peer, M::Event>>,
    invariants: Vec<Invariant<M>>,
    /// The earliest periodic check due, if any.
    next_check: Option<u64>,
    restart: Option<RestartFn<M>>,
    filter: Option<FilterFn<M>>,
    event_hook: Option<EventHookFn<M>>,
    trace: TraceHash,
    recorder: Recorder,
}

impl<M: Machine> fmt::Debug for Sim<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.config.seed)
            .field("now", &self.now())
            .field("nodes", &self.nodes.len())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

// Tags folded into the trace hash, one per kind of step.
const T_DELIVER: u64 = 1;
const T_TIMER: u64 = 2;
const T_LINK_DOWN: u64 = 3;
const T_CRASH: u64 = 4;
const T_RESTART: u64 = 5;
const T_PARTITION: u64 = 6;
const T_HEAL: u64 = 7;
const T_SET_LINK: u64 = 8;
const T_COMMAND: u64 = 9;
const T_EVENT: u64 = 10;
const T_DROP: u64 = 11;
const T_ADD: u64 = 12;
const T_START: u64 = 13;
const T_SLOW: u64 = 14;

impl<M: Machine> Sim<M>
where
    M::Message: Clone,
{
    /// An empty network.
    #[must_use]
    pub fn new(config: SimConfig, wire: Wire<M::Message>) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut forks = rng.clone();
        rng.set_stream(0);
        forks.set_stream(1);
        Self {
            now: 0,
            epoch: crate::meter::epoch(),
            queue: EventQueue::new(),
            stale: 0,
            nodes: Vec::new(),
            peers: Vec::new(),
            index: BTreeMap::new(),
            lookup: HashMap::new(),
            net: Network::new(config.link.clone()),
            failing: HashSet::new(),
            rng,
            forks,
            wire,
            metrics: Metrics::default(),
            events: Vec::new(),
            invariants: Vec::new(),
            next_check: None,
            restart: None,
            filter: None,
            event_hook: None,
            trace: TraceHash::new(config.seed),
            recorder: Recorder::new(config.flight_recorder),
            config,
        }
    }

    // ---- building the scenario ----------------------------------------------------------

    /// A fresh RNG for a machine, forked deterministically from the seed.
    pub fn fork_rng(&mut self) -> ChaCha8Rng {
        ChaCha8Rng::from_rng(&mut self.forks)
    }

    /// Adds a node at the current virtual time, drains it and arms its timer.
    ///
    /// # Errors
    /// [`SimError::DuplicatePeer`] if `peer` exists (nothing changes).
    pub fn add_node(&mut self, peer: M::Peer, machine: M) -> Result<(), SimError> {
        let id = self.insert_node(peer, machine, true)?;
        self.drain(id, false);
        Ok(())
    }

    /// Adds a node that starts at virtual time `at` (a late joiner). Until then it exists
    /// (commands and faults can name it) but is down: messages to it are dropped as to a
    /// crashed node, and its machine is neither drained nor woken.
    ///
    /// # Errors
    /// [`SimError::DuplicatePeer`] if `peer` exists (nothing changes).
    pub fn add_node_at(&mut self, at: Duration, peer: M::Peer, machine: M) -> Result<(), SimError> {
        let id = self.insert_node(peer, machine, false)?;
        self.push_at(at, Action::Start(id));
        Ok(())
    }

    fn insert_node(&mut self, peer: M::Peer, machine: M, up: bool) -> Result<NodeId, SimError> {
        if self.lookup.contains_key(&peer) {
            return Err(SimError::DuplicatePeer(format!("{peer:?}")));
        }
        // Node ids are dense u32s; four billion nodes do not fit in memory first.
        let id = NodeId::try_from(self.nodes.len()).expect("fewer than 2^32 nodes");
        self.index.insert(peer.clone(), id);
        self.lookup.insert(peer.clone(), id);
        self.peers.push(peer);
        self.nodes.push(Node {
            machine,
            up,
            wake: None,
            metrics: NodeMetrics::default(),
        });
        self.net.add_node();
        self.trace.mix(T_ADD << 32 | u64::from(id));
        Ok(id)
    }

    /// Sets how a crashed node's machine is rebuilt on restart.
    pub fn on_restart(
        &mut self,
        factory: impl FnMut(&M::Peer, &mut M, &mut ChaCha8Rng) -> M + 'static,
    ) {
        self.restart = Some(Box::new(factory));
    }

    /// Installs (or with `None` removes) a filter that sees every message as it is sent
    /// and drops those it returns `false` for, counted as [`DropReason::Filtered`]: drop
    /// every ack, or the third GRAFT, to aim a test at one code path.
    pub fn set_filter(&mut self, filter: Option<FilterFn<M>>) {
        self.filter = filter;
    }

    /// Installs (or with `None` removes) a hook that sees every application event as it is
    /// emitted, whether or not [`SimConfig::record_events`] keeps it: how a 10,000-node
    /// run aggregates millions of membership events without storing them.
    pub fn set_event_hook(&mut self, hook: Option<EventHookFn<M>>) {
        self.event_hook = hook;
    }

    /// Adds a whole-network check, run every `every` of virtual time (if set) and at the end
    /// of every `run_*` call. Where several periods pass with no event in between (the
    /// state cannot change), it runs once for them. A failure stops the run with
    /// [`SimError::Invariant`] and prints the failing seed.
    pub fn add_invariant(
        &mut self,
        name: impl Into<String>,
        every: Option<Duration>,
        check: impl FnMut(&Sim<M>) -> Result<(), String> + 'static,
    ) {
        let every = every.map(|d| nanos(d).max(1));
        let next = every.and_then(|e| self.now.checked_add(e));
        self.next_check = match (self.next_check, next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.invariants.push(Invariant {
            name: name.into(),
            every,
            next,
            check: Box::new(check),
        });
    }

    /// Runs an application command on a node now, then drains it.
    ///
    /// # Errors
    /// [`SimError::UnknownPeer`] or [`SimError::NodeDown`]; the command does not run.
    pub fn command<R>(
        &mut self,
        peer: &M::Peer,
        f: impl FnOnce(&mut M, Instant) -> R,
    ) -> Result<R, SimError> {
        let id = self.id(peer)?;
        if !self.nodes[id as usize].up {
            return Err(SimError::NodeDown(format!("{peer:?}")));
        }
        let now = self.instant();
        let r = f(&mut self.nodes[id as usize].machine, now);
        self.trace.mix(T_COMMAND << 32 | u64::from(id));
        self.drain(id, false);
        Ok(r)
    }

    /// Schedules an application command on a node at virtual time `at` (skipped if the
    /// node is crashed then).
    ///
    /// # Errors
    /// [`SimError::UnknownPeer`].
    pub fn schedule_command(
        &mut self,
        at: Duration,
        peer: &M::Peer,
        f: impl FnOnce(&mut M, Instant) + 'static,
    ) -> Result<(), SimError> {
        let id = self.id(peer)?;
        self.push_at(at, Action::Command(id, Box::new(f)));
        Ok(())
    }

    /// Crashes `peer` at `at`: it loses its timers, receives nothing and sends nothing
    /// until restarted.
    ///
    /// # Errors
    /// [`SimError::UnknownPeer`].
    pub fn schedule_crash(&mut self, at: Duration, peer: &M::Peer) -> Result<(), SimError> {
        let id = self.id(peer)?;
        self.push_at(at, Action::Crash(id));
        Ok(())
    }

    /// Restarts `peer` at `at` with a machine from the [`on_restart`](Sim::on_restart)
    /// factory (no-op if it is up then).
    ///
    /// # Errors
    /// [`SimError::UnknownPeer`], or [`SimError::NoRestartFactory`] if none is set yet.
    pub fn schedule_restart(&mut self, at: Duration, peer: &M::Peer) -> Result<(), SimError> {
        let id = self.id(peer)?;
        if self.restart.is_none() {
            return Err(SimError::NoRestartFactory);
        }
        self.push_at(at, Action::Restart(id));
        Ok(())
    }

    /// At `at`, splits the network: each set becomes one side, and the nodes in no set
    /// form one more side. Messages only flow within a side. Replaces any earlier
    /// partition.
    ///
    /// # Errors
    /// [`SimError::UnknownPeer`] if a set names an unknown peer (nothing is scheduled).
    pub fn schedule_partition(
        &mut self,
        at: Duration,
        sets: &[Vec<M::Peer>],
    ) -> Result<(), SimError> {
        let ids = sets
            .iter()
            .map(|set| {
                set.iter()
                    .map(|p| self.id(p))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.push_at(at, Action::Partition(ids));
        Ok(())
    }

    /// At `at`, removes any partition.
    pub fn schedule_heal(&mut self, at: Duration) {
        self.push_at(at, Action::Heal);
    }

    /// At `at`, gives the directed link `from → to` its own fault model (`None` returns it
    /// to the default).
    ///
    /// # Errors
    /// [`SimError::UnknownPeer`].
    pub fn schedule_link(
        &mut self,
        at: Duration,
        from: &M::Peer,
        to: &M::Peer,
        link: Option<LinkConfig>,
    ) -> Result<(), SimError> {
        let (from, to) = (self.id(from)?, self.id(to)?);
        self.push_at(at, Action::SetLink { from, to, link });
        Ok(())
    }

    /// From `at`, `peer` is a slow node: every message sent to it reaches it `extra` later
    /// than its link would deliver it (a process starved of CPU, a long GC pause, a
    /// saturated receive queue). `Duration::ZERO` makes it normal again.
    ///
    /// # Errors
    /// [`SimError::UnknownPeer`].
    pub fn schedule_slow(
        &mut self,
        at: Duration,
        peer: &M::Peer,
        extra: Duration,
    ) -> Result<(), SimError> {
        let id = self.id(peer)?;
        self.push_at(at, Action::Slow(id, nanos(extra)));
        Ok(())
    }

    /// Changes the fault model of every link without an override, from now on.
    pub fn set_default_link(&mut self, link: LinkConfig) {
        self.net.set_default_link(link.clone());
        self.config.link = link;
    }

    // ---- running ------------------------------------------------------------------------

    /// Processes every event up to and including virtual time `until`, leaves the clock at
    /// `until`, and runs the invariants.
    ///
    /// # Errors
    /// [`SimError::Invariant`] at the first failed check.
    pub fn run_until(&mut self, until: Duration) -> Result<(), SimError> {
        let until = nanos(until);
        while let Some(at) = self.queue.peek_time() {
            if at > until {
                break;
            }
            self.check_due(at)?;
            self.step();
        }
        self.check_due(until)?;
        self.now = self.now.max(until);
        self.check_all()
    }

    /// [`run_until`](Sim::run_until) `now + d`.
    ///
    /// # Errors
    /// [`SimError::Invariant`] at the first failed check.
    pub fn run_for(&mut self, d: Duration) -> Result<(), SimError> {
        self.run_until(self.now().saturating_add(d))
    }

    /// Runs until nothing is left to happen (no message in flight, no timer armed on a live
    /// node, nothing scheduled) or virtual time `limit`, whichever comes first, then runs
    /// the invariants. Returns whether the network went quiet.
    ///
    /// # Errors
    /// [`SimError::Invariant`] at the first failed check.
    pub fn run_until_quiescent(&mut self, limit: Duration) -> Result<bool, SimError> {
        let limit = nanos(limit);
        let quiet = loop {
            if self.is_quiescent() {
                break true;
            }
            match self.queue.peek_time() {
                Some(at) if at <= limit => {
                    self.check_due(at)?;
                    self.step();
                }
                _ => {
                    self.check_due(limit)?;
                    self.now = self.now.max(limit);
                    break false;
                }
            }
        };
        self.check_all()?;
        Ok(quiet)
    }

    /// Runs until `condition` holds, checking it every `every` of virtual time, but no
    /// later than virtual time `limit`. Returns the first checked time at which it held
    /// (the measure of "time until every node knows everyone", to within `every`), or
    /// `None` if it never did. Invariants run as in [`run_until`](Sim::run_until).
    ///
    /// # Errors
    /// [`SimError::Invariant`] at the first failed check.
    pub fn run_until_condition(
        &mut self,
        limit: Duration,
        every: Duration,
        mut condition: impl FnMut(&Sim<M>) -> bool,
    ) -> Result<Option<Duration>, SimError> {
        let every = every.max(Duration::from_nanos(1));
        loop {
            if condition(self) {
                return Ok(Some(self.now()));
            }
            if self.now() >= limit {
                return Ok(None);
            }
            let next = self.now().saturating_add(every).min(limit);
            self.run_until(next)?;
        }
    }

    /// Whether nothing is left to happen.
    #[must_use]
    pub fn is_quiescent(&self) -> bool {
        self.queue.len() == self.stale
    }

    /// Runs every invariant now.
    ///
    /// # Errors
    /// [`SimError::Invariant`] at the first failed check.
    pub fn check_all(&mut self) -> Result<(), SimError> {
        self.check(|_| true)
    }

    #[inline]
    fn check_due(&mut self, upto: u64) -> Result<(), SimError> {
        if self.next_check.is_some_and(|t| t <= upto) {
            self.check_due_slow(upto)
        } else {
            Ok(())
        }
    }

    /// Every check due before the event at `upto`, in time order. Nothing happens between
    /// two events, so an invariant due several times in that gap runs once, at the first of
    /// those times, and its next check moves past `upto`: a quiet stretch of virtual years
    /// costs one check, not millions.
    #[cold]
    fn check_due_slow(&mut self, upto: u64) -> Result<(), SimError> {
        while let Some(at) = self.next_check.filter(|&t| t <= upto) {
            self.now = self.now.max(at);
            self.check(|inv| inv.next.is_some_and(|n| n <= at))?;
            for inv in &mut self.invariants {
                if let (Some(next), Some(every)) = (inv.next, inv.every) {
                    if next <= upto {
                        // The first multiple of the period after `upto`.
                        let periods = (upto - next) / every + 1;
                        inv.next = periods.checked_mul(every).and_then(|d| next.checked_add(d));
                    }
                }
            }
            self.next_check = self.invariants.iter().filter_map(|i| i.next).min();
        }
        Ok(())
    }

    fn check(&mut self, due: impl Fn(&Invariant<M>) -> bool) -> Result<(), SimError> {
        let mut invariants = std::mem::take(&mut self.invariants);
        let mut result = Ok(());
        for inv in &mut invariants {
            if !due(inv) {
                continue;
            }
            if let Some(every) = inv.every {
                inv.next = self.now.checked_add(every);
            }
            if let Err(message) = (inv.check)(self) {
                let err = SimError::Invariant {
                    name: inv.name.clone(),
                    at: self.now(),
                    seed: self.config.seed,
                    message,
                };
                eprintln!("epidemic-sim: {err}");
                for line in self.recent_steps() {
                    eprintln!("  {line}");
                }
                eprintln!("failing seed: {}", self.config.seed);
                result = Err(err);
                break;
            }
        }
        self.invariants = invariants;
        self.next_check = self.invariants.iter().filter_map(|i| i.next).min();
        result
    }

    /// Processes the next event. Returns false if the queue was empty.
    pub fn step(&mut self) -> bool {
        let Some((at, _seq, action)) = self.queue.pop() else {
            return false;
        };
        self.now = self.now.max(at);
        if let Some(step) = Self::step_of(&action) {
            self.recorder.record(at, step);
        }
        match action {
            Action::Deliver(packet) => self.on_deliver(packet),
            Action::Timer(id) => self.on_timer(id, at),
            Action::LinkDown { node, peer } => self.on_link_down(node, peer),
            Action::Crash(id) => self.on_crash(id),
            Action::Restart(id) => self.on_restart_action(id),
            Action::Start(id) => {
                let node = &mut self.nodes[id as usize];
                if !node.up {
                    node.up = true;
                    self.trace.mix(T_START << 32 | u64::from(id));
                    self.drain(id, false);
                }
            }
            Action::Partition(sets) => {
                self.trace.mix(T_PARTITION << 32 | at);
                self.net.partition(&sets);
                if let Transport::Connection { failure_detection } = self.config.transport {
                    let when = self.now.saturating_add(nanos(failure_detection));
                    for (a, b) in self.net.drop_cut_connections() {
                        self.link_down_at(when, a, b);
                        self.link_down_at(when, b, a);
                    }
                }
            }
            Action::Slow(id, extra) => {
                self.trace.mix(T_SLOW << 32 | u64::from(id));
                self.trace.mix(extra);
                self.net.set_slow(id, extra);
            }
            Action::Heal => {
                self.trace.mix(T_HEAL << 32 | at);
                self.net.heal();
            }
            Action::SetLink { from, to, link } => {
                self.trace
                    .mix(T_SET_LINK << 32 | u64::from(from) << 16 | u64::from(to));
                self.net.set_link(from, to, link);
            }
            Action::Command(id, f) => {
                if self.nodes[id as usize].up {
                    self.trace.mix(T_COMMAND << 32 | u64::from(id));
                    let now = self.instant();
                    f(&mut self.nodes[id as usize].machine, now);
                    self.drain(id, false);
                }
            }
        }
        true
    }

    /// What the flight recorder keeps of an action (live timers are recorded when they
    /// fire, so stale ones leave no trace).
    fn step_of(action: &Action<M>) -> Option<Step> {
        Some(match *action {
            Action::Deliver(ref p) => Step::Deliver {
                from: p.from,
                to: p.to,
                kind: p.kind,
            },
            Action::Timer(_) => return None,
            Action::LinkDown { node, peer } => Step::LinkDown { node, peer },
            Action::Crash(n) => Step::Crash(n),
            Action::Restart(n) => Step::Restart(n),
            Action::Start(n) => Step::Start(n),
            Action::Partition(_) => Step::Partition,
            Action::Heal => Step::Heal,
            Action::SetLink { from, to, .. } => Step::SetLink { from, to },
            Action::Command(n, _) => Step::Command(n),
            Action::Slow(n, _) => Step::Slow(n),
        })
    }

    fn on_deliver(&mut self, p: Packet<M::Message>) {
        let node = &mut self.nodes[p.to as usize];
        if !node.up {
            self.dropped(&p, DropReason::Crashed);
            return;
        }
        self.metrics.on_deliver(p.kind, p.bytes);
        node.metrics.received.add(p.bytes);
        self.trace.mix(T_DELIVER << 32 | u64::from(p.kind));
        self.trace.mix(u64::from(p.from) << 32 | u64::from(p.to));
        self.trace.mix(self.now ^ u64::from(p.bytes) << 48);
        let now = self.instant();
        let sender = self.peers[p.from as usize].clone();
        self.nodes[p.to as usize]
            .machine
            .handle_message(now, sender, p.msg);
        self.drain(p.to, false);
    }

    fn on_timer(&mut self, id: NodeId, at: u64) {
        let node = &mut self.nodes[id as usize];
        if !node.up || node.wake != Some(at) {
            self.stale -= 1;
            return;
        }
        node.wake = None;
        self.recorder.record(at, Step::Timer(id));
        self.metrics.timeouts += 1;
        self.trace.mix(T_TIMER << 32 | u64::from(id));
        self.trace.mix(at);
        let now = self.instant();
        self.nodes[id as usize].machine.handle_timeout(now);
        self.drain(id, true);
    }

    fn on_link_down(&mut self, node: NodeId, peer: NodeId) {
        self.failing.remove(&(node, peer));
        if !self.nodes[node as usize].up {
            return;
        }
        self.metrics.link_downs += 1;
        self.trace
            .mix(T_LINK_DOWN << 32 | u64::from(node) << 16 | u64::from(peer));
        let now = self.instant();
        let peer = self.peers[peer as usize].clone();
        self.nodes[node as usize]
            .machine
            .handle_link_down(now, peer);
        self.drain(node, false);
    }

    fn on_crash(&mut self, id: NodeId) {
        let node = &mut self.nodes[id as usize];
        if !node.up {
            return;
        }
        node.up = false;
        if node.wake.take().is_some() {
            self.stale += 1;
        }
        self.trace.mix(T_CRASH << 32 | u64::from(id));
        if let Transport::Connection { failure_detection } = self.config.transport {
            let when = self.now.saturating_add(nanos(failure_detection));
            for peer in self.net.drop_connections(id) {
                self.link_down_at(when, peer, id);
            }
        }
    }

    fn on_restart_action(&mut self, id: NodeId) {
        if self.nodes[id as usize].up {
            return;
        }
        // `schedule_restart` refuses to queue a restart without a factory.
        let factory = self
            .restart
            .as_mut()
            .expect("restart factory set before scheduling");
        let node = &mut self.nodes[id as usize];
        node.machine = factory(&self.peers[id as usize], &mut node.machine, &mut self.forks);
        node.up = true;
        self.trace.mix(T_RESTART << 32 | u64::from(id));
        self.drain(id, false);
    }

    /// Carries out everything node `id` asks for, then re-arms its timer.
    fn drain(&mut self, id: NodeId, after_timeout: bool) {
        while let Some(out) = self.nodes[id as usize].machine.poll_output() {
            match out {
                Output::Send { to, msg } => self.send(id, &to, msg),
                Output::Event(event) => self.emit(id, event),
                Output::Disconnect(peer) => self.close(id, &peer),
            }
        }
        self.rearm(id, after_timeout);
    }

    fn rearm(&mut self, id: NodeId, after_timeout: bool) {
        let floor = if after_timeout {
            self.now.saturating_add(1)
        } else {
            self.now
        };
        let node = &mut self.nodes[id as usize];
        let want = node.machine.poll_timeout().map(|t| {
            let offset = t.saturating_duration_since(self.epoch);
            nanos(offset).max(floor)
        });
        if want == node.wake {
            return;
        }
        if node.wake.is_some() {
            self.stale += 1;
        }
        node.wake = want;
        if let Some(at) = want {
            self.queue.push(at, Action::Timer(id));
        }
    }

    fn send(&mut self, from: NodeId, to: &M::Peer, msg: M::Message) {
        let bytes = u32::try_from((self.wire.size)(&msg)).unwrap_or(u32::MAX);
        let kind = self.metrics.kind_id((self.wire.kind)(&msg));
        self.metrics.on_send(kind, bytes);
        self.nodes[from as usize].metrics.sent.add(bytes);
        let Some(&to) = self.lookup.get(to) else {
            self.metrics.on_drop(kind, DropReason::UnknownPeer);
            return;
        };
        let p = Packet {
            from,
            to,
            kind,
            bytes,
            msg,
        };
        if let Some(filter) = self.filter.as_mut() {
            let (a, b) = (&self.peers[from as usize], &self.peers[to as usize]);
            if !filter(Duration::from_nanos(self.now), a, b, &p.msg) {
                self.dropped(&p, DropReason::Filtered);
                return;
            }
        }
        match self.config.transport {
            Transport::Datagram => self.send_datagram(p),
            Transport::Connection { failure_detection } => self.send_stream(p, failure_detection),
        }
    }

    fn send_datagram(&mut self, p: Packet<M::Message>) {
        match self.net.datagram(&mut self.rng, p.from, p.to) {
            Fate::Drop(reason) => self.dropped(&p, reason),
            Fate::Deliver { delay, duplicate } => {
                if let Some(extra) = duplicate {
                    self.metrics.duplicated += 1;
                    let copy = Packet {
                        msg: p.msg.clone(),
                        ..p
                    };
                    self.push(self.now.saturating_add(extra), Action::Deliver(copy));
                }
                self.push(self.now.saturating_add(delay), Action::Deliver(p));
            }
        }
    }

    fn send_stream(&mut self, p: Packet<M::Message>, failure_detection: Duration) {
        let (from, to) = (p.from, p.to);
        let reason = if !self.nodes[to as usize].up {
            Some(DropReason::Crashed)
        } else if !self.net.path_open(from, to) {
            Some(DropReason::Partition)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.dropped(&p, reason);
            // Both ends of an open connection hear it broke; a dial that never connected
            // is reported once per pair until heard.
            let when = self.now.saturating_add(nanos(failure_detection));
            if self.net.disconnect(from, to) {
                self.link_down_at(when, to, from);
            }
            if self.failing.insert((from, to)) {
                self.link_down_at(when, from, to);
            }
            return;
        }
        self.net.connect(from, to);
        let at = self.net.stream(&mut self.rng, self.now, from, to);
        self.push(at, Action::Deliver(p));
    }

    fn dropped(&mut self, p: &Packet<M::Message>, reason: DropReason) {
        self.metrics.on_drop(p.kind, reason);
        self.trace.mix(T_DROP << 32 | reason as u64);
        self.trace.mix(u64::from(p.from) << 32 | u64::from(p.to));
    }

    fn link_down_at(&mut self, at: u64, node: NodeId, peer: NodeId) {
        self.push(at, Action::LinkDown { node, peer });
    }

    fn close(&mut self, from: NodeId, peer: &M::Peer) {
        let Transport::Connection { .. } = self.config.transport else {
            return;
        };
        let Some(&to) = self.lookup.get(peer) else {
            return;
        };
        if self.net.disconnect(from, to) {
            // The close travels behind whatever is still in flight on the stream.
            let at = self.net.close_time(self.now, from, to);
            self.link_down_at(at, to, from);
        }
    }

    fn emit(&mut self, id: NodeId, event: M::Event) {
        self.metrics.events += 1;
        self.trace.mix(T_EVENT << 32 | u64::from(id));
        if let Some(hook) = self.event_hook.as_mut() {
            hook(
                Duration::from_nanos(self.now),
                &self.peers[id as usize],
                &event,
            );
        }
        if self.config.record_events {
            self.events.push(EventRecord {
                at: self.now(),
                node: self.peers[id as usize].clone(),
                event,
            });
        }
    }

    fn push(&mut self, at: u64, action: Action<M>) {
        self.queue.push(at, action);
    }

    fn push_at(&mut self, at: Duration, action: Action<M>) {
        let at = nanos(at).max(self.now);
        self.queue.push(at, action);
    }

    fn id(&self, peer: &M::Peer) -> Result<NodeId, SimError> {
        self.lookup
            .get(peer)
            .copied()
            .ok_or_else(|| SimError::UnknownPeer(format!("{peer:?}")))
    }
}
