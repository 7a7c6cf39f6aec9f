use pki::{PkiError, Role};
use std::fmt;
use std::path::PathBuf;
use thiserror::Error;

/// The step of a CA operation at which the PKI refused a certificate, CRL, request or
/// envelope (the prefix of [`CaError::Pki`]'s message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PkiStep {
    /// Reading the holder's certification request (proof of possession, subject profile).
    Request,
    /// Drawing a serial number.
    Serial,
    /// Reading the CA's own certificate (`ca.pem`).
    CaCertificate,
    /// Reading a serial recorded in the index.
    IndexSerial,
    /// Signing the self-signed root certificate.
    Root,
    /// Signing an issued certificate.
    Issue,
    /// Signing the encryption certificate of a dual pair.
    IssueEncryption,
    /// Signing a renewed certificate.
    Renew,
    /// Sealing a dual pair's encryption key to the holder (GM/T 0009 enveloped key).
    Envelope,
    /// Signing a CRL.
    Crl,
}

impl fmt::Display for PkiStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PkiStep::Request => "certification request",
            PkiStep::Serial => "serial",
            PkiStep::CaCertificate => "ca.pem",
            PkiStep::IndexSerial => "index serial",
            PkiStep::Root => "root",
            PkiStep::Issue => "issue",
            PkiStep::IssueEncryption => "issue node-enc",
            PkiStep::Renew => "renew",
            PkiStep::Envelope => "envelope",
            PkiStep::Crl => "crl",
        })
    }
}

/// Failures of the CA: its directory, its audit log and its rules.
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
    /// The PKI refused a certificate, CRL, request or envelope at `step`.
    #[error("{step}: {source}")]
    Pki {
        step: PkiStep,
        #[source]
        source: PkiError,
    },
    /// `intermediate` on a CA that is not a root: only the root issues agency CA certificates.
    #[error("only a root CA issues agency CA certificates")]
    NotRoot,
    /// Issuance by role of a CA certificate, which only `init` and `intermediate` make.
    #[error(
        "{} certificates come from `gmchain ca init` and `gmchain ca intermediate`, not from issuance by role",
        role.as_str()
    )]
    CaRoleNotIssued { role: Role },
    /// A dual pair asked for a role that has no encryption half.
    #[error(
        "a dual pair is issued for node-sign, user, admin or auditor (the signing half; the CA makes the matching node-enc, user-enc, admin-enc or auditor-enc certificate); {} has no encryption pair",
        role.as_str()
    )]
    NoEncryptionPair { role: Role },
    /// A validity period of zero days.
    #[error("a certificate is valid for at least one day, not 0")]
    ZeroValidity,
    /// A CRL whose next update would be now.
    #[error("a CRL's next update is at least one hour away, not 0")]
    ZeroCrlPeriod,
    /// Revocation of a certificate already revoked.
    #[error("serial {serial} is already revoked")]
    AlreadyRevoked { serial: String },
    /// A certificate of the index that carries no gmchain role (so no profile to renew under).
    #[error("serial {serial} has no gmchain role")]
    NoRole { serial: String },
    /// A renewal whose request names another subject than the certificate renewed.
    #[error("the CSR names {requested:?}; renewal keeps the subject {kept:?}")]
    RenewSubjectMismatch { requested: String, kept: String },
    /// Every serial drawn was already used (a broken random source).
    #[error("could not draw an unused serial")]
    SerialsExhausted,
    /// A key pair the CA generates (a holder's, or a dual pair's encryption key) could not be.
    #[error("{0}")]
    KeyGeneration(#[source] crypto::CryptoError),
    /// The escrow copy of a dual pair's encryption key could not be encrypted.
    #[error("escrow: {0}")]
    EscrowEncrypt(#[source] crypto::CryptoError),
    /// The escrow store did not keep the copy of the encryption key of `serial`.
    #[error("{reason}")]
    Escrow { serial: String, reason: String },
    /// An agency CA certificate issued for another key than the agency's CA key.
    #[error("the agency CA certificate was issued for another key than the CA key")]
    AgencyKeyMismatch,
    /// An agency CA certificate that is not one (another role).
    #[error("the agency CA certificate is not an agency CA certificate")]
    AgencyNotCaCertificate,
    /// An agency CA certificate not signed by the root given with it.
    #[error("the agency CA certificate is not signed by the root: {0}")]
    AgencyNotSignedByRoot(#[source] PkiError),
    /// The action recorded as done in audit entry `seq` (written ahead of the commit) was not
    /// carried out: the index write that commits it failed.
    #[error("the action recorded as done in audit entry {seq} was not carried out: {source}")]
    NotCommitted {
        seq: u64,
        #[source]
        source: Box<CaError>,
    },
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
            CaError::Pki { .. } => &codes::CA_PKI,
            CaError::NotRoot => &codes::CA_NOT_ROOT,
            CaError::CaRoleNotIssued { .. } => &codes::CA_ROLE_NOT_ISSUED,
            CaError::NoEncryptionPair { .. } => &codes::CA_NO_ENCRYPTION_PAIR,
            CaError::ZeroValidity => &codes::CA_VALIDITY_ZERO,
            CaError::ZeroCrlPeriod => &codes::CA_CRL_PERIOD_ZERO,
            CaError::AlreadyRevoked { .. } => &codes::CA_ALREADY_REVOKED,
            CaError::NoRole { .. } => &codes::CA_NO_ROLE,
            CaError::RenewSubjectMismatch { .. } => &codes::CA_RENEW_SUBJECT_MISMATCH,
            CaError::SerialsExhausted => &codes::CA_SERIALS_EXHAUSTED,
            CaError::KeyGeneration(_) => &codes::CA_KEY_GENERATION,
            CaError::EscrowEncrypt(_) => &codes::CA_ESCROW_ENCRYPT,
            CaError::Escrow { .. } => &codes::CA_ESCROW,
            CaError::AgencyKeyMismatch => &codes::CA_AGENCY_KEY_MISMATCH,
            CaError::AgencyNotCaCertificate => &codes::CA_AGENCY_NOT_CA_CERTIFICATE,
            CaError::AgencyNotSignedByRoot(_) => &codes::CA_AGENCY_NOT_SIGNED_BY_ROOT,
            CaError::NotCommitted { .. } => &codes::CA_NOT_COMMITTED,
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
            CaError::Sign(e) | CaError::KeyGeneration(e) | CaError::EscrowEncrypt(e) => {
                codes::Coded::class(e)
            }
            CaError::Pki { source, .. } => codes::Coded::class(source),
            CaError::NotCommitted { source, .. } => codes::Coded::class(source.as_ref()),
            _ => self.code().class,
        }
    }
}

/// Maps a failed write, append or lock to [`CaError::Io`] on the file it concerns.
pub(crate) fn fs_err(e: safefile::Error) -> CaError {
    let (_, path, source) = e.into_parts();
    CaError::Io { path, source }
}
