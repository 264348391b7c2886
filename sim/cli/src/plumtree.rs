//! `epidemic-sim plumtree`: Plumtree over HyParView (the `Gossip` composite) at 1,000 nodes
//! by default (`--nodes 10000` for the paper's size). Stable runs (a single sender,
//! sequential random senders, bursts of concurrent broadcasts from random senders) and
//! failure runs (a share of the nodes crash at once; broadcasts during and after), each
//! beside eager flooding over the same overlay, and beside the paper's and iroh-gossip's
//! figures.

use std::time::Duration;

use clap::Args;
use epidemic_plumtree::Config;
use epidemic_plumtree::scenario::{self, RunReport, Scenario};
use epidemic_sim::plot::{self, Series};
use serde::Serialize;

use crate::common::{Global, LinkArgs, emit, table};

/// Flags of `plumtree`.
#[derive(Debug, Args)]
pub(crate) struct PlumtreeArgs {
    /// Nodes in the overlay.
    #[arg(long, default_value_t = 1000)]
    nodes: u32,
    /// HyParView shuffle rounds after the last join, before the first broadcast.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Milliseconds between two joins.
    #[arg(long, default_value_t = 20)]
    join_gap_ms: u64,
    /// Broadcasts per sequential stable run (single sender; random senders).
    #[arg(long, default_value_t = 20)]
    broadcasts: u32,
    /// Milliseconds between two broadcasts (or bursts) of the stable runs, and between
    /// the broadcasts sent after a failure.
    #[arg(long, default_value_t = 1000)]
    gap_ms: u64,
    /// Bursts of concurrent broadcasts in the third stable run.
    #[arg(long, default_value_t = 5)]
    bursts: u32,
    /// Broadcasts per burst, from random senders at the same instant.
    #[arg(long, default_value_t = 10)]
    burst_size: u32,
    /// Payload bytes per broadcast.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Failure levels in percent, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "20,40,60,80")]
    levels: Vec<u32>,
    /// Broadcasts sent during a failure (at the crash, then every 100 ms).
    #[arg(long, default_value_t = 5)]
    during: u32,
    /// Broadcasts sent after a failure (from 20 s after it, one per second).
    #[arg(long, default_value_t = 5)]
    after: u32,
    /// Milliseconds a connection takes to notice a dead peer.
    #[arg(long, default_value_t = 200)]
    failure_detection_ms: u64,
    /// IHAVE batching interval, ms.
    #[arg(long, default_value_t = 20)]
    ihave_ms: u64,
    /// First graft timeout, ms.
    #[arg(long, default_value_t = 300)]
    graft1_ms: u64,
    /// Second graft timeout, ms.
    #[arg(long, default_value_t = 40)]
    graft2_ms: u64,
    /// Optimisation threshold in rounds.
    #[arg(long, default_value_t = 16)]
    threshold: u16,
    /// Optimisation threshold within the repair window after a neighbour change, rounds.
    #[arg(long, default_value_t = 2)]
    repair_threshold: u16,
    /// How long the repair threshold applies after a neighbour change, ms (0: never).
    #[arg(long, default_value_t = 30_000)]
    repair_window_ms: u64,
    /// Keep lazy links lazy when a neighbour goes down (the paper's rule).
    #[arg(long)]
    no_eager_on_loss: bool,
    /// A duplicate from a neighbour that delivered another message first this recently
    /// does not prune it (0: the paper's rule), ms.
    #[arg(long, default_value_t = 500)]
    prune_grace_ms: u64,
    /// Most prunes of one link the grace defers in a row.
    #[arg(long, default_value_t = 4)]
    max_prune_deferrals: u32,
    /// Skip the eager-flooding baseline runs.
    #[arg(long)]
    no_baseline: bool,
    /// Skip the failure runs.
    #[arg(long)]
    stable_only: bool,
    #[command(flatten)]
    link: LinkArgs,
}

/// One run of ours beside the same run flooded.
#[derive(Debug, Serialize)]
struct Pair {
    plumtree: RunReport,
    flood: Option<RunReport>,
    /// Our mean LDH over flooding's.
    ldh_ratio: Option<f64>,
}

/// Everything the subcommand measured.
#[derive(Debug, Serialize)]
struct PlumtreeReport {
    nodes: u32,
    seed: u64,
    runs: Vec<Pair>,
}

