//! Checks that run against a live cryptographic token (GM/T 0111 §7.3-7.4, the key lifecycle of
//! GB/T 39786). This crate talks to no device: the binary implements [`TokenProbe`] over the
//! PKCS#11 provider and passes it in; without one, these checks are reported as not run.

use crate::checks::{Evidence, derived, expect_err};
use crypto::{CipherFormat, PublicKey, Signature, UserId};
use crypto_sm::rng::SeededRandom;
use serde::Serialize;

/// What was tested: recorded in the report's provenance.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TokenIdentity {
    /// The profile file.
    pub profile: String,
    /// The PKCS#11 module path.
    pub module: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub label: String,
    /// A development token (e.g. gmchain's software token): never counts as certified.
    pub development: bool,
    /// The device's certification (model and certificate number) as the profile states it.
    pub certification: Option<String>,
}

/// The key attributes that show where a key was made and whether it can leave the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeyFacts {
    pub sensitive: bool,
    pub extractable: bool,
    pub always_sensitive: bool,
    pub never_extractable: bool,
    pub local: bool,
}

/// A live token, as the conformance checks see it. Keys are named by label; every call is a
/// real call to the device.
pub trait TokenProbe {
    /// Identifies the token and module.
    fn identity(&self) -> TokenIdentity;
    /// Generates an SM2 signing key (sign only, no decrypt) inside the token.
    fn generate_signing_key(&self, label: &str) -> Result<PublicKey, String>;
    /// Reads the key's attributes.
    fn key_facts(&self, label: &str) -> Result<KeyFacts, String>;
    /// Tries to read the private value. `Ok(None)` means the token refused.
    fn read_private_value(&self, label: &str) -> Result<Option<Vec<u8>>, String>;
    /// Tries to wrap the private key out under a fresh wrapping key. `Ok(None)` means refused
    /// (or the token offers no wrapping at all, which also keeps the key in).
    fn wrap_private_key(&self, label: &str) -> Result<Option<Vec<u8>>, String>;
    /// Signs inside the token.
    fn sign(&self, label: &str, id: &UserId, msg: &[u8]) -> Result<Signature, String>;
    /// Tries to decrypt with the key. `Ok(None)` means the token refused (usage separation).
    fn decrypt(&self, label: &str, ciphertext: &[u8]) -> Result<Option<Vec<u8>>, String>;
    /// Destroys the key.
    fn destroy(&self, label: &str) -> Result<(), String>;
    /// Returns whether a key with this label exists.
    fn exists(&self, label: &str) -> Result<bool, String>;
}

/// A check against a live token.
#[derive(Debug, Clone, Copy)]
pub struct TokenCheck {
    pub id: &'static str,
    pub title: &'static str,
    pub run: fn(&dyn TokenProbe) -> Vec<Evidence>,
}

/// Every token check in this build.
pub fn token_checks() -> &'static [TokenCheck] {
    &[
        TokenCheck {
            id: "hsm-keygen-in-device",
            title: "A key generated through the token is local, sensitive, always sensitive, never extractable",
            run: keygen_in_device,
        },
        TokenCheck {
            id: "hsm-no-export",
            title: "The private value cannot be read or wrapped out of the token",
            run: no_export,
        },
        TokenCheck {
            id: "hsm-sign-in-device",
            title: "Signatures made inside the token verify in software, and only under the signer's ID",
            run: sign_in_device,
        },
        TokenCheck {
            id: "hsm-usage-separation",
            title: "A signing key refuses to decrypt",
            run: usage_separation,
        },
        TokenCheck {
            id: "hsm-destroy",
            title: "A destroyed key is gone and can no longer sign",
            run: destroy,
        },
    ]
}

fn label(check: &str) -> String {
    // Unique per run, so a report never reuses a key a previous run left behind.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("conformance-{check}-{now:x}")
}

fn with_key(
    t: &dyn TokenProbe,
    check: &str,
    f: impl FnOnce(&str, &PublicKey) -> Vec<Evidence>,
) -> Vec<Evidence> {
    let l = label(check);
    let out = match t.generate_signing_key(&l) {
        Ok(pk) => f(&l, &pk),
        Err(e) => vec![derived("generate an SM2 key in the token", Err(e))],
    };
    // Clean up whatever the check left; a failure here is not the check's verdict.
    let _ = t.destroy(&l);
    out
}

