//! epidemic-core's shared helpers under arbitrary operation sequences, each checked against
//! a plain reference model: `Deadlines` fires in (instant, insertion) order and cancels
//! exactly, `TimerTable` keeps one deadline per kind, `BoundedQueue` never exceeds its bound
//! and loses nothing silently.

#![no_main]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use epidemic_core::{BoundedQueue, Deadlines, Overflow, TimerId, TimerTable};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Op {
    Insert(u16),
    Cancel(u8),
    Advance(u16),
    Retain(u8),
    Set(u8, u16),
    Stop(u8),
    Push(u8),
    Pop,
}

#[derive(Debug, Arbitrary)]
struct Input {
    capacity: u8,
    drop_oldest: bool,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    #[allow(clippy::disallowed_methods)] // a fixed base; only offsets from it matter
    let base = Instant::now();
    let at = |ms: u64| base + Duration::from_millis(ms);
    let mut now = 0u64;

    let mut deadlines = Deadlines::new();
    let mut ids: Vec<(TimerId, u64)> = Vec::new();
    // Reference: (at, seq, value), fired in (at, seq) order.
    let mut model: Vec<(u64, u64, u64)> = Vec::new();
    let mut seq = 0u64;

    let mut table = TimerTable::new();
    let mut table_model: Vec<(u8, u64)> = Vec::new();

    let cap = usize::from(input.capacity % 16);
    let policy = if input.drop_oldest {
        Overflow::DropOldest
    } else {
        Overflow::DropNewest
    };
    let mut queue = BoundedQueue::new(cap, policy);
    let mut queue_model: VecDeque<u8> = VecDeque::new();
    let mut dropped = 0u64;

    for op in input.ops.into_iter().take(2000) {
        match op {
            Op::Insert(d) => {
                let t = now + u64::from(d);
                ids.push((deadlines.insert(at(t), seq), seq));
                model.push((t, seq, seq));
                seq += 1;
            }
            Op::Cancel(i) => {
                if let Some(&(id, seq)) = ids.get(usize::from(i)) {
                    let got = deadlines.cancel(id);
                    match model.iter().position(|m| m.1 == seq) {
                        Some(p) => assert_eq!(got, Some(model.remove(p).2)),
                        None => assert_eq!(got, None),
                    }
                }
            }
            Op::Advance(d) => {
                now += u64::from(d);
                model.sort_unstable();
                let due: Vec<_> = model.iter().take_while(|m| m.0 <= now).copied().collect();
                model.drain(..due.len());
                for (t, _, v) in due {
                    assert_eq!(deadlines.pop_expired(at(now)), Some((at(t), v)));
                }
                assert_eq!(deadlines.pop_expired(at(now)), None);
                for (kind, t) in std::mem::take(&mut table_model) {
                    if t > now {
                        table_model.push((kind, t));
                    }
                }
                let mut fired = 0;
                while let Some(k) = table.pop_expired(at(now)) {
                    assert!(!table_model.iter().any(|&(kind, _)| kind == k));
                    fired += 1;
                }
                assert!(fired <= 8);
            }
            Op::Retain(m) => {
                let m = u64::from(m.max(1));
                deadlines.retain(|_, v| *v % m != 0);
                model.retain(|&(_, _, v)| v % m != 0);
            }
            Op::Set(kind, d) => {
                let kind = kind % 8;
                let t = now + u64::from(d);
                table.set(kind, at(t));
                table_model.retain(|&(k, _)| k != kind);
                table_model.push((kind, t));
            }
            Op::Stop(kind) => {
                let kind = kind % 8;
                let want = table_model
                    .iter()
                    .position(|&(k, _)| k == kind)
                    .map(|p| at(table_model.remove(p).1));
                assert_eq!(table.stop(kind), want);
            }
            Op::Push(v) => {
                let out = queue.push(v);
                if queue_model.len() < cap {
                    queue_model.push_back(v);
                    assert_eq!(out, None);
                } else {
                    dropped += 1;
                    let want = if policy == Overflow::DropNewest || cap == 0 {
                        Some(v)
                    } else {
                        let old = queue_model.pop_front();
                        queue_model.push_back(v);
                        old
                    };
                    assert_eq!(out, want);
                }
            }
            Op::Pop => assert_eq!(queue.pop(), queue_model.pop_front()),
        }
        assert_eq!(deadlines.len(), model.len());
        assert_eq!(
            deadlines.next_deadline(),
            model.iter().map(|m| at(m.0)).min()
        );
        assert_eq!(
            table.next_deadline(),
            table_model.iter().map(|m| at(m.1)).min()
        );
        assert!(queue.len() <= cap);
        assert_eq!(queue.dropped(), dropped);
        assert!(queue.iter().eq(queue_model.iter()));
    }
});
