//! The figures `epidemic-sim read-repair` prints (feature `sim`), each from one or more
//! runs of [`scenario::run`], beside Cassandra's behaviour.

use std::time::Duration;

use epidemic_sim::{LinkConfig, Loss, SimError};
use serde::Serialize;

use crate::config::{Config, DataReplica, Level, RepairMode, SpeculativeRetry};
use crate::scenario::{self, Report, Scenario};

/// What the figures are computed from.
#[derive(Debug, Clone)]
pub struct FigureOptions {
    /// Operations per run.
    pub ops: u32,
    /// The base link.
    pub link: LinkConfig,
    /// Probability a replica misses a write, in the mismatch runs.
    pub staleness: f64,
    /// Extra delay of the slow replica.
    pub slow: Duration,
    /// Loss of the monotonic-read runs (async repair only loses there when repairs do).
    pub monotonic_loss: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for FigureOptions {
    fn default() -> Self {
        Self {
            ops: 1000,
            link: LinkConfig::default(),
            staleness: 0.3,
            slow: Duration::from_millis(200),
            monotonic_loss: 0.1,
            seed: 0,
        }
    }
}

/// Read-path bytes per read at one replication factor and value size.
#[derive(Debug, Clone, Serialize)]
pub struct BytesRow {
    /// Replication factor.
    pub replicas: u32,
    /// Value bytes.
    pub value: usize,
    /// QUORUM with digests (ours, and Cassandra's shape).
    pub digest: f64,
    /// QUORUM with full data from every replica asked.
    pub full_quorum: f64,
    /// Full data from all replicas.
    pub full_all: f64,
}

/// Round trips per read, replicas in sync and not.
#[derive(Debug, Clone, Serialize)]
pub struct RoundTripRow {
    /// Label.
    pub case: String,
    /// Reads completing in 1, 2 and 3 round trips.
    pub histogram: [u64; 3],
    /// Mean.
    pub mean: f64,
    /// Read-path bytes per read (repairs excluded).
    pub bytes_per_read: f64,
}

/// Repair bytes per stale replica.
#[derive(Debug, Clone, Serialize)]
pub struct RepairRow {
    /// Cells per record.
    pub cells: u16,
    /// Bytes per cell value.
    pub value: usize,
    /// Repairs sent.
    pub repairs: u64,
    /// Mean diff bytes per repair.
    pub diff: f64,
    /// Mean whole-record bytes per repair.
    pub whole: f64,
}

/// Read latency with one slow replica.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyRow {
    /// Label.
    pub case: String,
    /// p50, p90, p99, max in ms.
    pub latency_ms: [f64; 4],
    /// Speculative requests sent.
    pub speculative: u64,
    /// Reads failed.
    pub failed: u64,
    /// The latency CDF: (ms, share of completed reads done by then).
    #[serde(skip)]
    pub cdf: Vec<(f64, f64)>,
}

/// Monotonic-read violations by repair mode.
#[derive(Debug, Clone, Serialize)]
pub struct MonotonicRow {
    /// Replication factor.
    pub replicas: u32,
    /// Repair mode.
    pub mode: String,
    /// Completed reads.
    pub reads: u64,
    /// Failed reads (timeouts: blocking repair fails a read rather than answer early).
    pub failed: u64,
    /// Violations.
    pub violations: u64,
    /// Mean round trips.
    pub mean_round_trips: f64,
}

/// Every figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// Bytes per read.
    pub bytes: Vec<BytesRow>,
    /// Round trips.
    pub round_trips: Vec<RoundTripRow>,
    /// Repair bytes.
    pub repair: Vec<RepairRow>,
    /// Latency under one slow replica.
    pub latency: Vec<LatencyRow>,
    /// Monotonic reads.
    pub monotonic: Vec<MonotonicRow>,
}

fn read_only(o: &FigureOptions) -> Scenario {
    Scenario {
        ops: o.ops,
        write_ratio: 0.0,
        staleness: 0.0,
        link: o.link.clone(),
        seed: o.seed,
        ..Scenario::default()
    }
}

