//! A hand-driven cluster for unit tests: exact outputs, manual delivery, no simulator.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use epidemic_core::{Machine, Output};
use epidemic_hinted_handoff::{Config, Event, MemLog, MemStore, Message, Node, NodeId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub type N = Node<MemStore, ChaCha8Rng>;
pub type Out = Output<NodeId, Message, Event>;

pub fn t0() -> Instant {
    #[allow(clippy::disallowed_methods)] // tests may read the clock once for a base instant
    let t = Instant::now();
    t
}

pub fn node(me: NodeId, config: Config, now: Instant) -> N {
    Node::new(
        me,
        config,
        MemStore::default(),
        ChaCha8Rng::seed_from_u64(me),
        now,
        0,
    )
    .unwrap()
}

pub fn drain(n: &mut N) -> Vec<Out> {
    std::iter::from_fn(|| n.poll_output()).collect()
}

/// Nodes, a wire, the nodes' durable logs, and who is down.
pub struct Cluster {
    pub nodes: BTreeMap<NodeId, N>,
    pub logs: BTreeMap<NodeId, MemLog>,
    pub down: BTreeSet<NodeId>,
    pub wire: VecDeque<(NodeId, NodeId, Message)>,
    pub events: Vec<(NodeId, Event)>,
    pub now: Instant,
    pub dropped: usize,
}

impl Cluster {
    pub fn new(n: u64, config: &Config) -> Self {
        let now = t0();
        Self {
            nodes: (0..n).map(|i| (i, node(i, config.clone(), now))).collect(),
            logs: (0..n).map(|i| (i, MemLog::new())).collect(),
            down: BTreeSet::new(),
            wire: VecDeque::new(),
            events: Vec::new(),
            now,
            dropped: 0,
        }
    }

    pub fn node(&mut self, id: NodeId) -> &mut N {
        self.nodes.get_mut(&id).unwrap()
    }

    /// Drains every node (persisting records into its log) and delivers until quiet;
    /// messages to down nodes are lost.
    pub fn settle(&mut self) {
        loop {
            for (id, n) in &mut self.nodes {
                if self.down.contains(id) {
                    continue;
                }
                while let Some(out) = n.poll_output() {
                    match out {
                        Output::Send { to, msg } => self.wire.push_back((*id, to, msg)),
                        Output::Event(Event::Persist(r)) => {
                            self.logs.get_mut(id).unwrap().apply(&r);
                        }
                        Output::Event(e) => self.events.push((*id, e)),
                        Output::Disconnect(_) => {}
                    }
                }
            }
            let Some((from, to, msg)) = self.wire.pop_front() else {
                break;
            };
            if self.down.contains(&to) {
                self.dropped += 1;
                continue;
            }
            let now = self.now;
            self.node(to).handle_message(now, from, msg);
        }
    }

    /// Advances time and fires every due timer, settling after each.
    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            let next = self
                .nodes
                .iter()
                .filter(|(id, _)| !self.down.contains(id))
                .filter_map(|(id, n)| n.poll_timeout().map(|t| (t, *id)))
                .filter(|(t, _)| *t <= until)
                .min();
            let Some((t, id)) = next else { break };
            self.now = self.now.max(t);
            let now = self.now;
            self.node(id).handle_timeout(now);
            self.settle();
        }
        self.now = until;
    }

    /// Every live node hears that `peer` is down.
    pub fn report_down(&mut self, peer: NodeId) {
        let now = self.now;
        for (id, n) in &mut self.nodes {
            if *id != peer {
                n.peer_down(now, peer);
            }
        }
        self.settle();
    }

    pub fn report_up(&mut self, peer: NodeId) {
        let now = self.now;
        for (id, n) in &mut self.nodes {
            if *id != peer && !self.down.contains(id) {
                n.peer_up(now, peer);
            }
        }
        self.settle();
    }

    pub fn take_events(&mut self) -> Vec<(NodeId, Event)> {
        std::mem::take(&mut self.events)
    }
}
