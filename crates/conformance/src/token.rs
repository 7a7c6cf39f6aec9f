//! Checks that run against a live cryptographic token (GM/T 0111 §7.3-7.4, the key lifecycle of
//! GB/T 39786). This crate talks to no device and starts no process: the binary implements
//! [`TokenProbe`] over the PKCS#11 provider, with OpenSSL 3 as the independent verifier, and
//! passes it in; without one, these checks are reported as not run.
//!
//! What a token can earn here:
//! - Device clauses (keys generated inside a cryptographic module with an approved random
//!   source, keys stored in one) are MET only on a module that is not a development token and
//!   not gmchain's software token, and whose checks pass; the check `hsm-module-identity` says
//!   which. gmchain's software token is recognised by what the module reports about itself
//!   (`C_GetInfo`, `C_GetSlotInfo`, `C_GetTokenInfo`), never by its profile.
//! - Certification is never MET: nothing a token can show proves it holds a certificate. A
//!   certification the profile declares is reported DECLARED, beside what the token reports,
//!   for the auditor to confirm against the issuing body's records; a declaration the token
//!   contradicts, or one made for gmchain's software token, is NOT MET.

use crate::checks::{CheckOutcome, Evidence, derived, expect_err};
use crate::report::Verdict;
use crypto::{CipherFormat, PublicKey, Signature, UserId};
use crypto_sm::rng::SeededRandom;
use serde::Serialize;

/// The certification a token's profile declares: the operator's word, not the device's.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct DeclaredCertification {
    /// The certificate number.
    pub certificate: String,
    /// The issuing body.
    pub issuer: String,
    /// The product model, as the token reports it (`C_GetTokenInfo` `model`).
    pub model: String,
    /// The manufacturer, as the token reports it (`C_GetTokenInfo` `manufacturerID`).
    pub manufacturer: String,
    /// The certified firmware version (`C_GetTokenInfo` `firmwareVersion`, `major.minor`).
    pub firmware: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

/// What the module, its slot and its token report about themselves, read during the run.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct ReportedDevice {
    /// `C_GetInfo` `manufacturerID`.
    pub library_manufacturer: String,
    /// `C_GetInfo` `libraryDescription`.
    pub library_description: String,
    /// `C_GetInfo` `libraryVersion`.
    pub library_version: String,
    /// `C_GetSlotInfo` `slotDescription`.
    pub slot_description: String,
    /// `C_GetSlotInfo` `manufacturerID`.
    pub slot_manufacturer: String,
    /// `C_GetSlotInfo` `firmwareVersion`.
    pub slot_firmware: String,
    /// `C_GetTokenInfo` `manufacturerID`.
    pub token_manufacturer: String,
    /// `C_GetTokenInfo` `model`.
    pub token_model: String,
    /// `C_GetTokenInfo` `serialNumber`.
    pub token_serial: String,
    /// `C_GetTokenInfo` `hardwareVersion`.
    pub token_hardware: String,
    /// `C_GetTokenInfo` `firmwareVersion`.
    pub token_firmware: String,
}

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
    /// The device's certification as the profile declares it.
    pub certification: Option<DeclaredCertification>,
    /// What the module, slot and token report about themselves; `None` if they would not say
    /// (then `reported_error` says why).
    pub reported: Option<ReportedDevice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_error: Option<String>,
    /// The date of the run (UTC, `YYYY-MM-DD`), supplied by the binary: a declared certificate
    /// is judged valid or expired against it (this crate reads no clock).
    pub today: String,
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

/// What happened when the token was asked to wrap a private key out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrapAttempt {
    /// The token refused; what it answered.
    Refused(String),
    /// The token returned the wrapped key.
    Wrapped(Vec<u8>),
    /// The token could not be asked (it makes no SM4 wrapping key, or offers no wrapping
    /// mechanism); why. This shows nothing about the key, so it never passes.
    NotTried(String),
}

/// The answer of an SM2 implementation independent of gmchain's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndependentVerification {
    /// Whether it accepted the signature.
    pub verified: bool,
    /// Which implementation answered, with its version and the call made.
    pub verifier: String,
}

