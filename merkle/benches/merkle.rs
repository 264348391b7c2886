//! Criterion benches: tree build and incremental update, the raw hash beside them, diff
//! of two replicas, and RIBLT encode/decode per difference.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use epidemic_merkle::riblt::{Decoder, Encoder};
use epidemic_merkle::{Item, ItemHasher, MerkleTree, Replica, Shape, Xxh3};

const N: u64 = 100_000;

fn items(n: u64, salt: u64) -> Vec<Item> {
    (0..n)
        .map(|k| Item {
            key: k.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt,
            digest: k,
        })
        .collect()
}

fn tree(c: &mut Criterion) {
    let data = items(N, 0);
    let mut g = c.benchmark_group("tree");
    g.throughput(Throughput::Elements(N));
    g.bench_function("raw_xxh3_128_and_bucket_per_key", |b| {
        let h = Xxh3::default();
        b.iter(|| {
            let mut acc = 0u128;
            for i in &data {
                acc ^= h.item(i.key, i.digest) ^ u128::from(h.bucket(i.key));
            }
            black_box(acc)
        });
    });
    g.bench_function("bulk_build_tree_100k_keys", |b| {
        b.iter(|| {
            let t = MerkleTree::build(Shape::default(), Xxh3::default(), data.iter().copied());
            black_box(t.root())
        });
    });
    g.bench_function("bulk_build_replica_100k_keys", |b| {
        b.iter(|| {
            let r = Replica::from_items(Shape::default(), Xxh3::default(), data.iter().copied());
            black_box(r.tree().root())
        });
    });
    g.bench_function("insert_one_by_one_100k_keys", |b| {
        b.iter(|| {
            let mut r = Replica::in_memory(Shape::default());
            for i in &data {
                r.insert(i.key, i.digest);
            }
            black_box(r.tree().root())
        });
    });
    g.finish();
    let mut r = Replica::in_memory(Shape::default());
    for i in &data {
        r.insert(i.key, i.digest);
    }
    let mut v = 0u64;
    c.bench_function("tree/update_one_key_in_100k", |b| {
        b.iter(|| {
            v = v.wrapping_add(1);
            let k = data[(v % N) as usize].key;
            black_box(r.insert(k, v))
        });
    });
}

fn riblt(c: &mut Criterion) {
    let mut g = c.benchmark_group("riblt");
    for d in [10u64, 1000] {
        let common = items(10_000, 1);
        let extra = items(d, 2);
        let a = [common.clone(), extra].concat();
        let symbols = (d as usize * 2).max(64);
        g.throughput(Throughput::Elements(d));
        g.bench_with_input(
            BenchmarkId::new("encode_symbols_for_d_over_10k", d),
            &d,
            |b, _| {
                b.iter(|| {
                    let mut e = Encoder::new(&a);
                    let mut out = Vec::new();
                    e.produce(symbols, &mut out);
                    black_box(out.len())
                });
            },
        );
        let mut e = Encoder::new(&a);
        let mut out = Vec::new();
        e.produce(symbols, &mut out);
        g.bench_with_input(BenchmarkId::new("decode_d_over_10k", d), &d, |b, _| {
            b.iter(|| {
                let mut dec = Decoder::new(&common, 1 << 20);
                let used = dec.add_until_decoded(&out).expect("within bound");
                assert!(dec.is_decoded());
                black_box(used)
            });
        });
    }
    g.finish();
}

criterion_group!(benches, tree, riblt);
criterion_main!(benches);
