//! [`Gossip`]: HyParView and Plumtree in one [`Machine`] (feature `hyparview`), after
//! iroh-gossip's `proto/topic.rs`. HyParView keeps the overlay; its `NeighborUp` and
//! `NeighborDown` events become Plumtree's neighbour inputs inside the same step, and both
//! protocols' messages travel in one [`GossipMessage`] enum.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use epidemic_core::codec::{Envelope, protocol_id};
use epidemic_core::{Machine, Output};
use epidemic_hyparview as hyparview;
use epidemic_hyparview::{DownReason, HyParView};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::event::{Event, Received, Scope};
use crate::message::{Message, MessageId};
use crate::node::{AcceptAll, Plumtree, Validator};
use crate::{Config, Error};

/// Everything a [`Gossip`] node sends: a HyParView or a Plumtree message.
///
/// Append-only, like its children's enums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipMessage<P> {
    /// Membership.
    View(hyparview::Message<P>),
    /// Broadcast.
    Tree(Message),
}

impl<P> GossipMessage<P> {
    /// The variant's name, for per-kind metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            GossipMessage::View(m) => m.kind(),
            GossipMessage::Tree(m) => m.kind(),
        }
    }
}

impl<P> From<hyparview::Message<P>> for GossipMessage<P> {
    fn from(m: hyparview::Message<P>) -> Self {
        GossipMessage::View(m)
    }
}

impl<P> From<Message> for GossipMessage<P> {
    fn from(m: Message) -> Self {
        GossipMessage::Tree(m)
    }
}

impl<P: Serialize + serde::de::DeserializeOwned> Envelope for GossipMessage<P> {
    const PROTOCOL: u8 = protocol_id::GOSSIP;
    const VERSION: u8 = 1;
}

/// What a [`Gossip`] node tells its application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipEvent<P> {
    /// A broadcast was delivered here, once.
    Received(Received<P>),
    /// A message announced to us never arrived (see [`Event::Missed`]).
    Missed(MessageId),
    /// A neighbour came up (HyParView's active view).
    NeighborUp(P),
    /// A neighbour went down, and why.
    NeighborDown(P, DownReason),
    /// Another membership event (a failed join, a rejoin).
    Membership(hyparview::Event<P>),
}

/// The parameters of both layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GossipConfig {
    /// HyParView's.
    pub view: hyparview::Config,
    /// Plumtree's.
    pub tree: Config,
}

/// HyParView + Plumtree: one node of a gossip overlay, itself a sans-IO [`Machine`].
#[derive(Debug)]
pub struct Gossip<P, R, V = AcceptAll> {
    view: HyParView<P, R>,
    tree: Plumtree<P, V>,
    out: VecDeque<Output<P, GossipMessage<P>, GossipEvent<P>>>,
}

impl<P: hyparview::PeerId, R: Rng> Gossip<P, R, AcceptAll> {
    /// A node `me` with opaque `data` (HyParView's: a dialing address, say). `rng` first
    /// draws Plumtree's id salt, then drives HyParView.
    ///
    /// # Errors
    /// Either layer's invalid configuration or HyParView's oversized data, as
    /// [`Error::InvalidConfig`].
    pub fn new(me: P, data: Bytes, config: GossipConfig, mut rng: R) -> Result<Self, Error> {
        let tree = Plumtree::new(me.clone(), config.tree, &mut rng)?;
        let view = HyParView::new(me, data, config.view, rng)
            .map_err(|_| Error::InvalidConfig("HyParView refused its config or data"))?;
        Ok(Self {
            view,
            tree,
            out: VecDeque::new(),
        })
    }
}

impl<P: hyparview::PeerId, R: Rng, V: Validator<P>> Gossip<P, R, V> {
    /// The same node with `validator` deciding which messages are delivered and forwarded.
    pub fn with_validator<W: Validator<P>>(self, validator: W) -> Gossip<P, R, W> {
        Gossip {
            view: self.view,
            tree: self.tree.with_validator(validator),
            out: self.out,
        }
    }

    /// Joins the overlay through `contact` (HyParView's [`join`](HyParView::join)).
    ///
    /// # Errors
    /// HyParView's [`Error`](hyparview::Error); nothing changes then.
    pub fn join(&mut self, now: Instant, contact: P) -> Result<(), hyparview::Error> {
        let r = self.view.join(now, contact);
        self.pump(now);
        r
    }

