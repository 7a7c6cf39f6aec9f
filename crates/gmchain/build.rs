//! Records build provenance for the conformance report: the git commit, an SM3 hash of
//! Cargo.lock, and the rustc version.

use std::path::Path;
use std::process::Command;

fn main() {
    // Read at run time, not with env!: a build script compiled in another checkout of the same
    // target directory is reused, and env! would point it at that checkout.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
    let root = Path::new(&manifest_dir).join("../..");
    let lock = root.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let lock_hash = std::fs::read(&lock)
        .map(|b| {
            use sm3::Digest;
            hex::encode(sm3::Sm3::digest(&b))
        })
        .unwrap_or_else(|_| "unknown".into());
    let run = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .current_dir(&root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    // Rerun when HEAD moves or the index changes. Asked of git, not assumed at `.git/`: in a
    // linked worktree (scripts/build-previous-release.sh builds in one) `.git` is a file and
    // HEAD, its reflog and the index live elsewhere; a commit moves the branch's ref.
    let mut watched = vec!["HEAD".to_string(), "index".into(), "logs/HEAD".into()];
    if let Some(branch) = run("git", &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for p in &watched {
        if let Some(f) = run("git", &["rev-parse", "--git-path", p]) {
            let f = root.join(f);
            if f.exists() {
                println!("cargo:rerun-if-changed={}", f.display());
            }
        }
    }
    let mut commit = run("git", &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    if run("git", &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty())
    {
        commit.push_str("-dirty");
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = run(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=GMCHAIN_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=GMCHAIN_CARGO_LOCK_SM3={lock_hash}");
    println!("cargo:rustc-env=GMCHAIN_RUSTC={rustc_version}");
}
