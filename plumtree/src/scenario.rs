//! Plumtree's experiments on `epidemic-sim` (feature `sim`): [`Gossip`] nodes (HyParView +
//! Plumtree) join one at a time and shuffle for a few rounds, as in the HyParView crate's
//! scenario; then broadcasts are sent and each is measured: RMR (relative message
//! redundancy, payload messages only), LDH (hops to the last delivery), reliability (share
//! of live nodes that delivered) and delivery latency. Every run can be repeated with
//! [`Config::flooding`] (eager flooding over the same overlay: the same seed builds the same
//! overlay) as the baseline. The `epidemic-sim plumtree` command and this crate's tests run
//! this code.
//!
//! * **Stable** ([`stable`]): one overlay, three runs in a row: a single sender,
//!   sequential random senders, then bursts of concurrent broadcasts from random senders.
//! * **Failure** ([`failure`]): a share of the nodes (never the seeds) crash at once;
//!   broadcasts are sent from random live nodes at the crash instant and during the next
//!   second (while dead links are still being noticed), then after the overlay healed.
//!   Sends to dead nodes fail after the connection's failure-detection delay, which is what
//!   HyParView repairs the views with.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use epidemic_core::codec::ENVELOPE_LEN;
use epidemic_hyparview as hyparview;
use epidemic_sim::graph::Graph;
use epidemic_sim::{LinkConfig, Measured, Meter, Sim, SimConfig, SimError, Transport, Wire};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::{Config, Gossip, GossipConfig, GossipEvent, GossipMessage, Message, MessageId};

/// A simulated node.
pub type Node = Gossip<u64, ChaCha8Rng>;

/// Sizes and kinds as the adapters would send them.
#[must_use]
pub fn wire() -> Wire<GossipMessage<u64>> {
    Wire::enveloped(GossipMessage::kind)
}

/// An experiment: the overlay and the traffic.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Nodes.
    pub nodes: u32,
    /// HyParView's parameters (the paper's by default).
    pub view: hyparview::Config,
    /// Plumtree's parameters.
    pub tree: Config,
    /// Time between two joins: "one at a time".
    pub join_gap: Duration,
    /// Shuffle rounds after the last join before the first broadcast.
    pub rounds: u32,
    /// Bootstrap nodes kept by every node as rejoin contacts, never killed.
    pub seeds: u32,
    /// Every link's model (10 ms ± 5 ms by default).
    pub link: LinkConfig,
    /// How long a connection takes to notice a dead peer.
    pub failure_detection: Duration,
    /// Payload bytes per broadcast.
    pub payload: usize,
    /// Broadcasts per stable run (single sender; random senders).
    pub broadcasts: u32,
    /// Time between two sequential broadcasts.
    pub gap: Duration,
    /// Bursts in the concurrent run.
    pub bursts: u32,
    /// Broadcasts per burst, sent at the same instant from random senders.
    pub burst_size: u32,
    /// Broadcasts not counted in the "after warm-up" figures of a run (the first ones shape
    /// the tree).
    pub warmup: u32,
    /// Broadcasts sent during a failure (the first at the crash instant, then every
    /// 100 ms).
    pub during: u32,
    /// Broadcasts sent after a failure (the first `heal` after it, then every `gap`).
    pub after: u32,
    /// Time between a failure and the first broadcast after it.
    pub heal: Duration,
    /// How long deliveries are awaited after a run's last broadcast.
    pub settle: Duration,
    /// The seed.
    pub seed: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            nodes: 1000,
            view: hyparview::Config::default(),
            tree: Config::default(),
            join_gap: Duration::from_millis(20),
            rounds: 5,
            seeds: 4,
            link: LinkConfig::default(),
            failure_detection: Duration::from_millis(200),
            payload: 64,
            broadcasts: 20,
            gap: Duration::from_secs(1),
            bursts: 5,
            burst_size: 10,
            warmup: 3,
            during: 5,
            after: 5,
            heal: Duration::from_secs(20),
            settle: Duration::from_secs(20),
            seed: 0,
        }
    }
}

impl Scenario {
    /// When the first broadcast may go: after the joins and `rounds` shuffle rounds.
    #[must_use]
    pub fn settled(&self) -> Duration {
        self.join_gap.saturating_mul(self.nodes)
            + self.view.shuffle_interval.saturating_mul(self.rounds)
    }
}

