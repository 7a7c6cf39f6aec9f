//! The C boundary itself, through the raw function list: NULL pointers where PKCS#11 allows
//! none, malformed templates and mechanisms, the length-query convention, C_Initialize's
//! argument rules. Every call must come back with a return value, never a crash.

use crate::common::*;
use crate::isolated_test;
use cryptoki_sys::*;
use std::ptr::null_mut;

/// The module's function list, loaded like any client would.
struct Raw {
    _lib: libloading::Library,
    f: CK_FUNCTION_LIST,
}

impl Raw {
    fn load() -> Self {
        // SAFETY: loading our own module; C_GetFunctionList has the PKCS#11 signature, and the
        // list it returns is static in the library, which `_lib` keeps loaded.
        unsafe {
            let lib = libloading::Library::new(module_path()).expect("dlopen");
            let get: libloading::Symbol<unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV> =
                lib.get(b"C_GetFunctionList").expect("C_GetFunctionList");
            let mut p: *mut CK_FUNCTION_LIST = null_mut();
            assert_eq!(get(&mut p), CKR_OK);
            assert_eq!(get(null_mut()), CKR_ARGUMENTS_BAD);
            let f = *p;
            Self { _lib: lib, f }
        }
    }
}

fn attr(type_: CK_ATTRIBUTE_TYPE, v: &[u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_,
        pValue: v.as_ptr() as *mut _,
        ulValueLen: v.len() as CK_ULONG,
    }
}

