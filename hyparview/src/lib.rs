//! # epidemic-hyparview
//!
//! HyParView, the membership protocol of Leitão, Pereira and Rodrigues, "HyParView: a
//! membership protocol for reliable gossip-based broadcast" (DSN 2007; the technical report
//! DI-FCUL TR-07-13 has the full algorithm and evaluation), as a sans-IO state machine. It
//! is the peer-sampling service Plumtree runs on.
//!
//! Each node keeps two partial views of the overlay:
//!
//! * a small, **symmetric active view** (5 peers at 10,000 nodes): the neighbours it holds
//!   open links to and floods over. The transport is the failure detector: a lost link
//!   ([`Machine::handle_link_down`]) removes the neighbour at once and a passive peer is
//!   promoted in its place;
//! * a larger **passive view** (30 peers) of backups, kept fresh by a periodic `Shuffle`
//!   random walk.
//!
//! A node joins through a contact, whose `ForwardJoin` random walks (ARWL 6, PRWL 3) place
//! the joiner in active and passive views across the overlay. `Neighbor` requests come in two
//! priorities: high (the sender has no neighbour left, or answers a join walk: it must be
//! accepted, dropping a random neighbour, who hears `Disconnect`) and low (a refill, refused
//! by a full view). Two additions to the paper, each off by a config knob: a node whose
//! views run dry **rejoins through its contacts** with exponential backoff (so no node stays
//! isolated after a mass failure), and neighbours lost to a broken link are **asked again**
//! with backoff (so an overlay cut by a partition merges when the partition heals).
//!
//! # Sans-IO
//!
//! [`HyParView`] does no I/O, reads no clock and owns its RNG: its inputs are messages,
//! timeouts and lost links, each stamped with `now`; its outputs are messages to send,
//! [`Event`]s (`NeighborUp`, `NeighborDown` with a [`DownReason`], failed joins, rejoins)
//! and links to close ([`Output::Disconnect`](epidemic_core::Output::Disconnect)). The peer
//! id is any `Clone + Ord + Hash + Debug + Serialize + DeserializeOwned` type, and each peer
//! carries bounded opaque data ([`bytes::Bytes`], e.g. a dialing address). Messages encode
//! with [`epidemic_core::codec`] under protocol id `HYPARVIEW`.
//!
//! # The run loop
//!
//! After any input or command, drain [`Machine::poll_output`] until `None`, then read
//! [`Machine::poll_timeout`], then wait for the next input or that deadline:
//!
//! ```
//! use std::collections::VecDeque;
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use epidemic_core::{Machine, Output};
//! use epidemic_hyparview::{Config, Event, HyParView, Message};
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//!
//! let start = Instant::now();
//! let node = |id: u64| {
//!     HyParView::new(id, Bytes::new(), Config::default(), ChaCha8Rng::seed_from_u64(id)).unwrap()
//! };
//! let mut nodes = vec![node(0), node(1), node(2)];
//! nodes[1].join(start, 0).unwrap();
//! nodes[2].join(start, 0).unwrap();
//!
//! // A tiny driver: instant delivery, and the drain contract after every input.
//! let mut wire: VecDeque<(u64, u64, Message<u64>)> = VecDeque::new();
//! let mut ups = Vec::new();
//! let mut now = start;
//! while now < start + Duration::from_secs(60) {
//!     loop {
//!         for (id, n) in (0u64..).zip(nodes.iter_mut()) {
//!             while let Some(out) = n.poll_output() {
//!                 match out {
//!                     Output::Send { to, msg } => wire.push_back((id, to, msg)),
//!                     Output::Event(Event::NeighborUp(p)) => ups.push((id, p)),
//!                     Output::Event(_) | Output::Disconnect(_) => {}
//!                 }
//!             }
//!         }
//!         let Some((from, to, msg)) = wire.pop_front() else { break };
//!         nodes[to as usize].handle_message(now, from, msg);
//!     }
//!     // Sleep until the earliest deadline, then wake whoever is due.
//!     now = nodes.iter().filter_map(|n| n.poll_timeout()).min().unwrap();
//!     for n in &mut nodes {
//!         n.handle_timeout(now); // a no-op for nodes not yet due
//!     }
//! }
//! // Three nodes end up all neighbours of each other, symmetrically.
//! for n in &nodes {
//!     assert_eq!(n.active_view().count(), 2);
//! }
//! assert!(ups.contains(&(0, 1)) && ups.contains(&(1, 0)));
//! ```
//!
//! # Errors and panics
//!
//! * A peer's malformed or hostile message never panics and never returns an error: an
//!   oversized list or datum, a TTL above the configured walk length, an answer nobody asked
//!   for are dropped or capped and counted in [`Stats::hostile`]. Views, outstanding
//!   requests, contacts and the reconnect memory all have configured bounds that no message
//!   sequence can exceed. Malformed bytes are the codec's typed
//!   [`DecodeError`](epidemic_core::codec::DecodeError).
//! * Misuse by the application (joining through ourselves, data over the limit) returns an
//!   [`Error`] and changes nothing.
//! * Nothing in this crate panics on any input.
//!
//! # Simulations
//!
//! With the `sim` feature, the `scenario` module reproduces the paper's experiments (overlay
//! properties at 10,000 nodes, the failure sweep) on `epidemic-sim`; the `epidemic-sim
//! hyparview` command prints them beside the paper's figures.

mod config;
mod error;
mod event;
mod handlers;
mod message;
mod node;
mod repair;
#[cfg(feature = "sim")]
pub mod scenario;
mod view;

pub use config::Config;
pub use error::Error;
pub use event::{DownReason, Event, Stats};
pub use message::{Message, PeerInfo, Priority};
pub use node::{HyParView, PeerId};

#[doc(no_inline)]
pub use epidemic_core::Machine;

#[cfg(test)]
mod tests;
