//! The sync machine: one replica's side of any number of sessions with its peers.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

use bytes::Bytes;
use epidemic_core::codec::encoded_len;
use epidemic_core::{Deadlines, Machine, MonotonicNow, Output};
use serde::Serialize;

use crate::config::Config;
use crate::error::Error;
use crate::hasher::{ItemHasher, Xxh3};
use crate::message::{AbortReason, Fragment, Message, Step, bitmap, bits, item_to_wire};
use crate::planner::{self, Comparison, Next};
use crate::riblt::{Decoder, Encoder};
use crate::session::{Finish, Phase, Refused, Session, SessionReport};
use crate::store::{Item, MemStore, Replica, Store};
use crate::{Digest, Key};

mod done;
mod sketch;

use done::produce;

/// What the application is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<P> {
    /// A session ended with the exact difference between the two replicas (as they were
    /// during the session). A key held in different versions on both sides is in both
    /// lists; which version wins is the application's decision.
    Synced {
        /// The other replica.
        peer: P,
        /// The session.
        session: u64,
        /// Whether we started it.
        initiator: bool,
        /// Our items the peer lacks: send them.
        to_send: Vec<Item>,
        /// The peer's items we lack: fetch them.
        to_fetch: Vec<Item>,
        /// What the session cost, seen from our side.
        report: SessionReport,
    },
    /// A session was given up.
    Failed {
        /// The other replica.
        peer: P,
        /// The session.
        session: u64,
        /// Whether we started it.
        initiator: bool,
        /// Why.
        reason: FailReason,
    },
    /// A session we started was given up and a fresh one started in its place.
    Restarted {
        /// The other replica.
        peer: P,
        /// The session given up.
        old: u64,
        /// The new session.
        new: u64,
    },
}

/// Why a session failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FailReason {
    /// No answer after every retransmission.
    Timeout,
    /// The peer aborted it.
    Aborted(AbortReason),
    /// The peer broke the protocol (a malformed step, a step out of place, a bad bitmap).
    Protocol,
    /// A step or a difference exceeded a configured bound.
    TooLarge,
    /// Tree shapes or hashers differ.
    Incompatible,
    /// The transport lost the peer.
    LinkDown,
}

/// Counters of everything a replica's sync machine did and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Sessions started here (restarts included).
    pub started: u64,
    /// Sessions accepted from peers.
    pub accepted: u64,
    /// Sessions that ended with the difference.
    pub synced: u64,
    /// Sessions given up.
    pub failed: u64,
    /// Fresh sessions started after a failure.
    pub restarts: u64,
    /// Steps sent again after a timeout.
    pub retransmits: u64,
    /// Cached answers sent again because the peer repeated a step.
    pub answers_repeated: u64,
    /// Sessions refused at the bound of concurrent sessions.
    pub refused_busy: u64,
    /// Fragments for sessions we do not have.
    pub unknown_session: u64,
    /// Fragments of a step that is neither expected nor the last one handled.
    pub stale: u64,
    /// Steps that failed to decode or break the protocol, and inconsistent fragments.
    pub protocol_errors: u64,
    /// Items shipped in lists (by us or to us) that turned out not to differ.
    pub list_items_not_differing: u64,
    /// RIBLT decodes whose difference failed the check against the sender's set hash, or
    /// that stalled at twice the symbols the difference should need (a false peel the
    /// decoder did not undo, or a hostile sender): the session fails and the initiator
    /// retries under a fresh salt. Never a wrong `Synced`.
    pub false_decodes: u64,
    /// False RIBLT peels the decoder found and undid itself (frequent where symbols carry
    /// few checksum bits or none, past index ~100: ~200 in a decode of 20,000 keys;
    /// harmless).
    pub riblt_unpeels: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
}

type Key3<P> = (P, u64, bool);

