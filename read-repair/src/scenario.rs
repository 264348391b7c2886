//! Simulation scenarios (feature `sim`), shared by this crate's tests and
//! `epidemic-sim read-repair`: a workload of writes and reads over `N` replicas, some of
//! which miss writes, read by separate coordinator nodes over the simulator's datagram
//! network.
//!
//! Writes take the application's write path: each is merged into the store of every
//! replica, except that each replica misses it with probability `staleness` (a dropped
//! mutation), and a crashed replica misses everything. Versions are the write's sequence
//! number, so last-write-wins orders them as they were issued.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use epidemic_sim::plan::FaultPlan;
use epidemic_sim::{LinkConfig, Sim, SimConfig, SimError, Transport, Wire};
use rand::RngExt;
use serde::Serialize;

use crate::config::{Config, Level, ReadOptions, RepairMode};
use crate::event::{Event, FailReason};
use crate::message::Message;
use crate::node::Node;
use crate::record::{LastWriteWins, Record, Schema};
use crate::replica::MemoryStore;

/// The simulations' schema: integer keys and cell names, byte values, last-write-wins
/// versions (the write's sequence number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSchema;

impl Schema for SimSchema {
    type Key = u32;
    type Cell = u16;
    type Value = Bytes;
    type Version = u64;
}

/// A simulated node: coordinator and replica roles over an in-memory store.
pub type SimNode = Node<u64, SimSchema, MemoryStore<SimSchema>, LastWriteWins>;

/// The wire functions of the read path: real sizes, envelope included.
#[must_use]
pub fn wire() -> Wire<Message<SimSchema>> {
    Wire::enveloped(Message::kind)
}

/// A read/write workload.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Replicas (node ids `0..replicas`).
    pub replicas: u32,
    /// Coordinator nodes (ids from 1000), each reading from all replicas.
    pub coordinators: u32,
    /// Distinct keys.
    pub keys: u32,
    /// Cells per record; every key starts with all of them written on every replica.
    pub cells: u16,
    /// Bytes per cell value.
    pub value_size: usize,
    /// Operations (reads and writes).
    pub ops: u32,
    /// Time between operations.
    pub interval: Duration,
    /// Share of operations that are writes (of one cell).
    pub write_ratio: f64,
    /// Probability that a replica misses a write (one random replica always gets it).
    pub staleness: f64,
    /// If set, each write reaches exactly this many random replicas instead (`staleness`
    /// is then unused): `W` of a quorum system.
    pub write_replicas: Option<u32>,
    /// Give each read the replicas in a random order (a token-aware client that shuffles
    /// replicas, so reads spread over different quorums); otherwise in id order.
    pub shuffle_replicas: bool,
    /// Level of every read.
    pub level: Level,
    /// Repair mode of every read.
    pub repair: RepairMode,
    /// Coordinator configuration.
    pub config: Config,
    /// Every link.
    pub link: LinkConfig,
    /// Datagrams (default) or connections (a crashed replica is then reported as a lost
    /// link, and reads fail over at once).
    pub transport: Transport,
    /// One slow replica: `(replica, extra delay)` from the start.
    pub slow: Option<(u64, Duration)>,
    /// Random faults on the replicas (indices into `0..replicas`); crashed replicas keep
    /// their store across restarts.
    pub faults: Option<FaultPlan>,
    /// After the workload, read every key at ALL with this repair mode (for convergence).
    pub final_sweep: Option<RepairMode>,
    /// The seed.
    pub seed: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            replicas: 3,
            coordinators: 2,
            keys: 16,
            cells: 4,
            value_size: 64,
            ops: 400,
            interval: Duration::from_millis(5),
            write_ratio: 0.3,
            staleness: 0.2,
            write_replicas: None,
            shuffle_replicas: false,
            level: Level::Quorum,
            repair: RepairMode::Blocking,
            config: Config::default(),
            link: LinkConfig::default(),
            transport: Transport::Datagram,
            slow: None,
            faults: None,
            final_sweep: None,
            seed: 0,
        }
    }
}

