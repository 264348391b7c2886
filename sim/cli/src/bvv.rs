//! `epidemic-sim bvv`: node-wide causality (bitmap version vectors, dotted causal
//! containers, dot→key log) under a write workload with missed pushes, beside the claims
//! of Gonçalves et al. (DAIS 2015) and DottedDB (SRDS 2017) and a per-key version vector
//! baseline.

use std::time::Duration;

use clap::Args;
use epidemic_bvv::scenario::{self, Report, Scenario};
use epidemic_merkle::Method;
use epidemic_merkle::scenario::{self as merkle, MerkleScenario};
use epidemic_sim::plot::{self, Series};
use serde::Serialize;

use crate::common::{Global, LinkArgs, emit, table};

/// Flags of `bvv`.
#[derive(Debug, Args)]
pub(crate) struct BvvArgs {
    /// Replicas (each holds every key): the replication factor.
    #[arg(long, default_value_t = 3)]
    nodes: u32,
    /// Distinct keys.
    #[arg(long, default_value_t = 100_000)]
    keys: u32,
    /// Writes, spread over the write window.
    #[arg(long, default_value_t = 100_000)]
    writes: u32,
    /// Seconds of writes.
    #[arg(long, default_value_t = 10.0)]
    window_s: f64,
    /// Shares of pushed writes each replica misses, one run each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0.01,0.1")]
    miss: Vec<f64>,
    /// Share of writes made without reading first (concurrent siblings).
    #[arg(long, default_value_t = 0.05)]
    blind: f64,
    /// Share of writes that are deletes.
    #[arg(long, default_value_t = 0.02)]
    deletes: f64,
    /// Sync interval in milliseconds.
    #[arg(long, default_value_t = 200)]
    sync_ms: u64,
    /// Crashes (with restart and durable state) during the window.
    #[arg(long, default_value_t = 0)]
    crashes: u32,
    /// Bytes per value.
    #[arg(long, default_value_t = 16)]
    value_bytes: usize,
    /// Replica counts for the node-state sweep (comma-separated; `--sweep` alone: no sweep). Each
    /// runs a tenth of the workload at the first miss rate.
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "3,5,8,16")]
    sweep: Vec<u32>,
    /// Also reconcile the same number of differing keys with epidemic-merkle (tree
    /// descent and the planner) for comparison.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    merkle: bool,
    #[command(flatten)]
    link: LinkArgs,
}

/// The same difference reconciled by Merkle anti-entropy.
#[derive(Debug, Serialize)]
struct MerkleCompare {
    miss: f64,
    keys: u64,
    differences: u64,
    bvv_bytes: f64,
    tree_bytes: u64,
    tree_round_trips: u32,
    planned_bytes: u64,
    planned_round_trips: u32,
}

#[derive(Debug, Serialize)]
struct Output {
    runs: Vec<Report>,
    merkle: Vec<MerkleCompare>,
    sweep: Vec<Report>,
}

