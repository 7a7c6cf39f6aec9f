//! A sensitive key's value never comes out in clear, by any path (issue 9, defect 6, and the
//! review of its fix).
//!
//! The review found that `C_UnwrapKey` applied the caller's template as given: wrap a sensitive
//! but extractable key under a key-encryption key, unwrap the blob with `CKA_SENSITIVE` false,
//! and read the copy's `CKA_VALUE`. An unwrapped key is now always sensitive and a template asking
//! otherwise is refused. The other ways a value could come out, or a key stop being sensitive,
//! are checked here too: `C_CopyObject` and `C_DeriveKey` (not offered), `C_SetAttributeValue`
//! (`CKA_SENSITIVE` and `CKA_EXTRACTABLE` are one-way), `C_GetAttributeValue` and
//! `C_FindObjects` on `CKA_VALUE`.

use crate::common::*;
use crate::isolated_test;
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

/// The value of the key a logged-in user must never see in clear.
const VICTIM: [u8; 16] = *b"agency-a-sm4-key";
const IV: [u8; 16] = [0x21; 16];

/// The victim: sensitive (its value never reads out) but extractable (it may leave the token
/// wrapped, that is encrypted under a key-encryption key).
fn victim(s: &Session, token: bool) -> ObjectHandle {
    s.create_object(&[
        class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(sm4_type()),
        Attribute::Value(VICTIM.to_vec()),
        Attribute::Token(token),
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
    ])
    .expect("create the victim key")
}

/// What `C_GetAttributeValue` answers for `CKA_VALUE`.
#[derive(Debug, PartialEq, Eq)]
enum ValueRead {
    /// The value, in clear.
    Clear(Vec<u8>),
    /// `CKR_ATTRIBUTE_SENSITIVE`.
    Sensitive,
    /// Anything else.
    Other(String),
}

fn value_of(s: &Session, h: ObjectHandle) -> ValueRead {
    let info = s
        .get_attribute_info(h, &[AttributeType::Value])
        .expect("C_GetAttributeValue");
    match info[0] {
        AttributeInfo::Available(_) => match s.get_attributes(h, &[AttributeType::Value]) {
            Ok(v) => match v.as_slice() {
                [Attribute::Value(bytes)] => ValueRead::Clear(bytes.clone()),
                other => ValueRead::Other(format!("{other:?}")),
            },
            Err(e) => ValueRead::Other(e.to_string()),
        },
        AttributeInfo::Sensitive => ValueRead::Sensitive,
        ref other => ValueRead::Other(format!("{other:?}")),
    }
}

fn sm4_template(extra: &[Attribute]) -> Vec<Attribute> {
    let mut t = vec![
        class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(sm4_type()),
    ];
    t.extend_from_slice(extra);
    t
}

fn object_count(s: &Session) -> usize {
    s.find_objects(&[]).expect("C_FindObjects").len()
}

/// Wraps `key` under `kek` with SM4-GCM; returns the nonce the token drew, and the blob.
fn gcm_wrap(s: &Session, kek: ObjectHandle, key: ObjectHandle) -> ([u8; 12], Vec<u8>) {
    let mut nonce = [0u8; 12];
    let params = GcmParams::new(&mut nonce, b"", 128.into()).unwrap();
    let blob = s
        .wrap_key(&mech_with(CKM_GM_SM4_GCM, &params), kek, key)
        .unwrap();
    (nonce, blob)
}

