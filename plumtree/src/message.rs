//! The wire messages of Plumtree (paper §3, Algorithm 1): GOSSIP carries a payload, IHAVE
//! announces ids to lazy peers, GRAFT repairs the tree (and asks for a payload), PRUNE
//! turns an eager link lazy. `Direct` carries a neighbours-only broadcast.

use std::hash::Hash;

use bytes::Bytes;
use epidemic_core::codec::{ENVELOPE_LEN, Envelope, protocol_id};
use serde::{Deserialize, Serialize};

/// A message id: XXH3-128 of (origin, the origin's random incarnation salt, its broadcast
/// sequence number, the payload). Two broadcasts of the same bytes are two messages, and
/// a restarted origin (new salt) never reuses an old id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// The id of broadcast number `seq` of `origin` (incarnation `salt`) carrying `payload`.
    pub fn new<P: Hash>(origin: &P, salt: u64, seq: u64, payload: &[u8]) -> Self {
        use std::hash::Hasher as _;
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        origin.hash(&mut h);
        h.write_u64(salt);
        h.write_u64(seq);
        h.update(payload);
        Self(h.digest128().to_le_bytes())
    }
}

impl std::fmt::Display for MessageId {
    /// The first eight bytes in hex: enough to tell ids apart in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A payload pushed eagerly along the tree (or in answer to a GRAFT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// The message id.
    pub id: MessageId,
    /// Hops this copy has travelled from the origin, this one included (1 at the origin's
    /// neighbours).
    pub round: u16,
    /// The application's bytes.
    pub payload: Bytes,
}

/// One announcement to a lazy peer: "I have this message, at this round".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IHave {
    /// The message id.
    pub id: MessageId,
    /// The round the payload would arrive with from the announcer.
    pub round: u16,
}

/// "Be my eager peer again", and optionally "send me this payload".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graft {
    /// The missing message; `None` for the optimisation's link swap.
    pub id: Option<MessageId>,
    /// The round of the announcement that caused the graft.
    pub round: u16,
}

/// A neighbours-only broadcast: delivered by each neighbour, forwarded by none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Direct {
    /// The message id.
    pub id: MessageId,
    /// The application's bytes.
    pub payload: Bytes,
}

/// One Plumtree message.
///
/// Append-only: new variants go at the end, so the encoding of old ones never changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A payload.
    Gossip(Payload),
    /// A batch of announcements.
    IHave(Vec<IHave>),
    /// A tree repair.
    Graft(Graft),
    /// "Stop pushing payloads to me; announce them instead."
    Prune,
    /// A neighbours-only broadcast.
    Direct(Direct),
}

impl Message {
    /// The variant's name, for per-kind metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Gossip(_) => "gossip",
            Message::IHave(_) => "ihave",
            Message::Graft(_) => "graft",
            Message::Prune => "prune",
            Message::Direct(_) => "direct",
        }
    }
}

impl Envelope for Message {
    const PROTOCOL: u8 = protocol_id::PLUMTREE;
    const VERSION: u8 = 1;
}

/// Bytes of a postcard varint for `v`.
pub(crate) fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes one IHAVE entry takes on the wire.
pub(crate) fn ihave_entry_len(e: &IHave) -> usize {
    16 + varint_len(u64::from(e.round))
}

/// Bytes of an IHAVE message with `count` entries of `entries_len` bytes in total, with
/// the envelope and the enum tag of a composite wrapping it (`tag_bytes`).
pub(crate) fn ihave_len(count: usize, entries_len: usize, tag_bytes: usize) -> usize {
    ENVELOPE_LEN + tag_bytes + 1 + varint_len(count as u64) + entries_len
}

/// The smallest `max_message_size` a config may set: one IHAVE entry with the largest
/// round inside a composite's tag.
pub(crate) const MIN_MESSAGE_SIZE: usize = ENVELOPE_LEN + 2 + 1 + 1 + 16 + 3;

