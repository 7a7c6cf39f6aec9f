//! The PKCS#11 provider against gmchain's soft token (vendor SM2/SM3/SM4 mechanisms), checked
//! against the software provider and OpenSSL 3. Needs `target/<profile>/libgmchain_softtoken.so`
//! (`cargo build -p softtoken`).

mod common;

use common::*;
use crypto::{
    CipherFormat, CryptoError, Decrypter, Digest, Encrypter, PublicKey, RandomSource, Signature,
    Signer, Sm4Key, Sm4Mode, UserId,
};
use crypto_sm::SoftwareProvider;
use crypto_sm::rng::SeededRandom;
use hsm::{Hsm, HsmError, KeyUri, KeyUsage, Sm4KeyOptions, Sm4Usage};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn software() -> SoftwareProvider {
    SoftwareProvider::new(Arc::new(crypto_sm::rng::SystemRandom))
}

fn hsm() -> Hsm {
    open_softtoken(&softtoken(false).profile, 4)
}

fn key_uri(label: &str) -> KeyUri {
    KeyUri::parse(&format!("pkcs11:token={TOKEN};object={label};type=private")).unwrap()
}

fn ids() -> Vec<UserId> {
    vec![
        UserId::default(),
        UserId::new(b"alice@example.gov.cn".to_vec()).unwrap(),
        UserId::new(vec![0x00, 0xff, 0x10]).unwrap(),
        UserId::new(vec![0x61; 300]).unwrap(),
    ]
}

fn openssl_verifies(
    dir: &Path,
    pk: &PublicKey,
    id: &UserId,
    msg: &[u8],
    sig: &crypto::Signature,
) -> bool {
    let pem = crypto_sm::keys::encode_public_key_pem(pk).unwrap();
    let (pub_path, msg_path, sig_path) =
        (dir.join("pub.pem"), dir.join("msg"), dir.join("sig.der"));
    std::fs::write(&pub_path, pem).unwrap();
    std::fs::write(&msg_path, msg).unwrap();
    std::fs::write(&sig_path, sig.to_der()).unwrap();
    let distid = match std::str::from_utf8(id.as_bytes()) {
        Ok(t) if !t.is_empty() && t.chars().all(|c| c.is_ascii_graphic()) => format!("distid:{t}"),
        _ => format!("hexdistid:{}", hex::encode(id.as_bytes())),
    };
    let out = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(&pub_path)
        .args(["-rawin", "-in"])
        .arg(&msg_path)
        .args(["-digest", "sm3", "-pkeyopt", &distid, "-sigfile"])
        .arg(&sig_path)
        .output()
        .expect("openssl must be installed (OpenSSL 3)");
    out.status.success()
        && String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully")
}

