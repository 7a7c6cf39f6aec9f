//! The software provider of gmchain's cryptography: SM3 (GB/T 32905), SM4 and its modes
//! (GB/T 32907, RFC 8998), and SM2 signatures, encryption and key exchange (GB/T 32918.1-.5),
//! built on the RustCrypto `sm2`, `sm3` and `sm4` crates, plus the key encodings OpenSSL 3 and
//! GmSSL 3 use (PKCS#8, SEC1, encrypted PKCS#8 with PBKDF2-HMAC-SM3 and SM4-CBC).
//!
//! What it refuses to do: open files, sockets or clocks (callers pass bytes and a
//! [`crypto::RandomSource`]); hold a private scalar in any type that is `Copy` or prints itself;
//! panic on any input. `sm2`'s own key types are never stored: secret scalars live in
//! [`sm2::PrivateKey`], zeroized on drop. Constant time: SM2 secret-scalar arithmetic (signing,
//! key generation, decryption, key exchange) is the RustCrypto constant-time field and scalar
//! code; SM2 signature verification, which sees only public data (key, digest, signature), runs
//! on this crate's own variable-time arithmetic specialised to sm2p256v1 (`sm2::verify`, about
//! 2.8× the RustCrypto path, which stays reachable as `sm2::verify_reference`). SM4 is constant
//! time (no secret-indexed table, no secret-dependent branch, key schedule included) on the
//! AES-NI and GFNI backends of [`arch`], which x86_64 CPUs with AES-NI use by default; it is a
//! table S-box, NOT constant time against cache timing, on the portable
//! [`sm4::Backend::Table`] that every other CPU uses (see [`sm4`] and ARCHITECTURE.md).
//! `unsafe` appears only in [`arch`].
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// The one module of this crate allowed `unsafe`: SIMD intrinsics (SM4's AES-NI and GFNI
// kernels) that need runtime CPU-feature detection. Every `unsafe` block in it states the
// feature check that makes it sound; ARCHITECTURE.md states the invariant.
#[allow(unsafe_code)]
pub mod arch;
pub mod danger;
pub mod keys;
mod provider;
pub mod rng;
pub mod sm2;
pub mod sm3;
pub mod sm4;

pub use provider::{SoftSigner, SoftSm4Key, SoftwareProvider};
