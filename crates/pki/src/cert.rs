//! X.509 v3 certificates with SM2-with-SM3 (GM/T 0015, RFC 5280): the value types, parsing, the
//! role profiles and issuance.

use crate::der_util::{self, enc, oid};
use crate::name::{self, NameBuilder};
use crate::{OID_SM2_WITH_SM3, PkiError};
use crypto::{Digest, PublicKey, RandomSource, Signature, Signer, UserId};
use der::asn1::{BitString, ObjectIdentifier, OctetString};
use der::flagset::FlagSet;
use der::{Decode, Encode, Sequence};
use std::fmt;
use std::str::FromStr;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// The largest certificate accepted, in bytes. gmchain's are under 1 KiB.
pub const MAX_CERT_LEN: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Value types

/// Seconds since 1970-01-01T00:00:00Z. The library never reads a clock: callers pass the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(pub u64);

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match der::DateTime::from_unix_duration(core::time::Duration::from_secs(self.0)) {
            Ok(dt) => write!(f, "{dt}"),
            Err(_) => write!(f, "@{}", self.0),
        }
    }
}

/// A validity period, both ends inclusive (RFC 5280 §4.1.2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Validity {
    /// The first second the certificate is valid.
    pub not_before: UnixTime,
    /// The last second the certificate is valid.
    pub not_after: UnixTime,
}

impl Validity {
    /// Returns whether `now` lies within the period.
    pub fn contains(&self, now: UnixTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// A certificate serial number: a positive integer of at most 20 octets (RFC 5280 §4.1.2.2),
/// kept as its minimal big-endian magnitude.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// Returns 16 random bytes with the top bit cleared (127 bits of entropy, RFC 5280 asks for
    /// at least 64), never zero.
    pub fn random(rng: &dyn RandomSource) -> Result<Serial, PkiError> {
        for _ in 0..16 {
            let mut b = [0u8; 16];
            rng.fill(&mut b)?;
            b[0] &= 0x7f;
            if let Ok(s) = Serial::from_bytes(&b) {
                return Ok(s);
            }
        }
        Err(PkiError::Signer(crypto::CryptoError::Entropy))
    }

    /// Takes a big-endian magnitude: leading zeros are dropped; zero and values whose DER
    /// INTEGER would exceed 20 octets are refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Serial, PkiError> {
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let mag = &bytes[skip..];
        if mag.is_empty() {
            return Err(PkiError::BadSerial {
                reason: "a serial number is positive, never zero",
            });
        }
        // The DER INTEGER adds a 0x00 when the top bit is set.
        let encoded = mag.len() + usize::from(mag[0] & 0x80 != 0);
        if encoded > 20 {
            return Err(PkiError::BadSerial {
                reason: "a serial number is at most 20 octets (RFC 5280 §4.1.2.2)",
            });
        }
        Ok(Serial(mag.to_vec()))
    }

    /// Parses hex (upper or lower case, optional `0x`, even or odd length).
    pub fn from_hex(s: &str) -> Result<Serial, PkiError> {
        let t = s.trim();
        let t = t.strip_prefix("0x").unwrap_or(t);
        let padded = if t.len() % 2 == 1 {
            format!("0{t}")
        } else {
            t.to_string()
        };
        let bytes = hex::decode(padded).map_err(|_| PkiError::BadSerial {
            reason: "not hexadecimal",
        })?;
        Serial::from_bytes(&bytes)
    }

    /// Returns lower-case hex of the minimal magnitude.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Returns the minimal big-endian magnitude.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn to_x509(&self) -> Result<SerialNumber, PkiError> {
        SerialNumber::new(&self.0).map_err(|_| PkiError::BadSerial {
            reason: "a serial number is at most 20 octets (RFC 5280 §4.1.2.2)",
        })
    }

    /// Reads a serial from a certificate or CRL: refuses negative and zero values.
    pub(crate) fn from_x509(sn: &SerialNumber) -> Result<Serial, PkiError> {
        let b = sn.as_bytes();
        if b.first().is_some_and(|x| x & 0x80 != 0) {
            return Err(PkiError::Decode {
                what: "serial number",
                reason: "negative serial number (RFC 5280 §4.1.2.2: positive)".into(),
            });
        }
        let skip = b.iter().take_while(|x| **x == 0).count();
        if skip == b.len() {
            return Err(PkiError::Decode {
                what: "serial number",
                reason: "zero serial number (RFC 5280 §4.1.2.2: positive)".into(),
            });
        }
        Ok(Serial(b[skip..].to_vec()))
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

impl FromStr for Serial {
    type Err = PkiError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Serial::from_hex(s)
    }
}

