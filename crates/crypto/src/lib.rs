//! The vocabulary of gmchain cryptography: value types (user IDs, SM2 public keys, signatures, SM3
//! digests, ciphertext formats), the GM/T 0009 encodings of those values, and the traits behind
//! which a provider holds keys and randomness (`Signer`, `Decrypter`, `Sm4Key`, `Encrypter`,
//! `KeyStore`, `RandomSource`).
//!
//! This crate contains no cryptographic algorithm: the software provider (`crypto-sm`) and the
//! PKCS#11 provider (`hsm`) implement the traits, and only the binary chooses which one holds a
//! key. A private key is never a value here, only a handle behind a trait object. Verification
//! and hashing have no trait: they take only public input and are always computed in software
//! by `crypto-sm` (docs/ARCHITECTURE.md, "One crypto provider").
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod error;
pub mod gmt0009;
mod traits;
mod types;

pub use error::CryptoError;
pub use traits::{
    CipherFormat, Decrypter, Encrypter, KeyInfo, KeyStore, RandomSource, Signer, Sm4Key, Sm4Mode,
};
pub use types::{
    DEFAULT_USER_ID, Digest, MAX_USER_ID_LEN, PublicKey, Secret, Signature, TLS13_USER_ID, UserId,
};
