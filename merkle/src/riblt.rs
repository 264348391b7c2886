//! Rateless invertible Bloom lookup tables (Yang, Gilad, Alizadeh, "Practical Rateless Set
//! Reconciliation", SIGCOMM 2024), written from the paper, with symbols keyed by the key
//! alone and summed in GF(2^64) so that a key held in two versions is one difference.
//!
//! The sender turns its set into an endless stream of *coded symbols*. Item `(k, v)` is
//! mapped to symbol 0 and then to a sparse random sequence of later indices in which index
//! `i` appears with probability about `1 / (1 + α·i)` (the paper's mapping family, with
//! `α = 5/8` rather than the paper's `1/2`: see [`ALPHA`]), drawn from a PRNG
//! seeded by a hash of the key `k` only (and a per-session salt), so both sides map a key
//! identically whatever its version. A symbol carries three sums over the items mapped to
//! it, all XORs (addition in GF(2^64), so no counts and no signs):
//!
//! * `sum = ⊕ v` (the digests, each XORed with a per-session mask so that no digest
//!   value is zero in the field),
//! * `weighted = ⊕ k·v` (the key times the masked digest, a product in GF(2^64),
//!   [`crate::gf`]),
//! * `check = ⊕ h(k, v)`, a checksum of which symbol 0 carries 64 bits, symbols
//!   `1..=27` 8, and later ones fewer and fewer down to none past index 332
//!   ([`check_bits`]): 16 bytes a symbol (the size of one item) plus 140 bytes of
//!   checksums over the whole first 333 symbols, packed as bits after each batch's sums.
//!
//! The receiver adds its own set's symbols, which cancels every common item and leaves the
//! symmetric difference. A symbol left with one differing key `k` has
//! `weighted = k·sum` whether the key is the sender's only (`sum = v`), the receiver's
//! only (`sum = v`) or held in versions `v1`, `v2` on the two sides
//! (`sum = v1 ⊕ v2`, `weighted = k·(v1 ⊕ v2)`), so `k = weighted · sum^(-1)`. The receiver
//! tests the candidate against its own store: it holds `k` with digest `sum` (receiver
//! only), or with another digest `v2` (updated: the sender's is `sum ⊕ v2`), or not at all
//! (sender only). Every hypothesis must match the checksum and the key's own index
//! sequence must include the symbol; a sender-only candidate relies on these alone, a
//! receiver-side one also on the key being in the store. Peeling removes the key from every
//! symbol it maps to, possibly exposing more; decoding is complete when symbol 0 (which
//! every key maps to) is empty. About 1.35 symbols per differing key suffice on average at
//! large differences.
//!
//! A false peel (the garbage of a mixed symbol passing the checksum and the index test)
//! is frequent past symbol 332, where only the index test (a garbage key maps to symbol
//! `i` with probability about `1/(1 + α·i)`) guards (counts measured in `decode_sweep`). It heals: the garbage's contribution was XORed into its symbols, so
//! once the true keys of the mixed symbol peel elsewhere, some symbol (symbol 0 at the
//! latest, when all else is peeled) holds exactly the garbage again, and the decoder
//! undoes the peel. A key is peeled again after one undo but not after two. Symbol 0 carries a 64-bit checksum: a false
//! peel there would empty it and end the decode early. The session checks every decoded
//! difference against the sender's set hash (the tree's XOR of item hashes) and bounds
//! the symbols a decode may take, so a false peel that escapes costs a retry, never a
//! wrong result.
//!
//! Symbols are produced in batches: each batch walks every item's index sequence up to the
//! batch's end, `O(items + hits)`, with no heap. A decoder that cannot peel never loops:
//! a key is peeled at most three times and unpeeled at most twice, and the total is
//! bounded.

use hashbrown::HashMap;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::gf;
use crate::hasher::canonical;
use crate::store::Item;

