//! Simulation scenarios (feature `sim`), shared by this crate's tests and
//! `epidemic-sim merkle`: two replicas of `keys` keys that differ in `differences` keys,
//! one session between them over the simulator, and what it cost.

use std::time::Duration;

use epidemic_sim::{LinkConfig, Meter, Sim, SimConfig, Wire};
use hashbrown::HashSet;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::riblt::{Decoder, Encoder};
use crate::{
    Config, Event, Finish, Item, MerkleSync, Message, Method, Replica, SessionReport, Shape, Stats,
};

/// The replica type the scenarios use.
pub type Node = MerkleSync<u64>;

/// The wire functions of [`Message`]: real sizes, per-step kinds.
#[must_use]
pub fn wire() -> Wire<Message> {
    Wire::enveloped(Message::kind)
}

/// One reconciliation experiment.
#[derive(Debug, Clone)]
pub struct MerkleScenario {
    /// Keys on replica A.
    pub keys: u64,
    /// Keys that differ: a third only on A, a third only on B, a third in different
    /// versions.
    pub differences: u64,
    /// How the session reconciles.
    pub method: Method,
    /// Tree shape of both replicas.
    pub shape: Shape,
    /// Every link's fault model.
    pub link: LinkConfig,
    /// Largest message, bytes.
    pub max_message_bytes: usize,
    /// The seed.
    pub seed: u64,
}

impl Default for MerkleScenario {
    fn default() -> Self {
        Self {
            keys: 10_000,
            differences: 10,
            method: Method::Planned,
            shape: Shape::default(),
            link: LinkConfig::default(),
            max_message_bytes: Config::default().max_message_bytes,
            seed: 0,
        }
    }
}

/// What one experiment measured.
#[derive(Debug, Clone, Serialize)]
pub struct MerkleReport {
    /// The seed.
    pub seed: u64,
    /// Keys on A.
    pub keys: u64,
    /// Keys that differ.
    pub differences: u64,
    /// Items in the true symmetric difference (an updated key counts twice).
    pub difference_items: u64,
    /// The method asked for.
    pub method: Method,
    /// How the session finished.
    pub finish: Finish,
    /// The deepest level compared.
    pub levels: u8,
    /// Whether both sides reported exactly the true difference.
    pub exact: bool,
    /// Whether the roots are equal after both sides applied the repair.
    pub repaired: bool,
    /// Bytes both sides sent, envelopes and retransmissions included.
    pub bytes: u64,
    /// `differences · 16`: each differing key's key and digest, once.
    pub ideal_bytes: u64,
    /// Bytes per differing key.
    pub bytes_per_difference: f64,
    /// `bytes / ideal_bytes`: the whole session.
    pub ratio_to_ideal: f64,
    /// Bytes of the reconciliation stream alone: coded symbols and the requests for more
    /// (what the paper's bytes-per-difference figure measures).
    pub stream_bytes: u64,
    /// `stream_bytes / ideal_bytes`.
    pub stream_ratio: f64,
    /// Bytes of the `Done` step (both sides learning their side of the difference).
    pub done_bytes: u64,
    /// Round trips (two steps each, rounded up).
    pub round_trips: u32,
    /// Messages sent.
    pub messages: u64,
    /// Coded symbols sent.
    pub symbols: u64,
    /// Items sent in lists.
    pub list_items: u64,
    /// Items sent in lists that did not differ (goal 0).
    pub keys_not_differing: u64,
    /// Messages the network lost.
    pub lost: u64,
    /// Initiator counters.
    pub initiator: Stats,
    /// Wall seconds of the session (both replicas, simulator included).
    pub wall_secs: f64,
    /// CPU seconds of the session, if the platform reports them.
    pub cpu_secs: Option<f64>,
    /// Virtual milliseconds until the session ended.
    pub virtual_ms: f64,
}