#[test]
fn sign_in_both_za_modes_and_verify_everywhere() {
    let env = softtoken(false);
    let digest_mode = hsm();
    let za_in_token = open_softtoken(&message_with_id_profile(env), 2);
    let info = digest_mode
        .generate_sm2("st-sign-1", &[0x51], KeyUsage::Signing)
        .unwrap();
    assert_eq!(info.key_type, 0x80474D01);
    crypto_sm::sm2::parse_public_key(info.public_key.as_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let soft = software();

    for hsm in [&digest_mode, &za_in_token] {
        let signer = hsm.signer(&info.uri).unwrap();
        assert_eq!(Signer::public_key(&signer), info.public_key);
        for id in ids() {
            let msg = format!("transfer 100 to {id:?}").into_bytes();
            let sig = Signer::sign(&signer, &id, &msg).unwrap();
            // Our software verifier, OpenSSL 3, the token (by URI and by key).
            crypto_sm::sm2::verify(&info.public_key, &id, &msg, &sig).unwrap();
            assert!(
                openssl_verifies(dir.path(), &info.public_key, &id, &msg, &sig),
                "{id:?}"
            );
            hsm.verify(&info.uri, &id, &msg, &sig).unwrap();
            hsm.verify_with_key(&info.public_key, &id, &msg, &sig)
                .unwrap();
            // Negatives through the token: wrong ID, wrong message, altered s.
            let wrong_id = UserId::new(b"mallory".to_vec()).unwrap();
            for (id2, msg2, sig2) in [
                (&wrong_id, &msg[..], sig),
                (&id, &b"transfer 999"[..], sig),
                (
                    &id,
                    &msg[..],
                    crypto::Signature::from_scalars(*sig.r(), [0x11; 32]),
                ),
            ] {
                assert!(matches!(
                    hsm.verify(&info.uri, id2, msg2, &sig2),
                    Err(HsmError::Crypto(CryptoError::SignatureInvalid))
                ));
                assert!(matches!(
                    hsm.verify_with_key(&info.public_key, id2, msg2, &sig2),
                    Err(HsmError::Crypto(CryptoError::SignatureInvalid))
                ));
            }
            // Software signatures verify through the token.
            let soft_key = soft.generate().unwrap();
            let soft_sig = soft_key.sign(&id, &msg).unwrap();
            hsm.verify_with_key(&Signer::public_key(&soft_key), &id, &msg, &soft_sig)
                .unwrap();
        }
    }

    // The token-computed ZA mode cannot express an empty user ID (an empty parameter means the
    // default ID there): refused, not silently signed with the wrong ZA.
    let empty = UserId::new(Vec::new()).unwrap();
    let s = za_in_token.signer(&info.uri).unwrap();
    assert!(matches!(
        s.sign_message(&empty, b"m"),
        Err(HsmError::InvalidInput { .. })
    ));
    // The digest mode can.
    let sig = digest_mode
        .signer(&info.uri)
        .unwrap()
        .sign(&empty, b"m")
        .unwrap();
    crypto_sm::sm2::verify(&info.public_key, &empty, b"m", &sig).unwrap();
    // Pre-hashed signing only where the token signs digests.
    let e = crypto_sm::sm2::message_digest(&UserId::default(), &info.public_key, b"m");
    let sig = digest_mode
        .signer(&info.uri)
        .unwrap()
        .sign_digest(&e)
        .unwrap();
    crypto_sm::sm2::verify_digest(&info.public_key, &e, &sig).unwrap();
    assert!(matches!(
        s.sign_digest(&e),
        Err(CryptoError::Unsupported { .. })
    ));

    // A signing key cannot decrypt (usage separation is enforced by the token).
    let ct = soft
        .encrypt(&info.public_key, b"secret", CipherFormat::C1C3C2)
        .unwrap();
    assert!(
        digest_mode
            .signer(&info.uri)
            .unwrap()
            .decrypt(&ct, CipherFormat::C1C3C2)
            .is_err()
    );
}

#[test]
fn encryption_cross_checked_with_software_both_ways() {
    let hsm = hsm();
    let soft = software();
    let info = hsm
        .generate_sm2("st-enc-1", &[0x52], KeyUsage::Encryption)
        .unwrap();
    assert!(info.decrypt && !info.sign);
    let token_key = hsm.signer(&info.uri).unwrap();
    let soft_key = soft.generate().unwrap();
    let encrypter = hsm.encrypter().unwrap();
    for (i, len) in [1usize, 16, 31, 200, 5000].into_iter().enumerate() {
        let msg: Vec<u8> = (0..len).map(|b| (b * 7 + i) as u8).collect();
        for format in [CipherFormat::C1C3C2, CipherFormat::Der] {
            // software → token
            let c = soft.encrypt(&info.public_key, &msg, format).unwrap();
            assert_eq!(token_key.decrypt(&c, format).unwrap().expose(), &msg[..]);
            // token (key by URI) → software cannot decrypt a token key; token → token instead
            let c = hsm.encrypt(&info.uri, &msg, format).unwrap();
            assert_eq!(token_key.decrypt(&c, format).unwrap().expose(), &msg[..]);
            // token (any public key) → software
            let c = encrypter
                .encrypt(&Signer::public_key(&soft_key), &msg, format)
                .unwrap();
            assert_eq!(soft_key.decrypt(&c, format).unwrap().expose(), &msg[..]);
        }
    }
    // Tampered C3: nothing released.
    let mut c = soft
        .encrypt(&info.public_key, b"hello", CipherFormat::C1C3C2)
        .unwrap();
    c[70] ^= 1;
    assert!(matches!(
        token_key.decrypt(&c, CipherFormat::C1C3C2),
        Err(CryptoError::DecryptionFailed { .. })
    ));
    assert!(hsm.encrypt(&info.uri, b"", CipherFormat::C1C3C2).is_err());
}

#[test]
fn sm3_and_sm4_equal_software() {
    let hsm = hsm();
    let soft = software();
    for len in [0usize, 1, 3, 55, 56, 64, 65, 1000, 100_000] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
        assert_eq!(
            hsm.sm3(&data).unwrap(),
            crypto_sm::sm3::sm3(&data),
            "len {len}"
        );
    }
    assert_eq!(
        hsm.sm3(b"abc").unwrap().to_hex(),
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    );

    // The same (imported, extractable) key in both providers.
    let key_bytes = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
    let token_key = hsm
        .import_sm4(
            "st-sm4-imported",
            &crypto::Secret::new(key_bytes.clone()),
            Sm4KeyOptions {
                extractable: true,
                ..Sm4KeyOptions::default()
            },
        )
        .unwrap();
    let soft_key = soft.sm4_key(&key_bytes).unwrap();
    let rng = SeededRandom::new(4);
    for len in [0usize, 1, 15, 16, 17, 1000] {
        let mut data = vec![0u8; len];
        rng.fill(&mut data).unwrap();
        for mode in [Sm4Mode::Cbc, Sm4Mode::Ctr, Sm4Mode::Gcm] {
            let mut iv = vec![0u8; mode.iv_len()];
            rng.fill(&mut iv).unwrap();
            let aad: &[u8] = if mode == Sm4Mode::Gcm { b"header" } else { b"" };
            let ours = token_key.encrypt(mode, &iv, aad, &data).unwrap();
            assert_eq!(
                ours,
                soft_key.encrypt(mode, &iv, aad, &data).unwrap(),
                "{mode:?} {len}"
            );
            assert_eq!(
                soft_key.decrypt(mode, &iv, aad, &ours).unwrap().expose(),
                &data[..]
            );
            assert_eq!(
                token_key.decrypt(mode, &iv, aad, &ours).unwrap().expose(),
                &data[..]
            );
        }
    }
    // GB/T 32907 example: key = plaintext = 0123456789abcdeffedcba9876543210; one CBC block with
    // a zero IV is the ECB result, then the padding block follows.
    let c = token_key
        .encrypt(Sm4Mode::Cbc, &[0u8; 16], b"", &key_bytes)
        .unwrap();
    assert_eq!(hex::encode(&c[..16]), "681edf34d206965e86b3e94f536e4246");

    // Negatives: GCM tag, CBC padding, AAD outside AEAD, CCM unsupported, IV lengths.
    let iv12 = [7u8; 12];
    let mut ct = token_key
        .encrypt(Sm4Mode::Gcm, &iv12, b"a", b"payload")
        .unwrap();
    assert_eq!(
        token_key
            .decrypt(Sm4Mode::Gcm, &iv12, b"b", &ct)
            .map(|_| ()),
        Err(CryptoError::TagMismatch)
    );
    ct[0] ^= 1;
    assert_eq!(
        token_key
            .decrypt(Sm4Mode::Gcm, &iv12, b"a", &ct)
            .map(|_| ()),
        Err(CryptoError::TagMismatch)
    );
    let cbc = token_key
        .encrypt(Sm4Mode::Cbc, &[1u8; 16], b"", b"x")
        .unwrap();
    assert!(matches!(
        token_key.decrypt(Sm4Mode::Cbc, &[2u8; 16], b"", &cbc),
        Err(CryptoError::BadPadding { .. }) | Ok(_)
    ));
    assert!(matches!(
        token_key.encrypt(Sm4Mode::Cbc, &[1u8; 16], b"aad", b"x"),
        Err(CryptoError::InvalidInput { .. })
    ));
    assert!(matches!(
        token_key.encrypt(Sm4Mode::Ccm, &iv12, b"", b"x"),
        Err(CryptoError::Unsupported { .. })
    ));
    assert!(matches!(
        token_key.encrypt(Sm4Mode::Gcm, &[0u8; 16], b"", b"x"),
        Err(CryptoError::InvalidLength { .. })
    ));
}

