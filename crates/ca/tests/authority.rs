//! `ca::Authority`, the CA's rules, with a fixed clock and deterministic randomness: validity
//! capping, serial drawing, issuance and intermediates, dual pairs, the renewal rules of
//! `ca::renewal`, revocation and CRL numbering, and the audit entry of every action (signed,
//! `done` or `refused`, and a refusal changes nothing else). The crate's one integration-test
//! binary.

use ca::{
    Action, AuditDetail, AuditEntry, Authority, CaDir, CaError, Context, Escrow, EscrowStore,
    Holder, Index, KeyLocation, NewCa, Outcome, PkiStep, Status, UnsignedTail,
};
use crypto::{CryptoError, RandomSource, Secret, Signer};
use crypto_sm::SoftSigner;
use crypto_sm::SoftwareProvider;
use crypto_sm::rng::SeededRandom;
use pki::{Certificate, RevocationReason, Role, Serial, UnixTime};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const T0: u64 = 1_700_000_000;
const DAY: u64 = 86_400;
const SKEW: u64 = 300;

fn key(seed: u64) -> SoftSigner {
    SoftwareProvider::new(Arc::new(SeededRandom::new(seed)))
        .generate()
        .unwrap()
}

fn csr(holder: &SoftSigner, subject: &str) -> Vec<u8> {
    pki::csr::build(subject, holder).unwrap().into_bytes()
}

fn keystore() -> KeyLocation {
    KeyLocation::Keystore { label: "ca".into() }
}

/// A randomness source that first hands out the given 16-byte blocks (serial draws), then a
/// seeded stream.
struct Scripted {
    blocks: Mutex<VecDeque<[u8; 16]>>,
    then: SeededRandom,
}

impl Scripted {
    fn new(blocks: &[[u8; 16]], seed: u64) -> Self {
        Scripted {
            blocks: Mutex::new(blocks.iter().copied().collect()),
            then: SeededRandom::new(seed),
        }
    }
}

impl RandomSource for Scripted {
    fn fill(&self, buf: &mut [u8]) -> Result<(), CryptoError> {
        if buf.len() == 16
            && let Some(b) = self.blocks.lock().unwrap().pop_front()
        {
            buf.copy_from_slice(&b);
            return Ok(());
        }
        self.then.fill(buf)
    }
}

/// A CA directory under test with its key, randomness and operator.
struct TestCa {
    dir: CaDir,
    key: SoftSigner,
    rng: Box<dyn RandomSource>,
}

impl TestCa {
    /// A root CA created at `at`, valid for `days`.
    fn root(path: &Path, days: u64, at: u64) -> TestCa {
        TestCa::root_with_key(path, days, at, 1)
    }

    /// A root CA whose key is drawn from `seed`.
    fn root_with_key(path: &Path, days: u64, at: u64, seed: u64) -> TestCa {
        let key = key(seed);
        let rng = SeededRandom::new(100);
        let init = ca::init_root(
            NewCa {
                dir: path,
                name: "Root CA",
                organisation: "Gov Root",
            },
            keystore(),
            days,
            &Context {
                signer: &key,
                rng: &rng,
                clock: &UnixTime(at),
                operator: "root-admin",
            },
        )
        .unwrap();
        TestCa {
            dir: init.dir,
            key,
            rng: Box::new(rng),
        }
    }

    fn cx<'a>(&'a self, clock: &'a UnixTime) -> Context<'a> {
        Context {
            signer: &self.key,
            rng: self.rng.as_ref(),
            clock,
            operator: "alice",
        }
    }

    /// Runs `f` as one audited action at `at`; returns its result.
    fn act<T: AuditDetail>(
        &self,
        at: u64,
        action: Action,
        f: impl FnOnce(&Authority<'_>) -> Result<T, CaError>,
    ) -> Result<T, CaError> {
        let clock = UnixTime(at);
        self.dir
            .audited(&self.cx(&clock), action, f)
            .expect("the audit entry is written")
            .result
    }

    fn certificate(&self) -> Certificate {
        Certificate::from_pem(&self.dir.read_file("ca.pem").unwrap()).unwrap()
    }

    fn index(&self) -> Index {
        self.dir.read_index().unwrap()
    }

    fn log(&self) -> Vec<AuditEntry> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn last_entry(&self) -> AuditEntry {
        self.log().pop().unwrap()
    }

    /// The files in `certs/`.
    fn cert_files(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("certs"))
            .unwrap()
            .count()
    }

    /// Checks that the log verifies, every entry signed with the CA key.
    fn log_verifies(&self) {
        let r = self
            .dir
            .audit()
            .verify(&self.key.public_key(), None, UnsignedTail::Refuse)
            .unwrap();
        assert!(r.unsigned.is_empty(), "{r:?}");
    }

    /// Issues a `role` certificate from the request `req`, as one audited action at `at`.
    fn try_issue(&self, at: u64, role: Role, req: &[u8], days: u64) -> Result<ca::Issued, CaError> {
        self.act(at, Action::Issue, |a| {
            a.issue(role, Holder::Request(req), days)
        })
    }

    /// Issues a `role` certificate for `holder` named `cn`.
    fn issue(&self, at: u64, role: Role, holder: &SoftSigner, cn: &str) -> Certificate {
        let req = csr(holder, &format!("CN={cn}"));
        self.try_issue(at, role, &req, 365).unwrap().certificate
    }

    fn revoke(&self, at: u64, serial: &Serial, reason: RevocationReason) -> ca::Revoked {
        self.act(at, Action::Revoke, |a| a.revoke(&serial.to_hex(), reason))
            .unwrap()
    }
}

/// An agency CA of "Agency A", certified by `root` at `at`.
fn agency(root: &TestCa, path: &Path, at: u64) -> TestCa {
    let key = key(2);
    let req = csr(&key, "CN=Agency A CA");
    let cert = root
        .act(at, Action::Intermediate, |a| {
            a.intermediate(Holder::Request(&req), "Agency A", 1825)
        })
        .unwrap()
        .certificate;
    let rng = SeededRandom::new(200);
    let init = ca::init_agency(
        NewCa {
            dir: path,
            name: "Agency A CA",
            organisation: "Agency A",
        },
        keystore(),
        cert,
        &root.certificate(),
        &Context {
            signer: &key,
            rng: &rng,
            clock: &UnixTime(at),
            operator: "agency-admin",
        },
    )
    .unwrap();
    TestCa {
        dir: init.dir,
        key,
        rng: Box::new(rng),
    }
}

/// Returns the PKI's reason for refusing a request, if that is what `err` is.
fn request_refusal(err: &CaError) -> Option<&pki::PkiError> {
    match err {
        CaError::Pki {
            step: PkiStep::Request,
            source,
        } => Some(source),
        _ => None,
    }
}

