//! The syndrome sketch: set reconciliation at about one item's size per differing key.
//!
//! A differing key `k` is a pair `(X, w)` in GF(2^64): the *locator* `X = k ⊕ m_x` (the
//! key under a per-session mask) and the *value* `w`, the XOR of the two sides' scaled
//! masked digests `s(k)·(v ⊕ m_v)` (`s(k)·(v1 ⊕ v2)` for a key held in two versions: one
//! difference, as in [`crate::riblt`]; the per-key scale keeps equal digests from giving
//! equal values). A set's *syndromes* are its power sums
//! `s_j = ⊕ w·X^j`, `j = 0, 1, …`; each side computes them over its own items, and their
//! XOR is the syndrome sequence of the difference alone (common items cancel). That is
//! the syndrome of a Reed–Solomon error pattern whose error locations are the differing
//! keys: from `2L + 1` syndromes a set of `L` differences decodes exactly
//! ([`crate::poly::decode`]: Berlekamp–Massey, roots, values, and a check of every
//! syndrome), so `L` differences cost `2L + 1` eight-byte sums: 16 bytes and a little
//! per difference, the size of the `(key, digest)` itself, where RIBLT needs ~1.35–1.5
//! coded symbols of 16 bytes. The price is CPU: every item enters every syndrome of its
//! bucket, and decoding is quadratic in the bucket's differences.
//!
//! So the keys are split into *buckets* by a salted hash prefix, aiming at
//! [`LOAD`] differences a bucket; a bucket of depth `ℓ` holds the keys whose hash starts
//! with its `ℓ`-bit prefix, and its syndromes are the XOR of its children's. The sender
//! opens with [`PER`] syndromes for each bucket of a depth the planner's estimate of the
//! difference picks; the receiver decodes what it can and asks ([`Ask`]) for more
//! syndromes of some buckets, or for a split of others into 2 to 16 children: the sender
//! then sends all children's syndromes up to the parent's count but one, which the
//! receiver derives (the parent's minus its siblings'), so a split costs no more than
//! starting at the finer depth would have. Which buckets to split or extend follows from
//! the fraction of the newest buckets that decoded ([`Decoder::next_ask`]).
//!
//! Both sides apply every ask to the same list of buckets ([`Leaf`]s, in hash order), so
//! the answer is the syndromes alone, back to back, 8 bytes each.

use std::ops::Range;

use hashbrown::HashMap;

use crate::gf;
use crate::poly;
use crate::store::Item;

/// Seed of the bucket hash.
const BUCKET_SEED: u64 = 0x7379_6e64_5f62_6b74;
/// Seed of the locator mask.
const LOCATOR_SEED: u64 = 0x7379_6e64_5f6c_6f63;
/// Seed of the digest mask.
const VALUE_SEED: u64 = 0x7379_6e64_5f76_616c;

/// Differences a bucket is aimed at. Measured (`sketch_sweep`, 20 seeds, first batch
/// sized for the true difference): 8 costs 1.27–1.49 sums of 16 bytes a difference, 16
/// costs 1.16–1.21; each item enters about `2·LOAD` sums, and decoding a bucket is
/// quadratic in its load.
pub const LOAD: f64 = 16.0;
/// Syndromes a bucket gets when nothing says how many it needs.
pub const PER: u32 = 17;
/// Syndromes beyond `2L` a bucket needs to decode `L` differences.
pub const VERIFY: usize = 1;
/// The deepest bucket (16 million buckets).
pub const MAX_DEPTH: u8 = 24;
/// The most children one split makes (`2^MAX_SPLIT_BITS`).
pub const MAX_SPLIT_BITS: u8 = 4;

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The masks of a session: bucket seed, locator mask, value mask.
#[derive(Debug, Clone, Copy)]
struct Masks {
    bucket: u64,
    locator: u64,
    value: u64,
}

impl Masks {
    fn new(salt: u64) -> Self {
        Self {
            bucket: mix(salt ^ BUCKET_SEED),
            locator: mix(salt ^ LOCATOR_SEED),
            value: mix(salt ^ VALUE_SEED),
        }
    }

