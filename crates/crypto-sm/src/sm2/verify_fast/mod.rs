//! SM2 signature verification arithmetic (GB/T 32918.2 §7.1 B6–B7), specialised to sm2p256v1
//! and variable time.
//!
//! # Why variable time is sound here
//! Verification sees only public values: the public key, the digest e and the signature (r, s).
//! Nothing secret enters this module, so its branches and table indices may depend on the data.
//! Signing, decryption and key exchange never call it: they stay on RustCrypto's constant-time
//! field, scalar and point arithmetic (`sm2`/`primeorder`).
//!
//! # Method
//! - Field: GF(p) in Montgomery form on four 64-bit limbs (`field`), with a reduction that uses
//!   p's special form (−p⁻¹ mod 2^64 = 1; each round is shifts and additions). One multiplication
//!   is 16 64×64-bit products; a squaring 10.
//! - Points: Jacobian coordinates for the accumulator, affine points for the base point's table
//!   (mixed additions, 8M + 3S), a = −3 doubling (4M + 4S, and small-constant multiples)
//!   (`point`).
//! - [s]G + [t]P by one interleaved pass of w-NAF digits: one chain of at most 257 doublings
//!   shared by both scalars; s in width-[`G_WINDOW`] w-NAF against a precomputed table of the odd
//!   multiples G, 3G, …, (2^(G_WINDOW−1) − 1)G in affine form ([`G_TABLE_LEN`] points,
//!   64 KiB at 64 bytes a point, computed once per process on first use); t in width-[`P_WINDOW`]
//!   w-NAF against P, 3P, …, 15P in Jacobian form with Z² and Z³ kept, built per verification
//!   (1 doubling and 7 additions).
//! - B7 without an inversion: (e + x₁) mod n = r ⟺ x₁ ≡ v = (r − e) mod n (mod n), and as
//!   n < x₁ < p is possible, x₁ ∈ {v, v + n} (the second only when v + n < p). With x₁ = X/Z²,
//!   each candidate c is tested as X = c·Z² in the field. (An inversion would cost about 270
//!   field operations, some 7 % of a verification.)
//!
//! Cost per verification, roughly: 256 doublings, 43 additions for t (1 in 6 digits non-zero),
//! 20 mixed additions for s (1 in 13), 8 for P's table: about 3 000 field multiplications and
//! squarings, over 90 % of the time in a profile; the key check, ZA and SM3 are the rest.
//!
//! Facts used (public): the curve constants of GB/T 32918.5; the Jacobian formulas of the
//! Explicit-Formulas Database; w-NAF recoding and interleaving as in Hankerson–Menezes–
//! Vanstone, "Guide to Elliptic Curve Cryptography" (§3.3, interleaving with NAFs).
//! `efficient-sm2` 0.2.5 was read and measured (a generic Montgomery field, an 8-bit
//! fixed-window table of G without a shared doubling chain, P by 4-bit windows: 1.1–1.3×
//! RustCrypto here), not copied.
//!
//! The public key must have been validated (on the curve, not the point at infinity) by the
//! caller: [`super::validate`] does it for every path that reaches here.

mod field;
mod point;

use field::Fe;
use point::{Affine, Cached, Jacobian, batch_to_affine};
use std::sync::OnceLock;

/// w-NAF width for s against the base point's table.
pub(crate) const G_WINDOW: usize = 12;
/// Points in the base point's table: the odd multiples below 2^(G_WINDOW−1).
pub(crate) const G_TABLE_LEN: usize = 1 << (G_WINDOW - 2);
/// w-NAF width for t against the public key.
pub(crate) const P_WINDOW: usize = 5;
const P_TABLE_LEN: usize = 1 << (P_WINDOW - 2);

/// The group order n, little-endian limbs.
const N: [u64; 4] = [
    0x53bb_f409_39d5_4123,
    0x7203_df6b_21c6_052b,
    0xffff_ffff_ffff_ffff,
    0xffff_fffe_ffff_ffff,
];
/// p − n (about 2^127.1): the x₁ = v + n candidate exists only for v below it.
const P_MINUS_N: [u64; 4] = [0xac44_0bf6_c62a_bedc, 0x8dfc_2093_de39_fad5, 0, 0];

