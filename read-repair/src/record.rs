//! Records, versions and reconciliation: the [`Schema`] an application plugs in, the
//! [`Resolver`] trait that orders versions, the two resolvers that ship
//! ([`LastWriteWins`], [`VectorResolver`] over [`VersionVector`]s), and the per-replica
//! minimal diff.
//!
//! A [`Record`] is a map of cells (a Cassandra row: column name to value). Each cell holds
//! the versions of its value that no other version dominates: one under last-write-wins,
//! possibly several concurrent *siblings* under version vectors. Merging is a join: the
//! merged cell keeps every version not dominated by another, so merging is commutative,
//! associative and idempotent whatever order replicas answer or repairs arrive in.
//!
//! A record that is a single value is a record with one cell (`Cell = ()`).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// The types an application reads and writes: keys, cell names, values and versions.
///
/// Implement it on a small marker type:
///
/// ```
/// use epidemic_read_repair::Schema;
///
/// #[derive(Debug, Clone, PartialEq, Eq)]
/// struct Users;
/// impl Schema for Users {
///     type Key = String;
///     type Cell = String;
///     type Value = bytes::Bytes;
///     type Version = (u64, u32); // (timestamp micros, writer): last-write-wins
/// }
/// ```
pub trait Schema: Clone + Debug + PartialEq + Eq + 'static {
    /// A record's key (a Cassandra partition and clustering key).
    type Key: Clone + Debug + Ord + Hash + Serialize + DeserializeOwned;
    /// A cell's name within a record; `()` for records that are one value.
    type Cell: Clone + Debug + Ord + Serialize + DeserializeOwned;
    /// A cell's value. Deletions are values too (a tombstone variant of the
    /// application's type), so that they win over older writes.
    type Value: Clone + Debug + PartialEq + Serialize + DeserializeOwned;
    /// A value's version: ordered (totally or partially) by the [`Resolver`] in use. Its
    /// `Ord` only gives siblings a canonical order for digests; equal versions are the same
    /// write.
    type Version: Clone + Debug + Ord + Serialize + DeserializeOwned;
}

/// How version `a` relates to version `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Causality {
    /// `a` happened before `b`: `b` supersedes it.
    Before,
    /// `a` happened after `b`: `a` supersedes it.
    After,
    /// The same write.
    Equal,
    /// Neither saw the other: both are kept as siblings.
    Concurrent,
}

/// Orders versions; the reconciliation the application chooses.
///
/// It must be a partial order (antisymmetric and transitive) for merges to converge;
/// a resolver that answers [`Causality::Concurrent`] for distinct versions keeps both as
/// siblings and returns them to the application.
pub trait Resolver<T> {
    /// How `a` relates to `b`.
    fn compare(&self, a: &T, b: &T) -> Causality;
}

/// Last-write-wins: the greater version (by its `Ord`) supersedes the other, Cassandra's
/// rule. Versions should carry a tie-breaker (a writer id) so that two different writes
/// never compare equal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastWriteWins;

impl<T: Ord> Resolver<T> for LastWriteWins {
    fn compare(&self, a: &T, b: &T) -> Causality {
        match a.cmp(b) {
            std::cmp::Ordering::Less => Causality::Before,
            std::cmp::Ordering::Equal => Causality::Equal,
            std::cmp::Ordering::Greater => Causality::After,
        }
    }
}

/// A version vector: one counter per writer (Dynamo's clocks, Riak's vclocks).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VersionVector(BTreeMap<u64, u64>);

impl VersionVector {
    /// The empty vector (before every write).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one more write by `actor`; returns the new counter.
    pub fn increment(&mut self, actor: u64) -> u64 {
        let c = self.0.entry(actor).or_insert(0);
        *c = c.saturating_add(1);
        *c
    }

    /// `actor`'s counter (0 if it never wrote).
    #[must_use]
    pub fn get(&self, actor: u64) -> u64 {
        self.0.get(&actor).copied().unwrap_or(0)
    }

    /// The pointwise maximum of both: what a writer that saw both siblings increments.
    pub fn join(&mut self, other: &VersionVector) {
        for (&actor, &c) in &other.0 {
            let mine = self.0.entry(actor).or_insert(0);
            *mine = (*mine).max(c);
        }
    }

    /// `(actor, counter)` pairs in actor order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0.iter().map(|(&a, &c)| (a, c))
    }
}

/// Orders [`VersionVector`]s causally: concurrent writes become siblings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VectorResolver;

impl Resolver<VersionVector> for VectorResolver {
    fn compare(&self, a: &VersionVector, b: &VersionVector) -> Causality {
        let (mut a_ahead, mut b_ahead) = (false, false);
        for (&actor, &ca) in &a.0 {
            let cb = b.get(actor);
            a_ahead |= ca > cb;
            b_ahead |= cb > ca;
        }
        for (&actor, &cb) in &b.0 {
            b_ahead |= cb > a.get(actor);
        }
        match (a_ahead, b_ahead) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::After,
            (false, true) => Causality::Before,
            (true, true) => Causality::Concurrent,
        }
    }
}

