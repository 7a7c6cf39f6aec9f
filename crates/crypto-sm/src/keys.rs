//! Key files, compatible with OpenSSL 3 and GmSSL 3:
//! - private keys as PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`, or `SM2 PRIVATE KEY` as
//!   `openssl ec` writes it), PEM or DER, with the algorithm id-ecPublicKey and the curve OID
//!   1.2.156.10197.1.301;
//! - encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`, RFC 8018 PBES2): written with PBKDF2-HMAC-SM3
//!   (OID 1.2.156.10197.1.401.2, as GmSSL) and SM4-CBC (1.2.156.10197.1.104.2); read with that
//!   PRF or with hmacWithSHA256, which `openssl pkcs8 -topk8 -v2 sm4-cbc` uses (OpenSSL 3.0 has
//!   no HMAC-SM3 PRF). hmacWithSHA256 is not a GM algorithm: it is read for interoperability
//!   only, and [`require_gm_key_file`] is the rule by which a production node refuses it;
//! - public keys as SubjectPublicKeyInfo (`PUBLIC KEY`).
//!
//! An encrypted PKCS#8 file is the only form in which gmchain stores a private key on disk.

use crate::sm2::PrivateKey;
use crate::sm4::{self, Sm4Secret};
use crypto::gmt0009::der_sequence;
use crypto::{CryptoError, PublicKey, RandomSource, Secret, Sm4Mode};
use der::asn1::{Null, ObjectIdentifier as Oid, OctetStringRef};
use der::{Decode, Encode, Reader, SliceReader, Tag};
use sm2::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use zeroize::Zeroizing;

const OID_PBES2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.13");
const OID_PBKDF2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.12");
/// HMAC-SM3 as GmSSL 3 names it for PBKDF2.
pub const OID_HMAC_SM3: Oid = Oid::new_unwrap("1.2.156.10197.1.401.2");
const OID_HMAC_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.2.9");
const OID_HMAC_SHA1: Oid = Oid::new_unwrap("1.2.840.113549.2.7");
const OID_EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
const OID_SM2_CURVE: Oid = Oid::new_unwrap("1.2.156.10197.1.301");
/// SM4-CBC (GM/T 0006).
pub const OID_SM4_CBC: Oid = Oid::new_unwrap("1.2.156.10197.1.104.2");

/// PBKDF2 iterations gmchain writes (GmSSL's default).
pub const DEFAULT_ITERATIONS: u32 = 65_536;
/// The fewest PBKDF2 iterations gmchain writes (GmSSL 3 refuses to read fewer).
pub const MIN_ITERATIONS: u32 = 10_000;
/// The most PBKDF2 iterations gmchain will run when reading a file: a bound against a file
/// crafted to burn CPU.
pub const MAX_ITERATIONS: u32 = 10_000_000;

fn decode_err(reason: impl Into<String>) -> CryptoError {
    CryptoError::KeyDecode {
        reason: reason.into(),
    }
}

/// The decoded form of a key file, before a passphrase is applied.
enum Container {
    Plain(Zeroizing<Vec<u8>>, Kind),
    Encrypted(Vec<u8>),
}

#[derive(Clone, Copy)]
enum Kind {
    Pkcs8,
    Sec1,
}

