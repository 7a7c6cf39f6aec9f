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
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("rep/report.json")).unwrap()).unwrap();
    // Exit 1 only for GM/T 0111 §7.1 (algorithms-inventory: non-GM algorithms reachable in
    // production), which no token check decides.
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        json["summary"]["mandatory_failed"],
        serde_json::json!(["GM/T 0111-2021 7.1"])
    );
    let clause = |std: &str, id: &str| -> serde_json::Value {
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
            .unwrap()
            .clone()
    };
    // Key management inside the device: met by real calls.
    assert_eq!(clause("GM/T 0111-2021", "7.4")["verdict"], "MET", "{out}");
    assert_eq!(
        clause("GB/T 39786-2021", "key lifecycle: destruction")["verdict"],
        "MET"
    );
    // A development token never satisfies the certified-device clause.
    let c73 = clause("GM/T 0111-2021", "7.3");
    assert_eq!(c73["verdict"], "NOT MET");
    assert_eq!(c73["cause"], "development token, not certified");
    assert_eq!(json["provenance"]["token"]["development"], true);
    assert_eq!(json["provenance"]["token"]["model"], "softtoken");
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
