//! Session-pool recovery against SoftHSM2, and a self-check that refuses a key created outside
//! the pool. One test function, run in order: each scenario disturbs the whole module
//! (C_CloseAllSessions, C_Logout, C_Finalize), which would break tests running beside it.

mod common;

use common::*;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::UserType;
use hsm::{Hsm, KeyInfo, KeyUri, KeyUsage, danger};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

fn assert_sees_key(hsm: &Hsm, key: &KeyInfo) {
    // A private key is visible only when logged in: finding it proves the login came back.
    let found = hsm.find(&key.uri).expect("operation after recovery");
    assert_eq!(found, vec![key.clone()]);
}

#[test]
fn pool_recovers_and_self_check_refuses_imported_keys() {
    let hsm = open_softhsm(4);
    let key = hsm
        .generate_sm2("recover-1", &[0x77], KeyUsage::Signing)
        .unwrap();
    assert_sees_key(&hsm, &key);

    // 1. Every session closed behind the pool's back (this also logs the application out).
    danger::close_all_sessions(&hsm).unwrap();
    assert_sees_key(&hsm, &key);
    assert_sees_key(&hsm, &key);

    // 2. Logged out, sessions still open.
    danger::logout(&hsm).unwrap();
    assert_sees_key(&hsm, &key);

    // 3. The module finalised (as another component of the process might do).
    danger::finalize_module(&hsm).unwrap();
    assert_sees_key(&hsm, &key);
    assert!(hsm.self_check(Some(&key.uri)).unwrap().passed());

    // 4. Faults while eight threads work: every answer is right, none is an error. The hooks
    //    inject each fault between two operations (SoftHSM crashes when a session is closed or
    //    the module finalised under a running call, which PKCS#11 leaves undefined); the
    //    threads then meet dead sessions, a lost login or an uninitialised module.
    let hsm = Arc::new(hsm);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (hsm, key, stop, done) = (hsm.clone(), key.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(
                        hsm.find(&key.uri).expect("find during faults"),
                        vec![key.clone()]
                    );
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for fault in 0..9 {
        std::thread::sleep(Duration::from_millis(60));
        match fault % 3 {
            0 => danger::close_all_sessions(&hsm).unwrap(),
            1 => danger::logout(&hsm).unwrap(),
            _ => danger::finalize_module(&hsm).unwrap(),
        }
    }
    std::thread::sleep(Duration::from_millis(60));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker saw an error or a wrong answer");
    }
    assert!(done.load(Ordering::Relaxed) > 50, "workers made progress");

    // 5. A key pair created outside the token (CKA_LOCAL false, once extractable and not
    //    sensitive), as a careless tool would import it: the self-check refuses it.
    let d = crypto_sm::sm2::PrivateKey::generate(&crypto_sm::rng::SeededRandom::new(1)).unwrap();
    let sm2_oid = hsm::profile::SM2_EC_PARAMS.to_vec();
    {
        let pkcs11 = cryptoki::context::Pkcs11::new(SOFTHSM_LIB).unwrap();
        let slot = cryptoki::slot::Slot::try_from(hsm.slot_id()).unwrap();
        let session = pkcs11.open_rw_session(slot).unwrap();
        // The application is already logged in through the pool's anchor session.
        let _ = session.login(UserType::User, Some(&USER_PIN.to_string().into()));
        session
            .create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(sm2_oid.clone()),
                Attribute::Value(d.to_bytes().to_vec()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
                Attribute::Sign(true),
                Attribute::Label(b"imported".to_vec()),
                Attribute::Id(vec![0x1d]),
            ])
            .unwrap();
        let mut point = vec![0x04, 65];
        point.extend_from_slice(d.public_key().as_bytes());
        session
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(sm2_oid),
                Attribute::EcPoint(point),
                Attribute::Token(true),
                Attribute::Verify(true),
                Attribute::Label(b"imported".to_vec()),
                Attribute::Id(vec![0x1d]),
            ])
            .unwrap();
    }
    let imported = KeyUri::parse(&format!(
        "pkcs11:token={TOKEN};object=imported;type=private"
    ))
    .unwrap();
    assert_eq!(hsm.public_key(&imported).unwrap(), d.public_key());
    let check = hsm.self_check(Some(&imported)).unwrap();
    assert!(!check.passed(), "{check}");
    let failed: Vec<&str> = check
        .failures()
        .filter_map(|r| r.item.rsplit(": ").next())
        .collect();
    for attr in [
        "CKA_SENSITIVE",
        "CKA_EXTRACTABLE",
        "CKA_ALWAYS_SENSITIVE",
        "CKA_NEVER_EXTRACTABLE",
        "CKA_LOCAL",
    ] {
        assert!(failed.contains(&attr), "{attr} should fail: {check}");
    }
    let whole = hsm.self_check(None).unwrap();
    assert!(!whole.passed());
    assert!(
        whole
            .rows
            .iter()
            .any(|r| r.item.contains("recover-1") && r.ok)
    );
    hsm.delete(&KeyUri::parse("pkcs11:object=imported").unwrap())
        .unwrap();
    assert!(hsm.self_check(None).unwrap().passed());
}
