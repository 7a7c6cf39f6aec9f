use std::path::PathBuf;
use thiserror::Error;

/// Failures of the CA directory.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CaError {
    /// An I/O failure on a named file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The directory is not a CA directory, or a newer format.
    #[error("{path} is not a gmchain CA directory: {reason}")]
    NotACa { path: PathBuf, reason: String },
    /// `create` on a directory that already holds something.
    #[error("{path} already exists and is not empty; choose a new directory")]
    Exists { path: PathBuf },
    /// A file that does not parse.
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// No certificate with that serial.
    #[error("no certificate with serial {serial} in this CA")]
    UnknownSerial { serial: String },
    /// A serial that was already used.
    #[error("serial {serial} was already issued by this CA")]
    SerialReused { serial: String },
    /// The audit log does not verify.
    #[error("audit log entry {seq}: {reason}")]
    AuditBroken { seq: u64, reason: String },
    /// The audit log's head is not the expected one (truncation or rollback).
    #[error(
        "audit log head is {actual} after {entries} entries, expected {expected}: the log was truncated or replaced"
    )]
    AuditHeadMismatch {
        expected: String,
        actual: String,
        entries: u64,
    },
    /// Entries after the last signed one are unsigned, and strict verification was asked for.
    #[error(
        "audit log {} unsigned and no signed entry follows (last signed entry: {}): nothing authenticates the tail",
        if first == last { format!("entry {first} is") } else { format!("entries {first} to {last} are") },
        last_signed.map_or_else(|| "none".to_string(), |s| s.to_string())
    )]
    AuditUnsignedTail {
        first: u64,
        last: u64,
        last_signed: Option<u64>,
    },
    /// Signing an audit entry failed.
    #[error("cannot sign the audit entry: {0}")]
    Sign(#[from] crypto::CryptoError),
    /// Renewal of a revoked certificate.
    #[error(
        "serial {serial} is revoked ({reason}) and is never renewed; issue a new certificate from a new CSR"
    )]
    RenewRevoked { serial: String, reason: String },
    /// Renewal of a certificate that was already renewed.
    #[error("serial {serial} was already renewed by {by}; renew {by} instead")]
    AlreadyRenewed { serial: String, by: String },
    /// Renewal that would certify a key the CA recorded as compromised.
    #[error(
        "{} the key of serial {revoked}, revoked for {reason}; {}",
        if *new_key { format!("the CSR to renew serial {serial} carries") } else { format!("renewing serial {serial} would certify again") },
        if *new_key { "the holder needs a key that was never compromised" } else { "renew with --csr for a new key" }
    )]
    RenewKeyCompromised {
        serial: String,
        revoked: String,
        reason: String,
        /// Whether the key came from a new CSR (rather than the old certificate).
        new_key: bool,
    },
    /// An issuance (`issue`, `intermediate`) that would certify a key the CA recorded as
    /// compromised.
    #[error(
        "the key to certify is the key of serial {revoked}, revoked for {reason}; the holder needs a key that was never compromised"
    )]
    KeyCompromised { revoked: String, reason: String },
    /// Any issuance or renewal after this CA recorded the compromise of its own key.
    #[error(
        "this CA recorded a compromise of its own key (serial {compromise} revoked for ca-compromise) and certifies nothing more; re-key the CA: a new CA key and certificate in a new CA directory"
    )]
    CaCompromised { compromise: String },
}

impl CaError {
    /// Returns the stable code of the error (recorded at the start of a refusal's audit detail).
    pub fn code(&self) -> &'static codes::Code {
        match self {
            CaError::Io { .. } => &codes::CA_IO,
            CaError::NotACa { .. } => &codes::CA_NOT_A_CA,
            CaError::Exists { .. } => &codes::CA_EXISTS,
            CaError::Corrupt { .. } => &codes::CA_CORRUPT,
            CaError::UnknownSerial { .. } => &codes::CA_UNKNOWN_SERIAL,
            CaError::SerialReused { .. } => &codes::CA_SERIAL_REUSED,
            CaError::AuditBroken { .. } => &codes::CA_AUDIT_BROKEN,
            CaError::AuditHeadMismatch { .. } => &codes::CA_AUDIT_HEAD_MISMATCH,
            CaError::AuditUnsignedTail { .. } => &codes::CA_AUDIT_UNSIGNED_TAIL,
            CaError::Sign(_) => &codes::CA_SIGN,
            CaError::RenewRevoked { .. } => &codes::CA_RENEW_REVOKED,
            CaError::AlreadyRenewed { .. } => &codes::CA_RENEW_ALREADY_RENEWED,
            CaError::RenewKeyCompromised { .. } => &codes::CA_RENEW_KEY_COMPROMISED,
            CaError::KeyCompromised { .. } => &codes::CA_KEY_COMPROMISED,
            CaError::CaCompromised { .. } => &codes::CA_COMPROMISED,
        }
    }
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CaError {
    let path = path.into();
    move |source| CaError::Io { path, source }
}

impl codes::Coded for CaError {
    fn code(&self) -> &'static codes::Code {
        CaError::code(self)
    }

    fn class(&self) -> codes::Class {
        match self {
            CaError::Sign(e) => codes::Coded::class(e),
            _ => self.code().class,
        }
    }
}

/// Maps a failed write, append or lock to [`CaError::Io`] on the file it concerns.
pub(crate) fn fs_err(e: safefile::Error) -> CaError {
    let (_, path, source) = e.into_parts();
    CaError::Io { path, source }
}
