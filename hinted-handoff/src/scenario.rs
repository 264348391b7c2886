//! Simulation scenarios (feature `sim`), shared by this crate's tests and the
//! `epidemic-sim hinted-handoff` subcommand.
//!
//! [`SimNode`] is a [`Node`] as the simulator runs it: its durable hint log ([`MemLog`],
//! the only state besides the store that a restart carries over), a single-server service
//! queue (every message costs `service` of the node's time, so that a burst of replays
//! delays the node's own writes, as ScyllaDB saw), and the client's bookkeeping of the
//! writes it issued there.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_core::{Machine, Output};
use epidemic_sim::{LinkConfig, Sim, SimConfig, SimError, Wire};
use hashbrown::HashMap;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use smallvec::SmallVec;

use crate::{
    Config, Consistency, Event, MemLog, MemStore, Message, Mutation, Node, NodeId, ReplayConfig,
    Stats, WriteId,
};

/// The machine every scenario runs.
pub type HhNode = Node<MemStore, ChaCha8Rng>;

/// A write the client saw acknowledged.
#[derive(Debug, Clone)]
pub struct AckedWrite {
    /// The key.
    pub key: Bytes,
    /// The timestamp written.
    pub timestamp: u64,
    /// Its N owners.
    pub owners: SmallVec<[NodeId; 4]>,
    /// When the client heard of it.
    pub at: Instant,
    /// Coordinator-observed latency.
    pub latency: Duration,
}

/// The client's view of the writes it sent through one node. It lives outside the node,
/// so a crash of the node does not erase what the client was told.
#[derive(Debug, Default)]
pub struct Client {
    issued: HashMap<WriteId, (Bytes, u64, SmallVec<[NodeId; 4]>)>,
    /// Writes the client attempted through this node.
    pub attempted: u64,
    /// Writes acknowledged.
    pub acked: Vec<AckedWrite>,
    /// Writes that timed out below their level.
    pub failed: u64,
    /// Writes refused up front (unavailable, overloaded).
    pub refused: u64,
}

/// A node under simulation: machine, durable log, service queue, client bookkeeping.
#[derive(Debug)]
pub struct SimNode {
    /// The machine.
    pub node: HhNode,
    /// Its durable hint log.
    pub log: MemLog,
    /// The client's bookkeeping.
    pub client: Client,
    /// Queueing delay of every write (direct or hinted) this node served: (arrival, delay).
    pub write_delays: Vec<(Instant, Duration)>,
    /// Messages dropped at the service queue's bound.
    pub inbox_dropped: u64,
    service: Duration,
    inbox: VecDeque<(Instant, NodeId, Message)>,
    free_at: Option<Instant>,
}

/// Most messages waiting in a node's service queue; beyond, arrivals are dropped (the
/// replicas' acks are then missing, and hints cover it).
const MAX_INBOX: usize = 1_000_000;

impl SimNode {
    /// A fresh node.
    ///
    /// # Panics
    /// If `config` does not validate (scenarios build it).
    #[must_use]
    pub fn new(
        me: NodeId,
        config: Config,
        rng: ChaCha8Rng,
        now: Instant,
        service: Duration,
    ) -> Self {
        let wall = 0;
        Self {
            // Scenario configs are built valid.
            node: Node::new(me, config, MemStore::default(), rng, now, wall)
                .expect("scenario config is valid"),
            log: MemLog::new(),
            client: Client::default(),
            write_delays: Vec::new(),
            inbox_dropped: 0,
            service,
            inbox: VecDeque::new(),
            free_at: None,
        }
    }

