//! A small flooding protocol and its scenario: the simulator's end-to-end demo and
//! benchmark until the real protocols land (it is not one of them).
//!
//! Nodes sit on a fixed random overlay: a ring (so it is connected) plus random chords, for
//! a configured mean degree. The origin broadcasts a message every interval; every node
//! that sees a message id for the first time delivers it and forwards it to all its other
//! neighbours. Lost messages are not repaired: the delivery ratio shows what the overlay's
//! redundancy buys against loss.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_core::codec::{Envelope, protocol_id};
use epidemic_core::{BoundedQueue, Machine, MonotonicNow, Output, Overflow};
use hashbrown::HashSet;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{LinkConfig, SimConfig};
use crate::graph::Graph;
use crate::meter::{Measured, Meter};
use crate::sim::{Sim, SimError};
use crate::wire::Wire;

/// The one flooding message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloodMsg {
    /// Unique per broadcast: origin in the high 32 bits, sequence in the low.
    pub id: u64,
    /// Hops travelled so far.
    pub hop: u32,
    /// Application bytes, shared between forwarded copies.
    pub payload: Bytes,
}

/// What a flooding node tells its application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodEvent {
    /// A message was delivered here for the first time, `hop` hops from its origin (0 at
    /// the origin itself).
    Delivered {
        /// The message id.
        id: u64,
        /// Hops from the origin.
        hop: u32,
    },
}

/// A flooding node.
#[derive(Debug)]
pub struct Flood {
    me: u64,
    neighbors: Vec<u64>,
    seen: HashSet<u64>,
    /// Ids in `seen`, oldest first, so the set stays within its bound.
    seen_order: BoundedQueue<u64>,
    out: VecDeque<Output<u64, FloodMsg, FloodEvent>>,
    clock: MonotonicNow,
    schedule: Option<Schedule>,
    next_seq: u32,
}

#[derive(Debug)]
struct Schedule {
    remaining: u32,
    interval: Duration,
    next: Instant,
    payload: Bytes,
}

impl Flood {
    /// A node `me` flooding to `neighbors`, remembering at most `seen_capacity` ids.
    #[must_use]
    pub fn new(me: u64, neighbors: Vec<u64>, seen_capacity: usize) -> Self {
        Self {
            me,
            neighbors,
            seen: HashSet::new(),
            seen_order: BoundedQueue::new(seen_capacity, Overflow::DropOldest),
            out: VecDeque::new(),
            clock: MonotonicNow::new(),
            schedule: None,
            next_seq: 0,
        }
    }

    /// Broadcasts `payload` now; returns its id (unique while node ids fit in 32 bits and a
    /// node sends fewer than 2^32 broadcasts per life).
    pub fn broadcast(&mut self, now: Instant, payload: Bytes) -> u64 {
        self.clock.advance(now);
        let id = self.me << 32 | u64::from(self.next_seq);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.on_flood(
            None,
            &FloodMsg {
                id,
                hop: 0,
                payload,
            },
        );
        id
    }

    /// Broadcasts `count` messages of `payload`, the first at `start`, then one every
    /// `interval`.
    pub fn schedule_broadcasts(
        &mut self,
        start: Instant,
        count: u32,
        interval: Duration,
        payload: Bytes,
    ) {
        self.schedule = (count > 0).then_some(Schedule {
            remaining: count,
            interval,
            next: start,
            payload,
        });
    }

    /// This node's neighbours.
    #[must_use]
    pub fn neighbors(&self) -> &[u64] {
        &self.neighbors
    }

    fn on_flood(&mut self, from: Option<u64>, msg: &FloodMsg) {
        if !self.seen.insert(msg.id) {
            return;
        }
        if let Some(evicted) = self.seen_order.push(msg.id) {
            self.seen.remove(&evicted);
        }
        self.out.push_back(Output::Event(FloodEvent::Delivered {
            id: msg.id,
            hop: msg.hop,
        }));
        for &n in &self.neighbors {
            if Some(n) != from {
                self.out.push_back(Output::Send {
                    to: n,
                    msg: FloodMsg {
                        id: msg.id,
                        hop: msg.hop.saturating_add(1),
                        payload: msg.payload.clone(),
                    },
                });
            }
        }
    }
}

