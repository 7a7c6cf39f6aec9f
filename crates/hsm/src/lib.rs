//! The PKCS#11 provider of gmchain's cryptography: SM2 keys that live in a hardware security
//! module (or a soft token) behind [`crypto::Signer`], [`crypto::Decrypter`], [`crypto::Sm4Key`],
//! [`crypto::RandomSource`] and [`crypto::KeyStore`]. The token's SM2 verification and SM3 are
//! inherent methods for the device checks; gmchain verifies and hashes in software.
//!
//! Vendors disagree on almost everything SM-specific in PKCS#11: mechanism and key type codes
//! (inside or outside `CKM_VENDOR_DEFINED`), `CKK_SM2` versus `CKK_EC` with the SM2 curve OID,
//! whether the token computes ZA or expects e = SM3(ZA‖M), raw or DER signatures, the order of
//! C1, C2 and C3. A [`Profile`] (one TOML file per module, in `hsm-profiles/`) records those
//! choices; the code follows the profile and guesses nothing.
//!
//! - [`Profile`]: load and validate a profile; resolve the module library.
//! - [`KeyUri`]: RFC 7512 `pkcs11:` URIs naming keys.
//! - [`Hsm`]: a connection to one token: a thread-safe session pool that recovers from lost
//!   sessions, lost logins and a re-initialised module; key generation, listing, signing,
//!   verification, encryption, SM3, SM4, wrapping, random numbers, deletion, token set-up.
//! - [`SelfCheck`]: what the module really offers (`C_GetMechanismInfo`, which answers for
//!   vendor codes that `cryptoki`'s mechanism list drops) and whether every private key is
//!   sensitive, never extractable and generated in the token.
//!
//! What it refuses to do:
//! - fall back to software: an operation the profile has no mechanism for is
//!   [`HsmError::Unsupported`], a token that is gone is [`HsmError::Unreachable`] (the CLI's exit
//!   code 3), with no exception;
//! - hold private key bytes: keys are generated in the token as sensitive and non-extractable,
//!   and a signer is a handle;
//! - take a PIN from a URI (`pin-value` is refused) or print one;
//! - guess a module: the profile names it, and the resolution rule is documented.
//!
//! This is a shell crate: it owns the PKCS#11 module (a shared library loaded once per process)
//! and nothing else. Raw FFI is confined to one module (`ffi`), for the calls `cryptoki`'s safe
//! API cannot express (byte-string mechanism parameters, codes below `CKM_VENDOR_DEFINED`).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![allow(
    clippy::useless_conversion,
    reason = "CK_ULONG is C's unsigned long: u64 here, u32 on 32-bit targets, where the u64::from conversions are needed"
)]

pub mod danger;
mod device;
mod error;
mod ffi;
pub mod format;
mod hsm;
mod module;
mod pool;
pub mod profile;
mod protection;
mod rv;
mod selfcheck;
mod uri;

pub use device::DeviceInfo;
pub use error::HsmError;
pub use hsm::{
    EnvelopedKey, Hsm, HsmEncrypter, HsmRandom, HsmSigner, HsmSm4Key, KeyInfo, KeyUsage,
    Sm4KeyOptions, TokenDescription, TokenSlot,
};
pub use profile::{MODULE_ENV, Profile};
pub use protection::{KeyProtection, Sm4Usage};
pub use rv::Ckr;
pub use selfcheck::{SelfCheck, SelfCheckRow, flag_names};
pub use uri::{KeyUri, ObjectType};
