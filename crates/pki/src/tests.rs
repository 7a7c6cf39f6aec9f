//! Unit tests over a generated consortium: root → agency CA → every leaf role, with CRLs.
//! Every `ChainError` variant is produced by a crafted case.

use crate::danger::{self, CertTemplate, RawExtension};
use crate::*;
use crypto::{PublicKey, Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use std::sync::Arc;
use x509_cert::ext::pkix::KeyUsages;

const DAY: u64 = 86_400;
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;

fn t(days: u64) -> UnixTime {
    UnixTime(T0 + days * DAY)
}

fn v(from: u64, to: u64) -> Validity {
    Validity {
        not_before: t(from),
        not_after: t(to),
    }
}

pub(crate) struct Pki {
    pub p: SoftwareProvider,
    pub root_key: SoftSigner,
    pub root: Certificate,
    pub agency_key: SoftSigner,
    pub agency: Certificate,
    serial: std::cell::Cell<u8>,
}

impl Pki {
    pub fn new(seed: u64) -> Pki {
        let p = SoftwareProvider::new(Arc::new(SeededRandom::new(seed)));
        let root_key = p.generate().unwrap();
        let root = issue_root(
            "GMChain Root CA",
            "GMChain Consortium",
            Serial::from_hex("01").unwrap(),
            v(0, 3650),
            &root_key,
        )
        .unwrap();
        let agency_key = p.generate().unwrap();
        let agency = issue(
            &root,
            &root_key,
            &IssueRequest {
                role: Role::AgencyCa,
                common_name: "Agency A CA",
                organisation: "Agency A",
                public_key: &agency_key.public_key(),
                serial: Serial::from_hex("02").unwrap(),
                validity: v(0, 1825),
            },
        )
        .unwrap();
        Pki {
            p,
            root_key,
            root,
            agency_key,
            agency,
            serial: std::cell::Cell::new(0x10),
        }
    }

    pub fn serial(&self) -> Serial {
        let s = self.serial.get();
        self.serial.set(s + 1);
        Serial::from_bytes(&[s]).unwrap()
    }

    /// A leaf of `role` from the agency CA, valid from day 1 to day 365.
    pub fn leaf(&self, role: Role, cn: &str) -> (SoftSigner, Certificate) {
        let key = self.p.generate().unwrap();
        let cert = issue(
            &self.agency,
            &self.agency_key,
            &IssueRequest {
                role,
                common_name: cn,
                organisation: "Agency A",
                public_key: &key.public_key(),
                serial: self.serial(),
                validity: v(1, 365),
            },
        )
        .unwrap();
        (key, cert)
    }

    pub fn crls(&self, revoked: &[RevokedEntry]) -> Vec<Crl> {
        vec![
            issue_crl(&self.root, &self.root_key, 1, t(0), t(60), &[]).unwrap(),
            issue_crl(&self.agency, &self.agency_key, 7, t(0), t(60), revoked).unwrap(),
        ]
    }

    pub fn anchors(&self) -> Vec<TrustAnchor> {
        vec![TrustAnchor::new(self.root.clone())]
    }

    pub fn validate(
        &self,
        leaf: &Certificate,
        crls: &[Crl],
        now: UnixTime,
        role: Role,
    ) -> Result<ValidatedChain, ChainError> {
        validate_chain(
            leaf,
            std::slice::from_ref(&self.agency),
            &self.anchors(),
            crls,
            now,
            role,
        )
    }
}

fn now() -> UnixTime {
    t(30)
}

#[test]
fn profiles_per_role() {
    let pki = Pki::new(1);
    assert_eq!(pki.root.role(), Some(Role::RootCa));
    assert!(pki.root.is_ca() && pki.root.is_self_issued());
    assert_eq!(pki.root.path_len(), Some(1));
    assert_eq!(
        pki.root.subject(),
        "CN=GMChain Root CA,OU=root-ca,O=GMChain Consortium,C=CN"
    );
    assert!(pki.root.authority_key_id().is_none());
    assert_eq!(
        pki.root.subject_key_id(),
        Some(&key_identifier(&pki.root_key.public_key())[..])
    );
    pki.root
        .verify_signed_by(&pki.root_key.public_key(), &UserId::default())
        .unwrap();
    assert_eq!(pki.agency.role(), Some(Role::AgencyCa));
    assert_eq!(pki.agency.path_len(), Some(0));
    assert_eq!(pki.agency.organisation().as_deref(), Some("Agency A"));
    assert_eq!(pki.agency.authority_key_id(), pki.root.subject_key_id());
    assert_eq!(pki.agency.issuer(), pki.root.subject());
    for role in [
        Role::NodeSign,
        Role::NodeEnc,
        Role::Admin,
        Role::User,
        Role::Auditor,
        Role::UserEnc,
        Role::AdminEnc,
        Role::AuditorEnc,
    ] {
        let (key, c) = pki.leaf(role, "leaf-1");
        assert_eq!(c.role(), Some(role), "{role}");
        assert!(!c.is_ca());
        assert_eq!(c.public_key(), key.public_key());
        assert_eq!(c.common_name().as_deref(), Some("leaf-1"));
        assert_eq!(c.organizational_unit().as_deref(), Some(role.ou()));
        assert_eq!(c.authority_key_id(), pki.agency.subject_key_id());
        assert_eq!(c.signature_algorithm(), "1.2.156.10197.1.501");
        assert_eq!(c.validity(), v(1, 365));
        c.verify_signed_by(&pki.agency_key.public_key(), &UserId::default())
            .unwrap();
        assert!(
            c.verify_signed_by(&pki.root_key.public_key(), &UserId::default())
                .is_err()
        );
        let back = Certificate::from_pem(c.to_pem().as_bytes()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.fingerprint(), crypto_sm::sm3::sm3(c.der()));
        pki.validate(&c, &pki.crls(&[]), now(), role).unwrap();
    }
}

#[test]
fn valid_chain_reports_the_anchor_organisation() {
    let pki = Pki::new(2);
    let (_, user) = pki.leaf(Role::User, "alice");
    let ok = pki
        .validate(&user, &pki.crls(&[]), now(), Role::User)
        .unwrap();
    assert_eq!(ok.organisation(), "GMChain Consortium");
    assert_eq!(ok.role(), Role::User);
    assert_eq!(ok.path().len(), 3);
    assert_eq!(ok.leaf(), &user);
    // The agency CA registered as the organisation's anchor: the identity is Agency A's.
    let ok = validate_chain(
        &user,
        &[],
        &[TrustAnchor::new(pki.agency.clone())],
        &pki.crls(&[]),
        now(),
        Role::User,
    )
    .unwrap();
    assert_eq!(ok.organisation(), "Agency A");
    assert_eq!(ok.path().len(), 2);
    // The agency CA itself, validated as a CA.
    pki.validate(&pki.agency, &pki.crls(&[]), now(), Role::AgencyCa)
        .unwrap();
}

#[test]
fn expired_and_not_yet_valid() {
    let pki = Pki::new(3);
    let (_, c) = pki.leaf(Role::User, "u");
    let crls = vec![
        issue_crl(&pki.root, &pki.root_key, 1, t(0), t(3000), &[]).unwrap(),
        issue_crl(&pki.agency, &pki.agency_key, 1, t(0), t(3000), &[]).unwrap(),
    ];
    let e = pki.validate(&c, &crls, t(366), Role::User).unwrap_err();
    assert!(matches!(e, ChainError::Expired { .. }), "{e}");
    assert_eq!(e.code(), "CERT_EXPIRED");
    let e = pki
        .validate(&c, &crls, UnixTime(T0 + 3600), Role::User)
        .unwrap_err();
    assert!(matches!(e, ChainError::NotYetValid { .. }), "{e}");
    // The last second is still valid (RFC 5280: inclusive).
    pki.validate(&c, &crls, t(365), Role::User).unwrap();
    // An expired CA above a valid leaf.
    let e = pki.validate(&c, &crls, t(1826), Role::User).unwrap_err();
    assert!(
        matches!(&e, ChainError::Expired { cert, .. } if cert.subject.contains("Agency A CA")),
        "{e}"
    );
}

#[test]
fn revoked_and_revocation_unknown() {
    let pki = Pki::new(4);
    let (_, c) = pki.leaf(Role::NodeSign, "node-1");
    let entry = RevokedEntry {
        serial: c.serial(),
        revoked_at: t(20),
        reason: RevocationReason::KeyCompromise,
    };
    let e = pki
        .validate(
            &c,
            &pki.crls(std::slice::from_ref(&entry)),
            now(),
            Role::NodeSign,
        )
        .unwrap_err();
    assert_eq!(
        e,
        ChainError::Revoked {
            cert: CertRef {
                subject: c.subject(),
                serial: c.serial()
            },
            reason: RevocationReason::KeyCompromise,
            at: t(20)
        }
    );
    assert_eq!(e.code(), "CERT_REVOKED");
    // No CRL at all.
    let e = pki.validate(&c, &[], now(), Role::NodeSign).unwrap_err();
    assert!(
        matches!(
            &e,
            ChainError::RevocationUnknown {
                problem: CrlProblem::Missing,
                ..
            }
        ),
        "{e}"
    );
    // Only the root's CRL: the leaf's status is unknown.
    let e = pki
        .validate(&c, &pki.crls(&[])[..1], now(), Role::NodeSign)
        .unwrap_err();
    assert!(
        matches!(&e, ChainError::RevocationUnknown { cert, problem: CrlProblem::Missing } if cert.serial == c.serial()),
        "{e}"
    );
    // Stale: now is past nextUpdate (and at nextUpdate exactly, which is already stale).
    for at in [t(61), t(60)] {
        let e = pki
            .validate(&c, &pki.crls(&[]), at, Role::NodeSign)
            .unwrap_err();
        assert!(
            matches!(
                &e,
                ChainError::RevocationUnknown {
                    problem: CrlProblem::NotCurrent { .. },
                    ..
                }
            ),
            "{e}"
        );
    }
    // A CRL issued in the future is not current either.
    let future = vec![
        issue_crl(&pki.root, &pki.root_key, 1, t(0), t(60), &[]).unwrap(),
        issue_crl(&pki.agency, &pki.agency_key, 1, t(40), t(60), &[]).unwrap(),
    ];
    assert!(matches!(
        pki.validate(&c, &future, now(), Role::NodeSign),
        Err(ChainError::RevocationUnknown { .. })
    ));
    // A CRL naming the agency, signed by another key: it cannot clear the leaf.
    let impostor = pki.p.generate().unwrap();
    let forged = danger::sign_crl(
        &pki.agency,
        &impostor,
        9,
        t(0),
        t(60),
        &[],
        &UserId::default(),
    )
    .unwrap();
    let crls = vec![pki.crls(&[])[0].clone(), forged];
    let e = pki.validate(&c, &crls, now(), Role::NodeSign).unwrap_err();
    assert!(
        matches!(
            &e,
            ChainError::RevocationUnknown {
                problem: CrlProblem::SignatureInvalid,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.code(), "CERT_REVOCATION_UNKNOWN");
    // A forged, newer, empty CRL beside the real one listing the leaf does not hide it.
    let mut crls = pki.crls(std::slice::from_ref(&entry));
    crls.push(
        danger::sign_crl(
            &pki.agency,
            &impostor,
            99,
            t(0),
            t(60),
            &[],
            &UserId::default(),
        )
        .unwrap(),
    );
    assert!(matches!(
        pki.validate(&c, &crls, now(), Role::NodeSign),
        Err(ChainError::Revoked { .. })
    ));
    // The newest current CRL decides: a later CRL without the entry (un-hold) wins.
    let hold = RevokedEntry {
        reason: RevocationReason::CertificateHold,
        ..entry.clone()
    };
    let mut crls = pki.crls(&[hold]);
    crls.push(issue_crl(&pki.agency, &pki.agency_key, 8, t(25), t(60), &[]).unwrap());
    pki.validate(&c, &crls, now(), Role::NodeSign).unwrap();
}

#[test]
fn encryption_roles_pair_with_signing_roles_and_never_sign() {
    let pki = Pki::new(6);
    let crls = pki.crls(&[]);
    let pairs = [
        (Role::NodeSign, Role::NodeEnc),
        (Role::User, Role::UserEnc),
        (Role::Admin, Role::AdminEnc),
        (Role::Auditor, Role::AuditorEnc),
    ];
    for (sign, enc) in pairs {
        assert_eq!(sign.encryption_pair(), Some(enc));
        assert_eq!(enc.encryption_pair(), None);
        assert_eq!(sign.ou(), enc.ou(), "a dual pair shares its OU");
        assert!(enc.is_encryption() && !sign.is_encryption());
        assert_eq!(enc.as_str().parse::<Role>().unwrap(), enc);
        let (_, e) = pki.leaf(enc, "alice");
        assert_eq!(e.role(), Some(enc));
        let ku = e.key_usage().unwrap();
        assert!(!ku.contains(KeyUsages::DigitalSignature), "{enc}");
        assert!(ku.contains(
            KeyUsages::KeyEncipherment | KeyUsages::DataEncipherment | KeyUsages::KeyAgreement
        ));
        // Validated as its pair's signing role, the encryption certificate is refused on
        // key usage: it can never pass as a signer.
        let err = pki.validate(&e, &crls, now(), sign).unwrap_err();
        assert!(
            matches!(
                err,
                ChainError::KeyUsage {
                    required: "digitalSignature",
                    ..
                }
            ),
            "{enc} as {sign}: {err}"
        );
        pki.validate(&e, &crls, now(), enc).unwrap();
        let (_, s) = pki.leaf(sign, "alice");
        assert!(
            pki.validate(&s, &crls, now(), enc).is_err(),
            "{sign} as {enc}"
        );
    }
    for r in [Role::RootCa, Role::AgencyCa] {
        assert_eq!(r.encryption_pair(), None);
    }
    // A person's encryption certificate carries no TLS extended key usage at all.
    let (_, e) = pki.leaf(Role::UserEnc, "alice");
    assert!(e.extended_key_usage().unwrap_or(&[]).is_empty());
}

#[test]
fn key_usage_extended_key_usage_and_role() {
    let pki = Pki::new(5);
    let crls = pki.crls(&[]);
    let (_, enc) = pki.leaf(Role::NodeEnc, "node-1");
    let (_, user) = pki.leaf(Role::User, "bob");
    let (_, sign) = pki.leaf(Role::NodeSign, "node-1");
    let e = pki
        .validate(&enc, &crls, now(), Role::NodeSign)
        .unwrap_err();
    assert!(
        matches!(
            e,
            ChainError::KeyUsage {
                required: "digitalSignature",
                ..
            }
        ),
        "{e}"
    );
    let e = pki
        .validate(&sign, &crls, now(), Role::NodeEnc)
        .unwrap_err();
    assert!(matches!(e, ChainError::KeyUsage { .. }), "{e}");
    let e = pki
        .validate(&user, &crls, now(), Role::NodeSign)
        .unwrap_err();
    assert!(
        matches!(
            e,
            ChainError::ExtendedKeyUsage {
                required: "serverAuth and clientAuth",
                ..
            }
        ),
        "{e}"
    );
    let e = pki.validate(&user, &crls, now(), Role::Admin).unwrap_err();
    assert!(
        matches!(
            e,
            ChainError::WrongRole {
                expected: Role::Admin,
                found: Some(Role::User),
                ..
            }
        ),
        "{e}"
    );
    let e = pki
        .validate(&user, &crls, now(), Role::AgencyCa)
        .unwrap_err();
    assert!(
        matches!(
            e,
            ChainError::KeyUsage {
                required: "keyCertSign",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.code(), "CERT_KEY_USAGE");
}

fn template(pki: &Pki, role: Role, cn: &str, key: &PublicKey) -> CertTemplate {
    CertTemplate::from_profile(
        role,
        "Agency A",
        cn,
        key,
        Some(&pki.agency),
        pki.serial(),
        v(1, 365),
    )
    .unwrap()
}

#[test]
fn crafted_certificates() {
    let pki = Pki::new(6);
    let crls = pki.crls(&[]);
    let key = pki.p.generate().unwrap();
    let id = UserId::default();
    // The template alone, signed by the agency, validates: the crafts below differ by one thing.
    let good = danger::sign_certificate(
        &template(&pki, Role::User, "u", &key.public_key()),
        &pki.agency_key,
        &id,
    )
    .unwrap();
    pki.validate(&good, &crls, now(), Role::User).unwrap();

    // Unknown critical extension.
    let mut tpl = template(&pki, Role::User, "u", &key.public_key());
    tpl.extensions.push(RawExtension {
        oid: "1.3.6.1.4.1.99999.1".into(),
        critical: true,
        value_der: vec![0x05, 0x00],
    });
    let c = danger::sign_certificate(&tpl, &pki.agency_key, &id).unwrap();
    let e = pki.validate(&c, &crls, now(), Role::User).unwrap_err();
    assert_eq!(
        e,
        ChainError::UnknownCriticalExtension {
            cert: CertRef {
                subject: c.subject(),
                serial: c.serial()
            },
            oid: "1.3.6.1.4.1.99999.1".into()
        }
    );
    // The same extension non-critical is ignored.
    tpl.extensions.last_mut().unwrap().critical = false;
    let c = danger::sign_certificate(&tpl, &pki.agency_key, &id).unwrap();
    pki.validate(&c, &crls, now(), Role::User).unwrap();

    // A non-SM2 signature algorithm (ecdsa-with-SHA256), even over a valid SM2 signature.
    let mut tpl = template(&pki, Role::User, "u", &key.public_key());
    tpl.signature_algorithm = "1.2.840.10045.4.3.2".into();
    let c = danger::sign_certificate(&tpl, &pki.agency_key, &id).unwrap();
    let e = pki.validate(&c, &crls, now(), Role::User).unwrap_err();
    assert!(
        matches!(&e, ChainError::WrongAlgorithm { oid, .. } if oid == "1.2.840.10045.4.3.2"),
        "{e}"
    );
    assert!(matches!(
        c.verify_signed_by(&pki.agency_key.public_key(), &id),
        Err(PkiError::WrongAlgorithm { .. })
    ));

    // Name chaining: signed by the agency, but naming another issuer.
    let mut tpl = template(&pki, Role::User, "u", &key.public_key());
    tpl.issuer = "CN=Agency B CA,OU=agency-ca,O=Agency B,C=CN".into();
    let c = danger::sign_certificate(&tpl, &pki.agency_key, &id).unwrap();
    let e = pki.validate(&c, &crls, now(), Role::User).unwrap_err();
    assert!(
        matches!(&e, ChainError::NameChaining { signer, .. } if signer.subject == pki.agency.subject()),
        "{e}"
    );
    // … and with no CA that signed it either: no path.
    let stranger = pki.p.generate().unwrap();
    let c = danger::sign_certificate(&tpl, &stranger, &id).unwrap();
    let e = pki.validate(&c, &crls, now(), Role::User).unwrap_err();
    assert!(matches!(e, ChainError::NoPathToAnchor { .. }), "{e}");
    assert_eq!(e.code(), "CERT_NO_PATH_TO_ANCHOR");

    // Right name, wrong key: the signature does not verify.
    let c = danger::sign_certificate(
        &template(&pki, Role::User, "u", &key.public_key()),
        &stranger,
        &id,
    )
    .unwrap();
    let e = pki.validate(&c, &crls, now(), Role::User).unwrap_err();
    assert!(matches!(e, ChainError::SignatureInvalid { .. }), "{e}");

    // An agency CA certificate naming another organisation's leaf.
    let mut tpl = template(&pki, Role::User, "u", &key.public_key());
    tpl.subject = "CN=u,OU=user,O=Agency B,C=CN".into();
    let c = danger::sign_certificate(&tpl, &pki.agency_key, &id).unwrap();
    let e = pki.validate(&c, &crls, now(), Role::User).unwrap_err();
    assert!(matches!(e, ChainError::OrganisationMismatch { .. }), "{e}");
}

#[test]
fn tampered_signature_and_tbs() {
    let pki = Pki::new(7);
    let crls = pki.crls(&[]);
    let (_, c) = pki.leaf(Role::User, "carol");
    // One letter of the CN: the structure parses, the signature does not verify.
    let mut der = c.der().to_vec();
    let at = der.windows(5).position(|w| w == b"carol").unwrap();
    der[at] = b'k';
    let t1 = Certificate::from_der(&der).unwrap();
    let e = pki.validate(&t1, &crls, now(), Role::User).unwrap_err();
    assert!(matches!(e, ChainError::SignatureInvalid { .. }), "{e}");
    assert_eq!(e.code(), "CERT_SIGNATURE_INVALID");
    // The last byte of s.
    let mut der = c.der().to_vec();
    let n = der.len();
    der[n - 1] ^= 1;
    let t2 = Certificate::from_der(&der).unwrap();
    assert!(matches!(
        pki.validate(&t2, &crls, now(), Role::User),
        Err(ChainError::SignatureInvalid { .. })
    ));
    // A tampered CRL is refused at parse or at verification; validation never trusts it.
    let mut crl_der = crls[1].der().to_vec();
    let n = crl_der.len();
    crl_der[n - 1] ^= 1;
    let bad = Crl::from_der(&crl_der).unwrap();
    assert!(bad.verify_signed_by(&pki.agency_key.public_key()).is_err());
    let e = pki
        .validate(&c, &[crls[0].clone(), bad], now(), Role::User)
        .unwrap_err();
    assert!(matches!(e, ChainError::RevocationUnknown { .. }), "{e}");
}

#[test]
fn not_a_ca_and_path_length() {
    let pki = Pki::new(8);
    let id = UserId::default();
    let (user_key, user) = pki.leaf(Role::User, "dave");
    // A user certificate "issuing" another.
    let k2 = pki.p.generate().unwrap();
    let mut tpl = template(&pki, Role::User, "eve", &k2.public_key());
    tpl.issuer = user.subject();
    let c = danger::sign_certificate(&tpl, &user_key, &id).unwrap();
    let e = validate_chain(
        &c,
        &[pki.agency.clone(), user.clone()],
        &pki.anchors(),
        &pki.crls(&[]),
        now(),
        Role::User,
    )
    .unwrap_err();
    assert!(
        matches!(&e, ChainError::NotACa { cert } if cert.serial == user.serial()),
        "{e}"
    );
    // issue() itself refuses a non-CA issuer.
    assert!(matches!(
        issue(
            &user,
            &user_key,
            &IssueRequest {
                role: Role::User,
                common_name: "eve",
                organisation: "Agency A",
                public_key: &k2.public_key(),
                serial: pki.serial(),
                validity: v(1, 300),
            }
        ),
        Err(PkiError::IssuerNotCa { .. })
    ));

    // An agency CA issuing a CA (path length 0), which then issues a leaf.
    let sub_key = pki.p.generate().unwrap();
    let sub = danger::sign_certificate(
        &template(&pki, Role::AgencyCa, "Sub CA", &sub_key.public_key()),
        &pki.agency_key,
        &id,
    )
    .unwrap();
    let leaf_key = pki.p.generate().unwrap();
    let leaf = issue(
        &sub,
        &sub_key,
        &IssueRequest {
            role: Role::User,
            common_name: "frank",
            organisation: "Agency A",
            public_key: &leaf_key.public_key(),
            serial: pki.serial(),
            validity: v(1, 300),
        },
    )
    .unwrap();
    let e = validate_chain(
        &leaf,
        &[pki.agency.clone(), sub.clone()],
        &pki.anchors(),
        &pki.crls(&[]),
        now(),
        Role::User,
    )
    .unwrap_err();
    assert!(
        matches!(&e, ChainError::PathLengthExceeded { cert, path_len: 0, below: 1 } if cert.subject == pki.agency.subject()),
        "{e}"
    );
    assert_eq!(e.code(), "CERT_PATH_LENGTH_EXCEEDED");
    // issue() refuses it in the first place.
    assert!(matches!(
        issue(
            &pki.agency,
            &pki.agency_key,
            &IssueRequest {
                role: Role::AgencyCa,
                common_name: "Sub CA",
                organisation: "Agency A",
                public_key: &sub_key.public_key(),
                serial: pki.serial(),
                validity: v(1, 300),
            }
        ),
        Err(PkiError::PathLength { .. })
    ));
}

#[test]
fn path_too_long_and_anchor_without_organisation() {
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(9)));
    let id = UserId::default();
    // root → c1 → … → c6 → leaf, each CA without path length limit.
    let root_key = p.generate().unwrap();
    let mut tpl = CertTemplate::from_profile(
        Role::RootCa,
        "Org",
        "R",
        &root_key.public_key(),
        None,
        Serial::from_hex("1").unwrap(),
        v(0, 100),
    )
    .unwrap();
    tpl.extensions[0].value_der = vec![0x30, 0x03, 0x01, 0x01, 0xff]; // CA, no pathLen
    let root = danger::sign_certificate(&tpl, &root_key, &id).unwrap();
    let mut chain = vec![];
    let (mut issuer, mut issuer_key) = (root.clone(), root_key);
    for i in 0..7 {
        let k = p.generate().unwrap();
        let mut tpl = CertTemplate::from_profile(
            Role::AgencyCa,
            "Org",
            &format!("C{i}"),
            &k.public_key(),
            Some(&issuer),
            Serial::from_bytes(&[i + 2]).unwrap(),
            v(0, 100),
        )
        .unwrap();
        tpl.extensions[0].value_der = vec![0x30, 0x03, 0x01, 0x01, 0xff];
        let c = danger::sign_certificate(&tpl, &issuer_key, &id).unwrap();
        chain.push(c.clone());
        issuer = c;
        issuer_key = k;
    }
    let e = validate_chain(
        &issuer,
        &chain,
        &[TrustAnchor::new(root)],
        &[],
        t(1),
        Role::AgencyCa,
    )
    .unwrap_err();
    assert!(matches!(e, ChainError::PathTooLong { .. }), "{e}");

    // An anchor without O cannot say whose identity this is.
    let k = p.generate().unwrap();
    let mut tpl = CertTemplate::from_profile(
        Role::RootCa,
        "x",
        "No Org Root",
        &k.public_key(),
        None,
        Serial::from_hex("1").unwrap(),
        v(0, 100),
    )
    .unwrap();
    tpl.subject = "CN=No Org Root,OU=root-ca,C=CN".into();
    tpl.issuer = tpl.subject.clone();
    let anchor = danger::sign_certificate(&tpl, &k, &id).unwrap();
    let lk = p.generate().unwrap();
    let leaf = issue(
        &anchor,
        &k,
        &IssueRequest {
            role: Role::User,
            common_name: "u",
            organisation: "Org",
            public_key: &lk.public_key(),
            serial: Serial::from_hex("9").unwrap(),
            validity: v(1, 50),
        },
    )
    .unwrap();
    let crl = issue_crl(&anchor, &k, 1, t(0), t(30), &[]).unwrap();
    let e = validate_chain(
        &leaf,
        &[],
        &[TrustAnchor::new(anchor)],
        &[crl],
        t(2),
        Role::User,
    )
    .unwrap_err();
    assert!(matches!(e, ChainError::AnchorUnusable { .. }), "{e}");
}

#[test]
fn anchor_user_id_and_null_parameters() {
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(10)));
    let empty = UserId::new(Vec::new()).unwrap();
    let rk = p.generate().unwrap();
    let root = danger::sign_certificate(
        &CertTemplate::from_profile(
            Role::RootCa,
            "Org",
            "Root",
            &rk.public_key(),
            None,
            Serial::from_hex("1").unwrap(),
            v(0, 100),
        )
        .unwrap(),
        &rk,
        &empty,
    )
    .unwrap();
    let lk = p.generate().unwrap();
    let leaf = danger::sign_certificate(
        &CertTemplate::from_profile(
            Role::User,
            "Org",
            "u",
            &lk.public_key(),
            Some(&root),
            Serial::from_hex("2").unwrap(),
            v(0, 100),
        )
        .unwrap(),
        &rk,
        &empty,
    )
    .unwrap();
    let crl = danger::sign_crl(&root, &rk, 1, t(0), t(30), &[], &empty).unwrap();
    let crls = [crl];
    // Signed with the empty ID: refused under the default, accepted when the anchor says so.
    let e = validate_chain(
        &leaf,
        &[],
        &[TrustAnchor::new(root.clone())],
        &crls,
        t(1),
        Role::User,
    )
    .unwrap_err();
    assert!(matches!(e, ChainError::SignatureInvalid { .. }), "{e}");
    validate_chain(
        &leaf,
        &[],
        &[TrustAnchor {
            cert: root.clone(),
            user_id: empty,
        }],
        &crls,
        t(1),
        Role::User,
    )
    .unwrap();

    // SM2-with-SM3 with NULL parameters is accepted.
    let pki = Pki::new(11);
    let k = pki.p.generate().unwrap();
    let c = cert::sign_certificate(
        cert::TbsFields {
            serial: &pki.serial(),
            issuer: pki.agency.subject_name().clone(),
            subject: crate::name::NameBuilder::profile("Agency A", "user", "n").unwrap(),
            validity: v(1, 365),
            public_key: &k.public_key(),
            extensions: cert::profile_extensions(
                Role::User,
                &k.public_key(),
                pki.agency.subject_key_id().map(<[u8]>::to_vec),
            )
            .unwrap(),
            signature_algorithm: cert::sm2_with_sm3_null().unwrap(),
        },
        &pki.agency_key,
        &UserId::default(),
    )
    .unwrap();
    assert!(c.der().windows(12).any(|w| w
        == [
            0x30, 0x0c, 0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x75
        ]));
    pki.validate(&c, &pki.crls(&[]), now(), Role::User).unwrap();
}

#[test]
fn issue_refusals() {
    let pki = Pki::new(12);
    let k = pki.p.generate().unwrap();
    let pk = k.public_key();
    let req = |role, cn, org, validity| IssueRequest {
        role,
        common_name: cn,
        organisation: org,
        public_key: &pk,
        serial: Serial::from_hex("77").unwrap(),
        validity,
    };
    let go = |r: &IssueRequest<'_>| issue(&pki.agency, &pki.agency_key, r);
    assert!(go(&req(Role::User, "ok", "Agency A", v(1, 300))).is_ok());
    assert!(matches!(
        go(&req(Role::User, "ok", "Agency B", v(1, 300))),
        Err(PkiError::OrganisationMismatch { .. })
    ));
    assert!(matches!(
        go(&req(Role::User, "ok", "Agency A", v(1, 4000))),
        Err(PkiError::ValidityOutsideIssuer { .. })
    ));
    assert!(matches!(
        go(&req(Role::User, "ok", "Agency A", v(300, 1))),
        Err(PkiError::BadValidity { .. })
    ));
    for cn in ["", "a,OU=admin", "x+O=Agency B", "bad\u{7}"] {
        assert!(
            matches!(
                go(&req(Role::User, cn, "Agency A", v(1, 300))),
                Err(PkiError::BadCommonName { .. })
            ),
            "{cn:?}"
        );
    }
    assert!(matches!(
        go(&req(Role::RootCa, "ok", "Agency A", v(1, 300))),
        Err(PkiError::RoleNotIssuable { .. })
    ));
    // The signer must hold the issuer certificate's key.
    assert!(matches!(
        issue(
            &pki.agency,
            &pki.root_key,
            &req(Role::User, "ok", "Agency A", v(1, 300))
        ),
        Err(PkiError::IssuerKeyMismatch { .. })
    ));
    // The CA's own key as a subject key.
    let own = pki.agency_key.public_key();
    assert!(matches!(
        go(&IssueRequest {
            public_key: &own,
            ..req(Role::User, "ok", "Agency A", v(1, 300))
        }),
        Err(PkiError::KeyReuse)
    ));
    // A point off the curve.
    let mut bad = *pk.as_bytes();
    bad[64] ^= 1;
    let bad = PublicKey::from_uncompressed(&bad).unwrap();
    assert!(matches!(
        go(&IssueRequest {
            public_key: &bad,
            ..req(Role::User, "ok", "Agency A", v(1, 300))
        }),
        Err(PkiError::NotSm2Key { .. })
    ));
    // The root issues for any organisation, but not CAs below CAs below it (it would need pathLen 2).
    assert!(
        issue(
            &pki.root,
            &pki.root_key,
            &req(Role::AgencyCa, "B CA", "Agency B", v(1, 300))
        )
        .is_ok()
    );
}

#[test]
fn csr_claims() {
    let pki = Pki::new(13);
    let k = pki.p.generate().unwrap();
    let check = |subject: &str, role, org| {
        let pem = csr::build(subject, &k).unwrap();
        let v = csr::verify(pem.as_bytes()).unwrap();
        csr::check_for_issuance(&v, role, org)
    };
    assert_eq!(
        check(
            "CN=node-1,OU=node,O=Agency A,C=CN",
            Role::NodeEnc,
            "Agency A"
        )
        .unwrap(),
        "node-1"
    );
    assert_eq!(
        check("CN=node-1", Role::NodeSign, "Agency A").unwrap(),
        "node-1"
    );
    assert_eq!(check("CN=u,OU=user", Role::User, "Agency A").unwrap(), "u");
    assert!(matches!(
        check("CN=mallory,OU=admin,O=Agency A", Role::User, "Agency A"),
        Err(PkiError::RoleClaimMismatch {
            requested: Role::User,
            ..
        })
    ));
    assert!(matches!(
        check("CN=mallory,OU=auditor", Role::User, "Agency A"),
        Err(PkiError::RoleClaimMismatch { .. })
    ));
    assert!(matches!(
        check("CN=mallory,O=Agency B", Role::User, "Agency A"),
        Err(PkiError::OrganisationClaimMismatch { .. })
    ));
    assert!(matches!(
        check("OU=user,O=Agency A", Role::User, "Agency A"),
        Err(PkiError::CommonNameMissing)
    ));
    assert!(matches!(
        check("CN=a+CN=b", Role::User, "Agency A"),
        Err(PkiError::BadCommonName { .. })
    ));
    assert!(matches!(
        check("CN=a\\,OU\\=admin", Role::User, "Agency A"),
        Err(PkiError::BadCommonName { .. })
    ));
    let pem = csr::build("CN=alice,OU=user", &k).unwrap();
    let v = csr::verify(pem.as_bytes()).unwrap();
    assert_eq!(v.common_name().as_deref(), Some("alice"));
    // Proof of possession: a request whose info was altered does not verify.
    let mut der = v.der.clone();
    let at = der.windows(5).position(|w| w == b"alice").unwrap();
    der[at] = b'A';
    assert!(matches!(
        csr::verify(&der),
        Err(PkiError::SignatureInvalid { .. })
    ));
}

#[test]
fn serials() {
    let rng = SeededRandom::new(14);
    for _ in 0..64 {
        let s = Serial::random(&rng).unwrap();
        assert!(s.as_bytes().len() <= 16 && !s.as_bytes().is_empty());
        assert!(s.as_bytes().len() < 16 || s.as_bytes()[0] & 0x80 == 0);
        assert_eq!(Serial::from_hex(&s.to_hex()).unwrap(), s);
        assert_eq!(s.to_string(), s.to_hex());
    }
    assert_eq!(Serial::from_hex("0x00ff").unwrap().to_hex(), "ff");
    assert_eq!(Serial::from_hex("abc").unwrap().to_hex(), "0abc");
    assert!(Serial::from_hex("0").is_err());
    assert!(Serial::from_hex("zz").is_err());
    assert!(Serial::from_bytes(&[0x7f; 20]).is_ok());
    assert!(Serial::from_bytes(&[0x80; 20]).is_err()); // 21 octets as DER INTEGER
    assert!(Serial::from_bytes(&[1; 21]).is_err());
}

#[test]
fn crl_round_trip_and_refusals() {
    let pki = Pki::new(15);
    let entries: Vec<RevokedEntry> = RevocationReason::ALL
        .iter()
        .enumerate()
        .map(|(i, r)| RevokedEntry {
            serial: Serial::from_bytes(&[0x80, i as u8 + 1]).unwrap(),
            revoked_at: t(i as u64),
            reason: *r,
        })
        .collect();
    let crl = issue_crl(&pki.agency, &pki.agency_key, 42, t(10), t(17), &entries).unwrap();
    assert_eq!(crl.number(), 42);
    assert_eq!(crl.this_update(), t(10));
    assert_eq!(crl.next_update(), Some(t(17)));
    assert_eq!(crl.revoked(), entries);
    assert_eq!(crl.issuer(), pki.agency.subject());
    assert_eq!(crl.authority_key_id(), pki.agency.subject_key_id());
    crl.verify_signed_by(&pki.agency_key.public_key()).unwrap();
    assert!(crl.verify_signed_by(&pki.root_key.public_key()).is_err());
    let back = Crl::from_pem(crl.to_pem().as_bytes()).unwrap();
    assert_eq!(back, crl);
    let empty = issue_crl(&pki.root, &pki.root_key, 1, t(0), t(1), &[]).unwrap();
    assert!(empty.revoked().is_empty());
    assert!(matches!(
        issue_crl(&pki.agency, &pki.agency_key, 1, t(2), t(1), &[]),
        Err(PkiError::BadCrl { .. })
    ));
    let dup = [entries[0].clone(), entries[0].clone()];
    assert!(matches!(
        issue_crl(&pki.agency, &pki.agency_key, 1, t(0), t(1), &dup),
        Err(PkiError::BadCrl { .. })
    ));
    let (uk, user) = pki.leaf(Role::User, "u");
    assert!(matches!(
        issue_crl(&user, &uk, 1, t(0), t(1), &[]),
        Err(PkiError::IssuerNotCrlSigner { .. })
    ));
    assert!(matches!(
        issue_crl(&pki.agency, &pki.root_key, 1, t(0), t(1), &[]),
        Err(PkiError::IssuerKeyMismatch { .. })
    ));
    for (s, r) in [
        ("key-compromise", RevocationReason::KeyCompromise),
        (
            "cessation-of-operation",
            RevocationReason::CessationOfOperation,
        ),
    ] {
        assert_eq!(s.parse::<RevocationReason>().unwrap(), r);
        assert_eq!(r.to_string(), s);
    }
    assert!("keyCompromise".parse::<RevocationReason>().is_err());
}

#[test]
fn parse_refusals() {
    let pki = Pki::new(16);
    let der = pki.root.der().to_vec();
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(Certificate::from_der(&trailing).is_err());
    assert!(Certificate::from_der(&der[..der.len() - 1]).is_err());
    assert!(Certificate::from_der(b"").is_err());
    assert!(Certificate::from_pem(b"-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n").is_err());
    // Non-minimal length: 0x30 0x82 … where 0x81 would do is not DER.
    let mut long = vec![0x30, 0x83, 0x00];
    long.extend_from_slice(&der[2..]);
    assert!(Certificate::from_der(&long).is_err());
    assert!(Crl::from_der(&der).is_err());
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
    }
    assert!(matches!(
        "root".parse::<Role>(),
        Err(PkiError::UnknownRole(_))
    ));
}

