//! Partitions, crashes and restarts, connection transports, invariants and timers.

mod support;

use std::time::Duration;

use epidemic_sim::{LinkConfig, Sim, SimConfig, SimError, Transport, Wire};
use support::{Ev, Prober, receipts};

const MS: Duration = Duration::from_millis(1);

/// `n` nodes, each probing every other every `period`, `count` times, starting at 1 ms.
fn mesh(config: SimConfig, n: u64, period: Duration, count: u64) -> Sim<Prober> {
    let mut sim = Sim::new(config, Wire::unsized_());
    let start = sim.instant() + MS;
    for me in 0..n {
        let targets = (0..n).filter(|&t| t != me).collect();
        sim.add_node(me, Prober::new(me, targets, period, count, start))
            .unwrap();
    }
    sim
}

fn lossless() -> SimConfig {
    SimConfig {
        link: LinkConfig {
            loss: epidemic_sim::Loss::None,
            ..LinkConfig::default()
        },
        ..SimConfig::with_seed(1)
    }
}

#[test]
fn a_partition_drops_all_traffic_across_the_cut_and_none_inside_then_heals() {
    let mut sim = mesh(lossless(), 4, 10 * MS, 100);
    let (cut, heal) = (Duration::from_millis(300), Duration::from_millis(600));
    sim.schedule_partition(cut, &[vec![0, 1], vec![2, 3]])
        .unwrap();
    sim.schedule_heal(heal);
    sim.run_until_quiescent(Duration::from_secs(10)).unwrap();
    let side = |n: u64| n / 2;
    let start = sim.instant() - sim.now();
    let mut crossed_before = 0;
    let mut crossed_after = 0;
    for e in sim.events() {
        let Ev::Got { from, sent, .. } = e.event else {
            continue;
        };
        let sent = sent - start;
        let crosses = side(from) != side(e.node);
        if crosses {
            assert!(
                sent < cut || sent >= heal,
                "crossed the cut: sent at {sent:?}"
            );
            if sent < cut {
                crossed_before += 1;
            } else {
                crossed_after += 1;
            }
        }
    }
    assert!(
        crossed_before > 0 && crossed_after > 0,
        "traffic crossed before the cut and after the heal"
    );
    // Inside each side nothing was lost: 4 nodes × 1 same-side peer × 100 probes.
    let inside = receipts(sim.events())
        .iter()
        .filter(|r| side(r.0) == side(r.1))
        .count();
    assert_eq!(inside, 400);
    // Across: probes sent in [300, 600) ms — 30 rounds × 8 directed cross links.
    assert_eq!(sim.metrics().drops.partition, 30 * 8);
    assert_eq!(sim.metrics().drops.total(), 30 * 8);
}

#[test]
fn nodes_outside_every_set_form_their_own_side() {
    let mut sim = mesh(lossless(), 3, 10 * MS, 10);
    sim.schedule_partition(Duration::ZERO, &[vec![0]]).unwrap();
    sim.run_until_quiescent(Duration::from_secs(10)).unwrap();
    let r = receipts(sim.events());
    assert!(r.iter().all(|&(to, from, _, _)| to != 0 && from != 0));
    assert_eq!(r.len(), 20, "1 and 2 still talk");
}

#[test]
fn a_crashed_node_receives_nothing_sends_nothing_and_restarts_with_durable_state() {
    let mut sim = mesh(lossless(), 3, 10 * MS, 100);
    sim.on_restart(|&me, old: &mut Prober, _rng| {
        // Durable: the generation counter. Volatile: everything else.
        let mut fresh = Prober::listener(me);
        fresh.generation = old.generation + 1;
        fresh
    });
    let (down, up) = (Duration::from_millis(200), Duration::from_millis(500));
    sim.schedule_crash(down, &2).unwrap();
    sim.schedule_restart(up, &2).unwrap();
    sim.run_until(Duration::from_millis(350)).unwrap();
    assert!(!sim.is_up(&2));
    let received_while_down = sim.node(&2).unwrap().received;
    sim.run_until_quiescent(Duration::from_secs(10)).unwrap();
    assert!(sim.is_up(&2));
    let start = sim.instant() - sim.now();
    for e in sim.events() {
        let Ev::Got { from, at, sent, .. } = e.event else {
            continue;
        };
        let (at, sent) = (at - start, sent - start);
        if e.node == 2 {
            assert!(
                !(down..up).contains(&at),
                "node 2 received at {at:?} while crashed"
            );
        }
        if from == 2 {
            assert!(
                !(down..up).contains(&sent),
                "node 2 sent at {sent:?} while crashed"
            );
        }
    }
    // The fresh machine counts from zero and has its durable generation.
    let n2 = sim.node(&2).unwrap();
    assert_eq!(n2.generation, 1);
    assert_eq!(
        n2.received,
        sim.events()
            .iter()
            .filter(|e| e.node == 2 && matches!(e.event, Ev::Got { at, .. } if at - start >= up))
            .count() as u64
    );
    assert!(received_while_down > 0);
    // Messages to 2 during the crash were dropped as such: 2 senders × 30 rounds, minus
    // those in flight that landed before 200 ms... all sends at 201..491 ms land while down.
    assert!(
        sim.metrics().drops.crashed >= 2 * 29,
        "{:?}",
        sim.metrics().drops
    );
}