/// One value with its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Versioned<S: Schema> {
    /// The version.
    pub version: S::Version,
    /// The value.
    pub value: S::Value,
}

/// The versions of one cell that no other version dominates, in version order: one under
/// last-write-wins, several concurrent siblings under version vectors.
pub type Siblings<S> = SmallVec<[Versioned<S>; 1]>;

/// A record: cells by name, each with its undominated versions.
///
/// Cells and siblings are kept in a canonical order, so equal records encode to equal
/// bytes and hence equal digests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Record<S: Schema> {
    cells: BTreeMap<S::Cell, Siblings<S>>,
}

impl<S: Schema> Default for Record<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Schema> Record<S> {
    /// A record with no cells.
    #[must_use]
    pub fn new() -> Self {
        Self {
            cells: BTreeMap::new(),
        }
    }

    /// A record holding one write.
    #[must_use]
    pub fn single(cell: S::Cell, version: S::Version, value: S::Value) -> Self {
        let mut cells = BTreeMap::new();
        let mut s = Siblings::<S>::new();
        s.push(Versioned { version, value });
        cells.insert(cell, s);
        Self { cells }
    }

    /// Merges one write into `cell`; returns whether the record changed.
    pub fn insert<R: Resolver<S::Version> + ?Sized>(
        &mut self,
        cell: S::Cell,
        version: S::Version,
        value: S::Value,
        resolver: &R,
    ) -> bool {
        let siblings = self.cells.entry(cell).or_default();
        merge_version(siblings, Versioned { version, value }, resolver)
    }