fn classify(input: &[u8]) -> Result<Container, CryptoError> {
    // PEM, possibly after explanatory text (as OpenSSL allows); anything else is DER.
    if let Some(start) = core::str::from_utf8(input)
        .ok()
        .and_then(|t| t.find("-----BEGIN"))
    {
        let text =
            core::str::from_utf8(input).map_err(|_| decode_err("PEM file is not valid UTF-8"))?;
        let (label, der) = der::pem::decode_vec(text[start..].trim_end().as_bytes())
            .map_err(|e| decode_err(format!("bad PEM: {e}")))?;
        let der = Zeroizing::new(der);
        return match label {
            "PRIVATE KEY" => Ok(Container::Plain(der, Kind::Pkcs8)),
            // OpenSSL 3 labels the SEC1 form of an SM2 key (`openssl ec`) "SM2 PRIVATE KEY".
            "EC PRIVATE KEY" | "SM2 PRIVATE KEY" => Ok(Container::Plain(der, Kind::Sec1)),
            "ENCRYPTED PRIVATE KEY" => Ok(Container::Encrypted(der.to_vec())),
            other => Err(decode_err(format!(
                "PEM label {other:?} is not a private key (expected PRIVATE KEY, EC PRIVATE KEY, SM2 PRIVATE KEY or ENCRYPTED PRIVATE KEY)"
            ))),
        };
    }
    // DER: an EncryptedPrivateKeyInfo starts with SEQUENCE { SEQUENCE { OID pbes2 ...
    if parse_encrypted(input).is_ok() {
        return Ok(Container::Encrypted(input.to_vec()));
    }
    if sm2::SecretKey::from_pkcs8_der(input).is_ok() {
        return Ok(Container::Plain(
            Zeroizing::new(input.to_vec()),
            Kind::Pkcs8,
        ));
    }
    Ok(Container::Plain(Zeroizing::new(input.to_vec()), Kind::Sec1))
}

/// Returns whether a key file is encrypted (so the caller knows to ask for a passphrase).
pub fn is_encrypted(input: &[u8]) -> bool {
    matches!(classify(input), Ok(Container::Encrypted(_)))
}

/// Reads a private key from PEM or DER in any of the supported forms. `passphrase` is needed
/// for an encrypted file and refused for a plain one (so a typo'd path is noticed).
pub fn decode_private_key(
    input: &[u8],
    passphrase: Option<&[u8]>,
) -> Result<PrivateKey, CryptoError> {
    match (classify(input)?, passphrase) {
        (Container::Plain(der, kind), None) => decode_plain(&der, kind),
        (Container::Plain(..), Some(_)) => Err(decode_err(
            "a passphrase was given but the key file is not encrypted",
        )),
        (Container::Encrypted(_), None) => Err(decode_err(
            "the key file is encrypted: give its passphrase (--pass-file or --pass-env)",
        )),
        (Container::Encrypted(der), Some(pass)) => {
            let pkcs8 = decrypt_pkcs8(&der, pass)?;
            decode_plain(&pkcs8, Kind::Pkcs8).map_err(|_| CryptoError::KeyDecrypt)
        }
    }
}

fn decode_plain(der: &[u8], kind: Kind) -> Result<PrivateKey, CryptoError> {
    let sk = match kind {
        Kind::Pkcs8 => sm2::SecretKey::from_pkcs8_der(der).map_err(|e| {
            decode_err(format!(
                "not an SM2 PKCS#8 key (id-ecPublicKey with curve 1.2.156.10197.1.301): {e}"
            ))
        })?,
        Kind::Sec1 => sm2::SecretKey::from_sec1_der(der)
            .map_err(|e| decode_err(format!("not an SM2 key in PKCS#8 or SEC1 form: {e}")))?,
    };
    let bytes = Zeroizing::new(sk.to_bytes());
    PrivateKey::from_bytes(&bytes[..])
}

fn to_secret_key(key: &PrivateKey) -> Result<sm2::SecretKey, CryptoError> {
    sm2::SecretKey::from_slice(&key.to_bytes()[..]).map_err(|_| CryptoError::InvalidPrivateKey {
        reason: "d out of range",
    })
}

