//! Laws of the data structures, by proptest: bitmap entries and node clocks form a
//! join-semilattice whose join is set union, normalisation keeps the lowest bit clear,
//! missing dots are exactly the set difference, container sync is a join-semilattice and
//! strip then fill loses nothing.

use std::collections::BTreeSet;

use bytes::Bytes;
use epidemic_bvv::{Context, Dcc, Dot, Entry, NodeClock};
use proptest::prelude::*;

fn entry_of(set: &BTreeSet<u64>) -> Entry {
    let mut e = Entry::new();
    for &c in set {
        assert!(e.add(c));
    }
    e
}

fn set_of(e: &Entry, upto: u64) -> BTreeSet<u64> {
    (1..=upto).filter(|&c| e.contains(c)).collect()
}

fn counters() -> impl Strategy<Value = BTreeSet<u64>> {
    prop::collection::btree_set(1u64..400, 0..120)
}

fn normalised(e: &Entry) -> bool {
    e.bits().first().is_none_or(|w| w & 1 == 0) && e.bits().last().is_none_or(|&w| w != 0)
}

proptest! {
    #[test]
    fn entry_is_the_set_it_was_built_from(s in counters()) {
        let e = entry_of(&s);
        prop_assert!(normalised(&e));
        prop_assert_eq!(set_of(&e, 450), s.clone());
        // The base is the longest prefix 1..=base.
        let prefix = (1..).take_while(|c| s.contains(c)).count() as u64;
        prop_assert_eq!(e.base(), prefix);
    }

    #[test]
    fn entry_join_is_union_and_a_semilattice(a in counters(), b in counters(), c in counters()) {
        let (ea, eb, ec) = (entry_of(&a), entry_of(&b), entry_of(&c));
        let j = ea.join(&eb);
        prop_assert!(normalised(&j));
        prop_assert_eq!(set_of(&j, 450), a.union(&b).copied().collect::<BTreeSet<_>>());
        prop_assert_eq!(&j, &eb.join(&ea));
        prop_assert_eq!(ea.join(&ea), ea.clone());
        prop_assert_eq!(ea.join(&eb).join(&ec), ea.join(&eb.join(&ec)));
        prop_assert_eq!(j, entry_of(&a.union(&b).copied().collect()));
    }

    #[test]
    fn missing_is_exactly_the_difference(a in counters(), b in counters()) {
        let (ea, eb) = (entry_of(&a), entry_of(&b));
        let want: Vec<u64> = a.difference(&b).copied().collect();
        prop_assert_eq!(eb.missing_from(&ea).collect::<Vec<_>>(), want.clone());
        prop_assert_eq!(eb.missing_count(&ea), want.len() as u64);
        prop_assert_eq!(eb.dominates(&ea), want.is_empty());
    }

    #[test]
    fn clock_missing_dots_and_join(
        a in prop::collection::btree_set((0u64..4, 1u64..200), 0..150),
        b in prop::collection::btree_set((0u64..4, 1u64..200), 0..150),
    ) {
        let build = |s: &BTreeSet<(u64, u64)>| {
            let mut c = NodeClock::new();
            for &(id, n) in s { assert!(c.add(Dot::new(id, n))); }
            c
        };
        let (ca, cb) = (build(&a), build(&b));
        let want: Vec<Dot> = a.difference(&b).map(|&(i, n)| Dot::new(i, n)).collect();
        prop_assert_eq!(ca.missing_dots(&cb).collect::<Vec<_>>(), want.clone());
        prop_assert_eq!(ca.missing_count(&cb), want.len() as u64);
        let j = ca.join(&cb);
        prop_assert_eq!(&j, &cb.join(&ca));
        prop_assert_eq!(j, build(&a.union(&b).copied().collect()));
    }
}

/// A container from a history where each dot wrote one value: a subset of dots as values,
/// and a context covering them plus some more.
fn dcc() -> impl Strategy<Value = Dcc> {
    (
        prop::collection::btree_set((0u64..3, 1u64..12), 0..5),
        prop::collection::vec((0u64..3, 0u64..12), 0..4),
    )
        .prop_map(|(values, ctx)| {
            let mut d = Dcc::new();
            let mut c = Context::new();
            for (id, n) in ctx {
                c.raise(id, n);
            }
            // Values the context already covers would be dead on arrival: keep them out.
            for &(id, n) in &values {
                if !c.covers(Dot::new(id, n)) {
                    d.add(Dot::new(id, n), Bytes::from(format!("{id}.{n}")));
                }
            }
            let mut with_ctx = Dcc::new();
            with_ctx.discard(&c);
            with_ctx.sync(&d);
            with_ctx
        })
}

proptest! {
    #[test]
    fn dcc_sync_is_a_semilattice(a in dcc(), b in dcc(), c in dcc()) {
        let s = |x: &Dcc, y: &Dcc| { let mut m = x.clone(); m.sync(y); m };
        prop_assert_eq!(s(&a, &b), s(&b, &a));
        prop_assert_eq!(s(&a, &a), a.clone());
        prop_assert_eq!(s(&s(&a, &b), &c), s(&a, &s(&b, &c)));
    }

    #[test]
    fn strip_then_fill_keeps_the_information(
        d in dcc(),
        clock in prop::collection::btree_set((0u64..3, 1u64..14), 0..30),
    ) {
        let mut nc = NodeClock::new();
        for &(id, n) in &clock { nc.add(Dot::new(id, n)); }
        // A node only holds values whose dots its clock has.
        for (dot, _) in d.values() { nc.add(*dot); }
        let mut filled = d.clone();
        filled.fill(&nc);
        let mut round = d.clone();
        round.strip(&nc);
        prop_assert!(round.context().entries().iter().all(|&(id, n)| n > nc.base(id)));
        round.fill(&nc);
        prop_assert_eq!(round, filled);
    }
}
