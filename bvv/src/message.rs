//! The wire messages of node-wide sync, in the codec envelope with protocol id
//! [`protocol_id::BVV`].

use bytes::Bytes;
use epidemic_core::codec::{Envelope, protocol_id};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::clock::{Dot, NodeClock};
use crate::dcc::Dcc;
use crate::watermark::Watermark;

/// One key's container as it travels, filled with the sender's node clock, with the
/// dots the receiver lacked that wrote this key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncEntry {
    /// The key.
    pub key: Bytes,
    /// The dots of this key the receiver did not have (by the sender's log); the
    /// receiver adds them to its clock after merging.
    pub dots: SmallVec<[Dot; 1]>,
    /// The container, causal context filled.
    pub dcc: Dcc,
}

/// The first message of a sync reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReply {
    /// The requester's number of the request this answers (echoed).
    pub request: u32,
    /// The replier's number for this reply (so the chunks of one reply are matched).
    pub session: u32,
    /// How many messages the reply has, this one included.
    pub total: u32,
    /// Whether this is a full transfer (the replier's log no longer names some dots the
    /// requester lacks, so it sends every key); the requester joins `clock` once every
    /// chunk has arrived.
    pub full: bool,
    /// In a full transfer, the last key of this page when more pages follow (the
    /// requester asks again from there); `None` on the last page.
    pub next: Option<Bytes>,
    /// The replier's node clock.
    pub clock: NodeClock,
    /// The replier's watermark matrix.
    pub watermark: Watermark,
    /// The first entries.
    pub entries: Vec<SyncEntry>,
}

/// The messages of node-wide sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// "Here is my node clock: send what I miss." Starts a sync.
    SyncRequest {
        /// The requester's number for this request, echoed in the reply.
        request: u32,
        /// The requester's node clock.
        clock: NodeClock,
        /// Continue a full transfer after this key (the `next` of the page received).
        resume: Option<Bytes>,
    },
    /// The first (often only) message of the answer.
    SyncReply(SyncReply),
    /// A further message of a reply split at the size bound.
    SyncMore {
        /// The request this answers (echoed).
        request: u32,
        /// The reply's session.
        session: u32,
        /// This message's index (1 ..= total − 1).
        index: u32,
        /// Its entries.
        entries: Vec<SyncEntry>,
    },
    /// A write pushed to the other members as it happens.
    Push {
        /// The written key, its container and its new dot.
        entries: Vec<SyncEntry>,
    },
}

impl Message {
    /// The variant's name, for per-kind metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Message::SyncRequest { .. } => "sync_request",
            Message::SyncReply(_) => "sync_reply",
            Message::SyncMore { .. } => "sync_more",
            Message::Push { .. } => "push",
        }
    }
}

impl Envelope for Message {
    const PROTOCOL: u8 = protocol_id::BVV;
    const VERSION: u8 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use epidemic_core::codec::{DecodeError, decode, encode};

    /// Golden bytes: a change here is a wire-format change, made on purpose.
    #[test]
    fn golden_bytes() {
        let mut clock = NodeClock::new();
        for c in [1, 2, 3, 5, 6, 8] {
            clock.add(Dot::new(7, c));
        }
        let req = Message::SyncRequest {
            request: 5,
            clock,
            resume: None,
        };
        // envelope (6, 1), variant 0, request 5, one entry: id 7, base 3, one word
        // 0b10110, no resume key.
        assert_eq!(encode(&req).unwrap(), [6, 1, 0, 5, 1, 7, 3, 1, 0b10110, 0]);
        let mut dcc = Dcc::new();
        dcc.add(Dot::new(2, 1), Bytes::from_static(b"v"));
        let push = Message::Push {
            entries: vec![SyncEntry {
                key: Bytes::from_static(b"k"),
                dots: SmallVec::from_slice(&[Dot::new(2, 1)]),
                dcc,
            }],
        };
        assert_eq!(
            encode(&push).unwrap(),
            [6, 1, 3, 1, 1, b'k', 1, 2, 1, 1, 2, 1, 1, b'v', 1, 2, 1]
        );
        assert_eq!(decode::<Message>(&encode(&push).unwrap()), Ok(push));
    }

    #[test]
    fn unnormalised_clock_is_malformed() {
        // base 3, bitmap 0b1: the lowest bit should have folded into the base.
        assert_eq!(
            decode::<Message>(&[6, 1, 0, 0, 1, 7, 3, 1, 1, 0]),
            Err(DecodeError::Malformed)
        );
    }
}
