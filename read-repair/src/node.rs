//! [`Node`]: one process holding both roles, a coordinator for the application's reads and
//! a responder over its own replica store, so that any node can coordinate a read that
//! includes itself (requests to itself never touch the network).

use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

use epidemic_core::{Machine, MonotonicNow, Output};

use crate::config::{Config, ReadOptions};
use crate::coordinator::{ConfigError, Coordinator};
use crate::error::ReadError;
use crate::event::Event;
use crate::message::{Message, ReadId};
use crate::record::{Resolver, Schema};
use crate::replica::{Responder, Store};

/// A coordinator and a responder behind one peer id, itself a [`Machine`]: requests go to
/// the responder, answers to the coordinator, and messages a node sends itself are handed
/// over in memory.
#[derive(Debug)]
pub struct Node<P, S: Schema, St, R> {
    me: P,
    coordinator: Coordinator<P, S, R>,
    responder: Responder<P, S, St, R>,
    clock: MonotonicNow,
    /// Messages delivered to itself.
    local: u64,
}

impl<P, S, St, R> Node<P, S, St, R>
where
    P: Clone + Ord + Hash + Debug,
    S: Schema,
    St: Store<S>,
    R: Resolver<S::Version> + Clone,
{
    /// A node `me` over `store`.
    ///
    /// # Errors
    /// [`ConfigError`] if `config` does not validate.
    pub fn new(me: P, config: Config, store: St, resolver: R) -> Result<Self, ConfigError> {
        Ok(Self {
            me,
            coordinator: Coordinator::new(config, resolver.clone())?,
            responder: Responder::new(store, resolver),
            clock: MonotonicNow::new(),
            local: 0,
        })
    }

    /// Starts a read ([`Coordinator::read`]).
    ///
    /// # Errors
    /// [`ReadError`]; nothing changes.
    pub fn read(
        &mut self,
        now: Instant,
        key: S::Key,
        replicas: &[P],
        options: ReadOptions,
    ) -> Result<ReadId, ReadError> {
        let now = self.clock.advance(now);
        self.coordinator.read(now, key, replicas, options)
    }

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> &P {
        &self.me
    }

    /// The coordinator role.
    #[must_use]
    pub fn coordinator(&self) -> &Coordinator<P, S, R> {
        &self.coordinator
    }

    /// The replica role.
    #[must_use]
    pub fn responder(&self) -> &Responder<P, S, St, R> {
        &self.responder
    }

    /// The replica role, mutably (local writes).
    pub fn responder_mut(&mut self) -> &mut Responder<P, S, St, R> {
        &mut self.responder
    }

    /// Messages this node delivered to itself in memory.
    #[must_use]
    pub fn local_messages(&self) -> u64 {
        self.local
    }

    fn route(&mut self, now: Instant, from: P, msg: Message<S>) {
        if msg.is_request() {
            self.responder.handle_message(now, from, msg);
        } else {
            self.coordinator.handle_message(now, from, msg);
        }
    }
}

impl<P, S, St, R> Machine for Node<P, S, St, R>
where
    P: Clone + Ord + Hash + Debug,
    S: Schema,
    St: Store<S>,
    R: Resolver<S::Version> + Clone,
{
    type Peer = P;
    type Message = Message<S>;
    type Event = Event<P, S>;

    fn handle_message(&mut self, now: Instant, from: P, msg: Message<S>) {
        let now = self.clock.advance(now);
        self.route(now, from, msg);
    }

    fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock.advance(now);
        self.coordinator.handle_timeout(now);
    }

    fn handle_link_down(&mut self, now: Instant, peer: P) {
        let now = self.clock.advance(now);
        self.coordinator.handle_link_down(now, peer);
    }

    fn poll_output(&mut self) -> Option<Output<P, Message<S>, Event<P, S>>> {
        loop {
            let out = match self.coordinator.poll_output() {
                Some(o) => o,
                None => self.responder.poll_output()?.map_event(|e| match e {}),
            };
            match out {
                Output::Send { to, msg } if to == self.me => {
                    self.local += 1;
                    // Machines get `now` with every input; a node that sends itself
                    // something has seen at least one input.
                    let now = self.clock.last().expect("a node sends only after an input");
                    let me = self.me.clone();
                    self.route(now, me, msg);
                }
                other => return Some(other),
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.coordinator.poll_timeout()
    }
}
