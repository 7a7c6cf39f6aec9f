//! Shared set-up for the integration tests: real PKCS#11 modules in temporary token
//! directories. Each test binary is one process, and PKCS#11 modules are process-wide, so each
//! binary configures its module once (before the first `C_Initialize`) and every test in it
//! shares that configuration.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]
#![allow(
    unsafe_code,
    reason = "std::env::set_var is unsafe in edition 2024; it runs once, inside OnceLock::get_or_init, before any test touches the module or reads the environment"
)]

use crypto::Secret;
use hsm::{Hsm, Profile, TokenSlot};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const SO_PIN: &str = "so-pin-1234";
pub const USER_PIN: &str = "user-pin-5678";
pub const TOKEN: &str = "gmchain-test";
/// A SoftHSM token of its own for the key-usage self-check test.
pub const KEK_TOKEN: &str = "gmchain-kek";

pub fn secret(s: &str) -> Secret {
    Secret::new(s.as_bytes().to_vec())
}

pub fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hsm-profiles")
}

fn set_env(name: &str, value: impl AsRef<std::ffi::OsStr>) {
    // SAFETY: see the module-level allow: called once per process before threads read the
    // environment through the module.
    unsafe { std::env::set_var(name, value) };
}

fn refuse_module_override() {
    if std::env::var_os(hsm::MODULE_ENV).is_some_and(|v| !v.is_empty()) {
        panic!(
            "{} is set; it would override every profile's module. Unset it to run these tests.",
            hsm::MODULE_ENV
        );
    }
}

// ---- SoftHSM2 ----------------------------------------------------------------------------------

pub const SOFTHSM_LIB: &str = "/usr/lib/softhsm/libsofthsm2.so";

pub struct SoftHsm {
    _dir: tempfile::TempDir,
    pub profile: Profile,
}

/// A SoftHSM2 token directory for this process with three tokens: `gmchain-test` (user PIN
/// set), `gmchain-pin` (for the wrong-PIN test, never logged in to with the right PIN) and
/// `gmchain-kek` (for the test that puts a key there which the self-check must fail, so that
/// it cannot fail the self-checks of other tests running meanwhile).
pub fn softhsm() -> &'static SoftHsm {
    static ENV: OnceLock<SoftHsm> = OnceLock::new();
    ENV.get_or_init(|| {
        assert!(
            Path::new(SOFTHSM_LIB).is_file(),
            "{SOFTHSM_LIB} is missing: install SoftHSM2 (`apt-get install softhsm2`); these tests need it and do not skip"
        );
        refuse_module_override();
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("token dir");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("conf");
        set_env("SOFTHSM2_CONF", &conf);
        let profile = Profile::load(profiles_dir().join("softhsm2.toml")).expect("softhsm2 profile");
        for label in [TOKEN, "gmchain-pin", KEK_TOKEN] {
            Hsm::init_token(&profile, TokenSlot::FirstUninitialized, &secret(SO_PIN), label)
                .expect("init token");
            Hsm::init_pin(&profile, label, &secret(SO_PIN), &secret(USER_PIN)).expect("init pin");
        }
        SoftHsm { _dir: dir, profile }
    })
}

pub fn open_softhsm(pool: usize) -> Hsm {
    let env = softhsm();
    Hsm::open(&env.profile, TOKEN, Some(secret(USER_PIN)), pool).expect("open SoftHSM token")
}

// ---- gmchain soft token ------------------------------------------------------------------------

/// `target/<profile>/libgmchain_softtoken.so` next to this test executable
/// (`target/<profile>/deps/<test>`).
pub fn softtoken_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let lib = dir.join("libgmchain_softtoken.so");
    assert!(
        lib.is_file(),
        "{} is missing: run `cargo build -p softtoken` (same profile as the tests) first",
        lib.display()
    );
    lib
}

pub struct SoftToken {
    _dir: tempfile::TempDir,
    pub lib: PathBuf,
    pub profile: Profile,
}

/// The soft token with a fresh token directory and one token `gmchain-test`. With `faults`,
/// the fault switch is armed (GMCHAIN_SOFTTOKEN_FAULTS=1 before C_Initialize).
pub fn softtoken(faults: bool) -> &'static SoftToken {
    static ENV: OnceLock<SoftToken> = OnceLock::new();
    ENV.get_or_init(|| {
        refuse_module_override();
        let lib = softtoken_lib();
        let dir = tempfile::tempdir().expect("tempdir");
        set_env("GMCHAIN_SOFTTOKEN_DIR", dir.path());
        if faults {
            set_env("GMCHAIN_SOFTTOKEN_FAULTS", "1");
        }
        let profile = Profile::load(profiles_dir().join("gmchain-softtoken.toml"))
            .expect("softtoken profile")
            .with_library(&lib);
        Hsm::init_token(
            &profile,
            TokenSlot::FirstUninitialized,
            &secret(SO_PIN),
            TOKEN,
        )
        .expect("init softtoken token");
        Hsm::init_pin(&profile, TOKEN, &secret(SO_PIN), &secret(USER_PIN)).expect("init pin");
        SoftToken {
            _dir: dir,
            lib,
            profile,
        }
    })
}

/// The soft token profile with the ZA computed in the token (`CKM_GM_SM2_SM3_SIGN`, the user ID
/// as the mechanism parameter).
pub fn message_with_id_profile(base: &SoftToken) -> Profile {
    let text =
        std::fs::read_to_string(profiles_dir().join("gmchain-softtoken.toml")).expect("read");
    let text = text
        .replace(
            "sign_input = \"digest\"",
            "sign_input = \"message-with-id\"\nid_parameter = \"raw\"",
        )
        .replace("sm2_sign = 0x80474D11", "sm2_sign = 0x80474D12");
    assert!(text.contains("0x80474D12") && text.contains("message-with-id"));
    Profile::from_toml(
        &text,
        profiles_dir().join("gmchain-softtoken-za-in-token.toml"),
    )
    .expect("variant profile")
    .with_library(&base.lib)
}

pub fn open_softtoken(profile: &Profile, pool: usize) -> Hsm {
    Hsm::open(profile, TOKEN, Some(secret(USER_PIN)), pool).expect("open soft token")
}
