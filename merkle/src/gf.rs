//! Arithmetic in GF(2^64), the field the RIBLT symbols and the syndrome sketch sum in:
//! elements are polynomials of degree below 64 over GF(2), one bit per coefficient;
//! addition is XOR and multiplication is carry-less multiplication reduced modulo the
//! irreducible `x^64 + x^4 + x^3 + x + 1` (the low-weight pentanomial of the NIST/IEEE
//! tables). Portable safe code, no intrinsics:
//!
//! * a general multiplication ([`mul`]) is a carry-less product built from 25 integer
//!   multiplications of operands masked to every fifth bit (the holes absorb the carries,
//!   the trick of BearSSL's `ghash_ctmul64` with a wider spacing so 64-bit operands fit),
//!   then a reduction by shifts;
//! * a squaring ([`square`]) spreads the bits (squaring is linear in characteristic 2);
//! * repeated multiplication by one fixed element uses a per-element table of sixteen
//!   4-bit windows, already reduced, so a product is 16 lookups and XORs
//!   ([`power_sums`], the syndrome kernel, runs four such chains side by side);
//! * an inversion is the extended Euclidean algorithm on polynomials (at most ~128 steps
//!   of a shift and two XORs).

/// The low 64 bits of the reduction polynomial (`x^4 + x^3 + x + 1`); `x^64` is implicit.
const POLY_LOW: u64 = 0b1_1011;

/// Bits `i` with `i % 5 == k`, for `k` in `0..5`, over 128 bits.
const HOLES: [u128; 5] = {
    let mut m = [0u128; 5];
    let mut i = 0;
    while i < 128 {
        m[i % 5] |= 1 << i;
        i += 1;
    }
    m
};

/// The 128-bit carry-less product of `a` and `b`.
///
/// Each operand is split into five parts holding every fifth bit; the integer product of
/// two parts has its true bits at one residue mod 5 and each such column sums at most 13
/// terms, so the carries (at most 4 bits) land in the four holes above it and are masked
/// off. The 25 products are independent, so the latency is a few multiplications.
#[must_use]
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn clmul(a: u64, b: u64) -> u128 {
    let m = |k: usize| HOLES[k] as u64;
    let a = [a & m(0), a & m(1), a & m(2), a & m(3), a & m(4)];
    let b = [b & m(0), b & m(1), b & m(2), b & m(3), b & m(4)];
    let p = |i: usize, j: usize| u128::from(a[i]) * u128::from(b[j]);
    let z0 = p(0, 0) ^ p(1, 4) ^ p(2, 3) ^ p(3, 2) ^ p(4, 1);
    let z1 = p(0, 1) ^ p(1, 0) ^ p(2, 4) ^ p(3, 3) ^ p(4, 2);
    let z2 = p(0, 2) ^ p(1, 1) ^ p(2, 0) ^ p(3, 4) ^ p(4, 3);
    let z3 = p(0, 3) ^ p(1, 2) ^ p(2, 1) ^ p(3, 0) ^ p(4, 4);
    let z4 = p(0, 4) ^ p(1, 3) ^ p(2, 2) ^ p(3, 1) ^ p(4, 0);
    (z0 & HOLES[0]) | (z1 & HOLES[1]) | (z2 & HOLES[2]) | (z3 & HOLES[3]) | (z4 & HOLES[4])
}

/// `x` reduced modulo the field polynomial.
#[must_use]
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn reduce(x: u128) -> u64 {
    let hi = (x >> 64) as u64;
    let lo = x as u64;
    // x^64 ≡ x^4 + x^3 + x + 1: fold the high half in, then the ≤ 4 bits that overflow.
    let fold = |h: u64| h ^ (h << 1) ^ (h << 3) ^ (h << 4);
    let over = (hi >> 63) ^ (hi >> 61) ^ (hi >> 60);
    lo ^ fold(hi) ^ fold(over)
}

/// `a · b` in GF(2^64).
#[must_use]
pub fn mul(a: u64, b: u64) -> u64 {
    reduce(clmul(a, b))
}

