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
    /// A failure inside a device (token removed, session lost) reported by a provider.
    #[error("crypto device error: {reason}")]
    Device { reason: String },
}
