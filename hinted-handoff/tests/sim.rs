//! Seeded simulations of the proof list: every acknowledged write ends up on all
//! its owners after faults heal (zero hints lost), hints are removed after delivery and
//! stay bounded, handoffs return data to owners, a coordinator crash with hints pending
//! recovers from its log, and replay adapts to a slow recovering replica.

use std::time::Duration;

use bytes::Bytes;
use epidemic_hinted_handoff::scenario::{
    OutageScenario, SimNode, cluster, guest_copies, hints_pending, lost_writes, run_outage,
    schedule_liveness, schedule_write, total_stats,
};
use epidemic_hinted_handoff::{Config, Consistency, ReplayConfig};
use epidemic_sim::plan::{FaultPlan, PlanShape};
use epidemic_sim::{LinkConfig, Sim, check_seeds};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N: u64 = 5;

fn test_config() -> Config {
    Config {
        max_hints_per_target: 1_000,
        max_hints_total: 2_500,
        replay_interval: Duration::from_secs(1),
        replay: ReplayConfig {
            timeout: Duration::from_secs(2),
            ..ReplayConfig::default()
        },
        ..Config::default()
    }
}

/// After faults stop: heal, restore links, restart everyone, report everyone up.
fn heal_all(sim: &mut Sim<SimNode>, at: std::time::Duration) {
    sim.schedule_heal(at);
    for a in 0..N {
        sim.schedule_slow(at, &a, Duration::ZERO).unwrap();
        sim.schedule_restart(at, &a).unwrap();
        for b in 0..N {
            if a != b {
                sim.schedule_link(at, &a, &b, None).unwrap();
            }
        }
    }
    for p in 0..N {
        schedule_liveness(sim, at + Duration::from_millis(500), p, true, N).unwrap();
    }
}

#[test]
fn outage_of_one_replica_loses_no_acknowledged_write() {
    let s = OutageScenario {
        rate: 100,
        duration: Duration::from_secs(20),
        down_at: Duration::from_secs(3),
        down_for: Duration::from_secs(10),
        replay_interval: Duration::from_secs(2),
        keys: 500,
        ..OutageScenario::default()
    };
    let r = run_outage(&s).unwrap();
    assert_eq!(r.acked_lost, 0);
    assert_eq!(
        r.guest_copies_left, 0,
        "every handoff returned data to its owner"
    );
    assert_eq!(r.hints_dropped, [0; 4]);
    assert!(r.hints_stored > 100, "{r:?}");
    assert!(r.hints_replayed > 100, "{r:?}");
    assert!(
        r.repair_secs.is_some_and(|d| d < 10.0),
        "{:?}",
        r.repair_secs
    );
    assert_eq!(r.curve.last().map(|p| p.1), Some(0.0), "every hint removed");
    assert_eq!(r.writes[2], 0, "QUORUM never fails with one replica down");
}

#[test]
fn adaptive_replay_protects_the_recovering_replica() {
    let base = OutageScenario {
        rate: 200,
        duration: Duration::from_secs(30),
        down_at: Duration::from_secs(2),
        down_for: Duration::from_secs(20),
        keys: 100_000,
        service: Duration::from_micros(500),
        ..OutageScenario::default()
    };
    let adaptive = run_outage(&base).unwrap();
    let unthrottled = run_outage(&OutageScenario {
        replay: ReplayConfig {
            adaptive: false,
            max_in_flight: 100_000,
            ..ReplayConfig::default()
        },
        ..base
    })
    .unwrap();
    assert_eq!((adaptive.acked_lost, unthrottled.acked_lost), (0, 0));
    let (a, u) = (
        adaptive.victim_delay_replay.p99_ms,
        unthrottled.victim_delay_replay.p99_ms,
    );
    assert!(
        u > 4.0 * a.max(1.0),
        "adaptive p99 {a} ms vs unthrottled {u} ms"
    );
    assert!(adaptive.peak_replay_in_flight < unthrottled.peak_replay_in_flight);
}

