//! The coordinator role: a write to the N owners of a key at a consistency level, sloppy
//! quorums through fallback nodes, and hints for every owner the write did not reach.

use std::time::Instant;

use bytes::Bytes;
use epidemic_core::TimerId;
use rand::Rng;
use smallvec::SmallVec;

use crate::consistency::Consistency;
use crate::durable::LogRecord;
use crate::error::WriteError;
use crate::hints::DropReason;
use crate::message::{HintId, Message, Mutation, NodeId, WriteId};
use crate::node::{Deadline, Event, Node};
use crate::store::Store;

/// One owner's slot in a write.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    /// The owner of the key.
    owner: NodeId,
    /// Who was asked to store it: the owner, a fallback standing in for it, or nobody.
    via: Option<NodeId>,
    acked: bool,
    /// A hint on this node covering the owner.
    hint: Option<HintId>,
}

/// A write in flight.
#[derive(Debug)]
pub(crate) struct PendingWrite {
    mutation: Mutation,
    level: Consistency,
    required: usize,
    started: Instant,
    deadline: Instant,
    timer: TimerId,
    slots: SmallVec<[Slot; 4]>,
    reported: bool,
}

impl PendingWrite {
    fn acks(&self) -> usize {
        self.slots.iter().filter(|s| s.acked).count()
    }

    fn hinted(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !s.acked && s.hint.is_some())
            .count()
    }

    fn score(&self) -> usize {
        self.acks()
            + if self.level.hints_count() {
                self.hinted()
            } else {
                0
            }
    }
}

impl<S: Store, R: Rng> Node<S, R> {
    /// Writes `mutation` to the first N nodes of `preference` (its owners) at `level`; the
    /// nodes after the first N are fallbacks, asked in order to stand in for owners known
    /// down when [`Config::sloppy_quorum`](crate::Config::sloppy_quorum) is on.
    ///
    /// The outcome arrives as [`Event::WriteAcked`] or [`Event::WriteFailed`]. An owner
    /// that is this node is written locally at once.
    ///
    /// # Errors
    /// [`WriteError`] when the write cannot start; nothing changed then.
    pub fn write(
        &mut self,
        now: Instant,
        mutation: Mutation,
        preference: &[NodeId],
        level: Consistency,
    ) -> Result<WriteId, WriteError> {
        let now = self.clock.advance(now);
        let n = self.config.replication;
        if preference.len() < n || has_duplicate(preference) {
            return Err(WriteError::BadPreferenceList);
        }
        let required = level.required(n);
        if required == 0 || required > n {
            return Err(WriteError::Unsatisfiable {
                required,
                replicas: n,
            });
        }
        let limit = self.config.max_mutation_bytes;
        if mutation.size() > limit {
            return Err(WriteError::TooLarge {
                bytes: mutation.size(),
                limit,
            });
        }
        if self.pending.len() >= self.config.max_pending_writes {
            return Err(WriteError::Overloaded);
        }
        let slots = self.plan(&preference[..n], &preference[n..]);
        let alive = slots.iter().filter(|s| s.via.is_some()).count();
        if !level.hints_count() && alive < required {
            return Err(WriteError::Unavailable { required, alive });
        }

        let id = loop {
            let id = WriteId(self.rng.next_u64());
            if !self.pending.contains_key(&id) {
                break id;
            }
        };
        self.stats.writes += 1;
        let deadline = now + self.config.write_timeout;
        let timer = self.deadlines.insert(deadline, Deadline::Write(id));
        let mut pending = PendingWrite {
            mutation,
            level,
            required,
            started: now,
            deadline,
            timer,
            slots,
            reported: false,
        };
        for slot in &mut pending.slots {
            self.start_slot(now, id, &pending.mutation, slot);
        }
        self.pending.insert(id, pending);
        self.progress(now, id);
        Ok(id)
    }