/// Seed of the item checksum (independent of the tree's hashes).
const CHECK_SEED: u64 = 0x7269_626c_745f_6373;
/// Seed of the key-to-index mapping.
const MAP_SEED: u64 = 0x7269_626c_745f_6d70;
/// Seed of the digest mask.
const DIGEST_SEED: u64 = 0x7269_626c_745f_6467;

/// The scale of the checksum schedule ([`check_bits`]).
///
/// Symbol `i` is examined while it still holds several keys about `d·p(i)` times in a
/// decode of `d` keys (`p(i)` = [`hit_probability`], about `2/(i + 2)`), and a mixed
/// symbol passes the index test with probability `p(i)` and a `b`-bit checksum with
/// `2^-b`: about `4d·2^-b/(i + 2)²` false peels,
/// each costing about one symbol (~128 bits) before it undoes itself. Minimising bits plus
/// false peels gives `b = log2(c·d/(i + 2)²)`. Measured over 400 decodes at d = 100
/// and 100 at 1,000: scales of 20,000 to 200,000 cost within 0.3% of one another in
/// bytes at d = 1,000, the smaller ones 2% less at d = 100; 8 bits to index 255 (the
/// version 2 schedule) cost 4% more at d = 100 and 0.6% at 1,000; none at all fails half
/// the decodes at d = 100. Bytes are not all: each false peel that passes also risks a
/// misjudged undo (a true key looking like garbage a false peel left behind), and a key
/// undone twice is banned and stalls the decode until the session retries. At 56,000 the
/// proptest's replicas (keys below 400, digests below 4) stalled that way; at 224,000
/// (8 bits to index 27, 1 bit to 332: 140 bytes in all) none did, and a decode of 1,000
/// keys undoes 11 false peels rather than 24.
pub const CHECK_SCALE: u64 = 224_000;

/// Indices past this carry no checksum (`(LAST_CHECKED + 3)²·2 > CHECK_SCALE`).
pub const LAST_CHECKED: u64 = 332;

/// The checksum bits symbol `index` carries: 64 for symbol 0 (it holds every key: a false
/// peel there would empty it and end the decode early), then the largest `b ≤ 8` with
/// `(index + 2)²·2^b ≤ CHECK_SCALE`: 8 bits to index 27, 1 bit at 235..=332, none after.
#[must_use]
pub fn check_bits(index: u64) -> u32 {
    if index == 0 {
        return 64;
    }
    if index > LAST_CHECKED {
        return 0;
    }
    let sq = (index + 2) * (index + 2);
    let mut b = 0;
    while b < 8 && sq << (b + 1) <= CHECK_SCALE {
        b += 1;
    }
    b
}

/// The mask of the checksum bits symbol `index` carries.
#[must_use]
pub fn check_mask(index: u64) -> u64 {
    match check_bits(index) {
        64 => u64::MAX,
        b => (1u64 << b) - 1,
    }
}

/// Bytes of the `count` symbols `start..` on the wire: 16 each, and their checksum bits
/// packed, rounded up to a byte.
#[must_use]
pub fn batch_bytes(start: u64, count: u64) -> u64 {
    let end = start.saturating_add(count);
    let bits: u64 = (start..end.min(LAST_CHECKED + 1))
        .map(|i| u64::from(check_bits(i)))
        .sum();
    count.saturating_mul(16).saturating_add(bits.div_ceil(8))
}

/// The 64-bit checksum of an item under `salt` (symbols carry some of its bits).
#[must_use]
pub fn checksum(item: Item, salt: u64) -> u64 {
    xxh3_64_with_seed(&canonical(item.key, item.digest), salt ^ CHECK_SEED)
}

/// The seed of a key's index sequence under `salt`.
fn map_seed(key: u64, salt: u64) -> u64 {
    mix(key ^ salt ^ MAP_SEED)
}

/// What a digest adds to the sums under `salt`: `v ⊕ mask(salt)`. A digest whose field
/// value is zero would be invisible in the sums (it could never peel, so the decode would
/// not finish); the salted mask makes that one digest in 2^64 and a different one in
/// every session, so a retry succeeds.
fn digest_mask(salt: u64) -> u64 {
    mix(salt ^ DIGEST_SEED)
}