/// Checks that the last audit entry records `action` refused with `detail_start`, signed.
fn assert_refused_entry(ca: &TestCa, at: u64, action: Action, detail_start: &str) {
    let e = ca.last_entry();
    assert_eq!(
        (e.action.as_str(), e.outcome, e.time, e.operator.as_str()),
        (action.as_str(), Outcome::Refused, at, "alice"),
        "{e:?}"
    );
    assert!(e.detail.starts_with(detail_start), "{e:?}");
    assert!(e.sig.is_some(), "{e:?}");
}

#[test]
fn every_action_is_recorded_signed_and_a_refusal_changes_nothing_else() {
    let t = tempfile::tempdir().unwrap();
    let root = TestCa::root(&t.path().join("root"), 3650, T0);
    let log = root.log();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (
            log[0].action.as_str(),
            log[0].outcome,
            log[0].time,
            log[0].operator.as_str(),
            log[0].detail.as_str()
        ),
        (
            "init",
            Outcome::Done,
            T0,
            "root-admin",
            "root CA \"Root CA\" of \"Gov Root\""
        )
    );

    // Done: the detail names what was made, at the clock's time, by the operator.
    let holder = key(10);
    let user = root.issue(T0 + 10, Role::User, &holder, "user-1");
    let e = root.last_entry();
    assert_eq!(
        (e.action.as_str(), e.outcome, e.time, e.operator.as_str()),
        ("issue", Outcome::Done, T0 + 10, "alice")
    );
    assert_eq!(
        e.detail,
        format!("user {} serial {}", user.subject(), user.serial())
    );
    assert_eq!(root.index().entries.len(), 1);

    // Refused by the PKI profile (the request claims another role): recorded with the reason,
    // nothing issued.
    let before = (root.index(), root.cert_files());
    let claims_admin = csr(&key(11), "CN=x,OU=admin");
    let err = root
        .try_issue(T0 + 20, Role::User, &claims_admin, 365)
        .unwrap_err();
    assert!(
        matches!(
            request_refusal(&err),
            Some(pki::PkiError::RoleClaimMismatch { .. })
        ),
        "{err:?}"
    );
    assert_refused_entry(&root, T0 + 20, Action::Issue, "certification request: ");
    assert_eq!((root.index(), root.cert_files()), before);

    // Refused by the certification rule: the detail starts with the code and names the serial.
    root.revoke(T0 + 30, &user.serial(), RevocationReason::KeyCompromise);
    let before = (root.index(), root.cert_files());
    let again = csr(&holder, "CN=user-1b");
    let err = root
        .try_issue(T0 + 40, Role::User, &again, 365)
        .unwrap_err();
    assert_eq!(err.code(), "CA_KEY_COMPROMISED");
    assert_refused_entry(
        &root,
        T0 + 40,
        Action::Issue,
        &format!(
            "CA_KEY_COMPROMISED: the key to certify is the key of serial {}",
            user.serial()
        ),
    );
    assert_eq!((root.index(), root.cert_files()), before);

    // A CA key that could not be opened: the one unsigned entry, the log's unsigned tail until
    // the next signed entry covers it.
    root.dir
        .record_key_unavailable(&UnixTime(T0 + 50), "bob", Action::Crl, "wrong PIN")
        .unwrap();
    let e = root.last_entry();
    assert!(e.sig.is_none() && e.is_key_unavailable_refusal(), "{e:?}");
    assert_eq!(
        e.detail,
        "CA_KEY_UNAVAILABLE: the CA key could not be opened: wrong PIN"
    );
    let pk = root.key.public_key();
    assert!(matches!(
        root.dir.audit().verify(&pk, None, UnsignedTail::Refuse),
        Err(CaError::AuditUnsignedTail { .. })
    ));
    root.act(T0 + 60, Action::Crl, |a| a.publish_crl(24))
        .unwrap();
    let r = root
        .dir
        .audit()
        .verify(&pk, None, UnsignedTail::Refuse)
        .unwrap();
    assert_eq!((r.entries, r.unsigned.len()), (7, 1));
    let actions: Vec<(String, Outcome)> = root
        .log()
        .into_iter()
        .map(|e| (e.action, e.outcome))
        .collect();
    assert_eq!(
        actions,
        [
            ("init", Outcome::Done),
            ("issue", Outcome::Done),
            ("issue", Outcome::Refused),
            ("revoke", Outcome::Done),
            ("issue", Outcome::Refused),
            ("crl", Outcome::Refused),
            ("crl", Outcome::Done),
        ]
        .map(|(a, o)| (a.to_string(), o))
    );
}

#[test]
fn validity_starts_before_now_and_never_outlives_the_issuer() {
    let t = tempfile::tempdir().unwrap();
    let root = TestCa::root(&t.path().join("root"), 10, T0);
    let rv = root.certificate().validity();
    assert_eq!(
        (rv.not_before.0, rv.not_after.0),
        (T0 - SKEW, T0 - SKEW + 10 * DAY)
    );

    // Two days from a day later: within the root's validity, not capped.
    let at = T0 + DAY;
    let req = csr(&key(10), "CN=short");
    let short = root
        .try_issue(at, Role::User, &req, 2)
        .unwrap()
        .certificate
        .validity();
    assert_eq!(
        (short.not_before.0, short.not_after.0),
        (at - SKEW, at - SKEW + 2 * DAY)
    );
    // A year asked: capped at the root's notAfter, for a leaf as for an agency CA.
    let long = root.issue(at, Role::Admin, &key(11), "long").validity();
    assert_eq!(
        (long.not_before.0, long.not_after.0),
        (at - SKEW, rv.not_after.0)
    );
    let req = csr(&key(12), "CN=Agency B CA");
    let agency = root
        .act(at, Action::Intermediate, |a| {
            a.intermediate(Holder::Request(&req), "Agency B", 1825)
        })
        .unwrap()
        .certificate
        .validity();
    assert_eq!(agency.not_after, rv.not_after);
    // And a renewal, even with a huge validity (saturating, then capped).
    let renewed = root
        .act(at + DAY, Action::Renew, |a| {
            a.renew(&long_serial(&root, "long"), None, u64::MAX)
        })
        .unwrap()
        .certificate
        .validity();
    assert_eq!(
        (renewed.not_before.0, renewed.not_after.0),
        (at + DAY - SKEW, rv.not_after.0)
    );

    // Zero days: refused, audited, nothing issued.
    let before = (root.index(), root.cert_files());
    let req = csr(&key(13), "CN=zero");
    let err = root.try_issue(at, Role::User, &req, 0).unwrap_err();
    assert!(matches!(err, CaError::ZeroValidity), "{err:?}");
    assert_refused_entry(
        &root,
        at,
        Action::Issue,
        "a certificate is valid for at least",
    );
    assert_eq!((root.index(), root.cert_files()), before);
    // A root of zero days is not created at all.
    let p = t.path().join("root0");
    let k = key(1);
    let err = ca::init_root(
        NewCa {
            dir: &p,
            name: "Root 0",
            organisation: "Gov",
        },
        keystore(),
        0,
        &Context {
            signer: &k,
            rng: &SeededRandom::new(1),
            clock: &UnixTime(T0),
            operator: "x",
        },
    )
    .unwrap_err();
    assert!(matches!(err, CaError::ZeroValidity), "{err:?}");
    assert!(!p.exists());
}