/// A live token, as the conformance checks see it. Keys are named by label; every call is a
/// real call to the device.
pub trait TokenProbe {
    /// Identifies the token and module: the profile's declarations, and what the module, slot
    /// and token report about themselves, asked now.
    fn identity(&self) -> TokenIdentity;
    /// Generates an SM2 signing key (sign only, no decrypt) inside the token.
    fn generate_signing_key(&self, label: &str) -> Result<PublicKey, String>;
    /// Reads the key's attributes.
    fn key_facts(&self, label: &str) -> Result<KeyFacts, String>;
    /// Tries to read the private value. `Ok(None)` means the token refused.
    fn read_private_value(&self, label: &str) -> Result<Option<Vec<u8>>, String>;
    /// Tries to wrap the private key out under a fresh wrapping key.
    fn wrap_private_key(&self, label: &str) -> Result<WrapAttempt, String>;
    /// Signs inside the token.
    fn sign(&self, label: &str, id: &UserId, msg: &[u8]) -> Result<Signature, String>;
    /// Verifies an SM2 signature with an implementation independent of gmchain's code (the
    /// binary runs OpenSSL 3's `openssl pkeyutl -verify`). `Err` means it could not be run.
    fn verify_independently(
        &self,
        public_key: &PublicKey,
        id: &UserId,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<IndependentVerification, String>;
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

/// The check that says whether the module can earn a device clause at all.
pub(crate) const MODULE_IDENTITY: &str = "hsm-module-identity";

/// Every token check in this build.
pub fn token_checks() -> &'static [TokenCheck] {
    &[
        TokenCheck {
            id: MODULE_IDENTITY,
            title: "The module is a production cryptographic module: its profile is not development, it is not gmchain's software token (by what C_GetInfo, C_GetSlotInfo and C_GetTokenInfo report), and the certification its profile declares names the manufacturer, model and firmware the token reports",
            run: module_identity,
        },
        TokenCheck {
            id: "hsm-keygen-in-device",
            title: "A key generated through the token is local, sensitive, always sensitive, never extractable, and its value cannot be read",
            run: keygen_in_device,
        },
        TokenCheck {
            id: "hsm-no-export",
            title: "The private value cannot be read or wrapped out of the token (a token that cannot be asked to wrap fails)",
            run: no_export,
        },
        TokenCheck {
            id: "hsm-sign-in-device",
            title: "Signatures made inside the token verify in gmchain's software and in OpenSSL, and only under the signer's ID",
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

/// What gmchain's software token reports about itself (`crates/softtoken/src/ffi.rs`:
/// `C_GetInfo`, `C_GetSlotInfo`, `C_GetTokenInfo`). A module answering any of these is that
/// token, whatever its profile declares.
const SOFTTOKEN_MANUFACTURER: &str = "gmchain";
const SOFTTOKEN_LIBRARY: &str = "gmchain softtoken";
const SOFTTOKEN_MODEL: &str = "softtoken";

/// Returns what marks `r` as gmchain's software token, if anything does.
fn softtoken_marks(r: &ReportedDevice) -> Option<String> {
    let mut marks = Vec::new();
    for (call, value) in [
        ("C_GetInfo manufacturerID", &r.library_manufacturer),
        ("C_GetSlotInfo manufacturerID", &r.slot_manufacturer),
        ("C_GetTokenInfo manufacturerID", &r.token_manufacturer),
    ] {
        if value.trim().eq_ignore_ascii_case(SOFTTOKEN_MANUFACTURER) {
            marks.push(format!("{call} {value:?}"));
        }
    }
    if r.library_description
        .trim()
        .to_ascii_lowercase()
        .starts_with(SOFTTOKEN_LIBRARY)
    {
        marks.push(format!(
            "C_GetInfo libraryDescription {:?}",
            r.library_description
        ));
    }
    if r.token_model.trim().eq_ignore_ascii_case(SOFTTOKEN_MODEL)
        && r.token_manufacturer
            .trim()
            .eq_ignore_ascii_case(SOFTTOKEN_MANUFACTURER)
    {
        marks.push(format!("C_GetTokenInfo model {:?}", r.token_model));
    }
    (!marks.is_empty()).then(|| marks.join(", "))
}

/// One finding about the module: a case of `hsm-module-identity`, and what it means for a
/// clause when it fails.
struct Finding {
    case: String,
    result: Result<String, String>,
    /// The clause cause when this finding fails.
    cause: String,
}

fn describe(r: &ReportedDevice) -> String {
    format!(
        "library {:?} by {:?} version {} (C_GetInfo); slot {:?} by {:?} firmware {} (C_GetSlotInfo); token by {:?}, model {:?}, serial {:?}, hardware {}, firmware {} (C_GetTokenInfo)",
        r.library_description,
        r.library_manufacturer,
        r.library_version,
        r.slot_description,
        r.slot_manufacturer,
        r.slot_firmware,
        r.token_manufacturer,
        r.token_model,
        r.token_serial,
        r.token_hardware,
        r.token_firmware
    )
}

/// Judges what the module is from its own answers and its profile.
fn module_findings(id: &TokenIdentity) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(r) = &id.reported else {
        let why = id
            .reported_error
            .clone()
            .unwrap_or_else(|| "no answer".to_string());
        out.push(Finding {
            case: "the module describes itself (C_GetInfo, C_GetSlotInfo, C_GetTokenInfo)".into(),
            result: Err(why.clone()),
            cause: format!(
                "the module did not describe itself, so what it is cannot be shown: {why}"
            ),
        });
        return out;
    };
    out.push(Finding {
        case: "the module describes itself (C_GetInfo, C_GetSlotInfo, C_GetTokenInfo)".into(),
        result: Ok(describe(r)),
        cause: String::new(),
    });
    out.push(Finding {
        case: "the module is not gmchain's software token".into(),
        result: match softtoken_marks(r) {
            Some(marks) => Err(format!(
                "the module reports {marks}: gmchain's software token, keys in software, whatever its profile declares"
            )),
            None => Ok(String::new()),
        },
        cause: format!(
            "gmchain's software token ({}): keys in software, not a certified cryptographic module, whatever its profile declares",
            softtoken_marks(r).unwrap_or_default()
        ),
    });
    out.push(Finding {
        case: "the profile declares a production module (development = false)".into(),
        result: if id.development {
            Err("the profile says development = true: a development token".into())
        } else {
            Ok(String::new())
        },
        cause: "development token, not certified".into(),
    });
    if id.development {
        // A development profile declares no certification (the profile loader refuses one).
        return out;
    }
    let Some(c) = &id.certification else {
        out.push(Finding {
            case: "the profile declares the module's certification".into(),
            result: Err("no [certification] in the profile".into()),
            cause: "the token's profile declares no certification".into(),
        });
        return out;
    };
    for (what, call, declared, reported) in [
        (
            "manufacturer",
            "C_GetTokenInfo manufacturerID",
            &c.manufacturer,
            &r.token_manufacturer,
        ),
        ("model", "C_GetTokenInfo model", &c.model, &r.token_model),
        (
            "firmware",
            "C_GetTokenInfo firmwareVersion",
            &c.firmware,
            &r.token_firmware,
        ),
    ] {
        let detail = format!("declared {declared:?}, the token reports {reported:?}");
        out.push(Finding {
            case: format!("the declared {what} is the token's ({call})"),
            result: if declared == reported {
                Ok(detail.clone())
            } else {
                Err(detail.clone())
            },
            cause: format!(
                "the declared certification does not match the token: {what} {detail} ({call}); certificate {} covers another product",
                c.certificate
            ),
        });
    }
    out
}

fn module_identity(t: &dyn TokenProbe) -> Vec<Evidence> {
    module_findings(&t.identity())
        .into_iter()
        .map(|f| Evidence {
            case: f.case,
            source: "the module's own answers (C_GetInfo, C_GetSlotInfo, C_GetTokenInfo) and the profile".into(),
            pass: f.result.is_ok(),
            detail: match f.result {
                Ok(d) | Err(d) => d,
            },
        })
        .collect()
}

/// Where certification stops: the suite compares, the auditor confirms.
pub(crate) const CONFIRM_WITH_ISSUER: &str = "certification is for the auditor to confirm against the issuing body's records (the GM certification body's list of certified commercial cryptographic products); the suite only compared the declaration with what the token reports";

/// A clause judged on the token's certification (`requires_certified_device`).
pub(crate) struct CertificationVerdict {
    pub verdict: Verdict,
    pub cause: String,
    /// Whether the clause counts as failed (a contradiction or a failed check), rather than
    /// not earnable on a development token.
    pub failed: bool,
}

/// Judges a clause that needs a certified device. Never MET: at best DECLARED, when the module
/// is not a development token nor gmchain's software token, its declared manufacturer, model and
/// firmware are what the token reports, and every check passed.
pub(crate) fn certification_verdict(
    identity: Option<&TokenIdentity>,
    all_pass: bool,
    others_pass: bool,
) -> CertificationVerdict {
    let not_met = |cause: String, failed: bool| CertificationVerdict {
        verdict: Verdict::NotMet,
        cause,
        failed,
    };
    let Some(id) = identity else {
        return not_met("needs a live token, and none was tested".into(), false);
    };
    let findings = module_findings(id);
    if id.development {
        // A development token cannot earn the clause, but a check other than the module's
        // identity that failed still fails the run (found in review).
        if !others_pass {
            return not_met("check-failed (on a development token)".into(), true);
        }
        let soft = id
            .reported
            .as_ref()
            .and_then(softtoken_marks)
            .map(|m| format!(" (the module reports itself as gmchain's software token: {m})"))
            .unwrap_or_default();
        return not_met(format!("development token, not certified{soft}"), false);
    }
    if let Some(f) = findings.iter().find(|f| f.result.is_err()) {
        return not_met(f.cause.clone(), true);
    }
    if !all_pass {
        return not_met("check-failed".into(), true);
    }
    let (Some(c), Some(r)) = (&id.certification, &id.reported) else {
        return not_met("the token's profile declares no certification".into(), true);
    };
    // The declaration must hold up on its own terms (found in review: an expired, level-1
    // certificate was DECLARED): GB/T 39786 level 3 asks for modules certified at GB/T 37092
    // level 2 or higher, and an expired certificate certifies nothing.
    match c.level.as_deref().map(str::trim).map(str::parse::<u8>) {
        Some(Ok(l)) if l >= 2 => {}
        Some(_) => {
            return not_met(
                format!(
                    "the declared certificate {} is security level {}: a GB/T 39786 level-3 system needs GB/T 37092 level 2 or higher",
                    c.certificate,
                    c.level.as_deref().unwrap_or_default()
                ),
                true,
            );
        }
        None => {
            return not_met(
                format!(
                    "the declared certificate {} names no security level (GB/T 37092 level 2 or higher is needed)",
                    c.certificate
                ),
                true,
            );
        }
    }
    if let Some(until) = c.valid_until.as_deref() {
        // ISO dates compare as text in date order; without the run's date, fail closed.
        if id.today.len() != 10 || until.len() != 10 || until < id.today.as_str() {
            return not_met(
                format!(
                    "the declared certificate {} is valid until {until}, and the run is on {:?}: expired (or undated)",
                    c.certificate, id.today
                ),
                true,
            );
        }
    }
    CertificationVerdict {
        verdict: Verdict::Declared,
        cause: format!(
            "declared, not verified: certificate {} issued by {}{}{} for {} {} firmware {}; the token reports manufacturer {:?}, model {:?}, serial {:?}, firmware {} (C_GetTokenInfo), library {:?} (C_GetInfo); {CONFIRM_WITH_ISSUER}",
            c.certificate,
            c.issuer,
            c.level
                .as_deref()
                .map(|l| format!(", level {l}"))
                .unwrap_or_default(),
            c.valid_until
                .as_deref()
                .map(|v| format!(", valid until {v}"))
                .unwrap_or_default(),
            c.manufacturer,
            c.model,
            c.firmware,
            r.token_manufacturer,
            r.token_model,
            r.token_serial,
            r.token_firmware,
            r.library_description,
        ),
        failed: false,
    }
}

/// The cause of a device clause that fails only because the token is a development token
/// (its profile says so and `hsm-module-identity` is the only failing check): NOT MET, but the
/// run is a development run, not a failed one. `None` when anything else failed.
pub(crate) fn development_token_cause(
    checks: &[CheckOutcome],
    identity: Option<&TokenIdentity>,
) -> Option<String> {
    let id = identity.filter(|i| i.development)?;
    let mut failing = checks.iter().filter(|o| !o.pass).peekable();
    failing.peek()?;
    if !failing.all(|o| o.id == MODULE_IDENTITY) {
        return None;
    }
    let soft = id
        .reported
        .as_ref()
        .and_then(softtoken_marks)
        .map(|_| ", gmchain's software token")
        .unwrap_or_default();
    Some(format!(
        "development token{soft}: keys are not generated or kept in a cryptographic module, so this clause cannot be met on it ({MODULE_IDENTITY} fails); the device checks' evidence is shown"
    ))
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

/// Describes a private value a token let out, and whether it is the generated key's.
fn leaked(what: &str, value: &[u8], pk: &PublicKey) -> String {
    let matches = crypto_sm::sm2::PrivateKey::from_bytes(value)
        .map(|d| d.public_key() == *pk)
        .unwrap_or(false);
    format!(
        "the token {what} ({} bytes{})",
        value.len(),
        if matches {
            ", the private key of the generated public key"
        } else {
            ""
        }
    )
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
        // The attributes are the token's word; a token that says "sensitive" and hands out
        // the value lies, and then none of them proves where the key was made.
        out.push(derived(
            "the attributes hold: reading CKA_VALUE is refused",
            match t.read_private_value(l) {
                Ok(None) => Ok(()),
                Ok(Some(v)) => Err(format!(
                    "{}, although it reports {}",
                    leaked("returned the private value", &v, pk),
                    facts
                        .as_ref()
                        .map(|f| format!("{f:?}"))
                        .unwrap_or_else(|e| e.clone())
                )),
                Err(e) => Err(e),
            },
        ));
        out
    })
}

fn no_export(t: &dyn TokenProbe) -> Vec<Evidence> {
    with_key(t, "export", |l, pk| {
        vec![
            derived(
                "reading CKA_VALUE of the private key is refused",
                match t.read_private_value(l) {
                    Ok(None) => Ok(()),
                    Ok(Some(v)) => Err(leaked("returned the private value", &v, pk)),
                    Err(e) => Err(e),
                },
            ),
            derived(
                "wrapping the private key out is refused",
                match t.wrap_private_key(l) {
                    Ok(WrapAttempt::Refused(_)) => Ok(()),
                    Ok(WrapAttempt::Wrapped(v)) => Err(format!(
                        "the token wrapped the private key out ({} bytes)",
                        v.len()
                    )),
                    Ok(WrapAttempt::NotTried(why)) => Err(format!(
                        "not tried: {why}; that the token refuses to wrap the key out is not shown"
                    )),
                    Err(e) => Err(e),
                },
            ),
        ]
    })
}

fn sign_in_device(t: &dyn TokenProbe) -> Vec<Evidence> {
    with_key(t, "sign", |l, pk| {
        let msg = b"GM/T 0111 7.3: signed inside the device";
        let other = UserId::new(b"other".to_vec()).unwrap_or_default();
        let mut out = Vec::new();
        for id in [
            UserId::default(),
            UserId::new(vec![0x00, 0xff, 0x10]).unwrap_or_default(),
        ] {
            let sig = t.sign(l, &id, msg);
            let r = sig.clone().and_then(|sig| {
                crypto_sm::sm2::verify(pk, &id, msg, &sig)
                    .map_err(|e| format!("software verification: {e}"))?;
                expect_err(
                    "the same signature under another ID",
                    crypto_sm::sm2::verify(pk, &other, msg, &sig),
                )
            });
            out.push(derived(
                &format!("sign in the token, verify in gmchain's software, {id:?}"),
                r,
            ));
            // gmchain's soft token signs with gmchain's own SM2 code: a verification by the
            // same code would agree with any mistake they share. An independent
            // implementation must accept the signature under the signer's ID and refuse it
            // under another.
            for (case, under, want) in [
                (
                    format!("an independent implementation verifies the token's signature, {id:?}"),
                    &id,
                    true,
                ),
                (
                    format!(
                        "an independent implementation refuses the token's signature under another ID, {id:?}"
                    ),
                    &other,
                    false,
                ),
            ] {
                let answer = sig
                    .clone()
                    .and_then(|s| t.verify_independently(pk, under, msg, &s));
                out.push(Evidence {
                    case,
                    source: match &answer {
                        Ok(a) => format!("independent implementation: {}", a.verifier),
                        Err(_) => "independent implementation (could not be run)".into(),
                    },
                    pass: matches!(&answer, Ok(a) if a.verified == want),
                    detail: match answer {
                        Ok(a) if a.verified == want => String::new(),
                        Ok(a) if a.verified => "accepted, but must be refused".into(),
                        Ok(_) => "refused, but must verify".into(),
                        Err(e) => e,
                    },
                });
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Provenance, Report, load_standards, run};
    use crypto_sm::sm2::PrivateKey;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// How a fake token behaves.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Behaviour {
        /// Keeps keys in, signs under the ID asked for, refuses to decrypt with a signing key,
        /// destroys what it is told to.
        Honest,
        /// As `Honest`, but makes no wrapping key, so it cannot be asked to wrap.
        CannotWrap,
        /// Reports every protection attribute and exports the key anyway (read and wrap),
        /// signs under the default ID whatever it is asked, decrypts with a signing key, keeps
        /// "destroyed" keys; its independent verifier accepts everything.
        Liar,
        /// Reports the truth: the key is extractable and not sensitive, and its value reads.
        WeakAttributes,
    }

    struct FakeToken {
        behaviour: Behaviour,
        identity: TokenIdentity,
        keys: Mutex<BTreeMap<String, PrivateKey>>,
        rng: SeededRandom,
    }

    impl FakeToken {
        fn new(behaviour: Behaviour, identity: TokenIdentity) -> Self {
            FakeToken {
                behaviour,
                identity,
                keys: Mutex::new(BTreeMap::new()),
                rng: SeededRandom::new(0x746f_6b65),
            }
        }

        fn key(&self, label: &str) -> Result<PrivateKey, String> {
            let keys = self.keys.lock().unwrap();
            let d = keys.get(label).ok_or(format!("no key {label}"))?;
            PrivateKey::from_bytes(&d.to_bytes()[..]).map_err(|e| e.to_string())
        }
    }

    impl TokenProbe for FakeToken {
        fn identity(&self) -> TokenIdentity {
            self.identity.clone()
        }
        fn generate_signing_key(&self, label: &str) -> Result<PublicKey, String> {
            let d = PrivateKey::generate(&self.rng).map_err(|e| e.to_string())?;
            let pk = d.public_key();
            self.keys.lock().unwrap().insert(label.to_string(), d);
            Ok(pk)
        }
        fn key_facts(&self, label: &str) -> Result<KeyFacts, String> {
            self.key(label)?;
            let protected = self.behaviour != Behaviour::WeakAttributes;
            Ok(KeyFacts {
                sensitive: protected,
                extractable: !protected,
                always_sensitive: protected,
                never_extractable: protected,
                local: protected,
            })
        }
        fn read_private_value(&self, label: &str) -> Result<Option<Vec<u8>>, String> {
            let d = self.key(label)?;
            Ok(match self.behaviour {
                Behaviour::Honest | Behaviour::CannotWrap => None,
                Behaviour::Liar | Behaviour::WeakAttributes => Some(d.to_bytes().to_vec()),
            })
        }
        fn wrap_private_key(&self, label: &str) -> Result<WrapAttempt, String> {
            let d = self.key(label)?;
            Ok(match self.behaviour {
                Behaviour::Honest => WrapAttempt::Refused("CKR_KEY_UNEXTRACTABLE".into()),
                Behaviour::CannotWrap => {
                    WrapAttempt::NotTried("the profile names no SM4 key generation".into())
                }
                Behaviour::Liar | Behaviour::WeakAttributes => {
                    WrapAttempt::Wrapped(d.to_bytes().to_vec())
                }
            })
        }
        fn sign(&self, label: &str, id: &UserId, msg: &[u8]) -> Result<Signature, String> {
            let d = self.key(label)?;
            let id = if self.behaviour == Behaviour::Liar {
                UserId::default()
            } else {
                id.clone()
            };
            d.sign(&id, msg, &self.rng).map_err(|e| e.to_string())
        }
        fn verify_independently(
            &self,
            public_key: &PublicKey,
            id: &UserId,
            msg: &[u8],
            sig: &Signature,
        ) -> Result<IndependentVerification, String> {
            Ok(IndependentVerification {
                verified: self.behaviour == Behaviour::Liar
                    || crypto_sm::sm2::verify(public_key, id, msg, sig).is_ok(),
                verifier: "a test stand-in".into(),
            })
        }
        fn decrypt(&self, label: &str, ciphertext: &[u8]) -> Result<Option<Vec<u8>>, String> {
            let d = self.key(label)?;
            if self.behaviour != Behaviour::Liar {
                return Ok(None);
            }
            crypto_sm::sm2::decrypt(&d, ciphertext, CipherFormat::C1C3C2)
                .map(|m| Some(m.expose().to_vec()))
                .map_err(|e| e.to_string())
        }
        fn destroy(&self, label: &str) -> Result<(), String> {
            if self.behaviour != Behaviour::Liar {
                self.keys.lock().unwrap().remove(label);
            }
            Ok(())
        }
        fn exists(&self, label: &str) -> Result<bool, String> {
            Ok(self.keys.lock().unwrap().contains_key(label))
        }
    }

    /// What gmchain's soft token reports (crates/softtoken/src/ffi.rs).
    fn softtoken_reports() -> ReportedDevice {
        ReportedDevice {
            library_manufacturer: "gmchain".into(),
            library_description: "gmchain softtoken (development)".into(),
            library_version: "0.1".into(),
            slot_description: "gmchain softtoken slot 0".into(),
            slot_manufacturer: "gmchain".into(),
            slot_firmware: "0.1".into(),
            token_manufacturer: "gmchain".into(),
            token_model: "softtoken".into(),
            token_serial: "58ed0fbb55da2619".into(),
            token_hardware: "0.1".into(),
            token_firmware: "0.1".into(),
        }
    }

    /// A vendor module whose profile declares a certification for what it reports.
    fn vendor(firmware_reported: &str) -> TokenIdentity {
        TokenIdentity {
            profile: "vendor-x".into(),
            module: "/opt/vendor/libpkcs11.so".into(),
            manufacturer: "Vendor X".into(),
            model: "VX-HSM".into(),
            serial: "0001".into(),
            label: "agency-a".into(),
            development: false,
            certification: Some(DeclaredCertification {
                certificate: "GM-CERT-0001".into(),
                issuer: "the issuing body".into(),
                model: "VX-HSM".into(),
                manufacturer: "Vendor X".into(),
                firmware: "2.1".into(),
                level: Some("2".into()),
                valid_until: None,
            }),
            reported: Some(ReportedDevice {
                library_manufacturer: "Vendor X".into(),
                library_description: "VX PKCS#11".into(),
                library_version: "5.0".into(),
                slot_description: "VX slot".into(),
                slot_manufacturer: "Vendor X".into(),
                slot_firmware: firmware_reported.into(),
                token_manufacturer: "Vendor X".into(),
                token_model: "VX-HSM".into(),
                token_serial: "0001".into(),
                token_hardware: "1.0".into(),
                token_firmware: firmware_reported.into(),
            }),
            reported_error: None,
            today: "2026-12-03".into(),
        }
    }

    /// The soft token under its own (development) profile.
    fn softtoken() -> TokenIdentity {
        TokenIdentity {
            profile: "gmchain-softtoken".into(),
            manufacturer: "gmchain".into(),
            model: "softtoken".into(),
            development: true,
            reported: Some(softtoken_reports()),
            ..TokenIdentity::default()
        }
    }

    /// The soft token under a copy of its profile claiming a certificate, with every
    /// declared field copied from what the soft token reports.
    fn forged_softtoken() -> TokenIdentity {
        TokenIdentity {
            development: false,
            certification: Some(DeclaredCertification {
                certificate: "FAKE-0000".into(),
                issuer: "nobody".into(),
                model: "softtoken".into(),
                manufacturer: "gmchain".into(),
                firmware: "0.1".into(),
                level: None,
                valid_until: None,
            }),
            ..softtoken()
        }
    }

    fn report(t: &FakeToken) -> Report {
        run(
            &load_standards().unwrap(),
            Provenance::default(),
            Some(t),
            None,
        )
    }

    fn clause<'a>(r: &'a Report, std: &str, id: &str) -> &'a crate::ClauseResult {
        r.standards
            .iter()
            .find(|s| s.id == std)
            .and_then(|s| s.clauses.iter().find(|c| c.id == id))
            .unwrap_or_else(|| panic!("{std} {id}"))
    }

    /// Asserts that clause `id` of `std` is NOT MET with a cause starting with `cause`, and
    /// returns it.
    fn not_met_because<'a>(
        r: &'a Report,
        std: &str,
        id: &str,
        cause: &str,
    ) -> &'a crate::ClauseResult {
        let c = clause(r, std, id);
        assert_eq!(c.verdict, Verdict::NotMet, "{std} {id}");
        assert!(
            c.cause.as_deref().is_some_and(|x| x.starts_with(cause)),
            "{std} {id}: {:?}",
            c.cause
        );
        c
    }

