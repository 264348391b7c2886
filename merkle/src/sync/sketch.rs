//! A session's syndrome sketch ([`crate::sketch`]): the sender's first batch and its
//! answers to asks, the receiver's decoding, asking, and the check of what it decoded
//! against the sender's set hash.

use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

use bytes::Bytes;

use super::{FailReason, Key3, MerkleSync};
use crate::hasher::ItemHasher;
use crate::message::{Step, bitmap, bits};
use crate::session::{Finish, Phase, Session};
use crate::sketch::{self, Ask, Decoder, Encoder, Refused};
use crate::store::Store;

impl From<Refused> for FailReason {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Protocol => FailReason::Protocol,
            Refused::TooLarge => FailReason::TooLarge,
        }
    }
}

impl<P, S, H> MerkleSync<P, S, H>
where
    P: Clone + Ord + Hash + Debug,
    S: Store,
    H: ItemHasher,
{
    /// Most buckets a sketch may split into.
    fn max_buckets(&self) -> usize {
        (self.config.max_differences / 2).max(1 << 12)
    }

    /// Starts a sketch of our items under `nodes` of `level` (already collected into
    /// `self.items`), for about `estimate` differences.
    #[allow(clippy::too_many_arguments)] // the session context and the comparison
    pub(super) fn start_sketch(
        &mut self,
        now: Instant,
        key: &Key3<P>,
        s: &mut Session,
        reply: u32,
        (level, nodes, diff): (u8, &[u32], Bytes),
        estimate: f64,
    ) -> Result<(), FailReason> {
        let hash = self.set_hash(level, nodes).to_le_bytes();
        let mut encoder = Box::new(Encoder::new(&self.items, key.1, self.max_buckets()));
        let (depth, per) = sketch::first_batch(estimate.min(self.config.max_differences as f64));
        if (u64::from(per) << depth) > self.config.max_symbols() {
            return Err(FailReason::TooLarge);
        }
        let syndromes = encoder.first(depth, per)?;
        s.report.symbols += encoder.sent();
        let step = Step::Sketch {
            level,
            diff,
            hash,
            depth,
            per,
            syndromes: syndromes.into(),
        };
        self.send_step(now, key, s, reply, &step)?;
        s.phase = Phase::SketchEncoding { encoder };
        Ok(())
    }

    /// The first batch of the peer's sketch of its items under `nodes` of `level`.
    #[allow(clippy::too_many_arguments)] // the session context and the step's fields
    pub(super) fn on_first_sketch(
        &mut self,
        now: Instant,
        key: &Key3<P>,
        s: &mut Session,
        reply: u32,
        (level, nodes): (u8, &[u32]),
        (hash, depth, per): ([u8; 8], u8, u32),
        syndromes: &[u8],
    ) -> Result<bool, FailReason> {
        self.collect(level, nodes);
        let ours = self.set_hash(level, nodes);
        let mut decoder = Box::new(Decoder::new(
            &self.items,
            key.1,
            self.config.max_differences,
            self.max_buckets(),
        ));
        if (syndromes.len() / 8) as u64 > self.config.max_symbols() {
            return Err(FailReason::TooLarge);
        }
        decoder.first(depth, per, syndromes)?;
        s.report.symbols += decoder.received();
        self.on_sketch(
            now,
            key,
            s,
            reply,
            decoder,
            (u64::from_le_bytes(hash), ours),
        )
    }

    /// The answer to the ask `ask` we sent.
    #[allow(clippy::too_many_arguments)] // the session context and the step's fields
    pub(super) fn on_syndromes(
        &mut self,
        now: Instant,
        key: &Key3<P>,
        s: &mut Session,
        reply: u32,
        mut decoder: Box<Decoder>,
        ask: &Ask,
        sets: (u64, u64),
        syndromes: &[u8],
    ) -> Result<bool, FailReason> {
        let before = decoder.received();
        if before + (syndromes.len() / 8) as u64 > self.config.max_symbols() {
            return Err(FailReason::TooLarge);
        }
        decoder.add(ask, syndromes)?;
        s.report.symbols += decoder.received() - before;
        self.on_sketch(now, key, s, reply, decoder, sets)
    }

    /// Finishes if every bucket decoded, asks for more if not.
    fn on_sketch(
        &mut self,
        now: Instant,
        key: &Key3<P>,
        s: &mut Session,
        reply: u32,
        decoder: Box<Decoder>,
        (theirs, ours): (u64, u64),
    ) -> Result<bool, FailReason> {
        if decoder.is_decoded() {
            let difference = decoder.difference();
            let local_items = decoder.local_items();
            self.finish_decoded(now, key, s, reply, (theirs, ours), difference, local_items)?;
            s.report.finish = Finish::Sketch;
            return Ok(false);
        }
        // Not decoded, so some bucket is pending and there is something to ask.
        let ask = decoder.next_ask().ok_or(FailReason::Protocol)?;
        let buckets = decoder.leaves().len();
        let after = if ask.split.is_empty() {
            buckets
        } else {
            buckets + ask.split.len() * ((1 << ask.bits) - 1)
        };
        let step = Step::Ask {
            split: bitmap(buckets, ask.split.iter().copied()),
            bits: ask.bits,
            extend: bitmap(after, ask.extend.iter().map(|e| e.0)),
            by: ask.extend.iter().map(|e| e.1).collect(),
        };
        self.send_step(now, key, s, reply, &step)?;
        s.phase = Phase::SketchDecoding {
            decoder,
            ask,
            theirs,
            ours,
        };
        Ok(false)
    }

    /// The peer's decoder asks for more.
    #[allow(clippy::too_many_arguments)] // the session context and the step's fields
    pub(super) fn on_ask(
        &mut self,
        now: Instant,
        key: &Key3<P>,
        s: &mut Session,
        reply: u32,
        mut encoder: Box<Encoder>,
        (split, bits_per, extend, by): (&[u8], u8, &[u8], &[u32]),
    ) -> Result<bool, FailReason> {
        let buckets = encoder.buckets();
        let split = bits(split, buckets).ok_or(FailReason::Protocol)?;
        if !split.is_empty() && !(1..=sketch::MAX_SPLIT_BITS).contains(&bits_per) {
            return Err(FailReason::Protocol);
        }
        let after = if split.is_empty() {
            buckets
        } else {
            buckets + split.len() * ((1 << bits_per) - 1)
        };
        let extend = bits(extend, after).ok_or(FailReason::Protocol)?;
        if extend.len() != by.len() {
            return Err(FailReason::Protocol);
        }
        let ask = Ask {
            split,
            bits: bits_per,
            extend: extend.into_iter().zip(by.iter().copied()).collect(),
        };
        let cost = encoder.cost(&ask).ok_or(FailReason::Protocol)?;
        if encoder.sent().saturating_add(cost) > self.config.max_symbols() {
            return Err(FailReason::TooLarge);
        }
        let syndromes = encoder.answer(&ask)?;
        s.report.symbols += cost;
        self.send_step(
            now,
            key,
            s,
            reply,
            &Step::Syndromes {
                syndromes: syndromes.into(),
            },
        )?;
        s.phase = Phase::SketchEncoding { encoder };
        Ok(false)
    }
}