/// What the network saw of each broadcast, filled by the simulator's filter and event hook.
#[derive(Debug, Default)]
struct Tally {
    /// GOSSIP messages sent per id (payload messages: the RMR's numerator).
    payloads: hashbrown::HashMap<MessageId, u64>,
    /// Deliveries per id: node, virtual time, round.
    deliveries: hashbrown::HashMap<MessageId, Vec<(u64, Duration, u16)>>,
    /// When a node reported a neighbour up (each new link twice, once per end).
    ups: Vec<Duration>,
}

/// Builds the network: node 0 first, then node `i` at `i · join_gap` joining through a
/// random earlier node, each remembering the seeds as contacts; `flooding` gives every node
/// [`Config::flooding`] instead of the scenario's tree config. Nothing has run yet.
///
/// # Errors
/// A [`SimError`] from the simulator (none for a well-formed scenario).
pub fn build(s: &Scenario, flooding: bool) -> Result<Sim<Node>, SimError> {
    let config = SimConfig {
        seed: s.seed,
        link: s.link.clone(),
        transport: Transport::Connection {
            failure_detection: s.failure_detection,
        },
        record_events: false,
        ..SimConfig::default()
    };
    let tree = if flooding {
        Config {
            prune: false,
            ..s.tree.clone()
        }
    } else {
        s.tree.clone()
    };
    let mut sim = Sim::new(config, wire());
    let mut pick = sim.fork_rng();
    for i in 0..u64::from(s.nodes) {
        let rng = sim.fork_rng();
        let gc = GossipConfig {
            view: s.view.clone(),
            tree: tree.clone(),
        };
        let mut node = Gossip::new(i, Bytes::new(), gc, rng)
            .map_err(|e| SimError::UnknownPeer(format!("invalid config: {e}")))?;
        for seed in 0..u64::from(s.seeds).min(i) {
            node.view_mut().add_contact(seed);
        }
        if i == 0 {
            sim.add_node(i, node)?;
            continue;
        }
        let at = s
            .join_gap
            .saturating_mul(u32::try_from(i).unwrap_or(u32::MAX));
        sim.add_node_at(at, i, node)?;
        let contact = pick.random_range(0..i);
        sim.schedule_command(at, &i, move |m: &mut Node, now| {
            // Ignored error: the contact is another node and nothing is pending yet.
            let _ = m.join(now, contact);
        })?;
    }
    Ok(sim)
}

/// Installs the filter and hook that count payload messages and deliveries per id.
fn instrument(sim: &mut Sim<Node>) -> Rc<RefCell<Tally>> {
    let tally = Rc::new(RefCell::new(Tally::default()));
    let t = Rc::clone(&tally);
    sim.set_filter(Some(Box::new(move |_, _, _, m: &GossipMessage<u64>| {
        if let GossipMessage::Tree(Message::Gossip(p)) = m {
            *t.borrow_mut().payloads.entry(p.id).or_insert(0) += 1;
        }
        true
    })));
    let t = Rc::clone(&tally);
    sim.set_event_hook(Some(Box::new(
        move |at, node, e: &GossipEvent<u64>| match e {
            GossipEvent::Received(r) => t
                .borrow_mut()
                .deliveries
                .entry(r.id)
                .or_default()
                .push((*node, at, r.round)),
            GossipEvent::NeighborUp(_) => t.borrow_mut().ups.push(at),
            _ => {}
        },
    )));
    tally
}