    const DEVICE_CLAUSES: [(&str, &str); 3] = [
        ("GM/T 0111-2021", "7.4"),
        ("GB/T 39786-2021", "key lifecycle: generation"),
        ("GB/T 39786-2021", "key lifecycle: storage"),
    ];
    const CERTIFIED_CLAUSES: [(&str, &str); 2] = [
        ("GM/T 0111-2021", "7.3"),
        ("GB/T 39786-2021", "5 (certified products)"),
    ];

    /// Like the node checks' accept-everything fake: a token that exports its keys and lies
    /// about its attributes and itself fails every token check, none vacuously.
    #[test]
    fn every_token_check_fails_against_a_token_that_exports_and_lies() {
        let liar = FakeToken::new(Behaviour::Liar, vendor("2.0"));
        for c in token_checks() {
            let ev = (c.run)(&liar);
            assert!(!ev.is_empty(), "{}", c.id);
            assert!(ev.iter().any(|e| !e.pass), "{} passed: {ev:#?}", c.id);
        }
        // The attributes it reports are perfect; the key leaks anyway, and the keygen check
        // sees it.
        let ev = keygen_in_device(&liar);
        let held = ev
            .iter()
            .find(|e| e.case.contains("attributes hold"))
            .unwrap();
        assert!(
            !held.pass
                && held
                    .detail
                    .contains("the private key of the generated public key"),
            "{held:?}"
        );
        // Its verifier accepts everything: the case that needs a refusal fails.
        let ev = sign_in_device(&liar);
        assert!(
            ev.iter().any(|e| !e.pass
                && e.case
                    .contains("refuses the token's signature under another ID")),
            "{ev:#?}"
        );
        let r = report(&liar);
        for (std, id) in DEVICE_CLAUSES.iter().chain(&CERTIFIED_CLAUSES) {
            assert_eq!(clause(&r, std, id).verdict, Verdict::NotMet, "{std} {id}");
            assert!(
                r.summary.mandatory_failed.contains(&format!("{std} {id}")),
                "{std} {id}: {:?}",
                r.summary.mandatory_failed
            );
        }
    }

