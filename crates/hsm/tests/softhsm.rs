//! The PKCS#11 provider against SoftHSM2: sessions, login, objects, self-check and refusals.
//! SoftHSM has no SM mechanism, so every SM operation must be refused as unsupported (never
//! done in software), while SM2-curve key pairs can be generated and inspected.

mod common;

use common::*;
use crypto::{CryptoError, KeyStore, Signer, UserId};
use hsm::{Hsm, HsmError, KeyUri, KeyUsage, ObjectType, Sm4KeyOptions};
use std::sync::Arc;

fn uri(label: &str) -> KeyUri {
    KeyUri::parse(&format!("pkcs11:token={TOKEN};object={label};type=private")).unwrap()
}

#[test]
fn generate_list_find_export_and_self_check() {
    let hsm = open_softhsm(2);
    let info = hsm
        .generate_sm2("sig-1", &[0x01, 0x02], KeyUsage::Signing)
        .expect("CKM_EC_KEY_PAIR_GEN on the SM2 curve");
    assert_eq!(info.label, "sig-1");
    assert_eq!(info.id, vec![1, 2]);
    assert_eq!(info.key_type, 3, "CKK_EC");
    assert!(info.sign && !info.decrypt, "usage separation: {info:?}");
    assert_eq!(
        info.uri.to_string(),
        format!("pkcs11:token={TOKEN};object=sig-1;id=%01%02;type=private")
    );

    // The exported point is a valid sm2p256v1 point.
    let pk = crypto_sm::sm2::parse_public_key(info.public_key.as_bytes()).expect("valid SM2 point");
    assert_eq!(pk, info.public_key);

    // list, find by label, by id, by the printed URI; public_key without and with type.
    assert!(hsm.list().unwrap().iter().any(|k| k == &info));
    assert_eq!(hsm.find(&uri("sig-1")).unwrap(), vec![info.clone()]);
    let by_id = KeyUri::parse(&format!("pkcs11:token={TOKEN};id=%01%02")).unwrap();
    assert_eq!(hsm.find(&by_id).unwrap(), vec![info.clone()]);
    assert_eq!(hsm.find(&info.uri).unwrap(), vec![info.clone()]);
    assert_eq!(hsm.public_key(&by_id).unwrap(), info.public_key);
    assert_eq!(
        hsm.public_key(&info.uri.with_type(ObjectType::Public))
            .unwrap(),
        info.public_key
    );

    // SPKI PEM that OpenSSL reads as an SM2 key.
    let pem = crypto_sm::keys::encode_public_key_pem(&info.public_key).unwrap();
    assert_eq!(
        crypto_sm::keys::decode_public_key(pem.as_bytes()).unwrap(),
        info.public_key
    );

    // Self-check of this key: generated in SoftHSM, so sensitive, never extractable, local.
    let check = hsm.self_check(Some(&info.uri)).unwrap();
    assert!(check.passed(), "{check}");
    assert!(check.development);
    assert_eq!(check.assurance(), "development token, not certified");
    for attr in [
        "CKA_SENSITIVE",
        "CKA_EXTRACTABLE",
        "CKA_ALWAYS_SENSITIVE",
        "CKA_NEVER_EXTRACTABLE",
        "CKA_LOCAL",
    ] {
        assert!(
            check.rows.iter().any(|r| r.item.ends_with(attr) && r.ok),
            "{attr} row missing: {check}"
        );
    }
    let keygen = check
        .rows
        .iter()
        .find(|r| r.item.starts_with("mechanism sm2_keygen"))
        .expect("keygen row");
    assert!(
        keygen.ok && keygen.observed.contains("GENERATE_KEY_PAIR"),
        "{keygen:?}"
    );
    assert!(
        keygen.observed.contains("listed by C_GetMechanismList"),
        "{keygen:?}"
    );
    let list = check
        .rows
        .iter()
        .find(|r| r.item == "mechanism list")
        .unwrap();
    assert!(
        list.observed.contains("0 of them vendor-defined"),
        "{list:?}"
    );

    // An encryption key is a separate key with decrypt and without sign.
    let enc = hsm
        .generate_sm2("enc-1", &[0x0e], KeyUsage::Encryption)
        .unwrap();
    assert!(enc.decrypt && !enc.sign, "{enc:?}");
}

