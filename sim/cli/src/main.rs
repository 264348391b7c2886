//! `epidemic-sim`: runs the simulator's scenarios from the command line. One subcommand per
//! protocol (each in its own file beside this one); each prints its figures as a table (or
//! JSON with `--json`) and can draw them (`--plot FILE.svg`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod common;
mod flood;

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
    Flood(flood::FloodArgs),
}

fn main() -> ExitCode {
    let Cli {
        seed,
        json,
        plot,
        command,
    } = Cli::parse();
    let global = common::Global { seed, json, plot };
    let result = match &command {
        Command::Flood(args) => flood::run(&global, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("epidemic-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
