//! The module through `cryptoki` 0.12.1, the way the `hsm` crate uses it. Every cryptographic
//! result is checked against `crypto_sm` (the software provider) in both directions.

use crate::common::*;
use crate::isolated_test;
use crypto::{CipherFormat, Signature, Sm4Mode, UserId};
use crypto_sm::rng::SystemRandom;
use crypto_sm::sm2::{self, PrivateKey};
use crypto_sm::sm4::{self, Sm4Secret};
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};

fn find_one(s: &Session, template: &[Attribute]) -> ObjectHandle {
    let found = s.find_objects(template).expect("find");
    assert_eq!(
        found.len(),
        1,
        "expected exactly one object for {template:?}"
    );
    found[0]
}

isolated_test! {
    fn init_token_init_pin_login_and_token_info() {
        let (p11, slot) = ready();
        let info = p11.get_token_info(slot).unwrap();
        assert_eq!(info.label(), "it");
        assert_eq!(info.manufacturer_id(), "gmchain");
        assert_eq!(info.model(), "softtoken");
        assert_eq!(info.serial_number().len(), 16);
        assert!(info.serial_number().chars().all(|c| c.is_ascii_hexdigit()));
        assert!(info.token_initialized() && info.user_pin_initialized());
        assert!(info.login_required() && info.rng());
        assert_eq!((info.min_pin_length(), info.max_pin_length()), (4, 64));
        let slots = p11.get_all_slots().unwrap();
        assert_eq!(slots.len(), 2);
        assert!(!p11.get_token_info(slots[1]).unwrap().token_initialized());

        let sign = p11.get_mechanism_info(slot, mtype(CKM_GM_SM2_SM3_SIGN)).unwrap();
        assert!(sign.sign() && sign.verify() && !sign.encrypt());
        let gcm = p11.get_mechanism_info(slot, mtype(CKM_GM_SM4_GCM)).unwrap();
        assert!(gcm.encrypt() && gcm.decrypt() && gcm.wrap() && gcm.unwrap());
        assert_eq!(
            rv_of(p11.get_mechanism_info(slot, mtype(0x8047_4DFF))),
            RvError::MechanismInvalid
        );

        let ro = p11.open_ro_session(slot).unwrap();
        assert_eq!(ro.get_session_info().unwrap().session_state(), SessionState::RoPublic);
        assert_eq!(
            rv_of(ro.login(UserType::So, Some(&pin(SO_PIN)))),
            RvError::SessionReadOnlyExists
        );
        assert_eq!(
            rv_of(ro.login(UserType::User, Some(&pin("wrong-pin")))),
            RvError::PinIncorrect
        );
        ro.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(ro.get_session_info().unwrap().session_state(), SessionState::RoUser);
        assert_eq!(
            rv_of(ro.login(UserType::User, Some(&pin(USER_PIN)))),
            RvError::UserAlreadyLoggedIn
        );
        // A token object from a read-only session is refused.
        let r = ro.generate_key(
            &mech(CKM_GM_SM4_KEY_GEN),
            &[Attribute::Token(true), Attribute::Label(b"ro".to_vec())],
        );
        assert_eq!(rv_of(r), RvError::SessionReadOnly);
        // Login is per application: a new session is logged in already.
        let rw = p11.open_rw_session(slot).unwrap();
        assert_eq!(rw.get_session_info().unwrap().session_state(), SessionState::RwUser);
        assert_eq!(p11.get_token_info(slot).unwrap().session_count(), Some(2));
    }
}