#[test]
fn envelope_round_trip_and_refusals() {
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(17)));
    let holder = p.generate().unwrap();
    let other = p.generate().unwrap();
    let enc = crypto_sm::sm2::PrivateKey::generate(p.rng()).unwrap();
    let d = enc.to_bytes();
    let der = envelope::seal(
        &d,
        &enc.public_key(),
        &crypto::Decrypter::public_key(&holder),
        p.rng(),
    )
    .unwrap();
    let opened = envelope::open(&der, &holder).unwrap();
    assert_eq!(*opened.to_bytes(), *d);
    assert_eq!(opened.public_key(), enc.public_key());
    // The structure: SEQUENCE { SEQUENCE { OID 1.2.156.10197.1.104.1, NULL }, SM2Cipher, … }.
    let sm4_ecb_null = [
        0x30, 0x0c, 0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x68, 0x01, 0x05, 0x00,
    ];
    assert_eq!(der[0], 0x30);
    assert_eq!(&der[3..17], &sm4_ecb_null[..]);
    assert!(matches!(
        envelope::open(&der, &other),
        Err(PkiError::Envelope { .. })
    ));
    // Every single-byte change is refused (or, inside DER lengths, fails to parse).
    for i in 0..der.len() {
        let mut bad = der.clone();
        bad[i] ^= 0x01;
        assert!(envelope::open(&bad, &holder).is_err(), "byte {i}");
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(envelope::open(&trailing, &holder).is_err());
    // Sealing a key under someone else's public key is refused.
    assert!(matches!(
        envelope::seal(
            &d,
            &Signer::public_key(&other),
            &crypto::Decrypter::public_key(&holder),
            p.rng()
        ),
        Err(PkiError::Envelope { .. })
    ));
    assert!(
        envelope::seal(
            &[0u8; 32],
            &enc.public_key(),
            &Signer::public_key(&holder),
            p.rng()
        )
        .is_err()
    );
}

