//! Simulation scenarios (feature `sim`), shared by this crate's tests and the
//! `epidemic-sim bvv` subcommand.
//!
//! A group of replicas takes writes on random keys at random nodes for a while; each
//! write is pushed to the other replicas, and a share of those pushes is lost on purpose
//! (the "writes missed by some replica between syncs" of the issue), on top of link loss
//! and optional crash/restart with durable state. Then the network heals and the run goes
//! on until every replica has the same clock and an empty log. The report holds what the
//! papers claim: bytes and keys per sync against the keys actually missing, metadata per
//! key at rest against per-key version vectors, node state, log size over time, time to
//! converge, and the exact-oracle check that no acknowledged write was lost.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use epidemic_core::codec::body_len;
use epidemic_sim::plan::FaultPlan;
use epidemic_sim::{LinkConfig, Loss, Measured, Meter, Sim, SimConfig, SimError, Wire};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::clock::{Dot, NodeId};
use crate::config::Config;
use crate::dcc::Context;
use crate::message::Message;
use crate::node::Bvv;
use crate::storage::{MemoryStore, Storage};

/// The machine the scenarios run.
pub type SimNode = Bvv<MemoryStore, ChaCha8Rng>;

/// A node's RNG from a seed, for drivers (fuzz targets, benches) that do not depend on
/// `rand_chacha` themselves.
#[must_use]
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Real sizes (envelope and postcard body), one kind per variant.
#[must_use]
pub fn wire() -> Wire<Message> {
    Wire::enveloped(Message::kind)
}