#[test]
fn sm4_generation_wrapping_and_self_check() {
    let hsm = hsm();
    let data_key = hsm
        .generate_sm4(
            "st-sm4-data",
            Sm4KeyOptions {
                extractable: true,
                ..Sm4KeyOptions::default()
            },
        )
        .unwrap();
    let kek = hsm
        .generate_sm4(
            "st-sm4-kek",
            Sm4KeyOptions {
                wrapping: true,
                ..Sm4KeyOptions::default()
            },
        )
        .unwrap();
    let iv = [9u8; 16];
    let c = data_key
        .encrypt(Sm4Mode::Cbc, &iv, b"", b"wrap me")
        .unwrap();
    let wrapped = hsm.wrap_key(&kek, &data_key).unwrap();
    assert!(wrapped.len() >= 16 + 32, "IV ‖ CBC-PAD(16-byte key)");
    let unwrapped = hsm
        .unwrap_key(&kek, &wrapped, "st-sm4-unwrapped", Sm4KeyOptions::default())
        .unwrap();
    assert_eq!(
        unwrapped
            .decrypt(Sm4Mode::Cbc, &iv, b"", &c)
            .unwrap()
            .expose(),
        b"wrap me"
    );
    // The unwrapped key is not extractable, and the KEK itself cannot be wrapped.
    assert!(hsm.wrap_key(&kek, &unwrapped).is_err());
    assert!(hsm.wrap_key(&kek, &kek).is_err());
    // Found again by URI.
    let again = hsm.sm4_key(unwrapped.uri()).unwrap();
    assert_eq!(
        again.decrypt(Sm4Mode::Cbc, &iv, b"", &c).unwrap().expose(),
        b"wrap me"
    );
    assert!(matches!(
        hsm.generate_sm4("st-sm4-data", Sm4KeyOptions::default()),
        Err(HsmError::KeyExists { .. })
    ));
    assert_eq!(hsm.delete(unwrapped.uri()).unwrap(), 1);

    // Self-check: every vendor mechanism of the profile is really offered (found through
    // C_GetMechanismInfo and the unfiltered C_GetMechanismList), and a generated key passes.
    let key = hsm
        .generate_sm2("st-check-1", &[0x53], KeyUsage::Signing)
        .unwrap();
    let check = hsm.self_check(Some(&key.uri)).unwrap();
    assert!(check.passed(), "{check}");
    assert_eq!(check.assurance(), "development token, not certified");
    // The unwrap probe: the soft token refuses a non-sensitive copy, and the throwaway keys
    // are gone afterwards.
    let probe = check
        .rows
        .iter()
        .find(|r| r.item == "unwrapped key sensitivity")
        .unwrap_or_else(|| panic!("no unwrap probe row:\n{check}"));
    assert!(
        probe.ok
            && probe.observed == "refused: C_UnwrapKey returned CKR_TEMPLATE_INCONSISTENT (0xD1)",
        "{probe:?}"
    );
    for label in ["gmchain-selfcheck-kek", "gmchain-selfcheck-victim"] {
        let uri = KeyUri::parse(&format!("pkcs11:token={TOKEN};object={label}")).unwrap();
        assert!(
            matches!(hsm.sm4_key(&uri), Err(HsmError::KeyNotFound { .. })),
            "{label}"
        );
    }
    let mech_rows: Vec<_> = check
        .rows
        .iter()
        .filter(|r| r.item.starts_with("mechanism ") && r.item != "mechanism list")
        .collect();
    assert_eq!(mech_rows.len(), 11, "{check}");
    for r in mech_rows {
        assert!(
            r.ok && r.observed.contains("listed by C_GetMechanismList"),
            "{r:?}"
        );
    }
    let list = check
        .rows
        .iter()
        .find(|r| r.item == "mechanism list")
        .unwrap();
    assert!(
        !list.observed.contains(" 0 of them vendor-defined"),
        "{list:?}"
    );
}

