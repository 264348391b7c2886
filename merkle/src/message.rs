//! Wire types. A session's logical steps ([`Step`]) are postcard-encoded and cut into
//! [`Fragment`]s no larger than the configured message size; the receiver reassembles a
//! step from its fragments (in any order, duplicates ignored) before decoding it.
//!
//! Fixed-width fields (hashes, keys, digests, symbol sums) are byte arrays, which postcard
//! writes as-is: a random `u64` as a varint would take ten bytes instead of eight.

use bytes::Bytes;
use epidemic_core::codec::{DecodeError, Envelope, protocol_id};
use serde::{Deserialize, Serialize};

use crate::planner::Method;
use crate::ranks::Ranks;
use crate::store::Item;
use crate::tree::Shape;

/// What travels between two replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A piece of one step of a session.
    Fragment(Fragment),
    /// The sender dropped (or never had) the session.
    Abort {
        /// The session.
        session: u64,
        /// Whether the sender of the abort is the session's initiator.
        from_initiator: bool,
        /// Why.
        reason: AbortReason,
    },
}

/// One piece of a [`Step`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fragment {
    /// The session, chosen by the initiator.
    pub session: u64,
    /// Whether the sender is the session's initiator.
    pub from_initiator: bool,
    /// The step number: the initiator sends even steps, the responder odd ones.
    pub step: u32,
    /// The step's kind (for metrics and early checks; the decoded step must agree).
    pub kind: StepKind,
    /// This fragment's place, `0..count`.
    pub index: u16,
    /// Fragments in the step.
    pub count: u16,
    /// This fragment's bytes of the postcard-encoded step.
    pub data: Bytes,
}

/// The kind of a [`Step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepKind {
    /// [`Step::Open`].
    Open,
    /// [`Step::Hashes`].
    Hashes,
    /// [`Step::Items`].
    Items,
    /// [`Step::Symbols`].
    Symbols,
    /// [`Step::More`].
    More,
    /// [`Step::Done`].
    Done,
    /// [`Step::Sketch`].
    Sketch,
    /// [`Step::Syndromes`].
    Syndromes,
    /// [`Step::Ask`].
    Ask,
}

/// Why a session was aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AbortReason {
    /// The receiver has no such session (it expired, or the receiver restarted).
    UnknownSession,
    /// The receiver is at its bound of concurrent sessions.
    Busy,
    /// Tree shape or hasher differ: these replicas cannot compare trees.
    Incompatible,
    /// The peer sent something that breaks the protocol or a bound.
    Protocol,
}

/// An item on the wire: key and digest, eight bytes each.
pub type WireItem = ([u8; 8], [u8; 8]);

