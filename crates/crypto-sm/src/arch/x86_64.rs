//! The x86_64 SM4 kernels (see the parent module for the method and the soundness argument).
//!
//! Layout: blocks are loaded whole, each 32-bit word byte-swapped to an integer (SM4 is
//! big-endian), then a 4×4 transpose of 32-bit lanes per 128-bit lane puts word j of four
//! blocks in register X_j. A round is then X_j ^= T(X_{j+1} ^ X_{j+2} ^ X_{j+3} ^ rk), four
//! blocks per 128 bits of register width, and the final transpose writes (X3, X2, X1, X0) back.
//! T = L∘τ: τ is the S-box on every byte (computed, see `sm4_affine`), L(B) = B ⊕ (B<<<2) ⊕
//! (B<<<10) ⊕ (B<<<18) ⊕ (B<<<24), done as B ⊕ (B<<<24) ⊕ ((B ⊕ (B<<<8) ⊕ (B<<<16))<<<2) with
//! byte shuffles for the rotations by multiples of 8 (or `vprold` on AVX-512).

use super::Block;
use super::sm4_affine::{
    GFNI_POST, GFNI_POST_C, GFNI_PRE, GFNI_PRE_C, POST_HI, POST_LO, PRE_HI, PRE_LO,
};
use core::arch::x86_64::*;
use std::arch::is_x86_feature_detected;
use zeroize::Zeroize;

const C1: i32 = GFNI_PRE_C as i32;
const C2: i32 = GFNI_POST_C as i32;

/// `pshufb` masks (output byte i takes input byte mask[i]).
const BSWAP32: [u8; 16] = [3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12];
const ROL8: [u8; 16] = [3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14];
const ROL16: [u8; 16] = [2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13];
const ROL24: [u8; 16] = [1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12];
/// AES InvShiftRows: applied before `aesenclast`, whose ShiftRows then puts every byte back in
/// its place, so the S-box acts byte for byte.
const INV_SHIFT_ROWS: [u8; 16] = [0, 13, 10, 7, 4, 1, 14, 11, 8, 5, 2, 15, 12, 9, 6, 3];

pub(super) fn has_aesni() -> bool {
    is_x86_feature_detected!("aes") && is_x86_feature_detected!("ssse3")
}

pub(super) fn has_aesni_avx2() -> bool {
    // SSSE3 too: the key schedule of every AES kernel runs `aesni_tau` (aes + ssse3).
    has_aesni() && is_x86_feature_detected!("avx") && is_x86_feature_detected!("avx2")
}

pub(super) fn has_vaes_avx2() -> bool {
    has_aesni_avx2() && is_x86_feature_detected!("vaes")
}

pub(super) fn has_gfni_avx2() -> bool {
    is_x86_feature_detected!("gfni")
        && is_x86_feature_detected!("avx")
        && is_x86_feature_detected!("avx2")
}

pub(super) fn has_gfni_avx512() -> bool {
    // AVX2 too: short tails run on the AVX2 kernel (every AVX-512 CPU has it).
    has_gfni_avx2() && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
}

pub(super) fn feature_summary() -> String {
    let f = [
        ("aes", is_x86_feature_detected!("aes")),
        ("ssse3", is_x86_feature_detected!("ssse3")),
        ("pclmulqdq", is_x86_feature_detected!("pclmulqdq")),
        ("avx", is_x86_feature_detected!("avx")),
        ("avx2", is_x86_feature_detected!("avx2")),
        ("gfni", is_x86_feature_detected!("gfni")),
        ("avx512f", is_x86_feature_detected!("avx512f")),
        ("avx512bw", is_x86_feature_detected!("avx512bw")),
        ("vaes", is_x86_feature_detected!("vaes")),
        ("vpclmulqdq", is_x86_feature_detected!("vpclmulqdq")),
    ];
    f.iter()
        .map(|(n, on)| format!("{n}{}", if *on { '+' } else { '-' }))
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// Loads and stores (SSE2 is part of the x86_64 baseline; wider forms carry their features)

#[inline(always)]
fn load128(b: &[u8; 16]) -> __m128i {
    // SAFETY: `b` is 16 readable bytes and `loadu` has no alignment requirement; SSE2 is always
    // present on x86_64.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

#[inline(always)]
fn store128(b: &mut [u8; 16], v: __m128i) {
    // SAFETY: `b` is 16 writable bytes, `storeu` has no alignment requirement; SSE2 baseline.
    unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), v) }
}