// ---------------------------------------------------------------------------------------------
// Issue 9: issuer search by name and key identifier only; the consortium's sponsorship.

/// A self-signed root of organisation `org` with its CRL (current at `now()`).
fn other_root(pki: &Pki, cn: &str, org: &str, serial: u8) -> (SoftSigner, Certificate, Crl) {
    let key = pki.p.generate().unwrap();
    let root = issue_root(
        cn,
        org,
        Serial::from_bytes(&[serial]).unwrap(),
        v(0, 3650),
        &key,
    )
    .unwrap();
    let crl = issue_crl(&root, &key, 1, t(0), t(60), &[]).unwrap();
    (key, root, crl)
}

/// An agency CA of `org` issued by `issuer`.
fn agency_of(
    pki: &Pki,
    issuer: &Certificate,
    issuer_key: &SoftSigner,
    org: &str,
) -> (SoftSigner, Certificate, Crl) {
    let key = pki.p.generate().unwrap();
    let cert = issue(
        issuer,
        issuer_key,
        &IssueRequest {
            role: Role::AgencyCa,
            common_name: &format!("{org} CA"),
            organisation: org,
            public_key: &key.public_key(),
            serial: pki.serial(),
            validity: v(0, 1825),
        },
    )
    .unwrap();
    let crl = issue_crl(&cert, &key, 1, t(0), t(60), &[]).unwrap();
    (key, cert, crl)
}

