//! Read access to a [`Sim`], for scenarios, invariants and reports.

use std::time::{Duration, Instant};

use epidemic_core::Machine;

use super::Sim;
use crate::config::SimConfig;
use crate::metrics::{EventRecord, Metrics, NodeMetrics};

/// Read access, for scenarios, invariants and reports.
impl<M: Machine> Sim<M> {
    /// The seed of this run.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Virtual time since the start.
    #[must_use]
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    /// Virtual now as the `Instant` machines see.
    #[must_use]
    pub fn instant(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.now)
    }

    /// Converts an `Instant` a machine reported back to virtual time since the start.
    #[must_use]
    pub fn virtual_time(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.epoch)
    }

    /// The machine of `peer`, crashed or not.
    #[must_use]
    pub fn node(&self, peer: &M::Peer) -> Option<&M> {
        self.lookup
            .get(peer)
            .map(|&id| &self.nodes[id as usize].machine)
    }

    /// Whether `peer` exists and is up.
    #[must_use]
    pub fn is_up(&self, peer: &M::Peer) -> bool {
        self.lookup
            .get(peer)
            .is_some_and(|&id| self.nodes[id as usize].up)
    }

    /// Every node in peer order: `(peer, machine, up)`.
    pub fn nodes(&self) -> impl Iterator<Item = (&M::Peer, &M, bool)> {
        self.index.iter().map(|(p, &id)| {
            let n = &self.nodes[id as usize];
            (p, &n.machine, n.up)
        })
    }

    /// How many nodes exist (up or crashed).
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Network-wide counters.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The traffic of one node.
    #[must_use]
    pub fn node_metrics(&self, peer: &M::Peer) -> Option<&NodeMetrics> {
        self.lookup
            .get(peer)
            .map(|&id| &self.nodes[id as usize].metrics)
    }

    /// Every application event so far, in the order emitted (if
    /// [`SimConfig::record_events`]).
    #[must_use]
    pub fn events(&self) -> &[EventRecord<M::Peer, M::Event>] {
        &self.events
    }

    /// Takes the recorded events, leaving none.
    pub fn take_events(&mut self) -> Vec<EventRecord<M::Peer, M::Event>> {
        std::mem::take(&mut self.events)
    }

    /// Events in the queue that are still to happen (stale timers excluded).
    #[must_use]
    pub fn pending(&self) -> usize {
        self.queue.len() - self.stale
    }

    /// The hash of everything that happened so far, in order.
    #[must_use]
    pub fn trace_hash(&self) -> u64 {
        self.trace.value()
    }

    /// The last [`SimConfig::flight_recorder`] steps, oldest first, one line each: what a
    /// failed invariant prints before the seed.
    #[must_use]
    pub fn recent_steps(&self) -> Vec<String> {
        self.recorder.lines(
            |id| format!("{:?}", self.peers[id as usize]),
            |k| {
                self.metrics
                    .kinds
                    .get(usize::from(k))
                    .map_or("?", |m| m.kind)
            },
        )
    }
}