    /// The restart factory: keeps the store, the durable log and the client's
    /// bookkeeping; everything else of the crashed node is gone.
    ///
    /// # Panics
    /// Never for a node built by [`SimNode::new`] (its config is valid and its clock set).
    pub fn restarted(old: &mut SimNode, rng: ChaCha8Rng) -> SimNode {
        // The factory does not get the restart instant: rebuild at the last instant the
        // old node saw (its first input advances the clock to the real one).
        let now = old
            .node
            .last_seen()
            .expect("a built node has seen an instant");
        let wall = old.node.wall_clock_ms(now);
        let log = std::mem::take(&mut old.log);
        let store = std::mem::take(old.node.store_mut());
        let node = Node::from_log(
            old.node.id(),
            old.node.config().clone(),
            store,
            rng,
            now,
            wall,
            log.records(),
        )
        // The same config validated when the crashed node was built.
        .expect("config validated before");
        SimNode {
            node,
            log,
            client: std::mem::take(&mut old.client),
            write_delays: std::mem::take(&mut old.write_delays),
            inbox_dropped: old.inbox_dropped,
            service: old.service,
            inbox: VecDeque::new(),
            free_at: None,
        }
    }

    /// The client writes through this node.
    pub fn client_write(
        &mut self,
        now: Instant,
        mutation: Mutation,
        preference: &[NodeId],
        level: Consistency,
    ) {
        let (key, ts) = (mutation.key.clone(), mutation.timestamp);
        let n = self.node.config().replication.min(preference.len());
        self.client.attempted += 1;
        match self.node.write(now, mutation, preference, level) {
            Ok(id) => {
                self.client
                    .issued
                    .insert(id, (key, ts, preference[..n].iter().copied().collect()));
            }
            Err(_) => self.client.refused += 1,
        }
    }

    fn process(&mut self, at: Instant, from: NodeId, msg: Message) {
        self.node.handle_message(at, from, msg);
    }

    fn serve_due(&mut self, now: Instant) {
        while let Some(free) = self.free_at {
            if free > now {
                return;
            }
            let Some((arrived, from, msg)) = self.inbox.pop_front() else {
                self.free_at = None;
                return;
            };
            self.record_delay(arrived, free, &msg);
            self.free_at = Some(free + self.service);
            self.process(free, from, msg);
        }
    }

    fn record_delay(&mut self, arrived: Instant, start: Instant, msg: &Message) {
        if matches!(msg, Message::Write { .. } | Message::HintedWrite { .. }) {
            self.write_delays
                .push((arrived, start.saturating_duration_since(arrived)));
        }
    }
}

