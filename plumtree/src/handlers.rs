//! The message handlers of [`Plumtree`] (paper Algorithm 1), and the missing-message timer.

use std::time::Instant;

use smallvec::SmallVec;

use crate::event::{Event, Scope};
use crate::message::{Direct, Graft, IHave, Message, MessageId, Payload};
use crate::node::{Missing, PeerId, Plumtree, Validator};

impl<P: PeerId, V: Validator<P>> Plumtree<P, V> {
    pub(crate) fn on_message(&mut self, now: Instant, from: P, msg: Message) {
        match msg {
            Message::Gossip(g) => self.on_gossip(now, from, g),
            Message::IHave(entries) => self.on_ihave(now, &from, &entries),
            Message::Graft(g) => self.on_graft(from, g),
            Message::Prune => self.on_prune(&from),
            Message::Direct(d) => self.on_direct(now, from, d),
        }
    }

    /// A payload. The first copy is delivered, cached and pushed on (eagerly to eager
    /// peers, announced to lazy ones), and its sender becomes eager; a later copy is
    /// redundant: its sender becomes lazy and hears PRUNE (unless we grafted it for this
    /// very message).
    fn on_gossip(&mut self, now: Instant, from: P, g: Payload) {
        let neighbor = self.neighbors.contains_key(&from);
        if !neighbor {
            self.stats.not_neighbor += 1;
        }
        if self.received.contains(&g.id) {
            self.stats.duplicates += 1;
            if !neighbor || !self.config.prune {
                return;
            }
            if self
                .cache
                .get(&g.id)
                .is_some_and(|c| c.grafted.contains(&from))
            {
                // We grafted it for this message but the tree delivered first: the tree
                // is whole, so the graft is undone like any redundant link.
                self.stats.graft_duplicates += 1;
            }
            // A peer that delivered us another message first a moment ago is our parent
            // on another sender's path, and one we pushed another message to a moment ago
            // may be our child on one: with concurrent senders, the copies of two messages
            // cross on a cycle and each would cut a different link of it, splitting the
            // tree. Keep it; the cycle is cut by a later duplicate.
            // Steady traffic keeps every link in its grace: a link defers at most
            // `max_prune_deferrals` prunes in a row.
            let grace = self.config.prune_grace;
            let cap = self.config.max_prune_deferrals;
            if let Some(n) = self.neighbors.get_mut(&from) {
                let in_grace =
                    n.parent_at
                        .is_some_and(|at| now.saturating_duration_since(at) < grace)
                        || n.pushed.iter().flatten().any(|&(at, id)| {
                            id != g.id && now.saturating_duration_since(at) < grace
                        });
                if n.deferred
                    .1
                    .is_none_or(|at| now.saturating_duration_since(at) >= grace)
                {
                    n.deferred.0 = 0;
                }
                if in_grace && n.deferred.0 < cap {
                    n.deferred = (n.deferred.0 + 1, Some(now));
                    self.stats.prunes_deferred += 1;
                    return;
                }
                n.deferred = (0, None);
            }
            self.set_eager(&from, false);
            self.stats.prunes_sent += 1;
            self.send(from, Message::Prune);
            return;
        }
        let (grafted, announcers) = match self.missing.swap_remove(&g.id) {
            Some(m) => {
                self.missing_timers.cancel(m.timer);
                (m.grafted, m.announcers)
            }
            None => (SmallVec::new(), SmallVec::new()),
        };
        self.remember(now, g.id);
        if !self.validator.validate(&from, &g.id, &g.payload) {
            self.stats.rejected += 1;
            return;
        }
        if let Some(n) = self.neighbors.get_mut(&from) {
            n.eager = true;
            n.parent_at = Some(now);
        }
        let round = g.round.max(1);
        self.deliver(g.payload.clone(), g.id, from.clone(), round, Scope::Swarm);
        // The announcer with the lowest round: if it beats our copy's round by more than
        // the threshold, the same optimisation as for a late announcement.
        if let Some((announcer, r)) = announcers.iter().min_by_key(|(_, r)| *r) {
            self.swap_if_shorter(now, &from, announcer, *r, round);
        }
        let next = round.saturating_add(1);
        // Announcers and grafted peers have the message: pushing it to them (eager after a
        // swap or a graft) would only make them prune us.
        let skip = |p: &P| {
            *p == from || announcers.iter().any(|(a, _)| a == p) || grafted.iter().any(|a| a == p)
        };
        self.eager_push_filtered(now, g.id, next, &g.payload, skip);
        self.lazy_push(now, g.id, next, Some(&from));
        self.cache_insert(now, g.id, g.payload, round, Some(from), grafted);
    }

    /// Announcements. An unknown id starts (or joins) a missing-message timer; a known id
    /// announced at a round lower by more than the threshold than ours swaps the eager
    /// link it came on for this lazy one (the optimisation).
    fn on_ihave(&mut self, now: Instant, from: &P, entries: &[IHave]) {
        if !self.neighbors.contains_key(from) {
            self.stats.not_neighbor += 1;
            return;
        }
        let limit = self.config.max_ihave_entries;
        if entries.len() > limit {
            self.stats.hostile += 1;
        }
        for e in entries.iter().take(limit) {
            self.stats.ihave_entries_received += 1;
            if self.received.contains(&e.id) {
                self.optimize(now, from, e);
            } else if let Some(m) = self.missing.get_mut(&e.id) {
                if m.grafted.contains(from) || m.announcers.iter().any(|(p, _)| p == from) {
                    continue;
                }
                if m.grafted.len() + m.announcers.len() >= self.config.max_announcers {
                    self.stats.missing_full += 1;
                    continue;
                }
                m.announcers.push((from.clone(), e.round));
            } else if self.missing.len() >= self.config.max_missing {
                self.stats.missing_full += 1;
            } else {
                let timer = self
                    .missing_timers
                    .insert(now + self.config.graft_timeout_1, e.id);
                let mut announcers = SmallVec::new();
                announcers.push((from.clone(), e.round));
                self.missing.insert(
                    e.id,
                    Missing {
                        announcers,
                        grafted: SmallVec::new(),
                        timer,
                    },
                );
            }
        }
    }

