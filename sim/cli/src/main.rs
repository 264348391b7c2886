//! `epidemic-sim`: runs the simulator's scenarios from the command line. One subcommand per
//! protocol (each in its own file beside this one); each prints its figures as a table (or
//! JSON with `--json`) and can draw them (`--plot FILE.svg`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bvv;
mod common;
mod flood;
mod hinted_handoff;
mod hyparview;
mod merkle;
mod plumtree;
mod read_repair;
mod swim;

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
    /// Bitmap version vectors and node-wide sync: bytes and keys per sync against the keys
    /// actually missing, metadata per key at rest against per-key version vectors.
    Bvv(bvv::BvvArgs),
    /// Flood broadcasts over a random overlay: proves the simulator end to end and measures
    /// its speed (deliveries per second of wall time).
    Flood(flood::FloodArgs),
    /// Hinted handoff and sloppy quorums: a replica down and back under a write workload;
    /// hints, repair time, zero acknowledged-write loss, adaptive vs unthrottled replay.
    HintedHandoff(hinted_handoff::HintedHandoffArgs),
    /// HyParView partial views: overlay shape at 10,000 nodes and the failure sweep
    /// (reliability of a flood, rounds to heal, isolated nodes) beside the paper's figures.
    Hyparview(hyparview::HyparviewArgs),
    /// Merkle anti-entropy and RIBLT: bytes, round trips and keys shipped to find d
    /// differences between two replicas of n keys, per method, beside the anchors.
    Merkle(merkle::MerkleArgs),
    /// Plumtree over HyParView: RMR, last delivery hop, reliability and latency of stable,
    /// burst and mass-failure runs, beside eager flooding and the paper's/iroh's figures.
    Plumtree(plumtree::PlumtreeArgs),
    /// Read coordinator: digest reads, minimal-diff read repair, speculative retry and
    /// monotonic quorum reads over stale replicas, beside Cassandra's read path.
    ReadRepair(read_repair::ReadRepairArgs),
    /// SWIM with Lifeguard: join, kill, loss and a slow member; detection time, false
    /// positives and cost per member per period beside the paper's and foca's figures.
    Swim(swim::SwimArgs),
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
        Command::Bvv(args) => bvv::run(&global, args),
        Command::Flood(args) => flood::run(&global, args),
        Command::HintedHandoff(args) => hinted_handoff::run(&global, args),
        Command::Hyparview(args) => hyparview::run(&global, args),
        Command::Merkle(args) => merkle::run(&global, args),
        Command::Plumtree(args) => plumtree::run(&global, args),
        Command::ReadRepair(args) => read_repair::run(&global, args),
        Command::Swim(args) => swim::run(&global, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("epidemic-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