    fn bucket_hash(&self, key: u64) -> u64 {
        mix(key ^ self.bucket)
    }

    /// The key's nonzero scale of its value: `w = scale(k)·(v ⊕ m_v)`. Without it two
    /// differing keys with the same digest (a version counter, a tombstone) would carry
    /// equal values, and in characteristic 2 equal values make every even syndrome the
    /// square of an earlier one (`p_2j = p_j²`): the verifying syndrome would prove
    /// nothing (the fuzzer found a session decoding three such keys as one).
    fn scale(&self, key: u64) -> u64 {
        mix(key ^ self.value.rotate_left(32)) | 1
    }

    /// The point of an item: `(locator, value)`.
    fn point(&self, item: Item) -> (u64, u64) {
        (
            item.key ^ self.locator,
            gf::mul(self.scale(item.key), item.digest ^ self.value),
        )
    }
}

/// A session's items as `(bucket hash, (locator, value))`, sorted by bucket hash, and
/// each point's running term `w·X^k`, `k` the syndromes its bucket has so far (a split
/// leaves it valid: the children start with the parent's count).
#[derive(Debug, Clone, Default)]
struct Points {
    hashes: Vec<u64>,
    points: Vec<(u64, u64)>,
    running: Vec<u64>,
}

impl Points {
    fn new(items: &[Item], masks: Masks) -> Self {
        let mut all: Vec<(u64, (u64, u64))> = items
            .iter()
            .map(|i| (masks.bucket_hash(i.key), masks.point(*i)))
            .collect();
        all.sort_unstable_by_key(|p| p.0);
        let (hashes, points): (Vec<u64>, Vec<(u64, u64)>) = all.into_iter().unzip();
        let running = points.iter().map(|p| p.1).collect();
        Self {
            hashes,
            points,
            running,
        }
    }

    /// The points of the bucket `(depth, prefix)`.
    fn range(&self, depth: u8, prefix: u64) -> Range<usize> {
        let (start, end) = bucket_bounds(depth, prefix);
        let a = self.hashes.partition_point(|&h| u128::from(h) < start);
        let b = self.hashes.partition_point(|&h| u128::from(h) < end);
        a..b
    }

    /// XORs syndromes `0..out.len()` of the bucket into `out` (a split child's, which
    /// leaves the running terms alone: they stay at the parent's count).
    fn sums_from_zero(&self, depth: u8, prefix: u64, out: &mut [u64]) {
        let r = self.range(depth, prefix);
        gf::power_sums(&self.points[r], 0, out);
    }

    /// XORs the bucket's next `out.len()` syndromes into `out`, advancing its running
    /// terms.
    fn sums_next(&mut self, depth: u8, prefix: u64, out: &mut [u64]) {
        let r = self.range(depth, prefix);
        gf::power_sums_running(&self.points[r.clone()], &mut self.running[r], out);
    }
}

/// The bucket hashes `[start, end)` of bucket `(depth, prefix)`.
fn bucket_bounds(depth: u8, prefix: u64) -> (u128, u128) {
    let width = 1u128 << (64 - u32::from(depth.min(64)));
    let start = u128::from(prefix) * width;
    (start, start + width)
}

/// One bucket of the current partition, as both sides track it.
#[derive(Debug, Clone, Default)]
pub struct Leaf {
    /// Prefix bits.
    pub depth: u8,
    /// The prefix.
    pub prefix: u64,
    /// Syndromes sent so far.
    pub have: u32,
    /// The round the bucket was created in (the first batch is round 0).
    pub born: u32,
    /// Whether syndromes were added to it since its creation.
    pub extended: bool,
    // Receiver only: the sender's syndromes, ours, and the decoded difference.
    remote: Vec<u64>,
    local: Vec<u64>,
    done: Option<Vec<(u64, u64)>>,
}

impl Leaf {
    fn new(depth: u8, prefix: u64, have: u32, born: u32) -> Self {
        Self {
            depth,
            prefix,
            have,
            born,
            ..Self::default()
        }
    }