/// A write workload on one replica group.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Replicas (every one holds every key).
    pub nodes: u32,
    /// Distinct keys written.
    pub keys: u32,
    /// Writes, spread evenly over `write_window`.
    pub writes: u32,
    /// How long writes go on.
    pub write_window: Duration,
    /// Share of writes made without reading first (they become siblings of what is
    /// there, as concurrent writes do).
    pub blind: f64,
    /// Share of writes that are deletes.
    pub deletes: f64,
    /// Share of pushed writes each replica misses (dropped on purpose).
    pub miss: f64,
    /// The link model while writes go on (lossless afterwards).
    pub link: LinkConfig,
    /// The nodes' sync interval.
    pub sync_interval: Duration,
    /// Crashes during the write window, each node in turn, each down for `down_for`.
    pub crashes: u32,
    /// How long a crashed node stays down.
    pub down_for: Duration,
    /// Bytes per value.
    pub value_bytes: usize,
    /// How long after the window to wait for convergence at most.
    pub converge_limit: Duration,
    /// How often the log size is sampled (and convergence checked).
    pub sample_every: Duration,
    /// Further faults during the write window (crashes, restarts, partitions, lossy or
    /// slow links), undone when the network heals.
    pub plan: FaultPlan,
    /// The seed.
    pub seed: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            nodes: 3,
            keys: 100_000,
            writes: 100_000,
            write_window: Duration::from_secs(10),
            blind: 0.05,
            deletes: 0.02,
            miss: 0.01,
            link: LinkConfig::default(),
            sync_interval: Duration::from_millis(200),
            crashes: 0,
            down_for: Duration::from_secs(2),
            value_bytes: 16,
            converge_limit: Duration::from_secs(120),
            sample_every: Duration::from_millis(200),
            plan: FaultPlan::default(),
            seed: 0,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Replicas.
    pub nodes: u32,
    /// Keys in the workload.
    pub keys: u32,
    /// Writes acknowledged (a write at a crashed node is not made).
    pub writes_acked: u64,
    /// Share of pushes dropped on purpose.
    pub miss: f64,
    /// Whether every replica reached the same clock and an empty log.
    pub converged: bool,
    /// Seconds from the end of writes (and of crashes) until then.
    pub converge_secs: Option<f64>,
    /// Whether every replica's store is identical.
    pub identical_stores: bool,
    /// Keys whose values differ from the oracle's (acknowledged writes lost, or
    /// superseded values resurrected): must be 0.
    pub lost_or_wrong_keys: u64,
    /// Keys stored at the end.
    pub keys_stored: usize,
    /// Keys with more than one value (concurrent writes) at the end.
    pub keys_with_siblings: usize,
    /// Syncs started.
    pub syncs: u64,
    /// Bytes of sync messages (requests and replies).
    pub sync_bytes: u64,
    /// Of which requests (node clocks).
    pub request_bytes: u64,
    /// Bytes of pushed writes.
    pub push_bytes: u64,
    /// Mean bytes per sync (request and reply).
    pub bytes_per_sync: f64,
    /// Keys shipped in replies.
    pub keys_shipped: u64,
    /// Keys received (shipped minus lost in transit).
    pub keys_received: u64,
    /// Received keys that changed the receiver's values.
    pub keys_changed: u64,
    /// Received keys that only brought dots of overwritten values.
    pub keys_causal_only: u64,
    /// Received keys the receiver already had entirely: waste.
    pub keys_redundant: u64,
    /// Received keys learned meanwhile (a push or another reply raced this one).
    pub keys_raced: u64,
    /// Mean bytes of a reply that shipped keys (all its messages).
    pub bytes_per_nonempty_reply: f64,
    /// Mean keys shipped per sync that shipped any.
    pub keys_per_nonempty_sync: f64,
    /// Replies that were full transfers.
    pub full_transfers: u64,
    /// Mean metadata bytes per stored key at rest (value dots and context, encoded).
    pub meta_bytes_per_key: f64,
    /// Mean (id, counter) pairs per stored key at rest.
    pub meta_pairs_per_key: f64,
    /// Mean values per stored key (each carries one pair).
    pub values_per_key: f64,
    /// Largest causal context left on a key at rest (0: fully stripped).
    pub max_context_pairs: usize,
    /// Baseline: mean bytes of a per-key version vector for the same writes.
    pub vv_meta_bytes_per_key: f64,
    /// Baseline: mean (id, counter) pairs of a per-key version vector.
    pub vv_pairs_per_key: f64,
    /// Baseline: bytes a per-key-clock anti-entropy without Merkle trees exchanges per
    /// sync (every key with its version vector).
    pub vv_digest_bytes_per_sync: f64,
    /// Node-wide metadata (clock, watermark, log) of the largest node at rest, bytes.
    pub node_state_bytes: usize,
    /// The same at its peak.
    pub node_state_bytes_peak: usize,
    /// Largest log (dots) seen on any node.
    pub log_peak: usize,
    /// Largest log at the end (0 once every peer has seen everything).
    pub log_final: usize,
    /// (virtual seconds, largest log on any node) samples.
    pub log_series: Vec<(f64, usize)>,
    /// Virtual seconds simulated.
    pub virtual_secs: f64,
    /// Wall, CPU and memory of the run.
    pub measured: Measured,
    /// Trace hash: equal seeds give equal hashes.
    pub trace_hash: String,
}

impl Report {
    /// The invariants every run must meet: converged, identical stores, nothing lost,
    /// contexts stripped, log empty.
    ///
    /// # Errors
    /// What is wrong.
    pub fn check(&self) -> Result<(), String> {
        if !self.converged {
            return Err(format!("not converged, log {}", self.log_final));
        }
        if !self.identical_stores {
            return Err("replicas' stores differ".into());
        }
        if self.lost_or_wrong_keys > 0 {
            return Err(format!("{} keys lost or wrong", self.lost_or_wrong_keys));
        }
        if self.max_context_pairs > 0 {
            return Err(format!(
                "a key keeps {} context pairs at rest",
                self.max_context_pairs
            ));
        }
        if self.log_final > 0 {
            return Err(format!("log holds {} dots at rest", self.log_final));
        }
        Ok(())
    }
}

/// One acknowledged write, for the oracle.
struct Ack {
    key: Bytes,
    dot: Dot,
    value: Option<Bytes>,
    context: Context,
}

