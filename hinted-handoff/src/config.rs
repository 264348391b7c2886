//! [`Config`]: every timeout, window and bound of a node, with where each default comes from.

use std::time::Duration;

use crate::error::ConfigError;

/// How fast a hint holder replays hints to a recovering target.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayConfig {
    /// Adapt the number of replays in flight to the target's acknowledgement latency (a
    /// delay-based window, as LEDBAT does for bulk transfer). `false` sends up to
    /// `max_in_flight` at once: Cassandra's behaviour without a throttle, the one that
    /// gave ScyllaDB 17x write latency on the recovering node.
    pub adaptive: bool,
    /// Replays in flight to one target when replay starts. Default 4 (a TCP initial
    /// window's order of magnitude).
    pub initial_window: u32,
    /// Most replays in flight to one target, adaptive or not. Default 256 (Cassandra
    /// delivers one hints file per target per thread; this bounds memory instead).
    pub max_in_flight: u32,
    /// Queueing delay tolerated at the target: an acknowledgement slower than the fastest
    /// one seen from it by more than this means its queue is growing, and the window
    /// halves. Default 20 ms (LEDBAT, RFC 6817, caps its target at 100 ms; we aim lower
    /// because the replica's own writes wait in the same queue).
    pub target_delay: Duration,
    /// A replay not acknowledged within this is resent later and the window halves.
    /// Default 10 s (Cassandra's hint delivery timeout is the write timeout's order).
    pub timeout: Duration,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            adaptive: true,
            initial_window: 4,
            max_in_flight: 256,
            target_delay: Duration::from_millis(20),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A node's configuration; [`Config::validate`] runs at construction.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Replicas per key (N): the first N nodes of a write's preference list own it; the
    /// rest are fallbacks for sloppy quorums. Default 3 (Dynamo, Cassandra, Riak).
    pub replication: usize,
    /// How long a write waits for acknowledgements. Default 2 s (Cassandra's
    /// `write_request_timeout`).
    pub write_timeout: Duration,
    /// Write to fallback nodes when owners are known down (Dynamo, Riak); `false` is a
    /// strict quorum (Cassandra). Default true.
    pub sloppy_quorum: bool,
    /// Persist a hint for every owner that has not acknowledged *before* acknowledging the
    /// client, so that no acknowledged write is lost even if the coordinator crashes before
    /// its timeout (costs a persisted put and remove per write whose last replica answers
    /// after the W-th). `false` is Cassandra's behaviour: hints only at the timeout, and a
    /// coordinator crash in between leaves the slow replica to anti-entropy. Default true.
    pub hint_before_ack: bool,
    /// Stop hinting a target that has been down longer than this. Default 3 h
    /// (Cassandra's `max_hint_window`).
    pub max_hint_window: Duration,
    /// A hint not delivered within this is dropped (and reported). Default 10 days
    /// (Cassandra caps hint TTL at the table's `gc_grace_seconds`, 864000 s).
    pub hint_ttl: Duration,
    /// Most hints held for one target. Default 100,000.
    pub max_hints_per_target: usize,
    /// Most hints held in total. Default 1,000,000 (ScyllaDB bounds hint space; Cassandra
    /// does not).
    pub max_hints_total: usize,
    /// Most writes coordinated at once; a write beyond it is refused. Default 10,000.
    pub max_pending_writes: usize,
    /// Largest key plus value accepted, in bytes; larger writes and messages are refused.
    /// Default 1 MiB (Cassandra's default mutation limit is half the commit log segment).
    pub max_mutation_bytes: usize,
    /// Period of the hint dispatcher: replay retries and TTL sweeps. Default 10 s
    /// (Cassandra's `hints_flush_period`).
    pub replay_interval: Duration,
    /// The replay rate controller.
    pub replay: ReplayConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            replication: 3,
            write_timeout: Duration::from_secs(2),
            sloppy_quorum: true,
            hint_before_ack: true,
            max_hint_window: Duration::from_secs(3 * 3600),
            hint_ttl: Duration::from_secs(864_000),
            max_hints_per_target: 100_000,
            max_hints_total: 1_000_000,
            max_pending_writes: 10_000,
            max_mutation_bytes: 1 << 20,
            replay_interval: Duration::from_secs(10),
            replay: ReplayConfig::default(),
        }
    }
}

impl Config {
    /// Checks every field.
    ///
    /// # Errors
    /// The first field that is out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, why: &'static str| Err(ConfigError { field, why });
        if self.replication == 0 || self.replication > 255 {
            return bad("replication", "must be in 1..=255");
        }
        if self.write_timeout.is_zero() {
            return bad("write_timeout", "must be positive");
        }
        if self.replay_interval.is_zero() {
            return bad("replay_interval", "must be positive");
        }
        if self.replay.timeout.is_zero() {
            return bad("replay.timeout", "must be positive");
        }
        if self.replay.initial_window == 0 || self.replay.max_in_flight == 0 {
            return bad("replay", "windows must be at least 1");
        }
        if self.replay.target_delay.is_zero() {
            return bad("replay.target_delay", "must be positive");
        }
        let year = Duration::from_secs(365 * 86_400);
        for (field, d) in [
            ("write_timeout", self.write_timeout),
            ("replay_interval", self.replay_interval),
            ("replay.timeout", self.replay.timeout),
        ] {
            if d > year {
                return bad(field, "must be at most a year");
            }
        }
        if self.max_pending_writes == 0 {
            return bad("max_pending_writes", "must be at least 1");
        }
        Ok(())
    }
}
