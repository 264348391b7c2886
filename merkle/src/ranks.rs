//! Naming a peer's items compactly in `Done`: by their *rank* in the peer's own list of
//! items under the reconciled nodes (leaf order, key order within a leaf, which is how
//! [`Store::collect`](crate::Store::collect) yields them on both sides), as a Rice-coded
//! increasing sequence. `m` ranks among `n` items cost about `log2(n/m) + 2` bits each
//! instead of an 8-byte key.
//!
//! The side that decoded the difference knows the peer's list without receiving it: it is
//! its own list with the difference applied ([`peer_keys`]).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::store::Item;

/// An increasing sequence of ranks, Rice-coded: each gap to the previous rank (minus one)
/// as a unary quotient and `k` remainder bits, least significant bit first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranks {
    /// Ranks in the sequence.
    pub count: u32,
    /// Remainder bits per gap.
    pub k: u8,
    /// The coded gaps.
    pub bits: Bytes,
}

struct BitWriter {
    out: Vec<u8>,
    used: u32,
}

impl BitWriter {
    fn push(&mut self, bit: bool) {
        if self.used % 8 == 0 {
            self.out.push(0);
        }
        if bit {
            if let Some(last) = self.out.last_mut() {
                *last |= 1 << (self.used % 8);
            }
        }
        self.used += 1;
    }
}

impl Ranks {
    /// Codes `ranks`, which must be strictly increasing (callers sort and dedup them).
    #[must_use]
    pub fn encode(ranks: &[u32]) -> Self {
        let Some(&last) = ranks.last() else {
            return Self::default();
        };
        let mean = (u64::from(last) + 1) / ranks.len() as u64;
        let k = if mean <= 1 {
            0
        } else {
            63 - mean.leading_zeros()
        };
        let mut w = BitWriter {
            out: Vec::with_capacity(ranks.len() * (k as usize + 2) / 8 + 1),
            used: 0,
        };
        let mut prev: i64 = -1;
        for &r in ranks {
            let gap = (i64::from(r) - prev - 1).max(0) as u64;
            prev = i64::from(r);
            for _ in 0..(gap >> k) {
                w.push(true);
            }
            w.push(false);
            for b in 0..k {
                w.push((gap >> b) & 1 == 1);
            }
        }
        Self {
            count: u32::try_from(ranks.len()).unwrap_or(u32::MAX),
            k: k as u8,
            bits: Bytes::from(w.out),
        }
    }

    /// The ranks, or `None` if the coding is malformed, holds more than `max` ranks, or
    /// names a rank at or past `len`.
    #[must_use]
    pub fn decode(&self, len: usize, max: usize) -> Option<Vec<usize>> {
        let count = self.count as usize;
        if count > max || self.k > 32 {
            return None;
        }
        let total = self.bits.len() * 8;
        let bit = |i: usize| (self.bits[i / 8] >> (i % 8)) & 1 == 1;
        let mut pos = 0usize;
        let mut out = Vec::with_capacity(count);
        let mut next = 0usize;
        for _ in 0..count {
            let mut q = 0usize;
            loop {
                if pos >= total {
                    return None;
                }
                pos += 1;
                if !bit(pos - 1) {
                    break;
                }
                q += 1;
            }
            if pos + usize::from(self.k) > total {
                return None;
            }
            let mut rem = 0usize;
            for b in 0..usize::from(self.k) {
                if bit(pos + b) {
                    rem |= 1 << b;
                }
            }
            pos += usize::from(self.k);
            let gap = q.checked_shl(u32::from(self.k))?.checked_add(rem)?;
            let r = next.checked_add(gap)?;
            if r >= len {
                return None;
            }
            out.push(r);
            next = r + 1;
        }
        // Only padding may follow, in the last byte.
        (total - pos < 8).then_some(out)
    }
}

/// The peer's keys under the reconciled nodes, in its order (`leaf`, then key), from ours
/// (`local`, in that order) and the difference: ours minus the keys only we hold, plus the
/// keys only the peer holds.
#[must_use]
pub fn peer_keys(
    local: &[Item],
    remote_only: &[Item],
    local_only: &[Item],
    leaf: impl Fn(u64) -> u32,
) -> Vec<(u32, u64)> {
    let theirs: hashbrown::HashSet<u64> = remote_only.iter().map(|i| i.key).collect();
    let gone: hashbrown::HashSet<u64> = local_only
        .iter()
        .map(|i| i.key)
        .filter(|k| !theirs.contains(k))
        .collect();
    let ours: hashbrown::HashSet<u64> = local_only.iter().map(|i| i.key).collect();
    let mut added: Vec<(u32, u64)> = remote_only
        .iter()
        .filter(|i| !ours.contains(&i.key))
        .map(|i| (leaf(i.key), i.key))
        .collect();
    added.sort_unstable();
    let mut out = Vec::with_capacity(local.len() + added.len());
    let mut add = added.into_iter().peekable();
    for i in local {
        if gone.contains(&i.key) {
            continue;
        }
        let here = (leaf(i.key), i.key);
        while let Some(a) = add.next_if(|a| *a < here) {
            out.push(a);
        }
        out.push(here);
    }
    out.extend(add);
    out
}

