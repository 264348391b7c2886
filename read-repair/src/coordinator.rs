//! The read coordinator: sends one data request and digest requests, compares digests,
//! fetches full data only from the replicas that differ, reconciles, repairs the stale
//! replicas with minimal diffs, and answers the application.
//!
//! A read moves through up to three phases, each one client-visible round trip:
//!
//! 1. **Collect**: a data request to the preferred replica and digest requests to the
//!    others the level needs (plus one speculative replica if the level is slow to meet).
//!    Once the level is met with at least one data answer: if every digest matches the
//!    data's, the read is done (one round trip, Cassandra's `DigestResolver`).
//! 2. **Fetch**: on a mismatch, full data requests to the replicas whose digests differed
//!    only; their records and the data answer are merged by the [`Resolver`].
//! 3. **Repair**: each stale replica of the read is sent only the cells it lacks
//!    (Cassandra's `DataResolver` merge listener). Blocking repair answers once enough
//!    replicas are known to hold the answer to meet the level (Cassandra 4's
//!    `BlockingReadRepair`); asynchronous repair answers first.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

use epidemic_core::codec::body_len;
use epidemic_core::{BoundedQueue, Deadlines, Machine, MonotonicNow, Output, Overflow, TimerId};
use smallvec::SmallVec;

use crate::config::{Config, DataReplica, ReadOptions, RepairMode, SpeculativeRetry};
use crate::digest::{DIGEST_LEN, Digest, digest};
use crate::error::ReadError;
use crate::event::{Event, FailReason, ReadDone, Stats};
use crate::latency::Latency;
use crate::message::{Message, ReadId};
use crate::record::{Record, Resolver, Schema};

mod late;
use late::{Late, Linger};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Deadline,
    Speculate,
    Retransmit,
    Forget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Collect,
    Fetch,
    Repair,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    Data,
    Digest,
}

#[derive(Debug, Clone)]
enum State<S: Schema> {
    Waiting,
    Digest(Digest),
    Data {
        record: Option<Record<S>>,
        digest: Digest,
    },
    /// Its digest matched the reference data answer.
    Matched,
    /// Its link went down.
    Failed,
    /// Not in the consistency set: the read moved on without it.
    Abandoned,
    /// Answered after being abandoned (handled as a late answer).
    Late,
}

#[derive(Debug, Clone)]
struct Reply<S: Schema> {
    asked: Asked,
    sent: Instant,
    state: State<S>,
    /// The diff sent under blocking repair, kept for retransmission until acknowledged.
    repair: Option<Record<S>>,
    acked: bool,
}

impl<S: Schema> Reply<S> {
    fn new(asked: Asked, sent: Instant) -> Self {
        Self {
            asked,
            sent,
            state: State::Waiting,
            repair: None,
            acked: false,
        }
    }

    fn answered(&self) -> bool {
        matches!(
            self.state,
            State::Digest(_) | State::Data { .. } | State::Matched
        )
    }
}

#[derive(Debug, Clone)]
struct Read<P, S: Schema> {
    key: S::Key,
    block_for: usize,
    repair: RepairMode,
    started: Instant,
    /// Every named replica in preference order; `replies[i]` belongs to `order[i]`.
    order: SmallVec<[P; 8]>,
    replies: SmallVec<[Reply<S>; 8]>,
    phase: Phase,
    round_trips: u8,
    speculated: bool,
    mismatch: bool,
    /// Index of the data answer all digests are compared with.
    reference: usize,
    resolved: Option<Record<S>>,
    /// The digest of `resolved`, when already known (everyone agreed).
    resolved_digest: Option<Digest>,
    up_to_date: usize,
    deadline: TimerId,
    speculate: Option<TimerId>,
    retransmit: Option<TimerId>,
}

