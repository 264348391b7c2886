//! A small cluster of HyParView + Plumtree composites on the simulator under arbitrary
//! operations: broadcasts of any size and scope from any node, time passing, crashes, lost
//! links, and hostile Plumtree messages (forged payloads, IHAVE floods, GRAFTs for unknown
//! ids, PRUNEs) injected at any node as if from any peer. Nothing panics; after every
//! operation every node keeps its neighbours, caches, missing-message timers within their
//! bounds and its eager and lazy sets disjoint; no node ever delivers a broadcast twice.

#![no_main]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::Bytes;
use epidemic_core::Machine;
use epidemic_plumtree::scenario::{self, Scenario};
use epidemic_plumtree::{
    Config, Direct, GossipEvent, Graft, IHave, Message, MessageId, Payload, Scope,
};
use libfuzzer_sys::fuzz_target;

const NODES: u8 = 6;

#[derive(Debug, Arbitrary)]
struct Input {
    seed: u8,
    ops: Vec<Op>,
}

#[derive(Debug, Arbitrary)]
enum Op {
    Broadcast(u8, u16, bool),
    Run(u16),
    Crash(u8),
    LinkDown(u8, u8),
    Hostile(u8, u8, Hostile),
}

#[derive(Debug, Arbitrary)]
enum Hostile {
    Gossip(u8, u16, u8),
    IHave(Vec<(u8, u16)>),
    Graft(Option<u8>, u16),
    Prune,
    Direct(u8, u8),
}

fn id(b: u8) -> MessageId {
    MessageId([b; 16])
}

fn message(h: &Hostile) -> Message {
    match h {
        Hostile::Gossip(i, round, len) => Message::Gossip(Payload {
            id: id(*i),
            round: *round,
            payload: Bytes::from(vec![1; usize::from(*len)]),
        }),
        Hostile::IHave(entries) => Message::IHave(
            entries
                .iter()
                .take(2048)
                .map(|&(i, round)| IHave { id: id(i), round })
                .collect(),
        ),
        Hostile::Graft(i, round) => Message::Graft(Graft {
            id: i.map(id),
            round: *round,
        }),
        Hostile::Prune => Message::Prune,
        Hostile::Direct(i, len) => Message::Direct(Direct {
            id: id(*i),
            payload: Bytes::from(vec![2; usize::from(*len)]),
        }),
    }
}

fuzz_target!(|input: Input| {
    let tree = Config {
        max_cached_payloads: 4,
        max_missing: 4,
        max_announcers: 2,
        max_ihave_queue: 8,
        max_ihave_entries: 16,
        max_neighbors: 4,
        initial_graft_credit: 2,
        max_graft_credit: 8,
        ..Config::default()
    };
    let bounds = tree.clone();
    let s = Scenario {
        nodes: u32::from(NODES),
        tree,
        rounds: 1,
        seeds: 1,
        seed: u64::from(input.seed),
        ..Scenario::default()
    };
    let mut sim = scenario::build(&s, false).expect("a valid scenario");
    sim.run_until(s.settled()).expect("runs");
    // Every delivery of a real broadcast, to check "at most once".
    let delivered: Rc<RefCell<Vec<(u64, MessageId)>>> = Rc::default();
    let d = Rc::clone(&delivered);
    sim.set_event_hook(Some(Box::new(move |_, node, e: &GossipEvent<u64>| {
        if let GossipEvent::Received(r) = e {
            d.borrow_mut().push((*node, r.id));
        }
    })));
    let mut real: Vec<MessageId> = Vec::new();
    for op in input.ops.iter().take(256) {
        let node = |n: &u8| u64::from(n % NODES);
        match op {
            Op::Broadcast(n, len, one_hop) => {
                let scope = if *one_hop {
                    Scope::Neighbors
                } else {
                    Scope::Swarm
                };
                let payload = Bytes::from(vec![3; usize::from(*len % 5000)]);
                if let Ok(Ok(i)) =
                    sim.command(&node(n), |m, now| m.broadcast_scoped(now, payload, scope))
                {
                    real.push(i);
                }
            }
            Op::Run(ms) => {
                sim.run_for(Duration::from_millis(u64::from(*ms % 20_000)))
                    .expect("runs");
            }
            Op::Crash(n) => {
                let at = sim.now();
                // Node 0 stays up (the contact); crashing a crashed node is a no-op.
                if node(n) != 0 {
                    sim.schedule_crash(at, &node(n)).expect("known node");
                }
            }
            Op::LinkDown(n, p) => {
                let _ = sim.command(&node(n), |m, now| m.handle_link_down(now, node(p)));
            }
            Op::Hostile(n, from, h) => {
                let msg = message(h);
                let _ = sim.command(&node(n), |m, now| {
                    m.handle_message(now, node(from), msg.into())
                });
            }
        }
        for (_, m, _) in sim.nodes() {
            let t = m.tree();
            let eager: Vec<u64> = t.eager_peers().copied().collect();
            let lazy: Vec<u64> = t.lazy_peers().copied().collect();
            assert!(eager.len() + lazy.len() <= bounds.max_neighbors);
            assert!(eager.iter().all(|p| !lazy.contains(p)));
            assert!(!eager.contains(t.me()) && !lazy.contains(t.me()));
            assert!(t.cached() <= bounds.max_cached_payloads);
            assert!(t.missing() <= bounds.max_missing);
        }
    }
    sim.run_for(Duration::from_secs(60)).expect("runs");
    let mut seen: Vec<(u64, MessageId)> = delivered
        .borrow()
        .iter()
        .filter(|(_, i)| real.contains(i))
        .copied()
        .collect();
    let all = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), all, "a broadcast delivered twice at one node");
});
