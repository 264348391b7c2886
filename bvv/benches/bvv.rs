//! Hot paths: bitmap-entry and node-clock join, missing-dots computation, container
//! merge, and a node answering a sync request (log lookup, fill, chunking).

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use epidemic_bvv::scenario::{SimNode, rng};
use epidemic_bvv::{Bvv, Config, Context, Dcc, Dot, Entry, MemoryStore, Message, NodeClock};
use epidemic_core::Machine;

/// An entry with base `base` and every third counter of the next `span` seen.
fn sparse(base: u64, span: u64, phase: u64) -> Entry {
    let mut e = Entry::with_base(base);
    for c in (base + 2..base + span).filter(|c| c % 3 == phase) {
        e.add(c);
    }
    e
}

fn clock(ids: u64, base: u64, span: u64, phase: u64) -> NodeClock {
    let mut c = NodeClock::new();
    for id in 0..ids {
        for n in 1..=base {
            c.add(Dot::new(id, n));
        }
        for n in (base + 2..base + span).filter(|n| n % 3 == phase) {
            c.add(Dot::new(id, n));
        }
    }
    c
}

fn benches(c: &mut Criterion) {
    let (a, b) = (sparse(1000, 256, 0), sparse(1100, 256, 1));
    c.bench_function("entry join (256-counter bitmaps)", |bench| {
        bench.iter(|| black_box(&a).join(black_box(&b)));
    });
    let (ca, cb) = (clock(16, 500, 128, 0), clock(16, 520, 128, 1));
    c.bench_function("node clock join (16 ids)", |bench| {
        bench.iter(|| black_box(&ca).join(black_box(&cb)));
    });
    c.bench_function("missing dots (16 ids, ~1k dots)", |bench| {
        bench.iter(|| black_box(&cb).missing_dots(black_box(&ca)).count());
    });
    c.bench_function("missing count (16 ids)", |bench| {
        bench.iter(|| black_box(&cb).missing_count(black_box(&ca)));
    });

    let mut x = Dcc::new();
    let mut y = Dcc::new();
    for i in 1..=3 {
        x.add(Dot::new(i, 10 + i), Bytes::from_static(b"value-x"));
        y.add(Dot::new(i + 1, 10 + i), Bytes::from_static(b"value-y"));
    }
    let mut ctx = Context::new();
    for id in 0..8 {
        ctx.raise(id, 9);
    }
    x.discard(&ctx);
    y.discard(&ctx);
    c.bench_function("container merge (3 siblings each, 8-id context)", |bench| {
        bench.iter(|| {
            let mut m = black_box(&x).clone();
            m.sync(black_box(&y));
            m
        });
    });

    // A node with 100k keys answers a request from a peer missing the last 1,000 writes.
    #[allow(clippy::disallowed_methods)] // a bench's epoch
    let now = Instant::now();
    let cfg = Config {
        push_writes: false,
        ..Config::default()
    };
    let mut server: SimNode =
        Bvv::new(now, 0, [0, 1], cfg.clone(), MemoryStore::new(), rng(0)).expect("valid");
    for k in 0..100_000u32 {
        let key = Bytes::from(format!("key{k:07}"));
        server
            .put(
                now,
                key,
                Bytes::from_static(b"0123456789abcdef"),
                &Context::new(),
            )
            .expect("accepted");
    }
    let mut behind = NodeClock::new();
    for n in 1..=99_000 {
        behind.add(Dot::new(0, n));
    }
    c.bench_function("answer a sync: 1,000 missing of 100k keys", |bench| {
        bench.iter(|| {
            server.handle_message(
                now,
                1,
                Message::SyncRequest {
                    request: 0,
                    clock: behind.clone(),
                    resume: None,
                },
            );
            let mut n = 0;
            while server.poll_output().is_some() {
                n += 1;
            }
            n
        });
    });
}

criterion_group!(bvv, benches);
criterion_main!(bvv);