/// splitmix64's finaliser: cheap, and every input bit reaches every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One coded symbol: the XOR of the digests, of the key·digest products and of the
/// checksums (masked by [`check_mask`]) of the items mapped to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Symbol {
    /// XOR of digests.
    pub sum: u64,
    /// XOR of `key · digest` in GF(2^64).
    pub weighted: u64,
    /// XOR of checksums, masked.
    pub check: u64,
}

impl Symbol {
    fn apply(&mut self, c: &Contribution, mask: u64) {
        self.sum ^= c.sum;
        self.weighted ^= c.weighted;
        self.check ^= c.check & mask;
    }

    /// Whether nothing is left in the symbol.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The symbols `start..` on the wire: each one's two little-endian sums, back to back,
/// then every symbol's checksum bits ([`check_bits`]) in index order, least significant
/// first, packed into bytes (the last padded with zeros).
#[must_use]
pub fn encode_symbols(start: u64, symbols: &[Symbol]) -> Vec<u8> {
    let count = symbols.len() as u64;
    let len = usize::try_from(batch_bytes(start, count)).unwrap_or(0);
    let mut out = Vec::with_capacity(len);
    for s in symbols {
        out.extend_from_slice(&s.sum.to_le_bytes());
        out.extend_from_slice(&s.weighted.to_le_bytes());
    }
    let (mut acc, mut held) = (0u128, 0u32);
    for (i, s) in (start..).zip(symbols) {
        let b = check_bits(i);
        if b == 0 {
            break;
        }
        acc |= u128::from(s.check & check_mask(i)) << held;
        held += b;
        while held >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            held -= 8;
        }
    }
    if held > 0 {
        out.push(acc as u8);
    }
    out
}

/// The symbols `start..` decoded from `bytes`, or `None` if no number of symbols from
/// `start` takes exactly that many bytes, a padding bit is set, or there are more than
/// `max` symbols.
#[must_use]
pub fn decode_symbols(start: u64, bytes: &[u8], max: usize) -> Option<Vec<Symbol>> {
    let len = bytes.len() as u64;
    // `batch_bytes` grows by at least 16 a symbol: the count is at most len / 16, and the
    // checksums (140 bytes in all) leave at most a few candidates below it.
    let mut count = len / 16;
    loop {
        match batch_bytes(start, count).cmp(&len) {
            std::cmp::Ordering::Equal => break,
            std::cmp::Ordering::Less => return None,
            std::cmp::Ordering::Greater if count == 0 => return None,
            std::cmp::Ordering::Greater => count -= 1,
        }
    }
    if count > max as u64 || start.checked_add(count).is_none() {
        return None;
    }
    let n = usize::try_from(count).ok()?;
    let (sums, checks) = bytes.split_at(n * 16);
    let mut out: Vec<Symbol> = sums
        .chunks_exact(16)
        .map(|c| {
            let (a, b) = c.split_at(8);
            Symbol {
                sum: u64::from_le_bytes(a.try_into().unwrap_or_default()),
                weighted: u64::from_le_bytes(b.try_into().unwrap_or_default()),
                check: 0,
            }
        })
        .collect();
    let mut next = checks.iter();
    let (mut acc, mut held) = (0u128, 0u32);
    for (i, s) in (start..).zip(out.iter_mut()) {
        let b = check_bits(i);
        if b == 0 {
            break;
        }
        while held < b {
            acc |= u128::from(*next.next()?) << held;
            held += 8;
        }
        s.check = (acc as u64) & check_mask(i);
        acc = if b == 64 { acc >> 64 } else { acc >> b };
        held -= b;
    }
    // Canonical form: no byte left over, no padding bit set.
    (next.next().is_none() && acc == 0).then_some(out)
}