/// PKCS#8 `PrivateKeyInfo` around the SEC1 `ECPrivateKey` with its `parameters` [0] (the curve
/// OID) and `publicKey` [1]. RustCrypto's own PKCS#8 encoder leaves `parameters` out, and GmSSL
/// 3.1 (`sm2_private_key_from_der`) refuses an ECPrivateKey without it; RFC 5915 §3 asks for it.
fn pkcs8_document(key: &PrivateKey) -> Result<der::SecretDocument, CryptoError> {
    let failed = |e: der::Error| decode_err(format!("PKCS#8 encoding failed: {e}"));
    let sec1 = to_secret_key(key)?.to_sec1_der().map_err(failed)?;
    let algorithm = sm2::pkcs8::AlgorithmIdentifierRef {
        oid: OID_EC_PUBLIC_KEY,
        parameters: Some((&OID_SM2_CURVE).into()),
    };
    let info =
        sm2::pkcs8::PrivateKeyInfoRef::new(algorithm, OctetStringRef::new(&sec1).map_err(failed)?);
    der::SecretDocument::encode_msg(&info).map_err(failed)
}

/// Writes an unencrypted PKCS#8 DER (only ever as the plaintext inside an encrypted file, or
/// for interoperability tests).
pub fn encode_pkcs8_der(key: &PrivateKey) -> Result<Secret, CryptoError> {
    Ok(Secret::new(pkcs8_document(key)?.as_bytes().to_vec()))
}

/// Writes an unencrypted PKCS#8 PEM (`PRIVATE KEY`).
pub fn encode_pkcs8_pem(key: &PrivateKey) -> Result<Secret, CryptoError> {
    let pem = pkcs8_document(key)?
        .to_pem("PRIVATE KEY", LineEnding::LF)
        .map_err(|e| decode_err(format!("PKCS#8 encoding failed: {e}")))?;
    Ok(Secret::new(pem.as_bytes().to_vec()))
}

/// Writes an unencrypted SEC1 PEM (`EC PRIVATE KEY`).
pub fn encode_sec1_pem(key: &PrivateKey) -> Result<Secret, CryptoError> {
    let pem = to_secret_key(key)?
        .to_sec1_pem(LineEnding::LF)
        .map_err(|e| decode_err(format!("SEC1 encoding failed: {e}")))?;
    Ok(Secret::new(pem.as_bytes().to_vec()))
}

/// Writes an SPKI PEM (`PUBLIC KEY`).
pub fn encode_public_key_pem(key: &PublicKey) -> Result<String, CryptoError> {
    let pk = sm2::PublicKey::from_sec1_bytes(key.as_bytes()).map_err(|_| {
        CryptoError::InvalidPublicKey {
            reason: "not a point of sm2p256v1",
        }
    })?;
    pk.to_public_key_pem(LineEnding::LF)
        .map_err(|e| decode_err(format!("SPKI encoding failed: {e}")))
}

/// Writes an SPKI DER.
pub fn encode_public_key_der(key: &PublicKey) -> Result<Vec<u8>, CryptoError> {
    let pk = sm2::PublicKey::from_sec1_bytes(key.as_bytes()).map_err(|_| {
        CryptoError::InvalidPublicKey {
            reason: "not a point of sm2p256v1",
        }
    })?;
    pk.to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .map_err(|e| decode_err(format!("SPKI encoding failed: {e}")))
}

/// Reads a public key from an SPKI (`PUBLIC KEY` PEM or DER). A private key file is also
/// accepted, and its public half returned, as `openssl pkeyutl -inkey` does.
pub fn decode_public_key(input: &[u8]) -> Result<PublicKey, CryptoError> {
    let der = if input.starts_with(b"-----BEGIN") {
        let text =
            core::str::from_utf8(input).map_err(|_| decode_err("PEM file is not valid UTF-8"))?;
        let (label, der) = der::pem::decode_vec(text.trim_end().as_bytes())
            .map_err(|e| decode_err(format!("bad PEM: {e}")))?;
        if label != "PUBLIC KEY" {
            if matches!(label, "PRIVATE KEY" | "EC PRIVATE KEY" | "SM2 PRIVATE KEY") {
                return decode_private_key(input, None).map(|k| k.public_key());
            }
            return Err(decode_err(format!("PEM label {label:?} is not PUBLIC KEY")));
        }
        der
    } else {
        input.to_vec()
    };
    let pk = sm2::PublicKey::from_public_key_der(&der).map_err(|e| {
        decode_err(format!(
            "not an SM2 SubjectPublicKeyInfo (id-ecPublicKey, curve 1.2.156.10197.1.301): {e}"
        ))
    })?;
    crate::sm2::parse_public_key(&pk.to_sec1_bytes())
}