/// Random crash/restart/partition/loss/slow plans during a write workload: after heal and
/// replay, every acknowledged write is on all N owners, no hint is dropped, every hint is
/// delivered, and hints never exceed their bounds.
#[test]
fn random_fault_plans_lose_no_acknowledged_write() {
    check_seeds(0..24, |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let plan = FaultPlan::random(&mut rng, &shape());
        run_plan(seed, &plan)
    });
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 12,
        // Fixed, so that CI runs the same plans every time (shrinking still works).
        rng_seed: proptest::test_runner::RngSeed::Fixed(7),
        ..proptest::prelude::ProptestConfig::default()
    })]
    /// The same property over proptest's plans, which shrink to the smallest failing one.
    #[test]
    fn shrinking_fault_plans_lose_no_acknowledged_write(
        plan in epidemic_sim::plan::strategy::plans(shape()),
        seed in 0u64..1000,
    ) {
        run_plan(seed, &plan).map_err(proptest::test_runner::TestCaseError::fail)?;
    }
}

fn shape() -> PlanShape {
    PlanShape {
        nodes: 5,
        horizon: Duration::from_secs(10),
        max_faults: 8,
        restarts: true,
        protected: 0,
    }
}

/// One run under `plan`: a QUORUM write workload, the failure detector reporting crashes
/// and restarts, then heal and replay.
fn run_plan(seed: u64, plan: &FaultPlan) -> Result<(), String> {
    let config = test_config();
    let mut sim = cluster(seed, N, &config, LinkConfig::default(), Duration::ZERO)
        .map_err(|e| e.to_string())?;
    let horizon = shape().horizon;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xABCD);
    let peers: Vec<u64> = (0..N).collect();
    plan.apply(&mut sim, &peers).map_err(|e| e.to_string())?;
    // The failure detector reports crashes and restarts half a second late.
    for (at, f) in &plan.faults {
        let d = *at + Duration::from_millis(500);
        match f {
            epidemic_sim::plan::Fault::Crash(i) => {
                schedule_liveness(&mut sim, d, *i as u64, false, N).map_err(|e| e.to_string())?;
            }
            epidemic_sim::plan::Fault::Restart(i) => {
                schedule_liveness(&mut sim, d, *i as u64, true, N).map_err(|e| e.to_string())?;
            }
            _ => {}
        }
    }
    let (per_target, total) = (config.max_hints_per_target, config.max_hints_total);
    sim.add_invariant(
        "hints bounded",
        Some(Duration::from_millis(100)),
        move |s| {
            for (p, m, _) in s.nodes() {
                let n = &m.node;
                if n.hints_pending() > total || (0..N).any(|t| n.hints_for(t) > per_target) {
                    return Err(format!("node {p} holds {} hints", n.hints_pending()));
                }
            }
            Ok(())
        },
    );
    for ts in 1..=400u64 {
        let at = Duration::from_millis(ts * 25);
        let c = rng.random_range(0..N);
        let key = rng.random_range(0..50);
        schedule_write(
            &mut sim,
            at,
            c,
            key,
            ts,
            N,
            Bytes::from_static(b"v"),
            Consistency::Quorum,
        )
        .map_err(|e| e.to_string())?;
    }
    heal_all(&mut sim, horizon + Duration::from_secs(1));
    let done = sim
        .run_until_condition(Duration::from_secs(120), Duration::from_millis(500), |s| {
            s.now() > horizon + Duration::from_secs(5)
                && hints_pending(s) == 0
                && lost_writes(s).is_empty()
        })
        .map_err(|e| e.to_string())?;
    let lost = lost_writes(&sim);
    let stats = total_stats(&sim);
    let acked: usize = sim.nodes().map(|(_, m, _)| m.client.acked.len()).sum();
    if done.is_none() || !lost.is_empty() {
        return Err(format!(
            "not repaired: {} lost of {acked} acked, {} hints pending, plan {:?}",
            lost.len(),
            hints_pending(&sim),
            plan.faults
        ));
    }
    let dropped = stats.dropped_window
        + stats.dropped_ttl
        + stats.dropped_target_bound
        + stats.dropped_total_bound;
    if dropped != 0 {
        return Err(format!("{dropped} hints dropped"));
    }
    let guests = guest_copies(&sim, N, config.replication);
    if guests != 0 {
        return Err(format!("{guests} guest copies never handed off"));
    }
    Ok(())
}

