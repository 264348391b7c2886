//! Arbitrary sequences of writes, deletes, syncs with lost, duplicated and reordered
//! messages, restarts and hostile bytes on three `epidemic-bvv` replicas. After every
//! step: no node claims a dot of its own it never generated, and garbage collection never
//! dropped a dot some peer still misses. After a lossless settle (when no hostile message
//! was accepted): identical stores, empty logs, contexts stripped.

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
    Hostile {
        to: u8,
        bytes: Vec<u8>,
    },
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
    let mut nodes: Vec<Node> = (0..3)
        .map(|id| {
            Bvv::new(now, id, 0..3, cfg.clone(), MemoryStore::new(), rng(id)).expect("valid config")
        })
        .collect();
    let mut wire: VecDeque<(u64, u64, Message)> = VecDeque::new();
    let mut writes = [0u64; 3];
    let mut tainted = false;
    let pump = |nodes: &mut Vec<Node>, wire: &mut VecDeque<(u64, u64, Message)>| {
        for n in nodes.iter_mut() {
            while let Some(o) = n.poll_output() {
                if let Output::Send { to, msg } = o {
                    if wire.len() < 4096 {
                        wire.push_back((n.id(), to, msg));
                    }
                }
            }
        }
    };
    for op in ops.iter().take(256) {
        match *op {
            Op::Write { node, key, read } => {
                let i = usize::from(node % 3);
                let key = Bytes::from(vec![b'k', key % 8]);
                let ctx = if read {
                    nodes[i].get(&key).context
                } else {
                    Context::new()
                };
                if nodes[i]
                    .put(now, key, Bytes::from_static(b"v"), &ctx)
                    .is_ok()
                {
                    writes[i] += 1;
                }
            }
            Op::Delete { node, key } => {
                let i = usize::from(node % 3);
                let key = Bytes::from(vec![b'k', key % 8]);
                let ctx = nodes[i].get(&key).context;
                if nodes[i].delete(now, key, &ctx).is_ok() {
                    writes[i] += 1;
                }
            }
            Op::Sync { from, to } => {
                let (a, b) = (u64::from(from % 3), u64::from(to % 3));
                let _ = nodes[a as usize].sync_with(now, b);
            }
            Op::Deliver { index, dup } => {
                if !wire.is_empty() {
                    let i = usize::from(index) % wire.len();
                    let (from, to, msg) = if dup {
                        wire[i].clone()
                    } else {
                        wire.remove(i).expect("in range")
                    };
                    nodes[to as usize].handle_message(now, from, msg);
                }
            }
            Op::Drop { index } => {
                if !wire.is_empty() {
                    let i = usize::from(index) % wire.len();
                    wire.remove(i);
                }
            }
            Op::Timer { node, millis } => {
                now += Duration::from_millis(u64::from(millis));
                let n = &mut nodes[usize::from(node % 3)];
                if n.poll_timeout().is_some_and(|t| t <= now) {
                    n.handle_timeout(now);
                }
            }
            Op::Restart { node } => {
                let i = usize::from(node % 3);
                nodes[i] = nodes[i].restart(rng(u64::from(node)));
            }
            Op::Hostile { to, ref bytes } => {
                if let Ok(msg) = codec::decode::<Message>(bytes) {
                    let to = usize::from(to % 3);
                    let from = ((to + 1) % 3) as u64;
                    tainted = true;
                    nodes[to].handle_message(now, from, msg);
                }
            }
        }
        pump(&mut nodes, &mut wire);
        for (i, n) in nodes.iter().enumerate() {
            assert_eq!(
                n.clock().base(i as u64),
                writes[i],
                "own dots are exactly the writes"
            );
            assert!(
                n.clock()
                    .entry(i as u64)
                    .is_none_or(|e| e.bits().is_empty())
            );
        }
        if !tainted {
            // No node lost its state, so nobody ever needs a full transfer (a stale
            // duplicated request is recognised and ignored).
            assert!(nodes.iter().all(|n| n.stats().full_transfers_sent == 0));
            for x in &nodes {
                for dot in x.clock().missing_dots(&NodeClock::new()) {
                    if x.log().get(dot).is_none() {
                        assert!(
                            nodes.iter().all(|y| y.clock().contains(dot)),
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
    // Settle: lossless, in order, every pair eight times (pages of three keys).
    wire.clear();
    for _ in 0..8 {
        for a in 0..3u64 {
            for b in 0..3u64 {
                if a == b {
                    continue;
                }
                nodes[a as usize].sync_with(now, b).expect("a member");
                pump(&mut nodes, &mut wire);
                while let Some((from, to, msg)) = wire.pop_front() {
                    nodes[to as usize].handle_message(now, from, msg);
                    pump(&mut nodes, &mut wire);
                }
            }
        }
    }
    for n in &nodes[1..] {
        assert_eq!(n.store(), nodes[0].store());
        assert_eq!(n.clock(), nodes[0].clock());
    }
    for n in &nodes {
        assert!(n.log().is_empty());
        assert!(n.store().iter().all(|(_, d)| d.context().is_empty()));
    }
});
