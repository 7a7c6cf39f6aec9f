//! `gmchain ca` as CA admins use it: the demo PKI script (root, two agency CAs with keys in their
//! own tokens, nodes with a dual pair, admins, users, an auditor, a revocation, CRLs), chain
//! verification with revocation, the signed audit log, renewal, refusals and two admins at once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::demo_pki;
use demo_pki::{demo_pki, gm, repo, softtoken_module};

fn ok(dir: &Path, args: &[&str]) -> Output {
    let o = gm(dir, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "gmchain {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn head(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("audit head: ").map(String::from))
        .expect("the command prints the audit head")
}

fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl must be installed")
}

#[test]
fn demo_pki_validates_and_revocation_fails_closed() {
    let t = demo_pki();
    let d = t.path();
    let verify = |role: &str, cert: &str, crls: bool| {
        let mut a = vec![
            "ca",
            "verify",
            "--anchor",
            "root.pem",
            "--untrusted",
            "agency-a-ca.pem",
            "--untrusted",
            "agency-b-ca.pem",
            "--role",
            role,
        ];
        if crls {
            a.extend([
                "--crl",
                "root.crl",
                "--crl",
                "agency-a.crl",
                "--crl",
                "agency-b.crl",
            ]);
        }
        a.push(cert);
        gm(d, &a)
    };
    for (role, cert) in [
        ("node-sign", "node-a1.pem"),
        ("node-enc", "node-a1.enc.pem"),
        ("admin", "admin-a.pem"),
        ("user", "user-a1.pem"),
        ("auditor", "auditor-b.pem"),
        ("node-sign", "node-b1.pem"),
    ] {
        let o = verify(role, cert, true);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{cert} as {role}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Revoked user: did not verify, and the error names the certificate and the code.
    let o = verify("user", "user-a2.pem", true);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("CERT_REVOKED") && err.contains("user-a2"),
        "{err}"
    );
    // Without CRLs the answer is "revocation unknown", never "valid".
    let o = verify("user", "user-a1.pem", false);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("CERT_REVOCATION_UNKNOWN"));
    // Wrong role for the certificate's key usage.
    assert_eq!(verify("admin", "user-a1.pem", true).status.code(), Some(1));
    // An organisation's identity does not chain through another agency's CA.
    let o = gm(
        d,
        &[
            "ca",
            "verify",
            "--anchor",
            "root.pem",
            "--untrusted",
            "agency-a-ca.pem",
            "--crl",
            "root.crl",
            "--crl",
            "agency-a.crl",
            "--role",
            "user",
            "user-b1.pem",
        ],
    );
    assert_eq!(o.status.code(), Some(1));

    // OpenSSL 3.0 accepts each link with the standard ID (it cannot carry the ID through a
    // three-level chain in one call; crates/pki/tests/interop.rs checks every signature with GmSSL).
    for (ca, leaf) in [
        ("root.pem", "agency-a-ca.pem"),
        ("agency-a-ca.pem", "node-a1.pem"),
        ("agency-b-ca.pem", "auditor-b.pem"),
    ] {
        let o = openssl(
            d,
            &[
                "verify",
                "-vfyopt",
                "distid:1234567812345678",
                "-partial_chain",
                "-CAfile",
                ca,
                leaf,
            ],
        );
        assert!(
            o.status.success(),
            "openssl verify {leaf}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    for f in ["root.pem", "node-a1.pem", "node-a1.enc.pem"] {
        assert!(
            openssl(d, &["x509", "-in", f, "-noout", "-text"])
                .status
                .success()
        );
    }
    assert!(
        openssl(d, &["crl", "-in", "agency-a.crl", "-noout", "-text"])
            .status
            .success()
    );

    // The dual pair: the envelope opens with the holder's signing key to the encryption key the
    // CA certified; the escrow copy opens with the escrow passphrase to the same key.
    let holder = crypto_sm::keys::decode_private_key(
        &std::fs::read(d.join("node-a1.key")).unwrap(),
        Some(b"user-pin-1234"),
    )
    .unwrap();
    let holder =
        crypto_sm::SoftwareProvider::new(std::sync::Arc::new(crypto_sm::rng::SeededRandom::new(1)))
            .signer(holder);
    let enc_key = pki::envelope::open(
        &std::fs::read(d.join("node-a1.envelope.der")).unwrap(),
        &holder,
    )
    .unwrap();
    let enc_cert =
        pki::Certificate::from_pem(&std::fs::read(d.join("node-a1.enc.pem")).unwrap()).unwrap();
    assert_eq!(enc_key.public_key(), enc_cert.public_key());
    let escrow = d.join(format!(
        "agency-a/escrow/{}.pem",
        enc_cert.serial().to_hex()
    ));
    let escrowed = crypto_sm::keys::decode_private_key(
        &std::fs::read(&escrow).unwrap(),
        Some(b"escrow-passphrase"),
    )
    .unwrap();
    assert_eq!(escrowed.public_key(), enc_cert.public_key());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&escrow).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // No private key in clear anywhere in the CA directories.
    for ca in ["root", "agency-a", "agency-b"] {
        for entry in walk(&d.join(ca)) {
            let text = std::fs::read(&entry).unwrap();
            assert!(
                !String::from_utf8_lossy(&text).contains("BEGIN PRIVATE KEY")
                    && !String::from_utf8_lossy(&text).contains("BEGIN EC PRIVATE KEY"),
                "{}",
                entry.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn audit_log_detects_edit_and_truncation() {
    let t = demo_pki();
    let d = t.path();
    let o = ok(
        d,
        &[
            "ca",
            "crl",
            "--dir",
            "agency-b",
            "--pass-file",
            "user.pin",
            "--out",
            "b2.crl",
        ],
    );
    let h = head(&o);
    let o = ok(
        d,
        &[
            "ca",
            "audit-verify",
            "--dir",
            "agency-b",
            "--expect-head",
            &h,
        ],
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("audit log OK"));
    let log = d.join("agency-b/audit.log");
    let original = std::fs::read_to_string(&log).unwrap();
    assert!(
        original.contains("\"operator\":\"pki-script\"")
            && original.contains("\"operator\":\"test-admin\"")
    );
    // Truncated: consistent by itself, caught by the expected head.
    let lines: Vec<&str> = original.lines().collect();
    std::fs::write(&log, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    assert_eq!(
        gm(
            d,
            &[
                "ca",
                "audit-verify",
                "--dir",
                "agency-b",
                "--expect-head",
                &h
            ]
        )
        .status
        .code(),
        Some(1)
    );
    // Edited.
    std::fs::write(&log, original.replacen("test-admin", "someone-else", 1)).unwrap();
    let o = gm(d, &["ca", "audit-verify", "--dir", "agency-b"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("edited"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn refusals_renewal_and_two_admins() {
    let t = demo_pki();
    let d = t.path();
    // A CSR claiming a role (OU) other than the one requested is refused, and the refusal is logged.
    ok(
        d,
        &[
            "crypto",
            "keygen",
            "--encrypt",
            "--pass-file",
            "user.pin",
            "--iterations",
            "10000",
            "--out",
            "x.key",
        ],
    );
    ok(
        d,
        &[
            "crypto",
            "csr",
            "--key",
            "x.key",
            "--pass-file",
            "user.pin",
            "--subject",
            "CN=x,OU=admin",
            "--out",
            "x.csr",
        ],
    );
    let o = gm(
        d,
        &[
            "ca",
            "issue",
            "--dir",
            "agency-a",
            "--role",
            "user",
            "--csr",
            "x.csr",
            "--pass-file",
            "user.pin",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let log = std::fs::read_to_string(d.join("agency-a/audit.log")).unwrap();
    assert!(
        log.lines()
            .last()
            .unwrap()
            .contains("\"outcome\":\"refused\""),
        "{log}"
    );
    // A wrong token PIN: refused, recorded unsigned, the log still verifies.
    std::fs::write(d.join("wrong.pin"), "wrong-pin-0\n").unwrap();
    assert_eq!(
        gm(
            d,
            &["ca", "crl", "--dir", "agency-a", "--pass-file", "wrong.pin"]
        )
        .status
        .code(),
        Some(2)
    );
    let o = ok(d, &["ca", "audit-verify", "--dir", "agency-a"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("unsigned"));

    // A key pair the CA generates: delivered only as an encrypted PKCS#8 file, matching the certificate.
    std::fs::write(d.join("holder.pass"), "holder-passphrase\n").unwrap();
    ok(
        d,
        &[
            "ca",
            "issue",
            "--dir",
            "agency-a",
            "--role",
            "admin",
            "--generate",
            "--name",
            "admin-gen",
            "--key-out",
            "admin-gen.key",
            "--key-pass-file",
            "holder.pass",
            "--pass-file",
            "user.pin",
            "--out",
            "admin-gen.pem",
        ],
    );
    let key_pem = std::fs::read(d.join("admin-gen.key")).unwrap();
    assert!(String::from_utf8_lossy(&key_pem).starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let key = crypto_sm::keys::decode_private_key(&key_pem, Some(b"holder-passphrase")).unwrap();
    let cert =
        pki::Certificate::from_pem(&std::fs::read(d.join("admin-gen.pem")).unwrap()).unwrap();
    assert_eq!(cert.public_key(), key.public_key());
    assert_eq!(cert.role(), Some(pki::Role::Admin));
    // --generate without its companions is a usage error.
    assert_eq!(
        gm(
            d,
            &[
                "ca",
                "issue",
                "--dir",
                "agency-a",
                "--role",
                "user",
                "--generate",
                "--pass-file",
                "user.pin"
            ]
        )
        .status
        .code(),
        Some(2)
    );
    // --dual without --escrow-pass-file is refused before anything is issued: the audit entry
    // says "refused", so the index must not hold a new signing certificate.
    new_key(d, "dual.key");
    csr(d, "dual.key", "node-a8", "dual.csr");
    let before = issued(d, "agency-a");
    let o = issue(
        d,
        "agency-a",
        "node-sign",
        &["--csr", "dual.csr"],
        "dual.pem",
        &["--dual"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--escrow-pass-file"), "{err}");
    assert_eq!(
        issued(d, "agency-a"),
        before,
        "a refused --dual issuance left a certificate in the index"
    );
    assert_eq!(last_audit_entry(d, "agency-a")["outcome"], "refused");

    // Renewal: new serial, same subject, linked both ways in the index.
    let old = pki::Certificate::from_pem(&std::fs::read(d.join("user-a1.pem")).unwrap()).unwrap();
    ok(
        d,
        &[
            "ca",
            "renew",
            "--dir",
            "agency-a",
            "--serial",
            &old.serial().to_hex(),
            "--pass-file",
            "user.pin",
            "--out",
            "user-a1.renewed.pem",
        ],
    );
    let new =
        pki::Certificate::from_pem(&std::fs::read(d.join("user-a1.renewed.pem")).unwrap()).unwrap();
    assert_ne!(new.serial(), old.serial());
    assert_eq!(
        (new.subject(), new.public_key()),
        (old.subject(), old.public_key())
    );
    let show = String::from_utf8_lossy(
        &ok(
            d,
            &[
                "ca",
                "show",
                "--dir",
                "agency-a",
                "--serial",
                &new.serial().to_hex(),
            ],
        )
        .stdout,
    )
    .into_owned();
    assert!(
        show.contains(&format!("\"renews\": \"{}\"", old.serial().to_hex())),
        "{show}"
    );
    assert_eq!(
        gm(
            d,
            &[
                "ca",
                "renew",
                "--dir",
                "agency-a",
                "--serial",
                &old.serial().to_hex(),
                "--pass-file",
                "user.pin"
            ]
        )
        .status
        .code(),
        Some(2)
    );

    // Two admins issuing at once: both serialised by the lock, nothing lost, the log verifies.
    for i in 0..4 {
        ok(
            d,
            &[
                "crypto",
                "keygen",
                "--encrypt",
                "--pass-file",
                "user.pin",
                "--iterations",
                "10000",
                "--out",
                &format!("c{i}.key"),
            ],
        );
        ok(
            d,
            &[
                "crypto",
                "csr",
                "--key",
                &format!("c{i}.key"),
                "--pass-file",
                "user.pin",
                "--subject",
                &format!("CN=c{i}"),
                "--out",
                &format!("c{i}.csr"),
            ],
        );
    }
    let before = String::from_utf8_lossy(&ok(d, &["ca", "list", "--dir", "agency-a"]).stdout)
        .lines()
        .count();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let d = d.to_path_buf();
            std::thread::spawn(move || {
                gm(
                    &d,
                    &[
                        "ca",
                        "issue",
                        "--dir",
                        "agency-a",
                        "--role",
                        "user",
                        "--csr",
                        &format!("c{i}.csr"),
                        "--pass-file",
                        "user.pin",
                    ],
                )
            })
        })
        .collect();
    for h in handles {
        let o = h.join().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let list =
        String::from_utf8_lossy(&ok(d, &["ca", "list", "--dir", "agency-a"]).stdout).into_owned();
    assert_eq!(list.lines().count(), before + 4, "{list}");
    ok(d, &["ca", "audit-verify", "--dir", "agency-a"]);
}

fn last_audit_entry(d: &Path, ca: &str) -> serde_json::Value {
    let log = std::fs::read_to_string(d.join(ca).join("audit.log")).unwrap();
    serde_json::from_str(log.lines().last().unwrap()).unwrap()
}

// Issue 9 defect 7: whoever can write the log could rewrite its tail as unsigned entries with
// recomputed hash links, and `audit-verify` exited 0.
#[test]
fn audit_verify_rejects_forged_unsigned_entries_and_strict_fails_on_unsigned_tail() {
    let t = demo_pki();
    let d = t.path();
    let dir = d.join("agency-b");
    let log = dir.join("audit.log");
    let original = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let n = lines.len();
    let forge = |outcome: ca::Outcome, detail: &str| {
        // Cut the last two signed entries and append forged ones, linked like real entries.
        std::fs::write(&log, lines[..n - 2].join("\n") + "\n").unwrap();
        let ca = ca::CaDir::open(&dir, true).unwrap();
        for i in 0..2 {
            ca.audit()
                .append(1_700_000_000 + i, "mallory", "issue", outcome, detail, None)
                .unwrap();
        }
    };
    forge(ca::Outcome::Done, "user CN=ghost serial 99");
    let o = gm(d, &["ca", "audit-verify", "--dir", "agency-b"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("entry {}", n - 2)) && err.contains("unsigned"),
        "{err}"
    );

    // Forged as key-unavailable refusals: they may stand as the unsigned tail, but the report
    // names the last signed head, and --strict fails.
    forge(ca::Outcome::Refused, "CA_KEY_UNAVAILABLE: no token");
    let signed_head: serde_json::Value = serde_json::from_str(lines[n - 3]).unwrap();
    let o = gm(d, &["ca", "audit-verify", "--dir", "agency-b"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains(&format!(
            "last signed entry {} hash {}",
            n - 3,
            signed_head["hash"].as_str().unwrap()
        )),
        "{out}"
    );
    let o = gm(d, &["ca", "audit-verify", "--dir", "agency-b", "--strict"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("entries {} to {}", n - 2, n - 1)),
        "{err}"
    );

    // A real key-unavailable refusal (wrong PIN) is the unsigned tail until the next signed entry
    // covers it.
    std::fs::write(&log, &original).unwrap();
    std::fs::write(d.join("wrong.pin"), "wrong-pin-0\n").unwrap();
    let o = gm(
        d,
        &["ca", "crl", "--dir", "agency-b", "--pass-file", "wrong.pin"],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = last_audit_entry(d, "agency-b");
    assert!(e["sig"].is_null());
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .starts_with("CA_KEY_UNAVAILABLE: "),
        "{e}"
    );
    assert_eq!(
        gm(d, &["ca", "audit-verify", "--dir", "agency-b", "--strict"])
            .status
            .code(),
        Some(1)
    );
    ok(
        d,
        &["ca", "crl", "--dir", "agency-b", "--pass-file", "user.pin"],
    );
    ok(d, &["ca", "audit-verify", "--dir", "agency-b", "--strict"]);
}

fn cert(d: &Path, file: &str) -> pki::Certificate {
    pki::Certificate::from_pem(&std::fs::read(d.join(file)).unwrap()).unwrap()
}

/// `ca verify` of an agency-A certificate against fresh CRLs of agency A and the root.
fn verify_a(d: &Path, role: &str, file: &str) -> Output {
    ok(
        d,
        &[
            "ca",
            "crl",
            "--dir",
            "agency-a",
            "--pass-file",
            "user.pin",
            "--out",
            "a-now.crl",
        ],
    );
    gm(
        d,
        &[
            "ca",
            "verify",
            "--anchor",
            "root.pem",
            "--untrusted",
            "agency-a-ca.pem",
            "--crl",
            "root.crl",
            "--crl",
            "a-now.crl",
            "--role",
            role,
            file,
        ],
    )
}

fn csr(d: &Path, key: &str, cn: &str, out: &str) {
    ok(
        d,
        &[
            "crypto",
            "csr",
            "--key",
            key,
            "--pass-file",
            "user.pin",
            "--subject",
            &format!("CN={cn}"),
            "--out",
            out,
        ],
    );
}

fn new_key(d: &Path, out: &str) {
    ok(
        d,
        &[
            "crypto",
            "keygen",
            "--encrypt",
            "--pass-file",
            "user.pin",
            "--iterations",
            "10000",
            "--out",
            out,
        ],
    );
}

fn renew(d: &Path, ca: &str, serial: &str, csr: Option<&str>, out: &str) -> Output {
    let mut a = vec![
        "ca",
        "renew",
        "--dir",
        ca,
        "--serial",
        serial,
        "--pass-file",
        "user.pin",
        "--out",
        out,
    ];
    if let Some(c) = csr {
        a.extend(["--csr", c]);
    }
    gm(d, &a)
}

// Issue 9 defect 4: a certificate revoked for key compromise renewed with exit 0, the new
// certificate carried the same key and `ca verify` accepted it.
#[test]
fn renewal_of_key_compromised_certificate_is_refused_and_audited() {
    let t = demo_pki();
    let d = t.path();
    // make-test-pki.sh revoked user-a2 for key-compromise.
    let revoked = cert(d, "user-a2.pem");
    let serial = revoked.serial().to_hex();
    let o = renew(d, "agency-a", &serial, None, "user-a2.renewed.pem");
    if d.join("user-a2.renewed.pem").exists() {
        let v = verify_a(d, "user", "user-a2.renewed.pem");
        assert_ne!(
            v.status.code(),
            Some(0),
            "ca verify accepted a renewal of a key-compromised certificate: {}",
            String::from_utf8_lossy(&v.stdout)
        );
    }
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let msg: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("audit head: "))
        .collect();
    assert_eq!(msg.len(), 1, "{err}");
    assert!(
        msg[0].contains(&serial) && msg[0].contains("key-compromise"),
        "{err}"
    );
    assert!(!d.join("user-a2.renewed.pem").exists());
    let e = last_audit_entry(d, "agency-a");
    assert_eq!(
        (&e["action"], &e["outcome"]),
        (&"renew".into(), &"refused".into())
    );
    let detail = e["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("CA_RENEW_REVOKED: ") && detail.contains(&serial),
        "{detail}"
    );
    assert!(e["sig"].is_string(), "the refusal is signed: {e}");
    ok(d, &["ca", "audit-verify", "--dir", "agency-a", "--strict"]);
    // Not with a new CSR either: a revoked certificate gets a new issuance, not a renewal.
    new_key(d, "a2-new.key");
    csr(d, "a2-new.key", "user-a2", "a2-new.csr");
    let o = renew(d, "agency-a", &serial, Some("a2-new.csr"), "x.pem");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("CA_RENEW_REVOKED"));

    // Nor is the compromised key certified again through another holder's CSR.
    let admin = cert(d, "admin-a.pem");
    csr(d, "user-a2.key", "admin-a", "admin-a-bad.csr");
    let o = renew(
        d,
        "agency-a",
        &admin.serial().to_hex(),
        Some("admin-a-bad.csr"),
        "admin-a-bad.pem",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&serial));
    assert!(!d.join("admin-a-bad.pem").exists());
    assert!(
        last_audit_entry(d, "agency-a")["detail"]
            .as_str()
            .unwrap()
            .starts_with("CA_RENEW_KEY_COMPROMISED: ")
    );
    ok(d, &["ca", "audit-verify", "--dir", "agency-a", "--strict"]);
}

// Issue 9 defect 4, the other way round: a certificate renewed with the same key before its key
// was compromised. Revoking the old one for key-compromise revokes the renewal too, so
// `ca verify` accepts nothing renewed from it.
#[test]
fn key_compromise_revokes_renewals_that_kept_the_key() {
    let t = demo_pki();
    let d = t.path();
    let a1 = cert(d, "user-a1.pem");
    let o = renew(
        d,
        "agency-a",
        &a1.serial().to_hex(),
        None,
        "user-a1.renewed.pem",
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let renewed = cert(d, "user-a1.renewed.pem");
    assert_eq!(renewed.public_key(), a1.public_key());
    assert_eq!(
        verify_a(d, "user", "user-a1.renewed.pem").status.code(),
        Some(0)
    );
    let o = ok(
        d,
        &[
            "ca",
            "revoke",
            "--dir",
            "agency-a",
            "--serial",
            &a1.serial().to_hex(),
            "--reason",
            "key-compromise",
            "--pass-file",
            "user.pin",
        ],
    );
    for f in ["user-a1.pem", "user-a1.renewed.pem"] {
        let v = verify_a(d, "user", f);
        assert_eq!(
            v.status.code(),
            Some(1),
            "ca verify of {f} after its key was revoked for key-compromise: {}",
            String::from_utf8_lossy(&v.stdout)
        );
        assert!(String::from_utf8_lossy(&v.stderr).contains("CERT_REVOKED"));
    }
    // The revocation names the certificate it took along.
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&renewed.serial().to_hex()),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// `ca issue --role ROLE` for `holder` (plus `extra`) at the CA directory `ca`, output to `out`.
/// `ca intermediate` by the demo root for the request `csr` of `org`, written to `out`.
fn intermediate(d: &Path, csr: &str, org: &str, out: &str) -> Output {
    gm(
        d,
        &[
            "ca",
            "intermediate",
            "--dir",
            "root",
            "--csr",
            csr,
            "--org",
            org,
            "--pass-file",
            "root.pass",
            "--out",
            out,
        ],
    )
}

fn issue(d: &Path, ca: &str, role: &str, holder: &[&str], out: &str, extra: &[&str]) -> Output {
    let mut a = vec![
        "ca",
        "issue",
        "--dir",
        ca,
        "--role",
        role,
        "--pass-file",
        if ca == "root" {
            "root.pass"
        } else {
            "user.pin"
        },
        "--out",
        out,
    ];
    a.extend(holder);
    a.extend(extra);
    gm(d, &a)
}

/// The number of certificates a CA has issued.
fn issued(d: &Path, ca: &str) -> usize {
    String::from_utf8_lossy(&ok(d, &["ca", "list", "--dir", ca]).stdout)
        .lines()
        .count()
        - 1
}

/// Checks a refusal: exit 2, one line naming `serial`, a signed audit entry of `action`
/// refused whose detail starts with `code`, and a log that verifies strictly.
fn assert_refused(d: &Path, ca: &str, o: &Output, action: &str, code: &str, serial: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let msg: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("audit head: "))
        .collect();
    assert_eq!(msg.len(), 1, "{err}");
    assert!(
        msg[0].contains(code) && msg[0].contains(serial),
        "expected {code} naming serial {serial}: {err}"
    );
    let e = last_audit_entry(d, ca);
    assert_eq!(
        (&e["action"], &e["outcome"]),
        (&action.into(), &"refused".into()),
        "{e}"
    );
    let detail = e["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!("{code}: ")) && detail.contains(serial),
        "{detail}"
    );
    assert!(e["sig"].is_string(), "the refusal is signed: {e}");
    ok(d, &["ca", "audit-verify", "--dir", ca, "--strict"]);
}

// Issue 9 defect 4, through `ca issue`: renewal refused a key the CA recorded as compromised,
// but a new CSR for the same key was issued with exit 0 and `ca verify` accepted the result.
#[test]
fn issue_of_a_key_recorded_as_compromised_is_refused_and_audited() {
    let t = demo_pki();
    let d = t.path();
    // make-test-pki.sh revoked user-a2 for key-compromise; its key signs a new CSR.
    let serial = cert(d, "user-a2.pem").serial().to_hex();
    csr(d, "user-a2.key", "user-a2", "a2-again.csr");
    let before = issued(d, "agency-a");
    let o = issue(
        d,
        "agency-a",
        "user",
        &["--csr", "a2-again.csr"],
        "a2-again.pem",
        &[],
    );
    if d.join("a2-again.pem").exists() {
        let v = verify_a(d, "user", "a2-again.pem");
        assert_ne!(
            v.status.code(),
            Some(0),
            "ca issue certified a key revoked for key-compromise (exit {:?}) and ca verify accepted it: {}",
            o.status.code(),
            String::from_utf8_lossy(&v.stdout)
        );
    }
    assert_refused(d, "agency-a", &o, "issue", "CA_KEY_COMPROMISED", &serial);
    assert!(!d.join("a2-again.pem").exists());

    // Under another name and role, and as the signing half of a dual pair: refused, and
    // nothing is issued (no node-enc half either).
    csr(d, "user-a2.key", "node-a9", "a9.csr");
    let o = issue(
        d,
        "agency-a",
        "node-sign",
        &["--csr", "a9.csr"],
        "a9.pem",
        &["--dual", "--escrow-pass-file", "escrow.pass"],
    );
    assert_refused(d, "agency-a", &o, "issue", "CA_KEY_COMPROMISED", &serial);
    assert!(!d.join("a9.pem").exists() && !d.join("a9.enc.pem").exists());
    assert_eq!(issued(d, "agency-a"), before);

    // A key that was never compromised is still issued.
    new_key(d, "a2-fresh.key");
    csr(d, "a2-fresh.key", "user-a2", "a2-fresh.csr");
    let o = issue(
        d,
        "agency-a",
        "user",
        &["--csr", "a2-fresh.csr"],
        "a2-fresh.pem",
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(verify_a(d, "user", "a2-fresh.pem").status.code(), Some(0));

    // `ca intermediate`: the root recorded agency B's CA key as compromised; a new CSR of that
    // key for a new agency CA certificate is refused.
    let b_ca = cert(d, "agency-b-ca.pem").serial().to_hex();
    ok(
        d,
        &[
            "ca",
            "revoke",
            "--dir",
            "root",
            "--serial",
            &b_ca,
            "--reason",
            "ca-compromise",
            "--pass-file",
            "root.pass",
        ],
    );
    let profile = repo().join("hsm-profiles/gmchain-softtoken.toml");
    ok(
        d,
        &[
            "keys",
            "csr",
            "--hsm-profile",
            profile.to_str().unwrap(),
            "--key",
            "pkcs11:token=agency-b;object=ca",
            "--pass-file",
            "user.pin",
            "--subject",
            "CN=Agency B CA 2",
            "--out",
            "agency-b-2.csr",
        ],
    );
    let o = intermediate(d, "agency-b-2.csr", "Agency B", "agency-b-2-ca.pem");
    assert_refused(d, "root", &o, "intermediate", "CA_KEY_COMPROMISED", &b_ca);
    assert!(!d.join("agency-b-2-ca.pem").exists());
}

// What a CA that recorded the compromise of its own key (a certificate it issued revoked for
// ca-compromise) still does: it revokes and publishes CRLs, and it certifies nothing more, by
// any command, since whoever holds its key can sign the same certificates.
#[test]
fn after_a_ca_compromise_the_ca_issues_nothing() {
    let t = demo_pki();
    let d = t.path();
    // Agency B records that its own key was compromised.
    let b1 = cert(d, "user-b1.pem").serial().to_hex();
    ok(
        d,
        &[
            "ca",
            "revoke",
            "--dir",
            "agency-b",
            "--serial",
            &b1,
            "--reason",
            "ca-compromise",
            "--pass-file",
            "user.pin",
        ],
    );
    let before = issued(d, "agency-b");
    new_key(d, "b-new.key");
    csr(d, "b-new.key", "user-b9", "b-new.csr");
    let o = issue(
        d,
        "agency-b",
        "user",
        &["--csr", "b-new.csr"],
        "b-new.pem",
        &[],
    );
    assert_refused(d, "agency-b", &o, "issue", "CA_COMPROMISED", &b1);
    std::fs::write(d.join("holder.pass"), "holder-passphrase\n").unwrap();
    let o = issue(
        d,
        "agency-b",
        "admin",
        &[
            "--generate",
            "--name",
            "admin-b9",
            "--key-out",
            "admin-b9.key",
            "--key-pass-file",
            "holder.pass",
        ],
        "admin-b9.pem",
        &[],
    );
    assert_refused(d, "agency-b", &o, "issue", "CA_COMPROMISED", &b1);
    assert!(!d.join("admin-b9.key").exists() && !d.join("admin-b9.pem").exists());
    // Renewal too, keeping the key or with a new one.
    let admin = cert(d, "admin-b.pem").serial().to_hex();
    let o = renew(d, "agency-b", &admin, None, "admin-b.renewed.pem");
    assert_refused(d, "agency-b", &o, "renew", "CA_COMPROMISED", &b1);
    new_key(d, "admin-b-new.key");
    csr(d, "admin-b-new.key", "admin-b", "admin-b-new.csr");
    let o = renew(
        d,
        "agency-b",
        &admin,
        Some("admin-b-new.csr"),
        "admin-b.renewed.pem",
    );
    assert_refused(d, "agency-b", &o, "renew", "CA_COMPROMISED", &b1);
    assert!(!d.join("b-new.pem").exists() && !d.join("admin-b.renewed.pem").exists());
    assert_eq!(issued(d, "agency-b"), before);
    // Revocation information still flows: the CRL names the compromise.
    ok(
        d,
        &[
            "ca",
            "crl",
            "--dir",
            "agency-b",
            "--pass-file",
            "user.pin",
            "--out",
            "b-now.crl",
        ],
    );
    let crl = openssl(d, &["crl", "-in", "b-now.crl", "-noout", "-text"]);
    assert!(
        String::from_utf8_lossy(&crl.stdout).contains("CA Compromise"),
        "{}",
        String::from_utf8_lossy(&crl.stdout)
    );

    // The root recording its own compromise stops `ca intermediate` as well.
    ok(
        d,
        &[
            "crypto",
            "csr",
            "--key",
            "b-new.key",
            "--pass-file",
            "user.pin",
            "--subject",
            "CN=root-user",
            "--out",
            "root-user.csr",
        ],
    );
    let o = issue(
        d,
        "root",
        "user",
        &["--csr", "root-user.csr"],
        "root-user.pem",
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let root_user = cert(d, "root-user.pem").serial().to_hex();
    ok(
        d,
        &[
            "ca",
            "revoke",
            "--dir",
            "root",
            "--serial",
            &root_user,
            "--reason",
            "ca-compromise",
            "--pass-file",
            "root.pass",
        ],
    );
    new_key(d, "c-new.key");
    csr(d, "c-new.key", "Agency C CA", "agency-c.csr");
    let o = intermediate(d, "agency-c.csr", "Agency C", "agency-c-ca.pem");
    assert_refused(d, "root", &o, "intermediate", "CA_COMPROMISED", &root_user);
    assert!(!d.join("agency-c-ca.pem").exists());
}

// Found while moving the CA's rules into `ca::Authority` (issue 11 point 4): `ca issue --dual`
// read the escrow passphrase only after it had issued and indexed the node-sign certificate, so
// an unreadable --escrow-pass-file left a certificate in the index while the command exited 2
// and the audit log recorded the issuance as refused.
#[test]
fn dual_issuance_with_an_unreadable_escrow_passphrase_issues_nothing() {
    let t = demo_pki();
    let d = t.path();
    new_key(d, "dual.key");
    csr(d, "dual.key", "node-a7", "dual.csr");
    let before = issued(d, "agency-a");
    let o = issue(
        d,
        "agency-a",
        "node-sign",
        &["--csr", "dual.csr"],
        "dual.pem",
        &["--dual", "--escrow-pass-file", "no-such-escrow.pass"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no-such-escrow.pass"), "{err}");
    assert_eq!(last_audit_entry(d, "agency-a")["outcome"], "refused");
    assert_eq!(
        issued(d, "agency-a"),
        before,
        "the audit log says refused, but the index holds a new certificate"
    );
    assert!(!d.join("dual.pem").exists() && !d.join("dual.enc.pem").exists());
    ok(d, &["ca", "audit-verify", "--dir", "agency-a", "--strict"]);
}

/// Issue 11 point 1: not every CA error is exit 2. An agency CA certificate that does not
/// verify under the root given with it is "did not verify" (exit 1, CA_AGENCY_NOT_SIGNED_BY_ROOT),
/// where the CLI used to report every CA error as bad input (exit 2); a refusal by a rule stays 2.
#[test]
fn a_ca_error_exits_with_its_codes_class() {
    let t = demo_pki();
    let d = t.path();
    let rogue = ok(
        d,
        &[
            "ca",
            "init",
            "--dir",
            "rogue",
            "--name",
            "Rogue Root CA",
            "--org",
            "Rogue Root",
            "--pass-file",
            "root.pass",
        ],
    );
    std::fs::write(d.join("rogue.pem"), rogue.stdout).unwrap();
    let profile = repo().join("hsm-profiles/gmchain-softtoken.toml");
    let profile = profile.to_str().unwrap();
    // agency-a-ca.pem was issued by the demo root, not by the rogue root.
    let o = gm(
        d,
        &[
            "ca",
            "init",
            "--dir",
            "agency-x",
            "--name",
            "Agency A CA",
            "--org",
            "Agency A",
            "--cert",
            "agency-a-ca.pem",
            "--chain",
            "rogue.pem",
            "--key",
            "pkcs11:token=agency-a;object=ca",
            "--hsm-profile",
            profile,
            "--pass-file",
            "user.pin",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--cert is not signed by --chain"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // With the right root the certificate verifies, and the next check refuses: agency-a
    // already holds a CA (CA_EXISTS), bad input, exit 2.
    let o = gm(
        d,
        &[
            "ca",
            "init",
            "--dir",
            "agency-a",
            "--name",
            "Agency A CA",
            "--org",
            "Agency A",
            "--cert",
            "agency-a-ca.pem",
            "--chain",
            "root.pem",
            "--key",
            "pkcs11:token=agency-a;object=ca",
            "--hsm-profile",
            profile,
            "--pass-file",
            "user.pin",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The lines of a command's standard error other than the audit head.
fn message(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !l.starts_with("audit head: "))
        .map(String::from)
        .collect()
}

// Review of issue 11, defect 3: `ca issue` and `ca renew` wrote their outputs inside the
// audited action, after the library had committed: an output that could not be written made
// the command record a refusal although the certificate was issued (and with --generate the
// holder's private key was lost, and a renewal could not be retried).
#[test]
fn an_output_that_cannot_be_written_is_refused_before_anything_is_issued() {
    let t = demo_pki();
    let d = t.path();
    std::fs::write(d.join("holder.pass"), "holder-passphrase\n").unwrap();
    let before = issued(d, "agency-a");
    let o = issue(
        d,
        "agency-a",
        "admin",
        &[
            "--generate",
            "--name",
            "admin-a9",
            "--key-out",
            "/nonexistent/x.pem",
            "--key-pass-file",
            "holder.pass",
        ],
        "admin-a9.pem",
        &[],
    );
    refused_with_nothing_issued(
        d,
        &o,
        before,
        "a certificate was issued for a key that could not be delivered",
        "--key-out /nonexistent/x.pem",
        "issue",
    );
    assert!(!d.join("admin-a9.pem").exists());

    // `ca renew --out` into a directory that does not exist: nothing renewed, so the renewal
    // can be run again.
    let a1 = cert(d, "user-a1.pem").serial().to_hex();
    let o = renew(d, "agency-a", &a1, None, "no-such-dir/a1.pem");
    refused_with_nothing_issued(
        d,
        &o,
        before,
        "a renewal was issued that could not be delivered",
        "--out no-such-dir/a1.pem",
        "renew",
    );
    let o = renew(d, "agency-a", &a1, None, "a1-renewed.pem");
    assert_eq!(o.status.code(), Some(0), "{:?}", message(&o));
    assert_eq!(issued(d, "agency-a"), before + 1);

    // A dual pair without --out: its encryption certificate and enveloped key would go
    // nowhere.
    new_key(d, "n9.key");
    csr(d, "n9.key", "node-a9", "n9.csr");
    let o = gm(
        d,
        &[
            "ca",
            "issue",
            "--dir",
            "agency-a",
            "--role",
            "node-sign",
            "--csr",
            "n9.csr",
            "--dual",
            "--escrow-pass-file",
            "escrow.pass",
            "--pass-file",
            "user.pin",
        ],
    );
    let msg = message(&o);
    assert_eq!(
        issued(d, "agency-a"),
        before + 1,
        "a dual pair was issued whose enveloped key went nowhere: {msg:?}"
    );
    assert_eq!(o.status.code(), Some(2), "{msg:?}");
    assert!(
        msg.len() == 1 && msg[0].contains("--dual needs --out"),
        "{msg:?}"
    );
    ok(d, &["ca", "audit-verify", "--dir", "agency-a", "--strict"]);
}

// Review of issue 11, defect 3: an output that fails after the certificate was committed (here
// standard output, closed by the reader) is reported as what it is: the certificate was issued
// and recorded as done, and the message says how to get it.
#[test]
fn an_output_that_fails_after_the_commit_names_the_certificate_issued() {
    let t = demo_pki();
    let d = t.path();
    new_key(d, "late.key");
    csr(d, "late.key", "user-late", "late.csr");
    let before = issued(d, "agency-a");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .current_dir(d)
        .env("GMCHAIN_SOFTTOKEN_DIR", d.join("tokens"))
        .env("GMCHAIN_PKCS11_MODULE", softtoken_module())
        .env("GMCHAIN_OPERATOR", "test-admin")
        .args([
            "ca",
            "issue",
            "--dir",
            "agency-a",
            "--role",
            "user",
            "--csr",
            "late.csr",
            "--pass-file",
            "user.pin",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The certificate goes to standard output, whose reader is gone.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let msg = message(&o);
    assert_eq!(o.status.code(), Some(2), "{msg:?}");
    assert_eq!(issued(d, "agency-a"), before + 1);
    let e = last_audit_entry(d, "agency-a");
    assert_eq!(
        (&e["action"], &e["outcome"]),
        (&"issue".into(), &"done".into()),
        "{e}"
    );
    let serial = e["detail"]
        .as_str()
        .unwrap()
        .rsplit("serial ")
        .next()
        .unwrap()
        .to_string();
    assert!(
        msg.len() == 1
            && msg[0].contains(&format!("serial {serial} was issued and recorded"))
            && msg[0].contains(&format!("gmchain ca show --dir agency-a --serial {serial}")),
        "{msg:?}"
    );
    ok(d, &["ca", "audit-verify", "--dir", "agency-a", "--strict"]);
}

// Review of issue 11, defect 1, through the command line: a CA whose audit log ends in a
// partial line refuses to issue (the log does not verify: exit 1) and issues nothing.
#[test]
fn a_damaged_audit_log_refuses_the_command_and_issues_nothing() {
    use std::io::Write;
    let t = demo_pki();
    let d = t.path();
    new_key(d, "d.key");
    csr(d, "d.key", "user-d", "d.csr");
    let before = issued(d, "agency-a");
    std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("agency-a/audit.log"))
        .unwrap()
        .write_all(br#"{"seq":7,"time":1"#)
        .unwrap();
    let o = issue(d, "agency-a", "user", &["--csr", "d.csr"], "d.pem", &[]);
    let msg = message(&o);
    assert_eq!(o.status.code(), Some(1), "{msg:?}");
    assert!(
        msg.len() == 1 && msg[0].contains("audit log entry"),
        "{msg:?}"
    );
    assert_eq!(issued(d, "agency-a"), before);
    assert!(!d.join("d.pem").exists());
}

/// Asserts that `o` was refused (exit 2, one line containing `needle`), that agency-a issued
/// nothing (`before` certificates still), and that its last audit entry is `action` refused.
fn refused_with_nothing_issued(
    d: &Path,
    o: &Output,
    before: usize,
    what: &str,
    needle: &str,
    action: &str,
) {
    let msg = message(o);
    assert_eq!(issued(d, "agency-a"), before, "{what}: {msg:?}");
    assert_eq!(o.status.code(), Some(2), "{msg:?}");
    assert!(msg.len() == 1 && msg[0].contains(needle), "{msg:?}");
    let e = last_audit_entry(d, "agency-a");
    assert_eq!(
        (&e["action"], &e["outcome"]),
        (&action.into(), &"refused".into()),
        "{e}"
    );
}

/// Second review of issue 11: the outputs of one command were checked one by one, so two options
/// naming one file, an output inside the CA directory, or a --key-out over an existing file were
/// accepted and the later write destroyed what the command made (the generated key) or the CA
/// itself (its index). Each is refused before anything is issued.
#[test]
fn outputs_that_collide_or_land_in_the_ca_directory_are_refused_before_issuing() {
    let t = demo_pki();
    let d = t.path();
    std::fs::write(d.join("holder.pass"), "holder-passphrase\n").unwrap();
    std::fs::write(d.join("taken.pem"), "an existing file\n").unwrap();
    let generate = |key_out: &'static str| {
        [
            "--generate",
            "--name",
            "admin-a8",
            "--key-out",
            key_out,
            "--key-pass-file",
            "holder.pass",
        ]
    };
    let before = issued(d, "agency-a");
    let cases: [(&[&str], &str, &str, &str); 3] = [
        (
            &generate("same.pem"),
            "same.pem",
            "name the same file",
            "--out and --key-out",
        ),
        (
            &generate("k8.pem"),
            "agency-a/index.json",
            "inside the CA directory",
            "--out",
        ),
        (
            &generate("taken.pem"),
            "a8.pem",
            "exists",
            "--key-out taken.pem",
        ),
    ];
    for (holder, out, needle, option) in cases {
        let o = issue(d, "agency-a", "admin", holder, out, &[]);
        refused_with_nothing_issued(d, &o, before, option, needle, "issue");
    }
    assert_eq!(
        std::fs::read(d.join("taken.pem")).unwrap(),
        b"an existing file\n"
    );
    ok(d, &["ca", "list", "--dir", "agency-a"]);
}

/// `gmchain` with a third soft-token slot for a user's own token (the demo PKI's two hold the
/// agency CAs' keys).
fn gm3(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .current_dir(dir)
        .env("GMCHAIN_SOFTTOKEN_DIR", dir.join("tokens"))
        .env("GMCHAIN_SOFTTOKEN_SLOTS", "3")
        .env("GMCHAIN_PKCS11_MODULE", softtoken_module())
        .env("GMCHAIN_OPERATOR", "test-admin")
        .args(args)
        .output()
        .expect("run gmchain")
}

fn ok3(dir: &Path, args: &[&str]) -> String {
    let o = gm3(dir, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "gmchain {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

// Issue 15 item 6: a user's dual pair. The user's signing key lives in the user's token with
// CKA_UNWRAP; the CA issues user + user-enc and seals the encryption key to the signing key;
// `keys import-envelope` unwraps it inside the token; a grant (16 bytes SM2-encrypted to the
// user-enc certificate by OpenSSL) is decrypted inside the token.
#[test]
fn a_user_dual_pair_is_imported_into_the_users_token_and_opens_grants() {
    let t = demo_pki();
    let d = t.path();
    let profile = repo().join("hsm-profiles/gmchain-softtoken.toml");
    let p = profile.to_str().unwrap();
    ok3(
        d,
        &[
            "keys",
            "init-token",
            "--hsm-profile",
            p,
            "--label",
            "alice-token",
            "--so-pass-file",
            "so.pin",
            "--pass-file",
            "user.pin",
        ],
    );
    let generate = |label: &str, usage: &str| {
        ok3(
            d,
            &[
                "keys",
                "generate",
                "--hsm-profile",
                p,
                "--token-label",
                "alice-token",
                "--label",
                label,
                "--usage",
                usage,
                "--pass-file",
                "user.pin",
            ],
        )
        .trim()
        .to_string()
    };
    let alice = generate("alice", "sign-unwrap");
    ok3(
        d,
        &[
            "keys",
            "csr",
            "--hsm-profile",
            p,
            "--key",
            &alice,
            "--pass-file",
            "user.pin",
            "--subject",
            "CN=alice",
            "--out",
            "alice.csr",
        ],
    );
    // --dual with a role that has no encryption pair is refused by name, nothing issued.
    let before = issued(d, "agency-a");
    let o = gm3(
        d,
        &[
            "ca",
            "issue",
            "--dir",
            "agency-a",
            "--role",
            "user-enc",
            "--csr",
            "alice.csr",
            "--pass-file",
            "user.pin",
            "--out",
            "alice-x.pem",
            "--dual",
            "--escrow-pass-file",
            "escrow.pass",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("user-enc has none"), "{err}");
    assert_eq!(issued(d, "agency-a"), before);
    ok3(
        d,
        &[
            "ca",
            "issue",
            "--dir",
            "agency-a",
            "--role",
            "user",
            "--csr",
            "alice.csr",
            "--pass-file",
            "user.pin",
            "--out",
            "alice.pem",
            "--dual",
            "--escrow-pass-file",
            "escrow.pass",
        ],
    );
    let enc = cert(d, "alice.enc.pem");
    assert_eq!(enc.role(), Some(pki::Role::UserEnc));
    assert_eq!(cert(d, "alice.pem").role(), Some(pki::Role::User));
    assert_eq!(enc.common_name().as_deref(), Some("alice"));
    assert!(d.join("alice.envelope.der").exists());

    let import = |key: &str, envelope: &str, label: &str| {
        gm3(
            d,
            &[
                "keys",
                "import-envelope",
                "--hsm-profile",
                p,
                "--key",
                key,
                "--envelope",
                envelope,
                "--cert",
                "alice.enc.pem",
                "--label",
                label,
                "--pass-file",
                "user.pin",
            ],
        )
    };
    let list = || {
        ok3(
            d,
            &[
                "keys",
                "list",
                "--hsm-profile",
                p,
                "--token-label",
                "alice-token",
                "--pass-file",
                "user.pin",
            ],
        )
    };
    // A signing key without CKA_UNWRAP: one-line refusal, exit 2.
    let plain = generate("plain", "sign");
    let o = import(&plain, "alice.envelope.der", "enc-x");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("CKA_UNWRAP"), "{err}");
    // A tampered envelope (the last byte of the encrypted d): refused, no key made.
    let mut env = std::fs::read(d.join("alice.envelope.der")).unwrap();
    let last = env.len() - 1;
    env[last] ^= 0x01;
    std::fs::write(d.join("tampered.der"), &env).unwrap();
    let o = import(&alice, "tampered.der", "enc-t");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("refused the envelope"), "{err}");
    assert!(!list().contains("enc-t"));

    let o = import(&alice, "alice.envelope.der", "alice-enc");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let enc_uri = out.trim().to_string();
    assert!(enc_uri.contains("object=alice-enc"), "{enc_uri}");
    let l = list();
    let row = l.lines().find(|r| r.starts_with("alice-enc ")).unwrap();
    assert!(row.contains("encrypt"), "{l}");

    // A grant made by OpenSSL (SM2Cipher DER to the user-enc certificate's key), opened in the
    // token; C3 flipped is refused with exit 1 and writes nothing.
    let x = openssl(
        d,
        &[
            "x509",
            "-in",
            "alice.enc.pem",
            "-pubkey",
            "-noout",
            "-out",
            "enc.pub",
        ],
    );
    assert!(x.status.success());
    let data_key: Vec<u8> = (0..16u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    std::fs::write(d.join("data.key"), &data_key).unwrap();
    let e = openssl(
        d,
        &[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            "enc.pub",
            "-in",
            "data.key",
            "-out",
            "grant.der",
        ],
    );
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    let decrypt = |key: &str, input: &str, out: &str| {
        gm3(
            d,
            &[
                "crypto",
                "decrypt",
                "--key",
                key,
                "--hsm-profile",
                p,
                "--pass-file",
                "user.pin",
                "--out",
                out,
                input,
            ],
        )
    };
    let o = decrypt(&enc_uri, "grant.der", "opened.key");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read(d.join("opened.key")).unwrap(), data_key);
    let raw =
        crypto::gmt0009::decode_ciphertext(&std::fs::read(d.join("grant.der")).unwrap()).unwrap();
    let mut bad = raw.clone();
    bad[65] ^= 1;
    std::fs::write(
        d.join("bad-grant.der"),
        crypto::gmt0009::encode_ciphertext(&bad).unwrap(),
    )
    .unwrap();
    let o = decrypt(&enc_uri, "bad-grant.der", "bad.key");
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!d.join("bad.key").exists());
    // The wrong recipient: alice's signing key does not decrypt (it only unwraps).
    let o = decrypt(&alice, "grant.der", "wrong.key");
    assert_ne!(o.status.code(), Some(0));
    assert!(!d.join("wrong.key").exists());
    // The imported key cannot sign.
    std::fs::write(d.join("doc"), b"a document").unwrap();
    let o = gm3(
        d,
        &[
            "keys",
            "sign",
            "--hsm-profile",
            p,
            "--key",
            &enc_uri,
            "--pass-file",
            "user.pin",
            "--out",
            "doc.sig",
            "doc",
        ],
    );
    assert_ne!(o.status.code(), Some(0));
}