#[inline]
#[target_feature(enable = "avx")]
fn load256(b: &[Block; 2]) -> __m256i {
    // SAFETY: `b` is 32 readable contiguous bytes, no alignment needed; AVX is enabled on this
    // function, so only code compiled with AVX (the AVX2 kernels, entered after their feature
    // check) calls it without `unsafe`.
    unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx")]
fn store256(b: &mut [Block; 2], v: __m256i) {
    // SAFETY: `b` is 32 writable contiguous bytes, no alignment needed; AVX as in `load256`.
    unsafe { _mm256_storeu_si256(b.as_mut_ptr().cast(), v) }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn load512(b: &[Block; 4]) -> __m512i {
    // SAFETY: `b` is 64 readable contiguous bytes, no alignment needed; AVX-512F is enabled on
    // this function, so only code compiled with it (the GFNI+AVX-512 kernel, entered after its
    // feature check) calls it without `unsafe`.
    unsafe { _mm512_loadu_si512(b.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn store512(b: &mut [Block; 4], v: __m512i) {
    // SAFETY: `b` is 64 writable contiguous bytes, no alignment needed; AVX-512F as in `load512`.
    unsafe { _mm512_storeu_si512(b.as_mut_ptr().cast(), v) }
}

/// Runs `kernel` on `tail` (fewer blocks than the kernel takes) through a zero-padded copy,
/// wiped afterwards.
#[inline(always)]
fn padded<const N: usize>(tail: &mut [Block], kernel: impl FnOnce(&mut [Block; N])) {
    if tail.is_empty() {
        return;
    }
    let mut tmp = [[0u8; 16]; N];
    let n = tail.len().min(N);
    tmp[..n].copy_from_slice(&tail[..n]);
    kernel(&mut tmp);
    tail[..n].copy_from_slice(&tmp[..n]);
    tmp.zeroize();
}

// ---------------------------------------------------------------------------------------------
// AES-NI: 4 blocks per XMM set, two sets interleaved

#[derive(Clone, Copy)]
struct AesNiConsts {
    nib: __m128i,
    pre_lo: __m128i,
    pre_hi: __m128i,
    post_lo: __m128i,
    post_hi: __m128i,
    inv_sr: __m128i,
    rol8: __m128i,
    rol16: __m128i,
    rol24: __m128i,
    bswap: __m128i,
}

impl AesNiConsts {
    #[inline(always)]
    fn load() -> Self {
        Self {
            nib: load128(&[0x0f; 16]),
            pre_lo: load128(&PRE_LO),
            pre_hi: load128(&PRE_HI),
            post_lo: load128(&POST_LO),
            post_hi: load128(&POST_HI),
            inv_sr: load128(&INV_SHIFT_ROWS),
            rol8: load128(&ROL8),
            rol16: load128(&ROL16),
            rol24: load128(&ROL24),
            bswap: load128(&BSWAP32),
        }
    }
}

/// τ on every byte: pre-affine (nibble tables), AES S-box, post-affine (nibble tables).
#[inline]
#[target_feature(enable = "aes,ssse3")]
fn aesni_sbox(x: __m128i, c: &AesNiConsts) -> __m128i {
    let lo = _mm_and_si128(x, c.nib);
    let hi = _mm_and_si128(_mm_srli_epi16::<4>(x), c.nib);
    let y = _mm_xor_si128(
        _mm_shuffle_epi8(c.pre_lo, lo),
        _mm_shuffle_epi8(c.pre_hi, hi),
    );
    let y = _mm_shuffle_epi8(y, c.inv_sr);
    let z = _mm_aesenclast_si128(y, _mm_setzero_si128());
    let lo = _mm_and_si128(z, c.nib);
    let hi = _mm_and_si128(_mm_srli_epi16::<4>(z), c.nib);
    _mm_xor_si128(
        _mm_shuffle_epi8(c.post_lo, lo),
        _mm_shuffle_epi8(c.post_hi, hi),
    )
}

/// T = L∘τ on four words.
#[inline]
#[target_feature(enable = "aes,ssse3")]
fn aesni_t(x: __m128i, c: &AesNiConsts) -> __m128i {
    let b = aesni_sbox(x, c);
    let r8 = _mm_shuffle_epi8(b, c.rol8);
    let r16 = _mm_shuffle_epi8(b, c.rol16);
    let r24 = _mm_shuffle_epi8(b, c.rol24);
    let s = _mm_xor_si128(_mm_xor_si128(b, r8), r16);
    let s2 = _mm_or_si128(_mm_slli_epi32::<2>(s), _mm_srli_epi32::<30>(s));
    _mm_xor_si128(_mm_xor_si128(b, r24), s2)
}

#[inline]
#[target_feature(enable = "sse2")]
fn transpose128(r: [__m128i; 4]) -> [__m128i; 4] {
    let t0 = _mm_unpacklo_epi32(r[0], r[1]);
    let t1 = _mm_unpacklo_epi32(r[2], r[3]);
    let t2 = _mm_unpackhi_epi32(r[0], r[1]);
    let t3 = _mm_unpackhi_epi32(r[2], r[3]);
    [
        _mm_unpacklo_epi64(t0, t1),
        _mm_unpackhi_epi64(t0, t1),
        _mm_unpacklo_epi64(t2, t3),
        _mm_unpackhi_epi64(t2, t3),
    ]
}

#[inline]
#[target_feature(enable = "aes,ssse3")]
fn aesni_groups<const G: usize>(rk: &[u32; 32], c: &AesNiConsts, groups: &mut [[Block; 4]; G]) {
    let mut x = [[_mm_setzero_si128(); 4]; G];
    for g in 0..G {
        let b = &groups[g];
        x[g] = transpose128([
            _mm_shuffle_epi8(load128(&b[0]), c.bswap),
            _mm_shuffle_epi8(load128(&b[1]), c.bswap),
            _mm_shuffle_epi8(load128(&b[2]), c.bswap),
            _mm_shuffle_epi8(load128(&b[3]), c.bswap),
        ]);
    }
    for r in 0..8 {
        let k = _mm_set1_epi32(rk[4 * r] as i32);
        for xg in x.iter_mut() {
            let s = _mm_xor_si128(_mm_xor_si128(xg[1], xg[2]), _mm_xor_si128(xg[3], k));
            xg[0] = _mm_xor_si128(xg[0], aesni_t(s, c));
        }
        let k = _mm_set1_epi32(rk[4 * r + 1] as i32);
        for xg in x.iter_mut() {
            let s = _mm_xor_si128(_mm_xor_si128(xg[2], xg[3]), _mm_xor_si128(xg[0], k));
            xg[1] = _mm_xor_si128(xg[1], aesni_t(s, c));
        }
        let k = _mm_set1_epi32(rk[4 * r + 2] as i32);
        for xg in x.iter_mut() {
            let s = _mm_xor_si128(_mm_xor_si128(xg[3], xg[0]), _mm_xor_si128(xg[1], k));
            xg[2] = _mm_xor_si128(xg[2], aesni_t(s, c));
        }
        let k = _mm_set1_epi32(rk[4 * r + 3] as i32);
        for xg in x.iter_mut() {
            let s = _mm_xor_si128(_mm_xor_si128(xg[0], xg[1]), _mm_xor_si128(xg[2], k));
            xg[3] = _mm_xor_si128(xg[3], aesni_t(s, c));
        }
    }
    for g in 0..G {
        let out = transpose128([x[g][3], x[g][2], x[g][1], x[g][0]]);
        for (b, v) in groups[g].iter_mut().zip(out) {
            store128(b, _mm_shuffle_epi8(v, c.bswap));
        }
    }
}

#[target_feature(enable = "aes,ssse3")]
fn aesni_blocks(rk: &[u32; 32], blocks: &mut [Block]) {
    let c = AesNiConsts::load();
    let (quads, tail) = blocks.as_chunks_mut::<4>();
    let (pairs, single) = quads.as_chunks_mut::<2>();
    for p in pairs {
        aesni_groups::<2>(rk, &c, p);
    }
    for q in single {
        aesni_groups::<1>(rk, &c, core::array::from_mut(q));
    }
    padded::<4>(tail, |t| {
        aesni_groups::<1>(rk, &c, core::array::from_mut(t))
    });
}

#[target_feature(enable = "aes,ssse3")]
fn aesni_tau_inner(a: u32) -> u32 {
    let c = AesNiConsts::load();
    _mm_cvtsi128_si32(aesni_sbox(_mm_cvtsi32_si128(a as i32), &c)) as u32
}

pub(super) fn aesni_encrypt(rk: &[u32; 32], blocks: &mut [Block]) {
    // SAFETY: reached only through `Kernel::encrypt` on a `Kernel` of kind AesNi, which
    // `Kernel::detect` makes only after `has_aesni()` found `aes` and `ssse3`.
    unsafe { aesni_blocks(rk, blocks) }
}

pub(super) fn aesni_tau(a: u32) -> u32 {
    // SAFETY: reached only through `Kernel::tau` on a `Kernel` of kind AesNi, AesNiAvx2 or
    // VaesAvx2, each made by `Kernel::detect` only after `has_aesni()` found `aes` and `ssse3`
    // (`has_aesni_avx2()` and `has_vaes_avx2()` include it).
    unsafe { aesni_tau_inner(a) }
}

// ---------------------------------------------------------------------------------------------
// AES-NI + AVX2 (and VAES + AVX2): 8 blocks per YMM set, two sets interleaved
//
// The same method as the XMM kernel on 256-bit registers. Without VAES, `aesenclast` only
// exists on 128 bits: the two halves go through it separately. With VAES it is one instruction.

#[derive(Clone, Copy)]
struct Aes256Consts {
    nib: __m256i,
    pre_lo: __m256i,
    pre_hi: __m256i,
    post_lo: __m256i,
    post_hi: __m256i,
    inv_sr: __m256i,
    rol8: __m256i,
    rol16: __m256i,
    rol24: __m256i,
    bswap: __m256i,
}

impl Aes256Consts {
    #[inline]
    #[target_feature(enable = "avx,avx2")]
    fn load() -> Self {
        let b = |t: &[u8; 16]| _mm256_broadcastsi128_si256(load128(t));
        Self {
            nib: _mm256_set1_epi8(0x0f),
            pre_lo: b(&PRE_LO),
            pre_hi: b(&PRE_HI),
            post_lo: b(&POST_LO),
            post_hi: b(&POST_HI),
            inv_sr: b(&INV_SHIFT_ROWS),
            rol8: b(&ROL8),
            rol16: b(&ROL16),
            rol24: b(&ROL24),
            bswap: b(&BSWAP32),
        }
    }
}

/// The nibble-table affine map `lo[x & 15] ^ hi[x >> 4]` on every byte.
#[inline]
#[target_feature(enable = "avx,avx2")]
fn affine256(x: __m256i, lo: __m256i, hi: __m256i, nib: __m256i) -> __m256i {
    let l = _mm256_and_si256(x, nib);
    let h = _mm256_and_si256(_mm256_srli_epi16::<4>(x), nib);
    _mm256_xor_si256(_mm256_shuffle_epi8(lo, l), _mm256_shuffle_epi8(hi, h))
}

/// L (see the module docs) on eight words.
#[inline]
#[target_feature(enable = "avx,avx2")]
fn l256(b: __m256i, rol8: __m256i, rol16: __m256i, rol24: __m256i) -> __m256i {
    let r8 = _mm256_shuffle_epi8(b, rol8);
    let r16 = _mm256_shuffle_epi8(b, rol16);
    let r24 = _mm256_shuffle_epi8(b, rol24);
    let s = _mm256_xor_si256(_mm256_xor_si256(b, r8), r16);
    let s2 = _mm256_or_si256(_mm256_slli_epi32::<2>(s), _mm256_srli_epi32::<30>(s));
    _mm256_xor_si256(_mm256_xor_si256(b, r24), s2)
}

#[inline]
#[target_feature(enable = "aes,avx,avx2")]
fn aes256_t(x: __m256i, c: &Aes256Consts) -> __m256i {
    let y = affine256(x, c.pre_lo, c.pre_hi, c.nib);
    let y = _mm256_shuffle_epi8(y, c.inv_sr);
    let zero = _mm_setzero_si128();
    let lo = _mm_aesenclast_si128(_mm256_castsi256_si128(y), zero);
    let hi = _mm_aesenclast_si128(_mm256_extracti128_si256::<1>(y), zero);
    let z = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), hi);
    let b = affine256(z, c.post_lo, c.post_hi, c.nib);
    l256(b, c.rol8, c.rol16, c.rol24)
}

#[inline]
#[target_feature(enable = "vaes,avx,avx2")]
fn vaes256_t(x: __m256i, c: &Aes256Consts) -> __m256i {
    let y = affine256(x, c.pre_lo, c.pre_hi, c.nib);
    let y = _mm256_shuffle_epi8(y, c.inv_sr);
    let z = _mm256_aesenclast_epi128(y, _mm256_setzero_si256());
    let b = affine256(z, c.post_lo, c.post_hi, c.nib);
    l256(b, c.rol8, c.rol16, c.rol24)
}

/// The round loop over `G` sets of eight blocks with the T function `$t`, for the two AES
/// kernels (a macro, because each needs its own `#[target_feature]` set).
macro_rules! aes256_kernel {
    ($groups:ident, $blocks:ident, $features:literal, $t:ident) => {
        #[inline]
        #[target_feature(enable = $features)]
        fn $groups<const G: usize>(rk: &[u32; 32], c: &Aes256Consts, groups: &mut [[Block; 8]; G]) {
            let mut x = [[_mm256_setzero_si256(); 4]; G];
            for g in 0..G {
                let (b, _) = groups[g].as_chunks::<2>();
                x[g] = transpose256([
                    _mm256_shuffle_epi8(load256(&b[0]), c.bswap),
                    _mm256_shuffle_epi8(load256(&b[1]), c.bswap),
                    _mm256_shuffle_epi8(load256(&b[2]), c.bswap),
                    _mm256_shuffle_epi8(load256(&b[3]), c.bswap),
                ]);
            }
            // Written out per word so that the state stays in registers.
            macro_rules! step {
                ($k:expr, $a:literal, $b:literal, $c:literal, $d:literal) => {
                    let k = _mm256_set1_epi32($k as i32);
                    for xg in x.iter_mut() {
                        let s = _mm256_xor_si256(
                            _mm256_xor_si256(xg[$b], xg[$c]),
                            _mm256_xor_si256(xg[$d], k),
                        );
                        xg[$a] = _mm256_xor_si256(xg[$a], $t(s, c));
                    }
                };
            }
            for r in 0..8 {
                step!(rk[4 * r], 0, 1, 2, 3);
                step!(rk[4 * r + 1], 1, 2, 3, 0);
                step!(rk[4 * r + 2], 2, 3, 0, 1);
                step!(rk[4 * r + 3], 3, 0, 1, 2);
            }
            for g in 0..G {
                let out = transpose256([x[g][3], x[g][2], x[g][1], x[g][0]]);
                let (b, _) = groups[g].as_chunks_mut::<2>();
                for (pair, v) in b.iter_mut().zip(out) {
                    store256(pair, _mm256_shuffle_epi8(v, c.bswap));
                }
            }
        }

        #[target_feature(enable = $features)]
        fn $blocks(rk: &[u32; 32], blocks: &mut [Block]) {
            let c = Aes256Consts::load();
            let (octets, tail) = blocks.as_chunks_mut::<8>();
            let (sixteens, eight) = octets.as_chunks_mut::<2>();
            for s in sixteens {
                $groups::<2>(rk, &c, s);
            }
            for e in eight {
                $groups::<1>(rk, &c, core::array::from_mut(e));
            }
            if tail.len() <= 4 {
                // A lone block (CBC encryption, CCM's MAC) is latency-bound: the XMM kernel's
                // single `aesenclast` per round is quicker than splitting a YMM register.
                aesni_blocks(rk, tail);
            } else {
                padded::<8>(tail, |t| $groups::<1>(rk, &c, core::array::from_mut(t)));
            }
        }
    };
}

aes256_kernel!(aes256_groups, aes256_blocks, "aes,avx,avx2", aes256_t);
aes256_kernel!(
    vaes256_groups,
    vaes256_blocks,
    "aes,vaes,avx,avx2",
    vaes256_t
);

pub(super) fn aesni_avx2_encrypt(rk: &[u32; 32], blocks: &mut [Block]) {
    // SAFETY: reached only through `Kernel::encrypt` on a `Kernel` of kind AesNiAvx2, which
    // `Kernel::detect` makes only after `has_aesni_avx2()` found `aes`, `ssse3`, `avx` and
    // `avx2`.
    unsafe { aes256_blocks(rk, blocks) }
}

pub(super) fn vaes_avx2_encrypt(rk: &[u32; 32], blocks: &mut [Block]) {
    // SAFETY: reached only through `Kernel::encrypt` on a `Kernel` of kind VaesAvx2, which
    // `Kernel::detect` makes only after `has_vaes_avx2()` found `aes`, `ssse3`, `vaes`, `avx`
    // and `avx2`.
    unsafe { vaes256_blocks(rk, blocks) }
}

// ---------------------------------------------------------------------------------------------
// GFNI + AVX2: 8 blocks per YMM set

#[derive(Clone, Copy)]
struct Avx2Consts {
    m1: __m256i,
    m2: __m256i,
    rol8: __m256i,
    rol16: __m256i,
    rol24: __m256i,
    bswap: __m256i,
}

impl Avx2Consts {
    #[inline]
    #[target_feature(enable = "avx,avx2")]
    fn load() -> Self {
        Self {
            m1: _mm256_set1_epi64x(GFNI_PRE as i64),
            m2: _mm256_set1_epi64x(GFNI_POST as i64),
            rol8: _mm256_broadcastsi128_si256(load128(&ROL8)),
            rol16: _mm256_broadcastsi128_si256(load128(&ROL16)),
            rol24: _mm256_broadcastsi128_si256(load128(&ROL24)),
            bswap: _mm256_broadcastsi128_si256(load128(&BSWAP32)),
        }
    }
}

#[inline]
#[target_feature(enable = "gfni,avx,avx2")]
fn gfni256_t(x: __m256i, c: &Avx2Consts) -> __m256i {
    let y = _mm256_gf2p8affine_epi64_epi8::<C1>(x, c.m1);
    let b = _mm256_gf2p8affineinv_epi64_epi8::<C2>(y, c.m2);
    let r8 = _mm256_shuffle_epi8(b, c.rol8);
    let r16 = _mm256_shuffle_epi8(b, c.rol16);
    let r24 = _mm256_shuffle_epi8(b, c.rol24);
    let s = _mm256_xor_si256(_mm256_xor_si256(b, r8), r16);
    let s2 = _mm256_or_si256(_mm256_slli_epi32::<2>(s), _mm256_srli_epi32::<30>(s));
    _mm256_xor_si256(_mm256_xor_si256(b, r24), s2)
}

#[inline]
#[target_feature(enable = "avx,avx2")]
fn transpose256(r: [__m256i; 4]) -> [__m256i; 4] {
    let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
    let t1 = _mm256_unpacklo_epi32(r[2], r[3]);
    let t2 = _mm256_unpackhi_epi32(r[0], r[1]);
    let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    [
        _mm256_unpacklo_epi64(t0, t1),
        _mm256_unpackhi_epi64(t0, t1),
        _mm256_unpacklo_epi64(t2, t3),
        _mm256_unpackhi_epi64(t2, t3),
    ]
}

/// `G` sets of eight blocks (pair k of a set fills the k-th YMM register).
#[inline]
#[target_feature(enable = "gfni,avx,avx2")]
fn gfni256_groups<const G: usize>(rk: &[u32; 32], c: &Avx2Consts, groups: &mut [[Block; 8]; G]) {
    let mut x = [[_mm256_setzero_si256(); 4]; G];
    for g in 0..G {
        let (b, _) = groups[g].as_chunks::<2>();
        x[g] = transpose256([
            _mm256_shuffle_epi8(load256(&b[0]), c.bswap),
            _mm256_shuffle_epi8(load256(&b[1]), c.bswap),
            _mm256_shuffle_epi8(load256(&b[2]), c.bswap),
            _mm256_shuffle_epi8(load256(&b[3]), c.bswap),
        ]);
    }
    for r in 0..8 {
        let k = _mm256_set1_epi32(rk[4 * r] as i32);
        for xg in x.iter_mut() {
            let s = _mm256_xor_si256(_mm256_xor_si256(xg[1], xg[2]), _mm256_xor_si256(xg[3], k));
            xg[0] = _mm256_xor_si256(xg[0], gfni256_t(s, c));
        }
        let k = _mm256_set1_epi32(rk[4 * r + 1] as i32);
        for xg in x.iter_mut() {
            let s = _mm256_xor_si256(_mm256_xor_si256(xg[2], xg[3]), _mm256_xor_si256(xg[0], k));
            xg[1] = _mm256_xor_si256(xg[1], gfni256_t(s, c));
        }
        let k = _mm256_set1_epi32(rk[4 * r + 2] as i32);
        for xg in x.iter_mut() {
            let s = _mm256_xor_si256(_mm256_xor_si256(xg[3], xg[0]), _mm256_xor_si256(xg[1], k));
            xg[2] = _mm256_xor_si256(xg[2], gfni256_t(s, c));
        }
        let k = _mm256_set1_epi32(rk[4 * r + 3] as i32);
        for xg in x.iter_mut() {
            let s = _mm256_xor_si256(_mm256_xor_si256(xg[0], xg[1]), _mm256_xor_si256(xg[2], k));
            xg[3] = _mm256_xor_si256(xg[3], gfni256_t(s, c));
        }
    }
    for g in 0..G {
        let out = transpose256([x[g][3], x[g][2], x[g][1], x[g][0]]);
        let (b, _) = groups[g].as_chunks_mut::<2>();
        for (pair, v) in b.iter_mut().zip(out) {
            store256(pair, _mm256_shuffle_epi8(v, c.bswap));
        }
    }
}

#[target_feature(enable = "gfni,avx,avx2")]
fn gfni256_blocks(rk: &[u32; 32], blocks: &mut [Block]) {
    let c = Avx2Consts::load();
    let (octets, tail) = blocks.as_chunks_mut::<8>();
    let (sixteens, eight) = octets.as_chunks_mut::<2>();
    for s in sixteens {
        gfni256_groups::<2>(rk, &c, s);
    }
    for e in eight {
        gfni256_groups::<1>(rk, &c, core::array::from_mut(e));
    }
    padded::<8>(tail, |t| {
        gfni256_groups::<1>(rk, &c, core::array::from_mut(t))
    });
}

// ---------------------------------------------------------------------------------------------
// GFNI + AVX-512: 16 blocks per ZMM set

#[inline]
#[target_feature(enable = "gfni,avx512f,avx512bw")]
fn gfni512_t(x: __m512i, m1: __m512i, m2: __m512i) -> __m512i {
    let y = _mm512_gf2p8affine_epi64_epi8::<C1>(x, m1);
    let b = _mm512_gf2p8affineinv_epi64_epi8::<C2>(y, m2);
    let l =
        _mm512_ternarylogic_epi32::<0x96>(b, _mm512_rol_epi32::<2>(b), _mm512_rol_epi32::<10>(b));
    _mm512_ternarylogic_epi32::<0x96>(l, _mm512_rol_epi32::<18>(b), _mm512_rol_epi32::<24>(b))
}

#[inline]
#[target_feature(enable = "avx512f")]
fn transpose512(r: [__m512i; 4]) -> [__m512i; 4] {
    let t0 = _mm512_unpacklo_epi32(r[0], r[1]);
    let t1 = _mm512_unpacklo_epi32(r[2], r[3]);
    let t2 = _mm512_unpackhi_epi32(r[0], r[1]);
    let t3 = _mm512_unpackhi_epi32(r[2], r[3]);
    [
        _mm512_unpacklo_epi64(t0, t1),
        _mm512_unpackhi_epi64(t0, t1),
        _mm512_unpacklo_epi64(t2, t3),
        _mm512_unpackhi_epi64(t2, t3),
    ]
}

#[target_feature(enable = "gfni,avx512f,avx512bw")]
fn gfni512_sixteen(rk: &[u32; 32], blocks: &mut [Block; 16]) {
    let (b, _) = blocks.as_chunks_mut::<4>();
    let m1 = _mm512_set1_epi64(GFNI_PRE as i64);
    let m2 = _mm512_set1_epi64(GFNI_POST as i64);
    let bswap = _mm512_broadcast_i32x4(load128(&BSWAP32));
    let mut x = transpose512([
        _mm512_shuffle_epi8(load512(&b[0]), bswap),
        _mm512_shuffle_epi8(load512(&b[1]), bswap),
        _mm512_shuffle_epi8(load512(&b[2]), bswap),
        _mm512_shuffle_epi8(load512(&b[3]), bswap),
    ]);
    for r in 0..8 {
        let k = _mm512_set1_epi32(rk[4 * r] as i32);
        let s = _mm512_ternarylogic_epi32::<0x96>(x[1], x[2], _mm512_xor_si512(x[3], k));
        x[0] = _mm512_xor_si512(x[0], gfni512_t(s, m1, m2));
        let k = _mm512_set1_epi32(rk[4 * r + 1] as i32);
        let s = _mm512_ternarylogic_epi32::<0x96>(x[2], x[3], _mm512_xor_si512(x[0], k));
        x[1] = _mm512_xor_si512(x[1], gfni512_t(s, m1, m2));
        let k = _mm512_set1_epi32(rk[4 * r + 2] as i32);
        let s = _mm512_ternarylogic_epi32::<0x96>(x[3], x[0], _mm512_xor_si512(x[1], k));
        x[2] = _mm512_xor_si512(x[2], gfni512_t(s, m1, m2));
        let k = _mm512_set1_epi32(rk[4 * r + 3] as i32);
        let s = _mm512_ternarylogic_epi32::<0x96>(x[0], x[1], _mm512_xor_si512(x[2], k));
        x[3] = _mm512_xor_si512(x[3], gfni512_t(s, m1, m2));
    }
    let out = transpose512([x[3], x[2], x[1], x[0]]);
    for (q, v) in b.iter_mut().zip(out) {
        store512(q, _mm512_shuffle_epi8(v, bswap));
    }
}

#[target_feature(enable = "gfni,avx,avx2,avx512f,avx512bw")]
fn gfni512_blocks(rk: &[u32; 32], blocks: &mut [Block]) {
    let (sixteens, tail) = blocks.as_chunks_mut::<16>();
    for s in sixteens {
        gfni512_sixteen(rk, s);
    }
    if tail.len() <= 8 {
        // A lone block (CBC encryption, CCM's MAC, GCM's H) or a short tail: half the work on
        // the AVX2 kernel.
        gfni256_blocks(rk, tail);
    } else {
        padded::<16>(tail, |t| gfni512_sixteen(rk, t));
    }
}

#[target_feature(enable = "gfni")]
fn gfni_tau_inner(a: u32) -> u32 {
    let x = _mm_cvtsi32_si128(a as i32);
    let m1 = _mm_set1_epi64x(GFNI_PRE as i64);
    let m2 = _mm_set1_epi64x(GFNI_POST as i64);
    let y = _mm_gf2p8affine_epi64_epi8::<C1>(x, m1);
    _mm_cvtsi128_si32(_mm_gf2p8affineinv_epi64_epi8::<C2>(y, m2)) as u32
}

pub(super) fn gfni_avx2_encrypt(rk: &[u32; 32], blocks: &mut [Block]) {
    // SAFETY: reached only through `Kernel::encrypt` on a `Kernel` of kind GfniAvx2, which
    // `Kernel::detect` makes only after `has_gfni_avx2()` found `gfni`, `avx` and `avx2`.
    unsafe { gfni256_blocks(rk, blocks) }
}

pub(super) fn gfni_avx512_encrypt(rk: &[u32; 32], blocks: &mut [Block]) {
    // SAFETY: reached only through `Kernel::encrypt` on a `Kernel` of kind GfniAvx512, which
    // `Kernel::detect` makes only after `has_gfni_avx512()` found `gfni`, `avx`, `avx2`,
    // `avx512f` and `avx512bw`.
    unsafe { gfni512_blocks(rk, blocks) }
}

pub(super) fn gfni_tau(a: u32) -> u32 {
    // SAFETY: reached only through `Kernel::tau` on a GFNI kernel, made after `gfni` was
    // detected (both GFNI kernels require it).
    unsafe { gfni_tau_inner(a) }
}