    /// Whether the receiver decoded the bucket.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.done.is_some()
    }
}

/// What the receiver asks for: children for the buckets `split` (indices into the current
/// buckets), then more syndromes for the buckets `extend` (indices into the buckets after
/// the split, each with the number to add).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ask {
    /// Buckets to split, over the current list, increasing.
    pub split: Vec<usize>,
    /// Each split bucket becomes `2^bits` children.
    pub bits: u8,
    /// Buckets to extend, over the list after the split, increasing, and how many
    /// syndromes each gets (at least one, at most [`MAX_STEP`]).
    pub extend: Vec<(usize, u32)>,
}

/// The most syndromes one ask adds to one bucket.
pub const MAX_STEP: u32 = 1 << 16;
/// The most syndromes one bucket may have: an honest decoder splits a bucket long before
/// (at about `4·LOAD`); the bound keeps a hostile peer from making us sum every item of a
/// bucket into thousands of syndromes.
pub const MAX_HAVE: u32 = 1 << 8;
/// The most point-syndrome products one answer may cost (about 2 s of CPU): a hostile
/// asker cannot make us compute more per step.
pub const MAX_WORK: u64 = 1 << 28;

/// Why an ask or a batch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// It breaks the protocol: a bad index, depth or length.
    Protocol,
    /// It exceeds a bound.
    TooLarge,
}

/// One run of syndromes in a batch: bucket `leaf` (an index after the ask), `from..to`;
/// a split child's run also goes into its last sibling (`derive`), which the receiver
/// derives from the parent.
#[derive(Debug, Clone, Copy)]
struct Run {
    leaf: usize,
    from: u32,
    to: u32,
    derive: Option<usize>,
}

/// Applies `ask` to `leaves` (created in round `round`); the runs of the answer, in order.
fn apply(
    leaves: &mut Vec<Leaf>,
    ask: &Ask,
    round: u32,
    max_leaves: usize,
) -> Result<Vec<Run>, Refused> {
    let split_sorted = ask.split.windows(2).all(|w| w[0] < w[1]);
    let extend_sorted = ask.extend.windows(2).all(|w| w[0].0 < w[1].0);
    if !split_sorted || !extend_sorted {
        return Err(Refused::Protocol);
    }
    if ask.extend.iter().any(|e| e.1 == 0 || e.1 > MAX_STEP) {
        return Err(Refused::Protocol);
    }
    if !ask.split.is_empty() && !(1..=MAX_SPLIT_BITS).contains(&ask.bits) {
        return Err(Refused::Protocol);
    }
    if ask.split.last().is_some_and(|&i| i >= leaves.len()) {
        return Err(Refused::Protocol);
    }
    let fan = 1usize << ask.bits;
    let after = leaves.len() + ask.split.len() * (fan - 1);
    if !ask.split.is_empty() && after > max_leaves {
        return Err(Refused::TooLarge);
    }
    let mut runs = Vec::new();
    if !ask.split.is_empty() {
        let old = std::mem::take(leaves);
        let mut split = ask.split.iter().peekable();
        for (i, mut leaf) in old.into_iter().enumerate() {
            if split.next_if_eq(&&i).is_none() {
                leaves.push(leaf);
                continue;
            }
            let depth = leaf.depth + ask.bits;
            if depth > MAX_DEPTH || leaf.done.is_some() {
                return Err(Refused::Protocol);
            }
            let first = leaves.len();
            let last = first + fan - 1;
            for c in 0..fan as u64 {
                let prefix = (leaf.prefix << ask.bits) | c;
                leaves.push(Leaf::new(depth, prefix, leaf.have, round));
            }
            // The last child starts from the parent's syndromes; its siblings' are
            // XORed out as they arrive.
            leaves[last].remote = std::mem::take(&mut leaf.remote);
            leaves[last].local = std::mem::take(&mut leaf.local);
            for child in first..last {
                runs.push(Run {
                    leaf: child,
                    from: 0,
                    to: leaf.have,
                    derive: Some(last),
                });
            }
        }
    }
    if ask.extend.last().is_some_and(|e| e.0 >= leaves.len()) {
        return Err(Refused::Protocol);
    }
    for &(i, by) in &ask.extend {
        let leaf = &mut leaves[i];
        let to = leaf.have.checked_add(by).ok_or(Refused::TooLarge)?;
        if to > MAX_HAVE {
            return Err(Refused::TooLarge);
        }
        runs.push(Run {
            leaf: i,
            from: leaf.have,
            to,
            derive: None,
        });
        leaf.have = to;
        leaf.extended = true;
    }
    Ok(runs)
}

