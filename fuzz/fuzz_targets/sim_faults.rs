//! The simulator's link model and event queue under arbitrary fault schedules: whatever
//! the schedule (crashes, restarts, late joins, slow nodes, partitions, link overrides
//! with any probabilities, message filters, either transport), nothing panics, every message is accounted for, no node delivers a
//! broadcast twice, and the same input gives the same trace hash.

#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::Bytes;
use epidemic_sim::flood::{self, Flood};
use epidemic_sim::{FilterFn, GilbertElliott, LinkConfig, Loss, Sim, SimConfig, Transport};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Schedule {
    seed: u64,
    nodes: u8,
    connection: Option<u8>,
    link: Link,
    ops: Vec<Op>,
}

#[derive(Debug, Arbitrary)]
struct Link {
    latency: Delay,
    jitter: Delay,
    loss: LossKind,
    duplicate: f64,
}

/// Mostly realistic delays, sometimes any at all (up to "never").
#[derive(Debug, Arbitrary)]
enum Delay {
    Micros(u16),
    Nanos(u64),
}

impl Delay {
    fn duration(&self) -> Duration {
        match *self {
            Delay::Micros(us) => Duration::from_micros(us.into()),
            Delay::Nanos(ns) => Duration::from_nanos(ns),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum LossKind {
    None,
    Uniform(f64),
    Bursty(f64, f64, f64, f64),
}

#[derive(Debug, Arbitrary)]
enum Op {
    Crash(u16, u8),
    Restart(u16, u8),
    Partition(u16, u16),
    Heal(u16),
    SetLink(u16, u8, u8, Option<Link>),
    Broadcast(u16, u8, u8),
    Schedule(u16, u8, u8, u8),
    /// Drop every message whose id is a multiple of this (0: remove the filter).
    Filter(u8),
    /// A late joiner starting at this time, flooding to one existing node.
    Join(u16, u8),
    /// From this time, messages to this node arrive this many ms late.
    Slow(u16, u8, u16),
}

impl Link {
    fn config(&self) -> LinkConfig {
        LinkConfig {
            latency: self.latency.duration(),
            jitter: self.jitter.duration(),
            loss: match self.loss {
                LossKind::None => Loss::None,
                LossKind::Uniform(p) => Loss::Uniform(p),
                LossKind::Bursty(a, b, c, d) => Loss::Bursty(GilbertElliott {
                    p_good_to_bad: a,
                    p_bad_to_good: b,
                    loss_in_good: c,
                    loss_in_bad: d,
                }),
            },
            duplicate: self.duplicate,
        }
    }
}

const MAX_BROADCASTS: usize = 64;

fn run(s: &Schedule) -> u64 {
    let n = u64::from(s.nodes % 12) + 2;
    let transport = match s.connection {
        Some(ms) => Transport::Connection {
            failure_detection: Duration::from_millis(ms.into()),
        },
        None => Transport::Datagram,
    };
    let config = SimConfig {
        seed: s.seed,
        link: s.link.config(),
        transport,
        record_events: true,
        ..SimConfig::default()
    };
    let mut sim: Sim<Flood> = Sim::new(config, flood::wire());
    let overlay = flood::overlay(n as u32, 4, &mut sim.fork_rng());
    for (me, neighbors) in (0u64..).zip(overlay.clone()) {
        sim.add_node(me, Flood::new(me, neighbors, MAX_BROADCASTS))
            .expect("fresh peer");
    }
    sim.on_restart(move |&me, _old, _rng| {
        Flood::new(me, overlay[me as usize].clone(), MAX_BROADCASTS)
    });
    let ms = |t: u16| Duration::from_millis(u64::from(t % 2000));
    let node = |x: u8| u64::from(x) % n;
    let mut broadcasts = 0usize;
    let mut joined = 0u64;
    for op in s.ops.iter().take(64) {
        match *op {
            Op::Crash(t, x) => sim.schedule_crash(ms(t), &node(x)).expect("known peer"),
            Op::Restart(t, x) => sim.schedule_restart(ms(t), &node(x)).expect("factory set"),
            Op::Partition(t, mask) => {
                let side: Vec<u64> = (0..n).filter(|i| mask >> i & 1 == 1).collect();
                sim.schedule_partition(ms(t), &[side]).expect("known peers");
            }
            Op::Heal(t) => sim.schedule_heal(ms(t)),
            Op::SetLink(t, a, b, ref link) => {
                let link = link.as_ref().map(Link::config);
                sim.schedule_link(ms(t), &node(a), &node(b), link)
                    .expect("known peers");
            }
            Op::Broadcast(t, x, len) if broadcasts < MAX_BROADCASTS => {
                broadcasts += 1;
                let payload = Bytes::from(vec![len; usize::from(len)]);
                sim.schedule_command(ms(t), &node(x), move |m, now| {
                    m.broadcast(now, payload);
                })
                .expect("known peer");
            }
            Op::Schedule(t, x, count, every)
                if broadcasts + usize::from(count % 8) <= MAX_BROADCASTS =>
            {
                let count = count % 8;
                broadcasts += usize::from(count);
                let every = Duration::from_millis(u64::from(every));
                sim.schedule_command(ms(t), &node(x), move |m, now| {
                    m.schedule_broadcasts(now, u32::from(count), every, Bytes::from_static(b"x"));
                })
                .expect("known peer");
            }
            Op::Filter(m) => {
                let filter: Option<FilterFn<Flood>> = (m > 0).then(|| {
                    let m = u64::from(m);
                    Box::new(
                        move |_: Duration, _: &u64, _: &u64, msg: &flood::FloodMsg| {
                            !msg.id.is_multiple_of(m)
                        },
                    ) as FilterFn<Flood>
                });
                sim.set_filter(filter);
            }
            Op::Join(t, x) if joined < 4 => {
                let me = n + joined;
                joined += 1;
                sim.add_node_at(ms(t), me, Flood::new(me, vec![node(x)], MAX_BROADCASTS))
                    .expect("fresh peer");
            }
            Op::Slow(t, x, extra) => {
                let extra = Duration::from_millis(extra.into());
                sim.schedule_slow(ms(t), &node(x), extra)
                    .expect("known peer");
            }
            Op::Broadcast(..) | Op::Schedule(..) | Op::Join(..) => {}
        }
    }
    let quiet = sim
        .run_until_quiescent(Duration::MAX)
        .expect("no invariants to fail");
    assert!(quiet, "a finite schedule goes quiet");
    // Every message sent (plus every copy the network made) was delivered or dropped.
    let m = sim.metrics();
    assert_eq!(
        m.sent.messages + m.duplicated,
        m.delivered.messages + m.drops.total()
    );
    // Flood delivers each id at most once per node life: a restart forgets, so count
    // per (node, id) within a life only where the node never restarted.
    let restarted: Vec<u64> = s
        .ops
        .iter()
        .filter_map(|op| {
            if let Op::Restart(_, x) = op {
                Some(node(*x))
            } else {
                None
            }
        })
        .collect();
    let mut pairs: Vec<(u64, u64)> = sim
        .events()
        .iter()
        .filter(|e| !restarted.contains(&e.node))
        .map(|e| match e.event {
            flood::FloodEvent::Delivered { id, .. } => (e.node, id),
        })
        .collect();
    pairs.sort_unstable();
    assert!(
        pairs.windows(2).all(|w| w[0] != w[1]),
        "a node delivered a broadcast twice"
    );
    sim.trace_hash()
}

fuzz_target!(|s: Schedule| {
    let first = run(&s);
    assert_eq!(first, run(&s), "same input, same trace");
});
