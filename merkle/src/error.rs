//! Errors returned to the local application (a peer's bad message is never an error: it is
//! dropped and counted in [`Stats`](crate::Stats)).

/// What a local command got wrong. Nothing changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A [`Config`](crate::Config) field is out of range.
    InvalidConfig(&'static str),
    /// The bound of concurrent sessions is reached.
    TooManySessions,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidConfig(what) => write!(f, "invalid configuration: {what}"),
            Error::TooManySessions => write!(f, "the bound of concurrent sessions is reached"),
        }
    }
}

impl std::error::Error for Error {}