isolated_test! {
    fn sm2_key_generation_attributes_and_sensitive_value() {
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let (public, private) = sm2_pair(&s, b"\x01", &[]);
        for t in [
            AttributeType::Local,
            AttributeType::AlwaysSensitive,
            AttributeType::NeverExtractable,
            AttributeType::Sensitive,
            AttributeType::Token,
            AttributeType::Private,
        ] {
            assert!(bool_attr(&s, private, t), "{t:?} should be true");
        }
        assert!(!bool_attr(&s, private, AttributeType::Extractable));
        assert!(bool_attr(&s, public, AttributeType::Local));
        let attrs = s
            .get_attributes(private, &[AttributeType::KeyType, AttributeType::EcParams, AttributeType::Class])
            .unwrap();
        assert_eq!(attrs[0], Attribute::KeyType(sm2_type()));
        assert_eq!(
            attrs[1],
            Attribute::EcParams(vec![0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d])
        );
        assert_eq!(attrs[2], Attribute::Class(ObjectClass::PRIVATE_KEY));
        // CKA_VALUE of a sensitive key: CKR_ATTRIBUTE_SENSITIVE, length unavailable.
        let info = s.get_attribute_info(private, &[AttributeType::Value]).unwrap();
        assert!(matches!(info[0], AttributeInfo::Sensitive), "{info:?}");
        // The private key has no EC point; the public key's is a valid SM2 point.
        let info = s.get_attribute_info(private, &[AttributeType::EcPoint]).unwrap();
        assert!(matches!(info[0], AttributeInfo::TypeInvalid), "{info:?}");
        sm2::parse_public_key(public_key(&s, public).as_bytes()).unwrap();
        // Labels and ids can change; sensitivity cannot be turned off.
        s.update_attributes(private, &[Attribute::Label(b"renamed".to_vec())]).unwrap();
        assert_eq!(find_one(&s, &[Attribute::Label(b"renamed".to_vec())]), private);
        assert_eq!(
            rv_of(s.update_attributes(private, &[Attribute::Sensitive(false)])),
            RvError::AttributeReadOnly
        );
        assert_eq!(
            rv_of(s.update_attributes(private, &[Attribute::Extractable(true)])),
            RvError::AttributeReadOnly
        );
        // Private objects are invisible after logout; public ones stay.
        s.logout().unwrap();
        assert_eq!(s.find_objects(&[]).unwrap(), vec![public]);
    }
}

