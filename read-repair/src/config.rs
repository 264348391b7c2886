//! The coordinator's configuration, each default with its source.

use std::time::Duration;

/// How many replicas must answer a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// One replica.
    One,
    /// Two replicas.
    Two,
    /// Three replicas.
    Three,
    /// A majority of the replicas given for the read: `n / 2 + 1`.
    Quorum,
    /// Every replica given for the read.
    All,
    /// An explicit count.
    Count(u8),
}

impl Level {
    /// Responses this level needs out of `replicas` (possibly more than `replicas`, which
    /// the coordinator refuses as unavailable).
    #[must_use]
    pub fn block_for(self, replicas: usize) -> usize {
        match self {
            Level::One => 1,
            Level::Two => 2,
            Level::Three => 3,
            Level::Quorum => replicas / 2 + 1,
            Level::All => replicas,
            Level::Count(n) => usize::from(n),
        }
    }
}

/// When the read's answer goes back to the application, relative to its repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RepairMode {
    /// Answer only once enough replicas hold the answer (repairs acknowledged) to meet the
    /// level: a later read at a level that overlaps this one never sees an older value
    /// (monotonic quorum reads). Cassandra 4's `BLOCKING` read repair, its default.
    #[default]
    Blocking,
    /// Answer first, repair in the background without waiting for acknowledgements.
    Async,
    /// Answer without repairing (Cassandra's `NONE`).
    None,
}

/// Options of one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Responses needed.
    pub level: Level,
    /// Repair mode.
    pub repair: RepairMode,
}

impl Default for ReadOptions {
    /// `QUORUM`, blocking repair.
    fn default() -> Self {
        Self {
            level: Level::Quorum,
            repair: RepairMode::Blocking,
        }
    }
}

/// When to send a read to one more replica than the level needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpeculativeRetry {
    /// Never.
    Never,
    /// Always, up front (Cassandra's `ALWAYS`).
    Always,
    /// When the level is not met this long after the requests went out (Cassandra's `50ms`).
    Fixed(Duration),
    /// When the level is not met after this percentile of the observed response latency
    /// (Cassandra's `99PERCENTILE`), never less than [`Config::speculative_floor`]. Until
    /// 16 samples exist, [`Config::speculative_initial`] or the floor itself: early reads speculate eagerly, so the window
    /// learns the latency of the answers reads completed with. (Cassandra starts from half
    /// the read timeout; with a persistently slow first replica its percentile then
    /// learns the slow latency as normal and never speculates.)
    Percentile(f64),
}

/// Which replica gets the full data request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataReplica {
    /// The first in the replica list given for the read (the application orders it).
    First,
    /// The replica with the lowest observed latency (Cassandra's dynamic snitch); replicas
    /// never measured come first, so each gets measured.
    LowestLatency,
}

/// The coordinator's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// How long a read may take before it fails. Cassandra's `read_request_timeout`: 5 s.
    pub read_timeout: Duration,
    /// Speculative retry policy. Cassandra's table default: `99PERCENTILE`.
    pub speculative_retry: SpeculativeRetry,
    /// The least percentile speculation delay, and the delay before enough samples exist.
    /// Ours: 10 ms, a few LAN round trips.
    pub speculative_floor: Duration,
    /// The percentile delay before enough samples exist, if not the floor: Cassandra uses
    /// half the read timeout. Ours: `None` (the floor).
    pub speculative_initial: Option<Duration>,
    /// Latency samples kept for the percentile. Ours: 256, a window of recent responses
    /// (Cassandra keeps a decaying histogram).
    pub latency_samples: usize,
    /// Data replica choice. Cassandra: the dynamic snitch's latency order.
    pub data_replica: DataReplica,
    /// Send digest requests to all but one replica. `false` sends full data requests to
    /// every replica (what digests save is measured against this).
    pub digest_reads: bool,
    /// On a digest mismatch, read full data again from every replica that answered
    /// (Cassandra's behaviour) rather than only from those whose digests differed. Ours:
    /// off; on only to measure the difference.
    pub fetch_all_on_mismatch: bool,
    /// How often unanswered requests and unacknowledged blocking repairs are sent again
    /// within the read's timeout. Ours: 100 ms, for datagram transports (Cassandra relies
    /// on TCP and speculative retry instead).
    pub retransmit_interval: Duration,
    /// Reads in flight at once; one more is refused. Ours: 4096.
    pub max_in_flight: usize,
    /// Most replicas per read. Ours: 32 (replication factors are 3 to 5).
    pub max_replicas: usize,
    /// Repair replicas whose answers arrive after the read completed and show them stale
    /// (Cassandra before 4.0 did this through `read_repair_chance`). Ours: on.
    pub repair_late: bool,
    /// Completed reads remembered, for one read timeout, to recognise late answers. Ours:
    /// 4096; the oldest is forgotten first.
    pub max_lingering: usize,
    /// Peers whose latency is tracked for [`DataReplica::LowestLatency`]. Ours: 1024.
    pub max_tracked_peers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            read_timeout: Duration::from_secs(5),
            speculative_retry: SpeculativeRetry::Percentile(0.99),
            speculative_floor: Duration::from_millis(10),
            speculative_initial: None,
            latency_samples: 256,
            data_replica: DataReplica::LowestLatency,
            digest_reads: true,
            fetch_all_on_mismatch: false,
            retransmit_interval: Duration::from_millis(100),
            max_in_flight: 4096,
            max_replicas: 32,
            repair_late: true,
            max_lingering: 4096,
            max_tracked_peers: 1024,
        }
    }
}

impl Config {
    /// Checks the configuration.
    ///
    /// # Errors
    /// A message naming the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.read_timeout.is_zero() {
            return Err("read_timeout must be positive".into());
        }
        if self.retransmit_interval.is_zero() {
            return Err("retransmit_interval must be positive".into());
        }
        if let SpeculativeRetry::Percentile(p) = self.speculative_retry {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("speculative percentile must be in [0, 1], got {p}"));
            }
        }
        if self.max_in_flight == 0 || self.max_replicas == 0 {
            return Err("max_in_flight and max_replicas must be positive".into());
        }
        if self.latency_samples == 0 {
            return Err("latency_samples must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(Level::Quorum.block_for(3), 2);
        assert_eq!(Level::Quorum.block_for(5), 3);
        assert_eq!(Level::Quorum.block_for(4), 3);
        assert_eq!(Level::All.block_for(5), 5);
        assert_eq!(Level::Count(4).block_for(3), 4);
        assert!(Config::default().validate().is_ok());
        let bad = Config {
            speculative_retry: SpeculativeRetry::Percentile(1.5),
            ..Config::default()
        };
        assert!(bad.validate().is_err());
    }
}
