//! GM/T 0015 certificates and CRLs, GM/T 0111 §7.5 certificate management, §8.1 registration
//! with proof of possession and §8.7 identity management and revocation: pure logic on a
//! consortium generated from a fixed seed (root → agency CA → every leaf role), no I/O. The
//! OpenSSL and GmSSL cross-checks of the same material are in `crates/pki/tests/interop.rs`.

use super::{Check, Evidence};
use crypto::{PublicKey, Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use pki::danger::{self, CertTemplate, RawExtension};
use pki::{
    Certificate, ChainError, Crl, IssueRequest, PkiError, RevocationReason, RevokedEntry, Role,
    Serial, TrustAnchor, UnixTime, ValidatedChain, Validity, csr, envelope, issue, issue_crl,
    issue_root, validate_chain,
};
use std::sync::Arc;

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "pki-cert-profile",
        title: "Certificates of every role: X.509 v3, SM2-with-SM3, SM2 key, the role's extensions, signature over ZA(default ID) ‖ TBS",
        run: cert_profile,
    },
    Check {
        id: "pki-cert-parse-neg",
        title: "Certificate parsing rejects non-DER, truncated and trailing encodings; other signature algorithms and IDs are refused",
        run: cert_parse_neg,
    },
    Check {
        id: "pki-chain-valid",
        title: "root → agency CA → leaf chains validate for every role, with the anchor's organisation",
        run: chain_valid,
    },
    Check {
        id: "pki-chain-neg",
        title: "Chain validation refuses every defect with its own error",
        run: chain_neg,
    },
    Check {
        id: "pki-csr-pop",
        title: "Registration verifies the request's proof of possession and refuses claimed roles and organisations",
        run: csr_pop,
    },
    Check {
        id: "pki-crl-revocation",
        title: "v2 CRLs with SM2-with-SM3; revocation is checked against the issuer's current CRL and fails closed",
        run: crl_revocation,
    },
    Check {
        id: "pki-dual-envelope",
        title: "Dual certificates: separate signing and encryption certificates; the encryption key is delivered as a GM/T 0009 SM2EnvelopedKey",
        run: dual_envelope,
    },
];

const SOURCE: &str = "gmchain-derived (consortium generated with SeededRandom; profile per GM/T 0015 as implemented by OpenSSL/GmSSL, cross-checked in crates/pki/tests/interop.rs)";
const DAY: u64 = 86_400;
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;
const ORG: &str = "Agency A";

fn t(days: u64) -> UnixTime {
    UnixTime(T0 + days * DAY)
}

fn v(from: u64, to: u64) -> Validity {
    Validity {
        not_before: t(from),
        not_after: t(to),
    }
}

fn now() -> UnixTime {
    t(30)
}

fn case(name: &str, r: Result<(), String>) -> Evidence {
    Evidence {
        case: name.to_string(),
        source: SOURCE.to_string(),
        pass: r.is_ok(),
        detail: r.err().unwrap_or_default(),
    }
}

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn ensure(cond: bool, what: impl Into<String>) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what.into()) }
}

/// Expects a chain error with `code`.
fn expect_chain(r: Result<ValidatedChain, ChainError>, code: &str) -> Result<(), String> {
    match r {
        Ok(_) => Err(format!("validated, but must fail with {code}")),
        Err(e) if e.code() == code => Ok(()),
        Err(e) => Err(format!("failed with {} ({e}), expected {code}", e.code())),
    }
}

/// Expects a PKI error with `code`.
fn expect_pki<T>(r: Result<T, PkiError>, code: &str) -> Result<(), String> {
    match r {
        Ok(_) => Err(format!("accepted, but must fail with {code}")),
        Err(e) if e.code() == code => Ok(()),
        Err(e) => Err(format!("failed with {} ({e}), expected {code}", e.code())),
    }
}

struct Consortium {
    p: SoftwareProvider,
    root_key: SoftSigner,
    root: Certificate,
    agency_key: SoftSigner,
    agency: Certificate,
    next: std::cell::Cell<u8>,
}

