//! The paper's experiments on `epidemic-sim` (feature `sim`): build an overlay by joining
//! nodes one at a time, measure its shape, then kill a share of the nodes at once and
//! measure a flood sent right after, the time the overlay takes to heal, and what is left
//! isolated. The `epidemic-sim hyparview` command and this crate's tests run this code.
//!
//! # How the flood after a failure is modelled
//!
//! The paper floods the first message after the failure over the active views, on TCP
//! links that double as the failure detector, so the views repair while the message
//! travels. We run exactly that: every node is an [`OverlayNode`], HyParView plus a flood
//! layer that delivers a message once and forwards it to every neighbour but the sender,
//! and also to each neighbour that comes up within one round after it got the message (the
//! replacement of a neighbour that failed: an eager-push gossip layer such as Plumtree does
//! the same). Sends to dead nodes fail after the connection's failure-detection delay,
//! which is what removes them from the views. Beside that *flood with repair* we report the
//! *static* figure: the share of live nodes reachable over the live part of the active
//! views frozen at the instant of the failure, i.e. what a flood gets with no repair.
//!
//! # Rounds
//!
//! A round is one shuffle period ([`Config::shuffle_interval`], 10 s by default). The paper
//! counts healing in PeerSim cycles, where a dead neighbour is noticed when a cycle uses the
//! link; here the connection notices it after [`Scenario::failure_detection`] (200 ms by
//! default), so healing takes a fraction of a round unless the views run dry and a node has
//! to rejoin. Set the detection delay to a round to compare cycle for cycle.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_core::codec::{Envelope, protocol_id};
use epidemic_core::{Machine, Output};
use epidemic_sim::graph::Graph;
use epidemic_sim::{LinkConfig, Measured, Meter, Sim, SimConfig, SimError, Transport, Wire};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Config, Event, HyParView, Message};

/// What travels in the simulations: HyParView's own messages, plus the flood whose
/// reliability the failure experiment measures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimMessage {
    /// A HyParView message.
    View(Message<u64>),
    /// The experiment's broadcast, flooded over the active views.
    Flood {
        /// Which broadcast.
        id: u32,
        /// Hops from its origin.
        hop: u32,
    },
}

impl From<Message<u64>> for SimMessage {
    fn from(m: Message<u64>) -> Self {
        SimMessage::View(m)
    }
}

impl Envelope for SimMessage {
    const PROTOCOL: u8 = protocol_id::HYPARVIEW;
    const VERSION: u8 = 1;
}

/// Sizes and kinds as the adapters would send them.
#[must_use]
pub fn wire() -> Wire<SimMessage> {
    Wire::enveloped(|m| match m {
        SimMessage::View(v) => v.kind(),
        SimMessage::Flood { .. } => "flood",
    })
}

/// A HyParView node with the experiment's flood layer on top (a minimal composite: events
/// pass through, messages are lifted with `From`).
#[derive(Debug)]
pub struct OverlayNode {
    view: HyParView<u64, ChaCha8Rng>,
    /// The flood seen: id, hop, when.
    flood: Option<(u32, u32, Instant)>,
    /// How long after receipt a new neighbour is still handed the flood.
    repair_window: Duration,
    out: VecDeque<Output<u64, SimMessage, Event<u64>>>,
}

impl OverlayNode {
    /// Wraps a HyParView node.
    #[must_use]
    pub fn new(view: HyParView<u64, ChaCha8Rng>, repair_window: Duration) -> Self {
        Self {
            view,
            flood: None,
            repair_window,
            out: VecDeque::new(),
        }
    }

    /// The node a crashed one comes back as: HyParView's
    /// [`restarted`](HyParView::restarted), no flood seen.
    #[must_use]
    pub fn restarted(&self, rng: ChaCha8Rng) -> Self {
        Self::new(self.view.restarted(rng), self.repair_window)
    }

    /// The HyParView machine.
    #[must_use]
    pub fn view(&self) -> &HyParView<u64, ChaCha8Rng> {
        &self.view
    }

    /// The HyParView machine, for commands (`join`, `leave`, ...). Drain this node (the
    /// simulator does after a command) for its outputs to flow.
    pub fn view_mut(&mut self) -> &mut HyParView<u64, ChaCha8Rng> {
        &mut self.view
    }

    /// The flood this node delivered, with its hop count.
    #[must_use]
    pub fn delivered(&self) -> Option<(u32, u32)> {
        self.flood.map(|(id, hop, _)| (id, hop))
    }

    /// Starts flood `id` here.
    pub fn broadcast(&mut self, now: Instant, id: u32) {
        self.on_flood(now, None, id, 0);
    }

