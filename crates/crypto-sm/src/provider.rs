//! The software provider: the `crypto` traits over this crate's algorithms.

use crate::sm2::{self, PrivateKey};
use crate::sm4::{self, Sm4Secret};
use crypto::{
    CipherFormat, CryptoError, Decrypter, Digest, Encrypter, PublicKey, RandomSource, Secret,
    Signature, Signer, Sm4Key, Sm4Mode, UserId,
};
use std::sync::Arc;

/// Hashing, verification and encryption in software, with the randomness the caller chose.
#[derive(Clone)]
pub struct SoftwareProvider {
    rng: Arc<dyn RandomSource>,
}

impl core::fmt::Debug for SoftwareProvider {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SoftwareProvider")
    }
}

impl SoftwareProvider {
    /// Returns a provider drawing randomness from `rng`.
    pub fn new(rng: Arc<dyn RandomSource>) -> Self {
        Self { rng }
    }

    /// Returns the provider's randomness source.
    pub fn rng(&self) -> &dyn RandomSource {
        &*self.rng
    }

    /// Generates a software key pair.
    pub fn generate(&self) -> Result<SoftSigner, CryptoError> {
        Ok(self.signer(PrivateKey::generate(&*self.rng)?))
    }

    /// Wraps a private key as a signer and decrypter.
    pub fn signer(&self, key: PrivateKey) -> SoftSigner {
        SoftSigner {
            key,
            rng: self.rng.clone(),
        }
    }

    /// Wraps a 16-byte SM4 key.
    pub fn sm4_key(&self, key: &[u8]) -> Result<SoftSm4Key, CryptoError> {
        Ok(SoftSm4Key(Sm4Secret::from_slice(key)?))
    }
}

impl Encrypter for SoftwareProvider {
    fn encrypt(
        &self,
        to: &PublicKey,
        msg: &[u8],
        format: CipherFormat,
    ) -> Result<Vec<u8>, CryptoError> {
        sm2::encrypt(to, msg, format, &*self.rng)
    }
}

/// A software SM2 key pair as a [`Signer`] and [`Decrypter`].
pub struct SoftSigner {
    key: PrivateKey,
    rng: Arc<dyn RandomSource>,
}

impl core::fmt::Debug for SoftSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SoftSigner({:?})", self.key)
    }
}

impl SoftSigner {
    /// Returns the private key (for writing it to an encrypted key file).
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }
}

impl Signer for SoftSigner {
    fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    fn sign(&self, id: &UserId, msg: &[u8]) -> Result<Signature, CryptoError> {
        self.key.sign(id, msg, &*self.rng)
    }

    fn sign_digest(&self, e: &Digest) -> Result<Signature, CryptoError> {
        self.key.sign_digest(e, &*self.rng)
    }
}

impl Decrypter for SoftSigner {
    fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    fn decrypt(&self, ciphertext: &[u8], format: CipherFormat) -> Result<Secret, CryptoError> {
        sm2::decrypt(&self.key, ciphertext, format)
    }
}

/// A software SM4 key.
#[derive(Debug)]
pub struct SoftSm4Key(Sm4Secret);

impl Sm4Key for SoftSm4Key {
    fn encrypt(
        &self,
        mode: Sm4Mode,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        sm4::encrypt(&self.0, mode, iv, aad, data)
    }

    fn decrypt(
        &self,
        mode: Sm4Mode,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Secret, CryptoError> {
        sm4::decrypt(&self.0, mode, iv, aad, data)
    }
}
