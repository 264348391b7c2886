//! Polynomials over GF(2^64) for the syndrome sketch: the shortest linear recurrence of a
//! syndrome sequence (Berlekamp–Massey), its roots, and the values at those roots.
//!
//! A set of differences `{(X_k, w_k)}` (distinct nonzero locators, nonzero values) has
//! the syndromes `s_j = Σ_k w_k · X_k^j` ([`crate::gf::power_sums`]). Their generating
//! function is `Σ_k w_k / (1 − X_k z)`, a rational function whose denominator
//! `C(z) = Π_k (1 − X_k z)` is the connection polynomial of the shortest linear recurrence
//! of the sequence; [`decode`] finds `C` from `2L` syndromes ([`berlekamp_massey`]), the
//! locators as the roots of its reversal ([`distinct_roots`]), the values by Forney's
//! formula, and then checks every syndrome it was given against the set it found, so
//! extra syndromes make a wrong answer (too few syndromes for the true set) detectable.
//!
//! Polynomials are coefficient slices, low degree first (`p[i]` is the coefficient of
//! `z^i`). Nothing here panics on any input, and the work is bounded by the input length
//! (root finding gives up after 64 fruitless random splits in a row).

use crate::gf::{self, MulBy, MulBy8, mul, square};

/// From this many coefficients on, a scalar times a vector builds a multiplication table
/// for the scalar first (the table costs about as much as ten plain multiplications).
const TABLE_MIN_LEN: usize = 16;

/// The seed [`decode`] gives [`distinct_roots`]: any value works, it only has to be fixed
/// so that decoding is deterministic.
const ROOT_SEED: u64 = 0x5eed_5eed_5ca1_ab1e;

/// After this many random trace splits in a row that split nothing, a polynomial is taken
/// not to split (for a polynomial that does split, each try separates any two roots with
/// probability 1/2, so 64 failures in a row have probability below 2^-64).
const MAX_STALLS: u32 = 64;

/// From this many coefficients on, a scalar times a vector uses 8-bit windows.
const TABLE8_MIN_LEN: usize = 128;

/// Multiplication tables reused from one scalar to the next (no allocation per use).
#[derive(Debug)]
struct Scratch {
    t4: MulBy,
    t8: Option<MulBy8>,
}

impl Scratch {
    fn new() -> Self {
        Self {
            t4: MulBy::new(0),
            t8: None,
        }
    }
}

/// `dst[i] ^= q · src[i]` for the common length.
fn axpy(t: &mut Scratch, dst: &mut [u64], q: u64, src: &[u64]) {
    match q {
        0 => {}
        1 => dst.iter_mut().zip(src).for_each(|(d, &s)| *d ^= s),
        _ if src.len() >= TABLE8_MIN_LEN => {
            t.t4.set(q);
            let t8 = t.t8.get_or_insert_with(MulBy8::new);
            t8.set(&t.t4);
            dst.iter_mut().zip(src).for_each(|(d, &s)| *d ^= t8.mul(s));
        }
        _ if src.len() >= TABLE_MIN_LEN => {
            t.t4.set(q);
            dst.iter_mut()
                .zip(src)
                .for_each(|(d, &s)| *d ^= t.t4.mul(s));
        }
        _ => dst.iter_mut().zip(src).for_each(|(d, &s)| *d ^= mul(q, s)),
    }
}

/// Drops zero high coefficients.
fn trim(p: &mut Vec<u64>) {
    while p.last() == Some(&0) {
        p.pop();
    }
}

/// Scales a trimmed nonzero `p` so its leading coefficient is 1 (the zero polynomial is
/// left alone).
fn make_monic(t: &mut Scratch, p: &mut [u64]) {
    let Some(&lead) = p.last() else { return };
    if lead == 1 {
        return;
    }
    let Some(li) = gf::inv(lead) else { return };
    if p.len() >= TABLE_MIN_LEN {
        t.t4.set(li);
        p.iter_mut().for_each(|c| *c = t.t4.mul(*c));
    } else {
        p.iter_mut().for_each(|c| *c = mul(*c, li));
    }
}