/// The serial of the certificate whose subject's CN is `cn`.
fn long_serial(ca: &TestCa, cn: &str) -> String {
    ca.index()
        .entries
        .iter()
        .find(|e| e.subject.contains(&format!("CN={cn}")))
        .unwrap()
        .serial
        .clone()
}

#[test]
fn serials_are_drawn_fresh_and_never_reused() {
    let t = tempfile::tempdir().unwrap();
    let mut root = TestCa::root(&t.path().join("root"), 3650, T0);
    let s1 = [0x11; 16];
    let s2 = [0x22; 16];
    let s3 = [0x33; 16];
    // The top bit is cleared: 127 random bits, a positive INTEGER.
    let hex = |b: [u8; 16]| {
        let mut b = b;
        b[0] &= 0x7f;
        hex::encode(b)
    };
    root.rng = Box::new(Scripted::new(&[s1], 7));
    let first = root.issue(T0, Role::User, &key(10), "one");
    assert_eq!(first.serial().to_hex(), hex(s1));

    // The source repeats the serial the index holds: drawn again, the fresh one is used.
    root.rng = Box::new(Scripted::new(&[s1, s1, s2], 7));
    let second = root.issue(T0, Role::User, &key(11), "two");
    assert_eq!(second.serial().to_hex(), hex(s2));

    // A source that only repeats used serials: refused after SERIAL_DRAWS draws, audited,
    // nothing issued.
    let used: Vec<[u8; 16]> = (0..ca::SERIAL_DRAWS)
        .map(|i| if i % 2 == 0 { s1 } else { s2 })
        .collect();
    root.rng = Box::new(Scripted::new(&used, 7));
    let before = (root.index(), root.cert_files());
    let req = csr(&key(12), "CN=three");
    let err = root.try_issue(T0, Role::User, &req, 365).unwrap_err();
    assert!(matches!(err, CaError::SerialsExhausted), "{err:?}");
    assert_refused_entry(&root, T0, Action::Issue, "could not draw an unused serial");
    assert_eq!((root.index(), root.cert_files()), before);

    // A certificate file left by an interrupted command (not in the index) is never
    // overwritten: the serial counts as used.
    std::fs::write(
        root.dir.path().join(format!("certs/{}.pem", hex(s3))),
        "left over",
    )
    .unwrap();
    root.rng = Box::new(Scripted::new(&[s3], 7));
    let before = root.index();
    let err = root
        .act(T0, Action::Renew, |a| {
            a.renew(&first.serial().to_hex(), None, 365)
        })
        .unwrap_err();
    assert!(matches!(err, CaError::SerialReused { .. }), "{err:?}");
    assert_eq!(root.index(), before);
    assert_eq!(
        std::fs::read_to_string(root.dir.path().join(format!("certs/{}.pem", hex(s3)))).unwrap(),
        "left over"
    );
    root.log_verifies();
}

#[test]
fn renewal_applies_the_rules_of_ca_renewal() {
    let t = tempfile::tempdir().unwrap();
    let root = TestCa::root(&t.path().join("root"), 3650, T0);
    let k1 = key(10);
    let u1 = root.issue(T0, Role::User, &k1, "user-1");
    let s1 = u1.serial().to_hex();

    // Keeping the key: a new serial, the same subject and key, linked both ways.
    let at = T0 + DAY;
    let r = root
        .act(at, Action::Renew, |a| a.renew(&s1, None, 30))
        .unwrap();
    let u2 = &r.certificate;
    let s2 = u2.serial().to_hex();
    assert_ne!(s2, s1);
    assert_eq!(r.renews, s1);
    assert_eq!(
        (u2.subject(), u2.public_key(), u2.role()),
        (u1.subject(), u1.public_key(), Some(Role::User))
    );
    assert_eq!(u2.validity().not_before.0, at - SKEW);
    let index = root.index();
    assert_eq!(index.get(&s1).unwrap().renewed_by.as_deref(), Some(&*s2));
    assert_eq!(index.get(&s2).unwrap().renews.as_deref(), Some(&*s1));
    assert_eq!(root.last_entry().detail, format!("renewed {s1} as {s2}"));

    // Rule 2: not renewed twice.
    let err = root
        .act(at, Action::Renew, |a| a.renew(&s1, None, 30))
        .unwrap_err();
    assert!(matches!(err, CaError::AlreadyRenewed { .. }), "{err:?}");
    assert_refused_entry(&root, at, Action::Renew, "CA_RENEW_ALREADY_RENEWED: ");

    // With a new key from a request for the same common name; another name is refused.
    let k2 = key(20);
    let other_name = csr(&k2, "CN=user-2");
    let err = root
        .act(at, Action::Renew, |a| a.renew(&s2, Some(&other_name), 30))
        .unwrap_err();
    assert!(
        matches!(&err, CaError::RenewSubjectMismatch { requested, kept } if requested == "user-2" && kept == "user-1"),
        "{err:?}"
    );
    let same_name = csr(&k2, "CN=user-1");
    let r = root
        .act(at, Action::Renew, |a| a.renew(&s2, Some(&same_name), 30))
        .unwrap();
    let s3 = r.certificate.serial().to_hex();
    assert_eq!(r.certificate.public_key(), k2.public_key());
    assert_eq!(
        root.last_entry().detail,
        format!("renewed {s2} as {s3} with a new key")
    );

    // Rule 1: a revoked certificate is never renewed, checked before any request is read.
    root.revoke(at, &r.certificate.serial(), RevocationReason::Superseded);
    for request in [None, Some(&same_name[..])] {
        let err = root
            .act(at, Action::Renew, |a| a.renew(&s3, request, 30))
            .unwrap_err();
        assert!(matches!(err, CaError::RenewRevoked { .. }), "{err:?}");
        assert_refused_entry(
            &root,
            at,
            Action::Renew,
            &format!("CA_RENEW_REVOKED: serial {s3}"),
        );
    }
    let err = root
        .act(at, Action::Renew, |a| {
            a.renewable(&s3).map(|()| String::new())
        })
        .unwrap_err();
    assert!(matches!(err, CaError::RenewRevoked { .. }), "{err:?}");

    // Rule 3: a key recorded as compromised is not certified again through another holder.
    let k4 = key(40);
    let victim = root.issue(at, Role::User, &k4, "victim");
    root.revoke(at, &victim.serial(), RevocationReason::KeyCompromise);
    let holder = root.issue(at, Role::Admin, &key(50), "holder");
    let with_victim_key = csr(&k4, "CN=holder");
    let before = (root.index(), root.cert_files());
    let err = root
        .act(at, Action::Renew, |a| {
            a.renew(&holder.serial().to_hex(), Some(&with_victim_key), 30)
        })
        .unwrap_err();
    assert!(
        matches!(&err, CaError::RenewKeyCompromised { revoked, new_key: true, .. } if *revoked == victim.serial().to_hex()),
        "{err:?}"
    );
    assert_refused_entry(&root, at, Action::Renew, "CA_RENEW_KEY_COMPROMISED: ");
    assert_eq!((root.index(), root.cert_files()), before);

    // Rule 4: once the CA recorded its own compromise it certifies nothing, by renewal or
    // issuance, but still revokes and publishes CRLs.
    let witness = root.issue(at, Role::User, &key(60), "witness");
    root.revoke(at, &witness.serial(), RevocationReason::CaCompromise);
    let before = (root.index(), root.cert_files());
    let err = root
        .act(at, Action::Renew, |a| {
            a.renew(&holder.serial().to_hex(), None, 30)
        })
        .unwrap_err();
    assert!(
        matches!(&err, CaError::CaCompromised { compromise } if *compromise == witness.serial().to_hex()),
        "{err:?}"
    );
    assert_refused_entry(&root, at, Action::Renew, "CA_COMPROMISED: ");
    let req = csr(&key(70), "CN=late");
    let err = root.try_issue(at, Role::User, &req, 30).unwrap_err();
    assert!(matches!(err, CaError::CaCompromised { .. }), "{err:?}");
    assert_eq!((root.index(), root.cert_files()), before);
    root.revoke(at, &holder.serial(), RevocationReason::CessationOfOperation);
    let crl = root
        .act(at, Action::Crl, |a| a.publish_crl(24))
        .unwrap()
        .crl;
    assert!(crl.find(&witness.serial()).is_some());
    root.log_verifies();
}