/// The mapping's `α`: index `i` is hit with probability about `1/(1 + α·i)`.
///
/// The paper's `α = 1/2` needed (mean over 400, 100 and 20 decodes) 1.458, 1.394 and
/// 1.368 symbols per key at d = 100, 1,000 and 10,000; `α = 5/8` needs 1.463, 1.350 and
/// 1.322 (`9/16`: 1.458, 1.363, 1.337; `3/4` failed to decode within 3d + 100 symbols in
/// 3 of 400 at d = 100). Sparser symbols peel more at large d; the dense first symbols
/// still catch the last keys.
pub const ALPHA: f64 = 0.625;

/// The probability that a key maps to symbol `index`: `1/(1 + α·index)`.
#[must_use]
pub fn hit_probability(index: u64) -> f64 {
    1.0 / (1.0 + ALPHA * index as f64)
}

/// The index sequence of one key: 0, then a sparse random walk in which index `i` is hit
/// with probability about `1/(1 + α·i)`, `α = 5/8` ([`ALPHA`]).
#[derive(Debug, Clone, Copy)]
struct Mapping {
    prng: u64,
    /// The next index this key maps to.
    next: u64,
}

impl Mapping {
    fn new(seed: u64) -> Self {
        Self {
            prng: seed,
            next: 0,
        }
    }

    /// Moves to the following index. No index in `i+1..=i+g` is hit with probability
    /// `Π j/(j + 1/α) ≈ ((i + c)/(i + g + c))^(1/α)`, `c = (1 + 1/α)/2 = 1.3`, so the gap
    /// after index `i` is `ceil((i + c) · ((1 − u)^(−α) − 1))` for `u` uniform in `[0, 1)`;
    /// with `y = (1 − u)^(−1/2) = 2^32 / sqrt(r + 1)` for a 64-bit random `r`,
    /// `(1 − u)^(−5/8) = y · y^(1/4)`: three square roots, no `powf`.
    fn advance(&mut self) {
        self.prng = self.prng.wrapping_mul(0xda94_2042_e4dd_58b5);
        let r = self.prng as f64;
        let y = 4_294_967_296.0 / (r + 1.0).sqrt();
        let x = (self.next as f64 + 1.3) * (y * y.sqrt().sqrt() - 1.0);
        // ceil(x) by hand: `f64::ceil` is a libm call on baseline x86-64, and this is the
        // encoder's hot loop. A float-to-int cast saturates; a gap of at least one keeps
        // the walk moving.
        let floor = x as u64;
        let gap = if (floor as f64) < x { floor + 1 } else { floor };
        self.next = self.next.saturating_add(gap.max(1));
    }

    /// Whether the sequence includes `index`.
    fn includes(mut self, index: u64) -> bool {
        while self.next < index {
            self.advance();
        }
        self.next == index
    }
}

/// What one key adds to each symbol it maps to: for one item `(k, v)` the sums of `v`,
/// `k·v` and `h(k, v)`; for a key held in two versions, the XOR of both.
#[derive(Debug, Clone, Copy)]
struct Contribution {
    sum: u64,
    weighted: u64,
    check: u64,
}

/// One key's contribution and where its index walk has got to.
#[derive(Debug, Clone, Copy)]
struct Source {
    c: Contribution,
    map: Mapping,
}

impl Source {
    fn new(key: u64, c: Contribution, salt: u64) -> Self {
        Self {
            c,
            map: Mapping::new(map_seed(key, salt)),
        }
    }

    fn item(item: Item, salt: u64) -> Self {
        let v = item.digest ^ digest_mask(salt);
        let c = Contribution {
            sum: v,
            weighted: gf::mul(item.key, v),
            check: checksum(item, salt),
        };
        Self::new(item.key, c, salt)
    }

    /// Applies the key to every symbol of `out`, which holds indices
    /// `base..base + out.len()`, and leaves the walk at the first index past them.
    fn fill(&mut self, base: u64, out: &mut [Symbol]) {
        let end = base + out.len() as u64;
        while self.map.next < end {
            if self.map.next >= base {
                // In range: the index is within `out`.
                let i = self.map.next;
                out[(i - base) as usize].apply(&self.c, check_mask(i));
            }
            self.map.advance();
        }
    }
}