/// The row of the self-check that looks for keys that wrap and decrypt (or unwrap and encrypt).
fn usage_row(check: &hsm::SelfCheck) -> &hsm::SelfCheckRow {
    check
        .rows
        .iter()
        .find(|r| r.item == "key usage separation")
        .unwrap_or_else(|| panic!("no key usage separation row:\n{check}"))
}

#[test]
fn the_wrapping_key_template_neither_encrypts_nor_decrypts() {
    let hsm = hsm();
    let kek_only = Sm4Usage {
        encrypt: false,
        decrypt: false,
        wrap: true,
        unwrap: true,
    };
    let data_only = Sm4Usage {
        encrypt: true,
        decrypt: true,
        wrap: false,
        unwrap: false,
    };
    let wrapping = Sm4KeyOptions {
        wrapping: true,
        ..Sm4KeyOptions::default()
    };
    // A generated key-encryption key, as the token reports it.
    let kek = hsm.generate_sm4("st-usage-kek", wrapping).unwrap();
    assert_eq!(hsm.sm4_usage(&kek).unwrap(), kek_only);
    // The soft token lets a key wrap only if its value never left it: one imported by value
    // (or unwrapped, below) is refused, since whoever knows its value reads what it wraps.
    let refused = |r: Result<hsm::HsmSm4Key, HsmError>| match r {
        Err(HsmError::Pkcs11 { rv, .. }) => rv.to_string().contains("CKR_TEMPLATE_INCONSISTENT"),
        _ => false,
    };
    assert!(refused(hsm.import_sm4(
        "st-usage-kek-imported",
        &secret("0123456789abcdef"),
        wrapping,
    )));
    let data = hsm
        .generate_sm4(
            "st-usage-data",
            Sm4KeyOptions {
                extractable: true,
                ..Sm4KeyOptions::default()
            },
        )
        .unwrap();
    assert_eq!(hsm.sm4_usage(&data).unwrap(), data_only);
    let wrapped = hsm.wrap_key(&kek, &data).unwrap();
    assert!(refused(hsm.unwrap_key(
        &kek,
        &wrapped,
        "st-usage-kek-unwrapped",
        wrapping
    )));
    let unwrapped = hsm
        .unwrap_key(
            &kek,
            &wrapped,
            "st-usage-data-unwrapped",
            Sm4KeyOptions::default(),
        )
        .unwrap();
    assert_eq!(hsm.sm4_usage(&unwrapped).unwrap(), data_only);

    // The KEK cannot decrypt the blob it made (the token refuses, it is no failure).
    let (iv, body) = wrapped.split_at(16);
    let e = kek.decrypt_data(Sm4Mode::Cbc, iv, b"", body).unwrap_err();
    assert!(e.is_refusal(), "{e}");

    // And the self-check finds no key on this token that both wraps and decrypts.
    let check = hsm.self_check(None).unwrap();
    let row = usage_row(&check);
    assert!(row.ok, "{row:?}");
    assert!(row.observed.contains("none of"), "{row:?}");
    for uri in [kek.uri(), data.uri(), unwrapped.uri()] {
        hsm.delete(uri).unwrap();
    }
}

