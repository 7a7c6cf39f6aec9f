//! Version 2 certificate revocation lists (RFC 5280 §5) signed with SM2-with-SM3.

use crate::cert::{Certificate, key_identifier, sm2_with_sm3};
use crate::der_util::{self, enc, oid};
use crate::{PkiError, Serial, UnixTime};
use crypto::{PublicKey, Signature, Signer, UserId};
use der::asn1::{BitString, OctetString, Uint};
use der::{Decode, Encode};
use std::fmt;
use std::str::FromStr;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, CrlReason, KeyUsages};
use x509_cert::name::Name;

/// The largest CRL accepted, in bytes.
pub const MAX_CRL_LEN: usize = 16 * 1024 * 1024;

/// Why a certificate was revoked (RFC 5280 §5.3.1 CRLReason, the values a full CRL carries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// Every reason.
    pub const ALL: [RevocationReason; 8] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn,
    ];

    /// Returns the kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key-compromise",
            RevocationReason::CaCompromise => "ca-compromise",
            RevocationReason::AffiliationChanged => "affiliation-changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation-of-operation",
            RevocationReason::CertificateHold => "certificate-hold",
            RevocationReason::PrivilegeWithdrawn => "privilege-withdrawn",
        }
    }

    fn to_x509(self) -> CrlReason {
        match self {
            RevocationReason::Unspecified => CrlReason::Unspecified,
            RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
            RevocationReason::CaCompromise => CrlReason::CaCompromise,
            RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
            RevocationReason::Superseded => CrlReason::Superseded,
            RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
            RevocationReason::CertificateHold => CrlReason::CertificateHold,
            RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        }
    }

    fn from_x509(r: CrlReason) -> Option<Self> {
        Some(match r {
            CrlReason::Unspecified => RevocationReason::Unspecified,
            CrlReason::KeyCompromise => RevocationReason::KeyCompromise,
            CrlReason::CaCompromise => RevocationReason::CaCompromise,
            CrlReason::AffiliationChanged => RevocationReason::AffiliationChanged,
            CrlReason::Superseded => RevocationReason::Superseded,
            CrlReason::CessationOfOperation => RevocationReason::CessationOfOperation,
            CrlReason::CertificateHold => RevocationReason::CertificateHold,
            CrlReason::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
            // removeFromCRL belongs to delta CRLs, aACompromise to attribute certificates.
            CrlReason::RemoveFromCRL | CrlReason::AaCompromise => return None,
        })
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RevocationReason {
    type Err = PkiError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RevocationReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| PkiError::UnknownReason(s.to_string()))
    }
}

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The certificate's serial number.
    pub serial: Serial,
    /// When it was revoked.
    pub revoked_at: UnixTime,
    /// Why.
    pub reason: RevocationReason,
}

/// A parsed v2 CRL that owns its DER. Parsing refuses non-DER encodings, versions other than
/// v2, unknown critical extensions (delta CRLs and issuing distribution points included: a CRL
/// gmchain cannot fully interpret is not a CRL it may rely on), unknown critical entry
/// extensions, duplicated serials and CRL numbers beyond 64 bits.
#[derive(Clone)]
pub struct Crl {
    der: Vec<u8>,
    tbs: Vec<u8>,
    inner: CertificateList,
    number: u64,
    revoked: Vec<RevokedEntry>,
    aki: Option<Vec<u8>>,
}

impl fmt::Debug for Crl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Crl(issuer {:?}, number {}, {} revoked)",
            self.issuer(),
            self.number,
            self.revoked.len()
        )
    }
}

impl PartialEq for Crl {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Crl {}

fn crl_err(reason: impl Into<String>) -> PkiError {
    PkiError::Decode {
        what: "CRL",
        reason: reason.into(),
    }
}

impl Crl {
    /// Parses an `X509 CRL` PEM block.
    pub fn from_pem(input: &[u8]) -> Result<Self, PkiError> {
        let der = der_util::pem_decode(input, "X509 CRL", "CRL", MAX_CRL_LEN)?;
        Self::from_der(&der)
    }

