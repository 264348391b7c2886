//! `epidemic-sim hinted-handoff`: a write workload on a ring with one replica down for a
//! while and back. Prints hints stored, replayed and dropped by reason, the time to full
//! repair after the outage, acknowledged-write loss (must be 0), the recovering replica's
//! own write latency during replay with the adaptive rate and unthrottled (beside
//! ScyllaDB's 17x, scylladb/scylladb#7976), bytes on the wire, and availability per level
//! with strict and sloppy quorums.

use std::time::Duration;

use clap::{Args, ValueEnum};
use epidemic_hinted_handoff::scenario::{
    self, AvailabilityRow, OutageReport, OutageScenario, Percentiles,
};
use epidemic_hinted_handoff::{Consistency, ReplayConfig};
use epidemic_sim::plot::{self, Series};
use serde::Serialize;

use crate::common::{Global, LinkArgs, emit, table};

/// A consistency level on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Level {
    Any,
    One,
    Two,
    Three,
    Quorum,
    All,
}

impl From<Level> for Consistency {
    fn from(l: Level) -> Self {
        match l {
            Level::Any => Consistency::Any,
            Level::One => Consistency::One,
            Level::Two => Consistency::Two,
            Level::Three => Consistency::Three,
            Level::Quorum => Consistency::Quorum,
            Level::All => Consistency::All,
        }
    }
}

/// Flags of `hinted-handoff`.
#[derive(Debug, Args)]
pub(crate) struct HintedHandoffArgs {
    /// Nodes on the ring.
    #[arg(long, default_value_t = 5)]
    nodes: u64,
    /// Replicas per key (N).
    #[arg(long, default_value_t = 3)]
    replication: usize,
    /// The writes' consistency level.
    #[arg(long, value_enum, default_value_t = Level::Quorum)]
    level: Level,
    /// Strict quorums (no fallback nodes) instead of sloppy ones.
    #[arg(long)]
    strict: bool,
    /// Client writes per second.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Seconds of writes.
    #[arg(long, default_value_t = 60)]
    duration_s: u64,
    /// When the replica goes down, in seconds.
    #[arg(long, default_value_t = 5)]
    down_at_s: u64,
    /// How long it stays down (the outage T), in seconds.
    #[arg(long, default_value_t = 30)]
    down_for_s: u64,
    /// Work per message at every node, in microseconds (the service queue that replay
    /// competes with).
    #[arg(long, default_value_t = 500)]
    service_us: u64,
    /// Distinct keys written.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Value bytes per write.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Hint dispatcher period, in seconds.
    #[arg(long, default_value_t = 10)]
    replay_interval_s: u64,
    /// Also measure the time to full repair for each of these outage lengths (seconds,
    /// comma-separated), adaptive replay.
    #[arg(long, value_delimiter = ',')]
    sweep_t: Vec<u64>,
    /// Writes per level and mode in the availability table.
    #[arg(long, default_value_t = 300)]
    availability_writes: u64,
    #[command(flatten)]
    link: LinkArgs,
}

#[derive(Debug, Serialize)]
struct Report {
    adaptive: OutageReport,
    unthrottled: OutageReport,
    availability: Vec<AvailabilityRow>,
    sweep: Vec<SweepRow>,
}

/// Repair after one outage length.
#[derive(Debug, Serialize)]
struct SweepRow {
    outage_secs: u64,
    hints_stored: u64,
    peak_hints: usize,
    repair_secs: Option<f64>,
    replay_per_sec: f64,
    acked_lost: usize,
}

