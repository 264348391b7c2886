//! The wire messages between a coordinator and its replicas.

use epidemic_core::codec::{Envelope, protocol_id};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::record::{Record, Schema};

/// A read's identifier, unique per coordinator for the coordinator's life.
pub type ReadId = u64;

/// Every message of the read path. Requests go from a coordinator to a replica; responses
/// echo the request's id. Append variants only (the golden-bytes test guards the format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Message<S: Schema> {
    /// Coordinator to replica: send me your record for `key`.
    ReadData {
        /// The read.
        id: ReadId,
        /// The key.
        key: S::Key,
    },
    /// Coordinator to replica: send me the digest of your record for `key`.
    ReadDigest {
        /// The read.
        id: ReadId,
        /// The key.
        key: S::Key,
    },
    /// Replica to coordinator: my record (`None`: I have none).
    Data {
        /// The read.
        id: ReadId,
        /// The record.
        record: Option<Record<S>>,
    },
    /// Replica to coordinator: the digest of my answer.
    Digest {
        /// The read.
        id: ReadId,
        /// The digest.
        digest: Digest,
    },
    /// Coordinator to replica: merge these cells into your record for `key`.
    Repair {
        /// The read that found the replica stale.
        id: ReadId,
        /// The key.
        key: S::Key,
        /// Only the cells the replica lacks.
        diff: Record<S>,
        /// Whether the coordinator waits for a [`Message::RepairAck`] (blocking repair).
        ack: bool,
    },
    /// Replica to coordinator: the repair is applied (durably, if the store is).
    RepairAck {
        /// The read.
        id: ReadId,
    },
}

impl<S: Schema> Message<S> {
    /// The variant's name, for per-kind metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Message::ReadData { .. } => "read_data",
            Message::ReadDigest { .. } => "read_digest",
            Message::Data { .. } => "data",
            Message::Digest { .. } => "digest",
            Message::Repair { .. } => "repair",
            Message::RepairAck { .. } => "repair_ack",
        }
    }

    /// The read this message belongs to.
    #[must_use]
    pub fn id(&self) -> ReadId {
        match *self {
            Message::ReadData { id, .. }
            | Message::ReadDigest { id, .. }
            | Message::Data { id, .. }
            | Message::Digest { id, .. }
            | Message::Repair { id, .. }
            | Message::RepairAck { id } => id,
        }
    }

    /// Whether a replica (rather than a coordinator) handles this message.
    #[must_use]
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            Message::ReadData { .. } | Message::ReadDigest { .. } | Message::Repair { .. }
        )
    }
}

impl<S: Schema> Envelope for Message<S> {
    const PROTOCOL: u8 = protocol_id::READ_REPAIR;
    const VERSION: u8 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use epidemic_core::codec::{DecodeError, decode, encode};

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct S;
    impl Schema for S {
        type Key = u64;
        type Cell = u8;
        type Value = u32;
        type Version = u64;
    }

    /// Golden bytes: a change here is a wire-format change, to be made on purpose.
    #[test]
    fn golden_bytes() {
        let m = Message::<S>::ReadDigest { id: 300, key: 5 };
        assert_eq!(encode(&m).unwrap(), [7, 1, 1, 0xAC, 0x02, 5]);
        let m = Message::<S>::Repair {
            id: 1,
            key: 2,
            diff: Record::single(3, 4, 5),
            ack: true,
        };
        // tag 4, id, key, 1 cell: name 3, 1 sibling: version 4, value 5, ack.
        assert_eq!(encode(&m).unwrap(), [7, 1, 4, 1, 2, 1, 3, 1, 4, 5, 1]);
        let m = Message::<S>::Data {
            id: 9,
            record: None,
        };
        assert_eq!(encode(&m).unwrap(), [7, 1, 2, 9, 0]);
        for m in [
            m,
            Message::RepairAck { id: u64::MAX },
            Message::Digest {
                id: 0,
                digest: Digest([0xAB; 16]),
            },
        ] {
            assert_eq!(decode::<Message<S>>(&encode(&m).unwrap()), Ok(m));
        }
    }

    #[test]
    fn bad_bytes_are_typed_errors() {
        assert_eq!(
            decode::<Message<S>>(&[7, 1, 9]),
            Err(DecodeError::Malformed)
        );
        assert_eq!(
            decode::<Message<S>>(&[7, 1, 5, 1, 0]),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
        assert!(matches!(
            decode::<Message<S>>(&[1, 1, 5, 1]),
            Err(DecodeError::WrongProtocol { .. })
        ));
    }
}