/// The PBKDF2 pseudo-random function of an encrypted key file, among those gmchain reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pbkdf2Prf {
    /// HMAC-SM3 (1.2.156.10197.1.401.2), as GmSSL 3 and gmchain write: the GM PRF.
    HmacSm3,
    /// hmacWithSHA256 (1.2.840.113549.2.9), as `openssl pkcs8 -topk8 -v2 sm4-cbc` writes: not a
    /// GM algorithm.
    HmacSha256,
}

impl Pbkdf2Prf {
    /// Returns the PRF an OID names, if gmchain reads it.
    pub fn from_oid(oid: &Oid) -> Option<Self> {
        if *oid == OID_HMAC_SM3 {
            Some(Pbkdf2Prf::HmacSm3)
        } else if *oid == OID_HMAC_SHA256 {
            Some(Pbkdf2Prf::HmacSha256)
        } else {
            None
        }
    }

    /// Returns the PRF's name as its standard names it.
    pub fn name(self) -> &'static str {
        match self {
            Pbkdf2Prf::HmacSm3 => "HMAC-SM3",
            Pbkdf2Prf::HmacSha256 => "hmacWithSHA256",
        }
    }

    /// Returns the PRF's OID.
    pub fn oid(self) -> Oid {
        match self {
            Pbkdf2Prf::HmacSm3 => OID_HMAC_SM3,
            Pbkdf2Prf::HmacSha256 => OID_HMAC_SHA256,
        }
    }

    /// Returns whether the PRF is a GM algorithm (GM/T 0111 §7.1).
    pub fn is_gm(self) -> bool {
        matches!(self, Pbkdf2Prf::HmacSm3)
    }
}

/// Checks that a key file uses GM algorithms only: an encrypted one must name PBKDF2-HMAC-SM3 and
/// SM4-CBC, and the refusal names the PRF (e.g. OpenSSL's hmacWithSHA256); anything else has no
/// protection algorithm to judge and passes (whether it is a usable key is
/// [`decode_private_key`]'s question). This is the rule of a production node (GM/T 0111 §7.1);
/// [`decode_private_key`] still reads hmacWithSHA256 files, for interoperability.
pub fn require_gm_key_file(input: &[u8]) -> Result<(), CryptoError> {
    let der = match classify(input)? {
        Container::Plain(..) => return Ok(()),
        Container::Encrypted(der) => der,
    };
    let (params, _) = parse_encrypted(&der)?;
    match Pbkdf2Prf::from_oid(&params.prf) {
        Some(prf) if prf.is_gm() => Ok(()),
        Some(prf) => Err(decode_err(format!(
            "PBKDF2 PRF {} ({}) is not a GM algorithm; only PBKDF2-HMAC-SM3 ({OID_HMAC_SM3}) key files are accepted here",
            prf.name(),
            prf.oid()
        ))),
        None => Err(decode_err(format!(
            "PBKDF2 PRF {} is not a GM algorithm; only PBKDF2-HMAC-SM3 ({OID_HMAC_SM3}) key files are accepted here",
            params.prf
        ))),
    }
}

/// The parameters of a PBES2 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pbes2Params {
    /// PBKDF2 salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// The PRF's OID (HMAC-SM3 or hmacWithSHA256).
    pub prf: Oid,
    /// The SM4-CBC IV.
    pub iv: [u8; 16],
}