/// `x · x` in GF(2^64): the carry-less square of `x` is `x` with a zero bit interleaved
/// after every bit (cross terms cancel in characteristic 2), then reduced.
#[must_use]
#[allow(clippy::cast_possible_truncation)]
pub fn square(x: u64) -> u64 {
    /// The 32 bits of `x` moved to the even bit positions.
    fn spread(x: u32) -> u64 {
        let mut x = u64::from(x);
        x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
        x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
        x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        x = (x | (x << 2)) & 0x3333_3333_3333_3333;
        (x | (x << 1)) & 0x5555_5555_5555_5555
    }
    reduce((u128::from(spread((x >> 32) as u32)) << 64) | u128::from(spread(x as u32)))
}

/// `x^e` in GF(2^64) by square and multiply (`x^0 = 1`, including `0^0`).
#[must_use]
pub fn pow(x: u64, e: u64) -> u64 {
    let mut r = 1u64;
    for bit in (0..64 - e.leading_zeros()).rev() {
        r = square(r);
        if (e >> bit) & 1 == 1 {
            r = mul(r, x);
        }
    }
    r
}

/// `x · z^s` in GF(2^64) for `s` in `1..=4`: a shift, and the reduction of the `s` bits
/// shifted out (`h·z^64 = h·(z^4 + z^3 + z + 1)`, below 2^8 for `h` below 2^4).
#[must_use]
const fn times_z(x: u64, s: u32) -> u64 {
    let h = x >> (64 - s);
    (x << s) ^ h ^ (h << 1) ^ (h << 3) ^ (h << 4)
}

/// Multiplication by one fixed element `x`: `table[k][n] = n · z^(4k) · x`, reduced, so
/// `y · x` is the XOR of `table[k][nibble k of y]` over the sixteen nibbles. Building it
/// costs about as much as 10 multiplications; each product after that is 16 lookups.
#[derive(Clone, Debug)]
pub(crate) struct MulBy {
    table: [[u64; 16]; 16],
}

impl MulBy {
    /// The table for multiplying by `x`.
    pub(crate) fn new(x: u64) -> Self {
        let mut t = Self {
            table: [[0u64; 16]; 16],
        };
        t.set(x);
        t
    }

    /// Rebuilds the table in place for multiplying by `x` (no allocation, no copy).
    pub(crate) fn set(&mut self, x: u64) {
        let mut c = x;
        for row in &mut self.table {
            // The four basis products of this window, and the next window's first one
            // straight from c0, so the serial chain is 16 steps, not 64.
            let c0 = c;
            let c1 = times_z(c0, 1);
            let c2 = times_z(c0, 2);
            let c3 = times_z(c0, 3);
            c = times_z(c0, 4);
            row[0] = 0;
            row[1] = c0;
            row[2] = c1;
            row[3] = c1 ^ c0;
            row[4] = c2;
            row[5] = c2 ^ c0;
            row[6] = c2 ^ c1;
            row[7] = c2 ^ c1 ^ c0;
            for n in 0..8 {
                row[8 + n] = c3 ^ row[n];
            }
        }
    }

    /// `y · x`.
    #[inline]
    pub(crate) fn mul(&self, y: u64) -> u64 {
        let mut r = 0;
        for (k, row) in self.table.iter().enumerate() {
            r ^= row[((y >> (4 * k)) & 0xF) as usize];
        }
        r
    }
}

/// Multiplication by one fixed element with 8-bit windows: `table[k][b] = b · z^(8k) · x`,
/// reduced, so a product is 8 lookups. The table (16 KiB) costs about four times a
/// `MulBy` to build (it is made from one), so it pays for scalar-times-vector products of
/// a hundred or more coefficients.
#[derive(Clone, Debug)]
pub(crate) struct MulBy8 {
    table: Box<[[u64; 256]; 8]>,
}

impl MulBy8 {
    /// An empty table (multiplying by zero); fill it with [`MulBy8::set`].
    pub(crate) fn new() -> Self {
        Self {
            table: Box::new([[0u64; 256]; 8]),
        }
    }

