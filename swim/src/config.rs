//! Configuration, with memberlist's LAN / WAN / local presets.
//!
//! Every default names its source. "memberlist" means HashiCorp memberlist's
//! `DefaultLANConfig` (and `DefaultWANConfig`, `DefaultLocalConfig` for the other presets);
//! bounds memberlist leaves open are ours and say so.

use std::time::Duration;

use crate::error::ConfigError;

/// Which Lifeguard extensions are on (Dadgar, Phillips, Currey, "Lifeguard: Local Health
/// Awareness for More Accurate Failure Detection", 2018).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifeguard {
    /// Local health multiplier: stretch our own probe interval and timeout while we miss
    /// acks and nacks (memberlist's awareness).
    pub local_health: bool,
    /// Suspicion timeout starts at its maximum and shrinks toward its minimum as
    /// independent confirmations arrive.
    pub dynamic_suspicion: bool,
    /// Ping-req helpers answer with a nack when the target stays silent.
    pub nack: bool,
    /// A ping to a suspected member carries the suspicion, so it refutes at once.
    pub buddy: bool,
}

impl Lifeguard {
    /// Every extension on (memberlist's behaviour).
    pub const ON: Lifeguard = Lifeguard {
        local_health: true,
        dynamic_suspicion: true,
        nack: true,
        buddy: true,
    };
    /// Plain SWIM with suspicion: a fixed suspicion timeout, no nacks, no local health.
    pub const OFF: Lifeguard = Lifeguard {
        local_health: false,
        dynamic_suspicion: false,
        nack: false,
        buddy: false,
    };
}

/// A SWIM node's configuration. Build one from [`Config::lan`], [`Config::wan`] or
/// [`Config::local`] and adjust; [`Swim::new`](crate::Swim::new) validates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Time between two probes (the protocol period). memberlist: 1 s.
    pub probe_interval: Duration,
    /// How long to wait for a direct ack before asking helpers. memberlist: 500 ms.
    pub probe_timeout: Duration,
    /// Helpers asked per indirect probe (the paper's k). memberlist: 3.
    pub indirect_checks: usize,
    /// When the ping-reqs go out, also ping the target directly once more. memberlist's
    /// TCP fallback ping (on unless `DisableTcpPings`), sent here as one more datagram: a
    /// live target behind a lossy link then needs its first ping, the second ping and all
    /// k indirect paths to fail before it is suspected. Ours: on.
    pub fallback_ping: bool,
    /// λ: each update is sent λ·⌈log10(N+1)⌉ times. memberlist: 4.
    pub retransmit_mult: u32,
    /// Suspicion timeout minimum = mult · max(1, log10 N) · probe interval. memberlist: 4.
    pub suspicion_mult: u32,
    /// Suspicion timeout maximum = this · the minimum (Lifeguard). memberlist: 6.
    pub suspicion_max_timeout_mult: u32,
    /// Full-state exchange with one random member, scaled up past 32 members as memberlist
    /// does. memberlist: 30 s. Zero disables it.
    pub push_pull_interval: Duration,
    /// Open each periodic push-pull with a 16-byte digest of the table and exchange the
    /// full state only when the peer's digest differs. Ours: on (memberlist always sends
    /// the full state: 37 packets each way per exchange at N = 10,000 with u64 addresses).
    /// Joins always exchange the full state. The digest is a message older nodes of wire
    /// version 2 cannot decode (they drop it and count it malformed): turn this off for a
    /// rolling upgrade from them.
    pub push_pull_digest: bool,
    /// Gossip pending updates to `gossip_nodes` members this often (only when there is
    /// something to send). memberlist: 200 ms. Zero disables it (pure piggybacking, as in
    /// the SWIM paper).
    pub gossip_interval: Duration,
    /// Members gossiped to per gossip interval. memberlist: 3.
    pub gossip_nodes: usize,
    /// How long a Dead or Left tombstone is kept. memberlist: `GossipToTheDeadTime`, 30 s.
    pub dead_retention: Duration,
    /// Upper bound of the local health multiplier. memberlist: `AwarenessMaxMultiplier`, 8.
    pub awareness_max_multiplier: u32,
    /// Largest datagram, envelope included. memberlist: `UDPBufferSize`, 1400.
    pub max_packet_size: usize,
    /// Largest member metadata in bytes. memberlist: `MetaMaxSize`, 512.
    pub max_meta_len: usize,
    /// Most members kept (tombstones included). Ours: 65,536.
    pub max_members: usize,
    /// Most updates waiting for dissemination. Ours, after serf's `MaxQueueDepth`: 4,096.
    pub max_queue: usize,
    /// Most ping-reqs relayed for others at once. Ours: 256.
    pub max_relays: usize,
    /// User broadcast ids remembered to deliver each once. Ours: 4,096.
    pub max_seen_broadcasts: usize,
    /// Time between join attempts. Ours: 1 s.
    pub join_retry_interval: Duration,
    /// Join attempts before giving up. Ours: 5.
    pub join_attempts: u32,
    /// The Lifeguard extensions. memberlist: all on.
    pub lifeguard: Lifeguard,
}

