//! Shared by the tests that run `gmchain` against the demo PKI of `scripts/make-test-pki.sh`
//! (tests/ca.rs, tests/cli.rs): the soft token module, `gmchain` with the PKI's token
//! directory, and the PKI built in a fresh directory.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The soft token module built beside the test executable.
pub fn softtoken_module() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let so = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("libgmchain_softtoken.so");
    assert!(
        so.exists(),
        "{} is missing: run `cargo build -p softtoken` first (scripts/test.sh does)",
        so.display()
    );
    so
}

/// `gmchain` in `dir` with the PKI's soft-token directory (the agency CAs' keys live there).
pub fn gm(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .current_dir(dir)
        .env("GMCHAIN_SOFTTOKEN_DIR", dir.join("tokens"))
        .env("GMCHAIN_PKCS11_MODULE", softtoken_module())
        .env("GMCHAIN_OPERATOR", "test-admin")
        .args(args)
        .output()
        .expect("run gmchain")
}

/// Builds the demo PKI with the script the README documents, into a fresh directory.
pub fn demo_pki() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo().join("scripts/make-test-pki.sh"))
        .arg(t.path())
        .env("GMCHAIN_BIN", env!("CARGO_BIN_EXE_gmchain"))
        .env("GMCHAIN_PKCS11_MODULE", softtoken_module())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make-test-pki.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t
}
