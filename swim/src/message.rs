//! The wire: every datagram SWIM sends, and the membership updates they carry.
//!
//! Each message travels in the codec's two-byte envelope (protocol id
//! [`protocol_id::SWIM`], version [`Message::VERSION`](Envelope::VERSION)) followed by its
//! postcard body. Only append variants: the golden-bytes test in this file makes a format
//! change a decision, not an accident.

use bytes::Bytes;
use epidemic_core::codec::{Envelope, protocol_id};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Address;

/// What one member believes about another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum State {
    /// Answering probes (or not yet suspected).
    Alive,
    /// Failed a probe; declared down unless it refutes before its suspicion times out.
    Suspect,
    /// Confirmed failed; kept as a tombstone so stale gossip cannot bring it back.
    Dead,
    /// Left on purpose (graceful leave); also kept as a tombstone.
    Left,
}

impl State {
    /// Alive or Suspect: a member that is probed and counted as a live member.
    #[must_use]
    pub fn is_live(self) -> bool {
        matches!(self, State::Alive | State::Suspect)
    }
}

/// One membership update (or user broadcast), piggybacked on the protocol's messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Update<A> {
    /// `member` is alive at `incarnation`, with its application metadata.
    Alive {
        /// The member.
        member: A,
        /// Its incarnation.
        incarnation: u32,
        /// Its opaque application metadata (bounded by `Config::max_meta_len`).
        meta: Bytes,
    },
    /// `from` suspects `member` at `incarnation`.
    Suspect {
        /// The member.
        member: A,
        /// The incarnation suspected.
        incarnation: u32,
        /// Who suspects it (distinct senders confirm a suspicion; Lifeguard).
        from: A,
    },
    /// `from` declared `member` dead at `incarnation` (the paper's Confirm).
    Dead {
        /// The member.
        member: A,
        /// The incarnation declared dead.
        incarnation: u32,
        /// Who declared it.
        from: A,
    },
    /// `member` left the group on purpose at `incarnation`.
    Left {
        /// The member.
        member: A,
        /// Its incarnation when it left.
        incarnation: u32,
    },
    /// An application broadcast, disseminated like the membership updates.
    User {
        /// The member that broadcast it.
        origin: A,
        /// The origin's sequence number, increasing per broadcast.
        seq: u32,
        /// A newer broadcast of the same origin and key supersedes an older one.
        key: Option<u64>,
        /// The application's bytes.
        payload: Bytes,
    },
}

impl<A> Update<A> {
    /// The member a membership update is about (`None` for user broadcasts).
    #[must_use]
    pub fn member(&self) -> Option<&A> {
        match self {
            Update::Alive { member, .. }
            | Update::Suspect { member, .. }
            | Update::Dead { member, .. }
            | Update::Left { member, .. } => Some(member),
            Update::User { .. } => None,
        }
    }
}

/// One member's entry in a push-pull exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberState<A> {
    /// The member.
    pub member: A,
    /// Its incarnation.
    pub incarnation: u32,
    /// What the sender believes about it.
    pub state: State,
    /// Its metadata (empty for tombstones).
    pub meta: Bytes,
}

/// The SWIM datagrams. Every variant but `PushPull` and `PushPullDigest` piggybacks
/// membership updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message<A> {
    /// A direct probe of `target` (which must be the receiver).
    Ping {
        /// Probe sequence number, echoed by the ack.
        seq: u32,
        /// The member the sender means to probe: a datagram that reaches someone else at
        /// that address is dropped, not acked.
        target: A,
        /// Piggybacked updates.
        updates: Vec<Update<A>>,
    },
    /// The answer to a ping, or relayed back by a ping-req helper.
    Ack {
        /// The probe's sequence number.
        seq: u32,
        /// Piggybacked updates.
        updates: Vec<Update<A>>,
    },
    /// "Please probe `target` for me" (the indirect probe).
    PingReq {
        /// The requester's probe sequence number.
        seq: u32,
        /// The member to probe.
        target: A,
        /// How long the helper may wait for the target's ack before it nacks, in
        /// milliseconds; 0 asks for no nack. The requester sets it to a share of the time
        /// left before it judges its probe, so the nack arrives while it still counts
        /// (Lifeguard, footnote 5; a helper's own probe timeout would nack too late).
        nack_ms: u32,
        /// Piggybacked updates.
        updates: Vec<Update<A>>,
    },
    /// A helper heard nothing from the target within the time the ping-req gave it
    /// (Lifeguard): the requester can tell its own slowness from the target's failure.
    Nack {
        /// The requester's probe sequence number.
        seq: u32,
        /// Piggybacked updates.
        updates: Vec<Update<A>>,
    },
    /// Updates with nothing else: the periodic gossip of memberlist.
    Gossip {
        /// The updates.
        updates: Vec<Update<A>>,
    },
    /// One chunk of a full-state exchange (join and periodic anti-entropy).
    PushPull {
        /// The exchange's sequence number (the reply echoes it).
        seq: u32,
        /// `false` for the initiator's state (the receiver answers with its own),
        /// `true` for the answer.
        reply: bool,
        /// This chunk's index.
        chunk: u16,
        /// How many chunks the state was split into.
        chunks: u16,
        /// The members in this chunk (the sender itself included in chunk 0).
        members: Vec<MemberState<A>>,
    },
    /// A periodic anti-entropy round that opens with a digest of the sender's whole table
    /// (itself included) instead of the table. A receiver whose own digest is the same
    /// sends nothing back; one whose digest differs starts a full push-pull with the
    /// sender under the same `seq`, so both sides still end with each other's state.
    PushPullDigest {
        /// The exchange's sequence number (the full exchange it may start reuses it).
        seq: u32,
        /// XOR over every entry of the XXH3-128 of its canonical encoding: the same set
        /// of (member, incarnation, state, metadata) gives the same digest in any order.
        digest: [u8; 16],
    },
}