fn parse_encrypted(der: &[u8]) -> Result<(Pbes2Params, Vec<u8>), CryptoError> {
    let bad = |e: der::Error| decode_err(format!("not an encrypted PKCS#8 (PBES2) structure: {e}"));
    let mut reader = SliceReader::new(der).map_err(bad)?;
    let parsed = reader
        .sequence(|outer| {
            let (params, data_err) = outer.sequence(|alg| {
                let oid = Oid::decode(alg)?;
                if oid != OID_PBES2 {
                    return Ok::<_, der::Error>((
                        None,
                        Some(format!(
                            "encryption scheme {oid} is not PBES2 (1.2.840.113549.1.5.13)"
                        )),
                    ));
                }
                alg.sequence(|p| {
                    let (salt, iterations, key_len, prf) = p.sequence(|k| {
                        let kdf = Oid::decode(k)?;
                        if kdf != OID_PBKDF2 {
                            return Err(Tag::ObjectIdentifier.value_error().into());
                        }
                        k.sequence(|pp| {
                            let salt = <&OctetStringRef>::decode(pp)?.as_bytes().to_vec();
                            let iterations = u32::decode(pp)?;
                            let key_len = if Tag::peek(pp).ok() == Some(Tag::Integer) {
                                Some(u32::decode(pp)?)
                            } else {
                                None
                            };
                            let prf = if pp.is_finished() {
                                OID_HMAC_SHA1
                            } else {
                                pp.sequence(|a| {
                                    let o = Oid::decode(a)?;
                                    if !a.is_finished() {
                                        Null::decode(a)?;
                                    }
                                    Ok::<_, der::Error>(o)
                                })?
                            };
                            Ok::<_, der::Error>((salt, iterations, key_len, prf))
                        })
                    })?;
                    let (enc, iv) = p.sequence(|e| {
                        let enc = Oid::decode(e)?;
                        let iv = <&OctetStringRef>::decode(e)?.as_bytes().to_vec();
                        Ok::<_, der::Error>((enc, iv))
                    })?;
                    if enc != OID_SM4_CBC {
                        return Ok::<_, der::Error>((
                            None,
                            Some(format!(
                                "cipher {enc} is not SM4-CBC (1.2.156.10197.1.104.2)"
                            )),
                        ));
                    }
                    if key_len.is_some_and(|l| l != 16) {
                        return Ok::<_, der::Error>((
                            None,
                            Some("PBKDF2 keyLength must be 16 for SM4".to_string()),
                        ));
                    }
                    let Ok(iv) = <[u8; 16]>::try_from(iv.as_slice()) else {
                        return Ok::<_, der::Error>((
                            None,
                            Some("SM4-CBC IV must be 16 bytes".to_string()),
                        ));
                    };
                    Ok::<_, der::Error>((
                        Some(Pbes2Params {
                            salt,
                            iterations,
                            prf,
                            iv,
                        }),
                        None,
                    ))
                })
            })?;
            let data = <&OctetStringRef>::decode(outer)?.as_bytes().to_vec();
            Ok::<_, der::Error>((params, data_err, data))
        })
        .map_err(bad)?;
    reader
        .finish()
        .map_err(|_| decode_err("trailing bytes after EncryptedPrivateKeyInfo"))?;
    match parsed {
        (Some(p), None, data) => Ok((p, data)),
        (_, Some(reason), _) => Err(decode_err(reason)),
        (None, None, _) => Err(decode_err("unsupported PBES2 parameters")),
    }
}

fn derive_key(pass: &[u8], p: &Pbes2Params) -> Result<Sm4Secret, CryptoError> {
    if p.iterations == 0 || p.iterations > MAX_ITERATIONS {
        return Err(decode_err(format!(
            "PBKDF2 iteration count {} is outside 1..={MAX_ITERATIONS}",
            p.iterations
        )));
    }
    let mut key = Zeroizing::new([0u8; 16]);
    match Pbkdf2Prf::from_oid(&p.prf) {
        Some(Pbkdf2Prf::HmacSm3) => {
            pbkdf2::pbkdf2_hmac::<sm3::Sm3>(pass, &p.salt, p.iterations, &mut key[..]);
        }
        // Not a GM algorithm: read for OpenSSL interoperability only (see require_gm_key_file).
        Some(Pbkdf2Prf::HmacSha256) => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pass, &p.salt, p.iterations, &mut key[..]);
        }
        None => {
            return Err(decode_err(format!(
                "PBKDF2 PRF {} is not supported (HMAC-SM3 1.2.156.10197.1.401.2 or hmacWithSHA256)",
                p.prf
            )));
        }
    }
    Sm4Secret::from_slice(&key[..])
}