isolated_test! {
    fn sm2_signatures_interoperate_with_crypto_sm() {
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let (public, private) = sm2_pair(&s, b"\x02", &[]);
        let pk = public_key(&s, public);
        let msg = b"gmchain transaction bytes";

        // CKM_GM_SM2_SM3_SIGN with the default ID (no parameter).
        let sig = s.sign(&mech(CKM_GM_SM2_SM3_SIGN), private, msg).unwrap();
        assert_eq!(sig.len(), 64);
        sm2::verify(&pk, &UserId::default(), msg, &Signature::from_raw(&sig).unwrap()).unwrap();
        s.verify(&mech(CKM_GM_SM2_SM3_SIGN), public, msg, &sig).unwrap();

        // ... with a binary user ID.
        let id: [u8; 7] = [0x00, 0xff, 0x10, 0x80, 0x01, 0x00, 0x7f];
        let sig = s.sign(&mech_with(CKM_GM_SM2_SM3_SIGN, &id), private, msg).unwrap();
        let uid = UserId::new(id.to_vec()).unwrap();
        sm2::verify(&pk, &uid, msg, &Signature::from_raw(&sig).unwrap()).unwrap();
        assert!(sm2::verify(&pk, &UserId::default(), msg, &Signature::from_raw(&sig).unwrap()).is_err());

        // CKM_GM_SM2_SIGN over the caller's e = SM3(ZA ‖ M).
        let e = sm2::message_digest(&UserId::default(), &pk, msg);
        let sig = s.sign(&mech(CKM_GM_SM2_SIGN), private, e.as_bytes()).unwrap();
        sm2::verify(&pk, &UserId::default(), msg, &Signature::from_raw(&sig).unwrap()).unwrap();
        s.verify(&mech(CKM_GM_SM2_SIGN), public, e.as_bytes(), &sig).unwrap();
        assert_eq!(
            rv_of(s.sign(&mech(CKM_GM_SM2_SIGN), private, &e.as_bytes()[..31])),
            RvError::DataLenRange
        );

        // Multi-part signing buffers into the same e.
        s.sign_init(&mech_with(CKM_GM_SM2_SM3_SIGN, &id), private).unwrap();
        s.sign_update(&msg[..5]).unwrap();
        s.sign_update(&msg[5..]).unwrap();
        let sig = s.sign_final().unwrap();
        sm2::verify(&pk, &uid, msg, &Signature::from_raw(&sig).unwrap()).unwrap();
        s.verify_init(&mech_with(CKM_GM_SM2_SM3_SIGN, &id), public).unwrap();
        s.verify_update(&msg[..3]).unwrap();
        s.verify_update(&msg[3..]).unwrap();
        s.verify_final(&sig).unwrap();

        // A software signature verifies through C_Verify with the imported public key.
        let soft = PrivateKey::generate(&SystemRandom).unwrap();
        let soft_pub = soft.public_key();
        let mut ec_point = vec![0x04, 0x41];
        ec_point.extend_from_slice(soft_pub.as_bytes());
        let imported = s
            .create_object(&[
                class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(sm2_type()),
                Attribute::EcPoint(ec_point),
                Attribute::Verify(true),
            ])
            .unwrap();
        let soft_sig = soft.sign(&uid, msg, &SystemRandom).unwrap().to_raw();
        s.verify(&mech_with(CKM_GM_SM2_SM3_SIGN, &id), imported, msg, &soft_sig).unwrap();
        let mut bad = soft_sig;
        bad[63] ^= 1;
        assert_eq!(
            rv_of(s.verify(&mech_with(CKM_GM_SM2_SM3_SIGN, &id), imported, msg, &bad)),
            RvError::SignatureInvalid
        );
        assert_eq!(
            rv_of(s.verify(&mech(CKM_GM_SM2_SM3_SIGN), imported, msg, &soft_sig)),
            RvError::SignatureInvalid,
            "the default ID must not verify a signature made with another ID"
        );
        assert_eq!(
            rv_of(s.verify(&mech(CKM_GM_SM2_SM3_SIGN), imported, msg, &soft_sig[..63])),
            RvError::SignatureLenRange
        );
        // A public key cannot sign; an invalid point is refused at import.
        assert_eq!(
            rv_of(s.sign(&mech(CKM_GM_SM2_SM3_SIGN), imported, msg)),
            RvError::KeyTypeInconsistent
        );
        let mut off_curve = vec![0x04, 0x41, 0x04];
        off_curve.extend_from_slice(&[1u8; 64]);
        let r = s.create_object(&[
            class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(sm2_type()),
            Attribute::EcPoint(off_curve),
        ]);
        assert_eq!(rv_of(r), RvError::AttributeValueInvalid);
    }
}

isolated_test! {
    fn sm2_encryption_interoperates_with_crypto_sm() {
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let (public, private) = sm2_pair(&s, b"\x03", &[Attribute::Decrypt(true)]);
        let pk = public_key(&s, public);
        let msg = b"a session key for node 7";

        // crypto_sm encrypts to the token's key, the token decrypts.
        let ct = sm2::encrypt(&pk, msg, CipherFormat::C1C3C2, &SystemRandom).unwrap();
        assert_eq!(s.decrypt(&mech(CKM_GM_SM2_ENCRYPT), private, &ct).unwrap(), msg);
        // The token encrypts (C1 ‖ C3 ‖ C2, C1 uncompressed) and decrypts its own.
        let ct2 = s.encrypt(&mech(CKM_GM_SM2_ENCRYPT), public, msg).unwrap();
        assert_eq!(ct2.len(), 97 + msg.len());
        assert_eq!(ct2[0], 0x04);
        assert_eq!(s.decrypt(&mech(CKM_GM_SM2_ENCRYPT), private, &ct2).unwrap(), msg);
        // The token encrypts to a software key, crypto_sm decrypts.
        let soft = PrivateKey::generate(&SystemRandom).unwrap();
        let mut ec_point = vec![0x04, 0x41];
        ec_point.extend_from_slice(soft.public_key().as_bytes());
        let soft_pub = s
            .create_object(&[
                class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(sm2_type()),
                Attribute::EcPoint(ec_point),
                Attribute::Encrypt(true),
            ])
            .unwrap();
        let ct3 = s.encrypt(&mech(CKM_GM_SM2_ENCRYPT), soft_pub, msg).unwrap();
        let pt = sm2::decrypt(&soft, &ct3, CipherFormat::C1C3C2).unwrap();
        assert_eq!(pt.expose(), msg);
        // A tampered C3 releases nothing.
        let mut bad = ct;
        bad[70] ^= 1;
        assert_eq!(
            rv_of(s.decrypt(&mech(CKM_GM_SM2_ENCRYPT), private, &bad)),
            RvError::EncryptedDataInvalid
        );
        assert_eq!(
            rv_of(s.decrypt(&mech(CKM_GM_SM2_ENCRYPT), private, &bad[..97])),
            RvError::EncryptedDataLenRange
        );
    }
}

