//! Failures of reading, appending to and verifying an audit log.

use std::path::PathBuf;
use thiserror::Error;

/// What went wrong with an audit log. The messages are the CA's since issue 9: its log
/// maps each variant onto its own (`ca::CaError`), keeping its codes.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuditError {
    /// An I/O failure on the log file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An entry that cannot be serialised (never for the entries this crate builds).
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// The entry at line `seq` (counted from 0) does not verify.
    #[error("audit log entry {seq}: {reason}")]
    Broken { seq: u64, reason: String },
    /// The log's head is not the expected one (truncation or rollback).
    #[error(
        "audit log head is {actual} after {entries} entries, expected {expected}: the log was truncated or replaced"
    )]
    HeadMismatch {
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
    UnsignedTail {
        first: u64,
        last: u64,
        last_signed: Option<u64>,
    },
    /// Signing an entry failed.
    #[error("cannot sign the audit entry: {0}")]
    Sign(#[from] crypto::CryptoError),
}

impl AuditError {
    pub(crate) fn broken(seq: u64, reason: impl Into<String>) -> Self {
        AuditError::Broken {
            seq,
            reason: reason.into(),
        }
    }
}