#[test]
fn sm_operations_are_unsupported_not_done_in_software() {
    let hsm = open_softhsm(2);
    hsm.generate_sm2("nosm-1", &[0x33], KeyUsage::Signing)
        .unwrap();
    let key = uri("nosm-1");
    let signer = hsm.signer(&key).unwrap();
    let id = UserId::default();

    let unsupported = |e: HsmError, what: &str| match e {
        HsmError::Unsupported { operation, profile } => {
            assert_eq!(profile, "softhsm2");
            assert!(operation.contains(what), "{operation} vs {what}");
        }
        other => panic!("expected Unsupported for {what}, got {other}"),
    };
    unsupported(signer.sign_message(&id, b"m").unwrap_err(), "SM2 signing");
    assert!(matches!(
        Signer::sign(&signer, &id, b"m"),
        Err(CryptoError::Unsupported { .. })
    ));
    unsupported(
        hsm.verify(
            &key,
            &id,
            b"m",
            &crypto::Signature::from_scalars([1; 32], [1; 32]),
        )
        .unwrap_err(),
        "SM2 signing",
    );
    unsupported(
        hsm.encrypt(&key, b"m", crypto::CipherFormat::C1C3C2)
            .unwrap_err(),
        "SM2 encryption",
    );
    unsupported(
        signer
            .decrypt_ciphertext(&[4u8; 120], crypto::CipherFormat::C1C3C2)
            .unwrap_err(),
        "SM2 encryption",
    );
    unsupported(hsm.sm3(b"abc").unwrap_err(), "SM3");
    unsupported(
        hsm.generate_sm4("k", Sm4KeyOptions::default()).unwrap_err(),
        "SM4",
    );
    unsupported(
        hsm.import_sm4("k", &secret("0123456789abcdef"), Sm4KeyOptions::default())
            .unwrap_err(),
        "SM4",
    );
}

#[test]
fn wrong_pin_unknown_token_and_uri_mismatch() {
    let env = softhsm();
    // The token's own answer: this process never logged in to gmchain-pin.
    match Hsm::open(&env.profile, "gmchain-pin", Some(secret("not-the-pin")), 1) {
        Err(HsmError::PinIncorrect) => {}
        other => panic!("expected PinIncorrect, got {other:?}"),
    }
    // And on a token this process is logged in to (PKCS#11 answers USER_ALREADY_LOGGED_IN
    // whatever the PIN): still refused.
    let _open = open_softhsm(1);
    match Hsm::open(&env.profile, TOKEN, Some(secret("not-the-pin")), 1) {
        Err(HsmError::PinIncorrect) => {}
        other => panic!("expected PinIncorrect on a logged-in token, got {other:?}"),
    }

    match Hsm::open(&env.profile, "no-such-token", Some(secret(USER_PIN)), 1) {
        Err(e @ HsmError::TokenNotFound { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("\"no-such-token\""), "{msg}");
            assert!(
                msg.contains("\"gmchain-test\"") && msg.contains("\"gmchain-pin\""),
                "{msg}"
            );
        }
        other => panic!("expected TokenNotFound, got {other:?}"),
    }

    let hsm = open_softhsm(1);
    let other = KeyUri::parse("pkcs11:token=elsewhere;object=x").unwrap();
    match hsm.find(&other) {
        Err(HsmError::Uri { reason, .. }) => assert!(reason.contains("elsewhere"), "{reason}"),
        r => panic!("{r:?}"),
    }
    assert!(matches!(
        Hsm::open(&env.profile, TOKEN, None, 0),
        Err(HsmError::InvalidInput { .. })
    ));
}

#[test]
fn without_pin_private_keys_are_hidden() {
    let env = softhsm();
    let hsm = open_softhsm(1);
    hsm.generate_sm2("hidden-1", &[0x44], KeyUsage::Signing)
        .unwrap();
    drop(hsm);
    // Another connection without a PIN: public objects only. (Another test may hold a logged
    // in session to the same token: PKCS#11 login state is per application, so accept both.)
    let public_only = Hsm::open(&env.profile, TOKEN, None, 1).unwrap();
    let pk = public_only.public_key(&KeyUri::parse("pkcs11:object=hidden-1").unwrap());
    assert!(pk.is_ok(), "a public key needs no login: {pk:?}");
}