/// The largest payload that fits in a GOSSIP of `max_message_size` bytes (worst-case round,
/// a composite's tag, the envelope).
pub(crate) fn max_payload(max_message_size: usize) -> usize {
    // envelope + composite tag (2) + variant tag + id + round (3) + length varint.
    let fixed = ENVELOPE_LEN + 2 + 1 + 16 + 3;
    let room = max_message_size.saturating_sub(fixed);
    // The length varint takes a few bytes of the room.
    let mut len = room.saturating_sub(varint_len(room as u64));
    while len > 0 && len + varint_len(len as u64) > room {
        len -= 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use epidemic_core::codec::{DecodeError, decode, encode, encoded_len};

    fn id(b: u8) -> MessageId {
        MessageId([b; 16])
    }

    /// Golden bytes: a change here is a wire-format change, to be made on purpose.
    #[test]
    fn golden_bytes() {
        let g = Message::Gossip(Payload {
            id: id(1),
            round: 300,
            payload: Bytes::from_static(b"hi"),
        });
        let mut want = vec![3, 1, 0];
        want.extend([1; 16]);
        want.extend([0xAC, 0x02, 2, b'h', b'i']);
        assert_eq!(encode(&g).unwrap(), want);
        let ih = Message::IHave(vec![IHave {
            id: id(2),
            round: 1,
        }]);
        let mut want = vec![3, 1, 1, 1];
        want.extend([2; 16]);
        want.push(1);
        assert_eq!(encode(&ih).unwrap(), want);
        let gr = Message::Graft(Graft { id: None, round: 4 });
        assert_eq!(encode(&gr).unwrap(), [3, 1, 2, 0, 4]);
        assert_eq!(encode(&Message::Prune).unwrap(), [3, 1, 3]);
        let d = Message::Direct(Direct {
            id: id(0),
            payload: Bytes::new(),
        });
        assert_eq!(encode(&d).unwrap().len(), 3 + 16 + 1);
    }

    #[test]
    fn sizes_agree_with_the_codec() {
        for n in [0usize, 1, 127, 128, 300] {
            let entries: Vec<IHave> = (0..n)
                .map(|i| IHave {
                    id: id(3),
                    round: u16::try_from(i * 100).unwrap_or(u16::MAX),
                })
                .collect();
            let len: usize = entries.iter().map(ihave_entry_len).sum();
            assert_eq!(ihave_len(n, len, 0), encoded_len(&Message::IHave(entries)));
        }
        for v in [0u64, 127, 128, 16_383, 16_384, u64::MAX] {
            let bytes = postcard::to_allocvec(&v).unwrap();
            assert_eq!(varint_len(v), bytes.len(), "{v}");
        }
        for max in [64usize, 200, 4096, 70_000] {
            let p = max_payload(max);
            let g = Message::Gossip(Payload {
                id: id(1),
                round: u16::MAX,
                payload: Bytes::from(vec![0; p]),
            });
            assert!(encoded_len(&g) + 2 <= max, "{max}");
            let g = Message::Gossip(Payload {
                id: id(1),
                round: u16::MAX,
                payload: Bytes::from(vec![0; p + 1]),
            });
            assert!(encoded_len(&g) + 2 > max, "{max}");
        }
    }

    #[test]
    fn ids_differ_for_the_same_bytes() {
        let a = MessageId::new(&1u64, 7, 0, b"x");
        assert_ne!(a, MessageId::new(&1u64, 7, 1, b"x"));
        assert_ne!(a, MessageId::new(&2u64, 7, 0, b"x"));
        assert_ne!(a, MessageId::new(&1u64, 8, 0, b"x"));
        assert_eq!(a, MessageId::new(&1u64, 7, 0, b"x"));
    }

    #[test]
    fn bad_bytes_are_typed_errors() {
        assert_eq!(decode::<Message>(&[3, 1, 9]), Err(DecodeError::Malformed));
        assert_eq!(
            decode::<Message>(&[3, 1, 1, 5]),
            Err(DecodeError::Malformed)
        );
        assert!(decode::<Message>(&[2, 1, 3]).is_err());
        assert_eq!(decode::<Message>(&[3, 1, 3]), Ok(Message::Prune));
    }
}
