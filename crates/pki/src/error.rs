use crate::crl::RevocationReason;
use crate::{Role, Serial, UnixTime};
use core::fmt;
use thiserror::Error;

/// What can go wrong building, parsing or signing X.509 objects (chain validation has its own
/// [`ChainError`]).
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
    /// A common name the profile refuses.
    #[error("common name {value:?} refused: {reason}")]
    BadCommonName { value: String, reason: &'static str },
    /// An organisation name the profile refuses.
    #[error("organisation {value:?} refused: {reason}")]
    BadOrganisation { value: String, reason: &'static str },
    /// A request without a common name.
    #[error("the certification request has no common name (CN)")]
    CommonNameMissing,
    /// A role the request names differs from the role being issued.
    #[error(
        "the certification request claims role (OU) {claimed:?}, but a {requested} certificate was requested; the profile, not the CSR, sets the role"
    )]
    RoleClaimMismatch { claimed: String, requested: Role },
    /// An organisation the request names differs from the one being issued.
    #[error(
        "the certification request claims organisation (O) {claimed:?}, but this CA issues for {required:?}"
    )]
    OrganisationClaimMismatch { claimed: String, required: String },
    /// A validity period that is empty or cannot be encoded.
    #[error("bad validity: {reason}")]
    BadValidity { reason: &'static str },
    /// A validity period that leaves the issuer's.
    #[error(
        "validity {not_before}..{not_after} is outside the issuer's {issuer_not_before}..{issuer_not_after}"
    )]
    ValidityOutsideIssuer {
        not_before: UnixTime,
        not_after: UnixTime,
        issuer_not_before: UnixTime,
        issuer_not_after: UnixTime,
    },
    /// The issuing certificate is not a CA certificate allowed to sign certificates.
    #[error("the issuer {issuer} is not a CA (basic constraints CA and key usage keyCertSign)")]
    IssuerNotCa { issuer: String },
    /// The issuing certificate may not sign CRLs.
    #[error("the issuer {issuer} may not sign CRLs (key usage cRLSign)")]
    IssuerNotCrlSigner { issuer: String },
    /// The signer's key is not the issuing certificate's key.
    #[error("the signer's public key is not the key of the issuer certificate {issuer}")]
    IssuerKeyMismatch { issuer: String },
    /// A CA certificate whose path length forbids issuing another CA.
    #[error(
        "the issuer {issuer} has path length {path_len:?}: it cannot issue a {requested} certificate"
    )]
    PathLength {
        issuer: String,
        path_len: Option<u8>,
        requested: Role,
    },
    /// An agency CA issuing for another organisation.
    #[error(
        "the issuer {issuer} belongs to {issuer_org:?} and issues only for it, not {requested:?}"
    )]
    OrganisationMismatch {
        issuer: String,
        issuer_org: String,
        requested: String,
    },
    /// A role that cannot be issued this way (a root is self-issued with `issue_root`).
    #[error("{role} certificates cannot be issued this way: {reason}")]
    RoleNotIssuable { role: Role, reason: &'static str },
    /// The subject's key is the issuer's key.
    #[error("the subject key is the issuer's own key; every certificate holder needs its own key")]
    KeyReuse,
    /// A serial number out of range.
    #[error("bad serial number: {reason}")]
    BadSerial { reason: &'static str },
    /// A role name that is not one of gmchain's roles.
    #[error(
        "unknown role {0:?}: one of root-ca, agency-ca, node-sign, node-enc, admin, user, auditor"
    )]
    UnknownRole(String),
    /// A revocation reason name that is not a CRL reason.
    #[error(
        "unknown revocation reason {0:?}: one of unspecified, key-compromise, ca-compromise, affiliation-changed, superseded, cessation-of-operation, certificate-hold, privilege-withdrawn"
    )]
    UnknownReason(String),
    /// A CRL entry list the profile refuses.
    #[error("bad CRL: {reason}")]
    BadCrl { reason: String },
    /// A GM/T 0009 enveloped key that cannot be opened or sealed.
    #[error("SM2 enveloped key: {reason}")]
    Envelope { reason: &'static str },
}