/// The review's attack, step by step, for SM4 keys under CBC-PAD and GCM and an SM2 private key
/// under GCM; run in a child process whose stderr (the token's log) the parent then reads.
fn unwrap_attack_child() {
    let (p11, slot) = ready();
    let s = user_session(&p11, slot);
    // A key-encryption key as the earlier fix intends it: wrap and unwrap, no encrypt or
    // decrypt (gmchain's own wrapping template, `Sm4KeyOptions { wrapping: true }`, is this).
    let kek = s
        .generate_key(
            &mech(CKM_GM_SM4_KEY_GEN),
            &[Attribute::Wrap(true), Attribute::Unwrap(true)],
        )
        .unwrap();
    let cbc = mech_with(CKM_GM_SM4_CBC_PAD, &IV);

    for token in [true, false] {
        let victim = victim(&s, token);
        assert_eq!(value_of(&s, victim), ValueRead::Sensitive, "token {token}");
        for mech_name in ["CBC-PAD", "GCM"] {
            let (wrapped, mut nonce) = if mech_name == "GCM" {
                let (nonce, blob) = gcm_wrap(&s, kek, victim);
                (blob, nonce)
            } else {
                (s.wrap_key(&cbc, kek, victim).unwrap(), [0; 12])
            };
            let params = GcmParams::new(&mut nonce, b"", 128.into()).unwrap();
            let gcm = mech_with(CKM_GM_SM4_GCM, &params);
            let mechanism = if mech_name == "GCM" { &gcm } else { &cbc };
            let before = object_count(&s);
            for (what, extra) in [
                (
                    "sensitive=false, extractable=true",
                    vec![Attribute::Sensitive(false), Attribute::Extractable(true)],
                ),
                ("sensitive=false", vec![Attribute::Sensitive(false)]),
                (
                    "sensitive=false, token object",
                    vec![Attribute::Sensitive(false), Attribute::Token(true)],
                ),
            ] {
                let what = format!("{mech_name}, victim token={token}, {what}");
                let copy = s.unwrap_key(mechanism, kek, &wrapped, &sm4_template(&extra));
                if let Ok(copy) = copy {
                    assert_ne!(
                        value_of(&s, copy),
                        ValueRead::Clear(VICTIM.to_vec()),
                        "{what}: the victim key was recovered in clear"
                    );
                }
                assert_eq!(rv_of(copy), RvError::TemplateInconsistent, "{what}");
                assert_eq!(object_count(&s), before, "{what}: no object made");
            }

            // What may be unwrapped: a sensitive key, extractable or not. Its value does not
            // read out, and it cannot be made non-sensitive afterwards.
            for extra in [
                vec![],
                vec![Attribute::Sensitive(true)],
                vec![Attribute::Extractable(true)],
            ] {
                let what = format!("{mech_name}, victim token={token}, {extra:?}");
                let copy = s
                    .unwrap_key(mechanism, kek, &wrapped, &sm4_template(&extra))
                    .unwrap();
                assert!(bool_attr(&s, copy, AttributeType::Sensitive), "{what}");
                assert!(
                    !bool_attr(&s, copy, AttributeType::AlwaysSensitive),
                    "{what}"
                );
                assert!(!bool_attr(&s, copy, AttributeType::Local), "{what}");
                assert_eq!(value_of(&s, copy), ValueRead::Sensitive, "{what}");
                assert_eq!(
                    rv_of(s.update_attributes(copy, &[Attribute::Sensitive(false)])),
                    RvError::AttributeReadOnly,
                    "{what}"
                );
                s.destroy_object(copy).unwrap();
            }
        }
    }

    // The refusal is decided before the blob is looked at, so it does not depend on the blob:
    // a blob that would not unwrap gets the same answer (no oracle on the blob either).
    assert_eq!(
        rv_of(s.unwrap_key(
            &cbc,
            kek,
            &[0u8; 32],
            &sm4_template(&[Attribute::Sensitive(false)])
        )),
        RvError::TemplateInconsistent
    );

    // An SM2 private key (wrapped under GCM only) is held to the same rule.
    let (_, sm2_private) = sm2_pair(&s, b"\x5e", &[Attribute::Extractable(true)]);
    let (mut nonce, d_blob) = gcm_wrap(&s, kek, sm2_private);
    let params = GcmParams::new(&mut nonce, b"", 128.into()).unwrap();
    let gcm = mech_with(CKM_GM_SM4_GCM, &params);
    let sm2_t = |extra: &[Attribute]| {
        let mut t = vec![
            class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(sm2_type()),
        ];
        t.extend_from_slice(extra);
        t
    };
    let copy = s.unwrap_key(
        &gcm,
        kek,
        &d_blob,
        &sm2_t(&[Attribute::Sensitive(false), Attribute::Extractable(true)]),
    );
    if let Ok(copy) = copy {
        assert_eq!(
            value_of(&s, copy),
            ValueRead::Sensitive,
            "SM2 d recovered in clear"
        );
    }
    assert_eq!(
        rv_of(copy),
        RvError::TemplateInconsistent,
        "SM2 sensitive=false"
    );
    let copy = s.unwrap_key(&gcm, kek, &d_blob, &sm2_t(&[])).unwrap();
    assert!(bool_attr(&s, copy, AttributeType::Sensitive));
    assert_eq!(value_of(&s, copy), ValueRead::Sensitive);
}

