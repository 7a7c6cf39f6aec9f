//! Unit tests of [`Module`]: the PKCS#11 functions as safe Rust calls.

use super::*;
use crate::attr::{Attr, Template};
use crate::mechanism::{Mechanism, RawParam};
use crate::object::AttrRead;
use crate::vendor::*;
use crypto_sm::rng::SeededRandom;
use std::path::Path;

const SO: &[u8] = b"so-pin-1234";
const USER: &[u8] = b"user-pin-1234";

fn module(dir: &Path) -> Module {
    let config = Config {
        dir: dir.to_path_buf(),
        slots: 2,
        faults: true,
    };
    Module::new(&config, Arc::new(SeededRandom::new(7))).unwrap()
}

fn t(attrs: Vec<Attr>) -> Template {
    Template::new(attrs).unwrap()
}

fn mech(m: CK_MECHANISM_TYPE) -> Mechanism {
    Mechanism::parse(m, RawParam::Bytes(&[])).unwrap()
}

fn rv<T: core::fmt::Debug>(r: Result<T>) -> CK_RV {
    r.map(|_| CKR_OK).unwrap_or_else(|e| e.rv())
}

fn run(step: Step<'_>) -> Vec<u8> {
    match step {
        Step::Run(job) => job.run().unwrap().to_vec(),
        Step::Done(b) => b.to_vec(),
        other => panic!("expected output, got {other:?}"),
    }
}

/// Initialises slot 0 with the SO and user PINs and returns a logged-in RW session.
fn ready(m: &mut Module) -> CK_SESSION_HANDLE {
    m.init_token(0, SO, &crate::token::pad_label(b"test"))
        .unwrap();
    let s = m
        .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    m.login(s, CKU_SO, SO).unwrap();
    m.init_pin(s, USER).unwrap();
    m.logout(s).unwrap();
    m.login(s, CKU_USER, USER).unwrap();
    s
}

fn keypair(
    m: &mut Module,
    s: CK_SESSION_HANDLE,
    token: bool,
    private_extra: Vec<Attr>,
) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let mut privt = vec![
        Attr::bool(CKA_TOKEN, token),
        Attr::new(CKA_LABEL, b"k".to_vec()),
    ];
    privt.extend(private_extra);
    m.generate_key_pair(
        s,
        &mech(CKM_GM_SM2_KEY_PAIR_GEN),
        &t(vec![
            Attr::bool(CKA_TOKEN, token),
            Attr::bool(CKA_ENCRYPT, true),
        ]),
        &t(privt),
    )
    .unwrap()
}

fn files_contain(dir: &Path, needle: &[u8]) -> bool {
    let hex_lower = hex::encode(needle);
    let hex_upper = hex_lower.to_uppercase();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            let has = |n: &[u8]| bytes.windows(n.len()).any(|w| w == n);
            if has(needle) || has(hex_lower.as_bytes()) || has(hex_upper.as_bytes()) {
                return true;
            }
        }
    }
    false
}

#[test]
fn token_init_and_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = module(dir.path());
    let info = m.token_info(0).unwrap();
    assert_eq!(info.flags & CKF_TOKEN_INITIALIZED, 0);
    assert_eq!(
        rv(m.open_session(0, CKF_SERIAL_SESSION)),
        CKR_TOKEN_NOT_RECOGNIZED
    );
    assert_eq!(
        rv(m.open_session(9, CKF_SERIAL_SESSION)),
        CKR_SLOT_ID_INVALID
    );
    m.init_token(0, SO, &crate::token::pad_label(b"t")).unwrap();
    let info = m.token_info(0).unwrap();
    assert_ne!(info.flags & CKF_TOKEN_INITIALIZED, 0);
    assert_eq!(info.flags & CKF_USER_PIN_INITIALIZED, 0);
    assert_eq!(&info.label[..2], b"t ");
    assert!(info.serial.iter().all(u8::is_ascii_hexdigit));

    assert_eq!(
        rv(m.open_session(0, CKF_RW_SESSION)),
        CKR_SESSION_PARALLEL_NOT_SUPPORTED
    );
    let ro = m.open_session(0, CKF_SERIAL_SESSION).unwrap();
    assert_eq!(m.session_info(ro).unwrap().state, CKS_RO_PUBLIC_SESSION);
    // No SO login while a read-only session exists; no re-init while sessions exist.
    assert_eq!(rv(m.login(ro, CKU_SO, SO)), CKR_SESSION_READ_ONLY_EXISTS);
    assert_eq!(rv(m.init_token(0, SO, &[b' '; 32])), CKR_SESSION_EXISTS);
    assert_eq!(
        rv(m.login(ro, CKU_USER, USER)),
        CKR_USER_PIN_NOT_INITIALIZED
    );
    m.close_session(ro).unwrap();
    assert_eq!(rv(m.session_info(ro)), CKR_SESSION_HANDLE_INVALID);

    let rw = m
        .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    m.login(rw, CKU_SO, SO).unwrap();
    assert_eq!(m.session_info(rw).unwrap().state, CKS_RW_SO_FUNCTIONS);
    assert_eq!(rv(m.login(rw, CKU_SO, SO)), CKR_USER_ALREADY_LOGGED_IN);
    assert_eq!(
        rv(m.login(rw, CKU_USER, USER)),
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN
    );
    assert_eq!(
        rv(m.open_session(0, CKF_SERIAL_SESSION)),
        CKR_SESSION_READ_WRITE_SO_EXISTS
    );
    assert_eq!(rv(m.init_pin(rw, b"abc")), CKR_PIN_LEN_RANGE);
    m.init_pin(rw, USER).unwrap();
    m.logout(rw).unwrap();
    assert_eq!(rv(m.logout(rw)), CKR_USER_NOT_LOGGED_IN);
    m.login(rw, CKU_USER, USER).unwrap();
    assert_eq!(m.session_info(rw).unwrap().state, CKS_RW_USER_FUNCTIONS);
    // Login is per token: a new session is logged in too; closing the last one logs out.
    let ro2 = m.open_session(0, CKF_SERIAL_SESSION).unwrap();
    assert_eq!(m.session_info(ro2).unwrap().state, CKS_RO_USER_FUNCTIONS);
    m.close_session(rw).unwrap();
    m.close_session(ro2).unwrap();
    let again = m.open_session(0, CKF_SERIAL_SESSION).unwrap();
    assert_eq!(m.session_info(again).unwrap().state, CKS_RO_PUBLIC_SESSION);

    // Re-initialising needs the SO PIN and wipes everything.
    m.close_all_sessions(0).unwrap();
    let before = m.token_info(0).unwrap().serial;
    assert_eq!(
        rv(m.init_token(0, b"wrong-so", &[b' '; 32])),
        CKR_PIN_INCORRECT
    );
    m.init_token(0, SO, &crate::token::pad_label(b"again"))
        .unwrap();
    let after = m.token_info(0).unwrap();
    assert_ne!(after.serial, before);
    assert_eq!(after.flags & CKF_USER_PIN_INITIALIZED, 0);
}

