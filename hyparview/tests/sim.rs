//! Seeded simulations (small N, CI): the overlay HyParView builds is connected, its active
//! views are symmetric and within bounds; it heals after a partition and after mass
//! failures, leaving nobody isolated.

use std::time::Duration;

use epidemic_hyparview::Config;
use epidemic_hyparview::scenario::{self, OverlayNode, Scenario, active_graph};
use epidemic_sim::{Sim, check_seeds};

fn small(nodes: u32, seed: u64) -> Scenario {
    Scenario {
        nodes,
        config: Config {
            shuffle_interval: Duration::from_secs(2),
            rejoin_backoff: Duration::from_secs(2),
            rejoin_backoff_max: Duration::from_secs(16),
            ..Config::default()
        },
        rounds: 20,
        heal_rounds: 20,
        seed,
        ..Scenario::default()
    }
}

/// Every directed active edge `a → b` has its reverse, or one of the two still waits for
/// the answer to a request (a handshake in flight).
fn symmetric_but_handshakes(sim: &Sim<OverlayNode>) -> Result<(), String> {
    for (p, m, up) in sim.nodes() {
        if !up {
            continue;
        }
        for q in m.view().active_view() {
            let Some(other) = sim.node(q) else {
                return Err(format!("{p} holds unknown {q}"));
            };
            let back = other.view().is_neighbor(p);
            let in_flight = m.view().pending_requests().any(|x| x == q)
                || other.view().pending_requests().any(|x| x == p);
            if !back && !in_flight && sim.is_up(q) {
                return Err(format!("{p} → {q} has no reverse"));
            }
        }
    }
    Ok(())
}

fn bounds(sim: &Sim<OverlayNode>, c: &Config) -> Result<(), String> {
    for (p, m, _) in sim.nodes() {
        let v = m.view();
        if v.active_view().count() > c.active_capacity
            || v.passive_view().count() > c.passive_capacity
            || v.pending_requests().count() > c.max_pending
        {
            return Err(format!("{p} over a bound"));
        }
        if v.active_view().any(|q| v.passive_view().any(|r| r == q)) {
            return Err(format!("{p} has a peer in both views"));
        }
        if v.active_view().chain(v.passive_view()).any(|q| q == p) {
            return Err(format!("{p} holds itself"));
        }
    }
    Ok(())
}

#[test]
fn the_overlay_is_connected_symmetric_and_within_bounds() {
    check_seeds(0..4, |seed| {
        let s = small(150, seed);
        let mut sim = scenario::build(&s).map_err(|e| e.to_string())?;
        let c = s.config.clone();
        sim.add_invariant(
            "views within bounds",
            Some(Duration::from_millis(500)),
            move |sim| bounds(sim, &c),
        );
        // Once the joins are over and a few rounds have passed, the active views stay
        // symmetric at every instant, but for handshakes in flight.
        let calm = s.join_end() + s.config.shuffle_interval * 5;
        sim.run_until(calm).map_err(|e| e.to_string())?;
        sim.add_invariant(
            "active views symmetric",
            Some(Duration::from_millis(100)),
            symmetric_but_handshakes,
        );
        sim.run_until(s.settled()).map_err(|e| e.to_string())?;
        let (g, _) = active_graph(&sim);
        if g.components().len() != 1 {
            return Err(format!("{} components", g.components().len()));
        }
        let full = sim
            .nodes()
            .filter(|(_, m, _)| m.view().active_view().count() == 5)
            .count();
        if full < 140 {
            return Err(format!("only {full} of 150 views full"));
        }
        Ok(())
    });
}

#[test]
fn the_overlay_heals_after_mass_failure_with_nobody_isolated() {
    check_seeds(0..3, |seed| {
        let s = small(200, seed);
        for percent in [50, 90] {
            let r = scenario::failure(&s, percent).map_err(|e| e.to_string())?;
            if r.heal_rounds.is_none() || r.isolated != 0 || r.components != 1 {
                return Err(format!("{percent}%: {r:?}"));
            }
            if percent == 50 && r.reliability < 0.99 {
                return Err(format!("{percent}%: reliability {}", r.reliability));
            }
        }
        Ok(())
    });
}

#[test]
fn a_healed_partition_merges_into_one_component() {
    check_seeds(0..4, |seed| {
        let s = small(120, seed);
        let mut sim = scenario::build(&s).map_err(|e| e.to_string())?;
        let t = s.settled();
        sim.run_until(t).map_err(|e| e.to_string())?;
        let left: Vec<u64> = (0..60).collect();
        let round = s.config.shuffle_interval;
        sim.schedule_partition(t, &[left])
            .map_err(|e| e.to_string())?;
        sim.schedule_heal(t + round * 5);
        sim.run_until(t + round * 4).map_err(|e| e.to_string())?;
        let (g, _) = active_graph(&sim);
        if g.components().len() < 2 {
            return Err("the partition did not split the overlay".into());
        }
        sim.run_until(t + round * 30).map_err(|e| e.to_string())?;
        let (g, _) = active_graph(&sim);
        if g.components().len() != 1 {
            return Err(format!("{} components after healing", g.components().len()));
        }
        symmetric_but_handshakes(&sim)
    });
}

