//! SM2 X.509 for gmchain: certificates by role profile (root CA, agency CA, node signing, node
//! encryption, admin, user, auditor), PKCS#10 certification requests, v2 CRLs, chain validation
//! with revocation, and GM/T 0009 enveloped keys for dual certificates. Everything is signed
//! through [`crypto::Signer`], so a CA key can stay in an HSM.
//!
//! Parsing and building both use the RustCrypto `x509-cert` types on one `der` stack: the same
//! strict-DER codec reads what we write, and no second ASN.1 library (x509-parser, nom,
//! oid-registry) enters the build. Parsers also demand the canonical encoding (decode, re-encode,
//! compare), so the bytes a signature covers are exactly the fields we act on.
//!
//! It refuses: any signature algorithm but SM2-with-SM3 (1.2.156.10197.1.501, parameters absent
//! or NULL), any key but an SM2 point (id-ecPublicKey with curve 1.2.156.10197.1.301), trailing
//! or non-DER bytes, names smuggled through a request (the profile, not the CSR, sets O and OU),
//! and, in validation, every chain whose revocation status is not established by a current CRL.
//! It never reads a clock or an entropy source: time and randomness are arguments.
//! Signatures use ZA with the default user ID over the signer's key; a trust anchor can name
//! another ID for certificates made by software that signs with one (OpenSSL 3.0: empty).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod cert;
mod chain;
mod consortium;
mod crl;
pub mod csr;
pub mod danger;
mod der_util;
pub mod envelope;
mod error;
mod name;
#[cfg(test)]
mod tests;

pub use cert::{
    Certificate, IssueRequest, MAX_CERT_LEN, Role, Serial, UnixTime, Validity, issue, issue_root,
    key_identifier,
};
pub use chain::{MAX_PATH_LEN, TrustAnchor, ValidatedChain, validate_chain};
pub use consortium::{Consortium, ConsortiumAnchor, Sponsorship};
pub use crl::{Crl, MAX_CRL_LEN, RevocationReason, RevokedEntry, issue_crl};
pub use error::{CertRef, ChainError, CrlProblem, PkiError};
pub use name::{MAX_NAME_CHARS, check_common_name, check_organisation};

/// SM2-with-SM3 (GM/T 0006 / GB/T 33560): the only signature algorithm gmchain issues or accepts.
pub const OID_SM2_WITH_SM3: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