/// The base point G of sm2p256v1 (GB/T 32918.5 §2), big-endian.
const GX: [u8; 32] = [
    0x32, 0xc4, 0xae, 0x2c, 0x1f, 0x19, 0x81, 0x19, 0x5f, 0x99, 0x04, 0x46, 0x6a, 0x39, 0xc9, 0x94,
    0x8f, 0xe3, 0x0b, 0xbf, 0xf2, 0x66, 0x0b, 0xe1, 0x71, 0x5a, 0x45, 0x89, 0x33, 0x4c, 0x74, 0xc7,
];
const GY: [u8; 32] = [
    0xbc, 0x37, 0x36, 0xa2, 0xf4, 0xf6, 0x77, 0x9c, 0x59, 0xbd, 0xce, 0xe3, 0x6b, 0x69, 0x21, 0x53,
    0xd0, 0xa9, 0x87, 0x7c, 0xc6, 0x2a, 0x47, 0x40, 0x02, 0xdf, 0x32, 0xe5, 0x21, 0x39, 0xf0, 0xa0,
];

/// Public inputs of B6–B7, each a 32-byte big-endian integer.
#[derive(Debug)]
pub(crate) struct Inputs<'a> {
    /// x of the (validated) public key P.
    pub(crate) px: &'a [u8; 32],
    /// y of P.
    pub(crate) py: &'a [u8; 32],
    /// s′ ∈ [1, n − 1].
    pub(crate) s: &'a [u8; 32],
    /// t = (r′ + s′) mod n ∈ [1, n − 1].
    pub(crate) t: &'a [u8; 32],
    /// v = (r′ − e′) mod n.
    pub(crate) v: &'a [u8; 32],
}

/// What B6–B7 found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// (e′ + x₁′) mod n = r′.
    Valid,
    /// [s′]G + [t]P is the point at infinity.
    Infinity,
    /// x₁′ does not match.
    Mismatch,
    /// A coordinate of P is not below p (the caller did not validate it).
    BadKey,
    /// The base point's table could not be built (never expected: its entries are odd
    /// multiples of G below n); the caller falls back to the reference path.
    Unavailable,
}

/// B6–B7: computes (x₁′, y₁′) = [s′]G + [t]P and compares (e′ + x₁′) mod n with r′.
pub(crate) fn verify(inputs: &Inputs<'_>) -> Outcome {
    let (Some(x), Some(y)) = (Fe::from_be_bytes(inputs.px), Fe::from_be_bytes(inputs.py)) else {
        return Outcome::BadKey;
    };
    let p = Affine { x, y };
    let Some(g_table) = base_table() else {
        return Outcome::Unavailable;
    };
    let sum = double_mul(g_table, &be_limbs(inputs.s), &be_limbs(inputs.t), &p);
    if sum.is_identity() {
        return Outcome::Infinity;
    }
    let z2 = sum.z.square();
    let v = be_limbs(inputs.v);
    let matches = |c: &[u64; 4]| Fe::from_limbs(c).is_some_and(|c| c.mul(&z2) == sum.x);
    if matches(&v) {
        return Outcome::Valid;
    }
    if field::less_than(&v, &P_MINUS_N) && matches(&add_limbs(&v, &N)) {
        return Outcome::Valid;
    }
    Outcome::Mismatch
}

/// [a]G + [b]P in one interleaved w-NAF pass; a, b < 2^256.
fn double_mul(g_table: &[Affine; G_TABLE_LEN], a: &[u64; 4], b: &[u64; 4], p: &Affine) -> Jacobian {
    let p_table = odd_multiples(p);
    let a_naf = wnaf(a, G_WINDOW);
    let b_naf = wnaf(b, P_WINDOW);
    let top = (0..WNAF_LEN)
        .rev()
        .find(|&i| a_naf[i] != 0 || b_naf[i] != 0);
    let Some(top) = top else {
        return Jacobian::IDENTITY;
    };
    let mut acc = Jacobian::IDENTITY;
    for i in (0..=top).rev() {
        acc = acc.double();
        let d = b_naf[i];
        if d != 0 {
            let entry = &p_table[(d.unsigned_abs() as usize >> 1) & (P_TABLE_LEN - 1)];
            acc = if d > 0 {
                acc.add_cached(entry)
            } else {
                acc.add_cached(&entry.neg())
            };
        }
        let d = a_naf[i];
        if d != 0 {
            let entry = &g_table[(d.unsigned_abs() as usize >> 1) & (G_TABLE_LEN - 1)];
            acc = if d > 0 {
                acc.add_affine(entry)
            } else {
                acc.add_affine(&entry.neg())
            };
        }
    }
    acc
}

