//! What a HyParView node tells its application: [`Event`], and its counters, [`Stats`].

use serde::{Deserialize, Serialize};

/// Why a neighbour left the active view: the reason iroh-gossip's users ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DownReason {
    /// The peer sent `Disconnect` and stays in the overlay (it made room for someone); we
    /// keep it as a passive peer.
    Disconnected,
    /// The peer sent `Disconnect` because it is leaving the overlay.
    PeerLeft,
    /// The transport lost the link (crash, partition, timeout).
    LinkLost,
    /// We dropped it to make room for a peer that had to be accepted; it stays passive.
    Replaced,
    /// We are leaving ([`HyParView::leave`](crate::HyParView::leave)).
    ShuttingDown,
}

/// An application event. Plumtree (or any broadcast layer) consumes `NeighborUp` and
/// `NeighborDown` as its neighbour inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event<P> {
    /// `P` joined the active view: a symmetric link is up.
    NeighborUp(P),
    /// `P` left the active view.
    NeighborDown(P, DownReason),
    /// A `Join` sent to this contact went unanswered (timeout) or could not be delivered.
    JoinFailed(P),
    /// Our views cannot be refilled (no passive peer left to try): we send a `Join` to this
    /// contact, the next of several tries spaced by a growing backoff.
    Rejoining(P),
}

/// Counters of everything a node did and refused. Nothing is dropped without a count here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Messages handled.
    pub messages: u64,
    /// `Join`s received (we were the contact).
    pub joins_received: u64,
    /// `ForwardJoin`s received.
    pub forward_joins: u64,
    /// `Shuffle`s we started.
    pub shuffles_started: u64,
    /// `Shuffle`s we answered (end of a walk).
    pub shuffles_answered: u64,
    /// `Neighbor` requests we accepted.
    pub neighbor_accepted: u64,
    /// `Neighbor` requests we refused (low priority, no free slot).
    pub neighbor_refused: u64,
    /// Neighbours dropped to make room ([`DownReason::Replaced`]).
    pub evictions: u64,
    /// Passive entries evicted to make room for new ones.
    pub passive_evictions: u64,
    /// Links the transport reported lost while the peer was a neighbour.
    pub links_lost: u64,
    /// Requests that failed: timeout, or the dial failed.
    pub requests_failed: u64,
    /// Requests not sent because [`Config::max_pending`](crate::Config) were outstanding.
    pub pending_full: u64,
    /// Rejoins through a contact after the views ran dry.
    pub rejoins: u64,
    /// High-priority requests to neighbours lost to a broken link.
    pub reconnects: u64,
    /// Lost neighbours forgotten because the reconnect memory was full.
    pub reconnect_evictions: u64,
    /// Hostile or malformed content dropped: oversized lists or data, TTLs over the
    /// configured walk length, ourselves as a peer, answers nobody asked for.
    pub hostile: u64,
}