    fn on_flood(&mut self, now: Instant, from: Option<u64>, id: u32, hop: u32) {
        if self.flood.is_some_and(|(seen, _, _)| seen == id) {
            return;
        }
        self.flood = Some((id, hop, now));
        let next = hop.saturating_add(1);
        for &p in self.view.active_view() {
            if Some(p) != from {
                self.out.push_back(Output::Send {
                    to: p,
                    msg: SimMessage::Flood { id, hop: next },
                });
            }
        }
    }

    /// Moves HyParView's outputs out, handing the flood to neighbours that just came up.
    fn pump(&mut self, now: Instant) {
        while let Some(o) = self.view.poll_output() {
            if let Output::Event(Event::NeighborUp(p)) = &o {
                if let Some((id, hop, at)) = self.flood {
                    if now.saturating_duration_since(at) <= self.repair_window {
                        self.out.push_back(Output::Send {
                            to: *p,
                            msg: SimMessage::Flood {
                                id,
                                hop: hop.saturating_add(1),
                            },
                        });
                    }
                }
            }
            self.out.push_back(o.map_message(SimMessage::from));
        }
    }
}

impl Machine for OverlayNode {
    type Peer = u64;
    type Message = SimMessage;
    type Event = Event<u64>;

    fn handle_message(&mut self, now: Instant, from: u64, msg: SimMessage) {
        match msg {
            SimMessage::View(m) => self.view.handle_message(now, from, m),
            SimMessage::Flood { id, hop } => self.on_flood(now, Some(from), id, hop),
        }
        self.pump(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.view.handle_timeout(now);
        self.pump(now);
    }

    fn handle_link_down(&mut self, now: Instant, peer: u64) {
        self.view.handle_link_down(now, peer);
        self.pump(now);
    }

    fn poll_output(&mut self) -> Option<Output<u64, SimMessage, Event<u64>>> {
        if self.out.is_empty() {
            // Outputs of a command run straight on `view_mut`.
            while let Some(o) = self.view.poll_output() {
                self.out.push_back(o.map_message(SimMessage::from));
            }
        }
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.view.poll_timeout()
    }
}

/// An overlay experiment: how to build it and how to break it.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Nodes.
    pub nodes: u32,
    /// HyParView's parameters (the paper's by default).
    pub config: Config,
    /// Time between two joins: "one at a time".
    pub join_gap: Duration,
    /// Shuffle rounds run after the last join before measuring.
    pub rounds: u32,
    /// The first nodes, kept by every node as rejoin contacts and never killed by the
    /// failure experiment (bootstrap nodes an operator keeps up).
    pub seeds: u32,
    /// Every link's model (10 ms ± 5 ms by default).
    pub link: LinkConfig,
    /// How long a connection takes to notice a dead peer (dial or keepalive timeout).
    pub failure_detection: Duration,
    /// Rounds the failure experiment watches the overlay heal.
    pub heal_rounds: u32,
    /// The seed.
    pub seed: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            nodes: 10_000,
            config: Config::default(),
            join_gap: Duration::from_millis(20),
            rounds: 50,
            seeds: 4,
            link: LinkConfig::default(),
            failure_detection: Duration::from_millis(200),
            heal_rounds: 20,
            seed: 0,
        }
    }
}

impl Scenario {
    /// When the last node joins.
    #[must_use]
    pub fn join_end(&self) -> Duration {
        self.join_gap.saturating_mul(self.nodes)
    }

    /// When the overlay is measured: after the joins and `rounds` shuffle rounds.
    #[must_use]
    pub fn settled(&self) -> Duration {
        self.join_end() + self.config.shuffle_interval.saturating_mul(self.rounds)
    }
}

