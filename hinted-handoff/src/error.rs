//! Errors returned to the local application (tier 2 of the error policy). A peer's bad
//! message is never an error: it is dropped and counted in [`Stats`](crate::Stats).

use std::fmt;

/// Why [`Node::write`](crate::Node::write) refused a write. In every case nothing changed:
/// no message was sent, no hint stored, no id consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// The preference list has fewer nodes than the replication factor, or names a node
    /// twice.
    BadPreferenceList,
    /// The level asks for more acknowledgements than there are replicas.
    Unsatisfiable {
        /// Acknowledgements the level needs.
        required: usize,
        /// The replication factor.
        replicas: usize,
    },
    /// Too few nodes are known alive to meet the level (Cassandra's `UnavailableException`):
    /// refused up front rather than timed out.
    Unavailable {
        /// Acknowledgements the level needs.
        required: usize,
        /// Targets known alive (owners, plus fallbacks under a sloppy quorum).
        alive: usize,
    },
    /// Key and value exceed [`Config::max_mutation_bytes`](crate::Config::max_mutation_bytes).
    TooLarge {
        /// The mutation's size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// [`Config::max_pending_writes`](crate::Config::max_pending_writes) writes are in flight.
    Overloaded,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::BadPreferenceList => {
                write!(f, "preference list shorter than N or with a duplicate")
            }
            WriteError::Unsatisfiable { required, replicas } => {
                write!(
                    f,
                    "level needs {required} acks but there are {replicas} replicas"
                )
            }
            WriteError::Unavailable { required, alive } => {
                write!(
                    f,
                    "level needs {required} acks but only {alive} targets are alive"
                )
            }
            WriteError::TooLarge { bytes, limit } => {
                write!(
                    f,
                    "mutation of {bytes} bytes exceeds the {limit}-byte limit"
                )
            }
            WriteError::Overloaded => write!(f, "too many writes in flight"),
        }
    }
}

impl std::error::Error for WriteError {}

/// A configuration field out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field.
    pub field: &'static str,
    /// What is wrong with it.
    pub why: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config.{} {}", self.field, self.why)
    }
}

impl std::error::Error for ConfigError {}
