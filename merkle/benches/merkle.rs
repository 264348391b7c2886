//! Criterion benches: tree build and incremental update, the raw hash beside them, a whole
//! diff session between two replicas, and RIBLT encode/decode per difference.
#![allow(missing_docs)]

use std::hint::black_box;

use std::time::Instant;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use epidemic_core::{Machine, Output};
use epidemic_merkle::riblt::{Decoder, Encoder};
use epidemic_merkle::{
    Config, Event, Item, ItemHasher, MerkleSync, MerkleTree, Method, Replica, Shape, Xxh3,
};

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
                    let mut e = Encoder::new(&a, 7);
                    let mut out = Vec::new();
                    e.produce(symbols, &mut out);
                    black_box(out.len())
                });
            },
        );
        let mut e = Encoder::new(&a, 7);
        let mut out = Vec::new();
        e.produce(symbols, &mut out);
        g.bench_with_input(BenchmarkId::new("decode_d_over_10k", d), &d, |b, _| {
            b.iter(|| {
                // One batch, as the machine feeds it (`add_until_decoded` adds one symbol
                // at a time to find the exact threshold, a measurement tool).
                let mut dec = Decoder::new(&common, 7, 1 << 20);
                dec.add(&out).expect("within bound");
                assert!(dec.is_decoded());
                black_box(dec.remote_only().len())
            });
        });
    }
    // The decoder inverts one field element per symbol it examines.
    g.throughput(Throughput::Elements(1024));
    g.bench_function("gf_inverse_x1024", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for x in 1..=1024u64 {
                acc ^= epidemic_merkle::gf::inv(black_box(x.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
                    .unwrap_or(0);
            }
            black_box(acc)
        });
    });
    g.finish();
}

/// One whole session between two in-memory replicas, driven without a network.
fn session(a: &mut MerkleSync<u64>, b: &mut MerkleSync<u64>, now: Instant) -> usize {
    a.sync(now, 2).expect("room");
    let mut found = 0;
    loop {
        let mut moved = false;
        for me in [1u64, 2] {
            let (m, other) = if me == 1 {
                (&mut *a, &mut *b)
            } else {
                (&mut *b, &mut *a)
            };
            while let Some(out) = m.poll_output() {
                match out {
                    Output::Send { msg, .. } => {
                        other.handle_message(now, me, msg);
                        moved = true;
                    }
                    Output::Event(Event::Synced { to_send, .. }) => found += to_send.len(),
                    _ => {}
                }
            }
        }
        if !moved {
            return found;
        }
    }
}

fn diff(c: &mut Criterion) {
    let mut g = c.benchmark_group("diff");
    g.sample_size(10);
    let base = items(N, 0);
    #[allow(clippy::disallowed_methods)] // benches own the clock
    let now = Instant::now();
    for (name, method) in [
        ("planned", Method::Planned),
        ("tree", Method::Tree),
        ("riblt", Method::Riblt),
        ("sketch", Method::Sketch),
    ] {
        for d in [10u64, 1000] {
            let config = Config {
                method,
                ..Config::default()
            };
            let ra = Replica::from_items(Shape::default(), Xxh3::default(), base.iter().copied());
            let mut rb = ra.clone();
            for i in &base[..d as usize] {
                rb.insert(i.key, i.digest + 1);
            }
            g.throughput(Throughput::Elements(d));
            g.bench_with_input(
                BenchmarkId::new(format!("{name}_session_100k"), d),
                &d,
                |bch, _| {
                    bch.iter_batched(
                        || {
                            let a = MerkleSync::with_salt(config.clone(), ra.clone(), 1)
                                .expect("valid");
                            let b = MerkleSync::with_salt(config.clone(), rb.clone(), 2)
                                .expect("valid");
                            (a, b)
                        },
                        |(mut a, mut b)| black_box(session(&mut a, &mut b, now)),
                        BatchSize::LargeInput,
                    );
                },
            );
        }
    }
    g.finish();
}

/// The syndrome sketch's arithmetic: power sums (ns per point·syndrome, the throughput
/// unit), a plain multiplication, and a whole decode of L differences from 2L + 2 sums.
fn sketch_math(c: &mut Criterion) {
    let mut g = c.benchmark_group("sketch_math");
    let mut r = 1u64;
    let mut next = move || {
        r = r.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let z = (r ^ (r >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        (z ^ (z >> 29)) | 1
    };
    let points: Vec<(u64, u64)> = (0..10_000).map(|_| (next(), next())).collect();
    g.throughput(Throughput::Elements(10_000 * 64));
    g.bench_function("gf_power_sums_10k_x64", |b| {
        b.iter(|| {
            let mut out = [0u64; 64];
            epidemic_merkle::gf::power_sums(black_box(&points), 0, &mut out);
            black_box(out)
        });
    });
    g.throughput(Throughput::Elements(1024));
    g.bench_function("gf_mul_x1024", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for &(x, w) in &points[..1024] {
                acc ^= epidemic_merkle::gf::mul(black_box(x), w);
            }
            black_box(acc)
        });
    });
    for l in [32usize, 100, 300] {
        let mut set = points[..l].to_vec();
        set.sort_unstable();
        let mut sums = vec![0u64; 2 * l + 2];
        epidemic_merkle::gf::power_sums(&set, 0, &mut sums);
        g.throughput(Throughput::Elements(l as u64));
        g.bench_with_input(BenchmarkId::new("poly_decode", l), &l, |b, _| {
            b.iter(|| {
                let got = epidemic_merkle::poly::decode(black_box(&sums), 2);
                assert_eq!(got.as_deref(), Some(&set[..]));
            });
        });
    }
    g.finish();
}

criterion_group!(benches, tree, riblt, diff, sketch_math);
criterion_main!(benches);
