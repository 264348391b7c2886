//! # epidemic-plumtree
//!
//! Plumtree, the epidemic broadcast trees of Leitão, Pereira and Rodrigues, "Epidemic
//! Broadcast Trees" (SRDS 2007), as a sans-IO state machine, and behind the `hyparview`
//! feature the HyParView + Plumtree composite `Gossip` (what iroh-gossip's `proto` is).
//!
//! Each node splits its neighbours into **eager** peers, to which it pushes every payload
//! (`GOSSIP`), and **lazy** peers, to which it only announces message ids (`IHAVE`, batched
//! on a short timer and packed up to the maximum message size, envelope included). New
//! neighbours start eager; a duplicate payload turns its sender lazy (`PRUNE`), so the eager
//! links settle into a spanning tree and a broadcast costs one payload per node. When a
//! tree link breaks, the announcements repair it: an id announced but not received within
//! a timeout is asked for (`GRAFT`), which makes the announcer eager again; a shorter
//! second timeout tries the next announcer. An announcement that arrives with a round
//! lower by more than a threshold than the payload's swaps the eager link for the lazy one
//! (the paper's optimisation), keeping the tree shallow.
//!
//! Beyond the paper:
//!
//! * **Message ids** hash the origin, its random incarnation salt, its sequence number and
//!   the payload ([`MessageId`]): two broadcasts of the same bytes are two messages.
//! * **A [`Validator`]** lets the application decline a message: it is then neither
//!   delivered nor forwarded.
//! * **[`Scope::Neighbors`]** broadcasts reach our neighbours only.
//! * **New neighbours hear every cached id** (IHAVE), so a broadcast in flight while a mass
//!   failure rewires the overlay still reaches every live node.
//! * **GRAFT credit**: a peer gets a payload for a GRAFT only as many times as we announced
//!   ids to it (plus a small allowance), so no peer can make us send unbounded data.
//! * **Concurrent senders**: a duplicate from a neighbour that just delivered us another
//!   message first, or that we just forwarded another message to, does not prune it
//!   ([`Config::prune_grace`]), so two messages crossing on a cycle do not cut two of its
//!   links; the optimisation also fires when the payload
//!   arrives after an announcement with a much lower round, and a payload is never pushed
//!   to a peer that announced it.
//! * **Two optimisation thresholds**: once the overlay is stable a swap shortens one
//!   sender's path and lengthens the others', so the paper's threshold is high
//!   ([`Config::optimization_threshold`]); for a while after one of our neighbours came
//!   or went, a low one ([`Config::repair_threshold`]) straightens the tree a repair left.
//! * **Losing a neighbour re-floods around the loss** ([`Config::eager_on_loss`]): every
//!   lazy link becomes eager both ways (again at each new link for a while after), so the
//!   next payloads prune the region into a shallow tree instead of keeping the pieces the
//!   first grafts joined.
//!
//! # Sans-IO
//!
//! [`Plumtree`] does no I/O, reads no clock and takes its randomness in `new`: its inputs
//! are messages, timeouts and neighbour changes ([`Plumtree::neighbor_up`],
//! [`Plumtree::neighbor_down`], from any peer-sampling service), each stamped with `now`;
//! its outputs are messages to send and [`Event`]s. Messages encode with
//! [`epidemic_core::codec`] under protocol id `PLUMTREE` (the composite's under `GOSSIP`).
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
//! use epidemic_plumtree::{Config, Event, Message, Plumtree};
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//!
//! let start = Instant::now();
//! let mut rng = ChaCha8Rng::seed_from_u64(0);
//! // A triangle: every node neighbours the two others.
//! let mut nodes: Vec<Plumtree<u64>> = (0..3)
//!     .map(|id| Plumtree::new(id, Config::default(), &mut rng).unwrap())
//!     .collect();
//! for (i, n) in (0u64..).zip(nodes.iter_mut()) {
//!     for j in (0..3).filter(|&j| j != i) {
//!         n.neighbor_up(start, j);
//!     }
//! }
//! let mut wire: VecDeque<(u64, u64, Message)> = VecDeque::new();
//! let mut got = Vec::new();
//! let mut now = start;
//! for round in 0..2 {
//!     nodes[0].broadcast(now, Bytes::from(format!("hello {round}"))).unwrap();
//!     loop {
//!         loop {
//!             for (id, n) in (0u64..).zip(nodes.iter_mut()) {
//!                 while let Some(out) = n.poll_output() {
//!                     match out {
//!                         Output::Send { to, msg } => wire.push_back((id, to, msg)),
//!                         Output::Event(Event::Received(r)) => got.push((id, r.payload)),
//!                         Output::Event(_) | Output::Disconnect(_) => {}
//!                     }
//!                 }
//!             }
//!             let Some((from, to, msg)) = wire.pop_front() else { break };
//!             nodes[to as usize].handle_message(now, from, msg);
//!         }
//!         // Sleep until the earliest deadline (the IHAVE batch), then wake whoever is due.
//!         let Some(next) = nodes.iter().filter_map(|n| n.poll_timeout()).min() else { break };
//!         now = next;
//!         for n in &mut nodes {
//!             n.handle_timeout(now); // a no-op for nodes not yet due
//!         }
//!     }
//!     now += Duration::from_secs(1);
//! }
//! // Each broadcast reached both other nodes once. The first crossed itself on the link
//! // 1–2, whose two ends pruned it; the second travelled the tree 0–1, 0–2 with no copy.
//! assert_eq!(got.len(), 4);
//! assert_eq!(nodes[1].stats().duplicates + nodes[2].stats().duplicates, 2);
//! assert_eq!(nodes[1].lazy_peers().collect::<Vec<_>>(), [&2]);
//! ```
//!
//! # Errors and panics
//!
//! * A peer's malformed or hostile message never panics and never returns an error: a
//!   GRAFT for an unknown or evicted id is answered with nothing, an IHAVE batch over
//!   [`Config::max_ihave_entries`] is cut, messages from non-neighbours are ignored (a
//!   payload is still delivered), and each is counted in [`Stats`]. The payload cache, the
//!   received-id cache, missing-message timers, announcers and IHAVE queues each have a
//!   configured bound that no message sequence can exceed. Malformed bytes are the codec's
//!   typed [`DecodeError`](epidemic_core::codec::DecodeError).
//! * Misuse by the application (a payload over the size limit, a bad config) returns an
//!   [`Error`] and changes nothing.
//! * Nothing in this crate panics on any input.
//!
//! # Simulations
//!
//! With the `sim` feature, the `scenario` module runs `Gossip` nodes on `epidemic-sim`
//! (stable runs, bursts, mass failures, each beside eager flooding over the same overlay);
//! the `epidemic-sim plumtree` command prints them beside the paper's and iroh-gossip's
//! figures.

mod config;
mod error;
mod event;
#[cfg(feature = "hyparview")]
mod gossip;
mod handlers;
mod message;
mod node;
#[cfg(feature = "sim")]
pub mod scenario;

pub use config::Config;
pub use error::Error;
pub use event::{Event, Received, Scope, Stats};
#[cfg(feature = "hyparview")]
pub use gossip::{Gossip, GossipConfig, GossipEvent, GossipMessage};
pub use message::{Direct, Graft, IHave, Message, MessageId, Payload};
pub use node::{AcceptAll, PeerId, Plumtree, Validator};

#[doc(no_inline)]
pub use epidemic_core::Machine;

#[cfg(test)]
mod tests;
