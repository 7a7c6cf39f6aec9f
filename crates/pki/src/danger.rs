//! Certificates and CRLs with every field chosen by the caller and no profile check: for
//! negative tests and the conformance suite, which need certificates that `issue` refuses to
//! make (a foreign signature algorithm, an unknown critical extension, a CA below an agency
//! CA, a mismatched issuer name, a CRL signed by the wrong key). Nothing made here is trusted
//! more than any other input: validation judges it like any certificate.

use crate::cert::{self, TbsFields};
use crate::der_util::enc;
use crate::{Certificate, Crl, PkiError, Role, Serial, UnixTime, Validity, crl::RevokedEntry};
use crypto::{PublicKey, Signer, UserId};
use der::asn1::{ObjectIdentifier, OctetString};
use std::str::FromStr;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::spki::AlgorithmIdentifierOwned;

/// One extension as raw DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawExtension {
    /// Dotted OID.
    pub oid: String,
    /// The critical flag.
    pub critical: bool,
    /// The DER of the extension value (the content of extnValue).
    pub value_der: Vec<u8>,
}

/// Every field of a certificate.
#[derive(Debug, Clone)]
pub struct CertTemplate {
    /// The serial number.
    pub serial: Serial,
    /// The issuer, RFC 4514 (parsed by x509-cert: C as PrintableString, others UTF8String).
    pub issuer: String,
    /// The subject, RFC 4514.
    pub subject: String,
    /// The validity.
    pub validity: Validity,
    /// The subject key.
    pub public_key: PublicKey,
    /// The extensions, in order.
    pub extensions: Vec<RawExtension>,
    /// The signature algorithm's dotted OID (parameters absent), written both in the
    /// TBSCertificate and outside it.
    pub signature_algorithm: String,
}

impl CertTemplate {
    /// Returns the template `issue` (or `issue_root`, when `issuer` is `None`) would sign for
    /// these values, without any of its checks.
    pub fn from_profile(
        role: Role,
        organisation: &str,
        common_name: &str,
        public_key: &PublicKey,
        issuer: Option<&Certificate>,
        serial: Serial,
        validity: Validity,
    ) -> Result<Self, PkiError> {
        let subject = crate::name::NameBuilder::profile(organisation, role.ou(), common_name)?;
        let aki = issuer.map(|i| {
            i.subject_key_id()
                .map(<[u8]>::to_vec)
                .unwrap_or_else(|| cert::key_identifier(&i.public_key()))
        });
        let extensions = cert::profile_extensions(role, public_key, aki)?
            .into_iter()
            .map(|e| RawExtension {
                oid: e.extn_id.to_string(),
                critical: e.critical,
                value_der: e.extn_value.as_bytes().to_vec(),
            })
            .collect();
        Ok(CertTemplate {
            serial,
            issuer: issuer
                .map(Certificate::subject)
                .unwrap_or_else(|| subject.to_string()),
            subject: subject.to_string(),
            validity,
            public_key: *public_key,
            extensions,
            signature_algorithm: crate::OID_SM2_WITH_SM3.to_string(),
        })
    }
}

fn name(s: &str) -> Result<Name, PkiError> {
    Name::from_str(s).map_err(|e| PkiError::BadSubject {
        subject: s.to_string(),
        reason: e.to_string(),
    })
}

fn oid(s: &str) -> Result<ObjectIdentifier, PkiError> {
    ObjectIdentifier::new(s).map_err(|e| PkiError::Encode(format!("OID {s:?}: {e}")))
}

/// Signs `t` with `signer` under user ID `id`, whatever `signer`'s key and whatever `t` says.
pub fn sign_certificate(
    t: &CertTemplate,
    signer: &dyn Signer,
    id: &UserId,
) -> Result<Certificate, PkiError> {
    let extensions = t
        .extensions
        .iter()
        .map(|e| {
            Ok(Extension {
                extn_id: oid(&e.oid)?,
                critical: e.critical,
                extn_value: OctetString::new(e.value_der.clone()).map_err(enc)?,
            })
        })
        .collect::<Result<Vec<_>, PkiError>>()?;
    cert::sign_certificate(
        TbsFields {
            serial: &t.serial,
            issuer: name(&t.issuer)?,
            subject: name(&t.subject)?,
            validity: t.validity,
            public_key: &t.public_key,
            extensions,
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: oid(&t.signature_algorithm)?,
                parameters: None,
            },
        },
        signer,
        id,
    )
}

/// Signs a CRL naming `issuer_cert` as issuer with `signer`, whatever its key, under `id`.
pub fn sign_crl(
    issuer_cert: &Certificate,
    signer: &dyn Signer,
    number: u64,
    this_update: UnixTime,
    next_update: UnixTime,
    revoked: &[RevokedEntry],
    id: &UserId,
) -> Result<Crl, PkiError> {
    crate::crl::sign_crl(
        issuer_cert,
        signer,
        number,
        this_update,
        next_update,
        revoked,
        id,
    )
}