/// Fills `leaves` with the `2^depth` buckets of `depth`, empty, and returns the ask that
/// gives each `per` syndromes: the first batch.
fn first_ask(leaves: &mut Vec<Leaf>, depth: u8, per: u32) -> Ask {
    *leaves = (0..1u64 << depth)
        .map(|p| Leaf::new(depth, p, 0, 0))
        .collect();
    Ask {
        extend: (0..leaves.len()).map(|i| (i, per)).collect(),
        ..Ask::default()
    }
}

fn syndromes_in(runs: &[Run]) -> u64 {
    runs.iter().map(|r| u64::from(r.to - r.from)).sum()
}

/// The sender's side: its items under the compared nodes, and the buckets so far.
#[derive(Debug)]
pub struct Encoder {
    items: Vec<Item>,
    points: Points,
    leaves: Vec<Leaf>,
    round: u32,
    sent: u64,
    max_leaves: usize,
}

impl Encoder {
    /// An encoder of `items` under the session's `salt`, keeping at most `max_leaves`
    /// buckets.
    #[must_use]
    pub fn new(items: &[Item], salt: u64, max_leaves: usize) -> Self {
        Self {
            items: items.to_vec(),
            points: Points::new(items, Masks::new(salt)),
            leaves: Vec::new(),
            round: 0,
            sent: 0,
            max_leaves,
        }
    }

    /// The items, in the order given (`Done` names them by rank).
    #[must_use]
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Syndromes sent so far.
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Buckets so far.
    #[must_use]
    pub fn buckets(&self) -> usize {
        self.leaves.len()
    }

    /// The first batch: `per` syndromes of each of the `2^depth` buckets of `depth`.
    ///
    /// # Errors
    /// [`Refused::TooLarge`] past [`MAX_DEPTH`] or the bucket bound.
    pub fn first(&mut self, depth: u8, per: u32) -> Result<Vec<u8>, Refused> {
        if depth > MAX_DEPTH || (1usize << depth) > self.max_leaves {
            return Err(Refused::TooLarge);
        }
        let ask = first_ask(&mut self.leaves, depth, per);
        let runs = apply(&mut self.leaves, &ask, 0, self.max_leaves)?;
        for l in &mut self.leaves {
            l.extended = false;
        }
        Ok(self.produce(&runs))
    }

    /// The answer to `ask`: the syndromes of its runs, back to back.
    ///
    /// # Errors
    /// [`Refused`] if the ask does not fit the buckets or a bound.
    pub fn answer(&mut self, ask: &Ask) -> Result<Vec<u8>, Refused> {
        let mut leaves = self.leaves.clone();
        let runs = apply(&mut leaves, ask, self.round + 1, self.max_leaves)?;
        let work: u64 = runs
            .iter()
            .map(|r| {
                let l = &leaves[r.leaf];
                self.points.range(l.depth, l.prefix).len() as u64 * u64::from(r.to - r.from)
            })
            .sum();
        if work > MAX_WORK {
            return Err(Refused::TooLarge);
        }
        self.round += 1;
        self.leaves = leaves;
        Ok(self.produce(&runs))
    }

    /// What `ask` would cost in syndromes, without applying it.
    #[must_use]
    pub fn cost(&self, ask: &Ask) -> Option<u64> {
        let mut leaves: Vec<Leaf> = self
            .leaves
            .iter()
            .map(|l| Leaf::new(l.depth, l.prefix, l.have, l.born))
            .collect();
        apply(&mut leaves, ask, self.round + 1, self.max_leaves)
            .ok()
            .map(|r| syndromes_in(&r))
    }