impl Machine for Flood {
    type Peer = u64;
    type Message = FloodMsg;
    type Event = FloodEvent;

    fn handle_message(&mut self, now: Instant, from: u64, msg: FloodMsg) {
        self.clock.advance(now);
        self.on_flood(Some(from), &msg);
    }

    fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock.advance(now);
        let Some(s) = self.schedule.as_mut() else {
            return;
        };
        if now < s.next {
            return;
        }
        let payload = s.payload.clone();
        s.remaining -= 1;
        match s.next.checked_add(s.interval) {
            Some(next) if s.remaining > 0 => s.next = next,
            // Done, or the next one would be past the end of time.
            _ => self.schedule = None,
        }
        self.broadcast(now, payload);
    }

    fn poll_output(&mut self) -> Option<Output<u64, FloodMsg, FloodEvent>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.schedule.as_ref().map(|s| s.next)
    }
}

impl Envelope for FloodMsg {
    const PROTOCOL: u8 = protocol_id::SIM_FLOOD;
    const VERSION: u8 = 1;
}

/// The wire functions of [`FloodMsg`]: real sizes, envelope included.
#[must_use]
pub fn wire() -> Wire<FloodMsg> {
    Wire::enveloped(|_| "flood")
}

/// A flooding experiment.
#[derive(Debug, Clone)]
pub struct FloodScenario {
    /// Nodes in the overlay.
    pub nodes: u32,
    /// Mean overlay degree (at least 2: the ring).
    pub degree: u32,
    /// Broadcasts by node 0.
    pub messages: u32,
    /// Time between broadcasts.
    pub interval: Duration,
    /// Payload bytes per broadcast.
    pub payload: usize,
    /// Every link's fault model.
    pub link: LinkConfig,
    /// Share of nodes (never the origin) crashed at once just before the first broadcast.
    pub fail: f64,
    /// The seed.
    pub seed: u64,
}

impl Default for FloodScenario {
    fn default() -> Self {
        Self {
            nodes: 1000,
            degree: 6,
            messages: 10,
            interval: Duration::from_millis(100),
            payload: 64,
            link: LinkConfig::default(),
            fail: 0.0,
            seed: 0,
        }
    }
}

/// What a flooding experiment measured.
#[derive(Debug, Clone, Serialize)]
pub struct FloodReport {
    /// The seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: u32,
    /// Broadcasts.
    pub messages: u32,
    /// Nodes crashed before the first broadcast.
    pub failed: u32,
    /// The overlay's mean local clustering coefficient.
    pub overlay_clustering: f64,
    /// The overlay's average shortest path, from up to 64 sources.
    pub overlay_avg_path: f64,
    /// Hops a flood from node 0 needs on the intact overlay (its eccentricity).
    pub overlay_flood_hops: u32,
    /// Share of (live node, message) pairs delivered.
    pub delivery_ratio: f64,
    /// Mean over messages of the time until the last node that got it got it, in ms.
    pub last_delivery_ms_mean: f64,
    /// The largest such time, in ms.
    pub last_delivery_ms_max: f64,
    /// Median delivery latency over all (node, message) pairs, in ms.
    pub latency_ms_p50: f64,
    /// 99th-percentile delivery latency, in ms.
    pub latency_ms_p99: f64,
    /// Largest hop count a delivery took.
    pub max_hop: u32,
    /// Messages sent.
    pub messages_sent: u64,
    /// Bytes sent (envelope and postcard encoding).
    pub bytes_sent: u64,
    /// Messages delivered (the simulator's unit of work).
    pub deliveries: u64,
    /// Messages the network dropped.
    pub dropped: u64,
    /// Copies the network duplicated.
    pub duplicated: u64,
    /// Virtual seconds simulated.
    pub virtual_secs: f64,
    /// Wall, CPU and memory of the run.
    pub measured: Measured,
    /// Deliveries per second of wall time.
    pub deliveries_per_sec: f64,
    /// Trace hash: equal seeds give equal hashes.
    pub trace_hash: String,
    /// The delivery curve: (ms since broadcast, share of pairs delivered by then).
    #[serde(skip)]
    pub curve: Vec<(f64, f64)>,
}

