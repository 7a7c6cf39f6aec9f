//! The conformance suite's view of a live token ([`conformance::TokenProbe`]) over the PKCS#11
//! provider. Every method is a real call to the device.

use conformance::{KeyFacts, TokenIdentity, TokenProbe};
use crypto::{CipherFormat, PublicKey, Signature, Signer, UserId};
use hsm::{Hsm, HsmError, KeyUri, KeyUsage, ObjectType, Sm4KeyOptions};

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

impl TokenProbe for HsmProbe {
    fn identity(&self) -> TokenIdentity {
        let p = self.hsm.profile();
        let t = self.hsm.token();
        TokenIdentity {
            profile: format!("{} ({})", p.name(), p.file().display()),
            module: self.hsm.module_path().display().to_string(),
            manufacturer: t.manufacturer.clone(),
            model: t.model.clone(),
            serial: t.serial.clone(),
            label: t.label.clone(),
            development: p.development(),
            certification: p.certification().map(|c| {
                format!(
                    "{} certificate {}{}",
                    c.model,
                    c.certificate,
                    c.level
                        .as_deref()
                        .map(|l| format!(", level {l}"))
                        .unwrap_or_default()
                )
            }),
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

    fn wrap_private_key(&self, label: &str) -> Result<Option<Vec<u8>>, String> {
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
            // A token with no SM4 key generation cannot wrap anything out.
            Err(HsmError::Unsupported { .. }) => return Ok(None),
            Err(e) => return Err(s(e)),
        };
        self.hsm.wrap_private_key(&kek, &self.uri(label)).map_err(s)
    }

    fn sign(&self, label: &str, id: &UserId, msg: &[u8]) -> Result<Signature, String> {
        let signer = self.hsm.signer(&self.uri(label)).map_err(s)?;
        signer.sign(id, msg).map_err(|e| e.to_string())
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