fn user_of(pki: &Pki, issuer: &Certificate, issuer_key: &SoftSigner, org: &str) -> Certificate {
    let key = pki.p.generate().unwrap();
    issue(
        issuer,
        issuer_key,
        &IssueRequest {
            role: Role::User,
            common_name: "u",
            organisation: org,
            public_key: &key.public_key(),
            serial: pki.serial(),
            validity: v(1, 365),
        },
    )
    .unwrap()
}

#[test]
fn an_unknown_issuer_is_refused_without_trying_the_anchors_keys() {
    // A certificate signed by one of 31 anchors' keys, but naming an issuer nobody has and
    // carrying a key identifier that matches no anchor. Before issue 9 the diagnosis tried
    // every anchor with N+1 user IDs (N·(N+1) SM2 verifications per refusal) and found the
    // signer; now only an anchor whose key identifier matches is tried, so none is.
    let pki = Pki::new(91);
    let mut anchors = pki.anchors();
    for i in 0..30u8 {
        let (_, root, _) = other_root(&pki, &format!("Root {i}"), &format!("Org {i}"), 0x80 + i);
        anchors.push(TrustAnchor::new(root));
    }
    let key = pki.p.generate().unwrap();
    let mut tpl = template(&pki, Role::User, "u", &key.public_key());
    tpl.issuer = "CN=Nowhere CA,OU=root-ca,O=Nowhere,C=CN".into();
    // No authority key identifier: nothing to match.
    tpl.extensions.retain(|e| e.oid != "2.5.29.35");
    let c = danger::sign_certificate(&tpl, &pki.root_key, &UserId::default()).unwrap();
    let e = validate_chain(&c, &[], &anchors, &pki.crls(&[]), now(), Role::User).unwrap_err();
    assert!(matches!(e, ChainError::NoPathToAnchor { .. }), "{e}");
    // With the root's key identifier, the root (and only it) is tried: name chaining found.
    let mut tpl = template(&pki, Role::User, "u", &key.public_key());
    tpl.issuer = "CN=Nowhere CA,OU=root-ca,O=Nowhere,C=CN".into();
    let c = danger::sign_certificate(&tpl, &pki.agency_key, &UserId::default()).unwrap();
    let e = validate_chain(
        &c,
        std::slice::from_ref(&pki.agency),
        &anchors,
        &pki.crls(&[]),
        now(),
        Role::User,
    )
    .unwrap_err();
    assert!(
        matches!(&e, ChainError::NameChaining { signer, .. } if signer.subject == pki.agency.subject()),
        "{e}"
    );
}