/// Runs the stable and failure experiments and prints (and plots) them.
pub(crate) fn run(g: &Global, args: &PlumtreeArgs) -> Result<(), String> {
    if args.nodes < 10 || args.nodes > 100_000 {
        return Err(format!(
            "--nodes must be in 10..=100000, got {}",
            args.nodes
        ));
    }
    if let Some(bad) = args.levels.iter().find(|&&l| l > 95) {
        return Err(format!(
            "failure levels are percentages up to 95, got {bad}"
        ));
    }
    if args.broadcasts > 10_000 || args.bursts > 1000 || args.burst_size > 1000 {
        return Err("--broadcasts ≤ 10000, --bursts and --burst-size ≤ 1000".into());
    }
    if args.payload > 4000 {
        return Err(format!(
            "--payload must be at most 4000 bytes, got {}",
            args.payload
        ));
    }
    let s = Scenario {
        nodes: args.nodes,
        tree: Config {
            ihave_interval: Duration::from_millis(args.ihave_ms.max(1)),
            graft_timeout_1: Duration::from_millis(args.graft1_ms.max(1)),
            graft_timeout_2: Duration::from_millis(args.graft2_ms.max(1)),
            optimization_threshold: args.threshold,
            repair_threshold: args.repair_threshold,
            repair_window: Duration::from_millis(args.repair_window_ms.min(86_400_000)),
            eager_on_loss: !args.no_eager_on_loss,
            prune_grace: Duration::from_millis(args.prune_grace_ms.min(86_400_000)),
            max_prune_deferrals: args.max_prune_deferrals,
            ..Config::default()
        },
        join_gap: Duration::from_millis(args.join_gap_ms),
        rounds: args.rounds,
        seeds: 4.min(args.nodes),
        link: args.link.to_link()?,
        failure_detection: Duration::from_millis(args.failure_detection_ms),
        payload: args.payload,
        broadcasts: args.broadcasts,
        gap: Duration::from_millis(args.gap_ms.clamp(1, 86_400_000)),
        bursts: args.bursts,
        burst_size: args.burst_size,
        during: args.during,
        after: args.after,
        seed: g.seed,
        ..Scenario::default()
    };
    let e = |e: epidemic_sim::SimError| e.to_string();
    let ours = scenario::stable(&s, false).map_err(e)?;
    let floods = if args.no_baseline {
        vec![None, None, None]
    } else {
        scenario::stable(&s, true)
            .map_err(e)?
            .into_iter()
            .map(Some)
            .collect()
    };
    let mut runs: Vec<Pair> = ours
        .into_iter()
        .zip(floods)
        .map(|(p, f)| pair(p, f))
        .collect();
    if !args.stable_only {
        for &level in &args.levels {
            let p = scenario::failure(&s, level, false).map_err(e)?;
            let f = if args.no_baseline {
                None
            } else {
                Some(scenario::failure(&s, level, true).map_err(e)?)
            };
            runs.push(pair(p, f));
        }
    }
    let report = PlumtreeReport {
        nodes: s.nodes,
        seed: s.seed,
        runs,
    };
    if let Some(path) = &g.plot {
        draw(path, &report)?;
    }
    emit(g, &report, || render(&report))
}

fn pair(plumtree: RunReport, flood: Option<RunReport>) -> Pair {
    let ldh_ratio = flood
        .as_ref()
        .filter(|f| f.ldh_mean > 0.0)
        .map(|f| plumtree.ldh_mean / f.ldh_mean);
    Pair {
        plumtree,
        flood,
        ldh_ratio,
    }
}

/// Reliability and RMR of each broadcast over time, one curve per run (RMR capped at 1).
fn draw(path: &std::path::Path, r: &PlumtreeReport) -> Result<(), String> {
    let mut series = Vec::new();
    let mut offset = 0.0;
    for p in &r.runs {
        let run = &p.plumtree;
        let pts = |f: fn(&scenario::BroadcastReport) -> f64| -> Vec<(f64, f64)> {
            run.per_broadcast
                .iter()
                .map(|b| (offset + b.at_s, f(b).clamp(0.0, 1.0)))
                .collect()
        };
        series.push(Series {
            label: format!("{}: reliability", run.name),
            points: pts(|b| b.reliability),
        });
        series.push(Series {
            label: format!("{}: RMR (capped at 1)", run.name),
            points: pts(|b| b.rmr),
        });
        offset += run.per_broadcast.last().map_or(0.0, |b| b.at_s) + 5.0;
    }
    plot::share_curve(
        path,
        &format!("Plumtree over HyParView, {} nodes: each broadcast", r.nodes),
        "seconds (runs one after another)",
        "reliability / RMR",
        &series,
    )
}