#[test]
fn delete_and_duplicate_labels() {
    let hsm = open_softhsm(1);
    let info = hsm
        .generate_sm2("del-1", &[0x55], KeyUsage::Signing)
        .unwrap();
    match hsm.generate_sm2("del-1", &[0x56], KeyUsage::Signing) {
        Err(HsmError::KeyExists { label }) => assert_eq!(label, "del-1"),
        other => panic!("expected KeyExists, got {other:?}"),
    }
    let all = KeyUri::parse(&format!("pkcs11:token={TOKEN};object=del-1")).unwrap();
    assert_eq!(hsm.delete(&all).unwrap(), 2, "private and public halves");
    assert!(hsm.find(&info.uri).unwrap().is_empty());
    assert!(matches!(
        hsm.delete(&all),
        Err(HsmError::KeyNotFound { .. })
    ));
    assert!(matches!(
        hsm.signer(&info.uri),
        Err(HsmError::KeyNotFound { .. })
    ));
    assert!(matches!(
        hsm.delete(&KeyUri::parse("pkcs11:type=private").unwrap()),
        Err(HsmError::Uri { .. })
    ));
}

#[test]
fn keystore_trait_and_token_rng() {
    let hsm = open_softhsm(1);
    let store: &dyn KeyStore = &hsm;
    let k = store.generate("ks-1").unwrap();
    assert!(store.list().unwrap().contains(&k));
    assert_eq!(store.signer("ks-1").unwrap().public_key(), k.public_key);
    store.delete("ks-1").unwrap();
    assert!(matches!(
        store.signer("ks-1"),
        Err(CryptoError::KeyNotFound { .. })
    ));

    let a = hsm.random(32).unwrap();
    let b = hsm.random(32).unwrap();
    assert_ne!(a, b);
    let rng = hsm.rng();
    let mut buf = [0u8; 100];
    crypto::RandomSource::fill(&rng, &mut buf).unwrap();
    assert_ne!(buf, [0u8; 100]);
}