isolated_test! {
    fn a_signing_key_cannot_decrypt() {
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let (public, private) = sm2_pair(&s, b"\x04", &[Attribute::Decrypt(false)]);
        let pk = public_key(&s, public);
        let ct = sm2::encrypt(&pk, b"x", CipherFormat::C1C3C2, &SystemRandom).unwrap();
        assert_eq!(
            rv_of(s.decrypt(&mech(CKM_GM_SM2_ENCRYPT), private, &ct)),
            RvError::KeyFunctionNotPermitted
        );
        // And a public key whose CKA_VERIFY is false cannot verify.
        s.update_attributes(public, &[Attribute::Verify(false)]).unwrap();
        assert_eq!(
            rv_of(s.verify(&mech(CKM_GM_SM2_SM3_SIGN), public, b"m", &[0u8; 64])),
            RvError::KeyFunctionNotPermitted
        );
        // Wrong key type for the mechanism, unknown mechanism.
        assert_eq!(
            rv_of(s.encrypt(&mech(CKM_GM_SM4_CBC_PAD), public, b"x")),
            RvError::MechanismParamInvalid
        );
        assert_eq!(
            rv_of(s.encrypt(&mech_with(CKM_GM_SM4_CBC_PAD, &[0u8; 16]), public, b"x")),
            RvError::KeyTypeInconsistent
        );
        assert_eq!(rv_of(s.sign(&mech(0x8047_4DEE), private, b"x")), RvError::MechanismInvalid);
    }
}

isolated_test! {
    fn sm3_digest_matches_crypto_sm() {
        let (p11, slot) = ready();
        let s = p11.open_ro_session(slot).unwrap();
        let data = vec![0x61u8; 1000];
        let d = s.digest(&mech(CKM_GM_SM3), &data).unwrap();
        assert_eq!(d, crypto_sm::sm3::sm3(&data).as_bytes());
        assert_eq!(
            s.digest(&mech(CKM_GM_SM3), b"abc").unwrap(),
            hex::decode("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0").unwrap()
        );
        s.digest_init(&mech(CKM_GM_SM3)).unwrap();
        s.digest_update(&data[..100]).unwrap();
        s.digest_update(&data[100..]).unwrap();
        assert_eq!(s.digest_final().unwrap(), crypto_sm::sm3::sm3(&data).as_bytes());
    }
}

