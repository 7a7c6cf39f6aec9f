//! The x86_64 SM3 kernels (see `arch::sm3` for what they are and why they are sound).
//!
//! - `compress_avx512vl`: one message. The message expansion (GB/T 32905-2016 §5.3.2) runs in
//!   XMM registers four words at a time, interleaved with the scalar rounds so that the
//!   out-of-order core overlaps the two: W[j..j+4] needs W[j−3..j+1], so three lanes come out
//!   right at once and the fourth is patched with P1(W[j] <<< 15) (P1 is linear over XOR). The
//!   rounds are the portable ones (`sm3::four_rounds`), fed from the expanded words.
//! - `lanes_avx2` / `lanes_avx512vl`: eight independent messages, one per 32-bit lane of YMM
//!   registers, one 64-byte block each per call. AVX-512VL only adds `vprold` (one instruction
//!   per rotation) and `vpternlogd` (which LLVM forms from the Boolean functions).

use crate::sm3::{T, four_rounds};
use core::arch::x86_64::*;
use std::arch::is_x86_feature_detected;

/// One message block as big-endian bytes.
type Block = [u8; 64];

pub(super) fn has_avx2() -> bool {
    is_x86_feature_detected!("avx") && is_x86_feature_detected!("avx2")
}

pub(super) fn has_avx512vl() -> bool {
    // SSSE3 for the single-message kernel's `palignr`/`pshufb`; AVX2 for the lanes kernel.
    has_avx2()
        && is_x86_feature_detected!("ssse3")
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512vl")
}

/// `pshufb` mask turning four big-endian words into integers.
const BSWAP32: [u8; 16] = [3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12];