impl Default for Config {
    /// [`Config::lan`].
    fn default() -> Self {
        Self::lan()
    }
}

impl Config {
    /// memberlist's `DefaultLANConfig`: a data-centre network.
    #[must_use]
    pub fn lan() -> Self {
        Self {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_checks: 3,
            fallback_ping: true,
            retransmit_mult: 4,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            push_pull_interval: Duration::from_secs(30),
            push_pull_digest: true,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            dead_retention: Duration::from_secs(30),
            awareness_max_multiplier: 8,
            max_packet_size: 1400,
            max_meta_len: 512,
            max_members: 65_536,
            max_queue: 4096,
            max_relays: 256,
            max_seen_broadcasts: 4096,
            join_retry_interval: Duration::from_secs(1),
            join_attempts: 5,
            lifeguard: Lifeguard::ON,
        }
    }

    /// memberlist's `DefaultWANConfig`: higher latency, slower probes.
    #[must_use]
    pub fn wan() -> Self {
        Self {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            suspicion_mult: 6,
            push_pull_interval: Duration::from_secs(60),
            gossip_interval: Duration::from_millis(500),
            gossip_nodes: 4,
            dead_retention: Duration::from_secs(60),
            ..Self::lan()
        }
    }

    /// memberlist's `DefaultLocalConfig`: loopback or a very fast local network.
    #[must_use]
    pub fn local() -> Self {
        Self {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(200),
            indirect_checks: 1,
            retransmit_mult: 2,
            suspicion_mult: 3,
            push_pull_interval: Duration::from_secs(15),
            gossip_interval: Duration::from_millis(100),
            dead_retention: Duration::from_secs(15),
            ..Self::lan()
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// The first field that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, why: &'static str| Err(ConfigError { field, why });
        if self.probe_interval.is_zero() {
            return bad("probe_interval", "must be positive");
        }
        if self.probe_timeout.is_zero() || self.probe_timeout > self.probe_interval {
            return bad(
                "probe_timeout",
                "must be positive and at most probe_interval",
            );
        }
        if self.retransmit_mult == 0 {
            return bad("retransmit_mult", "must be at least 1");
        }
        if self.suspicion_mult == 0 || self.suspicion_max_timeout_mult == 0 {
            return bad("suspicion_mult", "multipliers must be at least 1");
        }
        if self.awareness_max_multiplier == 0 {
            return bad("awareness_max_multiplier", "must be at least 1");
        }
        if self.max_packet_size < 64 {
            return bad("max_packet_size", "must be at least 64 bytes");
        }
        if self.max_meta_len + 64 > self.max_packet_size {
            return bad(
                "max_meta_len",
                "an Alive with metadata must fit in a packet",
            );
        }
        if self.max_members == 0 || self.max_queue == 0 || self.max_seen_broadcasts == 0 {
            return bad("max_members", "bounds must be at least 1");
        }
        if self.join_retry_interval.is_zero() {
            return bad("join_retry_interval", "must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_memberlists_and_valid() {
        for c in [Config::lan(), Config::wan(), Config::local()] {
            c.validate().unwrap();
        }
        assert_eq!(Config::wan().probe_interval, Duration::from_secs(5));
        assert_eq!(Config::local().indirect_checks, 1);
        let mut c = Config::lan();
        c.probe_timeout = Duration::from_secs(2);
        assert_eq!(c.validate().unwrap_err().field, "probe_timeout");
    }
}
