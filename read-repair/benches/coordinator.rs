//! Benchmarks of the read path's hot spots: coordinator messages handled per second (a
//! QUORUM read over three replicas, in sync and on mismatch, driven in memory), and the
//! digest of a record.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use epidemic_core::{Machine, Output};
use epidemic_read_repair::{
    Config, Coordinator, DataReplica, LastWriteWins, Message, ReadOptions, Record, Schema,
    SpeculativeRetry, digest,
};

#[derive(Debug, Clone, PartialEq, Eq)]
struct S;
impl Schema for S {
    type Key = u64;
    type Cell = u16;
    type Value = Bytes;
    type Version = u64;
}

fn record(cells: u16, value: usize, version: u64) -> Record<S> {
    let v = Bytes::from(vec![7; value]);
    let mut r = Record::new();
    for c in 0..cells {
        r.insert(c, version + u64::from(c), v.clone(), &LastWriteWins);
    }
    r
}

/// One QUORUM read from start to answer: two answers in sync, or a mismatch that costs a
/// data fetch and a blocking repair. Returns the messages the coordinator handled.
fn read(
    c: &mut Coordinator<u64, S, LastWriteWins>,
    now: Instant,
    fresh: &Record<S>,
    stale: Option<&Record<S>>,
) -> u64 {
    let id = c
        .read(now, 1, &[1, 2, 3], ReadOptions::default())
        .expect("under the bound");
    while c.poll_output().is_some() {}
    let mut handled = 2;
    c.handle_message(
        now,
        1,
        Message::Data {
            id,
            record: Some(fresh.clone()),
        },
    );
    let d = digest(Some(stale.unwrap_or(fresh)));
    c.handle_message(now, 2, Message::Digest { id, digest: d });
    if let Some(stale) = stale {
        while c.poll_output().is_some() {}
        c.handle_message(
            now,
            2,
            Message::Data {
                id,
                record: Some(stale.clone()),
            },
        );
        while c.poll_output().is_some() {}
        c.handle_message(now, 2, Message::RepairAck { id });
        handled += 2;
    }
    while let Some(out) = c.poll_output() {
        black_box(matches!(out, Output::Event(_)));
    }
    handled
}

fn coordinator() -> Coordinator<u64, S, LastWriteWins> {
    Coordinator::new(
        Config {
            speculative_retry: SpeculativeRetry::Never,
            data_replica: DataReplica::First,
            max_lingering: 0,
            ..Config::default()
        },
        LastWriteWins,
    )
    .expect("valid config")
}

fn bench_coordinator(c: &mut Criterion) {
    #[allow(clippy::disallowed_methods)] // an epoch for the virtual clock
    let now = Instant::now();
    let stale = record(8, 100, 10);
    let mut fresh = stale.clone();
    fresh.insert(0, 1_000, Bytes::from_static(b"x"), &LastWriteWins);
    let mut g = c.benchmark_group("coordinator");
    for (name, stale) in [("in_sync", None), ("mismatch", Some(&stale))] {
        let per_read = read(&mut coordinator(), now, &fresh, stale);
        g.throughput(Throughput::Elements(per_read));
        g.bench_function(name, |b| {
            let mut co = coordinator();
            let mut t = now;
            b.iter(|| {
                t += Duration::from_micros(1);
                read(&mut co, t, &fresh, stale)
            });
        });
    }
    g.finish();
}

fn bench_digest(c: &mut Criterion) {
    let mut g = c.benchmark_group("digest");
    for (cells, value) in [(1, 1024), (8, 1024), (1, 64 * 1024)] {
        let r = record(cells, value, 1);
        g.throughput(Throughput::Bytes(epidemic_core::codec::body_len(&r) as u64));
        g.bench_function(format!("{cells}x{value}B"), |b| {
            b.iter(|| digest(Some(black_box(&r))));
        });
    }
    // The floor: one-shot XXH3-128 over the already-encoded bytes.
    let r = record(1, 1024, 1);
    let bytes = postcard::to_allocvec(&Some(&r)).expect("encodes");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("xxh3_128_of_encoded_1x1024B", |b| {
        b.iter(|| xxhash_rust::xxh3::xxh3_128(black_box(&bytes)));
    });
    g.finish();
}

criterion_group!(benches, bench_coordinator, bench_digest);
criterion_main!(benches);