    /// Parses DER.
    pub fn from_der(input: &[u8]) -> Result<Self, PkiError> {
        if input.len() > MAX_CRL_LEN {
            return Err(crl_err(format!(
                "{} bytes; at most {MAX_CRL_LEN}",
                input.len()
            )));
        }
        let decode = |e: der::Error| crl_err(e.to_string());
        let inner = CertificateList::from_der(input).map_err(decode)?;
        if inner.to_der().map_err(decode)? != input {
            return Err(crl_err("not in canonical DER (re-encoding differs)"));
        }
        let tbs = der_util::tbs_bytes(input).map_err(decode)?;
        let t = &inner.tbs_cert_list;
        if t.version != x509_cert::certificate::Version::V2 {
            return Err(crl_err("only version 2 CRLs are accepted"));
        }
        let mut number = 0u64;
        let mut aki = None;
        let mut seen = Vec::new();
        for e in t.crl_extensions.as_deref().unwrap_or(&[]) {
            if seen.contains(&e.extn_id) {
                return Err(crl_err(format!("extension {} appears twice", e.extn_id)));
            }
            seen.push(e.extn_id);
            match e.extn_id {
                oid::CRL_NUMBER => {
                    let n = CrlNumber::from_der(e.extn_value.as_bytes()).map_err(decode)?;
                    number =
                        uint_to_u64(&n.0).ok_or_else(|| crl_err("CRL number beyond 64 bits"))?;
                }
                oid::AUTHORITY_KEY_ID => {
                    aki = AuthorityKeyIdentifier::from_der(e.extn_value.as_bytes())
                        .map_err(decode)?
                        .key_identifier
                        .map(|k| k.as_bytes().to_vec());
                }
                other if e.critical => {
                    return Err(crl_err(format!(
                        "critical extension {other} is not processed by gmchain"
                    )));
                }
                _ => {}
            }
        }
        let mut revoked = Vec::new();
        for r in t.revoked_certificates.as_deref().unwrap_or(&[]) {
            let serial = Serial::from_x509(&r.serial_number)?;
            if revoked.iter().any(|e: &RevokedEntry| e.serial == serial) {
                return Err(crl_err(format!("serial {serial} listed twice")));
            }
            let mut reason = RevocationReason::Unspecified;
            let mut seen = Vec::new();
            for e in r.crl_entry_extensions.as_deref().unwrap_or(&[]) {
                if seen.contains(&e.extn_id) {
                    return Err(crl_err(format!(
                        "entry extension {} appears twice",
                        e.extn_id
                    )));
                }
                seen.push(e.extn_id);
                match e.extn_id {
                    oid::CRL_REASON => {
                        let x = CrlReason::from_der(e.extn_value.as_bytes()).map_err(decode)?;
                        reason = RevocationReason::from_x509(x).ok_or_else(|| {
                            crl_err(format!("reason {x:?} does not belong in a full CRL"))
                        })?;
                    }
                    oid::INVALIDITY_DATE => {}
                    // certificateIssuer (indirect CRLs) and anything else critical.
                    other if e.critical => {
                        return Err(crl_err(format!(
                            "critical entry extension {other} is not processed by gmchain"
                        )));
                    }
                    _ => {}
                }
            }
            revoked.push(RevokedEntry {
                serial,
                revoked_at: der_util::from_time(r.revocation_date),
                reason,
            });
        }
        Ok(Crl {
            der: input.to_vec(),
            tbs,
            inner,
            number,
            revoked,
            aki,
        })
    }

    /// Returns PEM (`X509 CRL`).
    pub fn to_pem(&self) -> String {
        der_util::pem_encode("X509 CRL", &self.der)
    }

    /// Returns the DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Returns the issuer as an RFC 4514 string.
    pub fn issuer(&self) -> String {
        self.inner.tbs_cert_list.issuer.to_string()
    }

    pub(crate) fn issuer_name(&self) -> &Name {
        &self.inner.tbs_cert_list.issuer
    }

    /// Returns the CRL number, or 0 when the CRL has none.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Returns thisUpdate.
    pub fn this_update(&self) -> UnixTime {
        der_util::from_time(self.inner.tbs_cert_list.this_update)
    }

    /// Returns nextUpdate, if present (a CRL without one is never current for validation).
    pub fn next_update(&self) -> Option<UnixTime> {
        self.inner
            .tbs_cert_list
            .next_update
            .map(der_util::from_time)
    }

    /// Returns whether thisUpdate ≤ `now` < nextUpdate.
    pub fn is_current(&self, now: UnixTime) -> bool {
        self.this_update() <= now && self.next_update().is_some_and(|n| now < n)
    }

    /// Returns the revoked certificates.
    pub fn revoked(&self) -> Vec<RevokedEntry> {
        self.revoked.clone()
    }

    /// Returns the entry for `serial`, if revoked.
    pub fn find(&self, serial: &Serial) -> Option<&RevokedEntry> {
        self.revoked.iter().find(|e| &e.serial == serial)
    }

    /// Returns the authority key identifier, if present.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.aki.as_deref()
    }

    /// Returns the DER of the TBSCertList.
    pub fn tbs_der(&self) -> &[u8] {
        &self.tbs
    }

    pub(crate) fn check_algorithm(&self) -> Result<(), String> {
        let outer = &self.inner.signature_algorithm;
        der_util::check_sm2_algorithm(outer)?;
        if outer != &self.inner.tbs_cert_list.signature {
            return Err(format!(
                "{} (the TBSCertList names {})",
                outer.oid, self.inner.tbs_cert_list.signature.oid
            ));
        }
        Ok(())
    }

    /// Verifies the signature with `issuer_key` and the default user ID.
    pub fn verify_signed_by(&self, issuer_key: &PublicKey) -> Result<(), PkiError> {
        self.verify_signed_by_with_id(issuer_key, &UserId::default())
    }