fn consortium(entries: &[(&Certificate, &[&str])]) -> Consortium {
    Consortium::new(
        entries
            .iter()
            .map(|(c, s)| ConsortiumAnchor {
                anchor: TrustAnchor::new((*c).clone()),
                sponsors: Sponsorship::Listed(s.iter().map(|x| x.to_string()).collect()),
            })
            .collect(),
    )
    .unwrap()
}

#[test]
fn a_root_sponsors_only_its_own_organisation_and_those_it_lists() {
    let pki = Pki::new(92);
    let (b_key, b_root, b_crl) = other_root(&pki, "Agency B Root CA", "Agency B", 0x70);
    // Root 1 (GMChain Consortium) sponsors Agency A; Agency B's root sponsors nobody.
    let cons = consortium(&[(&pki.root, &["Agency A"]), (&b_root, &[])]);
    let root_crl = issue_crl(&pki.root, &pki.root_key, 1, t(0), t(60), &[]).unwrap();
    let a_crl = issue_crl(&pki.agency, &pki.agency_key, 1, t(0), t(60), &[]).unwrap();
    let user = user_of(&pki, &pki.agency, &pki.agency_key, "Agency A");
    let crls = vec![root_crl.clone(), a_crl.clone(), b_crl.clone()];
    let ok = cons
        .validate(
            &user,
            std::slice::from_ref(&pki.agency),
            &crls,
            now(),
            Role::User,
        )
        .unwrap();
    assert_eq!(ok.organisation(), "Agency A");
    assert_eq!(ok.path().len(), 3);

    // Agency B's root certifies a CA in Agency A's name: refused, naming both.
    let (fake_key, fake, fake_crl) = agency_of(&pki, &b_root, &b_key, "Agency A");
    let victim = user_of(&pki, &fake, &fake_key, "Agency A");
    let crls = vec![root_crl.clone(), b_crl.clone(), fake_crl];
    let e = cons
        .validate(
            &victim,
            std::slice::from_ref(&fake),
            &crls,
            now(),
            Role::User,
        )
        .unwrap_err();
    assert!(
        matches!(&e, ChainError::NotSponsored { organisation, anchor, .. }
            if organisation == "Agency A" && *anchor == b_root.subject()),
        "{e}"
    );
    assert_eq!(e.code(), "CERT_NOT_SPONSORED");
    // Its own organisation it may certify.
    let own = user_of(&pki, &b_root, &b_key, "Agency B");
    let v = cons
        .validate(&own, &[], std::slice::from_ref(&b_crl), now(), Role::User)
        .unwrap();
    assert_eq!(v.organisation(), "Agency B");
    // The plain chain validation (no consortium) does not know sponsorship: it accepts the
    // fake agency, which is why the chain uses the consortium.
    let fake_crls = vec![
        b_crl,
        issue_crl(&fake, &fake_key, 2, t(0), t(60), &[]).unwrap(),
    ];
    assert!(
        validate_chain(
            &victim,
            std::slice::from_ref(&fake),
            &[TrustAnchor::new(b_root.clone())],
            &fake_crls,
            now(),
            Role::User
        )
        .is_ok()
    );
}