/// The coordinator crashes holding hints for a down replica; it restarts from its log
/// alone and replays them once the replica is back.
#[test]
fn coordinator_crash_with_hints_pending_recovers_from_the_log() {
    check_seeds(0..4, |seed| {
        let config = Config {
            sloppy_quorum: false,
            ..test_config()
        };
        let mut sim = cluster(seed, N, &config, LinkConfig::default(), Duration::ZERO).unwrap();
        // Owner 2 of keys 0 (pref 0,1,2) is down from the start.
        sim.schedule_crash(Duration::ZERO, &2).unwrap();
        schedule_liveness(&mut sim, Duration::ZERO, 2, false, N).unwrap();
        for ts in 1..=50u64 {
            let at = Duration::from_millis(10 * ts);
            schedule_write(
                &mut sim,
                at,
                0,
                ts * 5,
                ts,
                N,
                Bytes::from_static(b"x"),
                Consistency::Quorum,
            )
            .unwrap();
        }
        sim.run_until(Duration::from_secs(3)).unwrap();
        let held = sim.node(&0).unwrap().node.hints_for(2);
        if held != 50 {
            return Err(format!("coordinator holds {held} hints for 2"));
        }
        // Crash the coordinator, bring it back from its log, then the replica.
        sim.schedule_crash(Duration::from_secs(4), &0).unwrap();
        sim.schedule_restart(Duration::from_secs(6), &0).unwrap();
        sim.schedule_restart(Duration::from_secs(8), &2).unwrap();
        sim.run_until(Duration::from_secs(7)).unwrap();
        let m = &sim.node(&0).unwrap().node;
        if m.stats().hints_recovered != 50 {
            return Err(format!("recovered {}", m.stats().hints_recovered));
        }
        // Nobody tells node 0 that 2 is back: the periodic dispatch finds out.
        sim.run_until(Duration::from_secs(20)).unwrap();
        let lost = lost_writes(&sim);
        if !lost.is_empty() || hints_pending(&sim) != 0 {
            return Err(format!(
                "{} lost, {} pending",
                lost.len(),
                hints_pending(&sim)
            ));
        }
        if !sim.node(&0).unwrap().log.is_empty() {
            return Err("log not emptied".into());
        }
        Ok::<(), String>(())
    });
}

/// A slow recovering replica (every message to it 300 ms late, and 2 ms of work per
/// message) sees a bounded number of replays in flight from each holder: its queue grows,
/// acknowledgements slow down, and each holder's window stops growing.
#[test]
fn slow_recovering_replica_sees_bounded_replay() {
    let config = Config {
        sloppy_quorum: false,
        ..test_config()
    };
    let service = Duration::from_millis(2);
    let mut sim = cluster(3, N, &config, LinkConfig::default(), service).unwrap();
    sim.schedule_crash(Duration::ZERO, &2).unwrap();
    schedule_liveness(&mut sim, Duration::ZERO, 2, false, N).unwrap();
    for ts in 1..=600u64 {
        let at = Duration::from_millis(5 * ts);
        let key = ts * 5; // every key's preference starts at node 0: owners 0, 1, 2
        schedule_write(
            &mut sim,
            at,
            ts % 2,
            key,
            ts,
            N,
            Bytes::from_static(b"x"),
            Consistency::One,
        )
        .unwrap();
    }
    sim.schedule_slow(Duration::from_secs(4), &2, Duration::from_millis(300))
        .unwrap();
    sim.schedule_restart(Duration::from_secs(5), &2).unwrap();
    schedule_liveness(&mut sim, Duration::from_secs(5), 2, true, N).unwrap();
    let mut peak = 0;
    sim.run_until(Duration::from_secs(5)).unwrap();
    assert!(hints_pending(&sim) >= 600);
    while sim.now() < Duration::from_secs(60) {
        sim.run_for(Duration::from_millis(50)).unwrap();
        for p in [0, 1] {
            peak = peak.max(sim.node(&p).unwrap().node.replays_in_flight(2));
        }
    }
    assert_eq!(hints_pending(&sim), 0);
    assert!(lost_writes(&sim).is_empty());
    // Unthrottled, each holder would put its ~300 hints in flight at once.
    assert!(peak <= 64, "peak replays in flight {peak}");
    assert!(peak >= 4);
}
