//! One session's state: its phase, the step it expects, the step it last sent (kept for
//! retransmission) and the reassembly of the step being received.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use epidemic_core::TimerId;
use serde::Serialize;

use crate::message::{Fragment, Message, StepKind};
use crate::planner::Method;
use crate::riblt::{Decoder, Encoder};
use crate::sketch;
use crate::store::Item;

/// How a session found the difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Finish {
    /// Not finished yet.
    #[default]
    Pending,
    /// The compared hashes were equal: no difference.
    Equal,
    /// Item lists of the differing subtrees.
    Lists,
    /// A RIBLT sketch of the differing subtrees.
    Riblt,
    /// A syndrome sketch of the differing subtrees.
    Sketch,
}

/// What one session cost, as seen by one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SessionReport {
    /// The method the initiator asked for.
    pub method: Method,
    /// How the difference was found.
    pub finish: Finish,
    /// The deepest level whose hashes were compared (0 = root only).
    pub levels: u8,
    /// Steps sent and received (a round trip is two).
    pub steps: u32,
    /// Bytes sent, envelopes and retransmissions included.
    pub bytes_sent: u64,
    /// Bytes received, envelopes and duplicates included.
    pub bytes_received: u64,
    /// Coded symbols sent or received.
    pub symbols: u64,
    /// Items sent or received in lists.
    pub list_items: u64,
}

/// Where a session is.
#[derive(Debug)]
pub(crate) enum Phase {
    /// A responder that has not handled the `Open` yet.
    New,
    /// We sent the hashes of `set` (node indices at `level`); the peer compares them.
    SentHashes { level: u8, set: Vec<u32> },
    /// We sent `items`; the peer answers `Done`, naming them by rank.
    AwaitDone { items: Vec<Item> },
    /// We stream symbols of the items under the differing nodes of `level` (the encoder
    /// keeps them: `Done` names them by rank).
    Encoding { level: u8, encoder: Box<Encoder> },
    /// We decode the peer's symbols; `theirs` is the peer's set hash (8 bytes of the XOR of
    /// its item hashes under the nodes), `ours` ours when the decoder was built.
    Decoding {
        decoder: Box<Decoder>,
        theirs: u64,
        ours: u64,
    },
    /// We answer the asks of the peer's syndrome decoder (the encoder keeps our items:
    /// `Done` names them by rank).
    SketchEncoding { encoder: Box<sketch::Encoder> },
    /// We decode the peer's syndromes; `ask` is what we asked for last; `theirs` and
    /// `ours` the set hashes as in `Decoding`.
    SketchDecoding {
        decoder: Box<sketch::Decoder>,
        ask: sketch::Ask,
        theirs: u64,
        ours: u64,
    },
    /// We sent `Done`; the session lingers to answer a retransmission of the last step.
    Finished,
}

/// A step being received, fragment by fragment.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    step: u32,
    kind: Option<StepKind>,
    count: u16,
    parts: BTreeMap<u16, Bytes>,
    bytes: usize,
}

/// Why a fragment was refused by the reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Disagrees with earlier fragments of the step, or is out of range.
    Inconsistent,
    /// The step would exceed the configured size.
    TooLarge,
}

impl Reassembly {
    /// Adds a fragment; returns the whole step's bytes and kind once complete.
    pub(crate) fn add(
        &mut self,
        f: &Fragment,
        max_bytes: usize,
    ) -> Result<Option<(StepKind, Vec<u8>)>, Refused> {
        if f.count == 0 || f.index >= f.count {
            return Err(Refused::Inconsistent);
        }
        if self.kind.is_none() || self.step != f.step {
            *self = Self {
                step: f.step,
                kind: Some(f.kind),
                count: f.count,
                ..Self::default()
            };
        } else if self.kind != Some(f.kind) || self.count != f.count {
            return Err(Refused::Inconsistent);
        }
        if self.parts.contains_key(&f.index) {
            return Ok(None);
        }
        self.bytes += f.data.len();
        if self.bytes > max_bytes {
            return Err(Refused::TooLarge);
        }
        self.parts.insert(f.index, f.data.clone());
        if self.parts.len() < usize::from(self.count) {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(self.bytes);
        for p in self.parts.values() {
            out.extend_from_slice(p);
        }
        // `kind` was set when the first fragment arrived.
        let kind = self.kind.take().expect("set on the first fragment");
        *self = Self::default();
        Ok(Some((kind, out)))
    }
}

/// One session with one peer.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) method: Method,
    pub(crate) remote_count: u64,
    pub(crate) phase: Phase,
    /// The step number expected next from the peer.
    pub(crate) expect: u32,
    /// The step we handled last (a duplicate of it means our answer was lost).
    pub(crate) last_handled: Option<u32>,
    /// The fragments of the step we sent last.
    pub(crate) cached: Vec<Message>,
    pub(crate) reasm: Reassembly,
    pub(crate) retries: u32,
    pub(crate) timer: Option<TimerId>,
    pub(crate) last_resend: Option<Instant>,
    pub(crate) restarts: u32,
    pub(crate) report: SessionReport,
}

impl Session {
    pub(crate) fn new(method: Method, phase: Phase, expect: u32, restarts: u32) -> Self {
        Self {
            method,
            remote_count: 0,
            phase,
            expect,
            last_handled: None,
            cached: Vec::new(),
            reasm: Reassembly::default(),
            retries: 0,
            timer: None,
            last_resend: None,
            restarts,
            report: SessionReport {
                method,
                ..SessionReport::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(step: u32, index: u16, count: u16, data: &'static [u8]) -> Fragment {
        Fragment {
            session: 1,
            from_initiator: true,
            step,
            kind: StepKind::Items,
            index,
            count,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn reassembles_in_any_order_ignoring_duplicates() {
        let mut r = Reassembly::default();
        assert_eq!(r.add(&frag(2, 1, 3, b"cd"), 100), Ok(None));
        assert_eq!(r.add(&frag(2, 1, 3, b"cd"), 100), Ok(None));
        assert_eq!(r.add(&frag(2, 0, 3, b"ab"), 100), Ok(None));
        assert_eq!(
            r.add(&frag(2, 2, 3, b"e"), 100),
            Ok(Some((StepKind::Items, b"abcde".to_vec())))
        );
    }

    #[test]
    fn refuses_inconsistent_or_oversized_steps() {
        let mut r = Reassembly::default();
        assert_eq!(r.add(&frag(2, 3, 3, b"x"), 100), Err(Refused::Inconsistent));
        assert_eq!(r.add(&frag(2, 0, 0, b"x"), 100), Err(Refused::Inconsistent));
        assert_eq!(r.add(&frag(2, 0, 3, b"xy"), 100), Ok(None));
        assert_eq!(r.add(&frag(2, 1, 4, b"x"), 100), Err(Refused::Inconsistent));
        assert_eq!(r.add(&frag(2, 1, 3, b"xyz"), 4), Err(Refused::TooLarge));
    }
}
