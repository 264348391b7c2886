//! Errors the local application gets back from the coordinator (tier 2 of the error
//! policy). A refused read changes no state.

/// Why [`Coordinator::read`](crate::Coordinator::read) refused a read. Nothing was sent
/// and no state changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// The level needs more replicas than the read names (or zero).
    Unavailable {
        /// Responses the level needs.
        required: usize,
        /// Replicas named.
        replicas: usize,
    },
    /// A replica is named twice.
    DuplicateReplica,
    /// More replicas than [`Config::max_replicas`](crate::Config::max_replicas).
    TooManyReplicas {
        /// The bound.
        max: usize,
    },
    /// [`Config::max_in_flight`](crate::Config::max_in_flight) reads are in flight.
    TooManyReads {
        /// The bound.
        max: usize,
    },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Unavailable { required, replicas } => write!(
                f,
                "level needs {required} responses but {replicas} replicas are named"
            ),
            ReadError::DuplicateReplica => write!(f, "a replica is named twice"),
            ReadError::TooManyReplicas { max } => write!(f, "more than {max} replicas"),
            ReadError::TooManyReads { max } => write!(f, "{max} reads already in flight"),
        }
    }
}

impl std::error::Error for ReadError {}