/// Runs the outage scenario with adaptive and unthrottled replay, and the availability
/// sweep; prints (and plots) the figures.
pub(crate) fn run(g: &Global, args: &HintedHandoffArgs) -> Result<(), String> {
    if args.nodes < 2 || args.nodes > 1000 {
        return Err(format!("--nodes must be in 2..=1000, got {}", args.nodes));
    }
    let max_n = args.nodes.min(255);
    if args.replication == 0 || args.replication as u64 > max_n {
        return Err(format!(
            "--replication must be in 1..={max_n}, got {}",
            args.replication
        ));
    }
    if args.rate == 0 || args.rate > 100_000 || args.duration_s > 3600 {
        return Err("--rate must be in 1..=100000 and --duration-s at most 3600".into());
    }
    if args.down_at_s + args.down_for_s > 86_400 || args.replay_interval_s == 0 {
        return Err("the outage must end within a day; --replay-interval-s > 0".into());
    }
    if args.value_bytes > 1 << 20 || args.availability_writes > 100_000 {
        return Err("--value-bytes at most 1 MiB, --availability-writes at most 100000".into());
    }
    if let Some(t) = args.sweep_t.iter().find(|t| **t == 0 || **t > 3600) {
        return Err(format!("--sweep-t values must be in 1..=3600, got {t}"));
    }
    let base = OutageScenario {
        nodes: args.nodes,
        replication: args.replication,
        level: args.level.into(),
        sloppy: !args.strict,
        rate: args.rate,
        duration: Duration::from_secs(args.duration_s),
        keys: args.keys.max(1),
        value_bytes: args.value_bytes,
        victim: 1,
        down_at: Duration::from_secs(args.down_at_s),
        down_for: Duration::from_secs(args.down_for_s),
        detect: Duration::from_secs(1),
        service: Duration::from_micros(args.service_us),
        replay: ReplayConfig::default(),
        replay_interval: Duration::from_secs(args.replay_interval_s),
        link: args.link.to_link()?,
        seed: g.seed,
    };
    let adaptive = scenario::run_outage(&base).map_err(|e| e.to_string())?;
    let unthrottled = scenario::run_outage(&OutageScenario {
        replay: ReplayConfig {
            adaptive: false,
            max_in_flight: 1_000_000,
            ..ReplayConfig::default()
        },
        ..base.clone()
    })
    .map_err(|e| e.to_string())?;
    let availability = scenario::availability(
        g.seed,
        args.nodes,
        args.replication,
        2,
        args.availability_writes,
    )
    .map_err(|e| e.to_string())?;
    let mut sweep = Vec::new();
    for &t in &args.sweep_t {
        let r = scenario::run_outage(&OutageScenario {
            down_for: Duration::from_secs(t),
            duration: Duration::from_secs(args.down_at_s + t + 10),
            ..base.clone()
        })
        .map_err(|e| e.to_string())?;
        sweep.push(SweepRow {
            outage_secs: t,
            hints_stored: r.hints_stored,
            peak_hints: r.peak_hints,
            repair_secs: r.repair_secs,
            replay_per_sec: r.replay_per_sec,
            acked_lost: r.acked_lost,
        });
    }
    if let Some(path) = &g.plot {
        let norm = |r: &OutageReport, label: &str| {
            let peak = r.curve.iter().map(|p| p.1).fold(1.0, f64::max);
            Series {
                label: format!("{label} (peak {peak:.0} hints)"),
                points: r.curve.iter().map(|&(t, h)| (t, h / peak)).collect(),
            }
        };
        plot::share_curve(
            path,
            &format!(
                "Hints pending: replica down {}s..{}s",
                args.down_at_s,
                args.down_at_s + args.down_for_s
            ),
            "seconds",
            "hints pending / peak",
            &[
                norm(&adaptive, "adaptive replay"),
                norm(&unthrottled, "unthrottled replay"),
            ],
        )?;
    }
    let report = Report {
        adaptive,
        unthrottled,
        availability,
        sweep,
    };
    emit(g, &report, || hh_table(args, &report))
}

fn pct(p: &Percentiles) -> String {
    format!(
        "p50 {:.2} / p99 {:.2} / max {:.2} ms (n={})",
        p.p50_ms, p.p99_ms, p.max_ms, p.count
    )
}

