//! The pieces every subcommand of the `epidemic-sim` binary shares: the link-model flags,
//! the aligned table, and the one place that writes to stdout. Each protocol's subcommand
//! lives in its own file beside this one.

use std::time::Duration;

use clap::Args;
use epidemic_sim::{GilbertElliott, LinkConfig, Loss};

/// What every subcommand gets from the global flags.
#[derive(Debug)]
pub(crate) struct Global {
    pub(crate) seed: u64,
    pub(crate) json: bool,
    pub(crate) plot: Option<std::path::PathBuf>,
}

/// The link model, shared by every subcommand.
#[derive(Debug, Args)]
pub(crate) struct LinkArgs {
    /// One-way latency in milliseconds.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) latency_ms: f64,
    /// Extra uniform delay in [0, jitter] milliseconds.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) jitter_ms: f64,
    /// Message loss rate in [0, 1].
    #[arg(long, default_value_t = 0.0)]
    pub(crate) loss: f64,
    /// Mean loss burst length in messages; above 1 the loss is bursty (Gilbert–Elliott).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) burst: f64,
    /// Duplication rate in [0, 1].
    #[arg(long, default_value_t = 0.0)]
    pub(crate) duplicate: f64,
}

impl LinkArgs {
    /// The link model these flags describe, or what is wrong with them.
    pub(crate) fn to_link(&self) -> Result<LinkConfig, String> {
        for (name, p) in [("loss", self.loss), ("duplicate", self.duplicate)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("--{name} must be in [0, 1], got {p}"));
            }
        }
        let ms = |v: f64, name: &str| {
            Duration::try_from_secs_f64(v / 1e3)
                .map_err(|_| format!("--{name} must be a non-negative number of ms, got {v}"))
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

/// `title` then one aligned `key  value` row per pair.
pub(crate) fn table(title: &str, rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("{title}\n");
    for (k, v) in rows {
        out.push_str(&format!("  {k:<width$}  {v}\n"));
    }
    out
}

/// Prints a result as JSON (with `--json`) or as the subcommand's table.
pub(crate) fn emit<T: serde::Serialize>(
    g: &Global,
    value: &T,
    table: impl FnOnce() -> String,
) -> Result<(), String> {
    if g.json {
        say(&serde_json::to_string_pretty(value).map_err(|e| e.to_string())?);
    } else {
        say(&table());
    }
    Ok(())
}

/// The binary's one place that writes results to stdout. A closed pipe (`| head`) is not
/// an error worth a panic: the reader has what it wanted.
fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{}", text.trim_end());
}
