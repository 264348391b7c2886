//! `epidemic-sim read-repair`: a workload of reads and writes over N replicas, some of
//! which miss writes, read through the read coordinator. Prints bytes per read with digest
//! reads against full data reads, client-visible round trips, repair bytes with minimal
//! cell diffs against whole-record repair, latency under one slow replica with and without
//! speculative retry, and monotonic-read violations by repair mode, beside Cassandra's
//! behaviour. `--plot FILE.svg` draws the latency CDFs.

use std::time::Duration;

use clap::Args;
use epidemic_read_repair::figures::{self, FigureOptions, Figures};
use epidemic_sim::plot::{self, Series};

use crate::common::{Global, LinkArgs, emit, table};

/// Flags of `read-repair`.
#[derive(Debug, Args)]
pub(crate) struct ReadRepairArgs {
    /// Operations (reads and writes) per run.
    #[arg(long, default_value_t = 1000)]
    ops: u32,
    /// Probability that a replica misses a write, in the runs with stale replicas.
    #[arg(long, default_value_t = 0.3)]
    staleness: f64,
    /// Extra delay of the slow replica, in milliseconds.
    #[arg(long, default_value_t = 200)]
    slow_ms: u64,
    /// Message loss of the monotonic-read runs (30 ms jitter there, so repairs and later
    /// reads race).
    #[arg(long, default_value_t = 0.1)]
    monotonic_loss: f64,
    #[command(flatten)]
    link: LinkArgs,
}

/// Runs every scenario and prints the figures.
pub(crate) fn run(g: &Global, args: &ReadRepairArgs) -> Result<(), String> {
    for (name, p) in [
        ("staleness", args.staleness),
        ("monotonic-loss", args.monotonic_loss),
    ] {
        if !(0.0..=1.0).contains(&p) {
            return Err(format!("--{name} must be in [0, 1], got {p}"));
        }
    }
    if args.ops == 0 || args.ops > 1_000_000 {
        return Err(format!("--ops must be in 1..=1000000, got {}", args.ops));
    }
    if args.slow_ms > 60_000 {
        return Err(format!("--slow-ms is at most 60000, got {}", args.slow_ms));
    }
    let options = FigureOptions {
        ops: args.ops,
        link: args.link.to_link()?,
        staleness: args.staleness,
        slow: Duration::from_millis(args.slow_ms),
        monotonic_loss: args.monotonic_loss,
        seed: g.seed,
    };
    let f = figures::figures(&options).map_err(|e| e.to_string())?;
    if let Some(path) = &g.plot {
        let series: Vec<Series> = f
            .latency
            .iter()
            .map(|r| Series {
                label: r.case.clone(),
                points: r.cdf.clone(),
            })
            .collect();
        plot::share_curve(
            path,
            &format!(
                "QUORUM read latency CDF, RF 3, data replica {} ms slow",
                args.slow_ms
            ),
            "read latency (ms)",
            "share of reads done",
            &series,
        )?;
    }
    emit(g, &f, || render(&f, args))
}

fn kib(bytes: usize) -> String {
    format!("{} KiB", bytes / 1024)
}

fn render(f: &Figures, args: &ReadRepairArgs) -> String {
    let mut out = String::new();
    let mut rows = Vec::new();
    for r in &f.bytes {
        rows.push((
            format!("RF {} value {}", r.replicas, kib(r.value)),
            format!(
                "digest {:>8.0} B   full (quorum) {:>8.0} B   full (all) {:>8.0} B   saved {:>4.1}% / {:>4.1}%",
                r.digest,
                r.full_quorum,
                r.full_all,
                100.0 * (1.0 - r.digest / r.full_quorum),
                100.0 * (1.0 - r.digest / r.full_all),
            ),
        ));
    }
    rows.push((
        "Cassandra".into(),
        "1 data request + (blockFor - 1) digests (MD5, 16 B); ours: XXH3-128, 16 B".into(),
    ));
    out.push_str(&owned_table(
        "bytes per QUORUM read, replicas in sync (requests + answers, envelopes included)",
        &rows,
    ));
    let mut rows = Vec::new();
    for r in &f.round_trips {
        rows.push((
            r.case.clone(),
            format!(
                "1: {:>5}  2: {:>5}  3: {:>5}  mean {:.3}  read bytes/read {:>6.0}",
                r.histogram[0], r.histogram[1], r.histogram[2], r.mean, r.bytes_per_read
            ),
        ));
    }
    rows.push((
        "Cassandra".into(),
        "1 when digests match; up to 3 on mismatch (digests, full data from every contacted replica, blocking repair)".into(),
    ));
    out.push_str(&owned_table(
        &format!(
            "client-visible round trips per read (staleness {})",
            args.staleness
        ),
        &rows,
    ));
    let mut rows = Vec::new();
    for r in &f.repair {
        rows.push((
            format!("{} cells x {}", r.cells, kib(r.value)),
            format!(
                "repairs {:>5}  diff {:>9.0} B  whole record {:>9.0} B  ({:.1}x less)",
                r.repairs,
                r.diff,
                r.whole,
                r.whole / r.diff.max(1.0)
            ),
        ));
    }
    rows.push((
        "Cassandra".into(),
        "per-replica partition-update diffs from the merge listener (same idea)".into(),
    ));
    out.push_str(&owned_table(
        "repair bytes per stale replica: minimal cell diff vs whole record",
        &rows,
    ));
    let mut rows = Vec::new();
    for r in &f.latency {
        rows.push((
            r.case.clone(),
            format!(
                "p50 {:>7.1}  p90 {:>7.1}  p99 {:>7.1}  max {:>7.1} ms  speculative {:>5}  failed {}",
                r.latency_ms[0],
                r.latency_ms[1],
                r.latency_ms[2],
                r.latency_ms[3],
                r.speculative,
                r.failed
            ),
        ));
    }
    rows.push((
        "Cassandra".into(),
        "speculative_retry default 99PERCENTILE; ALWAYS sends two data requests up front; NEVER; fixed Nms".into(),
    ));
    out.push_str(&owned_table(
        &format!(
            "QUORUM read latency, RF 3, data replica {} ms slow",
            args.slow_ms
        ),
        &rows,
    ));
    let mut rows = Vec::new();
    for r in &f.monotonic {
        rows.push((
            format!("RF {} {}", r.replicas, r.mode),
            format!(
                "reads {:>6}  failed {:>3}  violations {:>4}  mean round trips {:.3}",
                r.reads, r.failed, r.violations, r.mean_round_trips
            ),
        ));
    }
    rows.push((
        "Cassandra".into(),
        "BLOCKING read repair (4.0 default) guarantees monotonic quorum reads; NONE does not"
            .into(),
    ));
    out.push_str(&owned_table(
        &format!(
            "monotonic QUORUM reads, 3 coordinators, loss {}, jitter 30 ms",
            args.monotonic_loss
        ),
        &rows,
    ));
    out
}

fn owned_table(title: &str, rows: &[(String, String)]) -> String {
    let rows: Vec<(&str, String)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    table(title, &rows) + "\n"
}
