//! Random concurrent writes on 3–5 replicas under random sync schedules (with lost
//! replies), driven by hand: after a lossless settle every replica holds exactly the
//! values no write superseded (so no acknowledged write is lost, concurrent writes
//! survive as siblings, a write that saw another supersedes it), garbage collection never
//! drops a dot some peer still misses, and at rest the log is empty and every key keeps
//! one (id, counter) pair per value.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_bvv::{Bvv, Config, Context, Dot, MemoryStore, Message, NodeClock, Storage};
use epidemic_core::{Machine, Output};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

type Node = Bvv<MemoryStore, ChaCha8Rng>;

#[derive(Debug, Clone)]
enum Op {
    /// A write at `node` on `key`; with `read` the client first reads there and passes
    /// that context, else it writes blind (a sibling of everything).
    Write {
        node: usize,
        key: u8,
        read: bool,
        delete: bool,
    },
    /// `a` syncs from `b`; the reply's messages are each lost when `lose` says so.
    Sync { a: usize, b: usize, lose: bool },
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..n, 0u8..4, any::<bool>(), prop::bool::weighted(0.1))
            .prop_map(|(node, key, read, delete)| Op::Write { node, key, read, delete }),
        2 => (0..n, 0..n, prop::bool::weighted(0.3)).prop_map(|(a, b, lose)| Op::Sync { a, b, lose }),
    ]
}

struct Cluster {
    nodes: Vec<Node>,
    now: Instant,
    /// Every acknowledged write: key, dot, value (None: delete), the client's context.
    writes: Vec<(Bytes, Dot, Option<Bytes>, Context)>,
}

impl Cluster {
    fn new(n: usize, cfg: &Config) -> Self {
        #[allow(clippy::disallowed_methods)] // a test's epoch; nothing reads time after
        let now = Instant::now();
        let ids = 0..n as u64;
        let nodes = ids
            .clone()
            .map(|id| {
                Bvv::new(
                    now,
                    id,
                    ids.clone(),
                    cfg.clone(),
                    MemoryStore::new(),
                    ChaCha8Rng::seed_from_u64(id),
                )
                .unwrap()
            })
            .collect();
        Self {
            nodes,
            now,
            writes: Vec::new(),
        }
    }

    fn write(&mut self, node: usize, key: u8, read: bool, delete: bool) {
        let key = Bytes::from(vec![b'k', key]);
        let ctx = if read {
            self.nodes[node].get(&key).context
        } else {
            Context::new()
        };
        let value = Bytes::from(format!("w{}", self.writes.len()));
        let n = &mut self.nodes[node];
        let dot = if delete {
            n.delete(self.now, key.clone(), &ctx).unwrap()
        } else {
            n.put(self.now, key.clone(), value.clone(), &ctx).unwrap()
        };
        self.writes
            .push((key, dot, (!delete).then_some(value), ctx));
        self.drain_drop(node);
    }

    fn drain_drop(&mut self, node: usize) {
        while self.nodes[node].poll_output().is_some() {}
    }

    fn drain(&mut self, node: usize) -> VecDeque<(u64, Message)> {
        let mut out = VecDeque::new();
        while let Some(o) = self.nodes[node].poll_output() {
            if let Output::Send { to, msg } = o {
                out.push_back((to, msg));
            }
        }
        out
    }

    fn sync(&mut self, a: usize, b: usize, lose: &mut impl FnMut() -> bool) {
        if a == b {
            return;
        }
        self.now += Duration::from_millis(1);
        self.nodes[a].sync_with(self.now, b as u64).unwrap();
        for (to, msg) in self.drain(a) {
            self.nodes[to as usize].handle_message(self.now, a as u64, msg);
        }
        for (to, msg) in self.drain(b) {
            if !lose() {
                self.nodes[to as usize].handle_message(self.now, b as u64, msg);
            }
        }
        self.drain_drop(a);
    }

    /// GC safety: a dot a node holds in its clock but no longer in its log is in every
    /// other node's clock.
    fn gc_never_drops_a_missing_dot(&self) -> Result<(), String> {
        for x in &self.nodes {
            for dot in x.clock().missing_dots(&NodeClock::new()) {
                if x.log().get(dot).is_some() {
                    continue;
                }
                for y in &self.nodes {
                    if !y.clock().contains(dot) {
                        return Err(format!("{} dropped {dot:?} that {} misses", x.id(), y.id()));
                    }
                }
            }
        }
        Ok(())
    }

    /// What every replica must hold per key: the values no client context covered.
    fn expected(&self) -> BTreeMap<Bytes, BTreeSet<Bytes>> {
        let mut out: BTreeMap<Bytes, BTreeSet<Bytes>> = BTreeMap::new();
        for (key, dot, value, _) in &self.writes {
            let Some(v) = value else { continue };
            let superseded = self
                .writes
                .iter()
                .any(|(k, _, _, ctx)| k == key && ctx.covers(*dot));
            if !superseded {
                out.entry(key.clone()).or_default().insert(v.clone());
            }
        }
        out
    }
}