/// Runs every scenario behind the figures.
///
/// # Errors
/// [`SimError`] from a run.
pub fn figures(o: &FigureOptions) -> Result<Figures, SimError> {
    let mut bytes = Vec::new();
    for replicas in [3, 5] {
        for value in [1024, 64 * 1024] {
            let base = Scenario {
                replicas,
                cells: 1,
                value_size: value,
                ops: o.ops.min(400),
                ..read_only(o)
            };
            let run = |digest_reads: bool, level: Level| {
                scenario::run(&Scenario {
                    level,
                    config: Config {
                        digest_reads,
                        // Speculative requests would blur the comparison.
                        speculative_retry: SpeculativeRetry::Never,
                        ..Config::default()
                    },
                    ..base.clone()
                })
            };
            bytes.push(BytesRow {
                replicas,
                value,
                digest: run(true, Level::Quorum)?.read_bytes_per_read,
                full_quorum: run(false, Level::Quorum)?.read_bytes_per_read,
                full_all: run(false, Level::All)?.read_bytes_per_read,
            });
        }
    }
    let rt = |case: &str, r: &Report| RoundTripRow {
        case: case.into(),
        histogram: r.round_trips,
        mean: r.mean_round_trips,
        bytes_per_read: r.read_bytes_per_read,
    };
    let in_sync = scenario::run(&read_only(o))?;
    let mixed = |repair, fetch_all_on_mismatch| {
        scenario::run(&Scenario {
            write_ratio: 0.3,
            staleness: o.staleness,
            repair,
            config: Config {
                fetch_all_on_mismatch,
                ..Config::default()
            },
            ..read_only(o)
        })
    };
    let round_trips = vec![
        rt("in sync", &in_sync),
        rt(
            "stale replicas, blocking repair",
            &mixed(RepairMode::Blocking, false)?,
        ),
        rt(
            "stale replicas, async repair",
            &mixed(RepairMode::Async, false)?,
        ),
        rt(
            "stale, blocking, full re-read from all (Cassandra)",
            &mixed(RepairMode::Blocking, true)?,
        ),
    ];
    let mut repair = Vec::new();
    for (cells, value) in [(1, 1024), (8, 1024), (32, 1024), (8, 64 * 1024)] {
        let r = scenario::run(&Scenario {
            cells,
            value_size: value,
            write_ratio: 0.3,
            staleness: o.staleness,
            ..read_only(o)
        })?;
        let n = r.repairs.max(1) as f64;
        repair.push(RepairRow {
            cells,
            value,
            repairs: r.repairs,
            diff: r.repair_diff_bytes as f64 / n,
            whole: r.repair_whole_bytes as f64 / n,
        });
    }
    let slow = |case: &str, slow: bool, speculative_retry| -> Result<LatencyRow, SimError> {
        latency_row(o, case, slow, speculative_retry, DataReplica::First)
    };
    let latency = vec![
        slow("no slow replica", false, SpeculativeRetry::Never)?,
        slow(
            "slow replica, no speculation",
            true,
            SpeculativeRetry::Never,
        )?,
        slow(
            "slow replica, 99th percentile",
            true,
            SpeculativeRetry::Percentile(0.99),
        )?,
        slow(
            "slow replica, fixed 50 ms",
            true,
            SpeculativeRetry::Fixed(Duration::from_millis(50)),
        )?,
        slow("slow replica, always", true, SpeculativeRetry::Always)?,
        latency_row_with(
            o,
            "slow replica, 99th percentile, Cassandra's start (timeout / 2)",
            Config {
                speculative_retry: SpeculativeRetry::Percentile(0.99),
                speculative_initial: Some(Config::default().read_timeout / 2),
                data_replica: DataReplica::First,
                ..Config::default()
            },
        )?,
        latency_row(
            o,
            "slow replica, lowest-latency data replica, 99th percentile",
            true,
            SpeculativeRetry::Percentile(0.99),
            DataReplica::LowestLatency,
        )?,
    ];
    let mut monotonic = Vec::new();
    for replicas in [3, 5] {
        for mode in [RepairMode::Blocking, RepairMode::Async, RepairMode::None] {
            let r = scenario::run(&Scenario {
                replicas,
                coordinators: 3,
                keys: 4,
                interval: Duration::from_millis(2),
                write_ratio: 0.3,
                staleness: 0.5,
                shuffle_replicas: true,
                repair: mode,
                link: LinkConfig {
                    loss: Loss::Uniform(o.monotonic_loss),
                    jitter: Duration::from_millis(30),
                    ..o.link.clone()
                },
                config: Config {
                    data_replica: DataReplica::First,
                    ..Config::default()
                },
                ..read_only(o)
            })?;
            monotonic.push(MonotonicRow {
                replicas,
                mode: format!("{mode:?}"),
                reads: r.done,
                failed: r.failed,
                violations: r.monotonic_violations,
                mean_round_trips: r.mean_round_trips,
            });
        }
    }
    Ok(Figures {
        bytes,
        round_trips,
        repair,
        latency,
        monotonic,
    })
}

/// QUORUM reads over three replicas in sync, replica 0 slow (or not).
fn latency_row(
    o: &FigureOptions,
    case: &str,
    slow: bool,
    speculative_retry: SpeculativeRetry,
    data_replica: DataReplica,
) -> Result<LatencyRow, SimError> {
    let config = Config {
        speculative_retry,
        data_replica,
        ..Config::default()
    };
    if slow {
        latency_row_with(o, case, config)
    } else {
        Ok(row(
            case,
            &scenario::run(&Scenario {
                config,
                ..read_only(o)
            })?,
        ))
    }
}

/// QUORUM reads over three replicas in sync, replica 0 slow, with `config`.
fn latency_row_with(o: &FigureOptions, case: &str, config: Config) -> Result<LatencyRow, SimError> {
    let r = scenario::run(&Scenario {
        slow: Some((0, o.slow)),
        config,
        ..read_only(o)
    })?;
    Ok(row(case, &r))
}

fn row(case: &str, r: &Report) -> LatencyRow {
    let mut ms: Vec<f64> = r
        .completed
        .iter()
        .map(|x| x.finished.saturating_sub(x.started).as_secs_f64() * 1e3)
        .collect();
    ms.sort_by(f64::total_cmp);
    let n = ms.len().max(1) as f64;
    let cdf = (0u32..)
        .zip(&ms)
        .map(|(i, &x)| (x, f64::from(i + 1) / n))
        .collect();
    LatencyRow {
        case: case.into(),
        latency_ms: r.latency_ms,
        speculative: r.speculative_retries,
        failed: r.failed,
        cdf,
    }
}