/// The sender's side: an endless stream of coded symbols of a set.
#[derive(Debug, Clone)]
pub struct Encoder {
    items: Vec<Item>,
    sources: Vec<Source>,
    produced: u64,
}

impl Encoder {
    /// An encoder of `items` (distinct keys) under the session's `salt`.
    #[must_use]
    pub fn new(items: &[Item], salt: u64) -> Self {
        Self {
            items: items.to_vec(),
            sources: items.iter().map(|&i| Source::item(i, salt)).collect(),
            produced: 0,
        }
    }

    /// Symbols produced so far.
    #[must_use]
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// The items encoded, in the order given.
    #[must_use]
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Appends the next `count` symbols to `out`.
    pub fn produce(&mut self, count: usize, out: &mut Vec<Symbol>) {
        let start = out.len();
        out.resize(start + count, Symbol::default());
        self.fill(&mut out[start..]);
    }

    /// Adds the set to the next `out.len()` symbols.
    fn fill(&mut self, out: &mut [Symbol]) {
        let base = self.produced;
        for s in &mut self.sources {
            s.fill(base, out);
        }
        self.produced += out.len() as u64;
    }
}

/// Why a decoder gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeLimit {
    /// More keys peeled than the configured bound: the stream is hostile or the
    /// difference larger than this session accepts.
    TooManyItems,
}

/// A key peeled from the symbols: its contribution (its walk kept going over new
/// symbols) and its versions on the sender's and our side.
#[derive(Debug, Clone, Copy)]
struct Peeled {
    key: u64,
    /// The symbol it was peeled from.
    origin: usize,
    src: Source,
    theirs: Option<u64>,
    ours: Option<u64>,
}

/// What an examined symbol allows.
#[derive(Clone, Copy)]
enum Found {
    /// It holds one differing key alone: peel it.
    Peel(Peeled),
    /// It holds exactly a key peeled earlier (`peeled[i]`): that peel was false (the
    /// garbage of a mixed symbol that passed the checksum); undo it. Not trusted at a
    /// symbol another key was peeled from: a false peel of `g = t1 ⊕ t2` there leaves the
    /// symbol looking exactly like `t1` once `t1` is peeled, though `t1` is true.
    Unpeel(usize),
}

/// The receiver's side: adds its own set and peels the difference.
#[derive(Debug, Clone)]
pub struct Decoder {
    salt: u64,
    local: Encoder,
    lookup: HashMap<u64, u64>,
    symbols: Vec<Symbol>,
    /// Per symbol: peeled keys taken out of it (a symbol empty with none held no
    /// differing key at all, which the estimate of the difference counts).
    taken: Vec<u32>,
    peeled: Vec<Peeled>,
    /// Key → place in `peeled`.
    index: HashMap<u64, usize>,
    /// Keys whose peel was undone, and how often: a key is peeled again after one undo
    /// (the undo may have been misjudged), never after two.
    undone: HashMap<u64, u8>,
    unpeels: usize,
    /// Symbol → how many peeled keys were peeled from it.
    origins: HashMap<usize, u32>,
    max_keys: usize,
    operations: usize,
    stack: Vec<usize>,
    /// Per symbol: whether it is on `stack` (each is examined once per change burst).
    queued: Vec<bool>,
    /// Scratch of `peel`: (symbol, its sum, the sum's inverse).
    batch: Vec<(usize, u64, u64)>,
}