/// The roles gmchain certifies. The profile of each role fixes OU, key usage, extended key
/// usage and basic constraints; nothing in a request can change them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The self-signed root of the consortium.
    RootCa,
    /// An agency's intermediate CA, issued by the root; issues leaves for its own organisation.
    AgencyCa,
    /// A node's signing certificate (consensus, blocks, TLS authentication).
    NodeSign,
    /// A node's encryption certificate: the second of a dual pair (TLCP key exchange).
    NodeEnc,
    /// An administrator.
    Admin,
    /// A user submitting transactions.
    User,
    /// An auditor or regulator (read and trace).
    Auditor,
    /// A user's encryption certificate: the second of a user's dual pair. It receives keys
    /// (data-exchange grants) and never signs: not a transaction signer, not a TLS identity.
    UserEnc,
    /// An administrator's encryption certificate (the second of a dual pair); never signs.
    AdminEnc,
    /// An auditor's encryption certificate (the second of a dual pair); never signs.
    AuditorEnc,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 10] = [
        Role::RootCa,
        Role::AgencyCa,
        Role::NodeSign,
        Role::NodeEnc,
        Role::Admin,
        Role::User,
        Role::Auditor,
        Role::UserEnc,
        Role::AdminEnc,
        Role::AuditorEnc,
    ];

    /// Returns the role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::RootCa => "root-ca",
            Role::AgencyCa => "agency-ca",
            Role::NodeSign => "node-sign",
            Role::NodeEnc => "node-enc",
            Role::Admin => "admin",
            Role::User => "user",
            Role::Auditor => "auditor",
            Role::UserEnc => "user-enc",
            Role::AdminEnc => "admin-enc",
            Role::AuditorEnc => "auditor-enc",
        }
    }

    /// Returns the organizational unit (OU) the profile writes. The two certificates of a dual
    /// pair share the OU ("node", "user", "admin", "auditor") and differ by key usage.
    pub fn ou(self) -> &'static str {
        match self {
            Role::RootCa => "root-ca",
            Role::AgencyCa => "agency-ca",
            Role::NodeSign | Role::NodeEnc => "node",
            Role::Admin | Role::AdminEnc => "admin",
            Role::User | Role::UserEnc => "user",
            Role::Auditor | Role::AuditorEnc => "auditor",
        }
    }

    /// Returns whether the role is a CA.
    pub fn is_ca(self) -> bool {
        matches!(self, Role::RootCa | Role::AgencyCa)
    }

    /// Returns whether the role is the encryption half of a dual pair (key usage
    /// keyEncipherment, dataEncipherment and keyAgreement; no digitalSignature). Such a
    /// certificate never authenticates anything: no transaction signer, no TLS identity.
    pub fn is_encryption(self) -> bool {
        matches!(
            self,
            Role::NodeEnc | Role::UserEnc | Role::AdminEnc | Role::AuditorEnc
        )
    }

    /// Returns the encryption role that pairs with this signing role in a dual certificate
    /// pair (GM/T 0015 and GB/T 38636 dual certificates: one key signs, the other receives
    /// keys), or `None` for a role that has no encryption half (CAs, and the encryption roles
    /// themselves). A grantee's encryption certificate is accepted for a signer when it has
    /// the signer's O and CN and this role.
    pub fn encryption_pair(self) -> Option<Role> {
        match self {
            Role::NodeSign => Some(Role::NodeEnc),
            Role::User => Some(Role::UserEnc),
            Role::Admin => Some(Role::AdminEnc),
            Role::Auditor => Some(Role::AuditorEnc),
            Role::RootCa
            | Role::AgencyCa
            | Role::NodeEnc
            | Role::UserEnc
            | Role::AdminEnc
            | Role::AuditorEnc => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = PkiError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| PkiError::UnknownRole(s.to_string()))
    }
}

// ---------------------------------------------------------------------------------------------
// Profiles