impl PkiError {
    /// Returns a stable code for the API edge.
    pub fn code(&self) -> &'static codes::Code {
        match self {
            PkiError::BadSubject { .. } => &codes::PKI_BAD_SUBJECT,
            PkiError::Decode { .. } => &codes::PKI_DECODE,
            PkiError::WrongAlgorithm { .. } => &codes::PKI_WRONG_ALGORITHM,
            PkiError::NotSm2Key { .. } => &codes::PKI_NOT_SM2_KEY,
            PkiError::SignatureInvalid { .. } => &codes::PKI_SIGNATURE_INVALID,
            PkiError::Signer(_) => &codes::PKI_SIGNER,
            PkiError::Encode(_) => &codes::PKI_ENCODE,
            PkiError::BadCommonName { .. } => &codes::PKI_BAD_COMMON_NAME,
            PkiError::BadOrganisation { .. } => &codes::PKI_BAD_ORGANISATION,
            PkiError::CommonNameMissing => &codes::PKI_COMMON_NAME_MISSING,
            PkiError::RoleClaimMismatch { .. } => &codes::PKI_CSR_ROLE_CLAIM,
            PkiError::OrganisationClaimMismatch { .. } => &codes::PKI_CSR_ORGANISATION_CLAIM,
            PkiError::BadValidity { .. } => &codes::PKI_BAD_VALIDITY,
            PkiError::ValidityOutsideIssuer { .. } => &codes::PKI_VALIDITY_OUTSIDE_ISSUER,
            PkiError::IssuerNotCa { .. } => &codes::PKI_ISSUER_NOT_CA,
            PkiError::IssuerNotCrlSigner { .. } => &codes::PKI_ISSUER_NOT_CRL_SIGNER,
            PkiError::IssuerKeyMismatch { .. } => &codes::PKI_ISSUER_KEY_MISMATCH,
            PkiError::PathLength { .. } => &codes::PKI_PATH_LENGTH,
            PkiError::OrganisationMismatch { .. } => &codes::PKI_ORGANISATION_MISMATCH,
            PkiError::RoleNotIssuable { .. } => &codes::PKI_ROLE_NOT_ISSUABLE,
            PkiError::KeyReuse => &codes::PKI_KEY_REUSE,
            PkiError::BadSerial { .. } => &codes::PKI_BAD_SERIAL,
            PkiError::UnknownRole(_) => &codes::PKI_UNKNOWN_ROLE,
            PkiError::UnknownReason(_) => &codes::PKI_UNKNOWN_REASON,
            PkiError::BadCrl { .. } => &codes::PKI_BAD_CRL,
            PkiError::Envelope { .. } => &codes::PKI_ENVELOPE,
        }
    }
}

/// The certificate a chain error is about: its subject (RFC 4514) and serial number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertRef {
    /// The subject as an RFC 4514 string.
    pub subject: String,
    /// The serial number.
    pub serial: Serial,
}

impl fmt::Display for CertRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\" (serial {})", self.subject, self.serial)
    }
}

/// Why the revocation status of a certificate is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrlProblem {
    /// No CRL from the issuer was given.
    Missing,
    /// The issuer's CRLs are not current: `now` is not in [thisUpdate, nextUpdate).
    NotCurrent {
        this_update: UnixTime,
        next_update: Option<UnixTime>,
    },
    /// A CRL names the issuer but its signature does not verify with the issuer's key.
    SignatureInvalid,
    /// A CRL names the issuer but is not signed with SM2-with-SM3.
    WrongAlgorithm { oid: String },
    /// The issuer's certificate does not allow it to sign CRLs (key usage cRLSign).
    IssuerNotCrlSigner,
}

impl fmt::Display for CrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrlProblem::Missing => f.write_str("no CRL from the issuer"),
            CrlProblem::NotCurrent {
                this_update,
                next_update: Some(n),
            } => write!(
                f,
                "the issuer's CRL is not current (thisUpdate {this_update}, nextUpdate {n})"
            ),
            CrlProblem::NotCurrent {
                this_update,
                next_update: None,
            } => write!(
                f,
                "the issuer's CRL (thisUpdate {this_update}) has no nextUpdate, so it is never current"
            ),
            CrlProblem::SignatureInvalid => {
                f.write_str("the CRL naming the issuer is not signed by the issuer's key")
            }
            CrlProblem::WrongAlgorithm { oid } => {
                write!(f, "the issuer's CRL is signed with {oid}, not SM2-with-SM3")
            }
            CrlProblem::IssuerNotCrlSigner => {
                f.write_str("the issuer's certificate lacks key usage cRLSign")
            }
        }
    }
}