/// The overlay: a ring plus `(degree − 2) / 2` random chords per node, symmetric.
#[must_use]
pub fn overlay(nodes: u32, degree: u32, rng: &mut ChaCha8Rng) -> Vec<Vec<u64>> {
    let n = nodes as usize;
    let mut adj: Vec<Vec<u64>> = vec![Vec::new(); n];
    if n < 2 {
        return adj;
    }
    let add = |adj: &mut Vec<Vec<u64>>, a: usize, b: usize| {
        if a != b && !adj[a].contains(&(b as u64)) {
            adj[a].push(b as u64);
            adj[b].push(a as u64);
        }
    };
    for a in 0..n {
        add(&mut adj, a, (a + 1) % n);
    }
    let chords = degree.saturating_sub(2) / 2;
    for a in 0..n {
        for _ in 0..chords {
            let b = rng.random_range(0..n);
            add(&mut adj, a, b);
        }
    }
    adj
}

/// Runs a flooding experiment to quiescence and measures it.
///
/// Invariant checked at the end: no node delivers a message twice.
///
/// # Errors
/// [`SimError::Invariant`] if a node delivered a message twice (the seed is printed).
pub fn run(s: &FloodScenario) -> Result<FloodReport, SimError> {
    let config = SimConfig {
        seed: s.seed,
        link: s.link.clone(),
        ..SimConfig::default()
    };
    let mut sim: Sim<Flood> = Sim::new(config, wire());
    let mut rng = sim.fork_rng();
    let seen_capacity = (s.messages as usize).max(1);
    let adjacency = overlay(s.nodes, s.degree, &mut rng);
    let shape = OverlayShape::of(&adjacency);
    for (me, neighbors) in (0u64..).zip(adjacency) {
        sim.add_node(me, Flood::new(me, neighbors, seen_capacity))?;
    }
    sim.add_invariant("delivered at most once", None, |sim: &Sim<Flood>| {
        let mut pairs: Vec<(u64, u64)> = sim
            .events()
            .iter()
            .map(|e| match e.event {
                FloodEvent::Delivered { id, .. } => (e.node, id),
            })
            .collect();
        pairs.sort_unstable();
        match pairs.windows(2).find(|w| w[0] == w[1]) {
            Some(w) => Err(format!("node {} delivered {:#x} twice", w[0].0, w[0].1)),
            None => Ok(()),
        }
    });
    // Crash `fail` of the nodes other than the origin at t = 0; broadcasts start at 1 ms.
    let mut victims: Vec<u64> = (1..u64::from(s.nodes)).collect();
    let failed =
        ((f64::from(s.nodes) * s.fail.clamp(0.0, 1.0)).round() as usize).min(victims.len());
    for i in 0..failed {
        let j = rng.random_range(i..victims.len());
        victims.swap(i, j);
        sim.schedule_crash(Duration::ZERO, &victims[i])?;
    }
    let payload = Bytes::from(vec![0xAB; s.payload]);
    let (count, interval) = (s.messages, s.interval);
    if s.nodes > 0 {
        sim.command(&0, |m, now| {
            m.schedule_broadcasts(now + Duration::from_millis(1), count, interval, payload);
        })?;
    }
    let meter = Meter::start();
    let horizon =
        (s.interval.saturating_mul(s.messages.max(1))).saturating_add(Duration::from_secs(3600));
    sim.run_until_quiescent(horizon)?;
    let measured = meter.read();
    Ok(report(s, &sim, failed as u32, shape, measured))
}