/// One completed read, as the checks see it.
#[derive(Debug, Clone)]
pub struct ReadRecord {
    /// Coordinator.
    pub node: u64,
    /// Key.
    pub key: u32,
    /// Virtual start time.
    pub started: Duration,
    /// Virtual completion time.
    pub finished: Duration,
    /// Version of each cell returned.
    pub versions: BTreeMap<u16, u64>,
    /// Replicas repaired.
    pub repaired: Vec<u64>,
    /// Round trips.
    pub round_trips: u8,
    /// Whether it was part of the final sweep.
    pub sweep: bool,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Seed.
    pub seed: u64,
    /// Reads started.
    pub reads: u64,
    /// Reads completed.
    pub done: u64,
    /// Reads failed (timeouts).
    pub failed: u64,
    /// Reads refused by a coordinator.
    pub refused: u64,
    /// Completed reads by round trips: `[1, 2, 3]`.
    pub round_trips: [u64; 3],
    /// Mean round trips per completed read.
    pub mean_round_trips: f64,
    /// Read-path bytes (requests and answers, envelopes included) per completed read.
    pub read_bytes_per_read: f64,
    /// Repair bytes on the wire (repairs and acknowledgements).
    pub repair_wire_bytes: u64,
    /// Repairs sent.
    pub repairs: u64,
    /// Bytes of their minimal diffs.
    pub repair_diff_bytes: u64,
    /// Bytes whole-record repairs would have taken.
    pub repair_whole_bytes: u64,
    /// Digest mismatches.
    pub digest_mismatches: u64,
    /// Bytes digests saved.
    pub bytes_saved_by_digests: u64,
    /// Speculative requests.
    pub speculative_retries: u64,
    /// Completed-read latency percentiles in ms: p50, p90, p99, max.
    pub latency_ms: [f64; 4],
    /// Reads that returned an older cell version than a read completed before they
    /// started.
    pub monotonic_violations: u64,
    /// Reads that returned an older cell version than the newest write issued before
    /// they started (expected 0 only when `W + R > N`).
    pub stale_reads: u64,
    /// Repaired replicas that do not hold what the read returned, at the end.
    pub unrepaired: u64,
    /// Keys whose replicas' records differ at the end.
    pub divergent_keys: u64,
    /// Answers dropped as late, duplicate, unknown or wrong-replica.
    pub dropped_answers: u64,
    /// Network drops.
    pub network_drops: u64,
    /// Trace hash.
    pub trace_hash: String,
    /// Every completed read.
    #[serde(skip)]
    pub completed: Vec<ReadRecord>,
    /// Failure reasons.
    #[serde(skip)]
    pub failures: Vec<FailReason>,
}

const COORDINATOR_BASE: u64 = 1000;

/// Runs the workload to quiescence.
///
/// # Errors
/// [`SimError`] from the simulator (a scenario that names unknown peers).
#[allow(clippy::too_many_lines)] // one linear script: build, schedule, run, measure
pub fn run(s: &Scenario) -> Result<Report, SimError> {
    let config = SimConfig {
        seed: s.seed,
        link: s.link.clone(),
        transport: s.transport,
        ..SimConfig::default()
    };
    let mut sim: Sim<SimNode> = Sim::new(config, wire());
    let mut rng = sim.fork_rng();
    let max_keys = s.keys as usize + 1;
    let node = |me: u64| {
        Node::new(
            me,
            s.config.clone(),
            MemoryStore::new(max_keys),
            LastWriteWins,
        )
        .map_err(|e| SimError::DuplicatePeer(e.to_string()))
    };
    let replicas: Vec<u64> = (0..u64::from(s.replicas)).collect();
    for &r in &replicas {
        sim.add_node(r, node(r)?)?;
    }
    let coordinators: Vec<u64> = (0..u64::from(s.coordinators))
        .map(|i| COORDINATOR_BASE + i)
        .collect();
    for &c in &coordinators {
        sim.add_node(c, node(c)?)?;
    }
    let rconfig = s.config.clone();
    sim.on_restart(move |me, old, _rng| {
        let store = std::mem::replace(old.responder_mut().store_mut(), MemoryStore::new(0));
        // The config validated when the node was first built.
        Node::new(*me, rconfig.clone(), store, LastWriteWins).expect("valid config")
    });
    if let Some((r, extra)) = s.slow {
        sim.schedule_slow(Duration::ZERO, &r, extra)?;
    }
    if let Some(plan) = &s.faults {
        plan.apply(&mut sim, &replicas)?;
    }
    let value = Bytes::from(vec![0xA5; s.value_size]);
    // Version 1..: every key starts with all its cells on every replica.
    let mut version = 0u64;
    for key in 0..s.keys {
        for cell in 0..s.cells {
            version += 1;
            for &r in &replicas {
                let (v, val) = (version, value.clone());
                sim.command(&r, move |n, _| {
                    n.responder_mut().write(key, cell, v, val);
                })?;
            }
        }
    }
    let start = Duration::from_millis(1);
    let mut writes: Vec<(Duration, u32, u16, u64)> = Vec::new();
    let opts = ReadOptions {
        level: s.level,
        repair: s.repair,
    };
    for op in 0..s.ops {
        let at = start + s.interval * op;
        let key = rng.random_range(0..s.keys.max(1));
        if rng.random_bool(s.write_ratio.clamp(0.0, 1.0)) {
            version += 1;
            let cell = rng.random_range(0..s.cells.max(1));
            writes.push((at, key, cell, version));
            let mut targets: Vec<usize> = (0..replicas.len()).collect();
            if let Some(w) = s.write_replicas {
                for i in 0..targets.len() {
                    let j = rng.random_range(i..targets.len());
                    targets.swap(i, j);
                }
                targets.truncate((w as usize).max(1));
            } else {
                let keep = rng.random_range(0..replicas.len());
                targets.retain(|&i| i == keep || !rng.random_bool(s.staleness.clamp(0.0, 1.0)));
            }
            for &i in &targets {
                let r = replicas[i];
                let (v, val) = (version, value.clone());
                sim.schedule_command(at, &r, move |n, _| {
                    n.responder_mut().write(key, cell, v, val);
                })?;
            }
        } else {
            let c = coordinators[rng.random_range(0..coordinators.len())];
            let mut rs = replicas.clone();
            if s.shuffle_replicas {
                for i in 0..rs.len() {
                    let j = rng.random_range(i..rs.len());
                    rs.swap(i, j);
                }
            }
            sim.schedule_command(at, &c, move |n, now| {
                // A refusal is counted in the coordinator's stats.
                let _ = n.read(now, key, &rs, opts);
            })?;
        }
    }
    let horizon = start + s.interval * s.ops + s.config.read_timeout * 4;
    sim.run_until_quiescent(horizon + Duration::from_secs(60))?;
    let sweep_from = sim.now();
    if let Some(mode) = s.final_sweep {
        sim.schedule_heal(sweep_from);
        for &r in &replicas {
            sim.schedule_slow(sweep_from, &r, Duration::ZERO)?;
        }
        let all = ReadOptions {
            level: Level::All,
            repair: mode,
        };
        let c = coordinators[0];
        for key in 0..s.keys {
            let rs = replicas.clone();
            let at = sweep_from + Duration::from_millis(1) + s.interval * key;
            sim.schedule_command(at, &c, move |n, now| {
                let _ = n.read(now, key, &rs, all);
            })?;
        }
        sim.run_until_quiescent(sweep_from + Duration::from_secs(3600))?;
    }
    Ok(report(
        s,
        &sim,
        &replicas,
        &coordinators,
        sweep_from,
        &writes,
    ))
}

