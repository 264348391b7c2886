//! Dotted causal containers: the values of one key, each tagged with the dot of the write
//! that produced it, plus the causal context of the key (DAIS 2015 §5).
//!
//! The context is a compact version vector: `(id, n)` says every dot of `id` up to `n`
//! that concerns this key has been seen here. At rest the context is **stripped**
//! against the node clock (entries the clock's base already covers are dropped) and
//! **filled** back from the clock before it is read, written or sent, so that a key at
//! rest carries only the dots of its values: one `(id, counter)` pair when it has one
//! value.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::clock::{Dot, NodeClock, NodeId};

/// A causal context: per node id, the highest counter whose dots (for one key) have all
/// been seen. Sorted by id, no zero counters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "SmallVec<[(NodeId, u64); 2]>")]
pub struct Context {
    entries: SmallVec<[(NodeId, u64); 2]>,
}

/// Why a decoded context or container was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidContainer;

impl std::fmt::Display for InvalidContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "context or values not sorted, duplicated or zero")
    }
}

impl TryFrom<SmallVec<[(NodeId, u64); 2]>> for Context {
    type Error = InvalidContainer;
    fn try_from(entries: SmallVec<[(NodeId, u64); 2]>) -> Result<Self, InvalidContainer> {
        let sorted = entries.windows(2).all(|w| w[0].0 < w[1].0);
        if sorted && entries.iter().all(|&(_, n)| n > 0) {
            Ok(Self { entries })
        } else {
            Err(InvalidContainer)
        }
    }
}

impl Context {
    /// Nothing seen.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter recorded for `id` (0 if none).
    #[must_use]
    pub fn get(&self, id: NodeId) -> u64 {
        self.entries
            .binary_search_by_key(&id, |&(i, _)| i)
            .map_or(0, |at| self.entries[at].1)
    }

    /// Raises `id`'s counter to at least `counter`.
    pub fn raise(&mut self, id: NodeId, counter: u64) {
        if counter == 0 {
            return;
        }
        match self.entries.binary_search_by_key(&id, |&(i, _)| i) {
            Ok(at) => self.entries[at].1 = self.entries[at].1.max(counter),
            Err(at) => self.entries.insert(at, (id, counter)),
        }
    }

    /// Whether `dot` is covered.
    #[must_use]
    pub fn covers(&self, dot: Dot) -> bool {
        dot.counter <= self.get(dot.id)
    }

    /// Pointwise maximum.
    pub fn join_from(&mut self, other: &Context) {
        for &(id, n) in &other.entries {
            self.raise(id, n);
        }
    }

    /// The `(id, counter)` pairs, by id.
    #[must_use]
    pub fn entries(&self) -> &[(NodeId, u64)] {
        &self.entries
    }

    /// Number of pairs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no pair is recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A dotted causal container: the concurrent values of one key, each with its dot, and
/// the key's causal context. The context always covers the values' dots.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "RawDcc")]
pub struct Dcc {
    values: SmallVec<[(Dot, Bytes); 1]>,
    context: Context,
}

#[derive(Deserialize)]
struct RawDcc {
    values: SmallVec<[(Dot, Bytes); 1]>,
    context: Context,
}

impl TryFrom<RawDcc> for Dcc {
    type Error = InvalidContainer;
    fn try_from(raw: RawDcc) -> Result<Self, InvalidContainer> {
        let sorted = raw.values.windows(2).all(|w| w[0].0 < w[1].0);
        if !sorted || raw.values.iter().any(|(d, _)| d.counter == 0) {
            return Err(InvalidContainer);
        }
        let mut d = Dcc {
            values: raw.values,
            context: raw.context,
        };
        // A peer's context that forgets its own values would let them be dropped as
        // "seen"; restore the invariant instead of trusting it.
        for i in 0..d.values.len() {
            let dot = d.values[i].0;
            d.context.raise(dot.id, dot.counter);
        }
        Ok(d)
    }
}

impl Dcc {
    /// No values, empty context.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The values with their dots, by dot.
    #[must_use]
    pub fn values(&self) -> &[(Dot, Bytes)] {
        &self.values
    }

    /// The causal context.
    #[must_use]
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Whether there is neither a value nor a context entry: the key can go.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.context.is_empty()
    }

    /// Metadata pairs: one per value dot plus one per context entry.
    #[must_use]
    pub fn metadata_pairs(&self) -> usize {
        self.values.len() + self.context.len()
    }

    /// Adds a value under a fresh `dot` and records the dot in the context. Only the
    /// node that generated `dot` calls this, after [`fill`](Dcc::fill), so raising the
    /// context to `dot` claims nothing untrue.
    pub fn add(&mut self, dot: Dot, value: Bytes) {
        match self.values.binary_search_by_key(&dot, |(d, _)| *d) {
            Ok(at) => self.values[at].1 = value,
            Err(at) => self.values.insert(at, (dot, value)),
        }
        self.context.raise(dot.id, dot.counter);
    }