/// What `Done` tells the peer ([`done_parts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoneParts {
    /// Ranks of the peer's items whose keys we lack.
    pub gone: Vec<u32>,
    /// Ranks of the peer's items whose keys we hold in another version, with our digests.
    pub changed: Vec<(u32, u64)>,
    /// Our items whose keys the peer lacks.
    pub mine: Vec<Item>,
}

/// What `Done` tells the peer, from the difference and the peer's list `peer` (in its
/// order): the ranks of its items we lack (`gone`), the ranks of its keys we hold in
/// another version with our digests (`changed`, `digests`), and our items whose keys it
/// lacks (`mine`). `None` if an item of `remote_only` is not in `peer`.
#[must_use]
pub fn done_parts(
    peer: &[(u32, u64)],
    remote_only: &[Item],
    local_only: &[Item],
    leaf: impl Fn(u64) -> u32,
) -> Option<DoneParts> {
    let ours: hashbrown::HashMap<u64, u64> = local_only.iter().map(|i| (i.key, i.digest)).collect();
    let theirs: hashbrown::HashSet<u64> = remote_only.iter().map(|i| i.key).collect();
    let (mut gone, mut changed) = (Vec::new(), Vec::new());
    for i in remote_only {
        let rank = peer.binary_search(&(leaf(i.key), i.key)).ok()?;
        let rank = u32::try_from(rank).ok()?;
        match ours.get(&i.key) {
            Some(&d) => changed.push((rank, d)),
            None => gone.push(rank),
        }
    }
    gone.sort_unstable();
    changed.sort_unstable();
    let mine = local_only
        .iter()
        .filter(|i| !theirs.contains(&i.key))
        .copied()
        .collect();
    Some(DoneParts {
        gone,
        changed,
        mine,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_round_trip_and_are_compact() {
        for ranks in [
            vec![],
            vec![0],
            vec![0, 1, 2, 3],
            vec![5, 900, 901, 65_000],
            (0..1000).map(|i| i * 997 + 3).collect::<Vec<u32>>(),
        ] {
            let r = Ranks::encode(&ranks);
            let back: Vec<u32> = r
                .decode(1_000_000, 10_000)
                .unwrap()
                .into_iter()
                .map(|x| x as u32)
                .collect();
            assert_eq!(back, ranks);
        }
        // 1,000 ranks among 10^6: about log2(1000) + 2 bits each, not 8 bytes.
        let r = Ranks::encode(&(0..1000).map(|i| i * 997 + 3).collect::<Vec<_>>());
        assert!(r.bits.len() < 1000 * 12 / 8 + 8, "{}", r.bits.len());
    }

    #[test]
    fn malformed_ranks_are_refused() {
        let r = Ranks::encode(&[3, 10, 20]);
        assert_eq!(r.decode(20, 10), None, "rank 20 is out of range");
        assert_eq!(r.decode(100, 2), None, "over the bound");
        let short = Ranks {
            bits: r.bits.slice(..1),
            ..r.clone()
        };
        assert_eq!(short.decode(100, 10), None);
        let ones = Ranks {
            count: 3,
            k: 0,
            bits: Bytes::from_static(&[0xFF; 4]),
        };
        assert_eq!(ones.decode(1000, 10), None);
        let trailing = Ranks {
            bits: Bytes::from([r.bits.to_vec(), vec![0, 0]].concat()),
            ..r
        };
        assert_eq!(trailing.decode(100, 10), None);
    }

    #[test]
    fn peer_lists_and_done_parts_follow_the_difference() {
        let leaf = |k: u64| (k % 3) as u32;
        let it = |k, d| Item { key: k, digest: d };
        // Ours in (leaf, key) order: leaf 0: 3, 6; leaf 1: 1, 4; leaf 2: 2.
        let local = [it(3, 0), it(6, 0), it(1, 0), it(4, 0), it(2, 0)];
        // The peer lacks 6, holds 4 in another version, and holds 5 and 9 we lack.
        let local_only = [it(6, 0), it(4, 0)];
        let remote_only = [it(4, 1), it(5, 1), it(9, 1)];
        let peer = peer_keys(&local, &remote_only, &local_only, leaf);
        assert_eq!(peer, [(0, 3), (0, 9), (1, 1), (1, 4), (2, 2), (2, 5)]);
        let parts = done_parts(&peer, &remote_only, &local_only, leaf).unwrap();
        assert_eq!(parts.gone, [1, 5]);
        assert_eq!(parts.changed, [(3, 0)]);
        assert_eq!(parts.mine, [it(6, 0)]);
    }
}