fn versions(record: Option<&Record<SimSchema>>) -> BTreeMap<u16, u64> {
    record
        .map(|r| {
            r.cells()
                .filter_map(|(c, v)| v.iter().map(|x| x.version).max().map(|m| (*c, m)))
                .collect()
        })
        .unwrap_or_default()
}

fn report(
    s: &Scenario,
    sim: &Sim<SimNode>,
    replicas: &[u64],
    coordinators: &[u64],
    sweep_from: Duration,
    writes: &[(Duration, u32, u16, u64)],
) -> Report {
    let mut completed = Vec::new();
    let mut failures = Vec::new();
    for e in sim.events() {
        match &e.event {
            Event::ReadDone(d) => completed.push(ReadRecord {
                node: e.node,
                key: d.key,
                started: sim.virtual_time(d.started),
                finished: e.at,
                versions: versions(d.value.as_ref()),
                repaired: d.repaired.to_vec(),
                round_trips: d.round_trips,
                sweep: e.at > sweep_from,
            }),
            Event::ReadFailed { reason, .. } => failures.push(*reason),
        }
    }
    let workload: Vec<&ReadRecord> = completed.iter().filter(|r| !r.sweep).collect();
    let mut round_trips = [0u64; 3];
    for r in &workload {
        round_trips[usize::from(r.round_trips.clamp(1, 3)) - 1] += 1;
    }
    let n = workload.len().max(1) as f64;
    let mean_round_trips = workload
        .iter()
        .map(|r| f64::from(r.round_trips))
        .sum::<f64>()
        / n;
    let mut lat: Vec<f64> = workload
        .iter()
        .map(|r| (r.finished.saturating_sub(r.started)).as_secs_f64() * 1e3)
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() - 1) as f64 * q).round() as usize]
        }
    };
    let m = sim.metrics();
    let kind_bytes = |names: &[&str]| -> u64 {
        m.kinds
            .iter()
            .filter(|k| names.contains(&k.kind))
            .map(|k| k.sent.bytes)
            .sum()
    };
    let read_bytes = kind_bytes(&["read_data", "read_digest", "data", "digest"]);
    let repair_wire_bytes = kind_bytes(&["repair", "repair_ack"]);
    let mut stats = crate::event::Stats::default();
    for c in coordinators {
        if let Some(node) = sim.node(c) {
            let x = node.coordinator().stats();
            stats.reads_started += x.reads_started;
            stats.reads_refused += x.reads_refused;
            stats.repairs_sent += x.repairs_sent;
            stats.repair_bytes += x.repair_bytes;
            stats.whole_record_bytes += x.whole_record_bytes;
            stats.digest_mismatches += x.digest_mismatches;
            stats.bytes_saved_by_digests += x.bytes_saved_by_digests;
            stats.speculative_retries += x.speculative_retries;
            stats.duplicate_responses += x.duplicate_responses;
            stats.unknown_id += x.unknown_id;
            stats.wrong_replica += x.wrong_replica;
            stats.late_responses += x.late_responses;
        }
    }
    let held = |r: u64, key: u32| -> BTreeMap<u16, u64> {
        sim.node(&r)
            .and_then(|n| {
                use crate::replica::Store;
                n.responder().store().get(&key).map(|c| versions(Some(&c)))
            })
            .unwrap_or_default()
    };
    let mut unrepaired = 0;
    for r in &completed {
        for &rep in &r.repaired {
            let h = held(rep, r.key);
            if r.versions
                .iter()
                .any(|(c, v)| h.get(c).is_none_or(|x| x < v))
            {
                unrepaired += 1;
            }
        }
    }
    let divergent_keys = (0..s.keys)
        .filter(|&k| {
            let first = held(replicas[0], k);
            replicas[1..].iter().any(|&r| held(r, k) != first)
        })
        .count() as u64;
    Report {
        seed: s.seed,
        reads: stats.reads_started,
        done: workload.len() as u64,
        failed: failures.len() as u64,
        refused: stats.reads_refused,
        round_trips,
        mean_round_trips,
        read_bytes_per_read: read_bytes as f64 / n,
        repair_wire_bytes,
        repairs: stats.repairs_sent,
        repair_diff_bytes: stats.repair_bytes,
        repair_whole_bytes: stats.whole_record_bytes,
        digest_mismatches: stats.digest_mismatches,
        bytes_saved_by_digests: stats.bytes_saved_by_digests,
        speculative_retries: stats.speculative_retries,
        latency_ms: [pct(0.5), pct(0.9), pct(0.99), pct(1.0)],
        monotonic_violations: monotonic_violations(&completed),
        stale_reads: stale_reads(&completed, writes),
        unrepaired,
        divergent_keys,
        dropped_answers: stats.duplicate_responses
            + stats.unknown_id
            + stats.wrong_replica
            + stats.late_responses,
        network_drops: m.drops.total(),
        trace_hash: format!("{:016x}", sim.trace_hash()),
        completed,
        failures,
    }
}

