//! One HyParView node under arbitrary inputs from a small set of peers: any message with any
//! TTL, list or data, timeouts at any time (also backwards), lost links, joins and leaves.
//! Nothing panics, and after every input the views stay within their bounds, disjoint and
//! free of ourselves, outstanding requests stay bounded, and one input never produces an
//! unbounded burst of outputs.

#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use epidemic_core::Machine;
use epidemic_hyparview::{Config, HyParView, Message, PeerInfo, Priority};
use epidemic_sim::flood::{self, Flood};
use epidemic_sim::{Sim, SimConfig};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    seed: u64,
    small: bool,
    ops: Vec<Op>,
}

#[derive(Debug, Arbitrary)]
enum Op {
    Msg(u8, Msg),
    Timeout(u32),
    Back(u16),
    LinkDown(u8),
    Join(u8),
    Leave,
}

#[derive(Debug, Arbitrary)]
enum Msg {
    Join(u16),
    ForwardJoin(u8, u8),
    Neighbor(bool, u16),
    Reply(bool),
    Disconnect(bool),
    Shuffle(u8, Vec<u8>, u8),
    ShuffleReply(Vec<u8>),
}

fn data(len: u16) -> Bytes {
    Bytes::from(vec![7; usize::from(len % 1024)])
}

fn peers(ids: &[u8]) -> Vec<PeerInfo<u64>> {
    ids.iter()
        .map(|&p| PeerInfo::new(u64::from(p % 64)))
        .collect()
}

fn message(m: &Msg) -> Message<u64> {
    match *m {
        Msg::Join(len) => Message::Join { data: data(len) },
        Msg::ForwardJoin(p, ttl) => Message::ForwardJoin {
            peer: PeerInfo::new(u64::from(p % 64)),
            ttl,
        },
        Msg::Neighbor(high, len) => Message::Neighbor {
            priority: if high { Priority::High } else { Priority::Low },
            data: data(len),
        },
        Msg::Reply(accepted) => Message::NeighborReply {
            accepted,
            data: Bytes::new(),
        },
        Msg::Disconnect(alive) => Message::Disconnect { alive },
        Msg::Shuffle(origin, ref ids, ttl) => Message::Shuffle {
            origin: PeerInfo::new(u64::from(origin % 64)),
            peers: peers(ids),
            ttl,
        },
        Msg::ShuffleReply(ref ids) => Message::ShuffleReply { peers: peers(ids) },
    }
}

fuzz_target!(|input: Input| {
    // The simulator forks a seeded ChaCha for us (the fuzz crate has no RNG of its own).
    let rng = Sim::<Flood>::new(SimConfig::with_seed(input.seed), flood::wire()).fork_rng();
    let config = if input.small {
        Config {
            active_capacity: 2,
            passive_capacity: 3,
            max_pending: 2,
            reconnect_capacity: 1,
            max_contacts: 2,
            ..Config::default()
        }
    } else {
        Config::default()
    };
    let bounds = config.clone();
    let mut node = HyParView::new(0u64, Bytes::new(), config, rng).expect("valid config");
    #[allow(clippy::disallowed_methods)] // a fuzz target may read the clock once
    let start = Instant::now();
    let mut now = start;
    for op in input.ops.iter().take(512) {
        match op {
            Op::Msg(from, m) => node.handle_message(now, u64::from(from % 64), message(m)),
            Op::Timeout(ms) => {
                now += Duration::from_millis(u64::from(*ms % 600_000));
                node.handle_timeout(now);
            }
            Op::Back(ms) => node.handle_timeout(now - Duration::from_millis(u64::from(*ms))),
            Op::LinkDown(p) => node.handle_link_down(now, u64::from(p % 64)),
            Op::Join(p) => {
                let _ = node.join(now, u64::from(p % 64));
            }
            Op::Leave => node.leave(now),
        }
        let mut outputs = 0;
        while node.poll_output().is_some() {
            outputs += 1;
        }
        assert!(outputs <= 64, "{outputs} outputs for one input");
        let active: Vec<u64> = node.active_view().copied().collect();
        let passive: Vec<u64> = node.passive_view().copied().collect();
        assert!(active.len() <= bounds.active_capacity);
        assert!(passive.len() <= bounds.passive_capacity);
        assert!(node.pending_requests().count() <= bounds.max_pending);
        assert!(node.contacts().len() <= bounds.max_contacts);
        assert!(node.lost_neighbors().count() <= bounds.reconnect_capacity);
        assert!(!active.contains(&0) && !passive.contains(&0));
        assert!(active.iter().all(|p| !passive.contains(p)));
        if let Some(t) = node.poll_timeout() {
            assert!(t >= start);
        }
    }
});