/// Key usage bits of a profile.
pub(crate) fn profile_key_usage(role: Role) -> FlagSet<KeyUsages> {
    match role {
        Role::RootCa | Role::AgencyCa => KeyUsages::KeyCertSign | KeyUsages::CRLSign,
        Role::NodeSign | Role::Admin | Role::User | Role::Auditor => {
            KeyUsages::DigitalSignature | KeyUsages::NonRepudiation
        }
        Role::NodeEnc | Role::UserEnc | Role::AdminEnc | Role::AuditorEnc => {
            KeyUsages::KeyEncipherment | KeyUsages::DataEncipherment | KeyUsages::KeyAgreement
        }
    }
}

/// Extended key usages of a profile (none for CAs).
pub(crate) fn profile_eku(role: Role) -> Vec<ObjectIdentifier> {
    match role {
        Role::RootCa | Role::AgencyCa => Vec::new(),
        Role::NodeSign | Role::NodeEnc => vec![oid::KP_SERVER_AUTH, oid::KP_CLIENT_AUTH],
        Role::Admin | Role::User | Role::Auditor => vec![oid::KP_CLIENT_AUTH],
        // A person's encryption key authenticates nothing: no TLS use at all (the node's
        // encryption certificate keeps its TLCP key-exchange EKUs).
        Role::UserEnc | Role::AdminEnc | Role::AuditorEnc => Vec::new(),
    }
}

/// The subject key identifier gmchain writes: the leftmost 160 bits of SM3 over the
/// subjectPublicKey BIT STRING contents (04 ‖ x ‖ y): RFC 7093 §2 method 1 with SM3 in place
/// of SHA-256, so no non-GM hash appears anywhere in a certificate.
pub fn key_identifier(key: &PublicKey) -> Vec<u8> {
    crypto_sm::sm3::sm3(key.as_bytes()).0[..20].to_vec()
}

fn extension<T: Encode>(
    oid: ObjectIdentifier,
    critical: bool,
    value: &T,
) -> Result<Extension, PkiError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(enc)?).map_err(enc)?,
    })
}

/// Returns the extensions of `role`'s profile for `subject_key`, with an authority key
/// identifier `aki` (absent for the self-signed root).
pub(crate) fn profile_extensions(
    role: Role,
    subject_key: &PublicKey,
    aki: Option<Vec<u8>>,
) -> Result<Vec<Extension>, PkiError> {
    let mut out = Vec::new();
    let basic = match role {
        Role::RootCa => BasicConstraints {
            ca: true,
            path_len_constraint: Some(1),
        },
        Role::AgencyCa => BasicConstraints {
            ca: true,
            path_len_constraint: Some(0),
        },
        _ => BasicConstraints {
            ca: false,
            path_len_constraint: None,
        },
    };
    out.push(extension(oid::BASIC_CONSTRAINTS, true, &basic)?);
    out.push(extension(
        oid::KEY_USAGE,
        true,
        &KeyUsage(profile_key_usage(role)),
    )?);
    let eku = profile_eku(role);
    if !eku.is_empty() {
        out.push(extension(
            oid::EXT_KEY_USAGE,
            false,
            &ExtendedKeyUsage(eku),
        )?);
    }
    let ski = OctetString::new(key_identifier(subject_key)).map_err(enc)?;
    out.push(extension(
        oid::SUBJECT_KEY_ID,
        false,
        &SubjectKeyIdentifier(ski),
    )?);
    if let Some(kid) = aki {
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(kid).map_err(enc)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        out.push(extension(oid::AUTHORITY_KEY_ID, false, &aki)?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The TBSCertificate we sign

/// RFC 5280 §4.1 `TBSCertificate` as gmchain writes it: always v3 with extensions. Our own
/// Sequence because x509-cert keeps its `TbsCertificate` fields private without its builder;
/// every field is an x509-cert type, and the result is re-parsed by x509-cert before use.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TbsCertificateOut {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: x509_cert::certificate::Version,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: x509_cert::time::Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

/// RFC 5280 §4.1 `Certificate`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct CertificateOut {
    tbs_certificate: TbsCertificateOut,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// Everything a certificate says, chosen by the caller: the one place certificates are built.
pub(crate) struct TbsFields<'a> {
    pub serial: &'a Serial,
    pub issuer: Name,
    pub subject: Name,
    pub validity: Validity,
    pub public_key: &'a PublicKey,
    pub extensions: Vec<Extension>,
    pub signature_algorithm: AlgorithmIdentifierOwned,
}

/// The SM2-with-SM3 AlgorithmIdentifier gmchain writes: parameters absent, as OpenSSL and the
/// `sm2` crate write it.
pub(crate) fn sm2_with_sm3() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: OID_SM2_WITH_SM3,
        parameters: None,
    }
}

