//! The development keystore against a real file system: round trips, reopening, refusals
//! (passphrase, labels, permissions, tampering), import of OpenSSL 3 key files, and concurrent
//! writers. Each key costs a PBKDF2 run (65536 iterations of HMAC-SM3), so the tests generate
//! few keys.
//!
//! The import test needs the `openssl` command (3.x); without it the test fails, it does not
//! skip.

use crypto::{CryptoError, KeyInfo, KeyStore, RandomSource, Secret, Signer, UserId};
use crypto_sm::keys::{
    DEFAULT_ITERATIONS, OID_HMAC_SM3, decode_private_key, decode_public_key, encode_pkcs8_pem,
    encrypted_params,
};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2;
use keystore::{DirKeyStore, KeystoreError, Label};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use tempfile::TempDir;

const PASS: &[u8] = b"correct horse battery staple";

fn rng(seed: u64) -> Arc<dyn RandomSource> {
    Arc::new(SeededRandom::new(seed))
}

fn pass(p: &[u8]) -> Secret {
    Secret::new(p.to_vec())
}

/// A fresh keystore in `<tmp>/keys`.
fn new_store(seed: u64) -> (TempDir, PathBuf, DirKeyStore) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let store = DirKeyStore::create(&dir, pass(PASS), rng(seed)).unwrap();
    (tmp, dir, store)
}

