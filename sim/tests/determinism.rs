//! The same seed gives the same run, bit for bit; a different seed a different one —
//! through loss, duplication, jitter, partitions, crashes and restarts.

mod support;

use std::time::Duration;

use epidemic_sim::flood::{self, FloodScenario};
use epidemic_sim::{GilbertElliott, LinkConfig, Loss, Sim, SimConfig, Transport, Wire};
use support::{Ev, Prober};

const MS: Duration = Duration::from_millis(1);

fn noisy() -> LinkConfig {
    LinkConfig {
        latency: 5 * MS,
        jitter: 20 * MS,
        loss: Loss::Bursty(GilbertElliott::with_rate(0.05, 3.0)),
        duplicate: 0.02,
    }
}

#[test]
fn flood_same_seed_same_hash_and_figures() {
    let s = |seed| FloodScenario {
        nodes: 300,
        degree: 6,
        messages: 5,
        link: noisy(),
        seed,
        ..FloodScenario::default()
    };
    let a = flood::run(&s(17)).unwrap();
    let b = flood::run(&s(17)).unwrap();
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(
        (a.deliveries, a.bytes_sent, a.dropped, a.duplicated),
        (b.deliveries, b.bytes_sent, b.dropped, b.duplicated)
    );
    assert_eq!(a.curve, b.curve);
    assert_eq!(
        a.last_delivery_ms_mean.to_bits(),
        b.last_delivery_ms_mean.to_bits()
    );
    assert_eq!(a.latency_ms_p99.to_bits(), b.latency_ms_p99.to_bits());
    let c = flood::run(&s(18)).unwrap();
    assert_ne!(a.trace_hash, c.trace_hash);
}

/// A mesh of probers through every fault the simulator has; returns the trace hash and the
/// events.
fn chaos(seed: u64, transport: Transport) -> (u64, Vec<(Duration, u64, Ev)>) {
    let config = SimConfig {
        seed,
        link: noisy(),
        transport,
        record_events: true,
        ..SimConfig::default()
    };
    let mut sim: Sim<Prober> = Sim::new(config, Wire::unsized_());
    let start = sim.instant() + MS;
    for me in 0..6u64 {
        let targets = (0..6).filter(|&t| t != me).collect();
        sim.add_node(me, Prober::new(me, targets, 7 * MS, 60, start))
            .unwrap();
    }
    sim.on_restart(|&me, old: &mut Prober, _| {
        let mut p = Prober::listener(me);
        p.generation = old.generation + 1;
        p
    });
    sim.schedule_partition(100 * MS, &[vec![0, 1, 2]]).unwrap();
    sim.schedule_heal(200 * MS);
    sim.schedule_crash(150 * MS, &4).unwrap();
    sim.schedule_restart(260 * MS, &4).unwrap();
    sim.schedule_crash(300 * MS, &0).unwrap();
    sim.schedule_link(50 * MS, &1, &2, Some(LinkConfig::down()))
        .unwrap();
    sim.schedule_link(250 * MS, &1, &2, None).unwrap();
    sim.run_until_quiescent(Duration::from_secs(5)).unwrap();
    let start = sim.instant() - sim.now();
    // Instants differ between runs (the epoch is the wall clock): compare offsets.
    let events = sim
        .events()
        .iter()
        .map(|e| (e.at, e.node, strip(e.event, start)))
        .collect();
    (sim.trace_hash(), events)
}

/// Replaces instants with a fixed base so events of two runs compare.
fn strip(ev: Ev, start: std::time::Instant) -> Ev {
    #[allow(clippy::disallowed_methods)] // a fixed reference point for comparison only
    let base = *BASE.get_or_init(std::time::Instant::now);
    match ev {
        Ev::Got {
            from,
            seq,
            sent,
            at,
        } => Ev::Got {
            from,
            seq,
            sent: base + (sent - start),
            at: base + (at - start),
        },
        Ev::LinkDown { peer, at } => Ev::LinkDown {
            peer,
            at: base + (at - start),
        },
    }
}

static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

#[test]
fn chaos_same_seed_same_trace_across_crash_restart_and_partitions() {
    for transport in [
        Transport::Datagram,
        Transport::Connection {
            failure_detection: 30 * MS,
        },
    ] {
        let (h1, e1) = chaos(99, transport);
        let (h2, e2) = chaos(99, transport);
        assert_eq!(h1, h2, "{transport:?}");
        assert_eq!(e1, e2, "{transport:?}");
        assert!(e1.len() > 500, "the scenario did something: {}", e1.len());
        let (h3, _) = chaos(100, transport);
        assert_ne!(
            h1, h3,
            "{transport:?}: a different seed gives a different trace"
        );
    }
}

#[test]
fn distinct_seeds_give_distinct_hashes() {
    let hashes: std::collections::BTreeSet<u64> = (0..20)
        .map(|seed| chaos(seed, Transport::Datagram).0)
        .collect();
    assert_eq!(hashes.len(), 20);
}