impl Decoder {
    /// A decoder against the local set `items` (distinct keys) under the session's
    /// `salt`, peeling at most `max_keys` differing keys.
    #[must_use]
    pub fn new(items: &[Item], salt: u64, max_keys: usize) -> Self {
        Self {
            salt,
            local: Encoder::new(items, salt),
            lookup: items.iter().map(|i| (i.key, i.digest)).collect(),
            symbols: Vec::new(),
            taken: Vec::new(),
            peeled: Vec::new(),
            index: HashMap::new(),
            undone: HashMap::new(),
            unpeels: 0,
            origins: HashMap::new(),
            max_keys,
            operations: 0,
            stack: Vec::new(),
            queued: Vec::new(),
            batch: Vec::new(),
        }
    }

    /// Symbols received so far.
    #[must_use]
    pub fn received(&self) -> usize {
        self.symbols.len()
    }

    /// Differing keys peeled so far.
    #[must_use]
    pub fn peeled(&self) -> usize {
        self.peeled.len()
    }

    /// Whether the whole difference is known.
    #[must_use]
    pub fn is_decoded(&self) -> bool {
        self.symbols.first().is_some_and(Symbol::is_empty)
    }

    /// False peels undone so far (each a mixed symbol whose garbage passed the checksum,
    /// found when a symbol later held exactly that garbage).
    #[must_use]
    pub fn unpeeled(&self) -> usize {
        self.unpeels
    }

    /// Items the sender has and we do not (a key held in two versions gives the sender's
    /// version here and ours in [`local_only`](Decoder::local_only)), in peeling order.
    #[must_use]
    pub fn remote_only(&self) -> Vec<Item> {
        self.peeled
            .iter()
            .filter_map(|p| p.theirs.map(|digest| Item { key: p.key, digest }))
            .collect()
    }

    /// Items we have and the sender does not, in peeling order.
    #[must_use]
    pub fn local_only(&self) -> Vec<Item> {
        self.peeled
            .iter()
            .filter_map(|p| p.ours.map(|digest| Item { key: p.key, digest }))
            .collect()
    }

    /// The local items the decoder was built on, in the order given.
    #[must_use]
    pub fn local_items(&self) -> &[Item] {
        self.local.items()
    }

    /// Adds the sender's next symbols (indices `received()..`) and peels what it can.
    ///
    /// # Errors
    /// [`DecodeLimit::TooManyItems`] if peeling exceeds the bound; the decoder is then
    /// unusable.
    pub fn add(&mut self, remote: &[Symbol]) -> Result<(), DecodeLimit> {
        // One pass over the local set per batch: the cost is O(local items + hits).
        let base = self.symbols.len();
        self.symbols.extend_from_slice(remote);
        self.taken.resize(self.symbols.len(), 0);
        let new = &mut self.symbols[base..];
        self.local.fill(new);
        let end = self.symbols.len() as u64;
        for p in &mut self.peeled {
            // Take the peeled keys out of the new symbols too.
            while p.src.map.next < end {
                let i = p.src.map.next;
                self.symbols[i as usize].apply(&p.src.c, check_mask(i));
                self.taken[i as usize] += 1;
                p.src.map.advance();
            }
        }
        self.stack.extend(base..self.symbols.len());
        self.queued.resize(self.symbols.len(), true);
        self.peel()
    }

    /// Adds one symbol at a time and stops as soon as the difference is decoded; returns
    /// how many of `remote` were used. Measures the exact symbols a difference needs.
    ///
    /// # Errors
    /// As [`Decoder::add`].
    pub fn add_until_decoded(&mut self, remote: &[Symbol]) -> Result<usize, DecodeLimit> {
        for (i, s) in remote.iter().enumerate() {
            self.add(std::slice::from_ref(s))?;
            if self.is_decoded() {
                return Ok(i + 1);
            }
        }
        Ok(remote.len())
    }

    /// Estimated differing keys, from how many of the later symbols held none: symbol
    /// `i ≥ 1` holds each differing key with probability `p(i) ≈ 1/(1 + α·i)`, so with `d`
    /// keys it is empty with probability `exp(−d·p(i))`; `d` is solved for by bisection over
    /// at most 4,096 of the symbols `m/4..m`. (Counting symbols empty now, after peeling,
    /// would underestimate: the keys left are the ones stuck in crowded symbols.) While
    /// none held none the difference may be far larger than the symbols so far: then the
    /// result is a lower bound (the `d` at which three such symbols would be expected). Also
    /// returns how many symbols held none (0: a lower bound; the more, the surer).
    #[must_use]
    pub fn estimate_keys(&self) -> Option<(f64, usize)> {
        self.estimate_keys_at(0.0)
    }

