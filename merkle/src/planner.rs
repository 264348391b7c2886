//! The planner: which method finishes a session, from an estimate of the number of
//! differences.
//!
//! Every comparison of a level gives an estimate for free: if `k` of the `m` nodes
//! compared differ, and differences fall into nodes like balls into bins, the number of
//! differences below those `m` nodes is about `−m · ln(1 − k/m)` (when all `m` differ the
//! estimate is only a lower bound and `m · (ln m + 1)` is used). With it the planner
//! weighs, in bytes:
//!
//! * **item lists** of the differing subtrees: `16` bytes per item under them (what the
//!   anchors do at their leaves; best when nearly everything differs; the `Done` that
//!   follows costs the same after lists or a sketch);
//! * **a syndrome sketch** ([`crate::sketch`]) of the items under them: about 2.3 sums of
//!   8 bytes per differing key (a key held in two versions is one difference), whatever
//!   the number of items, while they are within [`Costs::sketch_items`] (each item enters
//!   about 40 sums on each side);
//! * **a RIBLT sketch** of them past that budget: about `1.35` coded symbols of ~16 bytes
//!   per differing key, and less CPU;
//! * **descending** a level: `9` bytes per child of each differing node, one round trip,
//!   and a sketch over fewer items (less CPU) afterwards.
//!
//! A sketch's bytes do not depend on how many items it covers, so descending buys CPU,
//! paid in bytes and a round trip. The planner prices CPU in bytes too: encoding and
//! decoding the items beyond [`Costs::item_budget`] costs [`Costs::item_bytes`] each, and a
//! round trip [`Costs::round_trip_bytes`]. It descends while the next level's hashes and
//! round trip cost less than the encoding they save (the differing children hold about
//! `min(1, d / (k · fanout))` of the items below the differing nodes); otherwise it sends
//! lists when they are cheaper than the sketch, and a sketch over the differing subtrees
//! when not. When every node compared differs (always so at the root) the estimate is
//! only a lower bound; the root's children are then descended for the estimate they give
//! (one fanout of hashes, when it costs at most a quarter of the lists), deeper saturated
//! levels are not (their hashes cost more than the sketch the bound already implies): the
//! sketch starts from the lower bound and the decoder's own estimate takes over.
//! The CPU budget is large by default (2^20 items, ~0.6 s of CPU a session at 10^6,
//! [`crate::Config::riblt_item_budget`]): bytes and round trips come first.
//! Few differences in a huge dataset therefore cost a level or two of hashes and a sketch
//! proportional to the differences, over at most about a million items.

use serde::{Deserialize, Serialize};

/// How a session reconciles, chosen by the initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Method {
    /// The planner picks at each level (this module).
    #[default]
    Planned,
    /// Tree descent to the leaves, then item lists of the differing leaves (the anchors'
    /// method: Cassandra, Riak).
    Tree,
    /// One RIBLT sketch over the whole set, right after the roots differ.
    Riblt,
    /// Every item, in a list (the naive baseline).
    Full,
    /// One syndrome sketch ([`crate::sketch`]) over the whole set, right after the roots
    /// differ.
    Sketch,
}

/// What to do after comparing a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send the hashes of the children of the differing nodes.
    Descend,
    /// Send our items under the differing nodes.
    Lists,
    /// Stream a RIBLT sketch of our items under the differing nodes.
    Riblt,
    /// Send a syndrome sketch of our items under the differing nodes.
    Sketch,
}

/// Bytes of one coded symbol on the wire, on average: two 8-byte sums, and 140 bytes of
/// checksum bits over the first 333 symbols ([`crate::riblt::check_bits`]).
pub const SYMBOL_BYTES: f64 = 16.3;
/// Bytes of one item in a list.
pub const ITEM_BYTES: f64 = 16.0;
/// Bytes of one truncated node hash.
pub const HASH_BYTES: f64 = 8.0;
/// Bytes per differing key of a syndrome sketch: 2.3 sums of 8 bytes (`sketch_sweep`:
/// 2.29–2.51, asks and their answers' headers included).
pub const SKETCH_BYTES_PER_KEY: f64 = 19.0;
/// Symbols per differing key the planner budgets for (the paper: 1.35 at large
/// differences, more at small ones; measured here 1.35 at 10^3 keys, 1.46 at 10^2).
pub const SYMBOLS_PER_KEY: f64 = 1.35;

/// The median number of coded symbols `d` differing keys need: `d·(1.31 + 1.3/√d)`,
/// fitted to the medians of 400, 100 and 20 decodes (1.45 a key at d = 100, 1.355 at
/// 1,000, 1.325 at 10,000; the spread is about ±10% at 100, ±3% at 1,000).
#[must_use]
pub fn median_symbols(d: f64) -> f64 {
    if d <= 0.0 {
        0.0
    } else {
        d * (1.31 + 1.3 / d.sqrt())
    }
}

