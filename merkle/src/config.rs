//! Configuration of a [`MerkleSync`](crate::MerkleSync), each default with its source.

use std::time::Duration;

use crate::error::Error;
use crate::planner::Method;
use crate::tree::Shape;

/// Configuration of a replica's sync machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The tree's shape; both replicas must agree. Default fanout 16, depth 4 (Riak's
    /// tictac trees: 1,024 × 1,024; Cassandra: up to 2^20 leaves).
    pub shape: Shape,
    /// How sessions this replica initiates reconcile. Default: the planner.
    pub method: Method,
    /// Largest message sent, envelope included. Default 60,000 bytes: under the 65,507-byte
    /// UDP payload limit, so every message fits one datagram.
    pub max_message_bytes: usize,
    /// Largest step (before fragmentation) sent or accepted. Default 64 MiB: four million
    /// items of a list; a bigger difference is reconciled over several sessions.
    pub max_step_bytes: usize,
    /// Concurrent sessions, initiated and accepted together. Default 16 (Cassandra runs
    /// repair sessions per table with a small bounded pool; Riak's AAE one exchange per
    /// vnode pair).
    pub max_sessions: usize,
    /// Time without an answer before the last step is sent again. Default 1 s (TCP's
    /// initial retransmission timeout, RFC 6298).
    pub retransmit: Duration,
    /// Retransmissions of one step before the session is given up. Default 4.
    pub max_retries: u32,
    /// Fresh sessions an initiator starts after one is given up or aborted. Default 2.
    pub max_restarts: u32,
    /// Most items of a difference a session reports (RIBLT peel bound, `Done` size).
    /// Default 1,000,000.
    pub max_differences: usize,
    /// Planner: items a sketch may cover before CPU enters the price: the planner chooses
    /// by bytes and round trips alone up to here. Default 2^20 (1,048,576): a replica of a
    /// million keys is sketched whole rather than paying 2-12 KB of deeper tree hashes.
    /// The bound this sets: a sketch of 10^6 items costs ~0.26 s to encode its first 150
    /// symbols and ~0.32 s to decode them against 10^6 local items (measured, release,
    /// one core; each further batch walks the items again), so ~0.6 s of CPU a session.
    pub riblt_item_budget: usize,
    /// Planner: bytes that encoding and decoding one more item past the budget is worth.
    /// Default 0.05: the ~0.6 µs an item costs both sides is worth 0.05 bytes on a link of
    /// ~0.7 Mb/s, so bytes come first, yet at 10^7 keys the 450 KB price of sketching
    /// everything makes the planner descend two levels (a few KB of hashes) first.
    pub item_cost_bytes: f64,
    /// Planner: bytes one more round trip is worth. Default 1,000 (a LAN round trip of
    /// ~0.1 ms at ~100 Mb/s).
    pub round_trip_cost_bytes: f64,
    /// While no symbol received has shown itself free of differing keys (the difference
    /// may be far larger than the symbols so far), a request for more asks at least this
    /// factor of those received. Default 2: each step at most doubles the bytes sent, so an
    /// overshoot past the need stays under 2x; 3 saves a step or two at large `d` but
    /// overshot at d = 100 (stream 1.91x of the ideal instead of 1.83x, 10^5 keys).
    pub riblt_growth: f64,
    /// Planner: most items a syndrome sketch ([`crate::sketch`]) may cover; past it the
    /// planner streams RIBLT. Each item enters about 40 sums on each side (~9 ns each):
    /// ~0.35 µs of CPU an item a session against RIBLT's ~0.6 µs a batch walk, so the
    /// default is RIBLT's budget, 2^20. Zero never sketches by syndromes.
    pub sketch_item_budget: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            shape: Shape::default(),
            method: Method::Planned,
            max_message_bytes: 60_000,
            max_step_bytes: 64 << 20,
            max_sessions: 16,
            retransmit: Duration::from_secs(1),
            max_retries: 4,
            max_restarts: 2,
            max_differences: 1_000_000,
            riblt_item_budget: 1 << 20,
            item_cost_bytes: 0.05,
            round_trip_cost_bytes: 1_000.0,
            riblt_growth: 2.0,
            sketch_item_budget: 1 << 20,
        }
    }
}

/// Bytes a fragment adds around its data (envelope, tag, session, step, kind, index,
/// count, length), at most.
pub(crate) const FRAGMENT_OVERHEAD: usize = 2 + 1 + 10 + 1 + 5 + 1 + 3 + 3 + 5;

impl Config {
    /// Checks the configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: &'static str| Err(Error::InvalidConfig(what));
        if !self.shape.is_valid() {
            return bad("shape: fanout_bits in 1..=8 and fanout_bits * depth <= 24");
        }
        if self.max_message_bytes < FRAGMENT_OVERHEAD + 64 {
            return bad("max_message_bytes below 100");
        }
        if self.max_step_bytes / (self.max_message_bytes - FRAGMENT_OVERHEAD)
            > usize::from(u16::MAX)
        {
            return bad("max_step_bytes needs more than 65535 fragments");
        }
        if self.max_sessions == 0 {
            return bad("max_sessions is 0");
        }
        if self.retransmit.is_zero() {
            return bad("retransmit is zero");
        }
        if self.max_differences == 0 {
            return bad("max_differences is 0");
        }
        if !(self.item_cost_bytes >= 0.0 && self.round_trip_cost_bytes >= 0.0) {
            return bad("item_cost_bytes or round_trip_cost_bytes negative or NaN");
        }
        if !(self.riblt_growth > 1.0 && self.riblt_growth <= 16.0) {
            return bad("riblt_growth not in (1, 16]");
        }
        Ok(())
    }

    /// Most symbols a session sends or accepts: enough for `max_differences` at a margin.
    #[must_use]
    pub fn max_symbols(&self) -> u64 {
        (self.max_differences as u64)
            .saturating_mul(3)
            .saturating_add(64)
    }

    /// The planner's prices.
    #[must_use]
    pub fn costs(&self) -> crate::planner::Costs {
        crate::planner::Costs {
            item_budget: self.riblt_item_budget,
            sketch_items: self.sketch_item_budget,
            item_bytes: self.item_cost_bytes,
            round_trip_bytes: self.round_trip_cost_bytes,
        }
    }

    /// Bytes of step data per fragment.
    pub(crate) fn fragment_data(&self) -> usize {
        self.max_message_bytes - FRAGMENT_OVERHEAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_fields_are_named() {
        assert_eq!(Config::default().validate(), Ok(()));
        let c = Config {
            max_sessions: 0,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(Error::InvalidConfig("max_sessions is 0")));
        let c = Config {
            riblt_growth: 1.0,
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