#[test]
fn restart_without_a_factory_is_refused() {
    let mut sim = mesh(lossless(), 2, MS, 1);
    assert_eq!(
        sim.schedule_restart(MS, &1),
        Err(SimError::NoRestartFactory)
    );
    assert!(matches!(
        sim.schedule_crash(MS, &9),
        Err(SimError::UnknownPeer(_))
    ));
    assert!(matches!(
        sim.add_node(0, Prober::listener(0)),
        Err(SimError::DuplicatePeer(_))
    ));
}

fn connections(seed: u64) -> SimConfig {
    SimConfig {
        transport: Transport::Connection {
            failure_detection: 100 * MS,
        },
        link: LinkConfig {
            latency: 10 * MS,
            jitter: 10 * MS,
            ..LinkConfig::default()
        },
        ..SimConfig::with_seed(seed)
    }
}

#[test]
fn connections_are_fifo_even_with_jitter() {
    let mut sim = mesh(connections(4), 2, MS / 4, 2000);
    sim.run_until_quiescent(Duration::from_secs(10)).unwrap();
    let r = receipts(sim.events());
    assert_eq!(r.len(), 4000);
    for to in [0, 1] {
        let seqs: Vec<u64> = r.iter().filter(|x| x.0 == to).map(|x| x.2).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "stream to {to} reordered"
        );
    }
}

#[test]
fn a_crash_breaks_connections_and_peers_hear_link_down() {
    let mut sim = mesh(connections(5), 3, 10 * MS, 50);
    let crash = Duration::from_millis(205);
    sim.schedule_crash(crash, &2).unwrap();
    sim.run_until_quiescent(Duration::from_secs(10)).unwrap();
    let start = sim.instant() - sim.now();
    let downs: Vec<(u64, u64, Duration)> = sim
        .events()
        .iter()
        .filter_map(|e| match e.event {
            Ev::LinkDown { peer, at } => Some((e.node, peer, at - start)),
            Ev::Got { .. } => None,
        })
        .collect();
    // Both survivors hear that 2 is gone, exactly failure_detection after the crash.
    for survivor in [0, 1] {
        assert!(
            downs.contains(&(survivor, 2, crash + 100 * MS)),
            "{downs:?}"
        );
    }
    assert!(downs.iter().all(|&(node, peer, _)| node != 2 && peer == 2));
    // Sends to 2 after the crash fail (no delivery) and are reported again as dial failures.
    assert!(sim.metrics().drops.crashed > 0);
    assert!(
        downs.len() > 2,
        "repeated dial failures are reported: {downs:?}"
    );
}

#[test]
fn a_partition_breaks_crossing_connections_and_disconnect_is_heard() {
    let mut sim = mesh(connections(6), 2, 10 * MS, 5);
    sim.run_until_quiescent(Duration::from_secs(1)).unwrap();
    sim.schedule_partition(sim.now(), &[vec![0]]).unwrap();
    sim.run_for(Duration::from_secs(1)).unwrap();
    let downs = sim
        .events()
        .iter()
        .filter(|e| matches!(e.event, Ev::LinkDown { .. }))
        .count();
    assert_eq!(downs, 2, "both ends hear the cut connection");

    // An explicit Disconnect: the remote side hears it one latency later.
    let mut sim = Sim::new(connections(7), Wire::unsized_());
    let start = sim.instant() + MS;
    let mut a = Prober::new(0, vec![1], 10 * MS, 3, start);
    a.disconnect_after = Some(3);
    sim.add_node(0, a).unwrap();
    sim.add_node(1, Prober::listener(1)).unwrap();
    sim.run_until_quiescent(Duration::from_secs(1)).unwrap();
    let heard: Vec<_> = sim
        .events()
        .iter()
        .filter(|e| matches!(e.event, Ev::LinkDown { peer: 0, .. }))
        .map(|e| e.node)
        .collect();
    assert_eq!(heard, [1]);
}

