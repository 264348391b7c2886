//! # epidemic-sim
//!
//! A deterministic discrete-event network simulator for any
//! [`Machine`](epidemic_core::Machine). The `epidemic-sim` command that reproduces each
//! protocol paper's results is the `epidemic-sim-cli` package beside it.
//!
//! * **Virtual time.** Nothing waits: one queue orders every delivery, timer, fault and
//!   command by `(time, sequence)`, and machines see `Instant`s that are a fixed epoch plus
//!   virtual time.
//! * **One seed.** Every random choice (delays, losses, duplicates, machine RNGs through
//!   [`Sim::fork_rng`]) comes from ChaCha seeded by [`SimConfig::seed`]. The same seed gives
//!   the same [`Sim::trace_hash`]; a failed invariant prints its seed.
//! * **Faults per directed link** ([`LinkConfig`]): latency with jitter (so datagrams
//!   reorder), uniform or bursty Gilbert–Elliott [`Loss`], duplication; partitions that cut
//!   and heal sets of nodes; crash and restart with a factory that carries over what the
//!   scenario declares durable; late joiners ([`Sim::add_node_at`]); slow nodes that see
//!   their messages late ([`Sim::schedule_slow`]); a filter that drops chosen messages
//!   ([`Sim::set_filter`]); datagram or connection [`Transport`]s, the latter FIFO and
//!   reporting broken links as `handle_link_down`.
//! * **Real bytes.** [`Wire::enveloped`] sizes messages as the adapters send them: the
//!   two-byte envelope plus the postcard body.
//! * **Metrics** ([`Metrics`]): messages and bytes sent and delivered per node, per kind and
//!   in total, drops by reason, every application event with time and node (recorded, or
//!   streamed to [`Sim::set_event_hook`] for runs too big to keep them); [`Meter`] reads
//!   wall time, CPU time and peak memory.
//! * **Invariants** run every N virtual ms and when a run ends; a failure prints the last
//!   steps of the run (the flight recorder) and the seed.
//! * **Fault plans** ([`plan::FaultPlan`]): random schedules of crashes, restarts,
//!   partitions, lossy links and slow nodes, from a seed or (feature `proptest`) from a
//!   shrinking proptest strategy, applied to any simulation.
//! * **Overlay analysis** ([`graph::Graph`]): symmetry, components, in-degrees, flood
//!   hops, average shortest path and clustering coefficient of any set of views.
//! * **Seed matrices**: [`check_seeds`] runs a scenario over a range of seeds and names the
//!   one that failed; `SEED=n cargo test` reruns exactly that seed.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use epidemic_sim::flood::{self, Flood, FloodEvent};
//! use epidemic_sim::{Sim, SimConfig};
//!
//! let mut sim: Sim<Flood> = Sim::new(SimConfig::with_seed(7), flood::wire());
//! // A line of three nodes: 0 - 1 - 2.
//! sim.add_node(0, Flood::new(0, vec![1], 16)).unwrap();
//! sim.add_node(1, Flood::new(1, vec![0, 2], 16)).unwrap();
//! sim.add_node(2, Flood::new(2, vec![1], 16)).unwrap();
//! sim.command(&0, |m, now| m.broadcast(now, "hi".into())).unwrap();
//! assert!(sim.run_until_quiescent(Duration::from_secs(1)).unwrap());
//! let delivered: Vec<u64> = sim.events().iter().map(|e| e.node).collect();
//! assert_eq!(delivered, [0, 1, 2]);
//! assert!(matches!(sim.events()[2].event, FloodEvent::Delivered { hop: 2, .. }));
//! ```
//!
//! # The run loop
//!
//! Build the network ([`Sim::add_node`], `schedule_*` faults and commands, invariants),
//! then advance it with [`Sim::run_until`], [`Sim::run_for`] or
//! [`Sim::run_until_quiescent`]; between runs, read [`Sim::events`], [`Sim::metrics`] and
//! the machines themselves ([`Sim::node`], [`Sim::nodes`]). Inside, each node is driven by
//! the drain contract of [`Machine`](epidemic_core::Machine).
//!
//! # Panics
//!
//! The simulator does not panic on anything a machine or a scenario does; misuse of the
//! scenario API returns [`SimError`].

mod config;
pub mod flood;
pub mod graph;
mod meter;
mod metrics;
mod network;
pub mod plan;
pub mod plot;
mod queue;
mod seeds;
mod sim;
mod wire;

pub use config::{GilbertElliott, LinkConfig, Loss, SimConfig, Transport};
pub use meter::{Measured, Meter};
pub use metrics::{Counter, DropReason, Drops, EventRecord, KindMetrics, Metrics, NodeMetrics};
pub use seeds::{check_seeds, seeds};
pub use sim::{EventHookFn, FilterFn, InvariantFn, RestartFn, Sim, SimError};
pub use wire::{Wire, postcard_size};
