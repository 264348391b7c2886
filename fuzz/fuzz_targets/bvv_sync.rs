//! Arbitrary sequences of writes, deletes, syncs with lost, duplicated and reordered
//! messages, restarts, nodes that lose their disk and come back under a new id, and
//! hostile bytes on three `epidemic-bvv` replicas. After every step: no node claims a dot
//! of its own it never generated; without replacements, garbage collection never dropped
//! a dot some peer still misses and no full transfer was ever needed. After a lossless
//! settle (when no hostile message was accepted; retired ids' lost dots declared lost):
//! identical stores and clocks, empty logs, contexts stripped.

#![no_main]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use epidemic_bvv::scenario::{SimNode, rng};
use epidemic_bvv::{Bvv, Config, Context, MemoryStore, Message, NodeClock};
use epidemic_core::codec;
use epidemic_core::{Machine, Output};
use libfuzzer_sys::fuzz_target;

type Node = SimNode;
type Wire = VecDeque<(u64, u64, Message)>;

#[derive(Debug, Arbitrary)]
enum Op {
    Write {
        node: u8,
        key: u8,
        read: bool,
    },
    Delete {
        node: u8,
        key: u8,
    },
    Sync {
        from: u8,
        to: u8,
    },
    /// Deliver the in-flight message at `index` (`dup`: keep a copy in flight).
    Deliver {
        index: u8,
        dup: bool,
    },
    Drop {
        index: u8,
    },
    Timer {
        node: u8,
        millis: u16,
    },
    Restart {
        node: u8,
    },
    /// The node loses its disk and comes back under a new id.
    Replace {
        node: u8,
    },
    Hostile {
        to: u8,
        bytes: Vec<u8>,
    },
}

struct Cluster {
    nodes: Vec<Node>,
    /// The id in each slot.
    ids: [u64; 3],
    next_id: u64,
    retired: Vec<u64>,
    /// Writes made by each slot's current id.
    writes: [u64; 3],
    wire: Wire,
    cfg: Config,
}

impl Cluster {
    fn slot(&self, id: u64) -> Option<usize> {
        self.ids.iter().position(|&i| i == id)
    }

    fn pump(&mut self) {
        for n in &mut self.nodes {
            while let Some(o) = n.poll_output() {
                if let Output::Send { to, msg } = o
                    && self.wire.len() < 4096
                {
                    self.wire.push_back((n.id(), to, msg));
                }
            }
        }
    }

    fn deliver(&mut self, now: Instant, from: u64, to: u64, msg: Message) {
        // Messages to a retired id go nowhere.
        if let Some(s) = self.slot(to) {
            self.nodes[s].handle_message(now, from, msg);
        }
    }

    fn replace(&mut self, now: Instant, i: usize) {
        let (old, new) = (self.ids[i], self.next_id);
        self.next_id += 1;
        for j in 0..3 {
            if j != i {
                self.nodes[j]
                    .replace_peer(now, old, new)
                    .expect("old is a member");
            }
        }
        let mut members: Vec<u64> = self.ids.to_vec();
        members[i] = new;
        self.nodes[i] = Bvv::new(
            now,
            new,
            members,
            self.cfg.clone(),
            MemoryStore::new(),
            rng(new),
        )
        .expect("valid config");
        self.ids[i] = new;
        self.writes[i] = 0;
        self.retired.push(old);
    }

