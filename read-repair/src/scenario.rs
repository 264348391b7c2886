//! Simulation scenarios (feature `sim`), shared by this crate's tests and `epidemic-sim read-repair`.