    fn produce(&mut self, runs: &[Run]) -> Vec<u8> {
        let total = syndromes_in(runs);
        self.sent += total;
        let mut out = Vec::with_capacity(usize::try_from(total * 8).unwrap_or(0));
        let mut buf = Vec::new();
        for r in runs {
            let leaf = &self.leaves[r.leaf];
            buf.clear();
            buf.resize((r.to - r.from) as usize, 0u64);
            if r.derive.is_some() {
                self.points
                    .sums_from_zero(leaf.depth, leaf.prefix, &mut buf);
            } else {
                self.points.sums_next(leaf.depth, leaf.prefix, &mut buf);
            }
            for s in &buf {
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
        out
    }
}

/// The receiver's side: its own items, the buckets, and what decoded.
#[derive(Debug)]
pub struct Decoder {
    items: Vec<Item>,
    lookup: HashMap<u64, u64>,
    masks: Masks,
    points: Points,
    leaves: Vec<Leaf>,
    round: u32,
    received: u64,
    max_keys: usize,
    max_leaves: usize,
    decoded_keys: usize,
    /// The difference in the whole set, as the newest buckets that decoded last implied.
    total: Option<f64>,
}

impl Decoder {
    /// A decoder against the local `items` (distinct keys) under the session's `salt`,
    /// taking at most `max_keys` differences and `max_leaves` buckets.
    #[must_use]
    pub fn new(items: &[Item], salt: u64, max_keys: usize, max_leaves: usize) -> Self {
        let masks = Masks::new(salt);
        Self {
            items: items.to_vec(),
            lookup: items.iter().map(|i| (i.key, i.digest)).collect(),
            masks,
            points: Points::new(items, masks),
            leaves: Vec::new(),
            round: 0,
            received: 0,
            max_keys,
            max_leaves,
            decoded_keys: 0,
            total: None,
        }
    }

    /// The local items the decoder was built on, in the order given.
    #[must_use]
    pub fn local_items(&self) -> &[Item] {
        &self.items
    }

    /// Syndromes received so far.
    #[must_use]
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The buckets.
    #[must_use]
    pub fn leaves(&self) -> &[Leaf] {
        &self.leaves
    }

    /// Whether every bucket decoded.
    #[must_use]
    pub fn is_decoded(&self) -> bool {
        !self.leaves.is_empty() && self.leaves.iter().all(Leaf::is_done)
    }

    /// The first batch: `per` syndromes of each bucket of `depth`.
    ///
    /// # Errors
    /// [`Refused`] if the batch does not fit or exceeds a bound.
    pub fn first(&mut self, depth: u8, per: u32, bytes: &[u8]) -> Result<(), Refused> {
        if depth > MAX_DEPTH || (1usize << depth) > self.max_leaves || per == 0 {
            return Err(Refused::TooLarge);
        }
        if !self.leaves.is_empty() {
            return Err(Refused::Protocol);
        }
        let ask = first_ask(&mut self.leaves, depth, per);
        self.take(&ask, bytes, 0)
    }

    /// The sender's answer to `ask` (which we sent).
    ///
    /// # Errors
    /// [`Refused`] if the answer does not fit the ask or exceeds a bound.
    pub fn add(&mut self, ask: &Ask, bytes: &[u8]) -> Result<(), Refused> {
        self.round += 1;
        self.take(ask, bytes, self.round)
    }

    fn take(&mut self, ask: &Ask, bytes: &[u8], round: u32) -> Result<(), Refused> {
        let runs = apply(&mut self.leaves, ask, round, self.max_leaves)?;
        if round == 0 {
            // The first batch creates the buckets: they are new, not extended.
            for l in &mut self.leaves {
                l.extended = false;
            }
        }
        let total = syndromes_in(&runs);
        if bytes.len() as u64 != total * 8 {
            return Err(Refused::Protocol);
        }
        self.received += total;
        let mut words = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()));
        let mut touched = Vec::new();
        for r in &runs {
            for j in r.from..r.to {
                let s = words.next().ok_or(Refused::Protocol)?;
                let leaf = &mut self.leaves[r.leaf];
                if leaf.remote.len() != j as usize {
                    return Err(Refused::Protocol);
                }
                leaf.remote.push(s);
                if let Some(last) = r.derive {
                    if let Some(p) = self.leaves[last].remote.get_mut(j as usize) {
                        *p ^= s;
                    }
                }
            }
            if let Some(last) = r.derive {
                // A split child's own sums from zero; the last child's are the parent's
                // (which it started with) less its siblings'.
                let leaf = &mut self.leaves[r.leaf];
                let mut own = vec![0u64; r.to as usize];
                self.points
                    .sums_from_zero(leaf.depth, leaf.prefix, &mut own);
                for (p, o) in self.leaves[last].local.iter_mut().zip(&own) {
                    *p ^= o;
                }
                self.leaves[r.leaf].local = own;
            }
            touched.push(r.leaf);
            touched.extend(r.derive);
        }
        touched.sort_unstable();
        touched.dedup();
        for i in touched {
            self.try_decode(i)?;
        }
        if let Some(t) = self.estimate_total(round) {
            self.total = Some(t);
        }
        Ok(())
    }