/// Encodes `fields`, signs the DER with `signer` under `id` and returns the parsed certificate.
pub(crate) fn sign_certificate(
    fields: TbsFields<'_>,
    signer: &dyn Signer,
    id: &UserId,
) -> Result<Certificate, PkiError> {
    let spki_der = crypto_sm::keys::encode_public_key_der(fields.public_key)?;
    let tbs = TbsCertificateOut {
        version: x509_cert::certificate::Version::V3,
        serial_number: fields.serial.to_x509()?,
        signature: fields.signature_algorithm.clone(),
        issuer: fields.issuer,
        validity: x509_cert::time::Validity::new(
            der_util::to_time(fields.validity.not_before)?,
            der_util::to_time(fields.validity.not_after)?,
        ),
        subject: fields.subject,
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(&spki_der).map_err(enc)?,
        extensions: fields.extensions,
    };
    let tbs_der = tbs.to_der().map_err(enc)?;
    // GM/T 0015: the signature is over SM3(ZA ‖ DER(TBSCertificate)), ZA over the issuer's key.
    let sig = signer.sign(id, &tbs_der)?;
    // A signer whose key is not the one it reports would issue unverifiable certificates.
    crypto_sm::sm2::verify(&signer.public_key(), id, &tbs_der, &sig).map_err(|_| {
        PkiError::SignatureInvalid {
            what: "certificate just signed (the signer's key is not its public key)",
        }
    })?;
    let cert = CertificateOut {
        tbs_certificate: tbs,
        signature_algorithm: fields.signature_algorithm,
        signature: BitString::from_bytes(&sig.to_der()).map_err(enc)?,
    };
    Certificate::from_der(&cert.to_der().map_err(enc)?)
}

// ---------------------------------------------------------------------------------------------
// Parsed certificates

/// The extensions gmchain reads, decoded once at parse time.
#[derive(Clone, Debug, Default)]
pub(crate) struct ParsedExtensions {
    pub basic: Option<BasicConstraints>,
    pub key_usage: Option<FlagSet<KeyUsages>>,
    pub eku: Option<Vec<ObjectIdentifier>>,
    pub ski: Option<Vec<u8>>,
    pub aki: Option<Vec<u8>>,
    pub unknown_critical: Vec<ObjectIdentifier>,
}

fn parse_extensions(exts: Option<&Vec<Extension>>) -> Result<ParsedExtensions, PkiError> {
    let mut out = ParsedExtensions::default();
    let mut seen: Vec<ObjectIdentifier> = Vec::new();
    let bad = |what: &'static str, e: der::Error| PkiError::Decode {
        what,
        reason: e.to_string(),
    };
    for e in exts.map(|v| v.as_slice()).unwrap_or(&[]) {
        // RFC 5280 §4.2: a certificate MUST NOT include more than one instance of an extension.
        if seen.contains(&e.extn_id) {
            return Err(PkiError::Decode {
                what: "certificate extensions",
                reason: format!("extension {} appears twice", e.extn_id),
            });
        }
        seen.push(e.extn_id);
        let v = e.extn_value.as_bytes();
        match e.extn_id {
            oid::BASIC_CONSTRAINTS => {
                out.basic =
                    Some(BasicConstraints::from_der(v).map_err(|e| bad("basic constraints", e))?)
            }
            oid::KEY_USAGE => {
                out.key_usage = Some(KeyUsage::from_der(v).map_err(|e| bad("key usage", e))?.0)
            }
            oid::EXT_KEY_USAGE => {
                out.eku = Some(
                    ExtendedKeyUsage::from_der(v)
                        .map_err(|e| bad("extended key usage", e))?
                        .0,
                )
            }
            oid::SUBJECT_KEY_ID => {
                out.ski = Some(
                    SubjectKeyIdentifier::from_der(v)
                        .map_err(|e| bad("subject key identifier", e))?
                        .0
                        .as_bytes()
                        .to_vec(),
                )
            }
            oid::AUTHORITY_KEY_ID => {
                out.aki = AuthorityKeyIdentifier::from_der(v)
                    .map_err(|e| bad("authority key identifier", e))?
                    .key_identifier
                    .map(|k| k.as_bytes().to_vec())
            }
            other if e.critical => out.unknown_critical.push(other),
            _ => {}
        }
    }
    Ok(out)
}