#[inline(always)]
fn load128(b: &[u8; 16]) -> __m128i {
    // SAFETY: `b` is 16 readable bytes and `loadu` has no alignment requirement; SSE2 is always
    // present on x86_64.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

#[inline(always)]
fn store128(w: &mut [u32; 4], v: __m128i) {
    // SAFETY: `w` is 16 writable bytes, `storeu` has no alignment requirement; SSE2 baseline.
    unsafe { _mm_storeu_si128(w.as_mut_ptr().cast(), v) }
}

/// Splits a block into its four 16-byte quarters.
#[inline(always)]
fn quarters(b: &Block) -> [&[u8; 16]; 4] {
    let (q0, rest) = b.split_at(16);
    let (q1, rest) = rest.split_at(16);
    let (q2, q3) = rest.split_at(16);
    // The splits are 16 bytes each by construction; the fallbacks are unreachable.
    let z = &[0u8; 16];
    [
        q0.try_into().unwrap_or(z),
        q1.try_into().unwrap_or(z),
        q2.try_into().unwrap_or(z),
        q3.try_into().unwrap_or(z),
    ]
}

macro_rules! rol128 {
    ($n:literal, $x:expr) => {
        _mm_rol_epi32::<$n>($x)
    };
}

#[target_feature(enable = "ssse3,avx512f,avx512vl")]
fn compress_avx512vl_inner(state: &mut [u32; 8], blocks: &[Block]) {
    let bswap = load128(&BSWAP32);
    for block in blocks {
        let q = quarters(block);
        let mut v0 = _mm_shuffle_epi8(load128(q[0]), bswap);
        let mut v1 = _mm_shuffle_epi8(load128(q[1]), bswap);
        let mut v2 = _mm_shuffle_epi8(load128(q[2]), bswap);
        let mut v3 = _mm_shuffle_epi8(load128(q[3]), bswap);
        let mut s = *state;
        let mut w = [0u32; 4];
        let mut wp = [0u32; 4];
        for k in 0..16 {
            // v0..v3 hold W[4k..4k+16]; round group k needs W[4k..4k+4] and
            // W'[4k..4k+4] = W[4k..4k+4] ^ W[4k+4..4k+8].
            store128(&mut w, v0);
            store128(&mut wp, _mm_xor_si128(v0, v1));
            if k < 13 {
                // W[j..j+4] for j = 4k + 16 (§5.3.2 b).
                let w_9 = _mm_alignr_epi8(v2, v1, 12);
                let w_13 = _mm_alignr_epi8(v1, v0, 12);
                let w_6 = _mm_alignr_epi8(v3, v2, 8);
                let w_3 = _mm_srli_si128(v3, 4);
                let t = _mm_xor_si128(_mm_xor_si128(v0, w_9), rol128!(15, w_3));
                let t = _mm_xor_si128(_mm_xor_si128(t, rol128!(15, t)), rol128!(23, t));
                let x = _mm_xor_si128(_mm_xor_si128(t, rol128!(7, w_13)), w_6);
                // Lane 3 (W[j+3]) still lacks P1(W[j] <<< 15): add it.
                let y = rol128!(15, _mm_slli_si128(x, 12));
                let y = _mm_xor_si128(_mm_xor_si128(y, rol128!(15, y)), rol128!(23, y));
                (v0, v1, v2, v3) = (v1, v2, v3, _mm_xor_si128(x, y));
            } else {
                (v0, v1, v2) = (v1, v2, v3);
            }
            four_rounds(&mut s, k, &w, &wp);
        }
        for (x, y) in state.iter_mut().zip(s) {
            *x ^= y;
        }
    }
}

/// Compresses `blocks` into `state` with the AVX-512VL message expansion.
pub(super) fn compress_avx512vl(state: &mut [u32; 8], blocks: &[Block]) {
    // SAFETY: reached only through `Sm3Kernel::compress` on a kernel of kind Avx512Vl, which
    // `Sm3Kernel::detect` makes only after `has_avx512vl` found SSSE3, AVX-512F and AVX-512VL.
    unsafe { compress_avx512vl_inner(state, blocks) }
}

macro_rules! rol256_avx2 {
    ($n:literal, $x:expr) => {{
        let x = $x;
        _mm256_or_si256(
            _mm256_slli_epi32::<$n>(x),
            _mm256_srli_epi32::<{ 32 - $n }>(x),
        )
    }};
}

macro_rules! rol256_vl {
    ($n:literal, $x:expr) => {
        _mm256_rol_epi32::<$n>($x)
    };
}

#[inline(always)]
fn load256(x: &[u32; 8]) -> __m256i {
    // SAFETY: `x` is 32 readable bytes, `loadu` has no alignment requirement; the callers are
    // `#[target_feature(enable = "avx2")]` kernels (AVX present, see `lanes`).
    unsafe { _mm256_loadu_si256(x.as_ptr().cast()) }
}

#[inline(always)]
fn store256(x: &mut [u32; 8], v: __m256i) {
    // SAFETY: `x` is 32 writable bytes, `storeu` has no alignment requirement; as `load256`.
    unsafe { _mm256_storeu_si256(x.as_mut_ptr().cast(), v) }
}

/// One block of eight messages: `state[i][lane]` is word i of lane's chaining value,
/// `block[k][lane]` word k (as an integer) of lane's block.
macro_rules! lanes_kernel {
    ($inner:ident, $features:literal, $rol:ident) => {
        #[target_feature(enable = $features)]
        fn $inner(state: &mut [[u32; 8]; 8], block: &[[u32; 8]; 16]) {
            let mut w = [_mm256_setzero_si256(); 68];
            for (wk, bk) in w.iter_mut().zip(block) {
                *wk = load256(bk);
            }
            // §5.3.2 b: W[j] = P1(W[j−16] ^ W[j−9] ^ (W[j−3] <<< 15)) ^ (W[j−13] <<< 7) ^ W[j−6].
            for j in 16..68 {
                let t =
                    _mm256_xor_si256(_mm256_xor_si256(w[j - 16], w[j - 9]), $rol!(15, w[j - 3]));
                let p = _mm256_xor_si256(_mm256_xor_si256(t, $rol!(15, t)), $rol!(23, t));
                w[j] = _mm256_xor_si256(_mm256_xor_si256(p, $rol!(7, w[j - 13])), w[j - 6]);
            }
            let v = [
                load256(&state[0]),
                load256(&state[1]),
                load256(&state[2]),
                load256(&state[3]),
                load256(&state[4]),
                load256(&state[5]),
                load256(&state[6]),
                load256(&state[7]),
            ];
            let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = v;
            // §5.3.3: the 64 rounds.
            for j in 0..64 {
                let a12 = $rol!(12, a);
                let tj = _mm256_set1_epi32(T[j] as i32);
                let ss1 = $rol!(7, _mm256_add_epi32(_mm256_add_epi32(a12, tj), e));
                let ss2 = _mm256_xor_si256(ss1, a12);
                let (ff, gg) = if j < 16 {
                    (
                        _mm256_xor_si256(_mm256_xor_si256(a, b), c),
                        _mm256_xor_si256(_mm256_xor_si256(e, f), g),
                    )
                } else {
                    (
                        _mm256_or_si256(
                            _mm256_and_si256(a, b),
                            _mm256_and_si256(c, _mm256_or_si256(a, b)),
                        ),
                        _mm256_xor_si256(_mm256_and_si256(_mm256_xor_si256(f, g), e), g),
                    )
                };
                let wp = _mm256_xor_si256(w[j], w[j + 4]);
                let tt1 = _mm256_add_epi32(_mm256_add_epi32(ff, d), _mm256_add_epi32(ss2, wp));
                let tt2 = _mm256_add_epi32(_mm256_add_epi32(gg, h), _mm256_add_epi32(ss1, w[j]));
                d = c;
                c = $rol!(9, b);
                b = a;
                a = tt1;
                h = g;
                g = $rol!(19, f);
                f = e;
                e = _mm256_xor_si256(_mm256_xor_si256(tt2, $rol!(9, tt2)), $rol!(17, tt2));
            }
            for (i, x) in [a, b, c, d, e, f, g, h].into_iter().enumerate() {
                store256(&mut state[i], _mm256_xor_si256(x, v[i]));
            }
        }
    };
}

lanes_kernel!(lanes_avx2_inner, "avx,avx2", rol256_avx2);
lanes_kernel!(lanes_avx512vl_inner, "avx,avx2,avx512f,avx512vl", rol256_vl);

pub(super) fn lanes_avx2(state: &mut [[u32; 8]; 8], block: &[[u32; 8]; 16]) {
    // SAFETY: reached only through `Sm3Kernel::lanes` on a kernel of kind Avx2, which
    // `Sm3Kernel::detect` makes only after `has_avx2` found AVX and AVX2.
    unsafe { lanes_avx2_inner(state, block) }
}

pub(super) fn lanes_avx512vl(state: &mut [[u32; 8]; 8], block: &[[u32; 8]; 16]) {
    // SAFETY: reached only through `Sm3Kernel::lanes` on a kernel of kind Avx512Vl, which
    // `Sm3Kernel::detect` makes only after `has_avx512vl` found AVX, AVX2, AVX-512F and
    // AVX-512VL.
    unsafe { lanes_avx512vl_inner(state, block) }
}
