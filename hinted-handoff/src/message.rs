//! The wire: one [`Message`] enum for both roles (coordinator and replica), carried in the
//! workspace envelope with protocol id [`protocol_id::HINTED_HANDOFF`].

use bytes::Bytes;
use epidemic_core::codec::{Envelope, protocol_id};
use serde::{Deserialize, Serialize};

/// A node's identity.
pub type NodeId = u64;

/// A write's id, random per write so that a late or forged acknowledgement cannot match a
/// later write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WriteId(pub u64);

/// A hint's id, random per hint and unique on its holder (also across restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HintId(pub u64);

/// One write of one key: a new value, or a deletion, at a timestamp. Replicas keep the
/// mutation with the highest timestamp (last write wins), so applying one twice or out
/// of order is harmless: what makes replaying hints safe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mutation {
    /// The key.
    pub key: Bytes,
    /// The value, or `None` for a deletion (a tombstone).
    pub value: Option<Bytes>,
    /// The application's timestamp (e.g. microseconds since the Unix epoch).
    pub timestamp: u64,
}

impl Mutation {
    /// A put.
    #[must_use]
    pub fn put(key: impl Into<Bytes>, value: impl Into<Bytes>, timestamp: u64) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
            timestamp,
        }
    }

    /// Key plus value bytes: what [`Config::max_mutation_bytes`](crate::Config) limits.
    #[must_use]
    pub fn size(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, Bytes::len)
    }
}

/// Everything nodes send each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Coordinator to owner: store this mutation.
    Write {
        /// The write.
        id: WriteId,
        /// What to store.
        mutation: Mutation,
    },
    /// Coordinator to a fallback node (sloppy quorum): store this mutation and keep a hint
    /// for `owner`, who is down; hand it off when `owner` is back.
    HintedWrite {
        /// The write.
        id: WriteId,
        /// The owner this copy stands in for.
        owner: NodeId,
        /// What to store.
        mutation: Mutation,
    },
    /// Owner or fallback to coordinator: stored (and, for a hinted write, the hint is
    /// durable).
    WriteAck {
        /// The write.
        id: WriteId,
    },
    /// Hint holder to the hint's target: a write it missed.
    Replay {
        /// The hint on the holder.
        hint: HintId,
        /// What to store.
        mutation: Mutation,
    },
    /// Target to hint holder: stored; the holder may delete the hint.
    ReplayAck {
        /// The hint.
        hint: HintId,
        /// The replayed mutation's timestamp, checked against the hint.
        timestamp: u64,
    },
}

impl Message {
    /// The variant's name, for per-kind metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Write { .. } => "write",
            Message::HintedWrite { .. } => "hinted_write",
            Message::WriteAck { .. } => "write_ack",
            Message::Replay { .. } => "replay",
            Message::ReplayAck { .. } => "replay_ack",
        }
    }
}

impl Envelope for Message {
    const PROTOCOL: u8 = protocol_id::HINTED_HANDOFF;
    const VERSION: u8 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use epidemic_core::codec::{DecodeError, decode, encode};

    /// Golden bytes: a change here is a wire-format change, to be made on purpose.
    #[test]
    fn golden_bytes() {
        let m = Message::Write {
            id: WriteId(300),
            mutation: Mutation::put(&b"k"[..], &b"v"[..], 5),
        };
        assert_eq!(
            encode(&m).unwrap(),
            [8, 1, 0, 0xAC, 0x02, 1, b'k', 1, 1, b'v', 5]
        );
        let ack = Message::ReplayAck {
            hint: HintId(1),
            timestamp: 2,
        };
        assert_eq!(encode(&ack).unwrap(), [8, 1, 4, 1, 2]);
    }

    #[test]
    fn round_trip_and_bad_bytes() {
        let msgs = [
            Message::HintedWrite {
                id: WriteId(u64::MAX),
                owner: 7,
                mutation: Mutation {
                    key: Bytes::from_static(b"key"),
                    value: None,
                    timestamp: 9,
                },
            },
            Message::WriteAck { id: WriteId(1) },
            Message::Replay {
                hint: HintId(3),
                mutation: Mutation::put(&b"a"[..], vec![0u8; 500], 1),
            },
        ];
        for m in msgs {
            let bytes = encode(&m).unwrap();
            assert_eq!(decode::<Message>(&bytes), Ok(m.clone()));
            for cut in 0..bytes.len() {
                assert!(decode::<Message>(&bytes[..cut]).is_err());
            }
        }
        assert_eq!(decode::<Message>(&[8, 1, 9]), Err(DecodeError::Malformed));
    }
}
