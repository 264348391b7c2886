//! One entry of a bitmap version vector: what a node has seen of one peer's dots, as a
//! base (every counter up to it) and a bitmap of the counters seen after it.
//!
//! Bit `i` of the bitmap (word `i / 64`, bit `i % 64`, least significant first) stands
//! for counter `base + 1 + i`. An entry is kept **normalised**: the lowest bit is clear
//! (a set lowest bit would extend the contiguous prefix, so it folds into the base) and
//! the last word is non-zero. The paper writes bitmaps lowest bit first, so its example
//! `(3, 01101₂)` (seen 1..=3, then 5, 6 and 8) is `base = 3`, first word `0b10110`.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// The most bitmap words an entry may hold: counters up to 2^20 beyond the base. A dot
/// further ahead is refused ([`Entry::add`] returns `false`) and a peer's clock with a
/// longer bitmap does not decode, so a hostile clock cannot make a node allocate more.
pub const MAX_BITMAP_WORDS: usize = 1 << 14;

/// What a node has seen of one peer's dots: `base` and every counter set in the bitmap.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "RawEntry")]
pub struct Entry {
    base: u64,
    bits: SmallVec<[u64; 1]>,
}

/// The wire form before validation.
#[derive(Deserialize)]
struct RawEntry {
    base: u64,
    bits: SmallVec<[u64; 1]>,
}

/// Why a decoded entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidEntry;

impl std::fmt::Display for InvalidEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bitmap entry not normalised, over {MAX_BITMAP_WORDS} words, or past u64::MAX"
        )
    }
}

impl TryFrom<RawEntry> for Entry {
    type Error = InvalidEntry;
    fn try_from(raw: RawEntry) -> Result<Self, InvalidEntry> {
        let e = Entry {
            base: raw.base,
            bits: raw.bits,
        };
        let normal = e.bits.first().is_none_or(|w| w & 1 == 0)
            && e.bits.last().is_none_or(|&w| w != 0)
            && e.bits.len() <= MAX_BITMAP_WORDS
            && e.base.checked_add(e.bits.len() as u64 * 64).is_some();
        if normal { Ok(e) } else { Err(InvalidEntry) }
    }
}

impl Entry {
    /// Nothing seen.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Nothing seen, in a `const` context.
    pub(crate) const fn empty() -> Self {
        Self {
            base: 0,
            bits: SmallVec::new_const(),
        }
    }

    /// Every counter up to `base`, nothing after.
    #[must_use]
    pub fn with_base(base: u64) -> Self {
        Self {
            base,
            bits: SmallVec::new(),
        }
    }

    /// The entry the paper writes `(base, b₁b₂…)`: character `i` (from 0) of `bits` is
    /// counter `base + 1 + i`, `'1'` if seen. Normalises; `None` if a character is not
    /// `0`/`1` or the bitmap is over the bound.
    #[must_use]
    pub fn from_paper(base: u64, bits: &str) -> Option<Self> {
        let mut e = Self::with_base(base);
        for (i, ch) in bits.chars().enumerate() {
            match ch {
                '0' => {}
                '1' => {
                    let c = base.checked_add(1 + i as u64)?;
                    if !e.add(c) {
                        return None;
                    }
                }
                _ => return None,
            }
        }
        Some(e)
    }

    /// Every counter up to this one has been seen.
    #[must_use]
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The bitmap words (bit `i` is counter `base + 1 + i`); empty when nothing is seen
    /// past the base.
    #[must_use]
    pub fn bits(&self) -> &[u64] {
        &self.bits
    }

    /// The highest counter this entry could hold a bit for, plus the base.
    fn end(&self) -> u64 {
        // Bounded at construction: base + 64 · words never overflows.
        self.base + self.bits.len() as u64 * 64
    }

    /// Whether `counter` has been seen (counter 0 is never a dot and counts as seen).
    #[must_use]
    pub fn contains(&self, counter: u64) -> bool {
        if counter <= self.base {
            return true;
        }
        let off = counter - self.base - 1;
        let (w, b) = (off / 64, off % 64);
        usize::try_from(w)
            .ok()
            .and_then(|w| self.bits.get(w))
            .is_some_and(|word| word >> b & 1 == 1)
    }

    /// Marks `counter` as seen. Returns `false` (and changes nothing) if it lies more than
    /// [`MAX_BITMAP_WORDS`]` · 64` counters past the base.
    pub fn add(&mut self, counter: u64) -> bool {
        if counter <= self.base {
            return true;
        }
        let off = counter - self.base - 1;
        let Ok(w) = usize::try_from(off / 64) else {
            return false;
        };
        if w >= MAX_BITMAP_WORDS {
            return false;
        }
        if self.bits.len() <= w {
            self.bits.resize(w + 1, 0);
        }
        self.bits[w] |= 1 << (off % 64);
        self.normalise();
        true
    }

