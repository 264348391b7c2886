//! Polynomials over GF(2^64) for the syndrome sketch: the shortest linear recurrence of a
//! syndrome sequence (Berlekamp–Massey), its roots, and the values at those roots.
