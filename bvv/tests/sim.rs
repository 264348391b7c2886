//! Seeded simulations: replicas under concurrent writes, missed pushes, link loss and
//! crash/restart (durable state carried over) converge to identical stores with no
//! acknowledged write lost, contexts stripped to nothing and an empty log.

use std::time::Duration;

use epidemic_bvv::scenario::{self, Scenario};
use epidemic_sim::{LinkConfig, Loss, check_seeds};

fn small(seed: u64) -> Scenario {
    Scenario {
        nodes: 4,
        keys: 60,
        writes: 400,
        write_window: Duration::from_secs(3),
        blind: 0.2,
        deletes: 0.1,
        miss: 0.2,
        link: LinkConfig {
            loss: Loss::Uniform(0.05),
            duplicate: 0.02,
            ..LinkConfig::default()
        },
        sync_interval: Duration::from_millis(100),
        crashes: 2,
        down_for: Duration::from_millis(700),
        converge_limit: Duration::from_secs(60),
        sample_every: Duration::from_millis(100),
        seed,
        ..Scenario::default()
    }
}

#[test]
fn replicas_converge_under_loss_and_crashes() {
    check_seeds(0..8, |seed| {
        let r = scenario::run(&small(seed)).map_err(|e| e.to_string())?;
        r.check()?;
        if r.writes_acked < 300 {
            return Err(format!("only {} writes acknowledged", r.writes_acked));
        }
        if r.keys_with_siblings == 0 && r.keys_stored > 0 {
            return Err("blind writes should leave some siblings".into());
        }
        // A replier never ships a key whose dots the requester's clock already had.
        if r.keys_redundant > 0 {
            return Err(format!("{} redundant keys", r.keys_redundant));
        }
        // At rest each value carries exactly its dot.
        if (r.meta_pairs_per_key - r.values_per_key).abs() > 1e-9 {
            return Err(format!(
                "{} pairs for {} values",
                r.meta_pairs_per_key, r.values_per_key
            ));
        }
        Ok::<(), String>(())
    });
}

#[test]
fn without_faults_sync_ships_no_key_twice() {
    check_seeds(0..4, |seed| {
        let s = Scenario {
            crashes: 0,
            link: LinkConfig::default(),
            ..small(seed)
        };
        let r = scenario::run(&s).map_err(|e| e.to_string())?;
        r.check()?;
        if r.keys_redundant > 0 {
            return Err(format!(
                "{} redundant keys of {}",
                r.keys_redundant, r.keys_received
            ));
        }
        if r.keys_shipped != r.keys_received {
            return Err("a lossless network lost keys".into());
        }
        Ok::<(), String>(())
    });
}

#[test]
fn replicas_converge_under_random_fault_plans() {
    use epidemic_sim::plan::{FaultPlan, PlanShape};
    use rand::SeedableRng;
    check_seeds(0..6, |seed| {
        let shape = PlanShape {
            nodes: 4,
            horizon: Duration::from_secs(3),
            max_faults: 10,
            restarts: true,
            protected: 0,
        };
        let plan = FaultPlan::random(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed), &shape);
        let s = Scenario {
            plan,
            crashes: 0,
            ..small(seed)
        };
        let r = scenario::run(&s).map_err(|e| e.to_string())?;
        r.check()?;
        if r.keys_redundant > 0 {
            return Err(format!("{} redundant keys", r.keys_redundant));
        }
        Ok::<(), String>(())
    });
}

#[test]
fn same_seed_same_trace() {
    let a = scenario::run(&small(3)).unwrap();
    let b = scenario::run(&small(3)).unwrap();
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.sync_bytes, b.sync_bytes);
}