    /// The difference in the whole set the buckets created in `round` imply: they got
    /// the same count `m` and hold a Poisson load, of which the fraction that decoded
    /// (at most `(m − 1)/2` differences each) tells the mean; a bucket of depth `ℓ` holds
    /// `2^-ℓ` of the whole. `None` when no bucket is that new or none of them decoded.
    fn estimate_total(&self, round: u32) -> Option<f64> {
        let newest: Vec<&Leaf> = self
            .leaves
            .iter()
            .filter(|l| l.born == round && !l.extended)
            .collect();
        if newest.is_empty() {
            return None;
        }
        let done = newest.iter().filter(|l| l.is_done()).count();
        let m = newest.iter().map(|l| l.have).min().unwrap_or(PER);
        let depth = newest.iter().map(|l| f64::from(l.depth)).sum::<f64>() / newest.len() as f64;
        poisson_lambda(
            done as f64 / newest.len() as f64,
            (m.saturating_sub(1) / 2) as usize,
        )
        .map(|lambda| lambda * depth.exp2())
    }

    /// Brings bucket `i`'s local syndromes up to its count and decodes it if it can.
    fn try_decode(&mut self, i: usize) -> Result<(), Refused> {
        let leaf = &mut self.leaves[i];
        if leaf.done.is_some() || leaf.remote.len() != leaf.have as usize {
            return Ok(());
        }
        let from = leaf.local.len();
        if from < leaf.have as usize {
            let mut more = vec![0u64; leaf.have as usize - from];
            self.points.sums_next(leaf.depth, leaf.prefix, &mut more);
            leaf.local.extend(more);
        }
        let sums: Vec<u64> = leaf
            .remote
            .iter()
            .zip(&leaf.local)
            .map(|(r, l)| r ^ l)
            .collect();
        let Some(pairs) = poly::decode(&sums, VERIFY) else {
            return Ok(());
        };
        // Every decoded key must fall in the bucket: garbage rarely does.
        let (start, end) = bucket_bounds(leaf.depth, leaf.prefix);
        let inside = pairs.iter().all(|&(x, _)| {
            let h = u128::from(self.masks.bucket_hash(x ^ self.masks.locator));
            (start..end).contains(&h)
        });
        if !inside {
            return Ok(());
        }
        self.decoded_keys += pairs.len();
        if self.decoded_keys > self.max_keys {
            return Err(Refused::TooLarge);
        }
        leaf.done = Some(pairs);
        Ok(())
    }

