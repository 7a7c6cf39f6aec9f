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
    let mut nonce = [0x44u8; 12];
    let gcm_params = GcmParams::new(&mut nonce, b"", 128.into()).unwrap();
    let gcm = mech_with(CKM_GM_SM4_GCM, &gcm_params);

    for token in [true, false] {
        let victim = victim(&s, token);
        assert_eq!(value_of(&s, victim), ValueRead::Sensitive, "token {token}");
        for (mech_name, mechanism) in [("CBC-PAD", &cbc), ("GCM", &gcm)] {
            let wrapped = s.wrap_key(mechanism, kek, victim).unwrap();
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
    let d_blob = s.wrap_key(&gcm, kek, sm2_private).unwrap();
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
