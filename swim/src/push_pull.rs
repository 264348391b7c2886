//! Full-state exchange (memberlist's push-pull) over datagrams: the state is split into
//! chunks that each fit in one packet, and every chunk is merged on its own (merging is
//! idempotent and order-free), so a lost chunk costs only its members until the next
//! exchange. The initiator's state asks for the receiver's in return, once per exchange.
//!
//! A periodic exchange first sends a digest of the table ([`Message::PushPullDigest`]):
//! in a converged group the tables are equal and the round costs one 20-byte datagram
//! instead of the whole state both ways. A peer whose digest differs answers by starting
//! the full exchange itself, so a difference costs one extra half round trip.

use std::time::Instant;

use bytes::Bytes;
use epidemic_core::codec::{self, ENVELOPE_LEN};
use rand::Rng;
use serde::Serialize;

use crate::Address;
use crate::message::{MemberState, Message, State};
use crate::swim::{Swim, Tick};

/// One table entry as the digest hashes it: the fields of [`MemberState`], borrowed.
#[derive(Serialize)]
struct EntryRef<'a, A> {
    member: &'a A,
    incarnation: u32,
    state: State,
    meta: &'a Bytes,
}

impl<A: Address, R: Rng> Swim<A, R> {
    /// Our table as a push-pull carries it: ourselves first, then every member with its
    /// metadata (none for tombstones).
    fn entries(&self) -> impl Iterator<Item = (&A, u32, State, Bytes)> + '_ {
        let me = (
            &self.me,
            self.incarnation,
            if self.left { State::Left } else { State::Alive },
            self.meta.clone(),
        );
        std::iter::once(me).chain(self.members.iter().map(|(a, m)| {
            let meta = if m.state.is_live() {
                m.meta()
            } else {
                Bytes::new()
            };
            (a, m.incarnation, m.state, meta)
        }))
    }

    /// The digest a periodic push-pull opens with: over ourselves and every member in the
    /// table (tombstones included), the XOR of the XXH3-128 of each (member, incarnation,
    /// state, metadata) in its wire encoding. It does not depend on the table's order, so
    /// two members with equal digests hold the same view; a cheap convergence check for
    /// tests and dashboards too. O(members).
    #[must_use]
    pub fn state_digest(&self) -> [u8; 16] {
        let mut buf = Vec::with_capacity(64);
        let mut acc = 0u128;
        for (member, incarnation, state, meta) in self.entries() {
            buf.clear();
            let entry = EntryRef {
                member,
                incarnation,
                state,
                meta: &meta,
            };
            match postcard::to_extend(&entry, std::mem::take(&mut buf)) {
                Ok(b) => buf = b,
                // Encoding into a Vec cannot fail for these types; were it to, the
                // digest differs from every peer's and the exchange falls back to the
                // full state, which is always correct.
                Err(_) => return [0xFF; 16],
            }
            acc ^= xxhash_rust::xxh3::xxh3_128(&buf);
        }
        acc.to_le_bytes()
    }

    /// Opens a periodic exchange with `to`: the digest, or the full state when digests
    /// are off.
    pub(crate) fn start_push_pull(&mut self, to: &A, seq: u32) {
        if self.config.push_pull_digest {
            let digest = self.state_digest();
            self.out.push_back(epidemic_core::Output::Send {
                to: to.clone(),
                msg: Message::PushPullDigest { seq, digest },
            });
        } else {
            self.send_state(to, seq, false);
        }
    }

    /// A peer's digest: nothing to do when our tables agree; otherwise we start the full
    /// exchange (our state, answered by theirs), once per (peer, exchange).
    pub(crate) fn on_push_pull_digest(&mut self, from: &A, seq: u32, digest: [u8; 16]) {
        if digest == self.state_digest() {
            self.stats.push_pulls_in_sync += 1;
            return;
        }
        if !self.first_answer(from, seq) {
            return;
        }
        self.send_state(from, seq, false);
    }

    /// Whether `(from, seq)` has not been answered with our state yet (the last 64 are
    /// remembered); records it. A duplicated datagram is answered once.
    fn first_answer(&mut self, from: &A, seq: u32) -> bool {
        if self.replied.iter().any(|(a, s)| a == from && *s == seq) {
            return false;
        }
        let _ = self.replied.push((from.clone(), seq));
        true
    }

    /// Sends our whole table (ourselves first) to `to` in packet-sized chunks.
    pub(crate) fn send_state(&mut self, to: &A, seq: u32, reply: bool) {
        let mut all = Vec::with_capacity(self.members.len() + 1);
        all.extend(
            self.entries()
                .map(|(member, incarnation, state, meta)| MemberState {
                    member: member.clone(),
                    incarnation,
                    state,
                    meta,
                }),
        );
        // Header: envelope, variant, seq, reply, chunk, chunks and the list length, each
        // at its largest varint.
        let header = ENVELOPE_LEN + 1 + 5 + 1 + 3 + 3 + 3;
        let budget = self.config.max_packet_size.saturating_sub(header);
        let mut chunks: Vec<Vec<MemberState<A>>> = vec![Vec::new()];
        let mut used = 0;
        for s in all {
            let size = codec::body_len(&s);
            if used + size > budget && !chunks.last().is_some_and(Vec::is_empty) {
                chunks.push(Vec::new());
                used = 0;
            }
            used += size;
            chunks.last_mut().expect("never empty").push(s);
        }
        let n = u16::try_from(chunks.len()).unwrap_or(u16::MAX);
        for (i, members) in chunks.into_iter().enumerate().take(usize::from(n)) {
            let chunk = u16::try_from(i).unwrap_or(u16::MAX);
            self.out.push_back(epidemic_core::Output::Send {
                to: to.clone(),
                msg: Message::PushPull {
                    seq,
                    reply,
                    chunk,
                    chunks: n,
                    members,
                },
            });
        }
    }

    pub(crate) fn on_push_pull(
        &mut self,
        now: Instant,
        from: &A,
        seq: u32,
        reply: bool,
        members: Vec<MemberState<A>>,
    ) {
        for s in members {
            self.merge(now, from, s);
        }
        if reply {
            if self.push_pull_seq == Some(seq) && self.join.take().is_some() {
                self.ticks.stop(Tick::Join);
            }
            return;
        }
        if !self.first_answer(from, seq) {
            return;
        }
        self.send_state(from, seq, true);
    }

    /// One remote entry. As in memberlist, a remote Dead only makes us suspect (we may know
    /// better, and the member gets a chance to refute); Left is taken as it is.
    fn merge(&mut self, now: Instant, from: &A, s: MemberState<A>) {
        self.stats.updates_received += 1;
        match s.state {
            State::Alive => self.apply_alive(now, s.member, s.incarnation, s.meta),
            State::Suspect | State::Dead => {
                self.apply_suspect(now, &s.member, s.incarnation, from, false);
            }
            State::Left => {
                let m = s.member.clone();
                self.apply_dead(now, &s.member, s.incarnation, &m, true);
            }
        }
    }
}
