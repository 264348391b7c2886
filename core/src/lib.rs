//! # epidemic-core
//!
//! The one trait every protocol of the `epidemic` workspace implements, so that one
//! simulator and one driver per async runtime can run any of them: SWIM, HyParView,
//! Plumtree, Merkle anti-entropy, bitmap version vectors, read repair, hinted handoff.
//!
//! A protocol is a [`Machine`]: a struct that does no I/O, reads no clock and owns its
//! randomness. Its inputs are messages, timeouts and lost links, each stamped with `now`;
//! its outputs, drained with [`Machine::poll_output`], are messages to send, events for the
//! application and connections to close. The approach follows quinn-proto, str0m and
//! iroh-gossip's `proto` module.
//!
//! # The run loop
//!
//! After any input or command, drain [`Machine::poll_output`] until `None`, then read
//! [`Machine::poll_timeout`], then wait for the next input or that deadline. The trait's
//! documentation states the contract in full and runs it as a doctest.
//!
//! # Shared helpers
//!
//! Only what every protocol would otherwise write again:
//!
//! * [`Deadlines`]: many timers keyed by `(Instant, seq)`, cancellable by [`TimerId`];
//! * [`TimerTable`]: one deadline per timer kind;
//! * [`BoundedQueue`]: a FIFO with a bound that counts and returns what it drops;
//! * [`MonotonicNow`]: treat a `now` that goes backwards as the last `now`;
//! * `codec` (feature `codec`): the two-byte envelope (protocol id, version) and postcard
//!   body every wire message travels in, with typed decode errors.
//!
//! # Panics
//!
//! Nothing in this crate panics on any input.

mod bounded;
mod clock;
#[cfg(feature = "codec")]
pub mod codec;
mod deadlines;
mod machine;

pub use bounded::{BoundedQueue, Overflow};
pub use clock::MonotonicNow;
pub use deadlines::{Deadlines, TimerId, TimerTable};
pub use machine::{Machine, Output};
