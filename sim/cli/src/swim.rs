//! `epidemic-sim swim`: SWIM with Lifeguard. N members join through one seed, then a share
//! of them is killed under uniform loss, optionally with one slow member; prints join
//! time, first detection, time to Down everywhere, false positives and the cost per member
//! per period beside the SWIM paper's, the targets and foca's figures.

use std::time::Duration;

use clap::Args;
use epidemic_sim::Loss;
use epidemic_sim::plot::{self, Series};
use epidemic_swim::scenario::{self, SwimReport, SwimScenario};
use epidemic_swim::{Config, Lifeguard};

use crate::common::{Global, LinkArgs, emit, table};

/// Flags of `swim`.
#[derive(Debug, Args)]
pub(crate) struct SwimArgs {
    /// Members; a comma-separated list runs each size (e.g. 100,1000,10000).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    nodes: Vec<u32>,
    /// Configuration preset: lan, wan or local (memberlist's values).
    #[arg(long, default_value = "lan")]
    preset: String,
    /// Share of members crashed at once after the join (at least one if positive).
    #[arg(long, default_value_t = 0.01)]
    kill: f64,
    /// Loss rates to sweep, comma-separated (overrides --loss), e.g. 0,0.01,0.05,0.1.
    #[arg(long, value_delimiter = ',')]
    losses: Vec<f64>,
    /// Delay every message to member 1 by this many ms from the faults on (a slow node).
    #[arg(long, default_value_t = 0.0)]
    slow_ms: f64,
    /// Seconds from the end of the join (everyone knows everyone) to the faults and the
    /// start of the observation window, so the join's dissemination tail can drain first.
    #[arg(long, default_value_t = 5.0)]
    settle_secs: f64,
    /// Overrides the preset's broadcast queue bound (max_queue; LAN: 4,096).
    #[arg(long)]
    max_queue: Option<usize>,
    /// Seconds observed after the faults.
    #[arg(long, default_value_t = 300.0)]
    observe_secs: f64,
    /// After the observation, crash this many members one at a time, each exactly at a
    /// boundary of a period grid every live member is put on: the SWIM paper's first
    /// detection (0 skips it).
    #[arg(long, default_value_t = 30)]
    aligned_kills: u32,
    /// Periods between one aligned crash's first suspicion and the next crash.
    #[arg(long, default_value_t = 20)]
    aligned_gap_periods: u32,
    /// Lifeguard: on, off or both.
    #[arg(long, default_value = "on")]
    lifeguard: String,
    #[command(flatten)]
    link: LinkArgs,
}

