//! Benchmarks of the hot paths: handling one ping (updates piggybacked both ways), one
//! protocol period of a member in a 1,000-member table, and answering a push-pull digest
//! (the table hashed once) at 1,000 and 10,000 members.

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use epidemic_core::Machine;
use epidemic_swim::{Config, Message, Swim, Update};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

fn member_of(n: u64, t0: Instant) -> Swim<u64, ChaCha8Rng> {
    let mut s = Swim::new(0, Config::lan(), ChaCha8Rng::seed_from_u64(1)).expect("valid");
    s.start(t0);
    let updates = (1..=n)
        .map(|m| Update::Alive {
            member: m,
            incarnation: 1,
            meta: Bytes::new(),
        })
        .collect();
    s.handle_message(t0, 1, Message::Gossip { updates });
    // Disseminate the join's updates away: the benches measure the steady state.
    while s.queued_updates() > 0 {
        s.handle_message(
            t0,
            1,
            Message::Ping {
                seq: 0,
                target: 0,
                updates: Vec::new(),
            },
        );
        while s.poll_output().is_some() {}
    }
    s
}

fn bench(c: &mut Criterion) {
    #[allow(clippy::disallowed_methods)] // benches may read the clock
    let t0 = Instant::now();
    let mut s = member_of(1000, t0);
    let mut seq = 0u32;
    c.bench_function("handle_message ping (1000 members, 4 updates)", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let updates = (0..4)
                .map(|i| Update::Alive {
                    member: 2000 + u64::from(seq % 64) * 4 + i,
                    incarnation: seq,
                    meta: Bytes::new(),
                })
                .collect();
            s.handle_message(
                t0,
                5,
                Message::Ping {
                    seq,
                    target: 0,
                    updates,
                },
            );
            while let Some(o) = s.poll_output() {
                std::hint::black_box(o);
            }
        });
    });
    let mut s = member_of(1000, t0);
    let mut now = t0;
    c.bench_function("one protocol period (1000 members)", |b| {
        b.iter(|| {
            now += Duration::from_secs(1);
            s.handle_timeout(now);
            let mut ack = None;
            while let Some(o) = s.poll_output() {
                if let epidemic_core::Output::Send {
                    to,
                    msg: Message::Ping { seq, .. },
                } = &o
                {
                    ack = Some((*to, *seq));
                }
                std::hint::black_box(o);
            }
            if let Some((to, seq)) = ack {
                s.handle_message(
                    now,
                    to,
                    Message::Ack {
                        seq,
                        updates: Vec::new(),
                    },
                );
                while s.poll_output().is_some() {}
            }
        });
    });
}

fn digest(c: &mut Criterion) {
    #[allow(clippy::disallowed_methods)] // benches may read the clock
    let t0 = Instant::now();
    for n in [1_000u64, 10_000] {
        let mut s = member_of(n, t0);
        let same = s.state_digest();
        let mut seq = 0u32;
        // Tables that agree, the steady state: the cost is hashing our own table.
        c.bench_function(&format!("push-pull digest answered ({n} members)"), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                s.handle_message(t0, 1, Message::PushPullDigest { seq, digest: same });
                while let Some(o) = s.poll_output() {
                    std::hint::black_box(o);
                }
            });
        });
    }
}

criterion_group!(benches, bench, digest);
criterion_main!(benches);
