//! What the coordinator reports: its [`Event`]s and its [`Stats`].

use std::time::{Duration, Instant};

use smallvec::SmallVec;

use crate::message::ReadId;
use crate::record::{Record, Schema};

/// What the coordinator tells the application.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<P, S: Schema> {
    /// A read completed.
    ReadDone(ReadDone<P, S>),
    /// A read failed; nothing is returned.
    ReadFailed {
        /// The read.
        id: ReadId,
        /// Its key.
        key: S::Key,
        /// Why.
        reason: FailReason,
    },
}

/// A completed read.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadDone<P, S: Schema> {
    /// The read.
    pub id: ReadId,
    /// Its key.
    pub key: S::Key,
    /// The reconciled record (`None`: no replica has one). Cells may hold concurrent
    /// siblings under a version-vector resolver: the application resolves them.
    pub value: Option<Record<S>>,
    /// Replicas whose answers made up the result: at least the level's count.
    pub level_met: usize,
    /// Replicas sent a repair (their acknowledgement awaited under blocking repair).
    pub repaired: SmallVec<[P; 4]>,
    /// Client-visible round trips: 1 when the replicas agreed, 2 after a digest mismatch,
    /// 3 when the read also waited for repair acknowledgements.
    pub round_trips: u8,
    /// Whether a digest differed from the data.
    pub digest_mismatch: bool,
    /// Whether a speculative request went to one more replica.
    pub speculated: bool,
    /// When the read started.
    pub started: Instant,
    /// How long it took.
    pub latency: Duration,
}

/// Why a read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The read timed out before the level was met.
    Timeout {
        /// Replicas that answered.
        responded: usize,
        /// Answers the level needs.
        required: usize,
    },
    /// The read timed out waiting for repair acknowledgements (blocking repair).
    RepairTimeout {
        /// Replicas known to hold the answer (up to date or acknowledged).
        holding: usize,
        /// How many the level needs.
        required: usize,
    },
    /// Too many replicas' links went down for the level to be met.
    Unavailable {
        /// Replicas still able to answer.
        alive: usize,
        /// Answers the level needs.
        required: usize,
    },
}

/// Counters of a coordinator's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Reads accepted.
    pub reads_started: u64,
    /// Reads completed.
    pub reads_done: u64,
    /// Reads failed.
    pub reads_failed: u64,
    /// Reads refused (level unavailable, too many in flight, bad replica list).
    pub reads_refused: u64,
    /// Reads completed in one round trip.
    pub one_round_trip: u64,
    /// Reads whose digests did not all match.
    pub digest_mismatches: u64,
    /// Round trips beyond the first (data fetches and repair waits).
    pub extra_round_trips: u64,
    /// Bytes digests saved against full data answers (per matching digest: the data
    /// answer's size minus the digest's).
    pub bytes_saved_by_digests: u64,
    /// Repair messages sent (retransmissions excluded).
    pub repairs_sent: u64,
    /// Cell versions in those repairs.
    pub repair_versions: u64,
    /// Bytes of those repairs' diffs.
    pub repair_bytes: u64,
    /// Bytes whole-record repairs would have taken for the same replicas.
    pub whole_record_bytes: u64,
    /// Speculative requests sent.
    pub speculative_retries: u64,
    /// Data requests and repairs sent again after a retransmit interval.
    pub retransmits: u64,
    /// Answers that arrived after their replica was no longer needed.
    pub late_responses: u64,
    /// Repairs sent because a late answer showed a replica stale.
    pub late_repairs: u64,
    /// Second answers from the same replica to the same request.
    pub duplicate_responses: u64,
    /// Answers naming a read this coordinator does not know (or forgot).
    pub unknown_id: u64,
    /// Answers from a replica the read did not ask.
    pub wrong_replica: u64,
    /// Answers of the wrong kind (a digest for a data request), or requests sent to a
    /// coordinator.
    pub unexpected: u64,
    /// Completed reads forgotten before their linger time, at the bound.
    pub lingering_evicted: u64,
}