    /// Who stores each owner's copy: the owner if alive, else (sloppy) the next alive
    /// fallback not used yet, else nobody (the coordinator will hint it).
    fn plan(&self, owners: &[NodeId], fallbacks: &[NodeId]) -> SmallVec<[Slot; 4]> {
        let mut used: SmallVec<[NodeId; 4]> = SmallVec::new();
        owners
            .iter()
            .map(|&owner| {
                let via = if self.is_alive(owner) {
                    Some(owner)
                } else if self.config.sloppy_quorum && !self.beyond_window(owner) {
                    let f = fallbacks
                        .iter()
                        .copied()
                        .find(|f| self.is_alive(*f) && !used.contains(f));
                    if let Some(f) = f {
                        used.push(f);
                    }
                    f
                } else {
                    None
                };
                Slot {
                    owner,
                    via,
                    acked: false,
                    hint: None,
                }
            })
            .collect()
    }

    /// Whether `target` has been reported down for longer than the max hint window.
    pub(crate) fn beyond_window(&self, target: NodeId) -> bool {
        let now = self.clock.last().unwrap_or_else(|| {
            // `new` advances the clock, so `last` is always set.
            unreachable!("clock advanced at construction")
        });
        self.down.get(&target).is_some_and(|since| {
            now.saturating_duration_since(*since) > self.config.max_hint_window
        })
    }

    fn start_slot(&mut self, now: Instant, id: WriteId, m: &Mutation, slot: &mut Slot) {
        match slot.via {
            Some(v) if v == self.me && slot.owner == self.me => {
                slot.acked = self.apply_local(m);
            }
            Some(v) if v == self.me => {
                // This node is the fallback: keep a guest copy and a handoff hint.
                if self.hints.refuses(slot.owner).is_none() && self.apply_local(m) {
                    slot.acked = self
                        .create_hint(now, slot.owner, m.clone(), true, now)
                        .is_some();
                } else {
                    slot.hint = self.create_hint(now, slot.owner, m.clone(), false, now);
                }
            }
            Some(v) if v == slot.owner => self.send(
                v,
                Message::Write {
                    id,
                    mutation: m.clone(),
                },
            ),
            Some(v) => self.send(
                v,
                Message::HintedWrite {
                    id,
                    owner: slot.owner,
                    mutation: m.clone(),
                },
            ),
            None => slot.hint = self.create_hint(now, slot.owner, m.clone(), false, now),
        }
    }

    pub(crate) fn apply_local(&mut self, m: &Mutation) -> bool {
        if self.store.apply(m).is_ok() {
            self.stats.applied += 1;
            true
        } else {
            self.stats.store_errors += 1;
            false
        }
    }

    /// Stores and persists a hint for `target`, or reports why not.
    pub(crate) fn create_hint(
        &mut self,
        now: Instant,
        target: NodeId,
        mutation: Mutation,
        handoff: bool,
        ready_at: Instant,
    ) -> Option<HintId> {
        if target == self.me {
            return None;
        }
        let reason = if self.beyond_window(target) {
            Some(DropReason::Window)
        } else {
            self.hints.refuses(target)
        };
        if let Some(reason) = reason {
            self.report_drop(target, &mutation.key, mutation.timestamp, reason);
            return None;
        }
        let id = loop {
            let id = HintId(self.rng.next_u64());
            if !self.hints.contains(id) {
                break id;
            }
        };
        let wall = self.wall_ms(now);
        let record = self
            .hints
            .insert(id, target, mutation, now, wall, handoff, ready_at)
            .record();
        self.stats.hints_stored += 1;
        self.persist(LogRecord::Put(record));
        Some(id)
    }

