//! Errors of the application's commands (tier 2: misuse). A peer's bad message is never
//! an error: it is dropped and counted in [`Stats`](crate::Stats).

/// Why a command was refused. Unless a variant says otherwise, nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable; the message names the field.
    InvalidConfig(&'static str),
    /// The value is over [`Config::max_value_bytes`](crate::Config::max_value_bytes).
    ValueTooLarge {
        /// Its size.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The dot→key log is full (a member has been silent for long): writes wait until
    /// it is retired or catches up.
    LogFull,
    /// The key is empty.
    EmptyKey,
    /// The peer is this node, or not a member.
    UnknownPeer(u64),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidConfig(what) => write!(f, "invalid configuration: {what}"),
            Error::ValueTooLarge { len, max } => write!(f, "value of {len} bytes, max {max}"),
            Error::LogFull => write!(f, "dot-key log full: a member holds back truncation"),
            Error::EmptyKey => write!(f, "empty key"),
            Error::UnknownPeer(p) => write!(f, "peer {p} is not a member"),
        }
    }
}

impl std::error::Error for Error {}
