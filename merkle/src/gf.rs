//! Arithmetic in GF(2^64), the field the RIBLT symbols sum in: elements are polynomials of
//! degree below 64 over GF(2), one bit per coefficient; addition is XOR and multiplication
//! is carry-less multiplication reduced modulo the irreducible `x^64 + x^4 + x^3 + x + 1`
//! (the low-weight pentanomial of the NIST/IEEE tables). Portable code, no intrinsics:
//! a multiplication is a 4-bit windowed carry-less product (16 steps) and a reduction by
//! shifts; an inversion is the extended Euclidean algorithm on polynomials (at most ~128
//! steps of a shift and two XORs).

/// The low 64 bits of the reduction polynomial (`x^4 + x^3 + x + 1`); `x^64` is implicit.
const POLY_LOW: u64 = 0b1_1011;

/// The 128-bit carry-less product of `a` and `b`.
#[must_use]
fn clmul(a: u64, b: u64) -> u128 {
    // The 16 multiples of `a` by 4-bit polynomials, then one window of `b` per step.
    let a = u128::from(a);
    let mut table = [0u128; 16];
    for i in 1..16usize {
        table[i] = if i & 1 == 1 {
            table[i - 1] ^ a
        } else {
            table[i / 2] << 1
        };
    }
    let mut r = 0u128;
    let mut shift = 60;
    loop {
        r = (r << 4) ^ table[((b >> shift) & 0xF) as usize];
        if shift == 0 {
            return r;
        }
        shift -= 4;
    }
}

/// `x` reduced modulo the field polynomial.
#[must_use]
fn reduce(x: u128) -> u64 {
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
}
