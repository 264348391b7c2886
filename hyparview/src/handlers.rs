//! The message handlers, one per [`Message`] variant (TR-07-13 Algorithms 1–3).

use std::time::Instant;

use bytes::Bytes;
use rand::Rng;
use smallvec::SmallVec;

use crate::event::DownReason;
use crate::message::{Message, PeerInfo, Priority};
use crate::node::{HyParView, Kind, PeerId};

impl<P: PeerId, R: Rng> HyParView<P, R> {
    pub(crate) fn on_message(&mut self, now: Instant, from: P, msg: Message<P>) {
        match msg {
            Message::Join { data } => self.on_join(from, data),
            Message::ForwardJoin { peer, ttl } => self.on_forward_join(now, &from, peer, ttl),
            Message::Neighbor { priority, data } => self.on_neighbor(from, priority, data),
            Message::NeighborReply { accepted, data } => {
                self.on_neighbor_reply(now, from, accepted, data);
            }
            Message::Disconnect { alive } => self.on_disconnect(now, from, alive),
            Message::Shuffle { origin, peers, ttl } => self.on_shuffle(&from, origin, peers, ttl),
            Message::ShuffleReply { peers } => self.on_shuffle_reply(now, peers),
        }
    }

    /// "A node that receives a join request will start by adding the new node to its active
    /// view, even if it has to drop a random node from it", then starts a `ForwardJoin`
    /// walk of ARWL hops through each other neighbour.
    fn on_join(&mut self, from: P, data: Bytes) {
        if !self.data_ok(&data) {
            return;
        }
        self.stats.joins_received += 1;
        // A request of ours to the joiner is void: it restarted, or its join crossed it.
        self.take_pending(&from);
        self.add_active(from.clone(), data.clone());
        self.reply(from.clone(), true);
        let walk = PeerInfo { id: from, data };
        let others: SmallVec<[P; 8]> = self
            .active
            .keys()
            .filter(|p| **p != walk.id)
            .cloned()
            .collect();
        for p in others {
            self.send(
                p,
                Message::ForwardJoin {
                    peer: walk.clone(),
                    ttl: self.config.active_walk_length,
                },
            );
        }
    }

    /// One hop of a join walk: at TTL 0, or if we have a single neighbour, ask the joiner to
    /// be our neighbour (we take it when it accepts, so an unreachable joiner never enters
    /// our view); at TTL = PRWL keep it as a passive peer; otherwise pass it on.
    fn on_forward_join(&mut self, now: Instant, from: &P, peer: PeerInfo<P>, ttl: u8) {
        self.stats.forward_joins += 1;
        if !self.data_ok(&peer.data) {
            return;
        }
        if peer.id == self.me {
            return; // the walk came back to the joiner itself
        }
        let ttl = if ttl > self.config.active_walk_length {
            self.stats.hostile += 1;
            self.config.active_walk_length
        } else {
            ttl
        };
        if self.active.contains(&peer.id) {
            return; // already neighbours
        }
        if ttl == 0 || self.active.len() <= 1 {
            if self.pending.contains_key(&peer.id) {
                return;
            }
            self.passive.remove(&peer.id);
            self.send_request(now, peer.id, Kind::Neighbor(Priority::High));
            return;
        }
        if ttl == self.config.passive_walk_length {
            self.add_passive(peer.id.clone(), peer.data.clone(), &[]);
        }
        let next = self
            .active
            .pick(&mut self.rng, |p| p == from || *p == peer.id)
            .cloned();
        if let Some(next) = next {
            self.send(next, Message::ForwardJoin { peer, ttl: ttl - 1 });
        }
    }

    /// A high-priority request is always accepted (dropping a random neighbour if needed); a
    /// low-priority one only into a free slot.
    fn on_neighbor(&mut self, from: P, priority: Priority, data: Bytes) {
        if !self.data_ok(&data) {
            return;
        }
        if self.active.contains(&from) {
            self.add_active(from.clone(), data);
            self.reply(from, true);
            return;
        }
        if priority == Priority::High || !self.active.is_full() {
            self.stats.neighbor_accepted += 1;
            self.add_active(from.clone(), data);
            self.reply(from, true);
        } else {
            self.stats.neighbor_refused += 1;
            // A refused peer is alive: keep it as a backup.
            self.add_passive(from.clone(), data, &[]);
            self.reply(from, false);
        }
    }

    fn reply(&mut self, to: P, accepted: bool) {
        let data = self.data.clone();
        self.send(to, Message::NeighborReply { accepted, data });
    }

