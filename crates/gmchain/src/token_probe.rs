//! The conformance suite's view of a live token ([`conformance::TokenProbe`]) over the PKCS#11
//! provider, with OpenSSL 3 as the independent SM2 verifier. Every method is a real call to the
//! device (or to `openssl`).

use conformance::{
    DeclaredCertification, IndependentVerification, KeyFacts, ReportedDevice, TokenIdentity,
    TokenProbe, WrapAttempt,
};
use crypto::{CipherFormat, PublicKey, Signature, Signer, UserId};
use hsm::{Hsm, HsmError, KeyUri, KeyUsage, ObjectType, Sm4KeyOptions};
use std::path::Path;
use std::process::{Command, Stdio};

/// A token opened through a profile, for the conformance checks.
pub(crate) struct HsmProbe {
    pub hsm: Hsm,
}

impl HsmProbe {
    fn uri(&self, label: &str) -> KeyUri {
        KeyUri {
            token: Some(self.hsm.token().label.clone()),
            object: Some(label.to_string()),
            object_type: Some(ObjectType::Private),
            ..KeyUri::default()
        }
    }
}

fn s(e: HsmError) -> String {
    e.to_string()
}

/// How OpenSSL 3 is told an SM2 user ID: `distid:` takes the rest of the argument verbatim,
/// so an ID that is not printable text goes as `hexdistid:`.
fn openssl_distid(id: &UserId) -> String {
    match std::str::from_utf8(id.as_bytes()) {
        Ok(t) if !t.is_empty() && !t.chars().any(char::is_control) => format!("distid:{t}"),
        _ => format!("hexdistid:{}", hex::encode(id.as_bytes())),
    }
}

