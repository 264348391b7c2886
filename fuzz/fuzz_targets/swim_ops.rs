//! A small SWIM cluster under arbitrary operation sequences: messages delivered, dropped,
//! duplicated or replaced by arbitrary bytes, time jumps, joins, leaves, metadata changes,
//! user broadcasts and restarts. Nothing panics, every bound holds, every datagram fits
//! the packet size, a member never lists itself, and the live count matches the table.

#![no_main]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use epidemic_core::codec;
use epidemic_core::{Machine, Output};
use epidemic_swim::scenario::{Node, seeded_node};
use epidemic_swim::{Config, Message};
use libfuzzer_sys::fuzz_target;

const NODES: usize = 4;

#[derive(Debug, Arbitrary)]
enum Op {
    /// Deliver the next datagram in flight.
    Deliver,
    /// Drop the next datagram in flight.
    Drop,
    /// Deliver the next datagram twice.
    Duplicate,
    /// Deliver arbitrary bytes (if they decode) to a node from any sender.
    Inject(u8, u8, Vec<u8>),
    /// Advance time and wake every node whose deadline passed.
    Advance(u16),
    Join(u8, u8),
    Leave(u8),
    Meta(u8, u8),
    Broadcast(u8, Option<u8>, u8),
    Restart(u8),
}

fn config() -> Config {
    Config {
        max_members: 8,
        max_queue: 8,
        max_relays: 2,
        max_seen_broadcasts: 4,
        max_packet_size: 256,
        max_meta_len: 32,
        ..Config::local()
    }
}

fn check(n: &Node, sent: &[(u64, u64, Message<u64>)]) {
    let c = n.config();
    assert!(n.num_members() <= c.max_members);
    assert!(n.queued_updates() <= c.max_queue);
    assert!(n.member(n.me()).is_none());
    assert_eq!(
        n.members().filter(|m| m.state.is_live()).count(),
        n.num_live()
    );
    for (_, _, m) in sent {
        assert!(codec::encoded_len(m) <= c.max_packet_size, "{m:?}");
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let cfg = config();
    let mut nodes: Vec<Node> = (0..NODES as u64).map(|i| seeded_node(i, &cfg, i)).collect();
    #[allow(clippy::disallowed_methods)] // the fuzz driver is a driver: it may read the clock
    let t0 = Instant::now();
    let mut now = t0;
    nodes[0].start(now);
    let mut wire: VecDeque<(u64, u64, Message<u64>)> = VecDeque::new();
    for op in ops.into_iter().take(512) {
        match op {
            Op::Deliver | Op::Duplicate => {
                if let Some((from, to, msg)) = wire.pop_front() {
                    let times = if matches!(op, Op::Duplicate) { 2 } else { 1 };
                    for _ in 0..times {
                        nodes[to as usize % NODES].handle_message(now, from, msg.clone());
                    }
                }
            }
            Op::Drop => {
                wire.pop_front();
            }
            Op::Inject(from, to, bytes) => {
                if let Ok(msg) = codec::decode::<Message<u64>>(&bytes) {
                    nodes[usize::from(to) % NODES].handle_message(now, u64::from(from % 6), msg);
                }
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms) * 10);
                for n in &mut nodes {
                    if n.poll_timeout().is_some_and(|t| t <= now) {
                        n.handle_timeout(now);
                    }
                }
            }
            Op::Join(a, seed) => {
                let _ = nodes[usize::from(a) % NODES].join(now, [u64::from(seed) % NODES as u64]);
            }
            Op::Leave(a) => nodes[usize::from(a) % NODES].leave(now),
            Op::Meta(a, len) => {
                let _ = nodes[usize::from(a) % NODES]
                    .set_meta(now, Bytes::from(vec![7; usize::from(len)]));
            }
            Op::Broadcast(a, key, len) => {
                let _ = nodes[usize::from(a) % NODES].broadcast(
                    now,
                    key.map(u64::from),
                    Bytes::from(vec![1; usize::from(len)]),
                );
            }
            Op::Restart(a) => {
                let i = usize::from(a) % NODES;
                nodes[i] = seeded_node(i as u64, &cfg, u64::from(a) + 100);
            }
        }
        let mut sent = Vec::new();
        for n in &mut nodes {
            let me = *n.me();
            while let Some(out) = n.poll_output() {
                if let Output::Send { to, msg } = out {
                    sent.push((me, to, msg));
                }
            }
        }
        for n in &nodes {
            check(n, &sent);
        }
        // Bounded in flight, like a socket buffer.
        for s in sent {
            if wire.len() < 256 {
                wire.push_back(s);
            }
        }
    }
});