/// `r mod p` in place for a monic `p` of degree `n = p.len() − 1` (`r` ends with at most
/// `n` coefficients, not trimmed).
fn rem_monic(t: &mut Scratch, r: &mut Vec<u64>, p: &[u64]) {
    let n = p.len().saturating_sub(1);
    let rows = r.len().saturating_sub(n);
    if n < TABLE_MIN_LEN && rows >= 2 * TABLE_MIN_LEN {
        // A low-degree divisor and many rows: a table per coefficient of `p`, built once,
        // instead of a plain multiplication per coefficient per row.
        let tables: Vec<MulBy> = p[..n].iter().map(|&c| MulBy::new(c)).collect();
        while r.len() > n {
            let Some(q) = r.pop() else { break };
            let i = r.len();
            if q != 0 {
                for (d, t) in r[i - n..i].iter_mut().zip(&tables) {
                    *d ^= t.mul(q);
                }
            }
        }
        return;
    }
    while r.len() > n {
        let Some(q) = r.pop() else { break };
        // Cancel q·z^i (i = r.len()) with q·z^(i − n)·p.
        let i = r.len();
        axpy(t, &mut r[i - n..i], q, &p[..n]);
    }
}

/// Squaring modulo a fixed monic `p` of degree `n ≥ 2`. Squaring is linear in
/// characteristic 2 (the square of `Σ a_i z^i` is `Σ a_i² z^(2i)`), so with the
/// reductions `z^(n+j) mod p` computed once, a square modulo `p` is `n/2` scalar-times-
/// vector products: half the work of reducing the spread square row by row, since only
/// its even coefficients are nonzero.
#[derive(Debug)]
struct SquareMod {
    n: usize,
    /// Row `j` (`n` coefficients each) is `z^(n+j) mod p`, for `j` in `0..n − 1`.
    high: Vec<u64>,
}

impl SquareMod {
    fn new(t: &mut Scratch, p: &[u64]) -> Self {
        let n = p.len().saturating_sub(1);
        let mut high = Vec::with_capacity(n * n.saturating_sub(1));
        // z^n ≡ p[..n] (−1 = 1); each next row is z times the previous one, reduced.
        let mut row = p[..n].to_vec();
        for _ in 0..n.saturating_sub(1) {
            high.extend_from_slice(&row);
            let top = row.pop().unwrap_or(0);
            row.insert(0, 0);
            axpy(t, &mut row, top, &p[..n]);
        }
        Self { n, high }
    }

    /// `a² mod p` into `out` (`n` coefficients), for `a` of at most `n` coefficients.
    fn square(&self, t: &mut Scratch, a: &[u64], out: &mut Vec<u64>) {
        let n = self.n;
        out.clear();
        out.resize(n, 0);
        for (i, &c) in a.iter().enumerate() {
            let c = square(c);
            let d = 2 * i;
            if d < n {
                out[d] ^= c;
            } else if let Some(q) = self.high.get((d - n) * n..(d - n + 1) * n) {
                axpy(t, out, c, q);
            }
        }
    }
}

/// The monic greatest common divisor of `a` and `b` (empty when both are zero).
fn gcd(t: &mut Scratch, mut a: Vec<u64>, mut b: Vec<u64>) -> Vec<u64> {
    trim(&mut a);
    trim(&mut b);
    while !b.is_empty() {
        make_monic(t, &mut b);
        rem_monic(t, &mut a, &b);
        trim(&mut a);
        std::mem::swap(&mut a, &mut b);
    }
    make_monic(t, &mut a);
    a
}