    /// A development token that leaks fails the run too: only the module-identity check may
    /// fail for a device clause to be "not earnable" rather than failed.
    #[test]
    fn a_leaking_development_token_fails_its_device_clauses() {
        let r = report(&FakeToken::new(Behaviour::Liar, softtoken()));
        for (std, id) in DEVICE_CLAUSES {
            let c = clause(&r, std, id);
            assert_eq!(c.verdict, Verdict::NotMet);
            assert_eq!(c.cause.as_deref(), Some("check-failed"), "{std} {id}");
            assert!(r.summary.mandatory_failed.contains(&format!("{std} {id}")));
        }
        // The certified-device clauses too: a development token cannot earn them, but a failed
        // device check beside that still fails them (found in review: it read "not certified"
        // and was left out of the failed clauses).
        for (std, id) in CERTIFIED_CLAUSES {
            let c = clause(&r, std, id);
            assert_eq!(c.verdict, Verdict::NotMet);
            assert_eq!(
                c.cause.as_deref(),
                Some("check-failed (on a development token)"),
                "{std} {id}"
            );
            assert!(r.summary.mandatory_failed.contains(&format!("{std} {id}")));
        }
    }

    /// A declaration that does not hold up on its own terms fails (found in review): a
    /// security level below 2, no level, a certificate expired on the run's date, or no date.
    #[test]
    fn an_expired_or_low_level_declaration_is_not_met_and_fails() {
        let with = |level: Option<&str>, until: Option<&str>, today: &str| {
            let mut id = vendor("2.1");
            if let Some(c) = id.certification.as_mut() {
                c.level = level.map(String::from);
                c.valid_until = until.map(String::from);
            }
            id.today = today.into();
            certification_verdict(Some(&id), true, true)
        };
        for (level, until, today, want) in [
            (Some("1"), None, "2026-12-03", "security level 1"),
            (None, None, "2026-12-03", "names no security level"),
            (Some("2"), Some("2001-01-01"), "2026-12-03", "expired"),
            (Some("2"), Some("2030-01-01"), "", "expired (or undated)"),
        ] {
            let v = with(level, until, today);
            assert_eq!(
                v.verdict,
                Verdict::NotMet,
                "{level:?} {until:?}: {}",
                v.cause
            );
            assert!(v.failed && v.cause.contains(want), "{}", v.cause);
        }
        let ok = with(Some("3"), Some("2030-01-01"), "2026-12-03");
        assert_eq!(ok.verdict, Verdict::Declared, "{}", ok.cause);
    }

