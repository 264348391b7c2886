//! The replica side: a [`Store`] trait over the application's storage, an in-memory
//! [`MemoryStore`], and the [`Responder`] machine that answers data and digest requests
//! and applies repairs.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

use epidemic_core::{Machine, MonotonicNow, Output};

use crate::digest::digest;
use crate::message::Message;
use crate::record::{Record, Resolver, Schema};

/// The application's storage, as a replica sees it.
pub trait Store<S: Schema> {
    /// The record stored under `key`, if any (borrowed when the store holds it in memory).
    fn get(&self, key: &S::Key) -> Option<Cow<'_, Record<S>>>;

    /// Replaces the record stored under `key`. Returns false if the store refused it (a
    /// bound, a full disk): the responder then does not acknowledge the repair.
    fn put(&mut self, key: S::Key, record: Record<S>) -> bool;
}

/// An in-memory store with a bound on the number of keys; writes of new keys beyond it are
/// refused and counted.
#[derive(Debug, Clone)]
pub struct MemoryStore<S: Schema> {
    records: BTreeMap<S::Key, Record<S>>,
    max_keys: usize,
    refused: u64,
}

impl<S: Schema> MemoryStore<S> {
    /// An empty store holding at most `max_keys` keys.
    #[must_use]
    pub fn new(max_keys: usize) -> Self {
        Self {
            records: BTreeMap::new(),
            max_keys,
            refused: 0,
        }
    }

    /// Records in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&S::Key, &Record<S>)> {
        self.records.iter()
    }

    /// Keys stored.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Writes refused at the bound.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

impl<S: Schema> Store<S> for MemoryStore<S> {
    fn get(&self, key: &S::Key) -> Option<Cow<'_, Record<S>>> {
        self.records.get(key).map(Cow::Borrowed)
    }

    fn put(&mut self, key: S::Key, record: Record<S>) -> bool {
        if self.records.len() >= self.max_keys && !self.records.contains_key(&key) {
            self.refused += 1;
            return false;
        }
        self.records.insert(key, record);
        true
    }
}

/// Counters of a responder's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponderStats {
    /// Data requests answered.
    pub data_requests: u64,
    /// Digest requests answered.
    pub digest_requests: u64,
    /// Repairs received.
    pub repairs: u64,
    /// Repairs that changed the stored record.
    pub repairs_applied: u64,
    /// Repairs the store refused (not acknowledged).
    pub repairs_refused: u64,
    /// Local writes merged.
    pub writes: u64,
    /// Answers (meant for a coordinator) received by a replica.
    pub unexpected: u64,
}

/// The replica-side machine: answers data and digest requests from its store and merges
/// repairs into it with the same [`Resolver`] the coordinators use.
#[derive(Debug)]
pub struct Responder<P, S: Schema, St, R> {
    store: St,
    resolver: R,
    clock: MonotonicNow,
    out: VecDeque<Output<P, Message<S>, Infallible>>,
    stats: ResponderStats,
}

impl<P, S, St, R> Responder<P, S, St, R>
where
    P: Clone + Ord + Hash + Debug,
    S: Schema,
    St: Store<S>,
    R: Resolver<S::Version>,
{
    /// A responder over `store`.
    pub fn new(store: St, resolver: R) -> Self {
        Self {
            store,
            resolver,
            clock: MonotonicNow::new(),
            out: VecDeque::new(),
            stats: ResponderStats::default(),
        }
    }

    /// Merges a local write (the write path of the application) into the stored record.
    /// Returns whether the record changed and the store accepted it.
    pub fn write(
        &mut self,
        key: S::Key,
        cell: S::Cell,
        version: S::Version,
        value: S::Value,
    ) -> bool {
        self.stats.writes += 1;
        self.merge(key, &Record::single(cell, version, value))
    }

    /// Merges `diff` into the record under `key`; true if it changed and was stored.
    fn merge(&mut self, key: S::Key, diff: &Record<S>) -> bool {
        let mut record = self
            .store
            .get(&key)
            .map(Cow::into_owned)
            .unwrap_or_default();
        if record.merge(diff, &self.resolver) {
            self.store.put(key, record)
        } else {
            false
        }
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &St {
        &self.store
    }

    /// The store, mutably.
    pub fn store_mut(&mut self) -> &mut St {
        &mut self.store
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &ResponderStats {
        &self.stats
    }

    fn on_repair(&mut self, from: P, id: u64, key: S::Key, diff: &Record<S>, ack: bool) {
        self.stats.repairs += 1;
        let mut record = self
            .store
            .get(&key)
            .map(Cow::into_owned)
            .unwrap_or_default();
        if record.merge(diff, &self.resolver) {
            if !self.store.put(key, record) {
                self.stats.repairs_refused += 1;
                return;
            }
            self.stats.repairs_applied += 1;
        }
        // Stored, or already held: safe to acknowledge.
        if ack {
            self.out.push_back(Output::Send {
                to: from,
                msg: Message::RepairAck { id },
            });
        }
    }
}

impl<P, S, St, R> Machine for Responder<P, S, St, R>
where
    P: Clone + Ord + Hash + Debug,
    S: Schema,
    St: Store<S>,
    R: Resolver<S::Version>,
{
    type Peer = P;
    type Message = Message<S>;
    type Event = Infallible;

    fn handle_message(&mut self, now: Instant, from: P, msg: Message<S>) {
        self.clock.advance(now);
        match msg {
            Message::ReadData { id, key } => {
                self.stats.data_requests += 1;
                let record = self.store.get(&key).map(Cow::into_owned);
                self.out.push_back(Output::Send {
                    to: from,
                    msg: Message::Data { id, record },
                });
            }
            Message::ReadDigest { id, key } => {
                self.stats.digest_requests += 1;
                let record = self.store.get(&key);
                let digest = digest(record.as_deref());
                self.out.push_back(Output::Send {
                    to: from,
                    msg: Message::Digest { id, digest },
                });
            }
            Message::Repair { id, key, diff, ack } => self.on_repair(from, id, key, &diff, ack),
            Message::Data { .. } | Message::Digest { .. } | Message::RepairAck { .. } => {
                self.stats.unexpected += 1;
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.clock.advance(now);
    }

    fn poll_output(&mut self) -> Option<Output<P, Message<S>, Infallible>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}
