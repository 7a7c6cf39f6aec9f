//! Shared helpers: finding the module, running a test body in an isolated child process, and
//! short names for the vendor mechanisms.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const SO_PIN: &str = "so-secret-42";
pub const USER_PIN: &str = "user-secret-42";

/// Environment variable telling a child which test it runs (and that it is a child).
const CHILD: &str = "SOFTTOKEN_IT_CHILD";
/// Optional role of a child inside a multi-process test.
pub const ROLE: &str = "SOFTTOKEN_IT_ROLE";

/// Returns the built module next to this test executable: `target/<profile>/` (where
/// `cargo build` puts it) or `target/<profile>/deps/` (where `cargo test` builds it), whichever
/// is newer, so a stale copy from an older build is never tested.
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    let profile = deps.parent().expect("profile dir");
    let candidates = [
        profile.join("libgmchain_softtoken.so"),
        deps.join("libgmchain_softtoken.so"),
    ];
    candidates
        .iter()
        .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| {
            panic!(
                "{} not found: run `cargo build -p softtoken` first (same profile as the tests)",
                candidates[0].display()
            )
        })
}

/// The test path as libtest names it: the module path without the crate name.
pub fn test_path(module: &str, name: &str) -> String {
    let rest = module.split_once("::").map_or("", |(_, r)| r);
    if rest.is_empty() {
        name.to_string()
    } else {
        format!("{rest}::{name}")
    }
}

/// Returns whether this process is the child running `test`.
pub fn is_child(test: &str) -> bool {
    std::env::var(CHILD).is_ok_and(|v| v == test)
}

/// Runs one test of this binary in a child process with `dir` as the token directory, the
/// fault switch enabled, and extra environment. Returns its output (not yet checked).
pub fn spawn(test: &str, dir: &Path, env: &[(&str, &str)]) -> std::process::Child {
    spawn_with(test, Some(dir), env)
}

/// As [`spawn`], with the token directory optional (to test its absence).
pub fn spawn_with(test: &str, dir: Option<&Path>, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args([
        test,
        "--exact",
        "--nocapture",
        "--include-ignored",
        "--test-threads",
        "1",
    ])
    .env(CHILD, test)
    .env_remove("GMCHAIN_SOFTTOKEN_DIR")
    .env("GMCHAIN_SOFTTOKEN_FAULTS", "1")
    .env_remove("GMCHAIN_SOFTTOKEN_SLOTS")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    if let Some(dir) = dir {
        cmd.env("GMCHAIN_SOFTTOKEN_DIR", dir);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn test child")
}

/// Fails the test with the child's output unless it succeeded and ran exactly one test.
pub fn check_child(test: &str, out: Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {test} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

/// Runs `body` in a child process of its own with a fresh token directory.
pub fn isolated(test: &str, body: impl FnOnce()) {
    if is_child(test) {
        body();
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = spawn(test, dir.path(), &[])
        .wait_with_output()
        .expect("wait for child");
    check_child(test, out);
}

/// Declares a test whose body runs in an isolated child process.
#[macro_export]
macro_rules! isolated_test {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            $crate::common::isolated(
                &$crate::common::test_path(module_path!(), stringify!($name)),
                || $body,
            );
        }
    };
}

/// Loads and initialises the module (the child's environment names the directory).
pub fn load() -> Pkcs11 {
    let p11 = Pkcs11::new(module_path()).expect("load module");
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    p11
}

pub fn pin(s: &str) -> AuthPin {
    AuthPin::from(s)
}

/// Loads the module, initialises slot 0 with the SO PIN and sets the user PIN.
pub fn ready() -> (Pkcs11, Slot) {
    let p11 = load();
    let slot = p11.get_slots_with_token().expect("slots")[0];
    p11.init_token(slot, &pin(SO_PIN), "it")
        .expect("C_InitToken");
    {
        let s = p11.open_rw_session(slot).expect("open");
        s.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
        s.init_pin(&pin(USER_PIN)).expect("C_InitPIN");
    }
    (p11, slot)
}

/// Opens a read-write session and logs the user in.
pub fn user_session(p11: &Pkcs11, slot: Slot) -> Session {
    let s = p11.open_rw_session(slot).expect("open");
    s.login(UserType::User, Some(&pin(USER_PIN)))
        .expect("user login");
    s
}

pub const CKK_GM_SM2: u64 = 0x8047_4D01;
pub const CKK_GM_SM4: u64 = 0x8047_4D02;
pub const CKM_GM_SM2_KEY_PAIR_GEN: u64 = 0x8047_4D10;
pub const CKM_GM_SM2_SIGN: u64 = 0x8047_4D11;
pub const CKM_GM_SM2_SM3_SIGN: u64 = 0x8047_4D12;
pub const CKM_GM_SM2_ENCRYPT: u64 = 0x8047_4D13;
pub const CKM_GM_SM3: u64 = 0x8047_4D20;
pub const CKM_GM_SM4_KEY_GEN: u64 = 0x8047_4D30;
pub const CKM_GM_SM4_CBC_PAD: u64 = 0x8047_4D33;
pub const CKM_GM_SM4_CTR: u64 = 0x8047_4D34;
pub const CKM_GM_SM4_GCM: u64 = 0x8047_4D35;

pub fn mtype(code: u64) -> MechanismType {
    MechanismType::new_vendor_defined(code).expect("vendor mechanism")
}

/// A vendor mechanism without parameter.
pub fn mech(code: u64) -> Mechanism<'static> {
    Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(mtype(code), None))
}