#[test]
fn eight_threads_fifty_signatures_each() {
    let hsm = Arc::new(hsm());
    let info = hsm
        .generate_sm2("st-conc-1", &[0x54], KeyUsage::Signing)
        .unwrap();
    let signer = Arc::new(hsm.signer(&info.uri).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let signer = signer.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| {
                        let msg = format!("thread {t} message {i}").into_bytes();
                        let sig = signer.sign(&UserId::default(), &msg).unwrap();
                        (msg, sig)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut n = 0;
    for t in threads {
        for (msg, sig) in t.join().unwrap() {
            crypto_sm::sm2::verify(&info.public_key, &UserId::default(), &msg, &sig).unwrap();
            n += 1;
        }
    }
    assert_eq!(n, 400);
}

#[test]
fn token_random_and_keystore() {
    let hsm = hsm();
    let mut a = [0u8; 64];
    let mut b = [0u8; 64];
    hsm.rng().fill(&mut a).unwrap();
    hsm.rng().fill(&mut b).unwrap();
    assert_ne!(a, b);
    let store: &dyn crypto::KeyStore = &hsm;
    let k = store.generate("st-ks-1").unwrap();
    let s = store.signer("st-ks-1").unwrap();
    let sig = s.sign(&UserId::default(), b"m").unwrap();
    crypto_sm::sm2::verify(&k.public_key, &UserId::default(), b"m", &sig).unwrap();
    store.delete("st-ks-1").unwrap();
}

// ---- One provider test suite, run against both providers ---------------------------------------

/// Everything a provider offers, as the `crypto` traits. `signer` and `decrypter` may be two
/// keys (a token enforces usage separation) or one (the software provider).
/// SM2 verification with any key: (key, user ID, message, signature).
type VerifyFn<'a> = dyn Fn(&PublicKey, &UserId, &[u8], &Signature) -> Result<(), CryptoError> + 'a;

struct Provider<'a> {
    name: String,
    /// SM3 of the input in this provider (the token's `C_Digest`, or software).
    sm3: &'a (dyn Fn(&[u8]) -> Digest + 'a),
    signer: &'a dyn Signer,
    decrypter: &'a dyn Decrypter,
    encrypter: &'a dyn Encrypter,
    /// SM2 verification with any key in this provider.
    verify: &'a VerifyFn<'a>,
    /// The SM4 key 000102…0f in this provider.
    sm4: &'a dyn Sm4Key,
}

/// The provider suite, run with every pair of providers: SM3, SM4 and ZA byte-equal; public
/// keys valid; every signature and ciphertext one provider makes is verified or decrypted by
/// the other and by itself; a changed message is refused by both.
fn provider_suite(a: &Provider<'_>, b: &Provider<'_>) {
    let ctx = format!("{} vs {}", a.name, b.name);
    for len in [0usize, 1, 55, 64, 1000] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        assert_eq!((a.sm3)(&data), (b.sm3)(&data), "SM3 [{ctx}]");
    }
    let msg = b"provider suite plaintext, longer than one block";
    for mode in [Sm4Mode::Cbc, Sm4Mode::Ctr, Sm4Mode::Gcm] {
        let iv = vec![0x42; mode.iv_len()];
        let aad: &[u8] = if mode.is_aead() { b"aad" } else { b"" };
        let ca = a.sm4.encrypt(mode, &iv, aad, msg).unwrap();
        assert_eq!(
            ca,
            b.sm4.encrypt(mode, &iv, aad, msg).unwrap(),
            "SM4 {mode:?} [{ctx}]"
        );
        assert_eq!(b.sm4.decrypt(mode, &iv, aad, &ca).unwrap().expose(), msg);
        assert_eq!(a.sm4.decrypt(mode, &iv, aad, &ca).unwrap().expose(), msg);
    }
    for (x, y) in [(a, b), (b, a)] {
        let pk = x.signer.public_key();
        crypto_sm::sm2::parse_public_key(pk.as_bytes()).unwrap();
        for id in ids() {
            // ZA over (ID, key) and e = SM3(ZA ‖ M): the same bytes whichever provider hashes.
            let e = crypto_sm::sm2::message_digest(&id, &pk, b"suite");
            let mut za_m = crypto_sm::sm2::za(&id, &pk).as_bytes().to_vec();
            za_m.extend_from_slice(b"suite");
            assert_eq!((x.sm3)(&za_m), e, "ZA/e [{ctx}]");
            assert_eq!((y.sm3)(&za_m), e, "ZA/e [{ctx}]");

            let sig = x.signer.sign(&id, b"suite").unwrap();
            (y.verify)(&pk, &id, b"suite", &sig).unwrap();
            (x.verify)(&pk, &id, b"suite", &sig).unwrap();
            for v in [x.verify, y.verify] {
                assert_eq!(
                    v(&pk, &id, b"suite!", &sig),
                    Err(CryptoError::SignatureInvalid),
                    "[{ctx}]"
                );
            }
        }
        let dk = x.decrypter.public_key();
        crypto_sm::sm2::parse_public_key(dk.as_bytes()).unwrap();
        for format in [CipherFormat::C1C3C2, CipherFormat::Der] {
            let c = y
                .encrypter
                .encrypt(&dk, b"to the other side", format)
                .unwrap();
            assert_eq!(
                x.decrypter.decrypt(&c, format).unwrap().expose(),
                b"to the other side"
            );
            let c = x.encrypter.encrypt(&dk, b"to myself", format).unwrap();
            assert_eq!(
                x.decrypter.decrypt(&c, format).unwrap().expose(),
                b"to myself"
            );
        }
    }
}