/// A parsed X.509 certificate that owns its DER. Parsing refuses non-DER encodings, trailing
/// bytes, negative or zero serials, keys other than SM2 points, and malformed or duplicated
/// extensions; it does not judge the signature algorithm or validity (validation does).
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    /// SM3 of `der`, computed once at parsing: revocation and registration checks look the
    /// issuer up by it on every admission.
    fingerprint: Digest,
    tbs: Vec<u8>,
    inner: x509_cert::Certificate,
    public_key: PublicKey,
    serial: Serial,
    ext: ParsedExtensions,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Certificate({:?}, serial {})",
            self.subject(),
            self.serial
        )
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

impl std::hash::Hash for Certificate {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.der.hash(state)
    }
}

impl Certificate {
    /// Parses a `CERTIFICATE` PEM block.
    pub fn from_pem(input: &[u8]) -> Result<Self, PkiError> {
        let der = der_util::pem_decode(input, "CERTIFICATE", "certificate", MAX_CERT_LEN)?;
        Self::from_der(&der)
    }

    /// Parses DER.
    pub fn from_der(input: &[u8]) -> Result<Self, PkiError> {
        let decode = |e: der::Error| PkiError::Decode {
            what: "certificate",
            reason: e.to_string(),
        };
        if input.len() > MAX_CERT_LEN {
            return Err(PkiError::Decode {
                what: "certificate",
                reason: format!("{} bytes; at most {MAX_CERT_LEN}", input.len()),
            });
        }
        let inner = x509_cert::Certificate::from_der(input).map_err(decode)?;
        // Only the canonical encoding is accepted: re-encoding must give the same bytes, so the
        // signed TBS bytes are exactly what the parsed fields say (RFC 5280 §4.1.1.3: DER).
        if inner.to_der().map_err(decode)? != input {
            return Err(PkiError::Decode {
                what: "certificate",
                reason: "not in canonical DER (re-encoding differs)".into(),
            });
        }
        let tbs = der_util::tbs_bytes(input).map_err(decode)?;
        let t = inner.tbs_certificate();
        let spki = t.subject_public_key_info().to_der().map_err(decode)?;
        let public_key =
            crypto_sm::keys::decode_public_key(&spki).map_err(|e| PkiError::NotSm2Key {
                what: "certificate",
                reason: e.to_string(),
            })?;
        let serial = Serial::from_x509(t.serial_number())?;
        let ext = parse_extensions(t.extensions())?;
        Ok(Certificate {
            der: input.to_vec(),
            fingerprint: crypto_sm::sm3::sm3(input),
            tbs,
            inner,
            public_key,
            serial,
            ext,
        })
    }

    /// Returns PEM (`CERTIFICATE`, LF line endings).
    pub fn to_pem(&self) -> String {
        der_util::pem_encode("CERTIFICATE", &self.der)
    }

    /// Returns the DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Returns the DER of the TBSCertificate, the bytes the signature covers.
    pub fn tbs_der(&self) -> &[u8] {
        &self.tbs
    }

    /// Returns the serial number.
    pub fn serial(&self) -> Serial {
        self.serial.clone()
    }

    /// Returns the subject as an RFC 4514 string (most significant RDN last: "CN=…,O=…,C=CN").
    pub fn subject(&self) -> String {
        self.inner.tbs_certificate().subject().to_string()
    }

    /// Returns the issuer as an RFC 4514 string.
    pub fn issuer(&self) -> String {
        self.inner.tbs_certificate().issuer().to_string()
    }

    pub(crate) fn subject_name(&self) -> &Name {
        self.inner.tbs_certificate().subject()
    }

    pub(crate) fn issuer_name(&self) -> &Name {
        self.inner.tbs_certificate().issuer()
    }