isolated_test! {
    fn sm4_modes_match_crypto_sm() {
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let value = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
        let key = s
            .create_object(&[
                class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(sm4_type()),
                Attribute::Value(value.clone()),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ])
            .unwrap();
        // Created by value: never local, never "always sensitive"; the value reads back.
        assert!(!bool_attr(&s, key, AttributeType::Local));
        assert!(!bool_attr(&s, key, AttributeType::AlwaysSensitive));
        assert!(!bool_attr(&s, key, AttributeType::NeverExtractable));
        assert_eq!(
            s.get_attributes(key, &[AttributeType::Value]).unwrap(),
            vec![Attribute::Value(value.clone())]
        );
        let soft = Sm4Secret::from_slice(&value).unwrap();
        let data: Vec<u8> = (0..77u8).collect();

        let iv = [0x11u8; 16];
        let ct = s.encrypt(&mech_with(CKM_GM_SM4_CBC_PAD, &iv), key, &data).unwrap();
        assert_eq!(ct, sm4::encrypt(&soft, Sm4Mode::Cbc, &iv, &[], &data).unwrap());
        assert_eq!(s.decrypt(&mech_with(CKM_GM_SM4_CBC_PAD, &iv), key, &ct).unwrap(), data);

        let icb = [0xffu8; 16]; // the 128-bit counter wraps on the second block
        let ct = s.encrypt(&mech_with(CKM_GM_SM4_CTR, &icb), key, &data).unwrap();
        assert_eq!(ct, sm4::encrypt(&soft, Sm4Mode::Ctr, &icb, &[], &data).unwrap());
        assert_eq!(s.decrypt(&mech_with(CKM_GM_SM4_CTR, &icb), key, &ct).unwrap(), data);

        let mut nonce = [0x22u8; 12];
        let aad = b"header";
        let gcm = GcmParams::new(&mut nonce, aad, 128.into()).unwrap();
        let ct = s.encrypt(&mech_with(CKM_GM_SM4_GCM, &gcm), key, &data).unwrap();
        assert_eq!(ct, sm4::encrypt(&soft, Sm4Mode::Gcm, &[0x22u8; 12], aad, &data).unwrap());
        assert_eq!(s.decrypt(&mech_with(CKM_GM_SM4_GCM, &gcm), key, &ct).unwrap(), data);
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(
            rv_of(s.decrypt(&mech_with(CKM_GM_SM4_GCM, &gcm), key, &bad)),
            RvError::EncryptedDataInvalid
        );
        // Multi-part GCM (buffered) gives the same bytes.
        s.encrypt_init(&mech_with(CKM_GM_SM4_GCM, &gcm), key).unwrap();
        let mut multi = s.encrypt_update(&data[..40]).unwrap();
        multi.extend(s.encrypt_update(&data[40..]).unwrap());
        multi.extend(s.encrypt_final().unwrap());
        assert_eq!(multi, ct);
        let mut short_nonce = [0u8; 16];
        let wrong = GcmParams::new(&mut short_nonce, aad, 128.into()).unwrap();
        assert_eq!(
            rv_of(s.encrypt(&mech_with(CKM_GM_SM4_GCM, &wrong), key, &data)),
            RvError::MechanismParamInvalid
        );

        // A generated SM4 key is local and sensitive; it encrypts and decrypts.
        let generated = s
            .generate_key(&mech(CKM_GM_SM4_KEY_GEN), &[Attribute::Token(true), Attribute::Label(b"g".to_vec())])
            .unwrap();
        assert!(bool_attr(&s, generated, AttributeType::Local));
        assert!(bool_attr(&s, generated, AttributeType::AlwaysSensitive));
        let ct = s.encrypt(&mech_with(CKM_GM_SM4_CBC_PAD, &iv), generated, &data).unwrap();
        assert_eq!(s.decrypt(&mech_with(CKM_GM_SM4_CBC_PAD, &iv), generated, &ct).unwrap(), data);
    }
}

