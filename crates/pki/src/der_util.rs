//! DER, PEM and time helpers shared by certificates, CRLs and requests.

use crate::{OID_SM2_WITH_SM3, PkiError, UnixTime};
use crypto::Signature;
use der::asn1::BitString;
use der::{Reader, SliceReader, Tagged};
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::time::Time;

/// The object identifiers gmchain reads and writes.
pub(crate) mod oid {
    use der::asn1::ObjectIdentifier as Oid;
    pub const CN: Oid = Oid::new_unwrap("2.5.4.3");
    pub const C: Oid = Oid::new_unwrap("2.5.4.6");
    pub const O: Oid = Oid::new_unwrap("2.5.4.10");
    pub const OU: Oid = Oid::new_unwrap("2.5.4.11");
    pub const SUBJECT_KEY_ID: Oid = Oid::new_unwrap("2.5.29.14");
    pub const KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
    pub const BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
    pub const CRL_NUMBER: Oid = Oid::new_unwrap("2.5.29.20");
    pub const CRL_REASON: Oid = Oid::new_unwrap("2.5.29.21");
    pub const INVALIDITY_DATE: Oid = Oid::new_unwrap("2.5.29.24");
    pub const AUTHORITY_KEY_ID: Oid = Oid::new_unwrap("2.5.29.35");
    pub const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
    pub const KP_SERVER_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.1");
    pub const KP_CLIENT_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.2");
}

pub(crate) fn enc(e: der::Error) -> PkiError {
    PkiError::Encode(e.to_string())
}

/// Converts to an X.509 Time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280
/// §4.1.2.5).
pub(crate) fn to_time(t: UnixTime) -> Result<Time, PkiError> {
    let dt =
        der::DateTime::from_unix_duration(core::time::Duration::from_secs(t.0)).map_err(|_| {
            PkiError::BadValidity {
                reason: "time beyond 9999-12-31",
            }
        })?;
    Ok(Time::from(dt))
}

pub(crate) fn from_time(t: Time) -> UnixTime {
    UnixTime(t.to_unix_duration().as_secs())
}

/// Returns the first element (the TBS part) of a signed SEQUENCE { tbs, algorithm, signature },
/// refusing anything but exactly three elements and no trailing bytes.
pub(crate) fn tbs_bytes(input: &[u8]) -> Result<Vec<u8>, der::Error> {
    let mut r = SliceReader::new(input)?;
    let tbs = r.sequence(|seq| {
        let tbs = seq.tlv_bytes()?;
        seq.tlv_bytes()?;
        seq.tlv_bytes()?;
        Ok::<_, der::Error>(tbs)
    })?;
    r.finish()?;
    Ok(tbs.to_vec())
}

/// Accepts SM2-with-SM3 with parameters absent or NULL; returns the OID otherwise.
pub(crate) fn check_sm2_algorithm(alg: &AlgorithmIdentifierOwned) -> Result<(), String> {
    if alg.oid != OID_SM2_WITH_SM3 {
        return Err(alg.oid.to_string());
    }
    match &alg.parameters {
        None => Ok(()),
        Some(p) if p.tag() == der::Tag::Null && p.value().is_empty() => Ok(()),
        Some(_) => Err(format!("{} with parameters other than NULL", alg.oid)),
    }
}

/// Decodes a signature BIT STRING holding a GM/T 0009 SM2Signature.
pub(crate) fn signature_from_bits(
    bits: &BitString,
    what: &'static str,
) -> Result<Signature, PkiError> {
    let bytes = bits.as_bytes().ok_or(PkiError::Decode {
        what,
        reason: "BIT STRING with unused bits".into(),
    })?;
    Signature::from_der(bytes).map_err(|e| PkiError::Decode {
        what,
        reason: e.to_string(),
    })
}

/// Decodes one PEM block with `label`.
pub(crate) fn pem_decode(
    input: &[u8],
    label: &str,
    what: &'static str,
    max: usize,
) -> Result<Vec<u8>, PkiError> {
    if input.len() > max * 2 {
        return Err(PkiError::Decode {
            what,
            reason: format!("{} bytes of PEM is too large", input.len()),
        });
    }
    let text = core::str::from_utf8(input).map_err(|_| PkiError::Decode {
        what,
        reason: "PEM is not UTF-8".into(),
    })?;
    let (got, der) =
        der::pem::decode_vec(text.trim().as_bytes()).map_err(|e| PkiError::Decode {
            what,
            reason: format!("bad PEM: {e}"),
        })?;
    if got != label {
        return Err(PkiError::Decode {
            what,
            reason: format!("PEM label {got:?}, expected {label:?}"),
        });
    }
    Ok(der)
}

/// Encodes PEM with LF line endings.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    // Encoding fails only on length overflow, impossible for the sizes parsing allows.
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap_or_default()
}