    /// The difference, once decoded: `(remote_only, local_only)` as in
    /// [`crate::riblt::Decoder`] (a key held in two versions is in both).
    #[must_use]
    pub fn difference(&self) -> (Vec<Item>, Vec<Item>) {
        let (mut remote, mut local) = (Vec::new(), Vec::new());
        for leaf in &self.leaves {
            for &(x, w) in leaf.done.iter().flatten() {
                let key = x ^ self.masks.locator;
                // `scale` is odd, so nonzero and invertible.
                let w = gf::mul(w, gf::inv(self.masks.scale(key)).unwrap_or(0));
                match self.lookup.get(&key) {
                    Some(&ours) if w == ours ^ self.masks.value => {
                        local.push(Item { key, digest: ours });
                    }
                    Some(&ours) => {
                        local.push(Item { key, digest: ours });
                        remote.push(Item {
                            key,
                            digest: w ^ ours,
                        });
                    }
                    None => remote.push(Item {
                        key,
                        digest: w ^ self.masks.value,
                    }),
                }
            }
        }
        (remote, local)
    }

    /// What to ask for next, or `None` when every bucket decoded.
    ///
    /// The buckets created in the last round got the same count `m` and hold a Poisson
    /// load: the fraction that decoded (at most `(m − 1)/2` differences each) gives the
    /// load `λ̂`. A new bucket that failed holds on average `E = E[d | d > (m − 1)/2]`: if
    /// that is half again [`LOAD`] or more, it is split into `2^s ≈ E/LOAD` children;
    /// otherwise it (and every older failed bucket) gets enough syndromes for `E`, at
    /// least 2 more. When none of four or more new buckets decoded the load is unknown
    /// and large: they split in two (which costs the bytes doubling their count would,
    /// and halves the work per item). When fewer than four were tried, the ones that
    /// failed get what a load equal to their threshold would need past it.
    #[must_use]
    pub fn next_ask(&self) -> Option<Ask> {
        if self.is_decoded() {
            return None;
        }
        let fresh = |l: &Leaf| l.born == self.round && !l.extended;
        let newest = self.leaves.iter().filter(|l| fresh(l)).count();
        let total = self.total;
        let load = |l: &Leaf| total.map(|t| t / f64::from(l.depth).exp2());
        // A failed bucket of `have` syndromes holds more than `(have − 1)/2` differences.
        let expect = |l: &Leaf| {
            let t = (l.have.saturating_sub(1) / 2) as usize;
            load(l).map(|lambda| tail_mean(lambda, t))
        };
        let unknown_and_large = total.is_none() && newest >= 4;
        // Without a load to go by, a bucket that failed at half again its design capacity
        // or past it is split in two.
        let full = |l: &Leaf| l.have > 3 * LOAD as u32;
        let mut split = Vec::new();
        let mut split_bits = 0u8;
        for (i, l) in self.leaves.iter().enumerate() {
            if l.is_done() {
                continue;
            }
            if !fresh(l) {
                // An older bucket far past its design load splits even when the others'
                // load is known: extending it a few sums a round would take many rounds.
                let heavy = l.have > 4 * LOAD as u32;
                if (heavy || load(l).is_none() && full(l)) && l.depth < MAX_DEPTH {
                    split_bits = split_bits.max(1);
                    split.push(i);
                }
                continue;
            }
            // Children get the parent's count: split no finer than into children that
            // need that many (`2·E/2^s + 1 ≥ have`), nor finer than `LOAD` each.
            let bits = match expect(l) {
                Some(e) if e >= SPLIT_AT * LOAD => {
                    let fit = (2.0 * e / f64::from(l.have.saturating_sub(1).max(1)))
                        .log2()
                        .floor();
                    (e / LOAD).log2().round().min(fit)
                }
                Some(_) => 0.0,
                None if unknown_and_large || full(l) => 1.0,
                None => 0.0,
            };
            let bits = bits.clamp(0.0, f64::from(MAX_SPLIT_BITS)) as u8;
            if bits > 0 && l.depth + bits <= MAX_DEPTH {
                // One split width an ask: the widest any bucket wants.
                split_bits = split_bits.max(bits);
                split.push(i);
            }
        }
        let fan = 1usize << split_bits;
        let mut extend = Vec::new();
        let mut at = 0usize;
        let mut next_split = split.iter().peekable();
        for (i, l) in self.leaves.iter().enumerate() {
            if next_split.next_if_eq(&&i).is_some() {
                at += fan;
                continue;
            }
            if !l.is_done() {
                let need = match expect(l) {
                    Some(e) => 2 * e.ceil() as u32 + VERIFY as u32,
                    // Too few buckets to tell the load: what a load equal to the
                    // threshold would need past it.
                    None => {
                        let t = (l.have.saturating_sub(1) / 2) as usize;
                        2 * tail_mean(t as f64, t).ceil() as u32 + VERIFY as u32
                    }
                };
                let by = need.saturating_sub(l.have).clamp(2, MAX_STEP);
                extend.push((at, by));
            }
            at += 1;
        }
        if split.is_empty() && extend.is_empty() {
            return None;
        }
        Some(Ask {
            split,
            bits: split_bits,
            extend,
        })
    }
}

