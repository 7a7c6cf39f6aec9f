//! `gmchain keys` and `gmchain conformance run --hsm-profile` against gmchain's own PKCS#11 soft
//! token, loaded through the same path as a vendor module, with OpenSSL as the independent
//! verifier of what the token signs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn profile() -> PathBuf {
    repo().join("hsm-profiles/gmchain-softtoken.toml")
}

/// The soft token library next to this test's target directory (`cargo build -p softtoken`).
fn module() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let so = dir.join("libgmchain_softtoken.so");
    assert!(
        so.exists(),
        "{} is missing: run `cargo build -p softtoken` first (scripts/test.sh does)",
        so.display()
    );
    so
}

struct Token {
    dir: tempfile::TempDir,
}

impl Token {
    fn new() -> Self {
        let t = Token {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        std::fs::create_dir(t.path().join("token")).unwrap();
        std::fs::write(t.path().join("so.pin"), "so-secret-1\n").unwrap();
        std::fs::write(t.path().join("user.pin"), "user-secret-1\n").unwrap();
        t
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_gmchain"))
            .current_dir(self.path())
            .env("GMCHAIN_SOFTTOKEN_DIR", self.path().join("token"))
            .env("GMCHAIN_PKCS11_MODULE", module())
            .args(args)
            .output()
            .expect("run gmchain")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "gmchain {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn init(&self) {
        let p = profile();
        let out = self.ok(&[
            "keys",
            "init-token",
            "--hsm-profile",
            p.to_str().unwrap(),
            "--label",
            "agency-a",
            "--so-pass-file",
            "so.pin",
            "--pass-file",
            "user.pin",
        ]);
        assert!(out.contains("initialised"));
    }
}

fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl must be installed")
}

