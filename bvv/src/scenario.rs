//! Simulation scenarios (feature `sim`).