/// One broadcast, measured.
#[derive(Debug, Clone, Serialize)]
pub struct BroadcastReport {
    /// Seconds after the run's first broadcast.
    pub at_s: f64,
    /// The sender.
    pub origin: u64,
    /// `stable`, `during` (sent while the failure is being noticed) or `after`.
    pub phase: &'static str,
    /// Live nodes when measured.
    pub live: u32,
    /// Live nodes that delivered it (the origin included).
    pub reached: u32,
    /// `reached / live`.
    pub reliability: f64,
    /// Deliveries beyond the first at one node (must be 0: exactly once).
    pub double_deliveries: u32,
    /// Payload (GOSSIP) messages sent for it.
    pub payload_messages: u64,
    /// Relative message redundancy: `payload_messages / (reached − 1) − 1`.
    pub rmr: f64,
    /// Last delivery hop: the largest round of any delivery.
    pub ldh: u32,
    /// Mean delivery latency, ms.
    pub latency_mean_ms: f64,
    /// Latency of the last delivery, ms.
    pub latency_max_ms: f64,
    /// Overlay links that came up between the previous broadcast and 2 s after this one
    /// (a new link starts eager: it closes a cycle that the next message prunes, so a
    /// stable tree's RMR is 0 only over broadcasts with none).
    pub links_up: u32,
}

/// One run (a workload on one overlay), aggregated.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// `single sender`, `random senders`, `bursts`, `fail 40%`, ...
    pub name: String,
    /// `plumtree` or `flood`.
    pub protocol: &'static str,
    /// Nodes in the overlay (before any failure).
    pub nodes: u32,
    /// Broadcasts sent.
    pub broadcasts: u32,
    /// Mean RMR over all broadcasts.
    pub rmr_mean: f64,
    /// Mean RMR after the first `warmup` broadcasts.
    pub rmr_after_warmup: f64,
    /// Largest RMR after warm-up.
    pub rmr_max_after_warmup: f64,
    /// Mean LDH.
    pub ldh_mean: f64,
    /// Largest LDH.
    pub ldh_max: u32,
    /// Lowest reliability of any broadcast.
    pub reliability_min: f64,
    /// Mean reliability.
    pub reliability_mean: f64,
    /// Lowest reliability of the broadcasts sent during the failure (1 if none).
    pub reliability_min_during: f64,
    /// Deliveries beyond the first at a node, over all broadcasts (must be 0).
    pub double_deliveries: u32,
    /// Mean delivery latency, ms.
    pub latency_mean_ms: f64,
    /// Largest delivery latency, ms.
    pub latency_max_ms: f64,
    /// Bytes sent per delivery during the run, everything included (HyParView, IHAVE,
    /// GRAFT, PRUNE, payloads with envelope).
    pub bytes_per_delivery: f64,
    /// CPU microseconds the simulator spent per delivery during the run (machines and
    /// simulator, HyParView's upkeep included).
    pub cpu_us_per_delivery: Option<f64>,
    /// Grafts sent, optimisations and messages given up, summed over the nodes at the end.
    pub grafts: u64,
    /// Eager links swapped by the optimisation, summed over the nodes at the end.
    pub optimizations: u64,
    /// Messages given up (every announcer grafted, no payload), over the nodes at the end.
    pub missed: u64,
    /// The lowest mean LDH, as a multiple of flooding's, that any shortest-path tree of
    /// this overlay rooted at a central node would give senders anywhere (see
    /// [`single_tree_floor`]): what one shared tree can reach at best. Stable runs only.
    pub single_tree_floor: Option<f64>,
    /// With K shortest-path trees rooted at the K most central of 64 sampled nodes, each
    /// sender using the tree it is shallowest in, the mean LDH over flooding's (see
    /// [`k_tree_floor`]), for K = 1, 2, 4, 8, 16, 32: what a multi-tree design could reach at
    /// best. Stable runs only.
    pub k_tree_floor: Vec<(u32, f64)>,
    /// Each broadcast.
    pub per_broadcast: Vec<BroadcastReport>,
    /// Wall, CPU and memory of the run (build excluded).
    pub measured: Measured,
    /// Trace hash at the end: equal seeds give equal hashes.
    pub trace_hash: String,
}

/// A broadcast sent, not yet measured.
struct Sent {
    id: MessageId,
    origin: u64,
    at: Duration,
    phase: &'static str,
}

/// Sends one broadcast from `origin` now.
fn send(
    sim: &mut Sim<Node>,
    s: &Scenario,
    origin: u64,
    phase: &'static str,
    seq: u32,
) -> Result<Option<Sent>, SimError> {
    let mut payload = vec![0u8; s.payload];
    for (b, x) in payload.iter_mut().zip(seq.to_le_bytes()) {
        *b = x;
    }
    let at = sim.now();
    let r = sim.command(&origin, |m, now| m.broadcast(now, Bytes::from(payload)))?;
    Ok(r.ok().map(|id| Sent {
        id,
        origin,
        at,
        phase,
    }))
}