/// P, 3P, 5P, …, (2^(P_WINDOW−1) − 1)P, each with its Z² and Z³.
fn odd_multiples(p: &Affine) -> [Cached; P_TABLE_LEN] {
    let first = Jacobian::from_affine(p);
    let twice = Cached::new(&first.double());
    let mut table = [Cached::new(&first); P_TABLE_LEN];
    let mut current = first;
    for entry in table.iter_mut().skip(1) {
        current = current.add_cached(&twice);
        *entry = Cached::new(&current);
    }
    table
}

/// The base point's table: G, 3G, …, (2^(G_WINDOW−1) − 1)G, affine.
fn base_table() -> Option<&'static [Affine; G_TABLE_LEN]> {
    static TABLE: OnceLock<Option<Box<[Affine; G_TABLE_LEN]>>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            let g = generator();
            let twice = Jacobian::from_affine(&g).double();
            let mut jac = Vec::with_capacity(G_TABLE_LEN);
            jac.push(Jacobian::from_affine(&g));
            for i in 1..G_TABLE_LEN {
                jac.push(jac[i - 1].add(&twice));
            }
            // Odd multiples of G below n are never the point at infinity (n is prime), so the
            // conversion succeeds; `tests::base_table_entries` checks each entry against RustCrypto.
            batch_to_affine(&jac)?.into_boxed_slice().try_into().ok()
        })
        .as_deref()
}

fn generator() -> Affine {
    // GX and GY are below p; the fallbacks only keep this free of panics.
    Affine {
        x: Fe::from_be_bytes(&GX).unwrap_or(Fe::ZERO),
        y: Fe::from_be_bytes(&GY).unwrap_or(Fe::ZERO),
    }
}

/// Digits of a w-NAF of a 256-bit integer: one more than its bits, for the final carry.
const WNAF_LEN: usize = 257;

/// The width-w non-adjacent form of k: digits d_i, each 0 or odd with |d_i| < 2^(w−1), at most
/// one non-zero among any w consecutive digits, and k = Σ d_i·2^i (w ≤ 15).
fn wnaf(k: &[u64; 4], w: usize) -> [i16; WNAF_LEN] {
    let limbs = [k[0], k[1], k[2], k[3], 0, 0];
    let mut naf = [0i16; WNAF_LEN];
    let width = 1i64 << w;
    let mask = (1u64 << w) - 1;
    let mut carry = 0i64;
    let mut pos = 0usize;
    while pos < WNAF_LEN {
        let (word, bit) = (pos / 64, pos % 64);
        let bits = if bit + w <= 64 {
            limbs[word] >> bit
        } else {
            (limbs[word] >> bit) | (limbs[word + 1] << (64 - bit))
        };
        let window = carry + (bits & mask) as i64;
        if window & 1 == 0 {
            // Bit plus carry is even: the digit here is 0 and the carry moves up unchanged.
            pos += 1;
            continue;
        }
        if window < width / 2 {
            carry = 0;
            naf[pos] = window as i16;
        } else {
            carry = 1;
            naf[pos] = (window - width) as i16;
        }
        pos += w;
    }
    naf
}

/// Little-endian limbs of a 32-byte big-endian integer.
fn be_limbs(bytes: &[u8; 32]) -> [u64; 4] {
    let mut limbs = [0u64; 4];
    for (i, limb) in limbs.iter_mut().enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[32 - 8 * (i + 1)..32 - 8 * i]);
        *limb = u64::from_be_bytes(word);
    }
    limbs
}