#[test]
fn invariants_run_periodically_and_a_failure_names_the_seed() {
    use std::cell::Cell;
    use std::rc::Rc;
    let mut sim = mesh(SimConfig::with_seed(42), 2, 10 * MS, 100);
    let calls = Rc::new(Cell::new(Vec::new()));
    let seen = Rc::clone(&calls);
    sim.add_invariant("tick", Some(100 * MS), move |s: &Sim<Prober>| {
        let mut v = seen.take();
        v.push(s.now());
        seen.set(v);
        Ok(())
    });
    sim.run_until(Duration::from_millis(450)).unwrap();
    let at = calls.take();
    // Every 100 ms, then once at the end of the run.
    let want: Vec<Duration> = [100, 200, 300, 400, 450].iter().map(|&m| m * MS).collect();
    assert_eq!(at, want);

    sim.add_invariant(
        "fewer than 50 receipts",
        Some(50 * MS),
        |s: &Sim<Prober>| {
            let n = s.metrics().delivered.messages;
            if n < 50 {
                Ok(())
            } else {
                Err(format!("{n} receipts"))
            }
        },
    );
    let err = sim.run_until(Duration::from_secs(5)).unwrap_err();
    let SimError::Invariant { name, seed, at, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((name.as_str(), *seed), ("fewer than 50 receipts", 42));
    assert!(*at < Duration::from_secs(1));
    assert!(err.to_string().contains("SEED=42"));
}

#[test]
fn quiescence_is_reached_only_when_nothing_is_left() {
    let mut sim = mesh(SimConfig::with_seed(1), 2, 10 * MS, 3);
    assert!(!sim.is_quiescent());
    assert!(sim.run_until_quiescent(Duration::from_secs(1)).unwrap());
    assert_eq!(sim.pending(), 0);
    // A prober with a million probes does not go quiet in one virtual second.
    let mut busy = mesh(SimConfig::with_seed(1), 2, 10 * MS, 1_000_000);
    assert!(!busy.run_until_quiescent(Duration::from_secs(1)).unwrap());
    assert_eq!(busy.now(), Duration::from_secs(1));
}

/// A machine that leaves its deadline in the past after `handle_timeout`: the simulator
/// must still make progress (it wakes it 1 ns later).
#[derive(Debug, Default)]
struct Stuck {
    wakes: u64,
    at: Option<std::time::Instant>,
}

impl epidemic_core::Machine for Stuck {
    type Peer = u64;
    type Message = ();
    type Event = ();
    fn handle_message(&mut self, _: std::time::Instant, _: u64, (): ()) {}
    fn handle_timeout(&mut self, _: std::time::Instant) {
        self.wakes += 1;
    }
    fn poll_output(&mut self) -> Option<epidemic_core::Output<u64, (), ()>> {
        None
    }
    fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.at
    }
}

#[test]
fn a_deadline_stuck_in_the_past_still_lets_time_advance() {
    let mut sim: Sim<Stuck> = Sim::new(SimConfig::default(), Wire::unsized_());
    let at = Some(sim.instant());
    sim.add_node(0, Stuck { wakes: 0, at }).unwrap();
    sim.run_until(Duration::from_micros(1)).unwrap();
    // Woken at 0, 1, 2, ... 1000 ns.
    assert_eq!(sim.node(&0).unwrap().wakes, 1001);
}

#[test]
fn a_filter_drops_exactly_the_messages_it_refuses() {
    let mut sim = mesh(lossless(), 2, MS, 100);
    sim.set_filter(Some(Box::new(|_, &from, _, probe: &support::Probe| {
        from != 0 || probe.seq % 2 == 1
    })));
    sim.run_until_quiescent(Duration::from_secs(1)).unwrap();
    let r = receipts(sim.events());
    let from0: Vec<u64> = r.iter().filter(|x| x.1 == 0).map(|x| x.2).collect();
    assert_eq!(from0.len(), 50);
    assert!(from0.iter().all(|s| s % 2 == 1));
    assert_eq!(r.iter().filter(|x| x.1 == 1).count(), 100);
    assert_eq!(sim.metrics().drops.filtered, 50);
}