    /// As [`estimate_keys`](Decoder::estimate_keys), `sigmas` standard deviations low:
    /// `d` solved for `count + sigmas·√count` expected symbols free of differing keys
    /// (the count is about Poisson), a cautious figure when few such symbols back it.
    #[must_use]
    pub fn estimate_keys_at(&self, sigmas: f64) -> Option<(f64, usize)> {
        let m = self.symbols.len();
        let lo = (m / 4).max(1);
        if lo >= m {
            return None;
        }
        let step = (m - lo).div_ceil(4096);
        let cells: Vec<(f64, bool)> = (lo..m)
            .step_by(step)
            .map(|i| {
                let none = self.symbols[i].is_empty() && self.taken[i] == 0;
                (hit_probability(i as u64), none)
            })
            .collect();
        let count = cells.iter().filter(|c| c.1).count();
        if count >= cells.len() {
            return Some((0.0, count));
        }
        let n = count as f64;
        // None seen: `d` is then probably (95%) past the value at which three would be
        // expected.
        let target = if count == 0 {
            3.0
        } else {
            n + sigmas * n.sqrt()
        };
        let expected_empty = |d: f64| cells.iter().map(|c| (-d * c.0).exp()).sum::<f64>();
        let (mut a, mut b) = (0.0f64, 1.0f64);
        while expected_empty(b) > target && b < 1e12 {
            a = b;
            b *= 2.0;
        }
        for _ in 0..40 {
            let mid = 0.5 * (a + b);
            if expected_empty(mid) > target {
                a = mid;
            } else {
                b = mid;
            }
        }
        let d = 0.5 * (a + b);
        Some((d.max(self.peeled.len() as f64), count))
    }

    /// What symbol `idx` holds, if it is one differing key alone (or exactly a key peeled
    /// earlier).
    #[cfg(test)]
    fn examine(&self, idx: usize) -> Option<Found> {
        self.examine_with(idx, gf::inv(self.symbols[idx].sum)?)
    }

    /// What symbol `idx` holds, if it is one differing key alone (or exactly a key peeled
    /// earlier), given the inverse of its `sum`.
    fn examine_with(&self, idx: usize, inverse: u64) -> Option<Found> {
        let s = self.symbols[idx];
        let key = gf::mul(s.weighted, inverse);
        let mask = check_mask(idx as u64);
        let salt = self.salt;
        let maps_here = || Mapping::new(map_seed(key, salt)).includes(idx as u64);
        if let Some(&i) = self.index.get(&key) {
            let p = &self.peeled[i];
            let c = p.src.c;
            let same = c.sum == s.sum && c.weighted == s.weighted && c.check & mask == s.check;
            // At a symbol another key was peeled from, this is no evidence (see
            // `Found::Unpeel`).
            let others = self
                .origins
                .get(&idx)
                .copied()
                .unwrap_or(0)
                .saturating_sub(u32::from(p.origin == idx));
            let trusted = others == 0;
            return (same && trusted && maps_here()).then_some(Found::Unpeel(i));
        }
        if self.undone.get(&key).is_some_and(|&n| n >= 2) {
            return None;
        }
        let field = digest_mask(salt);
        let (check, theirs, ours) = match self.lookup.get(&key) {
            Some(&v) if v ^ field == s.sum => {
                (checksum(Item { key, digest: v }, salt), None, Some(v))
            }
            Some(&v2) => {
                // sum = (v1 ⊕ mask) ⊕ (v2 ⊕ mask).
                let v1 = s.sum ^ v2;
                let c = checksum(Item { key, digest: v1 }, salt)
                    ^ checksum(Item { key, digest: v2 }, salt);
                (c, Some(v1), Some(v2))
            }
            None => {
                let v = s.sum ^ field;
                (checksum(Item { key, digest: v }, salt), Some(v), None)
            }
        };
        if check & mask != s.check || !maps_here() {
            return None;
        }
        let c = Contribution {
            sum: s.sum,
            weighted: s.weighted,
            check,
        };
        Some(Found::Peel(Peeled {
            key,
            origin: idx,
            src: Source::new(key, c, salt),
            theirs,
            ours,
        }))
    }