isolated_test! {
    fn wrap_and_unwrap_round_trip() {
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let kek = s
            .generate_key(&mech(CKM_GM_SM4_KEY_GEN), &[Attribute::Wrap(true), Attribute::Unwrap(true)])
            .unwrap();
        let iv = [0x33u8; 16];
        let cbc = mech_with(CKM_GM_SM4_CBC_PAD, &iv);

        // An extractable SM4 key wraps to 32 bytes and unwraps to the same key.
        let k = s
            .generate_key(&mech(CKM_GM_SM4_KEY_GEN), &[Attribute::Extractable(true), Attribute::Token(true)])
            .unwrap();
        let wrapped = s.wrap_key(&cbc, kek, k).unwrap();
        assert_eq!(wrapped.len(), 32);
        let back = s
            .unwrap_key(
                &cbc,
                kek,
                &wrapped,
                &[
                    class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(sm4_type()),
                    Attribute::Token(true),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                ],
            )
            .unwrap();
        for t in [AttributeType::Local, AttributeType::AlwaysSensitive, AttributeType::NeverExtractable] {
            assert!(!bool_attr(&s, back, t), "{t:?} must be false after unwrap");
        }
        let probe = b"same key, same ciphertext";
        assert_eq!(
            s.encrypt(&cbc, k, probe).unwrap(),
            s.encrypt(&cbc, back, probe).unwrap()
        );

        // An extractable SM2 private key wraps (GCM) as its 32-byte d and still signs after.
        let (public, private) = sm2_pair(&s, b"\x05", &[Attribute::Extractable(true)]);
        assert!(!bool_attr(&s, private, AttributeType::NeverExtractable));
        // To wrap under GCM the IV is all zero: the token draws the nonce and writes it back
        // into the parameter, which the unwrap below then uses.
        let mut nonce = [0u8; 12];
        let gcm = GcmParams::new(&mut nonce, b"", 128.into()).unwrap();
        let gcm = mech_with(CKM_GM_SM4_GCM, &gcm);
        let wrapped = s.wrap_key(&gcm, kek, private).unwrap();
        assert_eq!(wrapped.len(), 48);
        let back = s
            .unwrap_key(
                &gcm,
                kek,
                &wrapped,
                &[class(ObjectClass::PRIVATE_KEY), Attribute::KeyType(sm2_type()), Attribute::Sign(true)],
            )
            .unwrap();
        let sig = s.sign(&mech(CKM_GM_SM2_SM3_SIGN), back, b"msg").unwrap();
        s.verify(&mech(CKM_GM_SM2_SM3_SIGN), public, b"msg", &sig).unwrap();
        let mut bad = wrapped.clone();
        bad[0] ^= 1;
        let r = s.unwrap_key(&gcm, kek, &bad, &[class(ObjectClass::PRIVATE_KEY), Attribute::KeyType(sm2_type())]);
        assert_eq!(rv_of(r), RvError::WrappedKeyInvalid);
        let r = s.unwrap_key(&gcm, kek, &wrapped, &[class(ObjectClass::PRIVATE_KEY)]);
        assert_eq!(rv_of(r), RvError::TemplateIncomplete);

        // Refusals: unextractable key, a key without CKA_WRAP as the wrapping key.
        let (_, locked) = sm2_pair(&s, b"\x06", &[]);
        assert_eq!(rv_of(s.wrap_key(&cbc, kek, locked)), RvError::KeyUnextractable);
        assert_eq!(rv_of(s.wrap_key(&cbc, k, k)), RvError::KeyFunctionNotPermitted);
    }
}

isolated_test! {
    fn pin_lockout_survives_reinitialisation_and_the_so_unlocks() {
        let (p11, slot) = ready();
        {
            let s = user_session(&p11, slot);
            sm2_pair(&s, b"\x07", &[]);
            s.logout().unwrap();
            for attempt in 1..=4 {
                assert_eq!(
                    rv_of(s.login(UserType::User, Some(&pin("wrong-pin")))),
                    RvError::PinIncorrect,
                    "attempt {attempt}"
                );
            }
            assert!(p11.get_token_info(slot).unwrap().user_pin_final_try());
            assert_eq!(rv_of(s.login(UserType::User, Some(&pin("wrong-pin")))), RvError::PinLocked);
            assert_eq!(rv_of(s.login(UserType::User, Some(&pin(USER_PIN)))), RvError::PinLocked);
        }
        p11.finalize().unwrap();

        // A new C_Initialize (the counter is on disk, not in memory).
        let p11 = load();
        assert!(p11.get_token_info(slot).unwrap().user_pin_locked());
        let s = p11.open_rw_session(slot).unwrap();
        assert_eq!(rv_of(s.login(UserType::User, Some(&pin(USER_PIN)))), RvError::PinLocked);

        // The SO resets the user PIN; the key made before is usable with the new PIN.
        s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        s.init_pin(&pin("brand-new-pin")).unwrap();
        s.logout().unwrap();
        assert!(!p11.get_token_info(slot).unwrap().user_pin_locked());
        s.login(UserType::User, Some(&pin("brand-new-pin"))).unwrap();
        let private = find_one(&s, &[class(ObjectClass::PRIVATE_KEY), Attribute::Id(vec![7])]);
        let public = find_one(&s, &[class(ObjectClass::PUBLIC_KEY), Attribute::Id(vec![7])]);
        let sig = s.sign(&mech(CKM_GM_SM2_SM3_SIGN), private, b"after reset").unwrap();
        s.verify(&mech(CKM_GM_SM2_SM3_SIGN), public, b"after reset", &sig).unwrap();

        // C_SetPIN by the user keeps the keys too.
        assert_eq!(
            rv_of(s.set_pin(&pin("not-the-pin"), &pin("third-pin"))),
            RvError::PinIncorrect
        );
        assert_eq!(rv_of(s.set_pin(&pin("brand-new-pin"), &pin("xyz"))), RvError::PinLenRange);
        s.set_pin(&pin("brand-new-pin"), &pin("third-pin")).unwrap();
        s.logout().unwrap();
        assert_eq!(rv_of(s.login(UserType::User, Some(&pin("brand-new-pin")))), RvError::PinIncorrect);
        s.login(UserType::User, Some(&pin("third-pin"))).unwrap();
        s.sign(&mech(CKM_GM_SM2_SM3_SIGN), private, b"after set-pin").unwrap();
    }
}

