use thiserror::Error;

/// Everything that can go wrong in a cryptographic operation, with enough structure that the API
/// edge can give each case a stable code. Messages never contain secret material.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// A user ID longer than ENTL (16 bits of bit length) can describe.
    #[error("SM2 user ID is {len} bytes; at most {max} bytes are allowed (GB/T 32918.2 §5.5)")]
    UserIdTooLong { len: usize, max: usize },
    /// A public key that is not a valid point of sm2p256v1.
    #[error("invalid SM2 public key: {reason}")]
    InvalidPublicKey { reason: &'static str },
    /// A private key out of range or badly encoded.
    #[error("invalid SM2 private key: {reason}")]
    InvalidPrivateKey { reason: &'static str },
    /// A signature that cannot be decoded (length, DER, range).
    #[error("malformed SM2 signature: {reason}")]
    MalformedSignature { reason: &'static str },
    /// A well-formed signature that does not verify.
    #[error("SM2 signature does not verify with this public key and user ID")]
    SignatureInvalid,
    /// A ciphertext that cannot be decoded.
    #[error("malformed SM2 ciphertext: {reason}")]
    MalformedCiphertext { reason: &'static str },
    /// SM2 decryption failed (C3 mismatch, all-zero KDF output); nothing is released.
    #[error("SM2 decryption failed: {reason}")]
    DecryptionFailed { reason: &'static str },
    /// An AEAD tag did not verify; nothing is released.
    #[error("authentication tag does not verify (wrong key, nonce, AAD, or tampered data)")]
    TagMismatch,
    /// A field with the wrong length.
    #[error("{what} must be {expected} bytes, got {got}")]
    InvalidLength {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// Bad CBC padding or a length that is not a multiple of the block.
    #[error("bad SM4-CBC input: {reason}")]
    BadPadding { reason: &'static str },
    /// A request that is well-formed but outside what the standard allows.
    #[error("invalid input: {reason}")]
    InvalidInput { reason: &'static str },
    /// A key file or key encoding that cannot be read.
    #[error("cannot decode key: {reason}")]
    KeyDecode { reason: String },
    /// A wrong passphrase or a corrupted encrypted key.
    #[error("cannot decrypt key: wrong passphrase or corrupted file")]
    KeyDecrypt,
    /// The key store has no such key.
    #[error("no key named {name:?} in the key store")]
    KeyNotFound { name: String },
    /// A key store failure (I/O, permissions, a name already taken).
    #[error("key store: {reason}")]
    KeyStore { reason: String },
    /// The entropy source failed.
    #[error("random number source failed")]
    Entropy,
    /// The provider does not offer this operation.
    #[error("operation not supported by this provider: {what}")]
    Unsupported { what: &'static str },
    /// A failure inside a device reported by a provider. `code` is the device's own code (an
    /// HSM's `HSM_UNREACHABLE` for a removed token, `HSM_PIN_INCORRECT` for a wrong PIN), so
    /// the failure keeps its class through the provider-neutral type.
    #[error("crypto device error: {reason}")]
    Device {
        reason: String,
        code: &'static codes::Code,
    },
}

impl CryptoError {
    /// Returns the stable code (docs/error-codes.md).
    pub fn code(&self) -> &'static codes::Code {
        match self {
            CryptoError::UserIdTooLong { .. } => &codes::CRYPTO_USER_ID_TOO_LONG,
            CryptoError::InvalidPublicKey { .. } => &codes::CRYPTO_INVALID_PUBLIC_KEY,
            CryptoError::InvalidPrivateKey { .. } => &codes::CRYPTO_INVALID_PRIVATE_KEY,
            CryptoError::MalformedSignature { .. } => &codes::CRYPTO_MALFORMED_SIGNATURE,
            CryptoError::SignatureInvalid => &codes::CRYPTO_SIGNATURE_INVALID,
            CryptoError::MalformedCiphertext { .. } => &codes::CRYPTO_MALFORMED_CIPHERTEXT,
            CryptoError::DecryptionFailed { .. } => &codes::CRYPTO_DECRYPTION_FAILED,
            CryptoError::TagMismatch => &codes::CRYPTO_TAG_MISMATCH,
            CryptoError::InvalidLength { .. } => &codes::CRYPTO_INVALID_LENGTH,
            CryptoError::BadPadding { .. } => &codes::CRYPTO_BAD_PADDING,
            CryptoError::InvalidInput { .. } => &codes::CRYPTO_INVALID_INPUT,
            CryptoError::KeyDecode { .. } => &codes::CRYPTO_KEY_DECODE,
            CryptoError::KeyDecrypt => &codes::CRYPTO_KEY_DECRYPT,
            CryptoError::KeyNotFound { .. } => &codes::CRYPTO_KEY_NOT_FOUND,
            CryptoError::KeyStore { .. } => &codes::CRYPTO_KEY_STORE,
            CryptoError::Entropy => &codes::CRYPTO_ENTROPY,
            CryptoError::Unsupported { .. } => &codes::CRYPTO_UNSUPPORTED,
            CryptoError::Device { .. } => &codes::CRYPTO_DEVICE,
        }
    }
}

impl codes::Coded for CryptoError {
    fn code(&self) -> &'static codes::Code {
        CryptoError::code(self)
    }

    fn class(&self) -> codes::Class {
        match self {
            CryptoError::Device { code, .. } => code.class,
            other => other.code().class,
        }
    }
}