/// Live nodes, in id order.
fn live(sim: &Sim<Node>) -> Vec<u64> {
    sim.nodes()
        .filter(|(_, _, up)| *up)
        .map(|(p, _, _)| *p)
        .collect()
}

/// Measures `sent` from the tally; the run started at `start`.
fn measure(
    sim: &Sim<Node>,
    s: &Scenario,
    name: String,
    flooding: bool,
    sent: &[Sent],
    tally: &Tally,
    before: (u64, u64, Meter),
) -> RunReport {
    let live_nodes = live(sim);
    let live_set: hashbrown::HashSet<u64> = live_nodes.iter().copied().collect();
    let n_live = u32::try_from(live_nodes.len()).unwrap_or(u32::MAX);
    let start = sent.first().map_or(Duration::ZERO, |x| x.at);
    let mut per = Vec::with_capacity(sent.len());
    let (mut lat_sum, mut lat_n, mut lat_max) = (0.0, 0u64, 0.0f64);
    let mut prev = Duration::ZERO;
    for x in sent {
        let window = (prev, x.at + Duration::from_secs(2));
        prev = x.at;
        let ups = tally
            .ups
            .iter()
            .filter(|&&t| t > window.0 && t <= window.1)
            .count();
        let empty = Vec::new();
        let d = tally.deliveries.get(&x.id).unwrap_or(&empty);
        let mut seen: hashbrown::HashSet<u64> = hashbrown::HashSet::new();
        let mut doubles = 0u32;
        let (mut ldh, mut sum, mut max) = (0u32, 0.0, 0.0f64);
        for &(node, at, round) in d {
            if !seen.insert(node) {
                doubles += 1;
                continue;
            }
            ldh = ldh.max(u32::from(round));
            let ms = at.saturating_sub(x.at).as_secs_f64() * 1e3;
            sum += ms;
            max = max.max(ms);
        }
        let reached_live = seen.iter().filter(|p| live_set.contains(*p)).count()
            + usize::from(live_set.contains(&x.origin));
        let reached_all = seen.len() + 1;
        let m = tally.payloads.get(&x.id).copied().unwrap_or(0);
        let rmr = if reached_all > 1 {
            m as f64 / (reached_all - 1) as f64 - 1.0
        } else {
            0.0
        };
        lat_sum += sum;
        lat_n += seen.len() as u64;
        lat_max = lat_max.max(max);
        per.push(BroadcastReport {
            at_s: x.at.saturating_sub(start).as_secs_f64(),
            origin: x.origin,
            phase: x.phase,
            live: n_live,
            reached: u32::try_from(reached_live).unwrap_or(u32::MAX),
            reliability: reached_live as f64 / f64::from(n_live.max(1)),
            double_deliveries: doubles,
            payload_messages: m,
            rmr,
            ldh,
            latency_mean_ms: if seen.is_empty() {
                0.0
            } else {
                sum / seen.len() as f64
            },
            latency_max_ms: max,
            links_up: u32::try_from(ups / 2).unwrap_or(u32::MAX),
        });
    }
    let mean = |v: &mut dyn Iterator<Item = f64>| {
        let (s, n) = v.fold((0.0, 0u32), |(s, n), x| (s + x, n + 1));
        if n == 0 { 0.0 } else { s / f64::from(n) }
    };
    let warm = s.warmup as usize;
    let after: Vec<&BroadcastReport> = per.iter().skip(warm).collect();
    let (sent0, deliveries0, meter) = before;
    let deliveries = lat_n;
    let stats = sim.nodes().fold((0u64, 0u64, 0u64), |a, (_, m, _)| {
        let st = m.tree().stats();
        (
            a.0 + st.grafts_sent,
            a.1 + st.optimizations,
            a.2 + st.missed,
        )
    });
    let measured = meter.read();
    let bytes = sim.metrics().sent.bytes.saturating_sub(sent0);
    let _ = deliveries0;
    RunReport {
        name,
        protocol: if flooding { "flood" } else { "plumtree" },
        nodes: s.nodes,
        broadcasts: u32::try_from(sent.len()).unwrap_or(u32::MAX),
        rmr_mean: mean(&mut per.iter().map(|b| b.rmr)),
        rmr_after_warmup: mean(&mut after.iter().map(|b| b.rmr)),
        rmr_max_after_warmup: after.iter().map(|b| b.rmr).fold(0.0, f64::max),
        ldh_mean: mean(&mut per.iter().map(|b| f64::from(b.ldh))),
        ldh_max: per.iter().map(|b| b.ldh).max().unwrap_or(0),
        reliability_min: per.iter().map(|b| b.reliability).fold(1.0, f64::min),
        reliability_mean: mean(&mut per.iter().map(|b| b.reliability)),
        reliability_min_during: per
            .iter()
            .filter(|b| b.phase == "during")
            .map(|b| b.reliability)
            .fold(1.0, f64::min),
        double_deliveries: per.iter().map(|b| b.double_deliveries).sum(),
        latency_mean_ms: if lat_n == 0 {
            0.0
        } else {
            lat_sum / lat_n as f64
        },
        latency_max_ms: lat_max,
        bytes_per_delivery: bytes as f64 / deliveries.max(1) as f64,
        cpu_us_per_delivery: measured
            .cpu_secs
            .map(|c| c * 1e6 / deliveries.max(1) as f64),
        grafts: stats.0,
        optimizations: stats.1,
        missed: stats.2,
        single_tree_floor: None,
        k_tree_floor: Vec::new(),
        per_broadcast: per,
        measured,
        trace_hash: format!("{:016x}", sim.trace_hash()),
    }
}

