//! The network between nodes: per-link fault models, partitions and, on connection
//! transports, which connections are open. Pure state plus the ChaCha draws of the run; the
//! scheduling of what it decides is the simulator's.

use std::collections::BTreeSet;

use hashbrown::{HashMap, HashSet};
use rand::{Rng, RngExt};
use rand_chacha::ChaCha8Rng;

use crate::config::{LinkConfig, Loss};
use crate::metrics::DropReason;

/// Dense index of a node in the simulator.
pub(crate) type NodeId = u32;

/// What the network does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Not delivered.
    Drop(DropReason),
    /// Delivered after `delay` ns, and a second time after `duplicate` ns if set.
    Deliver { delay: u64, duplicate: Option<u64> },
}

/// Links, partitions and connections.
#[derive(Debug)]
pub(crate) struct Network {
    default: LinkConfig,
    overrides: HashMap<(NodeId, NodeId), LinkConfig>,
    /// Gilbert–Elliott links currently in the bad state.
    bad: HashSet<(NodeId, NodeId)>,
    /// Partition label of each node; messages cross only between equal labels.
    group: Vec<u32>,
    /// Extra delay, in ns, before each node sees a message sent to it (a slow node).
    slow: Vec<u64>,
    /// Open connections of each node (connection transport).
    conns: Vec<BTreeSet<NodeId>>,
    /// Time the last message on each directed connection is delivered (FIFO).
    fifo: HashMap<(NodeId, NodeId), u64>,
}

impl Network {
    pub(crate) fn new(default: LinkConfig) -> Self {
        Self {
            default,
            overrides: HashMap::new(),
            bad: HashSet::new(),
            group: Vec::new(),
            slow: Vec::new(),
            conns: Vec::new(),
            fifo: HashMap::new(),
        }
    }

    pub(crate) fn add_node(&mut self) {
        self.group.push(0);
        self.slow.push(0);
        self.conns.push(BTreeSet::new());
    }

    pub(crate) fn link(&self, from: NodeId, to: NodeId) -> &LinkConfig {
        if self.overrides.is_empty() {
            return &self.default;
        }
        self.overrides.get(&(from, to)).unwrap_or(&self.default)
    }

    pub(crate) fn set_link(&mut self, from: NodeId, to: NodeId, link: Option<LinkConfig>) {
        match link {
            Some(l) => {
                self.overrides.insert((from, to), l);
            }
            None => {
                self.overrides.remove(&(from, to));
            }
        }
        self.bad.remove(&(from, to));
    }

    pub(crate) fn set_default_link(&mut self, link: LinkConfig) {
        self.default = link;
    }

    /// Makes `node` see every message sent to it `extra` ns later than the link would.
    pub(crate) fn set_slow(&mut self, node: NodeId, extra: u64) {
        self.slow[node as usize] = extra;
    }

    pub(crate) fn same_side(&self, a: NodeId, b: NodeId) -> bool {
        self.group[a as usize] == self.group[b as usize]
    }

    /// Splits the nodes: each set gets its own side; nodes in no set share one more side.
    pub(crate) fn partition(&mut self, sets: &[Vec<NodeId>]) {
        self.group.fill(0);
        for (label, set) in (1u32..).zip(sets) {
            for &n in set {
                self.group[n as usize] = label;
            }
        }
    }

    pub(crate) fn heal(&mut self) {
        self.group.fill(0);
    }