    /// Lossless, in order, every pair `rounds` times, each exchange pumped until quiet
    /// (so a full transfer's further pages follow at once).
    fn settle(&mut self, now: Instant, rounds: usize) {
        self.wire.clear();
        for _ in 0..rounds {
            for a in 0..3 {
                for b in 0..3 {
                    if a == b {
                        continue;
                    }
                    let peer = self.ids[b];
                    self.nodes[a].sync_with(now, peer).expect("a member");
                    self.pump();
                    while let Some((from, to, msg)) = self.wire.pop_front() {
                        self.deliver(now, from, to, msg);
                        self.pump();
                    }
                }
            }
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    #[allow(clippy::disallowed_methods)] // the fuzz target's epoch
    let mut now = Instant::now();
    let cfg = Config {
        sync_grace: Duration::ZERO,
        max_message_bytes: 2048,
        max_value_bytes: 64,
        // Small pages: truncated replies are the common case, not the exception.
        max_keys_per_sync: 3,
        ..Config::default()
    };
    let nodes = (0..3)
        .map(|id| Bvv::new(now, id, 0..3, cfg.clone(), MemoryStore::new(), rng(id)).expect("valid"))
        .collect();
    let mut c = Cluster {
        nodes,
        ids: [0, 1, 2],
        next_id: 3,
        retired: Vec::new(),
        writes: [0; 3],
        wire: VecDeque::new(),
        cfg,
    };
    let mut tainted = false;
    for op in ops.iter().take(256) {
        match *op {
            Op::Write { node, key, read } => {
                let i = usize::from(node % 3);
                let key = Bytes::from(vec![b'k', key % 8]);
                let ctx = if read {
                    c.nodes[i].get(&key).context
                } else {
                    Context::new()
                };
                if c.nodes[i]
                    .put(now, key, Bytes::from_static(b"v"), &ctx)
                    .is_ok()
                {
                    c.writes[i] += 1;
                }
            }
            Op::Delete { node, key } => {
                let i = usize::from(node % 3);
                let key = Bytes::from(vec![b'k', key % 8]);
                let ctx = c.nodes[i].get(&key).context;
                if c.nodes[i].delete(now, key, &ctx).is_ok() {
                    c.writes[i] += 1;
                }
            }
            Op::Sync { from, to } => {
                let (a, b) = (usize::from(from % 3), usize::from(to % 3));
                let peer = c.ids[b];
                let _ = c.nodes[a].sync_with(now, peer);
            }
            Op::Deliver { index, dup } => {
                if !c.wire.is_empty() {
                    let i = usize::from(index) % c.wire.len();
                    let (from, to, msg) = if dup {
                        c.wire[i].clone()
                    } else {
                        c.wire.remove(i).expect("in range")
                    };
                    c.deliver(now, from, to, msg);
                }
            }
            Op::Drop { index } => {
                if !c.wire.is_empty() {
                    let i = usize::from(index) % c.wire.len();
                    c.wire.remove(i);
                }
            }
            Op::Timer { node, millis } => {
                now += Duration::from_millis(u64::from(millis));
                let n = &mut c.nodes[usize::from(node % 3)];
                if n.poll_timeout().is_some_and(|t| t <= now) {
                    n.handle_timeout(now);
                }
            }
            Op::Restart { node } => {
                let i = usize::from(node % 3);
                c.nodes[i] = c.nodes[i].restart(rng(u64::from(node)));
            }
            Op::Replace { node } => {
                if c.retired.len() < 4 {
                    c.replace(now, usize::from(node % 3));
                }
            }
            Op::Hostile { to, ref bytes } => {
                if let Ok(msg) = codec::decode::<Message>(bytes) {
                    let to = usize::from(to % 3);
                    let from = c.ids[(to + 1) % 3];
                    tainted = true;
                    c.nodes[to].handle_message(now, from, msg);
                }
            }
        }
        c.pump();
        for (i, n) in c.nodes.iter().enumerate() {
            let me = c.ids[i];
            assert_eq!(
                n.clock().base(me),
                c.writes[i],
                "own dots are exactly the writes"
            );
            assert!(n.clock().entry(me).is_none_or(|e| e.bits().is_empty()));
        }
        if !tainted && c.retired.is_empty() {
            // No node lost its state, so nobody ever needs a full transfer (a stale
            // duplicated request is recognised and ignored).
            assert!(c.nodes.iter().all(|n| n.stats().full_transfers_sent == 0));
            for x in &c.nodes {
                for dot in x.clock().missing_dots(&NodeClock::new()) {
                    if x.log().get(dot).is_none() {
                        assert!(
                            c.nodes.iter().all(|y| y.clock().contains(dot)),
                            "GC dropped {dot:?}"
                        );
                    }
                }
            }
        }
    }
    if tainted {
        return;
    }
    c.settle(now, 6);
    // Whatever a retired node wrote that no survivor has is gone with its disk.
    for n in &mut c.nodes {
        for &old in &c.retired {
            n.close_retired(now, old).expect("retired");
        }
    }
    c.settle(now, 6);
    for n in &c.nodes[1..] {
        assert_eq!(n.store(), c.nodes[0].store());
        assert_eq!(n.clock(), c.nodes[0].clock());
    }
    for n in &c.nodes {
        assert!(n.log().is_empty(), "log {:?}", n.log());
        assert!(n.store().iter().all(|(_, d)| d.context().is_empty()));
    }
});
