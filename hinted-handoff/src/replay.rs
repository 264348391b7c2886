//! Hint replay: per target, a window of replays in flight that adapts to the target's
//! acknowledgement latency, so that replay does not swamp a recovering node.
//!
//! The controller is delay-based, like LEDBAT (RFC 6817): it remembers the fastest
//! acknowledgement seen from the target (its base latency, queue empty) and treats an
//! acknowledgement slower than that by more than `target_delay` as the target's queue
//! growing. Then the
//! window halves (at most once per round trip); otherwise it grows, doubling per round
//! trip until the first cut, then by one per round trip. A timeout halves it too; at a
//! window of one, replay to that target pauses until the next dispatch.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use epidemic_core::TimerId;
use rand::Rng;
use smallvec::SmallVec;

use crate::config::ReplayConfig;
use crate::hints::DropReason;
use crate::message::{HintId, Message, NodeId};
use crate::node::Event;
use crate::node::{Deadline, Node};
use crate::store::Store;

/// Replay state toward one target.
#[derive(Debug)]
pub(crate) struct ReplayState {
    window: f64,
    ssthresh: f64,
    base_rtt: Option<Duration>,
    last_cut: Option<Instant>,
    in_flight: BTreeMap<HintId, (Instant, TimerId)>,
    paused_until: Option<Instant>,
    /// Hints before this creation sequence were sent (and are in flight or gone) unless a
    /// timeout reset it: each pump scans only the new ones.
    cursor: u64,
}

impl ReplayState {
    pub(crate) fn new(cfg: &ReplayConfig) -> Self {
        let max = f64::from(cfg.max_in_flight);
        Self {
            window: if cfg.adaptive {
                f64::from(cfg.initial_window).min(max)
            } else {
                max
            },
            ssthresh: max,
            base_rtt: None,
            last_cut: None,
            in_flight: BTreeMap::new(),
            paused_until: None,
            cursor: 0,
        }
    }

    pub(crate) fn window(&self) -> f64 {
        self.window
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Replays allowed in flight now.
    fn limit(&self) -> usize {
        // The window is in [1, max_in_flight], a u32: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let w = self.window.floor().max(1.0) as usize;
        w
    }

    /// Forgets a replay in flight, returning its timer.
    pub(crate) fn forget(&mut self, id: HintId) -> Option<TimerId> {
        self.in_flight.remove(&id).map(|(_, t)| t)
    }

    pub(crate) fn on_ack(&mut self, now: Instant, rtt: Duration, cfg: &ReplayConfig) {
        let base = self.base_rtt.map_or(rtt, |b| b.min(rtt));
        self.base_rtt = Some(base);
        if !cfg.adaptive {
            return;
        }
        let max = f64::from(cfg.max_in_flight);
        if rtt.saturating_sub(base) > cfg.target_delay {
            let cut_due = self
                .last_cut
                .is_none_or(|t| now.saturating_duration_since(t) >= rtt);
            if cut_due {
                self.window = (self.window / 2.0).max(1.0);
                self.ssthresh = self.window;
                self.last_cut = Some(now);
            }
        } else if self.window < self.ssthresh {
            self.window = (self.window + 1.0).min(max);
        } else {
            self.window = (self.window + 1.0 / self.window).min(max);
        }
    }

    /// A replay timed out. Returns whether replay should pause.
    fn on_timeout(&mut self, now: Instant, cfg: &ReplayConfig) -> bool {
        if !cfg.adaptive {
            return false;
        }
        let paused = self.window <= 1.0;
        self.window = (self.window / 2.0).max(1.0);
        self.ssthresh = self.window;
        self.last_cut = Some(now);
        paused
    }
}

impl<S: Store, R: Rng> Node<S, R> {
    /// Sends `target` as many of its ready hints as its window allows.
    pub(crate) fn pump(&mut self, now: Instant, target: NodeId) {
        if target == self.me || self.down.contains_key(&target) {
            return;
        }
        if self.hints.count_for(target) == 0 {
            if self
                .replay
                .get(&target)
                .is_some_and(|s| s.in_flight.is_empty())
            {
                self.replay.remove(&target);
            }
            return;
        }
        let state = self
            .replay
            .entry(target)
            .or_insert_with(|| ReplayState::new(&self.config.replay));
        if state.paused_until.is_some_and(|t| now < t) {
            return;
        }
        state.paused_until = None;
        let room = state.limit().saturating_sub(state.in_flight.len());
        if room == 0 {
            return;
        }
        let ttl = self.config.hint_ttl;
        let mut expired: SmallVec<[HintId; 8]> = SmallVec::new();
        let mut ready: SmallVec<[HintId; 16]> = SmallVec::new();
        let mut first_waiting: Option<u64> = None;
        let mut next = state.cursor;
        for h in self.hints.for_target_from(target, state.cursor) {
            if ready.len() >= room {
                break;
            }
            next = h.seq + 1;
            if now.saturating_duration_since(h.created) >= ttl {
                expired.push(h.id);
            } else if h.ready_at > now {
                // Not ready yet: the cursor must come back for it.
                first_waiting.get_or_insert(h.seq);
            } else if !state.in_flight.contains_key(&h.id) {
                ready.push(h.id);
            }
        }
        state.cursor = first_waiting.unwrap_or(next);
        for id in expired {
            self.drop_hint(id, DropReason::Ttl);
        }
        let timeout = self.config.replay.timeout;
        for id in ready {
            let Some(h) = self.hints.get(id) else {
                continue;
            };
            let mutation = h.mutation.clone();
            let timer = self
                .deadlines
                .insert(now + timeout, Deadline::Replay(target, id));
            if let Some(state) = self.replay.get_mut(&target) {
                state.in_flight.insert(id, (now, timer));
            }
            self.stats.replays_sent += 1;
            self.send(target, Message::Replay { hint: id, mutation });
        }
    }