isolated_test! {
    fn many_threads_share_the_module() {
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let (public, private) = sm2_pair(&s, b"\x0a", &[]);
        let pk = public_key(&s, public);
        std::thread::scope(|scope| {
            for t in 0..6 {
                let p11 = &p11;
                scope.spawn(move || {
                    let s = p11.open_ro_session(slot).unwrap();
                    for i in 0..15 {
                        let msg = format!("thread {t} message {i}");
                        let sig = s.sign(&mech(CKM_GM_SM2_SM3_SIGN), private, msg.as_bytes()).unwrap();
                        let sig = Signature::from_raw(&sig).unwrap();
                        sm2::verify(&pk, &UserId::default(), msg.as_bytes(), &sig).unwrap();
                        let d = s.digest(&mech(CKM_GM_SM3), msg.as_bytes()).unwrap();
                        assert_eq!(d, crypto_sm::sm3::sm3(msg.as_bytes()).as_bytes());
                    }
                });
            }
            // Meanwhile other sessions write token objects (locks, file replacement, refresh).
            for t in 0..2 {
                let p11 = &p11;
                scope.spawn(move || {
                    let s = p11.open_rw_session(slot).unwrap();
                    for i in 0..4 {
                        let label = format!("writer {t} key {i}").into_bytes();
                        s.generate_key_pair(
                            &mech(CKM_GM_SM2_KEY_PAIR_GEN),
                            &[Attribute::Token(true), Attribute::Label(label.clone())],
                            &[Attribute::Token(true), Attribute::Label(label)],
                        )
                        .unwrap();
                    }
                });
            }
        });
        let all = s.find_objects(&[class(ObjectClass::PRIVATE_KEY)]).unwrap();
        assert_eq!(all.len(), 9);
    }
}

const WORKERS: usize = 2;
const KEYS_PER_WORKER: usize = 6;

