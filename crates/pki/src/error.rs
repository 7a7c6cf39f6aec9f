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
    pub fn code(&self) -> &'static str {
        match self {
            PkiError::BadSubject { .. } => "PKI_BAD_SUBJECT",
            PkiError::Decode { .. } => "PKI_DECODE",
            PkiError::WrongAlgorithm { .. } => "PKI_WRONG_ALGORITHM",
            PkiError::NotSm2Key { .. } => "PKI_NOT_SM2_KEY",
            PkiError::SignatureInvalid { .. } => "PKI_SIGNATURE_INVALID",
            PkiError::Signer(_) => "PKI_SIGNER",
            PkiError::Encode(_) => "PKI_ENCODE",
            PkiError::BadCommonName { .. } => "PKI_BAD_COMMON_NAME",
            PkiError::BadOrganisation { .. } => "PKI_BAD_ORGANISATION",
            PkiError::CommonNameMissing => "PKI_COMMON_NAME_MISSING",
            PkiError::RoleClaimMismatch { .. } => "PKI_CSR_ROLE_CLAIM",
            PkiError::OrganisationClaimMismatch { .. } => "PKI_CSR_ORGANISATION_CLAIM",
            PkiError::BadValidity { .. } => "PKI_BAD_VALIDITY",
            PkiError::ValidityOutsideIssuer { .. } => "PKI_VALIDITY_OUTSIDE_ISSUER",
            PkiError::IssuerNotCa { .. } => "PKI_ISSUER_NOT_CA",
            PkiError::IssuerNotCrlSigner { .. } => "PKI_ISSUER_NOT_CRL_SIGNER",
            PkiError::IssuerKeyMismatch { .. } => "PKI_ISSUER_KEY_MISMATCH",
            PkiError::PathLength { .. } => "PKI_PATH_LENGTH",
            PkiError::OrganisationMismatch { .. } => "PKI_ORGANISATION_MISMATCH",
            PkiError::RoleNotIssuable { .. } => "PKI_ROLE_NOT_ISSUABLE",
            PkiError::KeyReuse => "PKI_KEY_REUSE",
            PkiError::BadSerial { .. } => "PKI_BAD_SERIAL",
            PkiError::UnknownRole(_) => "PKI_UNKNOWN_ROLE",
            PkiError::UnknownReason(_) => "PKI_UNKNOWN_REASON",
            PkiError::BadCrl { .. } => "PKI_BAD_CRL",
            PkiError::Envelope { .. } => "PKI_ENVELOPE",
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
    pub fn code(&self) -> &'static str {
        match self {
            ChainError::NoPathToAnchor { .. } => "CERT_NO_PATH_TO_ANCHOR",
            ChainError::PathTooLong { .. } => "CERT_PATH_TOO_LONG",
            ChainError::SignatureInvalid { .. } => "CERT_SIGNATURE_INVALID",
            ChainError::Expired { .. } => "CERT_EXPIRED",
            ChainError::NotYetValid { .. } => "CERT_NOT_YET_VALID",
            ChainError::NotACa { .. } => "CERT_NOT_A_CA",
            ChainError::PathLengthExceeded { .. } => "CERT_PATH_LENGTH_EXCEEDED",
            ChainError::KeyUsage { .. } => "CERT_KEY_USAGE",
            ChainError::ExtendedKeyUsage { .. } => "CERT_EXTENDED_KEY_USAGE",
            ChainError::WrongRole { .. } => "CERT_WRONG_ROLE",
            ChainError::NameChaining { .. } => "CERT_NAME_CHAINING",
            ChainError::UnknownCriticalExtension { .. } => "CERT_UNKNOWN_CRITICAL_EXTENSION",
            ChainError::Revoked { .. } => "CERT_REVOKED",
            ChainError::RevocationUnknown { .. } => "CERT_REVOCATION_UNKNOWN",
            ChainError::WrongAlgorithm { .. } => "CERT_WRONG_ALGORITHM",
            ChainError::OrganisationMismatch { .. } => "CERT_ORGANISATION_MISMATCH",
            ChainError::AnchorUnusable { .. } => "CERT_ANCHOR_UNUSABLE",
            ChainError::NotSponsored { .. } => "CERT_NOT_SPONSORED",
        }
    }

    /// Returns what an operator can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            ChainError::NoPathToAnchor { .. } => {
                "pass the issuing CA certificates as intermediates and the root (or the organisation's registered CA) as trust anchor"
            }
            ChainError::PathTooLong { .. } => "gmchain chains are root → agency CA → leaf",
            ChainError::SignatureInvalid { .. } => {
                "the certificate was altered, or signed with another user ID: SM2 certificates are signed with ID 1234567812345678 (OpenSSL 3.0: -sigopt distid:1234567812345678); a trust anchor can name another ID"
            }
            ChainError::Expired { .. } | ChainError::NotYetValid { .. } => {
                "renew the certificate, or check the clock"
            }
            ChainError::NotACa { .. } | ChainError::PathLengthExceeded { .. } => {
                "only the root issues agency CAs, and agency CAs issue only leaves"
            }
            ChainError::KeyUsage { .. }
            | ChainError::ExtendedKeyUsage { .. }
            | ChainError::WrongRole { .. } => {
                "use the certificate issued for this role (node signing and encryption certificates are separate)"
            }
            ChainError::NameChaining { .. } => {
                "the certificate's issuer name must equal its issuer's subject byte for byte"
            }
            ChainError::UnknownCriticalExtension { .. } => {
                "reissue the certificate with a gmchain profile"
            }
            ChainError::Revoked { .. } => "the certificate was revoked; request a new one",
            ChainError::RevocationUnknown { .. } => {
                "fetch the issuer's current CRL (thisUpdate ≤ now < nextUpdate) and pass it"
            }
            ChainError::WrongAlgorithm { .. } => "gmchain accepts only SM2-with-SM3 signatures",
            ChainError::OrganisationMismatch { .. } => {
                "an agency CA issues only for its own organisation"
            }
            ChainError::AnchorUnusable { .. } => {
                "register as trust anchor a CA certificate whose subject has an organisation (O)"
            }
            ChainError::NotSponsored { .. } => {
                "a genesis root certifies only its own organisation and those genesis lists in its sponsors"
            }
        }
    }
}