#[test]
fn one_provider_suite_for_software_and_pkcs11() {
    let sm4_bytes: Vec<u8> = (0u8..16).collect();
    let soft = software();
    let soft_key = soft.generate().unwrap();
    let soft_sm4 = soft.sm4_key(&sm4_bytes).unwrap();
    let software_provider = Provider {
        name: "software".into(),
        sm3: &crypto_sm::sm3::sm3,
        signer: &soft_key,
        decrypter: &soft_key,
        encrypter: &soft,
        verify: &crypto_sm::sm2::verify,
        sm4: &soft_sm4,
    };
    let soft2_key = soft.generate().unwrap();
    let software_2 = Provider {
        name: "software (second key)".into(),
        signer: &soft2_key,
        decrypter: &soft2_key,
        ..Provider {
            name: String::new(),
            ..software_provider
        }
    };
    provider_suite(&software_provider, &software_2);

    let env = softtoken(false);
    for (n, profile) in [env.profile.clone(), message_with_id_profile(env)]
        .into_iter()
        .enumerate()
    {
        let hsm = open_softtoken(&profile, 2);
        let label = format!("suite-{n}");
        hsm.generate_sm2(&label, b"s", KeyUsage::Signing).unwrap();
        hsm.generate_sm2(&format!("{label}-enc"), b"e", KeyUsage::Encryption)
            .unwrap();
        let sign_key = hsm.signer(&key_uri(&label)).unwrap();
        let dec_key = hsm.signer(&key_uri(&format!("{label}-enc"))).unwrap();
        let sm4 = hsm
            .import_sm4(
                &format!("{label}-sm4"),
                &crypto::Secret::new(sm4_bytes.clone()),
                Sm4KeyOptions::default(),
            )
            .unwrap();
        let encrypter = hsm.encrypter().unwrap();
        let token_sm3 = |data: &[u8]| hsm.sm3(data).unwrap();
        let token_verify = |key: &PublicKey, id: &UserId, msg: &[u8], sig: &Signature| {
            hsm.verify_with_key(key, id, msg, sig)
                .map_err(CryptoError::from)
        };
        let pkcs11 = Provider {
            name: format!("pkcs11 ({})", hsm.profile().name()),
            sm3: &token_sm3,
            signer: &sign_key,
            decrypter: &dec_key,
            encrypter: &encrypter,
            verify: &token_verify,
            sm4: &sm4,
        };
        provider_suite(&software_provider, &pkcs11);
        provider_suite(&pkcs11, &pkcs11);
    }
}

