use thiserror::Error;

/// What can go wrong building or checking X.509 objects.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PkiError {
    /// A subject that is not an RFC 4514 distinguished name.
    #[error(
        "subject {subject:?} is not a distinguished name like \"CN=node-1,OU=node,O=Agency A\": {reason}"
    )]
    BadSubject { subject: String, reason: String },
    /// Bytes that are not the expected DER or PEM structure.
    #[error("cannot decode {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    /// A signature algorithm other than SM2-with-SM3.
    #[error("{what} is signed with {oid}, not SM2-with-SM3 (1.2.156.10197.1.501)")]
    WrongAlgorithm { what: &'static str, oid: String },
    /// A public key that is not an SM2 point.
    #[error("{what} does not carry an SM2 public key: {reason}")]
    NotSm2Key { what: &'static str, reason: String },
    /// A signature that does not verify.
    #[error("the signature of the {what} does not verify (SM2, user ID 1234567812345678)")]
    SignatureInvalid { what: &'static str },
    /// The signer failed (token error, entropy).
    #[error("signing failed: {0}")]
    Signer(#[from] crypto::CryptoError),
    /// Encoding failed.
    #[error("DER encoding failed: {0}")]
    Encode(String),
}