#[test]
fn keys_lifecycle_with_openssl_as_verifier() {
    let t = Token::new();
    t.init();
    let p = profile();
    let p = p.to_str().unwrap();
    let uri = t.ok(&[
        "keys",
        "generate",
        "--hsm-profile",
        p,
        "--token-label",
        "agency-a",
        "--label",
        "node-1",
        "--pass-file",
        "user.pin",
    ]);
    let uri = uri.trim();
    assert!(
        uri.starts_with("pkcs11:token=agency-a;object=node-1;id="),
        "{uri}"
    );
    let list = t.ok(&[
        "keys",
        "list",
        "--hsm-profile",
        p,
        "--token-label",
        "agency-a",
        "--pass-file",
        "user.pin",
    ]);
    assert!(list.contains("node-1") && list.contains("sign"), "{list}");

    // Public key out, signature made inside the token, verified by OpenSSL with the standard ID.
    t.ok(&[
        "keys",
        "pubkey",
        "--hsm-profile",
        p,
        "--key",
        uri,
        "--pass-file",
        "user.pin",
        "--out",
        "node-1.pub",
    ]);
    std::fs::write(t.path().join("doc"), b"signed inside the token").unwrap();
    t.ok(&[
        "keys",
        "sign",
        "--hsm-profile",
        p,
        "--key",
        uri,
        "--pass-file",
        "user.pin",
        "--out",
        "doc.sig",
        "doc",
    ]);
    let v = openssl(
        t.path(),
        &[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "node-1.pub",
            "-rawin",
            "-in",
            "doc",
            "-digest",
            "sm3",
            "-sigfile",
            "doc.sig",
            "-pkeyopt",
            "distid:1234567812345678",
        ],
    );
    assert!(
        v.status.success(),
        "OpenSSL rejected the token's signature: {}",
        String::from_utf8_lossy(&v.stdout)
    );
    // The same through `gmchain crypto` with a pkcs11: key, and verification in the token.
    t.ok(&[
        "crypto",
        "sign",
        "--key",
        uri,
        "--hsm-profile",
        p,
        "--pass-file",
        "user.pin",
        "--out",
        "doc2.sig",
        "doc",
    ]);
    t.ok(&[
        "crypto",
        "verify",
        "--pubkey",
        "node-1.pub",
        "--sig",
        "doc2.sig",
        "doc",
    ]);
    t.ok(&[
        "keys",
        "verify",
        "--hsm-profile",
        p,
        "--key",
        uri,
        "--pass-file",
        "user.pin",
        "--sig",
        "doc.sig",
        "doc",
    ]);
    std::fs::write(t.path().join("forged"), b"signed inside the token!").unwrap();
    let o = t.run(&[
        "keys",
        "verify",
        "--hsm-profile",
        p,
        "--key",
        uri,
        "--pass-file",
        "user.pin",
        "--sig",
        "doc.sig",
        "forged",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A CSR signed in the token, checked by OpenSSL (proof of possession for the CA).
    t.ok(&[
        "keys",
        "csr",
        "--hsm-profile",
        p,
        "--key",
        uri,
        "--pass-file",
        "user.pin",
        "--subject",
        "CN=node-1,OU=node,O=Agency A",
        "--out",
        "node-1.csr",
    ]);
    let r = openssl(
        t.path(),
        &[
            "req",
            "-in",
            "node-1.csr",
            "-verify",
            "-noout",
            "-vfyopt",
            "distid:1234567812345678",
        ],
    );
    assert!(
        r.status.success(),
        "OpenSSL rejected the CSR: {}",
        String::from_utf8_lossy(&r.stderr)
    );

    // The self-check table: every row ok for a key generated in the token.
    let check = t.ok(&[
        "keys",
        "check",
        "--hsm-profile",
        p,
        "--token-label",
        "agency-a",
        "--pass-file",
        "user.pin",
    ]);
    assert!(
        check.contains("development token, not certified"),
        "{check}"
    );
    assert!(
        check.contains("CKA_NEVER_EXTRACTABLE") && check.contains("sm2_sign"),
        "{check}"
    );
    assert!(!check.lines().any(|l| l.starts_with("FAIL")), "{check}");
    // The soft token holds no key that both wraps and decrypts (it refuses to make one); the
    // row is there for tokens that do not (see hsm-profiles/README.md, "Key wrapping").
    assert!(
        check
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("key usage separation")),
        "{check}"
    );

    // Delete: gone.
    t.ok(&[
        "keys",
        "delete",
        "--hsm-profile",
        p,
        "--key",
        uri,
        "--pass-file",
        "user.pin",
    ]);
    let o = t.run(&[
        "keys",
        "sign",
        "--hsm-profile",
        p,
        "--key",
        uri,
        "--pass-file",
        "user.pin",
        "doc",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn exit_codes_wrong_pin_and_missing_module() {
    let t = Token::new();
    t.init();
    let p = profile();
    let p = p.to_str().unwrap();
    std::fs::write(t.path().join("wrong.pin"), "nope-nope\n").unwrap();
    let o = t.run(&[
        "keys",
        "list",
        "--hsm-profile",
        p,
        "--token-label",
        "agency-a",
        "--pass-file",
        "wrong.pin",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("PIN"));
    let o = t.run(&[
        "keys",
        "list",
        "--hsm-profile",
        p,
        "--token-label",
        "no-such-token",
        "--pass-file",
        "user.pin",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("agency-a"),
        "the error names the tokens that exist"
    );
    // The module cannot be loaded: the token is unreachable, exit 3.
    let o = Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .current_dir(t.path())
        .env("GMCHAIN_SOFTTOKEN_DIR", t.path().join("token"))
        .env("GMCHAIN_PKCS11_MODULE", t.path().join("missing.so"))
        .args([
            "keys",
            "list",
            "--hsm-profile",
            p,
            "--token-label",
            "agency-a",
            "--pass-file",
            "user.pin",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Reads `DIR/report.json` of a conformance run in the token's directory.
fn report(t: &Token, dir: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(t.path().join(dir).join("report.json")).unwrap()).unwrap()
}

/// One clause of a report.
fn clause(json: &serde_json::Value, std: &str, id: &str) -> serde_json::Value {
    json["standards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == std)
        .unwrap()["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{std} {id}"))
        .clone()
}

/// The clauses that need keys generated and kept in a cryptographic module.
const DEVICE_CLAUSES: [(&str, &str); 3] = [
    ("GM/T 0111-2021", "7.4"),
    ("GB/T 39786-2021", "key lifecycle: generation"),
    ("GB/T 39786-2021", "key lifecycle: storage"),
];

/// The clauses that need a certified module.
const CERTIFIED_CLAUSES: [(&str, &str); 2] = [
    ("GM/T 0111-2021", "7.3"),
    ("GB/T 39786-2021", "5 (certified products)"),
];

#[test]
fn conformance_against_the_soft_token() {
    let t = Token::new();
    t.init();
    let p = profile();
    let o = t.run(&[
        "conformance",
        "run",
        "--out-dir",
        "rep",
        "--hsm-profile",
        p.to_str().unwrap(),
        "--token",
        "agency-a",
        "--pass-file",
        "user.pin",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    // Exit 1 only for GM/T 0111 §7.1 (algorithms-inventory: non-GM algorithms reachable in
    // production), which no token check decides.
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let json = report(&t, "rep");
    assert_eq!(
        json["summary"]["mandatory_failed"],
        serde_json::json!(["GM/T 0111-2021 7.1"])
    );
    // A software token cannot earn the device clauses (keys generated with an approved random
    // source inside a module, kept in one): NOT MET, a development run rather than a failed
    // check, with the device checks' evidence still shown and passing.
    for (std, id) in DEVICE_CLAUSES {
        let c = clause(&json, std, id);
        assert_eq!(c["verdict"], "NOT MET", "{std} {id}: {out}");
        assert!(
            c["cause"]
                .as_str()
                .unwrap()
                .starts_with("development token, gmchain's software token:"),
            "{std} {id}: {}",
            c["cause"]
        );
        let checks = c["checks"].as_array().unwrap();
        let identity = checks
            .iter()
            .find(|o| o["id"] == "hsm-module-identity")
            .unwrap();
        assert_eq!(identity["pass"], false);
        for o in checks.iter().filter(|o| o["id"] != "hsm-module-identity") {
            assert_eq!(o["pass"], true, "{o}");
            assert!(o["cases"].as_u64().unwrap() > 0, "{o}");
        }
    }
    // What a software token can show by behaviour stays MET.
    for id in ["key lifecycle: use", "key lifecycle: destruction"] {
        assert_eq!(clause(&json, "GB/T 39786-2021", id)["verdict"], "MET");
    }
    // A development token never satisfies the certified-device clauses.
    for (std, id) in CERTIFIED_CLAUSES {
        let c = clause(&json, std, id);
        assert_eq!(c["verdict"], "NOT MET");
        assert!(
            c["cause"]
                .as_str()
                .unwrap()
                .starts_with("development token, not certified (the module reports itself as gmchain's software token"),
            "{}",
            c["cause"]
        );
    }
    // The signatures the soft token makes are verified by OpenSSL, not only by gmchain's code
    // (which the soft token signs with): accepted under the signer's ID, refused under another.
    let sign = clause(&json, "GM/T 0111-2021", "7.3")["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "hsm-sign-in-device")
        .unwrap()
        .clone();
    let independent: Vec<_> = sign["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"].as_str().unwrap().contains("OpenSSL 3."))
        .collect();
    assert_eq!(independent.len(), 4, "{sign}");
    assert!(independent.iter().all(|e| e["pass"] == true), "{sign}");
    // The token's own answers are in the provenance, beside the profile's (no) declaration.
    let token = &json["provenance"]["token"];
    assert_eq!(token["development"], true);
    assert_eq!(token["model"], "softtoken");
    assert!(token["certification"].is_null());
    assert_eq!(token["reported"]["library_manufacturer"], "gmchain");
    assert_eq!(
        token["reported"]["library_description"],
        "gmchain softtoken (development)"
    );
    assert_eq!(token["reported"]["token_model"], "softtoken");
    assert!(
        !token["reported"]["token_firmware"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert_eq!(json["summary"]["declared"], 0);
    // The checks left no test keys behind.
    let list = t.ok(&[
        "keys",
        "list",
        "--hsm-profile",
        p.to_str().unwrap(),
        "--token-label",
        "agency-a",
        "--pass-file",
        "user.pin",
    ]);
    assert!(!list.contains("conformance-"), "{list}");
}

/// The review's reproduction: a copy of the soft token's profile that claims a certificate
/// ("FAKE-0000"). A declaration in the old free-text form is refused at load; one in the
/// structured form, naming exactly what the soft token reports, loads, and the module is
/// recognised by its own answers: every certified and device clause is NOT MET, and the run
/// fails (exit 1).
#[test]
fn a_forged_certification_of_the_soft_token_is_not_met() {
    let t = Token::new();
    t.init();
    let text = std::fs::read_to_string(profile())
        .unwrap()
        .replace("development = true", "development = false");
    assert!(text.contains("development = false"));
    // The library is a bare name; GMCHAIN_PKCS11_MODULE (set by Token::run) finds it.
    std::fs::write(
        t.path().join("old-form.toml"),
        format!("{text}\n[certification]\nmodel = \"softtoken\"\ncertificate = \"FAKE-0000\"\n"),
    )
    .unwrap();
    std::fs::write(
        t.path().join("forged.toml"),
        format!(
            "{text}\n[certification]\ncertificate = \"FAKE-0000\"\nissuer = \"nobody\"\nmodel = \"softtoken\"\nmanufacturer = \"gmchain\"\nfirmware = \"0.1\"\n"
        ),
    )
    .unwrap();
    let run = |profile: &str, dir: &str| {
        t.run(&[
            "conformance",
            "run",
            "--out-dir",
            dir,
            "--hsm-profile",
            profile,
            "--token",
            "agency-a",
            "--pass-file",
            "user.pin",
        ])
    };

    let o = run("old-form.toml", "rep-old");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a free-text certification must be refused; stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        stderr.contains("certification") && stderr.contains("issuer"),
        "{stderr}"
    );

    let o = run("forged.toml", "rep");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let json = report(&t, "rep");
    for (std, id) in CERTIFIED_CLAUSES {
        let c = clause(&json, std, id);
        assert_eq!(c["verdict"], "NOT MET", "{std} {id}: {stdout}");
        assert!(
            c["cause"]
                .as_str()
                .unwrap()
                .starts_with("gmchain's software token (C_GetInfo manufacturerID \"gmchain\""),
            "{}",
            c["cause"]
        );
    }
    let failed: Vec<String> = json["summary"]["mandatory_failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for (std, id) in DEVICE_CLAUSES.iter().chain(&CERTIFIED_CLAUSES) {
        assert_eq!(clause(&json, std, id)["verdict"], "NOT MET", "{std} {id}");
        assert!(failed.contains(&format!("{std} {id}")), "{failed:?}");
    }
    assert_eq!(json["summary"]["declared"], 0);
    assert_eq!(
        json["provenance"]["token"]["certification"]["certificate"],
        "FAKE-0000"
    );
}
