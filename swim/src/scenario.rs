//! The SWIM experiments the `epidemic-sim swim` command and this crate's tests share
//! (feature `sim`): N members join through one seed, then a share of them is killed while
//! the network loses messages and one member is slow, and the run measures what the SWIM
//! and Lifeguard papers measure.
//!
//! Phases of [`run`]:
//!
//! 1. **Join.** Member 0 starts alone; the others join through it at random instants in
//!    the first `join_spread`. Measured: time until 99% and 100% of members know every
//!    other member as live.
//! 2. **Faults.** The link model switches to the scenario's (loss), one member turns slow
//!    (`slow`), and `kill` of the members crash at once, `settle` after the join.
//! 3. **Observation** for `observe` of virtual time. Measured: first detection of each
//!    killed member (first Suspect anywhere), first Down, time until every live member
//!    marked it Down; false positives (live members declared Down); messages, bytes and
//!    CPU per member per protocol period.
//! 4. **Aligned detection** (`aligned_kills`, optional): every live member's protocol
//!    periods are put on one grid and one member crashes exactly at a grid boundary, then
//!    another after `aligned_gap`, and so on. Measured: periods from each crash to its
//!    first suspicion, the SWIM paper's first detection time (expected e/(e−1) ≈ 1.58
//!    when every member probes a random other each period). Phase 3's first detection
//!    is the same delay after a crash at a random phase of the members' periods, so
//!    about half a period more.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use epidemic_sim::{LinkConfig, Measured, Meter, Sim, SimConfig, Wire};
use hashbrown::HashSet;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::{Config, Event, Message, Swim};

/// A simulated member: `u64` addresses, a ChaCha RNG forked from the run's seed.
pub type Node = Swim<u64, ChaCha8Rng>;

/// The wire functions of SWIM's messages: real sizes (envelope and postcard body) per kind.
#[must_use]
pub fn wire() -> Wire<Message<u64>> {
    Wire::enveloped(Message::kind)
}

/// A fresh member `id` with `config`.
///
/// # Panics
/// If `config` is invalid (the scenarios validate it first).
#[must_use]
pub fn node(id: u64, config: &Config, rng: ChaCha8Rng) -> Node {
    Swim::new(id, config.clone(), rng).expect("config validated by the caller")
}

/// A fresh member `id` whose RNG is seeded from `seed` (fuzz targets and benches).
///
/// # Panics
/// If `config` is invalid.
#[must_use]
pub fn seeded_node(id: u64, config: &Config, seed: u64) -> Node {
    use rand::SeedableRng;
    node(id, config, ChaCha8Rng::seed_from_u64(seed))
}