    #[test]
    fn weak_attributes_fail_generation_and_storage() {
        let weak = FakeToken::new(Behaviour::WeakAttributes, vendor("2.1"));
        let ev = keygen_in_device(&weak);
        assert!(
            ev.iter().any(|e| !e.pass
                && e.case.contains("CKA_SENSITIVE")
                && e.detail.contains("sensitive: false")),
            "{ev:#?}"
        );
        assert!(no_export(&weak).iter().all(|e| !e.pass));
        let r = report(&weak);
        for (std, id) in DEVICE_CLAUSES {
            assert_eq!(clause(&r, std, id).verdict, Verdict::NotMet, "{std} {id}");
        }
    }

    /// "The token cannot make an SM4 key, so it cannot wrap" shows nothing: the wrap case
    /// fails instead of passing.
    #[test]
    fn a_token_that_cannot_be_asked_to_wrap_does_not_pass_the_wrap_case() {
        let ev = no_export(&FakeToken::new(Behaviour::CannotWrap, vendor("2.1")));
        let wrap = ev.iter().find(|e| e.case.contains("wrapping")).unwrap();
        assert!(
            !wrap.pass
                && wrap
                    .detail
                    .starts_with("not tried: the profile names no SM4 key generation"),
            "{wrap:?}"
        );
    }

