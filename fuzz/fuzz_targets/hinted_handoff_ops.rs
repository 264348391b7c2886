//! Arbitrary operation sequences on a three-node hinted-handoff cluster: writes at any
//! level, deliveries in any order, lost and forged messages, liveness flips, time jumps
//! and crash-restarts from the durable log. Invariants after every step: nothing panics,
//! hints stay within their bounds, the durable log always equals the node's hints, and a
//! forged or mismatched acknowledgement never removes a hint.

#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use epidemic_core::{Machine, Output};
use epidemic_hinted_handoff::scenario::{HhNode, recovered_node, seeded_node};
use epidemic_hinted_handoff::{
    Config, Consistency, Event, HintId, MemLog, Message, Mutation, WriteId,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Op {
    Write {
        node: u8,
        key: u8,
        level: u8,
        pref: u8,
    },
    Deliver {
        index: u8,
    },
    Lose {
        index: u8,
    },
    Down {
        node: u8,
        peer: u8,
    },
    Up {
        node: u8,
        peer: u8,
    },
    Advance {
        ms: u16,
    },
    Crash {
        node: u8,
    },
    ForgedReplayAck {
        node: u8,
        from: u8,
        hint: u64,
        ts: u64,
    },
    ForgedWriteAck {
        node: u8,
        from: u8,
        id: u64,
    },
    Hostile {
        node: u8,
        from: u8,
        len: u16,
    },
}

const N: u64 = 3;

fn config() -> Config {
    Config {
        replication: 2,
        max_hints_per_target: 4,
        max_hints_total: 6,
        max_pending_writes: 8,
        max_mutation_bytes: 64,
        hint_ttl: Duration::from_secs(60),
        max_hint_window: Duration::from_secs(30),
        ..Config::default()
    }
}

struct World {
    nodes: Vec<HhNode>,
    logs: Vec<MemLog>,
    wire: Vec<(u64, u64, Message)>,
    now: Instant,
    seed: u64,
}

impl World {
    fn drain(&mut self) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            while let Some(out) = n.poll_output() {
                match out {
                    // The wire holds at most 256 messages; the rest are lost.
                    Output::Send { to, msg } if self.wire.len() < 256 => {
                        self.wire.push((i as u64, to, msg));
                    }
                    Output::Event(Event::Persist(r)) => self.logs[i].apply(&r),
                    _ => {}
                }
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            assert!(n.hints_pending() <= 6, "total bound");
            for t in 0..N {
                assert!(n.hints_for(t) <= 4, "per-target bound");
            }
            let mut held: Vec<_> = n.hint_records().map(|r| r.id).collect();
            let mut logged: Vec<_> = self.logs[i].records().map(|r| r.id).collect();
            held.sort_unstable();
            logged.sort_unstable();
            assert_eq!(
                held, logged,
                "the durable log mirrors the hints of node {i}"
            );
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    #[allow(clippy::disallowed_methods)] // a base instant for the virtual clock
    let start = Instant::now();
    let mut w = World {
        nodes: (0..N)
            .map(|i| seeded_node(i, config(), i, start).expect("valid config"))
            .collect(),
        logs: (0..N).map(|_| MemLog::new()).collect(),
        wire: Vec::new(),
        now: start,
        seed: 100,
    };
    let pick = |x: u8| u64::from(x) % N;
    for op in ops.into_iter().take(200) {
        let now = w.now;
        match op {
            Op::Write {
                node,
                key,
                level,
                pref,
            } => {
                let levels = [
                    Consistency::Any,
                    Consistency::One,
                    Consistency::Two,
                    Consistency::Quorum,
                    Consistency::All,
                    Consistency::Count(level),
                ];
                let level = levels[usize::from(level) % levels.len()];
                let first = pick(pref);
                let pref: Vec<u64> = (0..N).map(|i| (first + i) % N).collect();
                let m = Mutation::put(vec![key], &b"v"[..], u64::from(key) + 1);
                let _ = w.nodes[pick(node) as usize].write(now, m, &pref, level);
            }
            Op::Deliver { index } | Op::Lose { index } if w.wire.is_empty() => {
                let _ = index;
            }
            Op::Deliver { index } => {
                let (from, to, msg) = w.wire.remove(usize::from(index) % w.wire.len());
                if let Some(n) = w.nodes.get_mut(to as usize) {
                    n.handle_message(now, from, msg);
                }
            }
            Op::Lose { index } => {
                w.wire.remove(usize::from(index) % w.wire.len());
            }
            Op::Down { node, peer } => w.nodes[pick(node) as usize].peer_down(now, pick(peer)),
            Op::Up { node, peer } => w.nodes[pick(node) as usize].peer_up(now, pick(peer)),
            Op::Advance { ms } => {
                w.now += Duration::from_millis(u64::from(ms) * 10);
                let now = w.now;
                for n in &mut w.nodes {
                    if n.poll_timeout().is_some_and(|t| t <= now) {
                        n.handle_timeout(now);
                    }
                }
            }
            Op::Crash { node } => {
                let i = pick(node) as usize;
                let wall = w.nodes[i].wall_clock_ms(now);
                let store = std::mem::take(w.nodes[i].store_mut());
                w.seed += 1;
                w.nodes[i] =
                    recovered_node(i as u64, config(), w.seed, now, wall, store, &w.logs[i])
                        .expect("valid config");
                w.wire.retain(|(_, to, _)| *to != i as u64);
            }
            Op::ForgedReplayAck {
                node,
                from,
                hint,
                ts,
            } => {
                let i = pick(node) as usize;
                let from = pick(from);
                let before = w.nodes[i].hint_records().collect::<Vec<_>>();
                let genuine = before.iter().any(|r| {
                    r.id == HintId(hint) && r.target == from && r.mutation.timestamp == ts
                });
                w.nodes[i].handle_message(
                    now,
                    from,
                    Message::ReplayAck {
                        hint: HintId(hint),
                        timestamp: ts,
                    },
                );
                if !genuine {
                    let after = w.nodes[i].hint_records().count();
                    assert!(after >= before.len(), "a forged ack removed a hint");
                }
            }
            Op::ForgedWriteAck { node, from, id } => {
                w.nodes[pick(node) as usize].handle_message(
                    now,
                    pick(from),
                    Message::WriteAck { id: WriteId(id) },
                );
            }
            Op::Hostile { node, from, len } => {
                let m = Mutation {
                    key: Bytes::from(vec![1u8; usize::from(len) % 300]),
                    value: None,
                    timestamp: u64::from(len),
                };
                w.nodes[pick(node) as usize].handle_message(
                    now,
                    pick(from),
                    Message::Replay {
                        hint: HintId(u64::from(len)),
                        mutation: m,
                    },
                );
            }
        }
        w.drain();
    }
});
