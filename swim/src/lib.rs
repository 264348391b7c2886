//! # epidemic-swim
//!
//! SWIM membership and failure detection (Das, Gupta, Motivala, "SWIM: Scalable
//! Weakly-consistent Infection-style Process Group Membership Protocol", DSN 2002) with the
//! extensions production systems rely on, after HashiCorp memberlist and foca:
//!
//! * **Probing** one member per protocol period in randomized round-robin order, then
//!   ping-req through k helpers, who nack when the target stays silent for the time the
//!   ping-req gives them: 80% of what is left of the requester's period (Lifeguard's
//!   footnote 5), so a dead target's nacks arrive before the requester judges its probe and
//!   its local health is not wrongly worsened (memberlist's helper nacks after its own
//!   probe timeout, which with the LAN preset lands at or after the end of the requester's
//!   period; swift-cluster-membership fixed the same in its issue 6). With the ping-reqs
//!   goes a second direct ping ([`Config::fallback_ping`]), memberlist's TCP fallback ping
//!   as one more datagram: at 5% loss it cuts false suspicions about 10× and, with them,
//!   most of the gossip they cause.
//! * **Suspicion** with incarnation numbers, refutation, Dead and Left tombstones kept for
//!   [`Config::dead_retention`] (rules below).
//! * **Dissemination** piggybacked on every probe message and on periodic gossip, each
//!   update sent λ·⌈log10(N+1)⌉ times, least-sent and freshest first, packed up to
//!   [`Config::max_packet_size`] envelope included.
//! * **Lifeguard** (Dadgar, Phillips, Currey 2018): local health multiplier, dynamic
//!   suspicion timeout, nacks, buddy system ([`Lifeguard`]). Two additions of ours, on
//!   with the buddy system: a member that receives an outdated suspicion of itself answers
//!   its sender directly with its current Alive (the sender missed the refutation), and a
//!   suspicion that times out without its k independent confirmations first gets one
//!   last-chance ping carrying the suspicion, whose ack brings the refutation back if the
//!   member lives (one period more before Down; a confirmed suspicion is believed at once).
//! * **Life cycle**: join through seeds with retry, periodic push-pull of the full state,
//!   opened by a 16-byte digest of the table so that a converged group pays one datagram
//!   per exchange instead of the whole table both ways (ours; memberlist always sends the
//!   table, which is what made its cost grow with N), graceful leave, and restart: a member is keyed by its address, so a restarted node
//!   (incarnation back to 0) finds its old entry suspected or dead in the first state it
//!   receives and refutes it with a higher incarnation, replacing it. The table never
//!   grows with restarts. (foca renews the identity instead; memberlist refutes, as here.)
//! * **Application data**: bounded per-member metadata carried with Alive, and user
//!   broadcasts on the same dissemination with invalidation by key.
//!
//! # The membership rules
//!
//! About another member at incarnation `j` in our table ([`State`], [`Update`]):
//!
//! * `Alive(i)` wins if `i > j`; a new member is always accepted, and so is a higher
//!   incarnation over a tombstone (a rejoin). Equal incarnations change nothing.
//! * `Suspect(i)` wins over `Alive(j)` if `i ≥ j`; over `Suspect(i)` it only confirms the
//!   suspicion (each distinct suspecter shrinks the Lifeguard timeout), over `Suspect(j < i)`
//!   it starts a new one. It never touches
//!   Dead or Left.
//! * `Dead(i)` and `Left(i)` win over Alive and Suspect if `i ≥ j`, and hold until an
//!   `Alive(i' > i)` or until the tombstone expires.
//! * In a push-pull, a remote Dead only makes us suspect (memberlist): the member gets a
//!   chance to refute.
//!
//! About ourselves: `Suspect(i)`, `Dead(i)` or `Left(i)` with `i ≥` our incarnation, or an
//! `Alive(i)` newer than ours or with other metadata, is refuted by raising our incarnation
//! past `i` and gossiping `Alive`.
//!
//! # Restart and rejoin
//!
//! A member is keyed by its address, so there is one entry per address, ever. A restarted
//! process (incarnation back to 0, empty table) joins through a seed; the seed's state
//! tells it that it is suspected or dead at its old incarnation, and it refutes with a
//! higher one, which replaces the old entry everywhere (memberlist's way; foca instead
//! renews the identity and needs the old one to be reaped). A process that keeps its last
//! incarnation on disk can start above it with [`Swim::with_incarnation`]. The seeds of the
//! last join are also retried by push-pull while they are not live, so a partition that
//! outlasts the tombstones still heals.
//!
//! # Sans-IO
//!
//! [`Swim`] does no I/O, reads no clock and owns its injected RNG: given the same inputs
//! and seed it produces the same outputs. It implements [`epidemic_core::Machine`]; the
//! driver (the simulator, or a UDP adapter) encodes each [`Message`] with
//! `epidemic_core::codec` (envelope protocol id `SWIM`, version 2).
//!
//! # The run loop
//!
//! After any input or command, drain [`poll_output`](epidemic_core::Machine::poll_output)
//! until `None`, then read [`poll_timeout`](epidemic_core::Machine::poll_timeout), then
//! wait for the next datagram or that deadline:
//!
//! ```
//! use std::collections::VecDeque;
//! use std::time::{Duration, Instant};
//! use epidemic_core::{Machine, Output};
//! use epidemic_swim::{Config, Event, Swim};
//! use rand_chacha::{ChaCha8Rng, rand_core::SeedableRng};
//!
//! let t0 = Instant::now();
//! let mut nodes: Vec<Swim<u64, ChaCha8Rng>> = (0..3)
//!     .map(|i| Swim::new(i, Config::local(), ChaCha8Rng::seed_from_u64(i)).unwrap())
//!     .collect();
//! nodes[0].start(t0);
//! nodes[1].join(t0, [0]).unwrap();
//! nodes[2].join(t0, [0]).unwrap();
//!
//! let mut now = t0;
//! let mut wire: VecDeque<(u64, u64, epidemic_swim::Message<u64>)> = VecDeque::new();
//! let mut joined = 0;
//! while now < t0 + Duration::from_secs(5) {
//!     for n in &mut nodes {
//!         if n.poll_timeout().is_some_and(|t| t <= now) { n.handle_timeout(now); }
//!     }
//!     loop {
//!         for n in &mut nodes {
//!             let me = *n.me();
//!             while let Some(out) = n.poll_output() {
//!                 match out {
//!                     Output::Send { to, msg } => wire.push_back((me, to, msg)),
//!                     Output::Event(Event::MemberJoined { .. }) => joined += 1,
//!                     _ => {}
//!                 }
//!             }
//!         }
//!         let Some((from, to, msg)) = wire.pop_front() else { break };
//!         nodes[to as usize].handle_message(now, from, msg);
//!     }
//!     now = nodes.iter().filter_map(|n| n.poll_timeout()).min().unwrap().max(now);
//! }
//! assert!(nodes.iter().all(|n| n.num_live() == 2));
//! assert_eq!(joined, 6);
//! ```
//!
//! # Errors and panics
//!
//! A peer's message, however malformed or hostile once decoded, never panics and never
//! returns an error: what the rules reject is dropped and counted in [`Stats`]. Malformed
//! bytes are the codec's typed `DecodeError`. Application misuse (metadata or a broadcast
//! over the limit, joining with no seed) returns [`Error`] and changes nothing. Every
//! collection is bounded ([`Config::max_members`], [`Config::max_queue`],
//! [`Config::max_relays`], [`Config::max_seen_broadcasts`]) and what is dropped at a bound
//! is counted and reported as [`Event::Dropped`]. A panic means a broken internal
//! invariant.

mod broadcast;
mod config;
mod error;
mod event;
mod lifeguard;
mod message;
mod probe;
mod push_pull;
mod rules;
mod swim;
mod table;

#[cfg(feature = "sim")]
pub mod scenario;

pub use config::{Config, Lifeguard};
pub use error::{ConfigError, Error};
pub use event::{Bound, Event, MemberInfo, Stats};
pub use message::{MemberState, Message, State, Update};
pub use swim::Swim;

/// What a member's address must be: an ordered, hashable, serializable identity
/// (`u64`, `SocketAddr`, a public key).
pub trait Address:
    Clone
    + Ord
    + std::hash::Hash
    + std::fmt::Debug
    + serde::Serialize
    + serde::de::DeserializeOwned
    + 'static
{
}

impl<T> Address for T where
    T: Clone
        + Ord
        + std::hash::Hash
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned
        + 'static
{
}

#[cfg(test)]
mod tests;