    /// A production module whose declared manufacturer, model and firmware are what it
    /// reports, and whose checks pass: device clauses and certification alike only DECLARED
    /// (the module's behaviour was observed, its certification and random source were not:
    /// found in review, where a forged declaration on SoftHSM made key generation MET), with
    /// the declaration beside the token's answers and the note that the auditor confirms it.
    #[test]
    fn a_declared_module_gets_declared_device_and_certification_clauses_never_met() {
        let r = report(&FakeToken::new(Behaviour::Honest, vendor("2.1")));
        for (std, id) in DEVICE_CLAUSES {
            let c = clause(&r, std, id);
            assert_eq!(c.verdict, Verdict::Declared, "{std} {id}: {:?}", c.cause);
            assert!(c.cause.as_deref().unwrap().contains(CONFIRM_WITH_ISSUER));
        }
        for (std, id) in CERTIFIED_CLAUSES {
            let c = clause(&r, std, id);
            assert_eq!(c.verdict, Verdict::Declared, "{std} {id}: {:?}", c.cause);
            let cause = c.cause.as_deref().unwrap();
            for want in [
                "GM-CERT-0001",
                "the issuing body",
                "firmware 2.1",
                "serial \"0001\"",
                CONFIRM_WITH_ISSUER,
            ] {
                assert!(cause.contains(want), "{want}: {cause}");
            }
        }
        let n = &r.summary.counts;
        assert_eq!(n.declared, DEVICE_CLAUSES.len() + CERTIFIED_CLAUSES.len());
        assert_eq!(
            n.met + n.declared + n.not_met + n.not_covered + n.not_applicable,
            n.clauses
        );
        // Only GM/T 0111 §7.1 (non-GM algorithms reachable in production), which no token
        // check decides.
        assert_eq!(r.summary.mandatory_failed, ["GM/T 0111-2021 7.1"]);
        let json = serde_json::to_value(clause(&r, "GM/T 0111-2021", "7.3")).unwrap();
        assert_eq!(json["verdict"], "DECLARED");
        assert!(crate::render_html(&r).contains("class=\"DECLARED\">DECLARED<"));
    }

