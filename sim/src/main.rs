//! `epidemic-sim`: runs the simulator's scenarios from the command line. One subcommand per
//! protocol; each prints its figures as a table (or JSON with `--json`) and can draw them
//! (`--plot FILE.svg`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use epidemic_sim::flood::{self, FloodReport, FloodScenario};
use epidemic_sim::plot::{self, Series};
use epidemic_sim::{GilbertElliott, LinkConfig, Loss};

#[derive(Debug, Parser)]
#[command(
    name = "epidemic-sim",
    version,
    about = "Deterministic simulations of epidemic protocols"
)]
struct Cli {
    /// Seed of every random choice in the run; the same seed gives the same trace hash.
    #[arg(long, env = "SEED", default_value_t = 0, global = true)]
    seed: u64,
    /// Print the figures as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Also draw the result as an SVG file.
    #[arg(long, value_name = "FILE.svg", global = true)]
    plot: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Flood broadcasts over a random overlay: proves the simulator end to end and measures
    /// its speed (deliveries per second of wall time).
    Flood(FloodArgs),
}

#[derive(Debug, Args)]
struct FloodArgs {
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
    #[command(flatten)]
    link: LinkArgs,
}

/// The link model, shared by every subcommand.
#[derive(Debug, Args)]
struct LinkArgs {
    /// One-way latency in milliseconds.
    #[arg(long, default_value_t = 10.0)]
    latency_ms: f64,
    /// Extra uniform delay in [0, jitter] milliseconds.
    #[arg(long, default_value_t = 5.0)]
    jitter_ms: f64,
    /// Message loss rate in [0, 1].
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Mean loss burst length in messages; above 1 the loss is bursty (Gilbert–Elliott).
    #[arg(long, default_value_t = 1.0)]
    burst: f64,
    /// Duplication rate in [0, 1].
    #[arg(long, default_value_t = 0.0)]
    duplicate: f64,
}

impl LinkArgs {
    fn to_link(&self) -> Result<LinkConfig, String> {
        for (name, p) in [("loss", self.loss), ("duplicate", self.duplicate)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("--{name} must be in [0, 1], got {p}"));
            }
        }
        let ms = |v: f64, name: &str| {
            Duration::try_from_secs_f64(v / 1e3)
                .map_err(|_| format!("--{name} must be a non-negative number of ms"))
        };
        let loss = if self.loss == 0.0 {
            Loss::None
        } else if self.burst > 1.0 {
            Loss::Bursty(GilbertElliott::with_rate(self.loss, self.burst))
        } else {
            Loss::Uniform(self.loss)
        };
        Ok(LinkConfig {
            latency: ms(self.latency_ms, "latency-ms")?,
            jitter: ms(self.jitter_ms, "jitter-ms")?,
            loss,
            duplicate: self.duplicate,
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Flood(args) => run_flood(&cli, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("epidemic-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_flood(cli: &Cli, args: &FloodArgs) -> Result<(), String> {
    let scenario = FloodScenario {
        nodes: args.nodes,
        degree: args.degree,
        messages: args.messages,
        interval: Duration::from_millis(args.interval_ms),
        payload: args.payload,
        link: args.link.to_link()?,
        seed: cli.seed,
    };
    let report = flood::run(&scenario).map_err(|e| e.to_string())?;
    if let Some(path) = &cli.plot {
        let series = Series {
            label: format!(
                "{} nodes, degree {}, loss {}",
                args.nodes, args.degree, args.link.loss
            ),
            points: report.curve.clone(),
        };
        plot::share_curve(
            path,
            "Flood: share of (node, message) pairs delivered",
            "ms since broadcast",
            "share delivered",
            &[series],
        )?;
    }
    if cli.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        say(&json);
    } else {
        say(&flood_table(&report));
    }
    Ok(())
}

fn flood_table(r: &FloodReport) -> String {
    let m = &r.measured;
    let opt = |v: Option<f64>, unit: &str| {
        v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3} {unit}"))
    };
    let rows = [
        ("seed", r.seed.to_string()),
        ("nodes", r.nodes.to_string()),
        ("broadcasts", r.messages.to_string()),
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
            opt(m.peak_rss_bytes.map(|b| b as f64 / 1048576.0), "MiB"),
        ),
        (
            "deliveries / s (wall)",
            format!("{:.0}", r.deliveries_per_sec),
        ),
        ("trace hash", r.trace_hash.clone()),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::from("flood\n");
    for (k, v) in rows {
        out.push_str(&format!("  {k:<width$}  {v}\n"));
    }
    out
}

/// The binary's one place that writes results to stdout.
#[allow(clippy::print_stdout)]
fn say(text: &str) {
    println!("{}", text.trim_end());
}