/// Reads that returned, for some cell, an older version than a read of the same key that
/// completed before they started (strictly): the monotonic-read property.
#[must_use]
pub fn monotonic_violations(reads: &[ReadRecord]) -> u64 {
    let mut by_finish: Vec<&ReadRecord> = reads.iter().collect();
    by_finish.sort_by_key(|r| r.finished);
    let mut by_start: Vec<&ReadRecord> = reads.iter().collect();
    by_start.sort_by_key(|r| r.started);
    // Per key, per cell: the newest version any completed read returned so far.
    let mut floor: BTreeMap<u32, BTreeMap<u16, u64>> = BTreeMap::new();
    let mut next = 0;
    let mut violations = 0;
    for r in by_start {
        while next < by_finish.len() && by_finish[next].finished < r.started {
            let done = by_finish[next];
            let f = floor.entry(done.key).or_default();
            for (&c, &v) in &done.versions {
                let e = f.entry(c).or_insert(0);
                *e = (*e).max(v);
            }
            next += 1;
        }
        if let Some(f) = floor.get(&r.key) {
            if f.iter()
                .any(|(c, &v)| r.versions.get(c).is_none_or(|&x| x < v))
            {
                violations += 1;
            }
        }
    }
    violations
}

/// Reads that returned, for some cell, an older version than the newest write of that
/// cell issued before they started.
#[must_use]
pub fn stale_reads(reads: &[ReadRecord], writes: &[(Duration, u32, u16, u64)]) -> u64 {
    let mut by_start: Vec<&ReadRecord> = reads.iter().collect();
    by_start.sort_by_key(|r| r.started);
    let mut newest: BTreeMap<(u32, u16), u64> = BTreeMap::new();
    let mut next = 0;
    let mut stale = 0;
    for r in by_start {
        while next < writes.len() && writes[next].0 < r.started {
            let (_, key, cell, v) = writes[next];
            let e = newest.entry((key, cell)).or_insert(0);
            *e = (*e).max(v);
            next += 1;
        }
        if newest
            .range((r.key, 0)..=(r.key, u16::MAX))
            .any(|(&(_, c), &v)| r.versions.get(&c).is_none_or(|&x| x < v))
        {
            stale += 1;
        }
    }
    stale
}