/// One logical step of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Initiator, step 0: what it holds and how it wants to reconcile.
    Open {
        /// [`ItemHasher::id`](crate::ItemHasher::id) of the initiator's hasher.
        hasher: u32,
        /// The initiator's tree shape.
        shape: Shape,
        /// How to reconcile.
        method: Method,
        /// Items the initiator holds.
        count: u64,
        /// The initiator's root hash.
        root: [u8; 16],
    },
    /// The sender compared level `level − 1` (the nodes the receiver sent last) and sends
    /// its hashes of the children of the differing ones.
    Hashes {
        /// The level of `hashes`.
        level: u8,
        /// Items the sender holds.
        count: u64,
        /// Bitmap over the nodes the receiver sent last: bit set = differs.
        diff: Bytes,
        /// Eight bytes of each child's hash, in node order.
        hashes: Vec<[u8; 8]>,
    },
    /// The sender compared level `level` and sends its items under the differing nodes.
    Items {
        /// The level compared.
        level: u8,
        /// Bitmap over the nodes the receiver sent last.
        diff: Bytes,
        /// The sender's items under the differing nodes.
        items: Vec<WireItem>,
    },
    /// Coded symbols of the sender's items under the differing nodes of `level`.
    Symbols {
        /// The level compared.
        level: u8,
        /// Bitmap over the nodes the receiver sent last (first batch only; empty after).
        diff: Bytes,
        /// Index of the first symbol.
        start: u64,
        /// The low 8 bytes of the XOR of the sender's item hashes under those nodes (its
        /// tree's node hashes combined): the receiver checks its decoded difference
        /// against it. In the first batch only.
        hash: Option<[u8; 8]>,
        /// The symbols `start..` ([`encode_symbols`](crate::riblt::encode_symbols)): 16
        /// bytes each, then their checksum bits packed
        /// ([`check_bits`](crate::riblt::check_bits): 64 for symbol 0, 8 down to 1 for
        /// 1..=332, none after).
        symbols: Bytes,
    },
    /// The decoder wants symbols up to (excluding) `upto`.
    More {
        /// One past the last symbol wanted.
        upto: u64,
    },
    /// The difference is known; the last step of a session. The receiver's items are
    /// named by rank in its list of items under the compared nodes (the list it sent, or
    /// the one it encoded; [`crate::ranks`]).
    Done {
        /// Ranks of the receiver's items whose keys the sender lacks.
        gone: Ranks,
        /// Ranks of the receiver's items whose keys the sender holds in another version.
        changed: Ranks,
        /// The sender's digests of the `changed` keys, in rank order.
        digests: Vec<[u8; 8]>,
        /// Items the sender holds whose keys the receiver lacks.
        mine: Vec<WireItem>,
    },
    /// The first batch of a syndrome sketch ([`crate::sketch`]) of the sender's items
    /// under the differing nodes of `level`: `per` syndromes of each of the `2^depth`
    /// buckets, in bucket order.
    Sketch {
        /// The level compared.
        level: u8,
        /// Bitmap over the nodes the receiver sent last: bit set = differs.
        diff: Bytes,
        /// The low 8 bytes of the XOR of the sender's item hashes under those nodes.
        hash: [u8; 8],
        /// Bucket prefix bits.
        depth: u8,
        /// Syndromes per bucket.
        per: u32,
        /// The syndromes, 8 bytes each, little-endian.
        syndromes: Bytes,
    },
    /// The answer to an [`Step::Ask`]: the syndromes it asked for, in its order.
    Syndromes {
        /// The syndromes, 8 bytes each, little-endian.
        syndromes: Bytes,
    },
    /// The sketch's decoder wants buckets split or extended ([`crate::sketch::Ask`]).
    Ask {
        /// Bitmap over the current buckets: split these.
        split: Bytes,
        /// Each split bucket becomes `2^bits` children.
        bits: u8,
        /// Bitmap over the buckets after the split: extend these.
        extend: Bytes,
        /// Syndromes added to each extended bucket, in bucket order.
        by: Vec<u32>,
    },
}

impl Step {
    /// The step's postcard encoding: what [`Fragment::data`] carries, cut into pieces.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising derived types into a vector cannot fail.
        postcard::to_allocvec(self).expect("derived Serialize into a Vec")
    }

    /// A step from exactly `bytes`.
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] or [`DecodeError::TrailingBytes`]; never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (step, rest) = postcard::take_from_bytes(bytes).map_err(|_| DecodeError::Malformed)?;
        if rest.is_empty() {
            Ok(step)
        } else {
            Err(DecodeError::TrailingBytes { count: rest.len() })
        }
    }

    /// The step's kind.
    #[must_use]
    pub fn kind(&self) -> StepKind {
        match self {
            Step::Open { .. } => StepKind::Open,
            Step::Hashes { .. } => StepKind::Hashes,
            Step::Items { .. } => StepKind::Items,
            Step::Symbols { .. } => StepKind::Symbols,
            Step::More { .. } => StepKind::More,
            Step::Done { .. } => StepKind::Done,
            Step::Sketch { .. } => StepKind::Sketch,
            Step::Syndromes { .. } => StepKind::Syndromes,
            Step::Ask { .. } => StepKind::Ask,
        }
    }
}

impl Envelope for Message {
    const PROTOCOL: u8 = protocol_id::MERKLE;
    /// Version 4: the syndrome sketch (`Sketch`, `Syndromes`, `Ask`, `Method::Sketch`);
    /// version 3 brought key-mapped GF(2^64) RIBLT symbols as a byte string (mapping
    /// `α = 5/8`, checksum bits packed after the sums) and `Done` by rank.
    const VERSION: u8 = 4;
}

impl Message {
    /// The message's kind, for per-kind metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Abort { .. } => "abort",
            Message::Fragment(f) => match f.kind {
                StepKind::Open => "open",
                StepKind::Hashes => "hashes",
                StepKind::Items => "items",
                StepKind::Symbols => "symbols",
                StepKind::More => "more",
                StepKind::Done => "done",
                StepKind::Sketch => "sketch",
                StepKind::Syndromes => "syndromes",
                StepKind::Ask => "ask",
            },
        }
    }
}

