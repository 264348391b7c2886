//! Fault plans: generated from a seed deterministically, applied to a simulation, and as a
//! proptest strategy whose every plan keeps the simulator's accounting exact.

mod support;

use std::time::Duration;

use epidemic_sim::plan::{Fault, FaultPlan, PlanShape, strategy};
use epidemic_sim::{Sim, SimConfig, Wire};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use support::Prober;

const MS: Duration = Duration::from_millis(1);

fn shape() -> PlanShape {
    PlanShape {
        nodes: 6,
        horizon: Duration::from_secs(2),
        max_faults: 12,
        restarts: true,
        protected: 1,
    }
}

fn mesh(seed: u64) -> (Sim<Prober>, Vec<u64>) {
    let mut sim = Sim::new(SimConfig::with_seed(seed), Wire::unsized_());
    let start = sim.instant() + MS;
    let peers: Vec<u64> = (0..6).collect();
    for &me in &peers {
        let targets = peers.iter().copied().filter(|&t| t != me).collect();
        sim.add_node(me, Prober::new(me, targets, 20 * MS, 150, start))
            .unwrap();
    }
    sim.on_restart(|&me, _old: &mut Prober, _| Prober::listener(me));
    (sim, peers)
}

#[test]
fn random_plans_are_deterministic_sorted_and_respect_the_shape() {
    let plan = |seed| FaultPlan::random(&mut ChaCha8Rng::seed_from_u64(seed), &shape());
    assert_eq!(plan(3), plan(3));
    assert_ne!(plan(3), plan(4));
    for seed in 0..50 {
        let p = plan(seed);
        assert!(p.faults.len() <= 12);
        assert!(p.faults.windows(2).all(|w| w[0].0 <= w[1].0));
        for (at, f) in &p.faults {
            assert!(*at < Duration::from_secs(2));
            match f {
                Fault::Crash(i) | Fault::Restart(i) | Fault::Slow(i, _) => {
                    assert!((1..6).contains(i), "{f:?}");
                }
                Fault::Partition(side) => assert!(side.iter().all(|i| (1..6).contains(i))),
                Fault::Link { from, to, .. } => assert!(*from < 6 && *to < 6),
                Fault::Heal => {}
            }
        }
    }
}

#[test]
fn applying_a_plan_crashes_what_it_says() {
    let plan = FaultPlan {
        faults: vec![
            (100 * MS, Fault::Crash(2)),
            (200 * MS, Fault::Crash(3)),
            (300 * MS, Fault::Restart(2)),
            (400 * MS, Fault::Partition(vec![4, 5])),
        ],
    };
    assert_eq!(plan.left_crashed(), [3]);
    let (mut sim, peers) = mesh(1);
    plan.apply(&mut sim, &peers).unwrap();
    sim.run_until(Duration::from_secs(5)).unwrap();
    assert!(sim.is_up(&2) && !sim.is_up(&3));
    assert!(sim.metrics().drops.partition > 0 && sim.metrics().drops.crashed > 0);
    let bad = FaultPlan {
        faults: vec![(MS, Fault::Crash(6))],
    };
    assert!(bad.apply(&mut sim, &peers).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Under any plan: every message is delivered or dropped for a reason, nothing else;
    /// the protected node is never crashed; and the same plan and seed replay exactly.
    #[test]
    fn any_plan_keeps_accounting_exact_and_replays(plan in strategy::plans(shape()), seed in 0u64..1000) {
        let run = || {
            let (mut sim, peers) = mesh(seed);
            plan.apply(&mut sim, &peers).unwrap();
            sim.run_until_quiescent(Duration::from_secs(60)).unwrap();
            sim
        };
        let sim = run();
        let m = sim.metrics();
        prop_assert_eq!(m.sent.messages + m.duplicated, m.delivered.messages + m.drops.total());
        prop_assert!(sim.is_up(&0));
        for i in plan.left_crashed() {
            prop_assert!(!sim.is_up(&(i as u64)));
        }
        prop_assert_eq!(sim.trace_hash(), run().trace_hash());
    }
}
