//! [`Config`]: view sizes, walk lengths and timers, with the paper's values as defaults.

use std::time::Duration;

use crate::error::Error;

/// The parameters of a [`HyParView`](crate::HyParView) node.
///
/// The defaults are the paper's (Leitão, Pereira, Rodrigues, DSN 2007, §5 and TR-07-13 §6)
/// for a 10,000-node overlay; the timers the paper leaves to the deployment come from
/// iroh-gossip or from the simulation's own round, each noted on its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Active view capacity: the symmetric neighbours a node keeps open links to.
    /// Paper: `log10(n) + 1`, 5 for 10,000 nodes.
    pub active_capacity: usize,
    /// Passive view capacity: the backup peers a node knows but is not connected to.
    /// Paper: `k · (log10(n) + 1)` with `k = 6`, 30 for 10,000 nodes.
    pub passive_capacity: usize,
    /// Active Random Walk Length: hops a `ForwardJoin` travels before the joiner is taken
    /// into an active view. Paper: ARWL = 6.
    pub active_walk_length: u8,
    /// Passive Random Walk Length: the walk's TTL at which the joiner is put in a passive
    /// view. Paper: PRWL = 3.
    pub passive_walk_length: u8,
    /// Hops a `Shuffle` travels before it is answered. Paper: 6 (the same as ARWL).
    pub shuffle_walk_length: u8,
    /// Active-view entries a shuffle carries (ka). Paper: 3.
    pub shuffle_active: usize,
    /// Passive-view entries a shuffle carries (kp). Paper: 4.
    pub shuffle_passive: usize,
    /// Time between two shuffles of one node: the protocol's round. The paper counts in
    /// cycles; 10 s is our simulation round (iroh-gossip uses 60 s).
    pub shuffle_interval: Duration,
    /// How long a `Join` or `Neighbor` request waits for its answer before the peer is taken
    /// as failed. iroh-gossip: 3 s (a dial and a round trip on a slow network).
    pub neighbor_timeout: Duration,
    /// At most this many requests (`Join`, `Neighbor`) outstanding at once; a request past
    /// the bound is not sent and is counted. Ours: twice the active capacity, so a flood of
    /// forwarded joins cannot make a node keep unbounded state.
    pub max_pending: usize,
    /// Largest opaque per-peer data accepted (a dialing address, a public key); larger data
    /// is refused locally and dropped (and counted) from peers. Ours: 512 bytes.
    pub max_peer_data: usize,
    /// Contacts remembered for rejoining. Ours: 8.
    pub max_contacts: usize,
    /// First wait before a node whose views cannot be refilled rejoins through a contact;
    /// doubles after each try. Ours: one shuffle round.
    pub rejoin_backoff: Duration,
    /// Longest wait between two rejoin attempts. Ours: 8 rounds.
    pub rejoin_backoff_max: Duration,
    /// Neighbours lost to a broken link that are remembered and asked again (with high
    /// priority) after a backoff, so that an overlay split by a partition merges when it
    /// heals. Ours: the active capacity (0 turns reconnection off).
    pub reconnect_capacity: usize,
    /// Tries to reconnect one lost neighbour before it is forgotten; waits start at
    /// [`shuffle_interval`](Config::shuffle_interval) and double. Ours: 6 (tries 1, 2, 4,
    /// 8, 16 and 32 rounds after the loss).
    pub reconnect_attempts: u8,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            active_capacity: 5,
            passive_capacity: 30,
            active_walk_length: 6,
            passive_walk_length: 3,
            shuffle_walk_length: 6,
            shuffle_active: 3,
            shuffle_passive: 4,
            shuffle_interval: Duration::from_secs(10),
            neighbor_timeout: Duration::from_secs(3),
            max_pending: 10,
            max_peer_data: 512,
            max_contacts: 8,
            rejoin_backoff: Duration::from_secs(10),
            rejoin_backoff_max: Duration::from_secs(80),
            reconnect_capacity: 5,
            reconnect_attempts: 6,
        }
    }
}

impl Config {
    /// The paper's sizing for an overlay of `n` nodes: active `⌈log10 n⌉ + 1` (at least 2),
    /// passive six times that; everything else default.
    #[must_use]
    pub fn for_network_size(n: usize) -> Self {
        let mut digits = 0usize;
        let mut x = n.max(1);
        while x >= 10 {
            x /= 10;
            digits += 1;
        }
        let active = (digits + 1).max(2);
        Self {
            active_capacity: active,
            passive_capacity: 6 * active,
            max_pending: 2 * active,
            reconnect_capacity: active,
            ..Self::default()
        }
    }

    /// Checks the configuration (done by [`HyParView::new`](crate::HyParView::new)).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: &'static str| Err(Error::InvalidConfig(what));
        if self.active_capacity == 0 {
            return bad("active_capacity must be at least 1");
        }
        if self.max_pending == 0 {
            return bad("max_pending must be at least 1");
        }
        if self.passive_walk_length > self.active_walk_length {
            return bad("passive_walk_length must not exceed active_walk_length");
        }
        if self.shuffle_interval.is_zero() || self.neighbor_timeout.is_zero() {
            return bad("shuffle_interval and neighbor_timeout must be positive");
        }
        if self.rejoin_backoff.is_zero() || self.rejoin_backoff_max < self.rejoin_backoff {
            return bad("rejoin_backoff must be positive and at most rejoin_backoff_max");
        }
        Ok(())
    }

    /// The most entries a shuffle or a shuffle reply may carry: ka + kp + the origin.
    #[must_use]
    pub fn shuffle_len(&self) -> usize {
        self.shuffle_active + self.shuffle_passive + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers_and_valid() {
        let c = Config::default();
        assert_eq!((c.active_capacity, c.passive_capacity), (5, 30));
        assert_eq!((c.active_walk_length, c.passive_walk_length), (6, 3));
        assert_eq!(
            (c.shuffle_active, c.shuffle_passive, c.shuffle_len()),
            (3, 4, 8)
        );
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(Config::for_network_size(10_000).active_capacity, 5);
        assert_eq!(Config::for_network_size(10_000).passive_capacity, 30);
        assert_eq!(Config::for_network_size(100).active_capacity, 3);
        assert_eq!(Config::for_network_size(1).active_capacity, 2);
    }

    #[test]
    fn bad_configs_are_refused() {
        let c = Config {
            active_capacity: 0,
            ..Config::default()
        };
        assert!(c.validate().is_err());
        let c = Config {
            passive_walk_length: 7,
            ..Config::default()
        };
        assert!(c.validate().is_err());
        let c = Config {
            rejoin_backoff_max: Duration::from_secs(1),
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
