//! The x86_64 SM3 kernels (see `arch::sm3` for what they are and why they are sound):
//! `lanes_avx2` / `lanes_avx512vl` hash one 64-byte block of each of eight independent
//! messages, one message per 32-bit lane of YMM registers, the GB/T 32905-2016 §5.3 steps
//! written lane-wise. AVX-512VL only adds `vprold` (one instruction per rotation) and
//! `vpternlogd` (which LLVM forms from the Boolean functions).

use crate::sm3::T;
use core::arch::x86_64::*;
use std::arch::is_x86_feature_detected;

pub(super) fn has_avx2() -> bool {
    is_x86_feature_detected!("avx") && is_x86_feature_detected!("avx2")
}

pub(super) fn has_avx512vl() -> bool {
    has_avx2() && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl")
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