#[test]
fn revocation_takes_the_same_key_along_and_crls_are_numbered() {
    let t = tempfile::tempdir().unwrap();
    let root = TestCa::root(&t.path().join("root"), 3650, T0);
    let k1 = key(10);
    let a1 = root.issue(T0, Role::User, &k1, "a");
    let a2 = root
        .act(T0, Action::Renew, |a| {
            a.renew(&a1.serial().to_hex(), None, 30)
        })
        .unwrap()
        .certificate;
    let b = root.issue(T0, Role::User, &key(20), "b");
    let c = root.issue(T0, Role::User, &key(30), "c");

    // CRL 1, empty, from the clock's now for the hours asked; crl.pem is the CRL returned.
    let at = T0 + 100;
    let p = root.act(at, Action::Crl, |a| a.publish_crl(24)).unwrap();
    assert_eq!(
        (
            p.crl.number(),
            p.revoked,
            p.crl.this_update().0,
            p.crl.next_update().map(|t| t.0)
        ),
        (1, 0, at, Some(at + 24 * 3600))
    );
    assert_eq!(
        root.dir.read_file("crl.pem").unwrap(),
        p.crl.to_pem().as_bytes()
    );
    p.crl.verify_signed_by(&root.key.public_key()).unwrap();
    assert_eq!(root.index().crl_number, 1);
    assert_eq!(
        root.last_entry().detail,
        "CRL number 1 with 0 revoked certificate(s)"
    );

    // A key compromise revokes every valid certificate of the key, at the clock's time.
    let at = T0 + 200;
    let r = root.revoke(at, &a1.serial(), RevocationReason::KeyCompromise);
    assert_eq!(r.same_key, [a2.serial().to_hex()]);
    assert_eq!(
        root.last_entry().detail,
        format!(
            "revoked {} ({}) reason key-compromise; also revoked {} (same key)",
            a1.serial(),
            a1.subject(),
            a2.serial()
        )
    );
    let index = root.index();
    for s in [a1.serial(), a2.serial()] {
        assert_eq!(
            index.get(&s.to_hex()).unwrap().status,
            Status::Revoked {
                at,
                reason: "key-compromise".into()
            }
        );
    }
    // Another reason revokes that certificate only.
    let r = root.revoke(at + 1, &b.serial(), RevocationReason::Superseded);
    assert!(r.same_key.is_empty());
    assert_eq!(
        root.index().get(&c.serial().to_hex()).unwrap().status,
        Status::Valid
    );

    // Revoking twice, or an unknown serial: refused, audited, the index unchanged.
    let before = root.index();
    let err = root
        .act(at + 2, Action::Revoke, |a| {
            a.revoke(&a2.serial().to_hex(), RevocationReason::Unspecified)
        })
        .unwrap_err();
    assert!(matches!(err, CaError::AlreadyRevoked { .. }), "{err:?}");
    assert_refused_entry(
        &root,
        at + 2,
        Action::Revoke,
        &format!("serial {} is already revoked", a2.serial()),
    );
    let err = root
        .act(at + 2, Action::Revoke, |a| {
            a.revoke("0badc0de", RevocationReason::Unspecified)
        })
        .unwrap_err();
    assert!(matches!(err, CaError::UnknownSerial { .. }), "{err:?}");
    assert_eq!(root.index(), before);

    // CRL 2 lists the three revocations with their reasons and times.
    let at = T0 + 300;
    let crl = root
        .act(at, Action::Crl, |a| a.publish_crl(48))
        .unwrap()
        .crl;
    assert_eq!(crl.number(), 2);
    assert_eq!(crl.next_update().map(|t| t.0), Some(at + 48 * 3600));
    let mut listed: Vec<(String, u64, RevocationReason)> = crl
        .revoked()
        .into_iter()
        .map(|e| (e.serial.to_hex(), e.revoked_at.0, e.reason))
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (
            a1.serial().to_hex(),
            T0 + 200,
            RevocationReason::KeyCompromise,
        ),
        (
            a2.serial().to_hex(),
            T0 + 200,
            RevocationReason::KeyCompromise,
        ),
        (b.serial().to_hex(), T0 + 201, RevocationReason::Superseded),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(listed, expected);

    // A CRL whose next update would be now: refused, the number not used.
    let err = root.act(at, Action::Crl, |a| a.publish_crl(0)).unwrap_err();
    assert!(matches!(err, CaError::ZeroCrlPeriod), "{err:?}");
    assert_refused_entry(&root, at, Action::Crl, "a CRL's next update");
    assert_eq!(root.index().crl_number, 2);
    let crl = root.act(at, Action::Crl, |a| a.publish_crl(1)).unwrap().crl;
    assert_eq!(crl.number(), 3);
    root.log_verifies();
}