fn decrypt_pkcs8(der: &[u8], pass: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (params, data) = parse_encrypted(der)?;
    let key = derive_key(pass, &params)?;
    let pt = sm4::decrypt(&key, Sm4Mode::Cbc, &params.iv, &[], &data)
        .map_err(|_| CryptoError::KeyDecrypt)?;
    Ok(Zeroizing::new(pt.expose().to_vec()))
}

/// Returns the PBES2 parameters of an encrypted key file (for diagnostics and tests).
pub fn encrypted_params(input: &[u8]) -> Result<Pbes2Params, CryptoError> {
    match classify(input)? {
        Container::Encrypted(der) => parse_encrypted(&der).map(|(p, _)| p),
        Container::Plain(..) => Err(decode_err("the key file is not encrypted")),
    }
}

/// Writes an encrypted PKCS#8 PEM: PBES2 with PBKDF2-HMAC-SM3 (random 16-byte salt,
/// `iterations`) and SM4-CBC (random IV).
pub fn encode_encrypted_pkcs8_pem(
    key: &PrivateKey,
    pass: &[u8],
    iterations: u32,
    rng: &dyn RandomSource,
) -> Result<String, CryptoError> {
    if pass.is_empty() {
        return Err(CryptoError::InvalidInput {
            reason: "the passphrase is empty",
        });
    }
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err(CryptoError::InvalidInput {
            reason: "PBKDF2 iteration count must lie in 10000..=10000000",
        });
    }
    encode_pbes2_pem(key, pass, iterations, Pbkdf2Prf::HmacSm3, rng)
}

