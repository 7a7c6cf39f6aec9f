//! The `gmchain` command as a user runs it: exit codes, one-line errors, file formats that mix
//! with the `openssl` command, and the conformance report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gmchain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .args(args)
        .output()
        .expect("run gmchain")
}

fn gmchain_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run gmchain")
}

fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl must be installed (the README's test command installs it)")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn assert_one_line_error(o: &Output, expected_code: i32, needle: &str) {
    assert_eq!(code(o), expected_code, "stderr: {}", stderr(o));
    let err = stderr(o);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "error must be one line: {err:?}"
    );
    assert!(
        err.contains(needle),
        "error {err:?} should mention {needle:?}"
    );
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().expect("tempdir"))
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, data).expect("write");
        p
    }
}

#[test]
fn sm3_of_annex_message() {
    let d = Dir::new();
    d.file("abc", b"abc");
    let o = gmchain_in(d.path(), &["crypto", "sm3", "abc"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    );
}

#[test]
fn encrypted_key_sign_verify_and_exit_codes() {
    let d = Dir::new();
    d.file("pass", b"correct horse battery\n");
    d.file("msg", b"a document to sign");
    let o = gmchain_in(
        d.path(),
        &[
            "crypto",
            "keygen",
            "--encrypt",
            "--pass-file",
            "pass",
            "--iterations",
            "10000",
            "--out",
            "key.pem",
            "--pubout",
            "pub.pem",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let key = std::fs::read_to_string(d.path().join("key.pem")).unwrap();
    assert!(key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(d.path().join("key.pem"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    // Without the passphrase: bad input, one line, says what to do.
    let o = gmchain_in(d.path(), &["crypto", "sign", "--key", "key.pem", "msg"]);
    assert_one_line_error(&o, 2, "passphrase");
    // Wrong passphrase.
    d.file("wrong", b"nope\n");
    let o = gmchain_in(
        d.path(),
        &[
            "crypto",
            "sign",
            "--key",
            "key.pem",
            "--pass-file",
            "wrong",
            "msg",
        ],
    );
    assert_one_line_error(&o, 2, "wrong passphrase");
    let o = gmchain_in(
        d.path(),
        &[
            "crypto",
            "sign",
            "--key",
            "key.pem",
            "--pass-file",
            "pass",
            "--out",
            "msg.sig",
            "msg",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = gmchain_in(
        d.path(),
        &[
            "crypto", "verify", "--pubkey", "pub.pem", "--sig", "msg.sig", "msg",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Wrong ID: did not verify.
    let o = gmchain_in(
        d.path(),
        &[
            "crypto",
            "verify",
            "--pubkey",
            "pub.pem",
            "--sig",
            "msg.sig",
            "--id",
            "someone-else",
            "msg",
        ],
    );
    assert_one_line_error(&o, 1, "does not verify");
    // Altered message.
    d.file("msg2", b"a document to sigN");
    let o = gmchain_in(
        d.path(),
        &[
            "crypto", "verify", "--pubkey", "pub.pem", "--sig", "msg.sig", "msg2",
        ],
    );
    assert_one_line_error(&o, 1, "does not verify");
    // Garbage signature file: bad input.
    d.file("junk.sig", b"\x30\x03\x02\x01");
    let o = gmchain_in(
        d.path(),
        &[
            "crypto", "verify", "--pubkey", "pub.pem", "--sig", "junk.sig", "msg",
        ],
    );
    assert_one_line_error(&o, 2, "junk.sig");
    // pass-env
    let o = Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .current_dir(d.path())
        .env("GMCHAIN_TEST_PASS", "correct horse battery")
        .args([
            "crypto",
            "pubkey",
            "--key",
            "key.pem",
            "--pass-env",
            "GMCHAIN_TEST_PASS",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(o.stdout, std::fs::read(d.path().join("pub.pem")).unwrap());
}

#[test]
fn usage_errors_exit_2() {
    let o = gmchain(&["crypto", "sign"]);
    assert_eq!(code(&o), 2);
    let o = gmchain(&["crypto", "sm3", "/nonexistent/file"]);
    assert_one_line_error(&o, 2, "/nonexistent/file");
    let o = gmchain(&["crypto", "sign", "--key", "pkcs11:token=x;object=y", "-"]);
    assert_one_line_error(&o, 2, "pkcs11");
}

#[test]
fn sm4_gcm_tamper_is_exit_1_and_bad_nonce_exit_2() {
    let d = Dir::new();
    d.file("k", b"0123456789abcdeffedcba9876543210\n");
    d.file("pt", b"attested payload");
    let o = gmchain_in(
        d.path(),
        &[
            "crypto",
            "sm4",
            "encrypt",
            "--mode",
            "gcm",
            "--key-file",
            "k",
            "--iv",
            "00001234567800000000abcd",
            "--aad",
            "feed",
            "--out",
            "ct",
            "pt",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = gmchain_in(
        d.path(),
        &[
            "crypto",
            "sm4",
            "decrypt",
            "--mode",
            "gcm",
            "--key-file",
            "k",
            "--iv",
            "00001234567800000000abcd",
            "--aad",
            "feed",
            "ct",
        ],
    );
    assert_eq!(code(&o), 0);
    assert_eq!(o.stdout, b"attested payload");
    let o = gmchain_in(
        d.path(),
        &[
            "crypto",
            "sm4",
            "decrypt",
            "--mode",
            "gcm",
            "--key-file",
            "k",
            "--iv",
            "00001234567800000000abcd",
            "--aad",
            "beef",
            "ct",
        ],
    );
    assert_one_line_error(&o, 1, "tag");
    assert!(o.stdout.is_empty(), "nothing may be released on a bad tag");
    let o = gmchain_in(
        d.path(),
        &[
            "crypto",
            "sm4",
            "encrypt",
            "--mode",
            "gcm",
            "--key-file",
            "k",
            "--iv",
            "00",
            "pt",
        ],
    );
    assert_one_line_error(&o, 2, "12");
}

#[test]
fn files_mix_with_openssl() {
    let d = Dir::new();
    d.file("msg", b"interoperable message");
    // OpenSSL key → gmchain signs → OpenSSL verifies (ID given explicitly: OpenSSL 3.0 defaults to an empty ID).
    assert!(
        openssl(
            d.path(),
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:SM2",
                "-out",
                "ossl.pem"
            ]
        )
        .status
        .success()
    );
    assert!(
        openssl(
            d.path(),
            &["pkey", "-in", "ossl.pem", "-pubout", "-out", "ossl.pub"]
        )
        .status
        .success()
    );
    let o = gmchain_in(
        d.path(),
        &[
            "crypto", "sign", "--key", "ossl.pem", "--out", "g.sig", "msg",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = openssl(
        d.path(),
        &[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "ossl.pub",
            "-rawin",
            "-in",
            "msg",
            "-digest",
            "sm3",
            "-sigfile",
            "g.sig",
            "-pkeyopt",
            "distid:1234567812345678",
        ],
    );
    assert!(
        v.status.success(),
        "openssl rejected gmchain's signature: {}",
        String::from_utf8_lossy(&v.stdout)
    );
    // OpenSSL signs → gmchain verifies.
    let s = openssl(
        d.path(),
        &[
            "pkeyutl",
            "-sign",
            "-inkey",
            "ossl.pem",
            "-rawin",
            "-in",
            "msg",
            "-digest",
            "sm3",
            "-out",
            "o.sig",
            "-pkeyopt",
            "distid:1234567812345678",
        ],
    );
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let o = gmchain_in(
        d.path(),
        &[
            "crypto", "verify", "--pubkey", "ossl.pub", "--sig", "o.sig", "msg",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // gmchain encrypts (DER) → OpenSSL decrypts.
    let o = gmchain_in(
        d.path(),
        &[
            "crypto", "encrypt", "--pubkey", "ossl.pub", "--out", "ct", "msg",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let dec = openssl(
        d.path(),
        &["pkeyutl", "-decrypt", "-inkey", "ossl.pem", "-in", "ct"],
    );
    assert!(
        dec.status.success(),
        "{}",
        String::from_utf8_lossy(&dec.stderr)
    );
    assert_eq!(dec.stdout, b"interoperable message");
    // OpenSSL encrypts → gmchain decrypts.
    assert!(
        openssl(
            d.path(),
            &[
                "pkeyutl", "-encrypt", "-pubin", "-inkey", "ossl.pub", "-in", "msg", "-out", "oct"
            ]
        )
        .status
        .success()
    );
    let o = gmchain_in(d.path(), &["crypto", "decrypt", "--key", "ossl.pem", "oct"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(o.stdout, b"interoperable message");
}

#[test]
fn conformance_run_writes_reports_and_passes() {
    let d = Dir::new();
    let o = gmchain_in(d.path(), &["conformance", "run", "--out-dir", "rep"]);
    // Exit 1 for the one mandatory clause whose check fails offline: GM/T 0111 §7.1, while
    // non-GM algorithms are reachable in production (algorithms-inventory).
    assert_one_line_error(&o, 1, "mandatory clauses failed: GM/T 0111-2021 7.1");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("rep/report.json")).unwrap()).unwrap();
    assert_eq!(
        json["summary"]["mandatory_failed"],
        serde_json::json!(["GM/T 0111-2021 7.1"])
    );
    assert!(json["summary"]["met"].as_u64().unwrap() > 20);
    assert_eq!(
        json["provenance"]["cargo_lock_sm3"].as_str().unwrap().len(),
        64
    );
    let html = std::fs::read_to_string(d.path().join("rep/report.html")).unwrap();
    assert!(
        html.contains("GB/T 32918.5-2017") && html.contains("NOT MET") && html.contains("Annex A")
    );
    let o = gmchain(&["conformance", "list"]);
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("sm2-sign-kat"));
}

/// Writes `enc.pem` in `d`: an SM2 key encrypted by `openssl pkcs8 -topk8 -v2 sm4-cbc` with its
/// default PRF, PBKDF2-hmacWithSHA256 (OpenSSL 3.0 has no HMAC-SM3 PRF); passphrase in `pass`.
fn openssl_encrypted_key(d: &Dir) {
    d.file("pass", b"openssl passphrase\n");
    for args in [
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:SM2",
            "-out",
            "plain.pem",
        ][..],
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "plain.pem",
            "-v2",
            "sm4-cbc",
            "-v2prf",
            "hmacWithSHA256",
            "-passout",
            "file:pass",
            "-out",
            "enc.pem",
        ][..],
    ] {
        let o = openssl(d.path(), args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// GM/T 0111 §7.1: a production node refuses a key file that uses a non-GM algorithm, with one
/// line naming the PRF.
#[test]
fn production_node_refuses_an_openssl_key_file_naming_its_prf() {
    let d = Dir::new();
    openssl_encrypted_key(&d);
    d.file(
        "node.toml",
        b"mode = \"production\"\ndata_dir = \"data\"\n[key]\nkey = \"enc.pem\"\npass_file = \"pass\"\ncertificate = \"node.crt.pem\"\n",
    );
    let o = gmchain_in(d.path(), &["node", "start", "--config", "node.toml"]);
    assert_one_line_error(&o, 2, "hmacWithSHA256");
    assert!(stderr(&o).contains("not a GM algorithm"), "{}", stderr(&o));
}

/// The toolbox is an interop tool: it reads OpenSSL's hmacWithSHA256 files, and says on stderr
/// that the PRF is not a GM algorithm; gmchain's own files (HMAC-SM3) get no such note.
#[test]
fn toolbox_reads_openssl_encrypted_keys_and_says_the_prf_is_not_gm() {
    let d = Dir::new();
    openssl_encrypted_key(&d);
    d.file("msg", b"signed with an OpenSSL key file");
    let o = gmchain_in(
        d.path(),
        &[
            "crypto",
            "sign",
            "--key",
            "enc.pem",
            "--pass-file",
            "pass",
            "--out",
            "sig",
            "msg",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("enc.pem")
            && err.contains("hmacWithSHA256")
            && err.contains("not a GM algorithm"),
        "the toolbox must say that the key file's PRF is not GM: {err:?}"
    );
    let o = gmchain_in(
        d.path(),
        &[
            "crypto",
            "keygen",
            "--encrypt",
            "--pass-file",
            "pass",
            "--iterations",
            "10000",
            "--out",
            "gm.pem",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = gmchain_in(
        d.path(),
        &[
            "crypto",
            "sign",
            "--key",
            "gm.pem",
            "--pass-file",
            "pass",
            "--out",
            "sig2",
            "msg",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}