/// One replica's Merkle anti-entropy and set reconciliation machine.
///
/// It owns the replica's [`Replica`] (store and tree); the application writes through
/// [`insert`](MerkleSync::insert) and [`remove`](MerkleSync::remove), starts sessions with
/// [`sync`](MerkleSync::sync), and repairs what [`Event::Synced`] names.
#[derive(Debug)]
pub struct MerkleSync<P, S = MemStore, H = Xxh3> {
    config: Config,
    replica: Replica<S, H>,
    sessions: BTreeMap<Key3<P>, Session>,
    timers: Deadlines<Key3<P>>,
    out: VecDeque<Output<P, Message, Event<P>>>,
    clock: MonotonicNow,
    salt: u64,
    next_session: u64,
    stats: Stats,
    items: Vec<Item>,
}

impl<P: Clone + Ord + Hash + Debug> MerkleSync<P, MemStore, Xxh3> {
    /// A machine over an empty in-memory replica of `config.shape`; `rng` draws the salt of
    /// its session ids.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn in_memory(config: Config, rng: &mut impl rand::Rng) -> Result<Self, Error> {
        config.validate()?;
        let replica = Replica::in_memory(config.shape);
        Self::new(config, replica, rng)
    }
}

impl<P, S, H> MerkleSync<P, S, H>
where
    P: Clone + Ord + Hash + Debug,
    S: Store,
    H: ItemHasher,
{
    /// A machine over `replica`, whose shape must be `config.shape`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`], also when the replica's shape differs.
    pub fn new(
        config: Config,
        replica: Replica<S, H>,
        rng: &mut impl rand::Rng,
    ) -> Result<Self, Error> {
        Self::with_salt(config, replica, rng.next_u64())
    }

    /// A machine over `replica` whose session ids are salted with `salt` (for drivers
    /// without an RNG at hand, such as fuzz targets; two replicas should not share a salt).
    ///
    /// # Errors
    /// As [`MerkleSync::new`].
    pub fn with_salt(config: Config, replica: Replica<S, H>, salt: u64) -> Result<Self, Error> {
        config.validate()?;
        if replica.tree().shape() != config.shape {
            return Err(Error::InvalidConfig(
                "the replica's shape is not config.shape",
            ));
        }
        Ok(Self {
            config,
            replica,
            sessions: BTreeMap::new(),
            timers: Deadlines::new(),
            out: VecDeque::new(),
            clock: MonotonicNow::new(),
            salt,
            next_session: 0,
            stats: Stats::default(),
            items: Vec::new(),
        })
    }

    // ---- application commands -----------------------------------------------------------

    /// Starts a session with `peer`; returns its id.
    ///
    /// # Errors
    /// [`Error::TooManySessions`]: nothing was sent.
    pub fn sync(&mut self, now: Instant, peer: P) -> Result<u64, Error> {
        let now = self.clock.advance(now);
        if self.sessions.len() >= self.config.max_sessions {
            return Err(Error::TooManySessions);
        }
        Ok(self.start(now, peer, 0))
    }

    /// Sets `key` to `digest` (an insert or an update); returns the previous digest.
    pub fn insert(&mut self, key: Key, digest: Digest) -> Option<Digest> {
        self.replica.insert(key, digest)
    }

    /// Removes `key`; returns its digest.
    pub fn remove(&mut self, key: Key) -> Option<Digest> {
        self.replica.remove(key)
    }

    /// The replica.
    #[must_use]
    pub fn replica(&self) -> &Replica<S, H> {
        &self.replica
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Sessions open (lingering finished ones included).
    #[must_use]
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    // ---- sessions -----------------------------------------------------------------------

    fn start(&mut self, now: Instant, peer: P, restarts: u32) -> u64 {
        // 32-bit ids: a 5-byte varint in every fragment instead of 10; sessions are keyed
        // by (peer, id, side), so an id only has to differ from our own open sessions'.
        let mut key = (peer, 0, true);
        loop {
            self.next_session += 1;
            key.1 = mix(self.salt ^ self.next_session) >> 32;
            if !self.sessions.contains_key(&key) {
                break;
            }
        }
        let phase = Phase::SentHashes {
            level: 0,
            set: vec![0],
        };
        let mut s = Session::new(self.config.method, phase, 1, restarts);
        let tree = self.replica.tree();
        let open = Step::Open {
            hasher: tree.hasher().id(),
            shape: tree.shape(),
            method: self.config.method,
            count: self.replica.len() as u64,
            root: tree.root().to_le_bytes(),
        };
        self.stats.started += 1;
        // An `Open` is a few dozen bytes: it never exceeds the step bound.
        let _ = self.send_step(now, &key, &mut s, 0, &open);
        let id = key.1;
        self.sessions.insert(key, s);
        id
    }

    /// Encodes, fragments and sends a step, caching it for retransmission.
    fn send_step(
        &mut self,
        now: Instant,
        key: &Key3<P>,
        s: &mut Session,
        step_no: u32,
        step: &Step,
    ) -> Result<(), FailReason> {
        let data = step.to_bytes();
        if data.len() > self.config.max_step_bytes {
            return Err(FailReason::TooLarge);
        }
        let data = Bytes::from(data);
        let per = self.config.fragment_data();
        let count = data.len().div_ceil(per).max(1);
        // `validate` bounds max_step_bytes / per by u16::MAX.
        let count16 = u16::try_from(count).map_err(|_| FailReason::TooLarge)?;
        s.cached.clear();
        for index in 0..count16 {
            let start = usize::from(index) * per;
            let end = (start + per).min(data.len());
            s.cached.push(Message::Fragment(Fragment {
                session: key.1,
                from_initiator: key.2,
                step: step_no,
                kind: step.kind(),
                index,
                count: count16,
                data: data.slice(start..end),
            }));
        }
        s.expect = step_no + 1;
        s.report.steps += 1;
        self.transmit(&key.0, s);
        self.arm(now, key, s, matches!(step, Step::Done { .. }));
        Ok(())
    }

    fn transmit(&mut self, peer: &P, s: &mut Session) {
        for m in &s.cached {
            let n = encoded_len(m) as u64;
            s.report.bytes_sent += n;
            self.stats.bytes_sent += n;
            self.out.push_back(Output::Send {
                to: peer.clone(),
                msg: m.clone(),
            });
        }
    }

    /// Arms the retransmission timer (or, after `Done`, the linger timer).
    fn arm(&mut self, now: Instant, key: &Key3<P>, s: &mut Session, done: bool) {
        if let Some(t) = s.timer.take() {
            self.timers.cancel(t);
        }
        let wait = if done {
            self.config
                .retransmit
                .saturating_mul(self.config.max_retries.saturating_add(2))
        } else {
            self.config.retransmit
        };
        s.timer = Some(self.timers.insert(now + wait, key.clone()));
    }

    fn abort(&mut self, key: &Key3<P>, reason: AbortReason) {
        self.out.push_back(Output::Send {
            to: key.0.clone(),
            msg: Message::Abort {
                session: key.1,
                from_initiator: key.2,
                reason,
            },
        });
    }

    /// Gives a session up; an initiator starts a fresh one if it may.
    fn fail(&mut self, now: Instant, key: Key3<P>, s: &Session, reason: FailReason) {
        if let Some(t) = s.timer {
            self.timers.cancel(t);
        }
        self.stats.failed += 1;
        let (peer, id, initiator) = key;
        self.out.push_back(Output::Event(Event::Failed {
            peer: peer.clone(),
            session: id,
            initiator,
            reason,
        }));
        let retry = matches!(
            reason,
            FailReason::Timeout
                | FailReason::Protocol
                | FailReason::Aborted(AbortReason::UnknownSession | AbortReason::Protocol)
        );
        if initiator && retry && s.restarts < self.config.max_restarts {
            self.stats.restarts += 1;
            let new = self.start(now, peer.clone(), s.restarts + 1);
            self.out
                .push_back(Output::Event(Event::Restarted { peer, old: id, new }));
        }
    }

    // ---- receiving ----------------------------------------------------------------------

    fn on_fragment(&mut self, now: Instant, from: P, f: &Fragment) {
        let n = encoded_len(&Message::Fragment(f.clone())) as u64;
        self.stats.bytes_received += n;
        let key = (from, f.session, !f.from_initiator);
        let mut s = match self.sessions.remove(&key) {
            Some(s) => s,
            None if f.from_initiator && f.step == 0 => {
                if self.sessions.len() >= self.config.max_sessions {
                    self.stats.refused_busy += 1;
                    self.abort(&key, AbortReason::Busy);
                    return;
                }
                self.stats.accepted += 1;
                let mut s = Session::new(self.config.method, Phase::New, 0, 0);
                // An open that never completes (fragments lost, or a peer that opens and
                // leaves) must not hold a session slot forever: the linger timer frees it.
                self.arm(now, &key, &mut s, true);
                s
            }
            None => {
                self.stats.unknown_session += 1;
                self.abort(&key, AbortReason::UnknownSession);
                return;
            }
        };
        s.report.bytes_received += n;
        if Some(f.step) == s.last_handled {
            // Our answer was lost: send it again, at most twice per retransmission period.
            let quiet = s
                .last_resend
                .is_none_or(|t| now.saturating_duration_since(t) >= self.config.retransmit / 2);
            if quiet {
                s.last_resend = Some(now);
                self.stats.answers_repeated += 1;
                self.transmit(&key.0, &mut s);
            }
            self.sessions.insert(key, s);
            return;
        }
        if f.step != s.expect || matches!(s.phase, Phase::Finished) {
            self.stats.stale += 1;
            self.sessions.insert(key, s);
            return;
        }
        let (kind, data) = match s.reasm.add(f, self.config.max_step_bytes) {
            Ok(Some(done)) => done,
            Ok(None) => {
                self.sessions.insert(key, s);
                return;
            }
            Err(refused) => {
                self.stats.protocol_errors += 1;
                self.abort(&key, AbortReason::Protocol);
                let reason = match refused {
                    Refused::TooLarge => FailReason::TooLarge,
                    Refused::Inconsistent => FailReason::Protocol,
                };
                self.fail(now, key, &s, reason);
                return;
            }
        };
        let step = match Step::from_bytes(&data) {
            Ok(step) if step.kind() == kind => step,
            _ => {
                self.stats.protocol_errors += 1;
                self.abort(&key, AbortReason::Protocol);
                self.fail(now, key, &s, FailReason::Protocol);
                return;
            }
        };
        s.last_handled = Some(f.step);
        s.last_resend = None;
        s.retries = 0;
        s.report.steps += 1;
        match self.on_step(now, &key, &mut s, step, f.step + 1) {
            Ok(true) => {
                if let Some(t) = s.timer.take() {
                    self.timers.cancel(t);
                }
            }
            Ok(false) => {
                self.sessions.insert(key, s);
            }
            Err(reason) => {
                if reason == FailReason::Protocol {
                    self.stats.protocol_errors += 1;
                }
                let why = match reason {
                    FailReason::Incompatible => AbortReason::Incompatible,
                    _ => AbortReason::Protocol,
                };
                self.abort(&key, why);
                self.fail(now, key, &s, reason);
            }
        }
    }

    /// Handles one complete step; `Ok(true)` when the session is over and can be dropped.
    fn on_step(
        &mut self,
        now: Instant,
        key: &Key3<P>,
        s: &mut Session,
        step: Step,
        reply: u32,
    ) -> Result<bool, FailReason> {
        let depth = self.config.shape.depth;
        let phase = std::mem::replace(&mut s.phase, Phase::Finished);
        match (step, phase) {
            (
                Step::Open {
                    hasher,
                    shape,
                    method,
                    count,
                    root,
                },
                Phase::New,
            ) => {
                if hasher != self.replica.tree().hasher().id() || shape != self.config.shape {
                    return Err(FailReason::Incompatible);
                }
                s.method = method;
                s.report.method = method;
                s.remote_count = count;
                let differs = self.replica.tree().root().to_le_bytes() != root;
                let set = vec![0];
                let diff: Vec<usize> = if differs { vec![0] } else { Vec::new() };
                self.after_compare(now, key, s, reply, 0, &set, &diff)?;
                Ok(false)
            }
            (
                Step::Hashes {
                    level,
                    count,
                    diff,
                    hashes,
                },
                Phase::SentHashes { level: sent, set },
            ) if level == sent + 1 && level <= depth => {
                let parents = select(&set, &diff)?;
                let shape = self.config.shape;
                let children: Vec<u32> = parents.iter().flat_map(|&p| shape.children(p)).collect();
                if hashes.len() != children.len() {
                    return Err(FailReason::Protocol);
                }
                s.remote_count = count;
                let tree = self.replica.tree();
                let differing: Vec<usize> = children
                    .iter()
                    .zip(&hashes)
                    .enumerate()
                    .filter(|(_, (c, h))| short(tree.node(level, **c)) != **h)
                    .map(|(i, _)| i)
                    .collect();
                self.after_compare(now, key, s, reply, level, &children, &differing)?;
                Ok(false)
            }
            (Step::Items { level, diff, items }, Phase::SentHashes { level: sent, set })
                if level == sent =>
            {
                let nodes = select(&set, &diff)?;
                self.on_items(now, key, s, reply, level, &nodes, &items)?;
                Ok(false)
            }
            (
                Step::Symbols {
                    level,
                    diff,
                    start: 0,
                    hash: Some(hash),
                    symbols,
                },
                Phase::SentHashes { level: sent, set },
            ) if level == sent => {
                let nodes = select(&set, &diff)?;
                self.collect(level, &nodes);
                let ours = self.set_hash(level, &nodes);
                let decoder = Box::new(Decoder::new(
                    &self.items,
                    key.1,
                    self.config.max_differences,
                ));
                let theirs = u64::from_le_bytes(hash);
                self.on_symbols(now, key, s, reply, decoder, (theirs, ours), 0, &symbols)
            }
            (
                Step::Symbols { start, symbols, .. },
                Phase::Decoding {
                    decoder,
                    theirs,
                    ours,
                },
            ) if start == decoder.received() as u64 => {
                self.on_symbols(now, key, s, reply, decoder, (theirs, ours), start, &symbols)
            }
            (Step::More { upto }, Phase::Encoding { level, mut encoder })
                if upto > encoder.produced() && upto <= self.config.max_symbols() =>
            {
                let start = encoder.produced();
                let symbols = produce(&mut encoder, upto - start);
                s.report.symbols += upto - start;
                let step = Step::Symbols {
                    level,
                    diff: Bytes::new(),
                    start,
                    hash: None,
                    symbols,
                };
                self.send_step(now, key, s, reply, &step)?;
                s.phase = Phase::Encoding { level, encoder };
                Ok(false)
            }
            (
                Step::Sketch {
                    level,
                    diff,
                    hash,
                    depth,
                    per,
                    syndromes,
                },
                Phase::SentHashes { level: sent, set },
            ) if level == sent => {
                let nodes = select(&set, &diff)?;
                self.on_first_sketch(
                    now,
                    key,
                    s,
                    reply,
                    (level, &nodes),
                    (hash, depth, per),
                    &syndromes,
                )
            }
            (
                Step::Syndromes { syndromes },
                Phase::SketchDecoding {
                    decoder,
                    ask,
                    theirs,
                    ours,
                },
            ) => self.on_syndromes(
                now,
                key,
                s,
                reply,
                decoder,
                &ask,
                (theirs, ours),
                &syndromes,
            ),
            (
                Step::Ask {
                    split,
                    bits,
                    extend,
                    by,
                },
                Phase::SketchEncoding { encoder },
            ) => self.on_ask(now, key, s, reply, encoder, (&split, bits, &extend, &by)),
            (
                Step::Done {
                    gone,
                    changed,
                    digests,
                    mine,
                },
                phase,
            ) if !matches!(phase, Phase::New | Phase::Finished) => {
                let done = done::Done {
                    gone: &gone,
                    changed: &changed,
                    digests: &digests,
                    mine: &mine,
                };
                self.on_done(key, s, &phase, &done)?;
                Ok(true)
            }
            _ => Err(FailReason::Protocol),
        }
    }

    /// After comparing the nodes `set` of `level`, of which the indices `differing` differ:
    /// finish, descend, send lists or start a sketch.
    #[allow(clippy::too_many_arguments)] // one call site per kind of comparison
    fn after_compare(
        &mut self,
        now: Instant,
        key: &Key3<P>,
        s: &mut Session,
        reply: u32,
        level: u8,
        set: &[u32],
        differing: &[usize],
    ) -> Result<(), FailReason> {
        s.report.levels = s.report.levels.max(level);
        if differing.is_empty() {
            s.report.finish = Finish::Equal;
            return self.finish_sent(now, key, s, reply, Vec::new(), Vec::new(), &[]);
        }
        let shape = self.config.shape;
        let nodes: Vec<u32> = differing.iter().map(|&i| set[i]).collect();
        let n = (self.replica.len() as u64).max(s.remote_count) as f64;
        let c = Comparison {
            level,
            depth: shape.depth,
            fanout: shape.fanout(),
            compared: set.len(),
            differing: nodes.len(),
            items_below: n * nodes.len() as f64 / f64::from(shape.nodes_at(level)),
        };
        let diff = bitmap(set.len(), differing.iter().copied());
        let mut next = planner::decide(s.method, &c, &self.config.costs());
        if next == Next::Descend && level >= shape.depth {
            next = Next::Lists;
        }
        match next {
            Next::Descend => {
                let tree = self.replica.tree();
                let children: Vec<u32> = nodes.iter().flat_map(|&p| shape.children(p)).collect();
                let hashes = children
                    .iter()
                    .map(|&c| short(tree.node(level + 1, c)))
                    .collect();
                let step = Step::Hashes {
                    level: level + 1,
                    count: self.replica.len() as u64,
                    diff,
                    hashes,
                };
                self.send_step(now, key, s, reply, &step)?;
                s.phase = Phase::SentHashes {
                    level: level + 1,
                    set: children,
                };
            }
            Next::Lists => {
                self.collect(level, &nodes);
                let items = self
                    .items
                    .iter()
                    .map(|&i| item_to_wire(i))
                    .collect::<Vec<_>>();
                s.report.list_items += items.len() as u64;
                let step = Step::Items { level, diff, items };
                self.send_step(now, key, s, reply, &step)?;
                s.phase = Phase::AwaitDone {
                    items: self.items.clone(),
                };
            }
            Next::Sketch => {
                self.collect(level, &nodes);
                let counts = (self.replica.len() as u64).abs_diff(s.remote_count) as f64;
                let est = planner::estimate_differences(c.compared, c.differing).max(counts);
                self.start_sketch(now, key, s, reply, (level, &nodes, diff), est)?;
            }
            Next::Riblt => {
                self.collect(level, &nodes);
                let hash = self.set_hash(level, &nodes).to_le_bytes();
                let mut encoder = Box::new(Encoder::new(&self.items, key.1));
                // The counts differ by at least the keys one side lacks: a free lower
                // bound on the difference (all the Riblt method has).
                let counts = (self.replica.len() as u64).abs_diff(s.remote_count) as f64;
                let est = planner::estimate_differences(c.compared, c.differing).max(counts);
                let first = planner::first_batch(est, self.config.max_symbols());
                let symbols = produce(&mut encoder, first);
                s.report.symbols += first;
                let step = Step::Symbols {
                    level,
                    diff,
                    start: 0,
                    hash: Some(hash),
                    symbols,
                };
                self.send_step(now, key, s, reply, &step)?;
                s.phase = Phase::Encoding { level, encoder };
            }
        }
        Ok(())
    }

    fn synced(&mut self, key: &Key3<P>, s: &Session, to_send: Vec<Item>, to_fetch: Vec<Item>) {
        self.stats.synced += 1;
        self.out.push_back(Output::Event(Event::Synced {
            peer: key.0.clone(),
            session: key.1,
            initiator: key.2,
            to_send,
            to_fetch,
            report: s.report,
        }));
    }

    /// Fills `self.items` with our items under `nodes` of `level`.
    fn collect(&mut self, level: u8, nodes: &[u32]) {
        self.items.clear();
        for &n in nodes {
            let mut buf = std::mem::take(&mut self.items);
            self.replica.collect_node(level, n, &mut buf);
            self.items = buf;
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        while let Some((_, key)) = self.timers.pop_expired(now) {
            let Some(mut s) = self.sessions.remove(&key) else {
                continue;
            };
            s.timer = None;
            if matches!(s.phase, Phase::Finished) {
                continue;
            }
            if s.cached.is_empty() {
                // A responder whose open never completed: nothing to retransmit.
                self.fail(now, key, &s, FailReason::Timeout);
                continue;
            }
            if s.retries < self.config.max_retries {
                s.retries += 1;
                self.stats.retransmits += 1;
                self.transmit(&key.0, &mut s);
                self.arm(now, &key, &mut s, false);
                self.sessions.insert(key, s);
            } else {
                self.abort(&key, AbortReason::UnknownSession);
                self.fail(now, key, &s, FailReason::Timeout);
            }
        }
    }
}

impl<P, S, H> Machine for MerkleSync<P, S, H>
where
    P: Clone + Ord + Hash + Debug,
    S: Store,
    H: ItemHasher,
{
    type Peer = P;
    type Message = Message;
    type Event = Event<P>;

    fn handle_message(&mut self, now: Instant, from: P, msg: Message) {
        let now = self.clock.advance(now);
        match msg {
            Message::Fragment(f) => self.on_fragment(now, from, &f),
            Message::Abort {
                session,
                from_initiator,
                reason,
            } => {
                let key = (from, session, !from_initiator);
                match self.sessions.remove(&key) {
                    Some(s) if matches!(s.phase, Phase::Finished) => {
                        // The peer forgot a session we already finished: nothing to do.
                        if let Some(t) = s.timer {
                            self.timers.cancel(t);
                        }
                    }
                    Some(s) => self.fail(now, key, &s, FailReason::Aborted(reason)),
                    None => self.stats.unknown_session += 1,
                }
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock.advance(now);
        self.on_timeout(now);
    }

    fn handle_link_down(&mut self, now: Instant, peer: P) {
        let now = self.clock.advance(now);
        let keys: Vec<Key3<P>> = self
            .sessions
            .keys()
            .filter(|k| k.0 == peer)
            .cloned()
            .collect();
        for key in keys {
            if let Some(s) = self.sessions.remove(&key) {
                if matches!(s.phase, Phase::Finished) {
                    if let Some(t) = s.timer {
                        self.timers.cancel(t);
                    }
                    continue;
                }
                self.fail(now, key, &s, FailReason::LinkDown);
            }
        }
    }

    fn poll_output(&mut self) -> Option<Output<P, Message, Event<P>>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }
}

/// The 8 bytes of a node hash that travel.
fn short(h: u128) -> [u8; 8] {
    // The low 64 bits of an XOR of XXH3-128 hashes are as uniform as the high ones.
    (h as u64).to_le_bytes()
}

/// The members of `set` whose bits are set in `diff`.
fn select(set: &[u32], diff: &[u8]) -> Result<Vec<u32>, FailReason> {
    let idx = bits(diff, set.len()).ok_or(FailReason::Protocol)?;
    Ok(idx.into_iter().map(|i| set[i]).collect())
}

/// A 64-bit mixer (splitmix64's finaliser) for session ids.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
