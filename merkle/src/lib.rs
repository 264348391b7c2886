//! # epidemic-merkle
//!
//! Merkle-tree anti-entropy with exact repair, and rateless set reconciliation.
//!
//! Two replicas hold `key → version digest` indexes and must find exactly which keys
//! differ, for datasets of millions of keys, exchanging as few bytes as possible.
//!
//! * **The tree** ([`MerkleTree`], [`tree`]): a complete tree of fixed [`Shape`] over the
//!   key space partitioned by key hash; a node's hash is the XOR of the XXH3-128 hashes of
//!   the items below it (Riak's tictac trees), so a write costs `depth + 1` XORs. The
//!   hasher is pluggable ([`ItemHasher`]).
//! * **The sync machine** ([`MerkleSync`]): compares roots, descends a whole level per
//!   round trip exchanging only the hashes of the children of differing nodes, then
//!   finishes with the item lists of the differing subtrees or a RIBLT sketch of them; both
//!   sides end knowing the exact difference, reported as [`Event::Synced`] with the items
//!   to send and to fetch. Sessions are bounded, fragmented, retransmitted and restarted.
//! * **Rateless set reconciliation** ([`riblt`]): Yang, Gilad, Alizadeh, "Practical
//!   Rateless Set Reconciliation", SIGCOMM 2024. Coded symbols streamed until the receiver
//!   decodes, about 1.35 symbols per differing key whatever the set size. Symbols are
//!   keyed by the key alone and sum in GF(2^64) ([`gf`]), so a key held in two versions
//!   is one difference, and a symbol is 16 bytes (two 8-byte sums), with 140 bytes of
//!   checksum bits spread over the first 333 (8 bits a symbol at first, then fewer; the
//!   decoder undoes the false peels that thin checksums allow);
//!   the side that decoded names the other's items by rank ([`ranks`]).
//! * **The syndrome sketch** ([`sketch`], [`poly`]): each differing key is an error
//!   location of a Reed–Solomon code over GF(2^64) (locator: the masked key; value: the
//!   XOR of the two digests), and a bucket of keys sends the power sums of its items;
//!   `2L + 1` of them decode `L` differences exactly. That is 8 bytes per sum, about 16
//!   bytes and a little per difference, the size of the item itself, against RIBLT's
//!   1.35–1.5 symbols of 16 bytes; keys are split into buckets of about 8 differences by
//!   a salted hash prefix, which the receiver refines (splits) or extends as it decodes.
//!   It costs more CPU than RIBLT (every item enters every sum of its bucket).
//! * **The planner** ([`planner`]): tree descent, item lists, or a sketch (syndromes
//!   within a CPU budget, RIBLT beyond it) over the whole set or over the differing
//!   subtrees, chosen from the estimate each level comparison gives, so that few
//!   differences in a huge dataset cost bytes proportional to the differences.
//!
//! Inner node hashes travel truncated to 8 bytes (a missed difference needs a 2^-64
//! collision); a session reports the difference between the replicas as they were while it
//! ran, and a write that races a session is caught by the next one.
//!
//! Anchors: Cassandra's repair streams every partition of a differing leaf; Riak's
//! hashtree ships ~1,000 keys per difference; the merkle-search-tree crate moves ≈4,067 of
//! 5,000 keys to repair one. Here no item that does not differ travels with a sketch.
//!
//! # Sans-IO
//!
//! [`MerkleSync`] does no I/O, reads no clock and draws its only randomness (a salt for
//! session ids) from the RNG given to its constructor. It implements
//! [`epidemic_core::Machine`]; messages are [`Message`] (envelope protocol id
//! `codec::protocol_id::MERKLE`).
//!
//! # The run loop
//!
//! After any input or command, drain `poll_output` until `None`, then read
//! `poll_timeout`, then wait for the next input or that deadline:
//!
//! ```
//! use std::collections::VecDeque;
//! use std::time::Instant;
//! use epidemic_core::{Machine, Output};
//! use epidemic_merkle::{Config, Event, MerkleSync};
//! use rand::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
//! let mut a: MerkleSync<u64> = MerkleSync::in_memory(Config::default(), &mut rng).unwrap();
//! let mut b: MerkleSync<u64> = MerkleSync::in_memory(Config::default(), &mut rng).unwrap();
//! for k in 0..1000 {
//!     a.insert(k, k);
//!     b.insert(k, k);
//! }
//! a.insert(5000, 1); // only on a
//! b.insert(7, 8); // a different version on b
//!
//! #[allow(clippy::disallowed_methods)] // the doctest is the driver: it owns the clock
//! let now = Instant::now();
//! a.sync(now, 2).unwrap();
//! let mut wire: VecDeque<(u64, u64, epidemic_merkle::Message)> = VecDeque::new();
//! let mut events = Vec::new();
//! loop {
//!     for (me, m) in [(1u64, &mut a), (2, &mut b)] {
//!         while let Some(out) = m.poll_output() {
//!             match out {
//!                 Output::Send { to, msg } => wire.push_back((me, to, msg)),
//!                 Output::Event(e) => events.push((me, e)),
//!                 Output::Disconnect(_) => {}
//!             }
//!         }
//!     }
//!     let Some((from, to, msg)) = wire.pop_front() else { break };
//!     if to == 1 { a.handle_message(now, from, msg) } else { b.handle_message(now, from, msg) }
//! }
//! let Some((1, Event::Synced { to_send, to_fetch, .. })) = events.iter().find(|e| e.0 == 1) else {
//!     panic!("a did not sync: {events:?}")
//! };
//! assert_eq!(to_send.iter().map(|i| i.key).collect::<Vec<_>>().len(), 2); // 5000 and 7
//! assert_eq!(to_fetch.len(), 1); // b's version of 7
//! ```
//!
//! # Errors and panics
//!
//! A peer's malformed or hostile message never panics and never returns an error: the
//! session is aborted (the peer is told), counted in [`Stats`], and reported as
//! [`Event::Failed`]. A RIBLT decoder that cannot peel stops at
//! [`Config::max_differences`]; no step we send or accept exceeds
//! [`Config::max_step_bytes`], no message [`Config::max_message_bytes`]. Local misuse
//! returns [`Error`]. Panics are reserved for broken internal invariants, each commented.

mod config;
mod error;
pub mod gf;
pub mod hasher;
mod message;
pub mod planner;
pub mod poly;
pub mod ranks;
pub mod riblt;
#[cfg(feature = "sim")]
pub mod scenario;
mod session;
pub mod sketch;
mod store;
mod sync;
pub mod tree;

pub use config::Config;
pub use error::Error;
pub use hasher::{ItemHasher, Xxh3};
pub use message::{AbortReason, Fragment, Message, Step, StepKind, WireItem, bitmap, bits};
pub use planner::Method;
pub use session::{Finish, SessionReport};
pub use store::{Item, MemStore, Replica, Store};
pub use sync::{Event, FailReason, MerkleSync, Stats};
pub use tree::{MerkleTree, Shape};

/// A key: 64 bits (hash longer keys to 64 bits and keep the map beside the store).
pub type Key = u64;
/// The digest of a key's version.
pub type Digest = u64;