/// What a comparison of one level found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// The level compared (0 = root).
    pub level: u8,
    /// The tree's depth (the leaves' level).
    pub depth: u8,
    /// Children per node.
    pub fanout: u32,
    /// Nodes compared.
    pub compared: usize,
    /// Nodes that differ.
    pub differing: usize,
    /// Estimated items per side below the differing nodes.
    pub items_below: f64,
}

/// Estimated differences below `compared` nodes of which `differing` differ.
#[must_use]
pub fn estimate_differences(compared: usize, differing: usize) -> f64 {
    let m = compared as f64;
    let k = differing as f64;
    if differing == 0 || compared == 0 {
        0.0
    } else if differing >= compared {
        m * (m.ln() + 1.0)
    } else {
        -m * (1.0 - k / m).ln()
    }
}

/// The first batch of symbols to send for `differences` estimated differing keys: the
/// median need ([`median_symbols`]) and one more, no margin (an overshoot is paid in
/// bytes, a shortfall in a round trip, after which the receiver asks for what its own
/// estimate says). One differing key needs one symbol: symbol 0 holds it alone.
#[must_use]
pub fn first_batch(differences: f64, max: u64) -> u64 {
    let want = median_symbols(differences).ceil() + 1.0;
    // Float to int saturates; `max` bounds it anyway.
    (want as u64).clamp(1, max.max(1))
}

/// What the planner weighs CPU and latency against, in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    /// Items a sketch may cover for free (a few milliseconds of encoding).
    pub item_budget: usize,
    /// Most items a syndrome sketch may cover (RIBLT past it).
    pub sketch_items: usize,
    /// Bytes one more item to encode and decode is worth.
    pub item_bytes: f64,
    /// Bytes one more round trip is worth.
    pub round_trip_bytes: f64,
}