#[test]
fn intermediates_come_only_from_the_root_and_follow_the_profile() {
    let t = tempfile::tempdir().unwrap();
    let root = TestCa::root(&t.path().join("root"), 3650, T0);
    let agency = agency(&root, &t.path().join("agency"), T0);
    let ac = agency.certificate();
    assert_eq!(
        (ac.role(), ac.organisation().as_deref(), ac.is_ca()),
        (Some(Role::AgencyCa), Some("Agency A"), true)
    );
    assert_eq!(ac.issuer(), root.certificate().subject());
    assert_eq!(
        root.last_entry().detail,
        format!("agency CA {} serial {}", ac.subject(), ac.serial())
    );
    assert_eq!(agency.dir.meta().kind, ca::CaKind::Agency);
    assert_eq!(
        agency.dir.read_file("chain.pem").unwrap(),
        root.certificate().to_pem().as_bytes()
    );

    // An agency CA issues end entities of its own organisation, whatever the request's O.
    let user = agency.issue(T0, Role::User, &key(10), "user-a");
    assert_eq!(user.organisation().as_deref(), Some("Agency A"));
    user.verify_signed_by(&ac.public_key(), &crypto::UserId::default())
        .unwrap();
    let foreign = csr(&key(11), "CN=user-x,O=Agency B");
    let err = agency.try_issue(T0, Role::User, &foreign, 30).unwrap_err();
    assert!(
        matches!(
            request_refusal(&err),
            Some(pki::PkiError::OrganisationClaimMismatch { .. })
        ),
        "{err:?}"
    );

    // An agency CA certifies no CA: neither through `intermediate` nor by role.
    let before = (agency.index(), agency.cert_files());
    let sub = csr(&key(12), "CN=Sub CA");
    let err = agency
        .act(T0, Action::Intermediate, |a| {
            a.intermediate(Holder::Request(&sub), "Agency A", 30)
        })
        .unwrap_err();
    assert!(matches!(err, CaError::NotRoot), "{err:?}");
    assert_refused_entry(&agency, T0, Action::Intermediate, "only a root CA");
    for role in [Role::AgencyCa, Role::RootCa] {
        let err = agency.try_issue(T0, role, &sub, 30).unwrap_err();
        assert!(matches!(err, CaError::CaRoleNotIssued { .. }), "{err:?}");
    }
    assert_eq!((agency.index(), agency.cert_files()), before);
    // Nor does the root by role.
    let err = root.try_issue(T0, Role::AgencyCa, &sub, 30).unwrap_err();
    assert!(matches!(err, CaError::CaRoleNotIssued { .. }), "{err:?}");

    // A CA key the root recorded as compromised is not certified again.
    root.revoke(T0, &ac.serial(), RevocationReason::CaCompromise);
    let again = csr(&agency.key, "CN=Agency A CA 2");
    let err = root
        .act(T0, Action::Intermediate, |a| {
            a.intermediate(Holder::Request(&again), "Agency A", 30)
        })
        .unwrap_err();
    assert!(
        matches!(&err, CaError::KeyCompromised { revoked, .. } if *revoked == ac.serial().to_hex()),
        "{err:?}"
    );
    assert_refused_entry(&root, T0, Action::Intermediate, "CA_KEY_COMPROMISED: ");

    // An agency directory is created only from an agency CA certificate of its own key, signed
    // by the root given.
    let other_root = TestCa::root_with_key(&t.path().join("other-root"), 3650, T0, 3);
    let (stranger, user_key) = (key(99), key(10));
    let cases: [(&SoftSigner, &Certificate, &Certificate, &str); 3] = [
        (
            &stranger,
            &ac,
            &root.certificate(),
            "CA_AGENCY_KEY_MISMATCH",
        ),
        // The user certificate with its own key: only the role is wrong.
        (
            &user_key,
            &user,
            &root.certificate(),
            "CA_AGENCY_NOT_CA_CERTIFICATE",
        ),
        (
            &agency.key,
            &ac,
            &other_root.certificate(),
            "CA_AGENCY_NOT_SIGNED_BY_ROOT",
        ),
    ];
    for (i, (signer, cert, chain, code)) in cases.into_iter().enumerate() {
        let path = t.path().join(format!("agency-{i}"));
        let err = ca::init_agency(
            NewCa {
                dir: &path,
                name: "Agency A CA",
                organisation: "Agency A",
            },
            keystore(),
            cert.clone(),
            chain,
            &Context {
                signer,
                rng: &SeededRandom::new(5),
                clock: &UnixTime(T0),
                operator: "x",
            },
        )
        .unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
        assert!(!path.exists());
    }
}

/// An escrow store that keeps deposits in memory, or refuses them.
#[derive(Default)]
struct MemoryEscrow {
    deposits: Mutex<Vec<(String, Vec<u8>)>>,
    refuse: bool,
}

impl EscrowStore for MemoryEscrow {
    fn deposit(&self, serial: &str, pem: &[u8]) -> Result<(), CaError> {
        if self.refuse {
            return Err(CaError::Escrow {
                serial: serial.into(),
                reason: "escrow store offline".into(),
            });
        }
        self.deposits
            .lock()
            .unwrap()
            .push((serial.into(), pem.to_vec()));
        Ok(())
    }
}

#[test]
fn a_dual_pair_is_issued_whole_with_its_escrow_copy_or_not_at_all() {
    let t = tempfile::tempdir().unwrap();
    let root = TestCa::root(&t.path().join("root"), 3650, T0);
    let agency = agency(&root, &t.path().join("agency"), T0);
    let holder = key(10);
    let req = csr(&holder, "CN=node-a1");
    let pass = Secret::new(b"escrow-passphrase".to_vec());

    // The escrow store refuses: neither half enters the index, the refusal is audited.
    let before = agency.index();
    let err = pair_refused_by_an_offline_escrow(&agency, &req, &pass);
    assert!(matches!(err, CaError::Escrow { .. }), "{err:?}");
    assert_refused_entry(&agency, T0, Action::Issue, "escrow store offline");
    assert_eq!(agency.index(), before);

    let escrow = MemoryEscrow::default();
    let issued = agency
        .act(T0, Action::Issue, |a| {
            a.issue_pair(
                Role::NodeSign,
                Holder::Request(&req),
                365,
                Escrow {
                    passphrase: &pass,
                    store: &escrow,
                },
            )
        })
        .unwrap();
    let sign = &issued.certificate;
    let enc = issued.encryption.as_ref().unwrap();
    assert_eq!(
        (sign.role(), enc.certificate.role()),
        (Some(Role::NodeSign), Some(Role::NodeEnc))
    );
    assert_eq!(sign.public_key(), holder.public_key());
    assert_eq!(
        (
            enc.certificate.common_name(),
            enc.certificate.organisation()
        ),
        (sign.common_name(), sign.organisation())
    );
    // The envelope opens with the holder's key, the escrow copy with the passphrase, both to
    // the key the encryption certificate certifies.
    let enc_key = pki::envelope::open(&enc.envelope, &holder).unwrap();
    assert_eq!(enc_key.public_key(), enc.certificate.public_key());
    let deposits = escrow.deposits.lock().unwrap();
    assert_eq!(deposits.len(), 1);
    assert_eq!(deposits[0].0, enc.certificate.serial().to_hex());
    let escrowed =
        crypto_sm::keys::decode_private_key(&deposits[0].1, Some(b"escrow-passphrase")).unwrap();
    assert_eq!(escrowed.public_key(), enc.certificate.public_key());
    // Linked both ways, recorded as done with both serials.
    let index = agency.index();
    let (sh, eh) = (sign.serial().to_hex(), enc.certificate.serial().to_hex());
    assert_eq!(index.get(&sh).unwrap().pair.as_deref(), Some(&*eh));
    assert_eq!(index.get(&eh).unwrap().pair.as_deref(), Some(&*sh));
    assert_eq!(index.entries.len(), before.entries.len() + 2);
    assert_eq!(
        agency.last_entry().detail,
        format!(
            "node-sign {} serial {}; node-enc serial {}",
            sign.subject(),
            sign.serial(),
            enc.certificate.serial()
        )
    );
    agency.log_verifies();
}

