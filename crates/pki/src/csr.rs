//! PKCS#10 certification requests (RFC 2986) with SM2-with-SM3.
//!
//! A request contributes only its key (after its signature, the proof of possession, verified)
//! and a checked common name: [`check_for_issuance`] refuses a request whose subject claims an
//! organisation or role (OU) other than the one being issued, and the profile writes the rest.

use crate::der_util::oid;
use crate::{OID_SM2_WITH_SM3, PkiError, Role, name};
use crypto::{PublicKey, Signature, Signer, UserId};
use der::asn1::BitString;
use der::{Decode, Encode, EncodePem, Tagged};
use std::str::FromStr;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// The largest request accepted, in bytes.
pub const MAX_CSR_LEN: usize = 64 * 1024;

/// A request whose signature verified: the subject and the key it proves possession of. Only
/// [`verify`] constructs one, so holding one proves the proof of possession was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// The subject as an RFC 4514 string.
    pub subject: String,
    /// The requested key.
    pub public_key: PublicKey,
    /// The request's DER.
    pub der: Vec<u8>,
    name: Name,
}

impl VerifiedRequest {
    /// Returns the common name, if the subject has exactly one.
    pub fn common_name(&self) -> Option<String> {
        name::single(&self.name, oid::CN)
    }
}

/// Returns the common name to issue under `role` for `organisation`, after checking the
/// request's subject: exactly one CN that passes the profile's rules; any O must be
/// `organisation` ([`PkiError::OrganisationClaimMismatch`]); any OU must be the role's
/// ([`PkiError::RoleClaimMismatch`]: a request cannot claim a role). Other attributes (C, L, …)
/// are ignored: the profile writes the subject. Roots are self-issued and refused here.
pub fn check_for_issuance(
    req: &VerifiedRequest,
    role: Role,
    organisation: &str,
) -> Result<String, PkiError> {
    if role == Role::RootCa {
        return Err(PkiError::RoleNotIssuable {
            role,
            reason: "a root is self-signed, not issued from a request",
        });
    }
    for claimed in name::values(&req.name, oid::O) {
        if claimed != organisation {
            return Err(PkiError::OrganisationClaimMismatch {
                claimed,
                required: organisation.to_string(),
            });
        }
    }
    // An O or OU value of a type we cannot read is a claim we cannot check.
    let unreadable =
        |o| req.name.iter().filter(|a| a.oid == o).count() != name::values(&req.name, o).len();
    if unreadable(oid::O) || unreadable(oid::OU) || unreadable(oid::CN) {
        return Err(PkiError::BadSubject {
            subject: req.subject.clone(),
            reason: "an O, OU or CN value is not a directory string".into(),
        });
    }
    for claimed in name::values(&req.name, oid::OU) {
        if claimed != role.ou() && claimed != role.as_str() {
            return Err(PkiError::RoleClaimMismatch {
                claimed,
                requested: role,
            });
        }
    }
    let cns = name::values(&req.name, oid::CN);
    let cn = match cns.as_slice() {
        [] => return Err(PkiError::CommonNameMissing),
        [one] => one.clone(),
        _ => {
            return Err(PkiError::BadCommonName {
                value: cns.join(" + "),
                reason: "more than one common name",
            });
        }
    };
    name::check_common_name(&cn)?;
    Ok(cn)
}

fn enc(e: der::Error) -> PkiError {
    PkiError::Encode(e.to_string())
}

/// Builds and signs a request for `subject` (RFC 4514, e.g. "CN=node-1,OU=node,O=Agency A")
/// with `signer`, whose public key goes into the request. Returns PEM.
pub fn build(subject: &str, signer: &dyn Signer) -> Result<String, PkiError> {
    let name = Name::from_str(subject).map_err(|e| PkiError::BadSubject {
        subject: subject.to_string(),
        reason: e.to_string(),
    })?;
    if name.is_empty() {
        return Err(PkiError::BadSubject {
            subject: subject.to_string(),
            reason: "empty".into(),
        });
    }
    let spki_der = crypto_sm::keys::encode_public_key_der(&signer.public_key())?;
    let public_key = SubjectPublicKeyInfoOwned::from_der(&spki_der).map_err(enc)?;
    let info = CertReqInfo {
        version: Version::V1,
        subject: name,
        public_key,
        attributes: Default::default(),
    };
    let tbs = info.to_der().map_err(enc)?;
    // GM/T 0015: the signature is over SM3(ZA ‖ DER(CertificationRequestInfo)) with the default ID.
    let sig = signer.sign(&UserId::default(), &tbs)?;
    let req = CertReq {
        info,
        algorithm: AlgorithmIdentifierOwned {
            oid: OID_SM2_WITH_SM3,
            parameters: None,
        },
        signature: BitString::from_bytes(&sig.to_der()).map_err(enc)?,
    };
    req.to_pem(der::pem::LineEnding::LF).map_err(enc)
}