    /// Merges every version of `other` into this record (the join); returns whether this
    /// record changed.
    pub fn merge<R: Resolver<S::Version> + ?Sized>(
        &mut self,
        other: &Record<S>,
        resolver: &R,
    ) -> bool {
        let mut changed = false;
        for (cell, theirs) in &other.cells {
            match self.cells.get_mut(cell) {
                Some(mine) => {
                    for v in theirs {
                        changed |= merge_version(mine, v.clone(), resolver);
                    }
                }
                None => {
                    // Their siblings are undominated among themselves only if they came
                    // from a merge; a hostile record may not be, so merge one by one.
                    let mut mine = Siblings::<S>::new();
                    for v in theirs {
                        merge_version(&mut mine, v.clone(), resolver);
                    }
                    if !mine.is_empty() {
                        self.cells.insert(cell.clone(), mine);
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    /// What `replica` lacks of this (resolved) record: for each cell, the versions this
    /// record has and the replica does not. Merging the diff into the replica's record
    /// gives this record, for any replica record this one was merged from. An empty diff
    /// means the replica is up to date.
    #[must_use]
    pub fn diff(&self, replica: Option<&Record<S>>) -> Record<S> {
        let Some(replica) = replica else {
            return self.clone();
        };
        let mut cells = BTreeMap::new();
        for (cell, mine) in &self.cells {
            let theirs = replica.cells.get(cell);
            let missing: Siblings<S> = mine
                .iter()
                .filter(|v| !theirs.is_some_and(|t| t.iter().any(|w| w.version == v.version)))
                .cloned()
                .collect();
            if !missing.is_empty() {
                cells.insert(cell.clone(), missing);
            }
        }
        Record { cells }
    }

    /// The versions of `cell`, if it has any.
    #[must_use]
    pub fn get(&self, cell: &S::Cell) -> Option<&[Versioned<S>]> {
        self.cells.get(cell).map(SmallVec::as_slice)
    }

    /// Cells in name order, each with its versions (several when siblings are concurrent).
    pub fn cells(&self) -> impl Iterator<Item = (&S::Cell, &[Versioned<S>])> {
        self.cells.iter().map(|(c, s)| (c, s.as_slice()))
    }

    /// Number of cells.
    #[must_use]
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether the record has no cells.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Number of versions over all cells (cells plus extra siblings).
    #[must_use]
    pub fn versions(&self) -> usize {
        self.cells.values().map(SmallVec::len).sum()
    }

    /// Whether any cell holds concurrent siblings the application must resolve.
    #[must_use]
    pub fn has_siblings(&self) -> bool {
        self.cells.values().any(|s| s.len() > 1)
    }
}

/// Merges `incoming` into `siblings` (undominated, in version order); returns whether
/// they changed.
fn merge_version<S: Schema, R: Resolver<S::Version> + ?Sized>(
    siblings: &mut Siblings<S>,
    incoming: Versioned<S>,
    resolver: &R,
) -> bool {
    // Already held, or superseded by a version held: nothing to do.
    if siblings.iter().any(|s| {
        s.version == incoming.version
            || matches!(
                resolver.compare(&incoming.version, &s.version),
                Causality::Before | Causality::Equal
            )
    }) {
        return false;
    }
    siblings.retain(|s| resolver.compare(&incoming.version, &s.version) != Causality::After);
    let at = siblings.partition_point(|s| s.version < incoming.version);
    siblings.insert(at, incoming);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Lww;
    impl Schema for Lww {
        type Key = u64;
        type Cell = u8;
        type Value = u32;
        type Version = u64;
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Vv;
    impl Schema for Vv {
        type Key = u64;
        type Cell = u8;
        type Value = u32;
        type Version = VersionVector;
    }

    fn vv(pairs: &[(u64, u64)]) -> VersionVector {
        VersionVector(pairs.iter().copied().collect())
    }

    #[test]
    fn lww_keeps_the_newest_per_cell() {
        let mut a = Record::<Lww>::single(1, 5, 50);
        a.insert(2, 1, 10, &LastWriteWins);
        let mut b = Record::<Lww>::single(1, 7, 70);
        b.insert(3, 2, 20, &LastWriteWins);
        assert!(a.merge(&b, &LastWriteWins));
        assert!(!a.merge(&b, &LastWriteWins), "idempotent");
        let cells: Vec<(u8, u64, u32)> = a
            .cells()
            .map(|(c, s)| (*c, s[0].version, s[0].value))
            .collect();
        assert_eq!(cells, [(1, 7, 70), (2, 1, 10), (3, 2, 20)]);
        assert!(!a.insert(1, 6, 60, &LastWriteWins), "older write ignored");
    }

    #[test]
    fn diff_is_only_what_the_replica_lacks() {
        let mut resolved = Record::<Lww>::single(1, 7, 70);
        resolved.insert(2, 1, 10, &LastWriteWins);
        resolved.insert(3, 2, 20, &LastWriteWins);
        let mut stale = Record::<Lww>::single(1, 5, 50);
        stale.insert(2, 1, 10, &LastWriteWins);
        let diff = resolved.diff(Some(&stale));
        let cells: Vec<u8> = diff.cells().map(|(c, _)| *c).collect();
        assert_eq!(cells, [1, 3]);
        stale.merge(&diff, &LastWriteWins);
        assert_eq!(stale, resolved);
        assert!(resolved.diff(Some(&resolved)).is_empty());
        assert_eq!(resolved.diff(None), resolved);
    }

    #[test]
    fn vectors_keep_concurrent_siblings_and_drop_dominated_ones() {
        let r = VectorResolver;
        assert_eq!(r.compare(&vv(&[(1, 1)]), &vv(&[(1, 2)])), Causality::Before);
        assert_eq!(r.compare(&vv(&[(1, 2)]), &vv(&[(1, 1)])), Causality::After);
        assert_eq!(
            r.compare(&vv(&[(1, 1)]), &vv(&[(2, 1)])),
            Causality::Concurrent
        );
        assert_eq!(
            r.compare(&vv(&[(1, 1), (2, 0)]), &vv(&[(1, 1)])),
            Causality::Equal
        );
        let mut a = Record::<Vv>::single(0, vv(&[(1, 1)]), 1);
        let b = Record::<Vv>::single(0, vv(&[(2, 1)]), 2);
        a.merge(&b, &r);
        assert!(a.has_siblings());
        assert_eq!(a.versions(), 2);
        // A write that saw both replaces both.
        let c = Record::<Vv>::single(0, vv(&[(1, 1), (2, 1), (3, 1)]), 3);
        let diff_for_b = {
            let mut m = a.clone();
            m.merge(&c, &r);
            m.diff(Some(&b))
        };
        a.merge(&c, &r);
        assert_eq!(a.versions(), 1);
        assert_eq!(a.get(&0).unwrap()[0].value, 3);
        assert_eq!(diff_for_b.versions(), 1);
    }

    #[test]
    fn merging_normalises_a_hostile_record() {
        // Siblings out of order, a duplicate and a dominated version, as a peer could send.
        let hostile: Record<Lww> =
            postcard::from_bytes(&[1, 0, 4, 9, 90, 3, 30, 9, 91, 1, 10]).unwrap();
        assert_eq!(hostile.versions(), 4);
        let mut clean = Record::<Lww>::new();
        clean.merge(&hostile, &LastWriteWins);
        assert_eq!(clean, Record::single(0, 9, 90));
    }

    #[test]
    fn merge_order_does_not_matter() {
        let r = VectorResolver;
        let writes = [
            Record::<Vv>::single(0, vv(&[(1, 1)]), 1),
            Record::<Vv>::single(0, vv(&[(2, 1)]), 2),
            Record::<Vv>::single(0, vv(&[(1, 2)]), 3),
            Record::<Vv>::single(1, vv(&[(3, 1)]), 4),
        ];
        let mut forward = Record::<Vv>::new();
        for w in &writes {
            forward.merge(w, &r);
        }
        let mut backward = Record::<Vv>::new();
        for w in writes.iter().rev() {
            backward.merge(w, &r);
        }
        assert_eq!(forward, backward);
        assert_eq!(forward.versions(), 3);
    }
}
