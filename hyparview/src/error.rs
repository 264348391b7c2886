//! [`Error`]: misuse by the local application (tier 2 of the error policy).

/// Why a command was refused. Every variant leaves the machine unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is inconsistent; the text names the field.
    InvalidConfig(&'static str),
    /// A node cannot join through itself.
    SelfContact,
    /// The opaque data is larger than [`Config::max_peer_data`](crate::Config).
    DataTooLarge {
        /// Bytes given.
        len: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// [`Config::max_pending`](crate::Config) requests are already outstanding.
    TooManyPending,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidConfig(what) => write!(f, "invalid config: {what}"),
            Error::SelfContact => write!(f, "a node cannot join through itself"),
            Error::DataTooLarge { len, max } => {
                write!(f, "peer data of {len} bytes exceeds the {max}-byte limit")
            }
            Error::TooManyPending => write!(f, "too many requests outstanding"),
        }
    }
}

impl std::error::Error for Error {}
