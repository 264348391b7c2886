//! Seeded simulations: two replicas reconcile exactly with every method, over lossy,
//! duplicating and reordering links, with small messages.

use std::time::Duration;

use epidemic_merkle::Method;
use epidemic_merkle::scenario::{self, MerkleScenario};
use epidemic_sim::{LinkConfig, Loss, check_seeds};

fn check(s: &MerkleScenario) -> Result<scenario::MerkleReport, String> {
    let r = scenario::run(s)?;
    if !r.exact {
        return Err(format!("difference not exact: {r:?}"));
    }
    if !r.repaired {
        return Err(format!("roots differ after repair: {r:?}"));
    }
    Ok(r)
}

#[test]
fn every_method_finds_the_exact_difference() {
    for method in [
        Method::Planned,
        Method::Tree,
        Method::Riblt,
        Method::Full,
        Method::Sketch,
    ] {
        for d in [0, 1, 7, 300] {
            check_seeds(0..3, |seed| {
                check(&MerkleScenario {
                    keys: 5_000,
                    differences: d,
                    method,
                    seed,
                    ..MerkleScenario::default()
                })
                .map(|_| ())
            });
        }
    }
}

#[test]
fn sketches_ship_no_item_that_does_not_differ() {
    let r = check(&MerkleScenario {
        keys: 20_000,
        differences: 100,
        method: Method::Riblt,
        ..MerkleScenario::default()
    })
    .unwrap();
    assert_eq!(r.keys_not_differing, 0);
    assert_eq!(r.list_items, 0);
    // ~1.35 symbols per item of the difference (plus the overshoot of the last batch).
    assert!(
        (r.symbols as f64) < 2.6 * r.difference_items as f64,
        "{} symbols for {} items",
        r.symbols,
        r.difference_items
    );
    let tree = check(&MerkleScenario {
        keys: 20_000,
        differences: 100,
        method: Method::Tree,
        ..MerkleScenario::default()
    })
    .unwrap();
    assert!(tree.keys_not_differing > 0, "leaf lists carry common items");
}

#[test]
fn planner_costs_bytes_proportional_to_the_differences() {
    // One difference in 50,000 keys: a few hundred bytes, not a leaf list or a full list.
    let r = check(&MerkleScenario {
        keys: 50_000,
        differences: 1,
        ..MerkleScenario::default()
    })
    .unwrap();
    assert!(r.bytes < 1_000, "{} bytes for one difference", r.bytes);
    let r = check(&MerkleScenario {
        keys: 50_000,
        differences: 1_000,
        ..MerkleScenario::default()
    })
    .unwrap();
    assert!(
        r.bytes_per_difference < 80.0,
        "{} bytes per difference",
        r.bytes_per_difference
    );
}

#[test]
fn lost_duplicated_and_reordered_messages_resume_cleanly() {
    let (mut lost, mut repaired_by_retransmission) = (0, 0);
    for method in [Method::Planned, Method::Tree, Method::Riblt, Method::Sketch] {
        check_seeds(0..6, |seed| {
            let r = check(&MerkleScenario {
                keys: 3_000,
                differences: 40,
                method,
                seed,
                // Small messages: many fragments per step, each of them may be lost.
                max_message_bytes: 400,
                link: LinkConfig {
                    latency: Duration::from_millis(10),
                    jitter: Duration::from_millis(20),
                    loss: Loss::Uniform(0.15),
                    duplicate: 0.1,
                },
                ..MerkleScenario::default()
            })?;
            lost += r.lost;
            repaired_by_retransmission += r.initiator.retransmits + r.initiator.answers_repeated;
            Ok::<(), String>(())
        });
    }
    assert!(lost > 0, "the links lost nothing: the test proves nothing");
    assert!(repaired_by_retransmission > 0);
}

#[test]
fn planner_stays_near_the_best_method_when_everything_differs() {
    // Every key differs. Level 1 comes out saturated (all 16 nodes differ) and the
    // planner does not buy level 2's hashes to learn more (they would cost 1.3x the ideal
    // at d = 100): it sketches by syndromes, within 1% of the plain syndrome sketch (the
    // root's 128 bytes of hashes), below RIBLT, and within 30% of the full list, the best
    // method here.
    let s = MerkleScenario {
        keys: 10_000,
        differences: 10_000,
        ..MerkleScenario::default()
    };
    let planned = check(&s).unwrap();
    let run = |method| {
        check(&MerkleScenario {
            method,
            ..s.clone()
        })
        .unwrap()
    };
    let (full, riblt, sketch) = (run(Method::Full), run(Method::Riblt), run(Method::Sketch));
    assert_eq!(planned.finish, epidemic_merkle::Finish::Sketch);
    assert!(
        (planned.bytes as f64) < 1.3 * full.bytes as f64,
        "{} vs {}",
        planned.bytes,
        full.bytes
    );
    assert!(
        (planned.bytes as f64) < 1.01 * sketch.bytes as f64,
        "{} vs {}",
        planned.bytes,
        sketch.bytes
    );
    assert!(
        planned.bytes < riblt.bytes,
        "{} vs {}",
        planned.bytes,
        riblt.bytes
    );
}
