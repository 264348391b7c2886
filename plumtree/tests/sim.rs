//! Seeded simulations of HyParView + Plumtree (small N, fast): exactly-once delivery to
//! every live node, a spanning tree under a single sender, and broadcasts sent during a
//! mass failure reaching every live node.

use std::time::Duration;

use epidemic_plumtree::scenario::{self, Scenario};
use epidemic_sim::check_seeds;

fn small(seed: u64) -> Scenario {
    Scenario {
        nodes: 120,
        rounds: 3,
        broadcasts: 10,
        bursts: 3,
        burst_size: 5,
        settle: Duration::from_secs(5),
        seed,
        ..Scenario::default()
    }
}

#[test]
fn stable_runs_deliver_everything_exactly_once_and_settle_into_a_tree() {
    check_seeds(0..3, |seed| {
        let s = small(seed);
        let runs = scenario::stable(&s, false).map_err(|e| e.to_string())?;
        for r in &runs {
            if r.reliability_min < 1.0 || r.double_deliveries > 0 {
                return Err(format!(
                    "{}: reliability {} doubles {}",
                    r.name, r.reliability_min, r.double_deliveries
                ));
            }
        }
        let single = &runs[0];
        if single.rmr_max_after_warmup > 0.0 {
            return Err(format!(
                "single sender: RMR {} after warm-up: {:?}",
                single.rmr_max_after_warmup,
                single
                    .per_broadcast
                    .iter()
                    .map(|b| b.rmr)
                    .collect::<Vec<_>>()
            ));
        }
        Ok::<(), String>(())
    });
}

#[test]
fn the_eager_links_form_a_spanning_tree_under_a_single_sender() {
    check_seeds(0..3, |seed| {
        let s = small(seed);
        let mut sim = scenario::build(&s, false).map_err(|e| e.to_string())?;
        sim.run_until(s.settled()).map_err(|e| e.to_string())?;
        for i in 0..6u32 {
            sim.command(&0, |m, now| m.broadcast(now, vec![i as u8].into()))
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            sim.run_for(Duration::from_secs(1))
                .map_err(|e| e.to_string())?;
        }
        let (edges, one_sided) = scenario::eager_edges(&sim);
        if one_sided != 0 || edges.len() != s.nodes as usize - 1 {
            return Err(format!(
                "{} symmetric eager links (want {}), {one_sided} one-sided",
                edges.len(),
                s.nodes - 1
            ));
        }
        Ok(())
    });
}

#[test]
fn broadcasts_during_a_mass_failure_reach_every_live_node() {
    check_seeds(0..2, |seed| {
        for percent in [40, 80] {
            let s = Scenario {
                during: 4,
                after: 2,
                ..small(seed)
            };
            let r = scenario::failure(&s, percent, false).map_err(|e| e.to_string())?;
            if r.reliability_min < 1.0 || r.double_deliveries > 0 {
                return Err(format!(
                    "{percent}%: reliability {:?}, doubles {}",
                    r.per_broadcast
                        .iter()
                        .map(|b| b.reliability)
                        .collect::<Vec<_>>(),
                    r.double_deliveries
                ));
            }
        }
        Ok::<(), String>(())
    });
}
