//! # epidemic-read-repair
//!
//! The read path of a Dynamo-style replicated store (Cassandra's), as sans-IO state
//! machines: a [`Coordinator`] that reads a key from a consistency level's worth of
//! replicas, and a [`Responder`] that answers for one replica's [`Store`]. [`Node`] holds
//! both roles behind one peer id.
//!
//! * **Consistency levels** ([`Level`]): ONE, TWO, THREE, QUORUM, ALL or a count, over a
//!   replica list given per read; a typed [`ReadError`] when the level cannot be met, a
//!   [`FailReason`] when a read times out.
//! * **Digest reads**: one full data request to the preferred replica ([`DataReplica`]:
//!   first in list, or lowest observed latency), digest requests to the others; a digest
//!   is XXH3-128 of the canonical postcard encoding ([`digest()`]). If every digest matches
//!   the data's, the read answers after one round trip; otherwise full data comes only
//!   from the replicas whose digests differed (Cassandra re-reads every replica it asked:
//!   [`Config::fetch_all_on_mismatch`] does that, for comparison).
//! * **Reconciliation** through the [`Resolver`] trait: [`LastWriteWins`] and
//!   [`VectorResolver`] (version vectors, concurrent siblings returned to the application)
//!   ship. Records are maps of cells, and each stale replica is sent only the cell
//!   versions it lacks ([`Record::diff`], Cassandra's merge listener), not the record.
//! * **Repair** per read ([`RepairMode`]): blocking (answer once repairs make the level's
//!   worth of replicas hold the answer: monotonic quorum reads), asynchronous, or none;
//!   acknowledgements with retransmission and a timeout; late answers from replicas
//!   outside the consistency set repaired too.
//! * **Speculative retry** ([`SpeculativeRetry`]): a fixed delay or a percentile of
//!   observed latency, after which one more replica is asked (a data request while no
//!   data answer has arrived); `Always` asks one more up front. Late answers and silent
//!   replicas feed the per-replica latency average, so the lowest-latency choice learns
//!   to avoid a slow or dead replica.
//!
//! The design follows Cassandra's `AbstractReadExecutor`, `DigestResolver`,
//! `DataResolver` and `BlockingReadRepair`/`AsyncReadRepair`; DeCandia et al., *Dynamo:
//! Amazon's Highly Available Key-value Store* (SOSP 2007), for version vectors and read
//! repair.
//!
//! # Sans IO
//!
//! No machine here does I/O, reads a clock or spawns anything: every input carries `now`,
//! every output is drained with
//! [`Machine::poll_output`](epidemic_core::Machine::poll_output), and timers are
//! deadlines read from [`Machine::poll_timeout`](epidemic_core::Machine::poll_timeout).
//! The wire format is the workspace's envelope (protocol id
//! [`READ_REPAIR`](epidemic_core::codec::protocol_id::READ_REPAIR)) around postcard. Any
//! transport works: the simulations run it over datagrams, where losses are covered by
//! speculative retry, retransmission of unanswered requests and unacknowledged repairs
//! ([`Config::retransmit_interval`]) and the read timeout; over connections,
//! `handle_link_down` fails a read over to the next replica at once.
//!
//! # The run loop
//!
//! After every input or command, drain `poll_output` until `None`, then read
//! `poll_timeout`. Here a coordinator node reads from three replicas in memory:
//!
//! ```
//! use std::collections::VecDeque;
//! use std::time::{Duration, Instant};
//! use epidemic_core::{Machine, Output};
//! use epidemic_read_repair::{
//!     Config, Event, LastWriteWins, MemoryStore, Node, ReadOptions, Schema,
//! };
//!
//! #[derive(Debug, Clone, PartialEq, Eq)]
//! struct Kv;
//! impl Schema for Kv {
//!     type Key = u32;
//!     type Cell = ();
//!     type Value = String;
//!     type Version = u64;
//! }
//!
//! let node = |me| Node::new(me, Config::default(), MemoryStore::<Kv>::new(100), LastWriteWins).unwrap();
//! let mut nodes: Vec<_> = (0..4u64).map(node).collect();
//! // Replica 3 missed the newer write.
//! for r in 1..=3 {
//!     nodes[r].responder_mut().write(7, (), 1, "old".into());
//! }
//! for r in 1..=2 {
//!     nodes[r].responder_mut().write(7, (), 2, "new".into());
//! }
//! let now = Instant::now();
//! nodes[0].read(now, 7, &[1, 2, 3], ReadOptions::default()).unwrap();
//!
//! // The driver: deliver every message at once, collect events.
//! let mut wire: VecDeque<(u64, u64, _)> = VecDeque::new();
//! let mut events = Vec::new();
//! loop {
//!     for (me, n) in nodes.iter_mut().enumerate() {
//!         while let Some(out) = n.poll_output() {
//!             match out {
//!                 Output::Send { to, msg } => wire.push_back((me as u64, to, msg)),
//!                 Output::Event(e) => events.push(e),
//!                 Output::Disconnect(_) => {}
//!             }
//!         }
//!     }
//!     let Some((from, to, msg)) = wire.pop_front() else { break };
//!     nodes[to as usize].handle_message(now, from, msg);
//! }
//! let Event::ReadDone(done) = &events[0] else { panic!("{events:?}") };
//! assert_eq!(done.value.as_ref().unwrap().get(&()).unwrap()[0].value, "new");
//! assert!(nodes[0].poll_timeout().is_some()); // the completed read lingers for late answers
//! ```
//!
//! # Errors and panics
//!
//! A replica's malformed or hostile message (a late, duplicate, unknown-id or
//! wrong-replica answer, a request sent to a coordinator) never panics and never returns
//! an error: it is dropped and counted in [`Stats`] or [`ResponderStats`]. Malformed bytes
//! are a typed [`DecodeError`](epidemic_core::codec::DecodeError) from
//! [`decode`](epidemic_core::codec::decode). The application's misuse (a level the
//! replicas cannot meet, too many reads in flight) is a [`ReadError`] and changes nothing.
//! Panics mean a broken internal invariant; every `expect` says why it cannot fail.
//! Every map is bounded: reads in flight ([`Config::max_in_flight`]), remembered reads
//! ([`Config::max_lingering`]), latency samples and tracked peers, store keys.

mod config;
mod coordinator;
mod digest;
mod error;
mod event;
#[cfg(feature = "sim")]
pub mod figures;
mod latency;
mod message;
mod node;
mod record;
mod replica;
#[cfg(feature = "sim")]
pub mod scenario;

pub use config::{Config, DataReplica, Level, ReadOptions, RepairMode, SpeculativeRetry};
pub use coordinator::{ConfigError, Coordinator};
pub use digest::{DIGEST_LEN, Digest, digest};
pub use error::ReadError;
pub use event::{Event, FailReason, ReadDone, Stats};
pub use message::{Message, ReadId};
pub use node::Node;
pub use record::{
    Causality, LastWriteWins, Record, Resolver, Schema, Siblings, VectorResolver, VersionVector,
    Versioned,
};
pub use replica::{MemoryStore, Responder, ResponderStats, Store};