#[test]
fn two_processes_share_the_directory() {
    let test = test_path(module_path!(), "two_processes_share_the_directory");
    if is_child(&test) {
        match std::env::var(ROLE).unwrap().as_str() {
            "setup" => {
                ready();
            }
            "check" => {
                let p11 = load();
                let slot = p11.get_slots_with_token().unwrap()[0];
                let s = user_session(&p11, slot);
                for w in 0..WORKERS {
                    for i in 0..KEYS_PER_WORKER {
                        let label = format!("w{w}-k{i}").into_bytes();
                        find_one(
                            &s,
                            &[class(ObjectClass::PRIVATE_KEY), Attribute::Label(label)],
                        );
                    }
                }
                let all = s.find_objects(&[class(ObjectClass::PRIVATE_KEY)]).unwrap();
                assert_eq!(all.len(), WORKERS * KEYS_PER_WORKER);
            }
            worker => {
                let p11 = load();
                let slot = p11.get_slots_with_token().unwrap()[0];
                let s = user_session(&p11, slot);
                for i in 0..KEYS_PER_WORKER {
                    let label = format!("{worker}-k{i}").into_bytes();
                    s.generate_key_pair(
                        &mech(CKM_GM_SM2_KEY_PAIR_GEN),
                        &[Attribute::Token(true), Attribute::Label(label.clone())],
                        &[Attribute::Token(true), Attribute::Label(label)],
                    )
                    .unwrap();
                }
            }
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |role: &str| spawn(&test, dir.path(), &[(ROLE, role)]);
    check_child(&test, run("setup").wait_with_output().unwrap());
    let workers: Vec<_> = (0..WORKERS).map(|w| run(&format!("w{w}"))).collect();
    for w in workers {
        check_child(&test, w.wait_with_output().unwrap());
    }
    check_child(&test, run("check").wait_with_output().unwrap());
}

isolated_test! {
    fn fault_switch_kinds() {
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let (_, private) = sm2_pair(&s, b"\x08", &[]);
        let signed = |s: &Session| s.sign(&mech(CKM_GM_SM2_SM3_SIGN), private, b"m").map(|_| ());

        // 1: every open session is invalidated; new sessions work.
        let other = p11.open_ro_session(slot).unwrap();
        assert_eq!(set_fault(1), 0);
        assert_eq!(rv_of(signed(&s)), RvError::SessionHandleInvalid);
        assert_eq!(rv_of(other.get_session_info()), RvError::SessionHandleInvalid);
        let s = user_session(&p11, slot);
        signed(&s).unwrap();

        // 3: the application is logged out until C_Login.
        assert_eq!(set_fault(3), 0);
        assert_eq!(rv_of(signed(&s)), RvError::UserNotLoggedIn);
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        signed(&s).unwrap();

        // 2: the device is removed until the switch goes back to 0; sessions are gone after.
        assert_eq!(set_fault(2), 0);
        assert_eq!(rv_of(p11.get_slots_with_token()), RvError::DeviceRemoved);
        assert_eq!(rv_of(signed(&s)), RvError::DeviceRemoved);
        assert_eq!(rv_of(p11.open_rw_session(slot)), RvError::DeviceRemoved);
        assert_eq!(set_fault(0), 0);
        assert_eq!(rv_of(signed(&s)), RvError::SessionHandleInvalid);
        let s = user_session(&p11, slot);
        signed(&s).unwrap();
        assert_eq!(set_fault(9), cryptoki_sys::CKR_ARGUMENTS_BAD);
    }
}

#[test]
#[ignore = "timing report, not a test: cargo test -p softtoken --release --test it -- --ignored --nocapture sign_latency"]
fn sign_latency() {
    let test = test_path(module_path!(), "sign_latency");
    if !is_child(&test) {
        let dir = tempfile::tempdir().unwrap();
        let out = spawn(&test, dir.path(), &[]).wait_with_output().unwrap();
        println!("{}", String::from_utf8_lossy(&out.stdout));
        check_child(&test, out);
        return;
    }
    let (p11, slot) = ready();
    let s = user_session(&p11, slot);
    let (_, private) = sm2_pair(&s, b"\x09", &[]);
    let soft = PrivateKey::generate(&SystemRandom).unwrap();
    let id = UserId::default();
    let msg = [7u8; 200];
    const N: u32 = 500;
    for _ in 0..50 {
        s.sign(&mech(CKM_GM_SM2_SM3_SIGN), private, &msg).unwrap();
        soft.sign(&id, &msg, &SystemRandom).unwrap();
    }
    let t = std::time::Instant::now();
    for _ in 0..N {
        soft.sign(&id, &msg, &SystemRandom).unwrap();
    }
    let direct = t.elapsed() / N;
    let t = std::time::Instant::now();
    for _ in 0..N {
        s.sign(&mech(CKM_GM_SM2_SM3_SIGN), private, &msg).unwrap();
    }
    let token = t.elapsed() / N;
    println!(
        "SM2 sign (SM2_SM3, 200-byte message): crypto_sm direct {direct:?}, through cryptoki + softtoken {token:?}, ratio {:.2}",
        token.as_secs_f64() / direct.as_secs_f64()
    );
}
