//! Rateless invertible Bloom lookup tables (Yang, Gilad, Alizadeh, "Practical Rateless Set
//! Reconciliation", SIGCOMM 2024), written from the paper.
//!
//! The sender turns its set into an endless stream of *coded symbols*; each carries the
//! XOR of the items mapped to it, the XOR of their checksums and their count. Item `x` is
//! mapped to symbol 0 and then to a sparse random sequence of later indices in which index
//! `i` appears with probability `1 / (1 + i/2)`, drawn from a PRNG seeded by `x`'s
//! checksum, so both sides map an item identically. The receiver subtracts the symbols of
//! its own set, which cancels every common item and leaves the symbols of the symmetric
//! difference, then peels: a symbol whose count is ±1 and whose checksum matches the hash
//! of its sum holds exactly one item, which is removed from every symbol it maps to,
//! possibly exposing more. Decoding is complete when symbol 0 (which every item maps to)
//! is empty. About 1.35 symbols per item of the difference suffice on average, whatever
//! the size of the sets, and the sender need not know the difference in advance.
//!
//! Symbols are produced in batches: each batch walks every item's index sequence up to the
//! batch's end, `O(items + hits)`, with no heap. A decoder that cannot peel never loops:
//! every peel removes one item and the number of peeled items is bounded.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::hasher::canonical;
use crate::store::Item;

/// Seed of the item checksum (independent of the tree's hashes).
const CHECK_SEED: u64 = 0x7269_626c_745f_6373;

/// The checksum of an item.
#[must_use]
pub fn checksum(item: Item) -> u64 {
    xxh3_64_with_seed(&canonical(item.key, item.digest), CHECK_SEED)
}

/// One coded symbol: XOR of the keys, of the digests and of the checksums of the items
/// mapped to it, and their count (positive: sender's items outnumber the receiver's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Symbol {
    /// XOR of keys.
    pub key: u64,
    /// XOR of digests.
    pub digest: u64,
    /// XOR of checksums.
    pub check: u64,
    /// Items added minus items subtracted.
    pub count: i64,
}

impl Symbol {
    fn apply(&mut self, item: Item, check: u64, sign: i64) {
        self.key ^= item.key;
        self.digest ^= item.digest;
        self.check ^= check;
        self.count = self.count.wrapping_add(sign);
    }

    /// Whether nothing is left in the symbol.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The single item this symbol holds, with its sign, if it is pure.
    fn pure(&self) -> Option<(Item, i64)> {
        if self.count != 1 && self.count != -1 {
            return None;
        }
        let item = Item {
            key: self.key,
            digest: self.digest,
        };
        (checksum(item) == self.check).then_some((item, self.count))
    }
}

/// The index sequence of one item: 0, then a sparse random walk in which index `i` is hit
/// with probability `1/(1 + i/2)`.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    prng: u64,
    /// The next index this item maps to.
    next: u64,
}

impl Mapping {
    fn new(check: u64) -> Self {
        Self {
            prng: check,
            next: 0,
        }
    }

    /// Moves to the following index. The gap after index `i` is
    /// `ceil((i + 1.5) · ((1 − u)^(−1/2) − 1))` for `u` uniform in `[0, 1)`, the inverse of
    /// the distribution that hits `i` with probability `1/(1 + i/2)`; `(1 − u)^(−1/2)` is
    /// computed as `2^32 / sqrt(r + 1)` for a 64-bit random `r`.
    fn advance(&mut self) {
        self.prng = self.prng.wrapping_mul(0xda94_2042_e4dd_58b5);
        let r = self.prng as f64;
        let x = (self.next as f64 + 1.5) * (4_294_967_296.0 / (r + 1.0).sqrt() - 1.0);
        // ceil(x) by hand: `f64::ceil` is a libm call on baseline x86-64, and this is the
        // encoder's hot loop. A float-to-int cast saturates; a gap of at least one keeps
        // the walk moving.
        let floor = x as u64;
        let gap = if (floor as f64) < x { floor + 1 } else { floor };
        self.next = self.next.saturating_add(gap.max(1));
    }
}

/// One item and where its index walk has got to.
#[derive(Debug, Clone, Copy)]
struct Source {
    item: Item,
    check: u64,
    map: Mapping,
}

impl Source {
    fn new(item: Item) -> Self {
        let check = checksum(item);
        Self {
            item,
            check,
            map: Mapping::new(check),
        }
    }

    /// Applies the item (with `sign`) to every symbol of `out`, which holds indices
    /// `base..base + out.len()`, and leaves the walk at the first index past them.
    fn fill(&mut self, base: u64, out: &mut [Symbol], sign: i64) {
        let end = base + out.len() as u64;
        while self.map.next < end {
            if self.map.next >= base {
                // In range: the index is within `out`.
                out[(self.map.next - base) as usize].apply(self.item, self.check, sign);
            }
            self.map.advance();
        }
    }
}