#[test]
fn a_revoked_agency_ca_fails_every_member_below_it() {
    let pki = Pki::new(93);
    let cons = consortium(&[(&pki.root, &["Agency A"])]);
    let user = user_of(&pki, &pki.agency, &pki.agency_key, "Agency A");
    let a_crl = issue_crl(&pki.agency, &pki.agency_key, 1, t(0), t(60), &[]).unwrap();
    let revoked_root_crl = issue_crl(
        &pki.root,
        &pki.root_key,
        2,
        t(10),
        t(60),
        &[RevokedEntry {
            serial: pki.agency.serial(),
            revoked_at: t(10),
            reason: RevocationReason::CaCompromise,
        }],
    )
    .unwrap();
    let e = cons
        .validate(
            &user,
            std::slice::from_ref(&pki.agency),
            &[revoked_root_crl, a_crl.clone()],
            now(),
            Role::User,
        )
        .unwrap_err();
    assert!(
        matches!(&e, ChainError::Revoked { cert, .. } if cert.subject == pki.agency.subject()),
        "{e}"
    );
    // Without the root's CRL the agency CA's status is unknown: fails closed.
    let e = cons
        .validate(
            &user,
            std::slice::from_ref(&pki.agency),
            &[a_crl],
            now(),
            Role::User,
        )
        .unwrap_err();
    assert!(matches!(e, ChainError::RevocationUnknown { .. }), "{e}");
}