    /// Verifies the signature with `issuer_key` and user ID `id`.
    pub fn verify_signed_by_with_id(
        &self,
        issuer_key: &PublicKey,
        id: &UserId,
    ) -> Result<(), PkiError> {
        self.check_algorithm()
            .map_err(|oid| PkiError::WrongAlgorithm { what: "CRL", oid })?;
        let sig: Signature = der_util::signature_from_bits(&self.inner.signature, "CRL signature")?;
        crypto_sm::sm2::verify(issuer_key, id, &self.tbs, &sig)
            .map_err(|_| PkiError::SignatureInvalid { what: "CRL" })
    }
}

fn uint_to_u64(u: &Uint) -> Option<u64> {
    let b = u.as_bytes();
    let skip = b.iter().take_while(|x| **x == 0).count();
    let b = &b[skip..];
    if b.len() > 8 {
        return None;
    }
    let mut a = [0u8; 8];
    a[8 - b.len()..].copy_from_slice(b);
    Some(u64::from_be_bytes(a))
}

/// Issues a v2 CRL: issuer name and authority key identifier from `issuer_cert`, CRL number,
/// thisUpdate and nextUpdate, one entry per revoked certificate with a reasonCode (omitted for
/// `Unspecified`, RFC 5280 §5.3.1), signed by `issuer` (whose key must be `issuer_cert`'s, with
/// key usage cRLSign).
pub fn issue_crl(
    issuer_cert: &Certificate,
    issuer: &dyn Signer,
    number: u64,
    this_update: UnixTime,
    next_update: UnixTime,
    revoked: &[RevokedEntry],
) -> Result<Crl, PkiError> {
    if !issuer_cert
        .key_usage()
        .is_some_and(|k| k.contains(KeyUsages::CRLSign))
    {
        return Err(PkiError::IssuerNotCrlSigner {
            issuer: issuer_cert.subject(),
        });
    }
    if issuer.public_key() != issuer_cert.public_key() {
        return Err(PkiError::IssuerKeyMismatch {
            issuer: issuer_cert.subject(),
        });
    }
    sign_crl(
        issuer_cert,
        issuer,
        number,
        this_update,
        next_update,
        revoked,
        &UserId::default(),
    )
}

/// Builds and signs a CRL naming `issuer_cert` with whatever key `signer` holds.
pub(crate) fn sign_crl(
    issuer_cert: &Certificate,
    signer: &dyn Signer,
    number: u64,
    this_update: UnixTime,
    next_update: UnixTime,
    revoked: &[RevokedEntry],
    id: &UserId,
) -> Result<Crl, PkiError> {
    if this_update >= next_update {
        return Err(PkiError::BadCrl {
            reason: "thisUpdate must precede nextUpdate".into(),
        });
    }
    let mut entries = Vec::with_capacity(revoked.len());
    for (i, e) in revoked.iter().enumerate() {
        if revoked[..i].iter().any(|p| p.serial == e.serial) {
            return Err(PkiError::BadCrl {
                reason: format!("serial {} listed twice", e.serial),
            });
        }
        let exts = if e.reason == RevocationReason::Unspecified {
            None
        } else {
            Some(vec![Extension {
                extn_id: oid::CRL_REASON,
                critical: false,
                extn_value: OctetString::new(e.reason.to_x509().to_der().map_err(enc)?)
                    .map_err(enc)?,
            }])
        };
        entries.push(RevokedCert {
            serial_number: e.serial.to_x509()?,
            revocation_date: der_util::to_time(e.revoked_at)?,
            crl_entry_extensions: exts,
        });
    }
    let aki = issuer_cert
        .subject_key_id()
        .map(<[u8]>::to_vec)
        .unwrap_or_else(|| key_identifier(&issuer_cert.public_key()));
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(aki).map_err(enc)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let crl_number = CrlNumber::try_from(number).map_err(enc)?;
    let tbs = TbsCertList {
        version: x509_cert::certificate::Version::V2,
        signature: sm2_with_sm3(),
        issuer: issuer_cert.subject_name().clone(),
        this_update: der_util::to_time(this_update)?,
        next_update: Some(der_util::to_time(next_update)?),
        // RFC 5280 §5.1.2.6: absent, not empty, when nothing is revoked.
        revoked_certificates: if entries.is_empty() {
            None
        } else {
            Some(entries)
        },
        crl_extensions: Some(vec![
            Extension {
                extn_id: oid::AUTHORITY_KEY_ID,
                critical: false,
                extn_value: OctetString::new(aki.to_der().map_err(enc)?).map_err(enc)?,
            },
            Extension {
                extn_id: oid::CRL_NUMBER,
                critical: false,
                extn_value: OctetString::new(crl_number.to_der().map_err(enc)?).map_err(enc)?,
            },
        ]),
    };
    let tbs_der = tbs.to_der().map_err(enc)?;
    let sig = signer.sign(id, &tbs_der)?;
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: sm2_with_sm3(),
        signature: BitString::from_bytes(&sig.to_der()).map_err(enc)?,
    };
    Crl::from_der(&crl.to_der().map_err(enc)?)
}