    /// The answer to our `Join` or `Neighbor`. An acceptance means the peer already took us,
    /// so we take it too (dropping a random neighbour if needed) and the link is symmetric;
    /// an acceptance nobody is waiting for (it came after our timeout, or crossed our
    /// `Disconnect`) is undone with a `Disconnect`.
    fn on_neighbor_reply(&mut self, now: Instant, from: P, accepted: bool, data: Bytes) {
        if !self.data_ok(&data) {
            return;
        }
        let pending = self.take_pending(&from);
        if accepted {
            if pending.is_some() || self.active.contains(&from) {
                self.add_active(from, data);
            } else {
                // Nobody waits for it: it came after our timeout, or crossed a `Disconnect`
                // we sent. The peer took us; undo that so both sides agree.
                self.stats.hostile += 1;
                self.send(from.clone(), Message::Disconnect { alive: true });
                self.out
                    .push_back(epidemic_core::Output::Disconnect(from.clone()));
                self.add_passive(from, data, &[]);
            }
            return;
        }
        match pending {
            // Our request crossed the peer's own, which we accepted: its acceptance of
            // ours (or our acceptance of its) keeps the link; the refusal changes nothing.
            _ if self.active.contains(&from) => {}
            Some(_) => {
                self.tried.insert(from.clone());
                self.add_passive(from, data, &[]);
                self.refill(now);
            }
            None => self.stats.hostile += 1,
        }
    }

    /// A neighbour dropped us: to the passive view if it stays in the overlay, forgotten if
    /// it leaves; then refill the free slot from another passive peer.
    fn on_disconnect(&mut self, now: Instant, from: P, alive: bool) {
        let pending = self.take_pending(&from);
        if let Some(data) = self.active.get(&from).cloned() {
            let reason = if alive {
                DownReason::Disconnected
            } else {
                DownReason::PeerLeft
            };
            self.remove_active(&from, reason);
            self.out
                .push_back(epidemic_core::Output::Disconnect(from.clone()));
            self.lost.swap_remove(&from);
            if alive {
                self.add_passive(from.clone(), data, &[]);
                self.tried.insert(from);
            }
            self.refill(now);
        } else if !alive {
            self.passive.remove(&from);
            self.lost.swap_remove(&from);
        } else if pending.is_some() {
            self.tried.insert(from);
            self.refill(now);
        }
    }

    /// One hop of a shuffle walk: decrement the TTL and pass it on while it is positive and
    /// we have another neighbour; otherwise answer the origin with as many of our passive
    /// peers as it sent, and keep what it sent, evicting first what we sent back.
    fn on_shuffle(&mut self, from: &P, origin: PeerInfo<P>, mut peers: Vec<PeerInfo<P>>, ttl: u8) {
        if !self.data_ok(&origin.data) {
            return;
        }
        if origin.id == self.me {
            return; // our own walk looped back: nothing to exchange with ourselves
        }
        let max = self.config.shuffle_len();
        if peers.len() > max {
            self.stats.hostile += 1;
            peers.truncate(max);
        }
        let ttl = if ttl > self.config.shuffle_walk_length {
            self.stats.hostile += 1;
            self.config.shuffle_walk_length
        } else {
            ttl
        }
        .saturating_sub(1);
        if ttl > 0 && self.active.len() > 1 {
            let next = self
                .active
                .pick(&mut self.rng, |p| p == from || *p == origin.id)
                .cloned();
            if let Some(next) = next {
                self.send(next, Message::Shuffle { origin, peers, ttl });
                return;
            }
        }
        self.stats.shuffles_answered += 1;
        let want = peers.len() + 1;
        let reply = self.sample_for(want, &origin.id);
        let sent: SmallVec<[P; 8]> = reply.iter().map(|p| p.id.clone()).collect();
        self.send(origin.id.clone(), Message::ShuffleReply { peers: reply });
        for p in peers.into_iter().chain(std::iter::once(origin)) {
            if self.data_ok(&p.data) {
                self.add_passive(p.id, p.data, &sent);
            }
        }
    }

    /// Up to `k` random passive peers (topped up with neighbours in a small overlay), never
    /// `to` itself.
    fn sample_for(&mut self, k: usize, to: &P) -> Vec<PeerInfo<P>> {
        let idx = self.passive.sample(&mut self.rng, k, |p| p == to);
        let mut out: Vec<PeerInfo<P>> = idx
            .iter()
            .filter_map(|&i| self.passive.at(i))
            .map(|(p, d)| PeerInfo {
                id: p.clone(),
                data: d.clone(),
            })
            .collect();
        if out.len() < k {
            let idx = self
                .active
                .sample(&mut self.rng, k - out.len(), |p| p == to);
            out.extend(
                idx.iter()
                    .filter_map(|&i| self.active.at(i))
                    .map(|(p, d)| PeerInfo {
                        id: p.clone(),
                        data: d.clone(),
                    }),
            );
        }
        out
    }

    /// The answer to our shuffle: keep its entries, evicting first what our shuffle sent.
    /// Unasked replies are dropped.
    fn on_shuffle_reply(&mut self, now: Instant, mut peers: Vec<PeerInfo<P>>) {
        if !self.shuffle_outstanding {
            self.stats.hostile += 1;
            return;
        }
        self.shuffle_outstanding = false;
        let max = self.config.shuffle_len();
        if peers.len() > max {
            self.stats.hostile += 1;
            peers.truncate(max);
        }
        let sent = std::mem::take(&mut self.last_shuffle);
        for p in peers {
            if self.data_ok(&p.data) {
                self.add_passive(p.id, p.data, &sent);
            }
        }
        self.refill(now);
    }
}