    /// The optimisation (paper §3.8): `from` announces a message we hold, with a round
    /// lower by more than the threshold than the one our copy came with. Graft `from`
    /// (eager) and prune the neighbour our copy came from (lazy): the tree gets shallower.
    fn optimize(&mut self, now: Instant, from: &P, e: &IHave) {
        let Some(c) = self.cache.get(&e.id) else {
            return;
        };
        let Some(parent) = c.from.clone() else {
            return;
        };
        if self.swap_if_shorter(now, &parent, from, e.round, c.round) {
            // Ours is now the shorter path: do not swap again for the same message.
            if let Some(c) = self.cache.get_mut(&e.id) {
                c.from = Some(from.clone());
                c.round = e.round;
            }
        }
    }

    /// Swaps the eager link to `parent` (our copy came with `round`) for the lazy link to
    /// `from` (announced `announced`) when `announced + threshold < round`, the threshold
    /// being the repair threshold within the repair window after a neighbour change:
    /// graft `from`, prune `parent`. Returns whether it did.
    fn swap_if_shorter(
        &mut self,
        now: Instant,
        parent: &P,
        from: &P,
        announced: u16,
        round: u16,
    ) -> bool {
        let repairing = self
            .last_change
            .is_some_and(|at| now.saturating_duration_since(at) < self.config.repair_window);
        let threshold = if repairing {
            self.config.repair_threshold
        } else {
            self.config.optimization_threshold
        };
        if !self.config.prune
            || parent == from
            || announced.saturating_add(threshold) >= round
            || !self.neighbors.get(parent).is_some_and(|n| n.eager)
            || self.neighbors.get(from).is_none_or(|n| n.eager)
        {
            return false;
        }
        let parent = parent.clone();
        self.stats.optimizations += 1;
        self.set_eager(from, true);
        self.send(
            from.clone(),
            Message::Graft(Graft {
                id: None,
                round: announced,
            }),
        );
        self.set_eager(&parent, false);
        self.stats.prunes_sent += 1;
        self.send(parent, Message::Prune);
        true
    }

    /// A GRAFT: the sender becomes eager; if it names a message we hold and the sender has
    /// GRAFT credit (one per id we announced to it), the payload goes back.
    fn on_graft(&mut self, from: P, g: Graft) {
        let Some(n) = self.neighbors.get_mut(&from) else {
            self.stats.not_neighbor += 1;
            return;
        };
        n.eager = true;
        let Some(id) = g.id else {
            return;
        };
        if n.graft_credit == 0 {
            self.stats.grafts_refused += 1;
            return;
        }
        n.graft_credit -= 1;
        let Some(c) = self.cache.get(&id) else {
            self.stats.grafts_unknown += 1;
            return;
        };
        let msg = Message::Gossip(Payload {
            id,
            round: c.round.saturating_add(1),
            payload: c.payload.clone(),
        });
        self.stats.grafts_served += 1;
        self.send(from, msg);
    }

    fn on_prune(&mut self, from: &P) {
        if !self.neighbors.contains_key(from) {
            self.stats.not_neighbor += 1;
            return;
        }
        self.stats.prunes_received += 1;
        self.set_eager(from, false);
    }

    /// A neighbours-only broadcast: delivered once, never forwarded.
    fn on_direct(&mut self, now: Instant, from: P, d: Direct) {
        if self.received.contains(&d.id) {
            self.stats.duplicates += 1;
            return;
        }
        self.remember(now, d.id);
        if !self.validator.validate(&from, &d.id, &d.payload) {
            self.stats.rejected += 1;
            return;
        }
        self.deliver(d.payload, d.id, from, 1, Scope::Neighbors);
    }

    /// A missing message's timer expired: GRAFT its next announcer that is still a
    /// neighbour (it becomes eager) and wait the shorter second timeout; with no announcer
    /// left, give the message up.
    pub(crate) fn on_missing_timeout(&mut self, now: Instant, id: MessageId) {
        let Some(m) = self.missing.get_mut(&id) else {
            return;
        };
        // Announcers that left are forgotten; among the others, one that is already eager
        // (we grafted it for another message) comes first: asking it adds no link, and
        // every link a repair adds is a cycle that a later message has to prune again.
        m.announcers.retain(|(p, _)| self.neighbors.contains_key(p));
        if let Some(i) = m
            .announcers
            .iter()
            .position(|(p, _)| self.neighbors.get(p).is_some_and(|n| n.eager))
        {
            m.announcers[..=i].rotate_right(1);
        }
        if !m.announcers.is_empty() {
            let (peer, round) = m.announcers.remove(0);
            if let Some(n) = self.neighbors.get_mut(&peer) {
                n.eager = true;
            }
            m.grafted.push(peer.clone());
            m.timer = self
                .missing_timers
                .insert(now + self.config.graft_timeout_2, id);
            self.stats.grafts_sent += 1;
            self.send(
                peer,
                Message::Graft(Graft {
                    id: Some(id),
                    round,
                }),
            );
            return;
        }
        self.missing.swap_remove(&id);
        self.stats.missed += 1;
        self.emit(Event::Missed(id));
    }

    pub(crate) fn set_eager(&mut self, peer: &P, eager: bool) {
        if let Some(n) = self.neighbors.get_mut(peer) {
            n.eager = eager;
        }
    }
}