/// Why a certificate chain is not valid. Each variant names the certificate it is about.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainError {
    /// No issuer of this certificate is among the intermediates or trust anchors.
    #[error("no path to a trust anchor: no issuer named {issuer:?} for {cert}")]
    NoPathToAnchor { cert: CertRef, issuer: String },
    /// The path is longer than gmchain ever builds.
    #[error("the path from {cert} is longer than {max} certificates")]
    PathTooLong { cert: CertRef, max: usize },
    /// The signature does not verify with the issuer's key.
    #[error("the signature of {cert} does not verify with the key of its issuer {issuer}")]
    SignatureInvalid { cert: CertRef, issuer: CertRef },
    /// The certificate expired.
    #[error("{cert} expired at {not_after} (now {now})")]
    Expired {
        cert: CertRef,
        not_after: UnixTime,
        now: UnixTime,
    },
    /// The certificate is not valid yet.
    #[error("{cert} is not valid before {not_before} (now {now})")]
    NotYetValid {
        cert: CertRef,
        not_before: UnixTime,
        now: UnixTime,
    },
    /// A certificate that issues another is not a CA.
    #[error("{cert} issues certificates but is not a CA (basic constraints cA)")]
    NotACa { cert: CertRef },
    /// A CA with more CAs below it than its path length allows.
    #[error("{cert} has path length {path_len} but {below} CA certificate(s) below it")]
    PathLengthExceeded {
        cert: CertRef,
        path_len: u8,
        below: usize,
    },
    /// Key usage does not allow what the certificate is used for.
    #[error("{cert} lacks key usage {required}")]
    KeyUsage {
        cert: CertRef,
        required: &'static str,
    },
    /// Extended key usage does not allow the intended role.
    #[error("{cert} lacks extended key usage {required}")]
    ExtendedKeyUsage {
        cert: CertRef,
        required: &'static str,
    },
    /// The certificate's role (OU and key usage) is not the intended one.
    #[error("{cert} is {}, not {expected}", found.map(|r| r.as_str()).unwrap_or("no gmchain role"))]
    WrongRole {
        cert: CertRef,
        expected: Role,
        found: Option<Role>,
    },
    /// The issuer name does not match the subject of the certificate whose key signed it.
    #[error("{cert} names issuer {issuer_name:?}, but it is signed by {signer}")]
    NameChaining {
        cert: CertRef,
        issuer_name: String,
        signer: CertRef,
    },
    /// A critical extension gmchain does not process.
    #[error("{cert} carries critical extension {oid}, which gmchain does not process")]
    UnknownCriticalExtension { cert: CertRef, oid: String },
    /// The certificate is revoked.
    #[error("{cert} is revoked since {at} ({reason})")]
    Revoked {
        cert: CertRef,
        reason: RevocationReason,
        at: UnixTime,
    },
    /// Revocation status cannot be established; never treated as valid.
    #[error("revocation status of {cert} is unknown: {problem}")]
    RevocationUnknown { cert: CertRef, problem: CrlProblem },
    /// A signature algorithm other than SM2-with-SM3.
    #[error("{cert} is signed with {oid}, not SM2-with-SM3 (1.2.156.10197.1.501)")]
    WrongAlgorithm { cert: CertRef, oid: String },
    /// A certificate below an agency CA that names another organisation.
    #[error("{cert} names organisation {found:?}, but its issuing agency CA is {expected:?}")]
    OrganisationMismatch {
        cert: CertRef,
        expected: String,
        found: Option<String>,
    },
    /// The trust anchor cannot anchor an identity (no organisation).
    #[error("trust anchor {cert} is unusable: {reason}")]
    AnchorUnusable { cert: CertRef, reason: &'static str },
    /// The certificate below a consortium anchor names an organisation the anchor does not
    /// sponsor. `anchor` is the anchor's subject.
    #[error(
        "{cert} names organisation {organisation:?}, which its trust anchor {anchor:?} does not sponsor"
    )]
    NotSponsored {
        cert: CertRef,
        organisation: String,
        anchor: String,
    },
}

impl ChainError {
    /// Returns a stable code for the API edge.
    pub fn code(&self) -> &'static codes::Code {
        match self {
            ChainError::NoPathToAnchor { .. } => &codes::CERT_NO_PATH_TO_ANCHOR,
            ChainError::PathTooLong { .. } => &codes::CERT_PATH_TOO_LONG,
            ChainError::SignatureInvalid { .. } => &codes::CERT_SIGNATURE_INVALID,
            ChainError::Expired { .. } => &codes::CERT_EXPIRED,
            ChainError::NotYetValid { .. } => &codes::CERT_NOT_YET_VALID,
            ChainError::NotACa { .. } => &codes::CERT_NOT_A_CA,
            ChainError::PathLengthExceeded { .. } => &codes::CERT_PATH_LENGTH_EXCEEDED,
            ChainError::KeyUsage { .. } => &codes::CERT_KEY_USAGE,
            ChainError::ExtendedKeyUsage { .. } => &codes::CERT_EXTENDED_KEY_USAGE,
            ChainError::WrongRole { .. } => &codes::CERT_WRONG_ROLE,
            ChainError::NameChaining { .. } => &codes::CERT_NAME_CHAINING,
            ChainError::UnknownCriticalExtension { .. } => &codes::CERT_UNKNOWN_CRITICAL_EXTENSION,
            ChainError::Revoked { .. } => &codes::CERT_REVOKED,
            ChainError::RevocationUnknown { .. } => &codes::CERT_REVOCATION_UNKNOWN,
            ChainError::WrongAlgorithm { .. } => &codes::CERT_WRONG_ALGORITHM,
            ChainError::OrganisationMismatch { .. } => &codes::CERT_ORGANISATION_MISMATCH,
            ChainError::AnchorUnusable { .. } => &codes::CERT_ANCHOR_UNUSABLE,
            ChainError::NotSponsored { .. } => &codes::CERT_NOT_SPONSORED,
        }
    }

    /// Returns what an operator can do about it.
    pub fn hint(&self) -> &'static str {
        self.code().hint
    }
}

impl codes::Coded for PkiError {
    fn code(&self) -> &'static codes::Code {
        PkiError::code(self)
    }

    fn class(&self) -> codes::Class {
        match self {
            PkiError::Signer(e) => codes::Coded::class(e),
            _ => self.code().class,
        }
    }
}

impl codes::Coded for ChainError {
    fn code(&self) -> &'static codes::Code {
        ChainError::code(self)
    }

    fn class(&self) -> codes::Class {
        self.code().class
    }
}