#[test]
fn a_close_arrives_after_the_data_still_in_flight() {
    for seed in 0..20 {
        let mut sim = Sim::new(connections(seed), Wire::unsized_());
        let start = sim.instant() + MS;
        let mut a = Prober::new(0, vec![1], MS / 10, 50, start);
        a.disconnect_after = Some(50);
        sim.add_node(0, a).unwrap();
        sim.add_node(1, Prober::listener(1)).unwrap();
        sim.run_until_quiescent(Duration::from_secs(1)).unwrap();
        let at_1: Vec<&Ev> = sim
            .events()
            .iter()
            .filter(|e| e.node == 1)
            .map(|e| &e.event)
            .collect();
        assert_eq!(at_1.len(), 51, "seed {seed}");
        assert!(
            matches!(at_1.last(), Some(Ev::LinkDown { peer: 0, .. })),
            "seed {seed}: {at_1:?}"
        );
    }
}

#[test]
fn a_late_joiner_is_down_until_it_starts() {
    let mut sim = mesh(lossless(), 2, 10 * MS, 30);
    let join = Duration::from_millis(150);
    let start = sim.instant() - sim.now();
    sim.add_node_at(
        join,
        2,
        Prober::new(2, vec![0, 1], 10 * MS, 5, start + join),
    )
    .unwrap();
    // Nodes 0 and 1 probe node 2 as well, from the start.
    sim.command(&0, |m, _| m.targets.push(2)).unwrap();
    sim.run_until(join - MS).unwrap();
    assert!(!sim.is_up(&2));
    assert_eq!(sim.node(&2).unwrap().received, 0);
    sim.run_until_quiescent(Duration::from_secs(1)).unwrap();
    assert!(sim.is_up(&2));
    let got_by_2: Vec<Duration> = sim
        .events()
        .iter()
        .filter(|e| e.node == 2 && matches!(e.event, Ev::Got { .. }))
        .map(|e| e.at)
        .collect();
    assert!(!got_by_2.is_empty() && got_by_2.iter().all(|&t| t >= join));
    assert!(
        sim.metrics().drops.crashed > 0,
        "probes to 2 before it started were dropped"
    );
    // Its own probes went out after it started: 5 rounds to 2 peers.
    assert_eq!(
        sim.events()
            .iter()
            .filter(|e| matches!(e.event, Ev::Got { from: 2, .. }))
            .count(),
        10
    );
}

#[test]
fn the_flight_recorder_keeps_the_last_steps_in_order() {
    let mut sim = mesh(lossless(), 2, 10 * MS, 3);
    sim.schedule_crash(25 * MS, &1).unwrap();
    sim.run_until_quiescent(Duration::from_secs(1)).unwrap();
    let steps = sim.recent_steps();
    assert!(steps.len() <= 32 && !steps.is_empty());
    // The whole run fits in 32 steps: deliveries, timeouts and the crash are all there.
    assert!(
        steps.iter().any(|l| l.ends_with("deliver msg 0 -> 1")),
        "{steps:#?}"
    );
    assert!(steps.iter().any(|l| l.ends_with("crash 1")), "{steps:#?}");
    assert!(
        steps.iter().any(|l| l.ends_with("timeout at 0")),
        "{steps:#?}"
    );
    let config = SimConfig {
        flight_recorder: 0,
        ..lossless()
    };
    let mut quiet = mesh(config, 2, 10 * MS, 3);
    quiet.run_until_quiescent(Duration::from_secs(1)).unwrap();
    assert!(quiet.recent_steps().is_empty());
}

#[test]
fn the_event_hook_sees_every_event_even_when_none_are_recorded() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let config = SimConfig {
        record_events: false,
        ..lossless()
    };
    let mut sim = mesh(config, 3, 10 * MS, 20);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&seen);
    sim.set_event_hook(Some(Box::new(move |at, &node, ev: &Ev| {
        sink.borrow_mut().push((at, node, *ev));
    })));
    sim.run_until_quiescent(Duration::from_secs(1)).unwrap();
    assert!(sim.events().is_empty(), "nothing recorded");
    let seen = seen.borrow();
    assert_eq!(seen.len() as u64, sim.metrics().events);
    assert_eq!(seen.len(), 3 * 2 * 20);
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "in time order");
}

#[test]
fn events_at_the_end_of_time_do_not_stall_the_invariant_clock() {
    // A link that takes "forever" puts deliveries at the last virtual instant; running to
    // it must still finish, with or without periodic invariants.
    for periodic in [false, true] {
        let link = LinkConfig {
            latency: Duration::MAX,
            ..LinkConfig::default()
        };
        let mut sim = mesh(SimConfig { link, ..lossless() }, 2, MS, 2);
        if periodic {
            sim.add_invariant(
                "always fine",
                Some(Duration::from_secs(1)),
                |_: &Sim<Prober>| Ok(()),
            );
        }
        assert!(sim.run_until_quiescent(Duration::MAX).unwrap());
        assert_eq!(receipts(sim.events()).len(), 4);
    }
}