    /// Folds the run of set bits at the bottom of the bitmap into the base and trims
    /// trailing zero words.
    fn normalise(&mut self) {
        let mut ones: u64 = 0;
        let mut full_words = 0;
        for &w in &self.bits {
            let t = w.trailing_ones();
            ones += u64::from(t);
            if t < 64 {
                break;
            }
            full_words += 1;
        }
        if ones > 0 {
            self.base += ones;
            self.bits.drain(..full_words);
            let s = (ones % 64) as u32;
            if s > 0 {
                shift_right(&mut self.bits, s);
            }
        }
        while self.bits.last() == Some(&0) {
            self.bits.pop();
        }
    }

    /// The 64 counters `start .. start + 64` as a word, bit `i` set if `start + i` is seen
    /// (`start >= 1`).
    fn window(&self, start: u64) -> u64 {
        let off = i128::from(start) - i128::from(self.base) - 1;
        if off <= -64 {
            return u64::MAX;
        }
        if off < 0 {
            let below = (-off) as u32; // 1..=63 counters at or under the base
            return (self.extract(0) << below) | ((1u64 << below) - 1);
        }
        // off >= 0 and start <= u64::MAX, so off fits a u64.
        self.extract(off as u64)
    }

    /// 64 bitmap bits starting at bit `off`.
    fn extract(&self, off: u64) -> u64 {
        let Ok(w) = usize::try_from(off / 64) else {
            return 0;
        };
        let s = (off % 64) as u32;
        let lo = self.bits.get(w).copied().unwrap_or(0);
        if s == 0 {
            return lo;
        }
        let hi = self.bits.get(w + 1).copied().unwrap_or(0);
        (lo >> s) | (hi << (64 - s))
    }

    /// The least upper bound: every counter either has seen.
    #[must_use]
    pub fn join(&self, other: &Entry) -> Entry {
        let base = self.base.max(other.base);
        let end = self.end().max(other.end());
        let words = usize::try_from((end - base).div_ceil(64)).unwrap_or(MAX_BITMAP_WORDS);
        let mut bits: SmallVec<[u64; 1]> = SmallVec::with_capacity(words);
        for i in 0..words as u64 {
            let start = base + 1 + i * 64;
            bits.push(self.window(start) | other.window(start));
        }
        let mut e = Entry { base, bits };
        e.normalise();
        e
    }

    /// Joins `other` into `self`.
    pub fn join_from(&mut self, other: &Entry) {
        if other.base <= self.base && other.bits.is_empty() {
            return;
        }
        *self = self.join(other);
    }

    /// Whether every counter `other` has seen, `self` has seen too.
    #[must_use]
    pub fn dominates(&self, other: &Entry) -> bool {
        self.missing_count(other) == 0
    }

    /// How many counters `self` lacks that `other` has: `|other ∖ self|`, saturating.
    #[must_use]
    pub fn missing_count(&self, other: &Entry) -> u64 {
        let mut n: u64 = 0;
        if other.base > self.base {
            // Counters self.base+1 ..= other.base, minus those in self's bitmap.
            let mut seen: u64 = 0;
            for (i, &word) in self.bits.iter().enumerate() {
                // Bounded at construction: base + 64 · words never overflows.
                let start = self.base + 1 + i as u64 * 64;
                if start > other.base {
                    break;
                }
                let left = other.base - start + 1;
                let mask = if left >= 64 {
                    u64::MAX
                } else {
                    (1u64 << left) - 1
                };
                seen += u64::from((word & mask).count_ones());
            }
            n = other.base - self.base - seen;
        }
        let Some(mut start) = self.base.max(other.base).checked_add(1) else {
            return n;
        };
        while start <= other.end() {
            n = n.saturating_add(u64::from(
                (other.window(start) & !self.window(start)).count_ones(),
            ));
            start = match start.checked_add(64) {
                Some(s) => s,
                None => break,
            };
        }
        n
    }

    /// The counters `other` has seen that `self` has not, in increasing order (lazily: a
    /// hostile base far ahead yields a long iterator, so callers bound what they take).
    pub fn missing_from<'a>(&'a self, other: &'a Entry) -> impl Iterator<Item = u64> + 'a {
        let end = other.end();
        let mut start = self.base.checked_add(1);
        let mut word = 0u64;
        let mut word_start = 0u64;
        std::iter::from_fn(move || {
            loop {
                if word != 0 {
                    let b = word.trailing_zeros();
                    word &= word - 1;
                    return Some(word_start + u64::from(b));
                }
                let s = start?;
                if s > end {
                    return None;
                }
                word = other.window(s) & !self.window(s);
                word_start = s;
                start = s.checked_add(64);
            }
        })
    }

