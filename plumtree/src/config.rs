//! [`Config`]: timers, thresholds and bounds, with the paper's or iroh-gossip's values as
//! defaults.

use std::time::Duration;

use crate::error::Error;

/// The parameters of a [`Plumtree`](crate::Plumtree) node.
///
/// The paper (Leitão, Pereira, Rodrigues, SRDS 2007) names the mechanisms but leaves most
/// values to the deployment; where it gives none, the default is iroh-gossip's (its
/// `proto/plumtree.rs` `Config`) or ours, as noted on each field. Every bound is a bound on
/// state a peer could otherwise grow; what is dropped at a bound is counted in
/// [`Stats`](crate::Stats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest message we send or accept a broadcast for, envelope included; IHAVE batches
    /// are packed up to it. iroh-gossip: 4096 bytes.
    pub max_message_size: usize,
    /// How long IHAVE announcements to lazy peers are batched before they are sent (the
    /// paper's lazy-push policy). Ours: 20 ms (iroh-gossip dispatches after 5 ms; a longer
    /// batch packs more ids per message, a shorter one grafts sooner).
    pub ihave_interval: Duration,
    /// How long after an IHAVE for an unknown message we wait for the payload before we
    /// GRAFT the announcer (the paper's `timeout1`). Ours: 300 ms (iroh-gossip: 80 ms).
    /// It must exceed the spread between the tree's longest path and an announcement's
    /// shortest (≈150 ms over 12 tree hops of 10–15 ms links): an earlier GRAFT fetches a
    /// payload that is on its way, adds a link that a later message has to prune again, and
    /// under concurrent senders keeps the tree in churn (burst RMR 0.35 at 80 ms, 0.05 at
    /// 300 ms in `epidemic-sim plumtree`, 1,000 nodes, seed 0, without `prune_grace`).
    pub graft_timeout_1: Duration,
    /// The shorter wait before the next announcer is grafted (the paper's `timeout2`).
    /// iroh-gossip: 40 ms.
    pub graft_timeout_2: Duration,
    /// The optimisation: when an IHAVE announces a message with a round lower by more
    /// than this than the round the payload came with, the lazy link replaces the eager
    /// one (within [`repair_window`](Config::repair_window) of a neighbour change,
    /// [`repair_threshold`](Config::repair_threshold) instead). iroh-gossip: 7. Ours: 16,
    /// so that only the long detours a cascade of repairs leaves are straightened once the
    /// overlay is stable: there, a swap shortens one sender's path and lengthens others'.
    /// With random senders swaps made the tree deeper, and under bursts they cut links
    /// that concurrent messages were using (`epidemic-sim plumtree`, 1,000 nodes, seeds
    /// 0–7, LDH over flooding's and RMR: random senders 1.84× at 7 without the window,
    /// 1.71× at 10, 1.70× at 16; bursts 2.43× and 0.087, 1.91× and 0.037, 1.79× and 0.008).
    pub optimization_threshold: u16,
    /// The optimisation's threshold for [`repair_window`](Config::repair_window) after one
    /// of our neighbours came up or went down: the tree a repair leaves is made of pieces
    /// joined wherever they met, and low thresholds straighten it. Ours: 2 (after
    /// 20/40/60/80% failures, LDH over flooding's 2.22, 1.84, 1.49, 1.42 at 2, 2.50, 1.96,
    /// 1.52, 1.47 at 7; 1,000 nodes, seeds 0–7).
    pub repair_threshold: u16,
    /// How long after a neighbour change [`repair_threshold`](Config::repair_threshold)
    /// applies; zero never (the paper's single threshold). Ours: 30 s (a mass failure's
    /// repair lasts a few seconds; the overlay keeps adding links for longer).
    pub repair_window: Duration,
    /// When a neighbour goes down, and when one comes up within
    /// [`repair_window`](Config::repair_window) of such a loss, every lazy neighbour
    /// becomes eager and is sent a GRAFT (without id) so it pushes to us too: the next
    /// payloads flood the region being rewired and their duplicates prune it into a
    /// shortest-path tree, instead of keeping the pieces the first grafts joined wherever
    /// they met. Ours: true. After 20/40/60/80% failures, LDH over flooding's 2.75, 2.25,
    /// 1.80, 1.70 without, 2.22, 1.84, 1.49, 1.42 with (their RMR 0.16–0.29 without,
    /// 0.44–0.63 with; `epidemic-sim plumtree`, 1,000 nodes, seeds 0–7). A stable overlay
    /// loses no neighbour and is unaffected.
    pub eager_on_loss: bool,
    /// Whether duplicates prune links. `false` turns Plumtree into eager flooding over the
    /// same neighbours (the baseline the simulator compares against). Ours: true.
    pub prune: bool,
    /// A duplicate from a neighbour that delivered us another message first, or that we
    /// forwarded one of our last two other messages to, less than this ago does not prune
    /// it: with concurrent senders, two messages crossing on a cycle would each cut a
    /// different link of it and split the tree. Ours: 500 ms (a burst's spread); zero is
    /// the paper's rule. Protecting both directions of the links other messages use
    /// stopped the graft cascades that split trees set off under bursts (burst LDH over
    /// flooding's 1.79× and RMR 0.008 with the delivering direction only, worst seed
    /// 2.30× and 0.060; 1.72× and 0.001 with both, worst 1.76× and 0.004; after
    /// 20/40/60/80% failures 2.22/1.84/1.49/1.42× then, 1.88/1.63/1.29/1.33× now, for RMR
    /// 0.44–0.63 then and 0.63–0.91 now; `epidemic-sim plumtree`, 1,000 nodes, seeds
    /// 0–7).
    pub prune_grace: Duration,
    /// Most prunes of one link the grace defers in a row (the count restarts after a
    /// grace period without one); the next duplicate prunes. Without it a link in steady
    /// traffic (a message every few ms) is always within its grace and the tree never
    /// forms: RMR 1.55 at one broadcast per 5 ms, 1,000 nodes. Ours: 4.
    pub max_prune_deferrals: u32,
    /// How long a delivered payload stays cached to serve GRAFTs and announce to new
    /// neighbours. iroh-gossip: 30 s.
    pub payload_ttl: Duration,
    /// Most payloads cached at once; the oldest is evicted first. Ours: 4096.
    pub max_cached_payloads: usize,
    /// Most payload bytes cached at once; the oldest is evicted first. Ours: 16 MiB.
    pub max_cached_bytes: usize,
    /// How long a received message id is remembered to recognise duplicates.
    /// iroh-gossip: 90 s.
    pub received_ttl: Duration,
    /// Most message ids remembered; the oldest is forgotten first. Ours: 65,536.
    pub max_received: usize,
    /// Most neighbours (eager plus lazy). Ours: 64 (HyParView keeps 5).
    pub max_neighbors: usize,
    /// Most messages missing at once (announced, payload not yet here). Ours: 4096.
    pub max_missing: usize,
    /// Most announcers remembered per missing message, grafted in turn. Ours: 8.
    pub max_announcers: usize,
    /// Most IHAVE entries queued for one peer between two flushes. Ours: 4096 (the
    /// payload cache's size: enough to announce all of it to a new neighbour).
    pub max_ihave_queue: usize,
    /// Most entries of one received IHAVE that are looked at; the rest are dropped and
    /// counted as hostile. Ours: 512 (a 4096-byte IHAVE holds at most 240).
    pub max_ihave_entries: usize,
    /// GRAFTs with an id a peer may have answered with a payload beyond the ids we
    /// announced to it: each id we announce to a peer gives it one more, up to
    /// [`max_graft_credit`](Config::max_graft_credit). Ours: 16.
    pub initial_graft_credit: u32,
    /// Ceiling of a peer's GRAFT credit, so no peer can make us send unbounded data. Ours:
    /// 8192.
    pub max_graft_credit: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_message_size: 4096,
            ihave_interval: Duration::from_millis(20),
            graft_timeout_1: Duration::from_millis(300),
            graft_timeout_2: Duration::from_millis(40),
            optimization_threshold: 16,
            repair_threshold: 2,
            repair_window: Duration::from_secs(30),
            eager_on_loss: true,
            prune: true,
            prune_grace: Duration::from_millis(500),
            max_prune_deferrals: 4,
            payload_ttl: Duration::from_secs(30),
            max_cached_payloads: 4096,
            max_cached_bytes: 16 << 20,
            received_ttl: Duration::from_secs(90),
            max_received: 65_536,
            max_neighbors: 64,
            max_missing: 4096,
            max_announcers: 8,
            max_ihave_queue: 4096,
            max_ihave_entries: 512,
            initial_graft_credit: 16,
            max_graft_credit: 8192,
        }
    }
}

