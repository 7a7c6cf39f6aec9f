use crate::{CryptoError, Digest, PublicKey, Secret, Signature, UserId};

/// A source of cryptographically secure random bytes. Core crates receive one as an argument
/// and never open an entropy source themselves; the binary chooses the OS source or a token's RNG.
pub trait RandomSource: Send + Sync {
    /// Fills `buf` completely, or fails.
    fn fill(&self, buf: &mut [u8]) -> Result<(), CryptoError>;
}

/// A private SM2 signing key, held by a provider. In an HSM it is a handle, never bytes.
pub trait Signer: Send + Sync {
    /// Returns the public key of this signer.
    fn public_key(&self) -> PublicKey;

    /// Signs `msg` per GB/T 32918.2 §6.1: e = SM3(ZA ‖ msg) with ZA over `id` and this key.
    fn sign(&self, id: &UserId, msg: &[u8]) -> Result<Signature, CryptoError>;

    /// Signs a precomputed e = SM3(ZA ‖ M) (GB/T 32918.2 §6.1 A2 done by the caller).
    fn sign_digest(&self, e: &Digest) -> Result<Signature, CryptoError>;
}

/// SM4 modes with the parameters gmchain uses: CBC with PKCS#7 padding and a 16-byte IV, CTR
/// with a 16-byte initial counter block (128-bit big-endian increment, as OpenSSL), and GCM and
/// CCM per RFC 8998 (12-byte nonce, 16-byte tag appended to the ciphertext).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sm4Mode {
    /// CBC with PKCS#7 padding.
    Cbc,
    /// Counter mode.
    Ctr,
    /// GCM (RFC 8998 AEAD_SM4_GCM).
    Gcm,
    /// CCM (RFC 8998 AEAD_SM4_CCM).
    Ccm,
}

impl Sm4Mode {
    /// Returns the IV or nonce length the mode takes.
    pub fn iv_len(self) -> usize {
        match self {
            Sm4Mode::Cbc | Sm4Mode::Ctr => 16,
            Sm4Mode::Gcm | Sm4Mode::Ccm => 12,
        }
    }

    /// Returns whether the mode authenticates (AEAD).
    pub fn is_aead(self) -> bool {
        matches!(self, Sm4Mode::Gcm | Sm4Mode::Ccm)
    }
}

/// An SM4 key held by a provider.
pub trait Sm4Key: Send + Sync {
    /// Encrypts; for AEAD modes the result is ciphertext ‖ tag. `aad` must be empty otherwise.
    fn encrypt(
        &self,
        mode: Sm4Mode,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// Decrypts; for AEAD modes nothing is returned unless the tag verifies.
    fn decrypt(
        &self,
        mode: Sm4Mode,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Secret, CryptoError>;
}

/// The two SM2 ciphertext forms gmchain exchanges: raw C1‖C3‖C2 (GB/T 32918.4-2016 order) and
/// GM/T 0009 DER. The legacy C1‖C2‖C3 order is only ever read, by an explicitly named decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CipherFormat {
    /// `04 ‖ x1 ‖ y1 ‖ C3 ‖ C2`.
    C1C3C2,
    /// GM/T 0009 `SM2Cipher` in DER.
    Der,
}

/// SM2 public-key encryption (GB/T 32918.4 §6.1).
pub trait Encrypter: Send + Sync {
    /// Encrypts `msg` to `to`.
    fn encrypt(
        &self,
        to: &PublicKey,
        msg: &[u8],
        format: CipherFormat,
    ) -> Result<Vec<u8>, CryptoError>;
}

/// A private SM2 decryption key held by a provider (GB/T 32918.4 §7.1).
pub trait Decrypter: Send + Sync {
    /// Returns the public key.
    fn public_key(&self) -> PublicKey;
    /// Decrypts; nothing is returned unless C3 verifies.
    fn decrypt(&self, ciphertext: &[u8], format: CipherFormat) -> Result<Secret, CryptoError>;
}

/// What a key store says about one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's name in the store.
    pub label: String,
    /// Its public key.
    pub public_key: PublicKey,
}

/// A named collection of SM2 keys: the development keystore directory or a token.
pub trait KeyStore: Send + Sync {
    /// Lists the keys.
    fn list(&self) -> Result<Vec<KeyInfo>, CryptoError>;
    /// Generates a new key under `label`, refusing a label already in use.
    fn generate(&self, label: &str) -> Result<KeyInfo, CryptoError>;
    /// Returns a signer for the key named `label`.
    fn signer(&self, label: &str) -> Result<Box<dyn Signer>, CryptoError>;
    /// Destroys the key named `label`.
    fn delete(&self, label: &str) -> Result<(), CryptoError>;
}