/// The sender's side: an endless stream of coded symbols of a set.
#[derive(Debug, Clone)]
pub struct Encoder {
    sources: Vec<Source>,
    produced: u64,
}

impl Encoder {
    /// An encoder of `items` (assumed distinct).
    #[must_use]
    pub fn new(items: &[Item]) -> Self {
        Self {
            sources: items.iter().map(|&i| Source::new(i)).collect(),
            produced: 0,
        }
    }

    /// Symbols produced so far.
    #[must_use]
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// Items encoded.
    #[must_use]
    pub fn items(&self) -> usize {
        self.sources.len()
    }

    /// Appends the next `count` symbols to `out`.
    pub fn produce(&mut self, count: usize, out: &mut Vec<Symbol>) {
        let start = out.len();
        out.resize(start + count, Symbol::default());
        self.fill(&mut out[start..], 1);
    }

    /// Applies the set to the next `out.len()` symbols with `sign`.
    fn fill(&mut self, out: &mut [Symbol], sign: i64) {
        let base = self.produced;
        for s in &mut self.sources {
            s.fill(base, out, sign);
        }
        self.produced += out.len() as u64;
    }
}

/// Why a decoder gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeLimit {
    /// More items peeled than the configured bound: the stream is hostile or the
    /// difference larger than this session accepts.
    TooManyItems,
}

/// The receiver's side: subtracts its own set and peels the difference.
#[derive(Debug, Clone)]
pub struct Decoder {
    local: Encoder,
    symbols: Vec<Symbol>,
    /// Peeled items with the sign they were found with, their walks kept going.
    peeled: Vec<(Source, i64)>,
    remote_only: Vec<Item>,
    local_only: Vec<Item>,
    max_items: usize,
    stack: Vec<usize>,
}

impl Decoder {
    /// A decoder against the local set `items`, peeling at most `max_items` items.
    #[must_use]
    pub fn new(items: &[Item], max_items: usize) -> Self {
        Self {
            local: Encoder::new(items),
            symbols: Vec::new(),
            peeled: Vec::new(),
            remote_only: Vec::new(),
            local_only: Vec::new(),
            max_items,
            stack: Vec::new(),
        }
    }

    /// Symbols received so far.
    #[must_use]
    pub fn received(&self) -> usize {
        self.symbols.len()
    }

    /// Whether the whole difference is known.
    #[must_use]
    pub fn is_decoded(&self) -> bool {
        self.symbols.first().is_some_and(Symbol::is_empty)
    }

    /// Items the sender has and we do not.
    #[must_use]
    pub fn remote_only(&self) -> &[Item] {
        &self.remote_only
    }

    /// Items we have and the sender does not.
    #[must_use]
    pub fn local_only(&self) -> &[Item] {
        &self.local_only
    }

    /// Adds the sender's next symbols (indices `received()..`) and peels what it can.
    ///
    /// # Errors
    /// [`DecodeLimit::TooManyItems`] if peeling exceeds the bound; the decoder is then
    /// unusable.
    pub fn add(&mut self, remote: &[Symbol]) -> Result<(), DecodeLimit> {
        // One pass over the local set per batch: the cost is O(local items + hits).
        self.add_chunk(remote)
    }

    /// Adds one symbol at a time and stops as soon as the difference is decoded; returns
    /// how many of `remote` were used. Measures the exact symbols a difference needs.
    ///
    /// # Errors
    /// As [`Decoder::add`].
    pub fn add_until_decoded(&mut self, remote: &[Symbol]) -> Result<usize, DecodeLimit> {
        for (i, s) in remote.iter().enumerate() {
            self.add_chunk(std::slice::from_ref(s))?;
            if self.is_decoded() {
                return Ok(i + 1);
            }
        }
        Ok(remote.len())
    }

    fn add_chunk(&mut self, remote: &[Symbol]) -> Result<(), DecodeLimit> {
        let base = self.symbols.len();
        self.symbols.extend_from_slice(remote);
        let new = &mut self.symbols[base..];
        self.local.fill(new, -1);
        for (src, sign) in &mut self.peeled {
            // Take the peeled item out of the new symbols too.
            src.fill(base as u64, new, -*sign);
        }
        self.stack.extend(base..self.symbols.len());
        self.peel()
    }