impl Config {
    /// Eager flooding over the same neighbours: duplicates never prune, so every node
    /// forwards every message to every neighbour but the sender.
    #[must_use]
    pub fn flooding() -> Self {
        Self {
            prune: false,
            ..Self::default()
        }
    }

    /// Checks the configuration (done by [`Plumtree::new`](crate::Plumtree::new)).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: &'static str| Err(Error::InvalidConfig(what));
        if self.max_message_size < crate::message::MIN_MESSAGE_SIZE {
            return bad("max_message_size must hold at least one IHAVE entry");
        }
        if self.ihave_interval.is_zero()
            || self.graft_timeout_1.is_zero()
            || self.graft_timeout_2.is_zero()
        {
            return bad("ihave_interval and the graft timeouts must be positive");
        }
        let day = Duration::from_secs(86_400);
        if [
            self.ihave_interval,
            self.graft_timeout_1,
            self.graft_timeout_2,
            self.payload_ttl,
            self.received_ttl,
            self.repair_window,
        ]
        .iter()
        .any(|d| *d > day)
        {
            // Deadlines are `now + duration`: keep them far from the end of time.
            return bad("timers and TTLs must be at most a day");
        }
        if self.max_received == 0 || self.received_ttl < self.payload_ttl {
            return bad("received ids must be kept at least as long as payloads");
        }
        if self.max_announcers == 0 {
            return bad("max_announcers must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_ones_refused() {
        assert_eq!(Config::default().validate(), Ok(()));
        assert_eq!(Config::flooding().validate(), Ok(()));
        for c in [
            Config {
                max_message_size: 10,
                ..Config::default()
            },
            Config {
                ihave_interval: Duration::ZERO,
                ..Config::default()
            },
            Config {
                received_ttl: Duration::from_secs(1),
                ..Config::default()
            },
            Config {
                max_announcers: 0,
                ..Config::default()
            },
            Config {
                graft_timeout_1: Duration::MAX,
                ..Config::default()
            },
            Config {
                repair_window: Duration::MAX,
                ..Config::default()
            },
        ] {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