#[test]
fn consortium_anchors_are_checked_once() {
    let pki = Pki::new(94);
    // An agency CA listed as an anchor cannot sponsor another organisation.
    let e = Consortium::new(vec![ConsortiumAnchor {
        anchor: TrustAnchor::new(pki.agency.clone()),
        sponsors: Sponsorship::Listed(vec!["Agency Z".into()]),
    }])
    .unwrap_err();
    assert!(matches!(e, ChainError::AnchorUnusable { .. }), "{e}");
    // A self-signed anchor with the wrong user ID configured: refused when built.
    let e = Consortium::new(vec![ConsortiumAnchor {
        anchor: TrustAnchor {
            cert: pki.root.clone(),
            user_id: UserId::new(b"not-the-id".to_vec()).unwrap(),
        },
        sponsors: Sponsorship::Listed(vec![]),
    }])
    .unwrap_err();
    assert!(matches!(e, ChainError::SignatureInvalid { .. }), "{e}");
    // An agency CA as anchor certifies its own members.
    let cons = consortium(&[(&pki.agency, &[])]);
    let user = user_of(&pki, &pki.agency, &pki.agency_key, "Agency A");
    let crl = issue_crl(&pki.agency, &pki.agency_key, 1, t(0), t(60), &[]).unwrap();
    let v = cons
        .validate(&user, &[], &[crl], now(), Role::User)
        .unwrap();
    assert_eq!(v.organisation(), "Agency A");
}