    /// After any change to a write: acknowledge it once it meets its level (hinting every
    /// owner still outstanding first), and forget it once every slot acknowledged.
    fn progress(&mut self, now: Instant, id: WriteId) {
        let Some(mut p) = self.pending.remove(&id) else {
            return;
        };
        if !p.reported && p.score() >= p.required {
            // Before the client hears "acknowledged", a durable hint covers every owner
            // that has not acknowledged: a crash now loses nothing acknowledged.
            if self.config.hint_before_ack {
                let (m, ready) = (p.mutation.clone(), p.deadline);
                for slot in p.slots.iter_mut().filter(|s| !s.acked && s.hint.is_none()) {
                    slot.hint = self.create_hint(now, slot.owner, m.clone(), false, ready);
                }
            }
            p.reported = true;
            self.stats.writes_acked += 1;
            self.emit(Event::WriteAcked {
                id,
                acks: p.acks(),
                hinted: p.hinted(),
                latency: now.saturating_duration_since(p.started),
            });
        }
        if p.slots.iter().all(|s| s.acked) {
            self.cancel(p.timer);
        } else {
            self.pending.insert(id, p);
        }
    }

    pub(crate) fn on_write_ack(&mut self, now: Instant, from: NodeId, id: WriteId) {
        let Some(p) = self.pending.get_mut(&id) else {
            self.stats.unknown_acks += 1;
            return;
        };
        let Some(slot) = p.slots.iter_mut().find(|s| s.via == Some(from) && !s.acked) else {
            self.stats.forged_acks += 1;
            return;
        };
        slot.acked = true;
        if let Some(h) = slot.hint.take() {
            // The owner (or a fallback now holding a hint for it) has the write: the
            // coordinator's own hint is no longer needed.
            self.stats.hints_superseded += 1;
            self.remove_hint(h);
        }
        self.progress(now, id);
    }

    pub(crate) fn on_write_timeout(&mut self, now: Instant, id: WriteId) {
        let Some(mut p) = self.pending.remove(&id) else {
            return;
        };
        let m = p.mutation.clone();
        for slot in p.slots.iter_mut().filter(|s| !s.acked && s.hint.is_none()) {
            slot.hint = self.create_hint(now, slot.owner, m.clone(), false, now);
        }
        if p.reported {
            return;
        }
        if p.score() >= p.required {
            self.stats.writes_acked += 1;
            self.emit(Event::WriteAcked {
                id,
                acks: p.acks(),
                hinted: p.hinted(),
                latency: now.saturating_duration_since(p.started),
            });
        } else {
            self.stats.writes_failed += 1;
            self.emit(Event::WriteFailed {
                id,
                acks: p.score(),
                required: p.required,
            });
        }
    }

    /// Removes a delivered (or superseded) hint and persists the removal; drops the guest
    /// copy it covered if it was the last hint for that key.
    pub(crate) fn remove_hint(&mut self, id: HintId) -> Option<crate::hints::Hint> {
        let (hint, discard) = self.forget_hint(id)?;
        if let Some(up_to) = discard {
            if self.store.discard(&hint.mutation.key, up_to) {
                self.stats.guests_discarded += 1;
            }
        }
        Some(hint)
    }

    /// Drops a hint at a bound, window or TTL, reporting it. A guest copy it covered stays
    /// in the store (the owner never got it: anti-entropy may still need it).
    pub(crate) fn drop_hint(&mut self, id: HintId, reason: DropReason) {
        if let Some((h, _)) = self.forget_hint(id) {
            let key: Bytes = h.mutation.key.clone();
            self.report_drop(h.target, &key, h.mutation.timestamp, reason);
        }
    }

    /// Removes a hint, its replay in flight and persists the removal.
    fn forget_hint(&mut self, id: HintId) -> Option<(crate::hints::Hint, Option<u64>)> {
        let (hint, discard) = self.hints.remove(id)?;
        if let Some(timer) = self.replay.get_mut(&hint.target).and_then(|s| s.forget(id)) {
            self.cancel(timer);
        }
        self.persist(LogRecord::Remove(id));
        Some((hint, discard))
    }
}

fn has_duplicate(nodes: &[NodeId]) -> bool {
    nodes
        .iter()
        .enumerate()
        .any(|(i, a)| nodes[i + 1..].contains(a))
}