    /// Broadcasts `payload` to the whole overlay (Plumtree's
    /// [`broadcast`](Plumtree::broadcast)).
    ///
    /// # Errors
    /// [`Error::PayloadTooLarge`]; nothing changes then.
    pub fn broadcast(&mut self, now: Instant, payload: Bytes) -> Result<MessageId, Error> {
        self.broadcast_scoped(now, payload, Scope::Swarm)
    }

    /// Broadcasts `payload` with `scope` ([`Scope::Neighbors`]: one hop).
    ///
    /// # Errors
    /// [`Error::PayloadTooLarge`]; nothing changes then.
    pub fn broadcast_scoped(
        &mut self,
        now: Instant,
        payload: Bytes,
        scope: Scope,
    ) -> Result<MessageId, Error> {
        let r = self.tree.broadcast_scoped(now, payload, scope);
        self.pump(now);
        r
    }

    /// The membership layer.
    pub fn view(&self) -> &HyParView<P, R> {
        &self.view
    }

    /// The membership layer, for its other commands (`add_contact`, `leave`, ...). Outputs
    /// of a command run here flow at the next [`poll_output`](Machine::poll_output).
    pub fn view_mut(&mut self) -> &mut HyParView<P, R> {
        &mut self.view
    }

    /// The broadcast layer.
    pub fn tree(&self) -> &Plumtree<P, V> {
        &self.tree
    }

    /// Both layers' counters: membership, then broadcast.
    pub fn stats(&self) -> (&hyparview::Stats, &crate::Stats) {
        (self.view.stats(), self.tree.stats())
    }

    /// Moves both children's outputs into ours, turning HyParView's neighbour events into
    /// Plumtree's neighbour inputs on the way.
    fn pump(&mut self, now: Instant) {
        self.pump_at(Some(now));
    }

    /// [`pump`](Self::pump) with the latest instant seen, if any (a neighbour can only come
    /// up after an input, which stamps one).
    fn pump_at(&mut self, now: Option<Instant>) {
        loop {
            let mut moved = false;
            while let Some(o) = self.view.poll_output() {
                moved = true;
                let o = match o {
                    Output::Event(hyparview::Event::NeighborUp(p)) => {
                        if let Some(now) = now {
                            self.tree.neighbor_up(now, p.clone());
                        }
                        Output::Event(GossipEvent::NeighborUp(p))
                    }
                    Output::Event(hyparview::Event::NeighborDown(p, why)) => {
                        if let Some(now) = now {
                            self.tree.neighbor_down(now, &p);
                        }
                        Output::Event(GossipEvent::NeighborDown(p, why))
                    }
                    other => other
                        .map_message(GossipMessage::View)
                        .map_event(GossipEvent::Membership),
                };
                self.out.push_back(o);
            }
            while let Some(o) = self.tree.poll_output() {
                moved = true;
                let o = o.map_message(GossipMessage::Tree).map_event(|e| match e {
                    Event::Received(r) => GossipEvent::Received(r),
                    Event::Missed(id) => GossipEvent::Missed(id),
                });
                self.out.push_back(o);
            }
            if !moved {
                return;
            }
        }
    }
}

impl<P: hyparview::PeerId, R: Rng, V: Validator<P>> Machine for Gossip<P, R, V> {
    type Peer = P;
    type Message = GossipMessage<P>;
    type Event = GossipEvent<P>;

    fn handle_message(&mut self, now: Instant, from: P, msg: GossipMessage<P>) {
        match msg {
            GossipMessage::View(m) => self.view.handle_message(now, from, m),
            GossipMessage::Tree(m) => self.tree.handle_message(now, from, m),
        }
        self.pump(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.view.handle_timeout(now);
        self.tree.handle_timeout(now);
        self.pump(now);
    }

    fn handle_link_down(&mut self, now: Instant, peer: P) {
        self.view.handle_link_down(now, peer.clone());
        self.tree.handle_link_down(now, peer);
        self.pump(now);
    }

    fn poll_output(&mut self) -> Option<Output<P, GossipMessage<P>, GossipEvent<P>>> {
        if self.out.is_empty() {
            // Outputs of a command run straight on `view_mut`, stamped with the latest
            // instant Plumtree saw.
            self.pump_at(self.tree.clock.last());
        }
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match (self.view.poll_timeout(), self.tree.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
