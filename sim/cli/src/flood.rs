//! `epidemic-sim flood`: broadcasts flooded over a random overlay. Proves the simulator end
//! to end and measures its speed in deliveries per second of wall time.

use std::time::Duration;

use clap::Args;
use epidemic_sim::flood::{self, FloodReport, FloodScenario};
use epidemic_sim::plot::{self, Series};

use crate::common::{Global, LinkArgs, emit, table};

/// Flags of `flood`.
#[derive(Debug, Args)]
pub(crate) struct FloodArgs {
    /// Nodes in the overlay.
    #[arg(long, default_value_t = 1000)]
    nodes: u32,
    /// Mean overlay degree (a ring plus random chords).
    #[arg(long, default_value_t = 6)]
    degree: u32,
    /// Broadcasts from node 0.
    #[arg(long, default_value_t = 10)]
    messages: u32,
    /// Milliseconds between broadcasts.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// Payload bytes per broadcast.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Share of nodes crashed at once just before the first broadcast (never node 0).
    #[arg(long, default_value_t = 0.0)]
    fail: f64,
    #[command(flatten)]
    link: LinkArgs,
}

/// Runs the flood scenario and prints (and plots) its figures.
pub(crate) fn run(g: &Global, args: &FloodArgs) -> Result<(), String> {
    let scenario = FloodScenario {
        nodes: args.nodes,
        degree: args.degree,
        messages: args.messages,
        interval: Duration::from_millis(args.interval_ms),
        payload: args.payload,
        link: args.link.to_link()?,
        fail: args.fail,
        seed: g.seed,
    };
    if !(0.0..=1.0).contains(&args.fail) {
        return Err(format!("--fail must be in [0, 1], got {}", args.fail));
    }
    // Bounds that keep a typo from asking for a century of virtual time.
    if args.messages > 1_000_000 {
        return Err(format!(
            "--messages is at most 1000000, got {}",
            args.messages
        ));
    }
    if args.interval_ms > 86_400_000 {
        return Err(format!(
            "--interval-ms is at most one day (86400000), got {}",
            args.interval_ms
        ));
    }
    let report = flood::run(&scenario).map_err(|e| e.to_string())?;
    if let Some(path) = &g.plot {
        let series = Series {
            label: format!(
                "{} nodes, degree {}, loss {}, failed {}",
                args.nodes, args.degree, args.link.loss, args.fail
            ),
            points: report.curve.clone(),
        };
        plot::share_curve(
            path,
            "Flood: share of (live node, message) pairs delivered",
            "ms since broadcast",
            "share delivered",
            &[series],
        )?;
    }
    emit(g, &report, || flood_table(&report))
}

fn flood_table(r: &FloodReport) -> String {
    let m = &r.measured;
    let opt = |v: Option<f64>, unit: &str| {
        v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3} {unit}"))
    };
    table(
        "flood",
        &[
            ("seed", r.seed.to_string()),
            ("nodes", r.nodes.to_string()),
            ("broadcasts", r.messages.to_string()),
            ("failed nodes", r.failed.to_string()),
            ("overlay clustering", format!("{:.5}", r.overlay_clustering)),
            (
                "overlay avg path",
                format!("{:.3} hops", r.overlay_avg_path),
            ),
            ("overlay flood hops", r.overlay_flood_hops.to_string()),
            ("delivery ratio", format!("{:.6}", r.delivery_ratio)),
            (
                "last delivery, mean",
                format!("{:.2} ms", r.last_delivery_ms_mean),
            ),
            (
                "last delivery, max",
                format!("{:.2} ms", r.last_delivery_ms_max),
            ),
            (
                "latency p50 / p99",
                format!("{:.2} / {:.2} ms", r.latency_ms_p50, r.latency_ms_p99),
            ),
            ("max hops", r.max_hop.to_string()),
            ("messages sent", r.messages_sent.to_string()),
            ("bytes sent", r.bytes_sent.to_string()),
            ("deliveries", r.deliveries.to_string()),
            (
                "dropped / duplicated",
                format!("{} / {}", r.dropped, r.duplicated),
            ),
            ("virtual time", format!("{:.3} s", r.virtual_secs)),
            ("wall time", format!("{:.3} s", m.wall_secs)),
            ("cpu time", opt(m.cpu_secs, "s")),
            (
                "peak memory",
                opt(m.peak_rss_bytes.map(|b| b as f64 / 1_048_576.0), "MiB"),
            ),
            (
                "deliveries / s (wall)",
                format!("{:.0}", r.deliveries_per_sec),
            ),
            ("trace hash", r.trace_hash.clone()),
        ],
    )
}
