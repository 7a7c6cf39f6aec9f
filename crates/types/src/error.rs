use crate::codec::DecodeError;
use crate::primitives::Height;
use thiserror::Error;

/// What can go wrong with a transaction in this crate: decoding it, its expiry, its signature.
/// Certificate and permission checks belong to the node and have their own errors there.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxError {
    /// The bytes are not a canonical encoding within the limits.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The expiry height is below the next height: the transaction can no longer be included.
    #[error("transaction expired: expiry height {expiry} is below the next height {next}")]
    Expired { expiry: Height, next: Height },
    /// The expiry height is further ahead than the chain's window allows.
    #[error(
        "transaction expiry height {expiry} is beyond tip + window = {max}; choose an expiry at most {max}"
    )]
    ExpiryTooFar { expiry: Height, max: Height },
    /// The signer could not sign (token unreachable, key refused).
    #[error("cannot sign the transaction: {0}")]
    Signing(crypto::CryptoError),
    /// The signature does not verify, or the public key is invalid.
    #[error(
        "transaction signature does not verify with this public key and user ID (default 1234567812345678): {0}"
    )]
    SignatureInvalid(crypto::CryptoError),
}
