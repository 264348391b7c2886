//! HyParView's hot paths: handling one message on a node with full views (a shuffle walk
//! hop, the end of a shuffle walk, a join walk hop, a refused neighbour request), and the
//! encoded size of each.
//!
//! `cargo bench -p epidemic-hyparview` (criterion reports elements/s = messages/s).

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use epidemic_core::Machine;
use epidemic_hyparview::{Config, HyParView, Message, PeerInfo, Priority};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A node with five neighbours and a full passive view.
fn full_node(now: Instant) -> HyParView<u64, ChaCha8Rng> {
    let mut n = HyParView::new(
        0,
        Bytes::new(),
        Config::default(),
        ChaCha8Rng::seed_from_u64(1),
    )
    .expect("valid config");
    for p in 1..=5 {
        n.handle_message(
            now,
            p,
            Message::Neighbor {
                priority: Priority::High,
                data: Bytes::new(),
            },
        );
    }
    n.handle_message(
        now,
        1,
        Message::Shuffle {
            origin: PeerInfo::new(99),
            peers: (100..130).map(PeerInfo::new).collect(),
            ttl: 1,
        },
    );
    while n.poll_output().is_some() {}
    n
}

fn messages(c: &mut Criterion) {
    #[allow(clippy::disallowed_methods)] // a bench anchors virtual time once
    let now = Instant::now();
    let infos = |base: u64| (base..base + 7).map(PeerInfo::new).collect::<Vec<_>>();
    let cases: Vec<(&str, Message<u64>)> = vec![
        (
            "shuffle_hop",
            Message::Shuffle {
                origin: PeerInfo::new(500),
                peers: infos(600),
                ttl: 4,
            },
        ),
        (
            "shuffle_end",
            Message::Shuffle {
                origin: PeerInfo::new(500),
                peers: infos(700),
                ttl: 1,
            },
        ),
        (
            "forward_join_hop",
            Message::ForwardJoin {
                peer: PeerInfo::new(800),
                ttl: 5,
            },
        ),
        (
            "neighbor_refused",
            Message::Neighbor {
                priority: Priority::Low,
                data: Bytes::new(),
            },
        ),
    ];
    let mut group = c.benchmark_group("handle_message");
    group
        .throughput(Throughput::Elements(1))
        .measurement_time(Duration::from_secs(3));
    for (name, msg) in cases {
        let mut node = full_node(now);
        group.bench_function(name, |b| {
            b.iter(|| {
                node.handle_message(now, 2, msg.clone());
                while let Some(o) = node.poll_output() {
                    std::hint::black_box(o);
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, messages);
criterion_main!(benches);