    fn peel(&mut self) -> Result<(), DecodeLimit> {
        while let Some(idx) = self.stack.pop() {
            let Some((item, sign)) = self.symbols[idx].pure() else {
                continue;
            };
            if self.peeled.len() >= self.max_items {
                return Err(DecodeLimit::TooManyItems);
            }
            let mut src = Source::new(item);
            let len = self.symbols.len() as u64;
            while src.map.next < len {
                let i = src.map.next as usize;
                self.symbols[i].apply(item, src.check, -sign);
                if self.symbols[i].pure().is_some() {
                    self.stack.push(i);
                }
                src.map.advance();
            }
            if sign > 0 {
                self.remote_only.push(item);
            } else {
                self.local_only.push(item);
            }
            self.peeled.push((src, sign));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn items(range: std::ops::Range<u64>, v: u64) -> Vec<Item> {
        range.map(|k| Item { key: k, digest: v }).collect()
    }

    #[test]
    fn mapping_density_follows_the_paper() {
        // P(index i) = 1/(1 + i/2): about 1/6 of items hit index 10.
        let mut hits = [0u32; 64];
        for k in 0..20_000u64 {
            let mut m = Mapping::new(checksum(Item { key: k, digest: 0 }));
            while m.next < 64 {
                hits[m.next as usize] += 1;
                m.advance();
            }
        }
        assert_eq!(hits[0], 20_000);
        for i in [1usize, 10, 40] {
            let want = 20_000.0 / (1.0 + i as f64 / 2.0);
            let got = f64::from(hits[i]);
            assert!(
                (got - want).abs() < want * 0.1,
                "index {i}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn decodes_a_symmetric_difference_exactly() {
        let a = [items(0..1000, 1), items(1000..1010, 2)].concat();
        let b = [items(0..1000, 1), items(2000..2007, 3)].concat();
        let mut enc = Encoder::new(&a);
        let mut dec = Decoder::new(&b, 100);
        let mut buf = Vec::new();
        while !dec.is_decoded() {
            buf.clear();
            enc.produce(4, &mut buf);
            dec.add(&buf).unwrap();
            assert!(dec.received() < 200);
        }
        let mut r = dec.remote_only().to_vec();
        let mut l = dec.local_only().to_vec();
        r.sort_unstable();
        l.sort_unstable();
        assert_eq!(r, items(1000..1010, 2));
        assert_eq!(l, items(2000..2007, 3));
    }

    #[test]
    fn equal_sets_decode_at_the_first_symbol() {
        let a = items(0..50, 9);
        let mut enc = Encoder::new(&a);
        let mut dec = Decoder::new(&a, 10);
        let mut buf = Vec::new();
        enc.produce(1, &mut buf);
        dec.add(&buf).unwrap();
        assert!(dec.is_decoded());
        assert!(dec.remote_only().is_empty() && dec.local_only().is_empty());
    }

    #[test]
    fn symbols_per_difference_is_near_the_papers_figure() {
        // Over many seeds, d = 100: the paper reports ~1.35 symbols per item at large d
        // (higher at small d).
        let mut total = 0usize;
        let runs = 30u64;
        for seed in 0..runs {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let diff: Vec<Item> = (0..100)
                .map(|_| Item {
                    key: rng.random(),
                    digest: rng.random(),
                })
                .collect();
            let common = items(0..200, 5);
            let a = [common.clone(), diff].concat();
            let mut enc = Encoder::new(&a);
            let mut dec = Decoder::new(&common, 1000);
            let mut buf = Vec::new();
            enc.produce(1000, &mut buf);
            total += dec.add_until_decoded(&buf).unwrap();
            assert!(dec.is_decoded());
        }
        let per = total as f64 / (runs as f64 * 100.0);
        assert!((1.2..1.75).contains(&per), "{per} symbols per difference");
    }

    #[test]
    fn hostile_symbols_never_loop_and_respect_the_bound() {
        // Ten items of difference against a bound of three: the decoder refuses.
        let mut enc = Encoder::new(&items(100..110, 0));
        let mut buf = Vec::new();
        enc.produce(64, &mut buf);
        let mut dec = Decoder::new(&[], 3);
        assert_eq!(dec.add(&buf), Err(DecodeLimit::TooManyItems));
        // Fabricated pure symbols whose items do not map back to them: peeling them
        // terminates (each peel is counted against the bound).
        let fake: Vec<Symbol> = (100..140u64)
            .map(|k| {
                let it = Item { key: k, digest: 0 };
                Symbol {
                    key: k,
                    digest: 0,
                    check: checksum(it),
                    count: 1,
                }
            })
            .collect();
        let mut dec = Decoder::new(&items(0..10, 1), 1000);
        let _ = dec.add(&fake);
        assert!(dec.remote_only().len() + dec.local_only().len() <= 1000);
        let garbage = [Symbol {
            key: 1,
            digest: 2,
            check: 3,
            count: i64::MIN,
        }; 8];
        let mut dec = Decoder::new(&[], 3);
        dec.add(&garbage).unwrap();
        assert!(!dec.is_decoded());
    }
}
