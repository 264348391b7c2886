//! # epidemic-bvv
//!
//! Server-wide causality management for an eventually consistent key-value store, after
//! Gonçalves, Almeida, Baquero and Fonte, *Concise Server-Wide Causality Management for
//! Eventually Consistent Data Stores* (DAIS 2015) and its follow-up *DottedDB:
//! Anti-Entropy without Merkle Trees, Deletes without Tombstones* (SRDS 2017). The Erlang
//! ServerWideClocks library is the only other implementation.
//!
//! * **Dots and the node clock** ([`Dot`], [`NodeClock`], [`Entry`]): one bitmap version
//!   vector per node records every write the node has seen, whatever its key: per peer a
//!   base and a bitmap of later counters, normalised so the bitmap's lowest bit is clear.
//! * **Dotted causal containers** ([`Dcc`]): per key, the concurrent values each with the
//!   dot that wrote it, and a causal context that is *stripped* against the node clock at
//!   rest and *filled* back before use, so a key at rest carries one `(id, counter)` pair
//!   per value and nothing else.
//! * **Dot→key log and watermark matrix** ([`DotLog`], [`Watermark`]): the keys of the
//!   dots not yet seen everywhere, and what each member is known to have seen; the log is
//!   truncated below the watermark, empty keys leave the store without tombstones, a
//!   silent member is reported ([`Event::GcBlocked`]) and can be retired.
//! * **Node-wide sync** ([`Bvv`], a [`Machine`](epidemic_core::Machine)): every interval
//!   a node sends its clock to a random member, which answers with exactly the keys whose
//!   dots are missing (from its log), in bounded messages.
//! * **Storage** ([`Storage`], [`MemoryStore`]): the key → container map, replaceable.
//!
//! A write is also pushed to the other members at once ([`Config::push_writes`], as
//! DottedDB replicates a write to the key's replicas); sync repairs what a push missed,
//! leaving out dots younger than [`Config::sync_grace`] whose push is likely in flight.
//! A requester adds to its clock only the dots that arrived with a container covering
//! them, so a lost or truncated reply never makes it claim a dot it has not seen.
//!
//! A node that lost its state must come back under a new id
//! ([`Bvv::replace_peer`]): its requests under the old id would be older than what the
//! others know of it, and are ignored as stale. The new id catches up through a full
//! transfer, page by page.
//!
//! Every node replicates every key of its group (run one group per key range for
//! partial replication, as DottedDB runs one per virtual node). Members are trusted to
//! report their own clocks and watermarks truthfully (authenticate the cluster at the
//! transport); what is checked is everything a member cannot know, such as this node's
//! own future dots or ids nobody has heard of.
//!
//! # Sans-IO
//!
//! A [`Bvv`] does no I/O, reads no clock and owns its RNG: its inputs are messages and
//! timeouts stamped with `now`, its outputs are drained with `poll_output`. The same
//! inputs and seed give the same outputs.
//!
//! # The run loop
//!
//! After any input or command, drain `poll_output` until `None`, then read
//! `poll_timeout`, then wait for the next input or that deadline:
//!
//! ```
//! use std::collections::VecDeque;
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use epidemic_bvv::{Bvv, Config, Context, MemoryStore, Message};
//! use epidemic_core::{Machine, Output};
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//!
//! let start = Instant::now();
//! let cfg = Config { push_writes: false, ..Config::default() };
//! let mut nodes: Vec<Bvv<MemoryStore, ChaCha8Rng>> = (0..3)
//!     .map(|id| {
//!         let rng = ChaCha8Rng::seed_from_u64(id);
//!         Bvv::new(start, id, 0..3, cfg.clone(), MemoryStore::new(), rng).unwrap()
//!     })
//!     .collect();
//! nodes[0].put(start, Bytes::from("k"), Bytes::from("v"), &Context::new()).unwrap();
//!
//! let mut now = start;
//! let mut wire: VecDeque<(u64, u64, Message)> = VecDeque::new();
//! for _ in 0..20 {
//!     for n in &mut nodes {
//!         if n.poll_timeout().is_some_and(|t| t <= now) {
//!             n.handle_timeout(now);
//!         }
//!     }
//!     loop {
//!         for n in &mut nodes {
//!             while let Some(out) = n.poll_output() {
//!                 if let Output::Send { to, msg } = out {
//!                     wire.push_back((n.id(), to, msg));
//!                 }
//!             }
//!         }
//!         let Some((from, to, msg)) = wire.pop_front() else { break };
//!         nodes[to as usize].handle_message(now, from, msg);
//!     }
//!     now += Duration::from_millis(500);
//! }
//! for n in &nodes {
//!     assert_eq!(n.get(b"k").values, [Bytes::from("v")]);
//! }
//! ```
//!
//! # Errors and panics
//!
//! A peer's malformed bytes are a typed `DecodeError` from
//! [`epidemic_core::codec::decode`] (clocks that are not normalised or whose bitmap is
//! over [`MAX_BITMAP_WORDS`], unsorted containers). A well-formed hostile message (one
//! claiming this node's future dots, naming dots its container does not cover, from a
//! non-member) is dropped and counted in [`Stats`]; it never panics and never makes the
//! node claim a dot it has not seen. The application's misuse (a value over the bound, a
//! full log) is an [`Error`] and changes nothing. Nothing panics on any input.

mod clock;
mod config;
mod dcc;
mod entry;
mod error;
mod log;
mod message;
mod node;
#[cfg(feature = "sim")]
pub mod scenario;
mod storage;
mod strip;
mod sync;
mod watermark;

pub use clock::{Dot, NodeClock, NodeId};
pub use config::Config;
pub use dcc::{Context, Dcc, InvalidContainer};
pub use entry::{Entry, InvalidEntry, MAX_BITMAP_WORDS};
pub use error::Error;
pub use log::DotLog;
pub use message::{Message, SyncEntry, SyncReply};
pub use node::{Bvv, Durable, Event, ReadResult, Stats};
pub use storage::{MemoryStore, Storage};
pub use strip::StripQueue;
pub use watermark::Watermark;