/// Graph measures of the overlay, for the report.
#[derive(Debug, Clone, Copy)]
struct OverlayShape {
    clustering: f64,
    avg_path: f64,
    flood_hops: u32,
}

impl OverlayShape {
    fn of(adjacency: &[Vec<u64>]) -> Self {
        let (g, _) = Graph::from_views((0u64..).zip(adjacency.iter().cloned()));
        let n = u32::try_from(g.len()).unwrap_or(u32::MAX);
        let step = (n / 64).max(1);
        Self {
            clustering: g.clustering_coefficient(),
            avg_path: g.average_shortest_path((0..n).step_by(step as usize).take(64)),
            flood_hops: if n == 0 { 0 } else { g.flood_hops(0) },
        }
    }
}

fn report(
    s: &FloodScenario,
    sim: &Sim<Flood>,
    failed: u32,
    shape: OverlayShape,
    measured: Measured,
) -> FloodReport {
    // Broadcast time of each id: the origin's own delivery (hop 0).
    let mut sent_at = hashbrown::HashMap::new();
    for e in sim.events() {
        let FloodEvent::Delivered { id, hop } = e.event;
        if hop == 0 {
            sent_at.insert(id, e.at);
        }
    }
    let mut latencies = Vec::with_capacity(sim.events().len());
    // Ordered: the mean below sums floats, and the sum must not depend on hash order.
    let mut last = std::collections::BTreeMap::<u64, Duration>::new();
    let mut max_hop = 0;
    for e in sim.events() {
        let FloodEvent::Delivered { id, hop } = e.event;
        let Some(&t0) = sent_at.get(&id) else {
            continue;
        };
        let lat = e.at.saturating_sub(t0);
        latencies.push(lat.as_secs_f64() * 1e3);
        let l = last.entry(id).or_default();
        *l = (*l).max(lat);
        max_hop = max_hop.max(hop);
    }
    latencies.sort_by(f64::total_cmp);
    let pairs = f64::from(s.nodes - failed) * f64::from(s.messages);
    let delivery_ratio = if pairs > 0.0 {
        latencies.len() as f64 / pairs
    } else {
        1.0
    };
    let pct = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() - 1) as f64 * q).round() as usize;
        latencies[i]
    };
    let lasts: Vec<f64> = last.values().map(|d| d.as_secs_f64() * 1e3).collect();
    let last_mean = if lasts.is_empty() {
        0.0
    } else {
        lasts.iter().sum::<f64>() / lasts.len() as f64
    };
    let last_max = lasts.iter().copied().fold(0.0, f64::max);
    let curve = curve(&latencies, pairs);
    let m = sim.metrics();
    FloodReport {
        seed: s.seed,
        nodes: s.nodes,
        messages: s.messages,
        failed,
        overlay_clustering: shape.clustering,
        overlay_avg_path: shape.avg_path,
        overlay_flood_hops: shape.flood_hops,
        delivery_ratio,
        last_delivery_ms_mean: last_mean,
        last_delivery_ms_max: last_max,
        latency_ms_p50: pct(0.5),
        latency_ms_p99: pct(0.99),
        max_hop,
        messages_sent: m.sent.messages,
        bytes_sent: m.sent.bytes,
        deliveries: m.delivered.messages,
        dropped: m.drops.total(),
        duplicated: m.duplicated,
        virtual_secs: sim.now().as_secs_f64(),
        deliveries_per_sec: m.delivered.messages as f64 / measured.wall_secs.max(1e-9),
        measured,
        trace_hash: format!("{:016x}", sim.trace_hash()),
        curve,
    }
}

