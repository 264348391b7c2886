//! [`Error`]: misuse by the local application (tier 2 of the error policy).

/// Why a command was refused. Every variant leaves the machine unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is inconsistent; the text names the field.
    InvalidConfig(&'static str),
    /// The payload does not fit in [`Config::max_message_size`](crate::Config) with its
    /// headers and envelope.
    PayloadTooLarge {
        /// Bytes given.
        len: usize,
        /// The largest payload that fits.
        max: usize,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidConfig(what) => write!(f, "invalid config: {what}"),
            Error::PayloadTooLarge { len, max } => {
                write!(f, "payload of {len} bytes exceeds the {max}-byte limit")
            }
        }
    }
}

impl std::error::Error for Error {}
