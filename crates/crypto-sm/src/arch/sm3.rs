//! SM3 kernels (GB/T 32905-2016) that this CPU can run: which exist, and the one type that
//! proves a kernel's CPU features were detected before it is called.
//!
//! - **AVX-512VL** (`ssse3`, `avx512f`, `avx512vl`, and AVX2 for the lanes): one message with
//!   the message expansion in XMM registers beside the scalar rounds; eight messages at once in
//!   YMM lanes with one-instruction rotations.
//! - **AVX2** (`avx`, `avx2`): eight messages at once in YMM lanes (rotations as two shifts and
//!   an OR). One message runs the portable code: the expansion alone in SSE registers measured
//!   slower than the portable rolling schedule here.
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

    /// Compresses `blocks` into `state` (one message); `false` if this kernel has no
    /// single-message code and the caller must use the portable compression.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    pub(crate) fn compress(self, state: &mut [u32; 8], blocks: &[[u8; 64]]) -> bool {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2 => false,
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl => {
                x86::compress_avx512vl(state, blocks);
                true
            }
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
