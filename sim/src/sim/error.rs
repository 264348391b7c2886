//! [`SimError`]: what a scenario or a run can get wrong.

use std::fmt;
use std::time::Duration;

/// What went wrong in a simulation. Every variant that a run can hit names the seed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimError {
    /// An invariant failed.
    Invariant {
        /// The invariant's name.
        name: String,
        /// Virtual time of the failed check.
        at: Duration,
        /// The seed that reproduces it.
        seed: u64,
        /// What the check said.
        message: String,
    },
    /// The peer (shown with `Debug`) is not in the simulation.
    UnknownPeer(String),
    /// A node with this peer id (shown with `Debug`) already exists.
    DuplicatePeer(String),
    /// A restart was asked for but no restart factory was set.
    NoRestartFactory,
    /// The node (shown with `Debug`) is crashed and cannot take a command.
    NodeDown(String),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Invariant {
                name,
                at,
                seed,
                message,
            } => write!(
                f,
                "invariant `{name}` failed at {at:?} with seed {seed}: {message} (rerun with SEED={seed})"
            ),
            SimError::UnknownPeer(p) => write!(f, "unknown peer {p}"),
            SimError::DuplicatePeer(p) => write!(f, "peer {p} added twice"),
            SimError::NoRestartFactory => {
                write!(f, "restart needs a factory: call Sim::on_restart")
            }
            SimError::NodeDown(p) => write!(f, "node {p} is crashed"),
        }
    }
}

impl std::error::Error for SimError {}