    /// Stops replay to `target` (reported down); its hints stay.
    pub(crate) fn abort_replay(&mut self, target: NodeId) {
        if let Some(state) = self.replay.remove(&target) {
            for (_, timer) in state.in_flight.into_values() {
                self.cancel(timer);
            }
        }
    }

    pub(crate) fn on_replay_ack(&mut self, now: Instant, from: NodeId, hint: HintId, ts: u64) {
        let Some(h) = self.hints.get(hint) else {
            self.stats.unknown_acks += 1;
            return;
        };
        if h.target != from || h.mutation.timestamp != ts {
            // Only the target may retire its hint, and only for the mutation it holds.
            self.stats.forged_acks += 1;
            return;
        }
        let handoff = h.handoff;
        let cfg = &self.config.replay;
        if let Some(state) = self.replay.get_mut(&from) {
            if let Some((sent, timer)) = state.in_flight.remove(&hint) {
                self.deadlines.cancel(timer);
                state.on_ack(now, now.saturating_duration_since(sent), cfg);
            }
        }
        self.remove_hint(hint);
        self.stats.hints_delivered += 1;
        self.emit(Event::HintDelivered {
            target: from,
            hint,
            handoff,
        });
        self.pump(now, from);
    }

    pub(crate) fn on_replay_timeout(&mut self, now: Instant, target: NodeId, hint: HintId) {
        let interval = self.config.replay_interval;
        let cfg = &self.config.replay;
        let Some(state) = self.replay.get_mut(&target) else {
            return;
        };
        if state.in_flight.remove(&hint).is_none() {
            return;
        }
        self.stats.replay_timeouts += 1;
        // Resend from the oldest hint not acknowledged.
        state.cursor = 0;
        if state.on_timeout(now, cfg) {
            state.paused_until = Some(now + interval);
        }
        self.pump(now, target);
    }

    /// Drops every hint past its TTL (each target's hints are in creation order, so only
    /// a prefix of each can be expired).
    pub(crate) fn expire_hints(&mut self, now: Instant) {
        let ttl = self.config.hint_ttl;
        let mut expired: Vec<HintId> = Vec::new();
        for t in self.hints.targets() {
            expired.extend(
                self.hints
                    .for_target(t)
                    .take_while(|h| now.saturating_duration_since(h.created) >= ttl)
                    .map(|h| h.id),
            );
        }
        for id in expired {
            self.drop_hint(id, DropReason::Ttl);
        }
    }
}