    /// Returns the common name, if the subject has exactly one.
    pub fn common_name(&self) -> Option<String> {
        name::single(self.subject_name(), oid::CN)
    }

    /// Returns the organisation, if the subject has exactly one.
    pub fn organisation(&self) -> Option<String> {
        name::single(self.subject_name(), oid::O)
    }

    /// Returns the organizational unit, if the subject has exactly one.
    pub fn organizational_unit(&self) -> Option<String> {
        name::single(self.subject_name(), oid::OU)
    }

    /// Returns the gmchain role: the OU together with basic constraints and key usage must match
    /// one profile; anything else (including a foreign certificate) has no role. The key usage
    /// test is what validation requires of the role: keyCertSign for CAs, digitalSignature for
    /// signing roles, keyEncipherment or keyAgreement for the encryption roles; and the two
    /// certificates of every dual pair must keep signing and encryption apart (a person's
    /// certificate with both is neither).
    pub fn role(&self) -> Option<Role> {
        let ou = self.organizational_unit()?;
        let ku = self.ext.key_usage?;
        let ca = self.is_ca();
        let sign = ku.contains(KeyUsages::DigitalSignature);
        let encrypt =
            ku.contains(KeyUsages::KeyEncipherment) || ku.contains(KeyUsages::KeyAgreement);
        let role = Role::ALL.into_iter().find(|r| {
            r.ou() == ou
                && r.is_ca() == ca
                && match r {
                    Role::RootCa | Role::AgencyCa => ku.contains(KeyUsages::KeyCertSign),
                    Role::NodeSign | Role::Admin | Role::User | Role::Auditor => sign && !encrypt,
                    Role::NodeEnc | Role::UserEnc | Role::AdminEnc | Role::AuditorEnc => {
                        encrypt && !sign
                    }
                }
        })?;
        match role {
            Role::RootCa if !self.is_self_issued() => None,
            Role::AgencyCa if self.is_self_issued() => None,
            r => Some(r),
        }
    }

    /// Returns the subject's SM2 public key.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// Returns the validity period.
    pub fn validity(&self) -> Validity {
        let v = self.inner.tbs_certificate().validity();
        Validity {
            not_before: der_util::from_time(v.not_before),
            not_after: der_util::from_time(v.not_after),
        }
    }

    /// Returns whether basic constraints mark the certificate as a CA.
    pub fn is_ca(&self) -> bool {
        self.ext.basic.as_ref().is_some_and(|b| b.ca)
    }

    /// Returns the basic constraints path length, if any.
    pub fn path_len(&self) -> Option<u8> {
        self.ext.basic.as_ref().and_then(|b| b.path_len_constraint)
    }

    /// Returns whether issuer and subject are the same name.
    pub fn is_self_issued(&self) -> bool {
        self.issuer_name() == self.subject_name()
    }