#[test]
fn a_dead_member_blocks_truncation_until_retired() {
    use bytes::Bytes;
    use epidemic_bvv::scenario::{SimNode, wire};
    use epidemic_bvv::{Bvv, Config, Event, MemoryStore};
    use epidemic_sim::{Sim, SimConfig};

    check_seeds(0..3, |seed| {
        let mut sim: Sim<SimNode> = Sim::new(SimConfig::with_seed(seed), wire());
        let cfg = Config {
            sync_interval: Duration::from_millis(100),
            gc_block_report: Duration::from_secs(2),
            ..Config::default()
        };
        for id in 0..3u64 {
            let rng = sim.fork_rng();
            let node = Bvv::new(
                sim.instant(),
                id,
                0..3,
                cfg.clone(),
                MemoryStore::new(),
                rng,
            )
            .map_err(|e| e.to_string())?;
            sim.add_node(id, node).map_err(|e| e.to_string())?;
        }
        sim.schedule_crash(Duration::from_millis(50), &2)
            .map_err(|e| e.to_string())?;
        for i in 0..20u32 {
            let at = Duration::from_millis(100 + u64::from(i) * 50);
            let node = u64::from(i % 2);
            sim.schedule_command(at, &node, move |m: &mut SimNode, now| {
                let key = Bytes::from(format!("k{}", i % 5));
                let ctx = m.get(&key).context;
                let _ = m.put(now, key, Bytes::from_static(b"v"), &ctx);
            })
            .map_err(|e| e.to_string())?;
        }
        sim.run_until(Duration::from_secs(6))
            .map_err(|e| e.to_string())?;
        for id in [0u64, 1] {
            let log = sim.node(&id).map_or(0, |n| n.log().len());
            if log != 20 {
                return Err(format!(
                    "node {id}: log {log}, expected all 20 dots held back"
                ));
            }
        }
        let blocked = sim
            .events()
            .iter()
            .filter(|e| matches!(e.event, Event::GcBlocked { peer: 2, .. }))
            .count();
        if blocked < 2 {
            return Err(format!("{blocked} GcBlocked reports"));
        }
        for id in [0u64, 1] {
            sim.command(&id, |m, now| m.retire_peer(now, 2))
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
        sim.run_for(Duration::from_secs(2))
            .map_err(|e| e.to_string())?;
        for id in [0u64, 1] {
            let n = sim.node(&id).ok_or("node gone")?;
            if !n.log().is_empty() || n.store().iter().any(|(_, d)| !d.context().is_empty()) {
                return Err(format!("node {id}: log {} after retiring", n.log().len()));
            }
        }
        let (a, b) = (sim.node(&0).ok_or("0")?, sim.node(&1).ok_or("1")?);
        if a.store() != b.store() {
            return Err("survivors differ".into());
        }
        Ok::<(), String>(())
    });
}

#[test]
fn a_node_that_lost_its_disk_rejoins_under_a_new_id() {
    use bytes::Bytes;
    use epidemic_bvv::scenario::{SimNode, wire};
    use epidemic_bvv::{Bvv, Config, Event, MemoryStore, Storage};
    use epidemic_sim::{Sim, SimConfig};

    check_seeds(0..3, |seed| {
        let mut sim: Sim<SimNode> = Sim::new(SimConfig::with_seed(seed), wire());
        let cfg = Config {
            sync_interval: Duration::from_millis(100),
            max_keys_per_sync: 7,
            ..Config::default()
        };
        let err = |e: epidemic_sim::SimError| e.to_string();
        for id in 0..4u64 {
            let rng = sim.fork_rng();
            let node = Bvv::new(
                sim.instant(),
                id,
                0..4,
                cfg.clone(),
                MemoryStore::new(),
                rng,
            )
            .map_err(|e| e.to_string())?;
            sim.add_node(id, node).map_err(err)?;
        }
        for i in 0..120u32 {
            let at = Duration::from_millis(10 + u64::from(i) * 20);
            sim.schedule_command(at, &u64::from(i % 4), move |m: &mut SimNode, now| {
                let key = Bytes::from(format!("k{}", i % 40));
                let ctx = m.get(&key).context;
                let _ = m.put(now, key, Bytes::from_static(b"v"), &ctx);
            })
            .map_err(err)?;
        }
        // Node 3 loses its disk at 1 s; at 3 s it comes back as node 9.
        sim.schedule_crash(Duration::from_secs(1), &3)
            .map_err(err)?;
        let rng = sim.fork_rng();
        let fresh = Bvv::new(
            sim.instant(),
            9,
            [0, 1, 2, 9],
            cfg.clone(),
            MemoryStore::new(),
            rng,
        )
        .map_err(|e| e.to_string())?;
        sim.add_node_at(Duration::from_secs(3), 9, fresh)
            .map_err(err)?;
        for id in 0..3u64 {
            sim.schedule_command(Duration::from_secs(3), &id, |m: &mut SimNode, now| {
                m.replace_peer(now, 3, 9).expect("3 is a member");
            })
            .map_err(err)?;
        }
        let converged = sim
            .run_until_condition(Duration::from_secs(30), Duration::from_millis(100), |sim| {
                let live: Vec<&SimNode> =
                    [0u64, 1, 2, 9].iter().filter_map(|p| sim.node(p)).collect();
                sim.now() > Duration::from_secs(3)
                    && live
                        .iter()
                        .all(|n| n.log().is_empty() && n.clock() == live[0].clock())
            })
            .map_err(err)?;
        if converged.is_none() {
            return Err("never converged".into());
        }
        let n0 = sim.node(&0).ok_or("0")?;
        let n9 = sim.node(&9).ok_or("9")?;
        if n9.store() != n0.store() || n0.store().len() != 40 {
            return Err(format!(
                "node 9 holds {} keys, node 0 {}",
                n9.store().len(),
                n0.store().len()
            ));
        }
        let full = sim
            .events()
            .iter()
            .filter(|e| e.node == 9 && matches!(e.event, Event::FullTransfer { .. }))
            .count();
        if full == 0 || n9.stats().full_transfers_applied == 0 {
            return Err("node 9 caught up without a full transfer".into());
        }
        Ok::<(), String>(())
    });
}