impl Machine for SimNode {
    type Peer = NodeId;
    type Message = Message;
    type Event = Event;

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Message) {
        if self.service.is_zero() {
            self.record_delay(now, now, &msg);
            self.process(now, from, msg);
            return;
        }
        self.serve_due(now);
        match self.free_at {
            Some(_) => {
                if self.inbox.len() < MAX_INBOX {
                    self.inbox.push_back((now, from, msg));
                } else {
                    self.inbox_dropped += 1;
                }
            }
            None => {
                self.record_delay(now, now, &msg);
                self.free_at = Some(now + self.service);
                self.process(now, from, msg);
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.serve_due(now);
        self.node.handle_timeout(now);
    }

    fn poll_output(&mut self) -> Option<Output<NodeId, Message, Event>> {
        loop {
            let out = self.node.poll_output()?;
            match out {
                Output::Event(Event::Persist(rec)) => self.log.apply(&rec),
                Output::Event(Event::WriteAcked { id, latency, .. }) => {
                    if let Some((key, timestamp, owners)) = self.client.issued.remove(&id) {
                        // A node has seen an instant since construction.
                        let at = self.node.last_seen().unwrap_or_else(|| unreachable!());
                        self.client.acked.push(AckedWrite {
                            key,
                            timestamp,
                            owners,
                            at,
                            latency,
                        });
                    }
                }
                Output::Event(Event::WriteFailed { id, .. }) => {
                    self.client.issued.remove(&id);
                    self.client.failed += 1;
                }
                other => return Some(other),
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let serve = if self.inbox.is_empty() {
            None
        } else {
            self.free_at
        };
        match (self.node.poll_timeout(), serve) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A node with a ChaCha RNG seeded from `seed` (for fuzzers and benches that have no RNG
/// crate of their own).
///
/// # Errors
/// [`ConfigError`](crate::ConfigError) if `config` does not validate.
pub fn seeded_node(
    me: NodeId,
    config: Config,
    seed: u64,
    now: Instant,
) -> Result<HhNode, crate::ConfigError> {
    Node::new(
        me,
        config,
        MemStore::default(),
        ChaCha8Rng::seed_from_u64(seed),
        now,
        0,
    )
}

/// A node rebuilt from `log` over `store`, as after a restart at `now` (wall clock
/// `wall_ms`).
///
/// # Errors
/// [`ConfigError`](crate::ConfigError) if `config` does not validate.
pub fn recovered_node(
    me: NodeId,
    config: Config,
    seed: u64,
    now: Instant,
    wall_ms: u64,
    store: MemStore,
    log: &MemLog,
) -> Result<HhNode, crate::ConfigError> {
    Node::from_log(
        me,
        config,
        store,
        ChaCha8Rng::seed_from_u64(seed),
        now,
        wall_ms,
        log.records(),
    )
}

/// The wire sizes and kinds of [`Message`].
#[must_use]
pub fn wire() -> Wire<Message> {
    Wire::enveloped(Message::kind)
}

/// The preference list of key number `key` on a ring of `n` nodes: the nodes clockwise
/// from `key mod n` (the first N own it, the rest are fallbacks in order).
#[must_use]
pub fn preference(key: u64, n: u64) -> Vec<NodeId> {
    (0..n).map(|i| (key + i) % n).collect()
}

/// Acknowledged writes (across every client) missing from at least one of their owners'
/// stores.
#[must_use]
pub fn lost_writes(sim: &Sim<SimNode>) -> Vec<(Bytes, u64, NodeId)> {
    let mut lost = Vec::new();
    for (_, n, _) in sim.nodes() {
        for w in &n.client.acked {
            for o in &w.owners {
                let has = sim
                    .node(o)
                    .is_some_and(|r| r.node.store().has(&w.key, w.timestamp));
                if !has {
                    lost.push((w.key.clone(), w.timestamp, *o));
                }
            }
        }
    }
    lost
}

/// Copies kept by nodes that do not own the key (sloppy-quorum guests not yet handed
/// off), for keys written by [`schedule_write`] on a ring of `n` with `replication` owners.
#[must_use]
pub fn guest_copies(sim: &Sim<SimNode>, n: u64, replication: usize) -> usize {
    let mut count = 0;
    for (peer, m, _) in sim.nodes() {
        for (key, _) in m.node.store().iter() {
            let owned = std::str::from_utf8(key)
                .ok()
                .and_then(|k| k.strip_prefix("key"))
                .and_then(|k| k.parse::<u64>().ok())
                .is_some_and(|k| preference(k, n).iter().take(replication).any(|o| o == peer));
            if !owned {
                count += 1;
            }
        }
    }
    count
}

/// Hints held across the cluster.
#[must_use]
pub fn hints_pending(sim: &Sim<SimNode>) -> usize {
    sim.nodes().map(|(_, n, _)| n.node.hints_pending()).sum()
}

/// Every node's counters, summed.
#[must_use]
pub fn total_stats(sim: &Sim<SimNode>) -> Stats {
    let mut t = Stats::default();
    for (_, n, _) in sim.nodes() {
        let s = n.node.stats();
        t.writes += s.writes;
        t.writes_acked += s.writes_acked;
        t.writes_failed += s.writes_failed;
        t.hints_stored += s.hints_stored;
        t.hints_recovered += s.hints_recovered;
        t.hints_delivered += s.hints_delivered;
        t.hints_superseded += s.hints_superseded;
        t.dropped_window += s.dropped_window;
        t.dropped_ttl += s.dropped_ttl;
        t.dropped_target_bound += s.dropped_target_bound;
        t.dropped_total_bound += s.dropped_total_bound;
        t.replays_sent += s.replays_sent;
        t.replay_timeouts += s.replay_timeouts;
        t.guests_discarded += s.guests_discarded;
        t.applied += s.applied;
        t.store_errors += s.store_errors;
        t.unknown_acks += s.unknown_acks;
        t.forged_acks += s.forged_acks;
        t.oversized += s.oversized;
    }
    t
}

/// Builds a cluster of `n` nodes `0..n` with a restart factory.
///
/// # Errors
/// [`SimError`] from the simulator (never for fresh ids).
pub fn cluster(
    seed: u64,
    n: u64,
    config: &Config,
    link: LinkConfig,
    service: Duration,
) -> Result<Sim<SimNode>, SimError> {
    let mut sim = Sim::new(
        SimConfig {
            link,
            ..SimConfig::with_seed(seed)
        },
        wire(),
    );
    for id in 0..n {
        let rng = sim.fork_rng();
        let now = sim.instant();
        sim.add_node(id, SimNode::new(id, config.clone(), rng, now, service))?;
    }
    sim.on_restart(|_, old, rng| SimNode::restarted(old, ChaCha8Rng::from_rng(rng)));
    Ok(sim)
}

/// Tells every node but `peer` that `peer` is down (`up = false`) or up, at `at`: the
/// failure detector's verdict, `detect` after the fact.
///
/// # Errors
/// [`SimError::UnknownPeer`].
pub fn schedule_liveness(
    sim: &mut Sim<SimNode>,
    at: Duration,
    peer: NodeId,
    up: bool,
    n: u64,
) -> Result<(), SimError> {
    for other in (0..n).filter(|o| *o != peer) {
        sim.schedule_command(at, &other, move |m: &mut SimNode, now| {
            if up {
                m.node.peer_up(now, peer);
            } else {
                m.node.peer_down(now, peer);
            }
        })?;
    }
    Ok(())
}

/// Schedules a client write of key number `key` at timestamp `ts` through `coordinator`.
///
/// # Errors
/// [`SimError::UnknownPeer`].
#[allow(clippy::too_many_arguments)]
pub fn schedule_write(
    sim: &mut Sim<SimNode>,
    at: Duration,
    coordinator: NodeId,
    key: u64,
    ts: u64,
    n: u64,
    value: Bytes,
    level: Consistency,
) -> Result<(), SimError> {
    let pref = preference(key, n);
    sim.schedule_command(at, &coordinator, move |m: &mut SimNode, now| {
        let mutation = Mutation {
            key: Bytes::from(format!("key{key}")),
            value: Some(value),
            timestamp: ts,
        };
        m.client_write(now, mutation, &pref, level);
    })
}

// ---- the outage scenario the CLI prints ----------------------------------------------

/// One replica down for a while during a steady write workload, then back.
#[derive(Debug, Clone)]
pub struct OutageScenario {
    /// Nodes on the ring.
    pub nodes: u64,
    /// Replicas per key.
    pub replication: usize,
    /// The writes' level.
    pub level: Consistency,
    /// Sloppy quorums on.
    pub sloppy: bool,
    /// Client writes per second (to random coordinators).
    pub rate: u32,
    /// Writes run from 0 to this.
    pub duration: Duration,
    /// Distinct keys written.
    pub keys: u64,
    /// Value bytes per write.
    pub value_bytes: usize,
    /// The replica that goes down.
    pub victim: NodeId,
    /// When it crashes.
    pub down_at: Duration,
    /// How long it stays down.
    pub down_for: Duration,
    /// Failure-detection delay before the others hear of a crash or recovery.
    pub detect: Duration,
    /// Service time per message at every node.
    pub service: Duration,
    /// The replay controller.
    pub replay: ReplayConfig,
    /// Hint dispatcher period.
    pub replay_interval: Duration,
    /// The link model.
    pub link: LinkConfig,
    /// Seed.
    pub seed: u64,
}

impl Default for OutageScenario {
    fn default() -> Self {
        Self {
            nodes: 5,
            replication: 3,
            level: Consistency::Quorum,
            sloppy: true,
            rate: 500,
            duration: Duration::from_secs(60),
            keys: 10_000,
            value_bytes: 100,
            victim: 1,
            down_at: Duration::from_secs(5),
            down_for: Duration::from_secs(30),
            detect: Duration::from_secs(1),
            service: Duration::from_micros(500),
            replay: ReplayConfig::default(),
            replay_interval: Duration::from_secs(10),
            link: LinkConfig::default(),
            seed: 0,
        }
    }
}

/// Percentiles of a sample of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Sample size.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl Percentiles {
    /// Of `sample`.
    #[must_use]
    pub fn of(mut sample: Vec<Duration>) -> Self {
        if sample.is_empty() {
            return Self::default();
        }
        sample.sort_unstable();
        let at = |q: f64| {
            // Index into a non-empty sample: the float is in [0, len - 1].
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let i = ((sample.len() - 1) as f64 * q).round() as usize;
            sample[i].as_secs_f64() * 1e3
        };
        Self {
            count: sample.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// What the outage scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct OutageReport {
    /// Seed.
    pub seed: u64,
    /// Whether replay was adaptive.
    pub adaptive: bool,
    /// Client writes issued, acknowledged, failed, refused.
    pub writes: [u64; 4],
    /// Hints stored.
    pub hints_stored: u64,
    /// Log records persisted (hint puts and removes) across the cluster.
    pub log_records: u64,
    /// Hints delivered by replay.
    pub hints_replayed: u64,
    /// Hints removed because the target answered the write late.
    pub hints_superseded: u64,
    /// Hints dropped by reason: window, TTL, per-target bound, total bound.
    pub hints_dropped: [u64; 4],
    /// Replays sent (retries included) and timed out.
    pub replays: [u64; 2],
    /// Most hints held across the cluster at a sample.
    pub peak_hints: usize,
    /// From the victim's restart until every write acknowledged before it is on the
    /// victim, in seconds (`None`: not within the run).
    pub repair_secs: Option<f64>,
    /// Hints delivered per second of repair.
    pub replay_per_sec: f64,
    /// Acknowledged writes missing from an owner at the end (must be 0).
    pub acked_lost: usize,
    /// Sloppy-quorum guest copies still on non-owners at the end (0 once handed off).
    pub guest_copies_left: usize,
    /// The victim's queueing delay for its own writes before the outage.
    pub victim_delay_before: Percentiles,
    /// The victim's queueing delay for its own writes during replay.
    pub victim_delay_replay: Percentiles,
    /// Client write latency before the outage.
    pub latency_before: Percentiles,
    /// Client write latency with the victim down.
    pub latency_outage: Percentiles,
    /// Most replays in flight to the victim at a sample.
    pub peak_replay_in_flight: usize,
    /// Bytes on the wire by message kind.
    pub bytes_by_kind: BTreeMap<String, u64>,
    /// Bytes on the wire in total.
    pub bytes_total: u64,
    /// Hints pending over time: (seconds, hints).
    pub curve: Vec<(f64, f64)>,
    /// Virtual seconds simulated.
    pub virtual_secs: f64,
    /// Determinism check.
    pub trace_hash: String,
}

/// Runs the outage scenario.
///
/// # Errors
/// [`SimError`] from the simulator.
#[allow(clippy::too_many_lines)]
pub fn run_outage(s: &OutageScenario) -> Result<OutageReport, SimError> {
    let config = Config {
        replication: s.replication,
        sloppy_quorum: s.sloppy,
        replay: s.replay.clone(),
        replay_interval: s.replay_interval,
        ..Config::default()
    };
    let n = s.nodes;
    let mut sim = cluster(s.seed, n, &config, s.link.clone(), s.service)?;
    sim.set_default_link(s.link.clone());
    let restart_at = s.down_at + s.down_for;
    sim.schedule_crash(s.down_at, &s.victim)?;
    sim.schedule_restart(restart_at, &s.victim)?;
    schedule_liveness(&mut sim, s.down_at + s.detect, s.victim, false, n)?;
    schedule_liveness(&mut sim, restart_at + s.detect, s.victim, true, n)?;

    let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ 0x5eed);
    let value = Bytes::from(vec![0xAB; s.value_bytes]);
    let total = u64::from(s.rate) * s.duration.as_secs();
    let gap = Duration::from_secs(1) / s.rate.max(1);
    let mut at = Duration::ZERO;
    for ts in 1..=total {
        let down = at >= s.down_at && at < restart_at;
        let coordinator = loop {
            let c = rng.random_range(0..n);
            if !(down && c == s.victim) {
                break c;
            }
        };
        let key = rng.random_range(0..s.keys.max(1));
        schedule_write(
            &mut sim,
            at,
            coordinator,
            key,
            ts,
            n,
            value.clone(),
            s.level,
        )?;
        at += gap;
    }

    // Sample hints pending and the replay window until the restart.
    let sample = Duration::from_millis(250);
    let mut curve = Vec::new();
    let mut peak_hints = 0;
    let mut peak_flight = 0;
    let mut observe = |sim: &Sim<SimNode>, curve: &mut Vec<(f64, f64)>| {
        let h = hints_pending(sim);
        peak_hints = peak_hints.max(h);
        let f: usize = sim
            .nodes()
            .map(|(_, m, _)| m.node.replays_in_flight(s.victim))
            .sum();
        peak_flight = peak_flight.max(f);
        #[allow(clippy::cast_precision_loss)]
        curve.push((sim.now().as_secs_f64(), h as f64));
    };
    while sim.now() < restart_at {
        sim.run_for(sample)?;
        observe(&sim, &mut curve);
    }
    // Writes the victim owns, acknowledged before it came back: repair is done when it
    // holds them all.
    let mut owed: Vec<(Bytes, u64)> = Vec::new();
    for (_, m, _) in sim.nodes() {
        for w in &m.client.acked {
            if w.owners.contains(&s.victim) {
                owed.push((w.key.clone(), w.timestamp));
            }
        }
    }
    let delivered_before = total_stats(&sim).hints_delivered;
    let limit = restart_at + Duration::from_secs(600);
    let mut repaired = None;
    while sim.now() < limit {
        sim.run_for(sample)?;
        observe(&sim, &mut curve);
        let victim = sim.node(&s.victim).map(|m| m.node.store());
        owed.retain(|(k, ts)| !victim.is_some_and(|st| st.has(k, *ts)));
        if owed.is_empty() {
            repaired = Some(sim.now() - restart_at);
            break;
        }
    }
    let delivered_during = total_stats(&sim).hints_delivered - delivered_before;
    // Let the rest of the workload and every replay finish.
    let end = s.duration.max(sim.now()) + Duration::from_secs(120);
    while sim.now() < end && (hints_pending(&sim) > 0 || sim.now() < s.duration) {
        sim.run_for(sample)?;
        observe(&sim, &mut curve);
    }
    sim.run_for(s.config_timeout_slack())?;

    let stats = total_stats(&sim);
    let victim = sim
        .node(&s.victim)
        .map(|m| m.write_delays.clone())
        .unwrap_or_default();
    let epoch = sim.instant() - sim.now();
    let vt = |t: Instant| t.saturating_duration_since(epoch);
    let replay_end = restart_at + repaired.unwrap_or(Duration::from_secs(5));
    let before: Vec<Duration> = victim
        .iter()
        .filter(|(t, _)| vt(*t) < s.down_at)
        .map(|(_, d)| *d)
        .collect();
    let during: Vec<Duration> = victim
        .iter()
        .filter(|(t, _)| vt(*t) >= restart_at && vt(*t) <= replay_end)
        .map(|(_, d)| *d)
        .collect();
    let mut lat_before = Vec::new();
    let mut lat_outage = Vec::new();
    let (mut issued, mut acked, mut failed, mut refused) = (0, 0, 0, 0);
    let mut persisted = 0;
    for (_, m, _) in sim.nodes() {
        issued += m.client.attempted;
        persisted += m.log.appended();
        refused += m.client.refused;
        failed += m.client.failed;
        acked += m.client.acked.len() as u64;
        for w in &m.client.acked {
            let t = vt(w.at);
            if t < s.down_at {
                lat_before.push(w.latency);
            } else if t >= s.down_at + s.detect && t < restart_at {
                lat_outage.push(w.latency);
            }
        }
    }
    let metrics = sim.metrics();
    let bytes_by_kind = metrics
        .kinds
        .iter()
        .map(|k| (k.kind.to_string(), k.sent.bytes))
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let replay_per_sec =
        repaired.map_or(0.0, |d| delivered_during as f64 / d.as_secs_f64().max(1e-9));
    Ok(OutageReport {
        seed: s.seed,
        adaptive: s.replay.adaptive,
        writes: [issued, acked, failed, refused],
        hints_stored: stats.hints_stored,
        log_records: persisted,
        hints_replayed: stats.hints_delivered,
        hints_superseded: stats.hints_superseded,
        hints_dropped: [
            stats.dropped_window,
            stats.dropped_ttl,
            stats.dropped_target_bound,
            stats.dropped_total_bound,
        ],
        replays: [stats.replays_sent, stats.replay_timeouts],
        peak_hints,
        repair_secs: repaired.map(|d| d.as_secs_f64()),
        replay_per_sec,
        acked_lost: lost_writes(&sim).len(),
        guest_copies_left: guest_copies(&sim, n, s.replication),
        victim_delay_before: Percentiles::of(before),
        victim_delay_replay: Percentiles::of(during),
        latency_before: Percentiles::of(lat_before),
        latency_outage: Percentiles::of(lat_outage),
        peak_replay_in_flight: peak_flight,
        bytes_by_kind,
        bytes_total: metrics.sent.bytes,
        curve,
        virtual_secs: sim.now().as_secs_f64(),
        trace_hash: format!("{:016x}", sim.trace_hash()),
    })
}

impl OutageScenario {
    /// Time for the last writes' timeouts to fire after the workload.
    fn config_timeout_slack(&self) -> Duration {
        Config::default().write_timeout + self.replay_interval
    }
}

// ---- availability: strict versus sloppy quorums ---------------------------------------

/// Share of writes acknowledged at one level with some owners down.
#[derive(Debug, Clone, Serialize)]
pub struct AvailabilityRow {
    /// The level.
    pub level: String,
    /// Nodes down.
    pub down: u64,
    /// Share acknowledged with a strict quorum.
    pub strict: f64,
    /// Share acknowledged with a sloppy quorum.
    pub sloppy: f64,
}

/// Writes at each level with `0..=max_down` nodes down (and known down), strict and
/// sloppy: the share acknowledged.
///
/// # Errors
/// [`SimError`] from the simulator.
pub fn availability(
    seed: u64,
    nodes: u64,
    replication: usize,
    max_down: u64,
    writes: u64,
) -> Result<Vec<AvailabilityRow>, SimError> {
    let levels = [
        Consistency::Any,
        Consistency::One,
        Consistency::Two,
        Consistency::Quorum,
        Consistency::All,
    ];
    let mut rows = Vec::new();
    for down in 0..=max_down.min(nodes.saturating_sub(1)) {
        for level in levels {
            let mut share = [0.0; 2];
            for (i, sloppy) in [false, true].into_iter().enumerate() {
                let config = Config {
                    replication,
                    sloppy_quorum: sloppy,
                    ..Config::default()
                };
                let mut sim = cluster(seed, nodes, &config, LinkConfig::default(), Duration::ZERO)?;
                // Nodes 1..=down are down from the start, and known down.
                for d in 1..=down {
                    sim.schedule_crash(Duration::ZERO, &d)?;
                    schedule_liveness(&mut sim, Duration::ZERO, d, false, nodes)?;
                }
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let live: Vec<NodeId> = (0..nodes).filter(|c| *c == 0 || *c > down).collect();
                for ts in 1..=writes {
                    let c = live[rng.random_range(0..live.len())];
                    let key = rng.random_range(0..10_000);
                    let at = Duration::from_millis(10 + ts);
                    schedule_write(&mut sim, at, c, key, ts, nodes, Bytes::new(), level)?;
                }
                sim.run_for(Duration::from_millis(10 + writes) + Duration::from_secs(5))?;
                let acked: usize = sim.nodes().map(|(_, m, _)| m.client.acked.len()).sum();
                #[allow(clippy::cast_precision_loss)]
                let ratio = acked as f64 / writes.max(1) as f64;
                share[i] = ratio;
            }
            rows.push(AvailabilityRow {
                level: format!("{level:?}"),
                down,
                strict: share[0],
                sloppy: share[1],
            });
        }
    }
    Ok(rows)
}
