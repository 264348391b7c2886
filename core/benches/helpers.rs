//! The shared helpers on a protocol's hot path: arming and firing per-peer deadlines, and
//! pushing through a bounded outbox.
//!
//! `cargo bench -p epidemic-core` (criterion reports elements/s).

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use epidemic_core::{BoundedQueue, Deadlines, Overflow};

fn deadlines(c: &mut Criterion) {
    #[allow(clippy::disallowed_methods)] // a fixed base for the bench
    let base = Instant::now();
    let mut group = c.benchmark_group("deadlines");
    // 10,000 armed timers (one per peer), then insert one and fire one, steady state.
    let n = 10_000u64;
    group.throughput(Throughput::Elements(1));
    group.bench_function("insert_and_fire_at_10k", |b| {
        let mut d = Deadlines::new();
        for i in 0..n {
            d.insert(base + Duration::from_micros(i * 100), i);
        }
        let mut t = n;
        b.iter(|| {
            d.insert(base + Duration::from_micros(t * 100), t);
            t += 1;
            black_box(d.pop_expired(base + Duration::from_secs(u64::MAX >> 34)))
        });
    });
    group.bench_function("insert_and_cancel_at_10k", |b| {
        let mut d = Deadlines::new();
        for i in 0..n {
            d.insert(base + Duration::from_micros(i * 100), i);
        }
        let mut t = 0u64;
        b.iter(|| {
            let id = d.insert(base + Duration::from_micros((t * 7919) % (n * 100)), t);
            t += 1;
            black_box(d.cancel(id))
        });
    });
    group.finish();
}

fn bounded(c: &mut Criterion) {
    let mut group = c.benchmark_group("bounded_queue");
    group.throughput(Throughput::Elements(1));
    group.bench_function("push_pop", |b| {
        let mut q = BoundedQueue::new(1024, Overflow::DropNewest);
        b.iter(|| {
            let dropped = q.push(black_box(7u64));
            black_box((dropped, q.pop()))
        });
    });
    group.bench_function("push_full_drop_oldest", |b| {
        let mut q = BoundedQueue::new(1024, Overflow::DropOldest);
        for i in 0..1024u64 {
            let _ = q.push(i);
        }
        b.iter(|| black_box(q.push(black_box(7u64))));
    });
    group.finish();
}

criterion_group!(benches, deadlines, bounded);
criterion_main!(benches);