    /// Returns the subject key identifier, if present.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.ext.ski.as_deref()
    }

    /// Returns the authority key identifier's keyIdentifier, if present.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.ext.aki.as_deref()
    }

    /// Returns the key usage bits set, by their RFC 5280 names (empty without the extension).
    pub fn key_usages(&self) -> Vec<&'static str> {
        const NAMES: [(KeyUsages, &str); 9] = [
            (KeyUsages::DigitalSignature, "digitalSignature"),
            (KeyUsages::NonRepudiation, "nonRepudiation"),
            (KeyUsages::KeyEncipherment, "keyEncipherment"),
            (KeyUsages::DataEncipherment, "dataEncipherment"),
            (KeyUsages::KeyAgreement, "keyAgreement"),
            (KeyUsages::KeyCertSign, "keyCertSign"),
            (KeyUsages::CRLSign, "cRLSign"),
            (KeyUsages::EncipherOnly, "encipherOnly"),
            (KeyUsages::DecipherOnly, "decipherOnly"),
        ];
        let ku = self.ext.key_usage.unwrap_or_default();
        NAMES
            .into_iter()
            .filter(|(k, _)| ku.contains(*k))
            .map(|(_, n)| n)
            .collect()
    }

    /// Returns the extended key usages as dotted OIDs (empty without the extension).
    pub fn extended_key_usages(&self) -> Vec<String> {
        self.ext
            .eku
            .iter()
            .flatten()
            .map(ToString::to_string)
            .collect()
    }

    /// Returns the critical extensions gmchain does not process, as dotted OIDs.
    pub fn unknown_critical_extensions(&self) -> Vec<String> {
        self.ext
            .unknown_critical
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    pub(crate) fn key_usage(&self) -> Option<FlagSet<KeyUsages>> {
        self.ext.key_usage
    }

    pub(crate) fn extended_key_usage(&self) -> Option<&[ObjectIdentifier]> {
        self.ext.eku.as_deref()
    }

    pub(crate) fn unknown_critical(&self) -> &[ObjectIdentifier] {
        &self.ext.unknown_critical
    }

    /// Returns the dotted OID of the signature algorithm.
    pub fn signature_algorithm(&self) -> String {
        self.inner.signature_algorithm().oid.to_string()
    }

    /// Returns SM3 of the DER.
    pub fn fingerprint(&self) -> Digest {
        self.fingerprint
    }

    /// Checks the signature algorithm: SM2-with-SM3 with parameters absent or NULL, the same
    /// in the TBSCertificate and outside it (RFC 5280 §4.1.1.2).
    pub(crate) fn check_algorithm(&self) -> Result<(), String> {
        let outer = self.inner.signature_algorithm();
        let inner = self.inner.tbs_certificate().signature();
        der_util::check_sm2_algorithm(outer)?;
        if outer != inner {
            return Err(format!(
                "{} (the TBSCertificate names {})",
                outer.oid, inner.oid
            ));
        }
        Ok(())
    }

    pub(crate) fn signature(&self) -> Result<Signature, PkiError> {
        der_util::signature_from_bits(self.inner.signature(), "certificate signature")
    }

    /// Verifies the signature with `issuer_key` and user ID `id` (GB/T 32918.2 §7.1 over
    /// SM3(ZA ‖ TBSCertificate)), refusing any algorithm but SM2-with-SM3.
    pub fn verify_signed_by(&self, issuer_key: &PublicKey, id: &UserId) -> Result<(), PkiError> {
        self.check_algorithm()
            .map_err(|oid| PkiError::WrongAlgorithm {
                what: "certificate",
                oid,
            })?;
        let sig = self.signature()?;
        crypto_sm::sm2::verify(issuer_key, id, &self.tbs, &sig).map_err(|_| {
            PkiError::SignatureInvalid {
                what: "certificate",
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Issuance

/// What the CA asks for: the profile comes from `role`, the name from `common_name` and
/// `organisation`, the key from a verified request.
#[derive(Debug, Clone)]
pub struct IssueRequest<'a> {
    /// The role, which selects the profile.
    pub role: Role,
    /// The subject's common name (checked: 1..=64 characters, no control characters or RFC 4514
    /// specials).
    pub common_name: &'a str,
    /// The organisation (O); for an agency CA issuer, its own.
    pub organisation: &'a str,
    /// The subject's public key.
    pub public_key: &'a PublicKey,
    /// A fresh serial number.
    pub serial: Serial,
    /// The validity period, within the issuer's.
    pub validity: Validity,
}

fn check_validity(v: &Validity) -> Result<(), PkiError> {
    if v.not_before >= v.not_after {
        return Err(PkiError::BadValidity {
            reason: "notBefore must precede notAfter",
        });
    }
    der_util::to_time(v.not_before)?;
    der_util::to_time(v.not_after)?;
    Ok(())
}

/// Issues the self-signed root: the signer's public key is the subject key. Profile: basic
/// constraints CA with path length 1 (critical), key usage keyCertSign and cRLSign (critical),
/// subject key identifier; subject C=CN, O, OU=root-ca, CN.
pub fn issue_root(
    common_name: &str,
    organisation: &str,
    serial: Serial,
    validity: Validity,
    signer: &dyn Signer,
) -> Result<Certificate, PkiError> {
    name::check_common_name(common_name)?;
    name::check_organisation(organisation)?;
    check_validity(&validity)?;
    let key = signer.public_key();
    crypto_sm::sm2::parse_public_key(key.as_bytes())?;
    let subject = NameBuilder::profile(organisation, Role::RootCa.ou(), common_name)?;
    sign_certificate(
        TbsFields {
            serial: &serial,
            issuer: subject.clone(),
            subject,
            validity,
            public_key: &key,
            extensions: profile_extensions(Role::RootCa, &key, None)?,
            signature_algorithm: sm2_with_sm3(),
        },
        signer,
        &UserId::default(),
    )
}

/// Issues a certificate for any role but the root, signed by `issuer_cert`'s key held by
/// `issuer`. Refuses: an issuer that is not a CA with keyCertSign, a signer whose key is not
/// the issuer certificate's, a CA below an issuer whose path length is 0, a validity outside the
/// issuer's, another organisation than an agency CA's own, a bad common name or organisation,
/// an invalid subject key or the issuer's own key.
pub fn issue(
    issuer_cert: &Certificate,
    issuer: &dyn Signer,
    req: &IssueRequest<'_>,
) -> Result<Certificate, PkiError> {
    if req.role == Role::RootCa {
        return Err(PkiError::RoleNotIssuable {
            role: Role::RootCa,
            reason: "a root is self-signed: use issue_root",
        });
    }
    name::check_common_name(req.common_name)?;
    name::check_organisation(req.organisation)?;
    check_validity(&req.validity)?;
    let issuer_name = issuer_cert.subject();
    if !issuer_cert.is_ca()
        || !issuer_cert
            .key_usage()
            .is_some_and(|k| k.contains(KeyUsages::KeyCertSign))
    {
        return Err(PkiError::IssuerNotCa {
            issuer: issuer_name,
        });
    }
    if issuer.public_key() != issuer_cert.public_key() {
        return Err(PkiError::IssuerKeyMismatch {
            issuer: issuer_name,
        });
    }
    // Basic constraints: a CA below this issuer needs path length ≥ 1 here.
    if req.role.is_ca() && issuer_cert.path_len().is_some_and(|p| p == 0) {
        return Err(PkiError::PathLength {
            issuer: issuer_name,
            path_len: issuer_cert.path_len(),
            requested: req.role,
        });
    }
    // gmchain's only CA-issuing CA is the root.
    if req.role == Role::AgencyCa && !issuer_cert.is_self_issued() {
        return Err(PkiError::PathLength {
            issuer: issuer_name,
            path_len: issuer_cert.path_len(),
            requested: req.role,
        });
    }
    let iv = issuer_cert.validity();
    if req.validity.not_before < iv.not_before || req.validity.not_after > iv.not_after {
        return Err(PkiError::ValidityOutsideIssuer {
            not_before: req.validity.not_before,
            not_after: req.validity.not_after,
            issuer_not_before: iv.not_before,
            issuer_not_after: iv.not_after,
        });
    }
    if !issuer_cert.is_self_issued() {
        let org = issuer_cert.organisation().unwrap_or_default();
        if org != req.organisation {
            return Err(PkiError::OrganisationMismatch {
                issuer: issuer_name,
                issuer_org: org,
                requested: req.organisation.to_string(),
            });
        }
    }
    let key = crypto_sm::sm2::parse_public_key(req.public_key.as_bytes()).map_err(|e| {
        PkiError::NotSm2Key {
            what: "issue request",
            reason: e.to_string(),
        }
    })?;
    if key == issuer_cert.public_key() {
        return Err(PkiError::KeyReuse);
    }
    let aki = issuer_cert
        .subject_key_id()
        .map(<[u8]>::to_vec)
        .unwrap_or_else(|| key_identifier(&issuer_cert.public_key()));
    sign_certificate(
        TbsFields {
            serial: &req.serial,
            issuer: issuer_cert.subject_name().clone(),
            subject: NameBuilder::profile(req.organisation, req.role.ou(), req.common_name)?,
            validity: req.validity,
            public_key: &key,
            extensions: profile_extensions(req.role, &key, Some(aki))?,
            signature_algorithm: sm2_with_sm3(),
        },
        issuer,
        &UserId::default(),
    )
}

/// Parameters NULL, as some GM implementations write them: accepted, never written.
#[cfg(test)]
pub(crate) fn sm2_with_sm3_null() -> Result<AlgorithmIdentifierOwned, PkiError> {
    Ok(AlgorithmIdentifierOwned {
        oid: OID_SM2_WITH_SM3,
        parameters: Some(der::Any::encode_from(&der::asn1::Null).map_err(enc)?),
    })
}