/// The three stable runs on one overlay, in order: a single sender (node 0) sending
/// `broadcasts` every `gap`; random senders, the same; `bursts` bursts of `burst_size`
/// concurrent broadcasts from random senders, every `gap`. `flooding` runs eager flooding
/// over the same overlay instead.
///
/// # Errors
/// A [`SimError`] from the simulator.
pub fn stable(s: &Scenario, flooding: bool) -> Result<Vec<RunReport>, SimError> {
    let mut sim = build(s, flooding)?;
    sim.run_until(s.settled())?;
    let mut rng = sim.fork_rng();
    let mut seq = 0u32;
    let mut reports = Vec::new();
    for run in 0..3 {
        let tally = instrument(&mut sim);
        let before = (sim.metrics().sent.bytes, 0, Meter::start());
        let mut sent = Vec::new();
        let rounds = if run == 2 { s.bursts } else { s.broadcasts };
        for _ in 0..rounds {
            let per_round = if run == 2 { s.burst_size } else { 1 };
            for _ in 0..per_round {
                let origin = if run == 0 {
                    0
                } else {
                    rng.random_range(0..u64::from(s.nodes))
                };
                seq += 1;
                sent.extend(send(&mut sim, s, origin, "stable", seq)?);
            }
            sim.run_for(s.gap)?;
        }
        sim.run_for(s.settle)?;
        let name = ["single sender", "random senders", "bursts"][run];
        let t = tally.borrow();
        reports.push(measure(&sim, s, name.into(), flooding, &sent, &t, before));
    }
    sim.set_filter(None);
    sim.set_event_hook(None);
    let floor = single_tree_floor(&sim);
    let k_floor = k_tree_floor(&sim, &[1, 2, 4, 8, 16, 32]);
    for r in &mut reports {
        r.single_tree_floor = Some(floor);
        r.k_tree_floor.clone_from(&k_floor);
    }
    Ok(reports)
}