    /// Marks every counter up to the highest one seen as seen: closes the gaps below it
    /// (for the id of a retired node whose missing dots are lost for good).
    pub fn close_gaps(&mut self) {
        if let Some((w, &word)) = self.bits.iter().enumerate().next_back() {
            // The highest set bit of the last (non-zero) word.
            let top = w as u64 * 64 + u64::from(63 - word.leading_zeros());
            self.base += top + 1;
            self.bits.clear();
        }
    }

    /// Raises the base to at least `base` (every counter up to it seen).
    pub fn raise_base(&mut self, base: u64) {
        if base > self.base {
            *self = self.join(&Entry::with_base(base));
        }
    }

    /// Encoded size of the entry in bytes, for metadata accounting.
    #[must_use]
    pub fn wire_len(&self) -> usize {
        epidemic_core::codec::body_len(self)
    }
}

/// Shifts a little-endian multi-word bit vector right by `s` bits (`0 < s < 64`).
fn shift_right(bits: &mut SmallVec<[u64; 1]>, s: u32) {
    let n = bits.len();
    for i in 0..n {
        let hi = if i + 1 < n {
            bits[i + 1] << (64 - s)
        } else {
            0
        };
        bits[i] = (bits[i] >> s) | hi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_papers_example() {
        // (3, 01101₂): seen up to 3, and 5, 6, 8.
        let e = Entry::from_paper(3, "01101").unwrap();
        assert_eq!(e.base(), 3);
        assert_eq!(e.bits(), &[0b10110]);
        let seen: Vec<u64> = (1..=10).filter(|&c| e.contains(c)).collect();
        assert_eq!(seen, [1, 2, 3, 5, 6, 8]);
        // Adding 4 folds 4, 5, 6 into the base; the bitmap keeps 8 as its second bit.
        let mut f = e.clone();
        assert!(f.add(4));
        assert_eq!((f.base(), f.bits()), (6, &[0b10][..]));
        assert!(f.add(7));
        assert_eq!((f.base(), f.bits()), (8, &[][..]));
    }

    #[test]
    fn closing_gaps_takes_the_base_to_the_top() {
        let mut e = Entry::from_paper(3, "01101").unwrap();
        e.close_gaps();
        assert_eq!((e.base(), e.bits()), (8, &[][..]));
        let mut far = Entry::with_base(1);
        assert!(far.add(200));
        far.close_gaps();
        assert_eq!(far.base(), 200);
    }

    #[test]
    fn normalises_across_words() {
        let mut e = Entry::new();
        for c in 2..=130 {
            assert!(e.add(c));
        }
        assert_eq!(e.base(), 0);
        assert_eq!(e.bits().len(), 3);
        assert!(e.add(1));
        assert_eq!((e.base(), e.bits().len()), (130, 0));
    }

    #[test]
    fn refuses_dots_too_far_ahead() {
        let mut e = Entry::with_base(10);
        assert!(!e.add(10 + 1 + MAX_BITMAP_WORDS as u64 * 64));
        assert_eq!(e, Entry::with_base(10));
        assert!(e.add(10 + MAX_BITMAP_WORDS as u64 * 64));
        let mut top = Entry::with_base(u64::MAX - 1);
        assert!(top.add(u64::MAX));
        assert_eq!(top.base(), u64::MAX);
    }

    #[test]
    fn missing_is_the_set_difference() {
        let a = Entry::from_paper(3, "01101").unwrap();
        let b = Entry::from_paper(1, "0001").unwrap(); // 1, 5
        assert_eq!(b.missing_from(&a).collect::<Vec<_>>(), [2, 3, 6, 8]);
        assert_eq!(b.missing_count(&a), 4);
        assert_eq!(a.missing_from(&b).count(), 0);
        assert!(a.dominates(&b));
        assert_eq!(a.join(&b), a);
    }

    #[test]
    fn decode_refuses_unnormalised_entries() {
        let bad = RawEntry {
            base: 3,
            bits: SmallVec::from_slice(&[1]),
        };
        assert_eq!(Entry::try_from(bad), Err(InvalidEntry));
        let trailing = RawEntry {
            base: 3,
            bits: SmallVec::from_slice(&[2, 0]),
        };
        assert_eq!(Entry::try_from(trailing), Err(InvalidEntry));
        let past_end = RawEntry {
            base: u64::MAX - 10,
            bits: SmallVec::from_slice(&[2]),
        };
        assert_eq!(Entry::try_from(past_end), Err(InvalidEntry));
    }
}