fn path_arg(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

/// Verifies with `openssl pkeyutl -verify` (OpenSSL 3, which implements SM2 and SM3 itself):
/// the public key as SubjectPublicKeyInfo PEM, the signature as DER, the message raw, the user
/// ID passed explicitly (OpenSSL 3.0's default SM2 ID is empty, not 1234567812345678).
fn openssl_verify(
    public_key: &PublicKey,
    id: &UserId,
    msg: &[u8],
    sig: &Signature,
) -> Result<IndependentVerification, String> {
    let version = Command::new("openssl")
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("the `openssl` command is not runnable ({e}); install OpenSSL 3"))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    if !version.starts_with("OpenSSL 3.") {
        return Err(format!(
            "an SM2-capable OpenSSL 3 is needed as the independent verifier, found {version:?}"
        ));
    }
    let pem = crypto_sm::keys::encode_public_key_pem(public_key).map_err(|e| e.to_string())?;
    let dir = conformance::Scratch::new("conformance")?;
    let key = dir.write("key.pem", pem.as_bytes())?;
    let data = dir.write("msg", msg)?;
    let sigfile = dir.write("sig.der", &sig.to_der())?;
    let distid = openssl_distid(id);
    let args = [
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        path_arg(&key)?,
        "-rawin",
        "-in",
        path_arg(&data)?,
        "-digest",
        "sm3",
        "-sigfile",
        path_arg(&sigfile)?,
        "-pkeyopt",
        &distid,
    ];
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("openssl pkeyutl: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verifier =
        format!("{version} (openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt {distid})");
    // OpenSSL prints the verdict on stdout and exits 1 on a bad signature; anything else
    // (an unreadable key, an unknown option) is not a verdict.
    if out.status.success() && stdout.contains("Signature Verified Successfully") {
        Ok(IndependentVerification {
            verified: true,
            verifier,
        })
    } else if stdout.contains("Signature Verification Failure") {
        Ok(IndependentVerification {
            verified: false,
            verifier,
        })
    } else {
        Err(format!(
            "openssl pkeyutl gave no verdict ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl TokenProbe for HsmProbe {
    fn identity(&self) -> TokenIdentity {
        let p = self.hsm.profile();
        let t = self.hsm.token();
        let (reported, reported_error) = match self.hsm.device_info() {
            Ok(d) => (
                Some(ReportedDevice {
                    library_manufacturer: d.library_manufacturer,
                    library_description: d.library_description,
                    library_version: d.library_version,
                    slot_description: d.slot_description,
                    slot_manufacturer: d.slot_manufacturer,
                    slot_firmware: d.slot_firmware_version,
                    token_manufacturer: d.token_manufacturer,
                    token_model: d.token_model,
                    token_serial: d.token_serial,
                    token_hardware: d.token_hardware_version,
                    token_firmware: d.token_firmware_version,
                }),
                None,
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        TokenIdentity {
            profile: format!("{} ({})", p.name(), p.file().display()),
            module: self.hsm.module_path().display().to_string(),
            manufacturer: t.manufacturer.clone(),
            model: t.model.clone(),
            serial: t.serial.clone(),
            label: t.label.clone(),
            development: p.development(),
            certification: p.certification().map(|c| DeclaredCertification {
                certificate: c.certificate.clone(),
                issuer: c.issuer.clone(),
                model: c.model.clone(),
                manufacturer: c.manufacturer.clone(),
                firmware: c.firmware.clone(),
                level: c.level.clone(),
                valid_until: c.valid_until.clone(),
            }),
            reported,
            reported_error,
            today: {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                // "YYYY-MM-DDTHH:MM:SSZ": the date part.
                pki::UnixTime(now).to_string().chars().take(10).collect()
            },
        }
    }

    fn generate_signing_key(&self, label: &str) -> Result<PublicKey, String> {
        let id = self.hsm.random(8).map_err(s)?;
        self.hsm
            .generate_sm2(label, &id, KeyUsage::Signing)
            .map(|k| k.public_key)
            .map_err(s)
    }

    fn key_facts(&self, label: &str) -> Result<KeyFacts, String> {
        let p = self.hsm.key_protection(&self.uri(label)).map_err(s)?;
        Ok(KeyFacts {
            sensitive: p.sensitive,
            extractable: p.extractable,
            always_sensitive: p.always_sensitive,
            never_extractable: p.never_extractable,
            local: p.local,
        })
    }

    fn read_private_value(&self, label: &str) -> Result<Option<Vec<u8>>, String> {
        self.hsm.read_private_value(&self.uri(label)).map_err(s)
    }

    fn wrap_private_key(&self, label: &str) -> Result<WrapAttempt, String> {
        let wrapping_label = format!("{label}-kek");
        let kek = match self.hsm.generate_sm4(
            &wrapping_label,
            Sm4KeyOptions {
                wrapping: true,
                session_only: true,
                extractable: false,
            },
        ) {
            Ok(k) => k,
            // No wrapping key, so the token was never asked: that shows nothing about the key.
            Err(e @ HsmError::Unsupported { .. }) => {
                return Ok(WrapAttempt::NotTried(format!(
                    "no SM4 wrapping key could be made in the token ({e})"
                )));
            }
            Err(e) => return Err(s(e)),
        };
        match self.hsm.wrap_private_key(&kek, &self.uri(label)) {
            Ok(None) => Ok(WrapAttempt::Refused(
                "the token refused (CKR_KEY_UNEXTRACTABLE, CKR_KEY_NOT_WRAPPABLE or CKR_ATTRIBUTE_SENSITIVE)"
                    .into(),
            )),
            Ok(Some(blob)) => Ok(WrapAttempt::Wrapped(blob)),
            Err(e @ HsmError::Unsupported { .. }) => Ok(WrapAttempt::NotTried(format!(
                "the profile names no wrapping mechanism ({e})"
            ))),
            Err(e) => Err(s(e)),
        }
    }

    fn sign(&self, label: &str, id: &UserId, msg: &[u8]) -> Result<Signature, String> {
        let signer = self.hsm.signer(&self.uri(label)).map_err(s)?;
        signer.sign(id, msg).map_err(|e| e.to_string())
    }

    fn verify_independently(
        &self,
        public_key: &PublicKey,
        id: &UserId,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<IndependentVerification, String> {
        openssl_verify(public_key, id, msg, sig)
    }

    fn decrypt(&self, label: &str, ciphertext: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match self
            .hsm
            .decrypt(&self.uri(label), ciphertext, CipherFormat::C1C3C2)
        {
            Ok(m) => Ok(Some(m.expose().to_vec())),
            Err(e) if e.is_refusal() => Ok(None),
            Err(e) => Err(s(e)),
        }
    }

    fn destroy(&self, label: &str) -> Result<(), String> {
        let uri = KeyUri {
            object_type: None,
            ..self.uri(label)
        };
        self.hsm.delete(&uri).map(|_| ()).map_err(s)
    }

    fn exists(&self, label: &str) -> Result<bool, String> {
        let uri = KeyUri {
            object_type: None,
            ..self.uri(label)
        };
        self.hsm.find(&uri).map(|v| !v.is_empty()).map_err(s)
    }
}