/// The best a single shared tree can do on this overlay: for each of the 8 most central of
/// 32 sampled nodes, the shortest-path tree rooted there; the mean eccentricity in that
/// tree of the 32 sampled nodes (a broadcast's LDH if it travelled that tree) over their
/// mean eccentricity in the overlay (flooding's LDH); the lowest ratio over the roots.
/// Plumtree keeps one tree for all senders, so its LDH for random senders cannot go much
/// below this.
#[must_use]
pub fn single_tree_floor(sim: &Sim<Node>) -> f64 {
    let g = live_graph(sim);
    let n = u32::try_from(g.len()).unwrap_or(u32::MAX);
    if n < 2 {
        return 1.0;
    }
    let step = usize::try_from((n / 32).max(1)).unwrap_or(1);
    let sample: Vec<u32> = (0..n).step_by(step).take(32).collect();
    let ecc: Vec<u32> = sample.iter().map(|&s| g.flood_hops(s)).collect();
    let flood_mean = f64::from(ecc.iter().sum::<u32>()) / ecc.len() as f64;
    let mut roots: Vec<(u32, u32)> = sample.iter().copied().zip(ecc.iter().copied()).collect();
    roots.sort_by_key(|&(r, e)| (e, r));
    let mut best = f64::INFINITY;
    for &(root, _) in roots.iter().take(8) {
        let (tree, _) = shortest_path_tree(&g, root);
        let tree_mean = sample
            .iter()
            .map(|&s| f64::from(tree.flood_hops(s)))
            .sum::<f64>()
            / sample.len() as f64;
        best = best.min(tree_mean / flood_mean.max(1.0));
    }
    best
}

/// The live overlay as a graph (active views, links to dead nodes left out).
fn live_graph(sim: &Sim<Node>) -> Graph {
    Graph::from_views(sim.nodes().filter(|(_, _, up)| *up).map(|(p, m, _)| {
        let view: Vec<u64> = m
            .view()
            .active_view()
            .copied()
            .filter(|q| sim.is_up(q))
            .collect();
        (*p, view)
    }))
    .0
}

/// The shortest-path tree of `g` rooted at `root` (each node joins the first neighbour one
/// hop closer), undirected, with every node's depth in it.
fn shortest_path_tree(g: &Graph, root: u32) -> (Graph, Vec<Option<u32>>) {
    let dist = g.hops_from(root);
    let mut tree = Graph::new(g.len());
    for v in 0..u32::try_from(g.len()).unwrap_or(u32::MAX) {
        let Some(d) = dist[v as usize].filter(|&d| d > 0) else {
            continue;
        };
        if let Some(&u) = g
            .neighbors(v)
            .iter()
            .find(|&&u| dist[u as usize] == Some(d - 1))
        {
            tree.add_edge(u, v);
            tree.add_edge(v, u);
        }
    }
    (tree, dist)
}

/// What K shared trees could reach at best: for each K in `ks`, the shortest-path trees
/// rooted at the K most central of 64 sampled nodes; each of 32 other sampled senders
/// uses the tree it is shallowest in (what a sender can know: its round from each tree's
/// root); the mean of its eccentricity in that tree over its mean eccentricity in the
/// overlay (flooding's LDH). Plumtree's own trees are no shallower than shortest-path
/// trees, so this is a floor for a multi-tree design.
#[must_use]
pub fn k_tree_floor(sim: &Sim<Node>, ks: &[u32]) -> Vec<(u32, f64)> {
    let g = live_graph(sim);
    let n = u32::try_from(g.len()).unwrap_or(u32::MAX);
    if n < 4 {
        return ks.iter().map(|&k| (k, 1.0)).collect();
    }
    // Senders at even multiples of the step, root candidates halfway between.
    let step = (n / 64).max(1);
    let senders: Vec<u32> = (0..n).step_by(2 * step as usize).take(32).collect();
    let mut candidates: Vec<(u32, u32)> = (step.min(n - 1)..n)
        .step_by(2 * step as usize)
        .take(64)
        .map(|r| (g.flood_hops(r), r))
        .collect();
    candidates.sort_unstable();
    let flood_mean = senders
        .iter()
        .map(|&s| f64::from(g.flood_hops(s)))
        .sum::<f64>()
        / senders.len() as f64;
    let most = ks.iter().copied().max().unwrap_or(0) as usize;
    // Per root: each sender's depth and eccentricity in that root's tree.
    let trees: Vec<Vec<(u32, u32)>> = candidates
        .iter()
        .take(most)
        .map(|&(_, root)| {
            let (tree, dist) = shortest_path_tree(&g, root);
            senders
                .iter()
                .map(|&s| (dist[s as usize].unwrap_or(u32::MAX), tree.flood_hops(s)))
                .collect()
        })
        .collect();
    ks.iter()
        .map(|&k| {
            let used = &trees[..(k as usize).min(trees.len())];
            let sum: f64 = (0..senders.len())
                .map(|i| {
                    used.iter()
                        .map(|t| t[i])
                        .min_by_key(|&(depth, _)| depth)
                        .map_or(0.0, |(_, e)| f64::from(e))
                })
                .sum();
            (k, sum / senders.len() as f64 / flood_mean.max(1.0))
        })
        .collect()
}