fn open(dir: &Path, seed: u64) -> Result<DirKeyStore, KeystoreError> {
    DirKeyStore::open(dir, pass(PASS), rng(seed))
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `KeyStore::signer` through the trait object, returning only the error.
fn trait_signer_err(store: &dyn KeyStore, label: &str) -> CryptoError {
    match store.signer(label) {
        Ok(s) => panic!("expected an error, got a signer for {:?}", s.public_key()),
        Err(e) => e,
    }
}

fn assert_signs_for(signer: &dyn Signer, key: &KeyInfo) {
    let id = UserId::default();
    assert_eq!(signer.public_key(), key.public_key);
    let sig = signer.sign(&id, b"transfer 10 to bob").unwrap();
    sm2::verify(&key.public_key, &id, b"transfer 10 to bob", &sig).unwrap();
    assert_eq!(
        sm2::verify(&key.public_key, &id, b"transfer 99 to bob", &sig),
        Err(CryptoError::SignatureInvalid)
    );
}

#[test]
fn generate_list_sign_reopen_delete() {
    let (_tmp, dir, store) = new_store(1);
    assert!(store.list().unwrap().is_empty());
    let bob = store.generate("bob").unwrap();
    let alice = KeyStore::generate(&store, "alice").unwrap();
    assert_eq!((alice.label.as_str(), bob.label.as_str()), ("alice", "bob"));
    assert_ne!(alice.public_key, bob.public_key);
    let listed = store.list().unwrap();
    assert_eq!(listed, vec![alice.clone(), bob.clone()], "sorted by label");
    assert_eq!(KeyStore::list(&store).unwrap(), listed);

    // The layout: two files per key, the private one owner-only, in an owner-only directory.
    assert_eq!(
        entries(&dir),
        [
            ".lock",
            "KEYSTORE",
            "alice.key.pem",
            "alice.pub.pem",
            "bob.key.pem",
            "bob.pub.pem"
        ]
    );
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("alice.key.pem")), 0o600);
    assert_eq!(mode(&dir.join(".lock")), 0o600);
    assert_eq!(mode(&dir.join("alice.pub.pem")) & 0o022, 0);

    // The key file is an encrypted PKCS#8 that the codec alone, with the passphrase, decrypts
    // to alice's key; the public file is her SPKI.
    let key_pem = fs::read(dir.join("alice.key.pem")).unwrap();
    assert!(key_pem.starts_with(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
    let params = encrypted_params(&key_pem).unwrap();
    assert_eq!(
        (params.iterations, params.prf),
        (DEFAULT_ITERATIONS, OID_HMAC_SM3)
    );
    assert_eq!(
        decode_private_key(&key_pem, Some(PASS))
            .unwrap()
            .public_key(),
        alice.public_key
    );
    let pub_pem = fs::read(dir.join("alice.pub.pem")).unwrap();
    assert!(pub_pem.starts_with(b"-----BEGIN PUBLIC KEY-----\n"));
    assert_eq!(decode_public_key(&pub_pem).unwrap(), alice.public_key);

    // Signers through the trait object sign for their own key only.
    let dyn_store: &dyn KeyStore = &store;
    let alice_signer = dyn_store.signer("alice").unwrap();
    assert_signs_for(&*alice_signer, &alice);
    let sig = alice_signer.sign(&UserId::default(), b"m").unwrap();
    assert_eq!(
        sm2::verify(&bob.public_key, &UserId::default(), b"m", &sig),
        Err(CryptoError::SignatureInvalid)
    );

    // A new instance over the same directory sees the same keys.
    drop(store);
    let reopened = open(&dir, 2).unwrap();
    assert_eq!(reopened.list().unwrap(), listed);
    assert_signs_for(&reopened.signer("bob").unwrap(), &bob);

    // Delete removes both files; the label is then unknown, and free again.
    KeyStore::delete(&reopened, "alice").unwrap();
    assert!(!dir.join("alice.key.pem").exists());
    assert!(!dir.join("alice.pub.pem").exists());
    assert_eq!(reopened.list().unwrap(), vec![bob]);
    assert_eq!(
        trait_signer_err(&reopened, "alice"),
        CryptoError::KeyNotFound {
            name: "alice".into()
        }
    );
    match reopened.delete("alice") {
        Err(KeystoreError::KeyNotFound { label, dir: d }) => {
            assert_eq!((label.as_str(), d), ("alice", dir.clone()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        KeyStore::delete(&reopened, "alice"),
        Err(CryptoError::KeyNotFound {
            name: "alice".into()
        })
    );
}

#[test]
fn wrong_passphrase() {
    let (_tmp, dir, store) = new_store(3);
    let key = store.generate("k").unwrap();
    // Opening does not derive keys, so it cannot tell; the first decryption does.
    let wrong = DirKeyStore::open(&dir, pass(b"Tr0ub4dor&3"), rng(4)).unwrap();
    match wrong.signer("k") {
        Err(e @ KeystoreError::WrongPassphrase { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&dir.join("k.key.pem").display().to_string()),
                "{msg}"
            );
            assert!(msg.contains("passphrase"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(trait_signer_err(&wrong, "k"), CryptoError::KeyDecrypt);
    // A writer with the wrong passphrase would split the store between two passphrases: refused,
    // and nothing is left behind.
    assert!(matches!(
        wrong.generate("k2"),
        Err(KeystoreError::WrongPassphrase { .. })
    ));
    assert_eq!(
        entries(&dir),
        [".lock", "KEYSTORE", "k.key.pem", "k.pub.pem"]
    );
    // Listing needs no passphrase; the right one still signs.
    assert_eq!(wrong.list().unwrap(), vec![key.clone()]);
    assert_signs_for(&store.signer("k").unwrap(), &key);

    for result in [
        DirKeyStore::open(&dir, Secret::default(), rng(5)),
        DirKeyStore::create(&dir.join("sub"), Secret::default(), rng(5)),
    ] {
        assert!(matches!(result, Err(KeystoreError::EmptyPassphrase)));
    }
}

#[test]
fn duplicate_label_is_refused_and_the_key_kept() {
    let (_tmp, dir, store) = new_store(6);
    let first = store.generate("dup").unwrap();
    let before = fs::read(dir.join("dup.key.pem")).unwrap();
    match store.generate("dup") {
        Err(KeystoreError::LabelInUse { label, path }) => {
            assert_eq!((label.as_str(), path), ("dup", dir.join("dup.key.pem")));
        }
        other => panic!("{other:?}"),
    }
    match KeyStore::generate(&store, "dup") {
        Err(CryptoError::KeyStore { reason }) => {
            assert!(reason.contains("\"dup\" is already in use"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fs::read(dir.join("dup.key.pem")).unwrap(), before);
    assert_eq!(store.list().unwrap(), vec![first]);
}

#[test]
fn bad_labels_are_refused_before_touching_the_disk() {
    let (tmp, dir, store) = new_store(7);
    let long = "k".repeat(65);
    let bad = [
        "../x",
        "",
        "a/b",
        &long,
        ".",
        "..",
        ".hidden",
        "/etc/passwd",
        "a b",
        "a\0b",
        "ä",
    ];
    for label in bad {
        let named = |e: KeystoreError| match e {
            KeystoreError::InvalidLabel { label: l, .. } => assert_eq!(l, label),
            other => panic!("{label:?}: {other:?}"),
        };
        named(store.generate(label).unwrap_err());
        named(store.signer(label).unwrap_err());
        named(store.delete(label).unwrap_err());
        named(store.import(label, b"unused", None).unwrap_err());
        match KeyStore::generate(&store, label) {
            Err(CryptoError::KeyStore { reason }) => {
                assert!(reason.contains(&format!("{label:?}")), "{reason}");
            }
            other => panic!("{label:?}: {other:?}"),
        }
    }
    assert_eq!(entries(&dir), [".lock", "KEYSTORE"]);
    assert_eq!(entries(tmp.path()), ["keys"]);

    // The longest label is fine.
    let max = "k".repeat(Label::MAX_LEN);
    store.generate(&max).unwrap();
    assert_eq!(store.list().unwrap()[0].label, max);
}

#[test]
fn tampered_files_are_detected() {
    let (_tmp, dir, store) = new_store(8);
    let a = store.generate("a").unwrap();
    let b = store.generate("b").unwrap();
    // b's public key under a's name: listing cannot know, the signer must.
    fs::copy(dir.join("b.pub.pem"), dir.join("a.pub.pem")).unwrap();
    assert_eq!(store.list().unwrap()[0].public_key, b.public_key);
    match store.signer("a") {
        Err(e @ KeystoreError::PublicKeyMismatch { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("\"a\""), "{msg}");
            assert!(msg.contains("tampered"), "{msg}");
            assert!(
                msg.contains(&dir.join("a.pub.pem").display().to_string()),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    match KeyStore::signer(&store, "a") {
        Err(CryptoError::KeyStore { reason }) => assert!(reason.contains("tampered"), "{reason}"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a signer for a tampered key"),
    }

    // A private key where the public key belongs is not a public key file.
    let plain = encode_pkcs8_pem(
        &decode_private_key(&fs::read(dir.join("a.key.pem")).unwrap(), Some(PASS)).unwrap(),
    )
    .unwrap();
    fs::write(dir.join("a.pub.pem"), plain.expose()).unwrap();
    assert!(matches!(
        store.list(),
        Err(KeystoreError::BadKeyFile { path, .. }) if path == dir.join("a.pub.pem")
    ));

    // A plaintext key where the encrypted one belongs is refused, not used.
    fs::write(dir.join("b.key.pem"), plain.expose()).unwrap();
    assert!(matches!(
        store.signer("b"),
        Err(KeystoreError::NotEncrypted { path }) if path == dir.join("b.key.pem")
    ));
    let _ = a;
}

#[test]
fn permissions_are_enforced() {
    let (_tmp, dir, store) = new_store(9);
    store.generate("k").unwrap();
    let key = dir.join("k.key.pem");

    for loose in [0o644, 0o640, 0o604, 0o660] {
        chmod(&key, loose);
        match open(&dir, 10) {
            Err(e @ KeystoreError::InsecurePermissions { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("chmod 600 {}", key.display())),
                    "{msg}"
                );
                assert!(msg.contains(&format!("{loose:04o}")), "{msg}");
            }
            other => panic!("{loose:o}: {other:?}"),
        }
        // An instance opened earlier checks again before reading.
        assert!(matches!(
            store.signer("k"),
            Err(KeystoreError::InsecurePermissions { path, .. }) if path == key
        ));
        assert!(matches!(
            store.list(),
            Err(KeystoreError::InsecurePermissions { .. })
        ));
    }
    chmod(&key, 0o600);
    open(&dir, 10).unwrap();

    // A public key file others can rewrite, a directory others can write to.
    chmod(&dir.join("k.pub.pem"), 0o666);
    assert!(matches!(
        open(&dir, 10),
        Err(KeystoreError::InsecurePermissions { fix: 0o644, .. })
    ));
    chmod(&dir.join("k.pub.pem"), 0o644);
    for loose in [0o777, 0o770, 0o702] {
        chmod(&dir, loose);
        match open(&dir, 10) {
            Err(KeystoreError::InsecurePermissions {
                path, mode, fix, ..
            }) => {
                assert_eq!((path, mode, fix), (dir.clone(), loose, 0o700));
            }
            other => panic!("{loose:o}: {other:?}"),
        }
    }
    chmod(&dir, 0o755); // readable is allowed: the key files protect themselves
    open(&dir, 10).unwrap();
    chmod(&dir, 0o700);

    // A symlink where a key file belongs is refused, even one pointing at a good key.
    fs::rename(&key, dir.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(dir.join("elsewhere"), &key).unwrap();
    assert!(matches!(
        open(&dir, 10),
        Err(KeystoreError::NotARegularFile {
            kind: "symbolic link",
            ..
        })
    ));
}

#[test]
fn create_and_open_refusals() {
    let tmp = tempfile::tempdir().unwrap();

    // create makes missing parents, owner-only, with the marker and the lock file.
    let dir = tmp.path().join("a/b/keys");
    let store = DirKeyStore::create(&dir, pass(PASS), rng(11)).unwrap();
    assert_eq!(mode(&dir), 0o700);
    let marker = fs::read_to_string(dir.join("KEYSTORE")).unwrap();
    assert_eq!(marker.lines().next(), Some("gmchain-keystore 1"));
    let debug = format!("{store:?}");
    assert!(
        debug.contains("[redacted]") && !debug.contains("horse"),
        "{debug}"
    );
    assert!(matches!(
        DirKeyStore::create(&dir, pass(PASS), rng(11)),
        Err(KeystoreError::AlreadyAKeystore { .. })
    ));

    // An empty existing directory is taken over and made owner-only.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    chmod(&empty, 0o755);
    DirKeyStore::create(&empty, pass(PASS), rng(11)).unwrap();
    assert_eq!(mode(&empty), 0o700);

    // A non-empty directory that is not a keystore is neither created over nor opened.
    let busy = tmp.path().join("busy");
    fs::create_dir(&busy).unwrap();
    fs::write(busy.join("notes.txt"), "mine").unwrap();
    match DirKeyStore::create(&busy, pass(PASS), rng(11)) {
        Err(KeystoreError::DirectoryNotEmpty { entry, .. }) => assert_eq!(entry, "notes.txt"),
        other => panic!("{other:?}"),
    }
    assert_eq!(entries(&busy), ["notes.txt"]);
    assert!(matches!(
        open(&busy, 11),
        Err(KeystoreError::NotAKeystore {
            reason: "it has no KEYSTORE file",
            ..
        })
    ));
    assert!(matches!(
        open(&tmp.path().join("missing"), 11),
        Err(KeystoreError::NotAKeystore {
            reason: "it does not exist",
            ..
        })
    ));
    assert!(matches!(
        DirKeyStore::create(&busy.join("notes.txt"), pass(PASS), rng(11)),
        Err(KeystoreError::NotADirectory { .. })
    ));

    // The marker names the format; another version or another file is refused.
    fs::write(dir.join("KEYSTORE"), "gmchain-keystore 2\n").unwrap();
    assert!(matches!(
        open(&dir, 11),
        Err(KeystoreError::UnsupportedFormat {
            found: 2,
            supported: 1,
            ..
        })
    ));
    fs::write(dir.join("KEYSTORE"), "[keystore]\n").unwrap();
    assert!(matches!(
        open(&dir, 11),
        Err(KeystoreError::BadMarker { .. })
    ));
    fs::write(dir.join("KEYSTORE"), marker).unwrap();

    // Unrelated files are ignored; a key-file name that is no label is not.
    fs::write(dir.join("README"), "hello").unwrap();
    assert!(open(&dir, 11).unwrap().list().unwrap().is_empty());
    fs::write(dir.join("my key.key.pem"), "x").unwrap();
    chmod(&dir.join("my key.key.pem"), 0o600);
    match open(&dir, 11) {
        Err(e @ KeystoreError::BadFileName { .. }) => {
            assert!(e.to_string().contains("my key.key.pem"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn interrupted_writes_are_reported_and_repairable() {
    let (_tmp, dir, store) = new_store(12);
    let a = store.generate("a").unwrap();
    store.generate("b").unwrap();
    // A crash between the two renames of a generate leaves the key without its public file.
    fs::remove_file(dir.join("b.pub.pem")).unwrap();
    match store.list() {
        Err(e @ KeystoreError::IncompleteKey { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&dir.join("b.pub.pem").display().to_string()),
                "{msg}"
            );
            assert!(msg.contains("delete the key"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.signer("b"),
        Err(KeystoreError::IncompleteKey { missing, .. }) if missing == dir.join("b.pub.pem")
    ));
    assert!(matches!(
        store.generate("b"),
        Err(KeystoreError::LabelInUse { .. })
    ));
    // The store still opens, so delete can repair it.
    let store = open(&dir, 13).unwrap();
    store.delete("b").unwrap();
    assert_eq!(store.list().unwrap(), vec![a]);

    // A temporary file left by a crash is ignored, and cleared by the next writer.
    fs::write(dir.join(".tmp-999-0-c.key.pem"), "partial").unwrap();
    assert_eq!(store.list().unwrap().len(), 1);
    store.generate("c").unwrap();
    assert_eq!(
        entries(&dir),
        [
            ".lock",
            "KEYSTORE",
            "a.key.pem",
            "a.pub.pem",
            "c.key.pem",
            "c.pub.pem"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Import from OpenSSL 3

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the `openssl` command is not runnable ({e}): this test needs OpenSSL 3.x on \
                 PATH (e.g. `apt-get install openssl`); it does not skip"
            )
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `openssl genpkey` for an SM2 key and returns (key file, its public key per OpenSSL).
fn openssl_sm2_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    let (k, p) = (key.to_str().unwrap(), public.to_str().unwrap());
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:SM2",
        "-out",
        k,
    ]);
    openssl(&["pkey", "-in", k, "-pubout", "-out", p]);
    (key, public)
}

#[test]
fn import_openssl_keys() {
    let (tmp, dir, store) = new_store(14);
    let work = tmp.path();

    // A plaintext PKCS#8 from `openssl genpkey`.
    let (plain, plain_pub) = openssl_sm2_key(work, "plain");
    let expected = decode_public_key(&fs::read(&plain_pub).unwrap()).unwrap();
    let info = store
        .import("ossl", &fs::read(&plain).unwrap(), None)
        .unwrap();
    assert_eq!(info.public_key, expected);
    // Stored re-encrypted under the store passphrase, in gmchain's own form.
    let stored = fs::read(dir.join("ossl.key.pem")).unwrap();
    assert_eq!(encrypted_params(&stored).unwrap().prf, OID_HMAC_SM3);
    assert_eq!(
        decode_private_key(&stored, Some(PASS))
            .unwrap()
            .public_key(),
        expected
    );
    assert_eq!(mode(&dir.join("ossl.key.pem")), 0o600);
    // Our signature with the imported key verifies in OpenSSL with OpenSSL's public key.
    let signer = store.signer("ossl").unwrap();
    assert_signs_for(&signer, &info);
    let msg = work.join("msg");
    fs::write(&msg, b"block 7").unwrap();
    let sig = work.join("sig.der");
    fs::write(
        &sig,
        signer
            .sign(&UserId::default(), b"block 7")
            .unwrap()
            .to_der(),
    )
    .unwrap();
    openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        plain_pub.to_str().unwrap(),
        "-rawin",
        "-in",
        msg.to_str().unwrap(),
        "-digest",
        "sm3",
        "-pkeyopt",
        "distid:1234567812345678",
        "-sigfile",
        sig.to_str().unwrap(),
    ]);

    // The same key again, under another label: refused. Another key under a taken label: refused.
    match store.import("again", &fs::read(&plain).unwrap(), None) {
        Err(KeystoreError::DuplicateKey { label, existing }) => {
            assert_eq!((label.as_str(), existing.as_str()), ("again", "ossl"));
        }
        other => panic!("{other:?}"),
    }
    let (second, second_pub) = openssl_sm2_key(work, "second");
    assert!(matches!(
        store.import("ossl", &fs::read(&second).unwrap(), None),
        Err(KeystoreError::LabelInUse { .. })
    ));

    // An encrypted PKCS#8 from `openssl pkcs8 -topk8 -v2 sm4-cbc` (PBKDF2-hmacWithSHA256).
    let enc = work.join("second.enc.pem");
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "sm4-cbc",
        "-in",
        second.to_str().unwrap(),
        "-passout",
        "pass:source secret",
        "-out",
        enc.to_str().unwrap(),
    ]);
    let enc_bytes = fs::read(&enc).unwrap();
    for wrong in [None, Some(&b"not it"[..])] {
        match store.import("second", &enc_bytes, wrong) {
            Err(KeystoreError::ImportUnreadable { label, .. }) => assert_eq!(label, "second"),
            other => panic!("{wrong:?}: {other:?}"),
        }
    }
    let info = store
        .import("second", &enc_bytes, Some(b"source secret"))
        .unwrap();
    assert_eq!(
        info.public_key,
        decode_public_key(&fs::read(&second_pub).unwrap()).unwrap()
    );

    // A key on another curve is not an SM2 key.
    let p256 = work.join("p256.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        p256.to_str().unwrap(),
    ]);
    assert!(matches!(
        store.import("p256", &fs::read(&p256).unwrap(), None),
        Err(KeystoreError::ImportUnreadable { .. })
    ));
    assert_eq!(
        store
            .list()
            .unwrap()
            .iter()
            .map(|k| k.label.as_str())
            .collect::<Vec<_>>(),
        ["ossl", "second"]
    );
}

// ---------------------------------------------------------------------------------------------
// Concurrent writers

/// Runs `generate(label)` on two threads at once, each with its own instance (as two processes
/// would have), and returns both results.
fn race(dir: &Path, labels: [&'static str; 2]) -> Vec<Result<KeyInfo, KeystoreError>> {
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = labels
        .into_iter()
        .enumerate()
        .map(|(i, label)| {
            let store = open(dir, 100 + i as u64).unwrap();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                store.generate(label)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn concurrent_generate() {
    let (_tmp, dir, store) = new_store(15);

    let results = race(&dir, ["left", "right"]);
    let keys: Vec<KeyInfo> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(store.list().unwrap(), keys);

    let results = race(&dir, ["same", "same"]);
    let (won, lost): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!((won.len(), lost.len()), (1, 1), "exactly one generate wins");
    assert!(matches!(
        &lost[0],
        Err(KeystoreError::LabelInUse { label, .. }) if label == "same"
    ));
    let winner = won.into_iter().next().unwrap().unwrap();
    let listed = store.list().unwrap();
    let labels: Vec<&str> = listed.iter().map(|k| k.label.as_str()).collect();
    assert_eq!(labels, ["left", "right", "same"]);
    assert_eq!(listed[2], winner);
    assert_signs_for(&store.signer("same").unwrap(), &winner);
    assert!(!entries(&dir).iter().any(|n| n.starts_with(".tmp-")));
}