fn keygen_in_device(t: &dyn TokenProbe) -> Vec<Evidence> {
    with_key(t, "keygen", |l, pk| {
        let facts = t.key_facts(l);
        let mut out = vec![derived(
            "public key is a valid sm2p256v1 point",
            crypto_sm::sm2::parse_public_key(pk.as_bytes())
                .map(|_| ())
                .map_err(|e| e.to_string()),
        )];
        let want = |name: &str, ok: fn(&KeyFacts) -> bool| {
            derived(
                name,
                match &facts {
                    Ok(f) if ok(f) => Ok(()),
                    Ok(f) => Err(format!("attributes {f:?}")),
                    Err(e) => Err(e.clone()),
                },
            )
        };
        out.push(want("CKA_LOCAL true (generated inside the device)", |f| {
            f.local
        }));
        out.push(want("CKA_SENSITIVE and CKA_ALWAYS_SENSITIVE true", |f| {
            f.sensitive && f.always_sensitive
        }));
        out.push(want(
            "CKA_EXTRACTABLE false and CKA_NEVER_EXTRACTABLE true",
            |f| !f.extractable && f.never_extractable,
        ));
        out
    })
}

fn no_export(t: &dyn TokenProbe) -> Vec<Evidence> {
    with_key(t, "export", |l, _| {
        vec![
            derived(
                "reading CKA_VALUE of the private key is refused",
                match t.read_private_value(l) {
                    Ok(None) => Ok(()),
                    Ok(Some(_)) => Err("the token returned the private value".into()),
                    Err(e) => Err(e),
                },
            ),
            derived(
                "wrapping the private key out is refused",
                match t.wrap_private_key(l) {
                    Ok(None) => Ok(()),
                    Ok(Some(_)) => Err("the token wrapped the private key out".into()),
                    Err(e) => Err(e),
                },
            ),
        ]
    })
}

fn sign_in_device(t: &dyn TokenProbe) -> Vec<Evidence> {
    with_key(t, "sign", |l, pk| {
        let msg = b"GM/T 0111 7.3: signed inside the device";
        let mut out = Vec::new();
        for id in [
            UserId::default(),
            UserId::new(vec![0x00, 0xff, 0x10]).unwrap_or_default(),
        ] {
            let case = format!("sign in the token, verify in software, {id:?}");
            let r = t.sign(l, &id, msg).and_then(|sig| {
                crypto_sm::sm2::verify(pk, &id, msg, &sig)
                    .map_err(|e| format!("software verification: {e}"))?;
                expect_err(
                    "the same signature under another ID",
                    crypto_sm::sm2::verify(
                        pk,
                        &UserId::new(b"other".to_vec()).unwrap_or_default(),
                        msg,
                        &sig,
                    ),
                )
            });
            out.push(derived(&case, r));
        }
        out
    })
}

fn usage_separation(t: &dyn TokenProbe) -> Vec<Evidence> {
    with_key(t, "usage", |l, pk| {
        let rng = SeededRandom::new(0x7573_6167);
        let r = crypto_sm::sm2::encrypt(pk, b"must stay sealed", CipherFormat::C1C3C2, &rng)
            .map_err(|e| e.to_string())
            .and_then(|ct| match t.decrypt(l, &ct) {
                Ok(None) => Ok(()),
                Ok(Some(_)) => Err("a sign-only key decrypted".into()),
                Err(e) => Err(e),
            });
        vec![derived("decrypt with a sign-only key is refused", r)]
    })
}

fn destroy(t: &dyn TokenProbe) -> Vec<Evidence> {
    let l = label("destroy");
    if let Err(e) = t.generate_signing_key(&l) {
        return vec![derived("generate an SM2 key in the token", Err(e))];
    }
    let destroyed = t.destroy(&l);
    vec![
        derived("destroy succeeds", destroyed.clone()),
        derived(
            "the key is no longer found",
            match t.exists(&l) {
                Ok(false) => Ok(()),
                Ok(true) => Err("still present".into()),
                Err(e) => Err(e),
            },
        ),
        derived(
            "signing with the destroyed key fails",
            expect_err("sign", t.sign(&l, &UserId::default(), b"after destroy")),
        ),
    ]
}