/// Runs a scenario to convergence (or its limit) and measures it.
///
/// # Errors
/// [`SimError`] from the simulator.
#[allow(clippy::too_many_lines)] // one linear script: set up, write, heal, measure
pub fn run(s: &Scenario) -> Result<Report, SimError> {
    let meter = Meter::start();
    let config = SimConfig {
        seed: s.seed,
        link: s.link.clone(),
        record_events: false,
        ..SimConfig::default()
    };
    let mut sim: Sim<SimNode> = Sim::new(config, wire());
    let cfg = Config {
        sync_interval: s.sync_interval,
        ..Config::default()
    };
    let ids: Vec<NodeId> = (0..u64::from(s.nodes)).collect();
    for &id in &ids {
        let rng = sim.fork_rng();
        let node = Bvv::new(
            sim.instant(),
            id,
            ids.iter().copied(),
            cfg.clone(),
            MemoryStore::new(),
            rng,
        )
        .map_err(|e| SimError::Invariant {
            name: "config".into(),
            at: Duration::ZERO,
            seed: s.seed,
            message: e.to_string(),
        })?;
        sim.add_node(id, node)?;
    }
    sim.on_restart(|_, old, rng| old.restart(ChaCha8Rng::from_rng(rng)));

    let mut drops = ChaCha8Rng::seed_from_u64(s.seed ^ 0x6d69_7373);
    let miss = s.miss.clamp(0.0, 1.0);
    sim.set_filter(Some(Box::new(move |_, _, _, msg: &Message| {
        !(matches!(msg, Message::Push { .. }) && drops.random_bool(miss))
    })));

    // The workload.
    let acks: Rc<RefCell<Vec<Ack>>> = Rc::new(RefCell::new(Vec::new()));
    let mut work = ChaCha8Rng::seed_from_u64(s.seed ^ 0x776f_726b);
    let window = s.write_window.as_nanos();
    for i in 0..s.writes {
        let at = Duration::from_nanos(
            u64::try_from(window * u128::from(i) / u128::from(s.writes.max(1))).unwrap_or(u64::MAX),
        ) + Duration::from_millis(1);
        let node = ids[work.random_range(0..ids.len())];
        let key = Bytes::from(format!("key{:07}", work.random_range(0..s.keys.max(1))));
        let blind = work.random_bool(s.blind.clamp(0.0, 1.0));
        let delete = work.random_bool(s.deletes.clamp(0.0, 1.0));
        let mut value = vec![0u8; s.value_bytes];
        for (j, b) in i.to_le_bytes().iter().enumerate() {
            if let Some(slot) = value.get_mut(j) {
                *slot = *b;
            }
        }
        let value = Bytes::from(value);
        let acks = Rc::clone(&acks);
        sim.schedule_command(at, &node, move |m: &mut SimNode, now| {
            let context = if blind {
                Context::new()
            } else {
                m.get(&key).context
            };
            let result = if delete {
                m.delete(now, key.clone(), &context)
            } else {
                m.put(now, key.clone(), value.clone(), &context)
            };
            if let Ok(dot) = result {
                acks.borrow_mut().push(Ack {
                    key,
                    dot,
                    value: (!delete).then_some(value),
                    context,
                });
            }
        })?;
    }
    for c in 0..s.crashes {
        let node = ids[c as usize % ids.len()];
        let at = s.write_window * (c + 1) / (s.crashes + 2);
        sim.schedule_crash(at, &node)?;
        sim.schedule_restart(at + s.down_for, &node)?;
    }

    s.plan.apply(&mut sim, &ids)?;

    // The write window, sampling the log.
    let mut series: Vec<(f64, usize)> = Vec::new();
    let mut state_peak = 0usize;
    let sample = |sim: &Sim<SimNode>, series: &mut Vec<(f64, usize)>, peak: &mut usize| {
        let log = sim
            .nodes()
            .map(|(_, m, _)| m.log().len())
            .max()
            .unwrap_or(0);
        series.push((sim.now().as_secs_f64(), log));
        let state = sim
            .nodes()
            .map(|(_, m, _)| m.node_state_bytes())
            .max()
            .unwrap_or(0);
        *peak = (*peak).max(state);
    };
    let step = s.sample_every.max(Duration::from_millis(1));
    // Writes end with the window (and crashed nodes are back).
    let down = if s.crashes > 0 {
        s.down_for
    } else {
        Duration::ZERO
    };
    let end_writes = s
        .write_window
        .max(s.write_window * s.crashes.max(1) / (s.crashes + 2) + down)
        + Duration::from_millis(1);
    while sim.now() < end_writes {
        let next = (sim.now() + step).min(end_writes);
        sim.run_until(next)?;
        sample(&sim, &mut series, &mut state_peak);
    }

    // Heal and converge: undo every fault of the plan.
    let now = sim.now();
    sim.schedule_heal(now);
    for i in s.plan.left_crashed() {
        if let Some(peer) = ids.get(i) {
            sim.schedule_restart(now, peer)?;
        }
    }
    for &a in &ids {
        sim.schedule_slow(now, &a, Duration::ZERO)?;
        for &b in &ids {
            if a != b {
                sim.schedule_link(now, &a, &b, None)?;
            }
        }
    }
    sim.set_filter(None);
    sim.set_default_link(LinkConfig {
        loss: Loss::None,
        ..s.link.clone()
    });
    let healed = sim.now();
    let limit = healed + s.converge_limit;
    let samples = RefCell::new((Vec::new(), 0usize));
    let done = sim.run_until_condition(limit, step, |sim| {
        let mut sm = samples.borrow_mut();
        let (ser, peak) = &mut *sm;
        sample(sim, ser, peak);
        converged(sim)
    })?;
    let (more, peak2) = samples.into_inner();
    series.extend(more);
    state_peak = state_peak.max(peak2);

    let acks = acks.borrow();
    Ok(measure(
        s,
        &sim,
        &acks,
        MeasureInput {
            converge_secs: done.map(|t| (t - healed).as_secs_f64()),
            series,
            state_peak,
            measured: meter.read(),
        },
    ))
}

