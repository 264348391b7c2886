//! Full-state exchange (memberlist's push-pull) over datagrams: the state is split into
//! chunks that each fit in one packet, and every chunk is merged on its own (merging is
//! idempotent and order-free), so a lost chunk costs only its members until the next
//! exchange. The initiator's state asks for the receiver's in return, once per exchange.

use std::time::Instant;

use epidemic_core::codec::{self, ENVELOPE_LEN};
use rand::Rng;

use crate::Address;
use crate::message::{MemberState, Message, State};
use crate::swim::{Swim, Tick};

impl<A: Address, R: Rng> Swim<A, R> {
    /// Sends our whole table (ourselves first) to `to` in packet-sized chunks.
    pub(crate) fn send_state(&mut self, to: &A, seq: u32, reply: bool) {
        let mut all = Vec::with_capacity(self.members.len() + 1);
        all.push(MemberState {
            member: self.me.clone(),
            incarnation: self.incarnation,
            state: if self.left { State::Left } else { State::Alive },
            meta: self.meta.clone(),
        });
        all.extend(self.members.iter().map(|(a, m)| MemberState {
            member: a.clone(),
            incarnation: m.incarnation,
            state: m.state,
            meta: if m.state.is_live() {
                m.meta()
            } else {
                bytes::Bytes::new()
            },
        }));
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
        if self.replied.iter().any(|(a, s)| a == from && *s == seq) {
            return;
        }
        let _ = self.replied.push((from.clone(), seq));
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
