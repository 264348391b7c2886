//! # epidemic-hinted-handoff
//!
//! The write side of a Dynamo-style store as a sans-IO machine: a write to the N owners of
//! a key that needs W acknowledgements (Cassandra's consistency levels, ANY to ALL),
//! **hinted handoff** for the owners it misses (Cassandra's hints: a hint window, a TTL,
//! bounds, and a replay rate that adapts to the target so that replay does not swamp a
//! recovering node, as it did ScyllaDB's: write p99 from 20 to 350 ms, scylladb/scylladb#7976), **sloppy quorums**
//! (Dynamo, DeCandia et al., SOSP 2007; Riak): a write stands in for owners known down on
//! the next healthy nodes of the preference list, which hand the data off to the owner
//! when it recovers and drop their copy once it acknowledges. The replica side (writes,
//! hinted writes, replays) runs over an application [`Store`]; [`MemStore`] ships.
//!
//! One [`Node`] plays both roles and is an [`epidemic_core::Machine`] over one
//! [`Message`] enum (envelope protocol id
//! [`HINTED_HANDOFF`](epidemic_core::codec::protocol_id::HINTED_HANDOFF)).
//!
//! # Sans-IO, and durability without I/O
//!
//! The node reads no clock, owns its randomness (`R: rand::Rng`, for write and hint ids),
//! and writes nothing to disk. Hints must survive a crash, so the node emits
//! [`Event::Persist`] records (a new hint, a removed hint) which the application makes
//! durable **before carrying out the next output**: a hint covering every owner that has
//! not acknowledged is persisted before [`Event::WriteAcked`] is emitted, and a fallback
//! persists its handoff hint before acknowledging. After a restart, [`Node::from_log`]
//! rebuilds the node from the live records; [`MemLog`] is the in-memory log the
//! simulator carries over a crash, and the `log` feature ships a crash-safe file log
//! (`log::HintLog`). Liveness is an input: wire [`Node::peer_down`] and
//! [`Node::peer_up`] from SWIM (any message from a peer also counts as alive).
//!
//! # Guarantees
//!
//! * **No acknowledged write is lost** while no hint is dropped: before
//!   [`Event::WriteAcked`], every owner that has not acknowledged is covered by a durable
//!   hint on this node or on a fallback, and a hint is removed only when its target (or a
//!   fallback now holding a hint for it) acknowledges. The seeded simulations check this
//!   across random crash, restart, partition, loss and slow-node plans. With
//!   [`Config::hint_before_ack`] off (Cassandra's behaviour) hints are written only at the
//!   write timeout, saving a persisted put and remove per write, and a coordinator crash in
//!   between leaves the slow owner to anti-entropy.
//! * **Hints are best effort past their limits**: a target down longer than the hint
//!   window, a hint older than its TTL, or a full hint store drops the hint, and each drop
//!   is an [`Event::HintDropped`] the application can feed to anti-entropy.
//! * **Sloppy quorums weaken read-your-write**: a write acknowledged by fallbacks during a
//!   partition is invisible to a quorum of owners on the other side, although R + W > N,
//!   until the handoff completes (tested).
//!
//! # The run loop
//!
//! After any input or command, drain [`poll_output`](epidemic_core::Machine::poll_output)
//! until `None` (persisting each [`Event::Persist`] before going on), then read
//! [`poll_timeout`](epidemic_core::Machine::poll_timeout), then wait.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use epidemic_core::{Machine, Output};
//! use epidemic_hinted_handoff::{Config, Consistency, Event, MemLog, MemStore, Mutation, Node};
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//!
//! let t0 = Instant::now();
//! let mk = |me| Node::new(me, Config::default(), MemStore::default(),
//!                         ChaCha8Rng::seed_from_u64(me), t0, 0).unwrap();
//! let mut nodes = vec![mk(0), mk(1), mk(2)];
//! let mut log = MemLog::new(); // node 0's durable hint log
//! nodes[0].peer_down(t0, 2); // SWIM says node 2 is down
//! nodes[0].write(t0, Mutation::put("k", "v", 1), &[0, 1, 2], Consistency::Quorum).unwrap();
//!
//! // Drive: drain outputs, deliver messages, persist records, until quiet.
//! let mut wire = std::collections::VecDeque::new();
//! let mut acked = 0;
//! loop {
//!     for n in nodes.iter_mut() {
//!         while let Some(out) = n.poll_output() {
//!             match out {
//!                 Output::Send { to, msg } => wire.push_back((n.id(), to, msg)),
//!                 Output::Event(Event::Persist(rec)) if n.id() == 0 => log.apply(&rec),
//!                 Output::Event(Event::WriteAcked { .. }) => acked += 1,
//!                 _ => {}
//!             }
//!         }
//!     }
//!     let Some((from, to, msg)) = wire.pop_front() else { break };
//!     if to != 2 { nodes[to as usize].handle_message(t0, from, msg); } // 2 is down
//! }
//! assert_eq!(acked, 1);
//! assert_eq!(log.len(), 1); // one durable hint for node 2
//!
//! // Node 2 comes back: the hint is replayed, acknowledged and removed.
//! nodes[0].peer_up(t0 + Duration::from_secs(1), 2);
//! loop {
//!     for n in nodes.iter_mut() {
//!         while let Some(out) = n.poll_output() {
//!             match out {
//!                 Output::Send { to, msg } => wire.push_back((n.id(), to, msg)),
//!                 Output::Event(Event::Persist(rec)) if n.id() == 0 => log.apply(&rec),
//!                 _ => {}
//!             }
//!         }
//!     }
//!     let Some((from, to, msg)) = wire.pop_front() else { break };
//!     nodes[to as usize].handle_message(t0 + Duration::from_secs(1), from, msg);
//! }
//! assert!(nodes[2].store().has(b"k", 1));
//! assert_eq!((nodes[0].hints_pending(), log.len()), (0, 0));
//! ```
//!
//! # Features
//!
//! * `log`: the crash-safe file hint log (`log::HintLog`).
//! * `sim`: the simulation scenarios (`scenario`) the `epidemic-sim hinted-handoff`
//!   subcommand and this crate's tests share: a node with its durable log and a service
//!   queue, the outage and availability scenarios.
//!
//! # Errors and panics
//!
//! A peer's malformed or hostile message (a duplicate, late or forged acknowledgement, an
//! acknowledgement for an unknown hint, an oversized mutation) never panics and never
//! removes a hint its target did not acknowledge: it is dropped and counted in
//! [`Stats`]. Bad bytes are a typed [`DecodeError`](epidemic_core::codec::DecodeError)
//! from [`epidemic_core::codec::decode`]. Misuse by the application (a short preference
//! list, an unsatisfiable level, too few nodes alive) is a [`WriteError`] with nothing
//! changed. Every hint dropped at the window, TTL or a bound is reported as
//! [`Event::HintDropped`]. Nothing panics on any input.

mod config;
mod consistency;
mod coordinator;
mod durable;
mod error;
mod hints;
#[cfg(feature = "log")]
pub mod log;
mod message;
mod node;
mod replay;
mod replica;
#[cfg(feature = "sim")]
pub mod scenario;
mod store;

pub use config::{Config, ReplayConfig};
pub use consistency::Consistency;
pub use durable::{HintRecord, LogRecord, MemLog};
pub use error::{ConfigError, WriteError};
pub use hints::DropReason;
pub use message::{HintId, Message, Mutation, NodeId, WriteId};
pub use node::{Event, Node, Stats};
pub use store::{MemStore, Store, StoreError, Versioned};