/// Runs every requested combination and prints (and plots) the figures.
pub(crate) fn run(g: &Global, args: &SwimArgs) -> Result<(), String> {
    let base = match args.preset.as_str() {
        "lan" => Config::lan(),
        "wan" => Config::wan(),
        "local" => Config::local(),
        p => return Err(format!("--preset must be lan, wan or local, got {p}")),
    };
    let guards: &[bool] = match args.lifeguard.as_str() {
        "on" => &[true],
        "off" => &[false],
        "both" => &[true, false],
        l => return Err(format!("--lifeguard must be on, off or both, got {l}")),
    };
    if !(0.0..=1.0).contains(&args.kill) {
        return Err(format!("--kill must be in [0, 1], got {}", args.kill));
    }
    if !(0.0..=86_400.0).contains(&args.observe_secs)
        || !(0.0..=86_400.0).contains(&args.settle_secs)
        || !(0.0..=3_600_000.0).contains(&args.slow_ms)
    {
        return Err(
            "--observe-secs and --settle-secs must be in [0, 86400], --slow-ms in [0, 3600000]"
                .into(),
        );
    }
    if args.nodes.iter().any(|&n| n == 0 || n > 100_000) {
        return Err("--nodes must be in [1, 100000]".into());
    }
    let link = args.link.to_link()?;
    let losses: Vec<Option<f64>> = if args.losses.is_empty() {
        vec![None]
    } else {
        args.losses.iter().map(|&l| Some(l)).collect()
    };
    let mut reports = Vec::new();
    for &nodes in &args.nodes {
        for &loss in &losses {
            for &guard in guards {
                let mut config = base.clone();
                config.lifeguard = if guard { Lifeguard::ON } else { Lifeguard::OFF };
                if let Some(q) = args.max_queue {
                    config.max_queue = q;
                }
                let mut run_link = link.clone();
                if let Some(l) = loss {
                    if !(0.0..=1.0).contains(&l) {
                        return Err(format!("--losses must be in [0, 1], got {l}"));
                    }
                    run_link.loss = if l == 0.0 {
                        Loss::None
                    } else {
                        Loss::Uniform(l)
                    };
                }
                let mut join_link = link.clone();
                join_link.loss = Loss::None;
                let s = SwimScenario {
                    nodes,
                    config,
                    join_link,
                    link: run_link,
                    join_limit: Duration::from_secs(600),
                    kill: args.kill,
                    slow: (args.slow_ms > 0.0).then(|| Duration::from_secs_f64(args.slow_ms / 1e3)),
                    settle: Duration::from_secs_f64(args.settle_secs),
                    observe: Duration::from_secs_f64(args.observe_secs),
                    seed: g.seed,
                    aligned_kills: args.aligned_kills,
                    aligned_gap: base.probe_interval * args.aligned_gap_periods,
                    ..SwimScenario::default()
                };
                let r = scenario::run(&s)?;
                // Progress for long sweeps; the figures themselves go to stdout at the end.
                eprintln!(
                    "swim: done {} (first detection aligned {}, false positives {}, {:.0} s wall)",
                    label(&r),
                    opt(r.aligned_first_detection_periods, "periods"),
                    r.false_positives,
                    r.measured.wall_secs
                );
                reports.push(r);
            }
        }
    }
    if let Some(path) = &g.plot {
        plot_reports(path, &reports)?;
    }
    emit(g, &reports, || {
        let mut out = String::new();
        for r in &reports {
            out.push_str(&report_table(r));
            out.push('\n');
        }
        if reports.len() > 1 {
            out.push_str(&summary(&reports));
        }
        out
    })
}

fn label(r: &SwimReport) -> String {
    format!(
        "N={} loss={}% lifeguard={}",
        r.nodes,
        r.loss * 100.0,
        if r.lifeguard { "on" } else { "off" }
    )
}

fn plot_reports(path: &std::path::Path, reports: &[SwimReport]) -> Result<(), String> {
    let detection: Vec<Series> = reports
        .iter()
        .map(|r| Series {
            label: label(r),
            points: r.detection_curve.clone(),
        })
        .collect();
    plot::share_curve(
        path,
        "SWIM: share of (live member, killed member) pairs marked Down",
        "seconds since the crash",
        "share marked Down",
        &detection,
    )?;
    let fp_path = path.with_file_name(format!(
        "{}-false-positives.svg",
        path.file_stem().and_then(|s| s.to_str()).unwrap_or("swim")
    ));
    let fp: Vec<Series> = reports
        .iter()
        .map(|r| Series {
            label: label(r),
            points: r.false_positive_curve.clone(),
        })
        .collect();
    plot::share_curve(
        &fp_path,
        "SWIM: share of members that declared a live member Down",
        "minutes of observation",
        "share of members",
        &fp,
    )
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.2} {unit}"))
}