#[test]
fn wrong_pins_lock_the_token_and_the_security_officer_unlocks_it() {
    let env = softtoken(false);
    // The soft token's second slot; this process never logged in to it.
    Hsm::init_token(
        &env.profile,
        hsm::TokenSlot::FirstUninitialized,
        &secret(SO_PIN),
        "gmchain-lock",
    )
    .unwrap();
    Hsm::init_pin(
        &env.profile,
        "gmchain-lock",
        &secret(SO_PIN),
        &secret(USER_PIN),
    )
    .unwrap();
    let mut answers = Vec::new();
    for _ in 0..5 {
        match Hsm::open(&env.profile, "gmchain-lock", Some(secret("wrong-pin")), 1) {
            Err(HsmError::PinIncorrect) => answers.push("incorrect"),
            Err(HsmError::PinLocked) => answers.push("locked"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        answers,
        ["incorrect", "incorrect", "incorrect", "incorrect", "locked"]
    );
    let e = Hsm::open(&env.profile, "gmchain-lock", Some(secret(USER_PIN)), 1).unwrap_err();
    assert!(matches!(e, HsmError::PinLocked), "{e}");
    assert!(e.to_string().contains("init-pin"), "{e}");
    Hsm::init_pin(
        &env.profile,
        "gmchain-lock",
        &secret(SO_PIN),
        &secret("new-user-pin"),
    )
    .unwrap();
    Hsm::open(
        &env.profile,
        "gmchain-lock",
        Some(secret("new-user-pin")),
        1,
    )
    .unwrap();
    // A wrong SO PIN is refused too.
    assert!(matches!(
        Hsm::init_pin(
            &env.profile,
            "gmchain-lock",
            &secret("wrong-so-pin"),
            &secret(USER_PIN)
        ),
        Err(HsmError::PinIncorrect)
    ));
}

/// A user's dual pair as a CA issues it: the user's signing certificate for a key in the token
/// (generated with CKA_UNWRAP), and a user-enc certificate for a key pair the CA generates and
/// seals to the signing key (GM/T 0009 SM2EnvelopedKey).
struct DualPair {
    enc_cert: pki::Certificate,
    envelope: Vec<u8>,
}

fn issue_user_pair(holder: &PublicKey, cn: &str, seed: u64) -> DualPair {
    let rng = SeededRandom::new(seed);
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(seed + 1)));
    let ca_key = p.generate().unwrap();
    let validity = pki::Validity {
        not_before: pki::UnixTime(1_767_225_600),
        not_after: pki::UnixTime(1_767_225_600 + 365 * 86_400),
    };
    let root = pki::issue_root(
        "Envelope Root CA",
        "Agency E",
        pki::Serial::from_hex("01").unwrap(),
        validity,
        &ca_key,
    )
    .unwrap();
    let sign_cert = pki::issue(
        &root,
        &ca_key,
        &pki::IssueRequest {
            role: pki::Role::User,
            common_name: cn,
            organisation: "Agency E",
            public_key: holder,
            serial: pki::Serial::from_hex("10").unwrap(),
            validity,
        },
    )
    .unwrap();
    let enc_key = crypto_sm::sm2::PrivateKey::generate(&rng).unwrap();
    let enc_role = pki::Role::User.encryption_pair().unwrap();
    let enc_cert = pki::issue(
        &root,
        &ca_key,
        &pki::IssueRequest {
            role: enc_role,
            common_name: cn,
            organisation: "Agency E",
            public_key: &enc_key.public_key(),
            serial: pki::Serial::from_hex("11").unwrap(),
            validity,
        },
    )
    .unwrap();
    assert_eq!(enc_cert.role(), Some(pki::Role::UserEnc));
    let envelope = pki::envelope::seal(
        &enc_key.to_bytes(),
        &enc_key.public_key(),
        &sign_cert.public_key(),
        &rng,
    )
    .unwrap();
    DualPair { enc_cert, envelope }
}

fn import(
    hsm: &Hsm,
    holder: &KeyUri,
    pair: &DualPair,
    envelope: &[u8],
    label: &str,
) -> Result<hsm::KeyInfo, HsmError> {
    let parts = pki::envelope::parse(envelope).unwrap();
    hsm.import_envelope(
        holder,
        &hsm::EnvelopedKey {
            sym_encrypted: &parts.sym_encrypted,
            public_key: parts.public_key,
            encrypted_private_key: &parts.encrypted_private_key,
        },
        &pair.enc_cert.public_key(),
        label,
        b"e",
    )
}

fn labelled(hsm: &Hsm, label: &str) -> usize {
    hsm.find(&KeyUri::parse(&format!("pkcs11:token={TOKEN};object={label}")).unwrap())
        .unwrap()
        .len()
}