    /// Rebuilds the table for the element `small` multiplies by.
    pub(crate) fn set(&mut self, small: &MulBy) {
        for (k, row) in self.table.iter_mut().enumerate() {
            let lo = &small.table[2 * k];
            let hi = &small.table[2 * k + 1];
            for (chunk, &h) in row.chunks_exact_mut(16).zip(hi) {
                for (d, &l) in chunk.iter_mut().zip(lo) {
                    *d = l ^ h;
                }
            }
        }
    }

    /// `y · x`.
    #[inline]
    pub(crate) fn mul(&self, y: u64) -> u64 {
        let mut r = 0;
        for (k, row) in self.table.iter().enumerate() {
            r ^= row[((y >> (8 * k)) & 0xFF) as usize];
        }
        r
    }
}

/// Below this many syndromes a call multiplies directly instead of building a table per
/// point.
const TABLE_MIN_SYNDROMES: usize = 8;

/// Adds the power sums of `points` to `out`: for each `j` in `0..out.len()`,
/// `out[j] ^= Σ_i w_i · x_i^(from + j)` where `points` are the pairs `(x_i, w_i)`. These
/// are the syndromes `from..from + out.len()` of the set of pairs, so a sketch can be
/// extended later by calling again with `from` = the number already computed.
///
/// The hot loop of the syndrome sketch: each point multiplies its running term by its
/// own `x_i` once per syndrome, through a per-point table of 4-bit windows, four points side by
/// side so that the four chains of dependent multiplications overlap.
pub fn power_sums(points: &[(u64, u64)], from: u64, out: &mut [u64]) {
    if out.is_empty() {
        return;
    }
    let mut running: Vec<u64> = points
        .iter()
        .map(|&(x, w)| match from {
            0 => w,
            _ => mul(w, pow(x, from)),
        })
        .collect();
    power_sums_running(points, &mut running, out);
}

/// Like [`power_sums`] from a running term per point: on entry `running[i]` is
/// `w_i · x_i^from`, on exit `w_i · x_i^(from + out.len())`, so a sketch that extends a
/// set a few syndromes at a time pays no power per point per call.
///
/// # Panics
/// If `running` and `points` differ in length (a caller's broken invariant).
pub fn power_sums_running(points: &[(u64, u64)], running: &mut [u64], out: &mut [u64]) {
    assert_eq!(points.len(), running.len(), "one running term per point");
    if out.is_empty() {
        return;
    }
    if out.len() < TABLE_MIN_SYNDROMES {
        for (&(x, _), v) in points.iter().zip(running.iter_mut()) {
            for o in out.iter_mut() {
                *o ^= *v;
                *v = mul(*v, x);
            }
        }
        return;
    }
    let mut t = [MulBy::new(0), MulBy::new(0), MulBy::new(0), MulBy::new(0)];
    let mut quads = points.chunks_exact(4);
    let mut runs = running.chunks_exact_mut(4);
    for (q, r) in (&mut quads).zip(&mut runs) {
        for (t, &(x, _)) in t.iter_mut().zip(q) {
            t.set(x);
        }
        let mut v = [r[0], r[1], r[2], r[3]];
        for o in out.iter_mut() {
            *o ^= v[0] ^ v[1] ^ v[2] ^ v[3];
            v = [
                t[0].mul(v[0]),
                t[1].mul(v[1]),
                t[2].mul(v[2]),
                t[3].mul(v[3]),
            ];
        }
        r.copy_from_slice(&v);
    }
    let t = &mut t[0];
    for (&(x, _), v) in quads.remainder().iter().zip(runs.into_remainder()) {
        t.set(x);
        for o in out.iter_mut() {
            *o ^= *v;
            *v = t.mul(*v);
        }
    }
}