    /// Decides the fate of one datagram from `from` to `to`.
    pub(crate) fn datagram(&mut self, rng: &mut ChaCha8Rng, from: NodeId, to: NodeId) -> Fate {
        if !self.same_side(from, to) {
            return Fate::Drop(DropReason::Partition);
        }
        let link = self.link(from, to);
        let (loss, duplicate, latency, jitter) = (
            link.loss,
            link.duplicate,
            nanos(link.latency),
            nanos(link.jitter),
        );
        let lost = match loss {
            Loss::None => false,
            Loss::Uniform(p) => p > 0.0 && rng.random::<f64>() < p,
            Loss::Bursty(ge) => {
                let key = (from, to);
                let was_bad = self.bad.contains(&key);
                let flip = if was_bad {
                    ge.p_bad_to_good
                } else {
                    ge.p_good_to_bad
                };
                let bad = was_bad ^ (rng.random::<f64>() < flip);
                if bad != was_bad {
                    if bad {
                        self.bad.insert(key);
                    } else {
                        self.bad.remove(&key);
                    }
                }
                let p = if bad { ge.loss_in_bad } else { ge.loss_in_good };
                p > 0.0 && rng.random::<f64>() < p
            }
        };
        if lost {
            return Fate::Drop(DropReason::Loss);
        }
        // Saturating throughout: a `Duration::MAX` latency means "never", not a panic.
        let base = latency.saturating_add(self.slow[to as usize]);
        let delay = base.saturating_add(draw_jitter(rng, jitter));
        let duplicate = (duplicate > 0.0 && rng.random::<f64>() < duplicate)
            .then(|| base.saturating_add(draw_jitter(rng, jitter)));
        Fate::Deliver { delay, duplicate }
    }

    /// Decides the delivery time of one message on a live connection sent at `now`: the
    /// link's delay, but never before the previous message on the same directed link.
    pub(crate) fn stream(
        &mut self,
        rng: &mut ChaCha8Rng,
        now: u64,
        from: NodeId,
        to: NodeId,
    ) -> u64 {
        let link = self.link(from, to);
        let at = now
            .saturating_add(nanos(link.latency))
            .saturating_add(self.slow[to as usize])
            .saturating_add(draw_jitter(rng, nanos(link.jitter)));
        let last = self.fifo.entry((from, to)).or_insert(0);
        *last = (*last).max(at);
        *last
    }

    /// When a close sent at `now` on `from → to` reaches `to`: one latency later, and never
    /// before the data still in flight on that stream.
    pub(crate) fn close_time(&self, now: u64, from: NodeId, to: NodeId) -> u64 {
        let at = now.saturating_add(nanos(self.link(from, to).latency));
        self.fifo.get(&(from, to)).map_or(at, |&last| at.max(last))
    }

    /// Whether `from` can currently reach `to` over a connection.
    pub(crate) fn path_open(&self, from: NodeId, to: NodeId) -> bool {
        self.same_side(from, to) && !self.link(from, to).is_down()
    }

    pub(crate) fn connect(&mut self, a: NodeId, b: NodeId) {
        self.conns[a as usize].insert(b);
        self.conns[b as usize].insert(a);
    }

    /// Closes the connection `a`–`b`; returns whether it was open.
    pub(crate) fn disconnect(&mut self, a: NodeId, b: NodeId) -> bool {
        let was = self.conns[a as usize].remove(&b);
        self.conns[b as usize].remove(&a);
        was
    }

    /// Closes every connection of `node`, returning its peers in order.
    pub(crate) fn drop_connections(&mut self, node: NodeId) -> Vec<NodeId> {
        let peers = std::mem::take(&mut self.conns[node as usize]);
        for &p in &peers {
            self.conns[p as usize].remove(&node);
        }
        peers.into_iter().collect()
    }

    /// Closes every connection that crosses a partition, returning the pairs in order.
    pub(crate) fn drop_cut_connections(&mut self) -> Vec<(NodeId, NodeId)> {
        let mut cut = Vec::new();
        for (a, peers) in (0u32..).zip(&self.conns) {
            cut.extend(
                peers
                    .iter()
                    .filter(|&&b| a < b && !self.same_side(a, b))
                    .map(|&b| (a, b)),
            );
        }
        for &(a, b) in &cut {
            self.disconnect(a, b);
        }
        cut
    }
}

fn draw_jitter(rng: &mut ChaCha8Rng, jitter: u64) -> u64 {
    if jitter == 0 {
        0
    } else {
        // Lemire's multiply-shift: uniform enough for delays, one draw, no division.
        let r = rng.next_u64();
        u64::try_from((u128::from(r) * (u128::from(jitter) + 1)) >> 64).unwrap_or(jitter)
    }
}

/// A duration in virtual nanoseconds, saturating.
pub(crate) fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