    /// XORs `src`'s contribution into every received symbol it maps to (taking it out if
    /// `out`, or putting it back), queueing the symbols left non-empty; returns the walk past them.
    fn toggle(&mut self, mut src: Source, out: bool) -> Source {
        let len = self.symbols.len() as u64;
        while src.map.next < len {
            let i = src.map.next;
            let taken = &mut self.taken[i as usize];
            *taken = if out {
                *taken + 1
            } else {
                taken.saturating_sub(1)
            };
            let sym = &mut self.symbols[i as usize];
            sym.apply(&src.c, check_mask(i));
            if sym.sum != 0 && !self.queued[i as usize] {
                self.queued[i as usize] = true;
                self.stack.push(i as usize);
            }
            src.map.advance();
        }
        src
    }

    /// Examines the queued symbols until none is left, up to 256 at a time so that their
    /// sums are inverted together (Montgomery's trick: one inversion and three
    /// multiplications each, instead of an inversion each). A symbol changed by a peel
    /// earlier in its batch was queued again and is skipped here.
    fn peel(&mut self) -> Result<(), DecodeLimit> {
        let mut batch = std::mem::take(&mut self.batch);
        while !self.stack.is_empty() {
            let from = self.stack.len().saturating_sub(256);
            batch.clear();
            for idx in self.stack.drain(from..).rev() {
                self.queued[idx] = false;
                let sum = self.symbols[idx].sum;
                if sum != 0 {
                    batch.push((idx, sum, 0));
                }
            }
            gf::batch_inv(&mut batch);
            for &(idx, sum, inverse) in &batch {
                if self.symbols[idx].sum != sum {
                    continue;
                }
                if let Some(found) = self.examine_with(idx, inverse) {
                    if let Err(e) = self.apply(found) {
                        self.batch = batch;
                        return Err(e);
                    }
                }
            }
        }
        self.batch = batch;
        Ok(())
    }

    /// Peels or unpeels what an examined symbol held.
    fn apply(&mut self, found: Found) -> Result<(), DecodeLimit> {
        // Each key is peeled at most three times and unpeeled at most twice, so this bounds
        // the work a hostile stream can cause.
        self.operations += 1;
        if self.operations > self.max_keys.saturating_mul(6).saturating_add(64) {
            return Err(DecodeLimit::TooManyItems);
        }
        {
            match found {
                Found::Peel(mut p) => {
                    if self.peeled.len() >= self.max_keys {
                        return Err(DecodeLimit::TooManyItems);
                    }
                    p.src = self.toggle(p.src, true);
                    *self.origins.entry(p.origin).or_insert(0) += 1;
                    self.index.insert(p.key, self.peeled.len());
                    self.peeled.push(p);
                }
                Found::Unpeel(i) => {
                    let p = self.peeled.swap_remove(i);
                    self.index.remove(&p.key);
                    if let Some(moved) = self.peeled.get(i) {
                        self.index.insert(moved.key, i);
                    }
                    *self.undone.entry(p.key).or_insert(0) += 1;
                    self.unpeels += 1;
                    if let Some(n) = self.origins.get_mut(&p.origin) {
                        *n -= 1;
                    }
                    // Put the garbage back wherever the false peel took it out.
                    let fresh = Source::new(p.key, p.src.c, self.salt);
                    self.toggle(fresh, false);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "riblt_tests.rs"]
mod tests;