/// Two replicas: A with `keys` keys, B differing from A in `differences` keys; and the
/// true difference as (A-only items, B-only items).
#[must_use]
pub fn replicas(
    base: &Replica,
    differences: u64,
    seed: u64,
) -> (Replica, Replica, Vec<Item>, Vec<Item>) {
    let a = base.clone();
    let mut b = base.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xd1ff);
    let n = base.len() as u64;
    let mut touched = HashSet::new();
    let (mut a_only, mut b_only) = (Vec::new(), Vec::new());
    for i in 0..differences {
        let kind = if n == 0 { 1 } else { i % 3 };
        match kind {
            0 | 2 => {
                let key = loop {
                    let k = key_of(rng.random_range(0..n));
                    if touched.insert(k) {
                        break k;
                    }
                };
                // The base's keys are key_of(0..n); every one is present.
                let digest = a.get(key).expect("a base key");
                a_only.push(Item { key, digest });
                if kind == 0 {
                    b.remove(key);
                } else {
                    let new = digest ^ rng.random_range(1..u64::MAX);
                    b.insert(key, new);
                    b_only.push(Item { key, digest: new });
                }
            }
            _ => {
                let key = loop {
                    let k: u64 = rng.random();
                    if k >= n && touched.insert(k) && a.get(k).is_none() {
                        break k;
                    }
                };
                let digest = rng.random();
                b.insert(key, digest);
                b_only.push(Item { key, digest });
            }
        }
    }
    a_only.sort_unstable();
    b_only.sort_unstable();
    (a, b, a_only, b_only)
}