#[test]
fn a_node_with_both_views_empty_rejoins_through_its_contacts() {
    check_seeds(0..3, |seed| {
        let mut s = small(60, seed);
        s.config.reconnect_capacity = 0; // only the rejoin path may bring it back
        let mut sim = scenario::build(&s).map_err(|e| e.to_string())?;
        let t = s.settled();
        sim.run_until(t).map_err(|e| e.to_string())?;
        // Cut node 50 off from everyone until both its views have run dry.
        sim.schedule_partition(t, &[vec![50]])
            .map_err(|e| e.to_string())?;
        let round = s.config.shuffle_interval;
        sim.schedule_heal(t + round * 10);
        sim.run_until(t + round * 10).map_err(|e| e.to_string())?;
        let v = sim.node(&50).expect("exists").view();
        if v.active_view().count() + v.passive_view().count() != 0 || v.stats().rejoins == 0 {
            return Err(format!("views did not run dry: {:?}", v.stats()));
        }
        // Healed: a later rejoin (backoff at most 8 rounds) brings it back.
        sim.run_until(t + round * 20).map_err(|e| e.to_string())?;
        let v = sim.node(&50).expect("exists").view();
        if v.active_view().count() == 0 {
            return Err(format!("still isolated: {:?}", v.stats()));
        }
        let (g, _) = active_graph(&sim);
        if g.components().len() != 1 {
            return Err(format!("{} components", g.components().len()));
        }
        Ok(())
    });
}

#[test]
fn random_fault_plans_leave_one_overlay_once_the_faults_stop() {
    use epidemic_sim::plan::{Fault, FaultPlan, PlanShape};
    use rand::SeedableRng;
    check_seeds(0..6, |seed| {
        let s = small(100, seed);
        let mut sim = scenario::build(&s).map_err(|e| e.to_string())?;
        let t = s.settled();
        sim.run_until(t).map_err(|e| e.to_string())?;
        let round = s.config.shuffle_interval;
        let shape = PlanShape {
            nodes: 100,
            horizon: round * 10,
            max_faults: 30,
            restarts: false,
            protected: 4,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut plan = FaultPlan::random(&mut rng, &shape);
        for f in &mut plan.faults {
            f.0 += t; // the plan starts once the overlay is built
        }
        let peers: Vec<u64> = (0..100).collect();
        plan.apply(&mut sim, &peers).map_err(|e| e.to_string())?;
        let c = s.config.clone();
        sim.add_invariant(
            "views within bounds",
            Some(Duration::from_millis(250)),
            move |sim| bounds(sim, &c),
        );
        // The faults stop: heal, links and speeds back to normal.
        let calm = t + round * 10;
        sim.schedule_heal(calm);
        for (_, f) in &plan.faults {
            match f {
                Fault::Link { from, to, .. } => {
                    sim.schedule_link(calm, &peers[*from], &peers[*to], None)
                        .map_err(|e| e.to_string())?;
                }
                Fault::Slow(i, _) => {
                    sim.schedule_slow(calm, &peers[*i], Duration::ZERO)
                        .map_err(|e| e.to_string())?;
                }
                _ => {}
            }
        }
        sim.run_until(calm + round * 30)
            .map_err(|e| e.to_string())?;
        let (g, _) = active_graph(&sim);
        let isolated = g.isolated();
        if g.components().len() != 1 || isolated != 0 {
            return Err(format!(
                "{} components, {isolated} isolated after {} faults",
                g.components().len(),
                plan.faults.len()
            ));
        }
        symmetric_but_handshakes(&sim)
    });
}

#[test]
fn crashed_nodes_that_restart_rejoin_the_overlay() {
    use epidemic_sim::plan::{FaultPlan, PlanShape};
    use rand::SeedableRng;
    check_seeds(0..6, |seed| {
        let s = small(100, seed);
        let mut sim = scenario::build(&s).map_err(|e| e.to_string())?;
        sim.on_restart(|_, old: &mut OverlayNode, rng| {
            old.restarted(rand_chacha::ChaCha8Rng::from_rng(rng))
        });
        let t = s.settled();
        sim.run_until(t).map_err(|e| e.to_string())?;
        let round = s.config.shuffle_interval;
        let shape = PlanShape {
            nodes: 100,
            horizon: round * 10,
            max_faults: 40,
            restarts: true,
            protected: 4,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        let mut plan = FaultPlan::random(&mut rng, &shape);
        plan.faults.retain(|f| {
            matches!(
                f.1,
                epidemic_sim::plan::Fault::Crash(_) | epidemic_sim::plan::Fault::Restart(_)
            )
        });
        for f in &mut plan.faults {
            f.0 += t;
        }
        let peers: Vec<u64> = (0..100).collect();
        plan.apply(&mut sim, &peers).map_err(|e| e.to_string())?;
        sim.run_until(t + round * 40).map_err(|e| e.to_string())?;
        let (g, _) = active_graph(&sim);
        let isolated = g.isolated();
        if g.components().len() != 1 || isolated != 0 {
            return Err(format!(
                "{} components, {isolated} isolated",
                g.components().len()
            ));
        }
        symmetric_but_handshakes(&sim)
    });
}