#[test]
fn people_get_dual_pairs_and_other_roles_are_refused_by_name() {
    let t = tempfile::tempdir().unwrap();
    let root = TestCa::root(&t.path().join("root"), 3650, T0);
    let agency = agency(&root, &t.path().join("agency"), T0);
    let pass = Secret::new(b"escrow-passphrase".to_vec());
    let escrow = MemoryEscrow::default();
    for (i, (sign_role, enc_role)) in [
        (Role::User, Role::UserEnc),
        (Role::Admin, Role::AdminEnc),
        (Role::Auditor, Role::AuditorEnc),
    ]
    .into_iter()
    .enumerate()
    {
        let holder = key(20 + i as u64);
        let cn = format!("person-{i}");
        let req = csr(&holder, &format!("CN={cn}"));
        let issued = agency
            .act(T0, Action::Issue, |a| {
                a.issue_pair(
                    sign_role,
                    Holder::Request(&req),
                    365,
                    Escrow {
                        passphrase: &pass,
                        store: &escrow,
                    },
                )
            })
            .unwrap();
        let enc = issued.encryption.as_ref().unwrap();
        assert_eq!(issued.certificate.role(), Some(sign_role));
        assert_eq!(enc.certificate.role(), Some(enc_role));
        assert_eq!(sign_role.encryption_pair(), enc.certificate.role());
        assert_eq!(
            enc.certificate.organizational_unit(),
            issued.certificate.organizational_unit()
        );
        assert_eq!(enc.certificate.common_name().as_deref(), Some(&*cn));
        let opened = pki::envelope::open(&enc.envelope, &holder).unwrap();
        assert_eq!(opened.public_key(), enc.certificate.public_key());
        assert!(agency.last_entry().detail.contains(enc_role.as_str()));
    }
    let before = agency.index();
    for role in [Role::NodeEnc, Role::UserEnc, Role::AuditorEnc] {
        let holder = key(40);
        let req = csr(&holder, "CN=someone");
        let err = agency
            .act(T0, Action::Issue, |a| {
                a.issue_pair(
                    role,
                    Holder::Request(&req),
                    365,
                    Escrow {
                        passphrase: &pass,
                        store: &escrow,
                    },
                )
            })
            .unwrap_err();
        assert!(
            matches!(err, CaError::NoEncryptionPair { role: r } if r == role),
            "{err:?}"
        );
        assert!(err.to_string().contains(role.as_str()), "{err}");
    }
    assert_eq!(agency.index(), before);
}

#[test]
fn a_generated_holder_key_is_drawn_from_the_given_randomness() {
    let issue = |path: PathBuf| {
        let root = TestCa::root(&path, 3650, T0);
        let issued = root
            .act(T0, Action::Issue, |a| {
                a.issue(
                    Role::Admin,
                    Holder::Generate {
                        common_name: "admin-gen",
                    },
                    365,
                )
            })
            .unwrap();
        let key = issued.generated.unwrap();
        assert_eq!(key.public_key(), issued.certificate.public_key());
        assert_eq!(
            issued.certificate.common_name().as_deref(),
            Some("admin-gen")
        );
        (key.public_key(), issued.certificate.serial())
    };
    let t = tempfile::tempdir().unwrap();
    // Same clock and randomness, same key and serial: nothing else is drawn from.
    assert_eq!(issue(t.path().join("a")), issue(t.path().join("b")));
}

