//! Benches of the hot paths: a write coordinated end to end (coordinator + two replicas,
//! every message handled), hint replay throughput, and the file hint log's append and
//! recovery.

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use epidemic_core::{Machine, Output};
use epidemic_hinted_handoff::log::{HintLog, LogOptions, SyncPolicy};
use epidemic_hinted_handoff::scenario::{HhNode, seeded_node};
use epidemic_hinted_handoff::{Config, Consistency, Event, LogRecord, Message, Mutation};

fn base() -> Instant {
    #[allow(clippy::disallowed_methods)] // a base instant for virtual time
    let t = Instant::now();
    t
}

/// Delivers every message among `nodes` until quiet; returns writes acknowledged.
fn settle(nodes: &mut [HhNode], now: Instant, wire: &mut Vec<(u64, u64, Message)>) -> usize {
    let mut acked = 0;
    loop {
        for n in nodes.iter_mut() {
            let me = n.id();
            while let Some(out) = n.poll_output() {
                match out {
                    Output::Send { to, msg } => wire.push((me, to, msg)),
                    Output::Event(Event::WriteAcked { .. }) => acked += 1,
                    _ => {}
                }
            }
        }
        let Some((from, to, msg)) = wire.pop() else {
            return acked;
        };
        nodes[usize::try_from(to).expect("small ids")].handle_message(now, from, msg);
    }
}

fn writes(c: &mut Criterion) {
    let mut g = c.benchmark_group("write_coordinated");
    g.throughput(Throughput::Elements(1));
    for (name, before_ack) in [
        ("quorum_hint_before_ack", true),
        ("quorum_cassandra_mode", false),
    ] {
        let config = Config {
            hint_before_ack: before_ack,
            ..Config::default()
        };
        let now = base();
        let mut nodes: Vec<HhNode> = (0..3)
            .map(|i| seeded_node(i, config.clone(), i, now).expect("valid"))
            .collect();
        let keys: Vec<Bytes> = (0..1024).map(|i| Bytes::from(format!("key{i}"))).collect();
        let value = Bytes::from(vec![0u8; 100]);
        let mut wire = Vec::new();
        let mut ts = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                ts += 1;
                let m = Mutation {
                    key: keys[(ts % 1024) as usize].clone(),
                    value: Some(value.clone()),
                    timestamp: ts,
                };
                nodes[0]
                    .write(now, m, &[0, 1, 2], Consistency::Quorum)
                    .expect("accepted");
                settle(&mut nodes, now, &mut wire)
            });
        });
    }
    g.finish();
}

fn replay(c: &mut Criterion) {
    const HINTS: u64 = 10_000;
    let mut g = c.benchmark_group("hint_replay");
    g.throughput(Throughput::Elements(HINTS));
    g.sample_size(10);
    g.bench_function("10k_hints_unthrottled_window", |b| {
        b.iter_batched(
            || {
                let now = base();
                let config = Config {
                    sloppy_quorum: false,
                    hint_before_ack: false,
                    max_pending_writes: 100_000,
                    ..Config::default()
                };
                let mut nodes: Vec<HhNode> = (0..3)
                    .map(|i| seeded_node(i, config.clone(), i, now).expect("valid"))
                    .collect();
                nodes[0].peer_down(now, 2);
                for ts in 1..=HINTS {
                    let m = Mutation::put(format!("k{ts}").into_bytes(), &b"v"[..], ts);
                    nodes[0]
                        .write(now, m, &[0, 1, 2], Consistency::One)
                        .expect("accepted");
                }
                let mut wire = Vec::new();
                settle(&mut nodes, now, &mut wire);
                (nodes, now)
            },
            |(mut nodes, now)| {
                let later = now + Duration::from_secs(1);
                nodes[0].peer_up(later, 2);
                let mut wire = Vec::new();
                settle(&mut nodes, later, &mut wire);
                assert_eq!(nodes[0].hints_pending(), 0);
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn log(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("epidemic-hh-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let record = |i: u64| {
        LogRecord::Put(epidemic_hinted_handoff::HintRecord {
            id: epidemic_hinted_handoff::HintId(i),
            target: i % 5,
            mutation: Mutation::put(format!("key{i}").into_bytes(), vec![0u8; 100], i),
            created_ms: i,
            handoff: false,
        })
    };
    let opts = LogOptions {
        sync: SyncPolicy::Never,
        ..LogOptions::default()
    };
    let mut g = c.benchmark_group("hint_log");
    g.throughput(Throughput::Elements(1));
    {
        let (mut log, _) = HintLog::open(dir.join("append"), opts).expect("opens");
        let mut i = 0;
        g.bench_function("append_no_fsync", |b| {
            b.iter(|| {
                i += 1;
                log.append(&record(i)).expect("appends");
            });
        });
    }
    let recover_dir = dir.join("recover");
    {
        let (mut log, _) = HintLog::open(&recover_dir, opts).expect("opens");
        for i in 0..10_000 {
            log.append(&record(i)).expect("appends");
        }
    }
    g.throughput(Throughput::Elements(10_000));
    g.sample_size(10);
    g.bench_function("recover_10k", |b| {
        b.iter(|| {
            let (log, rec) = HintLog::open(&recover_dir, opts).expect("opens");
            assert_eq!(rec.records, 10_000);
            log.len()
        });
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, writes, replay, log);
criterion_main!(benches);
