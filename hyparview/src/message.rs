//! The wire messages of HyParView (paper §4, TR-07-13 Algorithms 1–3).
//!
//! Peers travel as [`PeerInfo`]: the id plus the opaque per-peer data (a dialing address,
//! say) that lets the receiver reach them. Every list and TTL in a message is checked on
//! receipt: a list longer than the configured shuffle length is cut and counted, a TTL above
//! the configured walk length is capped, so a hostile peer cannot grow our views or keep a
//! walk going forever.

use bytes::Bytes;
use epidemic_core::codec::{Envelope, protocol_id};
use serde::{Deserialize, Serialize};

/// A peer's id with its opaque data (empty if it has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo<P> {
    /// The peer's identity.
    pub id: P,
    /// The peer's opaque data, at most [`Config::max_peer_data`](crate::Config) bytes.
    pub data: Bytes,
}

impl<P> PeerInfo<P> {
    /// A peer without data.
    pub fn new(id: P) -> Self {
        Self {
            id,
            data: Bytes::new(),
        }
    }
}

/// How hard a `Neighbor` request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Priority {
    /// The sender has no neighbour left (or answers a join): the receiver must accept, even
    /// if it has to drop a random neighbour.
    High,
    /// The sender refills a free slot: the receiver accepts only if it has one free too.
    Low,
}

/// One HyParView message.
///
/// Append-only: new variants go at the end, so the encoding of old ones never changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message<P> {
    /// "Let me in": sent to a contact. The contact takes the sender as a neighbour (dropping
    /// a random one if full), answers with [`Message::NeighborReply`], and starts a
    /// [`Message::ForwardJoin`] walk through each of its other neighbours.
    Join {
        /// The joiner's data.
        data: Bytes,
    },
    /// A random walk introducing a new node: taken into an active view when the TTL reaches
    /// zero (or at a node with a single neighbour), into passive views at TTL = PRWL.
    ForwardJoin {
        /// The node that joined.
        peer: PeerInfo<P>,
        /// Hops left.
        ttl: u8,
    },
    /// "Be my neighbour": answered with [`Message::NeighborReply`].
    Neighbor {
        /// Whether the receiver may refuse.
        priority: Priority,
        /// The sender's data.
        data: Bytes,
    },
    /// The answer to a [`Message::Join`] or a [`Message::Neighbor`].
    NeighborReply {
        /// Whether the sender took us as a neighbour.
        accepted: bool,
        /// The sender's data.
        data: Bytes,
    },
    /// "You are no longer my neighbour": the link is closed after it.
    Disconnect {
        /// `true` if the sender stays in the overlay (it only made room), so the receiver
        /// keeps it as a passive peer; `false` if it is leaving.
        alive: bool,
    },
    /// A random walk exchanging view samples.
    Shuffle {
        /// The node that started the walk, which the reply goes to.
        origin: PeerInfo<P>,
        /// Up to ka active and kp passive entries of the origin.
        peers: Vec<PeerInfo<P>>,
        /// Hops left.
        ttl: u8,
    },
    /// The answer to a [`Message::Shuffle`], sent straight to its origin.
    ShuffleReply {
        /// As many passive entries of the replier as the shuffle carried.
        peers: Vec<PeerInfo<P>>,
    },
}

impl<P> Message<P> {
    /// The variant's name, for per-kind metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Join { .. } => "join",
            Message::ForwardJoin { .. } => "forward_join",
            Message::Neighbor { .. } => "neighbor",
            Message::NeighborReply { .. } => "neighbor_reply",
            Message::Disconnect { .. } => "disconnect",
            Message::Shuffle { .. } => "shuffle",
            Message::ShuffleReply { .. } => "shuffle_reply",
        }
    }
}

impl<P: Serialize + serde::de::DeserializeOwned> Envelope for Message<P> {
    const PROTOCOL: u8 = protocol_id::HYPARVIEW;
    const VERSION: u8 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use epidemic_core::codec::{DecodeError, decode, encode};

    /// Golden bytes: a change here is a wire-format change, to be made on purpose.
    #[test]
    fn golden_bytes() {
        let join: Message<u64> = Message::Join {
            data: Bytes::from_static(b"ab"),
        };
        assert_eq!(encode(&join).unwrap(), [2, 1, 0, 2, b'a', b'b']);
        let fj: Message<u64> = Message::ForwardJoin {
            peer: PeerInfo::new(300),
            ttl: 6,
        };
        assert_eq!(encode(&fj).unwrap(), [2, 1, 1, 0xAC, 0x02, 0, 6]);
        let n: Message<u64> = Message::Neighbor {
            priority: Priority::Low,
            data: Bytes::new(),
        };
        assert_eq!(encode(&n).unwrap(), [2, 1, 2, 1, 0]);
        let r: Message<u64> = Message::NeighborReply {
            accepted: true,
            data: Bytes::new(),
        };
        assert_eq!(encode(&r).unwrap(), [2, 1, 3, 1, 0]);
        let d: Message<u64> = Message::Disconnect { alive: false };
        assert_eq!(encode(&d).unwrap(), [2, 1, 4, 0]);
        let s: Message<u64> = Message::Shuffle {
            origin: PeerInfo::new(1),
            peers: vec![PeerInfo::new(2)],
            ttl: 5,
        };
        assert_eq!(encode(&s).unwrap(), [2, 1, 5, 1, 0, 1, 2, 0, 5]);
        let sr: Message<u64> = Message::ShuffleReply { peers: vec![] };
        assert_eq!(encode(&sr).unwrap(), [2, 1, 6, 0]);
    }

    #[test]
    fn round_trip_and_bad_bytes() {
        let s: Message<u64> = Message::Shuffle {
            origin: PeerInfo {
                id: 9,
                data: Bytes::from_static(b"addr"),
            },
            peers: vec![PeerInfo::new(2), PeerInfo::new(3)],
            ttl: 6,
        };
        let bytes = encode(&s).unwrap();
        assert_eq!(decode::<Message<u64>>(&bytes), Ok(s));
        assert_eq!(
            decode::<Message<u64>>(&[2, 1, 7]),
            Err(DecodeError::Malformed)
        );
        assert_eq!(
            decode::<Message<u64>>(&[2, 1, 2, 2, 0]),
            Err(DecodeError::Malformed),
            "an unknown priority"
        );
        assert!(decode::<Message<u64>>(&[1, 1, 4, 0]).is_err());
    }
}