/// The refusal's reason, as the token logs it (stderr).
const LOGGED: &str = "gmchain-softtoken: refused: an unwrapped key is always CKA_SENSITIVE";

#[test]
fn unwrapping_never_makes_a_sensitive_key_readable() {
    let test = test_path(
        module_path!(),
        "unwrapping_never_makes_a_sensitive_key_readable",
    );
    if is_child(&test) {
        unwrap_attack_child();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = spawn(&test, dir.path(), &[]).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    check_child(&test, out);
    // One line per refusal, naming the rule; nothing else of the key's.
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with(LOGGED)).collect();
    assert_eq!(lines.len(), 2 * 2 * 3 + 1 + 1, "stderr:\n{stderr}");
    assert!(
        lines
            .iter()
            .all(|l| l.ends_with("(CKR_TEMPLATE_INCONSISTENT)")),
        "stderr:\n{stderr}"
    );
    assert!(!stderr.contains("agency-a-sm4-key"), "stderr:\n{stderr}");
}

isolated_test! {
    fn copy_and_derive_are_not_offered() {
        // C_CopyObject could copy a key with CKA_SENSITIVE false or CKA_EXTRACTABLE true, and
        // C_DeriveKey could make a key from a sensitive one that is not; the token offers
        // neither, and no mechanism derives.
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let victim = victim(&s, true);
        let before = object_count(&s);
        for template in [
            vec![],
            vec![Attribute::Sensitive(false)],
            vec![Attribute::Extractable(true)],
            vec![Attribute::Token(false)],
        ] {
            assert_eq!(
                rv_of(s.copy_object(victim, &template)),
                RvError::FunctionNotSupported,
                "C_CopyObject {template:?}"
            );
        }
        for m in [CKM_GM_SM4_KEY_GEN, CKM_GM_SM4_CBC_PAD, CKM_GM_SM3] {
            assert_eq!(
                rv_of(s.derive_key(
                    &mech(m),
                    victim,
                    &sm4_template(&[Attribute::Sensitive(false), Attribute::Extractable(true)])
                )),
                RvError::FunctionNotSupported,
                "C_DeriveKey 0x{m:X}"
            );
        }
        assert_eq!(object_count(&s), before);
        for m in p11.get_mechanism_list(slot).unwrap() {
            assert!(!p11.get_mechanism_info(slot, m).unwrap().derive(), "{m} derives");
        }
    }
}