impl<A> Message<A> {
    /// A stable name per variant, for per-kind metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Ping { .. } => "ping",
            Message::Ack { .. } => "ack",
            Message::PingReq { .. } => "ping-req",
            Message::Nack { .. } => "nack",
            Message::Gossip { .. } => "gossip",
            Message::PushPull { .. } => "push-pull",
            Message::PushPullDigest { .. } => "push-pull-digest",
        }
    }

    /// The piggybacked updates (empty for push-pull).
    #[must_use]
    pub fn updates(&self) -> &[Update<A>] {
        match self {
            Message::Ping { updates, .. }
            | Message::Ack { updates, .. }
            | Message::PingReq { updates, .. }
            | Message::Nack { updates, .. }
            | Message::Gossip { updates } => updates,
            Message::PushPull { .. } | Message::PushPullDigest { .. } => &[],
        }
    }

    pub(crate) fn updates_mut(&mut self) -> Option<&mut Vec<Update<A>>> {
        match self {
            Message::Ping { updates, .. }
            | Message::Ack { updates, .. }
            | Message::PingReq { updates, .. }
            | Message::Nack { updates, .. }
            | Message::Gossip { updates } => Some(updates),
            Message::PushPull { .. } | Message::PushPullDigest { .. } => None,
        }
    }
}

impl<A: Address + Serialize + DeserializeOwned> Envelope for Message<A> {
    const PROTOCOL: u8 = protocol_id::SWIM;
    const VERSION: u8 = 2;
}

#[cfg(test)]
mod tests {
    use super::*;
    use epidemic_core::codec::{self, DecodeError};

    #[test]
    fn golden_bytes() {
        let ping: Message<u64> = Message::Ping {
            seq: 300,
            target: 7,
            updates: vec![Update::Suspect {
                member: 7,
                incarnation: 2,
                from: 1,
            }],
        };
        assert_eq!(
            codec::encode(&ping).unwrap(),
            [1, 2, 0, 0xAC, 0x02, 7, 1, 1, 7, 2, 1]
        );
        let pp: Message<u64> = Message::PushPull {
            seq: 1,
            reply: true,
            chunk: 0,
            chunks: 1,
            members: vec![MemberState {
                member: 3,
                incarnation: 0,
                state: State::Dead,
                meta: Bytes::new(),
            }],
        };
        assert_eq!(
            codec::encode(&pp).unwrap(),
            [1, 2, 5, 1, 1, 0, 1, 1, 3, 0, 2, 0]
        );
        let req: Message<u64> = Message::PingReq {
            seq: 3,
            target: 7,
            nack_ms: 400,
            updates: vec![],
        };
        assert_eq!(codec::encode(&req).unwrap(), [1, 2, 2, 3, 7, 0x90, 0x03, 0]);
        let digest: Message<u64> = Message::PushPullDigest {
            seq: 2,
            digest: [0xAB; 16],
        };
        let mut want = vec![1, 2, 6, 2];
        want.extend([0xAB; 16]);
        assert_eq!(codec::encode(&digest).unwrap(), want);
    }

    #[test]
    fn bad_bytes_are_typed_errors() {
        assert_eq!(
            codec::decode::<Message<u64>>(&[1]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            codec::decode::<Message<u64>>(&[1, 2, 9]),
            Err(DecodeError::Malformed)
        );
        assert!(matches!(
            codec::decode::<Message<u64>>(&[2, 1, 0]),
            Err(DecodeError::WrongProtocol { .. })
        ));
    }
}
