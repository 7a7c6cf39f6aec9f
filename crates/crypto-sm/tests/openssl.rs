//! Differential tests against the system `openssl` command (OpenSSL 3.0.x): SM2 signatures with
//! several user IDs, SM2 encryption (GM/T 0009 DER), SM3, HMAC-SM3, SM4-CBC/CTR, and key files
//! (PKCS#8, SEC1, SPKI, encrypted PKCS#8).
//!
//! Every case is drawn from `SeededRandom` seeded from `GMCHAIN_TEST_SEED` or the clock; the seed
//! is printed (and shown by the test harness on failure) so a failure can be replayed with
//! `GMCHAIN_TEST_SEED=<seed> cargo test -p crypto-sm --test openssl`.
//!
//! OpenSSL 3.0 signs and verifies SM2 with an EMPTY user ID unless told otherwise, so every
//! pkeyutl call passes `distid:`/`hexdistid:` explicitly. A missing `openssl` is a failure, not a
//! skip: CI installs it.

mod common;
use common::Rng;
use crypto::{CipherFormat, CryptoError, PublicKey, Signature, Sm4Mode, UserId};
use crypto_sm::keys::{
    decode_private_key, decode_public_key, encode_pkcs8_der, encode_pkcs8_pem,
    encode_public_key_der, encode_public_key_pem, encode_sec1_pem, encrypted_params, is_encrypted,
};
use crypto_sm::sm2::{self, PrivateKey};
use crypto_sm::sm3::{Sm3Backend, Sm3Context, hmac_sm3, hmac_sm3_verify, sm3, sm3_many_with};
use crypto_sm::sm4::{self, Sm4Secret};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Seeded randomness

// ---------------------------------------------------------------------------------------------
// Running openssl

static OPENSSL_CHECK: OnceLock<Result<(), String>> = OnceLock::new();

/// Fails (never skips) when `openssl` 3.x is not on PATH, with the same message in every test.
fn require_openssl() {
    let check =
        OPENSSL_CHECK.get_or_init(|| {
            let out = Command::new("openssl").arg("version").output().map_err(|e| {
            format!(
                "the `openssl` command is not runnable ({e}): these differential tests need \
                 OpenSSL 3.x on PATH (CI installs it, e.g. `apt-get install openssl`); they do \
                 not skip"
            )
        })?;
            let v = String::from_utf8_lossy(&out.stdout);
            if out.status.success() && v.starts_with("OpenSSL 3.") {
                Ok(())
            } else {
                Err(format!(
                    "these differential tests need OpenSSL 3.x on PATH, found {v:?}"
                ))
            }
        });
    if let Err(msg) = check {
        panic!("{msg}");
    }
}