/// Runs the workload at each miss rate, then the node-state sweep, and prints them.
pub(crate) fn run(g: &Global, args: &BvvArgs) -> Result<(), String> {
    for &m in &args.miss {
        if !(0.0..=1.0).contains(&m) {
            return Err(format!("--miss values must be in [0, 1], got {m}"));
        }
    }
    for (name, p) in [("blind", args.blind), ("deletes", args.deletes)] {
        if !(0.0..=1.0).contains(&p) {
            return Err(format!("--{name} must be in [0, 1], got {p}"));
        }
    }
    if args.nodes < 2 || args.nodes > 64 || args.sweep.iter().any(|&n| !(2..=64).contains(&n)) {
        return Err("replica counts must be in 2..=64".into());
    }
    if !(0.001..=3600.0).contains(&args.window_s) || args.sync_ms == 0 || args.sync_ms > 60_000 {
        return Err("--window-s must be in [0.001, 3600] and --sync-ms in [1, 60000]".into());
    }
    if args.writes > 10_000_000 || args.keys > 100_000_000 {
        return Err("--writes is at most 10000000 and --keys at most 100000000".into());
    }
    if args.value_bytes > 16 * 1024 {
        return Err("--value-bytes is at most 16384".into());
    }
    let base = Scenario {
        nodes: args.nodes,
        keys: args.keys.max(1),
        writes: args.writes,
        write_window: Duration::from_secs_f64(args.window_s),
        blind: args.blind,
        deletes: args.deletes,
        miss: args.miss.first().copied().unwrap_or(0.01),
        link: args.link.to_link()?,
        sync_interval: Duration::from_millis(args.sync_ms),
        crashes: args.crashes,
        value_bytes: args.value_bytes,
        seed: g.seed,
        ..Scenario::default()
    };
    let mut runs = Vec::new();
    for &miss in &args.miss {
        let r = scenario::run(&Scenario {
            miss,
            ..base.clone()
        })
        .map_err(|e| e.to_string())?;
        runs.push(r);
    }
    let mut compare = Vec::new();
    if args.merkle {
        for r in &runs {
            let differences = r.keys_per_nonempty_sync.round().max(1.0) as u64;
            let keys = r.keys_stored.max(1) as u64;
            let one = |method| {
                merkle::run(&MerkleScenario {
                    keys,
                    differences,
                    method,
                    seed: g.seed,
                    ..MerkleScenario::default()
                })
            };
            let (tree, planned) = (one(Method::Tree)?, one(Method::Planned)?);
            compare.push(MerkleCompare {
                miss: r.miss,
                keys,
                differences,
                bvv_bytes: r.request_bytes as f64 / r.syncs.max(1) as f64
                    + r.bytes_per_nonempty_reply,
                tree_bytes: tree.bytes,
                tree_round_trips: tree.round_trips,
                planned_bytes: planned.bytes,
                planned_round_trips: planned.round_trips,
            });
        }
    }
    let mut sweep = Vec::new();
    for &nodes in &args.sweep {
        let s = Scenario {
            nodes,
            keys: (base.keys / 10).max(1),
            writes: base.writes / 10,
            ..base.clone()
        };
        sweep.push(scenario::run(&s).map_err(|e| e.to_string())?);
    }
    if let Some(path) = &g.plot {
        let series: Vec<Series> = runs
            .iter()
            .map(|r| {
                let peak = r.log_peak.max(1) as f64;
                Series {
                    label: format!("miss {}", r.miss),
                    points: r
                        .log_series
                        .iter()
                        .map(|&(t, l)| (t, l as f64 / peak))
                        .collect(),
                }
            })
            .collect();
        plot::share_curve(
            path,
            "BVV: dot-key log size over time (share of its peak)",
            "virtual seconds",
            "log / peak",
            &series,
        )?;
    }
    let out = Output {
        runs,
        merkle: compare,
        sweep,
    };
    emit(g, &out, || render(&out))
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn render(out: &Output) -> String {
    let mut text = String::new();
    for r in &out.runs {
        let opt = |v: Option<f64>| v.map_or_else(|| "never".to_string(), |v| format!("{v:.2} s"));
        let useful = r.keys_changed + r.keys_causal_only;
        text.push_str(&table(
            &format!(
                "bvv: {} replicas, {} keys, {} writes acknowledged, {:.0}% of pushes missed",
                r.nodes,
                r.keys,
                r.writes_acked,
                r.miss * 100.0
            ),
            &[
                ("converged after writes stop", opt(r.converge_secs)),
                (
                    "identical stores / keys lost or wrong",
                    format!(
                        "{} / {}  (oracle: exact)",
                        r.identical_stores, r.lost_or_wrong_keys
                    ),
                ),
                (
                    "keys stored / with siblings",
                    format!("{} / {}", r.keys_stored, r.keys_with_siblings),
                ),
                ("syncs", r.syncs.to_string()),
                (
                    "bytes per sync (request + reply)",
                    format!(
                        "{:.0}  (requests {:.0})",
                        r.bytes_per_sync,
                        r.request_bytes as f64 / r.syncs.max(1) as f64
                    ),
                ),
                (
                    "keys shipped / received",
                    format!(
                        "{} / {}  (per non-empty sync {:.1})",
                        r.keys_shipped, r.keys_received, r.keys_per_nonempty_sync
                    ),
                ),
                (
                    "  missing at request: changed / causal",
                    format!(
                        "{} / {}  (= {useful} keys actually missing)",
                        r.keys_changed, r.keys_causal_only
                    ),
                ),
                ("  learned meanwhile (raced)", r.keys_raced.to_string()),
                (
                    "  already had (redundant)",
                    format!("{}  [paper: 0, sync is exact]", r.keys_redundant),
                ),
                (
                    "baseline: per-key VV digest per sync",
                    format!(
                        "{:.0} bytes  (every key's clock, no Merkle tree)",
                        r.vv_digest_bytes_per_sync
                    ),
                ),
                (
                    "metadata per key at rest",
                    format!(
                        "{:.2} bytes, {:.3} pairs for {:.3} values  [paper: 1 pair per value]",
                        r.meta_bytes_per_key, r.meta_pairs_per_key, r.values_per_key
                    ),
                ),
                (
                    "largest context at rest",
                    format!("{} pairs  [paper: 0 once stripped]", r.max_context_pairs),
                ),
                (
                    "baseline: per-key version vector",
                    format!(
                        "{:.2} bytes, {:.3} pairs",
                        r.vv_meta_bytes_per_key, r.vv_pairs_per_key
                    ),
                ),
                (
                    "node state at rest / peak",
                    format!("{} / {} bytes", r.node_state_bytes, r.node_state_bytes_peak),
                ),
                (
                    "log peak / at rest",
                    format!(
                        "{} / {} dots  [paper: empty once all peers saw all]",
                        r.log_peak, r.log_final
                    ),
                ),
                ("full transfers", r.full_transfers.to_string()),
                ("virtual time", format!("{:.1} s", r.virtual_secs)),
                ("wall time", format!("{:.2} s", r.measured.wall_secs)),
                ("trace hash", r.trace_hash.clone()),
            ],
        ));
        text.push('\n');
    }
    if !out.merkle.is_empty() {
        let rows: Vec<(String, String)> = out
            .merkle
            .iter()
            .map(|m| {
                (
                    format!("{:.0}% missed, {} of {} keys", m.miss * 100.0, m.differences, m.keys),
                    format!(
                        "bvv {:.0} B in 1 round trip (values included) | merkle tree {} B in {} | planned {} B in {} (keys and digests only)",
                        m.bvv_bytes, m.tree_bytes, m.tree_round_trips, m.planned_bytes, m.planned_round_trips
                    ),
                )
            })
            .collect();
        let rows: Vec<(&str, String)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        text.push_str(&table(
            "one sync's difference, found by node-wide sync vs epidemic-merkle  [DottedDB: anti-entropy without Merkle trees]",
            &rows,
        ));
        text.push('\n');
    }
    if !out.sweep.is_empty() {
        let rows: Vec<(String, String)> = out
            .sweep
            .iter()
            .map(|r| {
                (
                    format!("{} replicas", r.nodes),
                    format!(
                        "at rest {} B, peak {} B, meta/key {:.2} B vs VV {:.2} B, converged {}",
                        r.node_state_bytes,
                        r.node_state_bytes_peak,
                        r.meta_bytes_per_key,
                        r.vv_meta_bytes_per_key,
                        r.converge_secs
                            .map_or_else(|| "never".into(), |v| format!("{v:.2} s"))
                    ),
                )
            })
            .collect();
        let rows: Vec<(&str, String)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        text.push_str(&table(
            "node state (clock + watermark + log) against replicas  [paper: O(replicas) clock, O(replicas²) watermark]",
            &rows,
        ));
    }
    text
}