fn no_mech(mechanism: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

unsafe extern "C" fn fake_create(_: *mut *mut std::ffi::c_void) -> CK_RV {
    CKR_OK
}
unsafe extern "C" fn fake_mutex(_: *mut std::ffi::c_void) -> CK_RV {
    CKR_OK
}

isolated_test! {
    fn raw_calls_never_crash() {
        let r = Raw::load();
        let f = &r.f;
        assert_eq!((f.version.major, f.version.minor), (2, 40));
        // SAFETY: every call passes either valid pointers or the NULL/garbage the test is about;
        // the module must check what PKCS#11 lets it check and never dereference the rest.
        unsafe {
            let mut count: CK_ULONG = 0;
            assert_eq!(f.C_GetSlotList.unwrap()(CK_TRUE, null_mut(), &mut count), CKR_CRYPTOKI_NOT_INITIALIZED);

            // C_Initialize: caller mutexes without CKF_OS_LOCKING_OK cannot be honoured.
            let mut args = CK_C_INITIALIZE_ARGS {
                CreateMutex: Some(fake_create),
                DestroyMutex: Some(fake_mutex),
                LockMutex: Some(fake_mutex),
                UnlockMutex: Some(fake_mutex),
                flags: 0,
                pReserved: null_mut(),
            };
            let init = f.C_Initialize.unwrap();
            assert_eq!(init(&mut args as *mut _ as *mut _), CKR_CANT_LOCK);
            args.UnlockMutex = None;
            assert_eq!(init(&mut args as *mut _ as *mut _), CKR_ARGUMENTS_BAD);
            let mut reserved = CK_C_INITIALIZE_ARGS {
                CreateMutex: None,
                DestroyMutex: None,
                LockMutex: None,
                UnlockMutex: None,
                flags: CKF_OS_LOCKING_OK,
                pReserved: &mut count as *mut _ as *mut _,
            };
            assert_eq!(init(&mut reserved as *mut _ as *mut _), CKR_ARGUMENTS_BAD);
            reserved.pReserved = null_mut();
            assert_eq!(init(&mut reserved as *mut _ as *mut _), CKR_OK);
            assert_eq!(init(null_mut()), CKR_CRYPTOKI_ALREADY_INITIALIZED);

            // The length-query convention on lists.
            assert_eq!(f.C_GetSlotList.unwrap()(CK_TRUE, null_mut(), null_mut()), CKR_ARGUMENTS_BAD);
            assert_eq!(f.C_GetSlotList.unwrap()(CK_TRUE, null_mut(), &mut count), CKR_OK);
            assert_eq!(count, 2);
            let mut slots = [99 as CK_SLOT_ID; 2];
            let mut one: CK_ULONG = 1;
            assert_eq!(f.C_GetSlotList.unwrap()(CK_TRUE, slots.as_mut_ptr(), &mut one), CKR_BUFFER_TOO_SMALL);
            assert_eq!(one, 2);
            assert_eq!(f.C_GetSlotList.unwrap()(CK_TRUE, slots.as_mut_ptr(), &mut one), CKR_OK);
            assert_eq!(slots, [0, 1]);
            let mut n: CK_ULONG = 0;
            assert_eq!(f.C_GetMechanismList.unwrap()(0, null_mut(), &mut n), CKR_OK);
            assert_eq!(n, 11);
            let mut mechs = vec![0 as CK_MECHANISM_TYPE; n as usize];
            assert_eq!(f.C_GetMechanismList.unwrap()(0, mechs.as_mut_ptr(), &mut n), CKR_OK);
            assert!(mechs.contains(&CKM_GM_SM2_SM3_SIGN));
            assert_eq!(f.C_GetInfo.unwrap()(null_mut()), CKR_ARGUMENTS_BAD);
            assert_eq!(f.C_GetTokenInfo.unwrap()(0, null_mut()), CKR_ARGUMENTS_BAD);
            assert_eq!(f.C_GetSlotInfo.unwrap()(7, null_mut()), CKR_SLOT_ID_INVALID);

            // Token and session set-up with NULLs where a value is required.
            let so = SO_PIN.as_bytes();
            let label = [b' '; 32];
            let init_token = f.C_InitToken.unwrap();
            assert_eq!(init_token(0, so.as_ptr() as *mut _, so.len() as _, null_mut()), CKR_ARGUMENTS_BAD);
            assert_eq!(init_token(0, null_mut(), 8, label.as_ptr() as *mut _), CKR_ARGUMENTS_BAD);
            assert_eq!(init_token(0, so.as_ptr() as *mut _, 2, label.as_ptr() as *mut _), CKR_PIN_LEN_RANGE);
            assert_eq!(init_token(0, so.as_ptr() as *mut _, so.len() as _, label.as_ptr() as *mut _), CKR_OK);
            let open = f.C_OpenSession.unwrap();
            let rw = CKF_SERIAL_SESSION | CKF_RW_SESSION;
            assert_eq!(open(0, rw, null_mut(), None, null_mut()), CKR_ARGUMENTS_BAD);
            let mut h: CK_SESSION_HANDLE = 0;
            assert_eq!(open(0, CKF_RW_SESSION, null_mut(), None, &mut h), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
            assert_eq!(open(1, rw, null_mut(), None, &mut h), CKR_TOKEN_NOT_RECOGNIZED);
            assert_eq!(open(0, rw, null_mut(), None, &mut h), CKR_OK);
            let login = f.C_Login.unwrap();
            assert_eq!(login(h, CKU_SO, null_mut(), 8), CKR_ARGUMENTS_BAD);
            assert_eq!(login(h + 1000, CKU_SO, so.as_ptr() as *mut _, so.len() as _), CKR_SESSION_HANDLE_INVALID);
            assert_eq!(login(h, 77, so.as_ptr() as *mut _, so.len() as _), CKR_USER_TYPE_INVALID);
            assert_eq!(login(h, CKU_SO, so.as_ptr() as *mut _, so.len() as _), CKR_OK);
            let user = USER_PIN.as_bytes();
            assert_eq!(f.C_InitPIN.unwrap()(h, user.as_ptr() as *mut _, user.len() as _), CKR_OK);
            assert_eq!(f.C_Logout.unwrap()(h), CKR_OK);
            assert_eq!(login(h, CKU_USER, user.as_ptr() as *mut _, user.len() as _), CKR_OK);

            // Templates: NULL with a count, NULL value with a length, wrong sizes, unknown types.
            let create = f.C_CreateObject.unwrap();
            let mut obj: CK_OBJECT_HANDLE = 0;
            assert_eq!(create(h, null_mut(), 2, &mut obj), CKR_ARGUMENTS_BAD);
            let class = CKO_SECRET_KEY.to_ne_bytes();
            let kt = 0x8047_4D02 as CK_ULONG;
            let kt = kt.to_ne_bytes();
            let value = [9u8; 16];
            let mut t = [attr(CKA_CLASS, &class), attr(CKA_KEY_TYPE, &kt), attr(CKA_VALUE, &value)];
            assert_eq!(create(h, t.as_mut_ptr(), 3, null_mut()), CKR_ARGUMENTS_BAD);
            let mut bad = t;
            bad[0] = attr(CKA_CLASS, &class[..3]);
            assert_eq!(create(h, bad.as_mut_ptr(), 3, &mut obj), CKR_ATTRIBUTE_VALUE_INVALID);
            let mut bad = t;
            bad[2].pValue = null_mut();
            assert_eq!(create(h, bad.as_mut_ptr(), 3, &mut obj), CKR_ARGUMENTS_BAD);
            let mut bad = t;
            bad[2].ulValueLen = CK_ULONG::MAX / 2;
            assert_eq!(create(h, bad.as_mut_ptr(), 3, &mut obj), CKR_ATTRIBUTE_VALUE_INVALID);
            let mut bad = t;
            bad[2] = attr(CKA_CLASS, &class);
            assert_eq!(create(h, bad.as_mut_ptr(), 3, &mut obj), CKR_TEMPLATE_INCONSISTENT);
            let mut bad = [t[0], t[1], t[2], attr(0x7654_3210, &[1])];
            assert_eq!(create(h, bad.as_mut_ptr(), 4, &mut obj), CKR_ATTRIBUTE_TYPE_INVALID);
            assert_eq!(create(h, t.as_mut_ptr(), 2, &mut obj), CKR_TEMPLATE_INCOMPLETE);
            let mut short_key = t;
            short_key[2] = attr(CKA_VALUE, &value[..15]);
            assert_eq!(create(h, short_key.as_mut_ptr(), 3, &mut obj), CKR_ATTRIBUTE_VALUE_INVALID);
            assert_eq!(create(h, t.as_mut_ptr(), 3, &mut obj), CKR_OK);

            // C_GetAttributeValue: every attribute is processed; the problems are per attribute.
            let get = f.C_GetAttributeValue.unwrap();
            assert_eq!(get(h, obj, null_mut(), 1), CKR_ARGUMENTS_BAD);
            let mut label_buf = [0u8; 8];
            let mut class_buf = [0u8; 8];
            let mut q = [
                CK_ATTRIBUTE { type_: CKA_CLASS, pValue: class_buf.as_mut_ptr() as *mut _, ulValueLen: 8 },
                CK_ATTRIBUTE { type_: 0x7654_3210, pValue: null_mut(), ulValueLen: 0 },
                CK_ATTRIBUTE { type_: CKA_VALUE, pValue: null_mut(), ulValueLen: 0 },
                CK_ATTRIBUTE { type_: CKA_LABEL, pValue: label_buf.as_mut_ptr() as *mut _, ulValueLen: 8 },
            ];
            assert_eq!(get(h, obj, q.as_mut_ptr(), 4), CKR_ATTRIBUTE_SENSITIVE);
            assert_eq!(CK_ULONG::from_ne_bytes(class_buf), CKO_SECRET_KEY);
            assert_eq!(q[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
            assert_eq!(q[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
            assert_eq!(q[3].ulValueLen, 0);
            let mut q = [CK_ATTRIBUTE { type_: CKA_CLASS, pValue: class_buf.as_mut_ptr() as *mut _, ulValueLen: 4 }];
            assert_eq!(get(h, obj, q.as_mut_ptr(), 1), CKR_BUFFER_TOO_SMALL);
            assert_eq!(q[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
            assert_eq!(get(h, 0xdead, q.as_mut_ptr(), 1), CKR_OBJECT_HANDLE_INVALID);

            // Mechanisms: NULL, unknown, bad parameters.
            let enc_init = f.C_EncryptInit.unwrap();
            assert_eq!(enc_init(h, null_mut(), obj), CKR_ARGUMENTS_BAD);
            let mut m = no_mech(0x8047_4DFF);
            assert_eq!(enc_init(h, &mut m, obj), CKR_MECHANISM_INVALID);
            let mut m = CK_MECHANISM { mechanism: CKM_GM_SM4_CBC_PAD, pParameter: null_mut(), ulParameterLen: 16 };
            assert_eq!(enc_init(h, &mut m, obj), CKR_MECHANISM_PARAM_INVALID);
            let mut small = [0u8; 8];
            let mut m = CK_MECHANISM {
                mechanism: CKM_GM_SM4_GCM,
                pParameter: small.as_mut_ptr() as *mut _,
                ulParameterLen: 8,
            };
            assert_eq!(enc_init(h, &mut m, obj), CKR_MECHANISM_PARAM_INVALID);
            let mut gcm = CK_GCM_PARAMS {
                pIv: null_mut(),
                ulIvLen: 12,
                ulIvBits: 96,
                pAAD: null_mut(),
                ulAADLen: 0,
                ulTagBits: 128,
            };
            let mut m = CK_MECHANISM {
                mechanism: CKM_GM_SM4_GCM,
                pParameter: &mut gcm as *mut _ as *mut _,
                ulParameterLen: size_of::<CK_GCM_PARAMS>() as CK_ULONG,
            };
            assert_eq!(enc_init(h, &mut m, obj), CKR_MECHANISM_PARAM_INVALID);
            let mut iv = [0u8; 12];
            gcm.pIv = iv.as_mut_ptr();
            let mut m = CK_MECHANISM {
                mechanism: CKM_GM_SM4_GCM,
                pParameter: &mut gcm as *mut _ as *mut _,
                ulParameterLen: size_of::<CK_GCM_PARAMS>() as CK_ULONG,
            };
            assert_eq!(enc_init(h, &mut m, obj), CKR_OK);
            assert_eq!(enc_init(h, &mut m, obj), CKR_OPERATION_ACTIVE);

            // Output convention: NULL length pointer, query, too small, then the data.
            let encrypt = f.C_Encrypt.unwrap();
            let data = [1u8; 20];
            assert_eq!(encrypt(h, data.as_ptr() as *mut _, 20, null_mut(), null_mut()), CKR_ARGUMENTS_BAD);
            let mut n: CK_ULONG = 0;
            assert_eq!(encrypt(h, data.as_ptr() as *mut _, 20, null_mut(), &mut n), CKR_OK);
            assert_eq!(n, 36);
            let mut out = [0u8; 36];
            let mut n: CK_ULONG = 10;
            assert_eq!(encrypt(h, data.as_ptr() as *mut _, 20, out.as_mut_ptr(), &mut n), CKR_BUFFER_TOO_SMALL);
            assert_eq!(n, 36);
            assert_eq!(encrypt(h, null_mut(), 20, out.as_mut_ptr(), &mut n), CKR_ARGUMENTS_BAD);
            assert_eq!(encrypt(h, data.as_ptr() as *mut _, 20, out.as_mut_ptr(), &mut n), CKR_OK);
            assert_eq!(n, 36);
            // The operation is over.
            assert_eq!(encrypt(h, data.as_ptr() as *mut _, 20, out.as_mut_ptr(), &mut n), CKR_OPERATION_NOT_INITIALIZED);

            // Searching with NULLs.
            assert_eq!(f.C_FindObjects.unwrap()(h, null_mut(), 5, &mut n), CKR_ARGUMENTS_BAD);
            assert_eq!(f.C_FindObjectsInit.unwrap()(h, null_mut(), 3), CKR_ARGUMENTS_BAD);
            assert_eq!(f.C_FindObjectsInit.unwrap()(h, null_mut(), 0), CKR_OK);
            let mut found = [0 as CK_OBJECT_HANDLE; 4];
            assert_eq!(f.C_FindObjects.unwrap()(h, found.as_mut_ptr(), 4, null_mut()), CKR_ARGUMENTS_BAD);
            assert_eq!(f.C_FindObjects.unwrap()(h, found.as_mut_ptr(), 4, &mut n), CKR_OK);
            assert_eq!((n, found[0]), (1, obj));
            assert_eq!(f.C_FindObjectsFinal.unwrap()(h), CKR_OK);
            assert_eq!(f.C_FindObjectsFinal.unwrap()(h), CKR_OPERATION_NOT_INITIALIZED);

            // Random, seeds, unsupported functions, legacy functions.
            let mut rnd = [0u8; 64];
            assert_eq!(f.C_GenerateRandom.unwrap()(h, rnd.as_mut_ptr(), 64), CKR_OK);
            assert!(rnd.iter().any(|b| *b != 0));
            assert_eq!(f.C_GenerateRandom.unwrap()(h, null_mut(), 4), CKR_ARGUMENTS_BAD);
            assert_eq!(f.C_SeedRandom.unwrap()(h, rnd.as_mut_ptr(), 8), CKR_RANDOM_SEED_NOT_SUPPORTED);
            assert_eq!(f.C_DigestKey.unwrap()(h, obj), CKR_FUNCTION_NOT_SUPPORTED);
            assert_eq!(f.C_CopyObject.unwrap()(h, obj, null_mut(), 0, null_mut()), CKR_FUNCTION_NOT_SUPPORTED);
            assert_eq!(f.C_GetFunctionStatus.unwrap()(h), CKR_FUNCTION_NOT_PARALLEL);
            assert_eq!(f.C_SignInit.unwrap()(h, null_mut(), obj), CKR_ARGUMENTS_BAD);
            assert_eq!(f.C_Verify.unwrap()(h, null_mut(), 3, null_mut(), 0), CKR_ARGUMENTS_BAD);
            assert_eq!(f.C_DigestInit.unwrap()(h, null_mut()), CKR_ARGUMENTS_BAD);

            // C_Finalize: reserved must be NULL; afterwards everything is "not initialised".
            assert_eq!(f.C_Finalize.unwrap()(&mut count as *mut _ as *mut _), CKR_ARGUMENTS_BAD);
            assert_eq!(f.C_Finalize.unwrap()(null_mut()), CKR_OK);
            assert_eq!(f.C_Finalize.unwrap()(null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
            assert_eq!(f.C_GetSessionInfo.unwrap()(h, null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
        }
    }
}

const CKM_GM_SM2_SM3_SIGN: CK_MECHANISM_TYPE = 0x8047_4D12;
const CKM_GM_SM4_CBC_PAD: CK_MECHANISM_TYPE = 0x8047_4D33;
const CKM_GM_SM4_GCM: CK_MECHANISM_TYPE = 0x8047_4D35;

#[test]
fn missing_directory_variable_is_named() {
    let test = test_path(module_path!(), "missing_directory_variable_is_named");
    if is_child(&test) {
        let r = Raw::load();
        // SAFETY: NULL arguments are allowed for C_Initialize.
        let rv = unsafe { r.f.C_Initialize.unwrap()(null_mut()) };
        assert_eq!(rv, CKR_GENERAL_ERROR);
        return;
    }
    let out = spawn_with(&test, None, &[]).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    check_child(&test, out);
    assert!(stderr.contains("GMCHAIN_SOFTTOKEN_DIR"), "stderr: {stderr}");
}

#[test]
fn fault_switch_needs_the_environment_flag() {
    let test = test_path(module_path!(), "fault_switch_needs_the_environment_flag");
    if is_child(&test) {
        let _p11 = load();
        assert_eq!(set_fault(2), CKR_FUNCTION_NOT_SUPPORTED);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = spawn(&test, dir.path(), &[("GMCHAIN_SOFTTOKEN_FAULTS", "0")])
        .wait_with_output()
        .unwrap();
    check_child(&test, out);
}