/// A bucket expected to hold this many times [`LOAD`] differences or more is split.
const SPLIT_AT: f64 = 1.5;

/// The Poisson mean whose `P(d ≤ threshold)` is `decoded`, or `None` when nothing decoded
/// (the load is unknown and large).
fn poisson_lambda(decoded: f64, threshold: usize) -> Option<f64> {
    if decoded <= 0.0 {
        return None;
    }
    if decoded >= 1.0 {
        // Everything decoded: the load is at most about half the threshold.
        return Some(threshold as f64 / 2.0);
    }
    let (mut lo, mut hi) = (0.0f64, 4.0 * (threshold as f64 + 4.0));
    for _ in 0..50 {
        let mid = (lo + hi) / 2.0;
        if poisson_cdf(mid, threshold) > decoded {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some((lo + hi) / 2.0)
}

/// `P(d ≤ t)` for a Poisson load `λ`.
fn poisson_cdf(lambda: f64, t: usize) -> f64 {
    let (mut p, mut sum) = ((-lambda).exp(), 0.0);
    for k in 0..=t {
        if k > 0 {
            p *= lambda / k as f64;
        }
        sum += p;
    }
    sum
}

/// `E[d | d > t]` for a Poisson load `λ`: `(λ − λ·P(d ≤ t − 1)) / P(d > t)`.
fn tail_mean(lambda: f64, t: usize) -> f64 {
    let tail = 1.0 - poisson_cdf(lambda, t);
    let floor = t as f64 + 1.0;
    if tail <= 1e-9 {
        return floor;
    }
    let below = if t == 0 {
        0.0
    } else {
        lambda * poisson_cdf(lambda, t - 1)
    };
    ((lambda - below) / tail).max(floor)
}

/// The first batch for `differences` estimated differing keys: the bucket depth (about
/// [`LOAD`] differences a bucket) and the syndromes per bucket, enough for the expected
/// load less half a deviation: about two thirds of the buckets fail and get what their
/// own lower bound and the others' loads say they need, which costs fewer bytes than a
/// margin that every bucket pays (at +½ deviation 1.26–1.31 sums a difference, at −½
/// 1.16–1.21) for about one more round trip.
#[must_use]
pub fn first_batch(differences: f64) -> (u8, u32) {
    // Any estimate above 2^30 would ask for the deepest buckets anyway.
    let differences = differences.clamp(0.0, f64::from(1u32 << 30));
    let depth = if differences <= LOAD {
        0
    } else {
        ((differences / LOAD).log2().round()).clamp(0.0, f64::from(MAX_DEPTH)) as u8
    };
    let load = differences.max(0.0) / f64::from(1u32 << depth);
    // Saturating float-to-int; the load is small here.
    let per = (2.0 * (load - 0.5 * load.sqrt()).max(1.0).ceil()) as u32;
    (depth, per.min(MAX_STEP - VERIFY as u32) + VERIFY as u32)
}

#[cfg(test)]
#[path = "sketch_tests.rs"]
mod tests;