/// `a^(-1)` in GF(2^64), or `None` for zero.
#[must_use]
pub fn inv(a: u64) -> Option<u64> {
    if a <= 1 {
        return (a == 1).then_some(1);
    }
    // Extended Euclid (Hankerson, Menezes, Vanstone, Algorithm 2.48) with the invariants
    // g1·a ≡ u and g2·a ≡ v (mod p); each step cancels the leading term of the longer of
    // u, v. The first step, u = p ⊕ x^j·a, is done by hand so that everything after fits
    // in 64 bits (the degrees of u, v, g1, g2 stay below 64).
    let j = 64 - (63 - a.leading_zeros());
    let mut u = (((1u128 << 64) | u128::from(POLY_LOW)) ^ (u128::from(a) << j)) as u64;
    let mut g1 = 1u64 << j;
    let (mut v, mut g2) = (a, 1u64);
    // At most ~128 steps for an irreducible p; the bound only guards the loop.
    for _ in 0..512 {
        if u == 1 {
            return Some(g1);
        }
        if u == 0 {
            break;
        }
        let du = 63 - u.leading_zeros();
        let dv = 63 - v.leading_zeros();
        if du < dv {
            std::mem::swap(&mut u, &mut v);
            std::mem::swap(&mut g1, &mut g2);
        }
        let j = du.abs_diff(dv);
        u ^= v << j;
        g1 ^= g2 << j;
    }
    None
}