/// The read coordinator machine. Generic over the peer type `P`, the application's
/// [`Schema`] `S` and its [`Resolver`] `R`.
#[derive(Debug)]
pub struct Coordinator<P, S: Schema, R> {
    config: Config,
    resolver: R,
    clock: MonotonicNow,
    next_id: ReadId,
    /// Boxed: a read moves in and out of the map between phases.
    reads: BTreeMap<ReadId, Box<Read<P, S>>>,
    timers: Deadlines<(ReadId, Timer)>,
    lingering: BTreeMap<ReadId, Linger<P, S>>,
    linger_order: BoundedQueue<ReadId>,
    latency: Latency<P>,
    out: VecDeque<Output<P, Message<S>, Event<P, S>>>,
    stats: Stats,
}

/// A configuration [`Config::validate`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid read-repair config: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl<P, S, R> Coordinator<P, S, R>
where
    P: Clone + Ord + Hash + Debug,
    S: Schema,
    R: Resolver<S::Version>,
{
    /// A coordinator with no read in flight.
    ///
    /// # Errors
    /// [`ConfigError`] if `config` does not [validate](Config::validate).
    pub fn new(config: Config, resolver: R) -> Result<Self, ConfigError> {
        config.validate().map_err(ConfigError)?;
        Ok(Self {
            latency: Latency::new(config.latency_samples, config.max_tracked_peers),
            linger_order: BoundedQueue::new(config.max_lingering, Overflow::DropOldest),
            config,
            resolver,
            clock: MonotonicNow::new(),
            next_id: 0,
            reads: BTreeMap::new(),
            timers: Deadlines::new(),
            lingering: BTreeMap::new(),
            out: VecDeque::new(),
            stats: Stats::default(),
        })
    }

    /// Starts a read of `key` from `replicas` (in the application's preference order).
    ///
    /// # Errors
    /// [`ReadError`] if the level cannot be met by the replicas named, a replica is named
    /// twice, or too many reads are in flight. Nothing is sent then.
    pub fn read(
        &mut self,
        now: Instant,
        key: S::Key,
        replicas: &[P],
        options: ReadOptions,
    ) -> Result<ReadId, ReadError> {
        let now = self.clock.advance(now);
        if let Err(e) = self.check_read(replicas, options) {
            self.stats.reads_refused += 1;
            return Err(e);
        }
        let block_for = options.level.block_for(replicas.len());
        let mut order: SmallVec<[P; 8]> = replicas.iter().cloned().collect();
        if self.config.data_replica == DataReplica::LowestLatency {
            // Stable: equal averages keep the application's order.
            order.sort_by(|a, b| self.latency.average(a).total_cmp(&self.latency.average(b)));
        }
        let id = self.next_id;
        self.next_id += 1;
        let deadline = self
            .timers
            .insert(now + self.config.read_timeout, (id, Timer::Deadline));
        let mut read = Box::new(Read {
            key,
            block_for,
            repair: options.repair,
            started: now,
            order,
            replies: SmallVec::new(),
            phase: Phase::Collect,
            round_trips: 1,
            speculated: false,
            mismatch: false,
            reference: 0,
            resolved: None,
            resolved_digest: None,
            up_to_date: 0,
            deadline,
            speculate: None,
            retransmit: None,
        });
        let first = match self.config.speculative_retry {
            SpeculativeRetry::Always if block_for < read.order.len() => {
                read.speculated = true;
                self.stats.speculative_retries += 1;
                block_for + 1
            }
            _ => block_for,
        };
        for i in 0..first {
            // Under `Always`, the extra replica gets a data request too (Cassandra's
            // `AlwaysSpeculatingReadExecutor`), so a slow data replica costs nothing.
            self.contact(id, &mut read, now, i >= block_for);
        }
        read.retransmit = Some(self.timers.insert(
            now + self.config.retransmit_interval,
            (id, Timer::Retransmit),
        ));
        if let Some(after) = self.speculation_delay() {
            if read.replies.len() < read.order.len() {
                read.speculate = Some(self.timers.insert(now + after, (id, Timer::Speculate)));
            }
        }
        self.reads.insert(id, read);
        self.stats.reads_started += 1;
        Ok(id)
    }

    fn check_read(&self, replicas: &[P], options: ReadOptions) -> Result<(), ReadError> {
        let required = options.level.block_for(replicas.len());
        if required == 0 || required > replicas.len() {
            return Err(ReadError::Unavailable {
                required,
                replicas: replicas.len(),
            });
        }
        if replicas.len() > self.config.max_replicas {
            return Err(ReadError::TooManyReplicas {
                max: self.config.max_replicas,
            });
        }
        for (i, p) in replicas.iter().enumerate() {
            if replicas[..i].contains(p) {
                return Err(ReadError::DuplicateReplica);
            }
        }
        if self.reads.len() >= self.config.max_in_flight {
            return Err(ReadError::TooManyReads {
                max: self.config.max_in_flight,
            });
        }
        Ok(())
    }

    /// Reads in flight.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.reads.len()
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The resolver.
    #[must_use]
    pub fn resolver(&self) -> &R {
        &self.resolver
    }

    fn speculation_delay(&mut self) -> Option<Duration> {
        let floor = self.config.speculative_floor;
        match self.config.speculative_retry {
            SpeculativeRetry::Never | SpeculativeRetry::Always => None,
            SpeculativeRetry::Fixed(d) => Some(d),
            SpeculativeRetry::Percentile(p) => {
                let initial = self.config.speculative_initial.unwrap_or(floor);
                Some(self.latency.percentile(p).map_or(initial, |d| d.max(floor)))
            }
        }
    }

    /// Sends the next replica in order its request, and returns false if every replica was
    /// contacted. The first contact gets a data request and the others digest requests;
    /// a speculative or fail-over contact gets a data request while no data answer has
    /// arrived (Cassandra's rule), a digest request otherwise.
    fn contact(&mut self, id: ReadId, read: &mut Read<P, S>, now: Instant, extra: bool) -> bool {
        let i = read.replies.len();
        let Some(to) = read.order.get(i).cloned() else {
            return false;
        };
        let data_covered = read.replies.iter().any(|r| {
            if extra {
                matches!(r.state, State::Data { .. })
            } else {
                r.asked == Asked::Data
            }
        });
        let asked = if !self.config.digest_reads || !data_covered {
            Asked::Data
        } else {
            Asked::Digest
        };
        let key = read.key.clone();
        let msg = match asked {
            Asked::Data => Message::ReadData { id, key },
            Asked::Digest => Message::ReadDigest { id, key },
        };
        read.replies.push(Reply::new(asked, now));
        self.out.push_back(Output::Send { to, msg });
        true
    }

    // ---- answers --------------------------------------------------------------------------

    fn on_data(&mut self, now: Instant, from: &P, id: ReadId, record: Option<Record<S>>) {
        let Some(read) = self.reads.get_mut(&id) else {
            self.on_late(now, from, id, Late::Data(record));
            return;
        };
        let Some(i) = read.order[..read.replies.len()]
            .iter()
            .position(|p| p == from)
        else {
            self.stats.wrong_replica += 1;
            return;
        };
        let reply = &mut read.replies[i];
        match reply.state {
            State::Waiting => {}
            State::Abandoned => {
                let key = read.key.clone();
                let resolved = read.resolved.clone();
                reply.state = State::Late;
                let waited = now.saturating_duration_since(reply.sent);
                self.latency.record_peer(from, waited);
                self.late_answer(id, key, resolved.as_ref(), None, from, Late::Data(record));
                return;
            }
            _ => {
                self.stats.duplicate_responses += 1;
                return;
            }
        }
        if read.phase == Phase::Collect {
            self.latency
                .record(from, now.saturating_duration_since(reply.sent));
        }
        // A data answer where a digest was asked is still an answer (a superset of one).
        let digest = digest(record.as_ref());
        reply.state = State::Data { record, digest };
        self.advance(now, id);
    }

    fn on_digest(&mut self, now: Instant, from: &P, id: ReadId, d: Digest) {
        let Some(read) = self.reads.get_mut(&id) else {
            self.on_late(now, from, id, Late::Digest(d));
            return;
        };
        let Some(i) = read.order[..read.replies.len()]
            .iter()
            .position(|p| p == from)
        else {
            self.stats.wrong_replica += 1;
            return;
        };
        let reply = &mut read.replies[i];
        match reply.state {
            State::Waiting if reply.asked == Asked::Digest => {}
            State::Waiting => {
                self.stats.unexpected += 1;
                return;
            }
            State::Abandoned => {
                let key = read.key.clone();
                let resolved = read.resolved.clone();
                let rd = resolved.as_ref().map(|r| digest(Some(r)));
                reply.state = State::Late;
                let waited = now.saturating_duration_since(reply.sent);
                self.latency.record_peer(from, waited);
                self.late_answer(id, key, resolved.as_ref(), rd, from, Late::Digest(d));
                return;
            }
            _ => {
                self.stats.duplicate_responses += 1;
                return;
            }
        }
        self.latency
            .record(from, now.saturating_duration_since(reply.sent));
        reply.state = State::Digest(d);
        self.advance(now, id);
    }

    fn on_repair_ack(&mut self, now: Instant, from: &P, id: ReadId) {
        let Some(read) = self.reads.get_mut(&id) else {
            self.on_late(now, from, id, Late::Ack);
            return;
        };
        let Some(i) = read.order[..read.replies.len()]
            .iter()
            .position(|p| p == from)
        else {
            self.stats.wrong_replica += 1;
            return;
        };
        let reply = &mut read.replies[i];
        if reply.repair.is_none() {
            self.stats.unexpected += 1;
        } else if reply.acked {
            self.stats.duplicate_responses += 1;
        } else {
            reply.acked = true;
            self.advance(now, id);
        }
    }

    fn count_repair(&mut self, diff: &Record<S>, resolved: &Record<S>) {
        self.stats.repairs_sent += 1;
        self.stats.repair_versions += diff.versions() as u64;
        self.stats.repair_bytes += body_len(diff) as u64;
        self.stats.whole_record_bytes += body_len(resolved) as u64;
    }

    // ---- phases ---------------------------------------------------------------------------

    /// Moves a read on if its phase is complete.
    fn advance(&mut self, now: Instant, id: ReadId) {
        let Some(read) = self.reads.get(&id) else {
            return;
        };
        match read.phase {
            Phase::Collect => {
                let answered = read.replies.iter().filter(|r| r.answered()).count();
                let has_data = read
                    .replies
                    .iter()
                    .any(|r| matches!(r.state, State::Data { .. }));
                if answered >= read.block_for && has_data {
                    self.compare_digests(now, id);
                } else {
                    self.check_alive(now, id);
                }
            }
            Phase::Fetch => {
                if !read
                    .replies
                    .iter()
                    .any(|r| matches!(r.state, State::Waiting))
                {
                    self.resolve(now, id);
                }
            }
            Phase::Repair => {
                let acked = read.replies.iter().filter(|r| r.acked).count();
                if read.up_to_date + acked >= read.block_for {
                    self.finish(now, id);
                }
            }
        }
    }

    /// Fails the read if failed links leave too few replicas; asks a data replica if the
    /// only data request failed.
    fn check_alive(&mut self, now: Instant, id: ReadId) {
        let Some(mut read) = self.reads.remove(&id) else {
            return;
        };
        let data_pending = read.replies.iter().any(|r| {
            r.asked == Asked::Data && matches!(r.state, State::Waiting | State::Data { .. })
        });
        let digests_only = read.replies.iter().any(Reply::answered) && !data_pending;
        if digests_only {
            // Every data request failed: turn one answered digest replica into a data one.
            if let Some(i) = read
                .replies
                .iter()
                .position(|r| matches!(r.state, State::Digest(_)))
            {
                read.replies[i] = Reply::new(Asked::Data, now);
                self.out.push_back(Output::Send {
                    to: read.order[i].clone(),
                    msg: Message::ReadData {
                        id,
                        key: read.key.clone(),
                    },
                });
            }
        }
        let alive = read.order.len()
            - read
                .replies
                .iter()
                .filter(|r| matches!(r.state, State::Failed))
                .count();
        self.reads.insert(id, read);
        let read = &self.reads[&id];
        if alive < read.block_for {
            let required = read.block_for;
            self.fail(id, FailReason::Unavailable { alive, required });
        }
    }

    /// The level is met with a data answer: one round trip if everything matches, else
    /// fetch full data from the replicas that differ.
    fn compare_digests(&mut self, now: Instant, id: ReadId) {
        let Some(mut read) = self.reads.remove(&id) else {
            return;
        };
        if let Some(t) = read.speculate.take() {
            self.timers.cancel(t);
        }
        let reference = read
            .replies
            .iter()
            .position(|r| matches!(r.state, State::Data { .. }))
            .expect("compare_digests runs only with a data answer");
        read.reference = reference;
        let (ref_digest, ref_len) = match &read.replies[reference].state {
            State::Data { record, digest } => (*digest, body_len(record)),
            _ => unreachable!("the reference is a data answer"),
        };
        let mismatch = read.replies.iter().any(|r| match r.state {
            State::Digest(d) | State::Data { digest: d, .. } => d != ref_digest,
            _ => false,
        });
        // Cassandra re-reads full data from every contacted replica on a mismatch; by
        // default only the replicas whose digests differed are asked.
        let refetch_all = mismatch && self.config.fetch_all_on_mismatch;
        let mut fetch = false;
        let key = read.key.clone();
        for (i, reply) in read.replies.iter_mut().enumerate() {
            let refetch = match reply.state {
                State::Waiting => {
                    reply.state = State::Abandoned;
                    false
                }
                State::Digest(d) if d == ref_digest && !refetch_all => {
                    reply.state = State::Matched;
                    let saved = ref_len.saturating_sub(DIGEST_LEN);
                    self.stats.bytes_saved_by_digests += saved as u64;
                    false
                }
                State::Digest(_) => true,
                State::Data { .. } => refetch_all,
                State::Matched | State::Failed | State::Abandoned | State::Late => false,
            };
            if refetch {
                fetch = true;
                *reply = Reply::new(Asked::Data, now);
                self.out.push_back(Output::Send {
                    to: read.order[i].clone(),
                    msg: Message::ReadData {
                        id,
                        key: key.clone(),
                    },
                });
            }
        }
        read.mismatch = mismatch;
        if mismatch {
            self.stats.digest_mismatches += 1;
        }
        if fetch {
            read.phase = Phase::Fetch;
            read.round_trips += 1;
            self.stats.extra_round_trips += 1;
            if let Some(t) = read.retransmit.take() {
                self.timers.cancel(t);
            }
            read.retransmit = Some(self.timers.insert(
                now + self.config.retransmit_interval,
                (id, Timer::Retransmit),
            ));
            self.reads.insert(id, read);
        } else if !mismatch {
            // Everyone agrees: the reference is the answer, nothing to merge or repair.
            if let State::Data { record, .. } = &mut read.replies[reference].state {
                read.resolved = record.take();
            }
            read.resolved_digest = Some(ref_digest);
            read.up_to_date = read.replies.iter().filter(|r| r.answered()).count();
            self.reads.insert(id, read);
            self.finish(now, id);
        } else {
            self.reads.insert(id, read);
            self.resolve(now, id);
        }
    }

    /// Every answer of the consistency set is in: merge, compute each replica's diff,
    /// repair, and answer now or once enough repairs are acknowledged.
    fn resolve(&mut self, now: Instant, id: ReadId) {
        let Some(mut read) = self.reads.remove(&id) else {
            return;
        };
        let mut resolved: Option<Record<S>> = None;
        for reply in &read.replies {
            if let State::Data {
                record: Some(r), ..
            } = &reply.state
            {
                // Merged into an empty record even when it is the only one: a replica's
                // record is not trusted to be normalised (sorted, undominated siblings).
                resolved
                    .get_or_insert_with(Record::new)
                    .merge(r, &self.resolver);
            }
        }
        let reference = match &read.replies[read.reference].state {
            State::Data { record, .. } => record.clone(),
            _ => None,
        };
        let mut up_to_date = 0;
        let mut stale: SmallVec<[(usize, Record<S>); 4]> = SmallVec::new();
        for (i, reply) in read.replies.iter().enumerate() {
            let held = match &reply.state {
                State::Data { record, .. } => record.as_ref(),
                State::Matched => reference.as_ref(),
                _ => continue,
            };
            let diff = match resolved.as_ref() {
                Some(r) => r.diff(held),
                None => Record::new(),
            };
            if diff.is_empty() {
                up_to_date += 1;
            } else {
                stale.push((i, diff));
            }
        }
        read.up_to_date = up_to_date;
        let wait = read.repair == RepairMode::Blocking && up_to_date < read.block_for;
        if read.repair != RepairMode::None {
            let whole = resolved.clone().unwrap_or_default();
            for (i, diff) in stale {
                self.count_repair(&diff, &whole);
                self.out.push_back(Output::Send {
                    to: read.order[i].clone(),
                    msg: Message::Repair {
                        id,
                        key: read.key.clone(),
                        diff: diff.clone(),
                        ack: wait,
                    },
                });
                read.replies[i].repair = Some(diff);
            }
        }
        read.resolved = resolved;
        if let Some(t) = read.retransmit.take() {
            self.timers.cancel(t);
        }
        if wait {
            read.phase = Phase::Repair;
            read.round_trips += 1;
            self.stats.extra_round_trips += 1;
            read.retransmit = Some(self.timers.insert(
                now + self.config.retransmit_interval,
                (id, Timer::Retransmit),
            ));
            self.reads.insert(id, read);
        } else {
            self.reads.insert(id, read);
            self.finish(now, id);
        }
    }

    fn finish(&mut self, now: Instant, id: ReadId) {
        let Some(read) = self.reads.remove(&id) else {
            return;
        };
        for t in [Some(read.deadline), read.speculate, read.retransmit]
            .into_iter()
            .flatten()
        {
            self.timers.cancel(t);
        }
        let level_met = read.replies.iter().filter(|r| r.answered()).count();
        let repaired: SmallVec<[P; 4]> = read
            .replies
            .iter()
            .zip(&read.order)
            .filter(|(r, _)| r.repair.is_some())
            .map(|(_, p)| p.clone())
            .collect();
        self.stats.reads_done += 1;
        if read.round_trips == 1 {
            self.stats.one_round_trip += 1;
        }
        self.remember(now, id, &read);
        self.out.push_back(Output::Event(Event::ReadDone(ReadDone {
            id,
            key: read.key,
            value: read.resolved,
            level_met,
            repaired,
            round_trips: read.round_trips,
            digest_mismatch: read.mismatch,
            speculated: read.speculated,
            started: read.started,
            latency: now.saturating_duration_since(read.started),
        })));
    }

    fn fail(&mut self, id: ReadId, reason: FailReason) {
        let Some(read) = self.reads.remove(&id) else {
            return;
        };
        for t in [Some(read.deadline), read.speculate, read.retransmit]
            .into_iter()
            .flatten()
        {
            self.timers.cancel(t);
        }
        self.stats.reads_failed += 1;
        self.out.push_back(Output::Event(Event::ReadFailed {
            id,
            key: read.key,
            reason,
        }));
    }

    // ---- timers ---------------------------------------------------------------------------

    fn on_timer(&mut self, now: Instant, id: ReadId, timer: Timer) {
        match timer {
            Timer::Forget => self.forget(now, id),
            Timer::Deadline => {
                let Some(read) = self.reads.get(&id) else {
                    return;
                };
                let required = read.block_for;
                let reason = if read.phase == Phase::Repair {
                    let acked = read.replies.iter().filter(|r| r.acked).count();
                    FailReason::RepairTimeout {
                        holding: read.up_to_date + acked,
                        required,
                    }
                } else {
                    FailReason::Timeout {
                        responded: read.replies.iter().filter(|r| r.answered()).count(),
                        required,
                    }
                };
                self.fail(id, reason);
            }
            Timer::Speculate => {
                let Some(mut read) = self.reads.remove(&id) else {
                    return;
                };
                read.speculate = None;
                if read.phase == Phase::Collect && self.contact(id, &mut read, now, true) {
                    read.speculated = true;
                    self.stats.speculative_retries += 1;
                }
                self.reads.insert(id, read);
            }
            Timer::Retransmit => self.retransmit(now, id),
        }
    }

    fn retransmit(&mut self, now: Instant, id: ReadId) {
        let Some(read) = self.reads.get_mut(&id) else {
            return;
        };
        read.retransmit = None;
        for (reply, to) in read.replies.iter().zip(&read.order) {
            let msg = match read.phase {
                Phase::Collect if matches!(reply.state, State::Waiting) => match reply.asked {
                    Asked::Data => Message::ReadData {
                        id,
                        key: read.key.clone(),
                    },
                    Asked::Digest => Message::ReadDigest {
                        id,
                        key: read.key.clone(),
                    },
                },
                Phase::Fetch if matches!(reply.state, State::Waiting) => Message::ReadData {
                    id,
                    key: read.key.clone(),
                },
                Phase::Repair if !reply.acked => match &reply.repair {
                    Some(diff) => Message::Repair {
                        id,
                        key: read.key.clone(),
                        diff: diff.clone(),
                        ack: true,
                    },
                    None => continue,
                },
                _ => continue,
            };
            self.stats.retransmits += 1;
            self.out.push_back(Output::Send {
                to: to.clone(),
                msg,
            });
        }
        read.retransmit = Some(self.timers.insert(
            now + self.config.retransmit_interval,
            (id, Timer::Retransmit),
        ));
    }
}