/// A vendor mechanism whose parameter is `param` (any sized value, passed by pointer/size).
pub fn mech_with<T>(code: u64, param: &T) -> Mechanism<'_> {
    Mechanism::VendorDefined(VendorDefinedMechanism::new(mtype(code), Some(param)))
}

pub fn sm2_type() -> KeyType {
    KeyType::new_vendor_defined(CKK_GM_SM2).expect("key type")
}

pub fn sm4_type() -> KeyType {
    KeyType::new_vendor_defined(CKK_GM_SM4).expect("key type")
}

/// Generates an SM2 token key pair (sensitive, unextractable by default) with `id`.
pub fn sm2_pair(
    s: &Session,
    id: &[u8],
    private_extra: &[Attribute],
) -> (ObjectHandle, ObjectHandle) {
    let public = [
        Attribute::Token(true),
        Attribute::Verify(true),
        Attribute::Encrypt(true),
        Attribute::Id(id.to_vec()),
        Attribute::Label(b"it-sm2".to_vec()),
    ];
    let mut private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sign(true),
        Attribute::Id(id.to_vec()),
        Attribute::Label(b"it-sm2".to_vec()),
    ];
    private.extend_from_slice(private_extra);
    s.generate_key_pair(&mech(CKM_GM_SM2_KEY_PAIR_GEN), &public, &private)
        .expect("C_GenerateKeyPair")
}

/// Reads the SM2 public key (04‖x‖y) from a public key object's CKA_EC_POINT.
pub fn public_key(s: &Session, h: ObjectHandle) -> crypto::PublicKey {
    let attrs = s
        .get_attributes(h, &[cryptoki::object::AttributeType::EcPoint])
        .expect("get EC point");
    let Some(Attribute::EcPoint(der)) = attrs.first() else {
        panic!("no CKA_EC_POINT");
    };
    assert_eq!(&der[..2], &[0x04, 0x41], "DER OCTET STRING of 65 bytes");
    crypto::PublicKey::from_uncompressed(&der[2..]).expect("point")
}

pub fn class(c: ObjectClass) -> Attribute {
    Attribute::Class(c)
}

/// The fault switch, called through the same loaded library.
pub fn set_fault(kind: u32) -> u64 {
    // SAFETY: the symbol is `extern "C" fn(u32) -> CK_RV` as the crate documents; the library
    // is the one cryptoki loaded (dlopen returns the same handle) and stays loaded meanwhile.
    unsafe {
        let lib = libloading::Library::new(module_path()).expect("dlopen");
        let f: libloading::Symbol<unsafe extern "C" fn(u32) -> u64> = lib
            .get(b"gmchain_softtoken_set_fault")
            .expect("fault symbol");
        f(kind)
    }
}

/// Returns the PKCS#11 error of a call that must fail.
pub fn rv_of<T: std::fmt::Debug>(r: cryptoki::error::Result<T>) -> RvError {
    match r {
        Err(Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

/// Reads one boolean attribute of an object.
pub fn bool_attr(s: &Session, h: ObjectHandle, t: AttributeType) -> bool {
    match s.get_attributes(h, &[t]).expect("get attribute").first() {
        Some(
            Attribute::Local(b)
            | Attribute::AlwaysSensitive(b)
            | Attribute::NeverExtractable(b)
            | Attribute::Sensitive(b)
            | Attribute::Extractable(b)
            | Attribute::Token(b)
            | Attribute::Private(b)
            | Attribute::Encrypt(b)
            | Attribute::Decrypt(b)
            | Attribute::Wrap(b)
            | Attribute::Unwrap(b),
        ) => *b,
        other => panic!("{t:?}: {other:?}"),
    }
}