    /// Records `dot` in the context without a value (a delete).
    pub fn add_dot(&mut self, dot: Dot) {
        self.context.raise(dot.id, dot.counter);
    }

    /// Drops the values `context` has seen and joins it into the container's context:
    /// what a write with a client's context does before adding its own value.
    pub fn discard(&mut self, context: &Context) {
        self.values.retain(|(d, _)| !context.covers(*d));
        self.context.join_from(context);
    }

    /// Merges `other` into `self`: a value survives if both have it or if the side
    /// without it has not seen its dot; contexts join. A join-semilattice on filled
    /// containers (commutative, associative, idempotent).
    pub fn sync(&mut self, other: &Dcc) {
        let mut out: SmallVec<[(Dot, Bytes); 1]> = SmallVec::new();
        let (mut i, mut j) = (0, 0);
        let (a, b) = (&self.values, &other.values);
        loop {
            match (a.get(i), b.get(j)) {
                (None, None) => break,
                (Some(x), Some(y)) if x.0 == y.0 => {
                    out.push(x.clone());
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    if !other.context.covers(x.0) {
                        out.push(x.clone());
                    }
                    i += 1;
                }
                (Some(x), None) => {
                    if !other.context.covers(x.0) {
                        out.push(x.clone());
                    }
                    i += 1;
                }
                (_, Some(y)) => {
                    if !self.context.covers(y.0) {
                        out.push(y.clone());
                    }
                    j += 1;
                }
            }
        }
        self.values = out;
        self.context.join_from(&other.context);
    }

    /// Drops the values whose dots `clock` has seen and raises the context to its
    /// bases: what an absent key at a node with that clock means (its values were seen
    /// there and deleted). Used when a full transfer skips a key this node holds.
    pub fn discard_seen(&mut self, clock: &NodeClock) {
        self.values.retain(|(d, _)| !clock.contains(*d));
        self.fill(clock);
    }

    /// Drops every context entry the node clock's base already covers: what a key keeps
    /// at rest. [`fill`](Dcc::fill) with the same (or a later) clock restores them.
    pub fn strip(&mut self, clock: &NodeClock) {
        self.context
            .entries
            .retain(|&mut (id, n)| n > clock.base(id));
    }

    /// Raises every context entry to the node clock's base for that id: the full causal
    /// context, before a read, a write or a send.
    pub fn fill(&mut self, clock: &NodeClock) {
        for (id, e) in clock.iter() {
            self.context.raise(id, e.base());
        }
    }

    /// Bytes of the container's encoding.
    #[must_use]
    pub fn wire_len(&self) -> usize {
        epidemic_core::codec::body_len(self)
    }

    /// Bytes of the metadata alone (value dots and context), as encoded.
    #[must_use]
    pub fn metadata_len(&self) -> usize {
        let dots: SmallVec<[Dot; 2]> = self.values.iter().map(|(d, _)| *d).collect();
        epidemic_core::codec::body_len(&(dots, &self.context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn concurrent_writes_survive_as_siblings_and_a_later_write_supersedes() {
        let mut a = Dcc::new();
        a.add(Dot::new(1, 1), v("x"));
        let mut b = Dcc::new();
        b.add(Dot::new(2, 1), v("y"));
        let mut m = a.clone();
        m.sync(&b);
        assert_eq!(m.values().len(), 2);
        // A write that read both supersedes them.
        let mut w = m.clone();
        let ctx = m.context().clone();
        w.discard(&ctx);
        w.add(Dot::new(1, 2), v("z"));
        assert_eq!(w.values(), &[(Dot::new(1, 2), v("z"))]);
        let mut old = m.clone();
        old.sync(&w);
        assert_eq!(old, w);
    }

    #[test]
    fn strip_then_fill_restores_the_context() {
        let mut clock = NodeClock::new();
        for c in 1..=3 {
            clock.add(Dot::new(1, c));
        }
        clock.add(Dot::new(2, 2)); // a hole at (2, 1)
        let mut d = Dcc::new();
        d.fill(&clock);
        d.add(Dot::new(1, 4), v("a"));
        clock.add(Dot::new(1, 4));
        let full = d.clone();
        d.strip(&clock);
        assert!(d.context().is_empty());
        assert_eq!(d.metadata_pairs(), 1);
        d.fill(&clock);
        assert_eq!(d, full);
    }

    #[test]
    fn decode_restores_the_context_invariant() {
        let raw = RawDcc {
            values: SmallVec::from_vec(vec![(Dot::new(5, 9), v("q"))]),
            context: Context::new(),
        };
        let d = Dcc::try_from(raw).unwrap();
        assert!(d.context().covers(Dot::new(5, 9)));
        let unsorted = RawDcc {
            values: SmallVec::from_vec(vec![(Dot::new(5, 9), v("q")), (Dot::new(5, 2), v("r"))]),
            context: Context::new(),
        };
        assert_eq!(Dcc::try_from(unsorted), Err(InvalidContainer));
    }
}