/// The names of the files in `certs/`.
fn cert_file_names(ca: &TestCa) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(ca.dir.path().join("certs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

// Review of issue 11, defect 1: a damaged audit log was found only when the action's entry was
// appended, after the action had written certs/ and the index: the command failed, but the
// certificate was issued and nothing in the log says so.
#[test]
fn a_damaged_audit_log_refuses_every_action_before_it_changes_anything() {
    use std::io::Write;
    let t = tempfile::tempdir().unwrap();
    let root = TestCa::root(&t.path().join("root"), 3650, T0);
    let user = root.issue(T0, Role::User, &key(10), "user-1");
    // A partial last line, as a write cut short by a full disk or a crash leaves it.
    let log_path = root.dir.path().join("audit.log");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .unwrap()
        .write_all(br#"{"seq":7,"time":1"#)
        .unwrap();
    let log = std::fs::read(&log_path).unwrap();
    let before = (root.index(), cert_file_names(&root));
    let req = csr(&key(11), "CN=user-2");
    let agency_req = csr(&key(12), "CN=Agency B CA");
    let pass = Secret::new(b"escrow".to_vec());
    let escrow = MemoryEscrow::default();
    let clock = UnixTime(T0 + 10);
    let cx = root.cx(&clock);
    let s = user.serial().to_hex();
    type Step<'a> = Box<dyn FnOnce(&Authority<'_>) -> Result<String, CaError> + 'a>;
    let ran = std::cell::Cell::new(0);
    let steps: Vec<(Action, Step<'_>)> = vec![
        (
            Action::Issue,
            Box::new(|a| {
                a.issue(Role::User, Holder::Request(&req), 30)
                    .map(|i| i.audit_detail())
            }),
        ),
        (
            Action::Issue,
            Box::new(|a| {
                a.issue_pair(
                    Role::NodeSign,
                    Holder::Request(&req),
                    30,
                    Escrow {
                        passphrase: &pass,
                        store: &escrow,
                    },
                )
                .map(|i| i.audit_detail())
            }),
        ),
        (
            Action::Intermediate,
            Box::new(|a| {
                a.intermediate(Holder::Request(&agency_req), "Agency B", 30)
                    .map(|i| i.audit_detail())
            }),
        ),
        (
            Action::Renew,
            Box::new(|a| a.renew(&s, None, 30).map(|r| r.audit_detail())),
        ),
        (
            Action::Revoke,
            Box::new(|a| {
                a.revoke(&s, RevocationReason::KeyCompromise)
                    .map(|r| r.audit_detail())
            }),
        ),
        (
            Action::Crl,
            Box::new(|a| a.publish_crl(24).map(|p| p.audit_detail())),
        ),
    ];
    for (action, step) in steps {
        let r = root.dir.audited(&cx, action, |a| {
            ran.set(ran.get() + 1);
            step(a)
        });
        assert!(
            matches!(&r, Err(CaError::AuditBroken { seq: 2, .. })),
            "{action:?} on a damaged log: {r:?}"
        );
        assert_eq!(
            (root.index(), cert_file_names(&root)),
            before,
            "{action:?} on a damaged log changed the CA"
        );
    }
    assert_eq!(
        ran.get(),
        0,
        "an action ran although its entry could not be appended"
    );
    assert!(escrow.deposits.lock().unwrap().is_empty());
    assert!(!root.dir.path().join("crl.pem").exists());
    assert_eq!(std::fs::read(&log_path).unwrap(), log);
}

/// Checks that every certificate file in `certs/` is one the index records (so it can be
/// listed, shown and revoked).
fn every_cert_file_is_indexed(ca: &TestCa) {
    let index = ca.index();
    for name in cert_file_names(ca) {
        let serial = name.trim_end_matches(".pem");
        assert!(
            index.contains(serial),
            "certs/{name} is not in the index: a certificate that cannot be revoked"
        );
    }
}

// Review of issue 11, defect 2: a dual pair whose escrow deposit failed left the signing
// certificate's file in certs/, signed and valid, but not in the index, so `ca revoke` did not
// know it.
#[test]
fn a_dual_pair_refused_at_the_escrow_deposit_leaves_no_certificate_file() {
    let t = tempfile::tempdir().unwrap();
    let root = TestCa::root(&t.path().join("root"), 3650, T0);
    root.issue(T0, Role::User, &key(10), "user-1");
    let before = (root.index(), cert_file_names(&root));
    let req = csr(&key(11), "CN=node-1");
    let pass = Secret::new(b"escrow-passphrase".to_vec());
    let err = pair_refused_by_an_offline_escrow(&root, &req, &pass);
    assert!(matches!(err, CaError::Escrow { .. }), "{err:?}");
    every_cert_file_is_indexed(&root);
    assert_eq!((root.index(), cert_file_names(&root)), before);
    assert_refused_entry(&root, T0, Action::Issue, "escrow store offline");

    // The last write before the index fails (a file left over by an interrupted command holds
    // the encryption certificate's serial): the signing certificate's file, written just
    // before, is removed again.
    let mut root = root;
    let (sign_serial, enc_serial) = ([0x51; 16], [0x52; 16]);
    root.rng = Box::new(Scripted::new(&[sign_serial, enc_serial], 9));
    let left_over = format!("{}.pem", hex::encode(enc_serial));
    std::fs::write(root.dir.path().join("certs").join(&left_over), "left over").unwrap();
    let escrow = MemoryEscrow::default();
    let err = root
        .act(T0, Action::Issue, |a| {
            a.issue_pair(
                Role::NodeSign,
                Holder::Request(&req),
                365,
                Escrow {
                    passphrase: &pass,
                    store: &escrow,
                },
            )
        })
        .unwrap_err();
    assert!(
        matches!(&err, CaError::SerialReused { serial } if *serial == hex::encode(enc_serial)),
        "{err:?}"
    );
    let mut expected = before.1.clone();
    expected.insert(left_over);
    assert_eq!((root.index(), cert_file_names(&root)), (before.0, expected));
    root.log_verifies();
}

/// A fault to inject at one moment of an action.
type Fault<'a> = Box<dyn FnOnce() + Send + 'a>;

/// The CA key with a fault armed for its next signature: the fault runs just before it signs,
/// as a disk that fails at that moment of an action.
struct Tripwire<'a> {
    key: &'a SoftSigner,
    /// How many signatures until the fault, and the fault.
    armed: Mutex<(usize, Option<Fault<'a>>)>,
}

impl<'a> Tripwire<'a> {
    /// Runs `fault` before the next signature.
    fn new(key: &'a SoftSigner, fault: Fault<'a>) -> Self {
        Tripwire::at(1, key, fault)
    }

    /// Runs `fault` before the `nth` signature from now (1 for the next).
    fn at(nth: usize, key: &'a SoftSigner, fault: Fault<'a>) -> Self {
        Tripwire {
            key,
            armed: Mutex::new((nth, Some(fault))),
        }
    }

    fn trip(&self) {
        let mut armed = self.armed.lock().unwrap();
        armed.0 = armed.0.saturating_sub(1);
        if armed.0 == 0
            && let Some(fault) = armed.1.take()
        {
            fault();
        }
    }
}

impl Signer for Tripwire<'_> {
    fn public_key(&self) -> crypto::PublicKey {
        self.key.public_key()
    }

    fn sign(&self, id: &crypto::UserId, msg: &[u8]) -> Result<crypto::Signature, CryptoError> {
        self.trip();
        self.key.sign(id, msg)
    }

    fn sign_digest(&self, e: &crypto::Digest) -> Result<crypto::Signature, CryptoError> {
        self.trip();
        self.key.sign_digest(e)
    }
}

impl TestCa {
    /// Runs `f` as one audited action at `at`, with `fault` run when the CA key next signs.
    fn act_with_fault<T: AuditDetail>(
        &self,
        at: u64,
        action: Action,
        fault: Fault<'_>,
        f: impl FnOnce(&Authority<'_>) -> Result<T, CaError>,
    ) -> Result<T, CaError> {
        self.audited_with_fault(at, action, Tripwire::new(&self.key, fault), f)
            .expect("the audit entry is written")
            .result
    }

    /// Runs `f` as one audited action at `at`, signing with `signer`.
    fn audited_with_fault<T: AuditDetail>(
        &self,
        at: u64,
        action: Action,
        signer: Tripwire<'_>,
        f: impl FnOnce(&Authority<'_>) -> Result<T, CaError>,
    ) -> Result<ca::Audited<T, CaError>, CaError> {
        let clock = UnixTime(at);
        let cx = Context {
            signer: &signer,
            ..self.cx(&clock)
        };
        self.dir.audited(&cx, action, f)
    }
}

/// Replaces the file `path` by an empty directory (so that writing it fails), keeping the file
/// aside; `restore` puts it back.
fn block(path: &Path) {
    let aside = path.with_extension("aside");
    if path.exists() {
        std::fs::rename(path, &aside).unwrap();
    }
    std::fs::create_dir(path).unwrap();
}

fn restore(path: &Path) {
    std::fs::remove_dir(path).unwrap();
    let aside = path.with_extension("aside");
    if aside.exists() {
        std::fs::rename(&aside, path).unwrap();
    }
}

// Review of issue 11, defect 5: `publish_crl` wrote crl.pem (number N+1) before the index
// recorded N+1, so when the index write failed (or the process died between the two), the
// next `ca crl` published another CRL under the same number, which RFC 5280 §5.2.3 forbids.
// A number may be skipped, never reused.
#[test]
fn a_crl_number_is_never_published_twice() {
    let t = tempfile::tempdir().unwrap();
    let root = TestCa::root(&t.path().join("root"), 3650, T0);
    let crl_pem = root.dir.path().join("crl.pem");
    let index = root.dir.path().join("index.json");
    // Every CRL that appeared in crl.pem, in order.
    let mut published: Vec<pki::Crl> = Vec::new();
    let look = |published: &mut Vec<pki::Crl>| {
        if let Ok(bytes) = std::fs::read(&crl_pem) {
            let crl = pki::Crl::from_pem(&bytes).unwrap();
            if published.last().map(|c| c.to_pem()) != Some(crl.to_pem()) {
                published.push(crl);
            }
        }
    };
    root.act(T0, Action::Crl, |a| a.publish_crl(24)).unwrap();
    look(&mut published);

    // The index write fails, after the CRL is signed (and recorded ahead of the commit).
    let at = T0 + 10;
    let err = root
        .act_with_fault(at, Action::Crl, Box::new(|| block(&index)), |a| {
            a.publish_crl(24)
        })
        .unwrap_err();
    assert!(
        matches!(&err, CaError::NotCommitted { source, .. } if matches!(**source, CaError::Io { .. })),
        "{err:?}"
    );
    restore(&index);
    look(&mut published);

    // The crl.pem write fails, after the CRL is signed.
    let err = root
        .act_with_fault(at + 10, Action::Crl, Box::new(|| block(&crl_pem)), |a| {
            a.publish_crl(24)
        })
        .unwrap_err();
    assert!(matches!(err, CaError::Io { .. }), "{err:?}");
    restore(&crl_pem);
    look(&mut published);

    let last = root
        .act(at + 20, Action::Crl, |a| a.publish_crl(24))
        .unwrap()
        .crl;
    look(&mut published);
    let numbers: Vec<u64> = published.iter().map(|c| c.number()).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "CRL numbers published in this order: {numbers:?}"
    );
    // The number the failed crl.pem write signed is skipped; the index never falls behind a
    // published number.
    assert_eq!((last.number(), root.index().crl_number), (3, 3));
    root.log_verifies();
}

// Found while fixing defect 1 of the review of issue 11: the audit entry was appended after the
// action had committed, so an append that failed then (a full disk) left a certificate in the
// index, signed and valid, that no audit entry records. The entry is now written ahead of the
// index (write-ahead): an action whose entry cannot be written does not happen.
#[test]
fn an_action_whose_audit_entry_cannot_be_written_does_not_happen() {
    let t = tempfile::tempdir().unwrap();
    let root = TestCa::root(&t.path().join("root"), 3650, T0);
    root.issue(T0, Role::User, &key(10), "user-1");
    let log_path = root.dir.path().join("audit.log");
    let log = std::fs::read(&log_path).unwrap();
    let before = (root.index(), cert_file_names(&root));
    let req = csr(&key(11), "CN=user-2");
    // The CA key signs the certificate, then the audit entry: the log fails at the second.
    let r = root.audited_with_fault(
        T0 + 10,
        Action::Issue,
        Tripwire::at(2, &root.key, Box::new(|| block(&log_path))),
        |a| a.issue(Role::User, Holder::Request(&req), 30),
    );
    assert!(
        matches!(&r, Err(CaError::Io { path, .. }) if *path == log_path),
        "{r:?}"
    );
    restore(&log_path);
    assert_eq!(
        (root.index(), cert_file_names(&root)),
        before,
        "a certificate was issued that no audit entry records"
    );
    assert_eq!(std::fs::read(&log_path).unwrap(), log);
    root.log_verifies();
}

// The other half of writing the audit entry ahead of the commit: when the index write fails
// after the `done` entry, a refusal with CA_NOT_COMMITTED names that entry, and nothing is
// issued.
#[test]
fn an_action_recorded_ahead_of_a_failed_commit_is_followed_by_its_refusal() {
    let t = tempfile::tempdir().unwrap();
    let root = TestCa::root(&t.path().join("root"), 3650, T0);
    let index_path = root.dir.path().join("index.json");
    let before = (root.index(), cert_file_names(&root));
    let req = csr(&key(11), "CN=user-2");
    // The CA key signs the certificate, then the audit entry; then the index write fails.
    let audited = root
        .audited_with_fault(
            T0 + 10,
            Action::Issue,
            Tripwire::at(2, &root.key, Box::new(|| block(&index_path))),
            |a| a.issue(Role::User, Holder::Request(&req), 30),
        )
        .expect("the audit entries are written");
    restore(&index_path);
    let err = audited.result.unwrap_err();
    let log = root.log();
    let (done, refused) = (&log[log.len() - 2], &log[log.len() - 1]);
    assert!(
        matches!(&err, CaError::NotCommitted { seq, .. } if *seq == done.seq),
        "{err:?}"
    );
    assert_eq!(
        (done.action.as_str(), done.outcome),
        ("issue", Outcome::Done)
    );
    assert!(done.detail.starts_with("user CN=user-2"), "{done:?}");
    assert_refused_entry(
        &root,
        T0 + 10,
        Action::Issue,
        &format!(
            "CA_NOT_COMMITTED: the action recorded as done in audit entry {} was not carried out: ",
            done.seq
        ),
    );
    assert_eq!(audited.head, refused.hash);
    assert_eq!((root.index(), cert_file_names(&root)), before);
    root.log_verifies();
}

/// Second review of issue 11: an emptied or deleted audit log counted as appendable, so anyone
/// who could write the directory erased the CA's history without its key and the next action
/// started a new one at entry 0. An initialised CA's log holds at least its `init` entry.
#[test]
fn an_emptied_or_deleted_audit_log_refuses_the_next_action() {
    let t = tempfile::tempdir().unwrap();
    let root = TestCa::root(&t.path().join("root"), 3650, T0);
    root.issue(T0, Role::User, &key(10), "user-1");
    let log_path = root.dir.path().join("audit.log");
    let req = csr(&key(11), "CN=user-2");
    let clock = UnixTime(T0 + 10);
    let cx = root.cx(&clock);
    for erase in ["truncate", "delete"] {
        match erase {
            "truncate" => std::fs::write(&log_path, b"").unwrap(),
            _ => std::fs::remove_file(&log_path).unwrap(),
        }
        let before = (root.index(), cert_file_names(&root));
        let r = root.dir.audited(&cx, Action::Issue, |a| {
            a.issue(Role::User, Holder::Request(&req), 30)
                .map(|i| i.audit_detail())
        });
        assert!(
            matches!(&r, Err(CaError::AuditBroken { seq: 0, reason }) if reason.contains("truncated or deleted")),
            "{erase}: {r:?}"
        );
        assert_eq!((root.index(), cert_file_names(&root)), before, "{erase}");
    }
}

/// Issues a dual pair for the request `req` with an escrow store that refuses every deposit, and
/// returns the error.
fn pair_refused_by_an_offline_escrow(ca: &TestCa, req: &[u8], pass: &Secret) -> CaError {
    let offline = MemoryEscrow {
        refuse: true,
        ..Default::default()
    };
    ca.act(T0, Action::Issue, |a| {
        a.issue_pair(
            Role::NodeSign,
            Holder::Request(req),
            365,
            Escrow {
                passphrase: pass,
                store: &offline,
            },
        )
    })
    .unwrap_err()
}