impl<P, S, R> Machine for Coordinator<P, S, R>
where
    P: Clone + Ord + Hash + Debug,
    S: Schema,
    R: Resolver<S::Version>,
{
    type Peer = P;
    type Message = Message<S>;
    type Event = Event<P, S>;

    fn handle_message(&mut self, now: Instant, from: P, msg: Message<S>) {
        let now = self.clock.advance(now);
        match msg {
            Message::Data { id, record } => self.on_data(now, &from, id, record),
            Message::Digest { id, digest } => self.on_digest(now, &from, id, digest),
            Message::RepairAck { id } => self.on_repair_ack(now, &from, id),
            Message::ReadData { .. } | Message::ReadDigest { .. } | Message::Repair { .. } => {
                self.stats.unexpected += 1;
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock.advance(now);
        while let Some((_, (id, timer))) = self.timers.pop_expired(now) {
            self.on_timer(now, id, timer);
        }
    }

    fn handle_link_down(&mut self, now: Instant, peer: P) {
        let now = self.clock.advance(now);
        let ids: SmallVec<[ReadId; 8]> = self
            .reads
            .iter()
            .filter(|(_, r)| {
                r.phase == Phase::Collect
                    && r.order[..r.replies.len()]
                        .iter()
                        .zip(&r.replies)
                        .any(|(p, x)| *p == peer && matches!(x.state, State::Waiting))
            })
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            let Some(mut read) = self.reads.remove(&id) else {
                continue;
            };
            if let Some(i) = read.order[..read.replies.len()]
                .iter()
                .position(|p| *p == peer)
            {
                read.replies[i].state = State::Failed;
            }
            // Fail over to the next replica right away.
            self.contact(id, &mut read, now, true);
            self.reads.insert(id, read);
            self.advance(now, id);
        }
    }

    fn poll_output(&mut self) -> Option<Output<P, Message<S>, Event<P, S>>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }
}
