//! Key wrapping cannot be turned into key extraction (issue 9, defect 6).
//!
//! A key that may both wrap and decrypt recovers any extractable key in clear: wrap it, then
//! decrypt the blob with the same key. A key that may both wrap and encrypt gives the keystream
//! of a GCM wrap (see `sensitive_stays_sensitive`). A key that may both unwrap and encrypt
//! imports a key whose value the caller chose. The token refuses these combinations however a
//! key would get them:
//! generation, creation by value, unwrapping, and `C_SetAttributeValue` (in one template or in
//! two steps). And `C_UnwrapKey` gives one answer for every wrapped blob it cannot use, so it is
//! no padding oracle.

use crate::common::*;
use crate::isolated_test;
use crypto::Sm4Mode;
use crypto_sm::sm4::{self, Sm4Secret};
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

/// The value of the key a logged-in user must never see in clear.
const VICTIM: [u8; 16] = *b"agency-a-sm4-key";
const IV: [u8; 16] = [0x21; 16];

/// Creates an SM4 key by value with extra attributes.
fn sm4_by_value(
    s: &Session,
    value: &[u8; 16],
    extra: &[Attribute],
) -> cryptoki::error::Result<ObjectHandle> {
    let mut t = vec![
        class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(sm4_type()),
        Attribute::Value(value.to_vec()),
    ];
    t.extend_from_slice(extra);
    s.create_object(&t)
}