/// PBES2 with the given PRF: gmchain writes only HMAC-SM3; the tests also write hmacWithSHA256,
/// as OpenSSL does.
fn encode_pbes2_pem(
    key: &PrivateKey,
    pass: &[u8],
    iterations: u32,
    prf_kind: Pbkdf2Prf,
    rng: &dyn RandomSource,
) -> Result<String, CryptoError> {
    let salt: [u8; 16] = crate::rng::random_array(rng)?;
    let iv: [u8; 16] = crate::rng::random_array(rng)?;
    let params = Pbes2Params {
        salt: salt.to_vec(),
        iterations,
        prf: prf_kind.oid(),
        iv,
    };
    let sm4_key = derive_key(pass, &params)?;
    let plain = encode_pkcs8_der(key)?;
    let ct = sm4::encrypt(&sm4_key, Sm4Mode::Cbc, &iv, &[], plain.expose())?;
    let enc =
        |r: der::Result<Vec<u8>>| r.map_err(|e| decode_err(format!("DER encoding failed: {e}")));
    let octets = |b: &[u8]| enc(OctetStringRef::new(b).and_then(|o| o.to_der()));
    // AlgorithmIdentifier { hmac-sm3 } with no NULL parameters: GmSSL 3.1 (`pbkdf2_prf_from_der`)
    // refuses anything after the OID.
    let prf = der_sequence(&[enc(prf_kind.oid().to_der())?]);
    let pbkdf2_params = der_sequence(&[
        octets(&salt)?,
        enc(iterations.to_der())?,
        enc(16u32.to_der())?,
        prf,
    ]);
    let kdf = der_sequence(&[enc(OID_PBKDF2.to_der())?, pbkdf2_params]);
    let scheme = der_sequence(&[enc(OID_SM4_CBC.to_der())?, octets(&iv)?]);
    let alg = der_sequence(&[enc(OID_PBES2.to_der())?, der_sequence(&[kdf, scheme])]);
    let info = der_sequence(&[alg, octets(&ct)?]);
    der::pem::encode_string("ENCRYPTED PRIVATE KEY", der::pem::LineEnding::LF, &info)
        .map_err(|e| decode_err(format!("PEM encoding failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRandom;

    #[test]
    fn plain_forms_round_trip() {
        let rng = SeededRandom::new(10);
        let key = PrivateKey::generate(&rng).unwrap();
        for pem in [
            encode_pkcs8_pem(&key).unwrap(),
            encode_sec1_pem(&key).unwrap(),
        ] {
            let back = decode_private_key(pem.expose(), None).unwrap();
            assert_eq!(back.public_key(), key.public_key());
            assert!(decode_private_key(pem.expose(), Some(b"x")).is_err());
        }
        let der = encode_pkcs8_der(&key).unwrap();
        assert_eq!(
            decode_private_key(der.expose(), None).unwrap().public_key(),
            key.public_key()
        );
        let pub_pem = encode_public_key_pem(&key.public_key()).unwrap();
        assert_eq!(
            decode_public_key(pub_pem.as_bytes()).unwrap(),
            key.public_key()
        );
    }

    #[test]
    fn encrypted_round_trip_and_wrong_passphrase() {
        let rng = SeededRandom::new(11);
        let key = PrivateKey::generate(&rng).unwrap();
        let pem = encode_encrypted_pkcs8_pem(&key, b"correct horse", MIN_ITERATIONS, &rng).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert!(is_encrypted(pem.as_bytes()));
        let p = encrypted_params(pem.as_bytes()).unwrap();
        assert_eq!((p.iterations, p.prf), (MIN_ITERATIONS, OID_HMAC_SM3));
        assert!(encode_encrypted_pkcs8_pem(&key, b"x", MIN_ITERATIONS - 1, &rng).is_err());
        let back = decode_private_key(pem.as_bytes(), Some(b"correct horse")).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        assert_eq!(
            decode_private_key(pem.as_bytes(), Some(b"wrong")).unwrap_err(),
            CryptoError::KeyDecrypt
        );
        assert!(decode_private_key(pem.as_bytes(), None).is_err());
    }

    #[test]
    fn gm_rule_refuses_hmac_sha256_and_names_it() {
        let rng = SeededRandom::new(12);
        let key = PrivateKey::generate(&rng).unwrap();
        let sha =
            encode_pbes2_pem(&key, b"pw", MIN_ITERATIONS, Pbkdf2Prf::HmacSha256, &rng).unwrap();
        let sm3 = encode_encrypted_pkcs8_pem(&key, b"pw", MIN_ITERATIONS, &rng).unwrap();
        let p = encrypted_params(sha.as_bytes()).unwrap();
        assert_eq!(Pbkdf2Prf::from_oid(&p.prf), Some(Pbkdf2Prf::HmacSha256));
        let e = require_gm_key_file(sha.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains("hmacWithSHA256")
                && e.contains("1.2.840.113549.2.9")
                && e.contains("not a GM algorithm"),
            "{e}"
        );
        // The interoperable reader still takes it.
        let back = decode_private_key(sha.as_bytes(), Some(b"pw")).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        require_gm_key_file(sm3.as_bytes()).unwrap();
        require_gm_key_file(encode_pkcs8_pem(&key).unwrap().expose()).unwrap();
    }

    #[test]
    fn garbage_never_panics() {
        for input in [
            &b""[..],
            b"-----BEGIN",
            b"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
            &[0x30, 0x03, 0x02, 0x01, 0x01],
            &[0xff; 100],
        ] {
            assert!(decode_private_key(input, None).is_err());
            assert!(decode_private_key(input, Some(b"p")).is_err());
            assert!(decode_public_key(input).is_err());
        }
    }
}
