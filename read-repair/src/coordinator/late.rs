//! Late answers: completed reads are remembered for one read timeout, so an answer that
//! arrives after its read is recognised (not counted as hostile), feeds the replica's
//! latency average, and repairs its replica if it shows it stale.

use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

use epidemic_core::{Output, TimerId};
use smallvec::SmallVec;

use super::{Coordinator, Read, State, Timer};
use crate::config::RepairMode;
use crate::digest::{Digest, digest};
use crate::message::{Message, ReadId};
use crate::record::{Record, Resolver, Schema};

/// A completed read, remembered for a while so late answers are recognised (and their
/// replicas repaired if stale).
#[derive(Debug, Clone)]
pub(super) struct Linger<P, S: Schema> {
    key: S::Key,
    contacted: SmallVec<[P; 8]>,
    /// When each contacted replica that has not answered yet was asked (`None`: it
    /// answered, so another answer is a duplicate).
    pending: SmallVec<[Option<Instant>; 8]>,
    resolved: Option<Record<S>>,
    resolved_digest: Digest,
    repair: bool,
    timer: TimerId,
}

/// A late answer.
pub(super) enum Late<S: Schema> {
    Data(Option<Record<S>>),
    Digest(Digest),
    Ack,
}

impl<P, S, R> Coordinator<P, S, R>
where
    P: Clone + Ord + Hash + Debug,
    S: Schema,
    R: Resolver<S::Version>,
{
    /// An answer for a read that completed.
    pub(super) fn on_late(&mut self, now: Instant, from: &P, id: ReadId, answer: Late<S>) {
        let Some(l) = self.lingering.get_mut(&id) else {
            self.stats.unknown_id += 1;
            return;
        };
        let Some(i) = l.contacted.iter().position(|p| p == from) else {
            self.stats.wrong_replica += 1;
            return;
        };
        let Some(sent) = l.pending[i].take() else {
            if matches!(answer, Late::Ack) {
                // Acknowledgements of repairs the read no longer waited for.
                self.stats.late_responses += 1;
            } else {
                self.stats.duplicate_responses += 1;
            }
            return;
        };
        // A slow replica answers late: its average must learn that, or the
        // lowest-latency choice would keep picking it.
        if !matches!(answer, Late::Ack) {
            self.latency
                .record_peer(from, now.saturating_duration_since(sent));
        }
        if !l.repair {
            self.stats.late_responses += 1;
            return;
        }
        let (key, resolved, rd) = (l.key.clone(), l.resolved.clone(), l.resolved_digest);
        self.late_answer(id, key, resolved.as_ref(), Some(rd), from, answer);
    }

    /// Counts a late answer and repairs its replica if it shows it stale.
    pub(super) fn late_answer(
        &mut self,
        id: ReadId,
        key: S::Key,
        resolved: Option<&Record<S>>,
        resolved_digest: Option<Digest>,
        from: &P,
        answer: Late<S>,
    ) {
        self.stats.late_responses += 1;
        let Some(resolved) = resolved.filter(|_| self.config.repair_late) else {
            return;
        };
        let diff = match answer {
            Late::Data(record) => resolved.diff(record.as_ref()),
            // A digest says only that the replica differs: send the whole record.
            Late::Digest(d) if Some(d) != resolved_digest => resolved.clone(),
            Late::Digest(_) | Late::Ack => return,
        };
        if diff.is_empty() {
            return;
        }
        self.stats.late_repairs += 1;
        self.count_repair(&diff, resolved);
        self.out.push_back(Output::Send {
            to: from.clone(),
            msg: Message::Repair {
                id,
                key,
                diff,
                ack: false,
            },
        });
    }

    /// Keeps a completed read for one read timeout, to recognise its late answers.
    pub(super) fn remember(&mut self, now: Instant, id: ReadId, read: &Read<P, S>) {
        if self.config.max_lingering == 0 {
            return;
        }
        let n = read.replies.len();
        let timer = self
            .timers
            .insert(now + self.config.read_timeout, (id, Timer::Forget));
        let linger = Linger {
            key: read.key.clone(),
            contacted: read.order[..n].iter().cloned().collect(),
            pending: read
                .replies
                .iter()
                .map(|r| matches!(r.state, State::Waiting | State::Abandoned).then_some(r.sent))
                .collect(),
            resolved: read.resolved.clone(),
            resolved_digest: read
                .resolved_digest
                .unwrap_or_else(|| digest(read.resolved.as_ref())),
            repair: read.repair != RepairMode::None,
            timer,
        };
        if let Some(old) = self.linger_order.push(id) {
            if let Some(l) = self.lingering.remove(&old) {
                self.timers.cancel(l.timer);
                self.stats.lingering_evicted += 1;
            }
        }
        self.lingering.insert(id, linger);
    }

    /// A remembered read's time is up: replicas that never answered count as slow as
    /// the wait, and the read is forgotten.
    pub(super) fn forget(&mut self, now: Instant, id: ReadId) {
        if let Some(l) = self.lingering.remove(&id) {
            // Replicas that never answered count as slow as the linger time, so a
            // crashed replica stops being preferred.
            for (peer, sent) in l.contacted.iter().zip(&l.pending) {
                if let Some(sent) = sent {
                    self.latency
                        .record_peer(peer, now.saturating_duration_since(*sent));
                }
            }
        }
        // Reads are forgotten in about the order they completed: the id is almost
        // always the oldest, so this is O(1) rather than a scan.
        if self.linger_order.front() == Some(&id) {
            self.linger_order.pop();
        } else {
            self.linger_order.retain(|&x| x != id);
        }
    }
}
