//! CPU-specific code of crypto-sm: the one place in the crate where `unsafe` is allowed, for
//! SIMD intrinsics behind runtime feature detection (the workspace's other `unsafe` is at its
//! FFI boundaries, `softtoken::ffi` and `hsm::ffi`).
//!
//! What lives here: SM4 encryption of 1–16 blocks at once, with the S-box computed — never
//! looked up in memory — on x86_64:
//!
//! - **AES-NI** (`aes` + `ssse3`): four blocks per set of XMM registers, one 32-bit word of each
//!   block per lane. The S-box is AES's S-box (`aesenclast` with a zero key) between two affine
//!   maps applied as 4-bit lookups with `pshufb`, whose tables are registers, not memory
//!   (see `arch::sm4_affine`). Two sets are interleaved, so eight blocks run per call.
//! - **AES-NI + AVX2** (`aes` + `avx2`): the same on YMM registers, eight blocks per set, two
//!   sets per pass; `aesenclast` runs on each 128-bit half.
//! - **VAES + AVX2** (`vaes` + `avx2`): as AES-NI + AVX2 with one 256-bit `vaesenclast`.
//! - **GFNI + AVX2**: eight blocks per set of YMM registers; the S-box is `gf2p8affineqb`
//!   followed by `gf2p8affineinvqb` (inversion in GF(2^8) with the output affine map).
//!   Sixteen blocks per call.
//! - **GFNI + AVX-512** (`avx512f` + `avx512bw`, and AVX2 for tails of up to eight blocks,
//!   which go to the AVX2 kernel): sixteen blocks per set of ZMM registers, the same S-box,
//!   rotations with `vprold` and three-input XORs with `vpternlogd`.
//!
//! Each kernel is also used on one lane for the key schedule's S-box (`Kernel::tau`).
//!
//! And SM3 (`arch::sm3`): eight messages at once in YMM lanes (AVX2, or AVX-512VL's rotations)
//! for batches of short items (transaction IDs, Merkle nodes). The same soundness argument
//! holds: an `Sm3Kernel` exists only after detection.
//!
//! Soundness: a `Kernel` value can only be made by `Kernel::detect`, after
//! `is_x86_feature_detected!` (cached by std) reported every feature the kernel's
//! `#[target_feature]` functions enable. Holding a `Kernel` is therefore the proof that calling
//! them is sound; each `unsafe` block says which features it relies on. Loads and stores go
//! through references to whole blocks, so every pointer is in bounds. Asking for a backend this
//! CPU lacks gives `None`, never a call.
//!
//! Constant time: no memory address and no branch depends on key or data in these kernels; the
//! instructions used (`pshufb`, `aesenclast`, `gf2p8affine*`, shifts, XOR) have data-independent
//! latency on the CPUs that have them. What is not covered: register spills to the stack are not
//! wiped (nor are the RustCrypto crates'), and the modes above (`ctr`, `aes-gcm`'s GHASH through
//! `polyval`'s CLMUL backend, `ccm`, `cbc`) are RustCrypto code, constant time by design but
//! unaudited.
//!
//! On other architectures this module compiles to nothing callable: `Kernel::detect` always
//! returns `None` and SM4 uses the table implementation.

pub(crate) mod sm3;
#[cfg(target_arch = "x86_64")]
mod sm3_x86_64;
// Off x86_64 the constants have no kernel to feed; the derivation tests still run.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) mod sm4_affine;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use crate::sm4::Backend;

/// One SM4 block.
pub(crate) type Block = [u8; 16];

/// The most blocks any kernel processes in one pass; callers batch this many for speed.
pub(crate) const MAX_BLOCKS: usize = 16;

/// A SIMD SM4 kernel that this CPU can run (see the module docs: only [`Kernel::detect`] makes
/// one, after checking the CPU features it needs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Kernel(Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    #[cfg(target_arch = "x86_64")]
    AesNi,
    #[cfg(target_arch = "x86_64")]
    AesNiAvx2,
    #[cfg(target_arch = "x86_64")]
    VaesAvx2,
    #[cfg(target_arch = "x86_64")]
    GfniAvx2,
    #[cfg(target_arch = "x86_64")]
    GfniAvx512,
}

impl Kernel {
    /// The kernel for `backend`, if this CPU has the features it needs; `None` for
    /// [`Backend::Table`], which is not a kernel.
    pub(crate) fn detect(backend: Backend) -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            let (kind, present) = match backend {
                Backend::Table => return None,
                Backend::AesNi => (Kind::AesNi, x86_64::has_aesni()),
                Backend::AesNiAvx2 => (Kind::AesNiAvx2, x86_64::has_aesni_avx2()),
                Backend::VaesAvx2 => (Kind::VaesAvx2, x86_64::has_vaes_avx2()),
                Backend::GfniAvx2 => (Kind::GfniAvx2, x86_64::has_gfni_avx2()),
                Backend::GfniAvx512 => (Kind::GfniAvx512, x86_64::has_gfni_avx512()),
            };
            present.then_some(Self(kind))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = backend;
            None
        }
    }

    /// Encrypts `blocks` in place with the round keys `rk` (decryption: the same with the round
    /// keys reversed, GB/T 32907-2016 §7.2).
    // Off x86_64, `Kind` is empty and these bodies are an empty match.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    pub(crate) fn encrypt(self, rk: &[u32; 32], blocks: &mut [Block]) {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Kind::AesNi => x86_64::aesni_encrypt(rk, blocks),
            #[cfg(target_arch = "x86_64")]
            Kind::AesNiAvx2 => x86_64::aesni_avx2_encrypt(rk, blocks),
            #[cfg(target_arch = "x86_64")]
            Kind::VaesAvx2 => x86_64::vaes_avx2_encrypt(rk, blocks),
            #[cfg(target_arch = "x86_64")]
            Kind::GfniAvx2 => x86_64::gfni_avx2_encrypt(rk, blocks),
            #[cfg(target_arch = "x86_64")]
            Kind::GfniAvx512 => x86_64::gfni_avx512_encrypt(rk, blocks),
        }
    }

    /// τ (GB/T 32907-2016 §6.2): the S-box on each byte of `a`, for the key schedule.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    pub(crate) fn tau(self, a: u32) -> u32 {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Kind::AesNi | Kind::AesNiAvx2 | Kind::VaesAvx2 => x86_64::aesni_tau(a),
            #[cfg(target_arch = "x86_64")]
            Kind::GfniAvx2 | Kind::GfniAvx512 => x86_64::gfni_tau(a),
        }
    }
}

/// The CPU features that matter to SM4's kernels, as `name+` / `name-` words, for test and
/// benchmark reports.
pub fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        x86_64::feature_summary()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        String::from("not x86_64: SM4 has only the table backend")
    }
}
