//! What a Plumtree node tells its application: [`Event`], and its counters, [`Stats`].

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::message::MessageId;

/// How far a broadcast goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// The whole overlay, along the tree.
    Swarm,
    /// Our neighbours only (one hop): they deliver and do not forward.
    Neighbors,
}

/// A message delivered to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received<P> {
    /// The application's bytes.
    pub payload: Bytes,
    /// The message id.
    pub id: MessageId,
    /// The neighbour it came from (not necessarily its origin).
    pub delivered_from: P,
    /// Hops from the origin (1 at the origin's neighbours).
    pub round: u16,
    /// How far the origin sent it.
    pub scope: Scope,
}

/// An application event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<P> {
    /// A message was delivered here, once.
    Received(Received<P>),
    /// A message was announced to us but no announcer sent its payload after a GRAFT each:
    /// it is lost for us unless someone announces it again.
    Missed(MessageId),
}

/// Counters of everything a node did and refused. Nothing is dropped without a count here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Messages handled.
    pub messages: u64,
    /// Broadcasts started here (both scopes).
    pub broadcasts: u64,
    /// Messages delivered to the application.
    pub delivered: u64,
    /// Messages the validator declined: neither delivered nor forwarded.
    pub rejected: u64,
    /// Payloads received again (GOSSIP or `Direct` for a known id).
    pub duplicates: u64,
    /// Duplicates from a peer we had grafted for that id: not pruned.
    pub graft_duplicates: u64,
    /// GOSSIP messages sent (eager push and GRAFT answers).
    pub payloads_sent: u64,
    /// IHAVE messages sent.
    pub ihaves_sent: u64,
    /// IHAVE entries sent.
    pub ihave_entries_sent: u64,
    /// IHAVE entries received.
    pub ihave_entries_received: u64,
    /// GRAFTs sent for a missing payload.
    pub grafts_sent: u64,
    /// GRAFTs answered with a payload.
    pub grafts_served: u64,
    /// GRAFTs for an id we do not hold (never had, or evicted): answered harmlessly.
    pub grafts_unknown: u64,
    /// GRAFTs refused because the peer had no GRAFT credit left.
    pub grafts_refused: u64,
    /// PRUNEs sent.
    pub prunes_sent: u64,
    /// Duplicates not answered with PRUNE because their sender is a recent tree parent
    /// (see [`Config::prune_grace`](crate::Config)).
    pub prunes_deferred: u64,
    /// PRUNEs received.
    pub prunes_received: u64,
    /// Eager links swapped for a shorter lazy one (the optimisation).
    pub optimizations: u64,
    /// Lazy links made eager (and sent a GRAFT) because another neighbour went down
    /// ([`Config::eager_on_loss`](crate::Config)).
    pub loss_grafts: u64,
    /// Missing messages given up (every announcer grafted, no payload).
    pub missed: u64,
    /// Messages from peers that are not neighbours (in flight when the link went down),
    /// ignored except payloads, which are delivered.
    pub not_neighbor: u64,
    /// Neighbours refused because [`Config::max_neighbors`](crate::Config) were up.
    pub neighbors_refused: u64,
    /// IHAVE entries not queued because a peer's queue was full.
    pub ihave_queue_full: u64,
    /// Announcements ignored because [`Config::max_missing`](crate::Config) messages were
    /// missing already, or a missing message had its announcers in full.
    pub missing_full: u64,
    /// Payloads evicted from the cache before their TTL (size or byte bound).
    pub cache_evictions: u64,
    /// Received ids forgotten before their TTL (size bound).
    pub received_evictions: u64,
    /// Hostile content dropped: IHAVE batches over the entry bound, messages from ourselves.
    pub hostile: u64,
}