fn report_table(r: &SwimReport) -> String {
    let log2n = f64::from(r.nodes.max(2)).log2().ceil();
    let m = &r.measured;
    table(
        &format!("swim: {}", label(r)),
        &[
            ("seed", r.seed.to_string()),
            (
                "join: 99% / all know all",
                format!(
                    "{} / {}   (foca N=1000: 4.6 s / 10 min; target all ≤ 30 s)",
                    opt(r.join_99_secs, "s"),
                    opt(r.join_all_secs, "s")
                ),
            ),
            (
                "killed",
                format!("{} (undetected at the end: {})", r.killed, r.undetected),
            ),
            (
                "first detection, aligned",
                format!(
                    "{} over {} crashes at a period boundary of every member, until the first suspicion   (the paper's definition: e/(e-1) = 1.58; target ≤ 1.6)",
                    opt(r.aligned_first_detection_periods, "periods"),
                    r.aligned_kills
                ),
            ),
            (
                "  random-phase crash → first suspicion",
                format!(
                    "{}   (≈ 0.5 waiting for the next period + the paper's 1.58)",
                    opt(r.first_detection_periods, "periods")
                ),
            ),
            (
                "  random-phase crash → failed probe sent",
                opt(
                    r.first_probe_periods,
                    "periods (the suspicion minus one period)",
                ),
            ),
            (
                "first Down anywhere",
                format!("{}   (foca LAN: 9–13 s)", opt(r.first_down_secs, "s")),
            ),
            (
                "Down at every live member",
                format!(
                    "mean {}, max {}   (foca LAN: 10–18 s)",
                    opt(r.all_down_secs, "s"),
                    opt(r.all_down_secs_max, "s")
                ),
            ),
            (
                "  first to last Down",
                format!(
                    "{}   (target ≤ 3·⌈log2 N⌉ = {log2n:.0}·3 periods)",
                    opt(r.down_spread_periods_max, "periods")
                ),
            ),
            (
                "false positives",
                format!(
                    "{} declarations on {} live members, {:.4} per member-hour   (foca 5% loss, 300 s: 15 at N=100, 123 at N=1000; target 0 at ≤ 5% with Lifeguard)",
                    r.false_positives, r.false_positive_members, r.false_positives_per_node_hour
                ),
            ),
            ("  false suspicions raised", r.false_suspicions.to_string()),
            (
                "messages / member / period",
                format!(
                    "{:.3}   (paper: independent of N; foca ≈ 2 per second)",
                    r.msgs_per_member_period
                ),
            ),
            (
                "bytes / member / period",
                format!(
                    "{:.1}   (foca: 70–85 per second)",
                    r.bytes_per_member_period
                ),
            ),
            ("  per kind (msgs/member/period)", per_kind(&r.kinds, 3)),
            (
                "  per kind (bytes/member/period)",
                per_kind(&r.kind_bytes, 1),
            ),
            (
                "CPU / member / period",
                opt(r.cpu_us_per_member_period, "µs (simulator included)"),
            ),
            ("largest member table", r.max_table.to_string()),
            (
                "heap / member-pair",
                format!(
                    "{:.0} B after the join, {:.0} B at the end (Swim::heap_bytes summed / N²); peak RSS / N²: {}",
                    r.heap_per_pair_after_join,
                    r.heap_per_pair_end,
                    opt(
                        m.peak_rss_bytes
                            .map(|b| b as f64 / (f64::from(r.nodes) * f64::from(r.nodes))),
                        "B"
                    )
                ),
            ),
            ("virtual time", format!("{:.0} s", r.virtual_secs)),
            (
                "wall / cpu / peak memory",
                format!(
                    "{:.1} s / {} / {}",
                    m.wall_secs,
                    opt(m.cpu_secs, "s"),
                    opt(m.peak_rss_bytes.map(|b| b as f64 / 1_048_576.0), "MiB")
                ),
            ),
            ("trace hash", r.trace_hash.clone()),
        ],
    )
}

fn summary(reports: &[SwimReport]) -> String {
    let mut out = String::from(
        "summary\n  N       loss   lifeguard  first-det aligned / random-phase (periods)  all-Down(s)  false+  per-member-hour  msgs/member/period  bytes/member/period\n",
    );
    for r in reports {
        out.push_str(&format!(
            "  {:<7} {:<6} {:<10} {:<42} {:<12} {:<7} {:<16.4} {:<19.3} {:.1}\n",
            r.nodes,
            format!("{}%", r.loss * 100.0),
            if r.lifeguard { "on" } else { "off" },
            format!(
                "{} / {}",
                r.aligned_first_detection_periods
                    .map_or("n/a".into(), |v| format!("{v:.2}")),
                r.first_detection_periods
                    .map_or("n/a".into(), |v| format!("{v:.2}"))
            ),
            r.all_down_secs.map_or("n/a".into(), |v| format!("{v:.1}")),
            r.false_positives,
            r.false_positives_per_node_hour,
            r.msgs_per_member_period,
            r.bytes_per_member_period,
        ));
    }
    out
}

/// `kind value, kind value, ...` with `decimals` digits after the point.
fn per_kind(values: &std::collections::BTreeMap<&'static str, f64>, decimals: usize) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k} {v:.decimals$}"))
        .collect::<Vec<_>>()
        .join(", ")
}