#[test]
fn a_consortium_rebuilt_from_its_entries_keeps_anchors_and_sponsorship() {
    // What a chain does when governance changes its anchors: the entries of the genesis
    // consortium, one dropped, another added, make a consortium that validates the same way.
    let pki = Pki::new(93);
    let (b_key, b_root, b_crl) = other_root(&pki, "Agency B Root CA", "Agency B", 0x71);
    let cons = consortium(&[(&pki.root, &["Agency A"])]);
    assert!(cons.is_anchor(&pki.root) && !cons.is_anchor(&b_root));
    let mut entries = cons.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].sponsors,
        Sponsorship::Listed(vec!["Agency A".into()])
    );
    entries.push(ConsortiumAnchor {
        anchor: TrustAnchor::new(b_root.clone()),
        sponsors: Sponsorship::Listed(Vec::new()),
    });
    let grown = Consortium::new(entries).unwrap();
    assert!(grown.is_anchor(&b_root));
    let own = user_of(&pki, &b_root, &b_key, "Agency B");
    let crls = std::slice::from_ref(&b_crl);
    assert!(cons.validate(&own, &[], crls, now(), Role::User).is_err());
    assert_eq!(
        grown
            .validate(&own, &[], crls, now(), Role::User)
            .unwrap()
            .organisation(),
        "Agency B"
    );
    // Without the genesis root, its agency's members have no anchor.
    let shrunk = Consortium::new(
        grown
            .entries()
            .into_iter()
            .filter(|e| e.anchor.cert != pki.root)
            .collect(),
    )
    .unwrap();
    assert!(!shrunk.is_anchor(&pki.root));
    let a_crl = issue_crl(&pki.agency, &pki.agency_key, 1, t(0), t(60), &[]).unwrap();
    let root_crl = issue_crl(&pki.root, &pki.root_key, 1, t(0), t(60), &[]).unwrap();
    let user = user_of(&pki, &pki.agency, &pki.agency_key, "Agency A");
    assert!(
        shrunk
            .validate(
                &user,
                std::slice::from_ref(&pki.agency),
                &[root_crl, a_crl],
                now(),
                Role::User
            )
            .is_err()
    );
}