impl Consortium {
    fn new(seed: u64) -> Result<Self, String> {
        let p = SoftwareProvider::new(Arc::new(SeededRandom::new(seed)));
        let root_key = p.generate().map_err(s)?;
        let root = issue_root(
            "Consortium Root CA",
            "Consortium",
            Serial::from_hex("01").map_err(s)?,
            v(0, 3650),
            &root_key,
        )
        .map_err(s)?;
        let agency_key = p.generate().map_err(s)?;
        let agency = issue(
            &root,
            &root_key,
            &IssueRequest {
                role: Role::AgencyCa,
                common_name: "Agency A CA",
                organisation: ORG,
                public_key: &agency_key.public_key(),
                serial: Serial::from_hex("02").map_err(s)?,
                validity: v(0, 1825),
            },
        )
        .map_err(s)?;
        Ok(Consortium {
            p,
            root_key,
            root,
            agency_key,
            agency,
            next: std::cell::Cell::new(0x10),
        })
    }

    fn serial(&self) -> Result<Serial, String> {
        let n = self.next.get();
        self.next.set(n.wrapping_add(1));
        Serial::from_bytes(&[n]).map_err(s)
    }

    fn key(&self) -> Result<SoftSigner, String> {
        self.p.generate().map_err(s)
    }

    fn leaf(&self, role: Role, cn: &str) -> Result<(SoftSigner, Certificate), String> {
        let k = self.key()?;
        let c = issue(
            &self.agency,
            &self.agency_key,
            &IssueRequest {
                role,
                common_name: cn,
                organisation: ORG,
                public_key: &k.public_key(),
                serial: self.serial()?,
                validity: v(1, 365),
            },
        )
        .map_err(s)?;
        Ok((k, c))
    }

    fn crls(&self, revoked: &[RevokedEntry]) -> Result<Vec<Crl>, String> {
        Ok(vec![
            issue_crl(&self.root, &self.root_key, 1, t(0), t(60), &[]).map_err(s)?,
            issue_crl(&self.agency, &self.agency_key, 1, t(0), t(60), revoked).map_err(s)?,
        ])
    }

    fn validate(
        &self,
        leaf: &Certificate,
        crls: &[Crl],
        at: UnixTime,
        role: Role,
    ) -> Result<ValidatedChain, ChainError> {
        validate_chain(
            leaf,
            std::slice::from_ref(&self.agency),
            &[TrustAnchor::new(self.root.clone())],
            crls,
            at,
            role,
        )
    }

    fn template(&self, role: Role, cn: &str, key: &PublicKey) -> Result<CertTemplate, String> {
        CertTemplate::from_profile(
            role,
            ORG,
            cn,
            key,
            Some(&self.agency),
            self.serial()?,
            v(1, 365),
        )
        .map_err(s)
    }
}

/// Runs `cases` against a consortium; a setup failure is one failing case.
fn with(
    seed: u64,
    cases: impl FnOnce(&Consortium) -> Result<Vec<Evidence>, String>,
) -> Vec<Evidence> {
    match Consortium::new(seed).and_then(|c| cases(&c)) {
        Ok(e) => e,
        Err(e) => vec![case("set-up", Err(e))],
    }
}

// DER fragments GM/T 0015 fixes.
const ALG_SM2_WITH_SM3: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x75,
];
const SPKI_ALG_SM2: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x81, 0x1c,
    0xcf, 0x55, 0x01, 0x82, 0x2d,
];
const VERSION_V3: &[u8] = &[0xa0, 0x03, 0x02, 0x01, 0x02];

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