/// Kills `percent`% of the nodes at once (never the seeds); sends `during` broadcasts from
/// random live nodes, the first at the crash instant and then every 100 ms, and `after`
/// broadcasts, the first `heal` after the crash and then every `gap`; measures them
/// `settle` after the last one.
///
/// # Errors
/// A [`SimError`] from the simulator.
pub fn failure(s: &Scenario, percent: u32, flooding: bool) -> Result<RunReport, SimError> {
    let mut sim = build(s, flooding)?;
    let t_fail = s.settled();
    sim.run_until(t_fail)?;
    let mut rng = sim.fork_rng();
    // A few broadcasts first, so that the tree has formed (the stable runs' warm-up).
    let mut seq = 0u32;
    for _ in 0..s.warmup {
        seq += 1;
        let origin = rng.random_range(0..u64::from(s.nodes));
        send(&mut sim, s, origin, "stable", seq)?;
        sim.run_for(s.gap)?;
    }
    let t_fail = sim.now();
    let mut victims: Vec<u64> = (u64::from(s.seeds)..u64::from(s.nodes)).collect();
    let kill = ((f64::from(s.nodes) * f64::from(percent.min(100)) / 100.0).round() as usize)
        .min(victims.len());
    for i in 0..kill {
        let j = rng.random_range(i..victims.len());
        victims.swap(i, j);
        sim.schedule_crash(t_fail, &victims[i])?;
    }
    sim.run_until(t_fail)?; // the crashes
    let tally = instrument(&mut sim);
    let before = (sim.metrics().sent.bytes, 0, Meter::start());
    let alive = live(&sim);
    let mut sent = Vec::new();
    for _ in 0..s.during {
        seq += 1;
        let origin = alive[rng.random_range(0..alive.len())];
        sent.extend(send(&mut sim, s, origin, "during", seq)?);
        sim.run_for(Duration::from_millis(100))?;
    }
    sim.run_until(t_fail + s.heal)?;
    for _ in 0..s.after {
        seq += 1;
        let origin = alive[rng.random_range(0..alive.len())];
        sent.extend(send(&mut sim, s, origin, "after", seq)?);
        sim.run_for(s.gap)?;
    }
    sim.run_for(s.settle)?;
    let t = tally.borrow();
    let name = format!("fail {percent}%");
    let mut r = measure(&sim, s, name, flooding, &sent, &t, before);
    // Warm-up broadcasts happened before the failure; nothing to skip here.
    r.rmr_after_warmup = r.rmr_mean;
    r.rmr_max_after_warmup = r.per_broadcast.iter().map(|b| b.rmr).fold(0.0, f64::max);
    drop(t);
    sim.set_filter(None);
    sim.set_event_hook(None);
    Ok(r)
}

/// The eager links of the live nodes as undirected edges `(a, b)` with `a < b`, counting a
/// link once when both ends hold it eager; and the links only one end holds eager.
#[must_use]
pub fn eager_edges(sim: &Sim<Node>) -> (Vec<(u64, u64)>, usize) {
    let mut both = Vec::new();
    let mut one = 0;
    for (p, m, up) in sim.nodes() {
        if !up {
            continue;
        }
        for q in m.tree().eager_peers() {
            let back = sim
                .node(q)
                .is_some_and(|n| sim.is_up(q) && n.tree().eager_peers().any(|x| x == p));
            if !back {
                one += 1;
            } else if p < q {
                both.push((*p, *q));
            }
        }
    }
    (both, one)
}

/// Bytes of a GOSSIP of `payload` bytes on the wire in the composite (envelope, tags, id,
/// a one-byte round, the length).
#[must_use]
pub fn payload_message_bytes(payload: usize) -> usize {
    ENVELOPE_LEN + 2 + 16 + 1 + crate::message::varint_len(payload as u64) + payload
}