#[test]
fn pin_attempt_is_counted_on_disk_before_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = module(dir.path());
    let s = ready(&mut m);
    m.logout(s).unwrap();
    // Simulate a crash right after the count was written: even a correct PIN leaves the
    // counter at 1 on disk, so killing the process cannot make a guess free.
    m.tokens[0].crash_after_count = true;
    assert_eq!(rv(m.login(s, CKU_USER, USER)), CKR_GENERAL_ERROR);
    m.tokens[0].crash_after_count = false;
    let on_disk = SlotStore::create(dir.path().join("slot0"))
        .unwrap()
        .load()
        .unwrap();
    assert_eq!(on_disk.record.unwrap().user_failures, 1);
    // A successful login resets it.
    m.login(s, CKU_USER, USER).unwrap();
    let on_disk = SlotStore::create(dir.path().join("slot0"))
        .unwrap()
        .load()
        .unwrap();
    assert_eq!(on_disk.record.unwrap().user_failures, 0);
}

#[test]
fn user_pin_lockout_and_so_reset() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = module(dir.path());
    let s = ready(&mut m);
    let (_, private) = keypair(&mut m, s, true, vec![]);
    m.logout(s).unwrap();
    assert_eq!(rv(m.login(s, CKU_USER, b"xy")), CKR_PIN_LEN_RANGE);
    for i in 1..=4 {
        assert_eq!(
            rv(m.login(s, CKU_USER, b"wrong-pin")),
            CKR_PIN_INCORRECT,
            "attempt {i}"
        );
        let f = m.token_info(0).unwrap().flags;
        assert_ne!(f & CKF_USER_PIN_COUNT_LOW, 0);
        assert_eq!(f & CKF_USER_PIN_FINAL_TRY != 0, i == 4);
    }
    assert_eq!(rv(m.login(s, CKU_USER, b"wrong-pin")), CKR_PIN_LOCKED);
    assert_eq!(rv(m.login(s, CKU_USER, USER)), CKR_PIN_LOCKED);
    assert_ne!(m.token_info(0).unwrap().flags & CKF_USER_PIN_LOCKED, 0);

    // The lock survives a new module (a new process) over the same directory.
    drop(m);
    let mut m = module(dir.path());
    let s = m
        .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    assert_eq!(rv(m.login(s, CKU_USER, USER)), CKR_PIN_LOCKED);

    // The SO sets a new user PIN, which unlocks; the keys are still usable.
    m.login(s, CKU_SO, SO).unwrap();
    m.init_pin(s, b"new-user-pin").unwrap();
    m.logout(s).unwrap();
    assert_eq!(m.token_info(0).unwrap().flags & CKF_USER_PIN_LOCKED, 0);
    m.login(s, CKU_USER, b"new-user-pin").unwrap();
    // Handles are per process: find the key again in this "process".
    let _ = private;
    m.find_init(s, &t(vec![Attr::ulong(CKA_CLASS, CKO_PRIVATE_KEY)]))
        .unwrap();
    let found = m.find(s, 10).unwrap();
    assert_eq!(found.len(), 1);
    let private = found[0];
    m.sign_init(s, &mech(CKM_GM_SM2_SIGN), private).unwrap();
    assert_eq!(
        run(m.sign(s, &[5u8; 32], OutSpace::Capacity(64)).unwrap()).len(),
        64
    );
}

