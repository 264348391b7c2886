//! `epidemic-sim hyparview`: the HyParView paper's experiments (DSN 2007, TR-07-13 §6).
//! Nodes join one at a time through random earlier nodes, then shuffle for a number of
//! rounds; the overlay's shape is printed beside the paper's. Then, for each failure level,
//! the same overlay is rebuilt, that share of the nodes is killed at once, a flood is sent
//! from a live node at that instant, and the overlay is watched while it heals.

use std::time::Duration;

use clap::Args;
use epidemic_hyparview::Config;
use epidemic_hyparview::scenario::{
    self, FailureReport, LEVELS, OverlayReport, Scenario, SweepReport,
};
use epidemic_sim::plot::{self, Series};

use crate::common::{Global, LinkArgs, emit, table};

/// Flags of `hyparview`.
#[derive(Debug, Args)]
pub(crate) struct HyparviewArgs {
    /// Nodes in the overlay.
    #[arg(long, default_value_t = 10_000)]
    nodes: u32,
    /// Shuffle rounds after the last join, before measuring.
    #[arg(long, default_value_t = 50)]
    rounds: u32,
    /// Milliseconds between two joins.
    #[arg(long, default_value_t = 20)]
    join_gap_ms: u64,
    /// Seconds per shuffle round.
    #[arg(long, default_value_t = 10.0)]
    round_s: f64,
    /// Milliseconds a connection takes to notice a dead peer.
    #[arg(long, default_value_t = 200)]
    failure_detection_ms: u64,
    /// Failure levels in percent, comma-separated (default: the paper's sweep).
    #[arg(long, value_delimiter = ',')]
    levels: Option<Vec<u32>>,
    /// Rounds each failure level watches the overlay heal.
    #[arg(long, default_value_t = 20)]
    heal_rounds: u32,
    /// Bootstrap nodes every node keeps as rejoin contacts (never killed).
    #[arg(long, default_value_t = 4)]
    seeds: u32,
    /// Only build and measure the overlay; skip the failure sweep.
    #[arg(long)]
    overlay_only: bool,
    #[command(flatten)]
    link: LinkArgs,
}

/// Runs the overlay measurement and the failure sweep and prints (and plots) them.
pub(crate) fn run(g: &Global, args: &HyparviewArgs) -> Result<(), String> {
    if args.nodes < 2 || args.nodes > 1_000_000 {
        return Err(format!(
            "--nodes must be in 2..=1000000, got {}",
            args.nodes
        ));
    }
    if !(0.001..=86_400.0).contains(&args.round_s) {
        return Err(format!(
            "--round-s must be in [0.001, 86400], got {}",
            args.round_s
        ));
    }
    if args.rounds > 10_000 || args.heal_rounds > 10_000 {
        return Err("--rounds and --heal-rounds are at most 10000".into());
    }
    let levels = args.levels.clone().unwrap_or_else(|| LEVELS.to_vec());
    if let Some(bad) = levels.iter().find(|&&l| l > 100) {
        return Err(format!("failure levels are percentages, got {bad}"));
    }
    let round = Duration::from_secs_f64(args.round_s);
    let s = Scenario {
        nodes: args.nodes,
        config: Config {
            shuffle_interval: round,
            rejoin_backoff: round,
            rejoin_backoff_max: round * 8,
            ..Config::default()
        },
        join_gap: Duration::from_millis(args.join_gap_ms),
        rounds: args.rounds,
        seeds: args.seeds.min(args.nodes),
        link: args.link.to_link()?,
        failure_detection: Duration::from_millis(args.failure_detection_ms),
        heal_rounds: args.heal_rounds,
        seed: g.seed,
    };
    let levels = if args.overlay_only {
        Vec::new()
    } else {
        levels
    };
    let report = scenario::sweep(&s, &levels).map_err(|e| e.to_string())?;
    if let Some(path) = &g.plot {
        plot_reliability(path, &report.failures)?;
    }
    emit(g, &report, || render(&report))
}

fn plot_reliability(path: &std::path::Path, failures: &[FailureReport]) -> Result<(), String> {
    let pts = |f: fn(&FailureReport) -> f64| -> Vec<(f64, f64)> {
        failures
            .iter()
            .map(|r| (f64::from(r.failed_percent), f(r)))
            .collect()
    };
    let paper: Vec<(f64, f64)> = LEVELS
        .iter()
        .map(|&l| (f64::from(l), paper_reliability(l).unwrap_or(1.0)))
        .collect();
    plot::share_curve(
        path,
        "HyParView: reliability of the first flood after a failure",
        "nodes failed at once (%)",
        "live nodes reached",
        &[
            Series {
                label: "ours, views repairing as links fail".into(),
                points: pts(|r| r.reliability),
            },
            Series {
                label: "ours, views frozen at the failure".into(),
                points: pts(|r| r.reliability_static),
            },
            Series {
                label: "paper (read off its figure)".into(),
                points: paper,
            },
        ],
    )
}