fn profile_case(c: &Certificate, role: Role, issuer_key: &PublicKey) -> Result<(), String> {
    let der = c.der();
    ensure(
        count(c.tbs_der(), VERSION_V3) >= 1,
        "no explicit version v3",
    )?;
    ensure(
        count(der, ALG_SM2_WITH_SM3) == 2,
        "SM2-with-SM3 (parameters absent) must appear in the TBSCertificate and outside it",
    )?;
    ensure(
        count(der, SPKI_ALG_SM2) == 1,
        "SPKI is not id-ecPublicKey with curve SM2",
    )?;
    ensure(
        c.role() == Some(role),
        format!("role read back as {:?}", c.role()),
    )?;
    let want_ku: &[&str] = match role {
        Role::RootCa | Role::AgencyCa => &["keyCertSign", "cRLSign"],
        r if r.is_encryption() => &["keyEncipherment", "dataEncipherment", "keyAgreement"],
        _ => &["digitalSignature", "nonRepudiation"],
    };
    ensure(
        c.key_usages() == want_ku,
        format!("key usage {:?}, expected {want_ku:?}", c.key_usages()),
    )?;
    let want_eku: &[&str] = match role {
        Role::RootCa | Role::AgencyCa | Role::UserEnc | Role::AdminEnc | Role::AuditorEnc => &[],
        Role::NodeSign | Role::NodeEnc => &["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
        _ => &["1.3.6.1.5.5.7.3.2"],
    };
    ensure(
        c.extended_key_usages() == want_eku,
        format!(
            "extended key usage {:?}, expected {want_eku:?}",
            c.extended_key_usages()
        ),
    )?;
    ensure(c.is_ca() == role.is_ca(), "basic constraints cA")?;
    let want_path = match role {
        Role::RootCa => Some(1),
        Role::AgencyCa => Some(0),
        _ => None,
    };
    ensure(
        c.path_len() == want_path,
        format!("path length {:?}", c.path_len()),
    )?;
    ensure(
        c.subject_key_id() == Some(&pki::key_identifier(&c.public_key())[..]),
        "subject key identifier is not SM3(04‖x‖y)[..20]",
    )?;
    if role != Role::RootCa {
        ensure(
            c.authority_key_id() == Some(&pki::key_identifier(issuer_key)[..]),
            "authority key identifier is not the issuer's key identifier",
        )?;
    }
    ensure(
        c.subject().ends_with(&format!(
            ",OU={},O={},C=CN",
            role.ou(),
            c.organisation().unwrap_or_default()
        )),
        format!("subject {:?} is not CN,OU,O,C=CN", c.subject()),
    )?;
    c.verify_signed_by(issuer_key, &UserId::default())
        .map_err(s)?;
    let empty = UserId::new(Vec::new()).map_err(s)?;
    ensure(
        c.verify_signed_by(issuer_key, &empty).is_err(),
        "the signature also verifies with the empty ID",
    )
}

fn cert_profile() -> Vec<Evidence> {
    with(1501, |k| {
        let mut out = vec![
            case(
                "root-ca: self-signed profile",
                profile_case(&k.root, Role::RootCa, &k.root_key.public_key()),
            ),
            case(
                "agency-ca: issued by the root",
                profile_case(&k.agency, Role::AgencyCa, &k.root_key.public_key()),
            ),
        ];
        for role in [
            Role::NodeSign,
            Role::NodeEnc,
            Role::Admin,
            Role::User,
            Role::Auditor,
        ] {
            let (_, c) = k.leaf(role, "leaf-1")?;
            out.push(case(
                &format!("{role}: issued by the agency CA"),
                profile_case(&c, role, &k.agency_key.public_key()),
            ));
        }
        Ok(out)
    })
}

fn cert_parse_neg() -> Vec<Evidence> {
    with(1502, |k| {
        let der = k.root.der().to_vec();
        let mut trailing = der.clone();
        trailing.push(0);
        let mut long = vec![0x30, 0x83, 0x00];
        long.extend_from_slice(&der[2..]);
        let key = k.key()?;
        let mut tpl = k.template(Role::User, "u", &key.public_key())?;
        tpl.signature_algorithm = "1.2.840.10045.4.3.2".into();
        let ecdsa_labelled =
            danger::sign_certificate(&tpl, &k.agency_key, &UserId::default()).map_err(s)?;
        let empty = UserId::new(Vec::new()).map_err(s)?;
        let empty_signed = danger::sign_certificate(
            &k.template(Role::User, "u", &key.public_key())?,
            &k.agency_key,
            &empty,
        )
        .map_err(s)?;
        Ok(vec![
            case(
                "trailing byte",
                expect_pki(Certificate::from_der(&trailing), "PKI_DECODE"),
            ),
            case(
                "truncated",
                expect_pki(Certificate::from_der(&der[..der.len() - 1]), "PKI_DECODE"),
            ),
            case(
                "non-minimal length (not DER)",
                expect_pki(Certificate::from_der(&long), "PKI_DECODE"),
            ),
            case(
                "a CRL is not a certificate",
                expect_pki(
                    Certificate::from_pem(k.crls(&[])?[0].to_pem().as_bytes()),
                    "PKI_DECODE",
                ),
            ),
            case(
                "ecdsa-with-SHA256 label refused even over an SM2 signature",
                expect_pki(
                    ecdsa_labelled.verify_signed_by(&k.agency_key.public_key(), &UserId::default()),
                    "PKI_WRONG_ALGORITHM",
                ),
            ),
            case(
                "signed with the empty ID: refused under 1234567812345678",
                expect_pki(
                    empty_signed.verify_signed_by(&k.agency_key.public_key(), &UserId::default()),
                    "PKI_SIGNATURE_INVALID",
                ),
            ),
        ])
    })
}

fn chain_valid() -> Vec<Evidence> {
    with(1503, |k| {
        let crls = k.crls(&[])?;
        let mut out = Vec::new();
        for role in [
            Role::NodeSign,
            Role::NodeEnc,
            Role::Admin,
            Role::User,
            Role::Auditor,
        ] {
            let (_, c) = k.leaf(role, "leaf-1")?;
            let r = k
                .validate(&c, &crls, now(), role)
                .map_err(s)
                .and_then(|ok| {
                    ensure(
                        ok.organisation() == "Consortium",
                        "organisation is not the anchor's",
                    )?;
                    ensure(ok.path().len() == 3 && ok.role() == role, "path or role")
                });
            out.push(case(&format!("{role}: root → agency CA → leaf"), r));
        }
        let (_, user) = k.leaf(Role::User, "alice")?;
        let r = validate_chain(
            &user,
            &[],
            &[TrustAnchor::new(k.agency.clone())],
            &crls,
            now(),
            Role::User,
        )
        .map_err(s)
        .and_then(|ok| ensure(ok.organisation() == ORG, "organisation is not the agency's"));
        out.push(case(
            "the organisation's registered CA as anchor: identity of that organisation",
            r,
        ));
        out.push(case(
            "agency CA validated as agency-ca",
            k.validate(&k.agency, &crls, now(), Role::AgencyCa)
                .map(|_| ())
                .map_err(s),
        ));
        let late_crls = vec![
            issue_crl(&k.root, &k.root_key, 2, t(300), t(400), &[]).map_err(s)?,
            issue_crl(&k.agency, &k.agency_key, 2, t(300), t(400), &[]).map_err(s)?,
        ];
        out.push(case(
            "inclusive validity: the last second of notAfter",
            k.validate(&user, &late_crls, t(365), Role::User)
                .map(|_| ())
                .map_err(s),
        ));
        Ok(out)
    })
}

fn chain_neg() -> Vec<Evidence> {
    with(1504, |k| {
        let crls = k.crls(&[])?;
        let long_crls = vec![
            issue_crl(&k.root, &k.root_key, 1, t(0), t(3000), &[]).map_err(s)?,
            issue_crl(&k.agency, &k.agency_key, 1, t(0), t(3000), &[]).map_err(s)?,
        ];
        let id = UserId::default();
        let (user_key, user) = k.leaf(Role::User, "bob")?;
        let (_, enc) = k.leaf(Role::NodeEnc, "node-1")?;
        let key = k.key()?;
        let pk = key.public_key();
        let mut out = vec![
            case(
                "expired",
                expect_chain(
                    k.validate(&user, &long_crls, t(366), Role::User),
                    "CERT_EXPIRED",
                ),
            ),
            case(
                "not yet valid",
                expect_chain(
                    k.validate(&user, &crls, UnixTime(T0 + 3600), Role::User),
                    "CERT_NOT_YET_VALID",
                ),
            ),
            case(
                "wrong key usage: node-enc certificate used to sign",
                expect_chain(
                    k.validate(&enc, &crls, now(), Role::NodeSign),
                    "CERT_KEY_USAGE",
                ),
            ),
            case(
                "wrong extended key usage: user certificate as a node",
                expect_chain(
                    k.validate(&user, &crls, now(), Role::NodeSign),
                    "CERT_EXTENDED_KEY_USAGE",
                ),
            ),
            case(
                "wrong role: user certificate as admin",
                expect_chain(
                    k.validate(&user, &crls, now(), Role::Admin),
                    "CERT_WRONG_ROLE",
                ),
            ),
        ];
        // Name chaining: the agency's signature, another issuer's name.
        let mut tpl = k.template(Role::User, "u", &pk)?;
        tpl.issuer = "CN=Agency B CA,OU=agency-ca,O=Agency B,C=CN".into();
        let c = danger::sign_certificate(&tpl, &k.agency_key, &id).map_err(s)?;
        out.push(case(
            "wrong issuer name (name chaining)",
            expect_chain(
                k.validate(&c, &crls, now(), Role::User),
                "CERT_NAME_CHAINING",
            ),
        ));
        // Path length: the agency CA (path length 0) issues a CA, which issues a leaf.
        let sub_key = k.key()?;
        let sub = danger::sign_certificate(
            &k.template(Role::AgencyCa, "Sub CA", &sub_key.public_key())?,
            &k.agency_key,
            &id,
        )
        .map_err(s)?;
        let below = issue(
            &sub,
            &sub_key,
            &IssueRequest {
                role: Role::User,
                common_name: "carol",
                organisation: ORG,
                public_key: &pk,
                serial: k.serial()?,
                validity: v(1, 300),
            },
        )
        .map_err(s)?;
        out.push(case(
            "path length exceeded: agency CA issued a CA",
            expect_chain(
                validate_chain(
                    &below,
                    &[k.agency.clone(), sub],
                    &[TrustAnchor::new(k.root.clone())],
                    &crls,
                    now(),
                    Role::User,
                ),
                "CERT_PATH_LENGTH_EXCEEDED",
            ),
        ));
        out.push(case(
            "issuance refuses a CA below an agency CA",
            expect_pki(
                issue(
                    &k.agency,
                    &k.agency_key,
                    &IssueRequest {
                        role: Role::AgencyCa,
                        common_name: "Sub CA",
                        organisation: ORG,
                        public_key: &sub_key.public_key(),
                        serial: k.serial()?,
                        validity: v(1, 300),
                    },
                ),
                "PKI_PATH_LENGTH",
            ),
        ));
        // Unknown critical extension.
        let mut tpl = k.template(Role::User, "u", &pk)?;
        tpl.extensions.push(RawExtension {
            oid: "1.3.6.1.4.1.99999.1".into(),
            critical: true,
            value_der: vec![0x05, 0x00],
        });
        let c = danger::sign_certificate(&tpl, &k.agency_key, &id).map_err(s)?;
        out.push(case(
            "unknown critical extension",
            expect_chain(
                k.validate(&c, &crls, now(), Role::User),
                "CERT_UNKNOWN_CRITICAL_EXTENSION",
            ),
        ));
        // Non-SM2 signature algorithm.
        let mut tpl = k.template(Role::User, "u", &pk)?;
        tpl.signature_algorithm = "1.2.840.10045.4.3.2".into();
        let c = danger::sign_certificate(&tpl, &k.agency_key, &id).map_err(s)?;
        out.push(case(
            "signature algorithm ecdsa-with-SHA256",
            expect_chain(
                k.validate(&c, &crls, now(), Role::User),
                "CERT_WRONG_ALGORITHM",
            ),
        ));
        // Tampered: one byte of the TBSCertificate, and one of the signature.
        let mut der = user.der().to_vec();
        let at = der
            .windows(3)
            .position(|w| w == b"bob")
            .ok_or("CN not found")?;
        der[at] = b'B';
        let tbs_changed = Certificate::from_der(&der).map_err(s)?;
        out.push(case(
            "tampered TBSCertificate",
            expect_chain(
                k.validate(&tbs_changed, &crls, now(), Role::User),
                "CERT_SIGNATURE_INVALID",
            ),
        ));
        let mut der = user.der().to_vec();
        let n = der.len();
        der[n - 1] ^= 1;
        let sig_changed = Certificate::from_der(&der).map_err(s)?;
        out.push(case(
            "tampered signature",
            expect_chain(
                k.validate(&sig_changed, &crls, now(), Role::User),
                "CERT_SIGNATURE_INVALID",
            ),
        ));
        // A user certificate acting as a CA.
        let mut tpl = k.template(Role::User, "eve", &pk)?;
        tpl.issuer = user.subject();
        let c = danger::sign_certificate(&tpl, &user_key, &id).map_err(s)?;
        out.push(case(
            "issuer is not a CA",
            expect_chain(
                validate_chain(
                    &c,
                    &[k.agency.clone(), user.clone()],
                    &[TrustAnchor::new(k.root.clone())],
                    &crls,
                    now(),
                    Role::User,
                ),
                "CERT_NOT_A_CA",
            ),
        ));
        // Another organisation's leaf under Agency A's CA.
        let mut tpl = k.template(Role::User, "u", &pk)?;
        tpl.subject = "CN=u,OU=user,O=Agency B,C=CN".into();
        let c = danger::sign_certificate(&tpl, &k.agency_key, &id).map_err(s)?;
        out.push(case(
            "agency CA certifying another organisation",
            expect_chain(
                k.validate(&c, &crls, now(), Role::User),
                "CERT_ORGANISATION_MISMATCH",
            ),
        ));
        // No trust anchor.
        out.push(case(
            "no path to a trust anchor",
            expect_chain(
                validate_chain(
                    &user,
                    std::slice::from_ref(&k.agency),
                    &[],
                    &crls,
                    now(),
                    Role::User,
                ),
                "CERT_NO_PATH_TO_ANCHOR",
            ),
        ));
        Ok(out)
    })
}

fn csr_pop() -> Vec<Evidence> {
    with(1505, |k| {
        let key = k.key()?;
        let pem = csr::build("CN=node-7,OU=node,O=Agency A,C=CN", &key).map_err(s)?;
        let mut out = Vec::new();
        let issued = csr::verify(pem.as_bytes()).map_err(s).and_then(|req| {
            ensure(req.public_key == key.public_key(), "request key")?;
            let cn = csr::check_for_issuance(&req, Role::NodeSign, ORG).map_err(s)?;
            let c = issue(
                &k.agency,
                &k.agency_key,
                &IssueRequest {
                    role: Role::NodeSign,
                    common_name: &cn,
                    organisation: ORG,
                    public_key: &req.public_key,
                    serial: k.serial()?,
                    validity: v(1, 365),
                },
            )
            .map_err(s)?;
            ensure(
                c.public_key() == key.public_key() && c.common_name().as_deref() == Some("node-7"),
                "issued certificate",
            )
        });
        out.push(case(
            "valid request: verified, checked, issued with its key",
            issued,
        ));
        let der = csr::verify(pem.as_bytes()).map_err(s)?.der;
        let mut changed = der.clone();
        let at = changed
            .windows(6)
            .position(|w| w == b"node-7")
            .ok_or("CN not found")?;
        changed[at + 5] = b'8';
        out.push(case(
            "altered request info: proof of possession fails",
            expect_pki(csr::verify(&changed), "PKI_SIGNATURE_INVALID"),
        ));
        let mut changed = der.clone();
        let n = changed.len();
        changed[n - 1] ^= 1;
        out.push(case(
            "altered signature",
            expect_pki(csr::verify(&changed), "PKI_SIGNATURE_INVALID"),
        ));
        // The request's key swapped for another: the signature no longer matches it.
        let other = k.key()?;
        let mut swapped = der.clone();
        let old = key.public_key();
        let at = swapped
            .windows(65)
            .position(|w| w == old.as_bytes())
            .ok_or("key not found")?;
        swapped[at..at + 65].copy_from_slice(other.public_key().as_bytes());
        out.push(case(
            "another key in the request",
            expect_pki(csr::verify(&swapped), "PKI_SIGNATURE_INVALID"),
        ));
        let claims = |subject: &str, role: Role| -> Result<String, PkiError> {
            let req = csr::verify(csr::build(subject, &key)?.as_bytes())?;
            csr::check_for_issuance(&req, role, ORG)
        };
        out.push(case(
            "role claimed in the request (OU=admin for user)",
            expect_pki(
                claims("CN=m,OU=admin,O=Agency A", Role::User),
                "PKI_CSR_ROLE_CLAIM",
            ),
        ));
        out.push(case(
            "organisation claimed in the request",
            expect_pki(
                claims("CN=m,O=Agency B", Role::User),
                "PKI_CSR_ORGANISATION_CLAIM",
            ),
        ));
        out.push(case(
            "attributes smuggled in the CN",
            expect_pki(
                claims("CN=m\\,OU\\=admin", Role::User),
                "PKI_BAD_COMMON_NAME",
            ),
        ));
        out.push(case(
            "no CN",
            expect_pki(
                claims("OU=user,O=Agency A", Role::User),
                "PKI_COMMON_NAME_MISSING",
            ),
        ));
        out.push(case(
            "node-enc shares the node OU",
            claims("CN=n,OU=node", Role::NodeEnc).map(|_| ()).map_err(s),
        ));
        Ok(out)
    })
}

fn crl_revocation() -> Vec<Evidence> {
    with(1506, |k| {
        let (_, node) = k.leaf(Role::NodeSign, "node-1")?;
        let entry = RevokedEntry {
            serial: node.serial(),
            revoked_at: t(20),
            reason: RevocationReason::KeyCompromise,
        };
        let mut out = Vec::new();
        let crl = issue_crl(
            &k.agency,
            &k.agency_key,
            5,
            t(0),
            t(60),
            std::slice::from_ref(&entry),
        )
        .map_err(s)?;
        let round = Crl::from_der(crl.der()).map_err(s).and_then(|back| {
            ensure(back.number() == 5, "CRL number")?;
            ensure(back.revoked() == vec![entry.clone()], "entries")?;
            ensure(
                back.this_update() == t(0) && back.next_update() == Some(t(60)),
                "thisUpdate/nextUpdate",
            )?;
            ensure(back.issuer() == k.agency.subject(), "issuer")?;
            ensure(
                count(back.der(), ALG_SM2_WITH_SM3) == 2,
                "SM2-with-SM3 in and outside the TBSCertList",
            )?;
            back.verify_signed_by(&k.agency_key.public_key())
                .map_err(s)?;
            ensure(
                back.verify_signed_by(&k.root_key.public_key()).is_err(),
                "verifies with another key",
            )
        });
        out.push(case(
            "v2 CRL: number, entries, reason, SM2 signature",
            round,
        ));
        let before = k.crls(&[])?;
        out.push(case(
            "not revoked: valid",
            k.validate(&node, &before, now(), Role::NodeSign)
                .map(|_| ())
                .map_err(s),
        ));
        let after = vec![before[0].clone(), before[1].clone(), crl];
        let r = match k.validate(&node, &after, now(), Role::NodeSign) {
            Err(ChainError::Revoked {
                reason: RevocationReason::KeyCompromise,
                at,
                ..
            }) if at == t(20) => Ok(()),
            other => Err(format!("{other:?}")),
        };
        out.push(case(
            "revoked by the next CRL: refused with reason and date",
            r,
        ));
        out.push(case(
            "no CRL: revocation unknown",
            expect_chain(
                k.validate(&node, &[], now(), Role::NodeSign),
                "CERT_REVOCATION_UNKNOWN",
            ),
        ));
        out.push(case(
            "stale CRL (now ≥ nextUpdate): unknown",
            expect_chain(
                k.validate(&node, &before, t(60), Role::NodeSign),
                "CERT_REVOCATION_UNKNOWN",
            ),
        ));
        let impostor = k.key()?;
        let forged = danger::sign_crl(
            &k.agency,
            &impostor,
            9,
            t(0),
            t(60),
            &[],
            &UserId::default(),
        )
        .map_err(s)?;
        out.push(case(
            "CRL signed by another key: unknown",
            expect_chain(
                k.validate(&node, &[before[0].clone(), forged], now(), Role::NodeSign),
                "CERT_REVOCATION_UNKNOWN",
            ),
        ));
        let agency_revoked = vec![
            issue_crl(
                &k.root,
                &k.root_key,
                2,
                t(0),
                t(60),
                &[RevokedEntry {
                    serial: k.agency.serial(),
                    revoked_at: t(25),
                    reason: RevocationReason::CaCompromise,
                }],
            )
            .map_err(s)?,
            before[1].clone(),
        ];
        let r = match k.validate(&node, &agency_revoked, now(), Role::NodeSign) {
            Err(ChainError::Revoked {
                cert,
                reason: RevocationReason::CaCompromise,
                ..
            }) if cert.serial == k.agency.serial() => Ok(()),
            other => Err(format!("{other:?}")),
        };
        out.push(case("revoked agency CA: every leaf below it refused", r));
        out.push(case(
            "only CAs sign CRLs",
            expect_pki(
                issue_crl(&node, &k.key()?, 1, t(0), t(1), &[]),
                "PKI_ISSUER_NOT_CRL_SIGNER",
            ),
        ));
        Ok(out)
    })
}

fn dual_envelope() -> Vec<Evidence> {
    with(1507, |k| {
        let crls = k.crls(&[])?;
        let (sign_key, sign) = k.leaf(Role::NodeSign, "node-1")?;
        // The CA generates the encryption pair, certifies it, and envelopes the private key.
        let enc_key = crypto_sm::sm2::PrivateKey::generate(k.p.rng()).map_err(s)?;
        let enc = issue(
            &k.agency,
            &k.agency_key,
            &IssueRequest {
                role: Role::NodeEnc,
                common_name: "node-1",
                organisation: ORG,
                public_key: &enc_key.public_key(),
                serial: k.serial()?,
                validity: v(1, 365),
            },
        )
        .map_err(s)?;
        let env = envelope::seal(
            &enc_key.to_bytes(),
            &enc_key.public_key(),
            &sign.public_key(),
            k.p.rng(),
        )
        .map_err(s)?;
        let mut out = vec![
            case(
                "node-sign valid for signing",
                k.validate(&sign, &crls, now(), Role::NodeSign)
                    .map(|_| ())
                    .map_err(s),
            ),
            case(
                "node-enc valid for encryption",
                k.validate(&enc, &crls, now(), Role::NodeEnc)
                    .map(|_| ())
                    .map_err(s),
            ),
            case(
                "node-enc refused for signing",
                expect_chain(
                    k.validate(&enc, &crls, now(), Role::NodeSign),
                    "CERT_KEY_USAGE",
                ),
            ),
            case(
                "node-sign refused for encryption",
                expect_chain(
                    k.validate(&sign, &crls, now(), Role::NodeEnc),
                    "CERT_KEY_USAGE",
                ),
            ),
        ];
        let opened = envelope::open(&env, &sign_key).map_err(s).and_then(|key| {
            ensure(
                key.public_key() == enc.public_key(),
                "the opened key is not the node-enc certificate's",
            )?;
            ensure(*key.to_bytes() == *enc_key.to_bytes(), "d differs")
        });
        out.push(case(
            "SM2EnvelopedKey opened by the signing key's holder",
            opened,
        ));
        out.push(case(
            "symAlgID is SM4-ECB (1.2.156.10197.1.104.1) with NULL parameters",
            ensure(
                count(
                    &env,
                    &[
                        0x30, 0x0c, 0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x68, 0x01,
                        0x05, 0x00,
                    ],
                ) == 1,
                "no SM4-ECB AlgorithmIdentifier",
            ),
        ));
        let other = k.key()?;
        out.push(case(
            "another holder cannot open it",
            expect_pki(envelope::open(&env, &other), "PKI_ENVELOPE"),
        ));
        let mut changed = env.clone();
        let n = changed.len();
        changed[n - 1] ^= 1;
        out.push(case(
            "altered encrypted private key refused",
            expect_pki(envelope::open(&changed, &sign_key), "PKI_ENVELOPE"),
        ));
        Ok(out)
    })
}
