//! Seeded simulations of HyParView + Plumtree (small N, fast): exactly-once delivery to
//! every live node, a spanning tree under a single sender, and broadcasts sent during a
//! mass failure reaching every live node.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use epidemic_plumtree::GossipEvent;
use epidemic_plumtree::scenario::{self, Scenario};
use epidemic_sim::check_seeds;
use epidemic_sim::graph::Graph;

fn small(seed: u64) -> Scenario {
    Scenario {
        nodes: 200,
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
        // More shuffle rounds first: the overlay still adds links for a while after the
        // joins, and each new link costs one redundant payload.
        let s = Scenario {
            rounds: 8,
            ..small(seed)
        };
        let runs = scenario::stable(&s, false).map_err(|e| e.to_string())?;
        for r in &runs {
            if r.reliability_min < 1.0 || r.double_deliveries > 0 {
                return Err(format!(
                    "{}: reliability {} doubles {}",
                    r.name, r.reliability_min, r.double_deliveries
                ));
            }
        }
        // The tree floors: a shortest-path tree is never shallower than flooding, and more
        // trees to choose from never make the best one deeper.
        let k = &runs[0].k_tree_floor;
        let ks: Vec<u32> = k.iter().map(|&(k, _)| k).collect();
        if ks != [1, 2, 4, 8, 16, 32]
            || k.iter().any(|&(_, x)| x < 1.0)
            || k.windows(2).any(|w| w[1].1 > w[0].1)
            || runs[0].single_tree_floor.is_none_or(|f| f < 1.0)
        {
            return Err(format!(
                "floors: single {:?}, K trees {k:?}",
                runs[0].single_tree_floor
            ));
        }
        // The redundancy targets: sequential random senders and bursts.
        let (random, bursts) = (&runs[1], &runs[2]);
        if random.rmr_after_warmup > 0.05 || bursts.rmr_after_warmup > 0.2 {
            return Err(format!(
                "RMR random senders {:.3}, bursts {:.3}",
                random.rmr_after_warmup, bursts.rmr_after_warmup
            ));
        }
        // After warm-up, a single sender's broadcasts travel a tree: RMR 0, except right
        // after the overlay added a link (it starts eager and closes a cycle).
        let single = &runs[0];
        let quiet: Vec<_> = single
            .per_broadcast
            .iter()
            .skip(s.warmup as usize)
            .filter(|b| b.links_up == 0)
            .collect();
        if quiet.len() < 4 || quiet.iter().any(|b| b.rmr != 0.0) {
            return Err(format!(
                "single sender after warm-up, (RMR, links up): {:?}",
                single
                    .per_broadcast
                    .iter()
                    .map(|b| (b.rmr, b.links_up))
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
        let ups: Rc<RefCell<Vec<Duration>>> = Rc::default();
        let u = Rc::clone(&ups);
        sim.set_event_hook(Some(Box::new(move |at, _, e: &GossipEvent<u64>| {
            if matches!(e, GossipEvent::NeighborUp(_)) {
                u.borrow_mut().push(at);
            }
        })));
        let mut last = Duration::ZERO;
        for i in 0..6u8 {
            last = sim.now();
            sim.command(&0, |m, now| m.broadcast(now, vec![i].into()))
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            sim.run_for(Duration::from_secs(1))
                .map_err(|e| e.to_string())?;
        }
        // Links the overlay added after the last broadcast started are eager and not yet
        // pruned: each may close one cycle.
        let late = ups.borrow().iter().filter(|&&t| t >= last).count() / 2;
        let (edges, one_sided) = scenario::eager_edges(&sim);
        let mut g = Graph::new(s.nodes as usize);
        for &(a, b) in &edges {
            let (a, b) = (u32::try_from(a).unwrap(), u32::try_from(b).unwrap());
            g.add_edge(a, b);
            g.add_edge(b, a);
        }
        let spanning = g.components().len() == 1;
        if one_sided != 0 || !spanning || edges.len() > s.nodes as usize - 1 + late {
            return Err(format!(
                "{} symmetric eager links (want {} + {late} new), {one_sided} one-sided, \
                 connected: {spanning}",
                edges.len(),
                s.nodes - 1
            ));
        }
        Ok(())
    });
}

#[test]
fn broadcasts_during_a_mass_failure_reach_every_live_node() {
    check_seeds(0..4, |seed| {
        for percent in [20, 40, 60, 80] {
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

#[test]
fn plumtree_neighbours_are_hyparviews_active_view() {
    check_seeds(0..3, |seed| {
        let s = small(seed);
        let mut sim = scenario::build(&s, false).map_err(|e| e.to_string())?;
        // Mid-join and after the shuffles: the composite keeps both layers in step.
        for until in [s.settled() / 3, s.settled()] {
            sim.run_until(until).map_err(|e| e.to_string())?;
            for (p, m, up) in sim.nodes() {
                if !up {
                    continue;
                }
                let mut tree: Vec<u64> = m.tree().eager_peers().copied().collect();
                tree.extend(m.tree().lazy_peers().copied());
                tree.sort_unstable();
                let mut view: Vec<u64> = m.view().active_view().copied().collect();
                view.sort_unstable();
                if tree != view {
                    return Err(format!(
                        "node {p}: tree peers {tree:?}, active view {view:?}"
                    ));
                }
            }
        }
        Ok(())
    });
}

#[test]
fn composite_messages_have_golden_bytes() {
    use epidemic_core::codec::{decode, encode};
    use epidemic_plumtree::{GossipMessage, Message};
    let m: GossipMessage<u64> = Message::Prune.into();
    assert_eq!(encode(&m).unwrap(), [4, 1, 1, 3]);
    let v: GossipMessage<u64> = epidemic_hyparview::Message::Disconnect { alive: true }.into();
    assert_eq!(encode(&v).unwrap(), [4, 1, 0, 4, 1]);
    assert_eq!(decode::<GossipMessage<u64>>(&[4, 1, 2]).ok(), None);
}

/// Steady traffic (a broadcast every 5 ms from random senders) still settles into a tree:
/// every link is always within its prune grace, so the grace's cap is what cuts the
/// redundant ones (without it, RMR stays at 1.55 at 1,000 nodes).
#[test]
fn steady_traffic_still_settles_into_a_tree() {
    check_seeds(0..2, |seed| {
        let s = Scenario {
            broadcasts: 100,
            gap: Duration::from_millis(5),
            rounds: 8,
            ..small(seed)
        };
        let runs = scenario::stable(&s, false).map_err(|e| e.to_string())?;
        let random = &runs[1];
        if random.reliability_min < 1.0 || random.rmr_after_warmup > 0.05 {
            return Err(format!(
                "reliability {} RMR after warm-up {}",
                random.reliability_min, random.rmr_after_warmup
            ));
        }
        Ok(())
    });
}
