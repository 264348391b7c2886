//! What a run measured: messages and bytes per node, per kind and in total, drops by
//! reason, application events, and the trace hash.

use std::time::Duration;

use serde::Serialize;

/// A count of messages and the bytes they took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counter {
    /// Messages.
    pub messages: u64,
    /// Bytes on the wire.
    pub bytes: u64,
}

impl Counter {
    pub(crate) fn add(&mut self, bytes: u32) {
        self.messages += 1;
        self.bytes += u64::from(bytes);
    }
}

/// Traffic of one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NodeMetrics {
    /// What the node sent (including messages the network then lost).
    pub sent: Counter,
    /// What was delivered to the node.
    pub received: Counter,
}

/// Traffic of one message kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KindMetrics {
    /// The kind's name, from [`Wire::kind`](crate::Wire::kind).
    pub kind: &'static str,
    /// Sent by machines.
    pub sent: Counter,
    /// Delivered to machines.
    pub received: Counter,
    /// Dropped by the network, for any reason.
    pub dropped: u64,
}

/// Why the network did not deliver a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Random loss on the link.
    Loss,
    /// Sender and receiver on different sides of a partition.
    Partition,
    /// The receiver was crashed when the message arrived (or, on connection transports,
    /// when it was sent).
    Crashed,
    /// Addressed to a peer the simulation does not know.
    UnknownPeer,
    /// Refused by the scenario's filter ([`Sim::set_filter`](crate::Sim::set_filter)).
    Filtered,
}

/// Messages the network did not deliver, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Drops {
    /// Random loss.
    pub loss: u64,
    /// Across a partition.
    pub partition: u64,
    /// To a crashed node.
    pub crashed: u64,
    /// To an unknown peer.
    pub unknown_peer: u64,
    /// Refused by the scenario's filter.
    pub filtered: u64,
}

impl Drops {
    /// All drops.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.loss + self.partition + self.crashed + self.unknown_peer + self.filtered
    }

    fn count(&mut self, reason: DropReason) {
        match reason {
            DropReason::Loss => self.loss += 1,
            DropReason::Partition => self.partition += 1,
            DropReason::Crashed => self.crashed += 1,
            DropReason::UnknownPeer => self.unknown_peer += 1,
            DropReason::Filtered => self.filtered += 1,
        }
    }
}

/// Network-wide counters of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Metrics {
    /// Everything machines sent.
    pub sent: Counter,
    /// Everything delivered to machines (duplicates included).
    pub delivered: Counter,
    /// Extra copies the network made.
    pub duplicated: u64,
    /// What the network did not deliver.
    pub drops: Drops,
    /// Per message kind, in order of first appearance.
    pub kinds: Vec<KindMetrics>,
    /// Timer expiries delivered to machines.
    pub timeouts: u64,
    /// Link-down notifications delivered to machines.
    pub link_downs: u64,
    /// Application events emitted.
    pub events: u64,
}

impl Metrics {
    /// The index of `kind` in [`Metrics::kinds`], adding it on first sight. Kinds are a
    /// handful of `&'static str`, so a pointer-first linear scan beats hashing.
    pub(crate) fn kind_id(&mut self, kind: &'static str) -> u16 {
        let found = self
            .kinds
            .iter()
            .position(|k| std::ptr::eq(k.kind, kind) || k.kind == kind);
        let i = found.unwrap_or_else(|| {
            self.kinds.push(KindMetrics {
                kind,
                ..KindMetrics::default()
            });
            self.kinds.len() - 1
        });
        // More than 65,536 distinct variant names is not a message type.
        u16::try_from(i).expect("fewer than 65536 message kinds")
    }

    pub(crate) fn on_send(&mut self, kind: u16, bytes: u32) {
        self.sent.add(bytes);
        self.kinds[usize::from(kind)].sent.add(bytes);
    }

    pub(crate) fn on_deliver(&mut self, kind: u16, bytes: u32) {
        self.delivered.add(bytes);
        self.kinds[usize::from(kind)].received.add(bytes);
    }

    pub(crate) fn on_drop(&mut self, kind: u16, reason: DropReason) {
        self.drops.count(reason);
        self.kinds[usize::from(kind)].dropped += 1;
    }

    /// The metrics of kind `name`.
    #[must_use]
    pub fn kind(&self, name: &str) -> Option<&KindMetrics> {
        self.kinds.iter().find(|k| k.kind == name)
    }
}

/// One application event, with when and where it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord<P, E> {
    /// Virtual time since the start of the simulation.
    pub at: Duration,
    /// The node that emitted it.
    pub node: P,
    /// The event.
    pub event: E,
}

/// A running hash of everything the simulation did, in order: two runs with the same
/// hash made the same decisions at the same virtual times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceHash(u64);

impl TraceHash {
    pub(crate) fn new(seed: u64) -> Self {
        let mut h = Self(0xcbf2_9ce4_8422_2325);
        h.mix(seed);
        h
    }

    /// Folds one word in (FxHash's multiply-rotate, good enough to tell traces apart).
    pub(crate) fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    pub(crate) fn value(self) -> u64 {
        // A final avalanche so that nearby traces give unrelated hashes.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_interned_once() {
        let mut m = Metrics::default();
        let a = m.kind_id("ping");
        let b = m.kind_id("ack");
        assert_eq!(m.kind_id("ping"), a);
        assert_ne!(a, b);
        m.on_send(a, 10);
        m.on_send(a, 5);
        m.on_deliver(a, 10);
        m.on_drop(a, DropReason::Loss);
        let ping = m.kind("ping").expect("interned");
        assert_eq!(
            ping.sent,
            Counter {
                messages: 2,
                bytes: 15
            }
        );
        assert_eq!(
            ping.received,
            Counter {
                messages: 1,
                bytes: 10
            }
        );
        assert_eq!(ping.dropped, 1);
        assert_eq!(m.drops.total(), 1);
    }

    #[test]
    fn trace_hash_depends_on_order() {
        let mut a = TraceHash::new(1);
        let mut b = TraceHash::new(1);
        a.mix(1);
        a.mix(2);
        b.mix(2);
        b.mix(1);
        assert_ne!(a.value(), b.value());
        assert_ne!(TraceHash::new(1).value(), TraceHash::new(2).value());
    }
}
