//! Keeping the views full: the shuffle round, refilling the active view from the passive
//! one, failed requests and lost links (the transport is the failure detector), rejoining
//! through contacts, and reconnecting neighbours lost to a partition.

use std::time::{Duration, Instant};

use rand::Rng;
use smallvec::SmallVec;

use crate::event::{DownReason, Event};
use crate::message::{Message, PeerInfo, Priority};
use crate::node::{HyParView, Kind, Lost, PeerId, Timer};

impl<P: PeerId, R: Rng> HyParView<P, R> {
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        while let Some((_, peer)) = self.deadlines.pop_expired(now) {
            if let Some(p) = self.pending.swap_remove(&peer) {
                self.request_failed(now, peer, p.kind);
            }
        }
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::Shuffle => {
                    self.shuffle(now);
                    self.timers
                        .set(Timer::Shuffle, now + self.config.shuffle_interval);
                }
                Timer::Rejoin => self.rejoin(now),
            }
        }
        self.reconnect_due(now);
    }

    /// The transport lost the link to `peer`. A neighbour is gone (remembered for
    /// reconnection, its slot refilled); a peer we were asking failed its request.
    pub(crate) fn on_link_down(&mut self, now: Instant, peer: P) {
        if let Some(p) = self.take_pending(&peer) {
            if !self.active.contains(&peer) {
                self.request_failed(now, peer.clone(), p.kind);
            }
        }
        if self.remove_active(&peer, DownReason::LinkLost).is_some() {
            self.stats.links_lost += 1;
            // Close our end too: if only we saw the link break (a stale report, a one-way
            // cut), the peer hears it and drops us as well, keeping the views symmetric.
            self.out
                .push_back(epidemic_core::Output::Disconnect(peer.clone()));
            self.remember_lost(now, peer.clone());
            self.tried.insert(peer);
            self.refill(now);
        }
    }

    /// A request got no answer or its dial failed: "the node is considered failed and
    /// removed from the passive view; another node is selected at random".
    fn request_failed(&mut self, now: Instant, peer: P, kind: Kind) {
        self.stats.requests_failed += 1;
        self.passive.remove(&peer);
        self.tried.insert(peer.clone());
        match kind {
            Kind::Join => self.emit(Event::JoinFailed(peer)),
            Kind::Reconnect => {
                if let Some(l) = self.lost.get_mut(&peer) {
                    l.next = now + backoff(self.config.shuffle_interval, l.attempts);
                }
            }
            Kind::Neighbor(_) => {}
        }
        self.refill(now);
    }

    /// Fills free active slots from the passive view, one request per free slot: high
    /// priority when we have no neighbour at all, low otherwise. Peers already asked this
    /// round are skipped, so a refusal cannot loop.
    pub(crate) fn refill(&mut self, now: Instant) {
        loop {
            let asking = self
                .pending
                .keys()
                .filter(|p| !self.active.contains(p))
                .count();
            if self.active.len() + asking >= self.config.active_capacity
                || self.pending.len() >= self.config.max_pending
            {
                return;
            }
            let pick = self
                .passive
                .pick(&mut self.rng, |p| {
                    self.pending.contains_key(p) || self.tried.contains(p)
                })
                .cloned();
            let Some(peer) = pick else { return };
            let priority = if self.active.is_empty() {
                Priority::High
            } else {
                Priority::Low
            };
            self.tried.insert(peer.clone());
            if !self.send_request(now, peer, Kind::Neighbor(priority)) {
                return;
            }
        }
    }

    /// The periodic shuffle: a walk of SRWL hops carrying ka active and kp passive entries
    /// and ourselves. Also starts a new round of refill tries.
    fn shuffle(&mut self, now: Instant) {
        self.tried.clear();
        let target = self.active.pick(&mut self.rng, |_| false).cloned();
        if let Some(target) = target {
            let a = self
                .active
                .sample(&mut self.rng, self.config.shuffle_active, |p| *p == target);
            let b = self
                .passive
                .sample(&mut self.rng, self.config.shuffle_passive, |p| *p == target);
            let mut peers = Vec::with_capacity(a.len() + b.len());
            peers.extend(a.iter().filter_map(|&i| self.active.at(i)).map(info));
            peers.extend(b.iter().filter_map(|&i| self.passive.at(i)).map(info));
            self.last_shuffle = peers.iter().map(|p| p.id.clone()).collect();
            self.shuffle_outstanding = true;
            self.stats.shuffles_started += 1;
            let msg = Message::Shuffle {
                origin: self.me_info(),
                peers,
                ttl: self.config.shuffle_walk_length,
            };
            self.send(target, msg);
        }
        self.refill(now);
    }

    /// After every input: a node that cannot refill its active view (no passive peer left
    /// to ask, nothing outstanding) schedules a rejoin through its contacts.
    pub(crate) fn after_input(&mut self, now: Instant) {
        if self.starved() && !self.timers.is_armed(Timer::Rejoin) {
            self.timers.set(Timer::Rejoin, now + self.rejoin_wait);
        }
    }

    fn starved(&self) -> bool {
        !self.contacts.is_empty()
            && self.active.len() < self.config.active_capacity
            && self.pending.is_empty()
            && self.passive.keys().all(|p| self.tried.contains(p))
            && (self.active.is_empty() || self.passive.is_empty())
    }

    /// Sends a `Join` to the next contact that is not already a neighbour, and doubles the
    /// wait before the next try.
    fn rejoin(&mut self, now: Instant) {
        if !self.starved() {
            return;
        }
        let n = self.contacts.len();
        for i in 0..n {
            let c = self.contacts[(self.next_contact + i) % n].clone();
            if self.active.contains(&c) {
                continue;
            }
            self.next_contact = (self.next_contact + i + 1) % n;
            if self.send_request(now, c.clone(), Kind::Join) {
                self.start(now);
                self.stats.rejoins += 1;
                self.emit(Event::Rejoining(c));
            }
            break;
        }
        self.rejoin_wait = (self.rejoin_wait * 2).min(self.config.rejoin_backoff_max);
    }

    /// Remembers a neighbour lost to a broken link, forgetting the oldest past the bound.
    fn remember_lost(&mut self, now: Instant, peer: P) {
        if self.config.reconnect_capacity == 0 || self.config.reconnect_attempts == 0 {
            return;
        }
        if self.lost.len() >= self.config.reconnect_capacity {
            self.lost.shift_remove_index(0);
            self.stats.reconnect_evictions += 1;
        }
        self.lost.insert(
            peer,
            Lost {
                attempts: 0,
                next: now + self.config.shuffle_interval,
            },
        );
    }

    /// Asks lost neighbours whose wait is over to be neighbours again, with high priority:
    /// a partition that cut links is healed by the very links it cut.
    fn reconnect_due(&mut self, now: Instant) {
        let due: SmallVec<[P; 8]> = self
            .lost
            .iter()
            .filter(|(_, l)| l.next <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for peer in due {
            if self.active.contains(&peer) {
                self.lost.swap_remove(&peer);
                continue;
            }
            let Some(l) = self.lost.get_mut(&peer) else {
                continue;
            };
            if l.attempts >= self.config.reconnect_attempts {
                self.lost.swap_remove(&peer);
                continue;
            }
            l.attempts += 1;
            // Pushed out until the request's outcome reschedules it (or removes it).
            l.next = now + backoff(self.config.shuffle_interval, l.attempts);
            if self.pending.contains_key(&peer) {
                continue;
            }
            if self.send_request(now, peer, Kind::Reconnect) {
                self.stats.reconnects += 1;
            }
        }
    }
}

/// `base · 2^attempts`, saturating at about a day.
fn backoff(base: Duration, attempts: u8) -> Duration {
    base.saturating_mul(1u32 << attempts.min(13))
}

fn info<P: Clone>((p, d): (&P, &bytes::Bytes)) -> PeerInfo<P> {
    PeerInfo {
        id: p.clone(),
        data: d.clone(),
    }
}
