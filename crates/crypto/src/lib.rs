//! The vocabulary of gmchain cryptography: value types (user IDs, SM2 public keys, signatures, SM3
//! digests, ciphertext formats), the GM/T 0009 encodings of those values, and the traits that a
//! cryptographic provider fills (`Signer`, `Verifier`, `Hasher`, `Sm4Key`, `Decrypter`, `KeyStore`).
//!
//! This crate contains no cryptographic algorithm: the software provider (`crypto-sm`) and the
//! PKCS#11 provider (`hsm`) implement the traits, and only the node chooses which one is used.
//! A private key is never a value here, only a handle behind a trait object.
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
    CipherFormat, Decrypter, Encrypter, HashContext, Hasher, KeyInfo, KeyStore, RandomSource,
    Signer, Sm4Key, Sm4Mode, Verifier,
};
pub use types::{
    DEFAULT_USER_ID, Digest, MAX_USER_ID_LEN, PublicKey, Secret, Signature, TLS13_USER_ID, UserId,
};