/// What the anchors report for a run like this one.
fn anchor(name: &str) -> &'static str {
    match name {
        "single sender" => "paper: RMR → 0 once the tree forms",
        "random senders" => "iroh-gossip: RMR ≈ 0.47",
        "bursts" => "iroh-gossip: RMR 1.1–1.4 when all send",
        _ => "iroh-gossip: 1–30% delivered of those sent during; paper: 100% after healing",
    }
}

fn render(r: &PlumtreeReport) -> String {
    let mut out = format!(
        "plumtree over hyparview, {} nodes, seed {} (ours | eager flooding over the same overlay)\n\
         iroh-gossip's LDH is ≈3× flooding's at 10,000 nodes; targets: reliability 100%, RMR ≤ 0.05 random / ≤ 0.2 bursts, LDH ≤ 1.5× flooding\n\n",
        r.nodes, r.seed
    );
    for p in &r.runs {
        let o = &p.plumtree;
        let f = p.flood.as_ref();
        let both = |a: String, b: Option<String>| match b {
            Some(b) => format!("{a} | {b}"),
            None => a,
        };
        let rmr = |x: &RunReport| {
            format!(
                "{:.3} (max {:.3})",
                x.rmr_after_warmup, x.rmr_max_after_warmup
            )
        };
        let ldh = |x: &RunReport| format!("{:.2} (max {})", x.ldh_mean, x.ldh_max);
        let rel = |x: &RunReport| {
            format!(
                "{:.2}% min, {:.2}% min of those sent during",
                x.reliability_min * 100.0,
                x.reliability_min_during * 100.0
            )
        };
        let lat = |x: &RunReport| {
            format!(
                "{:.0} ms mean, {:.0} ms max",
                x.latency_mean_ms, x.latency_max_ms
            )
        };
        let bytes = |x: &RunReport| format!("{:.0}", x.bytes_per_delivery);
        let cpu = |x: &RunReport| {
            x.cpu_us_per_delivery
                .map_or_else(|| "n/a".to_string(), |c| format!("{c:.2} µs"))
        };
        out.push_str(&table(
            &format!(
                "{} ({} broadcasts)   [{}]",
                o.name,
                o.broadcasts,
                anchor(&o.name)
            ),
            &[
                ("RMR after warm-up", both(rmr(o), f.map(rmr))),
                (
                    "RMR all",
                    both(
                        format!("{:.3}", o.rmr_mean),
                        f.map(|x| format!("{:.3}", x.rmr_mean)),
                    ),
                ),
                ("LDH", both(ldh(o), f.map(ldh))),
                (
                    "LDH ours / flooding",
                    match (p.ldh_ratio, o.single_tree_floor) {
                        (Some(x), Some(f)) => {
                            format!(
                                "{x:.2}×  (best any single tree of this overlay allows: {f:.2}×)"
                            )
                        }
                        (Some(x), None) => format!("{x:.2}×"),
                        _ => "n/a".into(),
                    },
                ),
                (
                    "best of K trees",
                    if o.k_tree_floor.is_empty() {
                        "n/a".into()
                    } else {
                        let ks: Vec<String> = o
                            .k_tree_floor
                            .iter()
                            .map(|(k, x)| format!("K={k} {x:.2}×"))
                            .collect();
                        format!(
                            "{}  (shortest-path trees, each sender in its shallowest)",
                            ks.join(", ")
                        )
                    },
                ),
                ("reliability", both(rel(o), f.map(rel))),
                ("double deliveries", o.double_deliveries.to_string()),
                ("latency", both(lat(o), f.map(lat))),
                ("bytes sent / delivery", both(bytes(o), f.map(bytes))),
                ("cpu / delivery", both(cpu(o), f.map(cpu))),
                (
                    "grafts, optimisations, missed",
                    format!("{}, {}, {}", o.grafts, o.optimizations, o.missed),
                ),
                ("wall time", format!("{:.1} s", o.measured.wall_secs)),
            ],
        ));
        let rows: Vec<String> = o
            .per_broadcast
            .iter()
            .map(|b| {
                format!(
                    "    {:>6.1}s {:>6} from {:>5}: reliability {:>7.3}%  RMR {:>6.3}  LDH {:>3}  latency {:>4.0}/{:>4.0} ms",
                    b.at_s, b.phase, b.origin, b.reliability * 100.0, b.rmr, b.ldh, b.latency_mean_ms, b.latency_max_ms
                )
            })
            .collect();
        out.push_str("  per broadcast (ours):\n");
        out.push_str(&rows.join("\n"));
        out.push_str("\n\n");
    }
    out
}
