//! Errors the local application can get (tier 2 of the error policy). A peer's bad message
//! is never an error: it is dropped and counted in [`Stats`](crate::Stats).

use std::fmt;

/// A configuration that cannot work; [`Swim::new`](crate::Swim::new) refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub why: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config.{}: {}", self.field, self.why)
    }
}

impl std::error::Error for ConfigError {}

/// A command the application gave that cannot be carried out. No state changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `join` with no seed other than this node.
    NoSeeds,
    /// Metadata longer than `Config::max_meta_len`.
    MetaTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A user broadcast that cannot fit in one packet.
    PayloadTooLarge {
        /// Its length.
        len: usize,
        /// The largest payload that fits.
        max: usize,
    },
    /// The node has left; `join` again first.
    Left,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSeeds => write!(f, "no seed other than this node"),
            Error::MetaTooLong { len, max } => write!(f, "metadata of {len} bytes, limit {max}"),
            Error::PayloadTooLarge { len, max } => {
                write!(f, "broadcast of {len} bytes, limit {max}")
            }
            Error::Left => write!(f, "this node has left the group"),
        }
    }
}

impl std::error::Error for Error {}