isolated_test! {
    fn a_sensitive_value_never_reads_out() {
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let keygen = mech(CKM_GM_SM4_KEY_GEN);
        let (_, sm2_private) = sm2_pair(&s, b"\x5f", &[Attribute::Extractable(true)]);
        let keys = [
            ("SM4 by value, token", victim(&s, true)),
            ("SM4 by value, session", victim(&s, false)),
            (
                "SM4 generated, extractable",
                s.generate_key(&keygen, &[Attribute::Token(true), Attribute::Extractable(true)])
                    .unwrap(),
            ),
            ("SM4 generated, defaults", s.generate_key(&keygen, &[]).unwrap()),
            ("SM2 private, extractable", sm2_private),
        ];
        for &(what, h) in &keys {
            // C_GetAttributeValue: CKR_ATTRIBUTE_SENSITIVE, no length, no bytes.
            assert_eq!(value_of(&s, h), ValueRead::Sensitive, "{what}");
            // C_SetAttributeValue: CKA_SENSITIVE never goes back to false (and the refusal
            // leaves the key as it was).
            assert_eq!(
                rv_of(s.update_attributes(h, &[Attribute::Sensitive(false)])),
                RvError::AttributeReadOnly,
                "{what}"
            );
            assert!(bool_attr(&s, h, AttributeType::Sensitive), "{what}");
            assert_eq!(value_of(&s, h), ValueRead::Sensitive, "{what}");
        }
        // C_FindObjects: a guess at a sensitive value never matches, so a search is no oracle.
        assert!(s.find_objects(&[Attribute::Value(VICTIM.to_vec())]).unwrap().is_empty());
        // Once unextractable, always unextractable (a copy that wraps out cannot be made either).
        let k = s.generate_key(&keygen, &[Attribute::Token(true)]).unwrap();
        assert_eq!(
            rv_of(s.update_attributes(k, &[Attribute::Extractable(true)])),
            RvError::AttributeReadOnly
        );
        // After logging out and in again (token object handles stay valid), still sensitive.
        s.logout().unwrap();
        s.login(cryptoki::session::UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(value_of(&s, keys[0].1), ValueRead::Sensitive);

        // The control: a key made non-sensitive and extractable reads back through the same
        // path, so the refusals above are the token's rule, not a broken read.
        let readable = s
            .create_object(&sm4_template(&[
                Attribute::Value(vec![7; 16]),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ]))
            .unwrap();
        assert_eq!(value_of(&s, readable), ValueRead::Clear(vec![7; 16]));
    }
}

/// Decrypts a CBC-PAD blob outside the token, with a key value the caller knows.
fn decrypt_outside(key: &[u8; 16], blob: &[u8]) -> Option<Vec<u8>> {
    let key = crypto_sm::sm4::Sm4Secret::from_slice(key).ok()?;
    crypto_sm::sm4::decrypt(&key, crypto::Sm4Mode::Cbc, &IV, b"", blob)
        .ok()
        .map(|v| v.expose().to_vec())
}

/// Wraps `victim` under `kek` (CBC-PAD) and decrypts the blob outside with `known`, the value
/// the caller believes `kek` has. Returns what that gave, if the token wrapped.
fn wrap_and_open_outside(
    s: &Session,
    kek: ObjectHandle,
    known: &[u8; 16],
    victim: ObjectHandle,
) -> Option<Vec<u8>> {
    let blob = s
        .wrap_key(&mech_with(CKM_GM_SM4_CBC_PAD, &IV), kek, victim)
        .ok()?;
    decrypt_outside(known, &blob)
}

isolated_test! {
    fn no_key_that_wraps_has_a_value_known_outside() {
        // A key that wraps, and whose value is known outside the token, gives every extractable
        // key in clear: wrap it, and decrypt the blob outside. So does a key that wraps and has
        // a copy that decrypts. A key may wrap only if it was generated on the token, has always
        // been sensitive and never extractable: no value known, no copy.
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let victim = victim(&s, true);
        let keygen = mech(CKM_GM_SM4_KEY_GEN);
        let cbc = mech_with(CKM_GM_SM4_CBC_PAD, &IV);
        let kek = s
            .generate_key(&keygen, &[Attribute::Wrap(true), Attribute::Unwrap(true)])
            .unwrap();
        let known = [0x6bu8; 16];
        let by_value = |extra: &[Attribute]| {
            let mut t = sm4_template(&[Attribute::Value(known.to_vec())]);
            t.extend_from_slice(extra);
            s.create_object(&t)
        };
        let check = |what: &str, made: cryptoki::error::Result<ObjectHandle>, value: &[u8; 16]| {
            if let Ok(k) = &made {
                assert_ne!(
                    wrap_and_open_outside(&s, *k, value, victim).as_deref(),
                    Some(&VICTIM[..]),
                    "{what}: the victim key was recovered in clear"
                );
            }
            assert_eq!(rv_of(made), RvError::TemplateInconsistent, "{what}");
        };

        // 1. Created by value as a wrapping key (gmchain's wrapping template, or wrap alone).
        check(
            "C_CreateObject wrap+unwrap",
            by_value(&[Attribute::Wrap(true), Attribute::Unwrap(true)]),
            &known,
        );
        check("C_CreateObject wrap", by_value(&[Attribute::Wrap(true)]), &known);

        // 2. Generated as a wrapping key that is not sensitive: its value reads out.
        let r = s.generate_key(
            &keygen,
            &[Attribute::Wrap(true), Attribute::Sensitive(false), Attribute::Extractable(true)],
        );
        if let Ok(k) = &r
            && let ValueRead::Clear(v) = value_of(&s, *k)
        {
            let v: [u8; 16] = v.try_into().unwrap();
            assert_ne!(
                wrap_and_open_outside(&s, *k, &v, victim).as_deref(),
                Some(&VICTIM[..]),
                "generated non-sensitive wrapping key: the victim key was recovered in clear"
            );
        }
        assert_eq!(rv_of(r), RvError::TemplateInconsistent, "generated, non-sensitive");

        // 3. Unwrapped as a wrapping key: the blob may hold a key whose value the caller knows
        //    (here one made by value, extractable, wrapped under the KEK).
        let known_key = by_value(&[Attribute::Extractable(true)]).unwrap();
        let blob = s.wrap_key(&cbc, kek, known_key).unwrap();
        check(
            "C_UnwrapKey as a wrapping key",
            s.unwrap_key(&cbc, kek, &blob, &sm4_template(&[Attribute::Wrap(true)])),
            &known,
        );

        // 4. Generated as an extractable wrapping key: wrapped out and unwrapped as a data key,
        //    its copy decrypts what it wraps.
        let r = s.generate_key(&keygen, &[Attribute::Wrap(true), Attribute::Extractable(true)]);
        if let Ok(w) = &r {
            let w_blob = s.wrap_key(&cbc, kek, *w).unwrap();
            let copy = s
                .unwrap_key(&cbc, kek, &w_blob, &sm4_template(&[Attribute::Decrypt(true)]))
                .unwrap();
            let wrapped_victim = s.wrap_key(&cbc, *w, victim).unwrap();
            assert_ne!(
                s.decrypt(&cbc, copy, &wrapped_victim).ok().as_deref(),
                Some(&VICTIM[..]),
                "extractable wrapping key: its unwrapped copy decrypted the victim key"
            );
        }
        assert_eq!(rv_of(r), RvError::TemplateInconsistent, "generated, extractable");

        // 5. C_SetAttributeValue CKA_WRAP on a key whose value is known, or that was ever
        //    extractable or non-sensitive: refused, and the key is unchanged.
        let none = [Attribute::Encrypt(false), Attribute::Decrypt(false)];
        let readable = s
            .generate_key(
                &keygen,
                &[none.as_slice(), &[Attribute::Sensitive(false), Attribute::Extractable(true)]]
                    .concat(),
            )
            .unwrap();
        let ValueRead::Clear(readable_value) = value_of(&s, readable) else {
            panic!("the control key reads out");
        };
        let readable_value: [u8; 16] = readable_value.try_into().unwrap();
        s.update_attributes(readable, &[Attribute::Sensitive(true), Attribute::Extractable(false)])
            .unwrap();
        let was_extractable = s
            .generate_key(&keygen, &[none.as_slice(), &[Attribute::Extractable(true)]].concat())
            .unwrap();
        s.update_attributes(was_extractable, &[Attribute::Extractable(false)]).unwrap();
        for (what, k, value) in [
            ("by value", by_value(&none).unwrap(), known),
            ("once non-sensitive", readable, readable_value),
            ("once extractable", was_extractable, [0; 16]),
        ] {
            let r = s.update_attributes(k, &[Attribute::Wrap(true)]);
            if r.is_ok() {
                assert_ne!(
                    wrap_and_open_outside(&s, k, &value, victim).as_deref(),
                    Some(&VICTIM[..]),
                    "C_SetAttributeValue CKA_WRAP {what}: the victim key was recovered in clear"
                );
            }
            assert_eq!(rv_of(r), RvError::TemplateInconsistent, "C_SetAttributeValue {what}");
            assert!(!bool_attr(&s, k, AttributeType::Wrap), "{what}: unchanged");
        }

        // What is allowed: a generated, sensitive, unextractable key wraps (made so, or given
        // CKA_WRAP later); a key of any origin may unwrap (what it makes is a key whose value
        // may be known, like one made by value, and it never wraps).
        let later = s.generate_key(&keygen, &none).unwrap();
        s.update_attributes(later, &[Attribute::Wrap(true)]).unwrap();
        assert!(s.wrap_key(&cbc, later, victim).is_ok());
        let unwrapper = by_value(&[Attribute::Unwrap(true)]).unwrap();
        let blob = cbc_raw_pad(&known, &[9; 16]);
        let imported = s.unwrap_key(&cbc, unwrapper, &blob, &sm4_template(&[])).unwrap();
        assert!(bool_attr(&s, imported, AttributeType::Sensitive));
        assert!(!bool_attr(&s, imported, AttributeType::Wrap));
    }
}

/// SM4-CBC-PAD under `key` with the test IV, computed outside the token.
fn cbc_raw_pad(key: &[u8; 16], plain: &[u8]) -> Vec<u8> {
    let key = crypto_sm::sm4::Sm4Secret::from_slice(key).unwrap();
    crypto_sm::sm4::encrypt(&key, crypto::Sm4Mode::Cbc, &IV, b"", plain).unwrap()
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

isolated_test! {
    fn a_gcm_wrap_never_shares_its_keystream() {
        // SM4-GCM encrypts by XOR with a keystream fixed by the key and the nonce. Two wraps
        // under one key-encryption key and one nonce, one of a key whose value the caller knows,
        // give the other in clear (c1 ⊕ c2 ⊕ known); and a wrapping key that may also encrypt
        // (CTR or GCM, caller's counter block or nonce) gives the keystream of any wrap. So
        // C_WrapKey with GCM takes no nonce from the caller (the token draws it and writes it
        // back to CK_GCM_PARAMS.pIv), and a key that wraps does not encrypt.
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let victim = victim(&s, true);
        let keygen = mech(CKM_GM_SM4_KEY_GEN);
        let kek = s
            .generate_key(&keygen, &[Attribute::Wrap(true), Attribute::Unwrap(true)])
            .unwrap();
        let known = [0x6bu8; 16];
        let known_key = s
            .create_object(&sm4_template(&[
                Attribute::Value(known.to_vec()),
                Attribute::Extractable(true),
            ]))
            .unwrap();

        // 1. One nonce for two wraps, chosen by the caller.
        let chosen = [0x44u8; 12];
        let mut n1 = chosen;
        let p1 = GcmParams::new(&mut n1, b"", 128.into()).unwrap();
        let c1 = s.wrap_key(&mech_with(CKM_GM_SM4_GCM, &p1), kek, known_key);
        let mut n2 = chosen;
        let p2 = GcmParams::new(&mut n2, b"", 128.into()).unwrap();
        let c2 = s.wrap_key(&mech_with(CKM_GM_SM4_GCM, &p2), kek, victim);
        if let (Ok(c1), Ok(c2)) = (&c1, &c2) {
            assert_ne!(
                xor(&xor(&c1[..16], &c2[..16]), &known),
                VICTIM.to_vec(),
                "one GCM nonce for two wraps: the victim key was recovered in clear"
            );
        }
        assert_eq!(rv_of(c1), RvError::MechanismParamInvalid, "a caller's GCM nonce for C_WrapKey");
        assert_eq!(rv_of(c2), RvError::MechanismParamInvalid);

        // The way to wrap with GCM: an all-zero nonce, which the token replaces with a fresh one
        // and returns; two wraps get two nonces, and each blob unwraps with its own.
        let mut blobs = Vec::new();
        for k in [known_key, victim] {
            let mut nonce = [0u8; 12];
            let p = GcmParams::new(&mut nonce, b"", 128.into()).unwrap();
            let gcm = mech_with(CKM_GM_SM4_GCM, &p);
            let blob = s.wrap_key(&gcm, kek, k).unwrap();
            // The parameter now holds the nonce the token drew (the mechanism points at it).
            let copy = s.unwrap_key(&gcm, kek, &blob, &sm4_template(&[])).unwrap();
            assert!(bool_attr(&s, copy, AttributeType::Sensitive));
            assert_ne!(nonce, [0u8; 12], "the token wrote its nonce back");
            blobs.push((nonce, blob));
        }
        assert_ne!(blobs[0].0, blobs[1].0, "a fresh nonce per wrap");
        assert_ne!(
            xor(&xor(&blobs[0].1[..16], &blobs[1].1[..16]), &known),
            VICTIM.to_vec()
        );
        // (cryptoki's wrap_key asks for the length first, with the same parameter: that call
        // draws no nonce, or the second would find a non-zero one and be refused.)

        // 2. A key that wraps and encrypts: CTR over its GCM nonce's counter gives the keystream.
        let r = s.generate_key(&keygen, &[Attribute::Wrap(true), Attribute::Encrypt(true)]);
        if let Ok(w) = &r {
            let mut nonce = [0u8; 12];
            let p = GcmParams::new(&mut nonce, b"", 128.into()).unwrap();
            let blob = s.wrap_key(&mech_with(CKM_GM_SM4_GCM, &p), *w, victim).unwrap();
            // GCM's first keystream block is E(nonce ‖ 0x00000002).
            let mut icb = [0u8; 16];
            icb[..12].copy_from_slice(&nonce);
            icb[15] = 2;
            let stream = s.encrypt(&mech_with(CKM_GM_SM4_CTR, &icb), *w, &[0u8; 16]).unwrap();
            assert_ne!(
                xor(&blob[..16], &stream),
                VICTIM.to_vec(),
                "wrap and encrypt: the victim key was recovered in clear"
            );
        }
        assert_eq!(rv_of(r), RvError::TemplateInconsistent, "a key that wraps and encrypts");
    }
}

isolated_test! {
    fn a_key_that_wrapped_never_turns_to_data() {
        // The usage rules look at one moment: a key that wraps cannot decrypt. Over time, a key
        // could wrap, give up CKA_WRAP, take CKA_DECRYPT (or CKA_ENCRYPT) and open the blobs it
        // made. So CKA_WRAP never goes back to false: a key that may have wrapped stays a
        // key-encryption key.
        let (p11, slot) = ready();
        let s = user_session(&p11, slot);
        let victim = victim(&s, true);
        let keygen = mech(CKM_GM_SM4_KEY_GEN);
        let cbc = mech_with(CKM_GM_SM4_CBC_PAD, &IV);
        for token in [true, false] {
            let what = if token { "token object" } else { "session object" };
            let w = s
                .generate_key(&keygen, &[Attribute::Token(token), Attribute::Wrap(true)])
                .unwrap();
            let blob = s.wrap_key(&cbc, w, victim).unwrap();
            let (nonce, gcm_blob) = gcm_wrap(&s, w, victim);
            let dropped = s.update_attributes(w, &[Attribute::Wrap(false)]);
            if dropped.is_ok() {
                if s.update_attributes(w, &[Attribute::Decrypt(true)]).is_ok() {
                    assert_ne!(
                        s.decrypt(&cbc, w, &blob).ok().as_deref(),
                        Some(&VICTIM[..]),
                        "{what}: wrap, drop CKA_WRAP, decrypt: the victim key was recovered"
                    );
                }
                if s.update_attributes(w, &[Attribute::Encrypt(true)]).is_ok() {
                    let mut icb = [0u8; 16];
                    icb[..12].copy_from_slice(&nonce);
                    icb[15] = 2;
                    let stream =
                        s.encrypt(&mech_with(CKM_GM_SM4_CTR, &icb), w, &[0u8; 16]).unwrap();
                    assert_ne!(
                        xor(&gcm_blob[..16], &stream),
                        VICTIM.to_vec(),
                        "{what}: wrap, drop CKA_WRAP, encrypt: the victim key was recovered"
                    );
                }
            }
            assert_eq!(rv_of(dropped), RvError::AttributeReadOnly, "{what}");
            assert!(bool_attr(&s, w, AttributeType::Wrap), "{what}");
            // In one template, too.
            assert_eq!(
                rv_of(s.update_attributes(w, &[Attribute::Wrap(false), Attribute::Decrypt(true)])),
                RvError::AttributeReadOnly,
                "{what}: one template"
            );
            // Relabelling, and setting CKA_WRAP to what it is, stay allowed.
            s.update_attributes(w, &[Attribute::Label(b"kek".to_vec()), Attribute::Wrap(true)])
                .unwrap();
        }
    }
}