/// a + b, ignoring a carry out of 256 bits (callers keep the sum below p).
fn add_limbs(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let mut out = [0u64; 4];
    let mut carry = false;
    for i in 0..4 {
        let (s1, c1) = a[i].overflowing_add(b[i]);
        let (s2, c2) = s1.overflowing_add(u64::from(carry));
        out[i] = s2;
        carry = c1 | c2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRandom;
    use crypto::RandomSource;
    use elliptic_curve::ops::MulByGeneratorVartime;
    use elliptic_curve::ops::Reduce;
    use elliptic_curve::sec1::ToSec1Point;
    use elliptic_curve::{Group, PrimeField};
    use sm2::elliptic_curve;
    use sm2::{ProjectivePoint, Scalar, U256};

    // -- A schoolbook big-integer reference, independent of the code under test ------------

    /// (a · b) mod m by a 512-bit product and bit-serial long division.
    fn ref_mulmod(a: &[u64; 4], b: &[u64; 4], m: &[u64; 4]) -> [u64; 4] {
        let mut prod = [0u64; 8];
        for i in 0..4 {
            let mut carry = 0u128;
            for j in 0..4 {
                let t = u128::from(prod[i + j]) + u128::from(a[i]) * u128::from(b[j]) + carry;
                prod[i + j] = t as u64;
                carry = t >> 64;
            }
            prod[i + 4] = carry as u64;
        }
        ref_mod(&prod, m)
    }

    fn ref_mod(x: &[u64; 8], m: &[u64; 4]) -> [u64; 4] {
        let mut r = [0u64; 5];
        for bit in (0..512).rev() {
            // r = 2r + bit
            let mut carry = (x[bit / 64] >> (bit % 64)) & 1;
            for limb in r.iter_mut() {
                let next = *limb >> 63;
                *limb = (*limb << 1) | carry;
                carry = next;
            }
            let m5 = [m[0], m[1], m[2], m[3], 0];
            if !lt5(&r, &m5) {
                sub5(&mut r, &m5);
            }
        }
        [r[0], r[1], r[2], r[3]]
    }

    fn lt5(a: &[u64; 5], b: &[u64; 5]) -> bool {
        for i in (0..5).rev() {
            if a[i] != b[i] {
                return a[i] < b[i];
            }
        }
        false
    }

    fn sub5(a: &mut [u64; 5], b: &[u64; 5]) {
        let mut borrow = 0u64;
        for i in 0..5 {
            let (d1, b1) = a[i].overflowing_sub(b[i]);
            let (d2, b2) = d1.overflowing_sub(borrow);
            a[i] = d2;
            borrow = u64::from(b1 | b2);
        }
    }

    fn ref_addmod(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
        let mut s = [0u64; 8];
        let mut carry = 0u128;
        for i in 0..4 {
            let t = u128::from(a[i]) + u128::from(b[i]) + carry;
            s[i] = t as u64;
            carry = t >> 64;
        }
        s[4] = carry as u64;
        ref_mod(&s, &field::P)
    }

    fn ref_submod(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
        // a + (p − b) for b < p
        let mut pb = [0u64; 5];
        pb[..4].copy_from_slice(&field::P);
        sub5(&mut pb, &[b[0], b[1], b[2], b[3], 0]);
        ref_addmod(a, &[pb[0], pb[1], pb[2], pb[3]])
    }

    fn rand_below_p(rng: &SeededRandom) -> [u64; 4] {
        loop {
            let mut b = [0u8; 32];
            rng.fill(&mut b).unwrap();
            // Bias towards edge shapes: all-ones words, zero words.
            let shape = b[0] % 8;
            let mut l = be_limbs(&b);
            if shape == 0 {
                l[b[1] as usize % 4] = u64::MAX;
            } else if shape == 1 {
                l[b[1] as usize % 4] = 0;
            } else if shape == 2 {
                let mut pm = field::P;
                pm[0] -= u64::from(b[2] % 4);
                l = pm;
            }
            if field::less_than(&l, &field::P) {
                return l;
            }
        }
    }

    fn fe(l: &[u64; 4]) -> Fe {
        Fe::from_limbs(l).unwrap()
    }

    fn out(x: Fe) -> [u64; 4] {
        be_limbs(&x.to_be_bytes())
    }

    #[test]
    fn field_matches_schoolbook_reference() {
        let rng = SeededRandom::new(0x19f1);
        let edges = [[0u64; 4], [1, 0, 0, 0], {
            let mut pm = field::P;
            pm[0] -= 1;
            pm
        }];
        let mut values: Vec<[u64; 4]> = edges.to_vec();
        values.extend((0..2000).map(|_| rand_below_p(&rng)));
        for pair in values.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert_eq!(out(fe(a)), *a, "round trip {a:x?}");
            assert_eq!(
                out(fe(a).mul(&fe(b))),
                ref_mulmod(a, b, &field::P),
                "{a:x?}·{b:x?}"
            );
            assert_eq!(out(fe(a).square()), ref_mulmod(a, a, &field::P), "{a:x?}²");
            assert_eq!(out(fe(a).add(&fe(b))), ref_addmod(a, b), "{a:x?}+{b:x?}");
            assert_eq!(out(fe(a).sub(&fe(b))), ref_submod(a, b), "{a:x?}−{b:x?}");
            assert_eq!(out(fe(a).neg()), ref_submod(&[0; 4], a), "−{a:x?}");
            assert_eq!(out(fe(a).double()), ref_addmod(a, a));
            for k in [0u64, 1, 2, 3, 4, 8, 0xffff_ffff, 1 << 32] {
                let want = ref_mulmod(a, &[k, 0, 0, 0], &field::P);
                assert_eq!(out(fe(a).mul_small(k)), want, "{k}·{a:x?}");
            }
        }
        for a in values.iter().take(200) {
            let inv = fe(a).invert();
            if *a == [0; 4] {
                assert!(inv.is_zero());
            } else {
                assert_eq!(out(inv.mul(&fe(a))), [1, 0, 0, 0], "{a:x?}⁻¹");
            }
        }
        // p and above are refused.
        assert!(Fe::from_limbs(&field::P).is_none());
        assert!(Fe::from_limbs(&[u64::MAX; 4]).is_none());
        assert_eq!(Fe::ONE, fe(&[1, 0, 0, 0]));
    }

    #[test]
    fn wnaf_digits_rebuild_the_scalar() {
        let rng = SeededRandom::new(0x19f2);
        let mut cases: Vec<[u64; 4]> = vec![
            [0; 4],
            [1, 0, 0, 0],
            [u64::MAX; 4],
            N,
            [u64::MAX, 0, 0, 0],
            [0, 0, 0, 1 << 63],
        ];
        cases.extend((0..500).map(|_| {
            let mut b = [0u8; 32];
            rng.fill(&mut b).unwrap();
            be_limbs(&b)
        }));
        for w in [2usize, 4, P_WINDOW, 8, G_WINDOW] {
            for k in &cases {
                let naf = wnaf(k, w);
                // Σ d_i 2^i as a 320-bit two's-complement sum.
                let mut acc = [0u64; 5];
                let mut last_nonzero: Option<usize> = None;
                for (i, &d) in naf.iter().enumerate() {
                    if d == 0 {
                        continue;
                    }
                    assert!(d % 2 != 0, "even digit {d} at {i}, w {w}");
                    assert!(i64::from(d).abs() < (1i64 << (w - 1)), "digit {d} too wide");
                    if let Some(j) = last_nonzero {
                        assert!(i - j >= w, "digits at {j} and {i} closer than {w}");
                    }
                    last_nonzero = Some(i);
                    let mut term = [0u64; 5];
                    let mag = u64::from(d.unsigned_abs());
                    let (word, bit) = (i / 64, i % 64);
                    term[word] = mag << bit;
                    if bit > 0 && word + 1 < 5 {
                        term[word + 1] = mag >> (64 - bit);
                    }
                    if d > 0 {
                        let mut carry = 0u128;
                        for x in 0..5 {
                            let t = u128::from(acc[x]) + u128::from(term[x]) + carry;
                            acc[x] = t as u64;
                            carry = t >> 64;
                        }
                    } else {
                        sub5(&mut acc, &term);
                    }
                }
                assert_eq!(acc, [k[0], k[1], k[2], k[3], 0], "w {w}, k {k:x?}");
            }
        }
    }

    // -- Points, against RustCrypto's arithmetic ---------------------------------------------

    fn from_rc(p: &ProjectivePoint) -> Affine {
        let enc = p.to_affine().to_sec1_point(false);
        let b = enc.as_bytes();
        Affine {
            x: Fe::from_be_bytes(b[1..33].try_into().unwrap()).unwrap(),
            y: Fe::from_be_bytes(b[33..65].try_into().unwrap()).unwrap(),
        }
    }

    fn same(ours: &Jacobian, theirs: &ProjectivePoint) -> bool {
        match ours.to_affine() {
            None => bool::from(theirs.is_identity()),
            Some(a) => !bool::from(theirs.is_identity()) && a == from_rc(theirs),
        }
    }

    fn scalar(rng: &SeededRandom) -> Scalar {
        let mut b = [0u8; 32];
        rng.fill(&mut b).unwrap();
        <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(&b))
    }

    #[test]
    fn generator_and_curve_check() {
        let g = generator();
        assert!(g.is_on_curve());
        assert_eq!(g, from_rc(&ProjectivePoint::GENERATOR));
        let mut off = g;
        off.y = off.y.add(&Fe::ONE);
        assert!(!off.is_on_curve());
    }

    #[test]
    fn point_operations_match_rustcrypto() {
        let rng = SeededRandom::new(0x19f3);
        for _ in 0..200 {
            let (a, b) = (scalar(&rng), scalar(&rng));
            let (pa, pb) = (
                ProjectivePoint::mul_by_generator(&a),
                ProjectivePoint::mul_by_generator(&b),
            );
            let (qa, qb) = (from_rc(&pa), from_rc(&pb));
            assert!(qa.is_on_curve());
            let ja = Jacobian::from_affine(&qa);
            // A Jacobian input with Z ≠ 1.
            let ja2 = ja.double();
            assert!(same(&ja2, &pa.double()));
            assert!(same(&ja2.add_affine(&qb), &(pa.double() + pb)));
            assert!(same(
                &ja2.add(&Jacobian::from_affine(&qb).double()),
                &(pa + pb).double()
            ));
            // Exceptional cases: equal inputs double; opposite inputs give infinity.
            assert!(same(&ja2.add(&ja.double()), &pa.double().double()));
            assert!(same(
                &ja2.add_affine(&from_rc(&pa.double())),
                &pa.double().double()
            ));
            assert!(ja2.add(&ja2.neg()).is_identity());
            assert!(ja2.add_affine(&from_rc(&pa.double()).neg()).is_identity());
            // The point at infinity on either side.
            assert!(same(&Jacobian::IDENTITY.add(&ja2), &pa.double()));
            assert!(same(&ja2.add(&Jacobian::IDENTITY), &pa.double()));
            assert!(same(&Jacobian::IDENTITY.add_affine(&qa), &pa));
            assert!(Jacobian::IDENTITY.double().is_identity());
        }
    }

    #[test]
    fn base_table_entries_are_odd_multiples_of_g() {
        let table = base_table().unwrap();
        let mut k = ProjectivePoint::GENERATOR;
        let two_g = ProjectivePoint::GENERATOR.double();
        for (i, entry) in table.iter().enumerate() {
            assert_eq!(*entry, from_rc(&k), "entry {i} is not {}·G", 2 * i + 1);
            assert!(entry.is_on_curve());
            k += two_g;
        }
        // The size the module docs state: 1024 points of 64 bytes.
        assert_eq!(
            (table.len(), std::mem::size_of_val(table)),
            (1024, 64 * 1024)
        );
    }

    #[test]
    fn double_mul_matches_rustcrypto() {
        let rng = SeededRandom::new(0x19f4);
        let table = base_table().unwrap();
        let limbs = |s: &Scalar| be_limbs(&s.to_repr().into());
        let minus_one = -Scalar::ONE;
        let mut scalars: Vec<(Scalar, Scalar)> = vec![
            (Scalar::ONE, Scalar::ONE),
            (minus_one, minus_one),
            (Scalar::ZERO, scalar(&rng)),
            (scalar(&rng), Scalar::ZERO),
        ];
        scalars.extend((0..300).map(|_| (scalar(&rng), scalar(&rng))));
        for (a, b) in scalars {
            let d = scalar(&rng);
            let p = ProjectivePoint::mul_by_generator(&d);
            let ours = double_mul(table, &limbs(&a), &limbs(&b), &from_rc(&p));
            let theirs = ProjectivePoint::mul_by_generator_and_mul_add_vartime(&a, &b, &p);
            assert!(same(&ours, &theirs), "a {a:?} b {b:?} d {d:?}");
        }
        // P = ±G, and [t]P = −[s]G so that the sum is the point at infinity.
        let g = ProjectivePoint::GENERATOR;
        for _ in 0..50 {
            let (s, t) = (scalar(&rng), scalar(&rng));
            for p in [g, -g] {
                let ours = double_mul(table, &limbs(&s), &limbs(&t), &from_rc(&p));
                let theirs = ProjectivePoint::mul_by_generator_and_mul_add_vartime(&s, &t, &p);
                assert!(same(&ours, &theirs));
            }
            // P = [d]G with d = −s/t: [s]G + [t]P = O.
            let d = -s * t.invert().unwrap();
            let p = ProjectivePoint::mul_by_generator(&d);
            let ours = double_mul(table, &limbs(&s), &limbs(&t), &from_rc(&p));
            assert!(ours.is_identity());
            // P = [d]G with [t]P = [s]G: the two halves meet equal (a doubling inside an addition).
            let d = s * t.invert().unwrap();
            let p = ProjectivePoint::mul_by_generator(&d);
            let ours = double_mul(table, &limbs(&s), &limbs(&t), &from_rc(&p));
            assert!(same(&ours, &ProjectivePoint::mul_by_generator(&s).double()));
        }
    }
}