fn hh_table(args: &HintedHandoffArgs, r: &Report) -> String {
    let (a, u) = (&r.adaptive, &r.unthrottled);
    let secs =
        |d: Option<f64>| d.map_or_else(|| "not within the run".into(), |s| format!("{s:.2} s"));
    let ratio = u.victim_delay_replay.p99_ms / a.victim_delay_replay.p99_ms.max(1e-3);
    let replay_bytes = |r: &OutageReport| {
        r.bytes_by_kind.get("replay").copied().unwrap_or(0)
            + r.bytes_by_kind.get("replay_ack").copied().unwrap_or(0)
    };
    let mut rows = vec![
        ("seed", a.seed.to_string()),
        (
            "ring",
            format!(
                "{} nodes, N={}, level {:?}, {} quorum",
                args.nodes,
                args.replication,
                args.level,
                if args.strict { "strict" } else { "sloppy" }
            ),
        ),
        (
            "outage",
            format!(
                "node 1 down {}s..{}s, {} writes/s for {}s",
                args.down_at_s,
                args.down_at_s + args.down_for_s,
                args.rate,
                args.duration_s
            ),
        ),
        (
            "writes issued/acked/failed/refused",
            format!(
                "{} / {} / {} / {}",
                a.writes[0], a.writes[1], a.writes[2], a.writes[3]
            ),
        ),
        (
            "hints stored / replayed / superseded",
            format!(
                "{} / {} / {}",
                a.hints_stored, a.hints_replayed, a.hints_superseded
            ),
        ),
        (
            "hints dropped window/ttl/target/total",
            format!(
                "{} / {} / {} / {} (each reported as an event)",
                a.hints_dropped[0], a.hints_dropped[1], a.hints_dropped[2], a.hints_dropped[3]
            ),
        ),
        ("peak hints pending", a.peak_hints.to_string()),
        (
            "hint-log records persisted",
            format!(
                "{} ({:.2} per acked write: hints persisted before each ack)",
                a.log_records,
                a.log_records as f64 / a.writes[1].max(1) as f64
            ),
        ),
        (
            "acked-write loss (must be 0)",
            format!("{} adaptive, {} unthrottled", a.acked_lost, u.acked_lost),
        ),
        (
            "guest copies left on non-owners",
            format!(
                "{} adaptive, {} unthrottled",
                a.guest_copies_left, u.guest_copies_left
            ),
        ),
        (
            "full repair after T (+1 s detect)",
            format!(
                "{} adaptive, {} unthrottled",
                secs(a.repair_secs),
                secs(u.repair_secs)
            ),
        ),
        (
            "replay throughput",
            format!(
                "{:.0} hints/s adaptive, {:.0} unthrottled",
                a.replay_per_sec, u.replay_per_sec
            ),
        ),
        (
            "replays sent / timed out",
            format!(
                "{} / {} adaptive, {} / {} unthrottled",
                a.replays[0], a.replays[1], u.replays[0], u.replays[1]
            ),
        ),
        (
            "peak replays in flight to it",
            format!(
                "{} adaptive, {} unthrottled",
                a.peak_replay_in_flight, u.peak_replay_in_flight
            ),
        ),
        ("client write latency, all up", pct(&a.latency_before)),
        ("client write latency, 1 down", pct(&a.latency_outage)),
        ("recovering replica, before", pct(&a.victim_delay_before)),
        ("  during replay, adaptive", pct(&a.victim_delay_replay)),
        ("  during replay, unthrottled", pct(&u.victim_delay_replay)),
        (
            "  unthrottled / adaptive p99",
            format!(
                "{ratio:.1}x (ScyllaDB #7976: hint replay took write p99 from 20 to 350 ms, 17x)"
            ),
        ),
        (
            "bytes on the wire",
            format!(
                "{} total, {} replay (adaptive); {} total unthrottled",
                a.bytes_total,
                replay_bytes(a),
                u.bytes_total
            ),
        ),
    ];
    let mut avail = Vec::new();
    for row in &r.availability {
        avail.push((
            format!("availability {} down, {}", row.down, row.level),
            format!("strict {:.3}, sloppy {:.3}", row.strict, row.sloppy),
        ));
    }
    for (k, v) in &avail {
        rows.push((k.as_str(), v.clone()));
    }
    let mut sweep = Vec::new();
    for row in &r.sweep {
        sweep.push((
            format!("repair after T = {} s", row.outage_secs),
            format!(
                "{} (peak {} hints, {:.0} hints/s, {} acked lost)",
                secs(row.repair_secs),
                row.peak_hints,
                row.replay_per_sec,
                row.acked_lost
            ),
        ));
    }
    for (k, v) in &sweep {
        rows.push((k.as_str(), v.clone()));
    }
    rows.push(("virtual time", format!("{:.1} s", a.virtual_secs)));
    rows.push(("trace hash", a.trace_hash.clone()));
    table("hinted-handoff", &rows)
}