/// The paper's reliability of the first broadcast after a failure (TR-07-13 Fig. 4).
fn paper_reliability(level: u32) -> Option<f64> {
    match level {
        0..=90 => Some(1.0),
        95 => Some(0.91),
        _ => None,
    }
}

/// The paper's healing time in rounds, as its text states it.
fn paper_heal(level: u32) -> &'static str {
    match level {
        0..=70 => "1–2",
        90 => "≈4",
        _ => "—",
    }
}

/// iroh-gossip's isolated nodes at 10,000 nodes (its simulation, as the issue cites it).
fn iroh_isolated(level: u32) -> &'static str {
    match level {
        90 => "13",
        95 => "24",
        _ => "—",
    }
}

fn render(r: &SweepReport) -> String {
    let mut out = overlay_table(&r.overlay);
    if !r.failures.is_empty() {
        out.push('\n');
        out.push_str(&format!(
            "hyparview failures (round {} s, dead peers noticed after {} ms): share killed at once, then a flood and the healing\n",
            r.round_secs, r.failure_detection_ms
        ));
        out.push_str(&failure_table(&r.failures));
    }
    out
}

fn overlay_table(o: &OverlayReport) -> String {
    let opt = |v: Option<f64>, unit: &str| {
        v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2} {unit}"))
    };
    let hist: Vec<String> = o
        .in_degree_histogram
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(k, c)| format!("{k}:{c}"))
        .collect();
    table(
        &format!(
            "hyparview overlay: {} nodes joined one at a time, then {} shuffle rounds (ours | paper)",
            o.nodes, o.rounds
        ),
        &[
            ("seed", o.seed.to_string()),
            (
                "clustering coefficient",
                format!("{:.5} | 0.00092", o.clustering),
            ),
            (
                "average shortest path",
                format!(
                    "{:.3} | 6.385  ({} sources)",
                    o.avg_shortest_path, o.path_sources
                ),
            ),
            (
                "max hops of a flood",
                format!(
                    "{} | 9.0  (mean {:.2})",
                    o.max_flood_hops, o.mean_flood_hops
                ),
            ),
            (
                "in-degree = 5",
                format!("{:.2}% | almost every node", o.share_at_capacity * 100.0),
            ),
            ("in-degree histogram", hist.join(" ")),
            ("asymmetric edges", o.asymmetric_edges.to_string()),
            ("components", o.components.to_string()),
            ("mean passive view", format!("{:.1}", o.mean_passive)),
            (
                "messages / node / round",
                format!("{:.2}", o.messages_per_node_round),
            ),
            (
                "bytes / node / round",
                format!("{:.1}", o.bytes_per_node_round),
            ),
            ("cpu / node / round", opt(o.cpu_us_per_node_round, "µs")),
            (
                "peak memory / node",
                opt(o.peak_rss_per_node_bytes.map(|b| b / 1024.0), "KiB"),
            ),
            ("wall time", format!("{:.1} s", o.measured.wall_secs)),
            ("trace hash", o.trace_hash.clone()),
        ],
    )
}

fn failure_table(failures: &[FailureReport]) -> String {
    let mut out = String::from(
        "  failed  live   reliability ours (frozen) | paper   heal rounds ours (purge) | paper   isolated ours | iroh   components  full views  rejoins\n",
    );
    let rounds = |r: Option<f64>| r.map_or_else(|| "never".to_string(), |r| format!("{r:.2}"));
    for f in failures {
        let paper = paper_reliability(f.failed_percent)
            .map_or_else(|| "—".to_string(), |p| format!("{:.0}%", p * 100.0));
        out.push_str(&format!(
            "  {:>5}%  {:>5}  {:>7.3}% ({:>7.3}%) | {:>5}   {:>6} ({:>5}) | {:>4}      {:>4} | {:>3}   {:>10}  {:>9.1}%  {:>7}\n",
            f.failed_percent,
            f.live,
            f.reliability * 100.0,
            f.reliability_static * 100.0,
            paper,
            rounds(f.heal_rounds),
            rounds(f.purge_rounds),
            paper_heal(f.failed_percent),
            f.isolated,
            iroh_isolated(f.failed_percent),
            f.components,
            f.full_views * 100.0,
            f.rejoins,
        ));
    }
    out
}