/// The decision after a comparison, for `method`.
#[must_use]
pub fn decide(method: Method, c: &Comparison, costs: &Costs) -> Next {
    let at_leaves = c.level >= c.depth;
    match method {
        Method::Full => Next::Lists,
        Method::Riblt => Next::Riblt,
        Method::Sketch => Next::Sketch,
        Method::Tree if at_leaves => Next::Lists,
        Method::Tree => Next::Descend,
        Method::Planned => {
            let d = estimate_differences(c.compared, c.differing);
            let syndromes = c.items_below <= costs.sketch_items as f64;
            let sketch = if syndromes {
                SKETCH_BYTES_PER_KEY * d
            } else {
                SYMBOL_BYTES * SYMBOLS_PER_KEY * d
            };
            // `Done` costs the same after either (the difference, by rank and digest).
            let lists = ITEM_BYTES * c.items_below;
            if !at_leaves {
                let children = f64::from(c.fanout) * c.differing as f64;
                let below_next = c.items_below * (d / children).min(1.0);
                let budget = costs.item_budget as f64;
                let cpu = |items: f64| costs.item_bytes * (items - budget).max(0.0);
                let saved = cpu(c.items_below) - cpu(below_next);
                let descend = HASH_BYTES * children + costs.round_trip_bytes;
                // At the root a comparison says nothing of how much differs: its children's
                // hashes (one fanout of them) are worth what they tell, when they cost a
                // quarter of the lists or less. Deeper, a level where every node differs
                // is not descended for information: its hashes (fanout × 8 bytes per
                // node) would cost more than the sketch the lower bound already implies
                // (2 KB against ~1.4 KB at fanout 16), a loss of about 1.3× the ideal at
                // d = 100, to find out whether lists would save the ~30% a sketch costs
                // over them when nearly everything differs.
                let root = c.compared == 1;
                if descend < saved || (root && descend * 4.0 <= lists) {
                    return Next::Descend;
                }
            }
            if lists <= sketch {
                Next::Lists
            } else if syndromes {
                Next::Sketch
            } else {
                Next::Riblt
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COSTS: Costs = Costs {
        item_budget: 65_536,
        sketch_items: 0,
        item_bytes: 0.5,
        round_trip_bytes: 1_000.0,
    };

    fn cmp(level: u8, compared: usize, differing: usize, items_below: f64) -> Comparison {
        Comparison {
            level,
            depth: 4,
            fanout: 16,
            compared,
            differing,
            items_below,
        }
    }

    #[test]
    fn estimates_follow_balls_in_bins() {
        assert_eq!(estimate_differences(16, 0), 0.0);
        assert!((estimate_differences(4096, 1) - 1.0).abs() < 0.01);
        let e = estimate_differences(4096, 2_000);
        assert!((2_600.0..2_900.0).contains(&e), "{e}");
        assert!(estimate_differences(16, 16) > 16.0);
    }

    #[test]
    fn few_differences_in_a_big_set_descend_then_sketch() {
        // 10^6 items, one difference: the root differs, descend; at level 1 one of 16
        // differs, 62,500 items below, within the budget: sketch.
        assert_eq!(
            decide(Method::Planned, &cmp(0, 1, 1, 1e6), &COSTS),
            Next::Descend
        );
        assert_eq!(
            decide(Method::Planned, &cmp(1, 16, 1, 62_500.0), &COSTS),
            Next::Riblt
        );
        // 10^7 items, 100 differences, 83 of 256 nodes differ at level 2: descending saves
        // encoding three million items for 11 KB of hashes.
        assert_eq!(
            decide(Method::Planned, &cmp(2, 256, 83, 3.2e6), &COSTS),
            Next::Descend
        );
        // 10^6 items, 10,000 differences, 3,700 of 4,096 differ at level 3: the next
        // level's hashes (470 KB) cost more than the encoding they save.
        let deep = Comparison {
            depth: 5,
            ..cmp(3, 4_096, 3_700, 9e5)
        };
        assert_eq!(decide(Method::Planned, &deep, &COSTS), Next::Riblt);
        // The root of a small set that differs: descend to learn how much differs.
        assert_eq!(
            decide(Method::Planned, &cmp(0, 1, 1, 10_000.0), &COSTS),
            Next::Descend
        );
        // A tiny set: lists or a sketch at once.
        assert_eq!(
            decide(Method::Planned, &cmp(0, 1, 1, 50.0), &COSTS),
            Next::Riblt
        );
    }

    #[test]
    fn default_costs_put_bytes_first_and_bound_cpu() {
        let costs = crate::Config::default().costs();
        // 10^5 or 10^6 items, level 1 saturated (d >= 60): no 2 KB of level-2 hashes to
        // learn more; a syndrome sketch over everything is within its CPU budget.
        assert_eq!(
            decide(Method::Planned, &cmp(1, 16, 16, 1e5), &costs),
            Next::Sketch
        );
        assert_eq!(
            decide(Method::Planned, &cmp(1, 16, 16, 1e6), &costs),
            Next::Sketch
        );
        // 10^7 items: encoding them all would be priced ~450 KB: descend.
        assert_eq!(
            decide(Method::Planned, &cmp(1, 16, 16, 1e7), &costs),
            Next::Descend
        );
        // 2·10^6 items under a level that does not pay to descend: past the syndrome
        // budget, RIBLT.
        let wide = Costs {
            item_budget: 1 << 22,
            ..costs
        };
        assert_eq!(
            decide(Method::Planned, &cmp(1, 16, 16, 2e6), &wide),
            Next::Riblt
        );
        // One difference in 10^6: the root's 16 hashes, then a sketch of 62,500 items.
        assert_eq!(
            decide(Method::Planned, &cmp(0, 1, 1, 1e6), &costs),
            Next::Descend
        );
        assert_eq!(
            decide(Method::Planned, &cmp(1, 16, 1, 62_500.0), &costs),
            Next::Sketch
        );
    }

    #[test]
    fn everything_differing_means_lists() {
        // 1,000 items, every leaf differs: the lists are cheaper than a sketch.
        assert_eq!(
            decide(Method::Planned, &cmp(4, 65_536, 1_000, 1_000.0), &COSTS),
            Next::Lists
        );
        // 4,000 items a side, a thousand differences: the sketch (25 KB) beats the lists
        // (64 KB).
        assert_eq!(
            decide(Method::Planned, &cmp(4, 65_536, 1_000, 4_000.0), &COSTS),
            Next::Riblt
        );
    }

    #[test]
    fn forced_methods_do_what_they_say() {
        let c = cmp(2, 256, 3, 1e5);
        assert_eq!(decide(Method::Tree, &c, &COSTS), Next::Descend);
        assert_eq!(
            decide(Method::Tree, &cmp(4, 1, 1, 1.0), &COSTS),
            Next::Lists
        );
        assert_eq!(decide(Method::Riblt, &c, &COSTS), Next::Riblt);
        assert_eq!(decide(Method::Sketch, &c, &COSTS), Next::Sketch);
        assert_eq!(decide(Method::Full, &c, &COSTS), Next::Lists);
        assert_eq!(first_batch(0.0, 100), 1);
        assert_eq!(first_batch(1.0, 100), 4);
        assert_eq!(first_batch(1e9, 100), 100);
    }
}