/// A network of `n` members, member 0 started at time zero and the others joining through
/// it at random instants in `[0, join_spread)`. Restarted members come back fresh
/// (incarnation 0, nothing durable) and join through member 0 again
/// ([`schedule_rejoin`]).
///
/// # Errors
/// The configuration is invalid.
pub fn cluster(
    n: u32,
    config: &Config,
    sim_config: SimConfig,
    join_spread: Duration,
) -> Result<Sim<Node>, String> {
    config.validate().map_err(|e| e.to_string())?;
    let mut sim: Sim<Node> = Sim::new(sim_config, wire());
    let mut rng = sim.fork_rng();
    for i in 0..u64::from(n) {
        let r = sim.fork_rng();
        sim.add_node(i, node(i, config, r))
            .map_err(|e| e.to_string())?;
    }
    if n > 0 {
        sim.command(&0, Node::start).map_err(|e| e.to_string())?;
    }
    let spread = u64::try_from(join_spread.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    for i in 1..u64::from(n) {
        let at = Duration::from_nanos(rng.random_range(0..spread));
        sim.schedule_command(at, &i, |m, now| {
            // Cannot fail: seed 0 is not this member.
            let _ = m.join(now, [0]);
        })
        .map_err(|e| e.to_string())?;
    }
    let cfg = config.clone();
    sim.on_restart(move |peer, _old, rng| node(*peer, &cfg, rng.clone()));
    Ok(sim)
}

/// Restarts `peer` at `at` as a fresh process (incarnation 0, empty table) that joins
/// through member 0 (or member 1 when it is member 0 itself).
///
/// # Errors
/// The simulator's, if `peer` is unknown.
pub fn schedule_rejoin(sim: &mut Sim<Node>, at: Duration, peer: u64) -> Result<(), String> {
    sim.schedule_restart(at, &peer).map_err(|e| e.to_string())?;
    let seed = u64::from(peer == 0);
    sim.schedule_command(at + Duration::from_nanos(1), &peer, move |m, now| {
        let _ = m.join(now, [seed]);
    })
    .map_err(|e| e.to_string())
}

/// Whether every live member knows exactly the other live members as live (and nothing
/// else as live).
#[must_use]
pub fn converged(sim: &Sim<Node>) -> bool {
    let live: Vec<u64> = sim.nodes().filter(|n| n.2).map(|n| *n.0).collect();
    sim.nodes().filter(|n| n.2).all(|(me, m, _)| {
        m.num_live() + 1 == live.len()
            && live
                .iter()
                .all(|p| p == me || m.member(p).is_some_and(|i| i.state.is_live()))
    })
}

/// A SWIM experiment.
#[derive(Debug, Clone)]
pub struct SwimScenario {
    /// Members.
    pub nodes: u32,
    /// Every member's configuration.
    pub config: Config,
    /// The link model during the join.
    pub join_link: LinkConfig,
    /// The link model from the faults on (loss applies here).
    pub link: LinkConfig,
    /// Joins are spread uniformly over this long.
    pub join_spread: Duration,
    /// Longest wait for the join to converge.
    pub join_limit: Duration,
    /// Time from the end of the join to the faults and the observation window. For the
    /// steady-state cost, long enough for the join's gossip to drain (gossip 0 in
    /// [`SwimReport::kinds`]).
    pub settle: Duration,
    /// Share of members crashed at once (at least one if positive; never member 0).
    pub kill: f64,
    /// If set, member 1 sees every message this much later from the faults on.
    pub slow: Option<Duration>,
    /// Observation time after the faults. For the steady-state cost, make it a whole
    /// number of push-pull intervals (memberlist's scaling: 90 s at N = 100, 180 s at
    /// 1,000, 300 s at 10,000): the members join within a second, so their push-pulls
    /// stay in phase and a shorter window over- or under-counts them.
    pub observe: Duration,
    /// The seed.
    pub seed: u64,
    /// Phase 4 (after the observation): members crashed one at a time, each exactly at a
    /// boundary of a protocol-period grid every live member is put on, to measure first
    /// detection as the SWIM paper defines it. 0 skips the phase.
    pub aligned_kills: u32,
    /// Phase 4: time between one crash's first suspicion and the next crash's alignment,
    /// so that each crashed member is declared down before the next (the paper analyses
    /// one failure at a time).
    pub aligned_gap: Duration,
}

impl Default for SwimScenario {
    fn default() -> Self {
        Self {
            nodes: 100,
            config: Config::lan(),
            join_link: LinkConfig::default(),
            link: LinkConfig::default(),
            join_spread: Duration::from_secs(1),
            join_limit: Duration::from_secs(120),
            settle: Duration::from_secs(5),
            kill: 0.01,
            slow: None,
            observe: Duration::from_secs(300),
            seed: 0,
            aligned_kills: 0,
            aligned_gap: Duration::from_secs(20),
        }
    }
}

/// What a SWIM experiment measured. Times are seconds of virtual time unless named
/// otherwise; "periods" are units of the configured probe interval.
#[derive(Debug, Clone, Serialize)]
pub struct SwimReport {
    /// The seed.
    pub seed: u64,
    /// Members.
    pub nodes: u32,
    /// Whether all Lifeguard extensions were on.
    pub lifeguard: bool,
    /// Mean loss rate of the links during observation.
    pub loss: f64,
    /// The probe interval in seconds.
    pub period_secs: f64,
    /// Join: time until 99% of members knew every other (from the first join).
    pub join_99_secs: Option<f64>,
    /// Join: time until every member knew every other.
    pub join_all_secs: Option<f64>,
    /// Members killed.
    pub killed: u32,
    /// Mean periods from a crash at a random phase of the members' periods to its first
    /// suspicion anywhere (about half a period of waiting for the next period to start,
    /// plus the paper's figure).
    pub first_detection_periods: Option<f64>,
    /// Mean periods from a crash at a random phase to the start of the first probe of it
    /// that failed (first suspicion minus one period).
    pub first_probe_periods: Option<f64>,
    /// Phase 4: crashes measured (each at a boundary of every member's period grid).
    pub aligned_kills: u32,
    /// Phase 4: mean periods from a crash at a period boundary to its first suspicion
    /// (some member's probe of it failed at the end of a period): the SWIM paper's first
    /// detection time, whose expectation is e/(e−1) ≈ 1.58.
    pub aligned_first_detection_periods: Option<f64>,
    /// Phase 4: each crash's periods to first suspicion, in crash order.
    pub aligned_detections: Vec<f64>,
    /// Mean seconds from a crash to its first Down anywhere.
    pub first_down_secs: Option<f64>,
    /// Mean seconds from a crash until every live member marked it Down.
    pub all_down_secs: Option<f64>,
    /// Largest such time.
    pub all_down_secs_max: Option<f64>,
    /// Largest spread, in periods, from a killed member's first Down to its last.
    pub down_spread_periods_max: Option<f64>,
    /// Killed members that some live member still had as live at the end.
    pub undetected: u32,
    /// Live members declared Down by a suspicion timeout somewhere (each declaration once).
    pub false_positives: u64,
    /// Distinct live members declared Down at least once.
    pub false_positive_members: u64,
    /// (observer, live member) Down events, the declarations' reach.
    pub false_positive_events: u64,
    /// False-positive declarations per member-hour of observation.
    pub false_positives_per_node_hour: f64,
    /// Suspicions raised against live members by a failed probe (refuted or not).
    pub false_suspicions: u64,
    /// Messages sent per member per period during observation.
    pub msgs_per_member_period: f64,
    /// Bytes sent per member per period during observation (envelope included).
    pub bytes_per_member_period: f64,
    /// Messages per member per second during observation.
    pub msgs_per_member_sec: f64,
    /// Bytes per member per second during observation.
    pub bytes_per_member_sec: f64,
    /// Messages per kind during observation, per member per period.
    pub kinds: BTreeMap<&'static str, f64>,
    /// Bytes per kind during observation, per member per period.
    pub kind_bytes: BTreeMap<&'static str, f64>,
    /// Simulator CPU microseconds per member per period during observation.
    pub cpu_us_per_member_period: Option<f64>,
    /// Largest member table seen at the end (tombstones included).
    pub max_table: usize,
    /// Heap bytes of all members' state per member-pair (sum of [`Swim::heap_bytes`]
    /// over N members, divided by N²) right after the join, when every member still
    /// queues the joins' Alive updates.
    pub heap_per_pair_after_join: f64,
    /// The same at the end of the run.
    pub heap_per_pair_end: f64,
    /// Virtual seconds simulated.
    pub virtual_secs: f64,
    /// Wall, CPU and memory of the whole run.
    pub measured: Measured,
    /// Trace hash: equal seeds give equal hashes.
    pub trace_hash: String,
    /// Share of (live observer, killed member) pairs marked Down, by seconds since the
    /// crash.
    #[serde(skip)]
    pub detection_curve: Vec<(f64, f64)>,
    /// Share of members that had declared a live member Down, by minutes of observation.
    #[serde(skip)]
    pub false_positive_curve: Vec<(f64, f64)>,
}

/// What the event hook gathers during observation.
#[derive(Debug, Default)]
struct Collector {
    /// When the faults happened.
    t0: Option<Duration>,
    killed: HashSet<u64>,
    first_suspect: BTreeMap<u64, Duration>,
    /// Per killed member, when each observer marked it Down.
    downs: BTreeMap<u64, Vec<(u64, Duration)>>,
    fp: u64,
    fp_events: u64,
    fp_members: std::collections::BTreeSet<u64>,
    fp_declarers: BTreeMap<u64, Duration>,
    false_suspicions: u64,
    /// Phase 4: the member crashed at a grid boundary, when, and its first suspicion.
    aligned: Option<(u64, Duration, Option<Duration>)>,
}

impl Collector {
    fn on_event(&mut self, at: Duration, node: u64, e: &Event<u64>) {
        if let (Some((victim, t, first @ None)), Event::MemberSuspected { member, .. }) =
            (&mut self.aligned, e)
        {
            if member == victim && at >= *t {
                *first = Some(at);
            }
        }
        let Some(t0) = self.t0 else {
            return;
        };
        if at < t0 {
            return;
        }
        match e {
            Event::MemberSuspected { member, by, .. } => {
                if self.killed.contains(member) {
                    self.first_suspect.entry(*member).or_insert(at);
                } else {
                    self.false_suspicions += u64::from(*by == node);
                }
            }
            Event::MemberDown { member, by, .. } => {
                if self.killed.contains(member) {
                    self.downs.entry(*member).or_default().push((node, at));
                } else {
                    self.fp_events += 1;
                    if *by == node {
                        self.fp += 1;
                        self.fp_members.insert(*member);
                        self.fp_declarers.entry(node).or_insert(at);
                    }
                }
            }
            _ => {}
        }
    }
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Runs a SWIM experiment (phases in the module's page).
///
/// # Errors
/// An invalid configuration, or the simulator's error.
#[allow(clippy::too_many_lines)] // one linear experiment reads best in one place
pub fn run(s: &SwimScenario) -> Result<SwimReport, String> {
    let sim_config = SimConfig {
        seed: s.seed,
        link: s.join_link.clone(),
        record_events: false,
        ..SimConfig::default()
    };
    let meter_all = Meter::start();
    let mut sim = cluster(s.nodes, &s.config, sim_config, s.join_spread)?;
    let collector = Rc::new(RefCell::new(Collector::default()));
    let hook = Rc::clone(&collector);
    sim.set_event_hook(Some(Box::new(move |at, node, e| {
        hook.borrow_mut().on_event(at, *node, e);
    })));
    let n = s.nodes as usize;
    // Phase 1: join.
    let mut join_99 = None;
    let join_all = sim
        .run_until_condition(s.join_limit, Duration::from_millis(100), |sim| {
            let full = sim
                .nodes()
                .filter(|(_, m, _)| m.num_live() + 1 == n)
                .count();
            if join_99.is_none() && full * 100 >= n * 99 {
                join_99 = Some(sim.now());
            }
            full == n
        })
        .map_err(|e| e.to_string())?;
    let pairs_n = (n * n).max(1) as f64;
    let heap_per_pair = |sim: &Sim<Node>| {
        sim.nodes().map(|(_, m, _)| m.heap_bytes()).sum::<usize>() as f64 / pairs_n
    };
    let heap_per_pair_after_join = heap_per_pair(&sim);
    // Phase 2: faults.
    let t_faults = sim.now() + s.settle;
    sim.run_until(t_faults).map_err(|e| e.to_string())?;
    sim.set_default_link(s.link.clone());
    if let Some(extra) = s.slow {
        if s.nodes > 1 {
            sim.schedule_slow(t_faults, &1, extra)
                .map_err(|e| e.to_string())?;
        }
    }
    let mut rng = sim.fork_rng();
    let mut candidates: Vec<u64> =
        (if s.slow.is_some() { 2 } else { 1 }..u64::from(s.nodes)).collect();
    let want = if s.kill > 0.0 {
        ((f64::from(s.nodes) * s.kill).round() as usize).max(1)
    } else {
        0
    };
    let kill = want.min(candidates.len());
    for i in 0..kill {
        let j = rng.random_range(i..candidates.len());
        candidates.swap(i, j);
    }
    let killed: Vec<u64> = candidates[..kill].to_vec();
    {
        let mut c = collector.borrow_mut();
        c.t0 = Some(t_faults);
        c.killed = killed.iter().copied().collect();
    }
    for k in &killed {
        sim.schedule_crash(t_faults, k).map_err(|e| e.to_string())?;
    }
    // Phase 3: observe.
    let before = sim.metrics().clone();
    let meter = Meter::start();
    sim.run_until(t_faults + s.observe)
        .map_err(|e| e.to_string())?;
    let cpu = meter.read().cpu_secs;
    let after = sim.metrics();
    let period = s.config.probe_interval.as_secs_f64();
    let live = (n - kill).max(1) as f64;
    let periods = s.observe.as_secs_f64() / period;
    let per = |x: u64| x as f64 / live / periods.max(1e-9);
    let (mut kinds, mut kind_bytes) = (BTreeMap::new(), BTreeMap::new());
    for k in &after.kinds {
        let prev = before.kind(k.kind).map(|p| p.sent);
        kinds.insert(
            k.kind,
            per(k.sent.messages - prev.map_or(0, |p| p.messages)),
        );
        kind_bytes.insert(k.kind, per(k.sent.bytes - prev.map_or(0, |p| p.bytes)));
    }
    let msgs = after.sent.messages - before.sent.messages;
    let bytes = after.sent.bytes - before.sent.bytes;

    let c = collector.borrow();
    let live_nodes = n - kill;
    let (mut first_det, mut first_down, mut all_down, mut spread) =
        (vec![], vec![], vec![], vec![]);
    let mut undetected = 0;
    let mut pairs: Vec<f64> = Vec::new();
    for k in &killed {
        if let Some(t) = c.first_suspect.get(k) {
            first_det.push((*t - t_faults).as_secs_f64() / period);
        }
        let downs = c.downs.get(k).map_or(&[][..], Vec::as_slice);
        let mut observers: Vec<(u64, Duration)> = downs
            .iter()
            .filter(|(o, _)| !c.killed.contains(o))
            .copied()
            .collect();
        observers.sort_unstable();
        observers.dedup_by_key(|(o, _)| *o);
        let mut times: Vec<f64> = observers
            .iter()
            .map(|(_, t)| (*t - t_faults).as_secs_f64())
            .collect();
        times.sort_by(f64::total_cmp);
        pairs.extend(&times);
        if let Some(f) = times.first() {
            first_down.push(*f);
        }
        if times.len() >= live_nodes {
            let last = times[times.len() - 1];
            all_down.push(last);
            spread.push((last - times[0]) / period);
        } else {
            undetected += 1;
        }
    }
    pairs.sort_by(f64::total_cmp);
    let total_pairs = (live_nodes * kill) as f64;
    let mut detection_curve = vec![(0.0, 0.0)];
    let step = (pairs.len() / 200).max(1);
    for (i, t) in pairs.iter().enumerate().step_by(step) {
        detection_curve.push((*t, (i + 1) as f64 / total_pairs));
    }
    if let Some(t) = pairs.last() {
        detection_curve.push((*t, pairs.len() as f64 / total_pairs));
    }
    let mut fp_times: Vec<f64> = c
        .fp_declarers
        .values()
        .map(|t| (*t - t_faults).as_secs_f64() / 60.0)
        .collect();
    fp_times.sort_by(f64::total_cmp);
    let mut false_positive_curve = vec![(0.0, 0.0)];
    for (i, t) in fp_times.iter().enumerate() {
        false_positive_curve.push((*t, (i + 1) as f64 / live));
    }
    false_positive_curve.push((s.observe.as_secs_f64() / 60.0, fp_times.len() as f64 / live));
    let hours = s.observe.as_secs_f64() / 3600.0;
    let max_table = sim
        .nodes()
        .map(|(_, m, _)| m.num_members())
        .max()
        .unwrap_or(0);
    let maxf = |v: &[f64]| v.iter().copied().reduce(f64::max);
    let (fp, fp_members, fp_events, false_suspicions) = (
        c.fp,
        c.fp_members.len() as u64,
        c.fp_events,
        c.false_suspicions,
    );
    drop(c);
    let heap_per_pair_end = heap_per_pair(&sim);
    // Phase 4: crashes at period boundaries.
    let spared = if s.slow.is_some() { 2 } else { 1 };
    let survivors: Vec<u64> = (spared..u64::from(s.nodes))
        .filter(|p| !killed.contains(p))
        .collect();
    let aligned = aligned_phase(&mut sim, s, &collector, &mut rng, survivors)?;
    Ok(SwimReport {
        seed: s.seed,
        nodes: s.nodes,
        lifeguard: s.config.lifeguard == crate::Lifeguard::ON,
        loss: loss_rate(&s.link),
        period_secs: period,
        join_99_secs: join_99.map(|d| d.as_secs_f64()),
        join_all_secs: join_all.map(|d| d.as_secs_f64()),
        killed: u32::try_from(kill).unwrap_or(u32::MAX),
        first_detection_periods: mean(&first_det),
        first_probe_periods: mean(&first_det).map(|m| m - 1.0),
        aligned_kills: u32::try_from(aligned.len()).unwrap_or(u32::MAX),
        aligned_first_detection_periods: mean(&aligned),
        aligned_detections: aligned,
        first_down_secs: mean(&first_down),
        all_down_secs: mean(&all_down),
        all_down_secs_max: maxf(&all_down),
        down_spread_periods_max: maxf(&spread),
        undetected,
        false_positives: fp,
        false_positive_members: fp_members,
        false_positive_events: fp_events,
        false_positives_per_node_hour: fp as f64 / live / hours.max(1e-9),
        false_suspicions,
        msgs_per_member_period: per(msgs),
        bytes_per_member_period: per(bytes),
        msgs_per_member_sec: per(msgs) / period,
        bytes_per_member_sec: per(bytes) / period,
        kinds,
        kind_bytes,
        cpu_us_per_member_period: cpu.map(|c| c * 1e6 / live / periods.max(1e-9)),
        max_table,
        heap_per_pair_after_join,
        heap_per_pair_end,
        virtual_secs: sim.now().as_secs_f64(),
        measured: meter_all.read(),
        trace_hash: format!("{:016x}", sim.trace_hash()),
        detection_curve,
        false_positive_curve,
    })
}

/// Phase 4: `s.aligned_kills` members of `candidates`, one at a time, each crashed exactly
/// where every live member's protocol period ends (all put on one grid a period ahead,
/// so no period is cut short); returns each crash's periods until its first suspicion.
/// This is the SWIM paper's setting for its e/(e−1): periods aligned, the failure at a
/// period's start, detection when some member's probe of it fails at a period's end.
fn aligned_phase(
    sim: &mut Sim<Node>,
    s: &SwimScenario,
    collector: &Rc<RefCell<Collector>>,
    rng: &mut ChaCha8Rng,
    mut candidates: Vec<u64>,
) -> Result<Vec<f64>, String> {
    let period = s.config.probe_interval;
    let mut detections = Vec::new();
    for _ in 0..s.aligned_kills {
        // Keep a few members alive: detection needs someone to probe.
        if candidates.len() <= 2 {
            break;
        }
        let victim = candidates.swap_remove(rng.random_range(0..candidates.len()));
        let at = sim.now() + period;
        let live: Vec<u64> = sim.nodes().filter(|n| n.2).map(|n| *n.0).collect();
        for p in &live {
            sim.command(p, |m, now| m.align_period(now, now + period))
                .map_err(|e| e.to_string())?;
        }
        sim.schedule_crash(at, &victim).map_err(|e| e.to_string())?;
        collector.borrow_mut().aligned = Some((victim, at, None));
        let found = |c: &Rc<RefCell<Collector>>| c.borrow().aligned.and_then(|a| a.2);
        sim.run_until_condition(at + period * 64, period / 4, |_| found(collector).is_some())
            .map_err(|e| e.to_string())?;
        if let Some(t) = found(collector) {
            detections.push((t - at).as_secs_f64() / period.as_secs_f64());
        }
        collector.borrow_mut().aligned = None;
        sim.run_until(sim.now() + s.aligned_gap)
            .map_err(|e| e.to_string())?;
    }
    Ok(detections)
}

fn loss_rate(link: &LinkConfig) -> f64 {
    match link.loss {
        epidemic_sim::Loss::None => 0.0,
        epidemic_sim::Loss::Uniform(p) => p,
        epidemic_sim::Loss::Bursty(ge) => ge.mean_loss(),
    }
}
