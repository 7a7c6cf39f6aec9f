//! SM3 kernels (GB/T 32905-2016) that this CPU can run: which exist, and the one type that
//! proves a kernel's CPU features were detected before it is called.
//!
//! Eight independent messages at once, one per 32-bit lane of YMM registers, one 64-byte block
//! of each per call (for `sm3::sm3_many`):
//! - **AVX2** (`avx`, `avx2`): rotations as two shifts and an OR;
//! - **AVX-512VL** (`avx512f`, `avx512vl`, and AVX2): rotations with `vprold`, and LLVM forms
//!   `vpternlogd` from the Boolean functions.
//!
//! One message has no kernel: see `sm3`'s module docs.
//!
//! Soundness: as for SM4 (`arch` module docs), an [`Sm3Kernel`] exists only after
//! `is_x86_feature_detected!` reported every feature its `#[target_feature]` functions enable.
//! SM3 hashes public and secret data alike (HMAC keys, the KDF's shared secret): no address or
//! branch in these kernels depends on the data, as in the portable code.

#[cfg(target_arch = "x86_64")]
use super::sm3_x86_64 as x86;
use crate::sm3::Sm3Backend;

/// An SM3 kernel this CPU can run; only [`Sm3Kernel::detect`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sm3Kernel(Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512Vl,
}

impl Sm3Kernel {
    /// The kernel for `backend` if this CPU has its features; `None` for
    /// [`Sm3Backend::Portable`], which is not a kernel.
    pub(crate) fn detect(backend: Sm3Backend) -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            let (kind, present) = match backend {
                Sm3Backend::Portable => return None,
                Sm3Backend::Avx2 => (Kind::Avx2, x86::has_avx2()),
                Sm3Backend::Avx512Vl => (Kind::Avx512Vl, x86::has_avx512vl()),
            };
            present.then_some(Self(kind))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = backend;
            None
        }
    }

    /// One block of eight messages: `state[i][lane]` is word i of a lane's chaining value,
    /// `block[k][lane]` word k of its block (as an integer).
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    pub(crate) fn lanes(self, state: &mut [[u32; 8]; 8], block: &[[u32; 8]; 16]) {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2 => x86::lanes_avx2(state, block),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl => x86::lanes_avx512vl(state, block),
        }
    }
}