    /// Any mismatch between the declaration and what the token reports is NOT MET, and a
    /// failure of the run.
    #[test]
    fn a_declaration_the_token_contradicts_is_not_met() {
        let r = report(&FakeToken::new(Behaviour::Honest, vendor("2.0")));
        for (std, id) in CERTIFIED_CLAUSES {
            let c = clause(&r, std, id);
            assert_eq!(c.verdict, Verdict::NotMet);
            let cause = c.cause.as_deref().unwrap();
            assert!(
                cause.contains("firmware declared \"2.1\", the token reports \"2.0\""),
                "{cause}"
            );
            assert!(r.summary.mandatory_failed.contains(&format!("{std} {id}")));
        }
        for (std, id) in DEVICE_CLAUSES {
            assert_eq!(clause(&r, std, id).verdict, Verdict::NotMet, "{std} {id}");
        }
    }

    /// The soft token under its own profile: the device clauses are NOT MET (development
    /// token) with the behavioural checks' evidence still shown and passing; the clauses a
    /// software token can earn (use, destruction) stay MET. Not a failed run.
    #[test]
    fn a_development_soft_token_cannot_earn_device_clauses() {
        let r = report(&FakeToken::new(Behaviour::Honest, softtoken()));
        for (std, id) in DEVICE_CLAUSES {
            let c = not_met_because(&r, std, id, "development token, gmchain's software token:");
            let keygen = c
                .checks
                .iter()
                .find(|o| o.id == "hsm-keygen-in-device")
                .unwrap();
            assert!(keygen.pass && keygen.cases > 0, "{keygen:?}");
        }
        for (std, id) in CERTIFIED_CLAUSES {
            not_met_because(
                &r,
                std,
                id,
                "development token, not certified (the module reports itself as gmchain's software token",
            );
        }
        for id in ["key lifecycle: use", "key lifecycle: destruction"] {
            assert_eq!(clause(&r, "GB/T 39786-2021", id).verdict, Verdict::Met);
        }
        // Only GM/T 0111 §7.1 (non-GM algorithms reachable in production), which no token
        // check decides.
        assert_eq!(r.summary.mandatory_failed, ["GM/T 0111-2021 7.1"]);
    }