/// The victim: sensitive (its value never reads out) but extractable (it may leave the token
/// wrapped, that is encrypted under a key-encryption key).
fn victim(s: &Session) -> ObjectHandle {
    sm4_by_value(
        s,
        &VICTIM,
        &[
            Attribute::Token(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(true),
            Attribute::Label(b"victim".to_vec()),
        ],
    )
    .expect("create the victim key")
}

/// The attack: wrap `target` under `kek` with CBC-PAD, then decrypt the blob with `kek`.
/// Returns what the decryption gave, if both steps were allowed.
fn wrap_then_decrypt(s: &Session, kek: ObjectHandle, target: ObjectHandle) -> Option<Vec<u8>> {
    let cbc = mech_with(CKM_GM_SM4_CBC_PAD, &IV);
    let wrapped = s.wrap_key(&cbc, kek, target).ok()?;
    s.decrypt(&cbc, kek, &wrapped).ok()
}

/// Asserts that a key-making call was refused as an inconsistent template, and if it was not,
/// shows what the key it made can do.
fn assert_refused(
    s: &Session,
    what: &str,
    made: cryptoki::error::Result<ObjectHandle>,
    target: ObjectHandle,
) {
    if let Ok(kek) = &made {
        assert_ne!(
            wrap_then_decrypt(s, *kek, target).as_deref(),
            Some(&VICTIM[..]),
            "{what}: wrap-then-decrypt recovered the sensitive key in clear"
        );
    }
    assert_eq!(rv_of(made), RvError::TemplateInconsistent, "{what}");
}

fn usage(s: &Session, h: ObjectHandle) -> [bool; 4] {
    [
        AttributeType::Encrypt,
        AttributeType::Decrypt,
        AttributeType::Wrap,
        AttributeType::Unwrap,
    ]
    .map(|t| bool_attr(s, h, t))
}

isolated_test! {
    fn a_key_cannot_both_wrap_and_decrypt() {
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let victim = victim(&s);
        let keygen = mech(CKM_GM_SM4_KEY_GEN);

        // Generated, as a session or a token object.
        assert_refused(
            &s,
            "C_GenerateKey wrap+decrypt",
            s.generate_key(&keygen, &[Attribute::Wrap(true), Attribute::Decrypt(true)]),
            victim,
        );
        assert_refused(
            &s,
            "C_GenerateKey token wrap+decrypt",
            s.generate_key(
                &keygen,
                &[Attribute::Token(true), Attribute::Wrap(true), Attribute::Decrypt(true)],
            ),
            victim,
        );
        assert_refused(
            &s,
            "C_GenerateKey unwrap+encrypt",
            s.generate_key(&keygen, &[Attribute::Unwrap(true), Attribute::Encrypt(true)]),
            victim,
        );
        // Created by value.
        assert_refused(
            &s,
            "C_CreateObject wrap+decrypt",
            sm4_by_value(&s, &[7; 16], &[Attribute::Wrap(true), Attribute::Decrypt(true)]),
            victim,
        );
        assert_refused(
            &s,
            "C_CreateObject unwrap+encrypt",
            sm4_by_value(&s, &[7; 16], &[Attribute::Unwrap(true), Attribute::Encrypt(true)]),
            victim,
        );

        // A key-encryption key asked for without saying anything about encryption gets neither
        // encrypt nor decrypt (the data-key defaults do not apply to it), so it wraps, unwraps,
        // and cannot decrypt what it wrapped.
        let kek = s
            .generate_key(&keygen, &[Attribute::Wrap(true), Attribute::Unwrap(true)])
            .unwrap();
        assert_eq!(usage(&s, kek), [false, false, true, true], "encrypt, decrypt, wrap, unwrap");
        let cbc = mech_with(CKM_GM_SM4_CBC_PAD, &IV);
        let wrapped = s.wrap_key(&cbc, kek, victim).unwrap();
        assert_eq!(rv_of(s.decrypt(&cbc, kek, &wrapped)), RvError::KeyFunctionNotPermitted);
        assert_eq!(wrap_then_decrypt(&s, kek, victim), None);

        // Unwrapped: the new key's template is held to the same rule.
        let sm4_template = |extra: &[Attribute]| {
            let mut t = vec![class(ObjectClass::SECRET_KEY), Attribute::KeyType(sm4_type())];
            t.extend_from_slice(extra);
            t
        };
        assert_refused(
            &s,
            "C_UnwrapKey wrap+decrypt",
            s.unwrap_key(
                &cbc,
                kek,
                &wrapped,
                &sm4_template(&[Attribute::Wrap(true), Attribute::Decrypt(true)]),
            ),
            victim,
        );
        assert_refused(
            &s,
            "C_UnwrapKey unwrap+encrypt",
            s.unwrap_key(
                &cbc,
                kek,
                &wrapped,
                &sm4_template(&[Attribute::Unwrap(true), Attribute::Encrypt(true)]),
            ),
            victim,
        );
        // A data key unwrapped the ordinary way works as one.
        let data = s.unwrap_key(&cbc, kek, &wrapped, &sm4_template(&[])).unwrap();
        assert_eq!(usage(&s, data), [true, true, false, false]);

        // Wrap with encrypt is refused too: SM4-CTR with the right counter block gives the
        // keystream of a GCM wrap. Unwrap with decrypt is harmless and allowed.
        assert_eq!(
            rv_of(s.generate_key(&keygen, &[Attribute::Wrap(true), Attribute::Encrypt(true)])),
            RvError::TemplateInconsistent
        );
        let k = s
            .generate_key(&keygen, &[Attribute::Unwrap(true), Attribute::Decrypt(true)])
            .unwrap();
        assert_eq!(usage(&s, k), [false, true, false, true]);
    }
}

isolated_test! {
    fn set_attribute_value_cannot_join_wrap_and_decrypt() {
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let victim = victim(&s);
        let keygen = mech(CKM_GM_SM4_KEY_GEN);
        for token in [true, false] {
            let what = if token { "token object" } else { "session object" };
            // A data key (encrypt and decrypt, the defaults) may not become a wrapping key.
            let data = s.generate_key(&keygen, &[Attribute::Token(token)]).unwrap();
            let asks = [(Attribute::Wrap(true), "wrap"), (Attribute::Unwrap(true), "unwrap")];
            for (attr, name) in asks {
                let r = s.update_attributes(data, &[attr]);
                if r.is_ok() && name == "wrap" {
                    assert_ne!(
                        wrap_then_decrypt(&s, data, victim).as_deref(),
                        Some(&VICTIM[..]),
                        "{what}: a data key given CKA_WRAP recovered the sensitive key in clear"
                    );
                }
                assert_eq!(rv_of(r), RvError::TemplateInconsistent, "{what}: {name}");
            }
            assert_eq!(usage(&s, data), [true, true, false, false], "{what}: unchanged");

            // Both in one template.
            let plain = s
                .generate_key(
                    &keygen,
                    &[
                        Attribute::Token(token),
                        Attribute::Encrypt(false),
                        Attribute::Decrypt(false),
                    ],
                )
                .unwrap();
            let r = s.update_attributes(plain, &[Attribute::Wrap(true), Attribute::Decrypt(true)]);
            assert_eq!(rv_of(r), RvError::TemplateInconsistent, "{what}: one template");
            assert_eq!(usage(&s, plain), [false; 4], "{what}: all or nothing");

            // Two steps: wrap first, then decrypt (or encrypt).
            let two = s
                .generate_key(
                    &keygen,
                    &[Attribute::Token(token), Attribute::Encrypt(false), Attribute::Decrypt(false)],
                )
                .unwrap();
            s.update_attributes(two, &[Attribute::Wrap(true)]).unwrap();
            let r = s.update_attributes(two, &[Attribute::Decrypt(true)]);
            if r.is_ok() {
                assert_ne!(
                    wrap_then_decrypt(&s, two, victim).as_deref(),
                    Some(&VICTIM[..]),
                    "{what}: CKA_WRAP then CKA_DECRYPT recovered the sensitive key in clear"
                );
            }
            assert_eq!(rv_of(r), RvError::TemplateInconsistent, "{what}: wrap, then decrypt");
            let r = s.update_attributes(two, &[Attribute::Encrypt(true)]);
            assert_eq!(rv_of(r), RvError::TemplateInconsistent, "{what}: wrap, then encrypt");
            assert_eq!(usage(&s, two), [false, false, true, false]);
            // Giving up wrapping does not make it a data key again: CKA_WRAP is one-way (see
            // sensitive_stays_sensitive::a_key_that_wrapped_never_turns_to_data).
            assert_eq!(
                rv_of(s.update_attributes(two, &[Attribute::Wrap(false)])),
                RvError::AttributeReadOnly,
                "{what}"
            );
            assert_eq!(usage(&s, two), [false, false, true, false]);

            // The mirror: unwrap first (with decrypt, harmless), then encrypt.
            let mirror = s
                .generate_key(
                    &keygen,
                    &[Attribute::Token(token), Attribute::Encrypt(false), Attribute::Decrypt(true)],
                )
                .unwrap();
            s.update_attributes(mirror, &[Attribute::Unwrap(true)]).unwrap();
            let r = s.update_attributes(mirror, &[Attribute::Encrypt(true)]);
            assert_eq!(rv_of(r), RvError::TemplateInconsistent, "{what}: unwrap, then encrypt");
            assert_eq!(usage(&s, mirror), [false, true, false, true]);
        }

        // The earlier guarantees hold next to the new one: sensitive and unextractable stay so.
        let k = s
            .generate_key(
                &keygen,
                &[
                    Attribute::Token(true),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                ],
            )
            .unwrap();
        s.update_attributes(k, &[Attribute::Sensitive(true), Attribute::Extractable(false)])
            .unwrap();
        assert_eq!(
            rv_of(s.update_attributes(k, &[Attribute::Sensitive(false)])),
            RvError::AttributeReadOnly
        );
        assert_eq!(
            rv_of(s.update_attributes(k, &[Attribute::Extractable(true)])),
            RvError::AttributeReadOnly
        );
    }
}

/// SM4-CBC without padding, computed outside the token: lets the test write any padding.
fn cbc_raw(key: &[u8; 16], iv: &[u8; 16], plain: &[u8]) -> Vec<u8> {
    assert_eq!(plain.len() % 16, 0);
    let key = Sm4Secret::from_slice(key).unwrap();
    let mut prev = *iv;
    let mut out = Vec::new();
    for b in plain.chunks_exact(16) {
        let mut x = [0u8; 16];
        for i in 0..16 {
            x[i] = b[i] ^ prev[i];
        }
        prev = sm4::encrypt_block(&key, &x);
        out.extend_from_slice(&prev);
    }
    out
}

isolated_test! {
    fn every_unwrap_failure_gets_one_answer() {
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        // An unwrapping key whose value the test knows, so it can write any blob. (It may not
        // wrap: a key that wraps must have a value nobody knows, see sensitive_stays_sensitive.)
        let kek_value = [0x4bu8; 16];
        let kek = sm4_by_value(&s, &kek_value, &[Attribute::Unwrap(true)]).unwrap();
        let cbc = mech_with(CKM_GM_SM4_CBC_PAD, &IV);
        let sm4_t = vec![class(ObjectClass::SECRET_KEY), Attribute::KeyType(sm4_type())];
        let sm2_t = vec![class(ObjectClass::PRIVATE_KEY), Attribute::KeyType(sm2_type())];
        let blob = |plain: &[u8]| cbc_raw(&kek_value, &IV, plain);
        let cat = |a: &[u8], b: &[u8]| [a, b].concat();

        // The control: a correctly padded 16-byte key unwraps, to a key that has the value
        // (it encrypts as SM4 under VICTIM does outside the token).
        let good = blob(&cat(&VICTIM, &[16; 16]));
        let unwrapped = s.unwrap_key(&cbc, kek, &good, &sm4_t).unwrap();
        assert_eq!(
            s.encrypt(&cbc, unwrapped, &[0x5a; 16]).unwrap(),
            cbc_raw(&VICTIM, &IV, &[[0x5a; 16], [16; 16]].concat())
        );

        let one_off = [[16u8; 15].as_slice(), &[15]].concat();
        let bad: Vec<(&str, Vec<u8>, &Vec<Attribute>)> = vec![
            ("bad padding (last byte 0)", blob(&cat(&VICTIM, &[0; 16])), &sm4_t),
            ("bad padding (last byte 17)", blob(&cat(&VICTIM, &[17; 16])), &sm4_t),
            ("bad padding (one byte off)", blob(&cat(&VICTIM, &one_off)), &sm4_t),
            ("length not a multiple of 16", good[..31].to_vec(), &sm4_t),
            ("length 17", good[..17].to_vec(), &sm4_t),
            ("length 48", [good.as_slice(), &good[..16]].concat(), &sm4_t),
            ("valid padding, 20-byte value", blob(&cat(&[1; 20], &[12; 12])), &sm4_t),
            ("valid padding, empty value", blob(&[16; 16]), &sm4_t),
            ("valid padding, 15-byte value", blob(&cat(&[1; 15], &[1])), &sm4_t),
        ];
        for (what, wrapped, template) in &bad {
            assert_eq!(
                rv_of(s.unwrap_key(&cbc, kek, wrapped, template)),
                RvError::WrappedKeyInvalid,
                "CBC-PAD: {what}"
            );
        }

        // GCM: a short blob, a wrong tag and a value that is no key get the same answer.
        let nonce = [0x44u8; 12];
        let mut nonce_param = nonce;
        let gcm = GcmParams::new(&mut nonce_param, b"", 128.into()).unwrap();
        let gcm = mech_with(CKM_GM_SM4_GCM, &gcm);
        let sealed = |plain: &[u8]| {
            let k = Sm4Secret::from_slice(&kek_value).unwrap();
            sm4::encrypt(&k, Sm4Mode::Gcm, &nonce, b"", plain).unwrap()
        };
        let wrapped = sealed(&VICTIM);
        s.unwrap_key(&gcm, kek, &wrapped, &sm4_t).unwrap();
        let mut tampered = wrapped.clone();
        tampered[0] ^= 1;
        for (what, blob, template) in [
            ("short", wrapped[..15].to_vec(), &sm4_t),
            ("tampered", tampered, &sm4_t),
            ("truncated tag", wrapped[..31].to_vec(), &sm4_t),
            ("a 20-byte value", sealed(&[1; 20]), &sm4_t),
            ("SM2 d = 0", sealed(&[0; 32]), &sm2_t),
            ("SM2 d >= n", sealed(&[0xff; 32]), &sm2_t),
            ("SM2 from a 16-byte value", wrapped.clone(), &sm2_t),
        ] {
            assert_eq!(
                rv_of(s.unwrap_key(&gcm, kek, &blob, template)),
                RvError::WrappedKeyInvalid,
                "GCM: {what}"
            );
        }

        // SM2 private keys travel only under GCM. Under CBC-PAD, whose blobs anyone can alter,
        // which altered blobs unwrap would tell the range of d (a valid d is below n), bit by
        // bit. So neither wrapping nor unwrapping one with CBC-PAD is done, whatever the blob.
        let (_, sm2_private) = sm2_pair(&s, b"\x09", &[Attribute::Extractable(true)]);
        let wrapping = s
            .generate_key(&mech(CKM_GM_SM4_KEY_GEN), &[Attribute::Wrap(true)])
            .unwrap();
        assert_eq!(rv_of(s.wrap_key(&cbc, wrapping, sm2_private)), RvError::KeyNotWrappable);
        let mut zero = [0u8; 12];
        let to_wrap = GcmParams::new(&mut zero, b"", 128.into()).unwrap();
        let d_blob = s
            .wrap_key(&mech_with(CKM_GM_SM4_GCM, &to_wrap), wrapping, sm2_private)
            .unwrap();
        assert_eq!(d_blob.len(), 48);
        for (what, blob) in [
            ("d >= n", blob(&cat(&[0xff; 32], &[16; 16]))),
            ("d = 1", blob(&cat(&[[0; 31].as_slice(), &[1]].concat(), &[16; 16]))),
            ("bad padding", blob(&cat(&[1; 32], &[0; 16]))),
        ] {
            assert_eq!(
                rv_of(s.unwrap_key(&cbc, kek, &blob, &sm2_t)),
                RvError::MechanismInvalid,
                "SM2 under CBC-PAD: {what}"
            );
        }

        // Whatever else is wrong is found before the blob is looked at, so its answer does not
        // depend on the blob either: a bad template, or a token object from a read-only session.
        let bad_padding = &bad[0].1;
        let bad_template = [sm4_t.as_slice(), &[Attribute::Local(true)]].concat();
        let inconsistent =
            [sm4_t.as_slice(), &[Attribute::Wrap(true), Attribute::Decrypt(true)]].concat();
        let ro = p11.open_ro_session(slot).unwrap();
        let token_t = [sm4_t.as_slice(), &[Attribute::Token(true)]].concat();
        for (what, session, template, want) in [
            ("read-only attribute", &s, &bad_template, RvError::AttributeReadOnly),
            ("inconsistent usage", &s, &inconsistent, RvError::TemplateInconsistent),
            ("token object in a read-only session", &ro, &token_t, RvError::SessionReadOnly),
        ] {
            for (blob_name, blob) in [("good blob", &good), ("bad padding", bad_padding)] {
                assert_eq!(
                    rv_of(session.unwrap_key(&cbc, kek, blob, template)),
                    want,
                    "{what} with a {blob_name}"
                );
            }
        }
    }
}
