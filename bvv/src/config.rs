//! Tunables of a [`Bvv`](crate::Bvv) node, each default with where it comes from.

use std::time::Duration;

use crate::error::Error;

/// The configuration of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Time between two syncs this node starts, each with one random peer.
    /// Default 1 s: DottedDB runs node-wide anti-entropy as a periodic background task;
    /// one second keeps an idle cluster's traffic to one clock per node per second.
    pub sync_interval: Duration,
    /// Largest sync message in bytes, envelope included; bigger replies are split.
    /// Default 60,000: under a 64 KiB UDP datagram with room for headers.
    pub max_message_bytes: usize,
    /// Most keys one sync reply carries (the rest travel in the next sync; a full
    /// transfer goes page by page), bounding the work and the outbox of one input.
    /// Default 10,000: a few hundred bounded messages per sync at 100-byte values.
    pub max_keys_per_sync: usize,
    /// Whether a write is pushed to every other member at once (DottedDB replicates
    /// each write to the key's replicas); sync repairs what the push missed. Default on.
    pub push_writes: bool,
    /// With `push_writes`, a reply leaves out dots logged here less than this long ago:
    /// their push is most likely still in flight to the requester, and shipping them
    /// again would be waste; a later sync ships them if the push was lost. Default 50 ms:
    /// a few one-way LAN latencies (the simulator's default link is 10 ± 5 ms).
    pub sync_grace: Duration,
    /// Most dots the dot→key log holds; at the bound, writes are refused and received
    /// dots wait for a later sync. Default 4,194,304 (a long outage of a busy peer).
    pub max_log_entries: usize,
    /// Most node ids the clock tracks: dots of ids that are not (and never were)
    /// members, and not yet in the clock, are refused past this many (a replaced node's
    /// old id is such an id to its successor). Default 4,096: every node a group ever had,
    /// replacements included, with room to spare.
    pub max_clock_ids: usize,
    /// Largest value a write may store. Default 32 KiB (DottedDB's benchmark values are
    /// far smaller; this keeps one entry well under a message).
    pub max_value_bytes: usize,
    /// A member silent this long while it holds back log truncation is reported with
    /// [`Event::GcBlocked`](crate::Event::GcBlocked), again every such period.
    /// Default 10 s: ten sync intervals.
    pub gc_block_report: Duration,
    /// Retire a member silent this long (it no longer holds back truncation; a node
    /// coming back must rejoin under a new id). Default `None`: only the application
    /// retires peers, with [`Bvv::retire_peer`](crate::Bvv::retire_peer).
    pub retire_after: Option<Duration>,
    /// Keys re-stripped per garbage-collection pass. Default 4,096: bounded work per
    /// input.
    pub strip_batch: usize,
    /// Full transfers in progress tracked at once; the oldest is forgotten past it.
    /// Default 8.
    pub max_sessions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sync_interval: Duration::from_secs(1),
            max_message_bytes: 60_000,
            max_keys_per_sync: 10_000,
            push_writes: true,
            sync_grace: Duration::from_millis(50),
            max_log_entries: 1 << 22,
            max_value_bytes: 32 * 1024,
            max_clock_ids: 4096,
            gc_block_report: Duration::from_secs(10),
            retire_after: None,
            strip_batch: 4096,
            max_sessions: 8,
        }
    }
}

impl Config {
    /// Checks the values are usable.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: &'static str| Err(Error::InvalidConfig(what));
        if self.sync_interval.is_zero() {
            return bad("sync_interval must be positive");
        }
        if self.max_message_bytes < 1024 {
            return bad("max_message_bytes must be at least 1024");
        }
        if self.max_keys_per_sync == 0 || self.max_log_entries == 0 || self.strip_batch == 0 {
            return bad("max_keys_per_sync, max_log_entries and strip_batch must be positive");
        }
        if self.max_sessions == 0 {
            return bad("max_sessions must be positive");
        }
        if self.max_value_bytes >= self.max_message_bytes {
            return bad("max_value_bytes must be below max_message_bytes");
        }
        Ok(())
    }
}
