//! The `gmchain` command as a user runs it: exit codes, one-line errors, file formats that mix
//! with the `openssl` command, and the conformance report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::demo_pki;
use demo_pki::{demo_pki, gm};

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
    openssl_sm2_pair(d.path(), "ossl.pem", "ossl.pub");
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

/// `--voter-key` and `--voter-cert` come in pairs: a key without its certificate is bad input
/// (exit 2) before any file is read or any node reached.
#[test]
fn conformance_voter_keys_need_their_certificates() {
    let d = Dir::new();
    let o = gmchain_in(
        d.path(),
        &[
            "conformance",
            "run",
            "--node",
            "http://127.0.0.1:9",
            "--genesis",
            "genesis.json",
            "--key",
            "client.key.pem",
            "--cert",
            "client.crt.pem",
            "--allow-writes",
            "--admin-key",
            "admin.key.pem",
            "--admin-cert",
            "admin.crt.pem",
            "--voter-key",
            "b-admin.key.pem",
            "--out-dir",
            "rep",
        ],
    );
    assert_one_line_error(
        &o,
        2,
        "1 --voter-key and 0 --voter-cert given: give one certificate per key, in the same order",
    );
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

// ---------------------------------------------------------------------------------------------
// The signed conformance report: `conformance run --sign-key … --sign-cert …` and
// `conformance verify-report`, against a PKI built by `gmchain ca` (scripts/make-test-pki.sh:
// root CA, agency B's CA key in a soft-token, auditor-b and user-b1 as encrypted key files).

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn ok(dir: &Path, args: &[&str]) -> Output {
    let o = gm(dir, args);
    assert_eq!(
        code(&o),
        0,
        "gmchain {args:?}\nstdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    o
}

/// `conformance run` signed by `key` with certificate `cert` (chain: agency B's CA).
fn signed_run(d: &Path, out_dir: &str, key: &str, cert: &str) -> Output {
    gm(
        d,
        &[
            "conformance",
            "run",
            "--out-dir",
            out_dir,
            "--sign-key",
            key,
            "--pass-file",
            "user.pin",
            "--sign-cert",
            cert,
            "--sign-chain",
            "agency-b-ca.pem",
        ],
    )
}

/// `conformance verify-report FILE` against the root with both CRLs, plus `extra` arguments.
fn verify_report(d: &Path, file: &str, extra: &[&str]) -> Output {
    let mut a = vec![
        "conformance",
        "verify-report",
        file,
        "--anchor",
        "root.pem",
        "--crl",
        "root.crl",
        "--crl",
        "agency-b.crl",
    ];
    a.extend(extra);
    gm(d, &a)
}

/// Writes `rep/report.json` with `edit` applied to its text, as `name`.
fn edited(d: &Path, name: &str, edit: impl FnOnce(String) -> String) -> String {
    let text = std::fs::read_to_string(d.join("rep/report.json")).unwrap();
    let changed = edit(text.clone());
    assert_ne!(changed, text, "{name}: the edit changed nothing");
    std::fs::write(d.join(name), changed).unwrap();
    name.to_string()
}

/// Writes `canonical.bin` (the report's canonical bytes), `report.sig` and `signer.pem` from a
/// signed report, made by Python's json module from the definition in conformance/README.md,
/// independently of gmchain (scripts/setup.sh installs python3). Returns SM3 of the canonical
/// bytes, by OpenSSL.
fn python_canonical(d: &Path, report: &str) -> String {
    let script = r#"
import json, sys
r = json.load(open(sys.argv[1], encoding="utf-8"))
s = r.pop("signature")
open("canonical.bin", "wb").write(
    json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
open("report.sig", "wb").write(bytes.fromhex(s["signature"]))
open("signer.pem", "w").write(s["certificate"])
"#;
    let o = Command::new("python3")
        .current_dir(d)
        .args(["-c", script, report])
        .output()
        .expect("python3 must be installed (scripts/setup.sh installs it)");
    assert!(o.status.success(), "python3: {}", stderr(&o));
    let o = openssl(d, &["dgst", "-sm3", "-r", "canonical.bin"]);
    stdout(&o)
        .split_whitespace()
        .next()
        .expect("openssl dgst output")
        .to_string()
}

#[test]
fn signed_report_verifies_and_any_change_fails() {
    let t = demo_pki();
    let d = t.path();
    let o = signed_run(d, "rep", "auditor-b.key", "auditor-b.pem");
    // Exit 1 only for GM/T 0111 §7.1 (non-GM algorithms reachable in production): the report is
    // written and signed all the same.
    assert!(stdout(&o).contains("GM/T 0111-2021 7.1"), "{}", stdout(&o));
    assert_eq!(
        code(&o),
        1,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("signed by CN=auditor-b"),
        "{}",
        stdout(&o)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("rep/report.json")).unwrap()).unwrap();
    let sig = &json["signature"];
    assert!(
        sig["certificate"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(sig["chain"].as_array().unwrap().len(), 1);
    assert!(hex::decode(sig["signature"].as_str().unwrap()).is_ok());
    // The report itself is unchanged beside the signature: readers of the unsigned form still work.
    assert!(json["summary"]["met"].as_u64().unwrap() > 20);
    // The HTML names the signer and says it is not signed itself.
    let html = std::fs::read_to_string(d.join("rep/report.html")).unwrap();
    let serial = String::from_utf8_lossy(
        &openssl(d, &["x509", "-in", "auditor-b.pem", "-noout", "-serial"]).stdout,
    )
    .trim()
    .trim_start_matches("serial=")
    .to_lowercase();
    assert!(
        html.contains("CN=auditor-b") && html.contains(&serial),
        "signer named"
    );
    assert!(html.contains("verify-report"), "says to verify the JSON");
    assert!(html.contains(sig["content_sm3"].as_str().unwrap()));

    // It verifies, naming the signer and giving the headline.
    let o = verify_report(d, "rep/report.json", &[]);
    assert_eq!(
        code(&o),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let out = stdout(&o);
    assert!(
        out.contains("CN=auditor-b") && out.contains(&serial),
        "{out}"
    );
    assert!(
        out.contains(" MET, ") && out.contains("NOT COVERED"),
        "{out}"
    );

    // Formatting is not content: compact JSON with its keys in another order still verifies.
    std::fs::write(d.join("compact.json"), serde_json::to_vec(&json).unwrap()).unwrap();
    let o = verify_report(d, "compact.json", &[]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));

    // An independent verifier: Python's json module makes the documented canonical bytes, and
    // OpenSSL checks the SM2 signature over them with the signer's certificate.
    let content_sm3 = python_canonical(d, "rep/report.json");
    let o = openssl(
        d,
        &[
            "pkeyutl",
            "-verify",
            "-certin",
            "-inkey",
            "signer.pem",
            "-rawin",
            "-in",
            "canonical.bin",
            "-digest",
            "sm3",
            "-sigfile",
            "report.sig",
            "-pkeyopt",
            "distid:1234567812345678",
        ],
    );
    assert!(o.status.success(), "openssl: {}{}", stdout(&o), stderr(&o));
    assert_eq!(
        content_sm3,
        sig["content_sm3"].as_str().unwrap(),
        "content_sm3 is SM3 of the canonical bytes"
    );

    // Any change to the content fails with exit 1, naming what failed.
    let verdict = edited(d, "verdict.json", |s| {
        s.replacen("\"verdict\": \"MET\"", "\"verdict\": \"NOT MET\"", 1)
    });
    let o = verify_report(d, &verdict, &[]);
    assert_one_line_error(&o, 1, "changed after signing");
    let evidence = edited(d, "evidence.json", |s| {
        let at = s.find("\"detail\": \"").unwrap() + "\"detail\": \"".len();
        let mut b = s.into_bytes();
        b[at] = if b[at] == b'x' { b'y' } else { b'x' };
        String::from_utf8(b).unwrap()
    });
    assert_one_line_error(
        &verify_report(d, &evidence, &[]),
        1,
        "changed after signing",
    );
    let removed = edited(d, "removed.json", |s| {
        let mut v: serde_json::Value = serde_json::from_str(&s).unwrap();
        v["standards"][0]["clauses"]
            .as_array_mut()
            .unwrap()
            .remove(0);
        serde_json::to_string_pretty(&v).unwrap()
    });
    assert_one_line_error(&verify_report(d, &removed, &[]), 1, "changed after signing");
    // The recorded content SM3 is only a hint: an edit that also updates it still fails, on the
    // signature.
    let new_sm3 = python_canonical(d, &verdict);
    let rehashed = edited(d, "rehashed.json", |s| {
        s.replacen("\"verdict\": \"MET\"", "\"verdict\": \"NOT MET\"", 1)
            .replace(sig["content_sm3"].as_str().unwrap(), &new_sm3)
    });
    assert_one_line_error(
        &verify_report(d, &rehashed, &[]),
        1,
        "the SM2 signature does not verify",
    );
    // A duplicated member could show one verdict to a reader and another to the verifier.
    let duplicate = edited(d, "duplicate.json", |s| {
        s.replacen(
            "\"verdict\": \"MET\"",
            "\"verdict\": \"NOT MET\", \"verdict\": \"MET\"",
            1,
        )
    });
    assert_one_line_error(&verify_report(d, &duplicate, &[]), 2, "duplicate");

    // A report whose signature is valid but made by a user, not an auditor: refused.
    python_canonical(d, "rep/report.json");
    ok(
        d,
        &[
            "crypto",
            "sign",
            "--key",
            "user-b1.key",
            "--pass-file",
            "user.pin",
            "--out",
            "user.sig",
            "canonical.bin",
        ],
    );
    let user_signed = edited(d, "user-signed.json", |s| {
        let mut v: serde_json::Value = serde_json::from_str(&s).unwrap();
        v["signature"]["certificate"] = std::fs::read_to_string(d.join("user-b1.pem"))
            .unwrap()
            .into();
        v["signature"]["signature"] =
            hex::encode(std::fs::read(d.join("user.sig")).unwrap()).into();
        serde_json::to_string_pretty(&v).unwrap()
    });
    assert_one_line_error(
        &verify_report(d, &user_signed, &[]),
        1,
        "is user, not auditor (CERT_WRONG_ROLE)",
    );

    // The auditor's chain must end at the anchor given: another root is refused.
    std::fs::write(d.join("other.pass"), "other-root-passphrase\n").unwrap();
    let o = ok(
        d,
        &[
            "ca",
            "init",
            "--dir",
            "other",
            "--name",
            "Other Root CA",
            "--org",
            "Other",
            "--pass-file",
            "other.pass",
        ],
    );
    std::fs::write(d.join("other.pem"), &o.stdout).unwrap();
    ok(
        d,
        &[
            "ca",
            "crl",
            "--dir",
            "other",
            "--pass-file",
            "other.pass",
            "--out",
            "other.crl",
        ],
    );
    let o = gm(
        d,
        &[
            "conformance",
            "verify-report",
            "rep/report.json",
            "--anchor",
            "other.pem",
            "--crl",
            "other.crl",
            "--crl",
            "agency-b.crl",
        ],
    );
    assert_one_line_error(&o, 1, "no path to a trust anchor");
    // Without agency B's CRL the auditor's status is unknown: fail closed.
    let o = gm(
        d,
        &[
            "conformance",
            "verify-report",
            "rep/report.json",
            "--anchor",
            "root.pem",
            "--crl",
            "root.crl",
        ],
    );
    assert_one_line_error(&o, 1, "revocation status");
    // Unreadable input: exit 2.
    assert_one_line_error(&verify_report(d, "missing.json", &[]), 2, "missing.json");
    std::fs::write(d.join("garbage.json"), b"{\"summary\": ").unwrap();
    assert_one_line_error(&verify_report(d, "garbage.json", &[]), 2, "garbage.json");
}

#[test]
fn report_signing_refuses_a_non_auditor_certificate_and_a_foreign_key() {
    let t = demo_pki();
    let d = t.path();
    // A user's certificate (with its own key): refused before anything is run or written.
    let o = signed_run(d, "rep", "user-b1.key", "user-b1.pem");
    assert_one_line_error(&o, 2, "not an auditor");
    assert!(!d.join("rep").exists(), "nothing written");
    // The auditor's certificate with another key.
    let o = signed_run(d, "rep", "user-b1.key", "auditor-b.pem");
    assert_one_line_error(&o, 2, "is not the key of");
    assert!(!d.join("rep").exists(), "nothing written");
    // A key without a certificate: usage.
    let o = gm(
        d,
        &[
            "conformance",
            "run",
            "--out-dir",
            "rep",
            "--sign-key",
            "auditor-b.key",
            "--pass-file",
            "user.pin",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn report_of_a_revoked_auditor_fails_verification() {
    let t = demo_pki();
    let d = t.path();
    let o = signed_run(d, "rep", "auditor-b.key", "auditor-b.pem");
    // Exit 1 only for GM/T 0111 §7.1; the report is written and signed.
    assert_eq!(code(&o), 1, "stderr: {}", stderr(&o));
    ok(
        d,
        &[
            "ca",
            "verify",
            "--anchor",
            "root.pem",
            "--untrusted",
            "agency-b-ca.pem",
            "--crl",
            "root.crl",
            "--crl",
            "agency-b.crl",
            "--role",
            "auditor",
            "auditor-b.pem",
        ],
    );
    assert_eq!(code(&verify_report(d, "rep/report.json", &[])), 0);
    let serial = String::from_utf8_lossy(
        &openssl(d, &["x509", "-in", "auditor-b.pem", "-noout", "-serial"]).stdout,
    )
    .trim()
    .trim_start_matches("serial=")
    .to_lowercase();
    ok(
        d,
        &[
            "ca",
            "revoke",
            "--dir",
            "agency-b",
            "--serial",
            &serial,
            "--reason",
            "key-compromise",
            "--pass-file",
            "user.pin",
        ],
    );
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
            "agency-b.crl",
        ],
    );
    let o = verify_report(d, "rep/report.json", &[]);
    assert_one_line_error(&o, 1, "revoked");
}

#[test]
fn unsigned_report_still_runs_and_verify_report_says_unsigned() {
    let t = demo_pki();
    let d = t.path();
    // Exit 1 only for GM/T 0111 §7.1; the report is written.
    assert_eq!(code(&gm(d, &["conformance", "run", "--out-dir", "rep"])), 1);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("rep/report.json")).unwrap()).unwrap();
    assert!(json.get("signature").is_none(), "no signature member");
    assert!(json["summary"]["met"].as_u64().unwrap() > 20);
    let html = std::fs::read_to_string(d.join("rep/report.html")).unwrap();
    assert!(
        html.contains("unsigned"),
        "the HTML says the report is unsigned"
    );
    let o = verify_report(d, "rep/report.json", &[]);
    assert_one_line_error(&o, 1, "unsigned");
}

/// docs/formats.md §0: every version the table states is the one the code defines (issue 11
/// point 8). A version bumped in code and not in the table, or the other way round, fails.
#[test]
fn every_format_version_in_the_table_is_the_codes() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/formats.md"),
    )
    .unwrap();
    let section = doc
        .split("## 0. Format versions")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("docs/formats.md has its §0 version table");
    let expected: [(&str, String); 8] = [
        ("`types::FORMAT_VERSION`", types::FORMAT_VERSION.to_string()),
        (
            "`types::FORMAT_VERSION_2`",
            types::FORMAT_VERSION_2.to_string(),
        ),
        (
            "`execution::GENESIS_FORMAT`",
            execution::GENESIS_FORMAT.to_string(),
        ),
        ("`receipt::VERSION`", receipt::VERSION.to_string()),
        (
            "`storage::STORE_VERSION`",
            storage::STORE_VERSION.to_string(),
        ),
        (
            "`keystore::FORMAT_VERSION`",
            keystore::FORMAT_VERSION.to_string(),
        ),
        ("`node::backup::VERSION`", node::backup::VERSION.to_string()),
        (
            "`node::snapshot::VERSION`",
            node::snapshot::VERSION.to_string(),
        ),
    ];
    for (constant, version) in expected {
        let row = section
            .lines()
            .find(|l| l.starts_with('|') && l.contains(constant))
            .unwrap_or_else(|| panic!("docs/formats.md §0 has no row for {constant}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // | encoding | constant | writes | reads | pinned by |
        assert_eq!(
            cells[3], version,
            "docs/formats.md §0: {constant} writes {} but the code says {version}",
            cells[3]
        );
        assert!(
            cells[4].split([',', ' ']).any(|v| v == version),
            "docs/formats.md §0: {constant} must read its own version {version}: {}",
            cells[4]
        );
    }
}

/// Review finding on issue 11: the crypto commands flattened every cryptographic error to bad
/// input (exit 2). A well-formed SM2 ciphertext that does not decrypt (C3 does not verify) is
/// "did not verify", exit 1, with nothing released; a ciphertext that is not one is bad input.
#[test]
fn a_ciphertext_that_does_not_verify_is_exit_1_and_junk_is_exit_2() {
    let d = Dir::new();
    d.file("msg", b"a message for the key holder");
    openssl_sm2_pair(d.path(), "k.pem", "k.pub");
    let o = gmchain_in(
        d.path(),
        &[
            "crypto", "encrypt", "--pubkey", "k.pub", "--out", "ct", "msg",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Flip the last byte of C2 (the DER encoding ends with C2's octets): C3 no longer verifies.
    let mut ct = std::fs::read(d.path().join("ct")).unwrap();
    let last = ct.len() - 1;
    ct[last] ^= 0x01;
    d.file("ct.bad", &ct);
    let o = gmchain_in(d.path(), &["crypto", "decrypt", "--key", "k.pem", "ct.bad"]);
    assert_one_line_error(&o, 1, "decryption failed");
    assert!(o.stdout.is_empty(), "nothing may be released");
    d.file("junk", b"not a ciphertext");
    let o = gmchain_in(d.path(), &["crypto", "decrypt", "--key", "k.pem", "junk"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

/// Has OpenSSL generate an SM2 key (`key`, PEM) and write its public key (`public`).
fn openssl_sm2_pair(dir: &Path, key: &str, public: &str) {
    let gen_key = [
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:SM2",
        "-out",
        key,
    ];
    assert!(openssl(dir, &gen_key).status.success());
    assert!(
        openssl(dir, &["pkey", "-in", key, "-pubout", "-out", public])
            .status
            .success()
    );
}

/// Issue 13 point 8: `receipt verify` keeps accepting a version-1 receipt (a single-validator
/// chain's, finalised by a seal) against its chain's version-1 genesis file. The files in
/// `tests/data/receipt-v1` are the receipt pinned by `crates/receipt`'s known-answer test and
/// a genesis file (format 2) of its chain; a forged document is still exit 1.
#[test]
fn a_version_1_receipt_verifies_against_its_version_1_genesis() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/receipt-v1");
    let o = gmchain_in(
        &data,
        &[
            "receipt",
            "verify",
            "receipt.json",
            "document.txt",
            "--genesis",
            "genesis.json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("adbb37cc727b281a344a093156faab2dea2f5616b675dedadcc77aac0c1b3719"),
        "{out}"
    );
    assert!(out.contains("as anchored"), "{out}");
    let d = Dir::new();
    d.file("forged.txt", b"not the anchored contract");
    let receipt = data.join("receipt.json");
    let genesis = data.join("genesis.json");
    let o = gmchain_in(
        d.path(),
        &[
            "receipt",
            "verify",
            receipt.to_str().unwrap(),
            "forged.txt",
            "--genesis",
            genesis.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("RECEIPT_DOCUMENT_MISMATCH"),
        "{}",
        stderr(&o)
    );
}

/// `governance propose org-register` / `org-remove` check their input before connecting to a
/// node: a CRL of another CA, a file that is no certificate, a CA that is not a self-signed
/// root, a name with '/', a missing deadline: exit 2, one line naming the option.
#[test]
fn governance_org_proposals_check_their_input_before_sending() {
    let d = Dir::new();
    std::fs::write(d.path().join("pw"), "pass\n").unwrap();
    let ca = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_gmchain"))
            .current_dir(d.path())
            .env("GMCHAIN_OPERATOR", "test-admin")
            .args(args)
            .output()
            .expect("run gmchain");
        assert_eq!(code(&o), 0, "gmchain {args:?}: {}", stderr(&o));
    };
    for (dir, name) in [("n", "Agency N"), ("m", "Agency M")] {
        let cn = format!("{name} CA");
        let init = ["ca", "init", "--dir", dir, "--name", &cn, "--org", name];
        ca(&[&init[..], &["--pass-file", "pw"]].concat());
        ca(&["ca", "crl", "--dir", dir, "--pass-file", "pw"]);
    }
    // No node listens there: every refusal below comes before a connection.
    let node = [
        "--node",
        "127.0.0.1:9",
        "--key",
        "k.pem",
        "--cert",
        "n/ca.pem",
    ];
    let run = |args: &[&str]| {
        let mut all = vec!["governance", "propose"];
        all.extend_from_slice(args);
        all.extend_from_slice(&node);
        gmchain_in(d.path(), &all)
    };
    let o = run(&[
        "org-register",
        "--ca-cert",
        "n/ca.pem",
        "--crl",
        "m/crl.pem",
        "--deadline-in",
        "5",
    ]);
    assert_one_line_error(
        &o,
        2,
        "args[4] (CRL): not issued and signed by the CA certificate",
    );
    assert!(stderr(&o).contains("--crl m/crl.pem"), "{}", stderr(&o));
    let o = run(&[
        "org-register",
        "--ca-cert",
        "n/crl.pem",
        "--crl",
        "n/crl.pem",
        "--deadline-in",
        "5",
    ]);
    assert_one_line_error(&o, 2, "--ca-cert n/crl.pem");
    let o = run(&[
        "org-register",
        "--ca-cert",
        "n/ca.pem",
        "--crl",
        "n/crl.pem",
    ]);
    assert_one_line_error(&o, 2, "--deadline");
    let o = run(&["org-remove", "--organisation", "a/b", "--deadline-in", "5"]);
    assert_one_line_error(&o, 2, "--organisation");
    let o = run(&["org-remove", "--deadline-in", "5"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}