fn run(args: &[&OsStr]) -> Output {
    require_openssl();
    Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// Runs openssl and returns stdout, failing the test (with stderr) if it fails.
fn ossl<S: AsRef<OsStr>>(args: &[S], ctx: &str) -> Vec<u8> {
    let args: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    let out = run(&args);
    assert!(
        out.status.success(),
        "openssl {:?} failed [{ctx}]: {}\n{}",
        args,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs openssl and returns the whole output, whatever the exit status.
fn ossl_raw<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let args: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    run(&args)
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------------
// SM2 signatures

/// How OpenSSL is told the user ID.
fn distid_opt(id: &UserId) -> String {
    match std::str::from_utf8(id.as_bytes()) {
        // distid takes the rest of the argument verbatim (':' included); hexdistid for the rest.
        Ok(t) if !t.is_empty() && !t.contains('\0') => format!("distid:{t}"),
        _ => format!("hexdistid:{}", hex::encode(id.as_bytes())),
    }
}

fn random_message(rng: &Rng) -> Vec<u8> {
    // Mostly short, sometimes several SM3 blocks, sometimes empty.
    let len = match rng.below(10) {
        0 => 0,
        1 => rng.range(1000, 5000),
        _ => rng.range(1, 300),
    };
    rng.bytes(len)
}

fn openssl_verify(dir: &Dir, pub_pem: &Path, msg: &Path, sig_der: &[u8], id: &UserId) -> Output {
    let sig = dir.write("sig_to_verify.der", sig_der);
    ossl_raw(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        s(pub_pem),
        "-rawin",
        "-in",
        s(msg),
        "-digest",
        "sm3",
        "-pkeyopt",
        &distid_opt(id),
        "-sigfile",
        s(&sig),
    ])
}

fn assert_openssl_verified(out: &Output, ctx: &str) {
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully"),
        "OpenSSL rejected our signature [{ctx}]: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_openssl_rejected(out: &Output, ctx: &str) {
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("Signature Verification Failure"),
        "OpenSSL did not reject [{ctx}]: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl_sign(dir: &Dir, key_pem: &Path, msg: &Path, id: &UserId, ctx: &str) -> Signature {
    let out = dir.path("openssl_sig.der");
    ossl(
        &[
            "pkeyutl",
            "-sign",
            "-inkey",
            s(key_pem),
            "-rawin",
            "-in",
            s(msg),
            "-digest",
            "sm3",
            "-pkeyopt",
            &distid_opt(id),
            "-out",
            s(&out),
        ],
        ctx,
    );
    let der = read(&out);
    Signature::from_der(&der).unwrap_or_else(|e| {
        panic!(
            "OpenSSL's signature is not strict DER [{ctx}]: {e:?} {}",
            hex::encode(&der)
        )
    })
}

/// Writes the key as PKCS#8 or SEC1 (alternating, so both reach OpenSSL as SM2 keys) and its SPKI.
fn write_key(dir: &Dir, key: &PrivateKey, sec1: bool) -> (PathBuf, PathBuf) {
    let pem = if sec1 {
        encode_sec1_pem(key).unwrap()
    } else {
        encode_pkcs8_pem(key).unwrap()
    };
    let k = dir.write("key.pem", pem.expose());
    let p = dir.write("pub.pem", encode_public_key_pem(&key.public_key()).unwrap());
    (k, p)
}

/// Both directions for `cases` random keys and messages, with `id`; `wrong(id)` must fail on
/// both sides.
fn cross_sign(rng: &Rng, ids: &dyn Fn(&Rng) -> (UserId, UserId), cases: usize) {
    let dir = Dir::new();
    for case in 0..cases {
        let (id, wrong) = ids(rng);
        assert_ne!(id, wrong);
        let key = rng.key();
        let ctx = rng.ctx(format_args!(
            "case {case}, id {id:?}, key {:?}",
            key.public_key()
        ));
        let (key_pem, pub_pem) = write_key(&dir, &key, case % 2 == 1);
        let msg = random_message(rng);
        let msg_path = dir.write("msg", &msg);

        // ours signs (DER) -> OpenSSL verifies; with the wrong ID OpenSSL must refuse it.
        let ours = key.sign(&id, &msg, rng.src()).unwrap();
        let der = ours.to_der();
        assert_openssl_verified(&openssl_verify(&dir, &pub_pem, &msg_path, &der, &id), &ctx);
        assert_openssl_rejected(
            &openssl_verify(&dir, &pub_pem, &msg_path, &der, &wrong),
            &format!("{ctx}, wrong id {wrong:?}"),
        );

        // OpenSSL signs -> ours verifies; the wrong ID and a changed message must fail.
        let theirs = openssl_sign(&dir, &key_pem, &msg_path, &id, &ctx);
        assert_eq!(
            sm2::verify(&key.public_key(), &id, &msg, &theirs),
            Ok(()),
            "ours rejected OpenSSL's signature [{ctx}]"
        );
        assert_eq!(
            sm2::verify(&key.public_key(), &wrong, &msg, &theirs),
            Err(CryptoError::SignatureInvalid),
            "ours accepted OpenSSL's signature under the wrong id {wrong:?} [{ctx}]"
        );
        let mut other = msg.clone();
        match other.last_mut() {
            Some(b) => *b ^= 0x01,
            None => other.push(0),
        }
        assert_eq!(
            sm2::verify(&key.public_key(), &id, &other, &theirs),
            Err(CryptoError::SignatureInvalid),
            "ours accepted OpenSSL's signature on another message [{ctx}]"
        );
    }
}

/// Issue 19's differential against OpenSSL: 10³ cases of random keys, IDs and messages, signed
/// by OpenSSL (even cases) or by us (odd cases), then left valid or broken (`Sm2Mutation`: r or
/// s zero, n, above n, r + s = n, a flipped bit in r, s or the message, another key or ID, an
/// off-curve key, a key for which [s]G + [t]P = O).
/// OpenSSL's verdict, ours (the variable-time path) and the previous implementation's must
/// agree on every case. Two `openssl` processes per case at most.
#[test]
fn sm2_verify_differential_with_openssl() {
    let rng = Rng::for_test("sm2_verify_differential_with_openssl");
    let dir = Dir::new();
    let mut verified = 0;
    for case in 0..1000 {
        let key = rng.key();
        let id = common::sm2_random_id(&rng);
        let msg = random_message(&rng);
        let (key_pem, _) = write_key(&dir, &key, case % 4 == 1);
        let msg_path = dir.write("msg", &msg);
        let ctx = rng.ctx(format_args!(
            "case {case}, id {id:?}, key {:?}",
            key.public_key()
        ));
        let sig = if case % 2 == 0 {
            openssl_sign(&dir, &key_pem, &msg_path, &id, &ctx)
        } else {
            key.sign(&id, &msg, rng.src()).unwrap()
        };
        let mutation = common::Sm2Mutation::for_case(&rng, case);
        let other = rng.key().public_key();
        let c = common::mutate_sm2(&rng, mutation, key.public_key(), id, msg, sig, other);
        let ctx = format!(
            "{ctx}, {:?}, r {}, s {}",
            c.mutation,
            hex::encode(c.sig.r()),
            hex::encode(c.sig.s())
        );
        // An off-curve key has no PEM from us: its SPKI DER is written by hand (OpenSSL reads
        // either form) so that OpenSSL itself decides about it.
        let pub_path = match encode_public_key_pem(&c.key) {
            Ok(pem) => dir.write("case_pub.pem", pem),
            Err(_) => dir.write(
                "case_pub.der",
                spki_der_unchecked(&key.public_key(), &c.key),
            ),
        };
        let msg_path = dir.write("case_msg", &c.msg);
        let out = openssl_verify(&dir, &pub_path, &msg_path, &c.sig.to_der(), &c.id);
        let theirs = out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully");
        let ours = sm2::verify(&c.key, &c.id, &c.msg, &c.sig);
        assert_eq!(
            ours,
            sm2::verify_reference(&c.key, &c.id, &c.msg, &c.sig),
            "the two paths disagree [{ctx}]"
        );
        assert_eq!(
            ours.is_ok(),
            theirs,
            "ours {ours:?}, OpenSSL {}{} [{ctx}]",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            ours.is_ok(),
            c.mutation == common::Sm2Mutation::None,
            "[{ctx}]"
        );
        verified += usize::from(theirs);
    }
    eprintln!("sm2_verify_differential_with_openssl: 1000 cases, {verified} valid");
}

/// The SPKI DER of `key` without the curve check, on the header of the valid key `like`.
fn spki_der_unchecked(like: &PublicKey, key: &PublicKey) -> Vec<u8> {
    let mut der = encode_public_key_der(like).unwrap();
    let n = der.len();
    der[n - 65..].copy_from_slice(key.as_bytes());
    der
}

/// Review i19 L3: signatures whose x₁ is at least n (B7 holds only with x₁ reduced mod n, the
/// case random signatures reach with probability 2⁻¹²⁸), verified on the digest e by OpenSSL
/// (`pkeyutl -verify` without `-rawin` takes its input as e) and by both of our paths: the
/// valid one verifies everywhere, r + 1 and r − 1 nowhere.
#[test]
fn sm2_x1_above_n_with_openssl() {
    let rng = Rng::for_test("sm2_x1_above_n_with_openssl");
    let dir = Dir::new();
    let cases = common::x1_above_n_cases(&rng, 8);
    for (i, c) in cases.iter().enumerate() {
        let pub_path = dir.write("x1_pub.pem", encode_public_key_pem(&c.key).unwrap());
        let e_path = dir.write("x1_e.bin", c.e.as_bytes());
        for (sig, valid) in [(&c.sig, true), (&c.bad[0], false), (&c.bad[1], false)] {
            let ctx = rng.ctx(format_args!(
                "case {i}, key {:?}, e {}, r {}, valid {valid}",
                c.key,
                hex::encode(c.e.as_bytes()),
                hex::encode(sig.r())
            ));
            let sig_path = dir.write("x1_sig.der", sig.to_der());
            let out = ossl_raw(&[
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                s(&pub_path),
                "-in",
                s(&e_path),
                "-sigfile",
                s(&sig_path),
            ]);
            let theirs = out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully");
            assert_eq!(theirs, valid, "OpenSSL {out:?} [{ctx}]");
            assert_eq!(
                sm2::verify_digest(&c.key, &c.e, sig).is_ok(),
                valid,
                "[{ctx}]"
            );
            assert_eq!(
                sm2::verify_digest_reference(&c.key, &c.e, sig).is_ok(),
                valid,
                "[{ctx}]"
            );
        }
    }
    eprintln!(
        "sm2_x1_above_n_with_openssl: {} cases x 3 signatures",
        cases.len()
    );
}

#[test]
fn sm2_sign_verify_default_id_both_ways() {
    let rng = Rng::for_test("sm2_sign_verify_default_id_both_ways");
    cross_sign(
        &rng,
        &|rng| {
            // wrong: the default ID with one character changed
            let mut w = crypto::DEFAULT_USER_ID.to_vec();
            let i = rng.below(w.len());
            w[i] = if w[i] == b'9' { b'0' } else { w[i] + 1 };
            (UserId::default(), UserId::new(w).unwrap())
        },
        64,
    );
}

#[test]
fn sm2_sign_verify_utf8_id_both_ways() {
    let rng = Rng::for_test("sm2_sign_verify_utf8_id_both_ways");
    const NAMES: &[&str] = &[
        "alice@example.com",
        "节点-北京-01",
        "TLSv1.3+GM+Cipher+Suite",
        "id:with:colons and spaces",
        "x",
        "ünïcødé ✓",
    ];
    cross_sign(
        &rng,
        &|rng| {
            let base = NAMES[rng.below(NAMES.len())];
            let id = format!("{base}#{}", rng.below(100_000));
            let wrong = format!("{id}!");
            (UserId::new(id).unwrap(), UserId::new(wrong).unwrap())
        },
        64,
    );
}

#[test]
fn sm2_sign_verify_binary_id_both_ways() {
    let rng = Rng::for_test("sm2_sign_verify_binary_id_both_ways");
    cross_sign(
        &rng,
        &|rng| {
            // Random bytes with an 0xff (never valid UTF-8) and sometimes a NUL, up to 200 bytes.
            let mut id = rng.bytes(rng.range(1, 200));
            let i = rng.below(id.len());
            id[i] = 0xff;
            if rng.below(2) == 0 {
                let j = rng.below(id.len());
                if j != i {
                    id[j] = 0;
                }
            }
            let mut wrong = id.clone();
            let k = rng.below(wrong.len());
            wrong[k] ^= 0x80;
            if wrong == id {
                wrong.push(0);
            }
            assert!(std::str::from_utf8(&id).is_err());
            (UserId::new(id).unwrap(), UserId::new(wrong).unwrap())
        },
        64,
    );
}

/// OpenSSL 3.0's default SM2 ID is empty: a `pkeyutl` call without distid agrees with ours
/// signing under the empty ID, and disagrees with the GM/T 0009 default ID.
#[test]
fn sm2_openssl_default_is_the_empty_id() {
    let rng = Rng::for_test("sm2_openssl_default_is_the_empty_id");
    let dir = Dir::new();
    let empty = UserId::new(Vec::new()).unwrap();
    for case in 0..4 {
        let key = rng.key();
        let ctx = rng.ctx(format_args!("case {case}"));
        let (key_pem, pub_pem) = write_key(&dir, &key, false);
        let msg = random_message(&rng);
        let msg_path = dir.write("msg", &msg);
        let sig_path = dir.path("sig");
        ossl(
            &[
                "pkeyutl",
                "-sign",
                "-inkey",
                s(&key_pem),
                "-rawin",
                "-in",
                s(&msg_path),
                "-digest",
                "sm3",
                "-out",
                s(&sig_path),
            ],
            &ctx,
        );
        let sig = Signature::from_der(&read(&sig_path)).unwrap();
        assert_eq!(
            sm2::verify(&key.public_key(), &empty, &msg, &sig),
            Ok(()),
            "{ctx}"
        );
        assert_eq!(
            sm2::verify(&key.public_key(), &UserId::default(), &msg, &sig),
            Err(CryptoError::SignatureInvalid),
            "{ctx}"
        );
        let ours = key.sign(&empty, &msg, rng.src()).unwrap();
        let ours_path = dir.write("ours.sig", ours.to_der());
        let out = ossl_raw(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            s(&pub_pem),
            "-rawin",
            "-in",
            s(&msg_path),
            "-digest",
            "sm3",
            "-sigfile",
            s(&ours_path),
        ]);
        assert_openssl_verified(&out, &ctx);
    }
}

/// A named property a generated value should have.
type Wanted<T> = (&'static str, fn(&T) -> bool);

/// Signatures whose r or s has a leading zero byte (a 31-byte DER INTEGER) and whose r or s has
/// the top bit set (a 33-byte INTEGER) are exchanged both ways.
#[test]
fn sm2_signature_integer_widths_both_ways() {
    let rng = Rng::for_test("sm2_signature_integer_widths_both_ways");
    let dir = Dir::new();
    let id = UserId::default();
    let key = rng.key();
    let (_, pub_pem) = write_key(&dir, &key, false);
    let msg = rng.bytes(rng.range(0, 100));
    let msg_path = dir.write("msg", &msg);
    let mut want: Vec<Wanted<Signature>> = vec![
        ("r < 2^248", |s| s.r()[0] == 0),
        ("s < 2^248", |s| s.s()[0] == 0),
        ("r >= 2^255", |s| s.r()[0] >= 0x80),
        ("s < 2^255", |s| s.s()[0] < 0x80),
    ];
    let mut tries = 0;
    while !want.is_empty() {
        tries += 1;
        assert!(
            tries < 20_000,
            "no k found for {:?}",
            want.iter().map(|w| w.0).collect::<Vec<_>>()
        );
        let k: [u8; 32] = rng.array();
        let Ok(sig) = crypto_sm::danger::sign_with_k(&key, &id, &msg, &k) else {
            continue;
        };
        let Some(pos) = want.iter().position(|(_, f)| f(&sig)) else {
            continue;
        };
        let (what, _) = want.remove(pos);
        let ctx = rng.ctx(format_args!("{what}: {sig:?}"));
        let der = sig.to_der();
        assert_eq!(Signature::from_der(&der).unwrap(), sig);
        assert_openssl_verified(&openssl_verify(&dir, &pub_pem, &msg_path, &der, &id), &ctx);
    }
}

// ---------------------------------------------------------------------------------------------
// SM2 encryption

fn openssl_decrypt(dir: &Dir, key_pem: &Path, ct: &[u8], ctx: &str) -> Vec<u8> {
    let ct_path = dir.write("ct.der", ct);
    ossl(
        &[
            "pkeyutl",
            "-decrypt",
            "-inkey",
            s(key_pem),
            "-in",
            s(&ct_path),
        ],
        ctx,
    )
}

fn openssl_encrypt(dir: &Dir, pub_pem: &Path, msg: &[u8], ctx: &str) -> Vec<u8> {
    let m = dir.write("pt", msg);
    ossl(
        &[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            s(pub_pem),
            "-in",
            s(&m),
        ],
        ctx,
    )
}

#[test]
fn sm2_encryption_both_ways() {
    let rng = Rng::for_test("sm2_encryption_both_ways");
    let dir = Dir::new();
    let mut lens: Vec<usize> = vec![1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 300];
    lens.extend((0..86).map(|_| rng.range(1, 300)));
    let mut key = rng.key();
    let mut files = write_key(&dir, &key, false);
    for (case, len) in lens.into_iter().enumerate() {
        if case % 5 == 0 {
            key = rng.key();
            files = write_key(&dir, &key, case % 10 == 5);
        }
        let (key_pem, pub_pem) = (&files.0, &files.1);
        let ctx = rng.ctx(format_args!("case {case}, len {len}"));
        let msg = rng.bytes(len);

        // ours encrypts (GM/T 0009 DER) -> OpenSSL decrypts
        let ct = sm2::encrypt(&key.public_key(), &msg, CipherFormat::Der, rng.src()).unwrap();
        assert_eq!(
            openssl_decrypt(&dir, key_pem, &ct, &ctx),
            msg,
            "OpenSSL decrypted our ciphertext to something else [{ctx}]"
        );

        // OpenSSL encrypts -> ours decrypts; a flipped bit or another key must fail
        let theirs = openssl_encrypt(&dir, pub_pem, &msg, &ctx);
        let pt = sm2::decrypt(&key, &theirs, CipherFormat::Der)
            .unwrap_or_else(|e| panic!("ours failed on OpenSSL's ciphertext [{ctx}]: {e:?}"));
        assert_eq!(pt.expose(), &msg[..], "[{ctx}]");
        let mut bad = theirs.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x01; // the last byte of C2
        assert!(
            matches!(
                sm2::decrypt(&key, &bad, CipherFormat::Der),
                Err(CryptoError::DecryptionFailed { .. })
            ),
            "tampered ciphertext accepted [{ctx}]"
        );
        let other = rng.key();
        assert!(
            sm2::decrypt(&other, &theirs, CipherFormat::Der).is_err(),
            "[{ctx}]"
        );
    }
}

/// Ciphertexts whose C1 coordinates are short DER INTEGERs (leading zero byte) or need a
/// leading 0x00 (top bit set) are decrypted by OpenSSL.
#[test]
fn sm2_ciphertext_integer_widths_openssl_decrypts() {
    let rng = Rng::for_test("sm2_ciphertext_integer_widths_openssl_decrypts");
    let dir = Dir::new();
    let key = rng.key();
    let (key_pem, _) = write_key(&dir, &key, false);
    let mut want: Vec<Wanted<PublicKey>> = vec![
        ("x1 < 2^248", |p| p.x()[0] == 0),
        ("y1 < 2^248", |p| p.y()[0] == 0),
        ("x1 >= 2^255", |p| p.x()[0] >= 0x80),
        ("y1 >= 2^255", |p| p.y()[0] >= 0x80),
    ];
    let mut tries = 0;
    while !want.is_empty() {
        tries += 1;
        assert!(tries < 20_000, "no k found");
        let k: [u8; 32] = rng.array();
        // C1 = [k]G, which is the public key of the private key k.
        let Ok(c1) = PrivateKey::from_bytes(&k).map(|p| p.public_key()) else {
            continue;
        };
        let Some(pos) = want.iter().position(|(_, f)| f(&c1)) else {
            continue;
        };
        let (what, _) = want.remove(pos);
        let msg = rng.bytes(rng.range(1, 100));
        let raw = crypto_sm::danger::encrypt_with_k(&key.public_key(), &msg, &k).unwrap();
        assert_eq!(&raw[..65], &c1.as_bytes()[..]);
        let der = crypto::gmt0009::encode_ciphertext(&raw).unwrap();
        let ctx = rng.ctx(format_args!("{what}, C1 {c1:?}"));
        assert_eq!(openssl_decrypt(&dir, &key_pem, &der, &ctx), msg, "[{ctx}]");
        assert_eq!(
            sm2::decrypt(&key, &der, CipherFormat::Der)
                .unwrap()
                .expose(),
            &msg[..]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SM3 and HMAC-SM3

#[test]
fn sm3_matches_openssl_dgst() {
    let rng = Rng::for_test("sm3_matches_openssl_dgst");
    let dir = Dir::new();
    let mut lens: Vec<usize> = vec![
        0, 1, 3, 55, 56, 57, 63, 64, 65, 111, 112, 119, 120, 127, 128, 129, 191, 192, 193, 1000,
        4095, 4096, 4097, 100_000,
    ];
    lens.extend((0..200).map(|_| rng.range(0, 2100)));
    let mut args = vec!["dgst".to_string(), "-sm3".into(), "-r".into()];
    let mut inputs = Vec::new();
    for (i, len) in lens.iter().enumerate() {
        let data = rng.bytes(*len);
        let p = dir.write(&format!("m{i}"), &data);
        args.push(s(&p).to_string());
        inputs.push((p, data));
    }
    let out = String::from_utf8(ossl(&args, &rng.ctx("dgst"))).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), inputs.len(), "{out}");
    for ((path, data), line) in inputs.iter().zip(lines) {
        let (hexd, name) = line.split_once(" *").unwrap();
        assert_eq!(name, s(path));
        let ctx = rng.ctx(format_args!("len {}", data.len()));
        assert_eq!(sm3(data).to_hex(), hexd, "SM3 differs from OpenSSL [{ctx}]");
        // the incremental API, split at a random point, agrees too
        let cut = rng.range(0, data.len());
        let mut h = Sm3Context::new();
        h.update(&data[..cut]);
        h.update(&data[cut..]);
        assert_eq!(h.finish().to_hex(), hexd, "[{ctx}, cut {cut}]");
    }
    // `sm3_many` on every backend this CPU runs, all messages in one batch (unequal lengths in
    // the same lanes); the others are reported, not passed.
    for b in Sm3Backend::unavailable() {
        eprintln!("sm3: backend {b}: untested on this CPU");
    }
    let all: Vec<&[u8]> = inputs.iter().map(|(_, d)| &d[..]).collect();
    for b in Sm3Backend::available() {
        let many = sm3_many_with(b, &all).unwrap();
        for (((_, data), line), batch) in inputs.iter().zip(out.lines()).zip(&many) {
            let hexd = line.split_once(" *").unwrap().0;
            let ctx = rng.ctx(format_args!("backend {b}, len {}", data.len()));
            assert_eq!(
                batch.to_hex(),
                hexd,
                "sm3_many differs from OpenSSL [{ctx}]"
            );
        }
    }
}

#[test]
fn hmac_sm3_matches_openssl_mac() {
    let rng = Rng::for_test("hmac_sm3_matches_openssl_mac");
    let dir = Dir::new();
    // key lengths around SM3's 64-byte block (longer keys are hashed first)
    let mut key_lens: Vec<usize> = vec![0, 1, 16, 32, 63, 64, 65, 100, 128, 200];
    key_lens.extend((0..50).map(|_| rng.range(0, 150)));
    for (case, klen) in key_lens.into_iter().enumerate() {
        let key = rng.bytes(klen);
        let data = rng.bytes(if case % 7 == 0 { 0 } else { rng.range(1, 700) });
        let ctx = rng.ctx(format_args!(
            "case {case}, key len {klen}, data len {}",
            data.len()
        ));
        let p = dir.write("data", &data);
        let out = ossl(
            &[
                "mac",
                "-digest",
                "SM3",
                "-macopt",
                &format!("hexkey:{}", hex::encode(&key)),
                "-in",
                s(&p),
                "HMAC",
            ],
            &ctx,
        );
        let theirs = hex::decode(String::from_utf8(out).unwrap().trim()).unwrap();
        assert_eq!(
            hex::encode(hmac_sm3(&key, &data)),
            hex::encode(&theirs),
            "[{ctx}]"
        );
        assert_eq!(hmac_sm3_verify(&key, &data, &theirs), Ok(()), "[{ctx}]");
    }
}

// ---------------------------------------------------------------------------------------------
// SM4

fn openssl_enc(
    dir: &Dir,
    cipher: &str,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
    decrypt: bool,
) -> Output {
    let inp = dir.write("enc_in", data);
    let mut args = vec![
        "enc".to_string(),
        format!("-{cipher}"),
        "-K".into(),
        hex::encode(key),
        "-iv".into(),
        hex::encode(iv),
        "-nosalt".into(),
        "-in".into(),
        s(&inp).into(),
    ];
    if decrypt {
        args.push("-d".into());
    }
    ossl_raw(&args)
}

fn enc_ok(out: Output, ctx: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "openssl enc failed [{ctx}]: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn data_len(rng: &Rng, case: usize) -> usize {
    common::SM4_LENGTHS
        .get(case)
        .copied()
        .unwrap_or_else(|| rng.range(0, 600))
}

#[test]
fn sm4_cbc_matches_openssl_both_ways_on_every_backend() {
    let test = "sm4_cbc_matches_openssl_both_ways_on_every_backend";
    let rng = Rng::for_test(test);
    let backends = common::sm4_backends(test);
    let dir = Dir::new();
    for case in 0..80 {
        let key: [u8; 16] = rng.array();
        let iv: [u8; 16] = rng.array();
        let data = rng.bytes(data_len(&rng, case));
        let ctx = rng.ctx(format_args!("case {case}, len {}", data.len()));
        let sk = Sm4Secret::from_slice(&key).unwrap();
        let theirs = enc_ok(openssl_enc(&dir, "sm4-cbc", &key, &iv, &data, false), &ctx);

        for &b in &backends {
            let _forced = b.force().unwrap();
            let ours = sm4::encrypt(&sk, Sm4Mode::Cbc, &iv, &[], &data).unwrap();
            assert_eq!(
                hex::encode(&ours),
                hex::encode(&theirs),
                "SM4-CBC differs, backend {b} [{ctx}]"
            );
            assert_eq!(
                sm4::decrypt(&sk, Sm4Mode::Cbc, &iv, &[], &theirs)
                    .unwrap()
                    .expose(),
                &data[..],
                "backend {b} [{ctx}]"
            );
            // a wrong IV changes only the first block
            let mut iv2 = iv;
            iv2[0] ^= 1;
            let first = sm4::decrypt(&sk, Sm4Mode::Cbc, &iv2, &[], &theirs);
            if data.len() >= 16 {
                let pt = first.unwrap();
                assert_eq!(pt.expose()[0], data[0] ^ 1, "backend {b} [{ctx}]");
                assert_eq!(&pt.expose()[1..], &data[1..], "backend {b} [{ctx}]");
            }
        }
        // OpenSSL decrypts ours (equal to theirs on every backend, checked above)
        assert_eq!(
            enc_ok(openssl_enc(&dir, "sm4-cbc", &key, &iv, &theirs, true), &ctx),
            data,
            "[{ctx}]"
        );
    }
    for b in backends {
        eprintln!("{test}: SM4 backend {b}: passed");
    }
}

#[test]
fn sm4_ctr_matches_openssl_both_ways_on_every_backend() {
    let test = "sm4_ctr_matches_openssl_both_ways_on_every_backend";
    let rng = Rng::for_test(test);
    let backends = common::sm4_backends(test);
    let dir = Dir::new();
    for case in 0..90 {
        let key: [u8; 16] = rng.array();
        let mut iv: [u8; 16] = rng.array();
        // Counters about to carry out of the low 32 and 64 bits, and across the full 128-bit
        // wrap (OpenSSL's CTR, like ours, increments the whole block big-endian).
        match case % 4 {
            1 => {
                iv[8..].copy_from_slice(&(u64::MAX - rng.below(20) as u64).to_be_bytes());
            }
            2 => {
                iv = [0xff; 16];
                iv[15] = 0xff - rng.below(20) as u8;
            }
            3 => {
                iv[12..].copy_from_slice(&(u32::MAX - rng.below(20) as u32).to_be_bytes());
            }
            _ => {}
        }
        let data = rng.bytes(data_len(&rng, case));
        let ctx = rng.ctx(format_args!(
            "case {case}, iv {}, len {}",
            hex::encode(iv),
            data.len()
        ));
        let sk = Sm4Secret::from_slice(&key).unwrap();
        let theirs = enc_ok(openssl_enc(&dir, "sm4-ctr", &key, &iv, &data, false), &ctx);

        for &b in &backends {
            let _forced = b.force().unwrap();
            let ours = sm4::encrypt(&sk, Sm4Mode::Ctr, &iv, &[], &data).unwrap();
            assert_eq!(
                hex::encode(&ours),
                hex::encode(&theirs),
                "SM4-CTR differs, backend {b} [{ctx}]"
            );
            assert_eq!(
                sm4::decrypt(&sk, Sm4Mode::Ctr, &iv, &[], &theirs)
                    .unwrap()
                    .expose(),
                &data[..],
                "backend {b} [{ctx}]"
            );
            let mut inplace = data.clone();
            sm4::ctr_apply(&sk, &iv, &mut inplace).unwrap();
            assert_eq!(inplace, theirs, "ctr_apply, backend {b} [{ctx}]");
        }
        assert_eq!(
            enc_ok(openssl_enc(&dir, "sm4-ctr", &key, &iv, &theirs, true), &ctx),
            data,
            "[{ctx}]"
        );
    }
    for b in backends {
        eprintln!("{test}: SM4 backend {b}: passed");
    }
}

// ---------------------------------------------------------------------------------------------
// Key files

/// Keys from `openssl genpkey` (PKCS#8) and `openssl ec` (SEC1, which OpenSSL 3.0 labels
/// `SM2 PRIVATE KEY`), in PEM and DER, are read by ours and give the key `openssl pkey -pubout`
/// prints.
#[test]
fn openssl_key_files_are_read_by_ours() {
    let rng = Rng::for_test("openssl_key_files_are_read_by_ours");
    let dir = Dir::new();
    for case in 0..8 {
        let ctx = rng.ctx(format_args!("case {case}"));
        let k = dir.path("k.pem");
        ossl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:SM2",
                "-out",
                s(&k),
            ],
            &ctx,
        );
        let spki_pem = ossl(&["pkey", "-in", s(&k), "-pubout"], &ctx);
        let spki_der = ossl(&["pkey", "-in", s(&k), "-pubout", "-outform", "DER"], &ctx);
        let expected = decode_public_key(&spki_pem).unwrap();
        assert_eq!(decode_public_key(&spki_der).unwrap(), expected, "[{ctx}]");
        // The SPKI we write for that key is byte-for-byte OpenSSL's.
        assert_eq!(
            encode_public_key_der(&expected).unwrap(),
            spki_der,
            "[{ctx}]"
        );
        assert_eq!(
            encode_public_key_pem(&expected).unwrap().as_bytes(),
            &spki_pem[..],
            "[{ctx}]"
        );

        let forms: Vec<(&str, Vec<u8>)> = vec![
            ("PKCS#8 PEM", read(&k)),
            (
                "PKCS#8 DER",
                ossl(&["pkey", "-in", s(&k), "-outform", "DER"], &ctx),
            ),
            ("SEC1 PEM (openssl ec)", ossl(&["ec", "-in", s(&k)], &ctx)),
            (
                "SEC1 DER (openssl ec)",
                ossl(&["ec", "-in", s(&k), "-outform", "DER"], &ctx),
            ),
        ];
        for (what, bytes) in forms {
            let key = decode_private_key(&bytes, None)
                .unwrap_or_else(|e| panic!("ours cannot read OpenSSL's {what} [{ctx}]: {e:?}"));
            assert_eq!(key.public_key(), expected, "{what} [{ctx}]");
            assert!(!is_encrypted(&bytes), "{what} [{ctx}]");
        }
        // ours signs with the key read from OpenSSL's file; OpenSSL verifies with its SPKI
        let pub_path = dir.write("pub.pem", &spki_pem);
        let msg = rng.bytes(rng.range(1, 100));
        let msg_path = dir.write("msg", &msg);
        let key = decode_private_key(&read(&k), None).unwrap();
        let sig = key.sign(&UserId::default(), &msg, rng.src()).unwrap();
        assert_openssl_verified(
            &openssl_verify(
                &dir,
                &pub_path,
                &msg_path,
                &sig.to_der(),
                &UserId::default(),
            ),
            &ctx,
        );
    }
}

/// Our PKCS#8, SEC1 and SPKI files (PEM and DER) are read by `openssl pkey` / `openssl ec`, which
/// give back the same public key and see an SM2 key.
#[test]
fn our_key_files_are_read_by_openssl() {
    let rng = Rng::for_test("our_key_files_are_read_by_openssl");
    let dir = Dir::new();
    for case in 0..8 {
        let key = rng.key();
        let ctx = rng.ctx(format_args!("case {case}, key {:?}", key.public_key()));
        let spki = encode_public_key_pem(&key.public_key()).unwrap();
        let pkcs8 = dir.write("k8.pem", encode_pkcs8_pem(&key).unwrap().expose());
        let pkcs8_der = dir.write("k8.der", encode_pkcs8_der(&key).unwrap().expose());
        let sec1 = dir.write("k1.pem", encode_sec1_pem(&key).unwrap().expose());
        let spki_path = dir.write("pub.pem", &spki);
        let spki_der = dir.write("pub.der", encode_public_key_der(&key.public_key()).unwrap());

        for (what, out) in [
            (
                "PKCS#8 PEM",
                ossl(&["pkey", "-in", s(&pkcs8), "-pubout"], &ctx),
            ),
            (
                "PKCS#8 DER",
                ossl(
                    &["pkey", "-inform", "DER", "-in", s(&pkcs8_der), "-pubout"],
                    &ctx,
                ),
            ),
            (
                "SEC1 PEM via pkey",
                ossl(&["pkey", "-in", s(&sec1), "-pubout"], &ctx),
            ),
            (
                "SEC1 PEM via ec",
                ossl(&["ec", "-in", s(&sec1), "-pubout"], &ctx),
            ),
            (
                "SPKI PEM",
                ossl(&["pkey", "-pubin", "-in", s(&spki_path), "-pubout"], &ctx),
            ),
            (
                "SPKI DER",
                ossl(
                    &[
                        "pkey",
                        "-pubin",
                        "-inform",
                        "DER",
                        "-in",
                        s(&spki_der),
                        "-pubout",
                    ],
                    &ctx,
                ),
            ),
        ] {
            assert_eq!(
                String::from_utf8(out).unwrap(),
                spki,
                "OpenSSL's public key from our {what} differs [{ctx}]"
            );
        }
        // OpenSSL sees the private scalar we wrote, on the SM2 curve
        let text =
            String::from_utf8(ossl(&["pkey", "-in", s(&pkcs8), "-text", "-noout"], &ctx)).unwrap();
        assert!(text.contains("ASN1 OID: SM2"), "[{ctx}] {text}");
        let priv_hex: String = text
            .split("priv:")
            .nth(1)
            .and_then(|t| t.split("pub:").next())
            .unwrap()
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .collect();
        let d = hex::encode(*key.to_bytes());
        assert_eq!(
            priv_hex.trim_start_matches('0'),
            d.trim_start_matches('0'),
            "[{ctx}]"
        );

        // OpenSSL signs with our SEC1 and PKCS#8 files as SM2 (not ECDSA): ours verifies
        let msg = rng.bytes(rng.range(0, 200));
        let msg_path = dir.write("msg", &msg);
        for f in [&sec1, &pkcs8] {
            let sig = openssl_sign(&dir, f, &msg_path, &UserId::default(), &ctx);
            assert_eq!(
                sm2::verify(&key.public_key(), &UserId::default(), &msg, &sig),
                Ok(()),
                "[{ctx}]"
            );
        }
    }
}

/// `openssl pkcs8 -topk8 -v2 sm4-cbc` (PBES2, PBKDF2-hmacWithSHA256, SM4-CBC) is read by ours
/// with the passphrase, in PEM and DER; a wrong passphrase is refused.
#[test]
fn openssl_encrypted_pkcs8_is_read_by_ours() {
    let rng = Rng::for_test("openssl_encrypted_pkcs8_is_read_by_ours");
    let dir = Dir::new();
    let passes: Vec<Vec<u8>> = vec![
        b"correct horse battery staple".to_vec(),
        "pässwörd-密码".as_bytes().to_vec(),
        // random printable ASCII, no newline (openssl's file: reads the first line)
        (0..rng.range(1, 40))
            .map(|_| b'!' + rng.below(94) as u8)
            .collect(),
        b"x".to_vec(),
    ];
    for (case, pass) in passes.into_iter().enumerate() {
        let ctx = rng.ctx(format_args!(
            "case {case}, pass {:?}",
            String::from_utf8_lossy(&pass)
        ));
        // one key from OpenSSL, the others ours
        let plain = dir.path("plain.pem");
        if case == 0 {
            ossl(
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:SM2",
                    "-out",
                    s(&plain),
                ],
                &ctx,
            );
        } else {
            std::fs::write(&plain, encode_pkcs8_pem(&rng.key()).unwrap().expose()).unwrap();
        }
        let expected =
            decode_public_key(&ossl(&["pkey", "-in", s(&plain), "-pubout"], &ctx)).unwrap();
        let pw = dir.write("pw", &pass);
        let iter = if case == 1 { 2048 } else { rng.range(1, 5000) };
        for outform in ["PEM", "DER"] {
            let enc = dir.path("enc");
            ossl(
                &[
                    "pkcs8",
                    "-topk8",
                    "-v2",
                    "sm4-cbc",
                    "-iter",
                    &iter.to_string(),
                    "-in",
                    s(&plain),
                    "-passout",
                    &format!("file:{}", s(&pw)),
                    "-outform",
                    outform,
                    "-out",
                    s(&enc),
                ],
                &ctx,
            );
            let bytes = read(&enc);
            assert!(is_encrypted(&bytes), "{outform} [{ctx}]");
            let params = encrypted_params(&bytes).unwrap();
            assert_eq!(
                params.prf.to_string(),
                "1.2.840.113549.2.9",
                "hmacWithSHA256 [{ctx}]"
            );
            assert_eq!(params.iterations as usize, iter, "[{ctx}]");
            let key = decode_private_key(&bytes, Some(&pass)).unwrap_or_else(|e| {
                panic!("ours cannot read OpenSSL's encrypted {outform} [{ctx}]: {e:?}")
            });
            assert_eq!(key.public_key(), expected, "{outform} [{ctx}]");
            let mut wrong = pass.clone();
            wrong.push(b'!');
            assert_eq!(
                decode_private_key(&bytes, Some(&wrong)).unwrap_err(),
                CryptoError::KeyDecrypt,
                "{outform} [{ctx}]"
            );
            assert!(
                decode_private_key(&bytes, None).is_err(),
                "{outform} [{ctx}]"
            );
        }
    }
}
