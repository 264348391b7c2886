//! Plumtree's hot paths: a new payload on a node with five neighbours (delivered, pushed to
//! two eager peers, announced to two lazy ones), a duplicate (PRUNE), an IHAVE batch, a
//! GRAFT served from the cache; and, over a 200-node HyParView + Plumtree simulation with
//! sequential random senders, the bytes sent per delivered payload (printed).
//!
//! `cargo bench -p epidemic-plumtree` (criterion reports elements/s = messages/s per core).

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use epidemic_core::Machine;
use epidemic_plumtree::scenario::{self, Scenario};
use epidemic_plumtree::{Config, Graft, IHave, Message, MessageId, Payload, Plumtree};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Node 0 with neighbours 1..=5: 1, 2, 3 eager, 4 and 5 lazy.
fn node(now: Instant) -> Plumtree<u64> {
    let mut n = Plumtree::new(0, Config::default(), &mut ChaCha8Rng::seed_from_u64(1))
        .expect("valid config");
    for p in 1..=5 {
        n.neighbor_up(now, p);
    }
    n.handle_message(now, 4, Message::Prune);
    n.handle_message(now, 5, Message::Prune);
    n
}

fn ids(count: u64) -> Vec<MessageId> {
    (0..count)
        .map(|i| MessageId::new(&9u64, 0, i, b""))
        .collect()
}

fn drain(n: &mut Plumtree<u64>) -> usize {
    let mut k = 0;
    while n.poll_output().is_some() {
        k += 1;
    }
    k
}

fn bench(c: &mut Criterion) {
    #[allow(clippy::disallowed_methods)] // a benchmark may read the clock
    let now = Instant::now();
    let payload = Bytes::from(vec![7u8; 256]);
    let mut g = c.benchmark_group("plumtree");
    g.throughput(Throughput::Elements(1));

    let fresh = ids(1 << 16);
    g.bench_function(
        "new payload (deliver, 2 eager pushes, 2 announcements)",
        |b| {
            let mut n = node(now);
            let mut i = 0usize;
            let mut t = now;
            b.iter(|| {
                i = (i + 1) % fresh.len();
                t += Duration::from_micros(10);
                n.handle_message(
                    t,
                    1,
                    Message::Gossip(Payload {
                        id: fresh[i],
                        round: 3,
                        payload: payload.clone(),
                    }),
                );
                n.handle_timeout(t);
                black_box(drain(&mut n))
            });
        },
    );

    g.bench_function("duplicate payload (prune)", |b| {
        let mut n = node(now);
        let id = fresh[0];
        let msg = Message::Gossip(Payload {
            id,
            round: 3,
            payload: payload.clone(),
        });
        n.handle_message(now, 1, msg.clone());
        drain(&mut n);
        b.iter(|| {
            n.handle_message(now, 2, msg.clone());
            black_box(drain(&mut n))
        });
    });

    let batch: Vec<IHave> = fresh[..64]
        .iter()
        .map(|&id| IHave { id, round: 2 })
        .collect();
    g.throughput(Throughput::Elements(64));
    g.bench_function("IHAVE of 64 unknown ids (64 missing timers)", |b| {
        b.iter_batched(
            || node(now),
            |mut n| {
                n.handle_message(now, 4, Message::IHave(batch.clone()));
                black_box(n.missing())
            },
            BatchSize::SmallInput,
        );
    });
    g.throughput(Throughput::Elements(1));

    g.bench_function("GRAFT served from the cache", |b| {
        // Unlimited GRAFT credit, so every GRAFT is answered with the payload.
        let config = Config {
            initial_graft_credit: u32::MAX,
            max_graft_credit: u32::MAX,
            ..Config::default()
        };
        let mut n =
            Plumtree::new(0u64, config, &mut ChaCha8Rng::seed_from_u64(1)).expect("valid config");
        n.neighbor_up(now, 4);
        let id = n.broadcast(now, payload.clone()).expect("fits");
        n.handle_timeout(now + Duration::from_secs(1));
        drain(&mut n);
        let graft = Message::Graft(Graft {
            id: Some(id),
            round: 1,
        });
        b.iter(|| {
            n.handle_message(now, 4, graft.clone());
            black_box(drain(&mut n))
        });
    });
    g.finish();

    // Bytes per delivered payload over a small simulated overlay (not a timing).
    let s = Scenario {
        nodes: 200,
        rounds: 3,
        payload: 256,
        broadcasts: 20,
        bursts: 2,
        settle: Duration::from_secs(5),
        ..Scenario::default()
    };
    if let Ok(runs) = scenario::stable(&s, false) {
        for r in &runs {
            eprintln!(
                "plumtree {} nodes, 256-byte payloads, {}: {:.0} bytes sent per delivery \
                 (payload message {} bytes)",
                s.nodes,
                r.name,
                r.bytes_per_delivery,
                scenario::payload_message_bytes(256)
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
