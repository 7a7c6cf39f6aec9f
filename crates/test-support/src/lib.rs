//! Helpers for gmchain's tests only (a dev-dependency, never linked into a binary): the bridge
//! to GmSSL 3 through Python (`gmssl-pyx` in the virtualenv `scripts/setup.sh` makes), the
//! independent implementation the differential tests compare against; and small helpers for
//! tests of files on disk ([`dir_entries`], [`concurrently`]).
// Test support: panicking on a broken test environment is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The python of the gmssl-pyx virtualenv (`GMCHAIN_PYTHON`). Without it the calling test
/// fails, with two exceptions to that rule and one exception to the exception:
/// - `GMCHAIN_ALLOW_SKIP=1` returns `None` (the caller returns early), after a line on stderr
///   that names the skipped test, for a local run on a machine without Python;
/// - under CI (`CI` set to anything but empty, `0` or `false`, as CI services and
///   `scripts/test.sh` set it) the skip is refused and the test fails whatever
///   `GMCHAIN_ALLOW_SKIP` says: a CI run that did not cross-check must not pass.
///
/// `by_hand` names the cargo command that reruns the caller's tests.
pub fn python(by_hand: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GMCHAIN_PYTHON") {
        return Some(PathBuf::from(p));
    }
    // libtest runs each test on a thread named after it.
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed test)")
        .to_string();
    let allow_skip = std::env::var("GMCHAIN_ALLOW_SKIP").as_deref() == Ok("1");
    if let Some(ci) = ci() {
        panic!(
            "{test}: GMCHAIN_PYTHON is not set and CI={ci}: the GmSSL cross-checks must run in CI, \
             so a skip is refused{}. Run bash scripts/test.sh, which sets GMCHAIN_PYTHON \
             (by hand: source scripts/setup.sh, then {by_hand}).",
            if allow_skip {
                " (GMCHAIN_ALLOW_SKIP=1 is ignored under CI)"
            } else {
                ""
            }
        );
    }
    if allow_skip {
        // Straight to stderr, past the test harness's capture, so a skip is never silent.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!! SKIPPED {test}: the GmSSL cross-checks did not run: GMCHAIN_PYTHON is \
             unset and GMCHAIN_ALLOW_SKIP=1 (refused when CI is set) !!!!!!!!\n"
        );
        return None;
    }
    panic!(
        "{test}: GMCHAIN_PYTHON is not set: run the README's test command, bash scripts/test.sh, \
         which creates a virtualenv with the PyPI package gmssl-pyx and sets GMCHAIN_PYTHON to \
         its python (by hand: source scripts/setup.sh, then {by_hand}). \
         Set GMCHAIN_ALLOW_SKIP=1 to skip these tests instead (outside CI only)."
    );
}

/// The value of `CI` when it says this is a CI run: set, and not empty, `0` or `false`.
fn ci() -> Option<String> {
    let v = std::env::var("CI").ok()?;
    let t = v.trim();
    (!t.is_empty() && t != "0" && !t.eq_ignore_ascii_case("false")).then(|| t.to_string())
}

/// Runs `prelude` then `script` with `input` on stdin; returns stdout's lines split into
/// whitespace-separated fields. `ctx` goes into the failure message.
pub fn py(python: &Path, prelude: &str, script: &str, input: &str, ctx: &str) -> Vec<Vec<String>> {
    let mut child = Command::new(python)
        .arg("-c")
        .arg(format!("{prelude}\n{script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run GMCHAIN_PYTHON={}: {e}", python.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python/gmssl-pyx failed [{ctx}]: {}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Encodes bytes as a field: `x<hex>`, so an empty value is `x`, never a missing field.
pub fn x(b: &[u8]) -> String {
    format!("x{}", hex::encode(b))
}

/// Decodes an `x<hex>` field.
pub fn unx(s: &str) -> Vec<u8> {
    assert!(s.starts_with('x'), "{s}");
    hex::decode(&s[1..]).unwrap()
}

/// Returns the names in `dir`, sorted: what a test expects a directory to hold, and nothing
/// more (a temporary or lock file left behind shows up).
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs `f(0)` to `f(n - 1)` on `n` threads released together, and returns their results in
/// that order: a race between writers, as two processes would run it.
pub fn concurrently<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let start = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (f, start) = (&f, &start);
                s.spawn(move || {
                    start.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}