fn run(n: usize, ops: &[Op], losses: &[bool]) -> Result<(), TestCaseError> {
    let cfg = Config {
        push_writes: false,
        ..Config::default()
    };
    let mut c = Cluster::new(n, &cfg);
    let mut li = 0usize;
    for op in ops {
        match *op {
            Op::Write {
                node,
                key,
                read,
                delete,
            } => c.write(node, key, read, delete),
            Op::Sync { a, b, lose } => {
                let mut next = || {
                    li += 1;
                    lose && losses
                        .get(li % losses.len().max(1))
                        .copied()
                        .unwrap_or(false)
                };
                c.sync(a, b, &mut next);
            }
        }
        c.gc_never_drops_a_missing_dot()
            .map_err(TestCaseError::fail)?;
    }
    // Settle: lossless syncs between every ordered pair, three rounds (data, then the
    // watermark, then truncation).
    for _ in 0..3 {
        for a in 0..n {
            for b in 0..n {
                c.sync(a, b, &mut || false);
                c.gc_never_drops_a_missing_dot()
                    .map_err(TestCaseError::fail)?;
            }
        }
    }
    let expected = c.expected();
    for node in &c.nodes {
        let mut got: BTreeMap<Bytes, BTreeSet<Bytes>> = BTreeMap::new();
        for (k, dcc) in node.store().iter() {
            let vals: BTreeSet<Bytes> = dcc.values().iter().map(|(_, v)| v.clone()).collect();
            if !vals.is_empty() {
                got.insert(k.clone(), vals);
            }
            prop_assert!(
                dcc.context().is_empty(),
                "{}: key {k:?} keeps context {:?}",
                node.id(),
                dcc.context()
            );
            prop_assert_eq!(dcc.metadata_pairs(), dcc.values().len());
        }
        prop_assert_eq!(&got, &expected, "node {}", node.id());
        prop_assert!(
            node.log().is_empty(),
            "node {} log {:?}",
            node.id(),
            node.log()
        );
        prop_assert_eq!(node.clock(), c.nodes[0].clock());
        prop_assert_eq!(node.stats().entries_redundant, 0);
    }
    let first: Vec<_> = c.nodes[0].store().iter().collect();
    for node in &c.nodes[1..] {
        prop_assert_eq!(node.store().iter().collect::<Vec<_>>(), first.clone());
        prop_assert_eq!(node.store().len(), c.nodes[0].store().len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn replicas_converge_without_losing_writes(
        (n, ops) in (3usize..=5).prop_flat_map(|n| (Just(n), prop::collection::vec(op(n), 1..80))),
        losses in prop::collection::vec(any::<bool>(), 1..16),
    ) {
        run(n, &ops, &losses)?;
    }
}

#[test]
fn concurrent_writes_are_siblings_and_a_read_write_supersedes_them() {
    let cfg = Config {
        push_writes: false,
        ..Config::default()
    };
    let mut c = Cluster::new(3, &cfg);
    c.write(0, 1, false, false);
    c.write(1, 1, false, false);
    c.sync(0, 1, &mut || false);
    let key = Bytes::from_static(b"k\x01");
    assert_eq!(
        c.nodes[0].get(&key).values,
        [Bytes::from("w0"), Bytes::from("w1")]
    );
    c.write(0, 1, true, false);
    c.sync(2, 0, &mut || false);
    assert_eq!(c.nodes[2].get(&key).values, [Bytes::from("w2")]);
    c.sync(1, 2, &mut || false);
    assert_eq!(c.nodes[1].get(&key).values, [Bytes::from("w2")]);
}

#[test]
fn a_sync_ships_exactly_the_missing_keys() {
    let cfg = Config {
        push_writes: false,
        ..Config::default()
    };
    let mut c = Cluster::new(3, &cfg);
    for k in 0..4 {
        c.write(0, k, true, false);
    }
    c.sync(1, 0, &mut || false);
    assert_eq!(c.nodes[0].stats().entries_sent, 4);
    c.write(0, 2, true, false);
    c.write(0, 2, true, false);
    c.sync(1, 0, &mut || false);
    // Two dots, one key: one entry.
    assert_eq!(c.nodes[0].stats().entries_sent, 5);
    c.sync(1, 0, &mut || false);
    assert_eq!(c.nodes[0].stats().entries_sent, 5);
    let s = c.nodes[1].stats();
    assert_eq!(
        (s.entries_received, s.entries_changed, s.entries_redundant),
        (5, 5, 0)
    );
}
