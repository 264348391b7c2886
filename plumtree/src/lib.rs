//! # epidemic-plumtree
//!
//! Plumtree epidemic broadcast trees (Leitão, Pereira, Rodrigues, "Epidemic Broadcast
//! Trees", SRDS 2007) as a sans-IO machine, and the HyParView + Plumtree composite behind
//! the `hyparview` feature. Work in progress: see issue 5.