/// Inverts the nonzero second fields of `items` into their third, with one inversion and
/// three multiplications each (Montgomery's trick: invert the product of all, then peel
/// the factors off from the end).
pub fn batch_inv<T>(items: &mut [(T, u64, u64)]) {
    let mut acc = 1u64;
    for it in items.iter_mut() {
        // The prefix product before this element, kept in its output slot for now.
        it.2 = acc;
        acc = mul(acc, it.1);
    }
    // A zero factor makes the product zero: callers pass nonzero values only.
    let Some(mut inv_acc) = inv(acc) else {
        return;
    };
    for it in items.iter_mut().rev() {
        let prefix = it.2;
        it.2 = mul(inv_acc, prefix);
        inv_acc = mul(inv_acc, it.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow_mul(a: u64, b: u64) -> u64 {
        // Shift-and-add with reduction at every step.
        let (mut a, mut b, mut r) = (a, b, 0u64);
        while b != 0 {
            if b & 1 == 1 {
                r ^= a;
            }
            let carry = a >> 63;
            a = (a << 1) ^ (carry * POLY_LOW);
            b >>= 1;
        }
        r
    }

    #[test]
    fn multiplication_matches_shift_and_add() {
        let mut x = 0x0123_4567_89ab_cdefu64;
        for _ in 0..2_000 {
            x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0x55;
            let y = x.rotate_left(31).wrapping_add(7);
            assert_eq!(mul(x, y), slow_mul(x, y));
            assert_eq!(mul(x, y), mul(y, x));
        }
        assert_eq!(mul(u64::MAX, u64::MAX), slow_mul(u64::MAX, u64::MAX));
        assert_eq!(mul(1 << 63, 2), POLY_LOW);
        assert_eq!(mul(0, 5), 0);
    }

    #[test]
    fn inverses_multiply_to_one() {
        assert_eq!(inv(0), None);
        assert_eq!(inv(1), Some(1));
        let mut x = 1u64;
        for _ in 0..2_000 {
            x = x.wrapping_mul(0xda94_2042_e4dd_58b5).wrapping_add(3);
            let i = inv(x).unwrap();
            assert_eq!(mul(x, i), 1, "{x:#x}");
        }
        for x in [2u64, 3, u64::MAX, 1 << 63, POLY_LOW] {
            assert_eq!(mul(x, inv(x).unwrap()), 1);
        }
    }

    #[test]
    fn batch_inversion_matches_one_by_one() {
        let mut items: Vec<((), u64, u64)> = (1..300u64)
            .map(|i| ((), i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, 0))
            .collect();
        batch_inv(&mut items);
        for &(_, a, i) in &items {
            assert_eq!(Some(i), inv(a));
        }
        let mut none: Vec<((), u64, u64)> = Vec::new();
        batch_inv(&mut none);
    }

    #[test]
    fn multiplication_distributes_over_xor() {
        // What the symbols rely on: k·v1 ⊕ k·v2 = k·(v1 ⊕ v2).
        let (k, v1, v2) = (
            0xdead_beef_1234_5678u64,
            0x1111_2222_3333_4444,
            0xffff_0000_abcd_0001,
        );
        assert_eq!(mul(k, v1) ^ mul(k, v2), mul(k, v1 ^ v2));
        assert_eq!(mul(mul(k, v1 ^ v2), inv(v1 ^ v2).unwrap()), k);
    }

    #[test]
    fn square_and_pow_match_multiplication() {
        let mut x = 0x0123_4567_89ab_cdefu64;
        for _ in 0..1_000 {
            x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0x55;
            assert_eq!(square(x), slow_mul(x, x));
            let e = x >> 57;
            let mut naive = 1u64;
            for _ in 0..e {
                naive = slow_mul(naive, x);
            }
            assert_eq!(pow(x, e), naive);
        }
        assert_eq!(pow(0, 0), 1);
        assert_eq!(pow(0, 5), 0);
        assert_eq!(pow(7, 1), 7);
        // The multiplicative group has order 2^64 - 1.
        assert_eq!(pow(0xdead_beef, u64::MAX), 1);
        assert_eq!(square(u64::MAX), slow_mul(u64::MAX, u64::MAX));
    }

    #[test]
    fn table_multiplication_matches() {
        let mut x = 7u64;
        for _ in 0..200 {
            x = x.wrapping_mul(0xda94_2042_e4dd_58b5).wrapping_add(3);
            let t = MulBy::new(x);
            let mut y = x.rotate_left(9);
            for _ in 0..20 {
                y = y.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
                assert_eq!(t.mul(y), slow_mul(x, y));
            }
            assert_eq!(t.mul(u64::MAX), slow_mul(x, u64::MAX));
            let mut t8 = MulBy8::new();
            t8.set(&t);
            for y in [0, 1, u64::MAX, x, y, y.rotate_left(13)] {
                assert_eq!(t8.mul(y), slow_mul(x, y));
            }
        }
    }

    /// `out[j] ^= Σ w x^(from + j)` one multiplication at a time.
    fn naive_power_sums(points: &[(u64, u64)], from: u64, out: &mut [u64]) {
        for &(x, w) in points {
            let mut v = w;
            for _ in 0..from {
                v = slow_mul(v, x);
            }
            for o in out.iter_mut() {
                *o ^= v;
                v = slow_mul(v, x);
            }
        }
    }

    #[test]
    fn power_sums_match_naive() {
        let mut r = 99u64;
        let mut next = move || {
            r = r
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(0x0001_2345);
            r ^ (r >> 29)
        };
        for n in [0usize, 1, 3, 4, 5, 9, 30] {
            let points: Vec<(u64, u64)> = (0..n).map(|_| (next(), next())).collect();
            for from in [0u64, 1, 2, 13, 64] {
                for len in [0usize, 1, 7, 8, 9, 40] {
                    let seed: Vec<u64> = (0..len).map(|_| next()).collect();
                    let (mut fast, mut slow) = (seed.clone(), seed);
                    power_sums(&points, from, &mut fast);
                    naive_power_sums(&points, from, &mut slow);
                    assert_eq!(fast, slow, "n {n} from {from} len {len}");
                }
            }
        }
        // Zero locators and values are fine too.
        let points = [(0u64, 5u64), (3, 0), (0, 0), (1, 1), (2, 9)];
        let (mut fast, mut slow) = (vec![0u64; 10], vec![0u64; 10]);
        power_sums(&points, 0, &mut fast);
        naive_power_sums(&points, 0, &mut slow);
        assert_eq!(fast, slow);
    }

    #[test]
    fn running_power_sums_continue_where_they_stopped() {
        let points: Vec<(u64, u64)> = (1..=11u64)
            .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i * 7 + 1))
            .collect();
        // Steps below and above the table threshold, from running terms at x^0.
        let mut running: Vec<u64> = points.iter().map(|p| p.1).collect();
        let mut from = 0u64;
        for len in [3usize, 9, 1, 20, 7] {
            let (mut fast, mut slow) = (vec![0u64; len], vec![0u64; len]);
            power_sums_running(&points, &mut running, &mut fast);
            naive_power_sums(&points, from, &mut slow);
            assert_eq!(fast, slow, "from {from} len {len}");
            from += len as u64;
        }
        for (&(x, w), &r) in points.iter().zip(&running) {
            assert_eq!(r, mul(w, pow(x, from)));
        }
    }
}