/// `p / g` for a monic `g` dividing `p` (the remainder is dropped).
fn div_monic(t: &mut Scratch, p: &[u64], g: &[u64]) -> Vec<u64> {
    let n = g.len().saturating_sub(1);
    if p.len() <= n {
        return Vec::new();
    }
    let mut r = p.to_vec();
    let mut q = vec![0u64; p.len() - n];
    for i in (n..r.len()).rev() {
        let c = r[i];
        q[i - n] = c;
        axpy(t, &mut r[i - n..i], c, &g[..n]);
    }
    q
}

/// `p(y)` by Horner's rule.
fn eval(t: &mut Scratch, p: &[u64], y: u64) -> u64 {
    if p.len() >= TABLE_MIN_LEN {
        t.t4.set(y);
        p.iter().rev().fold(0, |acc, &c| t.t4.mul(acc) ^ c)
    } else {
        p.iter().rev().fold(0, |acc, &c| mul(acc, y) ^ c)
    }
}

/// SplitMix64's output function, for the split constants of [`distinct_roots`].
fn mix(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The connection polynomial `C = [1, c_1, …, c_L]` of the shortest linear recurrence
/// generating `s`: `s_j = Σ_{i=1..L} c_i · s_(j−i)` for every `L ≤ j < s.len()`
/// (Berlekamp–Massey, `O(len²)` multiplications). The result has exactly `L + 1`
/// coefficients, `L` being the linear complexity of `s` ([`linear_complexity`]); `c_L`
/// can be zero, which no set of nonzero locators produces. All zeros (or empty) give
/// `[1]`.
#[must_use]
pub fn berlekamp_massey(s: &[u64]) -> Vec<u64> {
    let mut c = vec![1u64];
    // The connection polynomial before the last length change, and its discrepancy's
    // inverse; `m` counts the steps since.
    let mut b = vec![1u64];
    let mut b_inv = 1u64;
    let mut m = 1usize;
    let mut l = 0usize;
    let mut prev = Vec::new();
    let mut t = Scratch::new();
    for (n, &sn) in s.iter().enumerate() {
        // The discrepancy: one reduction for the whole sum of carry-less products.
        // (`c.len() − 1 = l ≤ n`, so every index is in range.)
        let mut acc = u128::from(sn);
        for (&ci, &sj) in c.iter().skip(1).zip(s[..n].iter().rev()) {
            acc ^= gf::clmul(ci, sj);
        }
        let d = gf::reduce(acc);
        if d == 0 {
            m += 1;
            continue;
        }
        let coef = mul(d, b_inv);
        let grow = 2 * l <= n;
        if grow {
            prev.clone_from(&c);
        }
        if c.len() < b.len() + m {
            c.resize(b.len() + m, 0);
        }
        axpy(&mut t, &mut c[m..], coef, &b);
        if grow {
            l = n + 1 - l;
            std::mem::swap(&mut b, &mut prev);
            b_inv = gf::inv(d).unwrap_or(0);
            m = 1;
        } else {
            m += 1;
        }
        // deg C ≤ L always holds; keep exactly L + 1 coefficients.
        c.resize(l + 1, 0);
    }
    c
}

/// The linear complexity of `s`: the length `L` of its shortest linear recurrence. For
/// the syndromes of a set of `L` differences it is `L` once `s.len() ≥ 2L`; for a prefix
/// too short to pin the set down (or for noise) it is about `s.len() / 2`.
#[must_use]
pub fn linear_complexity(s: &[u64]) -> usize {
    berlekamp_massey(s).len() - 1
}

/// All the roots of `p` in GF(2^64), sorted, if `p` (its zero high coefficients
/// dropped) is a product of distinct linear factors; `None` otherwise, and for the zero
/// polynomial. A nonzero constant has no roots: `Some(vec![])`.
///
/// First `z^(2^64) ≡ z (mod p)` is checked with 64 squarings modulo `p`: `z^(2^64) − z` is
/// the product of `z − a` over the whole field, so this holds exactly when `p` is
/// squarefree and splits. Then Berlekamp's trace algorithm splits `p`: for a constant
/// `β`, `Tr(βz) = Σ_{i<64} (βz)^(2^i)` is 0 or 1 at each root, so `gcd(q, Tr(βz) mod q)`
/// separates the roots of a factor `q` by the trace of `β·root`. The constants `β` come
/// from `seed` (the result does not depend on it, only the work does); `Tr(βz) mod p` is a
/// combination of the `z^(2^i) mod p` the check computed, and each factor reduces it.
/// `O(64·n²)` multiplications for the check, `O(n² log n)` more for the splits.
#[must_use]
pub fn distinct_roots(p: &[u64], seed: u64) -> Option<Vec<u64>> {
    let mut p = p.to_vec();
    trim(&mut p);
    if p.is_empty() {
        return None;
    }
    let mut t = Scratch::new();
    make_monic(&mut t, &mut p);
    let n = p.len() - 1;
    match n {
        0 => return Some(Vec::new()),
        // z + c has the root c (−c = c in characteristic 2).
        1 => return Some(vec![p[0]]),
        _ => {}
    }
    // zs[i] = z^(2^i) mod p for i in 0..64, each with n coefficients.
    let mut zs: Vec<Vec<u64>> = Vec::with_capacity(64);
    let mut z = vec![0u64; n];
    z[1] = 1;
    let squarer = SquareMod::new(&mut t, &p);
    for _ in 0..64 {
        let mut next = Vec::with_capacity(n);
        squarer.square(&mut t, &z, &mut next);
        zs.push(z);
        z = next;
    }
    if z != zs[0] {
        return None;
    }
    let mut roots = Vec::with_capacity(n);
    let mut pending = vec![p];
    let mut next = Vec::new();
    let mut trace = vec![0u64; n];
    let mut state = seed;
    let mut stalls = 0u32;
    while !pending.is_empty() {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut beta = mix(state);
        trace.fill(0);
        for zi in &zs {
            axpy(&mut t, &mut trace, beta, zi);
            beta = square(beta);
        }
        let mut progress = false;
        for q in pending.drain(..) {
            let mut r = trace.clone();
            rem_monic(&mut t, &mut r, &q);
            let g = gcd(&mut t, q.clone(), r);
            if g.len() > 1 && g.len() < q.len() {
                progress = true;
                next.push(div_monic(&mut t, &q, &g));
                next.push(g);
            } else {
                next.push(q);
            }
        }
        for f in next.drain(..) {
            if f.len() == 2 {
                roots.push(f[0]);
            } else {
                pending.push(f);
            }
        }
        if progress {
            stalls = 0;
        } else {
            stalls += 1;
            if stalls >= MAX_STALLS {
                return None;
            }
        }
    }
    roots.sort_unstable();
    Some(roots)
}

/// The set `{(X_k, w_k)}` (sorted by `X_k`) whose syndromes are `s` (`s_j = Σ_k w_k ·
/// X_k^j`), or `None`.
///
/// `L` is the linear complexity of `s`; `None` unless `s.len() ≥ 2L + verify` (fewer
/// syndromes cannot pin a set of `L` down: the caller computes more and tries again).
/// Then the locators are the roots of `z^L·C(1/z)` (there must be `L` distinct nonzero
/// ones), the values come from Forney's formula `w_k = X_k·Ω(X_k⁻¹)/C′(X_k⁻¹)` with
/// `Ω = S·C mod z^L` (each must be nonzero), and every syndrome in `s` is recomputed from
/// the pairs found: any mismatch gives `None`. So a returned set always reproduces `s`
/// exactly, and `verify` syndromes beyond the `2L` needed guard against a set of more
/// than `s.len() / 2` differences that happens to look like a smaller one (chance about
/// `2^(−64·verify)`). All-zero `s` gives the empty set. `O(len²)` plus the root finding.
#[must_use]
pub fn decode(s: &[u64], verify: usize) -> Option<Vec<(u64, u64)>> {
    if s.iter().all(|&x| x == 0) {
        return Some(Vec::new());
    }
    let c = berlekamp_massey(s);
    let l = c.len() - 1;
    if s.len() < l.checked_mul(2)?.checked_add(verify)? || c[l] == 0 {
        return None;
    }
    let reversed: Vec<u64> = c.iter().rev().copied().collect();
    let xs = distinct_roots(&reversed, ROOT_SEED)?;
    if xs.len() != l {
        return None;
    }
    // Ω = S·C mod z^L, one reduction per coefficient.
    let omega: Vec<u64> = (0..l)
        .map(|i| {
            let acc = c[..=i]
                .iter()
                .zip(s[..=i].iter().rev())
                .fold(0u128, |acc, (&cj, &sj)| acc ^ gf::clmul(cj, sj));
            gf::reduce(acc)
        })
        .collect();
    // C′(z) = Σ_{i odd} c_i z^(i−1) in characteristic 2: a polynomial in z².
    let odd: Vec<u64> = c.iter().skip(1).step_by(2).copied().collect();
    let mut pairs = Vec::with_capacity(l);
    let mut t = Scratch::new();
    for &x in &xs {
        let xi = gf::inv(x)?;
        let den = gf::inv(eval(&mut t, &odd, square(xi)))?;
        let w = mul(x, mul(eval(&mut t, &omega, xi), den));
        if w == 0 {
            return None;
        }
        pairs.push((x, w));
    }
    let mut check = vec![0u64; s.len()];
    gf::power_sums(&pairs, 0, &mut check);
    (check == s).then_some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SplitMix64 stream for test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            mix(self.0)
        }

        /// `n` distinct nonzero values.
        fn distinct(&mut self, n: usize) -> Vec<u64> {
            let mut v: Vec<u64> = Vec::with_capacity(n);
            while v.len() < n {
                let x = self.next();
                if x != 0 && !v.contains(&x) {
                    v.push(x);
                }
            }
            v
        }
    }

    /// `Π (z − r)` over `roots`, low degree first.
    fn from_roots(roots: &[u64]) -> Vec<u64> {
        let mut p = vec![1u64];
        for &r in roots {
            p.insert(0, 0);
            for i in 0..p.len() - 1 {
                let t = mul(p[i + 1], r);
                p[i] ^= t;
            }
        }
        p
    }

    fn poly_mul(a: &[u64], b: &[u64]) -> Vec<u64> {
        let mut r = vec![0u64; a.len() + b.len() - 1];
        for (i, &x) in a.iter().enumerate() {
            for (j, &y) in b.iter().enumerate() {
                r[i + j] ^= mul(x, y);
            }
        }
        r
    }

    fn syndromes(pairs: &[(u64, u64)], len: usize) -> Vec<u64> {
        let mut s = vec![0u64; len];
        gf::power_sums(pairs, 0, &mut s);
        s
    }

    fn random_set(rng: &mut Rng, n: usize) -> Vec<(u64, u64)> {
        let mut set: Vec<(u64, u64)> = rng
            .distinct(n)
            .into_iter()
            .map(|x| (x, rng.next() | 1))
            .collect();
        set.sort_unstable();
        set
    }

    /// The recurrence `c` generates `s`.
    fn generates(c: &[u64], s: &[u64]) -> bool {
        let l = c.len() - 1;
        (l..s.len()).all(|j| (0..=l).fold(0, |acc, i| acc ^ mul(c[i], s[j - i])) == 0)
    }

    #[test]
    fn berlekamp_massey_on_known_sequences() {
        assert_eq!(berlekamp_massey(&[]), vec![1]);
        assert_eq!(berlekamp_massey(&[0, 0, 0]), vec![1]);
        // A geometric sequence w·x^j: C = 1 − x z.
        let (x, w) = (0x1234_5678_9abc_def0u64, 77u64);
        let s: Vec<u64> = (0..8).map(|j| mul(w, gf::pow(x, j))).collect();
        assert_eq!(berlekamp_massey(&s), vec![1, x]);
        // A single nonzero at position 3 needs a register of length 4.
        assert_eq!(berlekamp_massey(&[0, 0, 0, 5]), vec![1, 0, 0, 0, 5]);
        // Fibonacci-like over GF(2): s_j = s_(j−1) + s_(j−2).
        let mut f = vec![1u64, 1];
        for j in 2..12 {
            f.push(f[j - 1] ^ f[j - 2]);
        }
        assert_eq!(berlekamp_massey(&f), vec![1, 1, 1]);
        // Two geometric sequences: C = (1 − x1 z)(1 − x2 z).
        let (x1, x2) = (3u64, 0xffff_0000_1111_2222u64);
        let s: Vec<u64> = (0..6)
            .map(|j| gf::pow(x1, j) ^ mul(9, gf::pow(x2, j)))
            .collect();
        assert_eq!(berlekamp_massey(&s), vec![1, x1 ^ x2, mul(x1, x2)]);
        // Random sequences: the recurrence holds and its length is about half.
        let mut rng = Rng(5);
        for len in [1usize, 2, 7, 40, 101] {
            let s: Vec<u64> = (0..len).map(|_| rng.next()).collect();
            let c = berlekamp_massey(&s);
            assert_eq!(c[0], 1);
            assert!(generates(&c, &s));
            assert!(
                (len / 2..=len / 2 + 1).contains(&(c.len() - 1)),
                "len {len}"
            );
            assert_eq!(linear_complexity(&s), c.len() - 1);
        }
    }

    #[test]
    fn roots_of_split_polynomials_are_found() {
        let mut rng = Rng(11);
        for n in [0usize, 1, 2, 3, 10, 100] {
            let mut roots = rng.distinct(n);
            let mut p = from_roots(&roots);
            // Scale and pad: neither changes the roots.
            p.iter_mut().for_each(|c| *c = mul(*c, 0xabcdef));
            p.extend([0, 0]);
            roots.sort_unstable();
            assert_eq!(distinct_roots(&p, n as u64), Some(roots.clone()), "n {n}");
            assert_eq!(distinct_roots(&p, 999), Some(roots));
        }
        // Zero is a root like any other.
        assert_eq!(distinct_roots(&[0, 1], 0), Some(vec![0]));
        assert_eq!(
            distinct_roots(&from_roots(&[0, 5, 9]), 0),
            Some(vec![0, 5, 9])
        );
        assert_eq!(distinct_roots(&[7], 0), Some(vec![]));
        assert_eq!(distinct_roots(&[], 0), None);
        assert_eq!(distinct_roots(&[0, 0], 0), None);
    }

    #[test]
    fn polynomials_that_do_not_split_distinctly_are_refused() {
        let mut rng = Rng(12);
        let roots = rng.distinct(5);
        // A repeated root.
        let mut rep = roots.clone();
        rep.push(roots[2]);
        assert_eq!(distinct_roots(&from_roots(&rep), 1), None);
        assert_eq!(distinct_roots(&from_roots(&[4, 4]), 1), None);
        // z² + z + 1 is irreducible over GF(2^64)? No: GF(4) ⊂ GF(2^64), so it splits.
        assert_eq!(distinct_roots(&[1, 1, 1], 1).map(|r| r.len()), Some(2));
        // z² + z + a is irreducible exactly when Tr(a) = 1 (half the field elements).
        let irreducible = std::iter::repeat_with(|| rng.next())
            .find(|&a| {
                let mut t = a;
                let mut tr = a;
                for _ in 1..64 {
                    t = square(t);
                    tr ^= t;
                }
                tr == 1
            })
            .unwrap();
        let quad = [irreducible, 1, 1];
        assert_eq!(distinct_roots(&quad, 1), None);
        assert_eq!(
            distinct_roots(&poly_mul(&quad, &from_roots(&roots)), 1),
            None
        );
        // An irreducible cubic times linear factors (z³ + z + 1 is irreducible over GF(2)
        // and 3 does not divide 64, so it stays irreducible).
        assert_eq!(
            distinct_roots(&poly_mul(&[1, 1, 0, 1], &from_roots(&roots)), 1),
            None
        );
    }

    #[test]
    fn decode_round_trips_random_sets() {
        let mut rng = Rng(21);
        for n in [0usize, 1, 2, 5, 50, 200] {
            for verify in [1usize, 2] {
                let set = random_set(&mut rng, n);
                let s = syndromes(&set, 2 * n + verify);
                assert_eq!(linear_complexity(&s), n);
                assert_eq!(
                    decode(&s, verify),
                    Some(set.clone()),
                    "n {n} verify {verify}"
                );
                // More syndromes than needed decode as well.
                let s = syndromes(&set, 2 * n + verify + 3);
                assert_eq!(decode(&s, verify), Some(set));
            }
        }
    }

    #[test]
    fn decode_needs_two_syndromes_per_difference_and_the_margin() {
        let mut rng = Rng(22);
        for n in [1usize, 2, 5, 50] {
            let set = random_set(&mut rng, n);
            for len in [n, 2 * n - 1, 2 * n] {
                let s = syndromes(&set, len);
                assert_eq!(decode(&s, 1), None, "n {n} len {len}");
            }
            assert_eq!(decode(&syndromes(&set, 2 * n), 0), Some(set.clone()));
            assert_eq!(decode(&syndromes(&set, 2 * n + 1), 2), None);
        }
    }

    #[test]
    fn garbage_syndromes_do_not_decode() {
        let mut rng = Rng(23);
        for len in 1..60usize {
            let s: Vec<u64> = (0..len).map(|_| rng.next()).collect();
            assert_eq!(decode(&s, 1), None, "len {len}");
            // A true set's syndromes with one corrupted.
            let set = random_set(&mut rng, len / 3);
            let mut s = syndromes(&set, len);
            s[len / 2] ^= 1 << (len % 64);
            assert_eq!(decode(&s, 1), None, "len {len}");
        }
        // Locators that repeat or are zero are not a set this decoder returns.
        assert_eq!(decode(&syndromes(&[(0, 5), (3, 4)], 8), 1), None);
        assert_eq!(decode(&[0, 0, 0, 0, 9, 0, 0, 0, 0, 0], 1), None);
    }

    #[test]
    fn decode_small_structured_sets() {
        // Locator 1: a constant sequence.
        assert_eq!(decode(&[9, 9, 9], 1), Some(vec![(1, 9)]));
        // Locators in GF(2) ∪ GF(4): a tiny subfield is no special case.
        let set = vec![(1u64, 5u64), (2, 7), (3, 1)];
        assert_eq!(decode(&syndromes(&set, 8), 2), Some(set));
        let set = vec![(1 << 63, 1), (u64::MAX, u64::MAX)];
        assert_eq!(decode(&syndromes(&set, 5), 1), Some(set));
    }

    proptest::proptest! {
        #[test]
        fn decode_round_trips_any_small_set(
            raw in proptest::collection::btree_map(1u64.., 1u64.., 0..8usize),
            verify in 0usize..3,
        ) {
            let set: Vec<(u64, u64)> = raw.into_iter().collect();
            let s = syndromes(&set, 2 * set.len() + verify);
            proptest::prop_assert_eq!(decode(&s, verify), Some(set));
        }

        #[test]
        fn decode_of_anything_reproduces_its_input_or_refuses(
            s in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..24),
            small in proptest::prelude::any::<bool>(),
        ) {
            // Small values make short recurrences (and repeated or zero locators) likely.
            let s: Vec<u64> = if small { s.iter().map(|x| x % 4).collect() } else { s };
            if let Some(pairs) = decode(&s, 1) {
                proptest::prop_assert_eq!(syndromes(&pairs, s.len()), s);
                proptest::prop_assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0));
                proptest::prop_assert!(pairs.iter().all(|&(x, w)| x != 0 && w != 0));
            }
        }
    }
}