/// The `i`-th key of a base replica: spread over the key space.
#[must_use]
pub fn key_of(i: u64) -> u64 {
    i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// A replica of `keys` keys `key_of(0..keys)`, digest `i`.
#[must_use]
pub fn base_replica(keys: u64, shape: Shape) -> Replica {
    Replica::from_items(
        shape,
        crate::Xxh3::default(),
        (0..keys).map(|i| Item {
            key: key_of(i),
            digest: i,
        }),
    )
}

/// Runs one experiment over a prebuilt base replica of `s.keys` keys.
///
/// # Errors
/// An invalid configuration, or an error from the simulator, as text.
pub fn run_with(base: &Replica, s: &MerkleScenario) -> Result<MerkleReport, String> {
    let (a, b, a_only, b_only) = replicas(base, s.differences, s.seed);
    let config = Config {
        shape: s.shape,
        method: s.method,
        max_message_bytes: s.max_message_bytes,
        // Small messages: keep the step bound within 65,535 fragments.
        max_step_bytes: Config::default().max_step_bytes.min(
            s.max_message_bytes
                .saturating_sub(64)
                .saturating_mul(60_000),
        ),
        ..Config::default()
    };
    let sim_config = SimConfig {
        seed: s.seed,
        link: s.link.clone(),
        ..SimConfig::default()
    };
    let mut sim: Sim<Node> = Sim::new(sim_config, wire());
    let mut rng = sim.fork_rng();
    let text = |e: &dyn std::fmt::Display| e.to_string();
    let na = MerkleSync::new(config.clone(), a, &mut rng).map_err(|e| text(&e))?;
    let nb = MerkleSync::new(config, b, &mut rng).map_err(|e| text(&e))?;
    sim.add_node(1, na).map_err(|e| text(&e))?;
    sim.add_node(2, nb).map_err(|e| text(&e))?;
    let meter = Meter::start();
    sim.command(&1, |m, now| m.sync(now, 2))
        .map_err(|e| text(&e))?
        .map_err(|e| text(&e))?;
    sim.run_until_quiescent(Duration::from_secs(3600))
        .map_err(|e| text(&e))?;
    let measured = meter.read();
    let mut reports: Vec<(u64, Vec<Item>, Vec<Item>, SessionReport)> = Vec::new();
    let mut ended = Duration::ZERO;
    for e in sim.events() {
        if let Event::Synced {
            to_send,
            to_fetch,
            report,
            ..
        } = &e.event
        {
            let (mut send, mut fetch) = (to_send.clone(), to_fetch.clone());
            send.sort_unstable();
            fetch.sort_unstable();
            reports.push((e.node, send, fetch, *report));
            ended = ended.max(e.at);
        }
    }
    let exact = reports.len() == 2
        && reports.iter().all(|(node, send, fetch, _)| {
            if *node == 1 {
                *send == a_only && *fetch == b_only
            } else {
                *send == b_only && *fetch == a_only
            }
        });
    let repaired = exact && {
        let mut roots = Vec::new();
        for (node, _, fetch, _) in &reports {
            let mut r = sim.node(node).expect("node exists").replica().clone();
            repair(&mut r, fetch);
            roots.push(r.tree().root());
        }
        roots.windows(2).all(|w| w[0] == w[1])
    };
    let init = reports
        .iter()
        .find(|r| r.0 == 1)
        .map(|r| r.3)
        .unwrap_or_default();
    let metrics = sim.metrics();
    let symbols = reports.iter().map(|r| r.3.symbols).max().unwrap_or(0);
    let list_items = reports.iter().map(|r| r.3.list_items).max().unwrap_or(0);
    let not_differing = sim
        .nodes()
        .map(|(_, m, _)| m.stats().list_items_not_differing)
        .sum();
    let ideal = s.differences * 16;
    let bytes = metrics.sent.bytes;
    let kind_bytes = |names: &[&str]| -> u64 {
        metrics
            .kinds
            .iter()
            .filter(|k| names.contains(&k.kind))
            .map(|k| k.sent.bytes)
            .sum()
    };
    let stream_bytes = kind_bytes(&["symbols", "more", "sketch", "syndromes", "ask"]);
    Ok(MerkleReport {
        seed: s.seed,
        keys: s.keys,
        differences: s.differences,
        difference_items: (a_only.len() + b_only.len()) as u64,
        method: s.method,
        finish: init.finish,
        levels: init.levels,
        exact,
        repaired,
        bytes,
        ideal_bytes: ideal,
        bytes_per_difference: bytes as f64 / s.differences.max(1) as f64,
        ratio_to_ideal: bytes as f64 / ideal.max(1) as f64,
        stream_bytes,
        stream_ratio: stream_bytes as f64 / ideal.max(1) as f64,
        done_bytes: kind_bytes(&["done"]),
        round_trips: init.steps.div_ceil(2),
        messages: metrics.sent.messages,
        symbols,
        list_items,
        keys_not_differing: not_differing,
        lost: metrics.drops.total(),
        initiator: *sim.node(&1).expect("node 1 exists").stats(),
        wall_secs: measured.wall_secs,
        cpu_secs: measured.cpu_secs,
        virtual_ms: ended.as_secs_f64() * 1e3,
    })
}

/// Runs one experiment, building the base replica first.
///
/// # Errors
/// As [`run_with`].
pub fn run(s: &MerkleScenario) -> Result<MerkleReport, String> {
    run_with(&base_replica(s.keys, s.shape), s)
}

/// Applies what a session said to fetch, with a deterministic winner for keys held in two
/// versions (the larger digest; a stand-in for the application's own rule). Applied on
/// both sides, it leaves the replicas equal.
pub fn repair(r: &mut Replica, to_fetch: &[Item]) {
    for i in to_fetch {
        match r.get(i.key) {
            Some(d) if d >= i.digest => {}
            _ => {
                r.insert(i.key, i.digest);
            }
        }
    }
}

/// Mean coded symbols per differing key a RIBLT decoder needs, over `seeds` random sets
/// of `common` shared items and `keys` differing keys (a third only on each side, a third
/// in two versions).
#[must_use]
pub fn riblt_overhead(common: u64, keys: u64, seeds: u64) -> f64 {
    let mut total = 0usize;
    for seed in 0..seeds {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut item = || Item {
            key: rng.random(),
            digest: rng.random(),
        };
        let shared: Vec<Item> = (0..common).map(|_| item()).collect();
        let mut a = shared.clone();
        let mut b = shared;
        for i in 0..keys {
            let it = item();
            match i % 3 {
                0 => a.push(it),
                1 => b.push(it),
                _ => {
                    a.push(it);
                    b.push(Item {
                        digest: !it.digest,
                        ..it
                    });
                }
            }
        }
        let mut enc = Encoder::new(&a, seed);
        let mut dec = Decoder::new(&b, seed, usize::MAX);
        let mut buf = Vec::new();
        // Enough symbols for any realistic overhead; stop at the exact point of decoding.
        enc.produce(
            usize::try_from(keys * 4 + 64).unwrap_or(usize::MAX),
            &mut buf,
        );
        total += dec.add_until_decoded(&buf).unwrap_or(buf.len());
    }
    total as f64 / (seeds.max(1) * keys.max(1)) as f64
}

/// Bytes of memory per key of a replica: (store, tree).
#[must_use]
pub fn memory_per_key(r: &Replica) -> (f64, f64) {
    let n = r.len().max(1) as f64;
    (
        r.store().memory_bytes() as f64 / n,
        r.tree().memory_bytes() as f64 / n,
    )
}
