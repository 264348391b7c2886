//! proptest: for random pairs of replicas (inserts, updates, deletes on each side), after
//! one session each side's reported difference equals the true set difference exactly, and
//! after both apply the repair the roots are equal. Every method, small trees so that
//! leaves hold many keys and subtrees collide.

use std::collections::BTreeMap;
use std::time::Instant;

use epidemic_core::{Machine, Output};
use epidemic_merkle::scenario::repair;
use epidemic_merkle::{Config, Event, Item, MerkleSync, Method, Shape};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone)]
enum Op {
    Put(u64, u64),
    Del(u64),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0u64..400, 0u64..4).prop_map(|(k, d)| Op::Put(k, d)),
            1 => (0u64..400).prop_map(Op::Del),
        ],
        0..120,
    )
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Planned),
        Just(Method::Tree),
        Just(Method::Riblt),
        Just(Method::Full),
        Just(Method::Sketch),
    ]
}

fn apply(m: &mut MerkleSync<u64>, truth: &mut BTreeMap<u64, u64>, ops: &[Op]) {
    for op in ops {
        match *op {
            Op::Put(k, d) => {
                m.insert(k, d);
                truth.insert(k, d);
            }
            Op::Del(k) => {
                m.remove(k);
                truth.remove(&k);
            }
        }
    }
}

fn minus(a: &BTreeMap<u64, u64>, b: &BTreeMap<u64, u64>) -> Vec<Item> {
    a.iter()
        .filter(|(k, d)| b.get(k) != Some(d))
        .map(|(&key, &digest)| Item { key, digest })
        .collect()
}

fn config(method: Method, fanout_bits: u8, depth: u8) -> Config {
    Config {
        shape: Shape { fanout_bits, depth },
        method,
        // Cheap round trips, dear CPU: the planner descends even in small trees.
        riblt_item_budget: 50,
        item_cost_bytes: 10.0,
        round_trip_cost_bytes: 0.0,
        ..Config::default()
    }
}

/// Two replicas built from `common` then each side's own ops; one session; the reported
/// differences must be exact and the repair must equalise the roots.
fn check(
    config: Config,
    seed: u64,
    common: &[Op],
    only_a: &[Op],
    only_b: &[Op],
) -> Result<(), TestCaseError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut a = MerkleSync::<u64>::in_memory(config.clone(), &mut rng).unwrap();
    let mut b = MerkleSync::<u64>::in_memory(config, &mut rng).unwrap();
    let (mut ta, mut tb) = (BTreeMap::new(), BTreeMap::new());
    apply(&mut a, &mut ta, common);
    apply(&mut b, &mut tb, common);
    apply(&mut a, &mut ta, only_a);
    apply(&mut b, &mut tb, only_b);

    #[allow(clippy::disallowed_methods)] // the test is the driver
    let now = Instant::now();
    a.sync(now, 2).unwrap();
    let mut results: BTreeMap<u64, (Vec<Item>, Vec<Item>)> = BTreeMap::new();
    for _ in 0..1_000 {
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
                        other.handle_message(now, me, msg);
                        moved = true;
                    }
                    Output::Event(Event::Synced {
                        mut to_send,
                        mut to_fetch,
                        ..
                    }) => {
                        to_send.sort_unstable();
                        to_fetch.sort_unstable();
                        prop_assert!(results.insert(me, (to_send, to_fetch)).is_none());
                    }
                    Output::Event(e) => prop_assert!(false, "unexpected {:?}", e),
                    Output::Disconnect(_) => {}
                }
            }
        }
        if !moved {
            break;
        }
    }
    let (a_only, b_only) = (minus(&ta, &tb), minus(&tb, &ta));
    prop_assert_eq!(results.get(&1), Some(&(a_only.clone(), b_only.clone())));
    prop_assert_eq!(results.get(&2), Some(&(b_only, a_only)));
    let mut ra = a.replica().clone();
    let mut rb = b.replica().clone();
    repair(&mut ra, &results[&1].1);
    repair(&mut rb, &results[&2].1);
    // The scenario's repair runs on default replicas; these are the same type.
    prop_assert_eq!(ra.tree().root(), rb.tree().root());
    prop_assert_eq!(ra.len(), rb.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn sync_reports_the_exact_difference_and_repair_equalises_roots(
        common in ops(),
        only_a in ops(),
        only_b in ops(),
        method in method(),
        fanout_bits in 1u8..4,
        depth in 0u8..4,
        seed in any::<u64>(),
    ) {
        check(config(method, fanout_bits, depth), seed, &common, &only_a, &only_b)?;
    }

    /// Most of the difference is keys held in two versions (one peel each with RIBLT, a
    /// `changed` rank and a digest in `Done`), digests anywhere in the 64-bit range.
    #[test]
    fn many_updated_keys_are_reported_exactly(
        keys in 1u64..600,
        updates in prop::collection::vec((0u64..600, any::<u64>(), any::<bool>()), 0..300),
        method in method(),
        fanout_bits in 1u8..4,
        depth in 0u8..4,
        seed in any::<u64>(),
    ) {
        let common: Vec<Op> = (0..keys).map(|k| Op::Put(k, k.wrapping_mul(0x9e37_79b9))).collect();
        let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
        for (k, d, side) in updates {
            if side { only_a.push(Op::Put(k, d)) } else { only_b.push(Op::Put(k, d)) }
        }
        check(config(method, fanout_bits, depth), seed, &common, &only_a, &only_b)?;
    }
}
