//! Convergence of two random replicas: arbitrary writes on each side, any method and tree
//! shape, a link that drops the messages the input chooses. Every session either fails
//! (reported) or reports exactly the true difference on the side that finished it; with no
//! loss both sides finish and applying the repair makes the roots equal.

#![no_main]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use epidemic_core::{Machine, Output};
use epidemic_merkle::scenario::repair;
use epidemic_merkle::{Config, Event, Item, MerkleSync, Method, Replica, Shape};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    a: Vec<(u16, u8)>,
    b: Vec<(u16, u8)>,
    deletes_b: Vec<u16>,
    method: u8,
    fanout_bits: u8,
    depth: u8,
    drops: Vec<u16>,
    small_messages: bool,
}

fn minus(x: &BTreeMap<u64, u64>, y: &BTreeMap<u64, u64>) -> Vec<Item> {
    x.iter()
        .filter(|(k, d)| y.get(k) != Some(d))
        .map(|(&key, &digest)| Item { key, digest })
        .collect()
}

fuzz_target!(|input: Input| {
    let shape = Shape {
        fanout_bits: 1 + input.fanout_bits % 4,
        depth: input.depth % 4,
    };
    let methods = [
        Method::Planned,
        Method::Tree,
        Method::Riblt,
        Method::Full,
        Method::Sketch,
    ];
    let method = methods[usize::from(input.method) % methods.len()];
    let config = Config {
        shape,
        method,
        max_message_bytes: if input.small_messages { 120 } else { 60_000 },
        max_step_bytes: 1 << 20,
        riblt_item_budget: 16,
        item_cost_bytes: 10.0,
        round_trip_cost_bytes: 0.0,
        ..Config::default()
    };
    let ra = Replica::in_memory(config.shape);
    let rb = Replica::in_memory(config.shape);
    let mut a = MerkleSync::<u64>::with_salt(config.clone(), ra, 1).expect("valid");
    let mut b = MerkleSync::<u64>::with_salt(config, rb, 2).expect("valid");
    let (mut ta, mut tb) = (BTreeMap::new(), BTreeMap::new());
    for &(k, d) in input.a.iter().take(2_000) {
        a.insert(k.into(), d.into());
        ta.insert(u64::from(k), u64::from(d));
        b.insert(k.into(), d.into());
        tb.insert(u64::from(k), u64::from(d));
    }
    for &(k, d) in input.b.iter().take(500) {
        b.insert(k.into(), d.into());
        tb.insert(u64::from(k), u64::from(d));
    }
    for &k in input.deletes_b.iter().take(500) {
        b.remove(k.into());
        tb.remove(&u64::from(k));
    }
    let drops: std::collections::BTreeSet<u16> = input.drops.iter().copied().collect();
    #[allow(clippy::disallowed_methods)] // the fuzz target is the driver
    let mut now = Instant::now();
    a.sync(now, 2).expect("room");
    let mut results: BTreeMap<u64, (Vec<Item>, Vec<Item>)> = BTreeMap::new();
    let mut n: u16 = 0;
    for _ in 0..20_000 {
        let mut moved = false;
        for me in [1u64, 2] {
            let (m, other) = if me == 1 {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            while let Some(out) = m.poll_output() {
                match out {
                    Output::Send { msg, .. } => {
                        n = n.wrapping_add(1);
                        moved = true;
                        if !drops.contains(&n) {
                            other.handle_message(now, me, msg);
                        }
                    }
                    Output::Event(Event::Synced {
                        mut to_send,
                        mut to_fetch,
                        ..
                    }) => {
                        to_send.sort_unstable();
                        to_fetch.sort_unstable();
                        results.insert(me, (to_send, to_fetch));
                    }
                    Output::Event(_) | Output::Disconnect(_) => {}
                }
            }
        }
        if !moved {
            let next = [a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = next else { break };
            now = t.max(now + Duration::from_nanos(1));
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
    }
    let (a_only, b_only) = (minus(&ta, &tb), minus(&tb, &ta));
    if let Some(r) = results.get(&1) {
        assert_eq!(r, &(a_only.clone(), b_only.clone()));
    }
    if let Some(r) = results.get(&2) {
        assert_eq!(r, &(b_only, a_only));
    }
    if drops.is_empty() {
        assert_eq!(results.len(), 2, "no loss: both sides finish");
        let mut ra = a.replica().clone();
        let mut rb = b.replica().clone();
        repair(&mut ra, &results[&1].1);
        repair(&mut rb, &results[&2].1);
        assert_eq!(ra.tree().root(), rb.tree().root());
    }
});