/// Every node up, the same clock everywhere, every log empty.
fn converged(sim: &Sim<SimNode>) -> bool {
    let mut nodes = sim.nodes();
    let Some((_, first, up)) = nodes.next() else {
        return true;
    };
    up && first.log().is_empty()
        && nodes.all(|(_, m, up)| up && m.log().is_empty() && m.clock() == first.clock())
}

struct MeasureInput {
    converge_secs: Option<f64>,
    series: Vec<(f64, usize)>,
    state_peak: usize,
    measured: Measured,
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn measure(s: &Scenario, sim: &Sim<SimNode>, acks: &[Ack], m: MeasureInput) -> Report {
    let nodes: Vec<&SimNode> = sim.nodes().map(|(_, n, _)| n).collect();
    let first = nodes[0];
    let identical = nodes.iter().all(|n| n.store() == first.store());

    // The oracle: a written value survives iff no write's client context covers it.
    let mut by_key: BTreeMap<&Bytes, Vec<&Ack>> = BTreeMap::new();
    for a in acks {
        by_key.entry(&a.key).or_default().push(a);
    }
    let mut wrong = 0u64;
    let mut vv_bytes = 0usize;
    let mut vv_pairs = 0usize;
    let mut digest_bytes = 0usize;
    let mut vv_keys = 0usize;
    for (key, writes) in &by_key {
        let mut want: Vec<(Dot, Bytes)> = writes
            .iter()
            .filter_map(|a| {
                let v = a.value.clone()?;
                let superseded = writes.iter().any(|w| w.context.covers(a.dot));
                (!superseded).then_some((a.dot, v))
            })
            .collect();
        want.sort();
        let got: Vec<(Dot, Bytes)> = first
            .store()
            .get_ref(key)
            .map(|d| d.values().to_vec())
            .unwrap_or_default();
        if got != want {
            wrong += 1;
        }
        if !want.is_empty() {
            // Per-key version vector baseline: one counter per coordinator of this key.
            let mut vv: BTreeMap<NodeId, u64> = BTreeMap::new();
            for w in writes {
                *vv.entry(w.dot.id).or_default() += 1;
            }
            let pairs: Vec<(NodeId, u64)> = vv.into_iter().collect();
            let len = body_len(&pairs);
            vv_bytes += len;
            vv_pairs += pairs.len();
            digest_bytes += len + body_len(*key);
            vv_keys += 1;
        }
    }

    let mut meta_bytes = 0usize;
    let mut meta_pairs = 0usize;
    let mut values = 0usize;
    let mut max_ctx = 0usize;
    let mut siblings = 0usize;
    for (_, dcc) in first.store().iter() {
        meta_bytes += dcc.metadata_len();
        meta_pairs += dcc.metadata_pairs();
        values += dcc.values().len();
        siblings += usize::from(dcc.values().len() > 1);
        max_ctx = max_ctx.max(dcc.context().len());
    }
    for n in &nodes {
        for (_, dcc) in n.store().iter() {
            max_ctx = max_ctx.max(dcc.context().len());
        }
    }
    let stored = first.store().len();
    let per_key = |x: usize| {
        if stored == 0 {
            0.0
        } else {
            x as f64 / stored as f64
        }
    };

    let mut st = crate::Stats::default();
    for n in &nodes {
        let x = n.stats();
        st.syncs_started += x.syncs_started;
        st.requests_served += x.requests_served;
        st.entries_sent += x.entries_sent;
        st.entries_received += x.entries_received;
        st.entries_changed += x.entries_changed;
        st.entries_causal_only += x.entries_causal_only;
        st.entries_redundant += x.entries_redundant;
        st.entries_raced += x.entries_raced;
        st.full_transfers_sent += x.full_transfers_sent;
        st.replies_with_entries += x.replies_with_entries;
        st.nonempty_reply_bytes += x.nonempty_reply_bytes;
    }
    let metrics = sim.metrics();
    let kind = |k: &str| metrics.kind(k).map_or(0, |k| k.sent.bytes);
    let request_bytes = kind("sync_request");
    let sync_bytes = request_bytes + kind("sync_reply") + kind("sync_more");
    let syncs = st.syncs_started.max(1);
    let log_final = nodes.iter().map(|n| n.log().len()).max().unwrap_or(0);
    Report {
        seed: s.seed,
        nodes: s.nodes,
        keys: s.keys,
        writes_acked: acks.len() as u64,
        miss: s.miss,
        converged: m.converge_secs.is_some(),
        converge_secs: m.converge_secs,
        identical_stores: identical,
        lost_or_wrong_keys: wrong,
        keys_stored: stored,
        keys_with_siblings: siblings,
        syncs: st.syncs_started,
        sync_bytes,
        request_bytes,
        push_bytes: kind("push"),
        bytes_per_sync: sync_bytes as f64 / syncs as f64,
        keys_shipped: st.entries_sent,
        keys_received: st.entries_received,
        keys_changed: st.entries_changed,
        keys_causal_only: st.entries_causal_only,
        keys_redundant: st.entries_redundant,
        keys_raced: st.entries_raced,
        bytes_per_nonempty_reply: st.nonempty_reply_bytes as f64
            / st.replies_with_entries.max(1) as f64,
        keys_per_nonempty_sync: st.entries_sent as f64 / st.replies_with_entries.max(1) as f64,
        full_transfers: st.full_transfers_sent,
        meta_bytes_per_key: per_key(meta_bytes),
        meta_pairs_per_key: per_key(meta_pairs),
        values_per_key: per_key(values),
        max_context_pairs: max_ctx,
        vv_meta_bytes_per_key: if vv_keys == 0 {
            0.0
        } else {
            vv_bytes as f64 / vv_keys as f64
        },
        vv_pairs_per_key: if vv_keys == 0 {
            0.0
        } else {
            vv_pairs as f64 / vv_keys as f64
        },
        vv_digest_bytes_per_sync: digest_bytes as f64,
        node_state_bytes: nodes
            .iter()
            .map(|n| n.node_state_bytes())
            .max()
            .unwrap_or(0),
        node_state_bytes_peak: m.state_peak,
        log_peak: m.series.iter().map(|&(_, l)| l).max().unwrap_or(0),
        log_final,
        log_series: m.series,
        virtual_secs: sim.now().as_secs_f64(),
        measured: m.measured,
        trace_hash: format!("{:016x}", sim.trace_hash()),
    }
}