/// An item to its wire form.
#[must_use]
pub(crate) fn item_to_wire(i: Item) -> WireItem {
    (i.key.to_le_bytes(), i.digest.to_le_bytes())
}

/// An item from its wire form.
#[must_use]
pub(crate) fn item_from_wire(w: &WireItem) -> Item {
    Item {
        key: u64::from_le_bytes(w.0),
        digest: u64::from_le_bytes(w.1),
    }
}

/// A bitmap of `len` bits with the bits of `set` (indices into `0..len`) set.
#[must_use]
pub fn bitmap(len: usize, set: impl IntoIterator<Item = usize>) -> Bytes {
    let mut b = vec![0u8; len.div_ceil(8)];
    for i in set {
        if let Some(byte) = b.get_mut(i / 8) {
            *byte |= 1 << (i % 8);
        }
    }
    Bytes::from(b)
}

/// The set bits of a bitmap over `len` items, or `None` if its length is wrong or a bit
/// past `len` is set.
#[must_use]
pub fn bits(map: &[u8], len: usize) -> Option<Vec<usize>> {
    if map.len() != len.div_ceil(8) {
        return None;
    }
    let mut out = Vec::new();
    for (i, &byte) in map.iter().enumerate() {
        let mut b = byte;
        while b != 0 {
            let j = i * 8 + b.trailing_zeros() as usize;
            if j >= len {
                return None;
            }
            out.push(j);
            b &= b - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use epidemic_core::codec;

    #[test]
    fn golden_bytes() {
        let m = Message::Fragment(Fragment {
            session: 1,
            from_initiator: true,
            step: 2,
            kind: StepKind::More,
            index: 0,
            count: 1,
            data: Bytes::from_static(&[7, 8]),
        });
        assert_eq!(
            codec::encode(&m).unwrap(),
            [5, 4, 0, 1, 1, 2, 4, 0, 1, 2, 7, 8]
        );
        let a = Message::Abort {
            session: 300,
            from_initiator: false,
            reason: AbortReason::Busy,
        };
        assert_eq!(codec::encode(&a).unwrap(), [5, 4, 1, 0xAC, 2, 0, 1]);
        let s = Step::More { upto: 5 };
        assert_eq!(postcard::to_allocvec(&s).unwrap(), [4, 5]);
        // A first batch of two symbols: variant, level, empty bitmap, start, hash, then
        // a length-prefixed string of 2 × 16 bytes of sums and 9 bytes of checksum bits
        // (64 for symbol 0, 8 for symbol 1).
        let sym = crate::riblt::Symbol {
            sum: 1,
            weighted: 2,
            check: 3,
        };
        let batch = Step::Symbols {
            level: 1,
            diff: Bytes::new(),
            start: 0,
            hash: Some([9; 8]),
            symbols: crate::riblt::encode_symbols(0, &[sym, sym]).into(),
        };
        let b = postcard::to_allocvec(&batch).unwrap();
        assert_eq!(b[..13], [3, 1, 0, 0, 1, 9, 9, 9, 9, 9, 9, 9, 9]);
        assert_eq!(b[13], 41);
        let pair = [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(b[14..30], pair);
        assert_eq!(b[30..46], pair);
        assert_eq!(b[46..55], [3, 0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(b.len(), 55);
        // Symbol 235 carries one checksum bit (padded to a byte), symbol 333 none.
        assert_eq!(
            crate::riblt::encode_symbols(235, &[sym]),
            [pair.as_slice(), &[1]].concat()
        );
        assert_eq!(crate::riblt::encode_symbols(333, &[sym]), pair);
        // `Done` naming ranks 1 and 2 of the receiver's items as gone, nothing else.
        let done = Step::Done {
            gone: crate::ranks::Ranks::encode(&[1, 2]),
            changed: crate::ranks::Ranks::default(),
            digests: vec![],
            mine: vec![],
        };
        assert_eq!(
            postcard::to_allocvec(&done).unwrap(),
            [5, 2, 0, 1, 0b001, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn bitmaps_round_trip_and_reject_bad_lengths() {
        let m = bitmap(10, [0, 3, 9]);
        assert_eq!(bits(&m, 10), Some(vec![0, 3, 9]));
        assert_eq!(bits(&m, 20), None);
        assert_eq!(bits(&[0xFF, 0xFF], 10), None);
        assert_eq!(bits(&[], 0), Some(vec![]));
    }
}