/// Parses a request (PEM or DER) and verifies its self-signature: proof of possession of the
/// private key (GM/T 0111 §8.1). Refuses other algorithms and non-SM2 keys.
pub fn verify(input: &[u8]) -> Result<VerifiedRequest, PkiError> {
    let decode = |e: der::Error| PkiError::Decode {
        what: "certification request",
        reason: e.to_string(),
    };
    if input.len() > MAX_CSR_LEN * 2 {
        return Err(PkiError::Decode {
            what: "certification request",
            reason: format!("{} bytes is too large", input.len()),
        });
    }
    let raw = match core::str::from_utf8(input) {
        Ok(text) if text.contains("-----BEGIN") => {
            let (label, der) = der::pem::decode_vec(text.trim().as_bytes())
                .map_err(|e| decode(der::Error::from(e)))?;
            if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
                return Err(PkiError::Decode {
                    what: "certification request",
                    reason: format!("PEM label {label:?}, expected \"CERTIFICATE REQUEST\""),
                });
            }
            der
        }
        _ => input.to_vec(),
    };
    let req = CertReq::from_der(&raw).map_err(decode)?;
    // Only canonical DER: the signed bytes are then exactly the re-encoded info.
    if req.to_der().map_err(decode)? != raw {
        return Err(PkiError::Decode {
            what: "certification request",
            reason: "not in canonical DER (re-encoding differs)".into(),
        });
    }
    if req.algorithm.oid != OID_SM2_WITH_SM3 {
        return Err(PkiError::WrongAlgorithm {
            what: "certification request",
            oid: req.algorithm.oid.to_string(),
        });
    }
    // Parameters must be absent or NULL.
    if let Some(p) = &req.algorithm.parameters
        && (p.tag() != der::Tag::Null || !p.value().is_empty())
    {
        return Err(PkiError::WrongAlgorithm {
            what: "certification request parameters",
            oid: req.algorithm.oid.to_string(),
        });
    }
    let spki = req.info.public_key.to_der().map_err(enc)?;
    let public_key =
        crypto_sm::keys::decode_public_key(&spki).map_err(|e| PkiError::NotSm2Key {
            what: "certification request",
            reason: e.to_string(),
        })?;
    let sig_bytes = req.signature.as_bytes().ok_or(PkiError::Decode {
        what: "request signature",
        reason: "BIT STRING with unused bits".into(),
    })?;
    let sig = Signature::from_der(sig_bytes).map_err(|e| PkiError::Decode {
        what: "request signature",
        reason: e.to_string(),
    })?;
    let tbs = req.info.to_der().map_err(enc)?;
    crypto_sm::sm2::verify(&public_key, &UserId::default(), &tbs, &sig).map_err(|_| {
        PkiError::SignatureInvalid {
            what: "certification request",
        }
    })?;
    Ok(VerifiedRequest {
        subject: req.info.subject.to_string(),
        public_key,
        der: raw,
        name: req.info.subject,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_sm::SoftwareProvider;
    use crypto_sm::rng::SeededRandom;
    use std::process::Command;
    use std::sync::Arc;

    #[test]
    fn build_verify_and_tamper() {
        let p = SoftwareProvider::new(Arc::new(SeededRandom::new(7)));
        let signer = p.generate().unwrap();
        let pem = build("CN=node-1,OU=node,O=Agency A", &signer).unwrap();
        let v = verify(pem.as_bytes()).unwrap();
        assert_eq!(v.public_key, signer.public_key());
        assert_eq!(v.subject, "CN=node-1,OU=node,O=Agency A");
        let mut der = v.der.clone();
        let i = der.len() / 3; // inside CertificationRequestInfo
        der[i] ^= 1;
        assert!(verify(&der).is_err());
        assert!(matches!(
            build("not a name", &signer),
            Err(PkiError::BadSubject { .. })
        ));
        assert!(verify(b"garbage").is_err());
    }

    #[test]
    fn openssl_verifies_our_request_and_we_verify_openssls() {
        let dir = tempfile::tempdir().unwrap();
        let p = SoftwareProvider::new(Arc::new(SeededRandom::new(8)));
        let signer = p.generate().unwrap();
        let path = dir.path().join("req.pem");
        std::fs::write(
            &path,
            build("CN=user-7,OU=user,O=Agency B,C=CN", &signer).unwrap(),
        )
        .unwrap();
        let out = Command::new("openssl")
            .args(["req", "-in"])
            .arg(&path)
            .args(["-verify", "-noout", "-vfyopt", "distid:1234567812345678"])
            .output()
            .expect("openssl must be installed");
        assert!(
            out.status.success(),
            "openssl rejected our CSR: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // OpenSSL's own request, signed with the standard ID.
        let key = dir.path().join("k.pem");
        let ossl_req = dir.path().join("o.pem");
        assert!(
            Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:SM2",
                    "-out"
                ])
                .arg(&key)
                .status()
                .unwrap()
                .success()
        );
        let st = Command::new("openssl")
            .args(["req", "-new", "-key"])
            .arg(&key)
            .args([
                "-sm3",
                "-sigopt",
                "distid:1234567812345678",
                "-subj",
                "/C=CN/O=Agency C/CN=ossl",
                "-out",
            ])
            .arg(&ossl_req)
            .status()
            .unwrap();
        assert!(st.success());
        let v = verify(&std::fs::read(&ossl_req).unwrap()).unwrap();
        assert_eq!(v.subject, "CN=ossl,O=Agency C,C=CN");
        // Signed with OpenSSL 3.0's default (empty) ID: our verifier refuses it.
        let empty = dir.path().join("e.pem");
        assert!(
            Command::new("openssl")
                .args(["req", "-new", "-key"])
                .arg(&key)
                .args(["-sm3", "-subj", "/CN=empty-id", "-out"])
                .arg(&empty)
                .status()
                .unwrap()
                .success()
        );
        assert!(matches!(
            verify(&std::fs::read(&empty).unwrap()),
            Err(PkiError::SignatureInvalid { .. })
        ));
    }
}