#[test]
fn set_pin_rewraps_and_counts_the_old_pin() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = module(dir.path());
    let s = ready(&mut m);
    let (_, private) = keypair(&mut m, s, true, vec![]);
    assert_eq!(
        rv(m.set_pin(s, b"not-the-pin", b"next-pin")),
        CKR_PIN_INCORRECT
    );
    assert_eq!(
        m.token_info(0).unwrap().flags & CKF_USER_PIN_COUNT_LOW,
        CKF_USER_PIN_COUNT_LOW
    );
    m.set_pin(s, USER, b"next-pin").unwrap();
    m.logout(s).unwrap();
    assert_eq!(rv(m.login(s, CKU_USER, USER)), CKR_PIN_INCORRECT);
    m.login(s, CKU_USER, b"next-pin").unwrap();
    m.sign_init(s, &mech(CKM_GM_SM2_SIGN), private).unwrap();
    assert_eq!(
        run(m.sign(s, &[1u8; 32], OutSpace::Capacity(64)).unwrap()).len(),
        64
    );
    let ro = m.open_session(0, CKF_SERIAL_SESSION).unwrap();
    assert_eq!(
        rv(m.set_pin(ro, b"next-pin", b"other-pin")),
        CKR_SESSION_READ_ONLY
    );
}

#[test]
fn no_plaintext_secret_reaches_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = module(dir.path());
    let s = ready(&mut m);
    let (_, private) = keypair(&mut m, s, true, vec![]);
    let sm4 = m
        .generate_key(
            s,
            &mech(CKM_GM_SM4_KEY_GEN),
            &t(vec![Attr::bool(CKA_TOKEN, true)]),
        )
        .unwrap();
    let imported = m
        .create_object(
            s,
            &t(vec![
                Attr::ulong(CKA_CLASS, CKO_SECRET_KEY),
                Attr::ulong(CKA_KEY_TYPE, CKK_GM_SM4),
                Attr::bool(CKA_TOKEN, true),
                Attr::new(CKA_VALUE, vec![0x5a; 16]),
            ]),
        )
        .unwrap();
    let mut secrets = Vec::new();
    for h in [private, sm4, imported] {
        let (slot, obj) = m.lookup(s, h, Role::Key).unwrap();
        assert!(matches!(obj.material, Material::Sealed(_)));
        secrets.push(m.tokens[slot].plain(&obj).unwrap().bytes().to_vec());
    }
    assert_eq!(secrets[0].len(), 32);
    assert_eq!(secrets[2], vec![0x5a; 16]);
    for secret in &secrets {
        assert!(
            !files_contain(dir.path(), secret),
            "a secret value is on disk"
        );
    }
    // Nor the token key, nor the PINs.
    assert!(!files_contain(dir.path(), USER));
    assert!(!files_contain(dir.path(), SO));
}

#[test]
fn a_tampered_token_file_is_a_device_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = module(dir.path());
    let s = ready(&mut m);
    keypair(&mut m, s, true, vec![]);
    drop(m);
    let path = dir.path().join("slot0").join("token.json");
    let text = std::fs::read_to_string(&path).unwrap();
    // Flip one hex digit of the sealed private key.
    let at = text.find("\"sealed\"").unwrap();
    let at = at + text[at..].find("\"ciphertext\": \"").unwrap() + 15;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&path, &bytes).unwrap();
    let mut m = module(dir.path());
    let s = m.open_session(0, CKF_SERIAL_SESSION).unwrap();
    m.login(s, CKU_USER, USER).unwrap();
    m.find_init(s, &t(vec![Attr::ulong(CKA_CLASS, CKO_PRIVATE_KEY)]))
        .unwrap();
    let private = m.find(s, 1).unwrap()[0];
    assert_eq!(
        rv(m.sign_init(s, &mech(CKM_GM_SM2_SIGN), private)),
        CKR_DEVICE_ERROR
    );
    // A file that does not parse is an error naming the file.
    std::fs::write(&path, b"{\"format\": 1}").unwrap();
    let mut m = module(dir.path());
    let err = m.token_info(0).unwrap_err();
    assert_eq!(err.rv(), CKR_DEVICE_ERROR);
    assert!(err.to_string().contains("token.json"), "{err}");
}

#[test]
fn attributes_of_generated_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = module(dir.path());
    let s = ready(&mut m);
    let (public, private) = keypair(&mut m, s, true, vec![Attr::new(CKA_ID, vec![7])]);
    let r = m
        .get_attributes(
            s,
            private,
            &[
                CKA_LOCAL,
                CKA_ALWAYS_SENSITIVE,
                CKA_NEVER_EXTRACTABLE,
                CKA_VALUE,
                0x7fff_fff0,
                CKA_EC_PARAMS,
                CKA_ID,
            ],
        )
        .unwrap();
    let yes = AttrRead::Value(Zeroizing::new(vec![1]));
    assert_eq!(r[0], yes);
    assert_eq!(r[1], yes);
    assert_eq!(r[2], yes);
    assert_eq!(r[3], AttrRead::Sensitive);
    assert_eq!(r[4], AttrRead::Invalid);
    assert_eq!(
        r[5],
        AttrRead::Value(Zeroizing::new(SM2_EC_PARAMS.to_vec()))
    );
    assert_eq!(r[6], AttrRead::Value(Zeroizing::new(vec![7])));
    let r = m
        .get_attributes(s, public, &[CKA_EC_POINT, CKA_VALUE])
        .unwrap();
    let AttrRead::Value(p) = &r[0] else { panic!() };
    assert_eq!((p.len(), p[0], p[1], p[2]), (67, 0x04, 65, 0x04));
    assert_eq!(r[1], AttrRead::Invalid);
    // Search: by class, by id; private objects vanish on logout.
    let find = |m: &mut Module, tpl: Vec<Attr>| {
        m.find_init(s, &t(tpl)).unwrap();
        let h = m.find(s, 100).unwrap();
        m.find_final(s).unwrap();
        h
    };
    assert_eq!(
        find(&mut m, vec![Attr::ulong(CKA_CLASS, CKO_PRIVATE_KEY)]),
        vec![private]
    );
    assert_eq!(
        find(&mut m, vec![Attr::new(CKA_ID, vec![7])]),
        vec![private]
    );
    assert_eq!(find(&mut m, vec![]).len(), 2);
    m.logout(s).unwrap();
    assert_eq!(find(&mut m, vec![]), vec![public]);
    assert_eq!(
        rv(m.get_attributes(s, private, &[CKA_LABEL])),
        CKR_USER_NOT_LOGGED_IN
    );
}