/// At most ~200 points of the cumulative delivery share over sorted latencies.
fn curve(sorted_ms: &[f64], pairs: f64) -> Vec<(f64, f64)> {
    if sorted_ms.is_empty() || pairs <= 0.0 {
        return vec![(0.0, 0.0)];
    }
    let step = (sorted_ms.len() / 200).max(1);
    let mut pts = vec![(0.0, 0.0)];
    for (i, &ms) in sorted_ms.iter().enumerate().step_by(step) {
        pts.push((ms, (i + 1) as f64 / pairs));
    }
    let last = sorted_ms[sorted_ms.len() - 1];
    pts.push((last, sorted_ms.len() as f64 / pairs));
    pts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(f: &mut Flood) -> (Vec<FloodEvent>, Vec<(u64, u32)>) {
        let (mut events, mut sends) = (Vec::new(), Vec::new());
        while let Some(out) = f.poll_output() {
            match out {
                Output::Event(e) => events.push(e),
                Output::Send { to, msg } => sends.push((to, msg.hop)),
                Output::Disconnect(_) => unreachable!("flood never disconnects"),
            }
        }
        (events, sends)
    }

    fn now() -> Instant {
        #[allow(clippy::disallowed_methods)] // tests may read the clock
        Instant::now()
    }

    #[test]
    fn delivers_once_and_forwards_to_all_but_the_sender() {
        let mut f = Flood::new(5, vec![1, 2, 3], 8);
        let msg = FloodMsg {
            id: 9,
            hop: 2,
            payload: Bytes::from_static(b"x"),
        };
        f.handle_message(now(), 2, msg.clone());
        let (events, sends) = drain(&mut f);
        assert_eq!(events, [FloodEvent::Delivered { id: 9, hop: 2 }]);
        assert_eq!(sends, [(1, 3), (3, 3)]);
        f.handle_message(now(), 1, msg);
        assert_eq!(
            drain(&mut f),
            (vec![], vec![]),
            "a duplicate is dropped silently"
        );
    }

    #[test]
    fn the_seen_set_is_bounded_and_forgets_the_oldest() {
        let mut f = Flood::new(0, vec![1], 2);
        for id in 0..3 {
            f.handle_message(
                now(),
                1,
                FloodMsg {
                    id,
                    hop: 0,
                    payload: Bytes::new(),
                },
            );
        }
        assert_eq!(f.seen.len(), 2);
        drain(&mut f);
        // Id 0 was evicted: it is delivered again; id 2 is still remembered.
        f.handle_message(
            now(),
            1,
            FloodMsg {
                id: 0,
                hop: 0,
                payload: Bytes::new(),
            },
        );
        f.handle_message(
            now(),
            1,
            FloodMsg {
                id: 2,
                hop: 0,
                payload: Bytes::new(),
            },
        );
        assert_eq!(drain(&mut f).0, [FloodEvent::Delivered { id: 0, hop: 0 }]);
    }

    #[test]
    fn a_hostile_hop_count_saturates_instead_of_panicking() {
        let mut f = Flood::new(0, vec![1, 2], 4);
        f.handle_message(
            now(),
            1,
            FloodMsg {
                id: 1,
                hop: u32::MAX,
                payload: Bytes::new(),
            },
        );
        assert_eq!(drain(&mut f).1, [(2, u32::MAX)]);
    }

    #[test]
    fn scheduled_broadcasts_fire_on_time_and_stop() {
        let t0 = now();
        let mut f = Flood::new(3, vec![1], 8);
        f.schedule_broadcasts(t0, 2, Duration::from_millis(10), Bytes::from_static(b"p"));
        assert_eq!(f.poll_timeout(), Some(t0));
        f.handle_timeout(t0);
        assert_eq!(f.poll_timeout(), Some(t0 + Duration::from_millis(10)));
        f.handle_timeout(t0 + Duration::from_millis(5)); // early: a no-op
        assert_eq!(
            drain(&mut f).0,
            [FloodEvent::Delivered {
                id: 3 << 32,
                hop: 0
            }]
        );
        f.handle_timeout(t0 + Duration::from_millis(10));
        assert_eq!(
            drain(&mut f).0,
            [FloodEvent::Delivered {
                id: 3 << 32 | 1,
                hop: 0
            }]
        );
        assert_eq!(f.poll_timeout(), None);
    }
}