/// Builds the network: node 0 first, then node `i` at `i · join_gap` joining through a
/// random earlier node, each remembering the seeds as contacts. Nothing has run yet.
///
/// # Errors
/// A [`SimError`] from the simulator (none for a well-formed scenario).
pub fn build(s: &Scenario) -> Result<Sim<OverlayNode>, SimError> {
    let config = SimConfig {
        seed: s.seed,
        link: s.link.clone(),
        transport: Transport::Connection {
            failure_detection: s.failure_detection,
        },
        record_events: false,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(config, wire());
    let mut pick = sim.fork_rng();
    let window = s.config.shuffle_interval;
    for i in 0..u64::from(s.nodes) {
        let rng = sim.fork_rng();
        let mut view = HyParView::new(i, Bytes::new(), s.config.clone(), rng)
            // The scenario's config is the caller's; a bad one is a bug in the caller.
            .map_err(|e| SimError::UnknownPeer(format!("invalid config: {e}")))?;
        for seed in 0..u64::from(s.seeds).min(i) {
            view.add_contact(seed);
        }
        let node = OverlayNode::new(view, window);
        if i == 0 {
            sim.add_node(i, node)?;
            continue;
        }
        let at = s
            .join_gap
            .saturating_mul(u32::try_from(i).unwrap_or(u32::MAX));
        sim.add_node_at(at, i, node)?;
        let contact = pick.random_range(0..i);
        sim.schedule_command(at, &i, move |m: &mut OverlayNode, now| {
            // Ignored errors: the contact is another node and nothing is pending yet.
            let _ = m.view_mut().join(now, contact);
        })?;
    }
    Ok(sim)
}

/// The active views of the live nodes, as a graph (peers in index order).
#[must_use]
pub fn active_graph(sim: &Sim<OverlayNode>) -> (Graph, Vec<u64>) {
    Graph::from_views(
        sim.nodes()
            .filter(|(_, _, up)| *up)
            .map(|(p, m, _)| (*p, m.view().active_view().copied().collect())),
    )
}

/// The shape of an overlay, as the paper reports it.
#[derive(Debug, Clone, Serialize)]
pub struct OverlayReport {
    /// The seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: u32,
    /// Shuffle rounds after the last join.
    pub rounds: u32,
    /// Mean local clustering coefficient of the active-view graph (paper: 0.00092).
    pub clustering: f64,
    /// Average shortest path, from `path_sources` sources (paper: 6.385).
    pub avg_shortest_path: f64,
    /// Sources sampled for the path measures.
    pub path_sources: u32,
    /// Largest number of hops a flood needs to reach everyone, over the sampled sources
    /// (paper: 9).
    pub max_flood_hops: u32,
    /// Mean of the same over the sources.
    pub mean_flood_hops: f64,
    /// `in_degree_histogram[k]`: nodes with in-degree `k` (paper: almost all exactly 5).
    pub in_degree_histogram: Vec<usize>,
    /// Share of nodes whose in-degree equals the active capacity.
    pub share_at_capacity: f64,
    /// Directed active-view edges without their reverse (0: symmetric).
    pub asymmetric_edges: usize,
    /// Connected components of the overlay.
    pub components: usize,
    /// Messages sent per node per round over the whole run.
    pub messages_per_node_round: f64,
    /// Bytes sent per node per round over the whole run (envelope included).
    pub bytes_per_node_round: f64,
    /// CPU microseconds the simulator spent per node per round (machine and simulator).
    pub cpu_us_per_node_round: Option<f64>,
    /// Peak resident memory of the process divided by the nodes (machine and simulator).
    pub peak_rss_per_node_bytes: Option<f64>,
    /// Passive-view entries per node, mean.
    pub mean_passive: f64,
    /// Wall, CPU and memory of the run.
    pub measured: Measured,
    /// Trace hash: equal seeds give equal hashes.
    pub trace_hash: String,
}

/// Builds the overlay and measures its shape after `rounds` shuffle rounds.
///
/// # Errors
/// A [`SimError`] from the simulator.
pub fn overlay(s: &Scenario) -> Result<OverlayReport, SimError> {
    let meter = Meter::start();
    let mut sim = build(s)?;
    sim.run_until(s.settled())?;
    let measured = meter.read();
    Ok(measure_overlay(s, &sim, measured))
}

/// Measures the overlay of a built and run simulation.
#[must_use]
pub fn measure_overlay(s: &Scenario, sim: &Sim<OverlayNode>, measured: Measured) -> OverlayReport {
    let (g, _) = active_graph(sim);
    let n = u32::try_from(g.len()).unwrap_or(u32::MAX);
    let sources: Vec<u32> = (0..n)
        .step_by((n / 200).max(1) as usize)
        .take(200)
        .collect();
    let hops: Vec<u32> = sources.iter().map(|&src| g.flood_hops(src)).collect();
    let hist = g.in_degree_histogram();
    let cap = s.config.active_capacity;
    let total_rounds =
        (s.settled().as_secs_f64() / s.config.shuffle_interval.as_secs_f64()).max(1.0);
    let nodes = f64::from(s.nodes.max(1));
    let m = sim.metrics();
    let passive: usize = sim
        .nodes()
        .map(|(_, m, _)| m.view().passive_view().count())
        .sum();
    OverlayReport {
        seed: s.seed,
        nodes: s.nodes,
        rounds: s.rounds,
        clustering: g.clustering_coefficient(),
        avg_shortest_path: g.average_shortest_path(sources.iter().copied()),
        path_sources: u32::try_from(sources.len()).unwrap_or(u32::MAX),
        max_flood_hops: hops.iter().copied().max().unwrap_or(0),
        mean_flood_hops: if hops.is_empty() {
            0.0
        } else {
            hops.iter().map(|&h| f64::from(h)).sum::<f64>() / hops.len() as f64
        },
        share_at_capacity: hist.get(cap).map_or(0.0, |&c| c as f64 / nodes),
        in_degree_histogram: hist,
        asymmetric_edges: g.asymmetric_edges().len(),
        components: g.components().len(),
        messages_per_node_round: m.sent.messages as f64 / nodes / total_rounds,
        bytes_per_node_round: m.sent.bytes as f64 / nodes / total_rounds,
        cpu_us_per_node_round: measured.cpu_secs.map(|c| c * 1e6 / nodes / total_rounds),
        peak_rss_per_node_bytes: measured.peak_rss_bytes.map(|b| b as f64 / nodes),
        mean_passive: passive as f64 / nodes,
        measured,
        trace_hash: format!("{:016x}", sim.trace_hash()),
    }
}

/// What one failure level did.
#[derive(Debug, Clone, Serialize)]
pub struct FailureReport {
    /// Share of all nodes killed at once, in percent.
    pub failed_percent: u32,
    /// Nodes killed.
    pub killed: u32,
    /// Nodes left alive.
    pub live: u32,
    /// Share of live nodes a flood reaches over the views frozen at the failure (no
    /// repair), averaged over 32 random live sources.
    pub reliability_static: f64,
    /// Share of live nodes the flood sent right after the failure reached, with the views
    /// repairing as links fail (the paper's measure; paper ≈ 1.0 up to 90%, 0.91 at 95%).
    pub reliability: f64,
    /// Rounds until no live node holds a dead neighbour (`None`: not within the horizon).
    pub purge_rounds: Option<f64>,
    /// Rounds until, in addition, the live overlay is one component with every view
    /// symmetric (paper: 1–2 below 80%, about 4 at 90%).
    pub heal_rounds: Option<f64>,
    /// Live nodes with no neighbour at the end of the horizon (goal 0; iroh-gossip leaves
    /// 13 at 90% and 24 at 95%).
    pub isolated: u32,
    /// Components of the live overlay at the end of the horizon.
    pub components: usize,
    /// Live nodes whose active view is full at the end of the horizon, as a share.
    pub full_views: f64,
    /// Rejoins through contacts during healing.
    pub rejoins: u64,
    /// Reconnect requests to lost neighbours during healing.
    pub reconnects: u64,
    /// Wall, CPU and memory of this level (build included).
    pub measured: Measured,
}

/// Builds the overlay (the same one for a given seed), kills `percent`% of the nodes at
/// once (never the seeds), floods a message from a random live node at that instant, and
/// watches the overlay heal for `heal_rounds` rounds.
///
/// # Errors
/// A [`SimError`] from the simulator.
pub fn failure(s: &Scenario, percent: u32) -> Result<FailureReport, SimError> {
    let meter = Meter::start();
    let mut sim = build(s)?;
    let t_fail = s.settled();
    sim.run_until(t_fail)?;
    let mut rng = sim.fork_rng();
    let mut victims: Vec<u64> = (u64::from(s.seeds)..u64::from(s.nodes)).collect();
    let kill = ((f64::from(s.nodes) * f64::from(percent.min(100)) / 100.0).round() as usize)
        .min(victims.len());
    for i in 0..kill {
        let j = rng.random_range(i..victims.len());
        victims.swap(i, j);
        sim.schedule_crash(t_fail, &victims[i])?;
    }
    let dead: hashbrown::HashSet<u64> = victims[..kill].iter().copied().collect();
    let live: Vec<u64> = (0..u64::from(s.nodes))
        .filter(|p| !dead.contains(p))
        .collect();
    let source = live[rng.random_range(0..live.len())];
    // Static reach: BFS over the live part of the views as they stand now, averaged over
    // the flood's source and up to 31 more random live sources (one source alone says more
    // about its own neighbours than about the overlay).
    let reliability_static = {
        let (g, peers) = Graph::from_views(sim.nodes().filter(|(p, _, _)| !dead.contains(*p)).map(
            |(p, m, _)| {
                let v: Vec<u64> = m
                    .view()
                    .active_view()
                    .copied()
                    .filter(|q| !dead.contains(q))
                    .collect();
                (*p, v)
            },
        ));
        let mut sources = vec![source];
        sources.extend((0..31).map(|_| live[rng.random_range(0..live.len())]));
        let reached: usize = sources
            .iter()
            .map(|s| {
                let src = peers.binary_search(s).unwrap_or(0);
                g.hops_from(u32::try_from(src).unwrap_or(0))
                    .iter()
                    .flatten()
                    .count()
            })
            .sum();
        reached as f64 / (sources.len() * live.len()) as f64
    };
    sim.run_until(t_fail)?; // the crashes
    sim.command(&source, |m, now| m.broadcast(now, 1))?;
    let round = s.config.shuffle_interval;
    let before = counters(&sim);
    let horizon = t_fail + round.saturating_mul(s.heal_rounds);
    let step = round / 40;
    let mut purged_at = None;
    let mut healed_at = None;
    let mut reliability = None;
    while sim.now() < horizon {
        sim.run_for(step)?;
        if reliability.is_none() && sim.now() >= t_fail + round {
            reliability = Some(delivered_share(&sim));
        }
        if purged_at.is_none() && purged(&sim) {
            purged_at = Some(sim.now());
        }
        if purged_at.is_some() && healed_at.is_none() && healed(&sim) {
            healed_at = Some(sim.now());
        }
        if healed_at.is_some() && reliability.is_some() {
            break;
        }
    }
    if sim.now() < horizon {
        sim.run_until(horizon)?;
    }
    let reliability = reliability.unwrap_or_else(|| delivered_share(&sim));
    let (g, _) = active_graph(&sim);
    let isolated = g.isolated();
    let cap = s.config.active_capacity;
    let full = sim
        .nodes()
        .filter(|(_, m, up)| *up && m.view().active_view().count() >= cap)
        .count();
    let after = counters(&sim);
    let rounds_of = |t: Option<Duration>| {
        t.map(|t| t.saturating_sub(t_fail).as_secs_f64() / round.as_secs_f64())
    };
    Ok(FailureReport {
        failed_percent: percent,
        killed: u32::try_from(kill).unwrap_or(u32::MAX),
        live: u32::try_from(live.len()).unwrap_or(u32::MAX),
        reliability_static,
        reliability,
        purge_rounds: rounds_of(purged_at),
        heal_rounds: rounds_of(healed_at),
        isolated: u32::try_from(isolated).unwrap_or(u32::MAX),
        components: g.components().len(),
        full_views: full as f64 / live.len() as f64,
        rejoins: after.0 - before.0,
        reconnects: after.1 - before.1,
        measured: meter.read(),
    })
}

fn counters(sim: &Sim<OverlayNode>) -> (u64, u64) {
    sim.nodes().fold((0, 0), |(a, b), (_, m, _)| {
        let st = m.view().stats();
        (a + st.rejoins, b + st.reconnects)
    })
}

/// Share of live nodes that delivered the flood.
fn delivered_share(sim: &Sim<OverlayNode>) -> f64 {
    let (mut live, mut got) = (0usize, 0usize);
    for (_, m, up) in sim.nodes() {
        if up {
            live += 1;
            got += usize::from(m.delivered().is_some());
        }
    }
    if live == 0 {
        1.0
    } else {
        got as f64 / live as f64
    }
}

/// No live node holds a dead neighbour.
fn purged(sim: &Sim<OverlayNode>) -> bool {
    sim.nodes()
        .filter(|(_, _, up)| *up)
        .all(|(_, m, _)| m.view().active_view().all(|q| sim.is_up(q)))
}

/// One component, symmetric views, nobody alone.
fn healed(sim: &Sim<OverlayNode>) -> bool {
    let (g, _) = active_graph(sim);
    g.asymmetric_edges().is_empty() && g.components().len() == 1
}

/// The failure levels of the paper's sweep, in percent.
pub const LEVELS: [u32; 10] = [10, 20, 30, 40, 50, 60, 70, 80, 90, 95];

/// The whole reproduction: the overlay's shape, then every failure level.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// Seconds per round (shuffle period).
    pub round_secs: f64,
    /// Milliseconds a connection takes to notice a dead peer.
    pub failure_detection_ms: f64,
    /// The overlay before any failure.
    pub overlay: OverlayReport,
    /// One entry per failure level.
    pub failures: Vec<FailureReport>,
}

/// Runs [`overlay`] then [`failure`] at each of `levels`.
///
/// # Errors
/// A [`SimError`] from the simulator.
pub fn sweep(s: &Scenario, levels: &[u32]) -> Result<SweepReport, SimError> {
    let overlay = overlay(s)?;
    let failures = levels
        .iter()
        .map(|&p| failure(s, p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SweepReport {
        round_secs: s.config.shuffle_interval.as_secs_f64(),
        failure_detection_ms: s.failure_detection.as_secs_f64() * 1e3,
        overlay,
        failures,
    })
}