    /// A copy of the soft token's profile claiming certificate FAKE-0000 for exactly what the
    /// soft token reports: the module is recognised by its own answers, and every certified
    /// and device clause is NOT MET and fails the run.
    #[test]
    fn a_forged_certification_for_the_soft_token_is_not_met() {
        let r = report(&FakeToken::new(Behaviour::Honest, forged_softtoken()));
        for (std, id) in CERTIFIED_CLAUSES {
            not_met_because(
                &r,
                std,
                id,
                "gmchain's software token (C_GetInfo manufacturerID \"gmchain\"",
            );
        }
        for (std, id) in DEVICE_CLAUSES.iter().chain(&CERTIFIED_CLAUSES) {
            assert_ne!(clause(&r, std, id).verdict, Verdict::Met, "{std} {id}");
            assert!(r.summary.mandatory_failed.contains(&format!("{std} {id}")));
        }
        assert_eq!(r.summary.counts.declared, 0);
    }

    /// A module that will not describe itself cannot be judged: its certification is NOT MET.
    #[test]
    fn a_module_that_does_not_describe_itself_is_not_met() {
        let mut silent = vendor("2.1");
        silent.reported = None;
        silent.reported_error = Some("C_GetInfo returned CKR_GENERAL_ERROR".into());
        let r = report(&FakeToken::new(Behaviour::Honest, silent));
        let c = clause(&r, "GM/T 0111-2021", "7.3");
        assert_eq!(c.verdict, Verdict::NotMet);
        assert!(c.cause.as_deref().unwrap().contains("CKR_GENERAL_ERROR"));
    }
}