#[test]
fn key_usage_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = module(dir.path());
    let s = ready(&mut m);
    let (public, private) = keypair(&mut m, s, false, vec![Attr::bool(CKA_DECRYPT, false)]);
    assert_eq!(
        rv(m.decrypt_init(s, &mech(CKM_GM_SM2_ENCRYPT), private)),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    assert_eq!(
        rv(m.sign_init(s, &mech(CKM_GM_SM2_SIGN), public)),
        CKR_KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        rv(m.sign_init(s, &mech(CKM_GM_SM3), private)),
        CKR_MECHANISM_INVALID
    );
    assert_eq!(
        rv(m.sign_init(s, &mech(CKM_GM_SM2_SIGN), 9999)),
        CKR_KEY_HANDLE_INVALID
    );
    let sm4 = m
        .generate_key(
            s,
            &mech(CKM_GM_SM4_KEY_GEN),
            &t(vec![Attr::bool(CKA_ENCRYPT, false)]),
        )
        .unwrap();
    let cbc = Mechanism::parse(CKM_GM_SM4_CBC_PAD, RawParam::Bytes(&[0; 16])).unwrap();
    assert_eq!(
        rv(m.encrypt_init(s, &cbc, sm4)),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    assert_eq!(
        rv(m.wrap_key(s, &cbc, sm4, sm4, OutSpace::Query)),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    m.decrypt_init(s, &cbc, sm4).unwrap();
    assert_eq!(rv(m.decrypt_init(s, &cbc, sm4)), CKR_OPERATION_ACTIVE);
    assert_eq!(
        rv(m.sign(s, b"x", OutSpace::Query)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // Signing: length query keeps the operation, a wrong e length ends it.
    m.sign_init(s, &mech(CKM_GM_SM2_SIGN), private).unwrap();
    assert!(matches!(
        m.sign(s, &[0; 32], OutSpace::Query).unwrap(),
        Step::Length(64)
    ));
    assert!(matches!(
        m.sign(s, &[0; 32], OutSpace::Capacity(10)).unwrap(),
        Step::TooSmall(64)
    ));
    assert_eq!(
        rv(m.sign(s, &[0; 31], OutSpace::Capacity(64))),
        CKR_DATA_LEN_RANGE
    );
    assert_eq!(
        rv(m.sign(s, &[0; 32], OutSpace::Capacity(64))),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // A key made unextractable cannot be wrapped.
    let w = m
        .generate_key(
            s,
            &mech(CKM_GM_SM4_KEY_GEN),
            &t(vec![Attr::bool(CKA_WRAP, true)]),
        )
        .unwrap();
    assert_eq!(
        rv(m.wrap_key(s, &cbc, w, sm4, OutSpace::Query)),
        CKR_KEY_UNEXTRACTABLE
    );
    assert_eq!(
        rv(m.wrap_key(s, &cbc, w, public, OutSpace::Query)),
        CKR_KEY_NOT_WRAPPABLE
    );
}

#[test]
fn logout_stops_private_key_operations() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = module(dir.path());
    let s = ready(&mut m);
    let (_, private) = keypair(&mut m, s, true, vec![]);
    m.sign_init(s, &mech(CKM_GM_SM2_SIGN), private).unwrap();
    m.set_fault(3).unwrap();
    assert_eq!(
        rv(m.sign(s, &[0; 32], OutSpace::Capacity(64))),
        CKR_USER_NOT_LOGGED_IN
    );
    assert_eq!(
        rv(m.sign_init(s, &mech(CKM_GM_SM2_SIGN), private)),
        CKR_USER_NOT_LOGGED_IN
    );
    m.login(s, CKU_USER, USER).unwrap();
    m.sign_init(s, &mech(CKM_GM_SM2_SIGN), private).unwrap();
    assert_eq!(
        run(m.sign(s, &[0; 32], OutSpace::Capacity(64)).unwrap()).len(),
        64
    );
    // Fault 1 closes every session; fault 2 removes the device until cleared.
    m.set_fault(1).unwrap();
    assert_eq!(rv(m.session_info(s)), CKR_SESSION_HANDLE_INVALID);
    let s2 = m.open_session(0, CKF_SERIAL_SESSION).unwrap();
    m.set_fault(2).unwrap();
    assert_eq!(rv(m.check_device()), CKR_DEVICE_REMOVED);
    assert_eq!(rv(m.session_info(s2)), CKR_SESSION_HANDLE_INVALID);
    m.set_fault(0).unwrap();
    assert_eq!(rv(m.check_device()), CKR_OK);
    assert_eq!(rv(m.set_fault(4)), CKR_ARGUMENTS_BAD);
}

#[test]
fn session_objects_die_with_their_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = module(dir.path());
    let s = ready(&mut m);
    let other = m.open_session(0, CKF_SERIAL_SESSION).unwrap();
    let k = m
        .generate_key(s, &mech(CKM_GM_SM4_KEY_GEN), &t(vec![]))
        .unwrap();
    // Visible from the other session of the application...
    assert_eq!(rv(m.get_attributes(other, k, &[CKA_CLASS])), CKR_OK);
    // ... until its session closes.
    m.close_session(s).unwrap();
    assert_eq!(
        rv(m.get_attributes(other, k, &[CKA_CLASS])),
        CKR_OBJECT_HANDLE_INVALID
    );
    // Token objects need a read-write session (the user is still logged in: one session is
    // left).
    assert_eq!(m.session_info(other).unwrap().state, CKS_RO_USER_FUNCTIONS);
    let r = m.generate_key(
        other,
        &mech(CKM_GM_SM4_KEY_GEN),
        &t(vec![Attr::bool(CKA_TOKEN, true)]),
    );
    assert_eq!(rv(r), CKR_SESSION_READ_ONLY);
}

#[test]
fn two_modules_share_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = module(dir.path());
    let sa = ready(&mut a);
    let mut b = module(dir.path());
    let sb = b
        .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    b.login(sb, CKU_USER, USER).unwrap();
    // Interleaved writes from both land; each sees the other's objects.
    let threads: Vec<_> = [(a, sa), (b, sb)]
        .into_iter()
        .map(|(mut m, s)| {
            std::thread::spawn(move || {
                for _ in 0..5 {
                    keypair(&mut m, s, true, vec![]);
                }
                (m, s)
            })
        })
        .collect();
    let mut back: Vec<_> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    for (m, s) in &mut back {
        m.find_init(*s, &t(vec![Attr::ulong(CKA_CLASS, CKO_PRIVATE_KEY)]))
            .unwrap();
        assert_eq!(m.find(*s, 100).unwrap().len(), 10);
        m.find_final(*s).unwrap();
    }
}

#[test]
fn set_attribute_value_keeps_another_process_sensitive_change() {
    // Process A reads a token key (not sensitive, extractable) for C_SetAttributeValue;
    // before A writes it back, process B makes it sensitive and unextractable. A's write
    // must not undo B's change (PKCS#11 §4.9: once sensitive, always sensitive).
    let dir = tempfile::tempdir().unwrap();
    let mut a = module(dir.path());
    let sa = ready(&mut a);
    let k = a
        .generate_key(
            sa,
            &mech(CKM_GM_SM4_KEY_GEN),
            &t(vec![
                Attr::bool(CKA_TOKEN, true),
                Attr::bool(CKA_SENSITIVE, false),
                Attr::bool(CKA_EXTRACTABLE, true),
                Attr::new(CKA_LABEL, b"k".to_vec()),
            ]),
        )
        .unwrap();
    let mut b = module(dir.path());
    let sb = b
        .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    b.login(sb, CKU_USER, USER).unwrap();
    b.find_init(sb, &t(vec![Attr::new(CKA_LABEL, b"k".to_vec())]))
        .unwrap();
    let kb = b.find(sb, 10).unwrap()[0];
    b.find_final(sb).unwrap();
    let b = std::sync::Arc::new(std::sync::Mutex::new(Some((b, sb, kb))));
    let hook_b = b.clone();
    a.before_token_write = Some(Box::new(move || {
        if let Some((mut b, sb, kb)) = hook_b.lock().unwrap().take() {
            b.set_attributes(
                sb,
                kb,
                &t(vec![
                    Attr::bool(CKA_SENSITIVE, true),
                    Attr::bool(CKA_EXTRACTABLE, false),
                ]),
            )
            .unwrap();
        }
    }));
    // A changes only the label; B's change must survive it.
    a.set_attributes(sa, k, &t(vec![Attr::new(CKA_LABEL, b"k2".to_vec())]))
        .unwrap();
    a.before_token_write = None;
    let r = a
        .get_attributes(
            sa,
            k,
            &[CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_VALUE, CKA_LABEL],
        )
        .unwrap();
    assert_eq!(r[0], AttrRead::Value(Zeroizing::new(vec![CK_TRUE])));
    assert_eq!(r[1], AttrRead::Value(Zeroizing::new(vec![CK_FALSE])));
    assert_eq!(r[2], AttrRead::Sensitive);
    assert_eq!(r[3], AttrRead::Value(Zeroizing::new(b"k2".to_vec())));
}

#[test]
fn set_attribute_value_checks_usage_separation_on_the_stored_object() {
    // Process A asks for CKA_WRAP on a key that neither encrypts nor decrypts (harmless on
    // A's copy); before A writes, process B gives the key CKA_DECRYPT (harmless on its own).
    // Applied to the stored key, A's change would make a key that wraps and decrypts: it
    // must be refused there, not only checked on A's stale copy.
    let dir = tempfile::tempdir().unwrap();
    let mut a = module(dir.path());
    let sa = ready(&mut a);
    let k = a
        .generate_key(
            sa,
            &mech(CKM_GM_SM4_KEY_GEN),
            &t(vec![
                Attr::bool(CKA_TOKEN, true),
                Attr::bool(CKA_ENCRYPT, false),
                Attr::bool(CKA_DECRYPT, false),
                Attr::new(CKA_LABEL, b"k".to_vec()),
            ]),
        )
        .unwrap();
    let mut b = module(dir.path());
    let sb = b
        .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    b.login(sb, CKU_USER, USER).unwrap();
    b.find_init(sb, &t(vec![Attr::new(CKA_LABEL, b"k".to_vec())]))
        .unwrap();
    let kb = b.find(sb, 10).unwrap()[0];
    b.find_final(sb).unwrap();
    let b = std::sync::Arc::new(std::sync::Mutex::new(Some((b, sb, kb))));
    let hook_b = b.clone();
    a.before_token_write = Some(Box::new(move || {
        if let Some((mut b, sb, kb)) = hook_b.lock().unwrap().take() {
            b.set_attributes(sb, kb, &t(vec![Attr::bool(CKA_DECRYPT, true)]))
                .unwrap();
        }
    }));
    let r = a.set_attributes(sa, k, &t(vec![Attr::bool(CKA_WRAP, true)]));
    a.before_token_write = None;
    assert_eq!(rv(r), CKR_TEMPLATE_INCONSISTENT);
    let r = a
        .get_attributes(sa, k, &[CKA_WRAP, CKA_DECRYPT, CKA_ENCRYPT])
        .unwrap();
    assert_eq!(r[0], AttrRead::Value(Zeroizing::new(vec![CK_FALSE])));
    assert_eq!(r[1], AttrRead::Value(Zeroizing::new(vec![CK_TRUE])));
    assert_eq!(r[2], AttrRead::Value(Zeroizing::new(vec![CK_FALSE])));
}

#[test]
fn a_stored_wrapping_key_whose_value_may_be_known_no_longer_wraps() {
    // Token files written before the rule may hold a wrapping key made by value (gmchain's
    // `import_sm4` with the wrapping template made them) or once extractable: anything it
    // wraps, whoever knows its value reads. It keeps unwrapping (blobs made under it stay
    // usable) but wraps nothing more; it keeps CKA_WRAP (one-way), so it never turns into a
    // data key that could open what it wrapped.
    let dir = tempfile::tempdir().unwrap();
    let mut m = module(dir.path());
    let s = ready(&mut m);
    let cbc = Mechanism::parse(CKM_GM_SM4_CBC_PAD, RawParam::Bytes(&[3; 16])).unwrap();
    let target = m
        .generate_key(
            s,
            &mech(CKM_GM_SM4_KEY_GEN),
            &t(vec![Attr::bool(CKA_EXTRACTABLE, true)]),
        )
        .unwrap();
    for (what, forge) in [
        (
            "made by value",
            (|o: &mut Object| o.local = false) as fn(&mut Object),
        ),
        ("once extractable", |o: &mut Object| {
            o.never_extractable = false
        }),
        ("once non-sensitive", |o: &mut Object| {
            o.always_sensitive = false
        }),
    ] {
        let kek = m
            .generate_key(
                s,
                &mech(CKM_GM_SM4_KEY_GEN),
                &t(vec![
                    Attr::bool(CKA_TOKEN, true),
                    Attr::bool(CKA_WRAP, true),
                    Attr::bool(CKA_UNWRAP, true),
                ]),
            )
            .unwrap();
        let wrapped = run(m
            .wrap_key(s, &cbc, kek, target, OutSpace::Capacity(64))
            .unwrap()
            .0);
        let id = m.handles[&kek].1;
        m.tokens[0]
            .update(|st| {
                forge(st.objects.iter_mut().find(|o| o.id == id).unwrap());
                Ok(())
            })
            .unwrap();
        let r = m.wrap_key(s, &cbc, kek, target, OutSpace::Capacity(64));
        let e = r.map(|_| ()).unwrap_err();
        assert_eq!(e.rv(), CKR_KEY_FUNCTION_NOT_PERMITTED, "{what}");
        assert!(e.is_logged(), "{what}");
        let sm4 = t(vec![
            Attr::ulong(CKA_CLASS, CKO_SECRET_KEY),
            Attr::ulong(CKA_KEY_TYPE, CKK_GM_SM4),
        ]);
        m.unwrap_key(s, &cbc, kek, &wrapped, &sm4).unwrap();
        m.set_attributes(s, kek, &t(vec![Attr::new(CKA_LABEL, b"old".to_vec())]))
            .unwrap();
        assert_eq!(
            rv(m.set_attributes(s, kek, &t(vec![Attr::bool(CKA_WRAP, false)]))),
            CKR_ATTRIBUTE_READ_ONLY,
            "{what}"
        );
    }
}

#[test]
fn a_stored_key_that_wraps_and_decrypts_no_longer_decrypts() {
    // Token files written before the rule may hold keys that wrap and decrypt (gmchain's
    // own wrapping-key template made them). Such a key keeps wrapping and unwrapping, but
    // no longer decrypts or encrypts data, so it cannot decrypt what it wrapped; clearing
    // the conflicting attribute is allowed, and changes that keep the conflict as it was
    // (a label) are too.
    let dir = tempfile::tempdir().unwrap();
    let mut m = module(dir.path());
    let s = ready(&mut m);
    let kek = m
        .generate_key(
            s,
            &mech(CKM_GM_SM4_KEY_GEN),
            &t(vec![
                Attr::bool(CKA_TOKEN, true),
                Attr::bool(CKA_WRAP, true),
                Attr::bool(CKA_UNWRAP, true),
                Attr::new(CKA_LABEL, b"legacy".to_vec()),
            ]),
        )
        .unwrap();
    let id = m.handles[&kek].1;
    m.tokens[0]
        .update(|st| {
            let o = st.objects.iter_mut().find(|o| o.id == id).unwrap();
            o.usage.encrypt = true;
            o.usage.decrypt = true;
            Ok(())
        })
        .unwrap();
    let target = m
        .generate_key(
            s,
            &mech(CKM_GM_SM4_KEY_GEN),
            &t(vec![Attr::bool(CKA_EXTRACTABLE, true)]),
        )
        .unwrap();
    let cbc = Mechanism::parse(CKM_GM_SM4_CBC_PAD, RawParam::Bytes(&[3; 16])).unwrap();
    let wrapped = run(m
        .wrap_key(s, &cbc, kek, target, OutSpace::Capacity(64))
        .unwrap()
        .0);
    assert_eq!(wrapped.len(), 32);
    assert_eq!(
        rv(m.decrypt_init(s, &cbc, kek)),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    assert_eq!(
        rv(m.encrypt_init(s, &cbc, kek)),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    m.set_attributes(s, kek, &t(vec![Attr::new(CKA_LABEL, b"old".to_vec())]))
        .unwrap();
    // Clearing one conflict while keeping the other is allowed, re-adding one is not.
    m.set_attributes(s, kek, &t(vec![Attr::bool(CKA_DECRYPT, false)]))
        .unwrap();
    assert_eq!(
        rv(m.set_attributes(s, kek, &t(vec![Attr::bool(CKA_DECRYPT, true)]))),
        CKR_TEMPLATE_INCONSISTENT
    );
    m.set_attributes(s, kek, &t(vec![Attr::bool(CKA_ENCRYPT, false)]))
        .unwrap();
    // Now a plain key-encryption key: it unwraps what it wrapped.
    let sm4 = t(vec![
        Attr::ulong(CKA_CLASS, CKO_SECRET_KEY),
        Attr::ulong(CKA_KEY_TYPE, CKK_GM_SM4),
    ]);
    m.unwrap_key(s, &cbc, kek, &wrapped, &sm4).unwrap();

    // A stored key that wraps and encrypts (allowed by the first version of the rule) no
    // longer encrypts: SM4-CTR under it would give the keystream of its GCM wraps.
    m.set_attributes(s, kek, &t(vec![Attr::bool(CKA_UNWRAP, false)]))
        .unwrap();
    m.tokens[0]
        .update(|st| {
            let o = st.objects.iter_mut().find(|o| o.id == id).unwrap();
            o.usage.encrypt = true;
            Ok(())
        })
        .unwrap();
    let ctr = Mechanism::parse(CKM_GM_SM4_CTR, RawParam::Bytes(&[0; 16])).unwrap();
    assert_eq!(
        rv(m.encrypt_init(s, &ctr, kek)),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    run(m
        .wrap_key(s, &cbc, kek, target, OutSpace::Capacity(64))
        .unwrap()
        .0);
}

/// A GM/T 0009 envelope built with `crypto_sm` (as `pki::envelope::seal` does): the SM2Cipher
/// (DER) of a fresh SM4 key to `holder`, and d in two SM4-ECB blocks under that key.
fn envelope_parts(
    holder: &crypto::PublicKey,
    d: &crypto_sm::sm2::PrivateKey,
    seed: u64,
) -> (Vec<u8>, Vec<u8>) {
    let rng = SeededRandom::new(seed);
    let mut sym = [0u8; 16];
    crypto::RandomSource::fill(&rng, &mut sym).unwrap();
    let cipher = crypto_sm::sm2::encrypt(holder, &sym, crypto::CipherFormat::Der, &rng).unwrap();
    let k = crypto_sm::sm4::Sm4Secret::from_slice(&sym).unwrap();
    let d_bytes = d.to_bytes();
    let enc_d = crate::mechanism::Sm4Cipher::Ecb
        .encrypt(&k, &d_bytes[..])
        .unwrap();
    (cipher, enc_d)
}

fn transport_template(extra: Vec<Attr>) -> Template {
    let mut v = vec![
        Attr::ulong(CKA_CLASS, CKO_SECRET_KEY),
        Attr::ulong(CKA_KEY_TYPE, CKK_GM_SM4),
    ];
    if !extra.iter().any(|a| a.kind == CKA_UNWRAP) {
        v.push(Attr::bool(CKA_UNWRAP, true));
    }
    v.extend(extra);
    t(v)
}

fn enveloped_template(point: &crypto::PublicKey) -> Template {
    let mut p = [0u8; 65];
    p.copy_from_slice(point.as_bytes());
    t(vec![
        Attr::ulong(CKA_CLASS, CKO_PRIVATE_KEY),
        Attr::ulong(CKA_KEY_TYPE, CKK_GM_SM2),
        Attr::bool(CKA_SIGN, false),
        Attr::bool(CKA_DECRYPT, true),
        Attr::new(CKA_EC_POINT, ec_point_der(&p)),
    ])
}

#[test]
fn an_envelope_unwraps_in_two_steps_under_an_unwrap_only_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = module(dir.path());
    let s = ready(&mut m);
    // An SM2 signing key may not unwrap and decrypt (it would open the envelope in host
    // memory), at creation or later.
    let r = m.generate_key_pair(
        s,
        &mech(CKM_GM_SM2_KEY_PAIR_GEN),
        &t(vec![]),
        &t(vec![
            Attr::bool(CKA_UNWRAP, true),
            Attr::bool(CKA_DECRYPT, true),
        ]),
    );
    assert_eq!(rv(r), CKR_TEMPLATE_INCONSISTENT);
    let (hpub, holder) = keypair(&mut m, s, false, vec![Attr::bool(CKA_UNWRAP, true)]);
    assert_eq!(
        rv(m.set_attributes(s, holder, &t(vec![Attr::bool(CKA_DECRYPT, true)]))),
        CKR_TEMPLATE_INCONSISTENT
    );
    let holder_pub = match &m.lookup(s, hpub, Role::Object).unwrap().1.material {
        Material::Public(pk) => *pk,
        other => panic!("{other:?}"),
    };
    let enc = crypto_sm::sm2::PrivateKey::generate(&SeededRandom::new(99)).unwrap();
    let (cipher, enc_d) = envelope_parts(&holder_pub, &enc, 5);
    let sm2 = mech(CKM_GM_SM2_ENCRYPT);
    let ecb = mech(CKM_GM_SM4_ECB);
    let before = m.session_objects.len();

    // The transport key only unwraps and is never extractable.
    for extra in [
        vec![Attr::bool(CKA_DECRYPT, true)],
        vec![Attr::bool(CKA_EXTRACTABLE, true)],
        vec![Attr::bool(CKA_UNWRAP, false)],
    ] {
        let r = m.unwrap_key(s, &sm2, holder, &cipher, &transport_template(extra));
        assert_eq!(rv(r), CKR_TEMPLATE_INCONSISTENT);
    }
    // A signing key without CKA_UNWRAP cannot unwrap.
    let (_, plain_signer) = keypair(&mut m, s, false, vec![]);
    let r = m.unwrap_key(s, &sm2, plain_signer, &cipher, &transport_template(vec![]));
    assert_eq!(rv(r), CKR_KEY_FUNCTION_NOT_PERMITTED);
    // A flipped C3 (the SM2Cipher's OCTET STRING of 32 bytes) is refused, nothing made.
    let c3 = cipher
        .windows(2)
        .position(|w| w == [0x04, 0x20])
        .expect("C3 in the SM2Cipher")
        + 2;
    let mut bad = cipher.clone();
    bad[c3] ^= 1;
    let r = m.unwrap_key(s, &sm2, holder, &bad, &transport_template(vec![]));
    assert_eq!(rv(r), CKR_WRAPPED_KEY_INVALID);
    assert_eq!(
        m.session_objects.len(),
        before + 2,
        "only the second key pair"
    );

    let kt = m
        .unwrap_key(s, &sm2, holder, &cipher, &transport_template(vec![]))
        .unwrap();
    // The transport key cannot decrypt d in clear.
    assert_eq!(
        rv(m.decrypt_init(s, &ecb, kt)),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    // SM4-ECB unwraps only an SM2 private key, only with the enveloped public key named, and
    // only when d belongs to it.
    let sm4_target = t(vec![
        Attr::ulong(CKA_CLASS, CKO_SECRET_KEY),
        Attr::ulong(CKA_KEY_TYPE, CKK_GM_SM4),
    ]);
    assert_eq!(
        rv(m.unwrap_key(s, &ecb, kt, &enc_d[..16], &sm4_target)),
        CKR_MECHANISM_INVALID
    );
    let no_point = t(vec![
        Attr::ulong(CKA_CLASS, CKO_PRIVATE_KEY),
        Attr::ulong(CKA_KEY_TYPE, CKK_GM_SM2),
    ]);
    assert_eq!(
        rv(m.unwrap_key(s, &ecb, kt, &enc_d, &no_point)),
        CKR_TEMPLATE_INCOMPLETE
    );
    let n = m.session_objects.len();
    let mut swapped = enc_d.clone();
    swapped.rotate_left(16);
    for blob in [&swapped[..], &enc_d[..31]] {
        let r = m.unwrap_key(s, &ecb, kt, blob, &enveloped_template(&enc.public_key()));
        assert_eq!(rv(r), CKR_WRAPPED_KEY_INVALID);
    }
    let r = m.unwrap_key(s, &ecb, kt, &enc_d, &enveloped_template(&holder_pub));
    assert_eq!(rv(r), CKR_WRAPPED_KEY_INVALID, "d of another public key");
    assert_eq!(
        m.session_objects.len(),
        n,
        "no object from a refused unwrap"
    );

    let k = m
        .unwrap_key(s, &ecb, kt, &enc_d, &enveloped_template(&enc.public_key()))
        .unwrap();
    let o = m.lookup(s, k, Role::Object).unwrap().1;
    assert!(o.sensitive && !o.extractable && o.usage.decrypt && !o.usage.sign);
    // It decrypts in the token what was encrypted to the enveloped public key.
    let msg = b"sixteen byte key";
    let ct = crypto_sm::sm2::encrypt(
        &enc.public_key(),
        msg,
        crypto::CipherFormat::C1C3C2,
        &SeededRandom::new(3),
    )
    .unwrap();
    m.decrypt_init(s, &sm2, k).unwrap();
    assert_eq!(run(m.decrypt(s, &ct, OutSpace::Capacity(64)).unwrap()), msg);
}