#[test]
fn an_enveloped_user_encryption_key_is_unwrapped_and_used_inside_the_token() {
    let hsm = hsm();
    let alice = hsm
        .generate_sm2("env-alice", &[0x71], KeyUsage::SigningAndUnwrap)
        .unwrap();
    assert!(
        alice.sign && !alice.decrypt,
        "unwrap-only use: never decrypts"
    );
    let bob = hsm
        .generate_sm2("env-bob", &[0x72], KeyUsage::SigningAndUnwrap)
        .unwrap();
    let pair = issue_user_pair(&alice.public_key, "alice", 40);

    // A wrong recipient (bob's key in the token) cannot open alice's envelope: nothing made.
    let e = import(&hsm, &bob.uri, &pair, &pair.envelope, "env-wrong").unwrap_err();
    assert!(matches!(e, HsmError::EnvelopeRefused { .. }), "{e}");
    assert_eq!(labelled(&hsm, "env-wrong"), 0);
    // A tampered envelope: the encrypted d (the last bytes), or C3 inside symEncryptedKey.
    let mut bad_d = pair.envelope.clone();
    let last = bad_d.len() - 1;
    bad_d[last] ^= 1;
    let e = import(&hsm, &alice.uri, &pair, &bad_d, "env-bad-d").unwrap_err();
    assert!(matches!(e, HsmError::EnvelopeRefused { .. }), "{e}");
    let parts = pki::envelope::parse(&pair.envelope).unwrap();
    let c3 = parts
        .sym_encrypted
        .windows(2)
        .position(|w| w == [0x04, 0x20])
        .unwrap()
        + 2;
    let at = pair
        .envelope
        .windows(parts.sym_encrypted.len())
        .position(|w| w == parts.sym_encrypted.as_slice())
        .unwrap();
    let mut bad_c3 = pair.envelope.clone();
    bad_c3[at + c3] ^= 0x80;
    let e = import(&hsm, &alice.uri, &pair, &bad_c3, "env-bad-c3").unwrap_err();
    assert!(matches!(e, HsmError::EnvelopeRefused { .. }), "{e}");
    assert_eq!(
        labelled(&hsm, "env-bad-d") + labelled(&hsm, "env-bad-c3"),
        0
    );
    // A signing key without CKA_UNWRAP is refused with a clear error.
    let plain = hsm
        .generate_sm2("env-plain", &[0x73], KeyUsage::Signing)
        .unwrap();
    let e = import(&hsm, &plain.uri, &pair, &pair.envelope, "env-x").unwrap_err();
    assert!(matches!(e, HsmError::KeyCannotUnwrap { .. }), "{e}");
    assert!(e.to_string().contains("CKA_UNWRAP"), "{e}");
    // The certificate of another pair is refused before the token is asked.
    let other = issue_user_pair(&alice.public_key, "alice", 50);
    let parts = pki::envelope::parse(&pair.envelope).unwrap();
    let e = hsm
        .import_envelope(
            &alice.uri,
            &hsm::EnvelopedKey {
                sym_encrypted: &parts.sym_encrypted,
                public_key: parts.public_key,
                encrypted_private_key: &parts.encrypted_private_key,
            },
            &other.enc_cert.public_key(),
            "env-y",
            b"e",
        )
        .unwrap_err();
    assert!(matches!(e, HsmError::InvalidInput { .. }), "{e}");

    // The envelope opened with alice's key in the token.
    let imported = import(&hsm, &alice.uri, &pair, &pair.envelope, "env-alice-enc").unwrap();
    assert_eq!(imported.public_key, pair.enc_cert.public_key());
    assert!(imported.decrypt && !imported.sign);
    let protection = hsm.key_protection(&imported.uri).unwrap();
    assert!(
        protection.sensitive && !protection.extractable,
        "{protection:?}"
    );
    assert_eq!(hsm.read_private_value(&imported.uri).unwrap(), None);
    assert!(matches!(
        import(&hsm, &alice.uri, &pair, &pair.envelope, "env-alice-enc").unwrap_err(),
        HsmError::KeyExists { .. }
    ));
    // A data-exchange grant: 16 random bytes SM2-encrypted (SM2Cipher DER) to the user-enc
    // certificate in software, decrypted inside the token.
    let dec = hsm.signer(&imported.uri).unwrap();
    let rng = crypto_sm::rng::SystemRandom;
    for _ in 0..3 {
        let mut data_key = [0u8; 16];
        rng.fill(&mut data_key).unwrap();
        let grant = crypto_sm::sm2::encrypt(
            &pair.enc_cert.public_key(),
            &data_key,
            CipherFormat::Der,
            &rng,
        )
        .unwrap();
        assert_eq!(
            Decrypter::decrypt(&dec, &grant, CipherFormat::Der)
                .unwrap()
                .expose(),
            &data_key
        );
        // The wrong recipient: bob's key cannot open it.
        let bob_key = hsm.signer(&bob.uri).unwrap();
        assert!(Decrypter::decrypt(&bob_key, &grant, CipherFormat::Der).is_err());
        // C3 flipped: refused, nothing released.
        let raw = crypto::gmt0009::decode_ciphertext(&grant).unwrap();
        let mut bad = raw.clone();
        bad[65] ^= 1;
        let bad = crypto::gmt0009::encode_ciphertext(&bad).unwrap();
        assert!(matches!(
            Decrypter::decrypt(&dec, &bad, CipherFormat::Der),
            Err(CryptoError::DecryptionFailed { .. })
        ));
    }
    // The imported key cannot sign.
    assert!(dec.sign(&UserId::default(), b"a transaction").is_err());
    // `keys check` accepts it (sensitive, unextractable, decrypt-only; made outside the token
    // by the CA, so not local), and still holds signing keys to every attribute.
    let check = hsm.self_check(Some(&imported.uri)).unwrap();
    assert!(check.passed(), "{check}");
    assert!(
        check
            .rows
            .iter()
            .any(|r| r.item.ends_with("CKA_LOCAL")
                && r.observed.starts_with("false: a decrypt-only")),
        "{check}"
    );
}