#[test]
fn pool_is_shared_by_many_threads() {
    let hsm = Arc::new(open_softhsm(3));
    let info = hsm
        .generate_sm2("conc-1", &[0x66], KeyUsage::Signing)
        .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let hsm = hsm.clone();
            let uri = info.uri.clone();
            let pk = info.public_key;
            std::thread::spawn(move || {
                for _ in 0..25 {
                    assert_eq!(hsm.public_key(&uri).unwrap(), pk);
                    assert_eq!(hsm.random(16).unwrap().len(), 16);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// OpenSC's `pkcs11-tool` on this process's SoftHSM tokens (the child inherits
/// `SOFTHSM2_CONF`), as an independent client. Fails, never skips, when the tool is missing.
fn pkcs11_tool(args: &[&str]) -> String {
    softhsm();
    let out = std::process::Command::new("pkcs11-tool")
        .args(["--module", SOFTHSM_LIB, "--token-label", KEK_TOKEN])
        .args(["--login", "--pin", USER_PIN])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run pkcs11-tool ({e}): apt-get install opensc"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pkcs11-tool {args:?}:\n{text}");
    text
}

#[test]
fn self_check_fails_a_key_that_wraps_and_decrypts() {
    // SoftHSM, like vendor tokens that do not enforce the rule, lets one key wrap and decrypt:
    // with it, anyone logged in recovers every extractable key in clear. gmchain cannot stop
    // such a token from holding one, so its self-check fails the token while one is there.
    let created = pkcs11_tool(&[
        "--keygen",
        "--key-type",
        "AES:16",
        "--label",
        "kek-both",
        "--id",
        "0b",
        "--usage-wrap",
        "--usage-decrypt",
    ]);
    assert!(
        created.contains("decrypt") && created.contains("wrap"),
        "{created}"
    );
    let hsm = Hsm::open(&softhsm().profile, KEK_TOKEN, Some(secret(USER_PIN)), 1).unwrap();
    let row_of = |check: &hsm::SelfCheck| {
        check
            .rows
            .iter()
            .find(|r| r.item == "key usage separation")
            .cloned()
            .unwrap_or_else(|| panic!("no key usage separation row:\n{check}"))
    };
    let check = hsm.self_check(None).unwrap();
    let row = row_of(&check);
    assert!(!row.ok, "{check}");
    assert!(!check.passed());
    assert!(
        row.observed.contains(
            "\"kek-both\" id 0b: wraps and decrypts, unwraps and encrypts, wraps and encrypts"
        ),
        "{row:?}"
    );
    assert!(
        check.to_string().contains("[FAIL] key usage separation"),
        "{check}"
    );

    // Without a PIN the key (private, as SoftHSM makes secret keys) is not visible, and the
    // row says that it could not look.
    let public = Hsm::open(&softhsm().profile, KEK_TOKEN, None, 1).unwrap();
    let row = row_of(&public.self_check(None).unwrap());
    assert!(row.observed.contains("no PIN given"), "{row:?}");

    // Once the key is gone, the row passes.
    pkcs11_tool(&[
        "--delete-object",
        "--type",
        "secrkey",
        "--label",
        "kek-both",
    ]);
    let check = hsm.self_check(None).unwrap();
    let row = row_of(&check);
    assert!(row.ok, "{check}");
}

#[test]
fn self_check_fails_a_token_that_unwraps_a_non_sensitive_copy() {
    // SoftHSM has no SM4, but it has AES: a test profile that names AES where SM4 would be lets
    // the self-check's unwrap probe run against it. SoftHSM applies an unwrap template as given,
    // so it makes a non-sensitive copy of a wrapped sensitive key: the row fails.
    let env = softhsm();
    let text = std::fs::read_to_string(profiles_dir().join("softhsm2.toml")).unwrap();
    let text = text.replace(
        "[mechanisms]\n",
        "[sm4]\nkey_type = \"CKK_AES\"\nwrap_parameter = \"none\"\n\n[mechanisms]\nsm4_keygen = \"CKM_AES_KEY_GEN\"\nwrap = \"CKM_AES_KEY_WRAP\"\n",
    );
    assert!(text.contains("CKM_AES_KEY_WRAP"), "{text}");
    let profile = hsm::Profile::from_toml(&text, profiles_dir().join("softhsm2-aes-as-sm4.toml"))
        .expect("variant profile");
    let row_of = |check: &hsm::SelfCheck| {
        check
            .rows
            .iter()
            .find(|r| r.item == "unwrapped key sensitivity")
            .cloned()
            .unwrap_or_else(|| panic!("no unwrapped key sensitivity row:\n{check}"))
    };
    // On the token of its own that the other self-check test uses (it makes no key there
    // that wraps and decrypts), so that it does not log other tests out of theirs.
    let hsm = Hsm::open(&profile, KEK_TOKEN, Some(secret(USER_PIN)), 1).unwrap();
    let check = hsm.self_check(None).unwrap();
    let row = row_of(&check);
    assert!(!row.ok, "{check}");
    assert!(row.observed.contains("NON-SENSITIVE copy"), "{row:?}");
    assert!(!row.observed.contains("not destroyed"), "{row:?}");
    assert!(
        check
            .to_string()
            .contains("[FAIL] unwrapped key sensitivity"),
        "{check}"
    );
    // The throwaway keys are gone.
    for label in [
        "gmchain-selfcheck-kek",
        "gmchain-selfcheck-victim",
        "gmchain-selfcheck-copy",
    ] {
        let uri = KeyUri::parse(&format!("pkcs11:token={KEK_TOKEN};object={label}")).unwrap();
        assert!(
            matches!(hsm.sm4_key(&uri), Err(HsmError::KeyNotFound { .. })),
            "{label}"
        );
    }

    // Without a PIN the probe does not run, and says so; with the plain SoftHSM profile (no
    // SM4), neither.
    let public = Hsm::open(&profile, KEK_TOKEN, None, 1).unwrap();
    let row = row_of(&public.self_check(None).unwrap());
    assert!(
        row.ok && row.observed.starts_with("not checked: no PIN"),
        "{row:?}"
    );
    let plain = Hsm::open(&env.profile, KEK_TOKEN, Some(secret(USER_PIN)), 1).unwrap();
    let row = row_of(&plain.self_check(None).unwrap());
    assert!(row.ok && row.observed.contains("names no SM4"), "{row:?}");
}
